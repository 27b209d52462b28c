"""Every endpoint × every role: allowed roles succeed, others get 403 (anonymous 401) and change nothing.

The expected roles are read off oms/roles.py's permission lists by hand, on purpose: a change to
the roles that widens or narrows API access has to be made here too, knowingly.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import pytest

from invoices import services as invoice_services
from invoices.models import Invoice, InvoiceStatusEvent, Payment
from orders import services as order_services
from orders.models import Customer, Order, OrderStatusEvent
from tests.factories import CustomerFactory, make_confirmed_order, make_issued_invoice, make_order

pytestmark = pytest.mark.django_db

READERS = {"alice", "sam", "bill", "otto", "audrey"}
SALES = {"alice", "sam"}
BILLING = {"alice", "bill"}
CUSTOMER_EDITORS = {"alice", "sam", "bill"}
EVERYONE = ["alice", "sam", "bill", "otto", "audrey", "nora", None]


def _order_in(*steps):
    def make():
        order = make_order()
        for step in steps:
            step(order=order, by=None, reason="set-up")
        return order
    return make


def _draft_invoice():
    return invoice_services.invoice_create_for_order(order=make_confirmed_order())


@dataclass(frozen=True)
class Endpoint:
    name: str
    method: str
    allowed: set[str]
    # Builds the records the call needs and returns (path, body, status expected when allowed).
    setup: Callable[[], tuple[str, dict | None, int]]


def _path(template: str, make) -> Callable[[], tuple[str, dict | None, int]]:
    def setup():
        return template.format(id=make().pk), None, 200
    return setup


def _post(template: str, make, body: dict, expected: int = 200):
    def setup():
        record = make() if make else None
        return template.format(id=record.pk if record else ""), body, expected
    return setup


ENDPOINTS = [
    # Reads
    Endpoint("list customers", "get", READERS, lambda: ("/api/v1/customers/", None, 200)),
    Endpoint("get customer", "get", READERS, _path("/api/v1/customers/{id}/", CustomerFactory)),
    Endpoint("list customer orders", "get", READERS, _path("/api/v1/customers/{id}/orders/", CustomerFactory)),
    Endpoint("list orders", "get", READERS, lambda: ("/api/v1/orders/", None, 200)),
    Endpoint("get order", "get", READERS, _path("/api/v1/orders/{id}/", make_order)),
    Endpoint("list order events", "get", READERS, _path("/api/v1/orders/{id}/events/", make_order)),
    Endpoint("list order invoices", "get", READERS, _path("/api/v1/orders/{id}/invoices/", make_order)),
    Endpoint("order event feed", "get", READERS, lambda: ("/api/v1/order-events/", None, 200)),
    Endpoint("get order event", "get", READERS,
             _path("/api/v1/order-events/{id}/", lambda: make_order().status_events.get())),
    Endpoint("list invoices", "get", READERS, lambda: ("/api/v1/invoices/", None, 200)),
    Endpoint("get invoice", "get", READERS, _path("/api/v1/invoices/{id}/", make_issued_invoice)),
    Endpoint("invoice event feed", "get", READERS, lambda: ("/api/v1/invoice-events/", None, 200)),
    Endpoint("get invoice event", "get", READERS,
             _path("/api/v1/invoice-events/{id}/", lambda: make_issued_invoice().status_events.first())),
    Endpoint("API root", "get", READERS | {"nora"}, lambda: ("/api/v1/", None, 200)),
    # Customers
    Endpoint("create customer", "post", SALES,
             _post("/api/v1/customers/", None, {"name": "New", "code": "C-NEW"}, 201)),
    Endpoint("update customer", "patch", CUSTOMER_EDITORS,
             _post("/api/v1/customers/{id}/", CustomerFactory, {"phone": "555-0199"})),
    Endpoint("replace customer", "put", CUSTOMER_EDITORS,
             _post("/api/v1/customers/{id}/", CustomerFactory, {"name": "Renamed"})),
    # Orders
    Endpoint("create order", "post", SALES,
             lambda: ("/api/v1/orders/", {"customer": CustomerFactory().pk}, 201)),
    Endpoint("update order", "patch", SALES, _post("/api/v1/orders/{id}/", make_order, {"po_number": "PO-1"})),
    Endpoint("replace order", "put", SALES,
             lambda: (lambda o: (f"/api/v1/orders/{o.pk}/", {"customer": o.customer_id, "notes": "x"}, 200))(
                 make_order())),
    Endpoint("confirm order", "post", SALES, _post("/api/v1/orders/{id}/confirm/", make_order, {})),
    Endpoint("start processing", "post", SALES,
             _post("/api/v1/orders/{id}/start-processing/", make_confirmed_order, {})),
    Endpoint("ship order", "post", SALES,
             _post("/api/v1/orders/{id}/ship/", _order_in(order_services.order_confirm,
                                                         order_services.order_start_processing), {})),
    Endpoint("deliver order", "post", SALES,
             _post("/api/v1/orders/{id}/deliver/", _order_in(order_services.order_confirm,
                                                            order_services.order_start_processing,
                                                            order_services.order_ship), {})),
    Endpoint("hold order", "post", SALES, _post("/api/v1/orders/{id}/hold/", make_order, {"reason": "check"})),
    Endpoint("release order", "post", SALES,
             _post("/api/v1/orders/{id}/release/", _order_in(order_services.order_hold), {})),
    Endpoint("cancel order", "post", SALES, _post("/api/v1/orders/{id}/cancel/", make_order, {"reason": "dup"})),
    # Invoices
    Endpoint("create invoice", "post", BILLING,
             lambda: ("/api/v1/invoices/", {"order": make_confirmed_order().pk}, 201)),
    Endpoint("update draft invoice", "patch", BILLING,
             _post("/api/v1/invoices/{id}/", _draft_invoice, {"notes": "Net 30"})),
    Endpoint("replace draft invoice", "put", BILLING,
             _post("/api/v1/invoices/{id}/", _draft_invoice, {"notes": "Net 30"})),
    Endpoint("issue invoice", "post", BILLING, _post("/api/v1/invoices/{id}/issue/", _draft_invoice, {})),
    Endpoint("pay invoice", "post", BILLING,
             _post("/api/v1/invoices/{id}/pay/", make_issued_invoice, {"amount": "1.00"})),
    Endpoint("void invoice", "post", BILLING,
             _post("/api/v1/invoices/{id}/void/", make_issued_invoice, {"reason": "error"})),
    Endpoint("credit invoice", "post", BILLING,
             _post("/api/v1/invoices/{id}/credit/", make_issued_invoice, {"reason": "goodwill"}, 201)),
]


def _snapshot() -> tuple:
    """What a refused call must leave as it was."""
    return (
        Customer.objects.count(), list(Customer.objects.order_by("pk").values_list("phone", "name")),
        Order.objects.count(), list(Order.objects.order_by("pk").values_list("status", "po_number", "notes")),
        OrderStatusEvent.objects.count(), Invoice.objects.count(),
        list(Invoice.objects.order_by("pk").values_list("status", "notes")),
        InvoiceStatusEvent.objects.count(), Payment.objects.count(),
    )


@pytest.mark.parametrize("username", EVERYONE, ids=[u or "anonymous" for u in EVERYONE])
@pytest.mark.parametrize("endpoint", ENDPOINTS, ids=[e.name for e in ENDPOINTS])
def test_endpoint_answers_each_role_as_its_permissions_say(endpoint, username, api, request):
    user = request.getfixturevalue(username) if username else None
    path, body, expected = endpoint.setup()
    before = _snapshot()
    call = getattr(api(user), endpoint.method)
    response = call(path, body, format="json") if body is not None else call(path)
    if username is None:
        assert response.status_code == 401
        assert response.json()["code"] == "not_authenticated"
        assert response["WWW-Authenticate"].startswith("Bearer")
    elif username in endpoint.allowed:
        assert response.status_code == expected, response.content
    else:
        assert response.status_code == 403, response.content
        assert response.json()["code"] == "permission_denied"
    if response.status_code in (401, 403):
        assert _snapshot() == before


def test_an_inactive_machine_account_is_refused_at_once(api, sam):
    client = api(sam)
    assert client.get("/api/v1/orders/").status_code == 200
    sam.is_active = False
    sam.save()
    response = client.get("/api/v1/orders/")
    assert response.status_code == 401
    assert response.json()["code"] == "user_inactive"
