"""The order desk's admin for customers and orders, through the test client, as the fixed cast.

sam (Sales) takes orders and moves them; bill (Billing) invoices; audrey (Auditors) only reads;
nora is staff without a role; alice is the superuser.
"""

from __future__ import annotations

import csv
import io
import re
from decimal import Decimal
from html.parser import HTMLParser

from django.contrib.messages import get_messages
from django.urls import reverse

from invoices.models import Invoice
from orders import services
from orders.models import Customer, NumberSequence, Order, OrderStatus
from tests.factories import CustomerFactory, line, make_confirmed_order, make_order

# ---------------------------------------------------------------------------------------------
# Helpers shared with tests/invoices/test_admin.py and tests/test_admin_performance.py
# ---------------------------------------------------------------------------------------------
class _FormReader(HTMLParser):
    def __init__(self, form_id: str):
        super().__init__(convert_charrefs=True)
        self.form_id = form_id
        self.inside = False
        self.fields: list[tuple[str, str]] = []
        self._select: dict | None = None
        self._textarea: list | None = None

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "form":
            self.inside = attrs.get("id") == self.form_id
            return
        if not self.inside:
            return
        if tag == "input":
            kind = attrs.get("type", "text")
            if kind in {"submit", "button", "image", "file", "reset"} or not attrs.get("name"):
                return
            if kind in {"checkbox", "radio"} and "checked" not in attrs:
                return
            self.fields.append((attrs["name"], attrs.get("value") or ("on" if kind in {"checkbox", "radio"} else "")))
        elif tag == "select":
            self._select = {"name": attrs.get("name"), "first": None, "chosen": [], "multiple": "multiple" in attrs}
        elif tag == "option" and self._select is not None:
            value = attrs.get("value", "")
            if self._select["first"] is None:
                self._select["first"] = value
            if "selected" in attrs:
                self._select["chosen"].append(value)
        elif tag == "textarea":
            self._textarea = [attrs.get("name"), ""]

    def handle_data(self, data):
        if self._textarea is not None:
            self._textarea[1] += data

    def handle_endtag(self, tag):
        if tag == "form":
            self.inside = False
        elif tag == "select" and self._select is not None:
            select, self._select = self._select, None
            values = select["chosen"] or ([] if select["multiple"] or select["first"] is None else [select["first"]])
            self.fields.extend((select["name"], v) for v in values if select["name"])
        elif tag == "textarea" and self._textarea is not None:
            name, text = self._textarea
            self._textarea = None
            if name:
                self.fields.append((name, text[1:] if text.startswith("\n") else text))


def form_data(response, form_id: str, **changes) -> dict:
    """The fields of the form `form_id` on a page, with `changes` applied (None removes a field)."""
    reader = _FormReader(form_id)
    reader.feed(response.content.decode())
    data: dict[str, str | list[str]] = {}
    for name, value in reader.fields:
        if name in data:
            data[name] = [*([data[name]] if isinstance(data[name], str) else data[name]), value]
        else:
            data[name] = value
    assert data, f"no form #{form_id} on the page"
    for name, value in changes.items():
        if value is None:
            data.pop(name, None)
        else:
            data[name] = value
    return data


def messages_of(response) -> list[str]:
    """The messages the request left (for a redirect) or showed (for a page)."""
    return [str(m) for m in get_messages(response.wsgi_request)]


def text_of(response) -> str:
    """The page's text without tags or repeated white space, for assertions on what staff read."""
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", response.content.decode()))


def action(client, url: str, name: str, records, **extra):
    """Post a changelist action on some records, as the action bar does."""
    data = {"action": name, "_selected_action": [str(r.pk) for r in records], "index": "0", "select_across": "0",
            **extra}
    return client.post(url, data)


def csv_rows(response) -> list[dict]:
    assert response["Content-Type"].startswith("text/csv")
    body = b"".join(response.streaming_content).decode("utf-8-sig")
    return list(csv.DictReader(io.StringIO(body)))


ORDERS = reverse("admin:orders_order_changelist")
ORDER_ADD = reverse("admin:orders_order_add")
CUSTOMERS = reverse("admin:orders_customer_changelist")


def order_url(order) -> str:
    return reverse("admin:orders_order_change", args=[order.pk])


