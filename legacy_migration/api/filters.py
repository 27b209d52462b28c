"""Query filters on the migration's evidence."""

from __future__ import annotations

import django_filters

from legacy_migration.models import (
    ControlTotal,
    Discrepancy,
    DiscrepancyKind,
    IssueKind,
    MigrationIssue,
    MigrationRun,
    Reconciliation,
    ReconciliationStatus,
    RunStatus,
    ShadowMismatch,
    ShadowOrigin,
    ShadowResource,
)
from oms.api.filters import IdFilter, StrictBooleanFilter, ZonedDateTimeFilter
from oms.money import CURRENCY_CHOICES

_RECORD_KINDS = "customer, order, order_line, invoice, invoice_line"


class MigrationRunFilter(django_filters.FilterSet):
    status = django_filters.ChoiceFilter(choices=RunStatus.choices)
    dry_run = StrictBooleanFilter(field_name="dry_run")
    started_since = ZonedDateTimeFilter(field_name="started_at", lookup_expr="gte",
                                        help_text="Started at or after this time.")

    class Meta:
        model = MigrationRun
        fields: list[str] = []


class MigrationIssueFilter(django_filters.FilterSet):
    run = IdFilter(field_name="run_id", help_text="The run's id.")
    kind = django_filters.ChoiceFilter(choices=IssueKind.choices)
    entity = django_filters.CharFilter(field_name="entity", max_length=20, help_text=_RECORD_KINDS)
    rule = django_filters.CharFilter(field_name="rule", max_length=60, help_text="e.g. orphan_customer")
    legacy_key = django_filters.CharFilter(field_name="legacy_key", max_length=60)

    class Meta:
        model = MigrationIssue
        fields: list[str] = []


class ReconciliationFilter(django_filters.FilterSet):
    status = django_filters.ChoiceFilter(choices=ReconciliationStatus.choices)
    started_since = ZonedDateTimeFilter(field_name="started_at", lookup_expr="gte",
                                        help_text="Started at or after this time.")

    class Meta:
        model = Reconciliation
        fields: list[str] = []


class DiscrepancyFilter(django_filters.FilterSet):
    reconciliation = IdFilter(field_name="reconciliation_id", help_text="The reconciliation's id.")
    kind = django_filters.ChoiceFilter(choices=DiscrepancyKind.choices)
    entity = django_filters.CharFilter(field_name="entity", max_length=20, help_text=_RECORD_KINDS)
    legacy_key = django_filters.CharFilter(field_name="legacy_key", max_length=60)

    class Meta:
        model = Discrepancy
        fields: list[str] = []


class ControlTotalFilter(django_filters.FilterSet):
    reconciliation = IdFilter(field_name="reconciliation_id", help_text="The reconciliation's id.")
    entity = django_filters.ChoiceFilter(choices=[("orders", "orders"), ("invoices", "invoices")])
    currency = django_filters.ChoiceFilter(choices=CURRENCY_CHOICES)

    class Meta:
        model = ControlTotal
        fields: list[str] = []


class ShadowMismatchFilter(django_filters.FilterSet):
    resource = django_filters.ChoiceFilter(choices=ShadowResource.choices)
    origin = django_filters.ChoiceFilter(choices=ShadowOrigin.choices)
    record_id = IdFilter(field_name="record_id", help_text="The record's modern id.")
    legacy_key = django_filters.CharFilter(field_name="legacy_key", max_length=60)
    seen_since = ZonedDateTimeFilter(field_name="last_seen_at", lookup_expr="gte",
                                     help_text="Last seen at or after this time.")

    class Meta:
        model = ShadowMismatch
        fields: list[str] = []
