"""Invoices over the API: drafting, editing drafts only, issuing, paying, voiding, crediting."""

from __future__ import annotations

from decimal import Decimal

import pytest

from invoices.models import Invoice, InvoiceKind, InvoiceStatus, Payment
from tests.factories import CustomerFactory, make_confirmed_order, make_issued_invoice

pytestmark = pytest.mark.django_db


def test_drafts_the_invoice_of_a_confirmed_order(api, bill):
    order = make_confirmed_order()
    response = api(bill).post("/api/v1/invoices/", {"order": order.pk}, format="json")
    assert response.status_code == 201, response.json()
    body = response.json()
    assert body["status"] == "draft" and body["number"] is None and body["order"] == order.pk
    assert body["total"] == "25.50" and len(body["lines"]) == 2
    assert response["Location"].endswith(f"/api/v1/invoices/{body['id']}/")


def test_refuses_to_invoice_an_order_twice(api, bill):
    order = make_confirmed_order()
    client = api(bill)
    assert client.post("/api/v1/invoices/", {"order": order.pk}, format="json").status_code == 201
    second = client.post("/api/v1/invoices/", {"order": order.pk}, format="json")
    assert second.status_code == 400
    assert "already invoiced" in second.json()["detail"]


def test_refuses_order_and_manual_fields_together(api, bill):
    order = make_confirmed_order()
    response = api(bill).post("/api/v1/invoices/", {"order": order.pk, "tax": "1.00"}, format="json")
    assert response.status_code == 400
    assert [(e["field"], e["code"]) for e in response.json()["errors"]] == [("tax", "not_allowed")]


def test_drafts_a_manual_invoice(api, bill):
    customer = CustomerFactory()
    response = api(bill).post("/api/v1/invoices/", {
        "customer": customer.pk, "tax": "8.00", "due_at": "2025-04-30T00:00:00Z", "notes": "Installation",
        "lines": [{"description": "On-site installation", "quantity": "2", "unit_price": "50.0000"}]}, format="json")
    assert response.status_code == 201, response.json()
    body = response.json()
    assert (body["net"], body["tax"], body["total"]) == ("100.00", "8.00", "108.00")
    assert body["due_at"] == "2025-04-30T00:00:00Z"


def test_edits_a_draft_but_never_an_issued_invoice(api, bill):
    order = make_confirmed_order()
    client = api(bill)
    invoice_id = client.post("/api/v1/invoices/", {"order": order.pk}, format="json").json()["id"]
    edited = client.patch(f"/api/v1/invoices/{invoice_id}/", {"notes": "Net 30", "tax": "1.00"}, format="json")
    assert edited.status_code == 200, edited.json()
    assert edited.json()["total"] == "26.50"
    assert client.post(f"/api/v1/invoices/{invoice_id}/issue/", format="json").status_code == 200
    refused = client.patch(f"/api/v1/invoices/{invoice_id}/", {"notes": "changed"}, format="json")
    assert refused.status_code == 400
    assert "never edited" in refused.json()["detail"]
    assert Invoice.objects.get(pk=invoice_id).notes == "Net 30"


def test_issuing_gives_the_invoice_its_number_and_due_date(api, bill):
    order = make_confirmed_order()
    client = api(bill)
    invoice_id = client.post("/api/v1/invoices/", {"order": order.pk}, format="json").json()["id"]
    body = client.post(f"/api/v1/invoices/{invoice_id}/issue/", format="json").json()
    assert body["status"] == "issued"
    assert body["number"].startswith("INV-") and body["invoiced_at"].endswith("Z") and body["due_at"]


def test_issuing_an_issued_invoice_is_an_illegal_transition(api, bill):
    invoice = make_issued_invoice()
    response = api(bill).post(f"/api/v1/invoices/{invoice.pk}/issue/", format="json")
    assert response.status_code == 409
    assert response.json()["code"] == "illegal_transition"


