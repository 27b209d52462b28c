"""manage.py migrate_legacy — carry the legacy orders, customers and invoices over, resumably."""

from __future__ import annotations

import datetime as dt
import multiprocessing
import sys
import time

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import connections

from legacy_migration.models import ENTITY_ORDER, RunStatus
from legacy_migration.progress import Progress
from legacy_migration.runner import (
    COUNTERS,
    LegacyUnavailable,
    MigrationRunner,
    RunOptions,
    progress_figures,
    run_report,
    write_report_json,
)
from legacy_migration.set_aside import RebuildFailed, rebuild_all


def _entities(value: str) -> tuple[str, ...]:
    names = tuple(v.strip() for v in value.split(",") if v.strip())
    unknown = set(names) - set(ENTITY_ORDER)
    if unknown or not names:
        raise ValueError(f"entities are {', '.join(ENTITY_ORDER)}; got {value!r}")
    return tuple(e for e in ENTITY_ORDER if e in names)


def _since(value: str) -> dt.datetime:
    """--since is legacy local time (as LAST_UPD_DT is stored); an aware value is converted to it."""
    from zoneinfo import ZoneInfo

    parsed = dt.datetime.fromisoformat(value)
    if parsed.tzinfo is not None:
        parsed = parsed.astimezone(ZoneInfo(settings.LEGACY_TIME_ZONE)).replace(tzinfo=None)
    return parsed


def _worker(options: RunOptions, run_id: int, pause: float) -> None:
    """A worker process: claim and process work items of the shared run until none is left."""
    from legacy_migration.models import MigrationRun

    connections.close_all()  # never share the parent's sockets
    runner = MigrationRunner(options, pause=pause)
    try:
        runner.work(MigrationRun.objects.get(pk=run_id))
    except (LegacyUnavailable, RebuildFailed) as exc:
        print(f"worker stopped: {exc}", file=sys.stderr)
        sys.exit(3)


