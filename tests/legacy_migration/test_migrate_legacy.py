"""migrate_legacy against real engines: the modern store on PostgreSQL, the legacy stand-ins on
SQLite, PostgreSQL and MariaDB."""

from __future__ import annotations

import datetime as dt
import io
import json
import os
import signal
import subprocess
import sys
import time
from decimal import Decimal
from pathlib import Path

import pytest
from django.conf import settings
from django.core.management import CommandError, call_command
from django.db import connections

from invoices.models import Invoice, InvoiceLine
from legacy_migration import ddl
from legacy_migration.load import ENTITY_TARGETS
from legacy_migration.mapping import Finding, Rule
from legacy_migration.models import IssueKind, MigrationIssue, MigrationRun, RunStatus, WorkItem
from legacy_migration.runner import json_safe, raw_json, save_issues
from orders.models import Customer, Order, OrderLine
from tests.factories import CustomerFactory
from tests.legacy_migration import legacy_db

ROOT = Path(settings.BASE_DIR)
ALL = ["default", "legacy", "legacy_postgres", "legacy_mariadb"]


def migrate(alias: str = "legacy", *args: str) -> dict:
    out = io.StringIO()
    call_command("migrate_legacy", "--legacy-database", alias, "--no-progress", "--json", *args, stdout=out,
                 stderr=io.StringIO())
    return json.loads(out.getvalue())


def snapshot() -> dict:
    """Everything the migration wrote, by legacy key (ids differ between runs; keys do not)."""
    return {
        "customers": sorted(Customer.objects.values_list("legacy_id", "code", "name", "email", "status", "credit_limit",
                                                         "created_at")),
        "orders": sorted(Order.objects.values_list("legacy_id", "customer__legacy_id", "status", "total", "ordered_at",
                                                   "requested_ship_at")),
        "lines": sorted(OrderLine.objects.values_list("order__legacy_id", "line_number", "sku", "quantity",
                                                      "unit_price", "line_total")),
        "invoices": sorted(Invoice.objects.values_list("legacy_id", "order__legacy_id", "legacy_order_number", "total",
                                                       "status")),
        "invoice_lines": sorted(InvoiceLine.objects.values_list("invoice__legacy_id", "line_number", "amount")),
    }


MODERN_TABLES = [target.table for targets in ENTITY_TARGETS.values() for target in targets]


def modern_schema() -> list[str]:
    """Every index and constraint of the five loaded tables, as PostgreSQL would recreate them."""
    with connections["default"].cursor() as cursor:
        cursor.execute(
            "SELECT indexdef FROM pg_indexes WHERE schemaname = current_schema() AND tablename = ANY(%s) "
            "UNION ALL SELECT conrelid::regclass || ' ' || conname || ' ' || pg_get_constraintdef(oid) "
            "|| CASE WHEN convalidated THEN '' ELSE ' NOT VALID' END "
            "FROM pg_constraint WHERE conrelid = ANY(%s::regclass[]) ORDER BY 1", [MODERN_TABLES, MODERN_TABLES])
        return [row[0] for row in cursor.fetchall()]


def assert_migrated_as_expected(expected: legacy_db.Expected) -> None:
    assert set(Customer.objects.values_list("legacy_id", flat=True)) == expected.customers
    assert set(Order.objects.values_list("legacy_id", flat=True)) == expected.orders
    assert set(Invoice.objects.values_list("legacy_id", flat=True)) == expected.invoices
    assert OrderLine.objects.count() == expected.lines_per_order * len(expected.orders)
    rejected = lambda entity: set(MigrationIssue.objects.filter(  # noqa: E731
        kind=IssueKind.REJECTION, entity=entity).values_list("legacy_key", flat=True))
    assert rejected("customer") == {str(k) for k in expected.customers_rejected}
    assert rejected("order") == {str(k) for k in expected.orders_rejected}
    assert rejected("invoice") == expected.invoices_rejected
    assert rejected("order_line") == expected.orphan_order_lines
    assert rejected("invoice_line") == expected.orphan_invoice_lines
    excluded = set(MigrationIssue.objects.filter(kind=IssueKind.EXCLUSION).values_list("legacy_key", flat=True))
    assert excluded == {str(k) for k in expected.orders_excluded}


