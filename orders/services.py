"""Business actions on customers and orders. The admin, the API and the commands all call these.

Each function is keyword-only, runs in one transaction, takes its locks through oms.locking and
raises oms.errors.DomainError (or IllegalTransition) with a message written for staff.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from oms import locking
from oms.cache import invalidate_customer, invalidate_order
from oms.errors import DomainError, IllegalTransition
from oms.money import ZERO, line_amount, round_amount, round_price, round_quantity
from orders.models import (
    EDITABLE_ORDER_STATUSES,
    ORDER_LIFECYCLE,
    Customer,
    CustomerStatus,
    Order,
    OrderLine,
    OrderStatus,
    OrderStatusEvent,
)

#: Header fields that may change until the order ships (they describe delivery, not money).
DELIVERY_FIELDS = frozenset({
    "requested_ship_at", "ship_name", "ship_address_line1", "ship_address_line2", "ship_city",
    "ship_state", "ship_postal_code", "ship_country", "po_number", "notes",
})
#: Header fields that change what the customer owes: only while the order is pending.
COMMERCIAL_FIELDS = frozenset({"customer", "currency", "ordered_at", "discount", "tax", "freight"})
ORDER_NUMBER_SERIES = "SO"


@dataclass(frozen=True)
class OrderLineInput:
    """One line as a caller describes it; the line total is always computed, never taken."""

    sku: str
    quantity: Decimal
    unit_price: Decimal
    description: str = ""
    discount_percent: Decimal = ZERO
    line_number: int | None = None


# ---------------------------------------------------------------------------------------------
# Customers
# ---------------------------------------------------------------------------------------------
@transaction.atomic
def customer_save(*, customer: Customer, by=None) -> Customer:
    """Create or update a customer after validating it (codes trimmed, email lower-cased)."""
    customer.code = (customer.code or "").strip().upper() or None
    customer.name = customer.name.strip()
    customer.email = (customer.email or "").strip().lower() or None
    _validate(customer)
    customer.save()
    invalidate_customer(customer.pk)
    return customer


# ---------------------------------------------------------------------------------------------
# Orders: creation and edits
# ---------------------------------------------------------------------------------------------
def _next_order_number(at) -> str:
    year = timezone.localtime(at).year
    return f"{ORDER_NUMBER_SERIES}{year}-{locking.take_next_number(ORDER_NUMBER_SERIES, year):06d}"


def _build_lines(order: Order, lines: Sequence[OrderLineInput]) -> list[OrderLine]:
    built, used = [], set()
    next_number = 1
    for position, line in enumerate(lines, start=1):
        number = line.line_number or next_number
        if number in used:
            raise DomainError(f"Line {position}: line number {number} is used twice.", field="lines")
        used.add(number)
        next_number = max(used) + 1
        quantity, price, pct = Decimal(line.quantity), Decimal(line.unit_price), Decimal(line.discount_percent)
        if quantity <= 0:
            raise DomainError(f"Line {number}: quantity must be more than 0.", field="lines")
        if price < 0:
            raise DomainError(f"Line {number}: unit price cannot be negative.", field="lines")
        if not ZERO <= pct <= 100:
            raise DomainError(f"Line {number}: discount must be between 0 and 100 %.", field="lines")
        if not line.sku.strip():
            raise DomainError(f"Line {number}: SKU is required.", field="lines")
        # The columns would round a finer value silently (half-even), after the total was computed from it.
        for label, value, rounded, places in (("quantity", quantity, round_quantity(quantity), 3),
                                              ("unit price", price, round_price(price), 4),
                                              ("discount", pct, round_amount(pct), 2)):
            if value != rounded:
                raise DomainError(f"Line {number}: {label} has more than {places} decimal places.", field="lines")
        built.append(OrderLine(
            order=order, line_number=number, sku=line.sku.strip().upper(), description=line.description.strip(),
            quantity=quantity, unit_price=price, discount_percent=pct,
            line_total=line_amount(quantity, price, pct),
        ))
    return built


def _recalculate_totals(order: Order, lines: Sequence[OrderLine] | None = None) -> None:
    """subtotal = Σ line totals; total = subtotal − discount + tax + freight. Saved by the caller."""
    lines = order.lines.all() if lines is None else lines
    order.subtotal = round_amount(sum((line.line_total for line in lines), ZERO))
    order.discount, order.tax, order.freight = (round_amount(v) for v in (order.discount, order.tax, order.freight))
    if order.discount > order.subtotal:
        raise DomainError(
            f"The order discount ({order.discount}) is larger than the lines' subtotal ({order.subtotal}).",
            field="discount")
    order.total = order.subtotal - order.discount + order.tax + order.freight


def _record_order_event(order: Order, *, from_status: str, by, reason: str = "") -> None:
    OrderStatusEvent.objects.create(order=order, from_status=from_status, to_status=order.status, by=by,
                                    reason=reason)


@transaction.atomic
def order_create(*, customer: Customer, lines: Sequence[OrderLineInput] = (), by=None, **header) -> Order:
    """Create a pending order with its lines, a fresh number and totals that add up.

    An order may start without lines (staff fill them in); it cannot be confirmed without any.
    """
    if customer.status == CustomerStatus.INACTIVE:
        raise DomainError(f"Customer {customer} is inactive and cannot place orders.", field="customer")
    unknown = set(header) - DELIVERY_FIELDS - COMMERCIAL_FIELDS
    if unknown:
        raise DomainError(f"Unknown order fields: {', '.join(sorted(unknown))}.")
    order = Order(customer=customer, created_by=by, **header)
    order.ordered_at = order.ordered_at or timezone.now()
    order.number = _next_order_number(order.ordered_at)
    _full_clean_order_header(order)
    built = _build_lines(order, lines)
    _recalculate_totals(order, built)
    order.save()
    for line in built:
        line.order = order  # the order has its primary key only now
    OrderLine.objects.bulk_create(built)
    _record_order_event(order, from_status="", by=by, reason="Order created")
    invalidate_order(order.pk)
    return order


def _full_clean_order_header(order: Order) -> None:
    for name in ("discount", "tax", "freight"):
        if getattr(order, name) is None or getattr(order, name) < 0:
            raise DomainError(f"{name.capitalize()} cannot be negative.", field=name)
    # Totals are computed after validation, so the "adds up" constraint is checked by the database.
    _validate(order, exclude=["number", "subtotal", "total"], constraints=False)


def _validate(instance, *, exclude: Sequence[str] = (), constraints: bool = True) -> None:
    """Model validation turned into a DomainError naming the first bad field."""
    try:
        instance.full_clean(exclude=list(exclude), validate_constraints=constraints)
    except ValidationError as exc:
        field = next(iter(exc.message_dict))
        raise DomainError("; ".join(f"{f}: {' '.join(m)}" for f, m in exc.message_dict.items()),
                          code="invalid", field=field) from exc


@transaction.atomic
def order_update(*, order: Order, by=None, **changes) -> Order:
    """Change an order's header. Money and customer only while pending; delivery details until shipped."""
    order = locking.lock_order(order.pk)
    unknown = set(changes) - DELIVERY_FIELDS - COMMERCIAL_FIELDS
    if unknown:
        raise DomainError(f"Unknown order fields: {', '.join(sorted(unknown))}.")
    commercial = {k for k, v in changes.items() if k in COMMERCIAL_FIELDS and getattr(order, k) != v}
    if commercial and order.status not in EDITABLE_ORDER_STATUSES:
        raise DomainError(
            f"Order {order.number} is {order.get_status_display()}; its {', '.join(sorted(commercial))} "
            "can only change while it is pending.", field=sorted(commercial)[0])
    if changes.keys() & DELIVERY_FIELDS and order.status in {OrderStatus.SHIPPED, OrderStatus.DELIVERED,
                                                             OrderStatus.CANCELLED}:
        raise DomainError(f"Order {order.number} is {order.get_status_display()}; it can no longer be changed.")
    for name, value in changes.items():
        setattr(order, name, value)
    _full_clean_order_header(order)
    if commercial:
        # Only money changes recompute: a migrated order keeps its legacy amounts even where they
        # disagree with its lines, and a new delivery address must not rewrite them.
        _recalculate_totals(order)
    order.save()
    invalidate_order(order.pk)
    return order


