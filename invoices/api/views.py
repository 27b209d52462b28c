"""Invoices and credit notes over HTTP. Every write is a call to invoices.services."""

from __future__ import annotations

from django.urls import reverse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema, extend_schema_view
from rest_framework import status
from rest_framework.decorators import action
from rest_framework.generics import get_object_or_404
from rest_framework.response import Response

from invoices import services
from invoices.api.filters import InvoiceFilter, InvoiceStatusEventFilter
from invoices.api.serializers import (
    CreditInput,
    InvoiceCreateInput,
    InvoiceSerializer,
    InvoiceStatusEventSerializer,
    InvoiceUpdateInput,
    PaymentInput,
    VoidInput,
)
from invoices.models import Invoice, InvoiceStatusEvent
from legacy_migration.api.read_sources import ReadSourceMixin
from oms.api import idempotency
from oms.api.idempotency import idempotent
from oms.api.serializers import StrictInput
from oms.api.views import ApiViewSet
from orders.models import Order

INVOICE_QUERYSET = Invoice.objects.prefetch_related("lines", "payments")


class _EmptyInput(StrictInput):
    """No body fields (an empty object or no body at all)."""


def _validated(serializer_class, request, **kwargs):
    serializer = serializer_class(data=request.data, **kwargs)
    serializer.is_valid(raise_exception=True)
    return serializer


def _action_schema(summary: str, request, *, created: bool = False, description: str = ""):
    return extend_schema(summary=summary, tags=["invoices"], request=request,
                         responses={201 if created else 200: InvoiceSerializer},
                         parameters=[idempotency.PARAMETER],
                         description=description or "Goes through the same service as the back office.")