def step_url(order, step: str) -> str:
    return reverse("admin:orders_order_step", args=[order.pk, step])


def new_order_form(client, customer, **changes) -> dict:
    """The add form as a browser posts it, for `customer`, with one line unless `changes` say otherwise."""
    page = client.get(ORDER_ADD)
    assert page.status_code == 200
    fields = {"customer": str(customer.pk), "po_number": "PO-778", "tax": "1.99", "freight": "4.00",
              "discount": "0.00", "lines-0-sku": "abc-1", "lines-0-description": "Blue widget",
              "lines-0-quantity": "3", "lines-0-unit_price": "12.5000", "lines-0-discount_percent": "10"}
    fields.update(changes)
    return form_data(page, "order_form", **fields)


# ---------------------------------------------------------------------------------------------
# Smoke: every page of both ModelAdmins
# ---------------------------------------------------------------------------------------------
def test_customer_admin_pages_render_for_a_superuser(alice, client_for):
    client = client_for(alice)
    customer = CustomerFactory(name="Acme Tools", email="ap@acme.example.com")
    make_order(customer=customer)
    assert client.get(CUSTOMERS).status_code == 200
    found = client.get(CUSTOMERS, {"q": "acme tools"})
    assert found.status_code == 200 and "Acme Tools" in found.content.decode()
    assert client.get(reverse("admin:orders_customer_add")).status_code == 200
    page = client.get(reverse("admin:orders_customer_change", args=[customer.pk]))
    assert page.status_code == 200
    assert "All 1 orders of this customer" in text_of(page)


def test_order_admin_pages_render_for_a_superuser(alice, client_for):
    client = client_for(alice)
    order = make_order(po_number="PO-1234")
    listing = client.get(ORDERS)
    assert listing.status_code == 200 and order.number in listing.content.decode()
    assert client.get(ORDERS, {"q": order.number}).status_code == 200
    assert client.get(ORDER_ADD).status_code == 200
    page = client.get(order_url(order))
    assert page.status_code == 200
    assert "Status history" in text_of(page)
    assert "Order created" in text_of(page)


def test_order_search_finds_by_number_legacy_key_customer_po_and_sku_once_each(alice, client_for):
    client = client_for(alice)
    customer = CustomerFactory(code="C0042", name="Zebra Logistics", email="pay@zebra.example.com")
    twice = make_order(customer=customer, po_number="PO-ZZ-9",
                       lines=[line("BOLT-7", "1", "1.00"), line("BOLT-7", "2", "1.00")])
    Order.objects.filter(pk=twice.pk).update(legacy_id=778899)
    other = make_order(lines=[line("NUT-1", "1", "1.00")])

    def found(term):
        page = client.get(ORDERS, {"q": term})
        assert page.status_code == 200
        return page.context["cl"].result_list

    for term in (twice.number, "778899", "c0042", "zebra", "pay@zebra", "PO-ZZ", "bolt-7"):
        assert [o.pk for o in found(term)] == [twice.pk], term
    assert [o.pk for o in found("NUT-1")] == [other.pk]
    assert list(found("zebra NUT-1")) == []  # every word must match


# ---------------------------------------------------------------------------------------------
# Creating and editing orders through the services
# ---------------------------------------------------------------------------------------------
def test_sales_create_a_pending_order_with_lines_and_the_totals_are_computed(sam, client_for):
    client = client_for(sam)
    customer = CustomerFactory()
    data = new_order_form(client, customer, **{
        "lines-TOTAL_FORMS": "2", "lines-1-sku": "xyz-9", "lines-1-description": "Red gadget",
        "lines-1-quantity": "1.5", "lines-1-unit_price": "4.0000", "lines-1-discount_percent": "0",
        "lines-1-line_number": "", "lines-1-id": "", "lines-1-order": ""})
    response = client.post(ORDER_ADD, data)
    assert response.status_code == 302, text_of(response)
    order = Order.objects.get(customer=customer)
    # 3 × 12.50 − 10 % = 33.75; 1.5 × 4.00 = 6.00; subtotal 39.75; + tax 1.99 + freight 4.00
    assert (order.subtotal, order.total) == (Decimal("39.75"), Decimal("45.74"))
    assert order.status == OrderStatus.PENDING and order.created_by == sam and order.po_number == "PO-778"
    assert [(ln.line_number, ln.sku, ln.line_total) for ln in order.lines.all()] == [
        (1, "ABC-1", Decimal("33.75")), (2, "XYZ-9", Decimal("6.00"))]
    assert order.status_events.get().reason == "Order created"
    assert any(order.number in m for m in messages_of(response))


