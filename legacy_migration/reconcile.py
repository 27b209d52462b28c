"""Reconciliation: compare legacy and modern record by record, through the migration's own mapping.

1. Each entity is cut into key ranges of about `range_size` legacy records, kept (ReconciledRange)
   so that the same ranges come back next time, and worked through in spans of consecutive ranges,
   in key order. Memory holds one span, whatever the table size.
2. Per span, both sides are checksummed per range (checksums.py): the legacy engine over the raw
   rows, PostgreSQL over the modern values compared. A range found equal before whose two checksums
   and parent states are unchanged is counted from what was stored, without moving its rows.
3. Every other range is compared field by field. Its legacy rows are read in key order and mapped by
   the migration's own Step, so what is compared is "the legacy value as carried over": a mapped
   status, a rounded amount, a trimmed code or a converted time is never a discrepancy. Its modern
   rows are read by key range (string keys: by the legacy keys, since the two engines may order
   strings differently) and compared field by field, lines by line number; a modern record with
   no legacy row in its range has lost its legacy source. A range found equal is stored with the
   checksums taken BEFORE its rows were read, so a change made in between costs a re-check next
   time and is never hidden.
4. A full reconciliation then counts the lines without a header, looks for modern records whose
   legacy source is gone where ranges cannot see them (string keys: only when the counts say some
   exist), and compares control totals: order and invoice amounts per currency per month (legacy
   local time), both sides.
5. Every finding is stored with the reconciliation; the outcome is validated or mismatched.

`--since` and `--keys` reconciliations compare what they cover, without checksums.
"""

from __future__ import annotations

import bisect
import datetime as dt
import gc
import hashlib
import inspect
import operator
import time
from collections import defaultdict, deque
from itertools import chain
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

import psycopg
from psycopg.adapt import Dumper
from django.conf import settings
from django.db import DatabaseError, connection, connections, transaction
from django.db.models import Count, F, Sum
from django.db.models.functions import TruncMonth
from django.utils import timezone

from legacy_migration import checksums, ddl, extract, mapping, runner
from legacy_migration.checksums import Span
from legacy_migration.load import ENTITY_TARGETS, Loader
from legacy_migration.mapping import Outcome, ParentState, Rule
from legacy_migration.models import (
    ENTITY_ORDER,
    ControlTotal,
    Discrepancy,
    DiscrepancyKind,
    Entity,
    ReconciledRange,
    Reconciliation,
    ReconciliationStatus,
)
from legacy_migration.runner import STEPS, LegacySource, json_safe, operator_name
from orders.models import Customer, Order

FINDINGS = (DiscrepancyKind.MISSING, DiscrepancyKind.EXTRA, DiscrepancyKind.DIFFERS, DiscrepancyKind.NOT_EXPECTED)
#: Figures kept per entity (and per line entity).
FIGURES = ("legacy", "modern", "matched", *FINDINGS, "excluded", "rejected")
#: Mapped values that name a parent by its legacy key; the modern side looks the parent up by id.
#: A correlated look-up rather than a join: one primary-key probe per row whatever the planner
#: believes about the table sizes (right after a bulk migration its statistics are often stale, and a
#: hash join would scan the whole parent table once per span).
PARENT_KEYS = {"customer_legacy_id": "(SELECT c.legacy_id FROM orders_customer c WHERE c.id = t.customer_id)",
               "order_legacy_id": "(SELECT o.legacy_id FROM orders_order o WHERE o.id = t.order_id)"}


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

    @property
    def string_keys(self) -> bool:
        return self.model._meta.get_field("legacy_id").get_internal_type() == "CharField"

    @property
    def values(self) -> Callable[[dict], tuple]:
        """The compared values of a mapped record, as a tuple in `fields` order (modern rows come so)."""
        return operator.itemgetter(*self.fields)

    @property
    def line_values(self) -> Callable[[dict], tuple]:
        return operator.itemgetter(*self.line_fields)

    # -- the modern side, as SQL: the same values are read, and checksummed ------------------------
    def header_columns(self) -> list[str]:
        """legacy_id, then the compared fields in `fields` order (over the header row `t`)."""
        return ["t.legacy_id", *(PARENT_KEYS[name] if name in PARENT_KEYS
                                 else f"t.{self.model._meta.get_field(name).column}" for name in self.fields)]

    def line_columns(self) -> list[str]:
        """The header's legacy_id, the line number, then the compared line fields (line row `l`)."""
        return ["t.legacy_id", "l.line_number",
                *(f"l.{self.line_model._meta.get_field(name).column}" for name in self.line_fields)]

    # -- the comparison in PostgreSQL (see Reconciler._modern_differing) ---------------------------
    def _sql_type(self, model: type, name: str) -> str:
        """The base type (no length, no scale: nothing is cut or rounded on its way in) of a compared value."""
        if name in PARENT_KEYS:
            model, name = (Customer, "legacy_id") if name == "customer_legacy_id" else (Order, "legacy_id")
        return SQL_TYPES[model._meta.get_field(name).get_internal_type()]

    def header_types(self) -> list[str]:
        return [self._sql_type(self.model, "legacy_id"), *(self._sql_type(self.model, n) for n in self.fields)]

    def line_types(self) -> list[str]:
        return [self._sql_type(self.model, "legacy_id"), self._sql_type(self.line_model, "line_number"),
                *(self._sql_type(self.line_model, n) for n in self.line_fields)]

    def lines_join(self) -> str:
        """A header's lines, by the foreign-key index (OFFSET 0 keeps the planner from turning it into a
        hash join over the whole lines table)."""
        fk = self.line_model._meta.get_field(self.parent).column
        return f" CROSS JOIN LATERAL (SELECT * FROM {self.line_model._meta.db_table} WHERE {fk} = t.id OFFSET 0) l"


#: Django field types → the PostgreSQL type a compared value is sent as (binary COPY: a Python value of
#: another type is refused on the way, never converted, and the span is then compared in Python).
SQL_TYPES = {"CharField": "text", "TextField": "text", "EmailField": "text", "DecimalField": "numeric",
             "DateTimeField": "timestamptz", "IntegerField": "int8", "SmallIntegerField": "int8",
             "PositiveIntegerField": "int8", "PositiveSmallIntegerField": "int8", "BigIntegerField": "int8"}


def _spec(entity: str, record: str, date_field: str = "") -> EntitySpec:
    """What reconciliation compares of an entity: what its load writes (load.ENTITY_TARGETS), less
    the keys. A header's own legacy_id is the key; a line's parent key and number are its key."""
    header, *lines = ENTITY_TARGETS[entity]
    if not lines:
        return EntitySpec(entity, record, header.model, header.columns[1:])
    (line,) = lines
    (to_header,) = line.parents
    parent = next(f.name for f in line.model._meta.fields if f.attname == to_header.column)
    return EntitySpec(entity, record, header.model, header.columns[1:], line.model, f"{record}_line",
                      line.columns[2:], parent, date_field)


SPECS = {
    Entity.CUSTOMERS: _spec(Entity.CUSTOMERS, "customer"),
    Entity.ORDERS: _spec(Entity.ORDERS, "order", "ordered_at"),
    Entity.INVOICES: _spec(Entity.INVOICES, "invoice", "invoiced_at"),
}


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


def scope_fingerprint(legacy_identity: str) -> str:
    """What stored checksums are valid for: this legacy database, this mapping, this algorithm.

    The mapping's source (and the Steps that feed it parent states) is part of it: after a rule
    changes, nothing verified under the old rule is trusted.
    """
    parts = [f"algorithm {checksums.ALGORITHM}", legacy_identity, str(settings.LEGACY_TIME_ZONE),
             inspect.getsource(mapping), *(inspect.getsource(step) for step in (runner.Step, *STEPS.values())),
             repr([(s.entity, s.fields, s.line_fields) for s in SPECS.values()])]
    return hashlib.sha256("\x00".join(parts).encode()).hexdigest()


