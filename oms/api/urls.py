"""/api/v1/: the resources, their relations, and the token endpoints."""

from django.urls import path, re_path
from rest_framework import permissions, routers

from invoices.api.views import InvoiceStatusEventViewSet, InvoiceViewSet, OrderInvoiceViewSet
from legacy_migration.api.views import (
    ControlTotalViewSet,
    DiscrepancyViewSet,
    EntityStateViewSet,
    MigrationIssueViewSet,
    MigrationRunViewSet,
    ReconciliationViewSet,
    ShadowMismatchViewSet,
    ShadowReadViewSet,
)
from oms.api.tokens import TokenObtainView, TokenRefreshView
from oms.api.views import ID_REGEX
from orders.api.views import (
    CustomerOrderViewSet,
    CustomerViewSet,
    OrderEventViewSet,
    OrderStatusEventViewSet,
    OrderViewSet,
)

app_name = "api-v1"


class RootView(routers.APIRootView):
    """The OMS API. Authenticate with a JWT bearer token (POST /api/v1/auth/token/) or a session."""

    permission_classes = [permissions.IsAuthenticated]


class Router(routers.DefaultRouter):
    APIRootView = RootView


router = Router()
router.register("customers", CustomerViewSet, basename="customer")
router.register("orders", OrderViewSet, basename="order")
router.register("invoices", InvoiceViewSet, basename="invoice")
router.register("order-events", OrderStatusEventViewSet, basename="order-event")
router.register("invoice-events", InvoiceStatusEventViewSet, basename="invoice-event")
# The migration's evidence, read-only (migration operators and auditors).
router.register("migration/runs", MigrationRunViewSet, basename="migration-run")
router.register("migration/issues", MigrationIssueViewSet, basename="migration-issue")
router.register("migration/reconciliations", ReconciliationViewSet, basename="reconciliation")
router.register("migration/discrepancies", DiscrepancyViewSet, basename="discrepancy")
router.register("migration/control-totals", ControlTotalViewSet, basename="control-total")
router.register("migration/shadow-mismatches", ShadowMismatchViewSet, basename="shadow-mismatch")

ID = ID_REGEX
urlpatterns = [
    path("auth/token/", TokenObtainView.as_view(), name="token"),
    path("auth/token/refresh/", TokenRefreshView.as_view(), name="token-refresh"),
    re_path(rf"^customers/(?P<customer_pk>{ID})/orders/$", CustomerOrderViewSet.as_view({"get": "list"}),
            name="customer-orders"),
    re_path(rf"^orders/(?P<order_pk>{ID})/invoices/$", OrderInvoiceViewSet.as_view({"get": "list"}),
            name="order-invoices"),
    re_path(rf"^orders/(?P<order_pk>{ID})/events/$", OrderEventViewSet.as_view({"get": "list"}),
            name="order-events-of-order"),
    path("migration/entity-states/", EntityStateViewSet.as_view({"get": "list"}), name="entity-states"),
    path("migration/shadow-reads/", ShadowReadViewSet.as_view({"get": "list"}), name="shadow-reads"),
    *router.urls,
]
