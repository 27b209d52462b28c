"""The status pipelines, written out here as the business states them, checked against the tables.

The services are tested move by move in tests/orders/test_services.py and
tests/invoices/test_services.py; this file pins the tables themselves and the one check.
"""

import itertools

import pytest

from invoices.models import INVOICE_LIFECYCLE, InvoiceStatus
from oms.errors import DomainError, IllegalTransition
from oms.lifecycle import Lifecycle
from orders.models import ORDER_LIFECYCLE, OrderStatus

O, I = OrderStatus, InvoiceStatus  # noqa: E741

#: pending → confirmed → processing → shipped → delivered; hold and cancel before shipping;
#: release goes back to any status an order can be held from.
EXPECTED_ORDER_MOVES = {
    O.PENDING: {O.CONFIRMED, O.ON_HOLD, O.CANCELLED},
    O.CONFIRMED: {O.PROCESSING, O.ON_HOLD, O.CANCELLED},
    O.PROCESSING: {O.SHIPPED, O.ON_HOLD, O.CANCELLED},
    O.SHIPPED: {O.DELIVERED},
    O.DELIVERED: set(),
    O.CANCELLED: set(),
    O.ON_HOLD: {O.PENDING, O.CONFIRMED, O.PROCESSING, O.CANCELLED},
}
#: draft → issued → paid / fully credited; draft or issued → void. Nothing leaves paid, credited or void.
EXPECTED_INVOICE_MOVES = {
    I.DRAFT: {I.ISSUED, I.VOID},
    I.ISSUED: {I.PAID, I.CREDITED, I.VOID},
    I.PAID: set(),
    I.CREDITED: set(),
    I.VOID: set(),
}


@pytest.mark.parametrize(("current", "target"), list(itertools.product(O.values, O.values)))
def test_order_pipeline_allows_exactly_the_documented_moves(current, target):
    if target in EXPECTED_ORDER_MOVES[current]:
        ORDER_LIFECYCLE.check(record="Order SO1", current=current, target=target)
    else:
        with pytest.raises(IllegalTransition):
            ORDER_LIFECYCLE.check(record="Order SO1", current=current, target=target)


@pytest.mark.parametrize(("current", "target"), list(itertools.product(I.values, I.values)))
def test_invoice_pipeline_allows_exactly_the_documented_moves(current, target):
    if target in EXPECTED_INVOICE_MOVES[current]:
        INVOICE_LIFECYCLE.check(record="Invoice INV-1", current=current, target=target)
    else:
        with pytest.raises(IllegalTransition):
            INVOICE_LIFECYCLE.check(record="Invoice INV-1", current=current, target=target)


def test_delivered_and_cancelled_orders_are_final():
    assert {s for s in O.values if ORDER_LIFECYCLE.is_final(s)} == {O.DELIVERED, O.CANCELLED}


def test_paid_credited_and_void_invoices_are_final():
    assert {s for s in I.values if INVOICE_LIFECYCLE.is_final(s)} == {I.PAID, I.CREDITED, I.VOID}


def test_nothing_ever_moves_back_to_draft():
    assert all(I.DRAFT not in INVOICE_LIFECYCLE.available_transitions(s) for s in I.values)


def test_refusal_names_the_record_both_statuses_and_what_is_allowed_next():
    with pytest.raises(IllegalTransition) as refused:
        ORDER_LIFECYCLE.check(record="Order SO2025-000042", current=O.PENDING, target=O.SHIPPED)
    assert str(refused.value) == (
        "Order SO2025-000042 is Pending; it cannot become Shipped. Allowed next: Cancelled, Confirmed, On hold."
    )
    assert refused.value.code == "illegal_transition"
    assert refused.value.field == "status"
    assert isinstance(refused.value, DomainError)


def test_refusal_from_a_final_status_says_nothing_is_allowed():
    with pytest.raises(IllegalTransition, match=r"Allowed next: none \(final status\)\."):
        INVOICE_LIFECYCLE.check(record="Invoice INV-2025-000001", current=I.VOID, target=I.ISSUED)


def test_refuses_a_target_that_is_not_a_status_at_all():
    with pytest.raises(IllegalTransition, match="'archived' is not a order status"):
        ORDER_LIFECYCLE.check(record="Order SO1", current=O.PENDING, target="archived")


def test_a_narrowed_check_refuses_moves_the_record_itself_cannot_make():
    # An order held while pending may go back to pending or be cancelled, not jump to processing.
    ORDER_LIFECYCLE.check(record="Order SO1", current=O.ON_HOLD, target=O.PENDING,
                          allowed=[O.PENDING, O.CANCELLED])
    with pytest.raises(IllegalTransition, match=r"Allowed next: Cancelled, Pending\.$"):
        ORDER_LIFECYCLE.check(record="Order SO1", current=O.ON_HOLD, target=O.PROCESSING,
                              allowed=[O.PENDING, O.CANCELLED])


def test_narrowing_never_widens_the_table():
    with pytest.raises(IllegalTransition):
        ORDER_LIFECYCLE.check(record="Order SO1", current=O.SHIPPED, target=O.CANCELLED,
                              allowed=[O.CANCELLED])


def test_a_table_naming_an_unknown_status_is_refused_when_defined():
    with pytest.raises(ValueError, match="unknown statuses"):
        Lifecycle("parcel", {"new": "New", "sent": "Sent"}, {"new": {"sent", "lost"}})
    with pytest.raises(ValueError, match="unknown statuses"):
        Lifecycle("parcel", {"new": "New"}, {"ghost": {"new"}})


def test_a_status_without_moves_in_the_table_is_final():
    parcel = Lifecycle("parcel", {"new": "New", "sent": "Sent"}, {"new": {"sent"}})
    assert parcel.available_transitions("new") == frozenset({"sent"})
    assert parcel.is_final("sent")
