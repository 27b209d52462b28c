"""Running a migration: plan key ranges, work through them (in parallel if asked), finish.

1. A run is identified by a fingerprint of its options and legacy database. Starting the same
   command again finds the unfinished run and resumes it; that is also how several processes, or
   machines, share one run.
2. Planning streams each entity's keys in key order and cuts them into work items of
   `batch_size` keys (plus, on full runs, one item that looks for lines without a header).
3. Workers claim items with SELECT … FOR UPDATE SKIP LOCKED, entity by entity in dependency
   order (customers, orders, invoices), and process each in ONE transaction: extract the range,
   map it, load it, write its issues and mark the item done. A crash therefore loses at most the
   items in flight, which are simply pending again for the next run.
4. On a first load (PostgreSQL, empty tables), an entity's secondary indexes and foreign keys
   are set aside while it loads and built again once its last item is done (set_aside.py).
5. When nothing is pending, the run's figures are summed from its items and it is marked done.
"""

from __future__ import annotations

import datetime as dt
import gc
import getpass
import hashlib
import json
import os
import queue
import socket
import threading
import time
from collections import defaultdict
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from decimal import Decimal
from zoneinfo import ZoneInfo

from django.conf import settings
from django.db import DatabaseError, connections, router, transaction
from django.db.models import Sum
from django.utils import timezone

from legacy_migration import extract, set_aside
from legacy_migration.extract import CUSTMAST, INVDTL, INVHDR, ORDDTL, ORDHDR, LegacyTable
from legacy_migration.load import LoadCounts, Loader
from legacy_migration.mapping import (
    Finding,
    Outcome,
    ParentState,
    Rule,
    duplicate_code_rejection,
    duplicate_email_warning,
    map_customer,
    map_invoice,
    map_order,
    orphan_line_rejection,
)
from legacy_migration.models import (
    ENTITY_ORDER,
    Entity,
    IssueKind,
    MigrationIssue,
    MigrationRun,
    RunStatus,
    WorkItem,
    WorkStatus,
)
from orders.models import Customer, Order

COUNTERS = ("read", "inserted", "updated", "unchanged", "excluded", "rejected", "warned")


class LegacyUnavailable(Exception):
    """The legacy database failed us (connection lost, SQL refused). The run stops, resumable."""


@dataclass(frozen=True)
class RunOptions:
    entities: tuple[str, ...] = tuple(ENTITY_ORDER)
    since: dt.datetime | None = None  # naive, legacy local time (as LAST_UPD_DT is stored)
    batch_size: int = 5000
    dry_run: bool = False
    legacy_alias: str = "legacy"
    #: Only these legacy keys (of the one entity asked for): "re-migrate these records".
    keys: tuple[str, ...] = ()
    #: Keep every index and foreign key during a first load (see set_aside.py).
    keep_indexes: bool = False

    def as_json(self) -> dict:
        data = asdict(self)
        data["since"] = self.since.isoformat() if self.since else None
        return data

    def fingerprint(self, legacy_identity: str) -> str:
        # How the indexes are treated does not change what a run loads: not part of its identity,
        # so a run killed without --keep-indexes resumes with it, and the other way round.
        data = {k: v for k, v in self.as_json().items() if k != "keep_indexes"}
        payload = json.dumps({**data, "legacy": legacy_identity}, sort_keys=True)
        return hashlib.sha256(payload.encode()).hexdigest()


@dataclass
class ItemResult:
    read: int = 0
    inserted: int = 0
    updated: int = 0
    unchanged: int = 0
    excluded: int = 0
    rejected: int = 0
    warned: int = 0
    issues: list[tuple[str, Finding, dict]] = field(default_factory=list)  # (kind, finding, raw as read)

    def add_load(self, counts: LoadCounts) -> None:
        self.inserted += counts.inserted
        self.updated += counts.updated
        self.unchanged += counts.unchanged

    def merge(self, other: ItemResult) -> None:
        for name in COUNTERS:
            setattr(self, name, getattr(self, name) + getattr(other, name))
        self.issues.extend(other.issues)

    def note(self, kind: str, finding: Finding, raw: dict) -> None:
        self.issues.append((kind, finding, raw))


