"""The staff admin for customers and orders.

Every change goes through orders.services (and invoices.services for "Create invoice"): the
forms here only collect input, and a DomainError comes back as a form error or a message.
The order list is built for a table of millions of rows (see oms.admin_tools.LargeTableAdmin).
"""

from __future__ import annotations

from django.contrib import admin
from django.contrib.admin.utils import construct_change_message
from django.db.models import Count, Exists, OuterRef, Q, Subquery, Sum
from django.db.models.functions import Coalesce
from django.urls import path, reverse
from django.utils.html import format_html, format_html_join

from invoices import services as invoice_services
from invoices.models import Invoice
from oms.admin_tools import (
    CsvColumn,
    CsvExportAdmin,
    LargeTableAdmin,
    ParseOnlyModelForm,
    ServiceBackedAdmin,
    Step,
    action_with_reason,
    adopt_saved,
    admin_url,
    apply_step,
    change_link,
    matching_keys,
    money,
    narrowed_to_matches,
    object_step_view,
    outcome_message,
    refusal_of,
    search_terms,
    selected_record_filter,
)
from oms.money import ZERO
from orders import services
from orders.models import (
    INVOICEABLE_ORDER_STATUSES,
    ORDER_LIFECYCLE,
    Customer,
    Order,
    OrderLine,
    OrderStatus,
    OrderStatusEvent,
)

TRANSITION_PERMISSION = "orders.transition_order"
INVOICE_PERMISSION = "invoices.add_invoice"
#: Header fields the order form edits; the services decide which may change in which status.
HEADER_FIELDS = services.DELIVERY_FIELDS | services.COMMERCIAL_FIELDS
#: Statuses in which order_update refuses every header change: the page is shown read-only.
#: (Mirrors the service for presentation only; the service still has the last word.)
FROZEN_STATUSES = (OrderStatus.SHIPPED, OrderStatus.DELIVERED, OrderStatus.CANCELLED)
RECENT_ON_CUSTOMER_PAGE = 10
#: PostgreSQL integer: a longer digit string cannot be a legacy key (and would fail the query).
INT_MAX = 2**31 - 1


def customers_matching(term: str):
    """Customers a search word names: part of the code, name or billing email, or the legacy CUST_ID."""
    match = Q(code__icontains=term) | Q(name__icontains=term) | Q(email__icontains=term)
    if term.isdigit() and int(term) <= INT_MAX:
        match |= Q(legacy_id=int(term))
    return Customer.objects.filter(match)


def _status_badge(status: str, label: str) -> str:
    return format_html('<span class="oms-status oms-status-{}">{}</span>', status, label)


# ---------------------------------------------------------------------------------------------
# Life-cycle steps (bulk actions and the buttons on an order's page)
# ---------------------------------------------------------------------------------------------
def _order_service(service):
    def run(order, *, by, reason=""):
        return service(order=order, by=by, reason=reason)

    return run


def _draft_invoice(order, *, by, reason=""):
    return invoice_services.invoice_create_for_order(order=order, by=by)


ORDER_STEPS = {
    step.name: step
    for step in (
        Step("confirm", "Confirm", "Confirmed", TRANSITION_PERMISSION, _order_service(services.order_confirm),
             reason="optional", question="Confirm this order? Its lines and amounts can no longer change."),
        Step("start_processing", "Start processing", "Started processing", TRANSITION_PERMISSION,
             _order_service(services.order_start_processing), reason="optional",
             question="Hand this order to the warehouse?"),
        Step("ship", "Ship", "Shipped", TRANSITION_PERMISSION, _order_service(services.order_ship),
             reason="optional", question="Mark this order as shipped?"),
        Step("deliver", "Deliver", "Delivered", TRANSITION_PERMISSION, _order_service(services.order_deliver),
             reason="optional", question="Mark this order as delivered? This is final."),
        Step("hold", "Hold", "Held", TRANSITION_PERMISSION, _order_service(services.order_hold),
             reason="optional", question="Stop this order until someone releases it?"),
        Step("release", "Release", "Released", TRANSITION_PERMISSION, _order_service(services.order_release),
             reason="optional", question="Release this order? It goes back to the status it was held from."),
        Step("cancel", "Cancel", "Cancelled", TRANSITION_PERMISSION, _order_service(services.order_cancel),
             reason="required", question="Cancel this order? Cancelling is final; say why."),
        Step("invoice", "Create invoice", "Drafted invoices for", INVOICE_PERMISSION, _draft_invoice,
             question="Draft the invoice of this order? It can be checked before it is issued."),
    )
}
#: Which button leads to each status the life cycle allows next.
STEP_FOR_TARGET = {
    OrderStatus.CONFIRMED: "confirm",
    OrderStatus.PROCESSING: "start_processing",
    OrderStatus.SHIPPED: "ship",
    OrderStatus.DELIVERED: "deliver",
    OrderStatus.ON_HOLD: "hold",
    OrderStatus.CANCELLED: "cancel",
}


