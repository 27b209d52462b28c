"""Business actions on invoices and credit notes: create, issue, pay, void, credit.

An issued invoice is never edited or deleted: it is paid, voided, or reversed by a credit note.
Numbers are given at issue time, gapless per series and year (oms.locking.take_next_number).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from invoices.models import (
    INVOICE_LIFECYCLE,
    SERIES_BY_KIND,
    Invoice,
    InvoiceKind,
    InvoiceLine,
    InvoiceStatus,
    InvoiceStatusEvent,
    Payment,
)
from oms import locking
from oms.cache import invalidate_invoice
from oms.errors import DomainError
from oms.money import ZERO, line_amount, round_amount, round_price, round_quantity
from orders.models import INVOICEABLE_ORDER_STATUSES, Customer, CustomerStatus, Order


@dataclass(frozen=True)
class InvoiceLineInput:
    description: str
    quantity: Decimal
    unit_price: Decimal
    sku: str = ""


def _record_event(invoice: Invoice, *, from_status: str, by, reason: str = "") -> None:
    InvoiceStatusEvent.objects.create(invoice=invoice, from_status=from_status, to_status=invoice.status, by=by,
                                      reason=reason)


def _transition(invoice: Invoice, target: str, *, by, reason: str = "") -> None:
    """The one place an invoice's status changes (the invoice is already locked by the caller)."""
    INVOICE_LIFECYCLE.check(record=str(invoice), current=invoice.status, target=target)
    previous = invoice.status
    invoice.status = target
    invoice.save()
    _record_event(invoice, from_status=previous, by=by, reason=reason)
    invalidate_invoice(invoice.pk)


def _set_lines(invoice: Invoice, lines: Sequence[InvoiceLineInput]) -> None:
    built = []
    for number, line in enumerate(lines, start=1):
        quantity, price = Decimal(line.quantity), Decimal(line.unit_price)
        if quantity < 0 or price < 0:
            raise DomainError(f"Line {number}: quantity and unit price cannot be negative.", field="lines")
        # The columns would round a finer value silently (half-even), after the amount was computed from it.
        if quantity != round_quantity(quantity):
            raise DomainError(f"Line {number}: quantity has more than 3 decimal places.", field="lines")
        if price != round_price(price):
            raise DomainError(f"Line {number}: unit price has more than 4 decimal places.", field="lines")
        built.append(InvoiceLine(invoice=invoice, line_number=number, sku=line.sku.strip(),
                                 description=line.description.strip(), quantity=quantity, unit_price=price,
                                 amount=line_amount(quantity, price)))
    invoice.lines.all().delete()
    InvoiceLine.objects.bulk_create(built)
    _recalculate(invoice, built)


def _refuse_negative(*, tax: Decimal, discount: Decimal) -> None:
    if tax < 0:
        raise DomainError("Tax cannot be negative.", field="tax")
    if discount < 0:
        raise DomainError("Discount cannot be negative.", field="discount")


def _recalculate(invoice: Invoice, lines: Sequence[InvoiceLine]) -> None:
    """net = Σ line amounts − discount; total = net + tax."""
    lines_total = sum((line.amount for line in lines), ZERO)
    invoice.discount, invoice.tax = round_amount(invoice.discount), round_amount(invoice.tax)
    _refuse_negative(tax=invoice.tax, discount=invoice.discount)
    if invoice.discount > lines_total:
        raise DomainError(f"The discount ({invoice.discount}) is larger than the lines ({lines_total}).",
                          field="discount")
    invoice.net = lines_total - invoice.discount
    invoice.total = invoice.net + invoice.tax
    invoice.save()
    invalidate_invoice(invoice.pk)


