"""A first load sets the modern tables' secondary indexes and foreign keys aside, and builds them
again (legacy_migration/set_aside.py), on PostgreSQL: what must hold whatever stops the run."""

from __future__ import annotations

import io

import pytest
from django.core.management import CommandError, call_command
from django.db import connection

from legacy_migration.models import MigrationRun, RunStatus, SetAsideIndex, SetAsideKind
from legacy_migration.runner import MigrationRunner, RunOptions, progress_figures
from invoices.models import Invoice, InvoiceLine
from orders.models import Order, OrderLine
from tests.legacy_migration import legacy_db
from tests.legacy_migration.test_migrate_legacy import MODERN_TABLES, migrate, modern_schema, snapshot

pytestmark = pytest.mark.django_db(transaction=True, databases=["default", "legacy"])

def index_names(table: str) -> set[str]:
    with connection.cursor() as cursor:
        cursor.execute("SELECT indexname FROM pg_indexes WHERE schemaname = current_schema() AND tablename = %s",
                       [table])
        return {row[0] for row in cursor.fetchall()}


def constraints(table: str, kinds: str = "f") -> set[str]:
    """Names of `table`'s constraints of these kinds (f foreign key, p primary key, u unique, c check)."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT conname FROM pg_constraint WHERE contype = ANY(%s) AND conrelid = %s::regclass",
                       [list(kinds), table])
        return {row[0] for row in cursor.fetchall()}


def foreign_keys(table: str) -> set[str]:
    return constraints(table, "f")


def stopped_run(stop_after: int, **options) -> MigrationRun:
    """A run of 10-record batches that stops after `stop_after` items, as a killed process leaves it."""
    runner = MigrationRunner(RunOptions(batch_size=10, **options))
    run, _ = runner.start_or_resume()
    runner.plan(run)
    runner.work(run, stop_after=stop_after)
    return run


def test_a_first_load_sets_indexes_and_foreign_keys_aside_and_leaves_the_schema_as_it_found_it():
    before = modern_schema()
    legacy_db.build("legacy")
    report = migrate("legacy")
    assert report["status"] == RunStatus.SUCCEEDED
    figures = report["set_aside"]
    assert figures["indexes"] >= 20 and figures["foreign_keys"] >= 6 and figures["pending"] == 0
    assert modern_schema() == before
    assert not SetAsideIndex.objects.filter(rebuilt_at__isnull=True).exists()
    set_aside_indexes = SetAsideIndex.objects.filter(kind=SetAsideKind.INDEX).values_list("definition", flat=True)
    assert all(d.startswith("CREATE INDEX") for d in set_aside_indexes)  # never a unique one


def test_a_run_stopped_mid_load_has_its_entitys_indexes_aside_and_builds_them_when_resumed():
    before = modern_schema()
    legacy_db.build("legacy")  # 40 customers (4 items of 10), then orders
    enforced = {table: constraints(table, "puc") for table in MODERN_TABLES}
    run = stopped_run(6)
    # What stays while loading: primary keys, unique and check constraints (the upserts need the
    # keys, and the rules hold for every row).
    assert {table: constraints(table, "puc") for table in MODERN_TABLES} == enforced
    assert "order_line_number_unique" in enforced["orders_orderline"]
    # The customers are loaded: built again as soon as the orders began.
    assert "customer_name_idx" in index_names("orders_customer")
    # The orders are half done: their secondary indexes and foreign keys are still aside.
    assert "order_status_date_idx" not in index_names("orders_order")
    assert foreign_keys("orders_orderline") == set()
    assert set(SetAsideIndex.objects.filter(rebuilt_at__isnull=True).values_list("entity", flat=True)) == {
        "orders", "invoices"}
    report = migrate("legacy", "--batch-size", "10")
    assert report["run"] == run.pk and report["status"] == RunStatus.SUCCEEDED
    assert modern_schema() == before


def test_tables_that_already_hold_rows_keep_every_index_and_so_does_keep_indexes():
    legacy_db.build("legacy")
    assert migrate("legacy")["set_aside"]["indexes"] > 0
    again = migrate("legacy", "--restart")  # a re-run: the tables hold the first run's rows
    assert again["set_aside"] == {"indexes": 0, "foreign_keys": 0, "pending": 0, "rebuild_seconds": 0}
    for model in (InvoiceLine, Invoice, OrderLine, Order):
        model.objects.all().delete()
    kept = migrate("legacy", "--restart", "--entities", "orders", "--keep-indexes")
    assert kept["set_aside"]["indexes"] == 0 and Order.objects.exists()


def test_a_restarted_run_adopts_and_builds_what_an_abandoned_run_set_aside():
    before = modern_schema()
    legacy_db.build("legacy")
    abandoned = stopped_run(6)
    report = migrate("legacy", "--restart")
    assert report["run"] != abandoned.pk and report["status"] == RunStatus.SUCCEEDED
    assert modern_schema() == before
    assert not SetAsideIndex.objects.filter(run=abandoned, rebuilt_at__isnull=True).exists()


def test_a_restart_with_keep_indexes_still_builds_back_what_an_abandoned_run_left_aside():
    before = modern_schema()
    legacy_db.build("legacy")
    abandoned = stopped_run(6)
    report = migrate("legacy", "--restart", "--keep-indexes")
    assert report["status"] == RunStatus.SUCCEEDED and report["set_aside"]["pending"] == 0
    assert report["set_aside"]["indexes"] > 0  # adopted from the abandoned run, none dropped anew
    assert not SetAsideIndex.objects.filter(run=abandoned, rebuilt_at__isnull=True).exists()
    assert modern_schema() == before


def test_a_rebuild_interrupted_before_its_commit_leaves_the_index_aside_for_the_next_run(monkeypatch):
    before = modern_schema()
    legacy_db.build("legacy")
    original_save = SetAsideIndex.save

    def crash_on_the_orders_first_rebuild(self, *args, **kwargs):
        if self.entity == "orders":
            raise KeyboardInterrupt  # as if killed between CREATE INDEX and COMMIT
        return original_save(self, *args, **kwargs)

    monkeypatch.setattr(SetAsideIndex, "save", crash_on_the_orders_first_rebuild)
    with pytest.raises(CommandError, match="Interrupted"):
        migrate("legacy", "--batch-size", "10")
    pending = SetAsideIndex.objects.filter(entity="orders", rebuilt_at__isnull=True)
    assert pending.count() == SetAsideIndex.objects.filter(entity="orders").count()  # none half-built
    first = pending.order_by("id").first()
    assert first.name not in index_names(first.table_name) | foreign_keys(first.table_name)
    monkeypatch.setattr(SetAsideIndex, "save", original_save)
    assert migrate("legacy", "--batch-size", "10")["status"] == RunStatus.SUCCEEDED
    assert modern_schema() == before


def test_a_foreign_key_that_no_longer_holds_stops_the_run_clearly_and_a_rerun_after_the_fix_finishes():
    before = modern_schema()
    legacy_db.build("legacy")
    loading = ("--entities", "customers,orders", "--batch-size", "10")
    run = stopped_run(6, entities=("customers", "orders"))
    with connection.cursor() as cursor:  # what an unchecked write could leave while the keys were aside
        cursor.execute("INSERT INTO orders_orderline (order_id, line_number, sku, description, quantity, unit_price, "
                       "discount_percent, line_total) VALUES (999999, 1, 'X', '', 1, 1, 0, 1)")
    with pytest.raises(CommandError, match=r"could not build the foreign key \S+ on orders_orderline again: .*is not present.*run the same command again"):
        migrate("legacy", *loading)
    run.refresh_from_db()
    assert run.status == RunStatus.FAILED and "orders_orderline" in run.message
    assert progress_figures(run)[2] == "indexes"  # loaded, but not finished
    assert SetAsideIndex.objects.filter(kind=SetAsideKind.FOREIGN_KEY, table_name="orders_orderline",
                                        rebuilt_at__isnull=True).exists()
    OrderLine.objects.filter(order_id=999999).delete()
    report = migrate("legacy", *loading)
    assert report["run"] == run.pk and report["status"] == RunStatus.SUCCEEDED
    assert modern_schema() == before


def test_rebuild_indexes_gives_an_abandoned_first_load_its_indexes_back_without_loading_more():
    before = modern_schema()
    legacy_db.build("legacy")
    stopped_run(6)
    loaded = snapshot()
    err = io.StringIO()
    call_command("migrate_legacy", "--rebuild-indexes", stderr=err)
    assert "Built again" in err.getvalue()
    assert modern_schema() == before
    assert snapshot() == loaded