def test_a_line_the_service_refuses_comes_back_as_a_form_error_and_nothing_is_saved(sam, client_for):
    client = client_for(sam)
    customer = CustomerFactory()
    response = client.post(ORDER_ADD, new_order_form(client, customer, **{"lines-0-quantity": "0"}))
    assert response.status_code == 200
    assert "Line 1: quantity must be more than 0." in text_of(response)
    assert not Order.objects.filter(customer=customer).exists()
    # The failed attempt was rolled back whole, the order number it drew included.
    assert not NumberSequence.objects.filter(series="SO", last_number__gt=0).exists()


def test_a_discount_larger_than_the_lines_is_refused_on_the_discount_field(sam, client_for):
    client = client_for(sam)
    response = client.post(ORDER_ADD, new_order_form(client, CustomerFactory(), discount="500.00"))
    assert response.status_code == 200
    assert "is larger than the lines" in response.context["adminform"].form.errors["discount"][0]


def test_editing_a_pending_orders_lines_recomputes_its_totals(sam, client_for):
    client = client_for(sam)
    order = make_order(tax=Decimal("1.00"))  # 2 × 10.00 + 1 × 5.50 = 25.50
    data = form_data(client.get(order_url(order)), "order_form", **{
        "lines-0-quantity": "5",  # 50.00
        "lines-1-DELETE": "on",  # drop the 5.50 gadget
        "freight": "2.50"})
    response = client.post(order_url(order), data)
    assert response.status_code == 302, text_of(response)
    order.refresh_from_db()
    assert (order.subtotal, order.freight, order.total) == (Decimal("50.00"), Decimal("2.50"), Decimal("53.50"))
    assert [(ln.sku, ln.quantity) for ln in order.lines.all()] == [("SKU-1", Decimal("5.000"))]


def test_lowering_the_discount_while_removing_lines_is_accepted(sam, client_for):
    client = client_for(sam)
    order = make_order(discount=Decimal("20.00"))  # lines 25.50
    data = form_data(client.get(order_url(order)), "order_form", **{"lines-0-DELETE": "on", "discount": "1.00"})
    response = client.post(order_url(order), data)
    assert response.status_code == 302, text_of(response)
    order.refresh_from_db()
    assert (order.subtotal, order.discount, order.total) == (Decimal("5.50"), Decimal("1.00"), Decimal("4.50"))


def test_a_confirmed_orders_lines_and_amounts_are_shown_read_only(sam, client_for):
    order = make_confirmed_order()
    page = client_for(sam).get(order_url(order))
    assert page.status_code == 200
    html = page.content.decode()
    assert 'name="lines-0-quantity"' not in html and 'name="discount"' not in html
    assert 'name="ship_name"' in html  # delivery details may still change until it ships


def test_editing_a_confirmed_orders_lines_is_refused_with_the_services_reason(sam, client_for):
    client = client_for(sam)
    order = make_order()
    page = client.get(order_url(order))  # drawn while pending
    services.order_confirm(order=order)  # someone confirms it meanwhile
    data = form_data(page, "order_form", **{"lines-0-quantity": "7"})
    response = client.post(order_url(order), data)
    assert response.status_code == 200
    assert "its lines can only change while it is pending" in text_of(response)
    order.refresh_from_db()
    assert order.lines.get(line_number=1).quantity == Decimal("2.000") and order.total == Decimal("25.50")


def test_delivery_details_of_a_confirmed_order_can_still_change(sam, client_for):
    client = client_for(sam)
    order = make_confirmed_order()
    data = form_data(client.get(order_url(order)), "order_form", ship_name="Dock 4", po_number="PO-NEW")
    response = client.post(order_url(order), data)
    assert response.status_code == 302, text_of(response)
    order.refresh_from_db()
    assert (order.ship_name, order.po_number, order.total) == ("Dock 4", "PO-NEW", Decimal("25.50"))


