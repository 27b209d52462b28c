"""A first load fills empty tables without their secondary indexes and foreign keys (PostgreSQL).

Why: PostgreSQL keeps every index up to date row by row, and checks every foreign key with a
query per row. For a table that starts empty it is much cheaper to build an index once, from
sorted data, and to check a foreign key once, with one join, after the rows are in: that is what
pgloader and every DBA's bulk load do. Measured on the benchmark's rows (100,000 legacy orders,
733,000 modern rows): COPY into the full schema 10–11 s; without the foreign keys and the
non-unique indexes 3–3.8 s, plus 1.5 s to build them again.

What is set aside: the non-unique indexes that back no constraint (the admin's search and sort
indexes, foreign-key column indexes) and the foreign keys of the tables an entity writes. What
stays: primary keys and every unique index and constraint, because the load's upserts and its
look-ups by legacy key need them and they enforce rules, and the check constraints.

When: only on a first load, i.e. when every table of the entity is empty as it is planned, on
PostgreSQL, and not on a dry run, a `--keys` run or with `--keep-indexes`.

Crash safety: an index's definition is saved (SetAsideIndex) in the transaction that drops it;
it is built again in a transaction that also marks it rebuilt. Killed at any moment, the next run
finds the rows still pending: the same run resumes and builds them once its entity is loaded; a
new run of the same tables (`--restart`) adopts them first.
"""

from __future__ import annotations

import time

from django.db import DatabaseError, connections, router, transaction
from django.utils import timezone

from legacy_migration.load import ENTITY_TARGETS
from legacy_migration.models import MigrationRun, SetAsideIndex, SetAsideKind, WorkItem, WorkStatus
from orders.models import Customer

_SECONDARY_INDEXES = """
    SELECT t.relname, i.relname, pg_get_indexdef(x.indexrelid)
    FROM pg_index x JOIN pg_class i ON i.oid = x.indexrelid JOIN pg_class t ON t.oid = x.indrelid
    WHERE x.indrelid = ANY(%s::regclass[]) AND NOT x.indisunique AND NOT x.indisprimary
      AND NOT EXISTS (SELECT 1 FROM pg_constraint k WHERE k.conindid = x.indexrelid)
    ORDER BY t.relname, i.relname"""
_FOREIGN_KEYS = """
    SELECT t.relname, k.conname, pg_get_constraintdef(k.oid)
    FROM pg_constraint k JOIN pg_class t ON t.oid = k.conrelid
    WHERE k.contype = 'f' AND k.conrelid = ANY(%s::regclass[])
    ORDER BY t.relname, k.conname"""
#: Memory for one index build (a sort): PostgreSQL's, not this process's.
REBUILD_MEMORY = "256MB"


class RebuildFailed(Exception):
    """An index or foreign key could not be built again (a foreign key that no longer holds, say)."""


def _connection():
    return connections[router.db_for_write(Customer)]


def tables_of(entity: str) -> list[str]:
    """The modern tables an entity's load writes (load.ENTITY_TARGETS, the one list of them)."""
    return [target.table for target in ENTITY_TARGETS[entity]]


def set_aside_for_first_load(run: MigrationRun, entity: str, *, drop: bool = True) -> None:
    """Drop the secondary indexes and foreign keys of `entity`'s tables if they are all empty.

    Call it in the transaction that plans the entity (under the run's lock, so one process of a
    shared run does it). Rows still pending from an earlier run of the same tables are adopted
    instead: their indexes are gone already. With drop=False (--keep-indexes, --keys) it only
    adopts, so that this run builds them back.
    """
    connection = _connection()
    if connection.vendor != "postgresql":
        return
    tables = tables_of(entity)
    pending = SetAsideIndex.objects.filter(table_name__in=tables, rebuilt_at__isnull=True)
    if pending.update(run=run, entity=entity) or not drop:
        return
    quote = connection.ops.quote_name
    with connection.cursor() as cursor:
        for table in tables:
            cursor.execute(f"SELECT EXISTS (SELECT 1 FROM {quote(table)})")
            if cursor.fetchone()[0]:
                return
        found = []
        cursor.execute(_SECONDARY_INDEXES, [tables])
        found += [(SetAsideKind.INDEX, table, name, definition, f"DROP INDEX {quote(name)}")
                  for table, name, definition in cursor.fetchall()]
        cursor.execute(_FOREIGN_KEYS, [tables])
        found += [(SetAsideKind.FOREIGN_KEY, table, name,
                   f"ALTER TABLE {quote(table)} ADD CONSTRAINT {quote(name)} {definition}",
                   f"ALTER TABLE {quote(table)} DROP CONSTRAINT {quote(name)}")
                  for table, name, definition in cursor.fetchall()]
        SetAsideIndex.objects.bulk_create([
            SetAsideIndex(run=run, entity=entity, table_name=table, name=name, kind=kind, definition=definition)
            for kind, table, name, definition, _ in found])
        for *_, drop_sql in found:
            cursor.execute(drop_sql)


def rebuild_ready(run: MigrationRun) -> int:
    """Build again what `run` set aside for the entities it has finished loading.

    Several workers share the list (SKIP LOCKED), so two processes build two indexes at once.
    Returns how many this process built. Raises RebuildFailed, leaving the row pending.
    """
    unfinished = WorkItem.objects.filter(run=run, status=WorkStatus.PENDING).values("entity")
    return _rebuild(SetAsideIndex.objects.filter(run=run).exclude(entity__in=unfinished))


def rebuild_all() -> int:
    """Build again everything still set aside, whatever state its run is in: for an operator who
    gives up on an unfinished first load (`migrate_legacy --rebuild-indexes`)."""
    return _rebuild(SetAsideIndex.objects.all())


def _rebuild(candidates) -> int:
    """One index per transaction: the build and its "rebuilt" mark commit together."""
    built = 0
    connection = _connection()
    while True:
        with transaction.atomic(using=connection.alias):
            row = (candidates.select_for_update(skip_locked=True).filter(rebuilt_at__isnull=True)
                   .order_by("id").first())
            if row is None:
                return built
            started = time.monotonic()
            try:
                with connection.cursor() as cursor:
                    cursor.execute(f"SET LOCAL maintenance_work_mem = '{REBUILD_MEMORY}'")
                    cursor.execute(row.definition)
            except DatabaseError as exc:
                error = " ".join(str(exc).split())
                raise RebuildFailed(f"could not build the {row.get_kind_display().lower()} {row.name} on "
                                    f"{row.table_name} again: {error} (it stays set aside until that is "
                                    "fixed)") from exc
            row.rebuilt_at, row.seconds = timezone.now(), time.monotonic() - started
            row.save(update_fields=["rebuilt_at", "seconds"])
        built += 1


def has_pending(run: MigrationRun) -> bool:
    return SetAsideIndex.objects.filter(run=run, rebuilt_at__isnull=True).exists()


def summary_for(run: MigrationRun) -> dict:
    """What the run set aside and how long building it again took, for the report."""
    rows = list(SetAsideIndex.objects.filter(run=run).values("kind", "rebuilt_at", "seconds"))
    return {"indexes": sum(1 for r in rows if r["kind"] == SetAsideKind.INDEX),
            "foreign_keys": sum(1 for r in rows if r["kind"] == SetAsideKind.FOREIGN_KEY),
            "pending": sum(1 for r in rows if r["rebuilt_at"] is None),
            "rebuild_seconds": round(sum(r["seconds"] for r in rows), 2)}
