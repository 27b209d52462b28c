"""Idempotency-Key: duplicate POSTs with the same key create one record."""

from __future__ import annotations

import threading

import pytest
from django.db import connection

from invoices.models import Payment
from oms.api.models import IdempotencyRecord
from orders.models import Order, OrderStatusEvent
from tests.factories import CustomerFactory, make_issued_invoice, make_order


def _new_order(customer) -> dict:
    return {"customer": customer.pk, "lines": [{"sku": "A", "quantity": "1", "unit_price": "9.99"}]}


@pytest.mark.django_db
def test_a_retried_create_returns_the_first_answer_and_creates_one_order(api, sam):
    customer = CustomerFactory()
    client = api(sam)
    first = client.post("/api/v1/orders/", _new_order(customer), format="json", HTTP_IDEMPOTENCY_KEY="k-1")
    again = client.post("/api/v1/orders/", _new_order(customer), format="json", HTTP_IDEMPOTENCY_KEY="k-1")
    assert first.status_code == again.status_code == 201
    assert again.json() == first.json()
    assert again["Idempotent-Replayed"] == "true" and again["Location"] == first["Location"]
    assert Order.objects.count() == 1


@pytest.mark.django_db
def test_a_retried_life_cycle_step_is_replayed_not_refused(api, sam):
    order = make_order()
    client = api(sam)
    responses = [client.post(f"/api/v1/orders/{order.pk}/confirm/", {}, format="json", HTTP_IDEMPOTENCY_KEY="c-1")
                 for _ in range(2)]
    assert [r.status_code for r in responses] == [200, 200]
    assert OrderStatusEvent.objects.filter(order=order, to_status="confirmed").count() == 1


@pytest.mark.django_db
def test_a_retried_payment_is_recorded_once(api, bill):
    invoice = make_issued_invoice()
    client = api(bill)
    for _ in range(3):
        response = client.post(f"/api/v1/invoices/{invoice.pk}/pay/", {"amount": "5.00"}, format="json",
                               HTTP_IDEMPOTENCY_KEY="pay-77")
        assert response.status_code == 200
    assert Payment.objects.filter(invoice=invoice).count() == 1


@pytest.mark.django_db
def test_reusing_a_key_for_another_request_is_a_422(api, sam):
    customer = CustomerFactory()
    client = api(sam)
    client.post("/api/v1/orders/", _new_order(customer), format="json", HTTP_IDEMPOTENCY_KEY="k-2")
    other = {**_new_order(customer), "po_number": "different"}
    response = client.post("/api/v1/orders/", other, format="json", HTTP_IDEMPOTENCY_KEY="k-2")
    assert response.status_code == 422
    assert response.json()["code"] == "idempotency_key_reused"
    assert Order.objects.count() == 1


@pytest.mark.django_db
def test_keys_belong_to_their_caller(api, sam, alice):
    customer = CustomerFactory()
    for user in (sam, alice):
        assert api(user).post("/api/v1/orders/", _new_order(customer), format="json",
                              HTTP_IDEMPOTENCY_KEY="shared").status_code == 201
    assert Order.objects.count() == 2


@pytest.mark.django_db
def test_a_refused_request_keeps_no_record_so_the_corrected_retry_runs(api, sam):
    customer = CustomerFactory()
    client = api(sam)
    bad = client.post("/api/v1/orders/", {"customer": customer.pk, "tax": "-1.00"}, format="json",
                      HTTP_IDEMPOTENCY_KEY="k-3")
    assert bad.status_code == 400
    assert not IdempotencyRecord.objects.exists()
    good = client.post("/api/v1/orders/", {"customer": customer.pk, "tax": "1.00"}, format="json",
                       HTTP_IDEMPOTENCY_KEY="k-3")
    assert good.status_code == 201


@pytest.mark.django_db
def test_a_malformed_key_is_a_400(api, sam):
    response = api(sam).post("/api/v1/orders/", _new_order(CustomerFactory()), format="json",
                             HTTP_IDEMPOTENCY_KEY="x" * 256)
    assert response.status_code == 400
    assert response.json()["field"] == "Idempotency-Key"


@pytest.mark.django_db(transaction=True)
def test_concurrent_duplicates_create_one_order(api, sam):
    """Two requests with one key at the same moment: the second waits on the first's row, then replays it."""
    customer = CustomerFactory()
    barrier = threading.Barrier(4)
    results: list = []

    def post():
        try:
            barrier.wait()
            response = api(sam).post("/api/v1/orders/", _new_order(customer), format="json",
                                     HTTP_IDEMPOTENCY_KEY="race-1")
            results.append((response.status_code, response.json()["id"]))
        finally:
            connection.close()

    threads = [threading.Thread(target=post) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert len(results) == 4
    assert {status for status, _ in results} == {201}
    assert len({order_id for _, order_id in results}) == 1
    assert Order.objects.count() == 1


@pytest.mark.django_db
def test_expired_keys_are_purged_and_start_over(api, sam, settings):
    import datetime as dt
    from io import StringIO

    from django.core.management import call_command
    from django.utils import timezone

    customer = CustomerFactory()
    client = api(sam)
    client.post("/api/v1/orders/", _new_order(customer), format="json", HTTP_IDEMPOTENCY_KEY="old")
    IdempotencyRecord.objects.update(created_at=timezone.now() - dt.timedelta(hours=settings.API_IDEMPOTENCY_HOURS + 1))
    # An expired key is a new request: it acts again.
    assert client.post("/api/v1/orders/", _new_order(customer), format="json",
                       HTTP_IDEMPOTENCY_KEY="old").status_code == 201
    assert Order.objects.count() == 2
    IdempotencyRecord.objects.update(created_at=timezone.now() - dt.timedelta(hours=settings.API_IDEMPOTENCY_HOURS + 1))
    out = StringIO()
    call_command("purge_idempotency_keys", stdout=out)
    assert "Deleted 1 " in out.getvalue()
    assert not IdempotencyRecord.objects.exists()