def test_a_shipped_order_is_read_only_and_a_stale_save_is_turned_away_with_a_message(sam, client_for):
    client = client_for(sam)
    order = make_confirmed_order()
    stale = client.get(order_url(order))  # drawn while still editable
    services.order_start_processing(order=order)
    services.order_ship(order=order)
    page = client.get(order_url(order))
    assert page.status_code == 200 and 'name="ship_name"' not in page.content.decode()
    response = client.post(order_url(order), form_data(stale, "order_form", ship_name="Too late"))
    assert response.status_code == 302 and response["Location"] == order_url(order)
    assert messages_of(response) == [f"Order {order.number} is shipped now and can no longer be edited here; "
                                     "your changes were not saved."]
    order.refresh_from_db()
    assert order.ship_name == ""


def test_billing_can_read_orders_but_not_change_them(bill, client_for):
    client = client_for(bill)
    order = make_order()
    assert client.get(order_url(order)).status_code == 200
    assert client.post(order_url(order), {"ship_name": "x"}).status_code == 403
    assert client.get(ORDER_ADD).status_code == 403


def test_legacy_keys_are_read_only(alice, client_for):
    order = make_order()
    Order.objects.filter(pk=order.pk).update(legacy_id=4242, legacy_created_by="JSMITH")
    html = client_for(alice).get(order_url(order)).content.decode()
    assert "4242" in html and "JSMITH" in html
    assert 'name="legacy_id"' not in html and 'name="legacy_created_by"' not in html


def test_customers_are_saved_through_customer_save(sam, client_for):
    client = client_for(sam)
    page = client.get(reverse("admin:orders_customer_add"))
    data = form_data(page, "customer_form", code=" c0077 ", name="  Hudson Mills ", email=" AP@Hudson.Example.COM ",
                     country="US")
    response = client.post(reverse("admin:orders_customer_add"), data)
    assert response.status_code == 302, text_of(response)
    customer = Customer.objects.get(code="C0077")
    assert (customer.name, customer.email) == ("Hudson Mills", "ap@hudson.example.com")


def test_a_customer_code_already_taken_is_refused_on_the_form(sam, client_for):
    client = client_for(sam)
    CustomerFactory(code="C0099")
    data = form_data(client.get(reverse("admin:orders_customer_add")), "customer_form", code="C0099", name="Dup")
    response = client.post(reverse("admin:orders_customer_add"), data)
    assert response.status_code == 200
    assert "already exists" in text_of(response)


# ---------------------------------------------------------------------------------------------
# Links between customers, orders and invoices
# ---------------------------------------------------------------------------------------------
def test_customer_page_links_to_its_orders_and_invoices_with_counts(alice, client_for):
    client = client_for(alice)
    customer = CustomerFactory()
    orders = [make_order(customer=customer) for _ in range(3)]
    make_order()  # someone else's
    page = client.get(reverse("admin:orders_customer_change", args=[customer.pk]))
    text = text_of(page)
    assert "All 3 orders of this customer" in text and "All 0 invoices of this customer" in text
    assert f"{ORDERS}?customer__id__exact={customer.pk}" in page.content.decode()
    listing = client.get(ORDERS, {"customer__id__exact": customer.pk})
    assert {o.pk for o in listing.context["cl"].result_list} == {o.pk for o in orders}
    assert str(customer) in text_of(listing)  # the filter box names the customer


def test_order_page_links_to_its_customer_and_invoice(bill, client_for):
    from invoices.services import invoice_create_for_order

    order = make_confirmed_order()
    invoice = invoice_create_for_order(order=order)
    html = client_for(bill).get(order_url(order)).content.decode()
    assert reverse("admin:orders_customer_change", args=[order.customer_id]) in html
    assert reverse("admin:invoices_invoice_change", args=[invoice.pk]) in html


def test_order_list_shows_each_orders_live_invoice(bill, client_for):
    from invoices.services import invoice_create_for_order

    billed = make_confirmed_order()
    invoice = invoice_create_for_order(order=billed)
    make_order()
    html = client_for(bill).get(ORDERS).content.decode()
    assert reverse("admin:invoices_invoice_change", args=[invoice.pk]) in html
    assert f"draft #{invoice.pk}" in html


