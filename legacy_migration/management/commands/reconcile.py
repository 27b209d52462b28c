"""manage.py reconcile — prove, record by record, that the modern store says what the legacy one says."""

from __future__ import annotations

import json
import sys

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser

from legacy_migration import extract
from legacy_migration.management.commands.migrate_legacy import _entities, _since
from legacy_migration.models import ENTITY_ORDER, ReconciliationStatus
from legacy_migration.progress import Progress
from legacy_migration.reconcile import FIGURES, Reconciler
from legacy_migration.runner import STEPS, LegacyUnavailable


def _keys(value: str) -> tuple[str, str]:
    first, sep, last = value.partition(":")
    if not sep or not first or not last:
        raise ValueError("--keys takes FIRST:LAST (legacy keys, both included), e.g. 1000:1999")
    return first, last


class Command(BaseCommand):
    help = ("Compare legacy and modern record by record through the migration's mapping, with control totals. "
            "Exits 1 when anything disagrees.")

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--entities", type=_entities, default=tuple(ENTITY_ORDER),
                            help="Comma-separated: customers,orders,invoices (lines come with their header).")
        parser.add_argument("--since", type=_since, default=None,
                            help="Only legacy records changed since this legacy local time.")
        parser.add_argument("--keys", type=_keys, default=None, help="Only legacy keys FIRST:LAST (both included).")
        parser.add_argument("--batch-size", type=int, default=5000,
                            help="Legacy records read, mapped and compared at a time (and checksummed per query).")
        parser.add_argument("--range-size", type=int, default=100,
                            help="Records per checksummed key range (full runs): the unit a change is narrowed down to.")
        parser.add_argument("--full-compare", action="store_true",
                            help="Compare every record field by field and renew the stored range checksums.")
        parser.add_argument("--workers", type=int, default=1,
                            help="Processes comparing spans side by side on full runs (the mapping is CPU-bound).")
        parser.add_argument("--no-checksums", action="store_true",
                            help="Neither use nor store range checksums: compare every record, remember nothing.")
        parser.add_argument("--legacy-database", default="legacy")
        parser.add_argument("--no-progress", action="store_true")
        parser.add_argument("--json", action="store_true", help="Print the whole report as JSON on stdout.")

    def handle(self, *args, **opts) -> None:
        if opts["legacy_database"] not in settings.DATABASES:
            raise CommandError(f"No legacy database configured as {opts['legacy_database']!r}: set LEGACY_DATABASE_URL.")
        done = [0]
        reconciler = Reconciler(entities=opts["entities"], since=opts["since"],
                                keys={e: [opts["keys"]] for e in opts["entities"]} if opts["keys"] else None,
                                batch_size=opts["batch_size"], legacy_alias=opts["legacy_database"],
                                checksums=not opts["no_checksums"], full_compare=opts["full_compare"],
                                range_size=opts["range_size"], workers=opts["workers"],
                                on_batch=lambda entity, n: done.__setitem__(0, done[0] + n))
        progress = None
        if not opts["no_progress"]:
            total = self._legacy_total(reconciler, opts)
            progress = Progress(lambda: (done[0], total, "comparing"), stream=self.stderr._out, unit="records")
            progress.__enter__()
        try:
            reconciliation = reconciler.run()
        except LegacyUnavailable as exc:
            raise CommandError(f"Stopped: {exc}") from exc
        finally:
            if progress:
                progress.__exit__(None, None, None)
        if opts["json"]:
            self.stdout.write(json.dumps(report(reconciliation), indent=2, default=str))
        else:
            self._print(reconciliation)
        if reconciliation.status != ReconciliationStatus.VALIDATED:
            sys.exit(1)

    def _legacy_total(self, reconciler: Reconciler, opts) -> int:
        total = 0
        for entity in reconciler.entities:
            table = STEPS[entity].table
            sql = extract.count_sql(reconciler.source.vendor, table, since=opts["since"] is not None)
            total += reconciler.source.query(sql, extract.since_params(table, opts["since"]), table.name)[0][0]
        return total

    def _print(self, reconciliation) -> None:
        out = self.stdout
        out.write(f"Reconciliation #{reconciliation.pk}: {reconciliation.get_status_display()} "
                  f"in {reconciliation.seconds:.1f} s {reconciliation.message}")
        for entity, ranges in reconciliation.scope.get("narrowing", {}).items():
            if ranges.get("checksummed"):
                out.write(f"  {entity}: {ranges.get('skipped', 0):,} of {ranges['checksummed']:,} key ranges unchanged "
                          f"since they were last found equal (not read); {ranges.get('compared', 0):,} compared")
            if ranges.get("discarded"):
                out.write(f"  {entity}: {ranges['discarded']:,} stored range checksums discarded: they were taken "
                          "under another mapping or legacy database")
        out.write(f"{'entity':<13}" + "".join(f"{name:>13}" for name in FIGURES))
        for entity, figures in reconciliation.figures.items():
            out.write(f"{entity:<13}" + "".join(f"{figures.get(name, 0):>13,}" for name in FIGURES))
        for discrepancy in reconciliation.discrepancies.all()[:20]:
            fields = ", ".join(f"{k}: {v['legacy']!r} → {v['modern']!r}" for k, v in discrepancy.fields.items())
            out.write(f"  {discrepancy.entity} {discrepancy.legacy_key}: {discrepancy.get_kind_display()} {fields}")
        wrong_totals = [t for t in reconciliation.control_totals.all() if not t.agrees]
        for total in wrong_totals[:20]:
            out.write(f"  control total {total.entity} {total.currency} {total.month:%Y-%m}: legacy "
                      f"{total.legacy_amount} ({total.legacy_count}) vs modern {total.modern_amount} "
                      f"({total.modern_count}), difference {total.difference}")


def report(reconciliation) -> dict:
    """The whole reconciliation for machines: every discrepancy, every control total."""
    return {
        "reconciliation": reconciliation.pk, "status": reconciliation.status, "scope": reconciliation.scope,
        "started_at": reconciliation.started_at.isoformat(), "seconds": round(reconciliation.seconds, 3),
        "figures": reconciliation.figures, "message": reconciliation.message,
        "discrepancies": list(reconciliation.discrepancies.values("entity", "legacy_key", "kind", "fields")
                              .order_by("entity", "id")),
        "control_totals": [
            {"entity": t.entity, "currency": t.currency, "month": t.month.isoformat()[:7],
             "legacy_count": t.legacy_count, "legacy_amount": str(t.legacy_amount), "modern_count": t.modern_count,
             "modern_amount": str(t.modern_amount), "difference": str(t.difference)}
            for t in reconciliation.control_totals.all()
        ],
    }
