"""Representations of the migration's evidence: runs, issues, reconciliations, findings, shadow reads.

Output only: everything here is written by the migration, reconciliation and shadow reads, never
through the API. JSON columns are published with the shape they have, for integrators.
"""

from __future__ import annotations

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from legacy_migration.models import (
    ControlTotal,
    Discrepancy,
    MigrationIssue,
    MigrationRun,
    Reconciliation,
    ShadowMismatch,
)
from legacy_migration.reconcile import FINDINGS
from legacy_migration.shadow import READ_SOURCES
from oms.api.fields import DecimalString
from oms.api.serializers import OutputModelSerializer

_ANY_OBJECT = {"type": "object", "additionalProperties": {}}
_NUMBERS = {"type": "object", "additionalProperties": {"type": "number"}}
_SIDES = {"type": "object", "additionalProperties": {
    "type": "object", "required": ["legacy", "modern"],
    "properties": {"legacy": {"type": "string", "nullable": True}, "modern": {"type": "string", "nullable": True}}}}


@extend_schema_field(_ANY_OBJECT)
class ObjectField(serializers.JSONField):
    """A JSON object of free shape (options, scope, a record's values)."""


@extend_schema_field({**_ANY_OBJECT, "nullable": True})
class NullableObjectField(serializers.JSONField):
    """A JSON object of free shape, or null."""


@extend_schema_field({"type": "object", "additionalProperties": {**_NUMBERS, "additionalProperties": {
    "type": "number", "nullable": True}}})
class FiguresField(serializers.JSONField):
    """Per entity: a count (or seconds) by name."""


@extend_schema_field(_SIDES)
class SidesField(serializers.JSONField):
    """field → {legacy, modern}: the values that differ, as text."""


class MigrationRunSerializer(OutputModelSerializer):
    summary = FiguresField(read_only=True, help_text="Per entity: read, inserted, updated, unchanged, excluded, "
                                                     "rejected, warned, seconds, planned.")
    options = ObjectField(read_only=True, help_text="The options the run was started with.")
    planned_entities = serializers.ListField(child=serializers.CharField(), read_only=True)

    class Meta:
        model = MigrationRun
        fields = ["id", "status", "started_at", "finished_at", "started_by", "legacy_vendor", "dry_run", "options",
                  "planned_entities", "summary", "seconds", "message"]
        read_only_fields = fields


class MigrationIssueSerializer(OutputModelSerializer):
    raw = ObjectField(read_only=True, help_text="The legacy values as read (an order's or invoice's with `lines`).")

    class Meta:
        model = MigrationIssue
        fields = ["id", "run", "entity", "legacy_key", "kind", "rule", "message", "raw", "created_at"]
        read_only_fields = fields


class ReconciliationSerializer(OutputModelSerializer):
    figures = FiguresField(read_only=True, help_text="Per entity and line entity: legacy, modern, matched, missing, "
                                                     "extra, differs, not_expected, excluded, rejected.")
    scope = ObjectField(read_only=True, help_text="Entities, since and keys it covered, and how it narrowed down.")
    discrepancies = serializers.SerializerMethodField(help_text="Findings of every kind, all entities.")
    control_totals_disagreeing = serializers.IntegerField(
        read_only=True, help_text="Control totals (per entity, currency and month) whose two sides differ; "
                                  "0 when none was compared (only full reconciliations compare them).")

    class Meta:
        model = Reconciliation
        fields = ["id", "status", "started_at", "finished_at", "started_by", "scope", "figures", "discrepancies",
                  "control_totals_disagreeing", "seconds", "message"]
        read_only_fields = fields

    def get_discrepancies(self, reconciliation: Reconciliation) -> int:
        return sum(figures.get(kind, 0) for figures in reconciliation.figures.values() for kind in FINDINGS)


class DiscrepancySerializer(OutputModelSerializer):
    fields = SidesField(read_only=True, help_text="field → {legacy (as carried over), modern} for what differs.")
    legacy = NullableObjectField(read_only=True, help_text="The legacy record as carried over by the mapping.")
    modern = NullableObjectField(read_only=True, help_text="The modern record.")

    class Meta:
        model = Discrepancy
        fields = ["id", "reconciliation", "entity", "legacy_key", "kind", "fields", "legacy", "modern"]
        read_only_fields = fields


class ControlTotalSerializer(OutputModelSerializer):
    difference = DecimalString(max_digits=21, decimal_places=2, read_only=True, help_text="modern − legacy.")
    agrees = serializers.BooleanField(read_only=True, help_text="Same amount and same count on both sides.")

    class Meta:
        model = ControlTotal
        fields = ["id", "reconciliation", "entity", "currency", "month", "legacy_count", "legacy_amount",
                  "modern_count", "modern_amount", "difference", "agrees"]
        read_only_fields = fields


class EntityStateSerializer(serializers.Serializer):
    entity = serializers.CharField(help_text="customers, orders, order_line, invoices, invoice_line")
    state = serializers.ChoiceField(choices=["not yet checked", "validated", "mismatched"])
    reconciliation = serializers.IntegerField(allow_null=True, help_text="The latest reconciliation that checked it.")
    findings = serializers.IntegerField(help_text="Discrepancies that reconciliation found for it.")
    figures = serializers.DictField(child=serializers.IntegerField(),
                                    help_text="That reconciliation's counts for it (empty if never checked).")

    def to_representation(self, state: dict) -> dict:
        reconciliation = state["reconciliation"]
        return {"entity": state["entity"], "state": state["state"],
                "reconciliation": reconciliation.pk if reconciliation is not None else None,
                "findings": state.get("findings", 0), "figures": state["figures"]}


class ShadowMismatchSerializer(OutputModelSerializer):
    fields = SidesField(read_only=True, help_text="field → {legacy, modern}; lines as `lines[N].field`; `record` "
                                                  "when the legacy record is gone or no longer carried over.")
    legacy = NullableObjectField(read_only=True, help_text="The legacy record through the mapping, in the API's shape.")
    modern = NullableObjectField(read_only=True, help_text="The modern record as it was served.")

    class Meta:
        model = ShadowMismatch
        fields = ["id", "resource", "record_id", "legacy_key", "fields", "legacy", "modern", "origin", "path",
                  "occurrences", "first_seen_at", "last_seen_at"]
        read_only_fields = fields


class ShadowCountsSerializer(serializers.Serializer):
    """How sampled reads ended, since the counters were last cleared."""

    sampled = serializers.IntegerField(help_text="Handed to the comparers.")
    matched = serializers.IntegerField()
    mismatched = serializers.IntegerField()
    no_legacy_record = serializers.IntegerField(help_text="Made in modern: nothing to compare with.")
    timeout = serializers.IntegerField(help_text="Over SHADOW_TIMEOUT_MS: interrupted or discarded.")
    error = serializers.IntegerField(help_text="The legacy read failed (e.g. the legacy database is down).")
    dropped = serializers.IntegerField(help_text="Not compared: the comparers' queue was full.")


class ShadowReadsSerializer(serializers.Serializer):
    resource = serializers.CharField()
    read_source = serializers.ChoiceField(choices=READ_SOURCES)
    sample_rate = serializers.FloatField(help_text="Share of shadow-mode detail reads compared (SHADOW_SAMPLE_RATE).")
    timeout_ms = serializers.IntegerField(help_text="Time budget of one comparison (SHADOW_TIMEOUT_MS).")
    counts = ShadowCountsSerializer()
