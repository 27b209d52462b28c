"""The staff admin for invoices and credit notes.

Drafts (manual, or drafted from an order) are edited through invoices.services; an issued
invoice is never edited: it is paid, voided or credited, from the actions and the buttons on its
page. The printable page and the payment form are admin URLs of this ModelAdmin.
"""

from __future__ import annotations

from django import forms
from django.contrib import admin, messages
from django.contrib.admin.utils import construct_change_message, unquote
from django.contrib.admin.widgets import AdminSplitDateTime
from django.core.exceptions import PermissionDenied
from django.db.models import Q
from django.http import HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils import timezone
from django.utils.html import format_html

from invoices import services, views
from invoices.models import (
    INVOICE_LIFECYCLE,
    Invoice,
    InvoiceKind,
    InvoiceLine,
    InvoiceStatus,
    InvoiceStatusEvent,
    Payment,
)
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
from oms.errors import DomainError
from oms.money import AMOUNT_DIGITS, AMOUNT_PLACES, ZERO
from orders.admin import INT_MAX, ReadOnlyInline, customers_matching
from orders.models import Order

#: What invoice_update_draft accepts; the form offers these on a draft.
DRAFT_FIELDS = ("customer", "currency", "due_at", "tax", "discount", "notes")


def invoice_label(invoice: Invoice) -> str:
    return invoice.number or f"draft #{invoice.pk}"


def _numbers(invoices) -> str:
    labels = [invoice_label(i) for i in invoices]
    return ", ".join(labels[:10]) + (f" and {len(labels) - 10} more" if len(labels) > 10 else "")


INVOICE_STEPS = {
    step.name: step
    for step in (
        Step("issue", "Issue", "Issued", "invoices.issue_invoice",
             lambda invoice, *, by, reason="": services.invoice_issue(invoice=invoice, by=by),
             question="Issue this invoice? It gets its number and can no longer be edited."),
        Step("void", "Void", "Voided", "invoices.void_invoice",
             lambda invoice, *, by, reason="": services.invoice_void(invoice=invoice, by=by, reason=reason),
             reason="required", question="Void this invoice? Its number stays used; say why."),
        Step("credit", "Credit in full", "Credited", "invoices.credit_invoice",
             lambda invoice, *, by, reason="": services.credit_note_create(invoice=invoice, by=by, reason=reason),
             reason="required",
             question="Raise a credit note for everything still creditable on this invoice? Say why."),
    )
}


# ---------------------------------------------------------------------------------------------
# Inlines
# ---------------------------------------------------------------------------------------------
class InvoiceLineForm(ParseOnlyModelForm):
    class Meta:
        model = InvoiceLine
        fields = ("sku", "description", "quantity", "unit_price")


class InvoiceLineInline(admin.TabularInline):
    model = InvoiceLine
    form = InvoiceLineForm
    fields = ("line_number", "sku", "description", "quantity", "unit_price", "amount")
    readonly_fields = ("line_number", "amount")
    extra = 0
    verbose_name = "line"
    verbose_name_plural = "lines (editable while a draft; amounts and totals are computed on save)"

    def get_extra(self, request, obj=None, **kwargs):
        return 1 if obj is None else 0

    def lines_editable(self, request, obj) -> bool:
        if obj is None or obj.pk is None or obj.status == InvoiceStatus.DRAFT:
            return True
        # As for order lines: a page drawn while still a draft posts its inputs; let the service refuse.
        return request.method == "POST" and refusal_of(request) is None and "lines-0-description" in request.POST

    def has_add_permission(self, request, obj):
        return super().has_add_permission(request, obj) and self.lines_editable(request, obj)

    def has_change_permission(self, request, obj=None):
        return super().has_change_permission(request, obj) and self.lines_editable(request, obj)

    def has_delete_permission(self, request, obj=None):
        return super().has_delete_permission(request, obj) and self.lines_editable(request, obj)


class PaymentInline(ReadOnlyInline):
    model = Payment
    fields = ("received_at", "amount", "reference", "recorded_by", "recorded_at")
    readonly_fields = fields

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("recorded_by")


