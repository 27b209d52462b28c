"""The invoice admin: drafts through the services, invoicing actions, payments, the printable page.

bill (Billing) invoices, pays, voids and credits; sam (Sales) and audrey (Auditors) only read
invoices; nora (no role) sees nothing.
"""

from __future__ import annotations

from decimal import Decimal

import pytest
from django.urls import reverse

from invoices import services
from invoices.models import Invoice, InvoiceKind, InvoiceStatus
from tests.factories import CustomerFactory, make_confirmed_order, make_issued_invoice
from tests.orders.test_admin import action, csv_rows, form_data, messages_of, text_of

INVOICES = reverse("admin:invoices_invoice_changelist")
INVOICE_ADD = reverse("admin:invoices_invoice_add")


def invoice_url(invoice, view: str = "change", *args) -> str:
    return reverse(f"admin:invoices_invoice_{view}", args=[invoice.pk, *args])


def draft_invoice(**kwargs) -> Invoice:
    return services.invoice_create_for_order(order=make_confirmed_order(**kwargs))


# ---------------------------------------------------------------------------------------------
# Smoke
# ---------------------------------------------------------------------------------------------
def test_invoice_admin_pages_render_for_a_superuser(alice, client_for):
    client = client_for(alice)
    invoice = make_issued_invoice()
    listing = client.get(INVOICES)
    assert listing.status_code == 200 and invoice.number in listing.content.decode()
    assert client.get(INVOICES, {"q": invoice.number}).status_code == 200
    assert client.get(INVOICE_ADD).status_code == 200
    page = client.get(invoice_url(invoice))
    assert page.status_code == 200
    text = text_of(page)
    assert "Status history" in text and f"Issued as {invoice.number}" in text


def test_invoice_search_finds_by_number_customer_order_and_legacy_numbers(alice, client_for):
    client = client_for(alice)
    customer = CustomerFactory(code="C0777", name="Orchard Foods", email="ap@orchard.example.com")
    wanted = make_issued_invoice(customer=customer)
    Invoice.objects.filter(pk=wanted.pk).update(legacy_id="INV-0004567", legacy_order_number=881234)
    other = make_issued_invoice()

    def found(term):
        return [i.pk for i in client.get(INVOICES, {"q": term}).context["cl"].result_list]

    for term in (wanted.number, "c0777", "orchard", "ap@orchard", wanted.order.number, "inv-00045", "881234"):
        assert found(term) == [wanted.pk], term
    assert found(other.number) == [other.pk]


# ---------------------------------------------------------------------------------------------
# Drafts through the services
# ---------------------------------------------------------------------------------------------
def test_billing_create_a_manual_invoice_with_lines_and_the_totals_are_computed(bill, client_for):
    client = client_for(bill)
    customer = CustomerFactory()
    page = client.get(INVOICE_ADD)
    data = form_data(page, "invoice_form", customer=str(customer.pk), currency="USD", tax="8.25", discount="5.00",
                     notes="Setup fee", **{"lines-0-description": "Installation", "lines-0-quantity": "2",
                                           "lines-0-unit_price": "50.0000", "lines-0-sku": ""})
    response = client.post(INVOICE_ADD, data)
    assert response.status_code == 302, text_of(response)
    invoice = Invoice.objects.get(customer=customer)
    assert (invoice.net, invoice.tax, invoice.total) == (Decimal("95.00"), Decimal("8.25"), Decimal("103.25"))
    assert invoice.status == InvoiceStatus.DRAFT and invoice.order is None and invoice.created_by == bill
    assert invoice.status_events.get().reason == "Manual invoice drafted"


def test_a_manual_invoice_without_lines_is_refused_on_the_form(bill, client_for):
    client = client_for(bill)
    data = form_data(client.get(INVOICE_ADD), "invoice_form", customer=str(CustomerFactory().pk), tax="0")
    response = client.post(INVOICE_ADD, data)
    assert response.status_code == 200
    assert "A manual invoice needs at least one line." in text_of(response)
    assert not Invoice.objects.exists()


