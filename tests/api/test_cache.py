"""The hot-read cache: served from Redis, and never stale after a write through any path.

These tests commit for real (transaction=True): invalidation runs on commit, as in production.
"""

from __future__ import annotations

from decimal import Decimal

import pytest
from django.contrib import admin
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext

from invoices import services as invoice_services
from oms.cache import bump_all, hot_cache
from orders import services as order_services
from orders.models import Customer, Order
from tests.factories import CustomerFactory, make_issued_invoice, make_order

pytestmark = pytest.mark.django_db(transaction=True)


def _get(client, path: str):
    response = client.get(path)
    assert response.status_code == 200, response.content
    return response.json(), response["X-Cache"]


def test_second_read_of_an_order_is_a_cache_hit_that_does_not_query_orders(api, sam):
    order = make_order()
    client = api(sam)
    assert _get(client, f"/api/v1/orders/{order.pk}/")[1] == "miss"
    with CaptureQueriesContext(connection) as queries:
        body, cache = _get(client, f"/api/v1/orders/{order.pk}/")
    assert cache == "hit" and body["number"] == order.number
    assert not [q for q in queries.captured_queries if "orders_order" in q["sql"]]


def test_cache_control_no_cache_reads_the_database(api, sam):
    order = make_order()
    client = api(sam)
    _get(client, f"/api/v1/orders/{order.pk}/")
    response = client.get(f"/api/v1/orders/{order.pk}/", HTTP_CACHE_CONTROL="no-cache")
    assert response["X-Cache"] == "miss"


def test_read_after_an_api_write_is_fresh(api, sam):
    order = make_order()
    client = api(sam)
    _get(client, f"/api/v1/orders/{order.pk}/")
    _get(client, "/api/v1/orders/")
    assert client.patch(f"/api/v1/orders/{order.pk}/", {"po_number": "PO-NEW"}, format="json").status_code == 200
    body, cache = _get(client, f"/api/v1/orders/{order.pk}/")
    assert (body["po_number"], cache) == ("PO-NEW", "miss")
    listed, cache = _get(client, "/api/v1/orders/")
    assert (listed["results"][0]["po_number"], cache) == ("PO-NEW", "miss")


def test_read_after_a_service_write_is_fresh(api, sam):
    order = make_order()
    client = api(sam)
    assert _get(client, f"/api/v1/orders/{order.pk}/")[0]["status"] == "pending"
    assert _get(client, f"/api/v1/orders/{order.pk}/events/")[1] == "miss"
    order_services.order_confirm(order=order, by=sam)
    assert _get(client, f"/api/v1/orders/{order.pk}/")[0]["status"] == "confirmed"
    events, _ = _get(client, f"/api/v1/orders/{order.pk}/events/")
    assert [e["to_status"] for e in events["results"]] == ["pending", "confirmed"]


def test_read_after_a_customer_write_is_fresh(api, bill):
    customer = CustomerFactory()
    client = api(bill)
    _get(client, f"/api/v1/customers/{customer.pk}/")
    customer.status = "on_hold"
    order_services.customer_save(customer=customer, by=bill)
    assert _get(client, f"/api/v1/customers/{customer.pk}/")[0]["status"] == "on_hold"


def test_read_after_a_payment_and_a_credit_note_is_fresh(api, bill):
    invoice = make_issued_invoice()
    client = api(bill)
    _get(client, f"/api/v1/invoices/{invoice.pk}/")
    invoice_services.invoice_record_payment(invoice=invoice, amount=Decimal("5.50"), by=bill)
    assert _get(client, f"/api/v1/invoices/{invoice.pk}/")[0]["paid_amount"] == "5.50"
    invoice_services.credit_note_create(invoice=invoice, reason="Damaged", amount=Decimal("20.00"), by=bill)
    body, cache = _get(client, f"/api/v1/invoices/{invoice.pk}/")
    assert (body["credited_amount"], body["status"], cache) == ("20.00", "paid", "miss")


