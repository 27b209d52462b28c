"""Orders over the API: representation, creation, edits where the rules allow them, the life cycle."""

from __future__ import annotations

from decimal import Decimal

import pytest

from orders.models import Order, OrderStatus, OrderStatusEvent
from tests.factories import CustomerFactory, make_confirmed_order, make_order

pytestmark = pytest.mark.django_db

NEW_ORDER = {
    "currency": "USD", "po_number": "PO-7731", "tax": "2.04", "freight": "4.00", "discount": "1.50",
    "ordered_at": "2025-03-01T09:30:00-05:00",
    "lines": [{"sku": "sku-1", "description": "Widget", "quantity": "2", "unit_price": "10.0000"},
              {"sku": "SKU-2", "quantity": "1.5", "unit_price": "5.5000", "discount_percent": "10"}],
}


def test_order_detail_nests_lines_and_sends_money_as_strings_and_times_in_utc(api, sam):
    order = make_order(tax=Decimal("2.04"))
    body = api(sam).get(f"/api/v1/orders/{order.pk}/").json()
    assert body["number"] == order.number
    assert body["total"] == "27.54" and body["subtotal"] == "25.50"
    assert [line["sku"] for line in body["lines"]] == ["SKU-1", "SKU-2"]
    assert body["lines"][0] == {"line_number": 1, "sku": "SKU-1", "description": "Widget", "quantity": "2.000",
                                "unit_price": "10.0000", "discount_percent": "0.00", "line_total": "20.00"}
    assert body["ordered_at"].endswith("Z")
    assert body["available_actions"] == ["cancel", "confirm", "hold"]


def test_creates_an_order_with_its_lines_through_the_service(api, sam):
    customer = CustomerFactory()
    response = api(sam).post("/api/v1/orders/", {**NEW_ORDER, "customer": customer.pk}, format="json")
    assert response.status_code == 201, response.json()
    body = response.json()
    order = Order.objects.get(pk=body["id"])
    assert response["Location"].endswith(f"/api/v1/orders/{order.pk}/")
    assert order.created_by == sam and order.status == OrderStatus.PENDING
    # 2 × 10.00 + 1.5 × 5.50 × 0.9 = 27.43; − 1.50 + 2.04 + 4.00 = 31.97
    assert body["subtotal"] == "27.43" and body["total"] == "31.97"
    assert body["ordered_at"] == "2025-03-01T14:30:00Z"
    assert body["lines"][0]["sku"] == "SKU-1"  # normalised by the service
    assert OrderStatusEvent.objects.filter(order=order, to_status="pending").count() == 1


def test_partial_update_changes_only_the_fields_sent(api, sam):
    order = make_order(po_number="OLD")
    response = api(sam).patch(f"/api/v1/orders/{order.pk}/", {"po_number": "NEW", "tax": "1.00"}, format="json")
    assert response.status_code == 200, response.json()
    order.refresh_from_db()
    assert order.po_number == "NEW" and order.tax == Decimal("1.00") and order.total == Decimal("26.50")
    assert order.ship_country == "US"


def test_replaces_the_lines_of_a_pending_order(api, sam):
    order = make_order()
    response = api(sam).patch(f"/api/v1/orders/{order.pk}/",
                              {"lines": [{"sku": "X", "quantity": "3", "unit_price": "1.25"}]}, format="json")
    assert response.status_code == 200, response.json()
    assert response.json()["total"] == "3.75"
    assert list(order.lines.values_list("sku", flat=True)) == ["X"]


def test_refuses_to_edit_the_lines_of_a_shipped_order(api, sam):
    order = make_confirmed_order()
    client = api(sam)
    for step in ("start-processing", "ship"):
        assert client.post(f"/api/v1/orders/{order.pk}/{step}/", {}, format="json").status_code == 200
    response = client.patch(f"/api/v1/orders/{order.pk}/",
                            {"lines": [{"sku": "X", "quantity": "3", "unit_price": "1.25"}]}, format="json")
    assert response.status_code == 400
    assert response.json()["field"] == "lines"
    assert order.lines.count() == 2


