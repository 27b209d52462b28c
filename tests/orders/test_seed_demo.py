"""`manage.py seed_demo`: the demo data `make demo` serves, built through the services.

Run small on PostgreSQL: it must show every status, never duplicate itself, and be the same
data for the same seed.
"""

from __future__ import annotations

import datetime as dt
from io import StringIO

import pytest
from django.contrib.auth.models import Group, User
from django.core.management import CommandError, call_command
from django.db.models import Count, Max, Min, Prefetch, Sum
from django.utils import timezone

from invoices.models import Invoice, InvoiceStatus, InvoiceStatusEvent, Payment
from oms.money import ZERO
from orders.demo import DEMO_PASSWORD
from orders.models import Customer, CustomerStatus, Order, OrderLine, OrderStatus, OrderStatusEvent

SMALL = {"customers": 12, "orders": 50, "seed": 7}


def seed(**options) -> str:
    out = StringIO()
    call_command("seed_demo", stdout=out, **{**SMALL, **options})
    return out.getvalue()


def fingerprint() -> dict:
    """What must not change between two runs with the same seed (dates move with today)."""
    return {
        "customers": sorted(Customer.objects.values_list("code", "name", "email", "status")),
        "orders": sorted(Order.objects.values_list("number", "customer__code", "status", "currency", "subtotal",
                                                   "discount", "tax", "freight", "total")),
        "invoices": sorted(Invoice.objects.values_list("kind", "number", "order__number", "status", "total",
                                                       "paid_amount", "credited_amount"), key=repr),
    }


@pytest.fixture
def seeded(db) -> tuple[str, dt.datetime]:
    """The command's output and the moment it started."""
    started = timezone.now()
    output = seed()
    return output, started


def test_moves_orders_into_every_status_through_the_life_cycle(seeded):
    statuses = set(Order.objects.values_list("status", flat=True))
    assert statuses == set(OrderStatus.values)
    assert Order.objects.count() == SMALL["orders"]
    # Every order was created by order_create (a "created" event) and every move left an event.
    assert not Order.objects.annotate(n=Count("status_events")).filter(n=0).exists()
    held_and_released = OrderStatusEvent.objects.filter(from_status=OrderStatus.ON_HOLD).exclude(
        to_status=OrderStatus.CANCELLED)
    assert held_and_released.exists()
    cancellations = OrderStatusEvent.objects.filter(to_status=OrderStatus.CANCELLED)
    assert cancellations.exists() and not cancellations.filter(reason="").exists()


def test_bills_invoices_in_every_status_with_partial_payments_overdue_and_credit_notes(seeded):
    assert set(Invoice.objects.invoices().values_list("status", flat=True)) == set(InvoiceStatus.values)
    assert Invoice.objects.outstanding().filter(paid_amount__gt=0).exists(), "no partly paid invoice"
    assert Invoice.objects.overdue().exists()
    assert Invoice.objects.invoices().filter(order=None).exists(), "no manual invoice"
    notes = list(Invoice.objects.credit_notes().select_related("credited_invoice"))
    assert any(note.total == note.credited_invoice.total for note in notes), "no full credit note"
    assert any(note.total < note.credited_invoice.total for note in notes), "no partial credit note"
    # Voided and billed again: an order with a void invoice and a live one.
    rebilled = Order.objects.filter(invoices__status=InvoiceStatus.VOID).filter(
        invoices__status__in=[InvoiceStatus.ISSUED, InvoiceStatus.PAID]).distinct()
    assert rebilled.exists()


def test_amounts_add_up_and_payments_match_the_invoices(seeded):
    for order in Order.objects.annotate(lines_total=Sum("lines__line_total")):
        assert order.subtotal == order.lines_total
        assert order.total == order.subtotal - order.discount + order.tax + order.freight
    for invoice in Invoice.objects.annotate(payments_total=Sum("payments__amount")):
        assert invoice.total == invoice.net + invoice.tax
        assert invoice.paid_amount == (invoice.payments_total or ZERO)
        assert invoice.paid_amount + invoice.credited_amount <= invoice.total or invoice.status == InvoiceStatus.PAID
        if invoice.status == InvoiceStatus.PAID:
            assert invoice.paid_amount + invoice.credited_amount >= invoice.total and invoice.paid_at is not None
    assert Payment.objects.exists() and not Payment.objects.filter(amount__lte=0).exists()


