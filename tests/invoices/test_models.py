"""Invoices, lines and payments as stored: what the database itself refuses, and the named querysets.

The services never write a bad row; these tests go around them (QuerySet.update, bulk_create) to
prove the database guards what must never be false even when some other code path forgets.
"""

import datetime as dt
from contextlib import contextmanager
from decimal import Decimal

import pytest
from django.db import IntegrityError, transaction
from django.db.models import F, ProtectedError
from django.utils import timezone

from invoices import services as svc
from invoices.models import Invoice, InvoiceKind, InvoiceLine, InvoiceStatus, Payment
from tests.factories import CustomerFactory, make_confirmed_order

D = Decimal
I = InvoiceStatus  # noqa: E741
pytestmark = pytest.mark.django_db


@contextmanager
def refused_by_database(constraint: str):
    """The statement fails on the named constraint; the savepoint keeps the test's transaction usable."""
    with pytest.raises(IntegrityError, match=constraint), transaction.atomic():
        yield


def draft(*, price="100.00", tax="10.00", **kwargs) -> Invoice:
    line = svc.InvoiceLineInput(description="Service", quantity=D(1), unit_price=D(price))
    return svc.invoice_create_manual(customer=kwargs.pop("customer", None) or CustomerFactory(), lines=[line],
                                     tax=D(tax), **kwargs)


def issued(**kwargs) -> Invoice:
    return svc.invoice_issue(invoice=draft(**kwargs))


# ---------------------------------------------------------------------------------------------
# What the database refuses
# ---------------------------------------------------------------------------------------------
def test_database_refuses_an_unknown_invoice_status():
    invoice = issued()  # numbered, so that only the status is wrong
    with refused_by_database("invoice_status_valid"):
        Invoice.objects.filter(pk=invoice.pk).update(status="archived")


def test_database_refuses_an_unknown_kind_of_invoice():
    invoice = draft()
    # Either rule catches it: an unknown kind is neither an invoice nor a credit note pointing at one.
    with refused_by_database("invoice_kind_valid|invoice_credit_note_points_at_invoice"):
        Invoice.objects.filter(pk=invoice.pk).update(kind="proforma")


def test_database_refuses_an_unknown_invoice_currency():
    invoice = draft()
    with refused_by_database("invoice_currency_known"):
        Invoice.objects.filter(pk=invoice.pk).update(currency="XXX")


@pytest.mark.parametrize("field", ["discount", "paid_amount", "credited_amount"])
def test_database_refuses_a_negative_invoice_amount(field):
    invoice = draft()
    with refused_by_database("invoice_amounts_gte_0"):
        Invoice.objects.filter(pk=invoice.pk).update(**{field: D("-0.01")})


def test_database_refuses_negative_tax_even_when_the_total_still_adds_up():
    invoice = draft()
    with refused_by_database("invoice_amounts_gte_0"):
        Invoice.objects.filter(pk=invoice.pk).update(tax=D("-1.00"), total=F("net") - D("1.00"))


@pytest.mark.parametrize("status", [I.ISSUED, I.PAID, I.CREDITED])
def test_database_refuses_an_issued_invoice_without_a_number(status):
    invoice = draft()
    with refused_by_database("invoice_issued_has_number"):
        Invoice.objects.filter(pk=invoice.pk).update(status=status)


def test_database_allows_a_voided_draft_without_a_number():
    invoice = draft()
    Invoice.objects.filter(pk=invoice.pk).update(status=I.VOID)
    assert Invoice.objects.get(pk=invoice.pk).number is None


def test_database_refuses_a_credit_note_that_credits_nothing_and_an_invoice_that_credits_something():
    original, other = issued(), issued()
    with refused_by_database("invoice_credit_note_points_at_invoice"):
        Invoice.objects.filter(pk=original.pk).update(kind=InvoiceKind.CREDIT_NOTE)
    with refused_by_database("invoice_credit_note_points_at_invoice"):
        Invoice.objects.filter(pk=other.pk).update(credited_invoice=original)


def test_database_refuses_an_invoice_whose_total_does_not_add_up():
    invoice = draft()
    with refused_by_database("invoice_total_adds_up"):
        Invoice.objects.filter(pk=invoice.pk).update(total=F("total") + D("0.01"))


def test_database_keeps_a_migrated_invoices_legacy_total_even_when_it_does_not_add_up():
    invoice = draft()
    Invoice.objects.filter(pk=invoice.pk).update(legacy_id="I04567", total=F("total") + D("0.01"))
    invoice.refresh_from_db()
    assert invoice.total == invoice.net + invoice.tax + D("0.01")