# ---------------------------------------------------------------------------------------------
# Findings and figures
# ---------------------------------------------------------------------------------------------
def _figures() -> dict[str, dict[str, int]]:
    return defaultdict(lambda: dict.fromkeys(FIGURES, 0))


@dataclass
class RangeResult:
    """What comparing one key range found: its counts, control-total share and what it relied on."""

    figures: dict[str, dict[str, int]] = field(default_factory=_figures)
    totals: dict[str, list] = field(default_factory=dict)  # "entity|currency|month" -> [count, amount]
    depends: list[list] = field(default_factory=list)
    findings: int = 0

    def count(self, entity: str, name: str, n: int = 1) -> None:
        self.figures[entity][name] += n


@dataclass
class Tally:
    """Findings of one reconciliation, kept small: counts, and discrepancies flushed per span."""

    figures: dict[str, dict[str, int]] = field(default_factory=_figures)
    pending: list[Discrepancy] = field(default_factory=list)
    legacy_totals: dict[tuple, list] = field(default_factory=lambda: defaultdict(lambda: [0, Decimal(0)]))
    #: Ranges counted from their stored checksums / compared field by field / checksummed.
    narrowing: dict[str, dict[str, int]] = field(default_factory=lambda: defaultdict(lambda: defaultdict(int)))

    def count(self, entity: str, name: str, n: int = 1) -> None:
        self.figures[entity][name] += n

    def add(self, figures: dict, totals: dict) -> None:
        for entity, counts in figures.items():
            mine = self.figures[entity]
            for name, n in counts.items():
                mine[name] += n
        for key, (n, amount) in totals.items():
            entity, currency, month = key.split("|")
            slot = self.legacy_totals[(entity, currency, dt.date.fromisoformat(month) if month else None)]
            slot[0] += n
            slot[1] += Decimal(amount)

    def flush(self) -> None:
        Discrepancy.objects.bulk_create(self.pending, batch_size=1000)
        self.pending = []


class _ModernLookups(Loader):
    """The loader's look-ups with one array parameter, instead of an IN list of thousands of them."""

    def _any(self, sql: str, values: Sequence, array_type: str) -> list[tuple]:
        array, param = _array(values, array_type)
        with self.connection.cursor() as cursor:
            cursor.execute(sql.replace("%s", array), [param])
            return cursor.fetchall()

    def migrated_ids(self, model: type, keys: Sequence) -> dict:
        if self.vendor != "postgresql" or not keys:
            return super().migrated_ids(model, keys)
        array = "text" if SPECS_BY_MODEL[model].string_keys else "integer"
        return dict(self._any(f"SELECT legacy_id, id FROM {model._meta.db_table} WHERE legacy_id = ANY(%s)",
                              keys, array))

    def codes_taken(self, codes: Sequence[str]) -> dict[str, int | None]:
        if self.vendor != "postgresql" or not codes:
            return super().codes_taken(codes)
        return dict(self._any("SELECT code, legacy_id FROM orders_customer WHERE code = ANY(%s)", codes, "text"))


SPECS_BY_MODEL = {spec.model: spec for spec in SPECS.values()}


@dataclass
class _Legacy:
    """Legacy records of a span: raw headers, their mapped outcomes, their range index, the parent states."""

    headers: list[dict] = field(default_factory=list)
    outcomes: list[Outcome] = field(default_factory=list)
    ranges: list[int] = field(default_factory=list)
    context: dict = field(default_factory=dict)
    #: Asked for with the rows (a cold run that stores them): per range, the checksum and header count.
    checksums: dict[int, str] = field(default_factory=dict)
    counts: dict[int, int] = field(default_factory=dict)


#: ReconciledRange fields written after a comparison.
REMEMBERED = ["legacy_checksum", "modern_checksum", "figures", "totals", "depends", "verified_at", "reconciliation"]
#: A code no customer holds (JSON-friendly, unlike None which codes_taken uses for "created here").
FREE = "free"


@dataclass(frozen=True)
class _Job:
    """A span to reconcile: new ranges to cut ("plan"), or stored ranges to check ("stored")."""

    entity: str
    kind: str
    after: Any = None
    uppers: tuple = ()
    position: int = 0
    store: bool = True
    ids: tuple = ()


#: The reconciler a forked worker inherits from its parent (see Reconciler._run_jobs).
_FORKED: Reconciler | None = None


def _do_forked(job: _Job) -> dict:
    return _FORKED._do(job)


@dataclass
class _Modern:
    """Modern records of a span, by legacy key: (range index, values tuple), and lines by number."""

    records: dict = field(default_factory=dict)
    lines: dict = field(default_factory=lambda: defaultdict(dict))


