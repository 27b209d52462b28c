"""Customers, orders and order status events over HTTP. Every write is a call to orders.services."""

from __future__ import annotations

from django.db import transaction
from django.urls import reverse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema, extend_schema_view
from rest_framework import status
from rest_framework.decorators import action
from rest_framework.generics import get_object_or_404
from rest_framework.response import Response

from legacy_migration.api.read_sources import ReadSourceMixin
from oms.api import idempotency
from oms.api.idempotency import idempotent
from oms.api.serializers import ReasonInput
from oms.api.views import ApiViewSet
from orders import services
from orders.api.filters import CustomerFilter, OrderFilter, OrderStatusEventFilter
from orders.api.serializers import (
    CustomerInput,
    CustomerSerializer,
    OrderInput,
    OrderSerializer,
    OrderStatusEventSerializer,
)
from orders.models import Customer, Order, OrderStatusEvent


def _validated(serializer_class, request, **kwargs):
    serializer = serializer_class(data=request.data, **kwargs)
    serializer.is_valid(raise_exception=True)
    return serializer


def _location(request, name: str, pk: int) -> dict:
    return {"Location": request.build_absolute_uri(reverse(f"api-v1:{name}-detail", args=[pk]))}


def _differs(record, name: str, value) -> bool:
    if name == "customer":  # compare ids: no query for the current customer
        return record.customer_id != value.pk
    return getattr(record, name) != value


def _id_parameter(name: str, what: str) -> OpenApiParameter:
    return OpenApiParameter(name, OpenApiTypes.INT64, OpenApiParameter.PATH, description=f"The {what}'s id.")


# ---------------------------------------------------------------------------------------------
# Customers
# ---------------------------------------------------------------------------------------------
@extend_schema_view(
    list=extend_schema(summary="List customers", tags=["customers"]),
    retrieve=extend_schema(summary="Get a customer", tags=["customers"]),
)
class CustomerViewSet(ReadSourceMixin, ApiViewSet):
    read_resource = "customers"  # READ_SOURCE_CUSTOMERS: modern, legacy or shadow (legacy_migration/shadow.py)
    queryset = Customer.objects.all()
    serializer_class = CustomerSerializer
    filterset_class = CustomerFilter
    cache_kind = "customer"
    ordering_fields = ("id", "name", "updated_at")
    default_ordering = "id"
    idempotent_actions = frozenset({"create"})

    @extend_schema(summary="Create a customer", tags=["customers"], request=CustomerInput,
                   responses={201: CustomerSerializer}, parameters=[idempotency.PARAMETER])
    @idempotent
    def create(self, request):
        data = _validated(CustomerInput, request).validated_data
        customer = services.customer_save(customer=Customer(**data), by=request.user)
        return Response(CustomerSerializer(customer).data, status=status.HTTP_201_CREATED,
                        headers=_location(request, "customer", customer.pk))

    @extend_schema(summary="Update a customer (the fields sent)", tags=["customers"], request=CustomerInput,
                   responses=CustomerSerializer)
    def update(self, request, pk=None):
        return self._update(request, partial=False)

    @extend_schema(summary="Update some fields of a customer", tags=["customers"], request=CustomerInput,
                   responses=CustomerSerializer)
    def partial_update(self, request, pk=None):
        return self._update(request, partial=True)

    def _update(self, request, *, partial: bool):
        customer = self.get_object()
        data = _validated(CustomerInput, request, partial=partial).validated_data
        for name, value in data.items():
            setattr(customer, name, value)
        customer = services.customer_save(customer=customer, by=request.user)
        return Response(CustomerSerializer(customer).data)


# ---------------------------------------------------------------------------------------------
# Orders
# ---------------------------------------------------------------------------------------------
def _transition_schema(summary: str, *, reason_required: bool = False):
    return extend_schema(
        summary=summary, tags=["orders"], request=ReasonInput, responses=OrderSerializer,
        parameters=[idempotency.PARAMETER],
        description="Goes through the same service as the back office. An illegal move answers 409."
                    + (" A reason is required." if reason_required else ""),
    )