@transaction.atomic
def order_replace_lines(*, order: Order, lines: Sequence[OrderLineInput], by=None) -> Order:
    """Replace all lines of a pending order and recompute its totals."""
    order = locking.lock_order(order.pk)
    if order.status not in EDITABLE_ORDER_STATUSES:
        raise DomainError(
            f"Order {order.number} is {order.get_status_display()}; its lines can only change while it is "
            "pending.", field="lines")
    built = _build_lines(order, lines)
    order.lines.all().delete()
    OrderLine.objects.bulk_create(built)
    _recalculate_totals(order, built)
    order.save(update_fields=["subtotal", "discount", "tax", "freight", "total", "updated_at"])
    invalidate_order(order.pk)
    return order


# ---------------------------------------------------------------------------------------------
# Orders: the life cycle
# ---------------------------------------------------------------------------------------------
def _allowed_moves(order: Order) -> frozenset[str]:
    """The pipeline's moves for this order: on hold, only back where it was held from, or cancelled.

    A hold whose origin is unknown (migrated: the legacy system did not record it) goes back to pending.
    """
    if order.status != OrderStatus.ON_HOLD:
        return ORDER_LIFECYCLE.available_transitions(order.status)
    return frozenset({order.status_before_hold or OrderStatus.PENDING, OrderStatus.CANCELLED})


