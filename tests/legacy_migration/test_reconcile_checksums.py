"""Checksum narrowing: a reconciliation re-reads only the key ranges whose legacy or modern side changed.

Each test starts from the small fixture (tests/legacy_migration/legacy_db.py) migrated into modern,
reconciles it once (which stores a checksum pair per range of 5 records), then changes one side
and reconciles again.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from django.conf import settings
from django.db import connections
from django.db.models import F

from legacy_migration import checksums, ddl
from legacy_migration.checksums import Span
from legacy_migration.models import Entity, ReconciledRange
from legacy_migration.reconcile import SPECS, Reconciler
from legacy_migration.runner import STEPS
from orders.models import Order, OrderLine
from tests.legacy_migration import legacy_db
from tests.legacy_migration.test_migrate_legacy import migrate
from tests.legacy_migration.test_reconcile import found, legacy_sql, reconcile

RANGE = ("--range-size", "5")  # with --batch-size 17: spans of 3 ranges, so spans and ranges both matter


def narrowing(report: dict, entity: str) -> dict:
    return report["scope"]["narrowing"][entity]


@pytest.fixture
def verified():
    """The fixture migrated and reconciled once: every range stored with its checksums."""
    expected = legacy_db.build("legacy")
    migrate("legacy", "--batch-size", "13")
    code, report = reconcile(*RANGE)
    assert code == 0, report["discrepancies"][:5]
    return expected, report


pytestmark = pytest.mark.django_db(transaction=True, databases=["default", "legacy"])


# -- what is skipped, what is found ----------------------------------------------------------------------
def test_a_second_reconciliation_skips_every_unchanged_range_and_reports_the_same_figures(verified):
    _, first = verified
    code, second = reconcile(*RANGE)
    assert code == 0
    for entity in ("customers", "orders", "invoices"):
        ranges = narrowing(second, entity)
        assert ranges["checksummed"] == ReconciledRange.objects.filter(entity=entity).count() > 1
        assert ranges["skipped"] == ranges["checksummed"] and ranges.get("compared", 0) == 0
    assert second["figures"] == first["figures"]
    assert second["control_totals"] == first["control_totals"]


def test_finds_a_change_made_only_in_modern_and_compares_only_its_range(verified):
    expected, _ = verified
    key = sorted(expected.orders)[20]
    Order.objects.filter(legacy_id=key).update(total=F("total") + Decimal("0.01"))
    line_key = sorted(expected.orders)[40]
    OrderLine.objects.filter(order__legacy_id=line_key, line_number=2).update(quantity=Decimal("1.001"))
    code, report = reconcile(*RANGE)
    assert code == 1
    assert found(report) == {("order", str(key), "differs", ("total",)),
                             ("order_line", f"{line_key}/2", "differs", ("quantity",))}
    orders = narrowing(report, "orders")
    assert orders["compared"] == 2 and orders["skipped"] == orders["checksummed"] - 2
    assert narrowing(report, "customers")["compared"] == 0


def test_finds_a_change_made_only_in_legacy(verified):
    expected, _ = verified
    key = sorted(expected.orders)[30]
    legacy_sql('UPDATE "ORDHDR" SET "NOTES" = %s WHERE "ORD_NO" = %s', ["changed at the source", key])
    code, report = reconcile(*RANGE)
    assert code == 1
    assert found(report) == {("order", str(key), "differs", ("notes",))}
    notes = next(d for d in report["discrepancies"] if d["legacy_key"] == str(key))["fields"]["notes"]
    assert notes == {"legacy": "changed at the source", "modern": "note"}
    assert narrowing(report, "orders")["compared"] == 1


def test_a_legacy_change_the_mapping_absorbs_is_compared_and_found_equal(verified):
    legacy_sql('UPDATE "CUSTMAST" SET "CUST_NAME" = %s WHERE "CUST_ID" = 7', ["   Customer 7 Café   "])
    code, report = reconcile(*RANGE)
    assert code == 0 and report["discrepancies"] == []
    assert narrowing(report, "customers")["compared"] == 1  # the raw row changed; what it means did not


def test_a_range_that_disagrees_is_compared_again_until_it_is_put_right(verified):
    expected, _ = verified
    key = max(expected.orders)
    Order.objects.filter(legacy_id=key).update(status="shipped")
    for _ in range(2):  # nothing changed in between: still reported, never remembered as equal
        code, report = reconcile(*RANGE)
        assert code == 1 and found(report) == {("order", str(key), "differs", ("status",))}
        assert narrowing(report, "orders")["compared"] == 1
    Order.objects.filter(legacy_id=key).update(status="confirmed")
    code, report = reconcile(*RANGE)
    assert code == 0 and narrowing(report, "orders")["compared"] == 1
    code, report = reconcile(*RANGE)
    assert code == 0 and narrowing(report, "orders").get("compared", 0) == 0


def test_missing_and_gone_records_are_found_behind_the_checksums(verified):
    expected, _ = verified
    orders = sorted(o for o in expected.orders if o > 60)  # not invoiced: free to delete
    missing, gone = orders[0], orders[-1]
    OrderLine.objects.filter(order__legacy_id=missing).delete()
    Order.objects.filter(legacy_id=missing).delete()
    legacy_sql('DELETE FROM "ORDDTL" WHERE "ORD_NO" = %s', [gone])
    legacy_sql('DELETE FROM "ORDHDR" WHERE "ORD_NO" = %s', [gone])
    code, report = reconcile(*RANGE)
    assert found(report) == {("order", str(missing), "missing", ()), ("order", str(gone), "extra", ())}


def test_an_invoice_gone_from_legacy_is_found_although_string_keys_are_matched_by_key(verified):
    expected, _ = verified
    number = sorted(expected.invoices)[-1]
    legacy_sql('DELETE FROM "INVDTL" WHERE "INV_NO" = %s', [number])
    legacy_sql('DELETE FROM "INVHDR" WHERE "INV_NO" = %s', [number])
    code, report = reconcile(*RANGE)
    assert found(report) == {("invoice", number, "extra", ())}
    assert narrowing(report, "invoices")["modern_outside_ranges"] == 1


def test_a_parent_state_change_is_noticed_behind_unchanged_checksums(verified):
    """Orders of a rejected customer are rightly absent. Fix the customer at the source and migrate
    the customers only: the orders' own rows did not change on either side, yet they are now due."""
    expected, _ = verified
    customer = 5  # CUST_STATUS 'Q' in the fixture: rejected, and so are its orders
    orders_of_customer = sorted(o for o in expected.orders_rejected if o % 42 + 1 == customer)
    invoices_of_customer = sorted(f"INV-{n:07d}" for n in range(1, 61)
                                  if n % 40 + 1 == customer and (n % 10 == 0 or n not in expected.orders_rejected))
    assert orders_of_customer and invoices_of_customer
    legacy_sql('UPDATE "CUSTMAST" SET "CUST_STATUS" = %s WHERE "CUST_ID" = %s', ["A", customer])
    migrate("legacy", "--entities", "customers")
    code, report = reconcile(*RANGE)
    assert found(report) == ({("order", str(o), "missing", ()) for o in orders_of_customer}
                             | {("invoice", n, "missing", ()) for n in invoices_of_customer})
    orders = narrowing(report, "orders")
    assert 0 < orders["compared"] <= len(orders_of_customer) and orders["skipped"] > 0


