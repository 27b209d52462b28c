"""Shadow reads: the API's detail reads served from, or compared with, the legacy database.

The original design's dual mode. A setting per resource (READ_SOURCE_CUSTOMERS, _ORDERS,
_INVOICES) says where `GET /api/v1/<resource>/{id}/` is answered from:

- `modern`: the modern store (through the cache), as always.
- `legacy`: the rollback switch. The URL carries the modern id, so the record's legacy key is
  looked up in the modern store; that one legacy record is read and mapped by the migration's
  own Step (runner.STEPS: "what the legacy value means today") and answered by the modern
  serializer, so the JSON has exactly the modern shape. What legacy cannot know is filled as
  follows: `id` is the id asked for; related records (`customer`, `order`) are the modern ids
  of the legacy parents, found by their legacy keys, or null when the parent is not in the
  modern store; `updated_at` is the legacy LAST_UPD_DT (null for invoices, INVHDR has none);
  `status_before_hold` is empty and `available_actions` follow from the legacy status; an
  invoice's `payments` is empty (PAID_AMT is in `paid_amount`). A record made in the modern
  system, or whose legacy record is gone or no longer carried over by the mapping's rules, has
  no legacy representation: 404. Legacy answers are never cached.
- `shadow`: served from modern (the primary), exactly as in `modern` — cached answers and the
  fast path included. After the answer is computed, a sample of the successful detail reads
  (SHADOW_SAMPLE_RATE) is handed to background comparers, which read the legacy side and
  compare it with what the client was served. The response never waits for them:

  1. The hand-over is a put into a bounded queue without waiting; when the queue is full the
     comparison is dropped (and counted). The request thread touches nothing but memory.
  2. A comparer reads the legacy record under a time budget (SHADOW_TIMEOUT_MS): a watchdog
     interrupts the legacy query when the driver allows it (SQLite, PostgreSQL, Oracle), and a
     comparison that overruns is counted as a timeout and its result discarded.
  3. Both representations are compared field by field with reconciliation's own `same` /
     `differences` ('' and NULL alike, decimals by value), lines by line number. Fields legacy
     cannot know (above) are not compared.
  4. A disagreement is stored as a ShadowMismatch with both representations, the differing
     fields and the request path; the same disagreement seen again counts an occurrence.
  5. Every outcome is counted per resource (sampled, matched, mismatched, no_legacy_record,
     timeout, error, dropped): in process memory first, then added to the shared cache by the
     comparers. Any exception is swallowed there, counted and logged (at most once a minute).

`manage.py shadow_compare` replays a sample of reads offline through the same comparison.
Lists, nested lists and event feeds are always served from modern: their membership, filters
and paging come from the modern store's indexes. Writes always go to modern, through the services.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import queue
import random
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any
from zoneinfo import ZoneInfo

from django.conf import settings
from django.core.cache import caches
from django.db import IntegrityError, connections, transaction
from django.db.models import F, Max, Min
from django.utils import timezone
from rest_framework.renderers import JSONRenderer

from legacy_migration.load import Loader
from legacy_migration.mapping import Outcome
from legacy_migration.models import Entity, ShadowMismatch, ShadowOrigin, ShadowResource
from legacy_migration.reconcile import differences
from legacy_migration.runner import STEPS, LegacySource, LegacyUnavailable

log = logging.getLogger("oms.shadow")

MODERN, LEGACY, SHADOW = "modern", "legacy", "shadow"
READ_SOURCES = (MODERN, LEGACY, SHADOW)
LEGACY_ALIAS = "legacy"
#: What can become of a sampled read, in the order the admin shows them.
OUTCOMES = ("sampled", "matched", "mismatched", "no_legacy_record", "timeout", "error", "dropped")


class NoLegacyRecord(Exception):
    """The record has no legacy representation: made in modern, gone from legacy, or not carried over."""

    def __init__(self, message: str, reason: str):
        super().__init__(message)
        self.reason = reason  # short, for a mismatch's fields: "made_in_modern", "gone", "rejected:unknown_status"


# ---------------------------------------------------------------------------------------------
# The resources, as the API shows them
# ---------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class ResourceSpec:
    name: str
    entity: str
    label: str
    #: Representation fields both sides know, compared. Lines are compared by line number.
    fields: tuple[str, ...]
    line_fields: tuple[str, ...] = ()
    #: Representation fields that name a parent by its modern id: (field, mapped legacy key, parent model).
    parents: tuple[tuple[str, str, str], ...] = ()
    #: Reverse relations the serializer lists that have no legacy rows (empty in a legacy answer).
    empty_relations: tuple[str, ...] = ()

    @property
    def model(self) -> type:
        return _models()[self.name]

    @property
    def line_model(self) -> type | None:
        return _models().get(f"{self.name}:lines")

    def serializer(self):
        from invoices.api.serializers import InvoiceSerializer
        from orders.api.serializers import CustomerSerializer, OrderSerializer

        return {"customers": CustomerSerializer, "orders": OrderSerializer, "invoices": InvoiceSerializer}[self.name]

    def queryset(self):
        if self.name == ShadowResource.INVOICES:
            return self.model.objects.prefetch_related("lines", "payments")
        if self.name == ShadowResource.ORDERS:
            return self.model.objects.prefetch_related("lines")
        return self.model.objects.all()


def _models() -> dict[str, type]:
    from invoices.models import Invoice, InvoiceLine
    from orders.models import Customer, Order, OrderLine

    return {"customers": Customer, "orders": Order, "orders:lines": OrderLine, "invoices": Invoice,
            "invoices:lines": InvoiceLine}


RESOURCES: dict[str, ResourceSpec] = {
    ShadowResource.CUSTOMERS: ResourceSpec(
        ShadowResource.CUSTOMERS, Entity.CUSTOMERS, "Customer",
        ("code", "legacy_id", "name", "email", "phone", "address_line1", "address_line2", "city", "state",
         "postal_code", "country", "status", "credit_limit", "created_at")),
    ShadowResource.ORDERS: ResourceSpec(
        ShadowResource.ORDERS, Entity.ORDERS, "Order",
        ("number", "legacy_id", "customer", "status", "currency", "ordered_at", "requested_ship_at", "subtotal",
         "discount", "tax", "freight", "total", "ship_name", "ship_address_line1", "ship_address_line2", "ship_city",
         "ship_state", "ship_postal_code", "ship_country", "po_number", "notes", "created_at"),
        ("sku", "description", "quantity", "unit_price", "discount_percent", "line_total"),
        parents=(("customer", "customer_legacy_id", "customers"),)),
    ShadowResource.INVOICES: ResourceSpec(
        ShadowResource.INVOICES, Entity.INVOICES, "Invoice",
        ("number", "kind", "status", "customer", "order", "legacy_id", "legacy_order_number", "currency",
         "invoiced_at", "due_at", "discount", "net", "tax", "total", "paid_amount", "credited_amount", "paid_at",
         "created_at"),
        ("sku", "description", "quantity", "unit_price", "amount"),
        parents=(("customer", "customer_legacy_id", "customers"), ("order", "order_legacy_id", "orders")),
        empty_relations=("payments",)),
}


def read_source(resource: str) -> str:
    """Where detail reads of this resource come from now (the READ_SOURCE_<RESOURCE> setting)."""
    source = getattr(settings, f"READ_SOURCE_{resource.upper()}", MODERN)
    if source not in READ_SOURCES:
        from django.core.exceptions import ImproperlyConfigured

        raise ImproperlyConfigured(f"READ_SOURCE_{resource.upper()} must be one of {', '.join(READ_SOURCES)}")
    return source


def _as_json(data) -> dict:
    """Plain JSON values, as a client receives them (decimals and times are strings already)."""
    return json.loads(JSONRenderer().render(data))


# ---------------------------------------------------------------------------------------------
# The two representations
# ---------------------------------------------------------------------------------------------
def legacy_record(spec: ResourceSpec, legacy_key, *, alias: str = LEGACY_ALIAS) -> Outcome:
    """The legacy record of this key, read and mapped by the migration's own Step."""
    if alias not in settings.DATABASES:
        raise LegacyUnavailable(f"no legacy database is configured as {alias!r} (LEGACY_DATABASE_URL)")
    step = STEPS[spec.entity](LegacySource(alias), Loader(), ZoneInfo(settings.LEGACY_TIME_ZONE), None)
    key = str(legacy_key)
    for outcome, _raw in step.read(key, key, inclusive=True):
        if outcome.legacy_key != key:
            continue
        finding = outcome.exclusion or outcome.rejection
        if finding is not None:
            how = "excluded" if outcome.exclusion else "rejected"
            raise NoLegacyRecord(f"{spec.label} {key} is {how} by the migration's rules ({finding.rule}): "
                                 f"{finding.message}", f"{how}:{finding.rule}")
        return outcome
    raise NoLegacyRecord(f"{spec.label} {key} is no longer in the legacy database.", "gone")