def test_putting_back_an_unchanged_shipped_order_is_a_no_op(api, sam):
    order = make_confirmed_order()
    client = api(sam)
    for step in ("start-processing", "ship"):
        client.post(f"/api/v1/orders/{order.pk}/{step}/", {}, format="json")
    current = client.get(f"/api/v1/orders/{order.pk}/").json()
    current.pop("lines")
    response = client.put(f"/api/v1/orders/{order.pk}/", current, format="json")
    assert response.status_code == 200, response.json()
    assert response.json()["status"] == "shipped"


def test_refuses_to_change_the_money_of_a_confirmed_order(api, sam):
    order = make_confirmed_order()
    response = api(sam).patch(f"/api/v1/orders/{order.pk}/", {"tax": "9.99"}, format="json")
    assert response.status_code == 400
    assert response.json()["field"] == "tax"


def test_walks_an_order_through_its_whole_life_cycle(api, sam):
    order = make_order()
    client = api(sam)
    seen = []
    for step in ("confirm", "hold", "release", "start-processing", "ship", "deliver"):
        response = client.post(f"/api/v1/orders/{order.pk}/{step}/", {"reason": f"{step} via API"}, format="json")
        assert response.status_code == 200, (step, response.json())
        seen.append(response.json()["status"])
    assert seen == ["confirmed", "on_hold", "confirmed", "processing", "shipped", "delivered"]
    events = client.get(f"/api/v1/orders/{order.pk}/events/").json()["results"]
    assert [e["to_status"] for e in events] == ["pending", *seen]
    assert events[-1]["by"] == "sam" and events[-1]["reason"] == "deliver via API"


def test_refuses_to_cancel_without_a_reason(api, sam):
    order = make_order()
    response = api(sam).post(f"/api/v1/orders/{order.pk}/cancel/", {}, format="json")
    assert response.status_code == 400
    assert response.json()["field"] == "reason"
    order.refresh_from_db()
    assert order.status == OrderStatus.PENDING


def test_refuses_to_cancel_a_shipped_order_with_409(api, sam):
    order = make_confirmed_order()
    client = api(sam)
    for step in ("start-processing", "ship"):
        client.post(f"/api/v1/orders/{order.pk}/{step}/", {}, format="json")
    response = client.post(f"/api/v1/orders/{order.pk}/cancel/", {"reason": "customer changed mind"}, format="json")
    assert response.status_code == 409
    assert response.json()["code"] == "illegal_transition"


def test_lists_a_customers_orders_and_an_orders_invoices(api, sam, bill):
    customer = CustomerFactory()
    mine = [make_order(customer=customer) for _ in range(2)]
    make_order()
    body = api(sam).get(f"/api/v1/customers/{customer.pk}/orders/").json()
    assert sorted(o["id"] for o in body["results"]) == sorted(o.pk for o in mine)
    confirmed = make_confirmed_order(customer=customer)
    api(bill).post("/api/v1/invoices/", {"order": confirmed.pk}, format="json")
    invoices = api(bill).get(f"/api/v1/orders/{confirmed.pk}/invoices/").json()["results"]
    assert [i["order"] for i in invoices] == [confirmed.pk]


def test_relation_lists_of_a_missing_parent_answer_404(api, sam):
    assert api(sam).get("/api/v1/customers/999999/orders/").status_code == 404
    assert api(sam).get("/api/v1/orders/999999/events/").status_code == 404
    assert api(sam).get("/api/v1/orders/999999/invoices/").status_code == 404


def test_order_status_event_feed_filters_by_target_status(api, sam):
    order = make_confirmed_order()
    make_order()
    events = api(sam).get("/api/v1/order-events/?to_status=confirmed").json()["results"]
    assert [(e["order"], e["to_status"]) for e in events] == [(order.pk, "confirmed")]