def test_new_legacy_records_at_the_open_end_are_compared_then_cut_into_ranges_of_their_own(verified):
    expected, _ = verified
    first_new = max(expected.orders | expected.orders_rejected | expected.orders_excluded) + 1
    new = list(range(first_new, first_new + 12))
    headers = [(n, 1, dt.datetime(2024, 2, 1, 9, 0), None, "A", "USD", "30.0000", "0.0000", "2.4000", "5.0000",
                "37.4000", "Ship", "1 Main", None, "Albany", "NY", "12207", "US", f"PO-{n}", "new", "N", "jsmith",
                dt.datetime(2024, 2, 1, 9, 0)) for n in new]
    lines = [(n, 1, "SKU-1", "Widget", "3.000", "10.0000", "0.00", "30.0000") for n in new]
    legacy_db.insert("legacy", ddl.ORDHDR, headers)
    legacy_db.insert("legacy", ddl.ORDDTL, lines)
    before = ReconciledRange.objects.filter(entity=Entity.ORDERS).count()
    code, report = reconcile(*RANGE)
    assert found(report) == {("order", str(n), "missing", ()) for n in new}
    assert ReconciledRange.objects.filter(entity=Entity.ORDERS).count() > before  # the open end was re-cut
    migrate("legacy")
    code, report = reconcile(*RANGE)
    assert code == 0 and report["figures"]["orders"]["matched"] == len(expected.orders) + len(new)
    code, report = reconcile(*RANGE)
    assert code == 0 and narrowing(report, "orders").get("compared", 0) == 0


