"""Reconciliation: compare legacy and modern record by record, through the migration's own mapping.

1. For each entity, the legacy side is read in key order in batches (keyset pagination) and
   mapped by the same Step the migration uses, so what is compared is "the legacy value as
   carried over": a mapped status, a rounded amount, a trimmed code or a converted time is never a
   discrepancy.
2. The modern records of the same keys are fetched by legacy key and compared field by field;
   lines are compared by line number. Memory holds one batch at a time.
3. A full reconciliation then walks the modern keys in order and asks the legacy side which no
   longer exist (modern records whose legacy source is gone), and compares control totals: order
   and invoice amounts per currency per month (legacy local time), both sides.
4. Every finding is stored with the reconciliation; the outcome is validated or mismatched.
"""

from __future__ import annotations

import datetime as dt
import os
import time
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

from django.conf import settings
from django.db import connection
from django.db.models import Count, F, Sum
from django.db.models.functions import TruncMonth
from django.utils import timezone

from invoices.models import Invoice, InvoiceLine
from legacy_migration.load import (
    CUSTOMER_COLUMNS,
    INVOICE_COLUMNS,
    INVOICE_LINE_COLUMNS,
    ORDER_COLUMNS,
    ORDER_LINE_COLUMNS,
    Loader,
)
from legacy_migration.mapping import Outcome
from legacy_migration.models import (
    ENTITY_ORDER,
    ControlTotal,
    Discrepancy,
    DiscrepancyKind,
    Entity,
    Reconciliation,
    ReconciliationStatus,
)
from legacy_migration.runner import STEPS, LegacySource, json_safe
from orders.models import Customer, Order, OrderLine

FINDINGS = (DiscrepancyKind.MISSING, DiscrepancyKind.EXTRA, DiscrepancyKind.DIFFERS, DiscrepancyKind.NOT_EXPECTED)


@dataclass(frozen=True)
class EntitySpec:
    entity: str
    record: str  # the entity name on findings: customer, order, invoice
    model: type
    fields: tuple[str, ...]
    line_model: type | None = None
    line_record: str = ""
    line_fields: tuple[str, ...] = ()
    parent: str = ""  # the line's foreign key to its header
    date_field: str = ""  # for control totals
    amount_field: str = "total"


SPECS = {
    Entity.CUSTOMERS: EntitySpec(Entity.CUSTOMERS, "customer", Customer, CUSTOMER_COLUMNS[1:]),
    Entity.ORDERS: EntitySpec(Entity.ORDERS, "order", Order, ORDER_COLUMNS[1:], OrderLine, "order_line",
                              ORDER_LINE_COLUMNS[2:], "order", "ordered_at"),
    Entity.INVOICES: EntitySpec(Entity.INVOICES, "invoice", Invoice, INVOICE_COLUMNS[1:], InvoiceLine, "invoice_line",
                                INVOICE_LINE_COLUMNS[2:], "invoice", "invoiced_at"),
}
#: Mapped values that name a parent by its legacy key; the modern side reaches it through the relation.
PARENT_KEYS = {"customer_legacy_id": "customer__legacy_id", "order_legacy_id": "order__legacy_id"}
#: Figures kept per entity (and per line entity).
FIGURES = ("legacy", "modern", "matched", *FINDINGS, "excluded", "rejected")


def same(legacy: Any, modern: Any) -> bool:
    """Equal as the business means it: '' and NULL are the same; numbers and instants by value."""
    legacy = None if legacy == "" else legacy
    modern = None if modern == "" else modern
    if isinstance(legacy, Decimal) or isinstance(modern, Decimal):
        return legacy is not None and modern is not None and Decimal(legacy) == Decimal(modern)
    return legacy == modern


def differences(legacy: dict, modern: dict, fields: Sequence[str]) -> dict[str, dict[str, str | None]]:
    def show(value):
        return None if value is None else str(value)

    return {name: {"legacy": show(legacy.get(name)), "modern": show(modern.get(name))}
            for name in fields if not same(legacy.get(name), modern.get(name))}