# ---------------------------------------------------------------------------------------------
# Life-cycle actions
# ---------------------------------------------------------------------------------------------
def test_confirm_action_says_what_was_confirmed_and_what_was_refused(sam, client_for):
    client = client_for(sam)
    good = [make_order(), make_order()]
    empty = make_order(lines=[])
    response = action(client, ORDERS, "confirm", [*good, empty])
    assert response.status_code == 302
    [message] = messages_of(response)
    assert message.startswith("Confirmed 2 orders; 1 refused: ")
    assert f"Order {empty.number} has no lines; add at least one before confirming it." in message
    assert {o.status for o in Order.objects.filter(pk__in=[o.pk for o in good])} == {OrderStatus.CONFIRMED}
    empty.refresh_from_db()
    assert empty.status == OrderStatus.PENDING


def test_orders_move_through_the_pipeline_with_the_actions(sam, client_for):
    client = client_for(sam)
    order = make_confirmed_order()
    for name, status, said in (("start_processing", OrderStatus.PROCESSING, "Started processing 1 order."),
                               ("hold", OrderStatus.ON_HOLD, "Held 1 order."),
                               ("release", OrderStatus.PROCESSING, "Released 1 order."),
                               ("ship", OrderStatus.SHIPPED, "Shipped 1 order."),
                               ("deliver", OrderStatus.DELIVERED, "Delivered 1 order.")):
        response = action(client, ORDERS, name, [order])
        assert messages_of(response) == [said]
        client.get(ORDERS)  # the list shows (and so clears) the message, as in a browser
        order.refresh_from_db()
        assert order.status == status
    events = list(order.status_events.values_list("to_status", "by__username"))
    assert events[-1] == (OrderStatus.DELIVERED, "sam")


def test_an_illegal_move_is_refused_with_the_allowed_next_steps(sam, client_for):
    order = make_order()
    [message] = messages_of(action(client_for(sam), ORDERS, "ship", [order]))
    assert message.startswith("Shipped 0 orders; 1 refused: ")
    assert "is Pending; it cannot become Shipped. Allowed next:" in message


def test_cancel_asks_for_a_reason_on_an_intermediate_page_first(sam, client_for):
    client = client_for(sam)
    orders = [make_order(), make_order()]
    page = action(client, ORDERS, "cancel", orders)
    assert page.status_code == 200
    assert "Cancel the 2 orders below?" in text_of(page) and all(o.number in text_of(page) for o in orders)
    assert set(Order.objects.values_list("status", flat=True)) == {OrderStatus.PENDING}

    data = form_data(page, "oms-action-form", reason="")
    refused = client.post(ORDERS, data)
    assert refused.status_code == 200 and "This field is required." in text_of(refused)

    data["reason"] = "Customer called: duplicate order"
    done = client.post(ORDERS, data)
    assert done.status_code == 302
    assert messages_of(done) == ["Cancelled 2 orders."]
    for order in orders:
        order.refresh_from_db()
        assert order.status == OrderStatus.CANCELLED
        assert order.status_events.last().reason == "Customer called: duplicate order"


def test_create_invoice_action_drafts_invoices_and_refuses_pending_orders(bill, client_for):
    confirmed, pending = make_confirmed_order(), make_order()
    [message] = messages_of(action(client_for(bill), ORDERS, "create_invoice", [confirmed, pending]))
    invoice = Invoice.objects.get(order=confirmed)
    assert message.startswith(f"Drafted invoices for 1 order (draft #{invoice.pk}); 1 refused: ")
    assert f"Order {pending.number} is Pending; only confirmed orders (or later) can be invoiced." in message
    assert not Invoice.objects.filter(order=pending).exists()


def test_each_action_needs_its_permission(sam, bill, audrey, client_for):
    def actions_offered(user):
        page = client_for(user).get(ORDERS)
        assert page.status_code == 200
        if page.context["action_form"] is None:
            return set()
        return {name for name, _ in page.context["action_form"].fields["action"].choices if name}

    lifecycle = {"confirm", "start_processing", "ship", "deliver", "hold", "release", "cancel"}
    assert actions_offered(sam) == lifecycle
    assert actions_offered(bill) == {"create_invoice"}
    assert actions_offered(audrey) == set()
    assert 'name="action"' not in client_for(audrey).get(ORDERS).content.decode()