# ---------------------------------------------------------------------------------------------
# The legacy side
# ---------------------------------------------------------------------------------------------
class LegacySource:
    """Reads from the legacy alias; every database failure becomes LegacyUnavailable."""

    def __init__(self, alias: str):
        self.alias = alias
        self.connection = connections[alias]
        self.vendor = self.connection.vendor

    def identity(self) -> str:
        s = self.connection.settings_dict
        return f"{self.vendor}:{s.get('HOST', '')}:{s.get('PORT', '')}:{s.get('NAME', '')}"

    def _cursor(self):
        try:
            return self.connection.cursor()
        except DatabaseError as exc:
            raise LegacyUnavailable(f"cannot connect to the legacy database ({self.alias}): {exc}") from exc

    def query(self, sql: str, params: Sequence, what: str) -> list[tuple]:
        try:
            with self._cursor() as cursor:
                cursor.execute(sql, list(params))
                return cursor.fetchall()
        except DatabaseError as exc:
            self.connection.close()
            raise LegacyUnavailable(f"lost the legacy database while reading {what}: {exc}") from exc

    def iter_keys(self, table: LegacyTable, since: dt.datetime | None):
        sql = extract.keys_sql(self.vendor, table, since=since is not None)
        try:
            with self._cursor() as cursor:
                for (key,) in extract.stream(cursor, sql, extract.since_params(table, since), size=10000):
                    yield key
        except DatabaseError as exc:
            self.connection.close()
            raise LegacyUnavailable(f"lost the legacy database while planning {table.name}: {exc}") from exc

    def rows(self, table: LegacyTable, after: str, last: str, key_type: type, since: dt.datetime | None = None,
             lines_of: LegacyTable | None = None, inclusive: bool = False) -> list[dict]:
        """Rows of (after, last] ([after, last] if inclusive) — of `table`, or of its lines table."""
        source = lines_of or table
        bounded = after != ""
        lower = ">=" if inclusive else ">"
        bounds = ([key_type(after)] if bounded else []) + [key_type(last)]
        if lines_of is not None:
            sql = extract.lines_for_range_sql(self.vendor, lines_of, bounded_below=bounded, lower=lower)
            params = bounds
        else:
            sql = extract.range_sql(self.vendor, table, since=since is not None, bounded_below=bounded, lower=lower)
            params = bounds + extract.since_params(table, since)
        rows = self.query(sql, params, f"{source.name} keys ({after or '…'}, {last}]")
        return extract.as_dicts(source, rows)

    def next_keys(self, table: LegacyTable, after, key_type: type, limit: int, since: dt.datetime | None = None,
                  inclusive: bool = False) -> list:
        """Up to `limit` keys after `after` ('' = from the start), in key order."""
        bounded = after != ""
        sql = extract.next_keys_sql(self.vendor, table, since=since is not None, bounded_below=bounded, limit=limit,
                                    lower=">=" if inclusive else ">")
        params = ([key_type(after)] if bounded else []) + extract.since_params(table, since)
        return [row[0] for row in self.query(sql, params, f"{table.name} keys after {after or 'the start'}")]

    def existing(self, table: LegacyTable, keys: Sequence, extra: Sequence[str] = ()) -> dict:
        found = {}
        keys = list(keys)
        for chunk in extract.chunks(keys):
            sql = extract.exists_sql(self.vendor, table, len(chunk), extra)
            for row in self.query(sql, chunk, f"{table.name} keys"):
                found[row[0]] = row[1:]
        return found

    def orphan_lines(self, lines: LegacyTable, header: LegacyTable) -> list[dict]:
        rows = self.query(extract.orphan_lines_sql(self.vendor, lines, header), [], f"{lines.name} orphans")
        return extract.as_dicts(lines, rows)


def _json_value(value):
    """A legacy value as JSON keeps it: exact decimals and timestamps as text, bytes decoded as
    cp1252; anything else as it is. The one rule for json_safe and raw_json."""
    if isinstance(value, (Decimal, dt.datetime, dt.date)):
        return str(value)
    if isinstance(value, (bytes, bytearray, memoryview)):
        return bytes(value).decode("cp1252", errors="replace")
    return value


def json_safe(row: dict) -> dict:
    """Raw legacy values for the admin: exact decimals and timestamps as text."""
    return {key: [json_safe(v) for v in value] if isinstance(value, list) else _json_value(value)
            for key, value in row.items()}


def _raw_default(value):
    """json.dumps' fallback for the values JSON has no type for: _json_value's text, or a TypeError."""
    converted = _json_value(value)
    if converted is value:
        raise TypeError(f"a legacy value of type {type(value).__name__} has no JSON form")
    return converted


def raw_json(row: dict) -> str:
    """json_safe(row) as JSON text, in one pass of the C encoder: the same text, without building
    the converted copy (a big run writes the raw values of hundreds of thousands of issues)."""
    return json.dumps(row, default=_raw_default)


class Sources:
    """The legacy values of records as read, keyed by legacy key, with its lines for an issue's
    `raw` merged in only when asked: a few records in a hundred get an issue."""

    def __init__(self, *, with_lines: bool):
        self.with_lines = with_lines
        self._rows: dict[str, tuple[dict, list | None]] = {}
        self._raw: dict[str, dict] = {}

    def add(self, key: str, header: dict, lines: list | None) -> None:
        self._rows[key] = (header, lines)

    def update(self, other: Sources) -> None:
        self._rows.update(other._rows)
        self._raw.update(other._raw)

    def __getitem__(self, key: str) -> dict:
        """The record's legacy values as read (its lines under "lines"), one dict however many
        issues it gets; save_issues makes them JSON (raw_json, json_safe)."""
        raw = self._raw.get(key)
        if raw is None:
            header, lines = self._rows[key]
            raw = self._raw[key] = {**header, "lines": lines or []} if self.with_lines else header
        return raw


