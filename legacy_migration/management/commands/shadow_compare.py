"""manage.py shadow_compare — replay a sample of detail reads offline: modern vs legacy through the mapping.

The same comparison as the live shadow reads (legacy_migration/shadow.py): each sampled record's
modern representation, as the API serves it, against its legacy record read and mapped by the
migration's own code. Every mismatch is recorded (origin "offline"), next to the live ones in
the admin. Exit status 1 when anything disagrees.
"""

from __future__ import annotations

import json
import random
import sys

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser

from legacy_migration.runner import LegacyUnavailable
from legacy_migration.shadow import RESOURCES, replay


class Command(BaseCommand):
    help = ("Replay a sample of API detail reads offline: modern representation vs legacy through the mapping. "
            "Records every mismatch; exits 1 when there is any.")

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--resource", action="append", choices=list(RESOURCES), dest="resources",
                            help="orders, invoices or customers (repeat for several; all three by default).")
        parser.add_argument("--sample", type=int, default=100, help="Reads to replay per resource (default 100).")
        parser.add_argument("--seed", type=int, default=None,
                            help="Seed of the sample: the same seed on the same data replays the same reads.")
        parser.add_argument("--legacy-database", default="legacy")
        parser.add_argument("--json", action="store_true", help="Print the report as JSON on stdout.")

    def handle(self, *args, **opts) -> None:
        if opts["legacy_database"] not in settings.DATABASES:
            raise CommandError(f"No legacy database configured as {opts['legacy_database']!r}: "
                               "set LEGACY_DATABASE_URL.")
        if opts["sample"] < 1:
            raise CommandError("--sample must be at least 1.")
        seed = opts["seed"] if opts["seed"] is not None else random.SystemRandom().randrange(2**31)
        resources = opts["resources"] or list(RESOURCES)
        try:
            report = replay(resources=resources, sample=opts["sample"], seed=seed, alias=opts["legacy_database"])
        except LegacyUnavailable as exc:
            raise CommandError(f"Stopped: {exc}") from exc
        if opts["json"]:
            self.stdout.write(json.dumps(report.as_json(), indent=2, default=str))
        else:
            self._print(report)
        if report.mismatches:
            sys.exit(1)

    def _print(self, report) -> None:
        for name, compared in report.compared.items():
            self.stdout.write(f"{name}: {compared} compared, {report.matched[name]} matched, "
                              f"{compared - report.matched[name]} mismatched")
        for mismatch in report.mismatches:
            self.stdout.write(f"  {mismatch.resource} {mismatch.legacy_key} (id {mismatch.record_id}): "
                              + "; ".join(f"{field} legacy={sides.get('legacy')!r} modern={sides.get('modern')!r}"
                                          for field, sides in mismatch.fields.items()))
        self.stdout.write(f"Seed {report.seed} (--seed {report.seed} replays the same sample). "
                          + ("All agree." if not report.mismatches else
                             f"{len(report.mismatches)} mismatch(es) recorded; see the admin, Shadow mismatches."))
