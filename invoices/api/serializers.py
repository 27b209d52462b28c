"""Representations of invoices, credit notes, payments and status events; the bodies that act on them.

Inputs only check shape; every business rule is in invoices/services.py, which the views call.
"""

from __future__ import annotations

from decimal import Decimal

from drf_spectacular.utils import OpenApiExample, extend_schema_serializer
from rest_framework import serializers
from rest_framework.exceptions import ErrorDetail

from invoices.models import Invoice, InvoiceLine, InvoiceStatusEvent, Payment
from invoices.services import InvoiceLineInput
from oms import money
from oms.api.fields import AmountString, DecimalString, PriceString, QuantityString, ZonedDateTime
from oms.api.serializers import OutputModelSerializer, StrictInput
from orders.models import Customer, Order


class InvoiceLineSerializer(OutputModelSerializer):
    class Meta:
        model = InvoiceLine
        fields = ["line_number", "sku", "description", "quantity", "unit_price", "amount"]
        read_only_fields = fields


class PaymentSerializer(OutputModelSerializer):
    class Meta:
        model = Payment
        fields = ["id", "amount", "received_at", "reference", "recorded_at"]
        read_only_fields = fields


class InvoiceSerializer(OutputModelSerializer):
    lines = InvoiceLineSerializer(many=True, read_only=True)
    payments = PaymentSerializer(many=True, read_only=True)
    balance_due = DecimalString(max_digits=money.AMOUNT_DIGITS + 1, decimal_places=money.AMOUNT_PLACES,
                                read_only=True, help_text="total − paid − credited.")

    class Meta:
        model = Invoice
        fields = ["id", "number", "kind", "status", "customer", "order", "credited_invoice", "legacy_id",
                  "legacy_order_number", "currency", "invoiced_at", "due_at", "discount", "net", "tax", "total",
                  "paid_amount", "credited_amount", "balance_due", "paid_at", "reason", "void_reason", "notes",
                  "lines", "payments", "created_at", "updated_at"]
        read_only_fields = fields


class InvoiceLineInputSerializer(StrictInput):
    echo_ok = frozenset({"line_number", "amount"})

    sku = serializers.CharField(max_length=20, required=False, allow_blank=True)
    description = serializers.CharField(max_length=200)
    quantity = QuantityString(min_value=Decimal("0"))
    unit_price = PriceString()

    @staticmethod
    def to_line(data: dict) -> InvoiceLineInput:
        return InvoiceLineInput(description=data["description"], quantity=data["quantity"],
                                unit_price=data["unit_price"], sku=data.get("sku", ""))


_INVOICE_ECHO = frozenset({"id", "number", "kind", "status", "credited_invoice", "legacy_id", "legacy_order_number",
                           "invoiced_at", "net", "total", "paid_amount", "credited_amount", "balance_due", "paid_at",
                           "reason", "void_reason", "payments", "created_at", "updated_at"})


class _InvoiceBodyMixin:
    def validate(self, attrs):
        """Refuse amounts the database cannot hold (the services would compute them, then fail to save)."""
        lines = attrs.get("lines")
        if lines is not None:
            line_errors, total = [], money.ZERO
            for line in lines:
                amount = money.line_amount(line["quantity"], line["unit_price"])
                total += amount
                line_errors.append({} if amount <= money.AMOUNT_MAX else {"quantity": [ErrorDetail(
                    f"quantity × unit price ({amount}) is more than the largest amount, {money.AMOUNT_MAX}.",
                    code="out_of_range")]})
            if any(line_errors):
                raise serializers.ValidationError({"lines": line_errors})
            if total + attrs.get("tax", money.ZERO) > money.AMOUNT_MAX:
                raise serializers.ValidationError({"lines": [ErrorDetail(
                    f"The invoice would total more than the largest amount, {money.AMOUNT_MAX}.",
                    code="out_of_range")]})
        return super().validate(attrs)

    def invoice_lines(self) -> list[InvoiceLineInput] | None:
        lines = self.validated_data.get("lines")
        return None if lines is None else [InvoiceLineInputSerializer.to_line(line) for line in lines]


