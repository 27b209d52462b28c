"""Every client mistake gets a 4xx with a body naming the field and the problem; never a 500."""

from __future__ import annotations

import pytest

from orders.models import Order
from tests.factories import CustomerFactory, make_confirmed_order, make_issued_invoice, make_order

pytestmark = pytest.mark.django_db


def _problem(response, status: int) -> dict:
    assert response.status_code == status, response.content
    body = response.json()
    assert set(body) >= {"code", "field", "detail", "errors"}
    assert body["errors"] and all(set(e) == {"field", "code", "detail"} for e in body["errors"])
    return body


def test_malformed_json_is_a_400_parse_error(api, sam):
    body = _problem(api(sam).post("/api/v1/orders/", '{"customer": 1,', content_type="application/json"), 400)
    assert body["code"] == "parse_error" and body["field"] is None


def test_a_body_that_is_not_json_is_a_415(api, sam):
    body = _problem(api(sam).post("/api/v1/orders/", "customer=1", content_type="application/x-www-form-urlencoded"),
                    415)
    assert body["code"] == "unsupported_media_type"


def test_text_the_database_cannot_store_is_a_400_not_a_500(api, sam):
    customer = CustomerFactory()
    for bad in ('"PO-\\ud800"', '"PO-\\u0000"'):
        raw = f'{{"customer": {customer.pk}, "po_number": {bad}}}'
        body = _problem(api(sam).post("/api/v1/orders/", raw, content_type="application/json"), 400)
        assert body["code"] == "invalid_text"
    assert not Order.objects.exists()


def test_wrong_types_name_each_field(api, sam):
    response = api(sam).post("/api/v1/orders/", {
        "customer": "abc", "tax": 2.5, "ordered_at": 12,
        "lines": [{"sku": "A", "quantity": "one", "unit_price": "1.00"}]}, format="json")
    body = _problem(response, 400)
    fields = {e["field"]: e["code"] for e in body["errors"]}
    assert fields == {"customer": "incorrect_type", "tax": "not_a_string", "ordered_at": "invalid",
                      "lines[0].quantity": "invalid"}


def test_a_json_number_for_money_is_refused_with_a_hint(api, sam):
    body = _problem(api(sam).post("/api/v1/orders/", {"customer": CustomerFactory().pk, "tax": 1}, format="json"), 400)
    assert body["field"] == "tax" and "as a string" in body["detail"]


def test_a_time_without_a_zone_is_refused(api, sam):
    response = api(sam).post("/api/v1/orders/", {"customer": CustomerFactory().pk,
                                                 "ordered_at": "2025-03-01T09:30:00"}, format="json")
    body = _problem(response, 400)
    assert (body["field"], body["code"]) == ("ordered_at", "naive")


def test_unknown_fields_are_refused_rather_than_ignored(api, sam):
    body = _problem(api(sam).post("/api/v1/orders/", {"customer": CustomerFactory().pk, "discout": "1.00"},
                                  format="json"), 400)
    assert (body["field"], body["code"]) == ("discout", "unknown_field")


def test_unknown_status_in_a_filter_is_a_400(api, sam):
    body = _problem(api(sam).get("/api/v1/orders/?status=lost"), 400)
    assert (body["field"], body["code"]) == ("status", "invalid_choice")


def test_unknown_query_parameters_are_refused(api, sam):
    body = _problem(api(sam).get("/api/v1/orders/?staus=pending"), 400)
    assert (body["field"], body["code"]) == ("staus", "unknown_parameter")


def test_filter_values_of_the_wrong_shape_are_400(api, sam):
    client = api(sam)
    for query, field in [("customer=abc", "customer"), ("customer=99999999999999999999999", "customer"),
                         ("updated_since=yesterday", "updated_since"), ("updated_since=2025-01-01T00:00:00",
                                                                         "updated_since"),
                         ("ordering=total", "ordering"), ("page_size=0", "page_size"), ("cursor=xyz", "cursor")]:
        assert _problem(client.get(f"/api/v1/orders/?{query}"), 400)["field"] == field, query


def test_an_illegal_transition_is_a_409(api, sam):
    order = make_confirmed_order()
    body = _problem(api(sam).post(f"/api/v1/orders/{order.pk}/confirm/", {}, format="json"), 409)
    assert (body["code"], body["field"]) == ("illegal_transition", "status")


def test_releasing_an_order_that_is_not_held_is_a_409(api, sam):
    body = _problem(api(sam).post(f"/api/v1/orders/{make_order().pk}/release/", {}, format="json"), 409)
    assert body["code"] == "illegal_transition"


def test_amount_overflow_is_a_400_on_the_field(api, sam, bill):
    customer = CustomerFactory()
    client = api(sam)
    too_many_digits = _problem(client.post("/api/v1/orders/", {"customer": customer.pk,
                                                              "freight": "12345678901234.00"}, format="json"), 400)
    assert (too_many_digits["field"], too_many_digits["code"]) == ("freight", "max_digits")
    line_overflow = _problem(client.post("/api/v1/orders/", {"customer": customer.pk, "lines": [
        {"sku": "A", "quantity": "999999999", "unit_price": "99999999999"}]}, format="json"), 400)
    assert (line_overflow["field"], line_overflow["code"]) == ("lines[0].quantity", "out_of_range")
    total_overflow = _problem(client.post("/api/v1/orders/", {"customer": customer.pk, "tax": "9999999999999.00",
                                                              "freight": "9999999999999.00"}, format="json"), 400)
    assert total_overflow["code"] == "out_of_range"
    invoice = make_issued_invoice()
    payment = _problem(api(bill).post(f"/api/v1/invoices/{invoice.pk}/pay/", {"amount": "1.001"}, format="json"), 400)
    assert (payment["field"], payment["code"]) == ("amount", "max_decimal_places")
    assert not Order.objects.filter(customer=customer).exists()


def test_references_to_missing_records_name_the_field(api, sam, bill):
    body = _problem(api(sam).post("/api/v1/orders/", {"customer": 987654}, format="json"), 400)
    assert (body["field"], body["code"]) == ("customer", "does_not_exist")
    body = _problem(api(bill).post("/api/v1/invoices/", {"order": 987654}, format="json"), 400)
    assert (body["field"], body["code"]) == ("order", "does_not_exist")


def test_missing_records_and_urls_are_json_404s(api, sam):
    client = api(sam)
    for path in ("/api/v1/orders/987654/", "/api/v1/orders/99999999999999999999999/", "/api/v1/nothing/",
                 "/api/v1/orders/987654/confirm/"):
        method = client.post if path.endswith("confirm/") else client.get
        assert _problem(method(path), 404)["code"] == "not_found", path


def test_a_method_the_resource_does_not_have_is_a_405(api, alice):
    order = make_order()
    body = _problem(api(alice).delete(f"/api/v1/orders/{order.pk}/"), 405)
    assert body["code"] == "method_not_allowed"
    assert Order.objects.filter(pk=order.pk).exists()


def test_a_bad_token_is_a_401_naming_the_problem(api):
    client = api()
    client.credentials(HTTP_AUTHORIZATION="Bearer not-a-token")
    body = _problem(client.get("/api/v1/orders/"), 401)
    assert body["code"] == "token_not_valid"
