"""Query filters on customers, orders and order status events (each one an integrator asked for)."""

from __future__ import annotations

import django_filters
from django.db.models import Q

from oms.api.filters import IdFilter, ZonedDateTimeFilter
from oms.money import CURRENCY_CHOICES
from orders.models import Customer, CustomerStatus, Order, OrderStatus, OrderStatusEvent


class CustomerFilter(django_filters.FilterSet):
    status = django_filters.MultipleChoiceFilter(choices=CustomerStatus.choices,
                                                 help_text="One or more statuses (repeat the parameter).")
    code = django_filters.CharFilter(field_name="code", lookup_expr="iexact", max_length=20)
    email = django_filters.CharFilter(field_name="email", lookup_expr="iexact", max_length=254)
    legacy_id = IdFilter(field_name="legacy_id", help_text="The customer's CUST_ID in the legacy system.")
    updated_since = ZonedDateTimeFilter(field_name="updated_at", lookup_expr="gte",
                                        help_text="Changed at or after this time (for incremental sync).")
    search = django_filters.CharFilter(method="filter_search", max_length=100,
                                       help_text="Part of the name, or the start of the code or email.")

    class Meta:
        model = Customer
        fields: list[str] = []

    def filter_search(self, queryset, name, value):
        value = value.strip()
        if not value:
            return queryset
        return queryset.filter(Q(name__icontains=value) | Q(code__istartswith=value) | Q(email__istartswith=value))


class OrderFilter(django_filters.FilterSet):
    status = django_filters.MultipleChoiceFilter(choices=OrderStatus.choices,
                                                 help_text="One or more statuses (repeat the parameter).")
    customer = IdFilter(field_name="customer_id", help_text="The customer's id.")
    currency = django_filters.ChoiceFilter(choices=CURRENCY_CHOICES)
    ordered_after = ZonedDateTimeFilter(field_name="ordered_at", lookup_expr="gte",
                                        help_text="Ordered at or after this time.")
    ordered_before = ZonedDateTimeFilter(field_name="ordered_at", lookup_expr="lt",
                                         help_text="Ordered before this time.")
    updated_since = ZonedDateTimeFilter(field_name="updated_at", lookup_expr="gte",
                                        help_text="Changed at or after this time (for incremental sync).")
    legacy_id = IdFilter(field_name="legacy_id", help_text="The order's ORD_NO in the legacy system.")
    number = django_filters.CharFilter(field_name="number", lookup_expr="exact", max_length=20)
    po_number = django_filters.CharFilter(field_name="po_number", lookup_expr="exact", max_length=30)
    search = django_filters.CharFilter(method="filter_search", max_length=30,
                                       help_text="The start of the order number or of the PO number.")

    class Meta:
        model = Order
        fields: list[str] = []

    def filter_search(self, queryset, name, value):
        value = value.strip()
        if not value:
            return queryset
        return queryset.filter(Q(number__startswith=value.upper()) | Q(po_number__startswith=value))


class OrderStatusEventFilter(django_filters.FilterSet):
    order = IdFilter(field_name="order_id", help_text="The order's id.")
    to_status = django_filters.MultipleChoiceFilter(choices=OrderStatus.choices,
                                                    help_text="Only moves into these statuses.")
    at_after = ZonedDateTimeFilter(field_name="at", lookup_expr="gte", help_text="At or after this time.")
    at_before = ZonedDateTimeFilter(field_name="at", lookup_expr="lt", help_text="Before this time.")

    class Meta:
        model = OrderStatusEvent
        fields: list[str] = []