def test_sells_weighed_goods_in_fractional_quantities_and_discounts_some_lines(seeded):
    quantities = OrderLine.objects.values_list("quantity", flat=True)
    assert any(quantity != quantity.to_integral_value() for quantity in quantities)
    assert OrderLine.objects.filter(discount_percent__gt=0).exists()
    assert OrderLine.objects.filter(discount_percent=0).exists()


def test_creates_the_demo_superuser_and_one_user_per_role(seeded):
    demo = User.objects.get(username="demo")
    assert demo.is_superuser and demo.is_staff and demo.check_password(DEMO_PASSWORD)
    for username, group in [("sales", "Sales"), ("billing", "Billing"), ("operator", "Migration operators"),
                            ("auditor", "Auditors")]:
        user = User.objects.get(username=username)
        assert user.is_staff and not user.is_superuser and user.check_password(DEMO_PASSWORD)
        assert list(user.groups.values_list("name", flat=True)) == [group]
    output, _ = seeded
    assert "demo / demo-oms" in output


def test_has_customers_on_credit_hold_inactive_and_sharing_an_email(seeded):
    statuses = set(Customer.objects.values_list("status", flat=True))
    assert statuses == set(CustomerStatus.values)
    assert Customer.objects.sharing_email().count() >= 2
    # An inactive customer had nothing going on after it was made inactive.
    for customer in Customer.objects.filter(status=CustomerStatus.INACTIVE):
        assert not customer.orders.exclude(status__in=[OrderStatus.DELIVERED, OrderStatus.CANCELLED]).exists()


def test_dates_the_history_over_the_last_two_years_not_at_seeding_time(seeded):
    _, started = seeded
    span = Order.objects.aggregate(first=Min("ordered_at"), last=Max("ordered_at"))
    assert span["last"] < started and started - span["first"] > dt.timedelta(days=365)
    assert not OrderStatusEvent.objects.filter(at__gte=started).exists()
    assert not InvoiceStatusEvent.objects.filter(at__gte=started).exists()
    assert not Invoice.objects.filter(created_at__gte=started).exists()
    assert not Payment.objects.filter(recorded_at__gte=started).exists()
    # Each order's events, in the order the services wrote them, are dated in that order too.
    for order in Order.objects.prefetch_related(Prefetch("status_events", OrderStatusEvent.objects.order_by("id"))):
        moments = [event.at for event in order.status_events.all()]
        assert moments == sorted(moments) and moments[0] == order.ordered_at


def test_gives_numbers_in_date_order(seeded):
    by_number = list(Order.objects.order_by("number").values_list("number", "ordered_at"))
    for (number_a, at_a), (number_b, at_b) in zip(by_number, by_number[1:]):
        if number_a[:6] == number_b[:6]:  # same series and year
            assert at_a <= at_b
    issued = list(Invoice.objects.exclude(number=None).order_by("series", "fiscal_year", "sequence_number")
                  .values_list("series", "fiscal_year", "invoiced_at"))
    for (series_a, year_a, at_a), (series_b, year_b, at_b) in zip(issued, issued[1:]):
        if (series_a, year_a) == (series_b, year_b):
            assert at_a <= at_b
        assert timezone.localtime(at_a).year == year_a


def test_running_it_twice_creates_nothing_the_second_time(seeded):
    before = fingerprint()
    output = seed()
    assert "already present" in output
    assert fingerprint() == before
    assert User.objects.filter(username__in=["demo", "sales", "billing", "operator", "auditor"]).count() == 5


def test_reset_builds_the_same_data_again_for_the_same_seed(seeded):
    before = fingerprint()
    seed(reset=True)
    assert fingerprint() == before


def test_another_seed_gives_other_data(seeded):
    before = fingerprint()
    seed(reset=True, seed=8)
    assert fingerprint() != before


def test_reset_leaves_data_that_is_not_the_demos_alone(db):
    from tests.factories import CustomerFactory, make_order

    real = make_order(customer=CustomerFactory(code="C0000042"))
    seed()
    seed(reset=True)
    assert Order.objects.filter(pk=real.pk).exists()
    assert Order.objects.count() == SMALL["orders"] + 1


def test_refuses_to_run_before_the_roles_exist(db):
    Group.objects.filter(name="Auditors").delete()
    with pytest.raises(CommandError, match="Auditors"):
        seed()
    assert not Order.objects.exists()