@extend_schema_view(
    list=extend_schema(summary="List invoices and credit notes", tags=["invoices"]),
    retrieve=extend_schema(summary="Get an invoice with its lines and payments", tags=["invoices"]),
)
class InvoiceViewSet(ReadSourceMixin, ApiViewSet):
    read_resource = "invoices"  # READ_SOURCE_INVOICES: modern, legacy or shadow (legacy_migration/shadow.py)
    queryset = INVOICE_QUERYSET
    serializer_class = InvoiceSerializer
    filterset_class = InvoiceFilter
    cache_kind = "invoice"
    # `overdue` depends on the clock as well as on writes.
    uncacheable_params = frozenset({"overdue"})
    ordering_fields = ("created_at", "updated_at", "id")
    default_ordering = "-created_at"
    idempotent_actions = frozenset({"create", "issue", "pay", "void", "credit"})
    action_permissions = {
        "issue": ["invoices.issue_invoice"],
        "pay": ["invoices.record_payment"],
        "void": ["invoices.void_invoice"],
        "credit": ["invoices.credit_invoice"],
    }

    @extend_schema(summary="Draft an invoice (for an order, or a manual one)", tags=["invoices"],
                   request=InvoiceCreateInput, responses={201: InvoiceSerializer},
                   parameters=[idempotency.PARAMETER])
    @idempotent
    def create(self, request):
        serializer = _validated(InvoiceCreateInput, request)
        data = serializer.validated_data
        if "order" in data:
            invoice = services.invoice_create_for_order(order=data["order"], by=request.user)
        else:
            extra = {name: data[name] for name in ("tax", "discount", "currency", "due_at", "notes") if name in data}
            invoice = services.invoice_create_manual(customer=data["customer"], lines=serializer.invoice_lines() or [],
                                                     by=request.user, **extra)
        return Response(self._fresh(invoice.pk), status=status.HTTP_201_CREATED,
                        headers={"Location": request.build_absolute_uri(
                            reverse("api-v1:invoice-detail", args=[invoice.pk]))})

    @extend_schema(summary="Change a draft invoice (the fields sent)", tags=["invoices"], request=InvoiceUpdateInput,
                   responses=InvoiceSerializer)
    def update(self, request, pk=None):
        return self._update(request, partial=False)

    @extend_schema(summary="Change some fields of a draft invoice", tags=["invoices"], request=InvoiceUpdateInput,
                   responses=InvoiceSerializer)
    def partial_update(self, request, pk=None):
        return self._update(request, partial=True)

    def _update(self, request, *, partial: bool):
        invoice = self.get_object()
        serializer = _validated(InvoiceUpdateInput, request, partial=partial)
        services.invoice_update_draft(invoice=invoice, lines=serializer.invoice_lines(), by=request.user,
                                      **serializer.changes())
        return Response(self._fresh(invoice.pk))

    def _fresh(self, pk: int) -> dict:
        return InvoiceSerializer(INVOICE_QUERYSET.get(pk=pk)).data

    @_action_schema("Issue a draft: it gets its number, date and due date", None)
    @action(detail=True, methods=["post"])
    @idempotent
    def issue(self, request, pk=None):
        invoice = self.get_object()
        _validated(_EmptyInput, request)
        services.invoice_issue(invoice=invoice, by=request.user)
        return Response(self._fresh(invoice.pk))

    @_action_schema("Record a payment", PaymentInput,
                    description="Paying the whole balance marks the invoice paid. Overpaying is refused (400).")
    @action(detail=True, methods=["post"])
    @idempotent
    def pay(self, request, pk=None):
        invoice = self.get_object()
        data = _validated(PaymentInput, request).validated_data
        services.invoice_record_payment(invoice=invoice, amount=data["amount"], received_at=data.get("received_at"),
                                        reference=data.get("reference", ""), by=request.user)
        return Response(self._fresh(invoice.pk))

    @_action_schema("Void a draft, or an issued invoice nobody paid or credited", VoidInput)
    @action(detail=True, methods=["post"])
    @idempotent
    def void(self, request, pk=None):
        invoice = self.get_object()
        data = _validated(VoidInput, request).validated_data
        services.invoice_void(invoice=invoice, reason=data["reason"], by=request.user)
        return Response(self._fresh(invoice.pk))

    @_action_schema("Raise a credit note against an issued or paid invoice", CreditInput, created=True,
                    description="Answers with the new (issued) credit note. In full unless `amount` is given.")
    @action(detail=True, methods=["post"])
    @idempotent
    def credit(self, request, pk=None):
        invoice = self.get_object()
        data = _validated(CreditInput, request).validated_data
        note = services.credit_note_create(invoice=invoice, reason=data["reason"], amount=data.get("amount"),
                                           by=request.user)
        return Response(self._fresh(note.pk), status=status.HTTP_201_CREATED,
                        headers={"Location": request.build_absolute_uri(
                            reverse("api-v1:invoice-detail", args=[note.pk]))})


@extend_schema_view(list=extend_schema(
    summary="List an order's invoices and credit notes", tags=["orders"],
    parameters=[OpenApiParameter("order_pk", OpenApiTypes.INT64, OpenApiParameter.PATH,
                                 description="The order's id.")]))
class OrderInvoiceViewSet(ApiViewSet):
    serializer_class = InvoiceSerializer
    filterset_class = InvoiceFilter
    cache_kind = "invoice"
    uncacheable_params = InvoiceViewSet.uncacheable_params
    ordering_fields = InvoiceViewSet.ordering_fields
    default_ordering = InvoiceViewSet.default_ordering

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):  # the schema generator has no URL kwargs
            return Invoice.objects.none()
        return INVOICE_QUERYSET.filter(order_id=self.kwargs["order_pk"])

    def list(self, request, *args, **kwargs):
        get_object_or_404(Order.objects.only("pk"), pk=self.kwargs["order_pk"])
        return super().list(request, *args, **kwargs)


@extend_schema_view(
    list=extend_schema(summary="List invoice status events (newest first)", tags=["invoices"]),
    retrieve=extend_schema(summary="Get an invoice status event", tags=["invoices"]),
)
class InvoiceStatusEventViewSet(ApiViewSet):
    queryset = InvoiceStatusEvent.objects.select_related("by")
    serializer_class = InvoiceStatusEventSerializer
    filterset_class = InvoiceStatusEventFilter
    cache_kind = "invoice"
    ordering_fields = ("at", "id")
    default_ordering = "-at"