def _modern_ids(model_name: str, legacy_keys: Sequence) -> dict:
    keys = [k for k in legacy_keys if k is not None]
    if not keys:
        return {}
    model = _models()[model_name]
    return dict(model.objects.filter(legacy_id__in=keys).values_list("legacy_id", "id"))


def legacy_representation(spec: ResourceSpec, outcome: Outcome, *, record_id: int) -> dict:
    """The mapped legacy record in the API's JSON shape, under the modern id `record_id`."""
    values = dict(outcome.values)
    related = {}
    for field_name, key_name, parent in spec.parents:
        key = values.pop(key_name, None)
        related[f"{field_name}_id"] = _modern_ids(parent, [key]).get(key)
    instance = spec.model(id=record_id, **values, **related)
    # updated_at is when the modern row was last written; the legacy side's nearest is LAST_UPD_DT.
    instance.updated_at = values.get("legacy_updated_at")
    cache = {name: [] for name in spec.empty_relations}
    if spec.line_model is not None:
        cache["lines"] = [spec.line_model(**line) for line in outcome.lines]
    # The serializer reads related rows through the prefetch cache: an unsaved instance has none.
    instance._prefetched_objects_cache = cache
    return _as_json(spec.serializer()(instance).data)


def modern_representation(spec: ResourceSpec, record_id: int) -> dict:
    """The modern record as the API serves it (uncached)."""
    return _as_json(spec.serializer()(spec.queryset().get(pk=record_id)).data)


