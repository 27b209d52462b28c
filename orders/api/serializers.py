"""Representations of customers, orders and their status events; the input bodies that change them.

Inputs only check shape (types, lengths, known ids, amounts the database can hold); every
business rule is the services' (orders/services.py), which the views call.
"""

from __future__ import annotations

from drf_spectacular.utils import OpenApiExample, extend_schema_field, extend_schema_serializer
from rest_framework import serializers

from oms import money
from oms.api.fields import AmountString, PercentString, PriceString, QuantityString, ZonedDateTime
from oms.api.serializers import OutputModelSerializer, StrictInput
from orders.models import (
    Customer,
    CustomerStatus,
    Order,
    OrderLine,
    OrderStatus,
    OrderStatusEvent,
)
from orders.services import OrderLineInput

#: The life-cycle actions of an order, by the status each one leads to (URL: /orders/{id}/{action}/).
ORDER_ACTION_BY_TARGET = {
    OrderStatus.CONFIRMED: "confirm",
    OrderStatus.PROCESSING: "start-processing",
    OrderStatus.SHIPPED: "ship",
    OrderStatus.DELIVERED: "deliver",
    OrderStatus.ON_HOLD: "hold",
    OrderStatus.CANCELLED: "cancel",
}
ORDER_ACTIONS = [*ORDER_ACTION_BY_TARGET.values(), "release"]


# ---------------------------------------------------------------------------------------------
# Customers
# ---------------------------------------------------------------------------------------------
class CustomerSerializer(OutputModelSerializer):
    class Meta:
        model = Customer
        fields = ["id", "code", "legacy_id", "name", "email", "phone", "address_line1", "address_line2", "city",
                  "state", "postal_code", "country", "status", "credit_limit", "created_at", "updated_at"]
        read_only_fields = fields


@extend_schema_serializer(examples=[OpenApiExample("New customer", request_only=True, value={
    "code": "C0001234", "name": "Acme Hardware", "email": "billing@acme.example.com", "phone": "555-0100",
    "address_line1": "1 Main St", "city": "Albany", "state": "NY", "postal_code": "12207", "country": "US",
    "credit_limit": "50000.00"})])
class CustomerInput(StrictInput):
    """Only the fields sent are changed (on PUT too); `name` is required when creating."""

    echo_ok = frozenset({"id", "legacy_id", "created_at", "updated_at"})

    code = serializers.CharField(max_length=20, required=False, allow_null=True, allow_blank=True)
    name = serializers.CharField(max_length=100)
    email = serializers.EmailField(max_length=254, required=False, allow_null=True, allow_blank=True)
    phone = serializers.CharField(max_length=30, required=False, allow_blank=True)
    address_line1 = serializers.CharField(max_length=100, required=False, allow_blank=True)
    address_line2 = serializers.CharField(max_length=100, required=False, allow_blank=True)
    city = serializers.CharField(max_length=60, required=False, allow_blank=True)
    state = serializers.CharField(max_length=2, required=False, allow_blank=True)
    postal_code = serializers.CharField(max_length=10, required=False, allow_blank=True)
    country = serializers.CharField(min_length=2, max_length=2, required=False,
                                    help_text="ISO 3166-1 alpha-2; US when not given.")
    status = serializers.ChoiceField(choices=CustomerStatus.choices, required=False)
    credit_limit = AmountString(required=False, allow_null=True)


# ---------------------------------------------------------------------------------------------
# Orders
# ---------------------------------------------------------------------------------------------
class OrderLineSerializer(OutputModelSerializer):
    class Meta:
        model = OrderLine
        fields = ["line_number", "sku", "description", "quantity", "unit_price", "discount_percent", "line_total"]
        read_only_fields = fields


class OrderSerializer(OutputModelSerializer):
    lines = OrderLineSerializer(many=True, read_only=True)
    # Declared, not derived: a derived read-only field loses allow_blank, and "" is its usual value.
    status_before_hold = serializers.ChoiceField(
        choices=OrderStatus.choices, allow_blank=True, read_only=True,
        help_text="While on hold: the status release returns to; otherwise empty.")
    available_actions = serializers.SerializerMethodField(
        help_text="The life-cycle actions the order's status allows now (POST /orders/{id}/{action}/).")

    class Meta:
        model = Order
        fields = ["id", "number", "legacy_id", "customer", "status", "status_before_hold", "available_actions",
                  "currency", "ordered_at", "requested_ship_at", "subtotal", "discount", "tax", "freight", "total",
                  "ship_name", "ship_address_line1", "ship_address_line2", "ship_city", "ship_state",
                  "ship_postal_code", "ship_country", "po_number", "notes", "lines", "created_at", "updated_at"]
        read_only_fields = fields

    @extend_schema_field(serializers.ListField(child=serializers.ChoiceField(choices=ORDER_ACTIONS)))
    def get_available_actions(self, order: Order) -> list[str]:
        actions = []
        for target in order.available_transitions():
            if order.status == OrderStatus.ON_HOLD and target != OrderStatus.CANCELLED:
                actions.append("release")
            else:
                actions.append(ORDER_ACTION_BY_TARGET[target])
        return actions