class ChunkLoader:
    """Loads a work item's mapped chunks, in a second thread when that can overlap with mapping.

    The thread uses the worker's own connection (the transaction that holds the claimed item), so
    what it loads commits or rolls back with the item. The hand-over is strict: while the thread
    runs, the mapping thread touches only the legacy connection. psycopg releases the GIL while
    PostgreSQL works, which is when the mapping runs. Elsewhere (SQLite, a legacy alias on the
    same connection, no transaction) chunks are loaded in line, in the same order.
    """

    def __init__(self, step: Step):
        self.step = step
        connection = step.loader.connection
        self.threaded = (connection.vendor == "postgresql" and connection.in_atomic_block
                         and connection is not step.source.connection)
        self.parts: list[ItemResult] = []
        self._queue: queue.Queue = queue.Queue(maxsize=2)
        self._error: BaseException | None = None
        self._stopping = False  # the item failed: what is still queued is skipped
        self._thread = threading.Thread(target=self._run, name="chunk-loader", daemon=True)

    def __enter__(self) -> ChunkLoader:
        if self.threaded:
            self.step.loader.connection.inc_thread_sharing()
            self._thread.start()
        return self

    def put(self, mapped: list[Outcome], sources: Sources) -> None:
        if not self.threaded:
            self.parts.append(self.step.load_chunk(mapped, sources))
            return
        while True:
            if self._error is not None:
                raise self._error
            try:
                self._queue.put((mapped, sources), timeout=0.2)
                return
            except queue.Full:
                continue

    def _run(self) -> None:
        while (chunk := self._queue.get()) is not None:
            if self._error is None and not self._stopping:
                try:
                    self.parts.append(self.step.load_chunk(*chunk))
                except BaseException as exc:  # noqa: BLE001 - handed to the mapping thread, raised there
                    self._error = exc

    def __exit__(self, exc_type, exc, tb) -> None:
        if not self.threaded:
            return
        self._stopping = exc_type is not None
        # The thread must be finished before anyone uses the connection again (the rollback that
        # follows a failure included): a Ctrl-C meanwhile waits for the statement in progress.
        interrupted, told = None, False
        while not told or self._thread.is_alive():
            try:
                if not told:
                    self._queue.put(None)
                    told = True
                self._thread.join()
            except KeyboardInterrupt as again:
                interrupted, self._stopping = again, True
        self.step.loader.connection.dec_thread_sharing()
        if interrupted is not None:
            raise interrupted
        if exc_type is None and self._error is not None:
            raise self._error