class InvoiceStatusEventInline(ReadOnlyInline):
    model = InvoiceStatusEvent
    fields = ("at", "from_label", "to_label", "by", "reason")
    readonly_fields = fields
    verbose_name = "status change"
    verbose_name_plural = "status history"

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("by")

    @admin.display(description="from")
    def from_label(self, event):
        return INVOICE_LIFECYCLE.labels.get(event.from_status, event.from_status or "—")

    @admin.display(description="to")
    def to_label(self, event):
        return INVOICE_LIFECYCLE.labels.get(event.to_status, event.to_status)


class CreditNoteInline(ReadOnlyInline):
    model = Invoice
    fk_name = "credited_invoice"
    fields = ("credit_note", "status", "invoiced_at", "total", "reason")
    readonly_fields = fields
    verbose_name = "credit note"
    verbose_name_plural = "credit notes against this invoice"

    @admin.display(description="credit note")
    def credit_note(self, note):
        return change_link(note, invoice_label(note))


# ---------------------------------------------------------------------------------------------
# The invoice admin
# ---------------------------------------------------------------------------------------------
class InvoiceForm(forms.ModelForm):
    # The model keeps discount out of forms (editable=False: only services set it); a draft's
    # discount is still the staff's to choose, and invoice_update_draft takes it.
    discount = forms.DecimalField(max_digits=AMOUNT_DIGITS, decimal_places=AMOUNT_PLACES, initial=ZERO,
                                  help_text="Taken off the lines' sum, before tax.")

    class Meta:
        model = Invoice
        fields = ("customer", "currency", "due_at", "tax", "notes")

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if self.instance.pk is not None:
            self.initial["discount"] = self.instance.discount


class PaymentForm(forms.Form):
    amount = forms.DecimalField(max_digits=AMOUNT_DIGITS, decimal_places=AMOUNT_PLACES)
    received_at = forms.SplitDateTimeField(label="received", widget=AdminSplitDateTime, initial=timezone.now)
    reference = forms.CharField(max_length=60, required=False, help_text="Bank reference, cheque number, …")


class PaymentStateFilter(admin.SimpleListFilter):
    title = "payment"
    parameter_name = "payment"

    def lookups(self, request, model_admin):
        return [("outstanding", "Outstanding"), ("overdue", "Overdue")]

    def queryset(self, request, queryset):
        if self.value() == "outstanding":
            return queryset.outstanding()
        if self.value() == "overdue":
            return queryset.overdue()
        return queryset


def _line_inputs(formset) -> list[services.InvoiceLineInput]:
    lines = []
    for form in formset.forms:
        data = getattr(form, "cleaned_data", None)
        if not data or (formset.can_delete and data.get("DELETE")):
            continue
        if form.instance.pk is None and not form.has_changed():
            continue
        lines.append(services.InvoiceLineInput(description=data.get("description") or "", quantity=data["quantity"],
                                               unit_price=data["unit_price"], sku=data.get("sku") or ""))
    return lines