class Reconciler:
    def __init__(self, *, entities: Sequence[str] = tuple(ENTITY_ORDER), since: dt.datetime | None = None,
                 keys: dict[str, Sequence[tuple[str, str]]] | None = None, batch_size: int = 5000,
                 legacy_alias: str = "legacy", started_by: str = "",
                 on_batch: Callable[[str, int], None] | None = None, checksums: bool = True,
                 full_compare: bool = False, range_size: int = 100, workers: int = 1, compare_in_sql: bool = True):
        self.entities = [e for e in ENTITY_ORDER if e in entities]
        self.since, self.keys, self.batch_size = since, keys, batch_size
        self.source = LegacySource(legacy_alias)
        self.loader = _ModernLookups()
        self.tz = ZoneInfo(settings.LEGACY_TIME_ZONE)
        self.started_by = started_by or operator_name()
        self.on_batch = on_batch
        self.tally = Tally()
        self.use_checksums = checksums and self.full and connection.vendor == "postgresql"
        self.full_compare = full_compare
        self.workers = max(1, workers)
        self.range_size = max(1, range_size)
        #: Ranges per span: one checksum query and one read cover this many.
        self.span_ranges = max(1, batch_size // self.range_size)
        self.scope = scope_fingerprint(self.source.identity()) if self.use_checksums else ""
        #: Compare in PostgreSQL, reading into Python only the records that differ (False: read all).
        self.compare_in_sql = compare_in_sql
        self.reconciliation: Reconciliation | None = None

    @property
    def full(self) -> bool:
        return self.since is None and self.keys is None

    def run(self) -> Reconciliation:
        started = time.monotonic()
        reconciliation = self.reconciliation = Reconciliation.objects.create(started_by=self.started_by, scope={
            "entities": self.entities, "since": self.since.isoformat() if self.since else None,
            "keys": {e: [list(r) for r in ranges] for e, ranges in self.keys.items()} if self.keys else None,
            "batch_size": self.batch_size,
            "legacy": self.source.identity(),
            "checksums": self.use_checksums, "full_compare": self.full_compare, "range_size": self.range_size,
            "workers": self.workers})
        try:
            if self.full:
                # Every entity's spans go through the same workers; what needs an entity complete
                # (records found nowhere else, lines without a header) comes after.
                self._run_jobs(chain.from_iterable(self._jobs(SPECS[e]) for e in self.entities))
                for entity in self.entities:
                    self._after_ranges(SPECS[entity])
            else:
                for entity in self.entities:
                    spec = SPECS[entity]
                    for first, last in self.keys.get(entity, []) if self.keys is not None else [(None, None)]:
                        self._compare_keyset(spec, self._step(spec), first, last)
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
        reconciliation.scope = {**reconciliation.scope,
                                "narrowing": {e: dict(n) for e, n in self.tally.narrowing.items()}}
        reconciliation.status = (ReconciliationStatus.VALIDATED if disagreements == 0 and totals_agree
                                 else ReconciliationStatus.MISMATCHED)
        reconciliation.message = "" if reconciliation.status == ReconciliationStatus.VALIDATED else (
            f"{disagreements} discrepanc{'y' if disagreements == 1 else 'ies'}"
            + ("" if totals_agree else "; control totals disagree"))
        reconciliation.seconds, reconciliation.finished_at = time.monotonic() - started, timezone.now()
        reconciliation.save()
        return reconciliation

    # -- 1. one entity ---------------------------------------------------------------------------
    def _step(self, spec: EntitySpec):
        return STEPS[spec.entity](self.source, self.loader, self.tz, self.since)

    def _key(self, spec: EntitySpec, value: str):
        return value if spec.string_keys else int(value)

    # -- 2 + 3. full reconciliations: ranges, checksums, comparisons ----------------------------------
    def _stored(self, spec: EntitySpec):
        return ReconciledRange.objects.filter(scope=self.scope, entity=spec.entity)

    def _jobs(self, spec: EntitySpec):
        """The entity's spans to reconcile: its stored ranges, or new ones cut from the legacy keys."""
        step = self._step(spec)
        if not self.use_checksums:
            yield from self._planned_jobs(spec, step, after=None, position=1, store=False)
            return
        # Ranges of another scope (an older mapping, another legacy database) are never trusted again.
        discarded, _ = ReconciledRange.objects.filter(entity=spec.entity).exclude(scope=self.scope).delete()
        if discarded:
            self.tally.narrowing[spec.entity]["discarded"] += discarded
        stored = self._stored(spec)
        if self.full_compare:
            stored.delete()
        if stored.exists():
            yield from self._stored_jobs(spec)
        else:
            yield from self._planned_jobs(spec, step, after=None, position=1, store=True)

    def _after_ranges(self, spec: EntitySpec) -> None:
        step = self._step(spec)
        if spec.string_keys:
            self._extras_by_count(spec, step)
        if spec.line_model is not None:
            sql = checksums.orphan_count_sql(self.source.vendor, ddl.TABLES_BY_NAME[step.lines.name],
                                             ddl.TABLES_BY_NAME[step.table.name])
            orphans = self.source.query(sql, [], f"{step.lines.name} orphans")[0][0]
            self.tally.count(spec.line_record, "rejected", orphans)

    def _planned_jobs(self, spec: EntitySpec, step, *, after, position: int, store: bool):
        """New ranges of `range_size` legacy keys from `after` to the end, a span at a time (keyset reads)."""
        size, per_span = self.range_size, self.span_ranges
        while True:
            keys = self.source.next_keys(step.table, "" if after is None else str(after), step.key_type,
                                         size * per_span + 1)
            if len(keys) > size * per_span:
                uppers = tuple(keys[size * (i + 1) - 1] for i in range(per_span))
            else:
                # The end of the table: the last range stays open for the records still to come.
                full_ranges = max(1, -(-len(keys) // size)) - 1
                uppers = tuple(keys[size * (i + 1) - 1] for i in range(full_ranges)) + (None,)
            yield _Job(spec.entity, "plan", after=after, uppers=uppers, position=position, store=store)
            position += len(uppers)
            if uppers[-1] is None:
                return
            after = uppers[-1]

    def _stored_jobs(self, spec: EntitySpec):
        """The stored ranges in key order, a span at a time."""
        last_position = 0
        while True:
            ids = list(self._stored(spec).filter(position__gt=last_position).order_by("position")
                       .values_list("id", "position")[:self.span_ranges])
            if not ids:
                return
            last_position = ids[-1][1]
            yield _Job(spec.entity, "stored", ids=tuple(pk for pk, _ in ids))

    def _run_jobs(self, jobs) -> None:
        """Work through the spans: here, or in `workers` forked processes that each take the next one.

        The parent hands out at most two spans per worker ahead, so memory stays one span per process.
        Each worker writes its own discrepancies and ranges; its figures come back to be added up.
        """
        if self.workers <= 1 or connection.in_atomic_block:
            # Inside a transaction the connection cannot be closed for a fork: work here.
            for job in jobs:
                self._merge(self._do(job))
            return
        import multiprocessing

        global _FORKED
        _FORKED = self
        # A connection must not be shared across a fork: the children open their own.
        connections.close_all()
        with multiprocessing.get_context("fork").Pool(self.workers) as pool:
            pending: deque = deque()
            for job in jobs:
                pending.append(pool.apply_async(_do_forked, (job,)))
                while len(pending) >= 2 * self.workers:
                    self._merge(pending.popleft().get())
            while pending:
                self._merge(pending.popleft().get())
        _FORKED = None

    def _do(self, job: _Job) -> dict:
        """One span (one job): what a worker does. Returns its figures for the parent to add up.

        The cyclic garbage collector waits until the span is done: a span makes hundreds of thousands
        of short-lived objects (rows, mapped values) and no lasting cycles, and collecting while they
        live costs a tenth of the run. Memory stays bounded by the span all the same.
        """
        collecting = gc.isenabled()
        gc.disable()
        mine, self.tally = self.tally, Tally()
        try:
            spec = SPECS[job.entity]
            step = self._step(spec)
            if job.kind == "plan":
                records = self._planned_span(spec, step, job)
            else:
                ranges = list(ReconciledRange.objects.filter(pk__in=job.ids).order_by("position"))
                records = self._stored_span(spec, step, ranges)
            self.tally.flush()
            return {"entity": job.entity, "records": records,
                    "figures": {e: dict(f) for e, f in self.tally.figures.items()},
                    "totals": {k: (n, str(a)) for k, (n, a) in self.tally.legacy_totals.items()},
                    "narrowing": {e: dict(n) for e, n in self.tally.narrowing.items()}}
        finally:
            self.tally = mine
            if collecting:
                gc.enable()

    def _merge(self, done: dict) -> None:
        tally = self.tally
        for entity, counts in done["figures"].items():
            for name, n in counts.items():
                tally.figures[entity][name] += n
        for key, (n, amount) in done["totals"].items():
            slot = tally.legacy_totals[key]
            slot[0] += n
            slot[1] += Decimal(amount)
        for entity, counts in done["narrowing"].items():
            for name, n in counts.items():
                tally.narrowing[entity][name] += n
        if self.on_batch:
            self.on_batch(done["entity"], done["records"])

    def _planned_span(self, spec: EntitySpec, step, job: _Job) -> int:
        """Checksum (when storing) and compare the ranges of a new span; store them. Returns legacy records."""
        span = Span(job.after, job.uppers)
        # Every row is read and compared: the checksums to store are taken with them, in the same reads.
        taken: dict | None = {} if job.store else None
        results = self._compare_span(spec, step, span, checksum=taken)
        legacy, modern = (taken["legacy"], taken["modern"]) if job.store else ({}, {})
        narrowing = self.tally.narrowing[spec.entity]
        narrowing["compared"] += len(span)
        if job.store:
            narrowing["checksummed"] += len(span)
            now = timezone.now()
            rows = []
            for i, upper in enumerate(job.uppers):
                lower = job.after if i == 0 else job.uppers[i - 1]
                stored = ReconciledRange(scope=self.scope, entity=spec.entity, position=job.position + i,
                                         after_key="" if lower is None else str(lower),
                                         last_key="" if upper is None else str(upper))
                self._remember(stored, results.get(i, RangeResult()), legacy.get(i, ""), modern.get(i, ""), now)
                rows.append(stored)
            ReconciledRange.objects.bulk_create(rows)
        return sum(result.figures[spec.entity]["legacy"] for result in results.values())

    def _span_of(self, spec: EntitySpec, ranges: Sequence[ReconciledRange]) -> Span:
        first = ranges[0].after_key
        return Span(self._key(spec, first) if first else None,
                    tuple(self._key(spec, r.last_key) if r.last_key else None for r in ranges))

    def _stored_span(self, spec: EntitySpec, step, ranges: list[ReconciledRange]) -> int:
        """Checksum a span of stored ranges and compare those that changed. Returns legacy records."""
        span = self._span_of(spec, ranges)
        legacy, modern, counts, legacy_keys = self._checksums(spec, step, span)
        tail = ranges[-1]
        recut = not tail.last_key and counts.get(len(ranges) - 1, 0) > 2 * self.range_size
        if recut:
            # New records arrive at the open end: once it holds more than two ranges' worth it is cut
            # into ranges of its own, so that one new record does not send them all to be compared.
            ranges = ranges[:-1]
        narrowing = self.tally.narrowing[spec.entity]
        narrowing["checksummed"] += len(span)
        unchanged = self._unchanged(step, ranges, legacy, modern)
        for i in sorted(unchanged):
            self.tally.add(ranges[i].figures, ranges[i].totals)
        narrowing["skipped"] += len(unchanged)
        changed = [i for i in range(len(ranges)) if i not in unchanged]
        results: dict[int, RangeResult] = {}
        for run in _runs(changed):
            sub = Span(span.after if run[0] == 0 else span.uppers[run[0] - 1], span.uppers[run[0]:run[-1] + 1])
            keys = None if legacy_keys is None else {k: r - run[0] for k, r in legacy_keys.items()
                                                     if run[0] <= r <= run[-1]}
            found = self._compare_span(spec, step, sub, legacy_keys=keys)
            results.update({run[0] + i: result for i, result in found.items()})
        narrowing["compared"] += len(changed)
        now = timezone.now()
        for i in changed:
            self._remember(ranges[i], results.get(i, RangeResult()), legacy.get(i, ""), modern.get(i, ""), now)
        ReconciledRange.objects.bulk_update([ranges[i] for i in changed], REMEMBERED)
        records = sum(counts.get(i, 0) for i in range(len(ranges)))
        if recut:
            ReconciledRange.objects.filter(pk=tail.pk).delete()
            after = self._key(spec, tail.after_key) if tail.after_key else None
            for job in self._planned_jobs(spec, step, after=after, position=tail.position, store=True):
                records += self._planned_span(spec, step, job)
        return records

    def _unchanged(self, step, ranges: Sequence[ReconciledRange], legacy: dict, modern: dict) -> set[int]:
        """Indexes of the ranges verified before whose checksums and parent states have not moved."""
        candidates = {i for i, r in enumerate(ranges)
                      if r.verified and r.legacy_checksum == legacy.get(i) and r.modern_checksum == modern.get(i)}
        depends = [(i, dep) for i in candidates for dep in ranges[i].depends]
        if not depends:
            return candidates
        now = self._observe(step, [dep for _, dep in depends])
        return candidates - {i for i, dep in depends if now.get((dep[0], dep[1])) != dep[2]}

    def _observe(self, step, depends: Sequence[list]) -> dict[tuple, Any]:
        """The current parent states and code holders that some stored outcomes relied on."""
        seen: dict[tuple, Any] = {}
        parents = [d for d in depends if d[0] in ("customers", "orders")]
        if parents:
            headers = [{"CUST_ID": d[1] if d[0] == "customers" else None,
                        "ORD_NO": d[1] if d[0] == "orders" else None} for d in parents]
            for kind, states in step.parent_states(headers).items():
                seen.update({(kind, key): state.value for key, state in states.items()})
        codes = sorted({d[1] for d in depends if d[0] == "code"})
        if codes:
            taken = self.loader.codes_taken(codes)
            seen.update({("code", code): taken.get(code, FREE) for code in codes})
        return seen

    def _remember(self, stored: ReconciledRange, result: RangeResult, legacy: str, modern: str, now) -> None:
        """What a range looked like when compared; its checksums only if it was found equal."""
        equal = result.findings == 0
        stored.legacy_checksum = legacy if equal else ""
        stored.modern_checksum = modern if equal else ""
        stored.figures = {e: {k: v for k, v in f.items() if v} for e, f in result.figures.items()}
        stored.totals = {key: [n, str(amount)] for key, (n, amount) in result.totals.items()}
        stored.depends = result.depends
        stored.verified_at, stored.reconciliation = (now if equal else None), self.reconciliation

    def _checksums(self, spec: EntitySpec, step, span: Span) -> tuple[dict, dict, dict, dict | None]:
        """Per range of the span: legacy checksum, modern checksum, legacy header count; (string keys) legacy keys."""
        vendor = self.source.vendor
        if vendor == "sqlite":
            self.source.connection.ensure_connection()
            checksums.register_sqlite_functions(self.source.connection.connection)
        tables = [(step.table, "h")] + ([(step.lines, "l")] if step.lines is not None else [])
        legacy: dict[int, list[str]] = defaultdict(list)
        counts: dict[int, int] = {}
        for table, tag in tables:
            sql = checksums.legacy_checksums_sql(vendor, ddl.TABLES_BY_NAME[table.name], table.key, span)
            found = {int(r): (n, total) for r, n, total in
                     self.source.query(sql, checksums.span_params(span), f"{table.name} checksums")}
            for i in range(len(span)):
                n, total = found.get(i, (0, 0))
                legacy[i].append(f"{tag}:{checksums.checksum_text(n, total)}")
                if tag == "h":
                    counts[i] = n
        legacy_keys = None
        if spec.string_keys:
            sql = checksums.legacy_keys_sql(vendor, ddl.TABLES_BY_NAME[step.table.name], span)
            legacy_keys = {_modern_key(key): int(r) for key, r in
                           self.source.query(sql, checksums.span_params(span), f"{step.table.name} keys")}
        return ({i: " ".join(v) for i, v in legacy.items()}, self._modern_checksums(spec, span, legacy_keys), counts,
                legacy_keys)

    def _modern_sql(self, spec: EntitySpec, select: str, lines: bool, span: Span | None, legacy_keys: dict | None,
                    *, inclusive: bool = False) -> tuple[str, list]:
        """Modern rows (headers, or lines) of a span, with their range index `r`.

        Integer keys: by key range, an index range scan. String keys: by the legacy keys with their
        range index, never by range, since PostgreSQL's collation need not order strings the way the
        legacy engine does, and a range boundary must mean the same on both sides.
        """
        table = spec.model._meta.db_table
        lines_join = spec.lines_join() if lines else ""
        if legacy_keys is not None:
            keys = list(legacy_keys)
            key_array, key_param = _array(keys, "text" if spec.string_keys else "integer")
            range_array, range_param = _array([legacy_keys[k] for k in keys], "integer")
            sql = (f"SELECT k.r AS r, {select} FROM unnest({key_array}, {range_array}) AS k(key, r) "
                   f"CROSS JOIN LATERAL (SELECT * FROM {table} WHERE legacy_id = k.key OFFSET 0) t{lines_join}")
            return sql, [key_param, range_param]
        where = checksums.span_where_sql("t.legacy_id", span)
        if inclusive:
            where = where.replace(" > %s", " >= %s", 1)
        sql = (f"SELECT {checksums.range_of_sql('t.legacy_id', span)} AS r, {select} FROM {table} t{lines_join} "
               f"WHERE t.legacy_id IS NOT NULL AND {where}")
        return sql, checksums.span_params(span)

    # -- the field-by-field comparison ---------------------------------------------------------
    def _compare_span(self, spec: EntitySpec, step, span: Span, *, legacy_keys: dict | None = None,
                      inclusive: bool = False, extra_modern: Sequence = (),
                      checksum: dict | None = None) -> dict[int, RangeResult]:
        """Read, map and compare every record of the span's ranges; findings go to the tally.

        `checksum` (a dict): each range's checksums are taken too, from the very rows compared (legacy:
        the rows as read; modern: in the comparing statement, or just before the rows are read), and
        put in it: {"legacy": {range: text}, "modern": {range: text}, "counts": {range: headers}}.
        """
        legacy = self._legacy(step, span, inclusive, checksum=checksum is not None)
        if checksum is not None:
            checksum.update(legacy=legacy.checksums, counts=legacy.counts)
        if spec.string_keys or self.since is not None:
            # Matched by key (see _modern_sql). Keys the checksum pass saw are looked for too, and a
            # record named on purpose (--keys K:K) even if its legacy row is gone.
            keys = {o.legacy_key: r for o, r in zip(legacy.outcomes, legacy.ranges)}
            for key, r in (legacy_keys or {}).items():
                keys.setdefault(key, r)
            for key in extra_modern:
                keys.setdefault(str(key), 0)
            legacy_keys = keys
        differing = self._modern_differing(spec, legacy, span, legacy_keys, inclusive, checksum is not None)
        if differing is None:
            if checksum is not None:
                checksum["modern"] = self._modern_checksums(spec, span, legacy_keys)
            modern, verified = self._modern(spec, span, legacy_keys, inclusive), frozenset()
        else:
            # Only the records PostgreSQL found different (or on one side only) are read and compared
            # here; the rest were found equal there, every field and every line.
            keys, verified, modern_checksums = differing
            if checksum is not None:
                checksum["modern"] = modern_checksums
            modern = self._modern(spec, None, keys, False) if keys else _Modern()
        results: dict[int, RangeResult] = defaultdict(RangeResult)
        self._compare(spec, legacy, modern, results, verified)
        self.tally.flush()
        for result in results.values():
            self.tally.add(result.figures, result.totals)
        return results

    def _legacy(self, step, span: Span, inclusive: bool, checksum: bool = False) -> _Legacy:
        """The legacy records of the span in key order, mapped as the migration maps them, with their range.

        This is Step.read without the raw values it keeps for the migration's issues (a third of its
        cost): the same rows, parent states and mapping (test_reconcile_checksums checks they agree).
        The engine itself says which range each row belongs to.
        """
        vendor, table, lines_table = self.source.vendor, step.table, step.lines
        # String keys: the engine says which range a row is in (its collation cut the ranges). Integer
        # keys order alike everywhere: the range is found here, sparing the engine a CASE per row.
        engine_ranges = step.key_type is not int
        params = checksums.span_params(span) if engine_ranges else checksums.span_where_params(span)
        since = extract.since_clause(vendor, table) if self.since is not None else None
        if checksum and vendor == "sqlite":
            self.source.connection.ensure_connection()
            checksums.register_sqlite_functions(self.source.connection.connection)
        sql = checksums.span_rows_sql(vendor, ddl.TABLES_BY_NAME[table.name], table.key, span, inclusive=inclusive,
                                      since=since, with_range=engine_ranges, check=checksum)
        rows = self.source.query(sql, params + extract.since_params(table, self.since), f"{table.name} rows")
        legacy = _Legacy()
        columns = table.columns
        legacy.headers = [dict(zip(columns, row)) for row in rows]
        bounded = span.uppers[:-1]
        at_range = -2 if checksum else -1
        if engine_ranges:
            legacy.ranges = [int(row[at_range]) for row in rows]
        else:
            at = columns.index(table.key)
            legacy.ranges = [bisect.bisect_left(bounded, row[at]) for row in rows]
        checks: dict[str, dict[int, list]] = {"h": defaultdict(list), "l": defaultdict(list)}
        if checksum:
            for row, r in zip(rows, legacy.ranges):
                checks["h"][r].append(row[-1])
        lines_by_key: dict = defaultdict(list)
        if lines_table is not None and (rows or checksum):
            # Lines without a header (orphans) count in their range's checksum as the engine counts them;
            # string keys: the engine says which range a line is in, as for headers.
            line_ranges = checksum and engine_ranges
            sql = checksums.span_rows_sql(vendor, ddl.TABLES_BY_NAME[lines_table.name], lines_table.key, span,
                                          inclusive=inclusive, with_range=line_ranges, check=checksum)
            line_columns, key = lines_table.columns, lines_table.key
            at = line_columns.index(key)
            params = checksums.span_params(span) if line_ranges else checksums.span_where_params(span)
            for row in self.source.query(sql, params, f"{lines_table.name} rows"):
                line = dict(zip(line_columns, row))
                lines_by_key[line[key]].append(line)
                if checksum:
                    r = int(row[-2]) if line_ranges else bisect.bisect_left(bounded, row[at])
                    checks["l"][r].append(row[-1])
        if checksum:
            tags = ("h", "l") if lines_table is not None else ("h",)
            for i in range(len(span)):
                parts = []
                for tag in tags:
                    n, total = checksums.range_checksum(vendor, checks[tag].get(i, ()))
                    parts.append(f"{tag}:{checksums.checksum_text(n, total)}")
                    if tag == "h":
                        legacy.counts[i] = n
                legacy.checksums[i] = " ".join(parts)
        legacy.context = step.parent_states(legacy.headers) if rows else {}
        key = table.key
        legacy.outcomes = [step.map(header, lines_by_key.get(header[key], []), legacy.context)
                           for header in legacy.headers]
        if step.entity == Entity.CUSTOMERS:
            step._reject_duplicate_codes(legacy.outcomes)
        return legacy

    def _modern_differing(self, spec: EntitySpec, legacy: _Legacy, span: Span, legacy_keys: dict | None,
                          inclusive: bool, checksum: bool = False) -> tuple[dict, frozenset, dict] | None:
        """Compare the span in PostgreSQL: which modern records may differ from the mapped legacy ones.

        The mapped values (exactly what _compare compares) are copied into a temporary table, in binary,
        typed as the modern columns' base types, and one statement joins them with the span's modern
        rows (the same rows _modern reads), headers by key and lines by key and line number. It returns
        every key whose record or lines differ in any field, or are on one side only; equal means what
        `same` means: text '' and NULL alike, numbers and instants by value. Returns (keys to read and
        compare in Python → range index, keys found equal in every field and line, and with `checksum`
        each range's modern checksum, taken by the same statement over the same rows), or None when the
        span is to be compared in Python altogether (not PostgreSQL, or a value the copy refuses).
        """
        if connection.vendor != "postgresql" or not self.compare_in_sql:
            return None
        string_keys = spec.string_keys
        values_of = spec.values
        line_values = operator.itemgetter("line_number", *spec.line_fields) if spec.line_model else None
        mapped: list = []
        headers, lines = [], []
        range_of: dict = {}
        for outcome, r in zip(legacy.outcomes, legacy.ranges):
            key = outcome.legacy_key if string_keys else int(outcome.legacy_key)
            range_of[key] = r
            if outcome.values is None:
                continue
            mapped.append(key)
            headers.append((key, *values_of(outcome.values)))
            if line_values is not None:
                lines.extend((key, *line_values(line)) for line in outcome.lines)
        if len(range_of) != len(legacy.outcomes):
            return None  # two legacy keys that map to the same modern key: compared in Python
        try:
            with transaction.atomic():
                flagged = self._differing_sql(spec, span, legacy_keys, inclusive, headers, lines, checksum)
        except (DatabaseError, TypeError, ValueError, AttributeError, OverflowError, psycopg.Error):
            # A value PostgreSQL cannot hold (a NUL character, a number out of range, an unexpected
            # type): the span is compared in Python, which reports it as what it is.
            _TEMP_TABLES.clear()  # made in the transaction just rolled back, perhaps
            return None
        keys: dict[str, int] = {}
        found = set()
        sums: dict[str, dict[int, tuple]] = {"H": {}, "L": {}}
        # Headers first: a modern record on its own comes with its range index, its lines without.
        for kind, key, r, n, total in sorted(flagged, key=lambda row: row[2] is None):
            if kind in sums:
                sums[kind][int(r)] = (n, total)
                continue
            key = key if string_keys else int(key)
            found.add(key)
            keys.setdefault(str(key), range_of.get(key, 0 if r is None else r))
        modern_checksums = {}
        if checksum:
            tags = (("h", "H"), ("l", "L")) if spec.line_model is not None else (("h", "H"),)
            for i in range(len(span)):
                modern_checksums[i] = " ".join(f"{tag}:{checksums.checksum_text(*sums[kind].get(i, (0, 0)))}"
                                               for tag, kind in tags)
        return keys, frozenset(k for k in mapped if k not in found), modern_checksums

    def _differing_sql(self, spec: EntitySpec, span: Span, legacy_keys: dict | None, inclusive: bool,
                       headers: list, lines: list, checksum: bool) -> list[tuple]:
        connection.ensure_connection()
        tables = _temp_tables(spec)
        raw = connection.connection  # a psycopg connection: COPY, and the SQL below, go to it directly
        with raw.cursor() as cursor:
            cursor.adapters.register_dumper(None, _DecimalAsText)
            cursor.execute(f"TRUNCATE {', '.join(name for name, _ in tables)}")
            for (name, types), rows in zip(tables, (headers, lines)):
                if not rows:
                    continue
                columns = ", ".join(f"c{i}" for i in range(len(types)))
                with cursor.copy(f"COPY {name} ({columns}) FROM STDIN (FORMAT BINARY)") as copy:
                    copy.set_types([_COPIED_AS.get(t, t) for t in types])
                    for row in rows:
                        copy.write_row(row)
            sql, params = self._differing_query(spec, span, legacy_keys, inclusive, tables, checksum)
            cursor.execute(sql, params)
            return cursor.fetchall()

    def _differing_query(self, spec: EntitySpec, span: Span, legacy_keys: dict | None, inclusive: bool,
                         tables: list, checksum: bool) -> tuple[str, list]:
        """(kind, key, range, rows, hash sum): 'h'/'l' rows name a record whose header/lines differ;
        with `checksum`, 'H'/'L' rows give each range's modern checksum over the same modern rows."""
        def distinct(types: list[str], start: int) -> str:
            def side(alias: str) -> str:
                def value(i: int) -> str:
                    if types[i] == "text":
                        return f"coalesce({alias}.c{i}, '')"  # '' and NULL are the same
                    if types[i] == "numeric" and alias == "s":
                        return f"{alias}.c{i}::numeric"  # sent as its exact text (_DecimalAsText)
                    return f"{alias}.c{i}"
                return ", ".join(value(i) for i in range(start, len(types)))
            return f"ROW({side('m')}) IS DISTINCT FROM ROW({side('s')})"

        def hashed(count: int) -> str:
            return checksums.modern_hash_sql([f"c{i}" for i in range(count)], pg_version=connection.pg_version)

        (head_table, head_types), *rest = tables
        select = ", ".join(f"{expr} AS c{i}" for i, expr in enumerate(spec.header_columns()))
        inner, params = self._modern_sql(spec, select, False, span, legacy_keys, inclusive=inclusive)
        ctes = [f"mh AS ({inner})"]
        parts = [f"SELECT 'h' AS kind, coalesce(m.c0, s.c0)::text AS key, m.r AS r, NULL::bigint AS n, "
                 f"NULL::numeric AS total FROM mh m FULL JOIN {head_table} s ON s.c0 = m.c0 "
                 f"WHERE m.c0 IS NULL OR s.c0 IS NULL OR {distinct(head_types, 1)}"]
        if checksum:
            parts.append(f"SELECT 'H', NULL, r, count(*), sum({hashed(len(head_types))}) FROM mh GROUP BY r")
        if rest:
            (line_table, line_types), = rest
            select = ", ".join(f"{expr} AS c{i}" for i, expr in enumerate(spec.line_columns()))
            inner, line_params = self._modern_sql(spec, select, True, span, legacy_keys, inclusive=inclusive)
            ctes.append(f"ml AS ({inner})")
            params = params + line_params
            parts.append(f"SELECT DISTINCT 'l', coalesce(m.c0, s.c0)::text, NULL::integer, NULL::bigint, "
                         f"NULL::numeric FROM ml m FULL JOIN {line_table} s ON s.c0 = m.c0 AND s.c1 = m.c1 "
                         f"WHERE m.c0 IS NULL OR s.c0 IS NULL OR {distinct(line_types, 2)}")
            if checksum:
                parts.append(f"SELECT 'L', NULL, r, count(*), sum({hashed(len(line_types))}) FROM ml GROUP BY r")
        return f"WITH {', '.join(ctes)} " + " UNION ALL ".join(f"({part})" for part in parts), params

    def _modern_checksums(self, spec: EntitySpec, span: Span, legacy_keys: dict | None) -> dict[int, str]:
        """Per range of the span, the modern checksum (PostgreSQL over the values compared)."""
        modern: dict[int, list[str]] = defaultdict(list)
        parts = [("h", spec.header_columns(), False)]
        if spec.line_model is not None:
            parts.append(("l", spec.line_columns(), True))
        for tag, columns, lines in parts:
            hashed = checksums.modern_hash_sql(columns, pg_version=connection.pg_version)
            inner, params = self._modern_sql(spec, f"{hashed} AS h", lines, span, legacy_keys)
            with connection.cursor() as cursor:
                cursor.execute(f"SELECT r, count(*), sum(h) FROM ({inner}) s GROUP BY r", params)
                found = {int(r): (n, total) for r, n, total in cursor.fetchall()}
            for i in range(len(span)):
                n, total = found.get(i, (0, 0))
                modern[i].append(f"{tag}:{checksums.checksum_text(n, total)}")
        return {i: " ".join(v) for i, v in modern.items()}

    def _modern(self, spec: EntitySpec, span: Span, legacy_keys: dict | None, inclusive: bool) -> _Modern:
        if connection.vendor != "postgresql":
            return self._modern_portable(spec, span, legacy_keys, inclusive)
        modern = _Modern()
        sql, params = self._modern_sql(spec, ", ".join(spec.header_columns()), False, span, legacy_keys,
                                       inclusive=inclusive)
        with _reading_cursor() as cursor:
            cursor.execute(sql, params)
            modern.records = {row[1]: (row[0], row[2:]) for row in cursor.fetchall()}
            if spec.line_model is not None and modern.records:
                sql, params = self._modern_sql(spec, ", ".join(spec.line_columns()), True, span, legacy_keys,
                                               inclusive=inclusive)
                cursor.execute(sql, params)
                for row in cursor.fetchall():
                    modern.lines[row[1]][row[2]] = row[3:]
        return modern

    def _modern_portable(self, spec: EntitySpec, span: Span, legacy_keys: dict | None, inclusive: bool) -> _Modern:
        """The same records through the ORM, for the embedded SQLite store of `make demo`.

        Raw SQL there would hand decimals over as floats and times as naive text; the ORM converts
        them as the models define. Small stores only: no checksums are kept there.
        """
        parents = {"customer_legacy_id": F("customer__legacy_id"), "order_legacy_id": F("order__legacy_id")}
        queryset = spec.model.objects.exclude(legacy_id=None)
        if legacy_keys is not None:
            queryset = queryset.filter(legacy_id__in=[self._key(spec, k) for k in legacy_keys])
        else:
            if span.after is not None:
                queryset = queryset.filter(**{"legacy_id__gte" if inclusive else "legacy_id__gt": span.after})
            if not span.open_above:
                queryset = queryset.filter(legacy_id__lte=span.uppers[-1])
        bounded = [u for u in span.uppers if u is not None] if span is not None else []

        def range_of(key) -> int:
            return legacy_keys.get(str(key), 0) if legacy_keys is not None else bisect.bisect_left(bounded, key)

        modern = _Modern()
        for key, *values in queryset.values_list("legacy_id", *(parents.get(f, f) for f in spec.fields)):
            modern.records[key] = (range_of(key), tuple(values))
        if spec.line_model is not None and modern.records:
            lines = (spec.line_model.objects.filter(**{f"{spec.parent}__legacy_id__in": list(modern.records)})
                     .values_list(f"{spec.parent}__legacy_id", "line_number", *spec.line_fields))
            for key, number, *values in lines:
                modern.lines[key][number] = tuple(values)
        return modern

    def _compare(self, spec: EntitySpec, legacy: _Legacy, modern: _Modern, results: dict[int, RangeResult],
                 verified: frozenset = frozenset()) -> None:
        """Record by record, lines by line number. `verified`: keys found equal in every field and line
        already (in PostgreSQL), whose modern rows were not read."""
        entity, fields, record_name = spec.entity, spec.fields, spec.record
        values_of = spec.values
        string_keys = spec.string_keys
        records, lines = modern.records, modern.lines
        depends = self._parent_depends(legacy)
        line_record = spec.line_record if spec.line_model is not None else None
        for outcome, header, r in zip(legacy.outcomes, legacy.headers, legacy.ranges):
            result = results[r]
            figures = result.figures[entity]
            figures["legacy"] += 1
            key = outcome.legacy_key if string_keys else int(outcome.legacy_key)
            if key in verified:
                figures["modern"] += 1
                figures["matched"] += 1
                if depends:
                    result.depends.extend(depends.get(outcome.legacy_key, ()))
                self._count_totals(spec, outcome.values, result)
                if line_record is not None:
                    n = len(outcome.lines)
                    line_figures = result.figures[line_record]
                    line_figures["legacy"] += n
                    line_figures["modern"] += n
                    line_figures["matched"] += n
                continue
            found = records.pop(key, None)
            record = None if found is None else found[1]
            if record is not None:
                figures["modern"] += 1
            if depends:
                result.depends.extend(depends.get(outcome.legacy_key, ()))
            if not outcome.mapped:
                figures["excluded" if outcome.exclusion else "rejected"] += 1
                if outcome.rejection is not None and outcome.rejection.rule is Rule.DUPLICATE_CODE:
                    result.depends.append(["code", mapping.text(header["CUST_CODE"])])
                lines.pop(key, None)
                if record is not None:
                    self._find(result, entity, record_name, outcome.legacy_key, DiscrepancyKind.NOT_EXPECTED,
                               modern=self._as_dict(spec, key, record),
                               fields={"rule": {"legacy": str((outcome.exclusion or outcome.rejection).rule),
                                                "modern": "present"}})
                continue
            values = outcome.values
            self._count_totals(spec, values, result)
            if record is None:
                self._find(result, entity, record_name, outcome.legacy_key, DiscrepancyKind.MISSING, legacy=values)
                if spec.line_model is not None:
                    result.count(spec.line_record, "legacy", len(outcome.lines))
                continue
            # The common case first: every value equal as it is. Only otherwise ask field by field,
            # where '' and NULL count as the same.
            if values_of(values) == record:
                figures["matched"] += 1
            else:
                as_dict = self._as_dict(spec, key, record)
                diff = differences(values, as_dict, fields)
                if diff:
                    self._find(result, entity, record_name, outcome.legacy_key, DiscrepancyKind.DIFFERS,
                               fields=diff, legacy=values, modern=as_dict)
                else:
                    figures["matched"] += 1
            if spec.line_model is not None:
                self._compare_lines(spec, outcome, lines.pop(key, {}), result)
        for key, (r, record) in records.items():
            # In the span on the modern side and not on the legacy side: its legacy source is gone.
            result = results[r]
            result.count(entity, "modern")
            if spec.line_model is not None:
                result.count(spec.line_record, "modern", len(lines.pop(key, {})))
            self._find(result, entity, record_name, str(key), DiscrepancyKind.EXTRA,
                       modern=self._as_dict(spec, key, record))
        self._resolve_code_holders(results)

    @staticmethod
    def _parent_depends(legacy: _Legacy) -> dict[str, list]:
        """Per legacy key: the parents not migrated whose state its outcome was mapped with.

        A parent that is migrated stays so while its child is in the modern store (the foreign keys
        protect it), so only these can change an outcome behind two unchanged checksums.
        """
        if not legacy.context:
            return {}
        found: dict[str, list] = {}
        for header, outcome in zip(legacy.headers, legacy.outcomes):
            deps = []
            for kind, column in (("customers", "CUST_ID"), ("orders", "ORD_NO")):
                states = legacy.context.get(kind)
                parent = header.get(column) if states is not None else None
                state = states.get(parent, ParentState.MISSING) if parent is not None else ParentState.MIGRATED
                if state is not ParentState.MIGRATED:
                    deps.append([kind, parent, state.value])
            if deps:
                found[outcome.legacy_key] = deps
        return found

    def _resolve_code_holders(self, results: dict[int, RangeResult]) -> None:
        """A customer rejected for a duplicate code relied on who holds the code: note the holder now."""
        codes = sorted({d[1] for result in results.values() for d in result.depends if d[0] == "code" and len(d) == 2})
        if not codes:
            return
        taken = self.loader.codes_taken(codes)
        for result in results.values():
            for dep in result.depends:
                if dep[0] == "code" and len(dep) == 2:
                    dep.append(taken.get(dep[1], FREE))

    def _as_dict(self, spec: EntitySpec, key, record: tuple) -> dict:
        return {"legacy_id": key, **dict(zip(spec.fields, record))}

    def _find(self, result: RangeResult, entity: str, record: str, key: str, kind: str, *,
              fields: dict | None = None, legacy: dict | None = None, modern: dict | None = None) -> None:
        result.count(entity, kind)
        result.findings += 1
        self.tally.pending.append(Discrepancy(reconciliation=self.reconciliation, entity=record, legacy_key=key,
                                              kind=kind, fields=fields or {},
                                              legacy=json_safe(legacy) if legacy else None,
                                              modern=json_safe(modern) if modern else None))

    def _compare_lines(self, spec: EntitySpec, outcome: Outcome, modern_lines: dict, result: RangeResult) -> None:
        """Lines by line number. `modern_lines` is this record's own dict: matched lines are taken out of
        it, and what is left has no legacy line."""
        entity = spec.line_record
        figures = result.figures[entity]
        figures["legacy"] += len(outcome.lines)
        figures["modern"] += len(modern_lines)
        values_of = spec.line_values
        for legacy in outcome.lines:
            number = legacy["line_number"]
            found = modern_lines.pop(number, None)
            if found is not None and values_of(legacy) == found:
                figures["matched"] += 1
                continue
            key = f"{outcome.legacy_key}/{number}"
            if found is None:
                self._find(result, entity, entity, key, DiscrepancyKind.MISSING, legacy=legacy)
                continue
            modern = dict(zip(("line_number", *spec.line_fields), (number, *found)))
            if diff := differences(legacy, modern, spec.line_fields):
                self._find(result, entity, entity, key, DiscrepancyKind.DIFFERS, fields=diff, legacy=legacy,
                           modern=modern)
            else:
                figures["matched"] += 1
        for number in sorted(modern_lines):
            modern = dict(zip(("line_number", *spec.line_fields), (number, *modern_lines[number])))
            self._find(result, entity, entity, f"{outcome.legacy_key}/{number}", DiscrepancyKind.EXTRA, modern=modern)

    # -- partial reconciliations: --keys, --since ------------------------------------------------
    def _compare_keyset(self, spec: EntitySpec, step, first: str | None, last: str | None) -> None:
        """Keyset batches of legacy keys within [first, last] (or of all changed since), each compared."""
        upper = self._key(spec, last) if last is not None else None
        single = first is not None and first == last
        after, inclusive = (self._key(spec, first), True) if first is not None else (None, False)
        while True:
            batch = self.source.next_keys(step.table, "" if after is None else str(after), step.key_type,
                                          self.batch_size, self.since, inclusive)
            if upper is not None:
                batch = [k for k in batch if k <= upper]
            if not batch:
                if upper is not None and not spec.string_keys and (after is None or after < upper or inclusive):
                    # No legacy key left up to `last`: modern records there have lost their source.
                    self._compare_span(spec, step, Span(after, (upper,)), inclusive=inclusive)
                elif single and inclusive:
                    # The one key asked for is gone from legacy: still say whether modern has it.
                    self._compare_span(spec, step, Span(after, (after,)), inclusive=True, extra_modern=[after])
                return
            self._compare_span(spec, step, Span(after, (batch[-1],)), inclusive=inclusive,
                               extra_modern=[after] if single else ())
            if self.on_batch:
                self.on_batch(spec.entity, len(batch))
            after, inclusive = batch[-1], False
            if upper is not None and after >= upper:
                return

    # -- 4. what ranges cannot see --------------------------------------------------------------
    def _extras_by_count(self, spec: EntitySpec, step) -> None:
        """Modern records whose legacy key is in no range (string keys): looked for only if the counts say so."""
        in_ranges = self.tally.figures[spec.entity]["modern"]
        with connection.cursor() as cursor:
            cursor.execute(f"SELECT count(*) FROM {spec.model._meta.db_table} WHERE legacy_id IS NOT NULL")
            total = cursor.fetchone()[0]
        self.tally.narrowing[spec.entity]["modern_outside_ranges"] = total - in_ranges
        if total == in_ranges:
            return
        last = None
        while True:
            queryset = spec.model.objects.exclude(legacy_id=None).order_by("legacy_id")
            if last is not None:
                queryset = queryset.filter(legacy_id__gt=last)
            keys = list(queryset.values_list("legacy_id", flat=True)[:1000])
            if not keys:
                return
            last = keys[-1]
            present = {_modern_key(k) for k in self.source.existing(step.table, keys)}
            gone = [k for k in keys if k not in present]
            if gone:
                result = RangeResult()
                for key, (_, record) in self._modern(spec, None, {str(k): 0 for k in gone}, False).records.items():
                    result.count(spec.entity, "modern")
                    self._find(result, spec.entity, spec.record, str(key), DiscrepancyKind.EXTRA,
                               modern=self._as_dict(spec, key, record))
                self.tally.add(result.figures, {})
                self.tally.flush()

    # -- control totals ------------------------------------------------------------------------
    def _month(self, moment: dt.datetime | None) -> dt.date | None:
        return moment.astimezone(self.tz).date().replace(day=1) if moment else None

    def _count_totals(self, spec: EntitySpec, values: dict, result: RangeResult) -> None:
        if not spec.date_field:
            return
        moment = values[spec.date_field]
        if moment:
            local = moment.astimezone(self.tz)  # as _month, without making the date: the same text
            key = f"{spec.entity}|{values['currency']}|{local.year:04d}-{local.month:02d}-01"
        else:
            key = f"{spec.entity}|{values['currency']}|"
        slot = result.totals.get(key)
        if slot is None:
            result.totals[key] = [1, values[spec.amount_field]]
        else:
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


class _DecimalAsText(Dumper):
    """A Decimal as its exact text, in a binary COPY: several times cheaper than psycopg's binary numeric,
    and PostgreSQL reads the text back as the same number. Anything but a finite Decimal is refused."""

    format = psycopg.pq.Format.BINARY
    oid = psycopg.postgres.types["varchar"].oid

    def dump(self, obj) -> bytes:
        if type(obj) is not Decimal or not obj.is_finite():  # noqa: E721
            raise TypeError(f"not a finite Decimal: {obj!r}")
        return str(obj).encode()


#: How a value of a temporary table's column type is copied in (numbers: see _DecimalAsText).
_COPIED_AS = {"numeric": "varchar"}
#: Temporary tables made on each connection, by (connection, entity).
_TEMP_TABLES: dict[tuple[int, str], list[tuple[str, list[str]]]] = {}


def _temp_tables(spec: EntitySpec) -> list[tuple[str, list[str]]]:
    """The span's mapped headers (and lines) go here for the comparison in PostgreSQL: (name, types)."""
    raw = connection.connection
    slot = (id(raw), spec.entity)
    tables = _TEMP_TABLES.get(slot)
    if tables is None:
        tables = [(f"reconcile_{spec.entity}", spec.header_types())]
        if spec.line_model is not None:
            tables.append((f"reconcile_{spec.entity}_lines", spec.line_types()))
        with raw.cursor() as cursor:
            for name, types in tables:
                columns = ", ".join(f"c{i} {_COPIED_AS.get(t, t)}" for i, t in enumerate(types))
                cursor.execute(f"CREATE TEMPORARY TABLE IF NOT EXISTS {name} ({columns})")
        if len(_TEMP_TABLES) > 64:
            _TEMP_TABLES.clear()
        _TEMP_TABLES[slot] = tables
    return tables


def _array(values: Sequence, sql_type: str) -> tuple[str, Any]:
    """An array parameter as ONE text, split by the server: psycopg would adapt a list element by
    element in Python, which for the keys of a span costs more than the query. Falls back to a list
    in the (absurd) case of a key holding the separator."""
    texts = [str(v) for v in values]
    if sql_type != "text" or not any(SEPARATOR in t for t in texts):
        return f"string_to_array(%s, chr(31))::{sql_type}[]", SEPARATOR.join(texts)
    return f"%s::{sql_type}[]", texts


#: The unit separator: never part of a legacy key.
SEPARATOR = "\x1f"


def _reading_cursor():
    """A cursor on the default connection that reads timestamps with psycopg's own C loader."""
    if connection.vendor != "postgresql":
        return connection.cursor()
    connection.ensure_connection()
    return use_c_loaders(connection.connection.cursor())


def use_c_loaders(cursor):
    """Read timestamps with psycopg's own (C) loader on this cursor.

    Django wraps the timestamptz loader in a Python subclass (to attach its time zone), which makes
    reading a timestamp cost more than mapping one; psycopg's loader already returns aware datetimes
    in the session's zone (UTC, set by Django), which compare by instant all the same.
    """
    import psycopg

    for name in ("timestamptz", "timestamp"):
        oid = psycopg.postgres.types[name].oid
        cursor.adapters.register_loader(oid, psycopg.postgres.adapters.get_loader(oid, psycopg.pq.Format.TEXT))
    return cursor


def _modern_key(raw) -> str:
    """A legacy string key as the modern store keeps it (the mapping trims it)."""
    return mapping.text(raw) or str(raw)


def _runs(indexes: Sequence[int]) -> list[list[int]]:
    """Consecutive runs: [1, 2, 3, 7, 8] → [[1, 2, 3], [7, 8]] (each run is read with one query)."""
    runs: list[list[int]] = []
    for i in indexes:
        if runs and runs[-1][-1] == i - 1:
            runs[-1].append(i)
        else:
            runs.append([i])
    return runs


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