# ---------------------------------------------------------------------------------------------
# One work item per entity kind
# ---------------------------------------------------------------------------------------------
class Step:
    """One entity's part of a run: read a key range and map it (shared with reconciliation), load it."""

    entity: str
    table: LegacyTable
    lines: LegacyTable | None = None
    key_type: type = int
    line_entity: str = ""

    def __init__(self, source: LegacySource, loader: Loader, tz: ZoneInfo, since: dt.datetime | None):
        self.source, self.loader, self.tz, self.since = source, loader, tz, since
        #: The modern ids of the migrated parents parent_states found, per parent model: the load
        #: reuses them instead of looking the same parents up again for every chunk.
        self.parent_ids: dict[type, dict] = {}

    # -- reading and mapping (what reconciliation reuses) ----------------------------------------
    def read(self, after: str, last: str, inclusive: bool = False) -> list[tuple[Outcome, dict]]:
        """The legacy records of (after, last] ([after, last] if inclusive), each mapped, with its raw values."""
        headers = self._headers(after, last, inclusive)
        if not headers:
            return []
        records = self._map_records(headers, after, inclusive, self.parent_states(headers))
        sources = Sources(with_lines=self.lines is not None)
        for outcome, header, lines in records:
            sources.add(outcome.legacy_key, header, lines)
        return [(outcome, sources[outcome.legacy_key]) for outcome, _, _ in records]

    def _headers(self, after: str, last: str, inclusive: bool) -> list[dict]:
        return self.source.rows(self.table, after, last, self.key_type, self.since, inclusive=inclusive)

    def _map_records(self, headers: list[dict], after: str, inclusive: bool,
                     context: dict) -> list[tuple[Outcome, dict, list | None]]:
        """Map these headers (consecutive, in key order, the first one after `after`) with their lines."""
        lines_by_key = defaultdict(list)
        if self.lines is not None:
            # Lines are read for the headers' key range, not header by header: one query.
            last, key = str(headers[-1][self.table.key]), self.lines.key
            for line in self.source.rows(self.table, after, last, self.key_type, lines_of=self.lines,
                                         inclusive=inclusive):
                lines_by_key[line[key]].append(line)
        records = []
        for header in headers:
            lines = lines_by_key.get(header[self.table.key], []) if self.lines is not None else None
            records.append((self.map(header, lines or [], context), header, lines))
        return records

    def parent_states(self, headers: list[dict]) -> dict:
        return {}

    def map(self, header: dict, lines: list[dict], context: dict) -> Outcome:
        raise NotImplementedError

    def _states(self, keys: set, model: type, table: LegacyTable,
                extra: Sequence[str] = (), excluded: Callable | None = None) -> dict:
        """What became of these parents: migrated (in the modern store), excluded, rejected, missing."""
        keys = {k for k in keys if k is not None}
        migrated = self.parent_ids[model] = self.loader.migrated_ids(model, sorted(keys))
        states = {k: ParentState.MIGRATED for k in migrated}
        rest = sorted(keys - migrated.keys())
        in_legacy = self.source.existing(table, rest, extra)
        for key in rest:
            if key not in in_legacy:
                states[key] = ParentState.MISSING
            elif excluded is not None and excluded(in_legacy[key]):
                states[key] = ParentState.EXCLUDED
            else:
                states[key] = ParentState.REJECTED
        return states

    # -- the migration ---------------------------------------------------------------------------
    #: Records mapped and loaded together inside a work item. Small enough that PostgreSQL can
    #: write one chunk while Python reads and maps the next; large enough that statements stay few.
    chunk_size: int | None = 2000
    #: The first chunk of an item is smaller: the database waits while it is mapped.
    first_chunk_size: int | None = 250

    def process(self, item: WorkItem) -> ItemResult:
        """Read, map and load one work item's key range.

        1. Read the range's headers and find out what became of their parents (one query each).
        2. Cut the headers into chunks; per chunk read the lines of its key range and map the records.
        3. Hand each mapped chunk to the loader. On PostgreSQL the loader is a second thread on this
           worker's own connection and transaction, so the database writes chunk n while this thread
           maps chunk n + 1; the item still commits, or rolls back, as one.
        """
        if item.scope == "orphans":
            return self._orphans()
        inclusive = item.scope == "keys"
        headers = self._headers(item.after_key, item.last_key, inclusive)
        result = ItemResult(read=len(headers))
        if not headers:
            return result
        context = self.parent_states(headers)
        kept_mapped, kept_sources = [], Sources(with_lines=self.lines is not None)
        with ChunkLoader(self) as loader:
            for records in self._chunks(headers, item.after_key, inclusive, context):
                sources = Sources(with_lines=self.lines is not None)
                mapped = []
                for outcome, header, lines in records:
                    sources.add(outcome.legacy_key, header, lines)
                    self._record(result, outcome, sources)
                    if outcome.mapped:
                        mapped.append(outcome)
                loader.put(mapped, sources)
                if self.keeps_records:
                    kept_mapped += mapped
                    kept_sources.update(sources)
        for part in loader.parts:
            result.merge(part)
        self.after_load(result, kept_mapped, kept_sources)
        return result

    #: Whether after_load needs every mapped record of the item (kept in memory until then).
    keeps_records = False

    def _chunks(self, headers: list[dict], after: str, inclusive: bool,
                context: dict) -> Iterator[list[tuple[Outcome, dict, list | None]]]:
        size = self.chunk_size or len(headers)
        start, end = 0, min(self.first_chunk_size or size, size)
        while start < len(headers):
            if start:
                after, inclusive = str(headers[start - 1][self.table.key]), False
            yield self._map_records(headers[start:end], after, inclusive, context)
            start, end = end, end + size

    def load_chunk(self, mapped: list[Outcome], sources: Sources) -> ItemResult:
        part = ItemResult()
        self._load_safely(part, mapped, sources)
        return part

    def load(self, outcomes: list[Outcome]) -> LoadCounts:
        raise NotImplementedError

    def after_load(self, result: ItemResult, mapped: list[Outcome], raws: dict) -> None:
        pass

    def _record(self, result: ItemResult, outcome: Outcome, raws: Sources) -> None:
        if outcome.exclusion:
            result.excluded += 1
            result.note(IssueKind.EXCLUSION, outcome.exclusion, raws[outcome.legacy_key])
        elif outcome.rejection:
            result.rejected += 1
            result.note(IssueKind.REJECTION, outcome.rejection, raws[outcome.legacy_key])
        if outcome.warnings:
            result.warned += 1
            for warning in outcome.warnings:
                result.note(IssueKind.WARNING, warning, raws[outcome.legacy_key])

    def _load_safely(self, result: ItemResult, mapped: list[Outcome], raws: dict) -> None:
        """Load the batch; if the database refuses it, load record by record and reject the bad ones.

        The mapping should have caught everything; this is the net that keeps one unforeseen bad
        row from stopping a run.
        """
        if not mapped:
            return
        try:
            with self._all_or_nothing():
                result.add_load(self.load(mapped))
            return
        except DatabaseError:
            pass
        for outcome in mapped:
            try:
                with self._all_or_nothing():
                    result.add_load(self.load([outcome]))
            except DatabaseError as exc:
                result.rejected += 1
                finding = Finding(outcome.entity, outcome.legacy_key, Rule.DATABASE_REFUSED,
                                  f"The modern database refused the record: {str(exc).strip().splitlines()[0]}")
                result.note(IssueKind.REJECTION, finding, raws[outcome.legacy_key])

    @contextmanager
    def _all_or_nothing(self):
        """transaction.atomic() on the loader's connection, from whichever thread loads.

        atomic() finds its connection by thread, and the chunk loader's thread must use the
        worker's connection (its transaction holds the claimed item): inside a transaction, a
        savepoint is made on that connection object itself.
        """
        connection = self.loader.connection
        if not connection.in_atomic_block:
            with transaction.atomic(using=connection.alias):
                yield
            return
        savepoint = connection.savepoint()
        try:
            yield
        except BaseException:
            connection.savepoint_rollback(savepoint)
            raise
        connection.savepoint_commit(savepoint)

    def _orphans(self) -> ItemResult:
        """Lines whose header does not exist: each one rejected (rule 7)."""
        result = ItemResult()
        for row in self.source.orphan_lines(self.lines, self.table):
            result.read += 1
            result.rejected += 1
            finding = orphan_line_rejection(self.line_entity, self.table.name, row[self.lines.key], row["LINE_NO"])
            result.note(IssueKind.REJECTION, finding, row)
        return result