def legacy_detail(resource: str, record_id: int, *, alias: str = LEGACY_ALIAS) -> dict:
    """`legacy` mode's answer to GET /<resource>/{record_id}/."""
    spec = RESOURCES[resource]
    found = list(spec.model.objects.filter(pk=record_id).values_list("legacy_id", flat=True)[:1])
    if not found:
        raise NoLegacyRecord(f"No {spec.label.lower()} {record_id}.", "not_found")
    if found[0] is None:
        raise NoLegacyRecord(f"{spec.label} {record_id} was made in the modern system: it has no legacy record "
                             "to serve while reads come from legacy.", "made_in_modern")
    return legacy_representation(spec, legacy_record(spec, found[0], alias=alias), record_id=record_id)


def compare(spec: ResourceSpec, legacy: dict, modern: dict) -> dict[str, dict[str, str | None]]:
    """field → {legacy, modern} for what differs, with reconciliation's normalisation; lines by number."""
    found = differences(legacy, modern, spec.fields)
    if spec.line_fields:
        legacy_lines = {line["line_number"]: line for line in legacy.get("lines") or []}
        modern_lines = {line["line_number"]: line for line in modern.get("lines") or []}
        for number in sorted(legacy_lines.keys() | modern_lines.keys()):
            one, other = legacy_lines.get(number), modern_lines.get(number)
            if one is None or other is None:
                found[f"lines[{number}]"] = {"legacy": "present" if one else None,
                                             "modern": "present" if other else None}
                continue
            for name, diff in differences(one, other, spec.line_fields).items():
                found[f"lines[{number}].{name}"] = diff
    return found


# ---------------------------------------------------------------------------------------------
# Mismatches
# ---------------------------------------------------------------------------------------------
def record_mismatch(*, spec: ResourceSpec, record_id: int, legacy_key: str, fields: dict, legacy: dict | None,
                    modern: dict | None, origin: str, path: str) -> ShadowMismatch:
    """Store a disagreement, or count one more occurrence of the same one (same record, same differences)."""
    digest = hashlib.sha256(json.dumps(fields, sort_keys=True).encode()).hexdigest()
    identity = {"resource": spec.name, "legacy_key": str(legacy_key), "digest": digest}
    latest = {"record_id": record_id, "legacy": legacy, "modern": modern, "origin": origin, "path": path[:500]}
    for _attempt in range(2):
        now = timezone.now()
        if ShadowMismatch.objects.filter(**identity).update(occurrences=F("occurrences") + 1, last_seen_at=now,
                                                            **latest):
            return ShadowMismatch.objects.get(**identity)
        try:
            with transaction.atomic():
                return ShadowMismatch.objects.create(**identity, **latest, fields=fields, first_seen_at=now,
                                                     last_seen_at=now)
        except IntegrityError:
            continue  # another comparer recorded the same mismatch meanwhile: count on it instead
    return ShadowMismatch.objects.get(**identity)