@transaction.atomic
def invoice_create_for_order(*, order: Order, by=None) -> Invoice:
    """Draft the invoice of a confirmed (or later) order: its lines, freight, discount and tax.

    Refused for an order that is not confirmed yet, cancelled or on hold, and for an order that
    already has a live invoice (void that one first to invoice again).
    """
    order = locking.lock_order(order.pk)
    if order.status not in INVOICEABLE_ORDER_STATUSES:
        raise DomainError(f"Order {order.number} is {order.get_status_display()}; only confirmed orders "
                          "(or later) can be invoiced.")
    existing = Invoice.objects.live_for_order(order).first()
    if existing is not None:
        raise DomainError(f"Order {order.number} is already invoiced on {existing}; void it to invoice again.")
    invoice = Invoice.objects.create(
        kind=InvoiceKind.INVOICE, customer_id=order.customer_id, order=order, currency=order.currency,
        # total = net (0 until the lines are in) + tax, so the "adds up" constraint holds on insert.
        discount=order.discount, tax=order.tax, total=order.tax, created_by=by,
        legacy_order_number=order.legacy_id,
    )
    _copy_order_lines(invoice, order)
    _record_event(invoice, from_status="", by=by, reason=f"Drafted from order {order.number}")
    return invoice


def _copy_order_lines(invoice: Invoice, order: Order) -> None:
    # The invoice line's amount is the order line's total to the cent (the order line total is
    # authoritative); where the order line had a discount, the unit price shown is the net one.
    built = []
    for number, line in enumerate(order.lines.all(), start=1):
        unit_price = line.unit_price
        if line.discount_percent:
            unit_price = (line.line_total / line.quantity).quantize(Decimal("0.0001"))
        built.append(InvoiceLine(invoice=invoice, line_number=number, sku=line.sku,
                                 description=line.description or line.sku, quantity=line.quantity,
                                 unit_price=unit_price, amount=line.line_total))
    if order.freight:
        built.append(InvoiceLine(invoice=invoice, line_number=len(built) + 1, description="Freight",
                                 quantity=Decimal(1), unit_price=order.freight, amount=order.freight))
    InvoiceLine.objects.bulk_create(built)
    _recalculate(invoice, built)


@transaction.atomic
def invoice_create_manual(*, customer: Customer, lines: Sequence[InvoiceLineInput], tax: Decimal = ZERO,
                          discount: Decimal = ZERO, currency: str = "USD", due_at: dt.datetime | None = None,
                          notes: str = "", by=None) -> Invoice:
    """Draft an invoice that bills no order (services, fees, corrections)."""
    if customer.status == CustomerStatus.INACTIVE:
        raise DomainError(f"Customer {customer} is inactive and cannot be invoiced.", field="customer")
    if not lines:
        raise DomainError("A manual invoice needs at least one line.", field="lines")
    # Before the insert: the database would refuse a negative amount with an IntegrityError.
    _refuse_negative(tax=Decimal(tax), discount=Decimal(discount))
    invoice = Invoice.objects.create(kind=InvoiceKind.INVOICE, customer=customer, currency=currency, tax=tax,
                                     total=tax,  # net is 0 until the lines are in: total = net + tax
                                     discount=discount, due_at=due_at, notes=notes, created_by=by)
    _set_lines(invoice, lines)
    _record_event(invoice, from_status="", by=by, reason="Manual invoice drafted")
    return invoice


@transaction.atomic
def invoice_update_draft(*, invoice: Invoice, lines: Sequence[InvoiceLineInput] | None = None, by=None,
                         **changes) -> Invoice:
    """Change a draft (tax, discount, currency, due date, notes, lines). Issued invoices are frozen."""
    invoice = locking.lock_invoice(invoice.pk)
    if invoice.status != InvoiceStatus.DRAFT:
        raise DomainError(f"{invoice} is {invoice.get_status_display()}; an issued invoice is never edited. "
                          "Raise a credit note or void it instead.")
    allowed = {"tax", "discount", "currency", "due_at", "notes", "customer"}
    unknown = set(changes) - allowed
    if unknown:
        raise DomainError(f"Unknown invoice fields: {', '.join(sorted(unknown))}.")
    if invoice.order_id and "customer" in changes and changes["customer"].pk != invoice.customer_id:
        raise DomainError("An order's invoice bills the order's customer.", field="customer")
    for name, value in changes.items():
        setattr(invoice, name, value)
    if lines is not None:
        _set_lines(invoice, lines)
    else:
        _recalculate(invoice, list(invoice.lines.all()))
    return invoice