class CustomerStep(Step):
    entity, table = Entity.CUSTOMERS, CUSTMAST

    # Duplicate codes are judged over the whole batch, and the shared-email warning needs every
    # loaded customer: one chunk, kept until after the load.
    chunk_size, first_chunk_size, keeps_records = None, None, True

    def _map_records(self, headers: list[dict], after: str, inclusive: bool,
                     context: dict) -> list[tuple[Outcome, dict, list | None]]:
        records = super()._map_records(headers, after, inclusive, context)
        self._reject_duplicate_codes([outcome for outcome, _, _ in records])
        return records

    def map(self, header: dict, lines: list[dict], context: dict) -> Outcome:
        return map_customer(header, tz=self.tz)

    def load(self, outcomes: list[Outcome]) -> LoadCounts:
        return self.loader.load_customers(outcomes)

    def after_load(self, result: ItemResult, mapped: list[Outcome], raws: dict) -> None:
        """Rule 3: a shared mailbox is a warning on each customer that has it."""
        sharing = self.loader.customers_sharing_email([o.values["legacy_id"] for o in mapped if o.values["email"]])
        already_warned = {o.values["legacy_id"] for o in mapped if o.warnings}
        for key, (address, others) in sharing.items():
            warning = duplicate_email_warning(str(key), address, others[:5] + (["…"] if len(others) > 5 else []))
            result.note(IssueKind.WARNING, warning, raws[str(key)])
            if key not in already_warned:
                result.warned += 1

    def _reject_duplicate_codes(self, outcomes: list[Outcome]) -> None:
        mapped = [o for o in outcomes if o.mapped]
        taken = self.loader.codes_taken(sorted({o.values["code"] for o in mapped}))
        seen: dict[str, int] = {}
        for outcome in mapped:
            code, key = outcome.values["code"], outcome.values["legacy_id"]
            holder = taken.get(code, key) if code in taken else seen.get(code, key)
            if holder != key:
                outcome.rejection = duplicate_code_rejection(outcome.legacy_key, code,
                                                             str(holder) if holder is not None else "(created here)")
                outcome.values, outcome.warnings = None, []
            else:
                seen[code] = key


class OrderStep(Step):
    entity, table, lines, line_entity = Entity.ORDERS, ORDHDR, ORDDTL, "order_line"

    def parent_states(self, headers: list[dict]) -> dict:
        return {"customers": self._states({h["CUST_ID"] for h in headers}, Customer, CUSTMAST)}

    def map(self, header: dict, lines: list[dict], context: dict) -> Outcome:
        customer = context["customers"].get(header["CUST_ID"], ParentState.MISSING)
        return map_order(header, lines, customer=customer, tz=self.tz)

    def load(self, outcomes: list[Outcome]) -> LoadCounts:
        return self.loader.load_orders(outcomes, self.parent_ids)


class InvoiceStep(Step):
    entity, table, lines, line_entity, key_type = Entity.INVOICES, INVHDR, INVDTL, "invoice_line", str

    def parent_states(self, headers: list[dict]) -> dict:
        return {
            "customers": self._states({h["CUST_ID"] for h in headers}, Customer, CUSTMAST),
            "orders": self._states({h["ORD_NO"] for h in headers}, Order, ORDHDR, extra=["DEL_FLG"],
                                   excluded=lambda row: (row[0] or "").strip().upper() == "Y"),
        }

    def map(self, header: dict, lines: list[dict], context: dict) -> Outcome:
        customer = context["customers"].get(header["CUST_ID"], ParentState.MISSING)
        order = None if header["ORD_NO"] is None else context["orders"][header["ORD_NO"]]
        return map_invoice(header, lines, customer=customer, order=order, tz=self.tz)

    def load(self, outcomes: list[Outcome]) -> LoadCounts:
        return self.loader.load_invoices(outcomes, self.parent_ids)


STEPS: dict[str, type[Step]] = {Entity.CUSTOMERS: CustomerStep, Entity.ORDERS: OrderStep,
                                Entity.INVOICES: InvoiceStep}


# ---------------------------------------------------------------------------------------------
# The run
# ---------------------------------------------------------------------------------------------
def _tune_item_transaction() -> None:
    """Two settings for one work item's transaction (PostgreSQL).

    - Foreign keys checked when each statement ends, not all at COMMIT: the same checks, but run
      by the chunk loader while the next chunk is mapped, instead of by a COMMIT that nothing
      overlaps. (A violation would surface as the load refusing that chunk, record by record.)
    - synchronous_commit off. Safe here, unlike for the business's own writes: an item's rows and
      its "done" mark commit together, so commits a server crash lost would just be items pending
      again, redone by the next run like the items in flight. Nothing is reported done that is not
      also loaded; the run no longer waits for a WAL flush at each of its hundreds of commits.
    """
    connection = connections[router.db_for_write(WorkItem)]
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SET CONSTRAINTS ALL IMMEDIATE; SET LOCAL synchronous_commit TO OFF")