def order_label(order: Order) -> str:
    return order.number


def steps_for(order: Order) -> list[Step]:
    """The steps the life cycle offers from the order's current status, in pipeline order."""
    if order.status == OrderStatus.ON_HOLD:
        # Release goes back to wherever the service finds the order was held from (pending for a
        # migrated hold whose origin the legacy system never recorded).
        names = ["release", "cancel"]
    else:
        names = [STEP_FOR_TARGET[target] for target in order.available_transitions()]
    order_of_buttons = list(ORDER_STEPS)
    return [ORDER_STEPS[name] for name in sorted(set(names), key=order_of_buttons.index)]


def _invoice_numbers(invoices) -> str:
    labels = [i.number or f"draft #{i.pk}" for i in invoices]
    return ", ".join(labels[:10]) + (f" and {len(labels) - 10} more" if len(labels) > 10 else "")


# ---------------------------------------------------------------------------------------------
# Customers
# ---------------------------------------------------------------------------------------------
class SharedEmailFilter(admin.SimpleListFilter):
    title = "billing email"
    parameter_name = "shared_email"

    def lookups(self, request, model_admin):
        return [("shared", "Shared with another customer")]

    def queryset(self, request, queryset):
        return queryset.sharing_email() if self.value() == "shared" else queryset


@admin.register(Customer)
class CustomerAdmin(ServiceBackedAdmin, LargeTableAdmin, CsvExportAdmin):
    view_on_site = False  # get_absolute_url is this very admin page
    list_display = ("code", "name", "email", "city", "country", "status", "credit_limit_display", "orders_link",
                    "invoices_link")
    list_display_links = ("code", "name")
    list_filter = ("status", SharedEmailFilter)
    search_fields = ("code", "name", "email")
    search_help_text = "Part of the customer code, name or billing email, or the legacy CUST_ID."
    sortable_by = ("code", "name", "email", "city", "country", "status")
    readonly_fields = ("legacy_id", "legacy_updated_at", "created_at", "updated_at", "orders_summary",
                       "invoices_summary")
    fieldsets = (
        (None, {"fields": ("code", "name", "status", "credit_limit")}),
        ("Contact", {"fields": ("email", "phone")}),
        ("Billing address", {"fields": ("address_line1", "address_line2", "city", "state", "postal_code",
                                        "country")}),
        ("Orders and invoices", {"fields": ("orders_summary", "invoices_summary")}),
        ("Record", {"fields": ("created_at", "updated_at", "legacy_id", "legacy_updated_at"),
                    "classes": ("collapse",)}),
    )
    csv_columns = (
        CsvColumn("Code", "code"), CsvColumn("Legacy CUST_ID", "legacy_id"), CsvColumn("Name", "name"),
        CsvColumn("Email", "email"), CsvColumn("Phone", "phone"), CsvColumn("Address line 1", "address_line1"),
        CsvColumn("Address line 2", "address_line2"), CsvColumn("City", "city"), CsvColumn("State", "state"),
        CsvColumn("Postal code", "postal_code"), CsvColumn("Country", "country"), CsvColumn("Status", "status"),
        CsvColumn("Credit limit (USD)", "credit_limit"), CsvColumn("Orders", "orders_count"),
        CsvColumn("Invoices", "invoices_count"), CsvColumn("Created", "created_at"),
    )

    def get_queryset(self, request):
        # Counted per row by correlated subqueries on the (customer, date) indexes. PostgreSQL runs
        # them only for the rows of the page (after LIMIT), and a COUNT strips them: a GROUP BY
        # join would aggregate every order of every customer before paging.
        orders = (Order.objects.filter(customer=OuterRef("pk")).order_by().values("customer")
                  .annotate(n=Count("pk")).values("n"))
        invoices = (Invoice.objects.filter(customer=OuterRef("pk")).order_by().values("customer")
                    .annotate(n=Count("pk")).values("n"))
        return super().get_queryset(request).annotate(
            orders_count=Coalesce(Subquery(orders), 0), invoices_count=Coalesce(Subquery(invoices), 0))

    def get_search_results(self, request, queryset, search_term):
        for term in search_terms(search_term):
            queryset = queryset.filter(pk__in=customers_matching(term).values("pk"))
        return queryset, False

    def has_delete_permission(self, request, obj=None):
        # Customers carry orders, invoices and legacy keys: set them inactive instead.
        return False

    def save_model(self, request, obj, form, change):
        services.customer_save(customer=obj, by=request.user)

    @admin.display(description="credit limit", ordering="credit_limit")
    def credit_limit_display(self, customer):
        return money(customer.credit_limit) if customer.credit_limit is not None else "—"

    @admin.display(description="orders")
    def orders_link(self, customer):
        return format_html('<a href="{}">{}</a>',
                           admin_url(Order, "changelist", query=f"customer__id__exact={customer.pk}"),
                           customer.orders_count)

    @admin.display(description="invoices")
    def invoices_link(self, customer):
        return format_html('<a href="{}">{}</a>',
                           admin_url(Invoice, "changelist", query=f"customer__id__exact={customer.pk}"),
                           customer.invoices_count)

    @admin.display(description="orders")
    def orders_summary(self, customer):
        if customer.pk is None:
            return "—"
        count = getattr(customer, "orders_count", None)
        count = customer.orders.count() if count is None else count
        recent = list(customer.orders.order_by("-ordered_at", "-id")
                      .only("id", "number", "ordered_at", "status", "total", "currency")[:RECENT_ON_CUSTOMER_PAGE])
        rows = format_html_join(
            "", '<tr><td><a href="{}">{}</a></td><td>{}</td><td>{}</td><td class="oms-amount">{}</td></tr>',
            ((admin_url(o), o.number, f"{o.ordered_at:%Y-%m-%d}", o.get_status_display(), money(o.total, o.currency))
             for o in recent))
        return format_html(
            '<p><a href="{}">All {} orders of this customer</a></p>'
            '<table class="oms-mini"><thead><tr><th>Order</th><th>Date</th><th>Status</th><th>Total</th></tr>'
            "</thead><tbody>{}</tbody></table>",
            admin_url(Order, "changelist", query=f"customer__id__exact={customer.pk}"), count, rows)

    @admin.display(description="invoices")
    def invoices_summary(self, customer):
        if customer.pk is None:
            return "—"
        count = getattr(customer, "invoices_count", None)
        count = customer.invoices.count() if count is None else count
        owed = (Invoice.objects.filter(customer=customer).outstanding().order_by().values("currency")
                .annotate(balance=Sum("total") - Sum("paid_amount") - Sum("credited_amount"), n=Count("pk"))
                .order_by("currency"))
        balances = format_html_join(", ", "{} on {} invoice(s)", ((money(b["balance"], b["currency"]), b["n"])
                                                                  for b in owed))
        return format_html(
            '<p><a href="{}">All {} invoices of this customer</a></p><p>Outstanding: {}</p>',
            admin_url(Invoice, "changelist", query=f"customer__id__exact={customer.pk}"), count,
            balances or "nothing")