@pytest.mark.django_db(transaction=True, databases=ALL)
@pytest.mark.parametrize("alias", ["legacy", "legacy_postgres", "legacy_mariadb"])
def test_migrates_every_record_or_names_the_rule_that_kept_it_out(alias):
    expected = legacy_db.build(alias)
    report = migrate(alias, "--batch-size", "25")
    assert report["status"] == RunStatus.SUCCEEDED
    assert_migrated_as_expected(expected)
    orders = report["entities"]["orders"]
    assert orders["inserted"] == len(expected.orders)
    assert orders["excluded"] == len(expected.orders_excluded)
    assert orders["rejected"] == len(expected.orders_rejected) + len(expected.orphan_order_lines)
    assert {r["legacy_key"] for r in report["rejections"] if r["entity"] == "order"} == {
        str(k) for k in expected.orders_rejected}
    # Rule 4: 2023-11-05 01:30 New York (the repeated hour) is its first occurrence, 05:30 UTC.
    assert Order.objects.filter(ordered_at=dt.datetime(2023, 11, 5, 5, 30, tzinfo=dt.UTC)).count() == len(expected.orders)
    assert not Order.objects.exclude(requested_ship_at=None).exists()  # the 1900-01-01 sentinel
    customer = Customer.objects.get(legacy_id=3)
    assert customer.code == "C0000003" and customer.name == "Customer 3 Café" and customer.country == "US"
    assert customer.credit_limit == Decimal("1000.01")  # half-up from 1000.0050


@pytest.mark.django_db(transaction=True, databases=["default", "legacy"])
def test_rerun_rewrites_nothing_and_then_only_what_changed():
    expected = legacy_db.build("legacy")
    migrate("legacy")
    before = snapshot()
    again = migrate("legacy")
    assert all(e["inserted"] == 0 and e["updated"] == 0 for e in again["entities"].values())
    assert again["entities"]["orders"]["unchanged"] == len(expected.orders)
    assert snapshot() == before

    with connections["legacy"].cursor() as cursor:
        cursor.execute('UPDATE "ORDHDR" SET "NOTES" = %s WHERE "ORD_NO" = %s', ["changed", min(expected.orders)])
        cursor.execute('UPDATE "ORDDTL" SET "ITEM_DESC" = %s WHERE "ORD_NO" = %s AND "LINE_NO" = 1',
                       ["new text", max(expected.orders)])
        cursor.execute('UPDATE "CUSTMAST" SET "CUST_NAME" = %s WHERE "CUST_ID" = 3', ["Renamed Ltd"])
    third = migrate("legacy")
    assert third["entities"]["orders"]["updated"] == 2 and third["entities"]["orders"]["inserted"] == 0
    assert third["entities"]["customers"]["updated"] == 1
    assert Order.objects.get(legacy_id=min(expected.orders)).notes == "changed"
    assert Customer.objects.get(legacy_id=3).name == "Renamed Ltd"


def every_column() -> dict:
    """Every value the migration writes, ids (which differ between runs) replaced by legacy keys."""
    found = {}
    for model in (Customer, Order, OrderLine, Invoice, InvoiceLine):
        names = [f"{f.name}__legacy_id" if f.is_relation and hasattr(f.related_model, "legacy_id") else f.name
                 for f in model._meta.concrete_fields if f.name not in ("id", "updated_at")]
        found[model.__name__] = sorted(model.objects.values_list(*names), key=repr)
    return found


