"""Customers over the API."""

from __future__ import annotations

from decimal import Decimal

import pytest

from orders.models import Customer
from tests.factories import CustomerFactory

pytestmark = pytest.mark.django_db


def test_creates_a_customer_through_the_service_which_normalises_it(api, sam):
    response = api(sam).post("/api/v1/customers/", {
        "code": " c0009 ", "name": "  Acme Hardware ", "email": " Billing@ACME.example.com ",
        "credit_limit": "50000.00"}, format="json")
    assert response.status_code == 201, response.json()
    body = response.json()
    assert (body["code"], body["name"], body["email"]) == ("C0009", "Acme Hardware", "billing@acme.example.com")
    assert body["status"] == "active" and body["country"] == "US" and body["credit_limit"] == "50000.00"


def test_refuses_a_duplicate_customer_code_naming_the_field(api, sam):
    CustomerFactory(code="C0001")
    response = api(sam).post("/api/v1/customers/", {"code": "c0001", "name": "Other"}, format="json")
    assert response.status_code == 400
    assert response.json()["field"] == "code"


def test_billing_puts_a_customer_on_credit_hold(api, bill):
    customer = CustomerFactory()
    response = api(bill).patch(f"/api/v1/customers/{customer.pk}/", {"status": "on_hold"}, format="json")
    assert response.status_code == 200, response.json()
    customer.refresh_from_db()
    assert customer.status == "on_hold"
    assert customer.credit_limit == Decimal("50000.00")  # untouched: not sent


def test_put_changes_only_the_fields_sent_and_needs_the_name(api, sam):
    customer = CustomerFactory(phone="555-0100")
    assert api(sam).put(f"/api/v1/customers/{customer.pk}/", {"city": "Albany"}, format="json").status_code == 400
    response = api(sam).put(f"/api/v1/customers/{customer.pk}/", {"name": "Renamed", "city": "Albany"}, format="json")
    assert response.status_code == 200
    customer.refresh_from_db()
    assert (customer.name, customer.city, customer.phone) == ("Renamed", "Albany", "555-0100")


def test_searches_customers_by_name_code_and_email(api, audrey):
    acme = CustomerFactory(name="Acme Hardware", code="C0100")
    CustomerFactory(name="Globex", code="C0200")
    client = api(audrey)
    for term in ("acme", "c01", "billing@c0100"):
        assert [c["id"] for c in client.get(f"/api/v1/customers/?search={term}").json()["results"]] == [acme.pk]
    assert Customer.objects.count() == 2