def test_full_compare_compares_everything_and_no_checksums_remembers_nothing(verified):
    code, report = reconcile(*RANGE, "--full-compare")
    orders = narrowing(report, "orders")
    assert code == 0 and orders["compared"] == orders["checksummed"] and not orders.get("skipped")
    ReconciledRange.objects.all().delete()
    code, report = reconcile(*RANGE, "--no-checksums")
    assert code == 0 and not ReconciledRange.objects.exists()
    assert "checksummed" not in narrowing(report, "orders")


def test_ranges_of_another_mapping_or_legacy_database_are_not_trusted(verified):
    stored = ReconciledRange.objects.filter(entity=Entity.ORDERS).count()
    ReconciledRange.objects.update(scope="0" * 64)
    code, report = reconcile(*RANGE)
    orders = narrowing(report, "orders")
    assert code == 0 and orders["compared"] == orders["checksummed"] and not orders.get("skipped")
    assert orders["discarded"] == stored
    assert not ReconciledRange.objects.filter(scope="0" * 64).exists()


def test_workers_find_exactly_what_one_process_finds(verified):
    expected, _ = verified
    keys = sorted(expected.orders)
    Order.objects.filter(legacy_id=keys[3]).update(notes="typed over")
    Order.objects.filter(legacy_id=keys[-3]).update(total=F("total") + 1)
    _, alone = reconcile(*RANGE, "--no-checksums")
    _, forked = reconcile(*RANGE, "--no-checksums", "--workers", "2")
    assert found(forked) == found(alone) == {("order", str(keys[3]), "differs", ("notes",)),
                                              ("order", str(keys[-3]), "differs", ("total",))}
    assert forked["figures"] == alone["figures"]
    assert forked["control_totals"] == alone["control_totals"]


# -- reading -----------------------------------------------------------------------------------------------
@pytest.mark.parametrize("entity", [Entity.CUSTOMERS, Entity.ORDERS, Entity.INVOICES])
def test_reconciliation_reads_and_maps_exactly_as_the_migration_step_does(entity):
    legacy_db.build("legacy")
    migrate("legacy")
    legacy_sql('UPDATE "CUSTMAST" SET "CUST_CODE" = %s WHERE "CUST_ID" = 9', ["C0000008"])  # a duplicate code
    reconciler = Reconciler(entities=[entity])
    step = reconciler._step(SPECS[entity])
    legacy = reconciler._legacy(step, Span(None, (None,)), inclusive=False)
    table = STEPS[entity].table
    with connections["legacy"].cursor() as cursor:
        cursor.execute(f'SELECT MAX("{table.key}") FROM "{table.name}"')
        last = cursor.fetchone()[0]
    pairs = step.read("", str(last))

    def essence(outcome):
        return (outcome.legacy_key, outcome.values, outcome.lines,
                outcome.rejection and outcome.rejection.rule, outcome.exclusion and outcome.exclusion.rule)

    assert [essence(o) for o in legacy.outcomes] == [essence(o) for o, _ in pairs]
    assert any(o.rejection for o in legacy.outcomes)


# -- the SQL each engine gets (SQL Server and Oracle without a server) ------------------------------------
SPAN = Span(100, (200, 300, None))  # (100, 200], (200, 300], (300, …)


def _placeholders(sql: str) -> int:
    return sql.count("%s")