def _check_move(order: Order, target: str) -> None:
    ORDER_LIFECYCLE.check(record=f"Order {order.number}", current=order.status, target=target,
                          allowed=_allowed_moves(order))


def _transition(order: Order, target: str, *, by, reason: str = "") -> Order:
    """The one place an order's status changes: lock, check the pipeline, save, record the event."""
    order = locking.lock_order(order.pk)
    _check_move(order, target)
    previous = order.status
    # Set here, on the row just locked: the caller's copy is re-read above, so a value it set is lost.
    order.status_before_hold = previous if target == OrderStatus.ON_HOLD else ""
    order.status = target
    order.save(update_fields=["status", "status_before_hold", "updated_at"])
    _record_order_event(order, from_status=previous, by=by, reason=reason)
    invalidate_order(order.pk)
    return order


@transaction.atomic
def order_confirm(*, order: Order, by=None, reason: str = "") -> Order:
    """Pending → confirmed: the order is accepted; it needs lines and a customer not on credit hold."""
    locked = locking.lock_order(order.pk)
    if locked.status == OrderStatus.PENDING:
        if not locked.lines.exists():
            raise DomainError(f"Order {locked.number} has no lines; add at least one before confirming it.")
        customer = locked.customer
        if customer.status != CustomerStatus.ACTIVE:
            raise DomainError(
                f"Customer {customer} is {customer.get_status_display().lower()}; "
                f"order {locked.number} cannot be confirmed until the customer is active.")
    return _transition(locked, OrderStatus.CONFIRMED, by=by, reason=reason)


@transaction.atomic
def order_start_processing(*, order: Order, by=None, reason: str = "") -> Order:
    """Confirmed → processing: the warehouse is picking it."""
    return _transition(order, OrderStatus.PROCESSING, by=by, reason=reason)


@transaction.atomic
def order_ship(*, order: Order, by=None, reason: str = "") -> Order:
    """Processing → shipped."""
    return _transition(order, OrderStatus.SHIPPED, by=by, reason=reason)


@transaction.atomic
def order_deliver(*, order: Order, by=None, reason: str = "") -> Order:
    """Shipped → delivered (final)."""
    return _transition(order, OrderStatus.DELIVERED, by=by, reason=reason)


@transaction.atomic
def order_hold(*, order: Order, by=None, reason: str = "") -> Order:
    """Stop an order before it ships; release puts it back where it was (_transition remembers it)."""
    return _transition(order, OrderStatus.ON_HOLD, by=by, reason=reason)


@transaction.atomic
def order_release(*, order: Order, by=None, reason: str = "") -> Order:
    """On hold → the status it was held from."""
    locked = locking.lock_order(order.pk)
    if locked.status != OrderStatus.ON_HOLD:
        raise IllegalTransition(f"Order {locked.number} is {locked.get_status_display()}, not on hold; "
                                "there is nothing to release. "
                                f"Allowed next: {ORDER_LIFECYCLE.describe_allowed(_allowed_moves(locked))}.")
    target = locked.status_before_hold or OrderStatus.PENDING
    return _transition(locked, target, by=by, reason=reason)


@transaction.atomic
def order_cancel(*, order: Order, by=None, reason: str) -> Order:
    """Cancel an order that has not shipped. A reason is required; a live invoice must be voided first."""
    from invoices.models import Invoice

    if not reason or not reason.strip():
        raise DomainError("Say why the order is cancelled.", field="reason")
    locked = locking.lock_order(order.pk)
    _check_move(locked, OrderStatus.CANCELLED)
    live = Invoice.objects.live_for_order(locked).first()
    if live is not None:
        raise DomainError(f"Order {locked.number} is billed on {live}; void that invoice before cancelling.")
    return _transition(locked, OrderStatus.CANCELLED, by=by, reason=reason.strip())


#: The life-cycle actions by target status, for callers that move orders generically (admin, API).
ORDER_ACTIONS = {
    OrderStatus.CONFIRMED: order_confirm,
    OrderStatus.PROCESSING: order_start_processing,
    OrderStatus.SHIPPED: order_ship,
    OrderStatus.DELIVERED: order_deliver,
    OrderStatus.ON_HOLD: order_hold,
    OrderStatus.CANCELLED: order_cancel,
}