# ---------------------------------------------------------------------------------------------
# Orders
# ---------------------------------------------------------------------------------------------
LINE_FIELDS = ("line_number", "sku", "description", "quantity", "unit_price", "discount_percent")


class OrderLineForm(ParseOnlyModelForm):
    class Meta:
        model = OrderLine
        fields = LINE_FIELDS

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["line_number"].required = False
        self.fields["line_number"].help_text = "Empty: numbered after the last line."


class OrderLineInline(admin.TabularInline):
    model = OrderLine
    form = OrderLineForm
    fields = (*LINE_FIELDS, "line_total")
    readonly_fields = ("line_total",)
    extra = 0
    verbose_name = "line"
    verbose_name_plural = "lines (editable while the order is pending; totals are computed on save)"

    def get_extra(self, request, obj=None, **kwargs):
        return 1 if obj is None else 0

    def lines_editable(self, request, obj) -> bool:
        if obj is None or obj.pk is None or obj.is_editable:
            return True
        # A page drawn while the order was still pending posts its line inputs. Parse them, so
        # that a change is put to the service (which refuses it, saying why) instead of being
        # dropped without a word. Once refused, the page is drawn again read-only.
        return (request.method == "POST" and refusal_of(request) is None
                and f"{OrderLine._meta.get_field('order').remote_field.related_name}-0-sku" in request.POST)

    def has_add_permission(self, request, obj):
        return super().has_add_permission(request, obj) and self.lines_editable(request, obj)

    def has_change_permission(self, request, obj=None):
        return super().has_change_permission(request, obj) and self.lines_editable(request, obj)

    def has_delete_permission(self, request, obj=None):
        return super().has_delete_permission(request, obj) and self.lines_editable(request, obj)