@extend_schema_view(
    list=extend_schema(summary="List orders", tags=["orders"]),
    retrieve=extend_schema(summary="Get an order with its lines", tags=["orders"]),
)
class OrderViewSet(ReadSourceMixin, ApiViewSet):
    read_resource = "orders"  # READ_SOURCE_ORDERS: modern, legacy or shadow (legacy_migration/shadow.py)
    queryset = Order.objects.prefetch_related("lines")
    serializer_class = OrderSerializer
    filterset_class = OrderFilter
    cache_kind = "order"
    ordering_fields = ("ordered_at", "updated_at", "id", "number")
    default_ordering = "-ordered_at"
    idempotent_actions = frozenset({"create", "confirm", "start_processing", "ship", "deliver", "hold", "release",
                                    "cancel"})
    action_permissions = {name: ["orders.transition_order"] for name in idempotent_actions - {"create"}}

    @extend_schema(summary="Create an order", tags=["orders"], request=OrderInput,
                   responses={201: OrderSerializer}, parameters=[idempotency.PARAMETER])
    @idempotent
    def create(self, request):
        serializer = _validated(OrderInput, request)
        order = services.order_create(lines=serializer.order_lines() or (), by=request.user, **serializer.header())
        return Response(self._fresh(order.pk), status=status.HTTP_201_CREATED,
                        headers=_location(request, "order", order.pk))

    @extend_schema(summary="Update an order (the fields sent)", tags=["orders"], request=OrderInput,
                   responses=OrderSerializer)
    def update(self, request, pk=None):
        return self._update(request, partial=False)

    @extend_schema(summary="Update some fields of an order", tags=["orders"], request=OrderInput,
                   responses=OrderSerializer)
    def partial_update(self, request, pk=None):
        return self._update(request, partial=True)

    def _update(self, request, *, partial: bool):
        order = self.get_object()
        serializer = OrderInput(order, data=request.data, partial=partial)
        serializer.is_valid(raise_exception=True)
        # Only what differs is handed over, so that PUTting back an unchanged shipped order is a
        # no-op rather than an attempt to change it.
        changes = {name: value for name, value in serializer.header().items() if _differs(order, name, value)}
        lines = serializer.order_lines()
        with transaction.atomic():
            if changes:
                order = services.order_update(order=order, by=request.user, **changes)
            if lines is not None:
                order = services.order_replace_lines(order=order, lines=lines, by=request.user)
        return Response(self._fresh(order.pk))

    def _fresh(self, pk: int) -> dict:
        return OrderSerializer(self.get_queryset().get(pk=pk)).data

    def _move(self, request, service, **extra):
        order = self.get_object()
        data = _validated(ReasonInput, request).validated_data
        service(order=order, by=request.user, reason=data.get("reason", ""), **extra)
        return Response(self._fresh(order.pk))

    @_transition_schema("Confirm a pending order")
    @action(detail=True, methods=["post"])
    @idempotent
    def confirm(self, request, pk=None):
        return self._move(request, services.order_confirm)

    @_transition_schema("Start processing a confirmed order")
    @action(detail=True, methods=["post"], url_path="start-processing")
    @idempotent
    def start_processing(self, request, pk=None):
        return self._move(request, services.order_start_processing)

    @_transition_schema("Ship an order being processed")
    @action(detail=True, methods=["post"])
    @idempotent
    def ship(self, request, pk=None):
        return self._move(request, services.order_ship)

    @_transition_schema("Mark a shipped order delivered")
    @action(detail=True, methods=["post"])
    @idempotent
    def deliver(self, request, pk=None):
        return self._move(request, services.order_deliver)

    @_transition_schema("Put an order on hold")
    @action(detail=True, methods=["post"])
    @idempotent
    def hold(self, request, pk=None):
        return self._move(request, services.order_hold)

    @_transition_schema("Release an order from hold (back to the status it was held from)")
    @action(detail=True, methods=["post"])
    @idempotent
    def release(self, request, pk=None):
        return self._move(request, services.order_release)

    @_transition_schema("Cancel an order that has not shipped", reason_required=True)
    @action(detail=True, methods=["post"])
    @idempotent
    def cancel(self, request, pk=None):
        return self._move(request, services.order_cancel)


# ---------------------------------------------------------------------------------------------
# Relations: a customer's orders, an order's status events
# ---------------------------------------------------------------------------------------------
@extend_schema_view(list=extend_schema(summary="List a customer's orders", tags=["customers"],
                                       parameters=[_id_parameter("customer_pk", "customer")]))
class CustomerOrderViewSet(ApiViewSet):
    serializer_class = OrderSerializer
    filterset_class = OrderFilter
    cache_kind = "order"
    ordering_fields = OrderViewSet.ordering_fields
    default_ordering = OrderViewSet.default_ordering

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):  # the schema generator has no URL kwargs
            return Order.objects.none()
        return Order.objects.prefetch_related("lines").filter(customer_id=self.kwargs["customer_pk"])

    def list(self, request, *args, **kwargs):
        get_object_or_404(Customer.objects.only("pk"), pk=self.kwargs["customer_pk"])
        return super().list(request, *args, **kwargs)


@extend_schema_view(
    list=extend_schema(summary="List order status events (newest first)", tags=["orders"]),
    retrieve=extend_schema(summary="Get an order status event", tags=["orders"]),
)
class OrderStatusEventViewSet(ApiViewSet):
    queryset = OrderStatusEvent.objects.select_related("by")
    serializer_class = OrderStatusEventSerializer
    filterset_class = OrderStatusEventFilter
    cache_kind = "order"
    ordering_fields = ("at", "id")
    default_ordering = "-at"


@extend_schema_view(list=extend_schema(summary="List an order's status events", tags=["orders"],
                                       parameters=[_id_parameter("order_pk", "order")]))
class OrderEventViewSet(ApiViewSet):
    serializer_class = OrderStatusEventSerializer
    cache_kind = "order"
    ordering_fields = ("at", "id")
    default_ordering = "at"

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):
            return OrderStatusEvent.objects.none()
        return OrderStatusEvent.objects.select_related("by").filter(order_id=self.kwargs["order_pk"])

    def list(self, request, *args, **kwargs):
        get_object_or_404(Order.objects.only("pk"), pk=self.kwargs["order_pk"])
        return super().list(request, *args, **kwargs)
