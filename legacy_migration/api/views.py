"""The migration's reports over HTTP, read-only: the same evidence the admin shows.

Migration operators and auditors read them (the view_* permissions of these models, oms/roles.py);
every other role gets 403. Not cached: runs and reconciliations change while they run, and these
reads are rare next to the order desk's.
"""

from __future__ import annotations

from django.db.models import Count, F, Q
from drf_spectacular.utils import extend_schema, extend_schema_view
from rest_framework.response import Response

from legacy_migration.api.filters import (
    ControlTotalFilter,
    DiscrepancyFilter,
    MigrationIssueFilter,
    MigrationRunFilter,
    ReconciliationFilter,
    ShadowMismatchFilter,
)
from legacy_migration.api.serializers import (
    ControlTotalSerializer,
    DiscrepancySerializer,
    EntityStateSerializer,
    MigrationIssueSerializer,
    MigrationRunSerializer,
    ReconciliationSerializer,
    ShadowMismatchSerializer,
    ShadowReadsSerializer,
)
from legacy_migration.models import (
    ControlTotal,
    Discrepancy,
    MigrationIssue,
    MigrationRun,
    Reconciliation,
    ShadowMismatch,
)
from legacy_migration.reconcile import entity_states
from legacy_migration.shadow import shadow_status
from oms.api.views import ApiViewSet

TAGS = ["migration"]


class ReportViewSet(ApiViewSet):
    """A read-only report: lists with filters and cursor pages, details by id, never cached."""

    def answer_key(self, request):
        return None

    def retrieve(self, request, *args, **kwargs):
        return Response(self.get_serializer(self.get_object()).data)


@extend_schema_view(
    list=extend_schema(summary="List migration runs (newest first)", tags=TAGS),
    retrieve=extend_schema(summary="Get a migration run with its figures per entity", tags=TAGS),
)
class MigrationRunViewSet(ReportViewSet):
    """Runs of `manage.py migrate_legacy`: status, options and figures per entity."""

    queryset = MigrationRun.objects.all()
    serializer_class = MigrationRunSerializer
    filterset_class = MigrationRunFilter
    ordering_fields = ("started_at", "id")
    default_ordering = "-started_at"


@extend_schema_view(
    list=extend_schema(summary="List the migration's rejections, exclusions and warnings", tags=TAGS),
    retrieve=extend_schema(summary="Get a migration issue with the legacy values as read", tags=TAGS),
)
class MigrationIssueViewSet(ReportViewSet):
    """Every record the migration rejected or excluded by rule, or carried over with a warning."""

    queryset = MigrationIssue.objects.all()
    serializer_class = MigrationIssueSerializer
    filterset_class = MigrationIssueFilter
    default_ordering = "id"


@extend_schema_view(
    list=extend_schema(summary="List reconciliations (newest first)", tags=TAGS),
    retrieve=extend_schema(summary="Get a reconciliation with its figures", tags=TAGS),
)
class ReconciliationViewSet(ReportViewSet):
    """Runs of `manage.py reconcile`: counts on each side and of each kind of finding, per entity."""

    # Counted in the query: a list page would otherwise ask for each reconciliation's totals.
    queryset = Reconciliation.objects.annotate(control_totals_disagreeing=Count(
        "control_totals", filter=~Q(control_totals__legacy_amount=F("control_totals__modern_amount"))
        | ~Q(control_totals__legacy_count=F("control_totals__modern_count"))))
    serializer_class = ReconciliationSerializer
    filterset_class = ReconciliationFilter
    ordering_fields = ("started_at", "id")
    default_ordering = "-started_at"


@extend_schema_view(
    list=extend_schema(summary="List reconciliation discrepancies", tags=TAGS),
    retrieve=extend_schema(summary="Get a discrepancy with both sides", tags=TAGS),
)
class DiscrepancyViewSet(ReportViewSet):
    """Findings of reconciliations: missing, extra, differing (with the fields) or not expected."""

    queryset = Discrepancy.objects.all()
    serializer_class = DiscrepancySerializer
    filterset_class = DiscrepancyFilter
    default_ordering = "id"


@extend_schema_view(
    list=extend_schema(summary="List control totals (amounts per currency per month, both sides)", tags=TAGS),
    retrieve=extend_schema(summary="Get a control total", tags=TAGS),
)
class ControlTotalViewSet(ReportViewSet):
    """Order and invoice amounts per currency per month (legacy local time), on both sides."""

    queryset = ControlTotal.objects.all()
    serializer_class = ControlTotalSerializer
    filterset_class = ControlTotalFilter
    default_ordering = "id"


@extend_schema_view(
    list=extend_schema(summary="List shadow-read mismatches (most recently seen first)", tags=TAGS),
    retrieve=extend_schema(summary="Get a shadow-read mismatch with both representations", tags=TAGS),
)
class ShadowMismatchViewSet(ReportViewSet):
    """Live API reads (and shadow_compare replays) whose legacy and modern representations differ."""

    queryset = ShadowMismatch.objects.all()
    serializer_class = ShadowMismatchSerializer
    filterset_class = ShadowMismatchFilter
    ordering_fields = ("last_seen_at", "id")
    default_ordering = "-last_seen_at"


class _SummaryViewSet(ReportViewSet):
    """A short fixed list (one row per entity or resource): no filters, no pages."""

    pagination_class = None

    def rows(self) -> list:
        raise NotImplementedError

    def allowed_query_params(self) -> set[str]:
        return {"format"}

    def list(self, request, *args, **kwargs):
        self.check_query_params(request)
        return Response(self.get_serializer(self.rows(), many=True).data)


@extend_schema_view(list=extend_schema(
    summary="Each entity's state at a glance: not yet checked, validated or mismatched", tags=TAGS))
class EntityStateViewSet(_SummaryViewSet):
    """Per entity, what its latest reconciliation found (the admin dashboard's first table)."""

    queryset = Reconciliation.objects.all()  # reading it needs view_reconciliation
    serializer_class = EntityStateSerializer

    def rows(self) -> list:
        return entity_states()


@extend_schema_view(list=extend_schema(
    summary="Shadow reads per resource: read source, sample rate and how the sampled reads ended", tags=TAGS))
class ShadowReadViewSet(_SummaryViewSet):
    """Per resource: where detail reads come from, and the counts of sampled shadow reads."""

    queryset = ShadowMismatch.objects.all()  # reading it needs view_shadowmismatch
    serializer_class = ShadowReadsSerializer

    def rows(self) -> list:
        return shadow_status()
