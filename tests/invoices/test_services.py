"""The invoice services as a specification: drafting, issuing and numbering, payments, voids, credit notes."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from django.utils import timezone

from invoices import services as svc
from invoices.models import Invoice, InvoiceKind, InvoiceLine, InvoiceStatus, InvoiceStatusEvent, Payment
from oms.errors import DomainError, IllegalTransition
from orders import services as order_services
from orders.models import CustomerStatus, OrderStatus
from tests.factories import CustomerFactory, line, make_confirmed_order, make_order

D = Decimal
I = InvoiceStatus  # noqa: E741
pytestmark = pytest.mark.django_db


def this_year() -> int:
    return timezone.localtime().year


def manual_invoice(*, prices=("100.00",), tax="10.00", discount="0.00", customer=None, by=None, **kwargs) -> Invoice:
    """A draft manual invoice: one line per price, quantity 1 (by default 100.00 + 10.00 tax = 110.00)."""
    lines = [svc.InvoiceLineInput(description=f"Service {n}", quantity=D(1), unit_price=D(price))
             for n, price in enumerate(prices, start=1)]
    return svc.invoice_create_manual(customer=customer or CustomerFactory(), lines=lines, tax=D(tax),
                                     discount=D(discount), by=by, **kwargs)


def issued_invoice(*, by=None, **kwargs) -> Invoice:
    return svc.invoice_issue(invoice=manual_invoice(by=by, **kwargs), by=by)


def snapshot(invoice: Invoice) -> tuple:
    """What a refused action must leave exactly as it was (the invoice, its children, and every invoice)."""
    invoice = Invoice.objects.get(pk=invoice.pk)
    lines = tuple(invoice.lines.values_list("line_number", "description", "quantity", "unit_price", "amount"))
    return (invoice.status, invoice.number, invoice.sequence_number, invoice.net, invoice.tax, invoice.total,
            invoice.discount, invoice.paid_amount, invoice.paid_at, invoice.credited_amount, invoice.void_reason,
            invoice.due_at, lines, invoice.status_events.count(), invoice.payments.count(),
            Invoice.objects.count())


def legacy_invoice(*, number="2009/00123", status=I.ISSUED, total="100.00", lines_total=None) -> Invoice:
    """An invoice as the migration writes it: legacy number kept, amounts carried as they were."""
    invoice = Invoice.objects.create(
        number=number, legacy_id=number, status=status, customer=CustomerFactory(), net=D(total),
        total=D(total), invoiced_at=dt.datetime(2009, 3, 2, 15, tzinfo=dt.UTC),
        due_at=dt.datetime(2009, 4, 1, 15, tzinfo=dt.UTC),
    )
    amount = D(lines_total or total)
    InvoiceLine.objects.create(invoice=invoice, line_number=1, description="Consulting, March 2009",
                               quantity=D(1), unit_price=amount, amount=amount)
    return invoice


# ---------------------------------------------------------------------------------------------
# Invoicing an order
# ---------------------------------------------------------------------------------------------
def test_drafts_the_invoice_of_a_confirmed_order_with_its_lines_freight_discount_and_tax(bill):
    order = make_confirmed_order(
        lines=[line("SKU-1", "2", "10.00"), line("SKU-2", "3", "3.3333", "10", description="Gadget")],
        discount=D("1.00"), tax=D("2.50"), freight=D("7.25"),
    )
    invoice = svc.invoice_create_for_order(order=order, by=bill)
    invoice.refresh_from_db()
    assert (invoice.status, invoice.number, invoice.kind) == (I.DRAFT, None, InvoiceKind.INVOICE)
    assert (invoice.order, invoice.customer, invoice.currency) == (order, order.customer, order.currency)
    assert list(invoice.lines.values_list("line_number", "sku", "description", "quantity", "unit_price",
                                          "amount")) == [
        (1, "SKU-1", "Widget", D("2.000"), D("10.0000"), D("20.00")),
        # 9.00 (8.99991) billed as 3 at the net unit price, to the cent of the order line
        (2, "SKU-2", "Gadget", D("3.000"), D("3.0000"), D("9.00")),
        (3, "", "Freight", D("1.000"), D("7.2500"), D("7.25")),
    ]
    assert (invoice.discount, invoice.net, invoice.tax, invoice.total) == (
        D("1.00"), D("35.25"), D("2.50"), D("37.75"))
    assert invoice.total == order.total
    event = invoice.status_events.get()
    assert (event.from_status, event.to_status, event.by) == ("", I.DRAFT, bill)
    assert event.reason == f"Drafted from order {order.number}"


_AFTER_CONFIRMING = {
    OrderStatus.CONFIRMED: [],
    OrderStatus.PROCESSING: [order_services.order_start_processing],
    OrderStatus.SHIPPED: [order_services.order_start_processing, order_services.order_ship],
    OrderStatus.DELIVERED: [order_services.order_start_processing, order_services.order_ship,
                            order_services.order_deliver],
}


@pytest.mark.parametrize("status", list(_AFTER_CONFIRMING))
def test_invoices_an_order_once_it_is_confirmed_or_later(status, bill):
    order = make_confirmed_order()
    for action in _AFTER_CONFIRMING[status]:
        order = action(order=order)
    assert order.status == status
    assert svc.invoice_create_for_order(order=order, by=bill).order == order


@pytest.mark.parametrize("status", [OrderStatus.PENDING, OrderStatus.ON_HOLD, OrderStatus.CANCELLED])
def test_refuses_to_invoice_an_order_that_is_not_confirmed(status, bill):
    order = make_order()
    if status == OrderStatus.ON_HOLD:
        order = order_services.order_hold(order=order, reason="Checking stock")
    elif status == OrderStatus.CANCELLED:
        order = order_services.order_cancel(order=order, reason="Withdrawn")
    with pytest.raises(DomainError) as refused:
        svc.invoice_create_for_order(order=order, by=bill)
    assert refused.value.message == (
        f"Order {order.number} is {OrderStatus(status).label}; only confirmed orders (or later) can be invoiced.")
    assert not Invoice.objects.exists()


@pytest.mark.parametrize("issue", [False, True], ids=["draft", "issued"])
def test_refuses_to_invoice_an_order_twice(issue, bill):
    order = make_confirmed_order()
    first = svc.invoice_create_for_order(order=order, by=bill)
    if issue:
        first = svc.invoice_issue(invoice=first, by=bill)
    with pytest.raises(DomainError) as refused:
        svc.invoice_create_for_order(order=order, by=bill)
    assert refused.value.message == f"Order {order.number} is already invoiced on {first}; void it to invoice again."
    assert Invoice.objects.count() == 1


@pytest.mark.parametrize("issue", [False, True], ids=["draft voided", "issued voided"])
def test_invoices_an_order_again_once_its_invoice_is_voided(issue, bill):
    order = make_confirmed_order()
    first = svc.invoice_create_for_order(order=order, by=bill)
    if issue:
        first = svc.invoice_issue(invoice=first, by=bill)
    svc.invoice_void(invoice=first, by=bill, reason="Wrong billing address")
    second = svc.invoice_create_for_order(order=order, by=bill)
    assert second.pk != first.pk
    assert list(Invoice.objects.live_for_order(order)) == [second]


# ---------------------------------------------------------------------------------------------
# Manual invoices and drafts
# ---------------------------------------------------------------------------------------------
def test_drafts_a_manual_invoice_without_an_order(bill):
    invoice = manual_invoice(prices=("60.00", "40.005"), tax="9.99", discount="5.00", by=bill, notes="Setup fee")
    invoice.refresh_from_db()
    assert (invoice.order, invoice.status, invoice.number) == (None, I.DRAFT, None)
    assert list(invoice.lines.values_list("amount", flat=True)) == [D("60.00"), D("40.01")]
    assert (invoice.net, invoice.tax, invoice.total) == (D("95.01"), D("9.99"), D("105.00"))
    assert invoice.status_events.get().reason == "Manual invoice drafted"
    assert str(invoice) == f"Draft invoice #{invoice.pk}"


def test_refuses_a_manual_invoice_without_lines():
    with pytest.raises(DomainError, match="needs at least one line"):
        svc.invoice_create_manual(customer=CustomerFactory(), lines=[])
    assert not Invoice.objects.exists()


def test_refuses_a_manual_invoice_for_an_inactive_customer():
    with pytest.raises(DomainError, match="is inactive and cannot be invoiced"):
        manual_invoice(customer=CustomerFactory(status=CustomerStatus.INACTIVE))
    assert not Invoice.objects.exists()


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"tax": "-0.01"}, "Tax cannot be negative."),
        ({"discount": "-0.01"}, "Discount cannot be negative."),
        ({"discount": "100.01"}, "The discount (100.01) is larger than the lines (100.00)."),
        ({"prices": ("-1.00",)}, "Line 1: quantity and unit price cannot be negative."),
        ({"prices": ("1.00001",)}, "Line 1: unit price has more than 4 decimal places."),
    ],
)
def test_refuses_a_manual_invoice_that_breaks_a_rule_and_keeps_nothing(kwargs, message):
    with pytest.raises(DomainError) as refused:
        manual_invoice(**kwargs)
    assert refused.value.message == message
    assert not Invoice.objects.exists()


def test_editing_a_draft_recomputes_its_totals(bill):
    invoice = manual_invoice()
    svc.invoice_update_draft(invoice=invoice, by=bill, tax=D("0.50"), notes="Corrected", lines=[
        svc.InvoiceLineInput(description="Hours", quantity=D("2.5"), unit_price=D("80.00"))])
    invoice.refresh_from_db()
    assert list(invoice.lines.values_list("description", "amount")) == [("Hours", D("200.00"))]
    assert (invoice.net, invoice.tax, invoice.total, invoice.notes) == (D("200.00"), D("0.50"), D("200.50"),
                                                                         "Corrected")


def test_refuses_to_move_an_orders_draft_to_another_customer(bill):
    invoice = svc.invoice_create_for_order(order=make_confirmed_order(), by=bill)
    before = snapshot(invoice)
    with pytest.raises(DomainError, match="An order's invoice bills the order's customer."):
        svc.invoice_update_draft(invoice=invoice, by=bill, customer=CustomerFactory())
    assert snapshot(invoice) == before


@pytest.mark.parametrize("status", [I.ISSUED, I.PAID, I.VOID])
def test_refuses_to_edit_an_invoice_that_is_no_longer_a_draft(status, bill):
    invoice = invoice_in(status, by=bill)
    before = snapshot(invoice)
    with pytest.raises(DomainError) as refused:
        svc.invoice_update_draft(invoice=invoice, by=bill, tax=D("0.00"), lines=[])
    assert refused.value.message == (
        f"{invoice} is {I(status).label}; an issued invoice is never edited. Raise a credit note or void it instead.")
    assert snapshot(invoice) == before


# ---------------------------------------------------------------------------------------------
# Issuing and numbering
# ---------------------------------------------------------------------------------------------
def test_a_draft_has_no_number_until_it_is_issued(bill):
    invoice = manual_invoice()
    assert (invoice.number, invoice.series, invoice.fiscal_year, invoice.sequence_number) == (None, "", None, None)
    at = timezone.now()
    issued = svc.invoice_issue(invoice=invoice, by=bill, at=at)
    issued.refresh_from_db()
    year = timezone.localtime(at).year
    assert (issued.number, issued.series, issued.fiscal_year, issued.sequence_number) == (
        f"INV-{year}-000001", "INV", year, 1)
    assert issued.status == I.ISSUED
    assert issued.invoiced_at == at
    assert issued.due_at == at + dt.timedelta(days=30)
    event = issued.status_events.last()
    assert (event.from_status, event.to_status, event.by, event.reason) == (
        I.DRAFT, I.ISSUED, bill, f"Issued as INV-{year}-000001")


def test_numbers_invoices_one_after_another(bill):
    numbers = [issued_invoice(by=bill).number for _ in range(3)]
    assert numbers == [f"INV-{this_year()}-{n:06d}" for n in (1, 2, 3)]


def test_numbers_each_year_from_one_in_the_year_of_the_desks_clock():
    at_new_year_utc = dt.datetime(2031, 1, 1, 3, 0, tzinfo=dt.UTC)  # still 31 December 2030 in New York
    late = svc.invoice_issue(invoice=manual_invoice(), at=at_new_year_utc)
    early = svc.invoice_issue(invoice=manual_invoice(), at=dt.datetime(2031, 1, 1, 6, 0, tzinfo=dt.UTC))
    assert (late.number, early.number) == ("INV-2030-000001", "INV-2031-000001")


def test_due_date_follows_the_payment_terms(settings):
    settings.INVOICE_PAYMENT_TERMS_DAYS = 14
    at = dt.datetime(2030, 2, 20, 15, tzinfo=dt.UTC)
    assert svc.invoice_issue(invoice=manual_invoice(), at=at).due_at == dt.datetime(2030, 3, 6, 15, tzinfo=dt.UTC)


def test_a_due_date_given_on_the_draft_is_kept():
    due = dt.datetime(2030, 12, 24, 17, tzinfo=dt.UTC)
    invoice = svc.invoice_issue(invoice=manual_invoice(due_at=due))
    assert invoice.due_at == due


def test_refuses_to_issue_a_draft_without_lines_and_does_not_use_up_a_number():
    empty = manual_invoice()
    svc.invoice_update_draft(invoice=empty, lines=[], tax=D("0"))
    before = snapshot(empty)
    with pytest.raises(DomainError, match="has no lines; there is nothing to issue"):
        svc.invoice_issue(invoice=empty)
    assert snapshot(empty) == before
    assert issued_invoice().number == f"INV-{this_year()}-000001"


def test_a_voided_number_stays_used(bill):
    first = issued_invoice()
    svc.invoice_void(invoice=first, by=bill, reason="Duplicate")
    first.refresh_from_db()
    assert first.number == f"INV-{this_year()}-000001"
    assert issued_invoice().number == f"INV-{this_year()}-000002"


def test_issues_several_drafts_and_reports_each_one_refused(bill):
    good = [manual_invoice(), manual_invoice()]
    empty = manual_invoice()
    svc.invoice_update_draft(invoice=empty, lines=[], tax=D("0"))
    already = issued_invoice()
    issued, refused = svc.invoice_issue_many(invoices=[*good, empty, already], by=bill)
    assert [i.pk for i in issued] == [i.pk for i in good]
    assert [i.number for i in issued] == [f"INV-{this_year()}-{n:06d}" for n in (2, 3)]
    assert refused == [f"Draft invoice #{empty.pk} has no lines; there is nothing to issue.",
                       f"{already} is Issued; it cannot become Issued. Allowed next: Fully credited, Paid, Void."]
    assert Invoice.objects.get(pk=empty.pk).status == I.DRAFT


# ---------------------------------------------------------------------------------------------
# Payments
# ---------------------------------------------------------------------------------------------
def test_a_partial_payment_leaves_the_invoice_issued_and_the_rest_due(bill):
    invoice = issued_invoice()
    payment = svc.invoice_record_payment(invoice=invoice, amount=D("40.00"), by=bill, reference=" CHQ 1001 ")
    invoice.refresh_from_db()
    assert (invoice.status, invoice.paid_amount, invoice.balance_due, invoice.paid_at) == (
        I.ISSUED, D("40.00"), D("70.00"), None)
    assert (payment.amount, payment.reference, payment.recorded_by) == (D("40.00"), "CHQ 1001", bill)
    assert invoice.status_events.last().to_status == I.ISSUED  # a part payment is not a status change


def test_paying_the_rest_marks_the_invoice_paid_on_the_day_the_last_payment_arrived(bill):
    invoice = issued_invoice()
    svc.invoice_record_payment(invoice=invoice, amount=D("40.00"), by=bill)
    last_received = dt.datetime(2030, 6, 30, 14, tzinfo=dt.UTC)
    svc.invoice_record_payment(invoice=invoice, amount=D("70.00"), by=bill, received_at=last_received,
                               reference="WIRE 77")
    invoice.refresh_from_db()
    assert (invoice.status, invoice.paid_amount, invoice.balance_due, invoice.paid_at) == (
        I.PAID, D("110.00"), D("0.00"), last_received)
    assert list(invoice.payments.values_list("amount", flat=True)) == [D("40.00"), D("70.00")]
    event = invoice.status_events.last()
    assert (event.from_status, event.to_status, event.by, event.reason) == (
        I.ISSUED, I.PAID, bill, "Paid in full (WIRE 77 70.00)")


@pytest.mark.parametrize(
    ("amount", "message"),
    [
        ("110.01", "has 110.00 USD left to pay; a payment of 110.01 would overpay it."),
        ("0", "A payment must be more than 0."),
        ("-5.00", "A payment must be more than 0."),
        ("10.005", "A payment is in cents; 10.005 has more than 2 decimal places."),
    ],
)
def test_refuses_a_payment_that_would_overpay_or_is_not_a_positive_amount_in_cents(amount, message, bill):
    invoice = issued_invoice()
    before = snapshot(invoice)
    with pytest.raises(DomainError) as refused:
        svc.invoice_record_payment(invoice=invoice, amount=D(amount), by=bill)
    assert refused.value.message.endswith(message)
    assert refused.value.field == "amount"
    assert snapshot(invoice) == before


def test_refuses_to_overpay_what_is_left_after_a_part_payment(bill):
    invoice = issued_invoice()
    svc.invoice_record_payment(invoice=invoice, amount=D("100.00"), by=bill)
    with pytest.raises(DomainError, match="has 10.00 USD left to pay; a payment of 10.01 would overpay it"):
        svc.invoice_record_payment(invoice=invoice, amount=D("10.01"), by=bill)


@pytest.mark.parametrize("status", [I.DRAFT, I.VOID, I.PAID, I.CREDITED])
def test_refuses_a_payment_on_an_invoice_that_is_not_issued(status, bill):
    invoice = invoice_in(status, by=bill)
    before = snapshot(invoice)
    with pytest.raises(DomainError) as refused:
        svc.invoice_record_payment(invoice=invoice, amount=D("1.00"), by=bill)
    assert refused.value.message == (
        f"{invoice} is {I(status).label.lower()}; payments are recorded against issued invoices only.")
    assert snapshot(invoice) == before


def test_refuses_a_payment_on_a_credit_note(bill):
    note = svc.credit_note_create(invoice=issued_invoice(), reason="Returned", amount=D("10.00"), by=bill)
    with pytest.raises(DomainError, match="payments are recorded against issued invoices only"):
        svc.invoice_record_payment(invoice=note, amount=D("1.00"), by=bill)
    assert not note.payments.exists()


# ---------------------------------------------------------------------------------------------
# Voids
# ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("issue", [False, True], ids=["draft", "issued"])
def test_voids_an_unpaid_invoice_with_a_reason(issue, bill):
    invoice = manual_invoice()
    if issue:
        invoice = svc.invoice_issue(invoice=invoice)
    number = invoice.number
    svc.invoice_void(invoice=invoice, by=bill, reason="  Sent to the wrong customer ")
    invoice.refresh_from_db()
    assert (invoice.status, invoice.void_reason, invoice.number) == (I.VOID, "Sent to the wrong customer", number)
    event = invoice.status_events.last()
    assert (event.from_status, event.to_status, event.by, event.reason) == (
        I.ISSUED if issue else I.DRAFT, I.VOID, bill, "Sent to the wrong customer")


@pytest.mark.parametrize("reason", ["", "  ", None])
def test_refuses_to_void_without_a_reason(reason, bill):
    invoice = issued_invoice()
    before = snapshot(invoice)
    with pytest.raises(DomainError, match="Say why the invoice is voided.") as refused:
        svc.invoice_void(invoice=invoice, by=bill, reason=reason)
    assert refused.value.field == "reason"
    assert snapshot(invoice) == before


def test_refuses_to_void_an_invoice_with_payments(bill):
    invoice = issued_invoice()
    svc.invoice_record_payment(invoice=invoice, amount=D("10.00"), by=bill)
    before = snapshot(invoice)
    with pytest.raises(DomainError) as refused:
        svc.invoice_void(invoice=invoice, by=bill, reason="Customer disputes it")
    assert refused.value.message == (
        f"{invoice} has payments of 10.00; refund them or raise a credit note instead of voiding it.")
    assert snapshot(invoice) == before


def test_refuses_to_void_a_partly_credited_invoice(bill):
    invoice = issued_invoice()
    svc.credit_note_create(invoice=invoice, reason="Damaged item", amount=D("11.00"), by=bill)
    before = snapshot(invoice)
    with pytest.raises(DomainError, match="is partly credited; raise a credit note for the rest"):
        svc.invoice_void(invoice=invoice, by=bill, reason="Start over")
    assert snapshot(invoice) == before


def test_refuses_to_void_a_credit_note(bill):
    # The invoice it reverses would still count it as credited; a wrong credit note is answered by a new invoice.
    invoice = issued_invoice()
    note = svc.credit_note_create(invoice=invoice, reason="Damaged item", amount=D("11.00"), by=bill)
    before, original_before = snapshot(note), snapshot(invoice)
    with pytest.raises(DomainError, match=f"{note} is a credit note; it cannot be voided"):
        svc.invoice_void(invoice=note, by=bill, reason="Raised by mistake")
    assert (snapshot(note), snapshot(invoice)) == (before, original_before)


# ---------------------------------------------------------------------------------------------
# Credit notes
# ---------------------------------------------------------------------------------------------
def test_a_full_credit_note_repeats_the_invoice_and_leaves_it_fully_credited(bill):
    order = make_confirmed_order(tax=D("2.55"), freight=D("5.00"), discount=D("0.50"))
    invoice = svc.invoice_issue(invoice=svc.invoice_create_for_order(order=order, by=bill), by=bill)
    note = svc.credit_note_create(invoice=invoice, reason="  Goods returned  ", by=bill)
    note.refresh_from_db()
    invoice.refresh_from_db()
    assert (note.kind, note.status, note.credited_invoice, note.order, note.customer) == (
        InvoiceKind.CREDIT_NOTE, I.ISSUED, invoice, order, invoice.customer)
    assert note.number == f"CN-{this_year()}-000001"
    assert (note.series, note.sequence_number, note.reason) == ("CN", 1, "Goods returned")
    line_fields = ("line_number", "sku", "description", "quantity", "unit_price", "amount")
    assert list(note.lines.values_list(*line_fields)) == list(invoice.lines.values_list(*line_fields))
    assert (note.discount, note.net, note.tax, note.total) == (invoice.discount, invoice.net, invoice.tax,
                                                               invoice.total)
    assert (invoice.status, invoice.credited_amount, invoice.creditable_amount, invoice.balance_due) == (
        I.CREDITED, invoice.total, D("0.00"), D("0.00"))
    assert list(note.status_events.values_list("from_status", "to_status")) == [("", I.DRAFT), (I.DRAFT, I.ISSUED)]
    event = invoice.status_events.last()
    assert (event.from_status, event.to_status, event.by, event.reason) == (
        I.ISSUED, I.CREDITED, bill, f"Credited by {note.number}")


def test_a_partial_credit_note_splits_tax_in_the_invoices_proportion(bill):
    invoice = issued_invoice(prices=("100.00",), tax="10.00")
    note = svc.credit_note_create(invoice=invoice, reason="Late delivery discount", amount=D("55.00"), by=bill)
    invoice.refresh_from_db()
    assert (note.net, note.tax, note.total) == (D("50.00"), D("5.00"), D("55.00"))
    assert list(note.lines.values_list("description", "quantity", "amount")) == [
        (f"Credit on {invoice.number}: Late delivery discount", D("1.000"), D("50.00"))]
    assert (invoice.status, invoice.credited_amount, invoice.balance_due, invoice.creditable_amount) == (
        I.ISSUED, D("55.00"), D("55.00"), D("55.00"))


def test_tax_split_of_a_partial_credit_rounds_half_up():
    invoice = issued_invoice(prices=("30.00",), tax="3.33")  # total 33.33
    note = svc.credit_note_create(invoice=invoice, reason="Goodwill", amount=D("16.67"))
    # 16.67 × 3.33 / 33.33 = 1.66549… → 1.67 (the digits after the cent are above one half)
    assert (note.net, note.tax, note.total) == (D("15.00"), D("1.67"), D("16.67"))


def test_crediting_the_rest_after_a_partial_credit_leaves_the_invoice_fully_credited():
    invoice = issued_invoice()
    svc.credit_note_create(invoice=invoice, reason="First part", amount=D("10.00"))
    rest = svc.credit_note_create(invoice=invoice, reason="The rest")  # no amount: everything still creditable
    invoice.refresh_from_db()
    assert rest.total == D("100.00")
    assert rest.number == f"CN-{this_year()}-000002"
    assert (invoice.status, invoice.credited_amount, invoice.balance_due) == (I.CREDITED, D("110.00"), D("0.00"))


@pytest.mark.parametrize("amount", ["110.01", "0", "-1.00", "1.001"])
def test_refuses_a_credit_that_is_too_much_or_not_a_positive_amount_in_cents(amount, bill):
    invoice = issued_invoice()
    before = snapshot(invoice)
    with pytest.raises(DomainError) as refused:
        svc.credit_note_create(invoice=invoice, reason="Goodwill", amount=D(amount), by=bill)
    assert refused.value.field == "amount"
    assert snapshot(invoice) == before


def test_refuses_to_credit_more_than_what_earlier_credit_notes_left(bill):
    invoice = issued_invoice()
    svc.credit_note_create(invoice=invoice, reason="First", amount=D("100.00"), by=bill)
    with pytest.raises(DomainError, match=r"can be credited by 10.00 at most; 10.01 is too much"):
        svc.credit_note_create(invoice=invoice, reason="Second", amount=D("10.01"), by=bill)


def test_credits_a_paid_invoice_which_stays_paid(bill):
    invoice = issued_invoice()
    svc.invoice_record_payment(invoice=invoice, amount=D("110.00"), by=bill)
    events_before = invoice.status_events.count()
    note = svc.credit_note_create(invoice=invoice, reason="Refund for a damaged item", amount=D("22.00"), by=bill)
    invoice.refresh_from_db()
    assert note.status == I.ISSUED
    assert (invoice.status, invoice.paid_amount, invoice.credited_amount) == (I.PAID, D("110.00"), D("22.00"))
    assert invoice.balance_due == D("-22.00")  # owed back to the customer
    assert invoice.status_events.count() == events_before


def test_credit_notes_are_numbered_apart_from_invoices():
    first = issued_invoice()
    second = issued_invoice()
    note = svc.credit_note_create(invoice=first, reason="Goodwill", amount=D("1.00"))
    third = issued_invoice()
    year = this_year()
    assert [first.number, second.number, third.number] == [f"INV-{year}-{n:06d}" for n in (1, 2, 3)]
    assert note.number == f"CN-{year}-000001"


@pytest.mark.parametrize("reason", ["", "   ", None])
def test_refuses_a_credit_note_without_a_reason(reason, bill):
    invoice = issued_invoice()
    before = snapshot(invoice)
    with pytest.raises(DomainError, match="Say why the invoice is credited."):
        svc.credit_note_create(invoice=invoice, reason=reason, by=bill)
    assert snapshot(invoice) == before


def test_refuses_to_credit_a_credit_note(bill):
    note = svc.credit_note_create(invoice=issued_invoice(), reason="Goodwill", amount=D("5.00"), by=bill)
    with pytest.raises(DomainError, match=f"{note} is a credit note; credit the invoice itself."):
        svc.credit_note_create(invoice=note, reason="Again", by=bill)
    assert not note.credit_notes.exists()


# ---------------------------------------------------------------------------------------------
# Migrated invoices keep their legacy numbers
# ---------------------------------------------------------------------------------------------
def test_a_migrated_invoice_keeps_its_legacy_number_when_paid(bill):
    invoice = legacy_invoice()
    svc.invoice_record_payment(invoice=invoice, amount=D("40.00"), by=bill)
    svc.invoice_record_payment(invoice=invoice, amount=D("60.00"), by=bill)
    invoice.refresh_from_db()
    assert (invoice.status, invoice.number, invoice.legacy_id) == (I.PAID, "2009/00123", "2009/00123")
    assert (invoice.series, invoice.fiscal_year, invoice.sequence_number) == ("", None, None)
    assert issued_invoice().number == f"INV-{this_year()}-000001"  # the legacy number uses up nothing


def test_a_migrated_invoice_keeps_its_legacy_number_when_credited_or_voided(bill):
    credited = legacy_invoice(number="INV-0004567")
    note = svc.credit_note_create(invoice=credited, reason="Migrated dispute", amount=D("25.00"), by=bill)
    voided = legacy_invoice(number="I04567")
    svc.invoice_void(invoice=voided, by=bill, reason="Cancelled in 2009")
    credited.refresh_from_db()
    voided.refresh_from_db()
    assert (credited.number, credited.status, credited.credited_amount) == ("INV-0004567", I.ISSUED, D("25.00"))
    assert note.number == f"CN-{this_year()}-000001"
    assert note.lines.get().description == "Credit on INV-0004567: Migrated dispute"
    assert (voided.number, voided.status) == ("I04567", I.VOID)


def test_issuing_a_migrated_draft_keeps_its_legacy_number():
    draft = legacy_invoice(number="2010/00007", status=I.DRAFT)
    issued = svc.invoice_issue(invoice=draft)
    assert (issued.number, issued.status, issued.sequence_number) == ("2010/00007", I.ISSUED, None)


def test_a_full_credit_of_a_migrated_invoice_credits_its_legacy_total_even_when_its_lines_disagree():
    # The legacy total is the financial truth (contract rule 5); its lines add up to 0.50 more.
    invoice = legacy_invoice(total="100.00", lines_total="100.50")
    note = svc.credit_note_create(invoice=invoice, reason="Written off")
    invoice.refresh_from_db()
    assert note.total == D("100.00")
    assert (invoice.status, invoice.credited_amount, invoice.balance_due) == (I.CREDITED, D("100.00"), D("0.00"))


# ---------------------------------------------------------------------------------------------
# The life cycle: every move a service can be asked to make
# ---------------------------------------------------------------------------------------------
def invoice_in(status: str, *, by) -> Invoice:
    """A 110.00 manual invoice brought to `status` through the services."""
    invoice = manual_invoice(by=by)
    if status in (I.ISSUED, I.PAID, I.CREDITED):
        invoice = svc.invoice_issue(invoice=invoice, by=by)
    if status == I.PAID:
        svc.invoice_record_payment(invoice=invoice, amount=invoice.total, by=by)
    elif status == I.CREDITED:
        svc.credit_note_create(invoice=invoice, reason="Credited for the test", by=by)
    elif status == I.VOID:
        svc.invoice_void(invoice=invoice, reason="Voided for the test", by=by)
    invoice.refresh_from_db()
    assert invoice.status == status
    return invoice


def ask_for(invoice: Invoice, target: str, *, by) -> None:
    """Call the service that moves an invoice to `target` (nothing moves an invoice back to draft)."""
    if target == I.ISSUED:
        svc.invoice_issue(invoice=invoice, by=by)
    elif target == I.PAID:
        svc.invoice_record_payment(invoice=invoice, amount=invoice.total, by=by)
    elif target == I.CREDITED:
        svc.credit_note_create(invoice=invoice, reason="Full credit", by=by)
    else:
        svc.invoice_void(invoice=invoice, reason="Void it", by=by)


INVOICE_ALLOWED = {
    I.DRAFT: {I.ISSUED, I.VOID},
    I.ISSUED: {I.PAID, I.CREDITED, I.VOID},
    I.PAID: set(),
    I.CREDITED: set(),
    I.VOID: set(),
}
INVOICE_PAIRS = [
    pytest.param(current, target, id=f"{current}->{target}")
    for current in INVOICE_ALLOWED
    for target in (I.ISSUED, I.PAID, I.CREDITED, I.VOID)
    # Crediting a paid invoice is allowed but is not a move: test_credits_a_paid_invoice_which_stays_paid.
    if (current, target) != (I.PAID, I.CREDITED)
]


@pytest.mark.parametrize(("current", "target"), INVOICE_PAIRS)
def test_every_move_of_the_invoice_life_cycle(current, target, bill):
    invoice = invoice_in(current, by=bill)
    events_before = invoice.status_events.count()
    started = timezone.now()
    if target in INVOICE_ALLOWED[current]:
        ask_for(invoice, target, by=bill)
        invoice.refresh_from_db()
        assert invoice.status == target
        assert invoice.status_events.count() == events_before + 1
        event = invoice.status_events.last()
        assert (event.from_status, event.to_status, event.by) == (current, target, bill)
        assert event.reason
        assert started <= event.at <= timezone.now()
    else:
        before = snapshot(invoice)
        with pytest.raises(DomainError) as refused:
            ask_for(invoice, target, by=bill)
        assert refused.value.code == "illegal_transition"
        assert str(invoice) in refused.value.message
        assert f" is {I(current).label.lower()};" in refused.value.message.lower()
        if isinstance(refused.value, IllegalTransition):
            allowed = ", ".join(I(s).label for s in sorted(INVOICE_ALLOWED[current])) or "none (final status)"
            assert refused.value.message.endswith(f"Allowed next: {allowed}.")
        assert snapshot(invoice) == before


def test_the_status_history_of_an_invoice_says_who_when_from_what_to_what_and_why(bill, alice):
    invoice = manual_invoice(by=bill)
    svc.invoice_issue(invoice=invoice, by=bill)
    svc.invoice_void(invoice=invoice, by=alice, reason="Customer went bankrupt")
    rows = list(InvoiceStatusEvent.objects.filter(invoice=invoice).values_list(
        "by__username", "from_status", "to_status", "reason"))
    number = Invoice.objects.get(pk=invoice.pk).number
    assert rows == [
        ("bill", "", "draft", "Manual invoice drafted"),
        ("bill", "draft", "issued", f"Issued as {number}"),
        ("alice", "issued", "void", "Customer went bankrupt"),
    ]
    assert not Payment.objects.exists()


def test_an_order_whose_invoice_was_fully_credited_can_be_invoiced_again_or_cancelled(bill):
    order = make_confirmed_order()
    first = svc.invoice_issue(invoice=svc.invoice_create_for_order(order=order, by=bill), by=bill)
    svc.credit_note_create(invoice=first, reason="Billed the wrong prices", by=bill)
    assert Invoice.objects.get(pk=first.pk).status == I.CREDITED
    again = svc.invoice_create_for_order(order=order, by=bill)
    assert again.pk != first.pk and again.total == first.total
    svc.invoice_void(invoice=again, reason="Customer cancelled after all", by=bill)
    cancelled = order_services.order_cancel(order=order, by=bill, reason="Customer cancelled")
    assert cancelled.status == OrderStatus.CANCELLED