@pytest.mark.django_db(transaction=True, databases=["default", "legacy"])
def test_a_first_load_by_copy_writes_exactly_what_the_staged_upsert_writes(monkeypatch):
    from legacy_migration.load import Loader

    legacy_db.build("legacy")
    copies = []
    copy_into = Loader._copy_into
    monkeypatch.setattr(Loader, "_copy_into", lambda self, cursor, table, *a: copies.append(table)
                        or copy_into(self, cursor, table, *a))
    first = migrate("legacy", "--batch-size", "25")
    assert {"orders_customer", "orders_order", "orders_orderline", "invoices_invoice",
            "invoices_invoiceline"} <= set(copies), "a first load into an empty store goes by COPY"
    by_copy = every_column()

    for model in (InvoiceLine, Invoice, OrderLine, Order, Customer):
        model.objects.all().delete()
    monkeypatch.setattr(Loader, "_all_new", lambda self, cursor, target, keys: False)
    copies.clear()
    second = migrate("legacy", "--batch-size", "25", "--restart")
    assert copies == []
    assert every_column() == by_copy
    counters = ("read", "inserted", "updated", "unchanged", "excluded", "rejected", "warned")
    figures = lambda report: {e: [c[n] for n in counters] for e, c in report["entities"].items()}  # noqa: E731
    assert figures(first) == figures(second)


@pytest.mark.django_db(transaction=True, databases=["default", "legacy"])
def test_a_first_load_looks_up_an_items_customers_once_not_once_per_chunk(monkeypatch):
    from django.test.utils import CaptureQueriesContext

    from legacy_migration.runner import InvoiceStep, OrderStep

    expected = legacy_db.build("legacy")
    for step in (OrderStep, InvoiceStep):  # several chunks per work item
        monkeypatch.setattr(step, "first_chunk_size", 2)
        monkeypatch.setattr(step, "chunk_size", 3)
    with CaptureQueriesContext(connections["default"]) as queries:
        migrate("legacy", "--batch-size", "10")
    assert_migrated_as_expected(expected)
    lookups = [q["sql"] for q in queries.captured_queries if "SELECT legacy_id, id FROM orders_customer" in q["sql"]]
    items = WorkItem.objects.filter(entity__in=["orders", "invoices"], scope="range").count()
    assert items >= 2 and len(lookups) == items


@pytest.mark.django_db(transaction=True)
def test_a_first_load_counts_integer_keys_new_by_their_range_and_text_keys_one_by_one():
    from legacy_migration.load import CUSTOMERS, INVOICES, Loader

    loader = Loader()
    CustomerFactory(legacy_id=50)
    with connections["default"].cursor() as cursor:
        assert loader._all_new(cursor, CUSTOMERS, [10, 20, 30])
        assert not loader._all_new(cursor, CUSTOMERS, [40, 50])
        # 50 lies between them: the chunk goes the staged-upsert way, which writes what COPY would.
        assert not loader._all_new(cursor, CUSTOMERS, [45, 55])
        Invoice.objects.create(legacy_id="I00050", number="I00050", customer=Customer.objects.get(),
                               invoiced_at=dt.datetime(2024, 1, 1, tzinfo=dt.UTC))
        assert loader._all_new(cursor, INVOICES, ["I00049", "I00051"])
        assert not loader._all_new(cursor, INVOICES, ["I00049", "I00050"])


@pytest.mark.django_db(transaction=True)
def test_new_header_ids_come_from_the_tables_sequence_looked_up_once():
    from django.test.utils import CaptureQueriesContext

    from legacy_migration.load import Loader

    loader = Loader()
    taken = CustomerFactory().pk
    with CaptureQueriesContext(connections["default"]) as queries, connections["default"].cursor() as cursor:
        first, second = loader._new_ids(cursor, "orders_customer", 3), loader._new_ids(cursor, "orders_customer", 2)
    ids = first + second
    assert len(set(ids)) == 5 and min(ids) > taken and ids == sorted(ids)
    assert CustomerFactory().pk > max(ids)  # the table's own inserts go on after them
    assert sum("pg_get_serial_sequence" in q["sql"] for q in queries.captured_queries) == 1


def test_a_migration_sets_the_collector_for_throughput_and_gives_it_back():
    import gc

    from legacy_migration.runner import collector_for_batch_work

    before = gc.get_threshold(), gc.get_freeze_count()
    with collector_for_batch_work():
        assert gc.get_threshold()[0] == 100_000
        assert gc.get_freeze_count() > 0  # what existed before the work is out of the collector's sight
    assert (gc.get_threshold(), gc.get_freeze_count()) == before