@contextmanager
def collector_for_batch_work():
    """Python's cyclic garbage collector set for throughput while a migration works.

    A work item makes hundreds of thousands of short-lived objects (rows, mapped values, COPY rows)
    and no lasting cycles: reference counting frees them. By default the collector still runs every
    700 allocations and, every so often, walks every object the process holds, all of Django's
    included. Freezing what exists at the start takes that out of the collector's sight, and a
    higher first threshold makes collections rare. Measured at 100,000 legacy orders: 15–20% less
    CPU for the same work, the same peak memory. Reconciliation pauses the collector per span for
    the same reason.
    """
    thresholds = gc.get_threshold()
    freezing = gc.get_freeze_count() == 0  # a caller that froze already keeps its own
    if freezing:
        gc.freeze()
    gc.set_threshold(100_000, 50, 1000)
    try:
        yield
    finally:
        gc.set_threshold(*thresholds)
        if freezing:
            gc.unfreeze()


def operator_name() -> str:
    """Who started a command, for the record: the OS account (cron and make do not always set $USER)."""
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return f"uid {os.getuid()}"


def worker_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def _bump_cache() -> None:
    """Tell the read cache that the migration changed data (no stale read after a migration batch)."""
    try:
        from oms.cache import bump_all
    except ImportError:
        return
    bump_all()