def test_an_action_posted_without_its_permission_changes_nothing(audrey, sam, client_for):
    order = make_order()
    # An auditor has no action at all: the post only shows the list again.
    response = action(client_for(audrey), ORDERS, "confirm", [order])
    assert response.status_code == 200 and messages_of(response) == []
    # Sales has actions, but not this one.
    response = action(client_for(sam), ORDERS, "create_invoice", [order])
    assert messages_of(response) == ["No action selected."]
    order.refresh_from_db()
    assert order.status == OrderStatus.PENDING and not Invoice.objects.exists()


def test_staff_without_a_role_get_403_everywhere(nora, client_for):
    client = client_for(nora)
    order = make_order()
    for url in (ORDERS, ORDER_ADD, order_url(order), CUSTOMERS, step_url(order, "confirm"),
                reverse("admin:orders_order_export_csv")):
        assert client.get(url).status_code == 403, url
    assert action(client, ORDERS, "confirm", [order]).status_code == 403


# ---------------------------------------------------------------------------------------------
# Buttons on the order page
# ---------------------------------------------------------------------------------------------
def test_order_page_offers_the_next_steps_as_buttons(sam, bill, audrey, client_for):
    order = make_order()
    html = client_for(sam).get(order_url(order)).content.decode()
    for step in ("confirm", "hold", "cancel"):
        assert step_url(order, step) in html
    assert step_url(order, "ship") not in html
    assert step_url(order, "confirm") not in client_for(audrey).get(order_url(order)).content.decode()
    services.order_confirm(order=order)
    assert step_url(order, "invoice") in client_for(bill).get(order_url(order)).content.decode()


def test_a_button_asks_first_then_runs_the_step(sam, client_for):
    client = client_for(sam)
    order = make_order()
    page = client.get(step_url(order, "hold"))
    assert page.status_code == 200 and "Stop this order until someone releases it?" in text_of(page)
    order.refresh_from_db()
    assert order.status == OrderStatus.PENDING
    response = client.post(step_url(order, "hold"), {"reason": "Waiting for the customer's PO"})
    assert response.status_code == 302 and response["Location"] == order_url(order)
    assert messages_of(response) == [f"Held {order.number}."]
    order.refresh_from_db()
    assert order.status == OrderStatus.ON_HOLD
    assert order.status_events.last().reason == "Waiting for the customer's PO"


def test_the_cancel_button_needs_a_reason_and_shows_a_refusal_on_its_page(sam, client_for):
    client = client_for(sam)
    order = make_confirmed_order()
    assert "This field is required." in text_of(client.post(step_url(order, "cancel"), {"reason": ""}))
    services.order_start_processing(order=order)
    services.order_ship(order=order)
    refused = client.post(step_url(order, "cancel"), {"reason": "too late"})
    assert refused.status_code == 200
    assert "is Shipped; it cannot become Cancelled" in text_of(refused)


def test_the_invoice_button_drafts_the_invoice_and_opens_it(bill, client_for):
    order = make_confirmed_order()
    response = client_for(bill).post(step_url(order, "invoice"))
    invoice = Invoice.objects.get(order=order)
    assert response.status_code == 302
    assert response["Location"] == reverse("admin:invoices_invoice_change", args=[invoice.pk])


def test_a_step_button_needs_its_permission(audrey, bill, client_for):
    order = make_order()
    assert client_for(audrey).post(step_url(order, "confirm")).status_code == 403
    assert client_for(bill).post(step_url(order, "confirm")).status_code == 403
    order.refresh_from_db()
    assert order.status == OrderStatus.PENDING


# ---------------------------------------------------------------------------------------------
# CSV export and the date hierarchy
# ---------------------------------------------------------------------------------------------
def test_orders_csv_export_respects_the_filter_and_writes_amounts_exactly(audrey, client_for):
    client = client_for(audrey)  # viewing is enough to export
    confirmed = make_confirmed_order(tax=Decimal("2.04"), freight=Decimal("4.00"), discount=Decimal("1.50"))
    make_order()
    listing = client.get(ORDERS, {"status__exact": "confirmed"})
    export_url = listing.context["csv_export_url"]
    assert export_url == reverse("admin:orders_order_export_csv") + "?status__exact=confirmed"
    rows = csv_rows(client.get(export_url))
    assert [r["Order number"] for r in rows] == [confirmed.number]
    row = rows[0]
    assert (row["Subtotal"], row["Discount"], row["Tax"], row["Freight"], row["Total"]) == (
        "25.50", "1.50", "2.04", "4.00", "30.04")
    assert row["Customer code"] == confirmed.customer.code and row["Status"] == "confirmed"