@pytest.mark.django_db(transaction=True, databases=["default", "legacy"])
def test_incremental_run_reads_only_records_changed_since():
    expected = legacy_db.build("legacy")
    migrate("legacy")
    changed = sorted(expected.orders)[:3]
    with connections["legacy"].cursor() as cursor:
        for ono in changed:
            cursor.execute('UPDATE "ORDHDR" SET "ORD_STATUS" = %s, "LAST_UPD_DT" = %s WHERE "ORD_NO" = %s',
                           ["S", dt.datetime(2025, 6, 1, 12, 0), ono])
    report = migrate("legacy", "--since", "2025-06-01T00:00", "--entities", "orders")
    assert report["entities"]["orders"]["read"] == 3
    assert report["entities"]["orders"]["updated"] == 3
    assert set(Order.objects.filter(status="shipped").values_list("legacy_id", flat=True)) == set(changed)


@pytest.mark.django_db(transaction=True, databases=["default", "legacy"])
def test_dry_run_reports_the_figures_and_writes_nothing():
    expected = legacy_db.build("legacy")
    report = migrate("legacy", "--dry-run")
    assert report["dry_run"] and report["entities"]["customers"]["inserted"] == len(expected.customers)
    assert not Customer.objects.exists() and not Order.objects.exists()
    assert not MigrationIssue.objects.exists()


@pytest.mark.django_db(transaction=True, databases=["default", "legacy_postgres"])
def test_parallel_workers_share_one_run_and_load_each_record_once():
    expected = legacy_db.build("legacy_postgres", customers=60, orders=400, invoices=200)
    report = migrate("legacy_postgres", "--workers", "3", "--batch-size", "20")
    assert report["status"] == RunStatus.SUCCEEDED
    assert_migrated_as_expected(expected)
    workers = set(WorkItem.objects.values_list("worker", flat=True))
    assert len(workers) >= 2, "the work was not shared between processes"


@pytest.mark.django_db(transaction=True, databases=["default", "legacy"])
def test_a_bad_row_the_database_refuses_is_rejected_and_the_run_goes_on():
    legacy_db.build("legacy")
    # SQLite does not enforce VARCHAR(30); the modern column does. The mapping cannot know.
    with connections["legacy"].cursor() as cursor:
        cursor.execute('UPDATE "CUSTMAST" SET "PHONE" = %s WHERE "CUST_ID" = 7', ["5" * 45])
    report = migrate("legacy", "--batch-size", "10")
    assert report["status"] == RunStatus.SUCCEEDED
    refused = MigrationIssue.objects.get(rule="database_refused")
    assert refused.legacy_key == "7" and refused.raw["PHONE"] == "5" * 45
    assert Customer.objects.filter(legacy_id=8).exists() and not Customer.objects.filter(legacy_id=7).exists()


RAW_ORDER = {"ORD_NO": 12, "TOTAL_AMT": Decimal("10.0050"), "ORD_DT": dt.datetime(2023, 11, 5, 1, 30),
             "REQ_SHIP_DT": dt.date(1900, 1, 1), "NOTES": b"caf\xe9 \x80", "PO_NUMBER": None, "QTY": 2.5,
             "lines": [{"LINE_NO": 1, "UNIT_PRICE": Decimal("-0.0001"), "ITEM_DESC": "Œuvre “quoted”"}]}


def test_raw_values_as_json_text_are_what_json_safe_makes_of_them():
    assert raw_json(RAW_ORDER) == json.dumps(json_safe(RAW_ORDER))
    assert json.loads(raw_json(RAW_ORDER))["NOTES"] == "café €"
    with pytest.raises(TypeError, match="timedelta"):
        raw_json({"AGE": dt.timedelta(days=1)})