def test_database_refuses_a_duplicate_invoice_number():
    first = issued()
    second = draft()
    with refused_by_database("number"):
        Invoice.objects.filter(pk=second.pk).update(number=first.number)


def test_database_refuses_the_same_sequence_number_twice_in_a_series_and_year():
    first = issued()
    second = issued()
    with refused_by_database("invoice_number_unique_per_series_year"):
        Invoice.objects.filter(pk=second.pk).update(sequence_number=first.sequence_number)


def test_database_allows_the_same_sequence_number_in_another_series_or_year():
    invoice = issued()
    note = svc.credit_note_create(invoice=invoice, reason="Goodwill", amount=D("1.00"))
    assert (invoice.sequence_number, note.sequence_number) == (1, 1)
    next_year = issued()
    Invoice.objects.filter(pk=next_year.pk).update(fiscal_year=F("fiscal_year") + 1, sequence_number=1,
                                                   number=f"INV-{invoice.fiscal_year + 1}-000001")
    assert Invoice.objects.filter(sequence_number=1).count() == 3


def test_database_refuses_a_legacy_invoice_migrated_twice():
    first, second = draft(), draft()
    Invoice.objects.filter(pk=first.pk).update(legacy_id="2009/00123")
    with refused_by_database("legacy_id"):
        Invoice.objects.filter(pk=second.pk).update(legacy_id="2009/00123")


def test_database_refuses_a_second_live_invoice_for_one_order():
    order = make_confirmed_order()
    first = svc.invoice_create_for_order(order=order)
    with refused_by_database("invoice_one_live_per_order"):
        Invoice.objects.bulk_create([Invoice(customer=order.customer, order=order)])
    svc.invoice_void(invoice=first, reason="Start over")
    Invoice.objects.bulk_create([Invoice(customer=order.customer, order=order)])  # the void one does not count
    assert Invoice.objects.live_for_order(order).count() == 1


def test_database_lets_migrated_invoices_bill_one_order_twice_as_the_legacy_system_did():
    order = make_confirmed_order()
    Invoice.objects.bulk_create([
        Invoice(customer=order.customer, order=order, legacy_id="INV-0000001"),
        Invoice(customer=order.customer, order=order, legacy_id="INV-0000002"),
    ])
    assert Invoice.objects.filter(order=order).count() == 2


def test_database_refuses_a_negative_invoice_line_quantity():
    invoice = draft()
    with refused_by_database("invoice_line_quantity_gte_0"):
        InvoiceLine.objects.filter(invoice=invoice).update(quantity=D("-1"))


def test_database_holds_a_negative_discount_line_as_legacy_invoices_have_them():
    # Legacy invoices carry "Order discount" lines at a negative price; the invoice total stays >= 0.
    invoice = draft()
    InvoiceLine.objects.create(invoice=invoice, line_number=99, description="Order discount", quantity=D(1),
                               unit_price=D("-5.0000"), amount=D("-5.00"))
    assert invoice.lines.get(line_number=99).amount == D("-5.00")


def test_database_refuses_two_invoice_lines_with_the_same_number():
    invoice = draft()
    with refused_by_database("invoice_line_number_unique"):
        InvoiceLine.objects.bulk_create([InvoiceLine(invoice=invoice, line_number=1, quantity=D(1),
                                                     unit_price=D(1), amount=D(1))])


@pytest.mark.parametrize("amount", [D("0.00"), D("-5.00")])
def test_database_refuses_a_payment_that_is_not_positive(amount):
    invoice = issued()
    with refused_by_database("payment_amount_gt_0"):
        Payment.objects.bulk_create([Payment(invoice=invoice, amount=amount)])


def test_a_paid_or_credited_invoice_and_an_invoiced_order_cannot_be_deleted():
    # Nothing in the domain deletes them; this is what stops a careless ORM call. An issued invoice
    # with neither payment nor credit note has no such guard: the admin must not offer deletion.
    paid = issued()
    svc.invoice_record_payment(invoice=paid, amount=D("1.00"))
    credited = issued()
    svc.credit_note_create(invoice=credited, reason="Goodwill", amount=D("1.00"))
    order = make_confirmed_order()
    svc.invoice_create_for_order(order=order)
    for record in (paid, credited, order):
        with pytest.raises(ProtectedError), transaction.atomic():
            record.delete()
    assert Invoice.objects.filter(pk__in=[paid.pk, credited.pk]).count() == 2