@pytest.mark.parametrize("vendor", ["microsoft", "oracle", "mysql", "postgresql", "sqlite"])
def test_one_query_checksums_every_range_of_a_span_with_a_parameter_per_bound(vendor):
    sql = checksums.legacy_checksums_sql(vendor, ddl.ORDHDR, "ORD_NO", SPAN)
    assert _placeholders(sql) == len(checksums.span_params(SPAN)) == 3
    assert checksums.span_params(SPAN) == [200, 300, 100]
    key = ddl.quote(vendor, "ORD_NO")
    assert f"CASE WHEN {key} <= %s THEN 0 WHEN {key} <= %s THEN 1 ELSE 2 END" in sql
    assert sql.endswith(" GROUP BY r") and f"WHERE {key} > %s)" in sql.replace(f" ORDER BY {key})", ")")
    assert "OFFSET" not in sql.upper()


def test_sql_server_hashes_each_column_length_prefixed_with_hashbytes_md5():
    sql = checksums.legacy_checksums_sql("microsoft", ddl.ORDHDR, "ORD_NO", SPAN)
    assert "HASHBYTES('MD5', CONCAT(" in sql and "SUM(h)" in sql
    for column in ddl.ORDHDR.column_names:
        assert f"CASE WHEN [{column}] IS NULL THEN N'~' ELSE CONCAT(DATALENGTH(" in sql
    assert "CONVERT(NVARCHAR(30), [ORD_DT], 121)" in sql  # milliseconds take part
    assert "AS BIGINT)" in sql  # a range's sum cannot overflow an INT


def test_oracle_hashes_with_ora_hash_and_the_clob_in_chunks():
    sql = checksums.legacy_checksums_sql("oracle", ddl.ORDHDR, "ORD_NO", SPAN)
    assert 'ORA_HASH(NVL2("ORD_NO", LENGTH(TO_CHAR("ORD_NO", \'TM9\'))' in sql
    assert "TO_CHAR(\"ORD_DT\", 'YYYY-MM-DD HH24:MI:SS')" in sql
    assert 'DBMS_LOB.GETLENGTH("NOTES")' in sql and 'DBMS_LOB.SUBSTR("NOTES", 1000, 3001)' in sql
    assert 'ORA_HASH(NVL2("NOTES"' not in sql  # ORA_HASH takes no LOB
    assert "MOD(" in sql and sql.count("ORA_HASH(") == 1 + checksums.ORACLE_LOB_CHUNKS


def test_every_engine_has_a_row_hash_and_an_unknown_one_is_refused():
    assert "CRC32(CONCAT_WS(',', QUOTE(`CUST_ID`)" in checksums.row_hash_sql("mysql", ddl.CUSTMAST)
    assert 'md5(ROW("CUST_ID", "CUST_CODE"' in checksums.row_hash_sql("postgresql", ddl.CUSTMAST)
    assert checksums.row_text_sql(ddl.ORDDTL).startswith("printf('%Q,%Q,%Q,%Q,%Q,%Q,%Q,%Q', \"ORD_NO\"")
    with pytest.raises(ValueError):
        checksums.row_hash_sql("db2", ddl.CUSTMAST)


def test_a_span_is_read_in_key_order_with_each_row_s_range_as_the_engine_orders_it():
    sql = checksums.span_rows_sql("microsoft", ddl.ORDDTL, "ORD_NO", SPAN)
    assert sql.startswith("SELECT [ORD_NO], [LINE_NO], [ITEM_SKU]")
    assert sql.endswith(", CASE WHEN [ORD_NO] <= %s THEN 0 WHEN [ORD_NO] <= %s THEN 1 ELSE 2 END FROM [ORDDTL] "
                        "WHERE [ORD_NO] > %s ORDER BY [ORD_NO], [LINE_NO]")
    sql = checksums.span_rows_sql("oracle", ddl.INVHDR, "INV_NO", Span("I04567", ("I04999",)), inclusive=True,
                                  since='("INV_DT" >= %s OR "PAID_DT" >= %s)')
    assert sql.endswith(', 0 FROM "INVHDR" WHERE "INV_NO" >= %s AND "INV_NO" <= %s '
                        'AND ("INV_DT" >= %s OR "PAID_DT" >= %s) ORDER BY "INV_NO"')
    assert "OFFSET" not in sql.upper() and "FETCH" not in sql.upper()