@dataclass
class Tally:
    """Findings of one reconciliation, kept small: counts, and discrepancies flushed per batch."""

    figures: dict[str, dict[str, int]] = field(default_factory=lambda: defaultdict(lambda: dict.fromkeys(FIGURES, 0)))
    pending: list[Discrepancy] = field(default_factory=list)
    legacy_totals: dict[tuple, list] = field(default_factory=lambda: defaultdict(lambda: [0, Decimal(0)]))

    def count(self, entity: str, name: str, n: int = 1) -> None:
        self.figures[entity][name] += n

    def find(self, reconciliation: Reconciliation, entity: str, record: str, key: str, kind: str, *,
             fields: dict | None = None, legacy: dict | None = None, modern: dict | None = None) -> None:
        self.count(entity, kind)
        self.pending.append(Discrepancy(reconciliation=reconciliation, entity=record, legacy_key=key, kind=kind,
                                        fields=fields or {}, legacy=json_safe(legacy) if legacy else None,
                                        modern=json_safe(modern) if modern else None))

    def flush(self) -> None:
        Discrepancy.objects.bulk_create(self.pending, batch_size=1000)
        self.pending = []


class Reconciler:
    def __init__(self, *, entities: Sequence[str] = tuple(ENTITY_ORDER), since: dt.datetime | None = None,
                 keys: dict[str, Sequence[tuple[str, str]]] | None = None, batch_size: int = 5000, legacy_alias: str = "legacy",
                 started_by: str = "", on_batch: Callable[[str, int], None] | None = None):
        self.entities = [e for e in ENTITY_ORDER if e in entities]
        self.since, self.keys, self.batch_size = since, keys, batch_size
        self.source = LegacySource(legacy_alias)
        self.loader = Loader()
        self.tz = ZoneInfo(settings.LEGACY_TIME_ZONE)
        self.started_by = started_by or os.environ.get("USER", "") or "unknown"
        self.on_batch = on_batch
        self.tally = Tally()

    @property
    def full(self) -> bool:
        return self.since is None and self.keys is None

    def run(self) -> Reconciliation:
        started = time.monotonic()
        reconciliation = Reconciliation.objects.create(started_by=self.started_by, scope={
            "entities": self.entities, "since": self.since.isoformat() if self.since else None,
            "keys": {e: [list(r) for r in ranges] for e, ranges in self.keys.items()} if self.keys else None,
            "batch_size": self.batch_size,
            "legacy": self.source.identity()})
        try:
            for entity in self.entities:
                self._compare_entity(reconciliation, SPECS[entity])
            totals_agree = self._control_totals(reconciliation) if self.full else True
        except Exception as exc:
            self.tally.flush()
            reconciliation.status, reconciliation.message = ReconciliationStatus.FAILED, str(exc)
            reconciliation.figures = {k: dict(v) for k, v in self.tally.figures.items()}
            reconciliation.seconds, reconciliation.finished_at = time.monotonic() - started, timezone.now()
            reconciliation.save()
            raise
        self.tally.flush()
        figures = {k: dict(v) for k, v in self.tally.figures.items()}
        disagreements = sum(f[kind] for f in figures.values() for kind in FINDINGS)
        reconciliation.figures = figures
        reconciliation.status = (ReconciliationStatus.VALIDATED if disagreements == 0 and totals_agree
                                 else ReconciliationStatus.MISMATCHED)
        reconciliation.message = "" if reconciliation.status == ReconciliationStatus.VALIDATED else (
            f"{disagreements} discrepanc{'y' if disagreements == 1 else 'ies'}"
            + ("" if totals_agree else "; control totals disagree"))
        reconciliation.seconds, reconciliation.finished_at = time.monotonic() - started, timezone.now()
        reconciliation.save()
        return reconciliation

    # -- 1 + 2: legacy-driven pass -------------------------------------------------------------
    def _compare_entity(self, reconciliation: Reconciliation, spec: EntitySpec) -> None:
        step = STEPS[spec.entity](self.source, self.loader, self.tz, self.since)
        for key_range in (self.keys.get(spec.entity, []) if self.keys is not None else [None]):
            self._compare_range(reconciliation, spec, step, key_range)
        if self.full:
            self._extras(reconciliation, spec, step)
            if spec.line_model is not None:
                orphans = self.source.orphan_lines(step.lines, step.table)
                self.tally.count(spec.line_record, "rejected", len(orphans))

    def _compare_range(self, reconciliation: Reconciliation, spec: EntitySpec, step, key_range) -> None:
        after, inclusive = (key_range[0], True) if key_range else ("", False)
        upper = step.key_type(key_range[1]) if key_range else None
        while True:
            batch = self.source.next_keys(step.table, after, step.key_type, self.batch_size, self.since, inclusive)
            if upper is not None:
                batch = [k for k in batch if k <= upper]
            if not batch:
                break
            pairs = step.read(after, str(batch[-1]), inclusive)
            after, inclusive = str(batch[-1]), False
            self._compare_batch(reconciliation, spec, [outcome for outcome, _ in pairs])
            self.tally.flush()
            if self.on_batch:
                self.on_batch(spec.entity, len(pairs))

    def _modern(self, spec: EntitySpec, keys: list) -> dict:
        names = [f for f in spec.fields if f not in PARENT_KEYS]
        parents = {f: F(PARENT_KEYS[f]) for f in spec.fields if f in PARENT_KEYS}
        rows = spec.model.objects.filter(legacy_id__in=keys).values("legacy_id", *names, **parents)
        return {row["legacy_id"]: row for row in rows}

    def _modern_lines(self, spec: EntitySpec, keys: list) -> dict:
        rows = (spec.line_model.objects.filter(**{f"{spec.parent}__legacy_id__in": keys})
                .values("line_number", *spec.line_fields, parent_key=F(f"{spec.parent}__legacy_id")))
        lines: dict = defaultdict(dict)
        for row in rows:
            lines[row.pop("parent_key")][row["line_number"]] = row
        return lines

    def _compare_batch(self, reconciliation: Reconciliation, spec: EntitySpec, outcomes: list[Outcome]) -> None:
        key_of = (lambda o: int(o.legacy_key)) if spec.entity != Entity.INVOICES else (lambda o: o.legacy_key)
        keys = [key_of(o) for o in outcomes]
        modern = self._modern(spec, keys)
        lines = self._modern_lines(spec, keys) if spec.line_model is not None else {}
        entity = spec.entity
        for outcome in outcomes:
            self.tally.count(entity, "legacy")
            record = modern.get(key_of(outcome))
            if record is not None:
                self.tally.count(entity, "modern")
            if not outcome.mapped:
                self.tally.count(entity, "excluded" if outcome.exclusion else "rejected")
                if record is not None:
                    self.tally.find(reconciliation, entity, spec.record, outcome.legacy_key,
                                    DiscrepancyKind.NOT_EXPECTED, modern=record,
                                    fields={"rule": {"legacy": str((outcome.exclusion or outcome.rejection).rule),
                                                     "modern": "present"}})
                continue
            self._count_totals(spec, outcome.values)
            if record is None:
                self.tally.find(reconciliation, entity, spec.record, outcome.legacy_key, DiscrepancyKind.MISSING,
                                legacy=outcome.values)
                if spec.line_model is not None:
                    self.tally.count(spec.line_record, "legacy", len(outcome.lines))
                continue
            diff = differences(outcome.values, record, spec.fields)
            if diff:
                self.tally.find(reconciliation, entity, spec.record, outcome.legacy_key, DiscrepancyKind.DIFFERS,
                                fields=diff, legacy=outcome.values, modern=record)
            else:
                self.tally.count(entity, "matched")
            if spec.line_model is not None:
                self._compare_lines(reconciliation, spec, outcome, lines.get(key_of(outcome), {}))

    def _compare_lines(self, reconciliation: Reconciliation, spec: EntitySpec, outcome: Outcome,
                       modern_lines: dict) -> None:
        entity, record = spec.line_record, spec.line_record
        legacy_lines = {line["line_number"]: line for line in outcome.lines}
        self.tally.count(entity, "legacy", len(legacy_lines))
        self.tally.count(entity, "modern", len(modern_lines))
        for number in sorted(legacy_lines.keys() | modern_lines.keys()):
            key = f"{outcome.legacy_key}/{number}"
            legacy, modern = legacy_lines.get(number), modern_lines.get(number)
            if modern is None:
                self.tally.find(reconciliation, entity, record, key, DiscrepancyKind.MISSING, legacy=legacy)
            elif legacy is None:
                self.tally.find(reconciliation, entity, record, key, DiscrepancyKind.EXTRA, modern=modern)
            elif diff := differences(legacy, modern, spec.line_fields):
                self.tally.find(reconciliation, entity, record, key, DiscrepancyKind.DIFFERS, fields=diff,
                                legacy=legacy, modern=modern)
            else:
                self.tally.count(entity, "matched")

    # -- 3: modern records whose legacy source is gone -----------------------------------------
    def _extras(self, reconciliation: Reconciliation, spec: EntitySpec, step) -> None:
        last = None
        while True:
            queryset = spec.model.objects.exclude(legacy_id=None).order_by("legacy_id")
            if last is not None:
                queryset = queryset.filter(legacy_id__gt=last)
            keys = list(queryset.values_list("legacy_id", flat=True)[:1000])
            if not keys:
                return
            last = keys[-1]
            present = self.source.existing(step.table, keys)
            gone = [k for k in keys if k not in present]
            if gone:
                for key, record in self._modern(spec, gone).items():
                    self.tally.count(spec.entity, "modern")
                    self.tally.find(reconciliation, spec.entity, spec.record, str(key), DiscrepancyKind.EXTRA,
                                    modern=record)
                self.tally.flush()

    # -- control totals ------------------------------------------------------------------------
    def _month(self, moment: dt.datetime | None) -> dt.date | None:
        return moment.astimezone(self.tz).date().replace(day=1) if moment else None

    def _count_totals(self, spec: EntitySpec, values: dict) -> None:
        if not spec.date_field:
            return
        slot = self.tally.legacy_totals[(spec.entity, values["currency"], self._month(values[spec.date_field]))]
        slot[0] += 1
        slot[1] += values[spec.amount_field]

    def _modern_totals(self, spec: EntitySpec) -> dict[tuple, tuple[int, Decimal]]:
        queryset = spec.model.objects.exclude(legacy_id=None)
        totals: dict[tuple, tuple[int, Decimal]] = {}
        if connection.vendor != "postgresql":
            # SQLite (the demo) sums decimals as floats, which loses cents around 10^13; each
            # value on its own round-trips exactly, so sum them here instead.
            sums: dict[tuple, list] = defaultdict(lambda: [0, Decimal(0)])
            for currency, moment, amount in queryset.values_list("currency", spec.date_field,
                                                                 spec.amount_field).iterator(chunk_size=5000):
                slot = sums[(spec.entity, currency, self._month(moment))]
                slot[0] += 1
                slot[1] += amount
            return {key: (n, amount) for key, (n, amount) in sums.items()}
        rows = (queryset.annotate(month=TruncMonth(spec.date_field, tzinfo=self.tz))
                .values("currency", "month").annotate(n=Count("id"), amount=Sum(spec.amount_field)))
        for row in rows:
            month = row["month"].date() if isinstance(row["month"], dt.datetime) else row["month"]
            totals[(spec.entity, row["currency"], month)] = (row["n"], row["amount"] or Decimal(0))
        return totals

    def _control_totals(self, reconciliation: Reconciliation) -> bool:
        modern: dict[tuple, tuple[int, Decimal]] = {}
        for spec in (SPECS[e] for e in self.entities if SPECS[e].date_field):
            modern.update(self._modern_totals(spec))
        agree = True
        totals = []
        for key in sorted(set(modern) | set(self.tally.legacy_totals), key=lambda k: (k[0], k[1], k[2] or dt.date.min)):
            legacy_count, legacy_amount = self.tally.legacy_totals.get(key, (0, Decimal(0)))
            modern_count, modern_amount = modern.get(key, (0, Decimal(0)))
            total = ControlTotal(reconciliation=reconciliation, entity=key[0], currency=key[1],
                                 month=key[2] or dt.date(1900, 1, 1), legacy_count=legacy_count,
                                 legacy_amount=legacy_amount, modern_count=modern_count, modern_amount=modern_amount)
            agree = agree and total.agrees
            totals.append(total)
        ControlTotal.objects.bulk_create(totals)
        return agree


def entity_states() -> list[dict]:
    """Each entity's state at a glance, as DMS validation shows it: not yet checked, validated, mismatched."""
    states = []
    for entity in ("customers", "orders", "order_line", "invoices", "invoice_line"):
        latest = (Reconciliation.objects.exclude(status=ReconciliationStatus.RUNNING)
                  .filter(figures__has_key=entity).order_by("-started_at", "-id").first())
        if latest is None:
            states.append({"entity": entity, "state": "not yet checked", "reconciliation": None, "figures": {}})
            continue
        figures = latest.figures[entity]
        findings = sum(figures.get(kind, 0) for kind in FINDINGS)
        states.append({"entity": entity, "state": "mismatched" if findings else "validated",
                       "reconciliation": latest, "figures": figures, "findings": findings})
    return states
