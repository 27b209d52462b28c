"""`manage.py seed_demo`: the demo users and sample data `make demo` serves (see orders/demo.py)."""

from __future__ import annotations

import time

from django.core.management.base import BaseCommand, CommandError

from oms.errors import DomainError
from orders import demo


class Command(BaseCommand):
    help = ("Create the demo users (password demo-oms) and two years of sample customers, orders and invoices, "
            "made through the services. Does nothing if the demo data is already there, unless --reset.")

    def add_arguments(self, parser):
        parser.add_argument("--customers", type=int, default=200, help="How many customers (default 200).")
        parser.add_argument("--orders", type=int, default=1500, help="How many orders (default 1500).")
        parser.add_argument("--seed", type=int, default=2024,
                            help="Random seed: the same seed gives the same data (default 2024).")
        parser.add_argument("--reset", action="store_true",
                            help="Delete the earlier demo customers, orders and invoices first, then build again.")

    def handle(self, *args, customers, orders, seed, reset, **options):
        if customers < 1 or orders < 0:
            raise CommandError("--customers must be at least 1 and --orders at least 0.")
        started = time.monotonic()
        try:
            report = demo.seed_demo(customers=customers, orders=orders, seed=seed, reset=reset,
                                    progress=lambda message: self.stdout.write(message))
        except (demo.DemoDataError, DomainError) as exc:
            raise CommandError(str(exc)) from exc
        if report.users_created:
            self.stdout.write(f"Users created: {', '.join(report.users_created)}")
        for line in report.lines():
            self.stdout.write(f"  {line}")
        users = ", ".join(name for name, _ in demo.DEMO_USERS)
        self.stdout.write(self.style.SUCCESS(
            f"Demo ready in {time.monotonic() - started:.1f}s. Log in as demo / {demo.DEMO_PASSWORD} "
            f"(superuser); the role users {users.removeprefix('demo, ')} share that demo password."))