def test_string_key_ranges_are_cut_by_the_legacy_engine_and_read_back_with_their_range():
    span = Span("INV-0000010", ("INV-0000020", None))
    sql = checksums.legacy_keys_sql("microsoft", ddl.INVHDR, span)
    assert sql == ("SELECT [INV_NO], CASE WHEN [INV_NO] <= %s THEN 0 ELSE 1 END FROM [INVHDR] "
                   "WHERE [INV_NO] > %s")
    assert checksums.span_params(span) == ["INV-0000020", "INV-0000010"]


def test_a_span_may_be_open_only_at_its_last_range():
    with pytest.raises(ValueError):
        Span(None, (None, 5))
    assert checksums.span_where_sql("k", Span(None, (None,))) == "1 = 1"


def test_orphan_lines_are_counted_by_an_anti_join():
    sql = checksums.orphan_count_sql("oracle", ddl.INVDTL, ddl.INVHDR)
    assert sql == ('SELECT COUNT(*) FROM "INVDTL" d WHERE NOT EXISTS '
                   '(SELECT 1 FROM "INVHDR" h WHERE h."INV_NO" = d."INV_NO")')


# -- the stand-ins run their own checksum SQL for real ------------------------------------------------------
@pytest.mark.django_db(transaction=True, databases=["default", "legacy_postgres", "legacy_mariadb"])
@pytest.mark.parametrize("alias", ["legacy_postgres", "legacy_mariadb"])
def test_postgresql_and_mariadb_checksums_skip_what_is_unchanged_and_see_a_legacy_change(alias):
    expected = legacy_db.build(alias)
    migrate(alias)
    code, _ = reconcile("--legacy-database", alias, *RANGE)
    assert code == 0
    code, report = reconcile("--legacy-database", alias, *RANGE)
    assert code == 0 and narrowing(report, "orders")["skipped"] == narrowing(report, "orders")["checksummed"]
    key = sorted(expected.orders)[10]
    q = lambda name: ddl.quote(connections[alias].vendor, name)  # noqa: E731
    with connections[alias].cursor() as cursor:
        cursor.execute(f"UPDATE {q('ORDHDR')} SET {q('PO_NUMBER')} = %s WHERE {q('ORD_NO')} = %s", ["PO-CHANGED", key])
    code, report = reconcile("--legacy-database", alias, *RANGE)
    assert found(report) == {("order", str(key), "differs", ("po_number",))}
    assert narrowing(report, "orders")["compared"] == 1


# -- table against table (the bench's like-for-like comparison with reladiff) ------------------------------
def test_table_diff_finds_exactly_the_rows_that_differ_between_a_table_and_its_copy():
    import psycopg

    legacy_db.build("legacy")
    migrate("legacy")
    with connections["default"].cursor() as cursor:
        cursor.execute("DROP TABLE IF EXISTS orders_order_diffcopy")
        cursor.execute("CREATE TABLE orders_order_diffcopy AS SELECT * FROM orders_order")
        keys = sorted(Order.objects.values_list("legacy_id", flat=True))
        cursor.execute("UPDATE orders_order_diffcopy SET total = total + 0.01 WHERE legacy_id = %s", [keys[1]])
        cursor.execute("UPDATE orders_order_diffcopy SET notes = 'x' WHERE legacy_id = %s", [keys[-1]])
        cursor.execute("DELETE FROM orders_order_diffcopy WHERE legacy_id = %s", [keys[5]])
    db = settings.DATABASES["default"]
    try:
        diff = checksums.table_diff(
            lambda: psycopg.connect(host=db["HOST"] or "127.0.0.1", port=db["PORT"] or 5432, user=db["USER"],
                                    password=db["PASSWORD"] or None, dbname=connections["default"].settings_dict["NAME"]),
            "orders_order", "orders_order_diffcopy", key="legacy_id",
            columns=["number", "status", "total", "notes", "ordered_at"], segment=10,
            pg_version=connections["default"].pg_version)
    finally:
        with connections["default"].cursor() as cursor:
            cursor.execute("DROP TABLE orders_order_diffcopy")
    assert diff.only_in_a == [keys[5]] and diff.only_in_b == []
    assert diff.differing == [(keys[1], ["total"]), (keys[-1], ["notes"])]
    assert diff.segments_differing <= 3 < diff.segments
    assert diff.rows_fetched < len(keys)  # only the differing segments' rows were moved