@pytest.mark.django_db(transaction=True)
def test_issues_keep_the_raw_legacy_values_exactly_once_per_finding():
    run = MigrationRun.objects.create(options={})
    findings = [Finding("order", "12", rule, rule.value) for rule in (Rule.TOTAL_MISMATCH, Rule.NO_LINES)]
    save_issues(run.pk, [(IssueKind.WARNING, finding, RAW_ORDER) for finding in findings])
    stored = list(MigrationIssue.objects.filter(run=run).order_by("rule"))
    assert [(i.kind, i.rule, i.legacy_key, i.message) for i in stored] == [
        (IssueKind.WARNING, "no_lines", "12", "no_lines"), (IssueKind.WARNING, "total_mismatch", "12", "total_mismatch")]
    assert all(issue.raw == json_safe(RAW_ORDER) for issue in stored)
    assert stored[0].raw["TOTAL_AMT"] == "10.0050" and stored[0].raw["lines"][0]["UNIT_PRICE"] == "-0.0001"


@pytest.mark.django_db(transaction=True, databases=["default", "legacy_postgres"])
def test_a_lost_legacy_connection_stops_the_run_clearly_and_a_rerun_resumes_it():
    expected = legacy_db.build("legacy_postgres")
    with connections["legacy_postgres"].cursor() as cursor:
        cursor.execute('ALTER TABLE "ORDHDR" RENAME TO "ORDHDR_AWAY"')
    with pytest.raises(CommandError, match="run the same command again to resume"):
        migrate("legacy_postgres", "--entities", "customers,orders", "--batch-size", "10")
    run = MigrationRun.objects.get()
    assert run.status == RunStatus.FAILED and "ORDHDR" in run.message
    with connections["legacy_postgres"].cursor() as cursor:
        cursor.execute('ALTER TABLE "ORDHDR_AWAY" RENAME TO "ORDHDR"')
    report = migrate("legacy_postgres", "--entities", "customers,orders", "--batch-size", "10")
    assert report["run"] == run.pk and report["status"] == RunStatus.SUCCEEDED
    assert set(Order.objects.values_list("legacy_id", flat=True)) == expected.orders


# ---------------------------------------------------------------------------------------------
# kill -9
# ---------------------------------------------------------------------------------------------
def _subprocess_env(legacy_alias: str) -> dict:
    default = connections["default"].settings_dict
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "oms.test_settings",
           "DATABASE_URL": f"postgres://{default['USER']}@{default['HOST']}:{default['PORT'] or 5432}/{default['NAME']}"}
    legacy = connections[legacy_alias].settings_dict
    env["TEST_LEGACY_DATABASE_URL"] = (
        f"sqlite:///{legacy['NAME']}" if legacy["ENGINE"].endswith("sqlite3")
        else f"postgres://{legacy['USER']}@{legacy['HOST']}:{legacy['PORT'] or 5432}/{legacy['NAME']}")
    return env


def _done_items() -> int:
    return WorkItem.objects.filter(status="done").count()