def test_read_after_a_bulk_write_that_bumps_everything_is_fresh(api, sam):
    """The legacy migration upserts in bulk, bypassing the services, and calls bump_all() per batch."""
    orders = [make_order() for _ in range(3)]
    client = api(sam)
    for order in orders:
        _get(client, f"/api/v1/orders/{order.pk}/")
    _get(client, "/api/v1/orders/")
    with transaction.atomic():
        Order.objects.filter(pk__in=[o.pk for o in orders]).update(notes="migrated")
        bump_all()
    for order in orders:
        assert _get(client, f"/api/v1/orders/{order.pk}/")[0]["notes"] == "migrated"
    assert {o["notes"] for o in _get(client, "/api/v1/orders/")[0]["results"]} == {"migrated"}


def test_a_rolled_back_write_does_not_evict(api, sam):
    order = make_order()
    client = api(sam)
    _get(client, f"/api/v1/orders/{order.pk}/")
    with pytest.raises(RuntimeError), transaction.atomic():
        order_services.order_update(order=order, po_number="NEVER", by=sam)
        raise RuntimeError("the caller gives up")
    body, cache = _get(client, f"/api/v1/orders/{order.pk}/")
    assert (body["po_number"], cache) == ("", "hit")


def test_an_evicted_token_means_a_miss_never_an_old_value(api, sam):
    """Tokens are random: if Redis evicts one, the next reader makes a new one, not '0' again."""
    order = make_order()
    client = api(sam)
    _get(client, f"/api/v1/orders/{order.pk}/")
    from django.core.cache import caches

    caches["hot"].delete(f"t:order:{order.pk}")
    body, cache = _get(client, f"/api/v1/orders/{order.pk}/")
    assert cache == "miss" and body["id"] == order.pk


@pytest.mark.skipif(not admin.site.is_registered(Customer), reason="the customer admin is not registered yet")
def test_read_after_an_admin_save_is_fresh(api, alice, client_for):
    customer = CustomerFactory(name="Before")
    reader = api(alice)
    _get(reader, f"/api/v1/customers/{customer.pk}/")
    browser = client_for(alice)
    page = browser.get(f"/admin/orders/customer/{customer.pk}/change/")
    data = _form_data(page.context)
    data["name"] = "After"
    saved = browser.post(f"/admin/orders/customer/{customer.pk}/change/", data)
    assert saved.status_code == 302, saved.context["adminform"].form.errors if saved.context else saved
    assert _get(reader, f"/api/v1/customers/{customer.pk}/")[0]["name"] == "After"


def _form_data(context) -> dict:
    """The POST an admin change page would send unchanged: its form and inline formsets."""
    data = {}
    form = context["adminform"].form
    for name, field in form.fields.items():
        value = form.initial.get(name, field.initial)
        if value is not None:
            data[name] = value
    for inline in context.get("inline_admin_formsets", []):
        formset = inline.formset
        for name, value in formset.management_form.initial.items():
            data[f"{formset.prefix}-{name}"] = value
        for sub in formset.forms:
            for name, field in sub.fields.items():
                value = sub.initial.get(name, field.initial)
                if value is not None:
                    data[f"{sub.prefix}-{name}"] = value.pk if hasattr(value, "pk") else value
    return data


def test_local_layer_alone_serves_when_redis_is_not_configured(api, sam, settings):
    caches_without_hot = {k: v for k, v in settings.CACHES.items() if k != "hot"}
    settings.CACHES = caches_without_hot
    hot_cache.reset()
    order = make_order()
    client = api(sam)
    assert _get(client, f"/api/v1/orders/{order.pk}/")[1] == "miss"
    assert _get(client, f"/api/v1/orders/{order.pk}/")[1] == "hit"
    order_services.order_update(order=order, po_number="LOCAL", by=sam)
    assert _get(client, f"/api/v1/orders/{order.pk}/")[0]["po_number"] == "LOCAL"