@dataclass
class Comparison:
    outcome: str  # matched, mismatched
    mismatch: ShadowMismatch | None = None


def compare_and_record(spec: ResourceSpec, *, record_id: int, modern: dict, origin: str, path: str,
                       alias: str = LEGACY_ALIAS, after_legacy_read: Callable[[], Any] | None = None) -> Comparison:
    """Compare a modern representation with the legacy record behind it; record what differs.

    A modern record whose legacy record is gone, or no longer carried over by the rules, is a
    mismatch too (field `record`). Raises LegacyUnavailable (and whatever the legacy driver
    raises) for the caller to count; `after_legacy_read` may raise to abandon the comparison.
    """
    legacy_key = modern["legacy_id"]
    try:
        outcome, missing = legacy_record(spec, legacy_key, alias=alias), None
    except NoLegacyRecord as exc:
        outcome, missing = None, exc
    if after_legacy_read is not None:
        after_legacy_read()
    if missing is not None:
        fields = {"record": {"legacy": missing.reason, "modern": "present"}}
        mismatch = record_mismatch(spec=spec, record_id=record_id, legacy_key=legacy_key, fields=fields,
                                   legacy=None, modern=modern, origin=origin, path=path)
        return Comparison("mismatched", mismatch)
    legacy = legacy_representation(spec, outcome, record_id=record_id)
    fields = compare(spec, legacy, modern)
    if not fields:
        return Comparison("matched")
    mismatch = record_mismatch(spec=spec, record_id=record_id, legacy_key=legacy_key, fields=fields, legacy=legacy,
                               modern=modern, origin=origin, path=path)
    return Comparison("mismatched", mismatch)