def test_editing_a_drafts_lines_and_discount_recomputes_its_totals(bill, client_for):
    client = client_for(bill)
    invoice = draft_invoice()  # 20.00 + 5.50
    data = form_data(client.get(invoice_url(invoice)), "invoice_form", discount="2.50",
                     **{"lines-1-unit_price": "10.0000"})
    response = client.post(invoice_url(invoice), data)
    assert response.status_code == 302, text_of(response)
    invoice.refresh_from_db()
    assert (invoice.discount, invoice.net, invoice.total) == (Decimal("2.50"), Decimal("27.50"), Decimal("27.50"))


def test_an_issued_invoice_is_read_only_and_a_stale_draft_page_cannot_change_it(bill, client_for):
    client = client_for(bill)
    invoice = draft_invoice()
    stale = client.get(invoice_url(invoice))  # drawn while a draft
    invoice = services.invoice_issue(invoice=invoice)
    page = client.get(invoice_url(invoice))
    assert page.status_code == 200
    html = page.content.decode()
    assert 'name="tax"' not in html and 'name="lines-0-quantity"' not in html
    response = client.post(invoice_url(invoice), form_data(stale, "invoice_form", tax="99.00"))
    assert response.status_code == 302
    assert messages_of(response) == [f"Invoice {invoice.number} is issued now and can no longer be edited here; "
                                     "your changes were not saved."]
    invoice.refresh_from_db()
    assert invoice.tax == Decimal("0.00")


def test_an_order_invoice_bills_the_orders_customer(bill, client_for):
    invoice = draft_invoice()
    html = client_for(bill).get(invoice_url(invoice)).content.decode()
    assert 'name="customer"' not in html
    assert reverse("admin:orders_order_change", args=[invoice.order_id]) in html
    assert reverse("admin:orders_customer_change", args=[invoice.customer_id]) in html


def test_sales_and_auditors_read_invoices_but_cannot_add_them(sam, audrey, client_for):
    invoice = draft_invoice()
    for user in (sam, audrey):
        client = client_for(user)
        assert client.get(invoice_url(invoice)).status_code == 200
        assert client.get(INVOICE_ADD).status_code == 403
        assert client.post(invoice_url(invoice), {"tax": "1"}).status_code == 403


# ---------------------------------------------------------------------------------------------
# Invoicing actions
# ---------------------------------------------------------------------------------------------
def test_issue_action_numbers_the_drafts_and_reports_what_it_refused(bill, client_for):
    drafts = [draft_invoice(), draft_invoice()]
    already = make_issued_invoice()
    [message] = messages_of(action(client_for(bill), INVOICES, "issue", [*drafts, already]))
    for draft in drafts:
        draft.refresh_from_db()
        assert draft.status == InvoiceStatus.ISSUED
    numbers = sorted(d.number for d in drafts)
    assert message.startswith(f"Issued 2 invoices ({numbers[0]}, {numbers[1]}); 1 refused: ")
    assert f"Invoice {already.number} is Issued; it cannot become Issued." in message


def test_void_asks_for_a_reason_and_refuses_a_paid_invoice(bill, client_for):
    client = client_for(bill)
    unpaid, paid = make_issued_invoice(), make_issued_invoice()
    services.invoice_record_payment(invoice=paid, amount=Decimal("1.00"))
    page = action(client, INVOICES, "void", [unpaid, paid])
    assert page.status_code == 200 and "Void the 2 invoices below?" in text_of(page)
    assert not Invoice.objects.filter(status=InvoiceStatus.VOID).exists()
    response = client.post(INVOICES, form_data(page, "oms-action-form", reason="Billed the wrong customer"))
    [message] = messages_of(response)
    assert message.startswith("Voided 1 invoice; 1 refused: ")
    assert f"Invoice {paid.number} has payments of 1.00" in message
    unpaid.refresh_from_db()
    assert (unpaid.status, unpaid.void_reason) == (InvoiceStatus.VOID, "Billed the wrong customer")


def test_credit_action_raises_full_credit_notes_after_asking_why(bill, client_for):
    client = client_for(bill)
    invoice = make_issued_invoice()
    page = action(client, INVOICES, "credit", [invoice])
    assert page.status_code == 200
    response = client.post(INVOICES, form_data(page, "oms-action-form", reason="Goods returned"))
    note = Invoice.objects.get(kind=InvoiceKind.CREDIT_NOTE)
    assert messages_of(response) == [f"Credited 1 invoice (credit notes {note.number})."]
    invoice.refresh_from_db()
    assert (invoice.status, invoice.credited_amount, note.total) == (
        InvoiceStatus.CREDITED, Decimal("25.50"), Decimal("25.50"))