class MigrationRunner:
    def __init__(self, options: RunOptions, *, started_by: str = "", restart: bool = False, pause: float = 0.0):
        self.options = options
        self.pause = pause  # seconds between batches, to go easy on a legacy server in business hours
        self.started_by = started_by or operator_name()
        self.restart = restart
        self.source = LegacySource(options.legacy_alias)
        self.loader = Loader()
        self.tz = ZoneInfo(settings.LEGACY_TIME_ZONE)
        self.dry_totals: dict[str, ItemResult] = defaultdict(ItemResult)
        self.dry_issues: list[tuple[str, Finding, dict]] = []

    # -- 1. find or start ----------------------------------------------------------------------
    def start_or_resume(self) -> tuple[MigrationRun, bool]:
        fingerprint = self.options.fingerprint(self.source.identity())
        unfinished = MigrationRun.objects.filter(fingerprint=fingerprint).exclude(status=RunStatus.SUCCEEDED)
        run = None if (self.restart or self.options.dry_run) else unfinished.order_by("-id").first()
        if run is not None:
            MigrationRun.objects.filter(pk=run.pk).update(status=RunStatus.RUNNING, message="")
            run.refresh_from_db()
            return run, True
        run = MigrationRun.objects.create(
            started_by=self.started_by, options=self.options.as_json(), fingerprint=fingerprint,
            legacy_vendor=self.source.vendor, dry_run=self.options.dry_run, status=RunStatus.PLANNING,
        )
        return run, False

    # -- 2. plan -------------------------------------------------------------------------------
    def plan(self, run: MigrationRun, on_progress: Callable[[str, int], None] | None = None) -> None:
        for entity in [e for e in ENTITY_ORDER if e in self.options.entities]:
            with transaction.atomic():
                locked = MigrationRun.objects.select_for_update().get(pk=run.pk)
                if entity in locked.planned_entities:
                    continue  # another process planned it while we waited for the lock
                self._plan_entity(run, entity, on_progress)
                if not self.options.dry_run:
                    set_aside.set_aside_for_first_load(run, entity, drop=self._may_set_aside_indexes)
                locked.planned_entities = [*locked.planned_entities, entity]
                locked.status = RunStatus.RUNNING
                locked.save(update_fields=["planned_entities", "status"])
        run.refresh_from_db()

    @property
    def _may_set_aside_indexes(self) -> bool:
        return not (self.options.keys or self.options.keep_indexes)

    def _plan_entity(self, run: MigrationRun, entity: str, on_progress) -> None:
        if self.options.keys:
            # One item per chosen key, read inclusively: [key, key].
            WorkItem.objects.bulk_create([
                WorkItem(run=run, entity=entity, position=n, scope="keys", after_key=key, last_key=key, planned=1)
                for n, key in enumerate(self.options.keys, start=1)])
            return
        table = STEPS[entity].table
        items, after, count, position, planned = [], "", 0, 0, 0
        last = None
        for key in self.source.iter_keys(table, self.options.since):
            count += 1
            planned += 1
            last = key
            if count == self.options.batch_size:
                position += 1
                items.append(WorkItem(run=run, entity=entity, position=position, after_key=after,
                                      last_key=str(key), planned=count))
                after, count = str(key), 0
                if len(items) >= 1000:
                    WorkItem.objects.bulk_create(items)
                    items = []
            if on_progress and planned % 100000 == 0:
                on_progress(entity, planned)
        if count:
            position += 1
            items.append(WorkItem(run=run, entity=entity, position=position, after_key=after, last_key=str(last),
                                  planned=count))
        if entity != Entity.CUSTOMERS and self.options.since is None:
            items.append(WorkItem(run=run, entity=entity, position=position + 1, scope="orphans"))
        WorkItem.objects.bulk_create(items)

    # -- 3. work -------------------------------------------------------------------------------
    def _phase(self, run: MigrationRun) -> str | None:
        pending = set(WorkItem.objects.filter(run=run, status=WorkStatus.PENDING)
                      .values_list("entity", flat=True).distinct())
        return next((e for e in ENTITY_ORDER if e in pending), None)

    def work(self, run: MigrationRun, *, stop_after: int | None = None) -> int:
        """Claim and process items until none is pending. Returns how many this worker did."""
        with collector_for_batch_work():
            if self.options.dry_run:
                return self._work_dry(run)
            return self._work(run, stop_after)

    def _work(self, run: MigrationRun, stop_after: int | None) -> int:
        done, me, last_phase = 0, worker_name(), None
        while stop_after is None or done < stop_after:
            phase = self._phase(run)
            if phase != last_phase:
                # An entity may just have finished: build what it set aside while the others load.
                self.rebuild_set_aside(run)
                last_phase = phase
            if phase is None:
                return done
            if not self._claim_and_process(run, phase, me):
                time.sleep(0.2)  # everything left in this phase is in another worker's hands
                continue
            done += 1
            if self.pause:
                time.sleep(self.pause)
        return done

    def _claim_and_process(self, run: MigrationRun, entity: str, me: str) -> bool:
        started = time.monotonic()
        with transaction.atomic():
            _tune_item_transaction()
            item = (WorkItem.objects.select_for_update(skip_locked=True)
                    .filter(run=run, entity=entity, status=WorkStatus.PENDING).order_by("position").first())
            if item is None:
                return False
            result = self._process(item)
            for name in COUNTERS:
                setattr(item, name, getattr(result, name))
            item.status, item.worker, item.finished_at = WorkStatus.DONE, me, timezone.now()
            item.seconds = time.monotonic() - started
            item.save()
            transaction.on_commit(_bump_cache)
        return True

    def _process(self, item: WorkItem) -> ItemResult:
        step = STEPS[item.entity](self.source, self.loader, self.tz, self.options.since)
        result = step.process(item)
        if not self.options.dry_run:
            save_issues(item.run_id, result.issues)
        return result

    def _work_dry(self, run: MigrationRun) -> int:
        """A dry run does everything in transactions that are rolled back; only its figures remain."""
        done = 0
        for entity in ENTITY_ORDER:
            for item in WorkItem.objects.filter(run=run, entity=entity).order_by("position"):
                with transaction.atomic():
                    result = self._process(item)
                    transaction.set_rollback(True)
                total = self.dry_totals[entity]
                for name in COUNTERS:
                    setattr(total, name, getattr(total, name) + getattr(result, name))
                self.dry_issues.extend(result.issues)
                done += 1
        return done

    def rebuild_set_aside(self, run: MigrationRun) -> int:
        """Build again the indexes and foreign keys set aside for entities that are fully loaded."""
        return 0 if self.options.dry_run else set_aside.rebuild_ready(run)

    # -- 4. finish -----------------------------------------------------------------------------
    def finish(self, run: MigrationRun, seconds: float, error: str = "") -> MigrationRun:
        with transaction.atomic():
            run = MigrationRun.objects.select_for_update().get(pk=run.pk)
            run.seconds += seconds
            if error:
                run.status, run.message = RunStatus.FAILED, error
            elif self.options.dry_run:
                run.summary = {e: {n: getattr(r, n) for n in COUNTERS} for e, r in self.dry_totals.items()}
                run.status, run.finished_at = RunStatus.SUCCEEDED, timezone.now()
                run.message = "Dry run: nothing was written."
            elif not (WorkItem.objects.filter(run=run, status=WorkStatus.PENDING).exists()
                      or set_aside.has_pending(run)):
                run.summary = summarize(run)
                run.status, run.finished_at = RunStatus.SUCCEEDED, timezone.now()
            else:
                run.summary = summarize(run)
            run.save()
        return run


def save_issues(run_id: int, issues: Sequence[tuple[str, Finding, dict]]) -> None:
    """Write a batch's issues, (kind, finding, legacy values as read): COPY on PostgreSQL,
    bulk_create elsewhere.

    bulk_create on PostgreSQL sends each column as an array whose text elements psycopg escapes
    one by one in Python; for the issues of a dirty batch (thousands, with their raw values) that
    cost more than loading the batch's orders. COPY writes the same field values, the raw ones as
    JSON text made once per record (a record with three warnings has one set of raw values).
    """
    if not issues:
        return
    connection = connections[router.db_for_write(MigrationIssue)]
    now = timezone.now()
    if connection.vendor != "postgresql":
        MigrationIssue.objects.bulk_create([
            MigrationIssue(run_id=run_id, entity=f.entity, legacy_key=f.legacy_key, kind=kind, rule=str(f.rule),
                           message=f.message, raw=json_safe(raw), created_at=now)
            for kind, f, raw in issues], batch_size=1000)
        return
    names = ("run", "entity", "legacy_key", "kind", "rule", "message", "raw", "created_at")
    columns = ", ".join(connection.ops.quote_name(MigrationIssue._meta.get_field(n).column) for n in names)
    texts: dict[int, str] = {}  # id(raw) → its JSON: the dicts stay alive for this call
    with connection.cursor() as cursor, cursor.cursor.copy(
            f"COPY {MigrationIssue._meta.db_table} ({columns}) FROM STDIN") as copy:
        for kind, f, raw in issues:
            text = texts.get(id(raw))
            if text is None:
                text = texts[id(raw)] = raw_json(raw)
            copy.write_row((run_id, f.entity, f.legacy_key, str(kind), str(f.rule), f.message, text, now))