def _assign_number(invoice: Invoice, at: dt.datetime) -> None:
    series = SERIES_BY_KIND[invoice.kind]
    year = timezone.localtime(at).year
    invoice.series, invoice.fiscal_year = series, year
    invoice.sequence_number = locking.take_next_number(series, year)
    invoice.number = f"{series}-{year}-{invoice.sequence_number:06d}"


@transaction.atomic
def invoice_issue(*, invoice: Invoice, by=None, at: dt.datetime | None = None) -> Invoice:
    """Draft → issued: the invoice gets its number (gapless per series and year), date and due date."""
    invoice = locking.lock_invoice(invoice.pk)
    INVOICE_LIFECYCLE.check(record=str(invoice), current=invoice.status, target=InvoiceStatus.ISSUED)
    if not invoice.lines.exists():
        raise DomainError(f"{invoice} has no lines; there is nothing to issue.")
    at = at or timezone.now()
    if invoice.number is None:
        _assign_number(invoice, at)
    invoice.invoiced_at = at
    if invoice.due_at is None:
        invoice.due_at = at + dt.timedelta(days=settings.INVOICE_PAYMENT_TERMS_DAYS)
    _transition(invoice, InvoiceStatus.ISSUED, by=by, reason=f"Issued as {invoice.number}")
    return invoice


def _settle_if_balanced(invoice: Invoice, *, by, at: dt.datetime, reason: str) -> None:
    """An issued invoice with nothing left to pay becomes paid (or fully credited if nobody paid)."""
    invalidate_invoice(invoice.pk)  # a payment or a credit changed it, whatever follows
    if invoice.status != InvoiceStatus.ISSUED or invoice.balance_due > 0:
        invoice.save()
        return
    if invoice.paid_amount > 0:
        invoice.paid_at = invoice.paid_at or at
        _transition(invoice, InvoiceStatus.PAID, by=by, reason=reason)
    else:
        _transition(invoice, InvoiceStatus.CREDITED, by=by, reason=reason)


@transaction.atomic
def invoice_record_payment(*, invoice: Invoice, amount: Decimal, by=None, received_at: dt.datetime | None = None,
                           reference: str = "") -> Payment:
    """Record a payment against an issued invoice; paying the whole balance marks it paid."""
    invoice = locking.lock_invoice(invoice.pk)
    amount = Decimal(amount)
    if amount != round_amount(amount):
        raise DomainError(f"A payment is in cents; {amount} has more than 2 decimal places.", field="amount")
    if amount <= 0:
        raise DomainError("A payment must be more than 0.", field="amount")
    if invoice.kind != InvoiceKind.INVOICE or invoice.status != InvoiceStatus.ISSUED:
        raise DomainError(f"{invoice} is {invoice.get_status_display().lower()}; payments are recorded "
                          "against issued invoices only.", code="illegal_transition")
    if amount > invoice.balance_due:
        raise DomainError(f"{invoice} has {invoice.balance_due} {invoice.currency} left to pay; "
                          f"a payment of {amount} would overpay it.", field="amount")
    received_at = received_at or timezone.now()
    payment = Payment.objects.create(invoice=invoice, amount=amount, received_at=received_at,
                                     reference=reference.strip(), recorded_by=by)
    invoice.paid_amount += amount
    _settle_if_balanced(invoice, by=by, at=received_at,
                        reason=f"Paid in full ({reference.strip() or 'payment'} {amount})")
    return payment


@transaction.atomic
def invoice_void(*, invoice: Invoice, reason: str, by=None) -> Invoice:
    """Void a draft or an issued invoice nobody has paid or credited. The number stays used."""
    if not reason or not reason.strip():
        raise DomainError("Say why the invoice is voided.", field="reason")
    invoice = locking.lock_invoice(invoice.pk)
    if invoice.kind == InvoiceKind.CREDIT_NOTE:
        # The credited invoice would go on counting it; a credit note raised in error is answered by an invoice.
        raise DomainError(f"{invoice} is a credit note; it cannot be voided. Invoice the amount again instead.")
    INVOICE_LIFECYCLE.check(record=str(invoice), current=invoice.status, target=InvoiceStatus.VOID)
    if invoice.paid_amount > 0:
        raise DomainError(f"{invoice} has payments of {invoice.paid_amount}; refund them or raise a credit "
                          "note instead of voiding it.")
    if invoice.credited_amount > 0:
        raise DomainError(f"{invoice} is partly credited; raise a credit note for the rest instead of voiding it.")
    invoice.void_reason = reason.strip()
    _transition(invoice, InvoiceStatus.VOID, by=by, reason=reason.strip())
    return invoice


