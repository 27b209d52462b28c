"""Customers, orders and lines as stored: what the database itself refuses, and the named querysets.

The services never write a bad row; these tests go around them (QuerySet.update, bulk_create) to
prove the database guards what must never be false even when some other code path forgets.
"""

from contextlib import contextmanager
from decimal import Decimal

import pytest
from django.db import IntegrityError, transaction
from django.db.models import F

from invoices import services as invoice_services
from orders import services as order_services
from orders.models import (
    Customer,
    CustomerStatus,
    NumberSequence,
    Order,
    OrderLine,
    OrderStatus,
    OrderStatusEvent,
)
from tests.factories import CustomerFactory, line, make_confirmed_order, make_order

D = Decimal
pytestmark = pytest.mark.django_db


@contextmanager
def refused_by_database(constraint: str):
    """The statement fails on the named constraint; the savepoint keeps the test's transaction usable."""
    with pytest.raises(IntegrityError, match=constraint), transaction.atomic():
        yield


# ---------------------------------------------------------------------------------------------
# What the database refuses
# ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("quantity", [D("0"), D("-1.000")])
def test_database_refuses_an_order_line_without_a_positive_quantity(quantity):
    order = make_order()
    with refused_by_database("order_line_quantity_gt_0"):
        OrderLine.objects.filter(order=order).update(quantity=quantity)


def test_database_refuses_a_negative_unit_price():
    order = make_order()
    with refused_by_database("order_line_unit_price_gte_0"):
        OrderLine.objects.filter(order=order).update(unit_price=D("-0.0001"))


@pytest.mark.parametrize("percent", [D("-0.01"), D("100.01")])
def test_database_refuses_a_line_discount_outside_0_to_100(percent):
    order = make_order()
    with refused_by_database("order_line_discount_0_100"):
        OrderLine.objects.filter(order=order).update(discount_percent=percent)


def test_database_refuses_a_negative_line_total():
    order = make_order()
    with refused_by_database("order_line_total_gte_0"):
        OrderLine.objects.filter(order=order).update(line_total=D("-0.01"))


def test_database_refuses_two_lines_with_the_same_number_on_one_order():
    order = make_order()
    with refused_by_database("order_line_number_unique"):
        OrderLine.objects.bulk_create([OrderLine(order=order, line_number=1, sku="DUP", quantity=D(1),
                                                 unit_price=D(1), line_total=D(1))])


def test_database_refuses_an_unknown_order_status():
    order = make_order()
    with refused_by_database("order_status_valid"):
        Order.objects.filter(pk=order.pk).update(status="archived")


def test_database_refuses_an_unknown_order_currency():
    order = make_order()
    with refused_by_database("order_currency_known"):
        Order.objects.filter(pk=order.pk).update(currency="XXX")


@pytest.mark.parametrize("field", ["discount", "tax", "freight"])
def test_database_refuses_a_negative_order_amount(field):
    order = make_order()
    # Keep the total adding up so that only the sign rule is broken.
    total = order.total + (D("1") if field == "discount" else D("-1"))
    with refused_by_database("order_amounts_gte_0"):
        Order.objects.filter(pk=order.pk).update(**{field: D("-1.00")}, total=total)


def test_database_refuses_an_order_whose_total_does_not_add_up():
    order = make_order()
    with refused_by_database("order_total_adds_up"):
        Order.objects.filter(pk=order.pk).update(total=F("total") + D("0.01"))


def test_database_keeps_a_migrated_orders_legacy_total_even_when_it_does_not_add_up():
    order = make_order()
    Order.objects.filter(pk=order.pk).update(legacy_id=4711, total=F("total") + D("0.01"))
    order.refresh_from_db()
    assert order.total == order.subtotal - order.discount + order.tax + order.freight + D("0.01")


def test_database_refuses_a_duplicate_order_number():
    order = make_order()
    with refused_by_database("number"):
        Order.objects.bulk_create([Order(number=order.number, customer=order.customer)])


def test_database_refuses_a_legacy_order_number_migrated_twice():
    first, second = make_order(), make_order()
    Order.objects.filter(pk=first.pk).update(legacy_id=1001)
    with refused_by_database("legacy_id"):
        Order.objects.filter(pk=second.pk).update(legacy_id=1001)


def test_database_refuses_an_unknown_customer_status():
    customer = CustomerFactory()
    with refused_by_database("customer_status_valid"):
        Customer.objects.filter(pk=customer.pk).update(status="X")


def test_database_refuses_a_negative_credit_limit_but_allows_none():
    customer = CustomerFactory()
    Customer.objects.filter(pk=customer.pk).update(credit_limit=None)
    with refused_by_database("customer_credit_limit_gte_0"):
        Customer.objects.filter(pk=customer.pk).update(credit_limit=D("-0.01"))


def test_database_refuses_a_second_counter_for_the_same_series_and_year():
    NumberSequence.objects.create(series="SO", year=2030)
    with refused_by_database("number_sequence_unique"):
        NumberSequence.objects.bulk_create([NumberSequence(series="SO", year=2030)])