def test_invoice_actions_need_their_permissions(sam, audrey, bill, client_for):
    def offered(user):
        page = client_for(user).get(INVOICES)
        form = page.context["action_form"]
        return set() if form is None else {name for name, _ in form.fields["action"].choices if name}

    assert offered(bill) == {"issue", "void", "credit"}
    assert offered(sam) == set() and offered(audrey) == set()
    draft = draft_invoice()
    assert action(client_for(audrey), INVOICES, "issue", [draft]).status_code == 200
    draft.refresh_from_db()
    assert draft.status == InvoiceStatus.DRAFT


# ---------------------------------------------------------------------------------------------
# Buttons on the invoice page, and the payment form
# ---------------------------------------------------------------------------------------------
def test_invoice_page_offers_the_buttons_its_status_allows(bill, audrey, client_for):
    draft = draft_invoice()
    html = client_for(bill).get(invoice_url(draft)).content.decode()
    assert invoice_url(draft, "step", "issue") in html and invoice_url(draft, "print") in html
    assert invoice_url(draft, "record_payment") not in html
    issued = make_issued_invoice()
    html = client_for(bill).get(invoice_url(issued)).content.decode()
    for url in (invoice_url(issued, "record_payment"), invoice_url(issued, "step", "void"),
                invoice_url(issued, "step", "credit")):
        assert url in html
    html = client_for(audrey).get(invoice_url(issued)).content.decode()
    assert invoice_url(issued, "print") in html and invoice_url(issued, "record_payment") not in html


def test_the_issue_button_issues_the_draft(bill, client_for):
    draft = draft_invoice()
    response = client_for(bill).post(invoice_url(draft, "step", "issue"))
    draft.refresh_from_db()
    assert response.status_code == 302 and draft.status == InvoiceStatus.ISSUED
    assert messages_of(response) == [f"Issued {draft.number}."]


def test_recording_payments_until_the_invoice_is_paid(bill, client_for):
    client = client_for(bill)
    invoice = make_issued_invoice()  # 25.50
    url = invoice_url(invoice, "record_payment")
    page = client.get(url)
    assert page.status_code == 200 and "balance due 25.50 USD" in text_of(page)
    assert page.context["form"].initial["amount"] == Decimal("25.50")

    response = client.post(url, {"amount": "10.00", "received_at_0": "2026-03-02", "received_at_1": "10:00",
                                 "reference": "WIRE-1"})
    assert response.status_code == 302
    assert messages_of(response) == [f"Recorded a payment of 10.00 USD on {invoice.number}. 15.50 USD left to pay."]

    too_much = client.post(url, {"amount": "20.00", "received_at_0": "2026-03-03", "received_at_1": "10:00"})
    assert too_much.status_code == 200
    assert "a payment of 20.00 would overpay it" in too_much.context["form"].errors["amount"][0]

    rest = client.post(url, {"amount": "15.50", "received_at_0": "2026-03-04", "received_at_1": "09:30",
                             "reference": "WIRE-2"})
    assert messages_of(rest) == [f"Recorded a payment of 15.50 USD on {invoice.number}. It is now paid in full."]
    invoice.refresh_from_db()
    assert (invoice.status, invoice.paid_amount) == (InvoiceStatus.PAID, Decimal("25.50"))
    assert list(invoice.payments.values_list("reference", flat=True)) == ["WIRE-1", "WIRE-2"]


def test_only_billing_may_record_payments(sam, audrey, nora, client_for):
    invoice = make_issued_invoice()
    url = invoice_url(invoice, "record_payment")
    for user in (sam, audrey, nora):
        assert client_for(user).get(url).status_code == 403
        assert client_for(user).post(url, {"amount": "1.00", "received_at_0": "2026-01-01",
                                           "received_at_1": "10:00"}).status_code == 403
    assert not invoice.payments.exists()


def test_payments_and_credit_notes_are_listed_on_their_invoice(bill, client_for):
    invoice = make_issued_invoice()
    services.invoice_record_payment(invoice=invoice, amount=Decimal("5.00"), reference="CHQ-88")
    note = services.credit_note_create(invoice=invoice, reason="Price match", amount=Decimal("3.00"))
    text = text_of(client_for(bill).get(invoice_url(invoice)))
    assert "CHQ-88" in text and note.number in text and "Price match" in text
    note_page = text_of(client_for(bill).get(invoice_url(note)))
    assert f"Credits: {invoice.number}" in note_page