class OrderLineInputSerializer(StrictInput):
    echo_ok = frozenset({"line_total"})

    line_number = serializers.IntegerField(min_value=1, max_value=32767, required=False,
                                           help_text="Kept if given; otherwise lines are numbered in order.")
    sku = serializers.CharField(max_length=20)
    description = serializers.CharField(max_length=200, required=False, allow_blank=True)
    quantity = QuantityString()
    unit_price = PriceString()
    discount_percent = PercentString(required=False)

    def to_line(self, data: dict) -> OrderLineInput:
        return OrderLineInput(sku=data["sku"], quantity=data["quantity"], unit_price=data["unit_price"],
                              description=data.get("description", ""),
                              discount_percent=data.get("discount_percent", money.ZERO),
                              line_number=data.get("line_number"))


@extend_schema_serializer(examples=[OpenApiExample("New order", request_only=True, value={
    "customer": 42, "currency": "USD", "po_number": "PO-7731", "tax": "2.04", "freight": "4.00",
    "ship_name": "Acme Hardware", "ship_address_line1": "1 Main St", "ship_city": "Albany", "ship_state": "NY",
    "ship_postal_code": "12207", "ship_country": "US",
    "lines": [{"sku": "SKU-1", "description": "Widget", "quantity": "2", "unit_price": "10.0000"},
              {"sku": "SKU-2", "description": "Gadget", "quantity": "1.5", "unit_price": "5.5000",
               "discount_percent": "10"}]})])
class OrderInput(StrictInput):
    """An order's header and lines. On update only the fields sent change; `lines`, when sent,
    replaces all lines (pending orders only). Money and customer change only while pending;
    delivery details until the order ships."""

    echo_ok = frozenset({"id", "number", "legacy_id", "status", "status_before_hold", "available_actions",
                         "subtotal", "total", "created_at", "updated_at"})

    customer = serializers.PrimaryKeyRelatedField(queryset=Customer.objects.all())
    currency = serializers.ChoiceField(choices=money.CURRENCY_CHOICES, required=False)
    ordered_at = ZonedDateTime(required=False)
    requested_ship_at = ZonedDateTime(required=False, allow_null=True)
    discount = AmountString(required=False)
    tax = AmountString(required=False)
    freight = AmountString(required=False)
    ship_name = serializers.CharField(max_length=100, required=False, allow_blank=True)
    ship_address_line1 = serializers.CharField(max_length=100, required=False, allow_blank=True)
    ship_address_line2 = serializers.CharField(max_length=100, required=False, allow_blank=True)
    ship_city = serializers.CharField(max_length=100, required=False, allow_blank=True)
    ship_state = serializers.CharField(max_length=2, required=False, allow_blank=True)
    ship_postal_code = serializers.CharField(max_length=10, required=False, allow_blank=True)
    ship_country = serializers.CharField(min_length=2, max_length=2, required=False)
    po_number = serializers.CharField(max_length=30, required=False, allow_blank=True)
    notes = serializers.CharField(max_length=10_000, required=False, allow_blank=True)
    lines = OrderLineInputSerializer(many=True, required=False, max_length=1000)

    def validate(self, attrs):
        """Refuse amounts the database cannot hold (the services would compute them, then fail to save)."""
        order = self.instance
        problems: dict = {}
        lines = attrs.get("lines")
        if lines is not None:
            line_errors, subtotal = [], money.ZERO
            for line in lines:
                total = money.line_amount(line["quantity"], line["unit_price"],
                                          line.get("discount_percent", money.ZERO))
                subtotal += total
                line_errors.append({} if total <= money.AMOUNT_MAX else {"quantity": [_too_large(
                    f"quantity × unit price ({total}) is more than the largest amount, {money.AMOUNT_MAX}.")]})
            if any(line_errors):
                problems["lines"] = line_errors
            elif subtotal > money.AMOUNT_MAX:
                problems["lines"] = [_too_large(f"The lines add up to {subtotal}, more than the largest amount, "
                                                f"{money.AMOUNT_MAX}.")]
        else:
            subtotal = order.subtotal if order is not None else money.ZERO
        if not problems:
            parts = {name: attrs.get(name, getattr(order, name, money.ZERO) if order else money.ZERO)
                     for name in ("discount", "tax", "freight")}
            total = subtotal - parts["discount"] + parts["tax"] + parts["freight"]
            if total > money.AMOUNT_MAX:
                field = "freight" if "freight" in attrs else "tax"
                problems[field] = [_too_large(f"The order total would be {total}, more than the largest amount, "
                                              f"{money.AMOUNT_MAX}.")]
        if problems:
            raise serializers.ValidationError(problems)
        return attrs

    def header(self) -> dict:
        """The validated header fields, as the services take them."""
        return {name: value for name, value in self.validated_data.items() if name != "lines"}

    def order_lines(self) -> list[OrderLineInput] | None:
        lines = self.validated_data.get("lines")
        if lines is None:
            return None
        return [OrderLineInputSerializer().to_line(line) for line in lines]


def _too_large(message: str):
    from rest_framework.exceptions import ErrorDetail

    return ErrorDetail(message, code="out_of_range")


# ---------------------------------------------------------------------------------------------
# Status events
# ---------------------------------------------------------------------------------------------
class OrderStatusEventSerializer(OutputModelSerializer):
    by = serializers.SlugRelatedField(slug_field="username", read_only=True, allow_null=True,
                                      help_text="Who made the change (user name), or null.")

    class Meta:
        model = OrderStatusEvent
        fields = ["id", "order", "from_status", "to_status", "at", "by", "reason"]
        read_only_fields = fields