# ---------------------------------------------------------------------------------------------
# Precision as stored
# ---------------------------------------------------------------------------------------------
def test_stores_quantities_to_three_places_and_prices_to_four_without_loss():
    order = make_order(lines=[line("WEIGHED", "1.235", "0.3333")])
    stored = OrderLine.objects.get(order=order)
    assert stored.quantity == D("1.235")
    assert stored.unit_price == D("0.3333")
    assert stored.line_total == D("0.41")  # 0.41162… rounded once
    assert isinstance(stored.line_total, Decimal)


# ---------------------------------------------------------------------------------------------
# Named business states
# ---------------------------------------------------------------------------------------------
def test_open_orders_are_those_neither_delivered_nor_cancelled():
    pending = make_order()
    cancelled = order_services.order_cancel(order=make_order(), reason="Customer changed their mind")
    delivered = make_confirmed_order()
    for action in (order_services.order_start_processing, order_services.order_ship, order_services.order_deliver):
        delivered = action(order=delivered)
    held = order_services.order_hold(order=make_order(), reason="Address check")
    assert set(Order.objects.open()) == {pending, held}
    assert cancelled not in Order.objects.open() and delivered not in Order.objects.open()
    assert list(Order.objects.on_hold()) == [held]


def test_ready_to_invoice_lists_confirmed_orders_without_a_live_invoice():
    make_order()  # pending: not yet
    confirmed = make_confirmed_order()
    invoiced = make_confirmed_order()
    invoice = invoice_services.invoice_create_for_order(order=invoiced)
    assert list(Order.objects.ready_to_invoice()) == [confirmed]
    invoice_services.invoice_void(invoice=invoice, reason="Wrong address on the invoice")
    assert set(Order.objects.ready_to_invoice()) == {confirmed, invoiced}


def test_customer_states_active_on_credit_hold_and_sharing_a_mailbox():
    active = CustomerFactory(email="ap@shared.example.com")
    held = CustomerFactory(status=CustomerStatus.ON_HOLD, email="ap@shared.example.com")
    inactive = CustomerFactory(status=CustomerStatus.INACTIVE)
    assert set(Customer.objects.active()) == {active}
    assert list(Customer.objects.on_credit_hold()) == [held]
    assert set(Customer.objects.sharing_email()) == {active, held}
    assert inactive not in Customer.objects.sharing_email()


# ---------------------------------------------------------------------------------------------
# The order as an object
# ---------------------------------------------------------------------------------------------
def test_only_a_pending_order_is_editable():
    assert Order(status=OrderStatus.PENDING).is_editable
    assert not any(Order(status=s).is_editable for s in OrderStatus.values if s != OrderStatus.PENDING)


@pytest.mark.parametrize("held_from", [OrderStatus.PENDING, OrderStatus.CONFIRMED, OrderStatus.PROCESSING])
def test_an_order_on_hold_offers_only_going_back_where_it_was_or_cancelling(held_from):
    order = Order(status=OrderStatus.ON_HOLD, status_before_hold=held_from)
    assert order.available_transitions() == [held_from, OrderStatus.CANCELLED]


def test_an_order_not_on_hold_offers_the_pipeline_moves():
    assert Order(status=OrderStatus.CONFIRMED).available_transitions() == ["cancelled", "on_hold", "processing"]
    assert Order(status=OrderStatus.DELIVERED).available_transitions() == []


def test_status_events_read_in_the_order_they_happened(sam):
    order = make_order(by=sam)
    order_services.order_confirm(order=order, by=sam)
    order_services.order_hold(order=order, by=sam, reason="Stock check")
    events = list(order.status_events.all())
    assert [(e.from_status, e.to_status) for e in events] == [
        ("", "pending"), ("pending", "confirmed"), ("confirmed", "on_hold")]
    assert str(events[0]).startswith("— → pending at ")
    assert OrderStatusEvent.objects.filter(order=order, by=sam).count() == 3


def test_every_role_can_read_the_status_history_but_a_staff_member_without_role_cannot(sam, bill, otto, audrey, nora):
    for user in (sam, bill, otto, audrey):
        assert user.has_perm("orders.view_orderstatusevent"), user.username
        assert user.has_perm("invoices.view_invoicestatusevent"), user.username
    assert not nora.has_perm("orders.view_orderstatusevent")
    assert not nora.has_perm("invoices.view_invoicestatusevent")


@pytest.mark.django_db
@pytest.mark.parametrize("lines, parent, unique", [
    ("orders_orderline", "order_id", "order_line_number_unique"),
    ("invoices_invoiceline", "invoice_id", "invoice_line_number_unique"),
])
def test_a_records_lines_are_found_through_its_line_number_constraint_and_no_second_index(lines, parent, unique):
    from django.db import connection

    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SELECT indexdef FROM pg_indexes WHERE tablename = %s", [lines])
        on_parent = [d for (d,) in cursor.fetchall() if f"({parent}" in d]
        cursor.execute("SET LOCAL enable_seqscan = off")
        cursor.execute(f"EXPLAIN SELECT * FROM {lines} WHERE {parent} = 1")
        plan = " ".join(row for (row,) in cursor.fetchall())
    assert len(on_parent) == 1 and unique in on_parent[0], on_parent
    assert unique in plan
