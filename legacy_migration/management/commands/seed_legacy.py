"""`manage.py seed_legacy`: create the legacy tables and fill them with realistic, dirty data.

Examples:
    manage.py seed_legacy --scale 1000 --seed 7                  # 1,000 orders, 200 customers, 800 invoices
    manage.py seed_legacy --scale 1000000 --replace --no-progress  # the benchmark size
    manage.py seed_legacy --orders 500 --dirty-rate 0            # clean data
    manage.py seed_legacy --orders 500 --rate order_orphan_customer=0.1 --json
    manage.py seed_legacy --list-quirks
"""

from __future__ import annotations

import json

from django.core.management.base import BaseCommand, CommandError

from legacy_migration.seeding import SeedOptions, quirk_catalogue, seed_legacy
from oms.errors import DomainError


def _rate(text: str) -> tuple[str, float]:
    name, sep, value = text.partition("=")
    try:
        if not sep:
            raise ValueError
        return name.strip(), float(value)
    except ValueError:
        raise CommandError(f"--rate expects NAME=VALUE, e.g. order_orphan_customer=0.05; got {text!r}") from None


class Command(BaseCommand):
    help = "Create the legacy tables (DDL for the connection's engine) and fill them with dirty, realistic data."

    def add_arguments(self, parser):
        parser.add_argument("--database", default="legacy", help="connection alias to write to (default: legacy)")
        parser.add_argument("--scale", type=int, default=1000,
                            help="orders; customers (1 per 5 orders) and invoices (0.8 per order) follow "
                                 "unless given (default 1000)")
        parser.add_argument("--customers", type=int)
        parser.add_argument("--orders", type=int)
        parser.add_argument("--invoices", type=int)
        parser.add_argument("--seed", type=int, default=1, help="random seed: the same seed gives the same rows")
        parser.add_argument("--dirty-rate", type=float, default=1.0,
                            help="multiplier on every quirk's default rate (0 = clean data, 2 = twice as dirty)")
        parser.add_argument("--rate", action="append", default=[], metavar="QUIRK=RATE",
                            help="override one quirk's rate (repeatable); see --list-quirks")
        parser.add_argument("--replace", action="store_true", help="drop and recreate legacy tables that exist")
        parser.add_argument("--batch-size", type=int, default=5000)
        parser.add_argument("--key-limit", type=int, default=100, help="keys listed per quirk in the summary")
        parser.add_argument("--json", action="store_true", help="print the summary as JSON (progress goes to stderr)")
        parser.add_argument("--no-progress", action="store_true")
        parser.add_argument("--list-quirks", action="store_true", help="list the quirks and their default rates")

    def handle(self, *args, **opts):
        if opts["list_quirks"]:
            for quirk in quirk_catalogue():
                rate = "natural" if quirk["rate"] is None else f"{quirk['rate']:.2%}"
                per = f" of {quirk['per']}" if quirk["per"] else ""
                self.stdout.write(f"{quirk['name']:<34} {quirk['table']:<8} {rate:>8}{per}  {quirk['description']}")
            return
        orders = opts["orders"] if opts["orders"] is not None else opts["scale"]
        options = SeedOptions.at_scale(
            orders, customers=opts["customers"], invoices=opts["invoices"], seed=opts["seed"],
            dirty_rate=opts["dirty_rate"], rates=dict(_rate(text) for text in opts["rate"]),
            replace=opts["replace"], batch_size=opts["batch_size"], key_limit=opts["key_limit"],
        )
        progress = None if opts["no_progress"] else (lambda p: self.stderr.write(p.as_text()))
        try:
            summary = seed_legacy(using=opts["database"], options=options, progress=progress)
        except DomainError as exc:
            raise CommandError(exc.message) from exc
        if opts["json"]:
            self.stdout.write(json.dumps(summary.to_dict(), ensure_ascii=False, indent=2))
        else:
            self.stdout.write(summary.as_text())
