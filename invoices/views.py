"""The printable invoice (HTML for the browser's print dialog, and PDF when WeasyPrint is installed).

These views take an invoice the admin has already fetched and permission-checked; the admin
wires them (InvoiceAdmin.get_urls), so no URL here is reachable without staff login.
"""

from __future__ import annotations

import logging
import warnings
from functools import cache

from django.conf import settings
from django.http import HttpResponse
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import timezone

from invoices.models import Invoice, InvoiceKind, InvoiceStatus
from oms.admin_tools import money

#: Who issues the invoices. Override with settings.INVOICE_ISSUER (same keys).
DEFAULT_ISSUER = {
    "name": "Order Management System",
    "address_lines": [],
    "email": "",
    "phone": "",
    "tax_id": "",
    "paper": "letter",  # or "A4"; the layout fits both
}


@cache
def pdf_renderer():
    """WeasyPrint's HTML class, or None where it (or the Pango library it needs) is not installed."""
    # WeasyPrint and fontTools log every rendering step at INFO (from the import on): a dozen
    # lines per invoice printed. Their warnings still come through.
    for name in ("weasyprint", "weasyprint.progress", "fontTools"):
        logging.getLogger(name).setLevel(logging.WARNING)
    try:
        with warnings.catch_warnings():
            # A notice that a future WeasyPrint will need the HarfBuzz-Subset system library: a
            # matter for the server's packages (libharfbuzz-subset), not for this code.
            warnings.simplefilter("ignore", DeprecationWarning)
            from weasyprint import HTML
    except (ImportError, OSError):
        return None
    return HTML


def _quantity(value) -> str:
    """3.000 → '3', 2.500 → '2.5': quantities are printed without trailing zeros."""
    text = format(value, "f")
    return text.rstrip("0").rstrip(".") if "." in text else text


def _unit_price(value) -> str:
    """Cents always shown, finer places only when used: 5.5000 → '5.50', 1.2350 → '1.235'."""
    text = format(value, ",.4f")
    while text.endswith("0") and len(text.split(".")[1]) > 2:
        text = text[:-1]
    return text


def _address(*parts: str) -> list[str]:
    return [p for p in (part.strip() for part in parts if part) if p]


def invoice_print_context(invoice: Invoice) -> dict:
    """Everything the printed page shows, formatted once here (Decimals, never floats)."""
    issuer = {**DEFAULT_ISSUER, **getattr(settings, "INVOICE_ISSUER", {})}
    customer, order, currency = invoice.customer, invoice.order, invoice.currency
    is_credit_note = invoice.kind == InvoiceKind.CREDIT_NOTE
    lines = [
        {
            "number": line.line_number,
            "sku": line.sku,
            "description": line.description,
            "quantity": _quantity(line.quantity),
            "unit_price": _unit_price(line.unit_price),
            "amount": money(line.amount),
        }
        for line in invoice.lines.all()
    ]
    lines_total = invoice.net + invoice.discount
    city_line = " ".join(p for p in (customer.city, customer.state, customer.postal_code) if p)
    return {
        "invoice": invoice,
        "issuer": issuer,
        "title": "Credit note" if is_credit_note else "Invoice",
        "is_credit_note": is_credit_note,
        "is_draft": invoice.status == InvoiceStatus.DRAFT,
        "is_void": invoice.status == InvoiceStatus.VOID,
        "number": invoice.number or "(not issued)",
        "customer": customer,
        "bill_to": _address(customer.name, customer.address_line1, customer.address_line2, city_line,
                            customer.country if customer.country != "US" else ""),
        "order": order,
        "legacy_order_number": invoice.legacy_order_number,
        "credited_invoice": invoice.credited_invoice,
        "lines": lines,
        "currency": currency,
        "lines_total": money(lines_total),
        "discount": money(invoice.discount) if invoice.discount else "",
        "net": money(invoice.net),
        "tax": money(invoice.tax),
        "total": money(invoice.total),
        "paid": money(invoice.paid_amount),
        "credited": money(invoice.credited_amount) if invoice.credited_amount else "",
        "balance_due": money(invoice.balance_due),
        "show_balance": not is_credit_note and invoice.status != InvoiceStatus.VOID,
        "printed_at": timezone.localtime(),
        "change_url": reverse("admin:invoices_invoice_change", args=[invoice.pk]),
        "pdf_url": reverse("admin:invoices_invoice_pdf", args=[invoice.pk]),
    }


def invoice_print(request, invoice: Invoice) -> HttpResponse:
    context = invoice_print_context(invoice)
    context["pdf_available"] = pdf_renderer() is not None
    return HttpResponse(render_to_string("invoices/invoice_print.html", context, request=request))


def invoice_pdf(request, invoice: Invoice) -> HttpResponse:
    """The same page as a PDF; without WeasyPrint, the HTML page (print it to PDF from the browser)."""
    renderer = pdf_renderer()
    if renderer is None:
        return invoice_print(request, invoice)
    context = {**invoice_print_context(invoice), "pdf_available": True, "for_pdf": True}
    html = render_to_string("invoices/invoice_print.html", context, request=request)
    pdf = renderer(string=html, base_url=request.build_absolute_uri("/")).write_pdf()
    response = HttpResponse(pdf, content_type="application/pdf")
    name = (invoice.number or f"draft-{invoice.pk}").replace("/", "-")
    response["Content-Disposition"] = f'inline; filename="{name}.pdf"'
    return response