# ---------------------------------------------------------------------------------------------
# The printable invoice
# ---------------------------------------------------------------------------------------------
def test_the_printable_invoice_shows_the_bill_lines_totals_and_balance(audrey, client_for):
    customer = CustomerFactory(name="Maple & Sons", address_line1="12 Elm St", city="Albany", state="NY",
                               postal_code="12207")
    invoice = make_issued_invoice(customer=customer, po_number="PO-PRINT-1", tax=Decimal("2.04"))
    services.invoice_record_payment(invoice=invoice, amount=Decimal("7.54"))
    page = client_for(audrey).get(invoice_url(invoice, "print"))
    assert page.status_code == 200
    text = text_of(page)
    for expected in (f"Invoice {invoice.number}", "Maple &amp; Sons", "12 Elm St", "Albany NY 12207",
                     invoice.order.number, "PO-PRINT-1", "SKU-1", "Widget", "20.00", "Gadget", "5.50",
                     "Net 25.50", "Tax 2.04", "Total USD 27.54", "Paid 7.54", "Balance due USD 20.00"):
        assert expected in text, expected
    html = page.content.decode()
    assert "@media print" in html and "DRAFT" not in html


def test_a_draft_prints_with_a_draft_watermark_and_no_number(bill, client_for):
    draft = draft_invoice()
    page = client_for(bill).get(invoice_url(draft, "print"))
    assert '<div class="watermark">DRAFT</div>' in page.content.decode()
    assert "Draft Invoice (not issued)" in text_of(page)


def test_a_credit_note_prints_as_a_credit_note(bill, client_for):
    invoice = make_issued_invoice()
    note = services.credit_note_create(invoice=invoice, reason="Damaged in transit")
    text = text_of(client_for(bill).get(invoice_url(note, "print")))
    assert f"Credit note {note.number}" in text
    assert f"reduces the amount owed on invoice {invoice.number} — Damaged in transit" in text
    assert "Total credited USD 25.50" in text and "Balance due" not in text


def test_the_invoice_is_also_a_pdf(bill, client_for):
    from invoices.views import pdf_renderer

    if pdf_renderer() is None:
        pytest.skip("WeasyPrint is not installed here; the PDF link falls back to the HTML page")
    response = client_for(bill).get(invoice_url(make_issued_invoice(), "pdf"))
    assert response["Content-Type"] == "application/pdf"
    assert response.content.startswith(b"%PDF")


def test_staff_without_a_role_cannot_print_invoices(nora, client_for):
    assert client_for(nora).get(invoice_url(make_issued_invoice(), "print")).status_code == 403


# ---------------------------------------------------------------------------------------------
# Lists: filters and CSV
# ---------------------------------------------------------------------------------------------
def test_invoices_csv_export_respects_the_filter(audrey, client_for):
    issued = make_issued_invoice(tax=Decimal("1.25"))
    draft_invoice()
    rows = csv_rows(client_for(audrey).get(reverse("admin:invoices_invoice_export_csv"), {"status__exact": "issued"}))
    assert [r["Number"] for r in rows] == [issued.number]
    assert (rows[0]["Net"], rows[0]["Tax"], rows[0]["Total"], rows[0]["Paid"]) == ("25.50", "1.25", "26.75", "0.00")
    assert rows[0]["Order"] == issued.order.number


def test_the_overdue_filter_lists_unpaid_invoices_past_due(bill, client_for):
    import datetime as dt

    from django.utils import timezone

    late = make_issued_invoice()
    Invoice.objects.filter(pk=late.pk).update(due_at=timezone.now() - dt.timedelta(days=3))
    make_issued_invoice()
    listing = client_for(bill).get(INVOICES, {"payment": "overdue"})
    assert [i.pk for i in listing.context["cl"].result_list] == [late.pk]
    assert "Issued (overdue)" in text_of(listing)


def test_an_orders_invoices_list_is_one_link_away(bill, client_for):
    invoice = make_issued_invoice()
    make_issued_invoice()
    listing = client_for(bill).get(INVOICES, {"order__id__exact": invoice.order_id})
    assert [i.pk for i in listing.context["cl"].result_list] == [invoice.pk]