@pytest.mark.django_db(transaction=True, databases=["default", "legacy"])
def test_resumes_after_kill_9_at_several_points_without_loss_or_duplicates():
    expected = legacy_db.build("legacy", customers=80, orders=600, invoices=300)
    command = [sys.executable, str(ROOT / "manage.py"), "migrate_legacy", "--no-progress", "--batch-size", "15",
               "--pause", "0.02"]
    env = _subprocess_env("legacy")
    schema = modern_schema()
    kills = 0
    for kill_after in (2, 9, 23, 41):
        process = subprocess.Popen(command, env=env, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        deadline = time.monotonic() + 60
        while _done_items() < kill_after and process.poll() is None and time.monotonic() < deadline:
            time.sleep(0.005)
        if process.poll() is None:
            process.send_signal(signal.SIGKILL)
            kills += 1
        process.wait()
    assert kills >= 3, "the run finished before it could be killed; make the data bigger"
    assert MigrationRun.objects.count() == 1  # every restart resumed the same run
    finish = subprocess.run(command, env=env, cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert finish.returncode == 0, finish.stderr
    assert_migrated_as_expected(expected)
    assert modern_schema() == schema  # every index and foreign key a kill left aside is back
    resumed = snapshot()

    # The same legacy data migrated in one clean run gives exactly the same modern store.
    for model in (InvoiceLine, Invoice, OrderLine, Order, Customer):
        model.objects.all().delete()
    MigrationIssue.objects.all().delete()
    migrate("legacy", "--restart")
    assert snapshot() == resumed


# ---------------------------------------------------------------------------------------------
# Exactness (issue point 9)
# ---------------------------------------------------------------------------------------------
EDGE_AMOUNTS = [
    ("0.0050", "0.01"), ("0.0049", "0.00"), ("1.0050", "1.01"), ("2.6750", "2.68"), ("1234567.8950", "1234567.90"),
    ("9999999999999.9900", "9999999999999.99"), ("9999999999999.9949", "9999999999999.99"),
]


@pytest.mark.django_db(transaction=True, databases=["default", "legacy", "legacy_postgres"])
@pytest.mark.parametrize("alias", ["legacy", "legacy_postgres"])
def test_no_amount_changes_by_a_cent_in_transit_and_one_that_does_not_fit_is_rejected(alias):
    legacy_db.drop_and_create(alias)
    sqlite = connections[alias].vendor == "sqlite"
    d = (lambda v: v) if sqlite else Decimal
    legacy_db.insert(alias, ddl.CUSTMAST, [
        (1, "C1", "Edge", None, None, None, None, None, None, None, None, "A", d("0.0050"),
         dt.datetime(2020, 1, 1), None)])
    headers, lines = [], []
    for number, (raw, _) in enumerate(EDGE_AMOUNTS, start=1):
        headers.append((number, 1, dt.datetime(2024, 1, 1), None, "N", "USD", d(raw), d("0"), d(raw), d(raw), d(raw),
                        None, None, None, None, None, None, None, None, None, "N", None, None))
        lines.append((number, 1, "SKU", None, d("1.235"), d("1234.5678"), d("12.50"), d(raw)))
    too_big = len(EDGE_AMOUNTS) + 1
    headers.append((too_big, 1, dt.datetime(2024, 1, 1), None, "N", "USD", d("99999999999999.9999"), d("0"), d("0"),
                    d("0"), d("99999999999999.9999"), None, None, None, None, None, None, None, None, None, "N", None,
                    None))
    lines.append((too_big, 1, "SKU", None, d("1"), d("1"), d("0"), d("1")))
    legacy_db.insert(alias, ddl.ORDHDR, headers)
    legacy_db.insert(alias, ddl.ORDDTL, lines)
    legacy_db.insert(alias, ddl.INVHDR, [])
    migrate(alias)
    for number, (_, carried) in enumerate(EDGE_AMOUNTS, start=1):
        order = Order.objects.get(legacy_id=number)
        assert (order.subtotal, order.tax, order.freight, order.total) == (Decimal(carried),) * 4
        line = order.lines.get()
        assert (line.quantity, line.unit_price, line.discount_percent, line.line_total) == (
            Decimal("1.235"), Decimal("1234.5678"), Decimal("12.50"), Decimal(carried))
    rejection = MigrationIssue.objects.get(entity="order", legacy_key=str(too_big))
    assert rejection.rule == "value_out_of_range" and "99999999999999.9999" in rejection.message
    assert Customer.objects.get(legacy_id=1).credit_limit == Decimal("0.01")


@pytest.mark.django_db(transaction=True, databases=["default", "legacy"])
def test_an_api_read_after_a_migration_batch_is_fresh(sam):
    from rest_framework.test import APIClient
    from rest_framework_simplejwt.tokens import AccessToken

    expected = legacy_db.build("legacy")
    migrate("legacy")
    key = min(expected.orders)
    order = Order.objects.get(legacy_id=key)
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {AccessToken.for_user(sam)}")
    first = client.get(f"/api/v1/orders/{order.pk}/")
    again = client.get(f"/api/v1/orders/{order.pk}/")
    assert again.headers.get("X-Cache") == "hit" and again.json()["notes"] == "note"
    with connections["legacy"].cursor() as cursor:
        cursor.execute('UPDATE "ORDHDR" SET "NOTES" = %s WHERE "ORD_NO" = %s', ["changed in legacy", key])
    migrate("legacy")
    after = client.get(f"/api/v1/orders/{order.pk}/")
    assert first.status_code == 200 and after.json()["notes"] == "changed in legacy"
