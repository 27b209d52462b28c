"""The order services as a specification: creation and totals, edits, and every move of the life cycle."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from django.utils import timezone

from invoices import services as invoice_services
from oms.errors import DomainError, IllegalTransition
from orders import services as svc
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
O = OrderStatus  # noqa: E741
pytestmark = pytest.mark.django_db


def this_year() -> int:
    return timezone.localtime().year


def snapshot(order: Order) -> tuple:
    """What a refused action must leave exactly as it was."""
    order = Order.objects.get(pk=order.pk)
    lines = tuple(order.lines.values_list("line_number", "sku", "quantity", "unit_price", "line_total"))
    return (order.status, order.status_before_hold, order.subtotal, order.discount, order.tax, order.freight,
            order.total, order.ship_name, lines, order.status_events.count())


# ---------------------------------------------------------------------------------------------
# Customers
# ---------------------------------------------------------------------------------------------
def test_saving_a_customer_trims_the_code_and_lower_cases_the_email():
    customer = svc.customer_save(customer=Customer(code="  c0000042 ", name="  Acme Corp ",
                                                   email="  AP@Acme.Example.COM "))
    customer.refresh_from_db()
    assert (customer.code, customer.name, customer.email) == ("C0000042", "Acme Corp", "ap@acme.example.com")


def test_saving_a_customer_stores_a_blank_email_as_none_and_allows_two_customers_to_share_one():
    blank = svc.customer_save(customer=Customer(code="C1", name="No mail", email="  "))
    first = svc.customer_save(customer=Customer(code="C2", name="One", email="ap@shared.example.com"))
    second = svc.customer_save(customer=Customer(code="C3", name="Two", email="AP@shared.example.com"))
    assert blank.email is None
    assert first.email == second.email == "ap@shared.example.com"


def test_refuses_a_customer_with_an_invalid_email_naming_the_field():
    with pytest.raises(DomainError) as refused:
        svc.customer_save(customer=Customer(code="C4", name="Bad", email="not-an-address"))
    assert refused.value.field == "email"
    assert not Customer.objects.filter(code="C4").exists()


# ---------------------------------------------------------------------------------------------
# Creating an order
# ---------------------------------------------------------------------------------------------
def test_creates_a_pending_order_with_its_lines_totals_number_and_first_event(sam):
    customer = CustomerFactory()
    order = svc.order_create(
        customer=customer, by=sam, tax=D("2.04"), freight=D("4.00"), discount=D("1.50"), ship_name="Dock 4",
        lines=[line(" sku-1 ", "2", "10.00", description=" Widget "), line("SKU-2", "1", "5.50")],
    )
    order.refresh_from_db()
    assert order.status == O.PENDING
    assert order.number == f"SO{this_year()}-000001"
    assert order.created_by == sam
    assert (order.subtotal, order.discount, order.tax, order.freight, order.total) == (
        D("25.50"), D("1.50"), D("2.04"), D("4.00"), D("30.04"))
    assert list(order.lines.values_list("line_number", "sku", "description", "line_total")) == [
        (1, "SKU-1", "Widget", D("20.00")), (2, "SKU-2", "Widget", D("5.50"))]
    event = order.status_events.get()
    assert (event.from_status, event.to_status, event.by, event.reason) == ("", O.PENDING, sam, "Order created")


def test_numbers_orders_one_after_another_within_the_year():
    first, second, third = make_order(), make_order(), make_order()
    year = this_year()
    assert [first.number, second.number, third.number] == [f"SO{year}-{n:06d}" for n in (1, 2, 3)]


def test_numbers_an_order_in_the_year_of_its_date_on_the_desks_clock():
    # 03:00 UTC on 1 January is still 31 December in New York, where the desk is.
    order = make_order(ordered_at=dt.datetime(2031, 1, 1, 3, 0, tzinfo=dt.UTC))
    assert order.number == "SO2030-000001"


def test_keeps_explicit_line_numbers_and_continues_after_the_highest():
    order = make_order(lines=[
        svc.OrderLineInput(sku="A", quantity=D(1), unit_price=D(1), line_number=10),
        svc.OrderLineInput(sku="B", quantity=D(1), unit_price=D(1)),
    ])
    assert list(order.lines.values_list("line_number", "sku")) == [(10, "A"), (11, "B")]


def test_an_order_may_start_without_lines():
    order = make_order(lines=[])
    assert (order.subtotal, order.total, order.lines.count()) == (D("0.00"), D("0.00"), 0)


def test_refuses_an_order_for_an_inactive_customer():
    customer = CustomerFactory(status=CustomerStatus.INACTIVE)
    with pytest.raises(DomainError, match="is inactive and cannot place orders") as refused:
        make_order(customer=customer)
    assert refused.value.field == "customer"
    assert not Order.objects.exists()


def test_refuses_fields_an_order_does_not_have():
    with pytest.raises(DomainError, match="Unknown order fields: status"):
        make_order(status=O.SHIPPED)


@pytest.mark.parametrize(
    ("bad_line", "message"),
    [
        (line(quantity="0"), "Line 1: quantity must be more than 0."),
        (line(quantity="-2"), "Line 1: quantity must be more than 0."),
        (line(unit_price="-0.01"), "Line 1: unit price cannot be negative."),
        (line(discount_percent="100.01"), "Line 1: discount must be between 0 and 100 %."),
        (line(discount_percent="-1"), "Line 1: discount must be between 0 and 100 %."),
        (line(sku="   "), "Line 1: SKU is required."),
        (line(quantity="1.0005"), "Line 1: quantity has more than 3 decimal places."),
        (line(unit_price="1.00005"), "Line 1: unit price has more than 4 decimal places."),
        (line(discount_percent="12.345"), "Line 1: discount has more than 2 decimal places."),
    ],
)
def test_refuses_a_line_that_breaks_a_rule_and_creates_nothing(bad_line, message):
    with pytest.raises(DomainError) as refused:
        make_order(lines=[bad_line])
    assert refused.value.message == message
    assert refused.value.field == "lines"
    assert not Order.objects.exists()


def test_refuses_two_lines_with_the_same_number():
    with pytest.raises(DomainError, match="line number 3 is used twice"):
        make_order(lines=[svc.OrderLineInput(sku="A", quantity=D(1), unit_price=D(1), line_number=3),
                          svc.OrderLineInput(sku="B", quantity=D(1), unit_price=D(1), line_number=3)])


def test_refuses_an_order_discount_larger_than_its_lines():
    with pytest.raises(DomainError, match=r"order discount \(25.51\) is larger than the lines' subtotal \(25.50\)"):
        make_order(discount=D("25.51"))


@pytest.mark.parametrize("field", ["discount", "tax", "freight"])
def test_refuses_a_negative_header_amount(field):
    with pytest.raises(DomainError, match="cannot be negative") as refused:
        make_order(**{field: D("-0.01")})
    assert refused.value.field == field


def test_a_refused_order_does_not_use_up_a_number():
    with pytest.raises(DomainError):
        make_order(lines=[line(quantity="0")])
    assert make_order().number == f"SO{this_year()}-000001"
    assert NumberSequence.objects.get(series="SO", year=this_year()).last_number == 1


# ---------------------------------------------------------------------------------------------
# Totals
# ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("quantity", "unit_price", "discount_percent", "line_total"),
    [
        ("2", "10.0000", "0", "20.00"),
        ("3", "0.3350", "0", "1.01"),  # 1.005: half-up
        ("1", "2.6750", "0", "2.68"),  # 2.675: half-up (a float would say 2.67)
        ("1", "10.1250", "0", "10.13"),  # half-up, not half-even
        ("0.125", "0.0400", "0", "0.01"),  # 0.005 from a fractional quantity
        ("1.235", "0.3333", "0", "0.41"),  # three-decimal quantity × four-decimal price
        ("2.500", "19.9999", "15", "42.50"),  # 42.4997875
        ("1", "10.0050", "50", "5.00"),  # rounded once: 5.0025, not round(10.005) / 2 = 5.005 → 5.01
        ("4", "12.5000", "100", "0.00"),
    ],
)
def test_line_total_is_quantity_times_price_less_discount_rounded_half_up_once(
        quantity, unit_price, discount_percent, line_total):
    order = make_order(lines=[line("X", quantity, unit_price, discount_percent)])
    stored = OrderLine.objects.get(order=order)
    assert stored.line_total == D(line_total)
    assert (stored.quantity, stored.unit_price) == (D(quantity), D(unit_price))
    assert order.subtotal == order.total == D(line_total)


def test_total_is_subtotal_less_discount_plus_tax_plus_freight():
    order = make_order(
        lines=[line("A", "3", "19.99"), line("B", "1.5", "4.3333", "10"), line("C", "0.125", "0.0400")],
        discount=D("5.00"), tax=D("4.94"), freight=D("7.50"),
    )
    # 59.97 + 5.85 (5.849955) + 0.01 (0.005)
    assert order.subtotal == D("65.83")
    assert order.total == D("65.83") - D("5.00") + D("4.94") + D("7.50") == D("73.27")
    order.refresh_from_db()
    assert order.total == D("73.27")


def test_replacing_the_lines_of_a_pending_order_recomputes_its_totals(sam):
    order = make_order(tax=D("1.00"), freight=D("2.00"))
    svc.order_replace_lines(order=order, by=sam, lines=[line("NEW", "3", "3.3350")])
    order.refresh_from_db()
    assert list(order.lines.values_list("sku", "line_total")) == [("NEW", D("10.01"))]  # 10.005
    assert (order.subtotal, order.total) == (D("10.01"), D("13.01"))


def test_changing_the_money_of_a_pending_order_recomputes_its_total(sam):
    order = make_order()
    svc.order_update(order=order, by=sam, tax=D("1.99"), freight=D("3.00"), discount=D("0.49"))
    order.refresh_from_db()
    assert order.total == D("25.50") - D("0.49") + D("1.99") + D("3.00")


def test_refuses_a_discount_larger_than_the_lines_when_editing(sam):
    order = make_order()
    before = snapshot(order)
    with pytest.raises(DomainError, match="larger than the lines' subtotal"):
        svc.order_update(order=order, by=sam, discount=D("30.00"))
    assert snapshot(order) == before


@pytest.mark.parametrize("status", [O.CONFIRMED, O.PROCESSING, O.ON_HOLD])
def test_refuses_to_change_the_lines_once_the_order_is_confirmed(status, sam):
    order = order_in(status, by=sam)
    before = snapshot(order)
    with pytest.raises(DomainError) as refused:
        svc.order_replace_lines(order=order, by=sam, lines=[line("NEW", "1", "1")])
    assert refused.value.message == (
        f"Order {order.number} is {O(status).label}; its lines can only change while it is pending.")
    assert snapshot(order) == before


@pytest.mark.parametrize("status", [O.CONFIRMED, O.PROCESSING, O.SHIPPED, O.ON_HOLD])
def test_refuses_to_change_the_money_once_the_order_is_confirmed(status, sam):
    order = order_in(status, by=sam)
    before = snapshot(order)
    with pytest.raises(DomainError, match=rf"Order {order.number} is .*; its freight, tax can only change while"):
        svc.order_update(order=order, by=sam, tax=D("9.99"), freight=D("1.00"))
    assert snapshot(order) == before


def test_accepts_unchanged_money_alongside_a_delivery_change_after_confirmation(sam):
    order = make_confirmed_order()
    svc.order_update(order=order, by=sam, tax=order.tax, ship_name="Back door")
    order.refresh_from_db()
    assert order.ship_name == "Back door"


@pytest.mark.parametrize("status", [O.PENDING, O.CONFIRMED, O.PROCESSING, O.ON_HOLD])
def test_delivery_details_stay_editable_until_the_order_ships(status, sam):
    order = order_in(status, by=sam)
    svc.order_update(order=order, by=sam, ship_name="Loading bay 2", ship_city="Newark", po_number="PO-77",
                     requested_ship_at=dt.datetime(2030, 5, 1, 12, tzinfo=dt.UTC))
    order.refresh_from_db()
    assert (order.ship_name, order.ship_city, order.po_number) == ("Loading bay 2", "Newark", "PO-77")
    assert order.status == status


@pytest.mark.parametrize("status", [O.SHIPPED, O.DELIVERED, O.CANCELLED])
def test_refuses_to_change_delivery_details_once_shipped_or_cancelled(status, sam):
    order = order_in(status, by=sam)
    before = snapshot(order)
    with pytest.raises(DomainError, match=rf"Order {order.number} is {O(status).label}; it can no longer be changed"):
        svc.order_update(order=order, by=sam, ship_name="Too late")
    assert snapshot(order) == before


def test_editing_delivery_details_of_a_migrated_order_keeps_its_legacy_amounts(sam):
    # Legacy amounts are the financial truth even where they disagree with the lines.
    order = make_confirmed_order()
    Order.objects.filter(pk=order.pk).update(legacy_id=88001, subtotal=D("25.49"), total=D("25.49"))
    svc.order_update(order=order, by=sam, ship_name="Dock 9")
    order.refresh_from_db()
    assert (order.ship_name, order.subtotal, order.total) == ("Dock 9", D("25.49"), D("25.49"))


def test_refuses_fields_an_order_edit_does_not_know(sam):
    with pytest.raises(DomainError, match="Unknown order fields: number"):
        svc.order_update(order=make_order(), by=sam, number="SO1")


# ---------------------------------------------------------------------------------------------
# The life cycle: every (from, to) pair through the services
# ---------------------------------------------------------------------------------------------
_PATH = {
    O.PENDING: [],
    O.CONFIRMED: [svc.order_confirm],
    O.PROCESSING: [svc.order_confirm, svc.order_start_processing],
    O.SHIPPED: [svc.order_confirm, svc.order_start_processing, svc.order_ship],
    O.DELIVERED: [svc.order_confirm, svc.order_start_processing, svc.order_ship, svc.order_deliver],
    O.CANCELLED: [svc.order_cancel],
}


def order_in(status: str, *, by, held_from: str = O.PENDING, **kwargs) -> Order:
    """An order brought to `status` through the services (an order on hold is held from `held_from`)."""
    if status == O.ON_HOLD:
        return svc.order_hold(order=order_in(held_from, by=by, **kwargs), by=by, reason="Held for the test")
    order = make_order(by=by, **kwargs)
    for action in _PATH[status]:
        order = action(order=order, by=by, reason="On the way")
    return order


def move(order: Order, target: str, *, by, reason: str) -> Order:
    """Ask the service that moves an order to `target` (back to pending only by releasing a hold)."""
    if target == O.PENDING:
        return svc.order_release(order=order, by=by, reason=reason)
    return svc.ORDER_ACTIONS[target](order=order, by=by, reason=reason)


#: The pipeline as the business states it. On hold, an order goes back where it was held from, or is cancelled.
ALLOWED = {
    O.PENDING: {O.CONFIRMED, O.ON_HOLD, O.CANCELLED},
    O.CONFIRMED: {O.PROCESSING, O.ON_HOLD, O.CANCELLED},
    O.PROCESSING: {O.SHIPPED, O.ON_HOLD, O.CANCELLED},
    O.SHIPPED: {O.DELIVERED},
    O.DELIVERED: set(),
    O.CANCELLED: set(),
}
STARTS = [(s, None) for s in ALLOWED] + [(O.ON_HOLD, held_from) for held_from in (O.PENDING, O.CONFIRMED, O.PROCESSING)]


def allowed_from(status: str, held_from: str | None) -> set[str]:
    return {held_from, O.CANCELLED} if status == O.ON_HOLD else ALLOWED[status]


PAIRS = [
    pytest.param(status, held_from, target, id=f"{status}{'(from ' + held_from + ')' if held_from else ''}->{target}")
    for status, held_from in STARTS
    for target in O.values
    # Back to pending is only ever a release, and a release goes where the order was held from: an
    # order held while confirmed or processing has no service that could even ask for pending
    # (test_release_returns_the_order_to_the_status_it_was_held_from covers where it does go).
    if not (status == O.ON_HOLD and target == O.PENDING and held_from != O.PENDING)
]


@pytest.mark.parametrize(("current", "held_from", "target"), PAIRS)
def test_every_move_of_the_order_life_cycle(current, held_from, target, sam):
    order = order_in(current, by=sam, held_from=held_from or O.PENDING)
    events_before = order.status_events.count()
    started = timezone.now()

    if target in allowed_from(current, held_from):
        moved = move(order, target, by=sam, reason=f"Move to {target}")
        order.refresh_from_db()
        assert moved.status == order.status == target
        assert order.status_before_hold == (current if target == O.ON_HOLD else "")
        assert order.status_events.count() == events_before + 1
        event = order.status_events.last()
        assert (event.from_status, event.to_status, event.by, event.reason) == (
            current, target, sam, f"Move to {target}")
        assert started <= event.at <= timezone.now()
    else:
        before = snapshot(order)
        with pytest.raises(IllegalTransition) as refused:
            move(order, target, by=sam, reason=f"Move to {target}")
        allowed = allowed_from(current, held_from)
        allowed_text = ", ".join(O(s).label for s in sorted(allowed)) or "none (final status)"
        assert f"Order {order.number} is {O(current).label}" in refused.value.message
        assert refused.value.message.endswith(f"Allowed next: {allowed_text}.")
        assert snapshot(order) == before


# ---------------------------------------------------------------------------------------------
# Hold and release
# ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("held_from", [O.PENDING, O.CONFIRMED, O.PROCESSING])
def test_release_returns_the_order_to_the_status_it_was_held_from(held_from, sam):
    order = order_in(held_from, by=sam)
    held = svc.order_hold(order=order, by=sam, reason="Address check")
    assert (held.status, held.status_before_hold) == (O.ON_HOLD, held_from)
    released = svc.order_release(order=order, by=sam, reason="Address confirmed")
    released.refresh_from_db()
    assert (released.status, released.status_before_hold) == (held_from, "")
    assert list(released.status_events.values_list("from_status", "to_status", "reason"))[-2:] == [
        (held_from, O.ON_HOLD, "Address check"), (O.ON_HOLD, held_from, "Address confirmed")]


def test_releases_a_hold_of_unknown_origin_to_pending():
    # A hold migrated from the legacy system does not say where the order was held from.
    order = make_order()
    Order.objects.filter(pk=order.pk).update(status=O.ON_HOLD, status_before_hold="")
    assert svc.order_release(order=order).status == O.PENDING


def test_an_order_held_while_pending_must_be_released_before_it_is_confirmed():
    # Confirming straight from the hold would skip the checks a pending order must pass.
    order = svc.order_hold(order=make_order(lines=[]), reason="Waiting for the customer")
    before = snapshot(order)
    with pytest.raises(IllegalTransition, match="Allowed next: Cancelled, Pending."):
        svc.order_confirm(order=order)
    assert snapshot(order) == before


def test_cancelling_a_held_order_forgets_where_it_was_held_from():
    order = svc.order_hold(order=make_confirmed_order(), reason="Fraud check")
    cancelled = svc.order_cancel(order=order, reason="Fraud confirmed")
    cancelled.refresh_from_db()
    assert (cancelled.status, cancelled.status_before_hold) == (O.CANCELLED, "")


@pytest.mark.parametrize("status", [O.PENDING, O.CONFIRMED, O.SHIPPED, O.CANCELLED])
def test_refuses_to_release_an_order_that_is_not_on_hold(status, sam):
    order = order_in(status, by=sam)
    before = snapshot(order)
    with pytest.raises(IllegalTransition) as refused:
        svc.order_release(order=order, by=sam)
    assert refused.value.message.startswith(
        f"Order {order.number} is {O(status).label}, not on hold; there is nothing to release.")
    assert snapshot(order) == before


# ---------------------------------------------------------------------------------------------
# Cancel
# ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("reason", ["", "   ", None])
def test_refuses_to_cancel_an_order_without_a_reason(reason, sam):
    order = make_order()
    before = snapshot(order)
    with pytest.raises(DomainError, match="Say why the order is cancelled") as refused:
        svc.order_cancel(order=order, by=sam, reason=reason)
    assert refused.value.field == "reason"
    assert snapshot(order) == before


def test_records_the_cancellation_reason_trimmed(sam):
    order = svc.order_cancel(order=make_order(), by=sam, reason="  Duplicate of SO-17  ")
    assert order.status_events.last().reason == "Duplicate of SO-17"


@pytest.mark.parametrize("issue", [False, True], ids=["draft invoice", "issued invoice"])
def test_refuses_to_cancel_an_order_with_a_live_invoice(issue, sam, bill):
    order = make_confirmed_order()
    invoice = invoice_services.invoice_create_for_order(order=order, by=bill)
    if issue:
        invoice = invoice_services.invoice_issue(invoice=invoice, by=bill)
    before = snapshot(order)
    with pytest.raises(DomainError) as refused:
        svc.order_cancel(order=order, by=sam, reason="Customer withdrew")
    assert refused.value.message == (
        f"Order {order.number} is billed on {invoice}; void that invoice before cancelling.")
    assert snapshot(order) == before


def test_cancels_an_order_once_its_invoice_is_voided(sam, bill):
    order = make_confirmed_order()
    invoice = invoice_services.invoice_create_for_order(order=order, by=bill)
    invoice_services.invoice_void(invoice=invoice, by=bill, reason="Order withdrawn")
    assert svc.order_cancel(order=order, by=sam, reason="Customer withdrew").status == O.CANCELLED


# ---------------------------------------------------------------------------------------------
# Confirm
# ---------------------------------------------------------------------------------------------
def test_refuses_to_confirm_an_order_without_lines(sam):
    order = make_order(lines=[])
    before = snapshot(order)
    with pytest.raises(DomainError, match=f"Order {order.number} has no lines; add at least one"):
        svc.order_confirm(order=order, by=sam)
    assert snapshot(order) == before


@pytest.mark.parametrize(("customer_status", "label"),
                         [(CustomerStatus.ON_HOLD, "on credit hold"), (CustomerStatus.INACTIVE, "inactive")])
def test_refuses_to_confirm_an_order_of_a_customer_who_is_not_active(customer_status, label, sam):
    order = make_order()
    Customer.objects.filter(pk=order.customer_id).update(status=customer_status)
    before = snapshot(order)
    with pytest.raises(DomainError) as refused:
        svc.order_confirm(order=order, by=sam)
    assert refused.value.message == (
        f"Customer {order.customer} is {label}; order {order.number} cannot be confirmed until the customer "
        "is active.")
    assert snapshot(order) == before


def test_confirms_once_the_customer_is_released_from_credit_hold(sam):
    order = make_order()
    Customer.objects.filter(pk=order.customer_id).update(status=CustomerStatus.ON_HOLD)
    with pytest.raises(DomainError):
        svc.order_confirm(order=order, by=sam)
    Customer.objects.filter(pk=order.customer_id).update(status=CustomerStatus.ACTIVE)
    assert svc.order_confirm(order=order, by=sam).status == O.CONFIRMED


def test_the_status_history_says_who_moved_the_order_when_from_what_to_what_and_why(sam, bill):
    order = make_order(by=sam)
    svc.order_confirm(order=order, by=sam, reason="Phoned in")
    svc.order_hold(order=order, by=bill, reason="Credit review")
    svc.order_release(order=order, by=bill, reason="Credit OK")
    rows = list(OrderStatusEvent.objects.filter(order=order).values_list("by__username", "from_status",
                                                                        "to_status", "reason"))
    assert rows == [
        ("sam", "", "pending", "Order created"),
        ("sam", "pending", "confirmed", "Phoned in"),
        ("bill", "confirmed", "on_hold", "Credit review"),
        ("bill", "on_hold", "confirmed", "Credit OK"),
    ]
    times = list(OrderStatusEvent.objects.filter(order=order).values_list("at", flat=True))
    assert times == sorted(times)
