"""The SQL Server and Oracle paths, tested without a server: configuration and the SQL they run."""

from __future__ import annotations

import pytest

from legacy_migration import extract
from legacy_migration.connections import legacy_database_config
from legacy_migration.extract import CUSTMAST, INVDTL, INVHDR, ORDDTL, ORDHDR
from legacy_migration.routers import LegacyRouter
from legacy_migration.models import LegacyCustomer, LegacyOrderLine, MigrationRun
from orders.models import Order


def test_sql_server_url_uses_mssql_django_with_the_odbc_driver():
    config = legacy_database_config("mssql://oms_reader:s3cret@legacy-db.internal:1433/OMS")
    assert config["ENGINE"] == "mssql"
    assert (config["NAME"], config["USER"], config["HOST"], config["PORT"]) == ("OMS", "oms_reader",
                                                                               "legacy-db.internal", 1433)
    assert config["OPTIONS"]["driver"] == "ODBC Driver 18 for SQL Server"
    assert config["ATOMIC_REQUESTS"] is False and config["CONN_MAX_AGE"] == 0


def test_sql_server_driver_can_be_chosen_in_the_url():
    config = legacy_database_config("mssql://u:p@h:1433/OMS?driver=ODBC+Driver+17+for+SQL+Server")
    assert config["OPTIONS"]["driver"] == "ODBC Driver 17 for SQL Server"


def test_oracle_url_uses_django_oracle_backend_on_oracledb_returning_decimals():
    import oracledb

    config = legacy_database_config("oracle://scott:tiger@ora.internal:1521/ORCLPDB1")
    assert config["ENGINE"] == "django.db.backends.oracle"
    assert (config["NAME"], config["HOST"], str(config["PORT"])) == ("ORCLPDB1", "ora.internal", "1521")
    assert oracledb.defaults.fetch_decimals is True  # NUMBER(19,4) must never arrive as a float


def test_django_oracle_backend_imports_on_oracledb():
    from django.db.backends.oracle import base

    assert base.Database.__name__ == "oracledb"


def test_mssql_django_backend_imports():
    from mssql import base

    assert base.DatabaseWrapper.vendor == "microsoft"


@pytest.mark.parametrize("url, engine", [
    ("sqlite:////tmp/legacy.sqlite3", "django.db.backends.sqlite3"),
    ("postgres://postgres@127.0.0.1:5432/legacy", "django.db.backends.postgresql"),
    ("mysql://root@127.0.0.1:3306/legacy", "django.db.backends.mysql"),
])
def test_stand_in_urls(url, engine):
    assert legacy_database_config(url)["ENGINE"] == engine


def test_router_sends_legacy_models_to_legacy_and_refuses_writes_and_migrations():
    router = LegacyRouter()
    assert router.db_for_read(LegacyCustomer) == "legacy" and router.db_for_read(LegacyOrderLine) == "legacy"
    assert router.db_for_read(Order) == "default" and router.db_for_write(MigrationRun) == "default"
    with pytest.raises(PermissionError):
        router.db_for_write(LegacyCustomer)
    assert router.allow_migrate("legacy", "orders") is False
    assert router.allow_migrate("default", "legacy_migration", model=LegacyCustomer) is False
    assert router.allow_migrate("default", "orders") is None


# -- the SQL the extraction sends ---------------------------------------------------------------------
def test_sql_server_keyset_range_is_bracket_quoted_and_ordered_by_key():
    sql = extract.range_sql("microsoft", ORDHDR, since=False)
    assert sql.startswith("SELECT [ORD_NO], [CUST_ID], [ORD_DT]")
    assert sql.endswith("FROM [ORDHDR] WHERE [ORD_NO] > %s AND [ORD_NO] <= %s ORDER BY [ORD_NO]")
    assert "OFFSET" not in sql.upper()


def test_oracle_keyset_range_quotes_upper_case_names():
    sql = extract.range_sql("oracle", INVHDR, since=True, bounded_below=False)
    assert 'FROM "INVHDR" WHERE "INV_NO" <= %s AND ("INV_DT" >= %s OR "PAID_DT" >= %s) ORDER BY "INV_NO"' in sql


def test_lines_are_read_by_header_key_range_in_composite_key_order():
    assert extract.lines_for_range_sql("microsoft", ORDDTL).endswith(
        "FROM [ORDDTL] WHERE [ORD_NO] > %s AND [ORD_NO] <= %s ORDER BY [ORD_NO], [LINE_NO]")
    assert extract.lines_for_range_sql("oracle", INVDTL).endswith(
        'FROM "INVDTL" WHERE "INV_NO" > %s AND "INV_NO" <= %s ORDER BY "INV_NO", "LINE_NO"')


def test_incremental_extraction_filters_on_last_update():
    assert extract.keys_sql("microsoft", CUSTMAST, since=True) == (
        "SELECT [CUST_ID] FROM [CUSTMAST] WHERE [LAST_UPD_DT] >= %s ORDER BY [CUST_ID]")
    assert extract.since_params(INVHDR, "T") == ["T", "T"]


def test_in_lists_stay_under_oracle_1000_and_sql_server_2100_limits():
    keys = list(range(2500))
    assert [len(c) for c in extract.chunks(keys)] == [1000, 1000, 500]
    sql = extract.exists_sql("oracle", ORDHDR, 1000, ["DEL_FLG"])
    assert sql.startswith('SELECT "ORD_NO", "DEL_FLG" FROM "ORDHDR" WHERE "ORD_NO" IN (%s, ')
    with pytest.raises(AssertionError):
        extract.exists_sql("microsoft", ORDHDR, 1001)


def test_orphan_lines_query_is_an_anti_join():
    sql = extract.orphan_lines_sql("microsoft", ORDDTL, ORDHDR)
    assert "WHERE NOT EXISTS (SELECT 1 FROM [ORDHDR] h WHERE h.[ORD_NO] = d.[ORD_NO])" in sql


def test_no_django_table_is_ever_created_on_any_legacy_connection():
    router = LegacyRouter()
    for alias in ("legacy", "legacy_postgres", "legacy_mariadb"):
        assert router.allow_migrate(alias, "orders") is False
        assert router.allow_migrate(alias, "auth") is False