@extend_schema_serializer(examples=[
    OpenApiExample("Invoice an order", request_only=True, value={"order": 1042}),
    OpenApiExample("Manual invoice", request_only=True, value={
        "customer": 42, "currency": "USD", "tax": "8.00", "due_at": "2025-04-30T00:00:00Z",
        "notes": "Installation", "lines": [{"description": "On-site installation", "quantity": "2",
                                            "unit_price": "50.0000"}]}),
])
class InvoiceCreateInput(_InvoiceBodyMixin, StrictInput):
    """Either `order` alone (drafts the order's invoice: its lines, freight, discount, tax), or a
    manual invoice: `customer` and `lines`, with optional tax, discount, currency, due date, notes."""

    echo_ok = _INVOICE_ECHO

    order = serializers.PrimaryKeyRelatedField(queryset=Order.objects.all(), required=False)
    customer = serializers.PrimaryKeyRelatedField(queryset=Customer.objects.all(), required=False)
    currency = serializers.ChoiceField(choices=money.CURRENCY_CHOICES, required=False)
    tax = AmountString(required=False)
    discount = AmountString(required=False)
    due_at = ZonedDateTime(required=False, allow_null=True)
    notes = serializers.CharField(max_length=10_000, required=False, allow_blank=True)
    lines = InvoiceLineInputSerializer(many=True, required=False, max_length=1000)

    def validate(self, attrs):
        if "order" in attrs:
            others = sorted(set(attrs) - {"order"})
            if others:
                raise serializers.ValidationError({name: [ErrorDetail(
                    "Not accepted with `order`: the invoice copies the order; PATCH the draft afterwards.",
                    code="not_allowed")] for name in others})
        elif "customer" not in attrs:
            raise serializers.ValidationError({"customer": [ErrorDetail(
                "Send `order` to invoice an order, or `customer` and `lines` for a manual invoice.",
                code="required")]})
        return super().validate(attrs)


class InvoiceUpdateInput(_InvoiceBodyMixin, StrictInput):
    """Changes a draft; `lines`, when sent, replaces all lines. An issued invoice is never edited."""

    echo_ok = _INVOICE_ECHO | {"order"}

    customer = serializers.PrimaryKeyRelatedField(queryset=Customer.objects.all(), required=False)
    currency = serializers.ChoiceField(choices=money.CURRENCY_CHOICES, required=False)
    tax = AmountString(required=False)
    discount = AmountString(required=False)
    due_at = ZonedDateTime(required=False, allow_null=True)
    notes = serializers.CharField(max_length=10_000, required=False, allow_blank=True)
    lines = InvoiceLineInputSerializer(many=True, required=False, max_length=1000)

    def changes(self) -> dict:
        return {name: value for name, value in self.validated_data.items() if name != "lines"}


@extend_schema_serializer(examples=[OpenApiExample("Payment", request_only=True, value={
    "amount": "125.00", "received_at": "2025-03-14T10:00:00Z", "reference": "Wire 88231"})])
class PaymentInput(StrictInput):
    amount = AmountString(min_value=Decimal("0.01"))
    received_at = ZonedDateTime(required=False, help_text="When the money arrived; now if not given.")
    reference = serializers.CharField(max_length=60, required=False, allow_blank=True)


class VoidInput(StrictInput):
    reason = serializers.CharField(max_length=2000, help_text="Why the invoice is voided.")


class CreditInput(StrictInput):
    reason = serializers.CharField(max_length=2000, help_text="Why the invoice is credited.")
    amount = AmountString(required=False, allow_null=True,
                          help_text="Credit this much; the whole creditable amount when not given.")


class InvoiceStatusEventSerializer(OutputModelSerializer):
    by = serializers.SlugRelatedField(slug_field="username", read_only=True, allow_null=True,
                                      help_text="Who made the change (user name), or null.")

    class Meta:
        model = InvoiceStatusEvent
        fields = ["id", "invoice", "from_status", "to_status", "at", "by", "reason"]
        read_only_fields = fields