def test_orders_csv_export_respects_the_search(alice, client_for):
    wanted = make_order(po_number="PO-FIND-ME")
    make_order(po_number="PO-OTHER")
    rows = csv_rows(client_for(alice).get(reverse("admin:orders_order_export_csv"), {"q": "po-find"}))
    assert [r["Order number"] for r in rows] == [wanted.number]


def test_customer_csv_export_lists_order_counts_and_guards_against_formulas(alice, client_for):
    customer = CustomerFactory(name="=HYPERLINK(\"http://x\")", credit_limit=Decimal("1234.50"))
    make_order(customer=customer)
    make_order(customer=customer)
    rows = csv_rows(client_for(alice).get(reverse("admin:orders_customer_export_csv"), {"q": customer.code}))
    assert len(rows) == 1
    assert rows[0]["Orders"] == "2" and rows[0]["Credit limit (USD)"] == "1234.50"
    assert rows[0]["Name"].startswith("'=")  # a spreadsheet must not run it


def test_the_date_hierarchy_offers_every_year_between_the_first_and_last_order(alice, client_for):
    import datetime as dt

    from django.utils import timezone

    tz = timezone.get_current_timezone()
    make_order(ordered_at=dt.datetime(2024, 3, 5, 12, tzinfo=tz))
    make_order(ordered_at=dt.datetime(2026, 7, 1, 12, tzinfo=tz))
    client = client_for(alice)
    years = client.get(ORDERS).context["cl"].date_hierarchy_links
    assert [c["title"] for c in years["choices"]] == ["2024", "2025", "2026"]
    in_2024 = client.get(ORDERS, {"ordered_at__year": "2024"})
    assert [o.ordered_at.year for o in in_2024.context["cl"].result_list] == [2024]
    assert [c["title"] for c in in_2024.context["cl"].date_hierarchy_links["choices"]] == ["March 2024"]
    empty_2025 = client.get(ORDERS, {"ordered_at__year": "2025"}).context["cl"].date_hierarchy_links
    assert empty_2025["choices"] == [] and empty_2025["back"]["title"] == "All dates"


def test_cancel_with_select_all_cancels_every_order_of_the_filtered_list(sam, client_for):
    client = client_for(sam)
    customer = CustomerFactory()
    theirs = [make_order(customer=customer) for _ in range(3)]
    other = make_order()
    filtered = f"{ORDERS}?customer__id__exact={customer.pk}"
    # "Select all" posts the ticked rows of the page plus select_across=1.
    page = action(client, filtered, "cancel", theirs[:1], select_across="1")
    assert "Cancel the 3 orders below?" in text_of(page)
    done = client.post(filtered, form_data(page, "oms-action-form", reason="Account closed"))
    assert messages_of(done) == ["Cancelled 3 orders."]
    assert set(Order.objects.filter(customer=customer).values_list("status", flat=True)) == {OrderStatus.CANCELLED}
    other.refresh_from_db()
    assert other.status == OrderStatus.PENDING


def test_customer_page_shows_what_the_customer_still_owes(bill, client_for):
    from invoices.services import invoice_create_for_order, invoice_issue, invoice_record_payment

    customer = CustomerFactory()
    invoice = invoice_issue(invoice=invoice_create_for_order(order=make_confirmed_order(customer=customer)))
    invoice_record_payment(invoice=invoice, amount=Decimal("5.50"))
    text = text_of(client_for(bill).get(reverse("admin:orders_customer_change", args=[customer.pk])))
    assert "Outstanding: 20.00 USD on 1 invoice(s)" in text


def test_customers_sharing_a_billing_mailbox_can_be_listed(alice, client_for):
    first = CustomerFactory(email="ap@shared.example.com")
    second = CustomerFactory(email="ap@shared.example.com")
    CustomerFactory()
    listing = client_for(alice).get(CUSTOMERS, {"shared_email": "shared"})
    assert {c.pk for c in listing.context["cl"].result_list} == {first.pk, second.pk}