@transaction.atomic
def credit_note_create(*, invoice: Invoice, reason: str, amount: Decimal | None = None, by=None) -> Invoice:
    """Reverse an issued (or paid) invoice in full, or in part by an amount, with an issued credit note.

    In full, the credit note repeats the invoice's lines; in part, it has one line for the amount,
    with tax split in the invoice's proportion. The invoice itself is never changed except for
    its credited amount (and its status once nothing is left to pay).
    """
    if not reason or not reason.strip():
        raise DomainError("Say why the invoice is credited.", field="reason")
    original = locking.lock_invoice(invoice.pk)
    if original.kind != InvoiceKind.INVOICE:
        raise DomainError(f"{original} is a credit note; credit the invoice itself.")
    if original.status not in (InvoiceStatus.ISSUED, InvoiceStatus.PAID):
        raise DomainError(f"{original} is {original.get_status_display().lower()}; only issued or paid "
                          "invoices can be credited.", code="illegal_transition")
    creditable = original.creditable_amount
    lines = list(original.lines.all())
    # Repeat the invoice's lines only when nothing was credited yet and they add up to its total: a
    # migrated invoice's lines may disagree with its (authoritative) total, and repeating them would
    # then credit the wrong amount. Otherwise the credit note is one line for the amount.
    lines_add_up = sum((line.amount for line in lines), ZERO) - original.discount + original.tax == original.total
    full = (amount is None or Decimal(amount) == creditable) and creditable == original.total and lines_add_up
    amount = creditable if amount is None else Decimal(amount)
    if amount != round_amount(amount) or amount <= 0:
        raise DomainError("A credit is a positive amount in cents.", field="amount")
    if amount > creditable:
        raise DomainError(f"{original} can be credited by {creditable} at most; {amount} is too much.",
                          field="amount")
    note = Invoice.objects.create(
        kind=InvoiceKind.CREDIT_NOTE, credited_invoice=original, customer_id=original.customer_id,
        order_id=original.order_id, currency=original.currency, reason=reason.strip(), created_by=by,
        legacy_order_number=original.legacy_order_number,
    )
    if full:
        note.discount, note.tax = original.discount, original.tax
        built = [InvoiceLine(invoice=note, line_number=line.line_number, sku=line.sku,
                             description=line.description, quantity=line.quantity, unit_price=line.unit_price,
                             amount=line.amount)
                 for line in lines]
        InvoiceLine.objects.bulk_create(built)
        _recalculate(note, built)
    else:
        tax = round_amount(amount * original.tax / original.total) if original.total else ZERO
        note.tax = tax
        _set_lines(note, [InvoiceLineInput(description=f"Credit on {original.number}: {reason.strip()}",
                                           quantity=Decimal(1), unit_price=amount - tax)])
    _record_event(note, from_status="", by=by, reason=f"Credit note for {original.number}")
    now = timezone.now()
    _assign_number(note, now)
    note.invoiced_at = now
    _transition(note, InvoiceStatus.ISSUED, by=by, reason=reason.strip())
    original.credited_amount += note.total
    _settle_if_balanced(original, by=by, at=now, reason=f"Credited by {note.number}")
    return note


@transaction.atomic
def invoice_issue_many(*, invoices: Sequence[Invoice], by=None) -> tuple[list[Invoice], list[str]]:
    """Issue several drafts; each one that a rule refuses is reported, the others are issued."""
    issued, refused = [], []
    for invoice in sorted(invoices, key=lambda i: i.pk):
        try:
            with transaction.atomic():
                issued.append(invoice_issue(invoice=invoice, by=by))
        except DomainError as exc:
            refused.append(exc.message)
    return issued, refused
