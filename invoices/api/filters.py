"""Query filters on invoices and invoice status events."""

from __future__ import annotations

import django_filters

from invoices.models import Invoice, InvoiceKind, InvoiceStatus, InvoiceStatusEvent
from oms.api.filters import IdFilter, StrictBooleanFilter, ZonedDateTimeFilter
from oms.money import CURRENCY_CHOICES


class InvoiceFilter(django_filters.FilterSet):
    status = django_filters.MultipleChoiceFilter(choices=InvoiceStatus.choices,
                                                 help_text="One or more statuses (repeat the parameter).")
    kind = django_filters.ChoiceFilter(choices=InvoiceKind.choices)
    customer = IdFilter(field_name="customer_id", help_text="The billed customer's id.")
    order = IdFilter(field_name="order_id", help_text="The invoiced order's id.")
    currency = django_filters.ChoiceFilter(choices=CURRENCY_CHOICES)
    created_after = ZonedDateTimeFilter(field_name="created_at", lookup_expr="gte")
    created_before = ZonedDateTimeFilter(field_name="created_at", lookup_expr="lt")
    invoiced_after = ZonedDateTimeFilter(field_name="invoiced_at", lookup_expr="gte")
    invoiced_before = ZonedDateTimeFilter(field_name="invoiced_at", lookup_expr="lt")
    due_after = ZonedDateTimeFilter(field_name="due_at", lookup_expr="gte")
    due_before = ZonedDateTimeFilter(field_name="due_at", lookup_expr="lt")
    updated_since = ZonedDateTimeFilter(field_name="updated_at", lookup_expr="gte",
                                        help_text="Changed at or after this time (for incremental sync).")
    legacy_id = django_filters.CharFilter(field_name="legacy_id", max_length=12,
                                          help_text="The invoice's INV_NO in the legacy system.")
    number = django_filters.CharFilter(field_name="number", max_length=20)
    overdue = StrictBooleanFilter(method="filter_overdue",
                                  help_text="true: issued, unpaid and past due now; false: everything else.")
    outstanding = StrictBooleanFilter(method="filter_outstanding",
                                      help_text="true: issued invoices with money still owed.")

    class Meta:
        model = Invoice
        fields: list[str] = []

    def filter_overdue(self, queryset, name, value):
        if value is None:
            return queryset
        overdue = Invoice.objects.overdue().values("pk")
        return queryset.filter(pk__in=overdue) if value else queryset.exclude(pk__in=overdue)

    def filter_outstanding(self, queryset, name, value):
        if value is None:
            return queryset
        outstanding = Invoice.objects.outstanding().values("pk")
        return queryset.filter(pk__in=outstanding) if value else queryset.exclude(pk__in=outstanding)


class InvoiceStatusEventFilter(django_filters.FilterSet):
    invoice = IdFilter(field_name="invoice_id", help_text="The invoice's id.")
    to_status = django_filters.MultipleChoiceFilter(choices=InvoiceStatus.choices,
                                                    help_text="Only moves into these statuses.")
    at_after = ZonedDateTimeFilter(field_name="at", lookup_expr="gte", help_text="At or after this time.")
    at_before = ZonedDateTimeFilter(field_name="at", lookup_expr="lt", help_text="Before this time.")

    class Meta:
        model = InvoiceStatusEvent
        fields: list[str] = []
