"""Actions on the migration that staff start from the admin (and the API): thin, named, typed."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass

from legacy_migration.models import Discrepancy, Entity, MigrationRun, Reconciliation
from legacy_migration.reconcile import Reconciler
from legacy_migration.runner import MigrationRunner, RunOptions

#: A finding's record kind → the migration entity that carries it (lines travel with their header).
ENTITY_OF_RECORD = {"customer": Entity.CUSTOMERS, "order": Entity.ORDERS, "order_line": Entity.ORDERS,
                    "invoice": Entity.INVOICES, "invoice_line": Entity.INVOICES}


def record_keys(discrepancies: Iterable[Discrepancy]) -> dict[str, list[str]]:
    """The header keys behind some findings, per entity ('2009/00123/2' is line 2 of invoice 2009/00123)."""
    keys: dict[str, set[str]] = defaultdict(set)
    for discrepancy in discrepancies:
        key = discrepancy.legacy_key
        if discrepancy.entity.endswith("_line"):
            key = key.rsplit("/", 1)[0]
        keys[ENTITY_OF_RECORD[discrepancy.entity]].add(key)
    return {entity: sorted(found) for entity, found in keys.items()}


@dataclass
class Remigration:
    runs: list[MigrationRun]
    reconciliation: Reconciliation


def remigrate_records(*, keys: dict[str, list[str]], by: str, legacy_alias: str = "legacy") -> Remigration:
    """Run the migration for exactly these legacy records, then reconcile exactly them again."""
    runs = []
    for entity in (e for e in (Entity.CUSTOMERS, Entity.ORDERS, Entity.INVOICES) if keys.get(e)):
        runner = MigrationRunner(RunOptions(entities=(entity,), keys=tuple(keys[entity]), legacy_alias=legacy_alias),
                                 started_by=by, restart=True)
        run, _ = runner.start_or_resume()
        runner.plan(run)
        runner.work(run)
        runs.append(runner.finish(run, seconds=0.0))
    reconciliation = Reconciler(entities=list(keys), keys={e: [(k, k) for k in found] for e, found in keys.items()},
                                legacy_alias=legacy_alias, started_by=by).run()
    return Remigration(runs=runs, reconciliation=reconciliation)