# ---------------------------------------------------------------------------------------------
# Counters
# ---------------------------------------------------------------------------------------------
class Counters:
    """Outcomes of shadow reads per resource.

    Counted in process memory (the request thread must not wait on Redis, however slow it is),
    then added to the shared cache by the comparers after each comparison, where every process's
    counts meet. A count the cache refuses stays pending for the next flush.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._pending: Counter = Counter()

    @staticmethod
    def _key(resource: str, outcome: str) -> str:
        return f"shadow:{resource}:{outcome}"

    def add(self, resource: str, outcome: str, n: int = 1) -> None:
        with self._lock:
            self._pending[(resource, outcome)] += n

    def flush(self) -> None:
        with self._lock:
            pending, self._pending = self._pending, Counter()
        cache = caches["default"]
        refused: Counter = Counter()
        for (resource, outcome), n in pending.items():
            key = self._key(resource, outcome)
            try:
                cache.add(key, 0, timeout=None)
                if cache.incr(key, n) is None:  # django-redis ignoring an outage answers None
                    refused[(resource, outcome)] += n
            except Exception:  # noqa: BLE001 - metrics must never break a comparer
                refused[(resource, outcome)] += n
        if refused:
            with self._lock:
                self._pending.update(refused)

    def totals(self) -> dict[str, dict[str, int]]:
        """Per resource: every outcome's count (shared counts plus this process's unflushed ones)."""
        keys = {self._key(r, o): (r, o) for r in RESOURCES for o in OUTCOMES}
        try:
            shared = caches["default"].get_many(list(keys))
        except Exception:  # noqa: BLE001 - an unreachable cache shows this process's counts only
            shared = {}
        with self._lock:
            pending = dict(self._pending)
        totals = {r: dict.fromkeys(OUTCOMES, 0) for r in RESOURCES}
        for key, (resource, outcome) in keys.items():
            totals[resource][outcome] = int(shared.get(key) or 0) + pending.get((resource, outcome), 0)
        return totals

    def reset(self) -> None:
        with self._lock:
            self._pending.clear()
        caches["default"].delete_many([self._key(r, o) for r in RESOURCES for o in OUTCOMES])


counters = Counters()


def shadow_status() -> list[dict]:
    """Per resource: its read source, the sample rate, the time budget and the outcome counts."""
    totals = counters.totals()
    return [{"resource": name, "read_source": read_source(name), "sample_rate": settings.SHADOW_SAMPLE_RATE,
             "timeout_ms": settings.SHADOW_TIMEOUT_MS, "counts": totals[name]} for name in RESOURCES]


# ---------------------------------------------------------------------------------------------
# Live comparisons, in the background
# ---------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class ShadowRead:
    """A detail read served from modern, waiting to be compared with legacy."""

    resource: str
    record_id: int
    served: bytes | dict  # the body as served (bytes), or the data the browsable API rendered
    path: str


def _interrupt(wrapper) -> None:
    """Stop the query running on this connection (called from the watchdog's thread)."""
    raw = getattr(wrapper, "connection", None)
    if raw is None:
        return
    try:
        if wrapper.vendor == "sqlite":
            raw.interrupt()  # documented as safe from another thread
        elif wrapper.vendor in ("postgresql", "oracle"):
            raw.cancel()  # psycopg and python-oracledb cancel the running statement, thread-safely
        # pyodbc and PyMySQL cannot cancel from another thread; the overrun is still counted.
    except Exception:  # noqa: BLE001 - the watchdog itself must never fail loudly
        log.debug("could not interrupt the legacy query", exc_info=True)


@contextmanager
def time_budget(alias: str, seconds: float) -> Iterator[None]:
    """Interrupt the legacy query of this thread if it is still running after `seconds`."""
    timer = threading.Timer(seconds, _interrupt, args=(connections[alias],))
    timer.daemon = True
    timer.start()
    try:
        yield
    finally:
        timer.cancel()


_last_logged: dict[str, float] = {}


def _log_failure(read: ShadowRead, outcome: str, exc: BaseException) -> None:
    """At most one log line a minute per resource and outcome: a dead legacy side must not flood the log."""
    key = f"{read.resource}:{outcome}"
    now = time.monotonic()
    if now - _last_logged.get(key, -1e9) >= 60:
        _last_logged[key] = now
        log.warning("shadow read of %s %s: %s (%s: %s); counted, further ones logged at most once a minute",
                    read.resource, read.record_id, outcome, exc.__class__.__name__, exc)


def compare_served(read: ShadowRead, *, alias: str = LEGACY_ALIAS) -> str:
    """Compare one served read with legacy within the time budget; returns the outcome it counted."""
    spec = RESOURCES[read.resource]
    budget = settings.SHADOW_TIMEOUT_MS / 1000
    started = time.monotonic()
    modern = json.loads(read.served) if isinstance(read.served, (bytes, str)) else _as_json(read.served)
    if modern.get("legacy_id") is None:
        outcome = "no_legacy_record"  # made in modern: nothing to compare it with
    else:
        timed_out = [False]

        def within_budget() -> None:
            # The legacy side has been read: an answer that came too late is not used.
            if time.monotonic() - started > budget:
                timed_out[0] = True
                raise TimeoutError(f"the legacy read took longer than {settings.SHADOW_TIMEOUT_MS} ms")

        try:
            with time_budget(alias, budget):
                result = compare_and_record(spec, record_id=read.record_id, modern=modern, origin=ShadowOrigin.LIVE,
                                            path=read.path, alias=alias,
                                            after_legacy_read=within_budget)
            outcome = result.outcome
        except Exception as exc:  # noqa: BLE001 - a shadow read never fails anything but itself
            outcome = "timeout" if timed_out[0] or time.monotonic() - started > budget else "error"
            _log_failure(read, outcome, exc)
    counters.add(read.resource, outcome)
    return outcome


class Comparer:
    """Background threads that compare sampled reads; a bounded queue between them and the requests."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._queue: queue.Queue | None = None
        self._threads: list[threading.Thread] = []
        self._pid: int | None = None

    def _started(self) -> queue.Queue:
        pid = os.getpid()
        if self._queue is None or self._pid != pid:  # not started yet, or forked since
            with self._lock:
                if self._queue is None or self._pid != pid:
                    work: queue.Queue = queue.Queue(maxsize=settings.SHADOW_QUEUE_SIZE)
                    self._threads = [threading.Thread(target=self._work, args=(work,), daemon=True,
                                                      name=f"shadow-comparer-{n}")
                                     for n in range(settings.SHADOW_WORKERS)]
                    for thread in self._threads:
                        thread.start()
                    self._queue, self._pid = work, pid
        return self._queue

    def offer(self, read: ShadowRead) -> bool:
        """Queue a comparison without waiting; False (and counted as dropped) when the queue is full."""
        try:
            self._started().put_nowait(read)
        except queue.Full:
            counters.add(read.resource, "dropped")
            return False
        counters.add(read.resource, "sampled")
        return True

    @staticmethod
    def _work(work: queue.Queue) -> None:
        while True:
            read = work.get()
            try:
                if read is None:
                    return
                compare_served(read)
            except Exception:  # noqa: BLE001 - compare_served counts its failures; this is the last net
                log.exception("shadow comparer failed")
            finally:
                # This thread's connections are not closed by any request cycle: close them after
                # every comparison, so none is left open (or holding a snapshot) between them.
                connections.close_all()
                counters.flush()
                work.task_done()

    def drain(self, timeout: float = 10.0) -> bool:
        """Wait until every queued comparison is done (tests, shutdown). False if time ran out."""
        work = self._queue
        if work is None:
            return True
        deadline = time.monotonic() + timeout
        with work.all_tasks_done:
            while work.unfinished_tasks:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                work.all_tasks_done.wait(remaining)
        return True

    def stop(self, timeout: float = 10.0) -> None:
        """Finish what is queued, then stop the threads; the next offer starts new ones (with the settings then)."""
        with self._lock:
            work, threads = self._queue, self._threads
            self._queue, self._threads = None, []
        if work is None:
            return
        for _ in threads:
            work.put(None, timeout=timeout)
        for thread in threads:
            thread.join(timeout)


comparer = Comparer()


def sampled() -> bool:
    """Whether to compare this read (SHADOW_SAMPLE_RATE: 0 never, 1 always)."""
    rate = settings.SHADOW_SAMPLE_RATE
    return rate > 0 and random.random() < rate


def offer_served(*, resource: str, record_id: int, served: bytes | dict, path: str) -> bool:
    """Hand a served (and sampled) detail read over for comparison. Never waits, never raises."""
    try:
        return comparer.offer(ShadowRead(resource=resource, record_id=record_id, served=served, path=path))
    except Exception:  # noqa: BLE001 - the response is already made; nothing here may break it
        log.exception("could not hand a shadow read over")
        counters.add(resource, "error")
        return False


# ---------------------------------------------------------------------------------------------
# Offline replay (manage.py shadow_compare)
# ---------------------------------------------------------------------------------------------
def sample_ids(spec: ResourceSpec, size: int, rng: random.Random) -> list[int]:
    """About `size` migrated records, chosen by `rng` (a seed repeats the choice on the same data).

    Random points in the id range, each taken to the next migrated record: no ORDER BY random()
    over millions of rows, and a fixed seed gives the same sample again.
    """
    migrated = spec.model.objects.exclude(legacy_id=None)
    if size <= 0:
        return []
    bounds = migrated.aggregate(low=Min("id"), high=Max("id"))
    if bounds["low"] is None:
        return []
    if migrated.count() <= size:
        return list(migrated.order_by("id").values_list("id", flat=True))
    chosen: set[int] = set()
    for _attempt in range(size * 4):
        if len(chosen) >= size:
            break
        start = rng.randint(bounds["low"], bounds["high"])
        chosen.add(migrated.filter(id__gte=start).order_by("id").values_list("id", flat=True)[:1][0])
    return sorted(chosen)


@dataclass
class ReplayReport:
    seed: int
    compared: dict[str, int] = field(default_factory=dict)
    matched: dict[str, int] = field(default_factory=dict)
    mismatches: list[ShadowMismatch] = field(default_factory=list)

    def as_json(self) -> dict:
        return {"seed": self.seed, "compared": self.compared, "matched": self.matched,
                "mismatched": len(self.mismatches),
                "mismatches": [{"id": m.pk, "resource": m.resource, "record_id": m.record_id,
                                "legacy_key": m.legacy_key, "fields": m.fields, "occurrences": m.occurrences}
                               for m in self.mismatches]}


def replay(*, resources: Sequence[str], sample: int, seed: int, alias: str = LEGACY_ALIAS,
           on_record: Callable[[str], None] | None = None) -> ReplayReport:
    """Replay `sample` reads per resource: modern representation vs legacy through the mapping.

    Raises LegacyUnavailable when the legacy database fails (the caller stops).
    """
    rng = random.Random(seed)
    report = ReplayReport(seed=seed)
    for name in resources:
        spec = RESOURCES[name]
        report.compared[name] = report.matched[name] = 0
        for record_id in sample_ids(spec, sample, rng):
            modern = modern_representation(spec, record_id)
            result = compare_and_record(spec, record_id=record_id, modern=modern, origin=ShadowOrigin.OFFLINE,
                                        path=f"manage.py shadow_compare --seed {seed}", alias=alias)
            report.compared[name] += 1
            if result.mismatch is None:
                report.matched[name] += 1
            else:
                report.mismatches.append(result.mismatch)
            if on_record:
                on_record(name)
    return report