class ReadOnlyInline(admin.TabularInline):
    """History and money already booked: shown, never edited here."""

    extra = 0
    can_delete = False
    show_change_link = False

    def has_add_permission(self, request, obj):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


class OrderStatusEventInline(ReadOnlyInline):
    model = OrderStatusEvent
    fields = ("at", "from_label", "to_label", "by", "reason")
    readonly_fields = fields
    verbose_name = "status change"
    verbose_name_plural = "status history"

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("by")

    @admin.display(description="from")
    def from_label(self, event):
        return ORDER_LIFECYCLE.labels.get(event.from_status, event.from_status or "—")

    @admin.display(description="to")
    def to_label(self, event):
        return ORDER_LIFECYCLE.labels.get(event.to_status, event.to_status)


class BillingFilter(admin.SimpleListFilter):
    title = "billing"
    parameter_name = "billing"

    def lookups(self, request, model_admin):
        return [("ready", "Ready to invoice"), ("invoiced", "Invoiced")]

    def queryset(self, request, queryset):
        if self.value() == "ready":
            return queryset.ready_to_invoice()
        if self.value() == "invoiced":
            return queryset.filter(Exists(Invoice.objects.live_for_order(OuterRef("pk"))))
        return queryset


def _line_inputs(formset) -> list[services.OrderLineInput]:
    """The rows of the lines formset as the service takes them (deleted and blank extra rows left out)."""
    lines = []
    for form in formset.forms:
        data = getattr(form, "cleaned_data", None)
        if not data or (formset.can_delete and data.get("DELETE")):
            continue
        if form.instance.pk is None and not form.has_changed():
            continue
        lines.append(services.OrderLineInput(
            sku=data["sku"], quantity=data["quantity"], unit_price=data["unit_price"],
            description=data.get("description") or "", discount_percent=data.get("discount_percent") or ZERO,
            line_number=data.get("line_number")))
    return lines