@admin.register(Invoice)
class InvoiceAdmin(ServiceBackedAdmin, LargeTableAdmin, CsvExportAdmin):
    view_on_site = False  # get_absolute_url is this very admin page
    list_display = ("display_number", "kind_display", "status_badge", "customer_link", "order_link", "invoiced_at",
                    "due_at", "total_display", "balance_display", "currency")
    list_display_links = ("display_number",)
    list_filter = ("status", PaymentStateFilter, "kind", "currency", selected_record_filter("customer", "customer"),
                   selected_record_filter("order", "order"),
                   selected_record_filter("credited_invoice", "credited invoice"))
    list_select_related = ("customer", "order", "credited_invoice")
    list_defer = ("notes", "reason", "void_reason", "order__notes", "credited_invoice__notes",
                  "credited_invoice__reason", "credited_invoice__void_reason")
    # created_at, not invoiced_at: it is the indexed column the list is ordered by, so the date
    # hierarchy's first and last dates are two index probes (invoiced_at has no index: a full scan).
    date_hierarchy = "created_at"
    search_fields = ("number",)  # shows the search box; the search itself is get_search_results
    search_help_text = ("Start of the invoice, legacy INV_NO or order number, part of the customer's code, name "
                        "or email, or the legacy ORD_NO.")
    sortable_by = ("display_number",)
    autocomplete_fields = ("customer",)
    form = InvoiceForm
    inlines = (InvoiceLineInline, PaymentInline, CreditNoteInline, InvoiceStatusEventInline)
    actions = ("issue", "void", "credit")
    change_form_template = "admin/oms/change_form.html"
    csv_columns = (
        CsvColumn("Number", "number"), CsvColumn("Kind", "kind"), CsvColumn("Status", "status"),
        CsvColumn("Legacy INV_NO", "legacy_id"), CsvColumn("Customer code", "customer__code"),
        CsvColumn("Customer name", "customer__name"), CsvColumn("Order", "order__number"),
        CsvColumn("Legacy ORD_NO", "legacy_order_number"), CsvColumn("Credits invoice", "credited_invoice__number"),
        CsvColumn("Invoice date", "invoiced_at"), CsvColumn("Due date", "due_at"), CsvColumn("Currency", "currency"),
        CsvColumn("Discount", "discount"), CsvColumn("Net", "net"), CsvColumn("Tax", "tax"),
        CsvColumn("Total", "total"), CsvColumn("Paid", "paid_amount"), CsvColumn("Credited", "credited_amount"),
        CsvColumn("Date fully paid", "paid_at"), CsvColumn("Created", "created_at"),
    )

    # --- list --------------------------------------------------------------------------------
    def get_search_results(self, request, queryset, search_term):
        """Each word must match: the start of the invoice number, legacy INV_NO or order number, a
        customer (part of its code, name or email), or the legacy ORD_NO.

        Index lookups ORed into one bitmap scan, as for orders (OrderAdmin.get_search_results).
        The legacy ORD_NO has no index: a number typed alone scans the invoices (~0.2 s a million).
        """
        terms = search_terms(search_term)
        if not terms:
            return queryset, False
        searched = queryset
        for term in terms:
            upper = term.upper()
            match = (Q(number__startswith=upper) | Q(legacy_id__startswith=term) | Q(legacy_id__startswith=upper)
                     | Q(customer_id__in=matching_keys(customers_matching(term)))
                     | Q(order_id__in=matching_keys(Order.objects.filter(number__startswith=upper))))
            if term.isdigit() and int(term) <= INT_MAX:
                match |= Q(legacy_order_number=int(term))
            searched = searched.filter(match)
        return narrowed_to_matches(queryset, searched), False

    @admin.display(description="number", ordering="number")
    def display_number(self, invoice):
        return invoice_label(invoice)

    @admin.display(description="kind")
    def kind_display(self, invoice):
        if invoice.kind == InvoiceKind.CREDIT_NOTE and invoice.credited_invoice is not None:
            return f"Credit note for {invoice_label(invoice.credited_invoice)}"
        return invoice.get_kind_display()

    @admin.display(description="status")
    def status_badge(self, invoice):
        label = invoice.get_status_display() + (" (overdue)" if invoice.is_overdue else "")
        return format_html('<span class="oms-status oms-status-{}">{}</span>', invoice.status, label)

    @admin.display(description="customer")
    def customer_link(self, invoice):
        return change_link(invoice.customer)

    @admin.display(description="order")
    def order_link(self, invoice):
        if invoice.order_id is None:
            return f"legacy {invoice.legacy_order_number}" if invoice.legacy_order_number else "—"
        return change_link(invoice.order, invoice.order.number)

    @admin.display(description="total")
    def total_display(self, invoice):
        return format_html('<span class="oms-amount">{}</span>', money(invoice.total))

    @admin.display(description="balance due")
    def balance_display(self, invoice):
        if invoice.kind != InvoiceKind.INVOICE or invoice.status in (InvoiceStatus.VOID, InvoiceStatus.DRAFT):
            return "—"
        return format_html('<span class="oms-amount">{}</span>', money(invoice.balance_due))

    # --- permissions -------------------------------------------------------------------------
    def has_change_permission(self, request, obj=None):
        # An issued invoice is never edited: its page is read-only, its buttons pay, void or credit it.
        if obj is not None and obj.status != InvoiceStatus.DRAFT:
            return False
        return super().has_change_permission(request, obj)

    def has_delete_permission(self, request, obj=None):
        return False  # invoices are voided or credited, never deleted: their numbers are gapless

    def has_issue_permission(self, request):
        return request.user.has_perm("invoices.issue_invoice")

    def has_void_permission(self, request):
        return request.user.has_perm("invoices.void_invoice")

    def has_credit_permission(self, request):
        return request.user.has_perm("invoices.credit_invoice")

    def has_record_payment_permission(self, request):
        return request.user.has_perm("invoices.record_payment")

    # --- the form ----------------------------------------------------------------------------
    def get_fieldsets(self, request, obj=None):
        if obj is None:
            return (
                (None, {"fields": ("customer", "currency", "due_at", "notes"),
                        "description": "A manual invoice bills no order (services, fees, corrections). "
                                       "Invoices of orders are drafted from the order list."}),
                ("Amounts", {"fields": ("discount", "tax"),
                             "description": "Net and total are computed from the lines when you save."}),
            )
        notes = ["notes"]
        if obj.kind == InvoiceKind.CREDIT_NOTE:
            notes.insert(0, "reason")
        if obj.void_reason:
            notes.insert(0, "void_reason")
        return (
            (None, {"fields": ("number", "kind", "status_display", "customer", "links", "currency", "invoiced_at",
                               "due_at")}),
            ("Amounts", {"fields": ("lines_total", "discount", "net", "tax", "total", "paid_amount", "paid_at",
                                    "credited_amount", "balance_display")}),
            ("Notes", {"fields": tuple(notes)}),
            ("Record", {"fields": ("created_by", "created_at", "updated_at", "legacy_id", "legacy_order_number",
                                   "series", "fiscal_year", "sequence_number"), "classes": ("collapse",)}),
        )

    def get_readonly_fields(self, request, obj=None):
        if obj is None:
            return ()
        fields = ["number", "kind", "status_display", "links", "invoiced_at", "lines_total", "net", "total",
                  "paid_amount", "paid_at", "credited_amount", "balance_display", "reason", "void_reason",
                  "created_by", "created_at", "updated_at", "legacy_id", "legacy_order_number", "series",
                  "fiscal_year", "sequence_number"]
        if obj.order_id is not None:
            fields.append("customer")  # an order's invoice bills the order's customer
        return fields

    def get_form(self, request, obj=None, change=False, **kwargs):
        # "discount" is a declared form field (see InvoiceForm); named in `fields`, the model form
        # factory would refuse it as a non-editable model field.
        if kwargs.get("fields"):
            kwargs["fields"] = [f for f in kwargs["fields"] if f != "discount"]
        return super().get_form(request, obj, change, **kwargs)

    def get_inline_instances(self, request, obj=None):
        inlines = super().get_inline_instances(request, obj)
        if obj is None:
            return [i for i in inlines if isinstance(i, InvoiceLineInline)]
        if obj.kind == InvoiceKind.CREDIT_NOTE:
            return [i for i in inlines if not isinstance(i, (CreditNoteInline, PaymentInline))]
        return inlines

    @admin.display(description="status")
    def status_display(self, invoice):
        label = invoice.get_status_display() + (" — overdue" if invoice.is_overdue else "")
        return format_html('<span class="oms-status oms-status-{}">{}</span>', invoice.status, label)

    @admin.display(description="related")
    def links(self, invoice):
        parts = [format_html("Customer: {}", change_link(invoice.customer))]
        if invoice.order_id:
            parts.append(format_html("Order: {}", change_link(invoice.order, invoice.order.number)))
        elif invoice.legacy_order_number:
            parts.append(format_html("Legacy order {} (not migrated)", invoice.legacy_order_number))
        if invoice.credited_invoice_id:
            parts.append(format_html("Credits: {}", change_link(invoice.credited_invoice,
                                                                invoice_label(invoice.credited_invoice))))
        parts.append(format_html('<a href="{}">Other invoices of this customer</a>',
                                 admin_url(Invoice, "changelist", query=f"customer__id__exact={invoice.customer_id}")))
        return format_html("<br>".join(["{}"] * len(parts)), *parts)

    @admin.display(description="lines total")
    def lines_total(self, invoice):
        return money(invoice.net + invoice.discount)

    @admin.display(description="balance due")
    def balance_display(self, invoice):
        return money(invoice.balance_due, invoice.currency)

    # --- saving through the services ---------------------------------------------------------
    def save_model(self, request, obj, form, change):
        """Nothing yet: the draft and its lines are saved together by the services in save_related."""

    def save_related(self, request, form, formsets, change):
        lines_formset = next((fs for fs in formsets if fs.model is InvoiceLine), None)
        lines = None
        if lines_formset is not None and (not change or lines_formset.has_changed()):
            lines = _line_inputs(lines_formset)
        data = form.cleaned_data
        if not change:
            invoice = services.invoice_create_manual(
                customer=data["customer"], lines=lines or [], tax=data["tax"], discount=data["discount"],
                currency=data["currency"], due_at=data.get("due_at"), notes=data.get("notes", ""), by=request.user)
        else:
            invoice = form.instance
            changes = {name: data[name] for name in form.changed_data if name in DRAFT_FIELDS}
            if changes or lines is not None:
                invoice = services.invoice_update_draft(invoice=invoice, lines=lines, by=request.user, **changes)
        form.lines_replaced = change and lines is not None
        adopt_saved(form.instance, invoice)

    def construct_change_message(self, request, form, formsets, add=False):
        message = construct_change_message(form, [], add)
        if getattr(form, "lines_replaced", False):
            message.append({"changed": {"fields": ["lines"]}})
        return message

    # --- pages of one invoice: print, PDF, payment, life-cycle buttons -----------------------
    def get_urls(self):
        info = self.opts.app_label, self.opts.model_name
        view = self.admin_site.admin_view
        return [
            path("<path:object_id>/print/", view(self.print_view), name="%s_%s_print" % info),
            path("<path:object_id>/pdf/", view(self.pdf_view), name="%s_%s_pdf" % info),
            path("<path:object_id>/record-payment/", view(self.record_payment_view),
                 name="%s_%s_record_payment" % info),
            path("<path:object_id>/step/<str:step>/", view(self.step_view), name="%s_%s_step" % info),
            *super().get_urls(),
        ]

    def _viewable(self, request, object_id) -> Invoice | None:
        invoice = self.get_object(request, unquote(object_id))
        if invoice is not None and not self.has_view_or_change_permission(request, invoice):
            raise PermissionDenied
        return invoice

    def print_view(self, request, object_id):
        invoice = self._viewable(request, object_id)
        if invoice is None:
            return self._get_obj_does_not_exist_redirect(request, self.opts, object_id)
        return views.invoice_print(request, invoice)

    def pdf_view(self, request, object_id):
        invoice = self._viewable(request, object_id)
        if invoice is None:
            return self._get_obj_does_not_exist_redirect(request, self.opts, object_id)
        return views.invoice_pdf(request, invoice)

    def record_payment_view(self, request, object_id):
        invoice = self._viewable(request, object_id)
        if invoice is None:
            return self._get_obj_does_not_exist_redirect(request, self.opts, object_id)
        if not self.has_record_payment_permission(request):
            raise PermissionDenied
        if request.method == "POST":
            form = PaymentForm(request.POST)
            if form.is_valid():
                try:
                    payment = services.invoice_record_payment(
                        invoice=invoice, amount=form.cleaned_data["amount"], by=request.user,
                        received_at=form.cleaned_data["received_at"], reference=form.cleaned_data["reference"])
                except DomainError as exc:
                    form.add_error(exc.field if exc.field in form.fields else None, exc.message)
                else:
                    invoice.refresh_from_db()
                    after = ("It is now paid in full." if invoice.status == InvoiceStatus.PAID
                             else f"{money(invoice.balance_due, invoice.currency)} left to pay.")
                    self.message_user(request, f"Recorded a payment of {money(payment.amount, invoice.currency)} "
                                               f"on {invoice_label(invoice)}. {after}", messages.SUCCESS)
                    return HttpResponseRedirect(admin_url(invoice))
        else:
            form = PaymentForm(initial={"amount": invoice.balance_due})
        context = {
            **self.admin_site.each_context(request),
            "title": f"Record a payment on {invoice_label(invoice)}",
            "subtitle": None,
            "opts": self.opts,
            "original": invoice,
            "object_url": admin_url(invoice),
            "form": form,
            "balance_due": money(invoice.balance_due, invoice.currency),
            "media": self.media + form.media,
        }
        request.current_app = self.admin_site.name
        return TemplateResponse(request, "admin/invoices/invoice/record_payment.html", context)

    def step_view(self, request, object_id, step):
        if step not in INVOICE_STEPS:
            return self._get_obj_does_not_exist_redirect(request, self.opts, object_id)
        messages_by_step = {
            "issue": lambda invoice, issued: f"Issued {issued.number}.",
            "void": lambda invoice, voided: f"Voided {invoice_label(invoice)}.",
            "credit": lambda invoice, note: f"Credited {invoice_label(invoice)} with credit note {note.number}.",
        }
        return object_step_view(self, request, object_id, INVOICE_STEPS[step], label=invoice_label,
                                done_message=messages_by_step[step])

    def render_change_form(self, request, context, add=False, change=False, form_url="", obj=None):
        if obj is not None:
            context["oms_tools"] = self.tools_for(request, obj)
        return super().render_change_form(request, context, add, change, form_url, obj)

    def _url(self, name: str, invoice: Invoice, *extra) -> str:
        return reverse(f"admin:invoices_invoice_{name}", args=[invoice.pk, *extra], current_app=self.admin_site.name)

    def tools_for(self, request, invoice: Invoice) -> list[dict]:
        """The buttons the invoice's status offers (the services still decide when one is pressed)."""
        tools = [{"label": "Print", "url": self._url("print", invoice), "new_window": True}]
        if views.pdf_renderer() is not None:
            tools.append({"label": "PDF", "url": self._url("pdf", invoice), "new_window": True})
        is_invoice = invoice.kind == InvoiceKind.INVOICE
        if invoice.status == InvoiceStatus.DRAFT and self.has_issue_permission(request):
            tools.append({"label": "Issue", "url": self._url("step", invoice, "issue")})
        if is_invoice and invoice.status == InvoiceStatus.ISSUED and self.has_record_payment_permission(request):
            tools.append({"label": "Record payment", "url": self._url("record_payment", invoice)})
        if (is_invoice and InvoiceStatus.VOID in INVOICE_LIFECYCLE.available_transitions(invoice.status)
                and self.has_void_permission(request)):
            tools.append({"label": "Void…", "url": self._url("step", invoice, "void")})
        if (is_invoice and invoice.status in (InvoiceStatus.ISSUED, InvoiceStatus.PAID)
                and self.has_credit_permission(request)):
            tools.append({"label": "Credit in full…", "url": self._url("step", invoice, "credit")})
        return tools

    # --- actions -----------------------------------------------------------------------------
    @admin.action(description="Issue selected draft invoices", permissions=["issue"])
    def issue(self, request, queryset):
        step = INVOICE_STEPS["issue"]
        outcome = apply_step(queryset, step, by=request.user, label=invoice_label)
        text, level = outcome_message(outcome, step=step, noun="invoice", plural="invoices",
                                      detail=_numbers(outcome.done) if outcome.done else "")
        self.message_user(request, text, level)

    @admin.action(description="Void selected invoices…", permissions=["void"])
    def void(self, request, queryset):
        return action_with_reason(self, request, queryset, step=INVOICE_STEPS["void"], action="void",
                                  noun="invoice", plural="invoices", label=invoice_label)

    @admin.action(description="Credit selected invoices in full…", permissions=["credit"])
    def credit(self, request, queryset):
        return action_with_reason(self, request, queryset, step=INVOICE_STEPS["credit"], action="credit",
                                  noun="invoice", plural="invoices", label=invoice_label,
                                  detail=lambda notes: "credit notes " + _numbers(notes))