def summarize(run: MigrationRun) -> dict:
    """Per-entity figures, summed from the work items (which were committed with their data)."""
    rows = (WorkItem.objects.filter(run=run).values("entity")
            .annotate(**{name: Sum(name) for name in (*COUNTERS, "seconds", "planned")}))
    by_entity = {row["entity"]: {k: v for k, v in row.items() if k != "entity"} for row in rows}
    return {entity: by_entity[entity] for entity in ENTITY_ORDER if entity in by_entity}


def progress_figures(run: MigrationRun) -> tuple[int, int, str | None]:
    """(records done, records planned, entity in progress) for the progress display."""
    rows = WorkItem.objects.filter(run=run).values("entity", "status").annotate(planned=Sum("planned"))
    done = sum(r["planned"] for r in rows if r["status"] == WorkStatus.DONE)
    total = sum(r["planned"] for r in rows)
    pending = {r["entity"] for r in rows if r["status"] == WorkStatus.PENDING}
    current = next((e for e in ENTITY_ORDER if e in pending), None)
    if current is None and set_aside.has_pending(run):
        current = "indexes"  # the load is done; what it set aside is being built again
    return done, total, current


def run_report(run: MigrationRun, *, dry_issues: Sequence[tuple[str, Finding, dict]] = ()) -> dict:
    """The finished run for machines (--json): figures, and every rejection and exclusion."""
    total_read = sum(e.get("read", 0) or 0 for e in run.summary.values())
    report = {
        "run": run.pk, "status": run.status, "dry_run": run.dry_run, "options": run.options,
        "started_at": run.started_at.isoformat(), "finished_at": run.finished_at.isoformat() if run.finished_at else None,
        "seconds": round(run.seconds, 3), "rows_per_second": round(total_read / run.seconds, 1) if run.seconds else None,
        "entities": run.summary, "message": run.message,
    }
    if not run.dry_run:
        report["set_aside"] = set_aside.summary_for(run)
    if run.dry_run:
        issues = [{"entity": f.entity, "legacy_key": f.legacy_key, "kind": kind, "rule": str(f.rule),
                   "message": f.message} for kind, f, _ in dry_issues if kind != IssueKind.WARNING]
        report["rejections"] = [i for i in issues if i["kind"] == IssueKind.REJECTION]
        report["exclusions"] = [i for i in issues if i["kind"] == IssueKind.EXCLUSION]
    else:
        # Read when written, not now: a full run has hundreds of thousands of them.
        for name, kind in (("rejections", IssueKind.REJECTION), ("exclusions", IssueKind.EXCLUSION)):
            report[name] = IssueRows(run.issues.filter(kind=kind)
                                     .values("entity", "legacy_key", "kind", "rule", "message").order_by("entity", "id"))
    return report


class IssueRows(Sequence):
    """A run's issues of one kind as a sequence of dicts that stays in the database until read:
    `len()` counts, a slice fetches that slice, iterating streams them in chunks."""

    def __init__(self, queryset):
        self.queryset = queryset
        self._count: int | None = None

    def __len__(self) -> int:
        if self._count is None:
            self._count = self.queryset.count()
        return self._count

    def __bool__(self) -> bool:
        return len(self) > 0

    def __getitem__(self, index):
        if isinstance(index, slice):
            return list(self.queryset[index])
        return self.queryset[index]

    def __iter__(self):
        return self.queryset.iterator(chunk_size=2000)


def write_report_json(report: dict, stream) -> None:
    """Write run_report() as JSON, the issue lists one row at a time (memory stays bounded).

    Every piece written ends with a newline, so a Django OutputWrapper adds none of its own.
    """
    stream.write("{\n")
    keys = list(report)
    for n, key in enumerate(keys):
        comma = "," if n < len(keys) - 1 else ""
        value = report[key]
        if not isinstance(value, IssueRows):
            text = json.dumps(value, indent=2, default=str).replace("\n", "\n  ")
            stream.write(f"  {json.dumps(key)}: {text}{comma}\n")
            continue
        stream.write(f"  {json.dumps(key)}: [\n")
        previous = None
        for row in value:
            if previous is not None:
                stream.write(f"    {previous},\n")
            previous = json.dumps(row, default=str)
        if previous is not None:
            stream.write(f"    {previous}\n")
        stream.write(f"  ]{comma}\n")
    stream.write("}\n")