class Command(BaseCommand):
    help = ("Extract the legacy tables in key order, map every record through the contract's rules and "
            "load it into the modern store. Re-running resumes an unfinished run or, once finished, only "
            "rewrites what changed.")

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--entities", type=_entities, default=tuple(ENTITY_ORDER),
                            help="Comma-separated: customers,orders,invoices (default: all, in that order).")
        parser.add_argument("--since", type=_since, default=None,
                            help="Only records changed since this legacy local time (LAST_UPD_DT; invoices: "
                                 "dated or paid since), e.g. 2026-11-01T00:00.")
        parser.add_argument("--batch-size", type=int, default=5000, help="Records per batch and checkpoint.")
        parser.add_argument("--dry-run", action="store_true", help="Do everything, then roll it back.")
        parser.add_argument("--workers", type=int, default=1,
                            help="Parallel worker processes sharing the run through PostgreSQL.")
        parser.add_argument("--keys", default="",
                            help="Only these legacy keys, comma-separated (with exactly one entity), e.g. "
                                 "--entities orders --keys 1001,1002: re-migrate chosen records.")
        parser.add_argument("--pause", type=float, default=0.0,
                            help="Seconds to wait between batches, to spare a legacy server in business hours.")
        parser.add_argument("--keep-indexes", action="store_true",
                            help="On a first load, keep the tables' secondary indexes and foreign keys "
                                 "(default on PostgreSQL: set aside, built again after each entity).")
        parser.add_argument("--rebuild-indexes", action="store_true",
                            help="Only build again, now, every index and foreign key a first load set aside "
                                 "(for a first load that will not be resumed), then stop.")
        parser.add_argument("--restart", action="store_true", help="Start a new run instead of resuming.")
        parser.add_argument("--legacy-database", default="legacy", help="Connection alias of the legacy database.")
        parser.add_argument("--no-progress", action="store_true", help="No progress display (logs, cron).")
        parser.add_argument("--json", action="store_true", help="Print the finished run as JSON on stdout.")

    def handle(self, *args, **opts) -> None:
        if opts["rebuild_indexes"]:
            try:
                built = rebuild_all()
            except RebuildFailed as exc:
                raise CommandError(f"Stopped: {exc}.") from exc
            self.stderr.write(f"Built again {built} index(es) and foreign key(s) set aside by a first load.")
            return
        if opts["legacy_database"] not in settings.DATABASES:
            raise CommandError(f"No legacy database configured as {opts['legacy_database']!r}: "
                               "set LEGACY_DATABASE_URL (see README).")
        if opts["batch_size"] < 1 or opts["workers"] < 1:
            raise CommandError("--batch-size and --workers must be at least 1.")
        keys = tuple(k.strip() for k in opts["keys"].split(",") if k.strip())
        if keys and len(opts["entities"]) != 1:
            raise CommandError("--keys needs exactly one entity (--entities customers, orders or invoices).")
        options = RunOptions(entities=opts["entities"], since=opts["since"], batch_size=opts["batch_size"],
                             dry_run=opts["dry_run"], legacy_alias=opts["legacy_database"], keys=keys,
                             keep_indexes=opts["keep_indexes"])
        runner = MigrationRunner(options, restart=opts["restart"], pause=opts["pause"])
        run, resumed = runner.start_or_resume()
        if not opts["json"]:
            self.stderr.write(f"{'Resuming' if resumed else 'Starting'} migration run #{run.pk} "
                              f"({', '.join(options.entities)}{', dry run' if options.dry_run else ''})")
        started = time.monotonic()
        progress = None
        if not opts["no_progress"]:
            figures = (lambda: progress_figures(run)) if not options.dry_run else (
                lambda: (sum(t.read for t in runner.dry_totals.values()), 0, "dry run"))
            progress = Progress(figures, stream=self.stderr._out)
        try:
            if progress:
                progress.__enter__()
            runner.plan(run)
            self._work(runner, run, opts["workers"])
            runner.rebuild_set_aside(run)  # usually done by the workers already; a safety net
        except (LegacyUnavailable, RebuildFailed) as exc:
            runner.finish(run, time.monotonic() - started, error=str(exc))
            raise CommandError(f"Stopped: {exc}. Everything loaded so far is saved with its checkpoint; "
                               "run the same command again to resume.") from exc
        except KeyboardInterrupt:
            runner.finish(run, time.monotonic() - started, error="Interrupted by the operator.")
            raise CommandError("Interrupted. Run the same command again to resume.") from None
        finally:
            if progress:
                progress.__exit__(None, None, None)
        run = runner.finish(run, time.monotonic() - started)
        report = run_report(run, dry_issues=runner.dry_issues)
        if opts["json"]:
            write_report_json(report, self.stdout)
        else:
            self._print_summary(report)
        if run.status != RunStatus.SUCCEEDED:
            raise CommandError(f"Run #{run.pk} did not finish ({run.get_status_display()}): {run.message}")

    def _work(self, runner: MigrationRunner, run, workers: int) -> None:
        parallel = workers > 1 and not runner.options.dry_run and connections["default"].vendor == "postgresql"
        if not parallel:
            runner.work(run)
            return
        connections.close_all()
        context = multiprocessing.get_context("fork")
        processes = [context.Process(target=_worker, args=(runner.options, run.pk, runner.pause), name=f"migrate-worker-{i}")
                     for i in range(workers)]
        for process in processes:
            process.start()
        for process in processes:
            process.join()
        failed = [p.name for p in processes if p.exitcode != 0]
        if failed:
            raise LegacyUnavailable(f"{len(failed)} worker(s) stopped ({', '.join(failed)}); see their messages above")

    def _print_summary(self, report: dict) -> None:
        out = self.stdout
        out.write(f"Run #{report['run']}: {report['status']} in {report['seconds']:.1f} s"
                  + (f", {report['rows_per_second']:,.0f} rows/s" if report["rows_per_second"] else ""))
        header = f"{'entity':<10}" + "".join(f"{c:>11}" for c in COUNTERS)
        out.write(header)
        for entity, figures in report["entities"].items():
            out.write(f"{entity:<10}" + "".join(f"{(figures.get(c) or 0):>11,}" for c in COUNTERS))
        if report["rejections"]:
            out.write(f"{len(report['rejections'])} rejected record(s); the first ones:")
            for issue in report["rejections"][:10]:
                out.write(f"  {issue['entity']} {issue['legacy_key']}: {issue['rule']}: {issue['message']}")
            out.write(f"All rejections and warnings: admin → Legacy migration → Issues (run #{report['run']}).")
