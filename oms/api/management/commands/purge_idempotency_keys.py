"""Delete Idempotency-Key records older than API_IDEMPOTENCY_HOURS (run it daily, e.g. from cron)."""

from django.core.management.base import BaseCommand

from oms.api.idempotency import purge_expired


class Command(BaseCommand):
    help = __doc__

    def handle(self, *args, **options):
        deleted = purge_expired()
        self.stdout.write(f"Deleted {deleted} expired idempotency record(s).")