@admin.register(Order)
class OrderAdmin(ServiceBackedAdmin, LargeTableAdmin, CsvExportAdmin):
    view_on_site = False  # get_absolute_url is this very admin page
    list_display = ("number", "ordered_at", "customer_link", "status_badge", "po_number", "total_display",
                    "currency", "invoice_link")
    list_display_links = ("number",)
    list_filter = ("status", BillingFilter, "currency", selected_record_filter("customer", "customer"))
    list_select_related = ("customer",)
    list_defer = ("notes",)
    # The date hierarchy's first and last dates come from the ordered_at index; see FastChangeList.
    date_hierarchy = "ordered_at"
    search_fields = ("number",)  # shows the search box; the search itself is get_search_results
    search_help_text = ("Start of the order or PO number, legacy ORD_NO, part of the customer's code, name or "
                        "email, or the exact SKU of a line.")
    # Only indexed orderings: sorting a million orders by anything else sorts the whole table.
    sortable_by = ("number", "ordered_at")
    autocomplete_fields = ("customer",)
    inlines = (OrderLineInline, OrderStatusEventInline)
    actions = ("confirm", "start_processing", "ship", "deliver", "hold", "release", "cancel", "create_invoice")
    csv_columns = (
        CsvColumn("Order number", "number"), CsvColumn("Legacy ORD_NO", "legacy_id"),
        CsvColumn("Ordered at", "ordered_at"), CsvColumn("Status", "status"),
        CsvColumn("Customer code", "customer__code"), CsvColumn("Customer name", "customer__name"),
        CsvColumn("PO number", "po_number"), CsvColumn("Currency", "currency"), CsvColumn("Subtotal", "subtotal"),
        CsvColumn("Discount", "discount"), CsvColumn("Tax", "tax"), CsvColumn("Freight", "freight"),
        CsvColumn("Total", "total"), CsvColumn("Requested ship date", "requested_ship_at"),
        CsvColumn("Ship to", "ship_name"), CsvColumn("Ship city", "ship_city"), CsvColumn("Ship state", "ship_state"),
        CsvColumn("Ship postal code", "ship_postal_code"), CsvColumn("Ship country", "ship_country"),
        CsvColumn("Invoice", "invoice_number"),
    )
    change_form_template = "admin/oms/change_form.html"

    # --- list --------------------------------------------------------------------------------
    def get_queryset(self, request):
        # The live invoice of each order, for the list's "invoice" column: two correlated lookups on
        # the invoice's order index, evaluated for the page's rows only (a join could multiply rows:
        # the legacy system billed some orders twice).
        live = Invoice.objects.live_for_order(OuterRef("pk")).order_by("-created_at", "-id")
        return super().get_queryset(request).annotate(
            invoice_pk=Subquery(live.values("pk")[:1]), invoice_number=Subquery(live.values("number")[:1]))

    def get_search_results(self, request, queryset, search_term):
        """Each word must match: the start of the order or PO number, the legacy ORD_NO, a customer
        (part of its code, name or email) or the exact SKU of a line.

        Every alternative is an index lookup, so PostgreSQL ORs them into one bitmap scan: the
        numbers by prefix (their LIKE indexes), customers and SKUs first resolved into a short list
        of keys (matching_keys). Measured on 1,000,000 orders: "contains" on the numbers scans the
        table, ~0.7 s per query and a list page runs three; this takes milliseconds. No join, so no
        duplicate rows and no DISTINCT. Partial matches inside numbers need trigram indexes.
        """
        terms = search_terms(search_term)
        if not terms:
            return queryset, False
        searched = queryset
        for term in terms:
            upper = term.upper()
            match = (Q(number__startswith=upper)
                     | Q(po_number__startswith=term) | Q(po_number__startswith=upper)
                     | Q(customer_id__in=matching_keys(customers_matching(term)))
                     # SKUs are stored upper-case and trimmed (order_create): an exact match uses the index.
                     | Q(pk__in=matching_keys(OrderLine.objects.filter(sku=upper), "order_id")))
            if term.isdigit() and int(term) <= INT_MAX:
                match |= Q(legacy_id=int(term))
            searched = searched.filter(match)
        return narrowed_to_matches(queryset, searched), False

    @admin.display(description="customer")
    def customer_link(self, order):
        return change_link(order.customer)

    @admin.display(description="status")
    def status_badge(self, order):
        return _status_badge(order.status, order.get_status_display())

    @admin.display(description="total")
    def total_display(self, order):
        return format_html('<span class="oms-amount">{}</span>', money(order.total))

    @admin.display(description="invoice")
    def invoice_link(self, order):
        if getattr(order, "invoice_pk", None) is None:
            return "—"
        return format_html('<a href="{}">{}</a>', reverse("admin:invoices_invoice_change", args=[order.invoice_pk]),
                           order.invoice_number or f"draft #{order.invoice_pk}")

    # --- permissions -------------------------------------------------------------------------
    def has_change_permission(self, request, obj=None):
        if obj is not None and obj.status in FROZEN_STATUSES:
            return False
        return super().has_change_permission(request, obj)

    def has_delete_permission(self, request, obj=None):
        # Orders are cancelled (with a reason, in the history), never deleted.
        return False

    def has_transition_permission(self, request):
        return request.user.has_perm(TRANSITION_PERMISSION)

    def has_invoice_permission(self, request):
        return request.user.has_perm(INVOICE_PERMISSION)

    # --- the form ----------------------------------------------------------------------------
    def get_fieldsets(self, request, obj=None):
        ship_to = ("Ship to", {"fields": ("ship_name", "ship_address_line1", "ship_address_line2", "ship_city",
                                          "ship_state", "ship_postal_code", "ship_country")})
        if obj is None:
            return (
                (None, {"fields": ("customer", "po_number", "currency", "ordered_at", "requested_ship_at")}),
                ("Amounts", {"fields": ("discount", "tax", "freight"),
                             "description": "The subtotal and total are computed from the lines when you save."}),
                ship_to,
                ("Notes", {"fields": ("notes",)}),
            )
        return (
            (None, {"fields": ("number", "status_display", "customer", "po_number", "currency", "ordered_at",
                               "requested_ship_at")}),
            ("Customer and billing", {"fields": ("customer_summary", "invoices_summary")}),
            ("Amounts", {"fields": ("subtotal", "discount", "tax", "freight", "total")}),
            ship_to,
            ("Notes", {"fields": ("notes",)}),
            ("Record", {"fields": ("created_by", "created_at", "updated_at", "legacy_id", "legacy_created_by",
                                   "legacy_updated_at"), "classes": ("collapse",)}),
        )

    def get_readonly_fields(self, request, obj=None):
        if obj is None:
            return ()
        fields = ["number", "status_display", "customer_summary", "invoices_summary", "subtotal", "total",
                  "created_by", "created_at", "updated_at", "legacy_id", "legacy_created_by", "legacy_updated_at"]
        if not obj.is_editable:
            fields += sorted(services.COMMERCIAL_FIELDS)
        return fields

    @admin.display(description="status")
    def status_display(self, order):
        label = order.get_status_display()
        if order.status == OrderStatus.ON_HOLD and order.status_before_hold:
            label += f" (held from {ORDER_LIFECYCLE.labels[order.status_before_hold]})"
        return _status_badge(order.status, label)

    @admin.display(description="customer")
    def customer_summary(self, order):
        customer = order.customer
        email = format_html(" · {}", customer.email) if customer.email else ""
        return format_html('{} ({}){} · <a href="{}">other orders</a>', change_link(customer),
                           customer.get_status_display(), email,
                           admin_url(Order, "changelist", query=f"customer__id__exact={customer.pk}"))

    @admin.display(description="invoices")
    def invoices_summary(self, order):
        invoices = list(Invoice.objects.filter(order=order).order_by("created_at", "id"))
        if not invoices:
            return "Not invoiced yet."
        items = format_html_join("", "<li>{} — {} — {}</li>", (
            (change_link(i), i.get_status_display(), money(i.total, i.currency)) for i in invoices))
        return format_html("<ul class='oms-plain'>{}</ul>", items)

    # --- saving through the services ---------------------------------------------------------
    def save_model(self, request, obj, form, change):
        """Nothing yet: the header and the lines are saved together by the services in save_related."""

    def save_related(self, request, form, formsets, change):
        lines_formset = next((fs for fs in formsets if fs.model is OrderLine), None)
        lines = None
        if lines_formset is not None and (not change or lines_formset.has_changed()):
            lines = _line_inputs(lines_formset)
        if not change:
            header = {name: value for name, value in form.cleaned_data.items()
                      if name in HEADER_FIELDS and name != "customer"}
            order = services.order_create(customer=form.cleaned_data["customer"], lines=lines or (),
                                          by=request.user, **header)
        else:
            order = form.instance
            changes = {name: form.cleaned_data[name] for name in form.changed_data if name in HEADER_FIELDS}
            # Lower a discount before removing lines, raise it after adding them: the discount may
            # never exceed the lines' subtotal, at any step.
            header_first = "discount" in changes and changes["discount"] < form.initial.get("discount", ZERO)
            if changes and header_first:
                order = services.order_update(order=order, by=request.user, **changes)
            if lines is not None:
                order = services.order_replace_lines(order=order, lines=lines, by=request.user)
            if changes and not header_first:
                order = services.order_update(order=order, by=request.user, **changes)
        form.lines_replaced = change and lines is not None
        adopt_saved(form.instance, order)

    def construct_change_message(self, request, form, formsets, add=False):
        # The lines formset is never saved by the admin (the service replaces the lines), so the
        # formsets cannot describe the change; the form can, plus a word about the lines.
        message = construct_change_message(form, [], add)
        if getattr(form, "lines_replaced", False):
            message.append({"changed": {"fields": ["lines"]}})
        return message

    # --- buttons on the order page -----------------------------------------------------------
    def get_urls(self):
        info = self.opts.app_label, self.opts.model_name
        return [
            path("<path:object_id>/step/<str:step>/", self.admin_site.admin_view(self.step_view),
                 name="%s_%s_step" % info),
            *super().get_urls(),
        ]

    def step_view(self, request, object_id, step):
        if step not in ORDER_STEPS:
            return self._get_obj_does_not_exist_redirect(request, self.opts, object_id)
        return object_step_view(self, request, object_id, ORDER_STEPS[step], label=order_label,
                                success_url=(lambda invoice: admin_url(invoice)) if step == "invoice" else None)

    def render_change_form(self, request, context, add=False, change=False, form_url="", obj=None):
        if obj is not None:
            context["oms_tools"] = self.tools_for(request, obj)
        return super().render_change_form(request, context, add, change, form_url, obj)

    def tools_for(self, request, order) -> list[dict]:
        tools = []
        if self.has_transition_permission(request):
            tools += [{"label": s.label + ("…" if s.reason == "required" else ""), "url": self.step_url(order, s.name)}
                      for s in steps_for(order)]
        if (self.has_invoice_permission(request) and order.status in INVOICEABLE_ORDER_STATUSES
                and not Invoice.objects.live_for_order(order).exists()):
            tools.append({"label": "Create invoice", "url": self.step_url(order, "invoice")})
        return tools

    def step_url(self, order, step: str) -> str:
        return reverse("admin:orders_order_step", args=[order.pk, step], current_app=self.admin_site.name)

    # --- actions -----------------------------------------------------------------------------
    def _run_bulk(self, request, queryset, name: str, detail=None):
        step = ORDER_STEPS[name]
        outcome = apply_step(queryset, step, by=request.user, label=order_label)
        text, level = outcome_message(outcome, step=step, noun="order", plural="orders",
                                      detail=detail(outcome.done) if detail and outcome.done else "")
        self.message_user(request, text, level)

    @admin.action(description="Confirm selected orders", permissions=["transition"])
    def confirm(self, request, queryset):
        self._run_bulk(request, queryset, "confirm")

    @admin.action(description="Start processing selected orders", permissions=["transition"])
    def start_processing(self, request, queryset):
        self._run_bulk(request, queryset, "start_processing")

    @admin.action(description="Ship selected orders", permissions=["transition"])
    def ship(self, request, queryset):
        self._run_bulk(request, queryset, "ship")

    @admin.action(description="Mark selected orders delivered", permissions=["transition"])
    def deliver(self, request, queryset):
        self._run_bulk(request, queryset, "deliver")

    @admin.action(description="Put selected orders on hold", permissions=["transition"])
    def hold(self, request, queryset):
        self._run_bulk(request, queryset, "hold")

    @admin.action(description="Release selected orders from hold", permissions=["transition"])
    def release(self, request, queryset):
        self._run_bulk(request, queryset, "release")

    @admin.action(description="Cancel selected orders…", permissions=["transition"])
    def cancel(self, request, queryset):
        return action_with_reason(self, request, queryset, step=ORDER_STEPS["cancel"], action="cancel",
                                  noun="order", plural="orders", label=order_label)

    @admin.action(description="Create invoices for selected orders", permissions=["invoice"])
    def create_invoice(self, request, queryset):
        self._run_bulk(request, queryset, "invoice", detail=lambda invoices: _invoice_numbers(invoices))