def test_payments_settle_the_invoice(api, bill):
    invoice = make_issued_invoice()
    client = api(bill)
    part = client.post(f"/api/v1/invoices/{invoice.pk}/pay/", {"amount": "10.00", "reference": "W1"}, format="json")
    assert part.status_code == 200, part.json()
    assert (part.json()["status"], part.json()["balance_due"]) == ("issued", "15.50")
    rest = client.post(f"/api/v1/invoices/{invoice.pk}/pay/",
                       {"amount": "15.50", "received_at": "2025-03-14T10:00:00Z"}, format="json")
    body = rest.json()
    assert (body["status"], body["balance_due"], body["paid_amount"]) == ("paid", "0.00", "25.50")
    # Payments are listed by the date the money arrived: the back-dated one comes first.
    assert [p["amount"] for p in body["payments"]] == ["15.50", "10.00"]


def test_refuses_an_overpayment(api, bill):
    invoice = make_issued_invoice()
    response = api(bill).post(f"/api/v1/invoices/{invoice.pk}/pay/", {"amount": "25.51"}, format="json")
    assert response.status_code == 400 and response.json()["field"] == "amount"
    assert not Payment.objects.exists()


def test_paying_a_draft_is_an_illegal_transition(api, bill):
    order = make_confirmed_order()
    client = api(bill)
    invoice_id = client.post("/api/v1/invoices/", {"order": order.pk}, format="json").json()["id"]
    response = client.post(f"/api/v1/invoices/{invoice_id}/pay/", {"amount": "1.00"}, format="json")
    assert response.status_code == 409


def test_voids_an_unpaid_invoice_with_a_reason(api, bill):
    invoice = make_issued_invoice()
    client = api(bill)
    assert client.post(f"/api/v1/invoices/{invoice.pk}/void/", {}, format="json").json()["field"] == "reason"
    response = client.post(f"/api/v1/invoices/{invoice.pk}/void/", {"reason": "Billed twice"}, format="json")
    assert response.status_code == 200
    assert (response.json()["status"], response.json()["void_reason"]) == ("void", "Billed twice")


def test_credits_an_invoice_in_part_and_answers_with_the_credit_note(api, bill):
    invoice = make_issued_invoice()
    response = api(bill).post(f"/api/v1/invoices/{invoice.pk}/credit/",
                              {"reason": "Damaged item", "amount": "5.50"}, format="json")
    assert response.status_code == 201, response.json()
    note = response.json()
    assert note["kind"] == "credit_note" and note["status"] == "issued" and note["total"] == "5.50"
    assert note["credited_invoice"] == invoice.pk
    original = api(bill).get(f"/api/v1/invoices/{invoice.pk}/").json()
    assert (original["credited_amount"], original["balance_due"]) == ("5.50", "20.00")


def test_invoice_list_filters_overdue_and_kind(api, bill):
    overdue = make_issued_invoice()
    Invoice.objects.filter(pk=overdue.pk).update(due_at="2000-01-01T00:00:00Z")
    current = make_issued_invoice()
    client = api(bill)
    assert [i["id"] for i in client.get("/api/v1/invoices/?overdue=true").json()["results"]] == [overdue.pk]
    assert [i["id"] for i in client.get("/api/v1/invoices/?overdue=false").json()["results"]] == [current.pk]
    client.post(f"/api/v1/invoices/{current.pk}/credit/", {"reason": "Goodwill", "amount": "1.00"}, format="json")
    notes = client.get("/api/v1/invoices/?kind=credit_note").json()["results"]
    assert [n["kind"] for n in notes] == [InvoiceKind.CREDIT_NOTE]
    issued = client.get("/api/v1/invoices/?status=issued&kind=invoice").json()["results"]
    assert {i["id"] for i in issued} == {overdue.pk, current.pk}
    assert Invoice.objects.get(pk=current.pk).status == InvoiceStatus.ISSUED
    assert Decimal(client.get(f"/api/v1/invoices/{current.pk}/").json()["balance_due"]) == Decimal("24.50")