# ---------------------------------------------------------------------------------------------
# Named business states
# ---------------------------------------------------------------------------------------------
def test_invoices_credit_notes_and_drafts_are_told_apart():
    a_draft = draft()
    invoice = issued()
    note = svc.credit_note_create(invoice=invoice, reason="Goodwill", amount=D("5.00"))
    assert set(Invoice.objects.invoices()) == {a_draft, invoice}
    assert list(Invoice.objects.credit_notes()) == [note]
    assert list(Invoice.objects.drafts()) == [a_draft]


def test_outstanding_invoices_are_issued_ones_with_money_still_owed():
    unpaid = issued()
    part_paid = issued()
    svc.invoice_record_payment(invoice=part_paid, amount=D("10.00"))
    part_credited = issued()
    note = svc.credit_note_create(invoice=part_credited, reason="Goodwill", amount=D("10.00"))
    paid = issued()
    svc.invoice_record_payment(invoice=paid, amount=paid.total)
    paid_and_credited = issued()
    svc.invoice_record_payment(invoice=paid_and_credited, amount=D("100.00"))
    svc.credit_note_create(invoice=paid_and_credited, reason="The tax was wrong", amount=D("10.00"))
    credited = issued()
    svc.credit_note_create(invoice=credited, reason="Returned")
    voided = issued()
    svc.invoice_void(invoice=voided, reason="Duplicate")
    draft()
    assert set(Invoice.objects.outstanding()) == {unpaid, part_paid, part_credited}
    assert note not in Invoice.objects.outstanding()
    # 100.00 paid and 10.00 credited: nothing is owed, and it counts as paid.
    assert Invoice.objects.get(pk=paid_and_credited.pk).status == I.PAID


def test_overdue_invoices_are_outstanding_ones_past_their_due_date():
    due = dt.datetime(2020, 3, 31, 12, tzinfo=dt.UTC)
    late = issued(due_at=due)
    settled = issued(due_at=due)
    svc.invoice_record_payment(invoice=settled, amount=settled.total)
    assert list(Invoice.objects.overdue(now=due - dt.timedelta(seconds=1))) == []
    assert list(Invoice.objects.overdue(now=due + dt.timedelta(seconds=1))) == [late]
    assert list(Invoice.objects.overdue()) == [late]
    late.refresh_from_db()
    assert late.is_overdue
    assert not issued().is_overdue  # due in 30 days


def test_the_live_invoice_of_an_order_is_any_invoice_not_void():
    order = make_confirmed_order()
    first = svc.invoice_create_for_order(order=order)
    assert list(Invoice.objects.live_for_order(order)) == [first]
    svc.invoice_void(invoice=first, reason="Wrong address")
    assert list(Invoice.objects.live_for_order(order)) == []
    second = svc.invoice_issue(invoice=svc.invoice_create_for_order(order=order))
    svc.credit_note_create(invoice=second, reason="Goodwill", amount=D("1.00"))
    assert list(Invoice.objects.live_for_order(order)) == [second]  # its credit note is not an invoice


# ---------------------------------------------------------------------------------------------
# The invoice as an object
# ---------------------------------------------------------------------------------------------
def test_balance_due_and_creditable_amount_follow_payments_and_credits():
    invoice = issued()  # 110.00
    svc.invoice_record_payment(invoice=invoice, amount=D("30.00"))
    svc.credit_note_create(invoice=invoice, reason="Goodwill", amount=D("20.00"))
    invoice.refresh_from_db()
    assert (invoice.balance_due, invoice.creditable_amount) == (D("60.00"), D("90.00"))


def test_an_invoice_is_named_by_its_number_once_it_has_one():
    a_draft = draft()
    invoice = issued()
    note = svc.credit_note_create(invoice=invoice, reason="Goodwill", amount=D("1.00"))
    year = timezone.localtime().year
    assert str(a_draft) == f"Draft invoice #{a_draft.pk}"
    assert str(invoice) == f"Invoice INV-{year}-000001"
    assert str(note) == f"Credit note CN-{year}-000001"


def test_billing_may_issue_pay_void_and_credit_while_sales_and_auditors_only_read(bill, sam, audrey):
    actions = ["invoices.issue_invoice", "invoices.record_payment", "invoices.void_invoice",
               "invoices.credit_invoice"]
    assert all(bill.has_perm(p) for p in actions)
    assert not any(sam.has_perm(p) or audrey.has_perm(p) for p in actions)
    assert all(u.has_perm("invoices.view_invoice") for u in (bill, sam, audrey))
