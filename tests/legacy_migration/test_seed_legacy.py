"""`manage.py seed_legacy`: the legacy tables per engine, and the dirty data they are filled with.

The quirks are checked against what is in the database, read back through each engine, by rules
written here independently of the generator: the summary must list exactly the records that carry
each quirk, so that the migration's tests can rely on it.
"""

from __future__ import annotations

import hashlib
import io
import json
import re
import sqlite3
from collections import defaultdict
from datetime import datetime
from datetime import timezone as dt_timezone
from decimal import ROUND_HALF_UP, Decimal
from zoneinfo import ZoneInfo

import pytest
from django.conf import settings
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connections

from legacy_migration import ddl
from legacy_migration.seeding import QUIRKS, SeedOptions, SeedRefused, existing_legacy_tables, seed_legacy
from oms.money import AMOUNT_MAX, CURRENCIES

ENGINES = {"legacy": "sqlite", "legacy_postgres": "postgresql", "legacy_mariadb": "mysql"}
SENTINEL = datetime(1900, 1, 1)
#: Quirks an ordinary record can carry by chance (legitimate data, so a clean run may have them).
CAN_OCCUR_BY_CHANCE = {"order_dst_repeated_hour", "invoice_dst_repeated_hour", "order_half_up_amount"}


def on_engines(*aliases: str):
    """Parametrize over legacy aliases, each with the databases its test needs."""
    return pytest.mark.parametrize("alias", [
        pytest.param(alias, id=ENGINES[alias],
                     marks=pytest.mark.django_db(databases=["default", alias], transaction=True))
        for alias in aliases
    ])


def seed(alias: str = "legacy", *, customers=80, orders=300, invoices=240, seed=11, **options):
    options.setdefault("replace", True)
    options.setdefault("key_limit", 1_000_000)
    return seed_legacy(using=alias, options=SeedOptions(customers=customers, orders=orders, invoices=invoices,
                                                        seed=seed, **options))


def read(alias: str, table_name: str) -> list[dict]:
    """All rows of a legacy table as dicts, money and quantities as Decimal whatever the engine."""
    table = ddl.TABLES_BY_NAME[table_name]
    connection = connections[alias]
    q = lambda name: ddl.quote(connection.vendor, name)  # noqa: E731
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT {', '.join(q(c) for c in table.column_names)} FROM {q(table.name)}")
        raw_rows = cursor.fetchall()
    numeric = {c.name for c in table.columns if c.kind in (ddl.MONEY, ddl.DECIMAL)}
    rows = []
    for raw in raw_rows:
        row = dict(zip(table.column_names, raw))
        for name in numeric:
            if row[name] is not None:
                row[name] = Decimal(row[name])
        rows.append(row)
    return rows


def checksum(alias: str, *, char_semantics: bool = False) -> str:
    """An order-independent fingerprint of the five tables' contents.

    With char_semantics, trailing spaces of CHAR columns do not count (as SQL Server and
    PostgreSQL compare CHAR), so that PostgreSQL's padded '' compares equal to another engine's ''.
    """
    connection = connections[alias]
    total = 0
    for table in ddl.LEGACY_TABLES:
        q = lambda name: ddl.quote(connection.vendor, name)  # noqa: E731
        with connection.cursor() as cursor:
            cursor.execute(f"SELECT {', '.join(q(c) for c in table.column_names)} FROM {q(table.name)}")
            for raw in cursor.fetchall():
                parts = [table.name]
                for column, value in zip(table.columns, raw):
                    if value is None:
                        parts.append("\\N")
                    elif isinstance(value, datetime):
                        parts.append(value.isoformat(" "))
                    elif isinstance(value, str) and char_semantics and column.is_char:
                        parts.append(value.rstrip(" "))
                    else:
                        parts.append(str(value))
                digest = hashlib.blake2b("\x1f".join(parts).encode(), digest_size=16).digest()
                total = (total + int.from_bytes(digest, "big")) % 2**128
    return f"{total:032x}"


def blank(value) -> bool:
    return value is None or not value.strip()


def non_ascii(*values) -> bool:
    return any(value and not value.isascii() for value in values)


def observed_quirks(alias: str) -> dict[str, set]:
    """Which records carry which quirk, decided from the stored rows alone."""
    tz = ZoneInfo(settings.LEGACY_TIME_ZONE)
    customers, orders = read(alias, "CUSTMAST"), read(alias, "ORDHDR")
    lines, invoices, invoice_lines = read(alias, "ORDDTL"), read(alias, "INVHDR"), read(alias, "INVDTL")
    found: dict[str, set] = defaultdict(set)

    def dst(kind: str, key, local: datetime) -> None:
        local = local.replace(microsecond=0)
        if local.replace(tzinfo=tz).astimezone(dt_timezone.utc).astimezone(tz).replace(tzinfo=None) != local:
            found[f"{kind}_dst_spring_gap"].add(key)  # does not survive a round trip: never existed
        elif local.replace(tzinfo=tz, fold=0).utcoffset() != local.replace(tzinfo=tz, fold=1).utcoffset():
            found[f"{kind}_dst_repeated_hour"].add(key)  # two offsets, both real

    customer_ids = {c["CUST_ID"] for c in customers}
    seen_emails: set[str] = set()
    for c in sorted(customers, key=lambda c: c["CUST_ID"]):
        key, name, email = c["CUST_ID"], c["CUST_NAME"], c["EMAIL"]
        if not name.strip():
            found["customer_name_missing"].add(key)
        elif name != name.strip():
            found["customer_name_padded"].add(key)
        if c["CUST_STATUS"].strip() not in {"A", "I", "H"}:
            found["customer_unknown_status"].add(key)
        if blank(c["COUNTRY_CD"]):
            found["customer_blank_country"].add(key)
        if email == "":
            found["customer_email_empty"].add(key)
        elif email is not None:
            normalized = email.strip().lower()
            if normalized in seen_emails:
                found["customer_email_duplicate"].add(key)
            elif email != normalized:
                found["customer_email_messy"].add(key)
            seen_emails.add(normalized)
        if non_ascii(name, c["ADDR_LINE1"], c["ADDR_LINE2"], c["CITY"]):
            found["customer_cp1252_text"].add(key)

    lines_of = defaultdict(list)
    for line in lines:
        lines_of[line["ORD_NO"]].append(line)
    order_numbers = {o["ORD_NO"] for o in orders}
    soft_deleted = {o["ORD_NO"] for o in orders if o["DEL_FLG"] == "Y"}
    for o in orders:
        key = o["ORD_NO"]
        if o["DEL_FLG"] == "Y":
            found["order_soft_deleted"].add(key)
        if o["CUST_ID"] not in customer_ids:
            found["order_orphan_customer"].add(key)
        status = o["ORD_STATUS"].strip()
        if not status:
            found["order_missing_status"].add(key)
        elif status not in set("NAPSDCH"):
            found["order_unknown_status"].add(key)
        if blank(o["CURR_CD"]):
            found["order_blank_currency"].add(key)
        elif o["CURR_CD"].strip() not in CURRENCIES:
            found["order_unknown_currency"].add(key)
        if o["TOTAL_AMT"] > AMOUNT_MAX:
            found["order_amount_too_large"].add(key)
        elif o["TOTAL_AMT"] == AMOUNT_MAX:
            found["order_amount_at_modern_max"].add(key)
        if blank(o["SHIP_COUNTRY"]):
            found["order_blank_ship_country"].add(key)
        if o["REQ_SHIP_DT"] == SENTINEL:
            found["order_ship_date_sentinel"].add(key)
        dst("order", key, o["ORD_DT"])
        if o["ORD_DT"].microsecond or (o["LAST_UPD_DT"] and o["LAST_UPD_DT"].microsecond):
            found["order_sqlserver_milliseconds"].add(key)
        if non_ascii(o["SHIP_NAME"], o["SHIP_ADDR1"], o["SHIP_ADDR2"], o["SHIP_CITY"], o["NOTES"]):
            found["order_cp1252_text"].add(key)
        if abs(o["SUBTOTAL_AMT"] - sum(line["LINE_TOTAL"] for line in lines_of[key])) > Decimal("0.01"):
            found["order_subtotal_mismatch"].add(key)
        computed = o["SUBTOTAL_AMT"] - o["DISC_AMT"] + o["TAX_AMT"] + o["FREIGHT_AMT"]
        if abs(o["TOTAL_AMT"] - computed) > Decimal("0.01"):
            found["order_total_mismatch"].add(key)
        tax = o["TAX_AMT"]
        if tax > 0 and tax * 10000 % 100 == 50 and int(tax * 100) % 2 == 0:
            found["order_half_up_amount"].add(key)
        if o["LAST_UPD_DT"] is None:
            found["order_no_last_update"].add(key)
        numbers = sorted(line["LINE_NO"] for line in lines_of[key])
        if numbers != list(range(1, len(numbers) + 1)):
            found["order_line_number_gaps"].add(key)

    for line in lines:
        key = (line["ORD_NO"], line["LINE_NO"])
        qty, price, disc = line["QTY_ORD"], line["UNIT_PRICE"], line["DISC_PCT"]
        if line["ORD_NO"] not in order_numbers:
            found["line_orphan"].add(key)
        if qty <= 0:
            found["line_non_positive_quantity"].add(key)
        if price < 0:
            found["line_negative_price"].add(key)
        if not 0 <= disc <= 100:
            found["line_discount_out_of_range"].add(key)
        if not line["ITEM_SKU"].strip():
            found["line_missing_sku"].add(key)
        expected = (qty * price * (100 - disc) / 100).quantize(Decimal("0.0001"), rounding=ROUND_HALF_UP)
        if abs(line["LINE_TOTAL"] - expected) > Decimal("0.01"):
            found["line_total_mismatch"].add(key)
        if non_ascii(line["ITEM_DESC"]):
            found["line_cp1252_text"].add(key)
        if qty > 0 and qty % 1:
            found["line_fractional_quantity"].add(key)

    invoice_numbers = {i["INV_NO"] for i in invoices}
    for i in invoices:
        key = i["INV_NO"]
        if i["ORD_NO"] is None:
            found["invoice_manual"].add(key)
        elif i["ORD_NO"] in soft_deleted:
            found["invoice_of_soft_deleted_order"].add(key)
        if i["CUST_ID"] not in customer_ids:
            found["invoice_orphan_customer"].add(key)
        if i["INV_STATUS"].strip() not in {"D", "O", "P", "V"}:
            found["invoice_unknown_status"].add(key)
        if blank(i["CURR_CD"]):
            found["invoice_blank_currency"].add(key)
        elif i["CURR_CD"].strip() not in CURRENCIES:
            found["invoice_unknown_currency"].add(key)
        if i["DUE_DT"] == SENTINEL:
            found["invoice_due_date_sentinel"].add(key)
        if abs(i["INV_AMT"] - i["NET_AMT"] - i["TAX_AMT"]) > Decimal("0.01"):
            found["invoice_amount_mismatch"].add(key)
        dst("invoice", key, i["INV_DT"])
    for line in invoice_lines:
        if line["INV_NO"] not in invoice_numbers:
            found["invoice_line_orphan"].add((line["INV_NO"], line["LINE_NO"]))
    return found


def listed(summary, quirk: str) -> set:
    return {tuple(key) if isinstance(key, list) else key for key in summary.keys(quirk)}


# ---------------------------------------------------------------------------------------------
# The tables
# ---------------------------------------------------------------------------------------------
@on_engines("legacy", "legacy_postgres", "legacy_mariadb")
def test_creates_the_contract_tables_with_their_columns_keys_and_nullability(alias):
    seed(alias, customers=5, orders=10, invoices=8)
    connection = connections[alias]
    assert existing_legacy_tables(alias) == ["CUSTMAST", "ORDHDR", "ORDDTL", "INVHDR", "INVDTL"]
    with connection.cursor() as cursor:
        for table in ddl.LEGACY_TABLES:
            description = connection.introspection.get_table_description(cursor, table.name)
            assert [column.name for column in description] == table.column_names
            assert {c.name: bool(c.null_ok) for c in description} == {c.name: c.nullable for c in table.columns}
            constraints = connection.introspection.get_constraints(cursor, table.name)
            primary = [c["columns"] for c in constraints.values() if c["primary_key"]]
            assert primary == [list(table.primary_key)]
            assert not [c for c in constraints.values() if c["foreign_key"]]
            indexed = {tuple(c["columns"]) for c in constraints.values() if c["index"] and not c["primary_key"]}
            assert (("LAST_UPD_DT",) in indexed) == table.has_last_update


@on_engines("legacy", "legacy_postgres", "legacy_mariadb")
def test_every_quirk_is_present_at_default_rates_and_the_summary_lists_exactly_its_records(alias):
    summary = seed(alias, customers=80, orders=300, invoices=240)
    found = observed_quirks(alias)

    for name, quirk in QUIRKS.items():
        if quirk.rate is not None:
            assert summary.count(name) >= 1, f"{name} missing at default rates"
        assert listed(summary, name) == found[name], name
        assert summary.count(name) == len(found[name]), name
    assert set(found) <= set(QUIRKS)


@pytest.mark.django_db(databases=["default", "legacy"], transaction=True)
def test_honours_the_sizes_asked_for():
    summary = seed(customers=123, orders=456, invoices=789)  # more invoices than orders: the rest are manual
    assert summary.rows["CUSTMAST"] == len(read("legacy", "CUSTMAST")) == 123
    assert summary.rows["ORDHDR"] == len(read("legacy", "ORDHDR")) == 456
    assert summary.rows["INVHDR"] == len(read("legacy", "INVHDR")) == 789
    assert summary.count("invoice_manual") == 789 - 456
    lines_with_header = summary.rows["ORDDTL"] - summary.count("line_orphan")
    assert 2.5 * 456 < lines_with_header < 3.5 * 456  # 1–6 lines per order, about 3 on average
    assert summary.rows["ORDDTL"] == len(read("legacy", "ORDDTL"))
    assert summary.rows["INVDTL"] == len(read("legacy", "INVDTL"))


def test_scale_derives_the_benchmark_proportions():
    options = SeedOptions.at_scale(1_000_000)
    assert (options.customers, options.orders, options.invoices) == (200_000, 1_000_000, 800_000)
    options = SeedOptions.at_scale(1000, invoices=10, seed=5)
    assert (options.customers, options.orders, options.invoices, options.seed) == (200, 1000, 10, 5)


# ---------------------------------------------------------------------------------------------
# Determinism
# ---------------------------------------------------------------------------------------------
@pytest.mark.django_db(databases=["default", "legacy"], transaction=True)
def test_the_same_seed_gives_the_same_rows_and_another_seed_other_rows():
    first = seed(seed=7)
    fingerprint = checksum("legacy")
    second = seed(seed=7, batch_size=17)  # batching is how rows travel, not which rows
    assert checksum("legacy") == fingerprint
    assert second.to_dict() | {"seconds": 0} == first.to_dict() | {"seconds": 0}
    seed(seed=8)
    assert checksum("legacy") != fingerprint


@pytest.mark.django_db(databases=["default", "legacy", "legacy_postgres", "legacy_mariadb"], transaction=True)
def test_the_same_seed_gives_the_same_rows_on_every_engine():
    summaries = {alias: seed(alias, seed=3).to_dict() for alias in ENGINES}
    for summary in summaries.values():
        summary.update(alias="", vendor="", seconds=0)
    assert summaries["legacy"] == summaries["legacy_postgres"] == summaries["legacy_mariadb"]
    # SQLite and MariaDB store exactly what was sent; PostgreSQL pads CHAR values, as SQL Server does.
    assert checksum("legacy") == checksum("legacy_mariadb")
    assert checksum("legacy", char_semantics=True) == checksum("legacy_postgres", char_semantics=True)


# ---------------------------------------------------------------------------------------------
# Values
# ---------------------------------------------------------------------------------------------
@pytest.mark.django_db(databases=["default", "legacy"], transaction=True)
def test_sqlite_stores_money_quantities_and_percentages_as_exact_decimal_text():
    seed()
    places = {"MONEY": 4, (12, 3): 3, (5, 2): 2}
    path = connections["legacy"].settings_dict["NAME"]
    with sqlite3.connect(path) as raw:  # no Django converters: what the file really holds
        for table in ddl.LEGACY_TABLES:
            for column in table.columns:
                if column.kind not in (ddl.MONEY, ddl.DECIMAL):
                    continue
                digits = places["MONEY" if column.kind == ddl.MONEY else column.precision]
                pattern = re.compile(rf"^-?\d+\.\d{{{digits}}}$")
                values = raw.execute(f'SELECT typeof("{column.name}"), "{column.name}" FROM "{table.name}" '
                                     f'WHERE "{column.name}" IS NOT NULL').fetchall()
                assert values, (table.name, column.name)
                assert {kind for kind, _ in values} == {"text"}, (table.name, column.name)
                assert all(pattern.match(value) for _, value in values), (table.name, column.name)
        totals = {row[0] for row in raw.execute('SELECT "TOTAL_AMT" FROM "ORDHDR"')}
    assert {"99999999999999.9999", "9999999999999.9900"} <= totals


@pytest.mark.django_db(databases=["default", "legacy"], transaction=True)
def test_codes_are_padded_to_their_char_width_and_all_text_is_cp1252():
    seed()
    for table in ddl.LEGACY_TABLES:
        for row in read("legacy", table.name):
            for column in table.columns:
                value = row[column.name]
                if isinstance(value, str):
                    value.encode("cp1252")  # SQL Server VARCHAR holds Windows-1252 only
                    assert column.length is None or len(value) <= column.length, (table.name, column.name, value)
    codes = {row["CUST_CODE"] for row in read("legacy", "CUSTMAST")}
    assert all(re.fullmatch(r"C\d{7}  ", code) for code in codes)
    skus = [row["ITEM_SKU"] for row in read("legacy", "ORDDTL") if row["ITEM_SKU"].strip()]
    assert skus and all(len(sku) == 20 and sku != sku.rstrip() for sku in skus)


@pytest.mark.django_db(databases=["default", "legacy"], transaction=True)
def test_dst_edge_times_are_local_times_in_the_repeated_hour_and_the_spring_gap():
    summary = seed()
    ordered_at = {o["ORD_NO"]: o["ORD_DT"] for o in read("legacy", "ORDHDR")}
    repeated = [ordered_at[key] for key in summary.keys("order_dst_repeated_hour")]
    gap = [ordered_at[key] for key in summary.keys("order_dst_spring_gap")]
    # America/New_York: DST ends on the first Sunday of November at 02:00 (01:xx happens twice) and
    # starts on the second Sunday of March at 02:00 (02:xx never happens).
    assert repeated and all(t.month == 11 and t.weekday() == 6 and t.day <= 7 and t.hour == 1 for t in repeated)
    assert gap and all(t.month == 3 and t.weekday() == 6 and 8 <= t.day <= 14 and t.hour == 2 for t in gap)


@pytest.mark.django_db(databases=["default", "legacy"], transaction=True)
def test_sqlserver_milliseconds_are_multiples_of_one_three_hundredth_of_a_second():
    summary = seed()
    stamps = [t for o in read("legacy", "ORDHDR") if o["ORD_NO"] in set(summary.keys("order_sqlserver_milliseconds"))
              for t in (o["ORD_DT"], o["LAST_UPD_DT"]) if t is not None and t.microsecond]
    assert stamps
    assert all(t.microsecond % 1000 == 0 and (t.microsecond // 1000) % 10 in (0, 3, 7) for t in stamps)


@pytest.mark.django_db(databases=["default", "legacy"], transaction=True)
def test_invoices_cover_every_status_and_era_with_payments_that_fit_the_status():
    summary = seed()
    invoices = read("legacy", "INVHDR")
    by_status = defaultdict(list)
    for invoice in invoices:
        by_status[invoice["INV_STATUS"]].append(invoice)
    assert {"D", "O", "P", "V"} <= set(by_status)
    for paid in by_status["P"]:
        assert paid["PAID_AMT"] == paid["INV_AMT"] and paid["PAID_DT"] is not None
    assert any(0 < o["PAID_AMT"] < o["INV_AMT"] for o in by_status["O"])  # partly paid
    assert any(o["PAID_AMT"] == 0 for o in by_status["O"])  # not paid yet
    for invoice in by_status["O"] + by_status["D"] + by_status["V"]:
        assert invoice["PAID_DT"] is None
        assert 0 <= invoice["PAID_AMT"] < invoice["INV_AMT"] or invoice["PAID_AMT"] == 0
    for invoice in by_status["D"] + by_status["V"]:
        assert invoice["PAID_AMT"] == 0
    eras = {"INV-0004567": r"INV-\d{7,8}", "I04567": r"I\d{5,7}", "2009/00123": r"(200[89]|201[01])/\d{5,6}"}
    numbers = [i["INV_NO"] for i in invoices] + [line["INV_NO"] for line in read("legacy", "INVDTL")]
    for example, pattern in eras.items():
        assert re.fullmatch(pattern, example)
        assert any(re.fullmatch(pattern, number) for number in numbers), example
    assert all(any(re.fullmatch(p, number) for p in eras.values()) for number in numbers)
    assert sum(summary.distributions["INVHDR.INV_NO format"].values()) == len(invoices)
    consistent = [i for i in invoices if i["INV_AMT"] == i["NET_AMT"] + i["TAX_AMT"]]
    assert len(consistent) == len(invoices) - summary.count("invoice_amount_mismatch")


@pytest.mark.django_db(databases=["default", "legacy"], transaction=True)
def test_some_soft_deleted_orders_have_invoices_and_special_amount_orders_have_none():
    summary = seed()
    assert summary.count("invoice_of_soft_deleted_order") >= 1
    invoiced = {i["ORD_NO"] for i in read("legacy", "INVHDR")}
    special = set(summary.keys("order_amount_too_large")) | set(summary.keys("order_amount_at_modern_max"))
    assert special and not special & invoiced


@pytest.mark.django_db(databases=["default", "legacy"], transaction=True)
def test_a_dirty_rate_of_zero_gives_clean_data():
    summary = seed(dirty_rate=0)
    found = observed_quirks("legacy")
    dirty = {name for name, keys in found.items() if keys and QUIRKS[name].rate is not None}
    assert dirty <= CAN_OCCUR_BY_CHANCE
    assert all(summary.count(name) == 0 for name in QUIRKS if name not in CAN_OCCUR_BY_CHANCE
               and QUIRKS[name].rate is not None)


@pytest.mark.django_db(databases=["default", "legacy"], transaction=True)
def test_a_quirk_rate_can_be_set_on_its_own():
    summary = seed(orders=400, rates={"order_orphan_customer": 0.1, "line_negative_price": 0})
    assert summary.count("order_orphan_customer") == 40
    assert summary.count("line_negative_price") == 0
    assert summary.count("order_unknown_status") == 4  # the others keep their default rate (1%)


def test_refuses_rates_and_sizes_that_make_no_sense():
    with pytest.raises(SeedRefused, match="unknown quirk 'order_typo'"):
        SeedOptions(customers=1, orders=1, invoices=1, rates={"order_typo": 0.1}).check()
    with pytest.raises(SeedRefused, match="orders need at least one customer"):
        SeedOptions(customers=0, orders=5, invoices=0).check()


# ---------------------------------------------------------------------------------------------
# Existing tables and the command
# ---------------------------------------------------------------------------------------------
@pytest.mark.django_db(databases=["default", "legacy"], transaction=True)
def test_refuses_to_overwrite_existing_legacy_tables_unless_asked_to_replace_them():
    seed(seed=1)
    before = checksum("legacy")
    with pytest.raises(SeedRefused, match="already exist.*--replace"):
        seed(seed=2, replace=False)
    assert checksum("legacy") == before
    seed(seed=2, replace=True)
    assert checksum("legacy") != before


@pytest.mark.django_db(databases=["default", "legacy"])
def test_seeds_inside_a_transaction_the_caller_already_holds():
    summary = seed(orders=20, customers=5, invoices=10)  # SQLite cannot relax fsync inside it: left as is
    assert summary.rows["ORDHDR"] == len(read("legacy", "ORDHDR")) == 20


@pytest.mark.django_db(databases=["default", "legacy"], transaction=True)
def test_command_prints_a_json_summary_and_reports_progress_on_stderr():
    out, err = io.StringIO(), io.StringIO()
    call_command("seed_legacy", "--orders", "50", "--customers", "10", "--invoices", "30", "--seed", "4",
                 "--replace", "--json", "--rate", "order_orphan_customer=0.2", stdout=out, stderr=err)
    summary = json.loads(out.getvalue())
    assert summary["rows"]["ORDHDR"] == 50 and summary["rows"]["CUSTMAST"] == 10 and summary["rows"]["INVHDR"] == 30
    assert summary["quirks"]["order_orphan_customer"]["count"] == 10
    assert len(summary["quirks"]["order_orphan_customer"]["keys"]) == 10
    assert "orders: 50/50 (100.0%)" in err.getvalue() and "rows/s" in err.getvalue()

    with pytest.raises(CommandError, match="already exist"):
        call_command("seed_legacy", "--orders", "5", "--no-progress", stdout=io.StringIO())


@pytest.mark.django_db(databases=["default", "legacy"], transaction=True)
def test_command_caps_the_keys_listed_per_quirk_and_stays_quiet_without_progress():
    out, err = io.StringIO(), io.StringIO()
    call_command("seed_legacy", "--scale", "400", "--replace", "--no-progress", "--key-limit", "3",
                 stdout=out, stderr=err)
    assert err.getvalue() == ""
    assert re.search(r"ORDHDR +400 rows", out.getvalue())
    out = io.StringIO()
    call_command("seed_legacy", "--scale", "400", "--replace", "--no-progress", "--key-limit", "3", "--json",
                 stdout=out)
    quirks = json.loads(out.getvalue())["quirks"]
    assert quirks["order_ship_date_sentinel"]["count"] == 12 and len(quirks["order_ship_date_sentinel"]["keys"]) == 3


def test_command_lists_the_quirks_with_their_default_rates():
    out = io.StringIO()
    call_command("seed_legacy", "--list-quirks", stdout=out)
    assert re.search(r"^order_orphan_customer\s+ORDHDR\s+1\.00%", out.getvalue(), re.MULTILINE)
    assert len(out.getvalue().splitlines()) == len(QUIRKS)


def test_command_names_a_missing_connection():
    with pytest.raises(CommandError, match="no database connection 'nowhere'"):
        call_command("seed_legacy", "--database", "nowhere", "--no-progress")


# ---------------------------------------------------------------------------------------------
# DDL text for the engines we cannot run here
# ---------------------------------------------------------------------------------------------
def test_sql_server_ddl_uses_the_contract_types_and_a_composite_key():
    statements = ddl.ddl_for("microsoft")
    assert statements[2] == (
        "CREATE TABLE [ORDDTL] (\n"
        "    [ORD_NO] INT NOT NULL,\n"
        "    [LINE_NO] SMALLINT NOT NULL,\n"
        "    [ITEM_SKU] CHAR(20) NOT NULL,\n"
        "    [ITEM_DESC] NVARCHAR(200),\n"
        "    [QTY_ORD] DECIMAL(12,3) NOT NULL,\n"
        "    [UNIT_PRICE] DECIMAL(19,4) NOT NULL,\n"
        "    [DISC_PCT] DECIMAL(5,2) NOT NULL,\n"
        "    [LINE_TOTAL] DECIMAL(19,4) NOT NULL,\n"
        "    CONSTRAINT [PK_ORDDTL] PRIMARY KEY ([ORD_NO], [LINE_NO])\n"
        ")"
    )
    custmast, ordhdr, _, invhdr, invdtl = statements[:5]
    for fragment in ("[CUST_CODE] CHAR(10) NOT NULL", "[CUST_NAME] NVARCHAR(100) NOT NULL", "[EMAIL] VARCHAR(254),",
                     "[CREDIT_LIMIT] DECIMAL(19,4),", "[CREATED_DT] DATETIME NOT NULL", "[COUNTRY_CD] CHAR(2),"):
        assert fragment in custmast
    for fragment in ("[NOTES] NVARCHAR(MAX),", "[CURR_CD] CHAR(3),", "[REQ_SHIP_DT] DATETIME,",
                     "[TOTAL_AMT] DECIMAL(19,4) NOT NULL", "[DEL_FLG] CHAR(1) NOT NULL"):
        assert fragment in ordhdr
    assert "[INV_NO] VARCHAR(12) NOT NULL" in invhdr and "[ORD_NO] INT," in invhdr
    assert "CONSTRAINT [PK_INVDTL] PRIMARY KEY ([INV_NO], [LINE_NO])" in invdtl
    assert statements[5:] == [
        "CREATE INDEX [IX_CUSTMAST_LAST_UPD_DT] ON [CUSTMAST] ([LAST_UPD_DT])",
        "CREATE INDEX [IX_ORDHDR_LAST_UPD_DT] ON [ORDHDR] ([LAST_UPD_DT])",
    ]


def test_oracle_ddl_uses_the_contract_types_and_a_composite_key():
    statements = ddl.ddl_for("oracle")
    assert statements[4] == (
        'CREATE TABLE "INVDTL" (\n'
        '    "INV_NO" VARCHAR2(12) NOT NULL,\n'
        '    "LINE_NO" NUMBER(5) NOT NULL,\n'
        '    "DESCR" VARCHAR2(200),\n'
        '    "QTY" NUMBER(12,3) NOT NULL,\n'
        '    "UNIT_PRICE" NUMBER(19,4) NOT NULL,\n'
        '    "LINE_AMT" NUMBER(19,4) NOT NULL,\n'
        '    CONSTRAINT "PK_INVDTL" PRIMARY KEY ("INV_NO", "LINE_NO")\n'
        ")"
    )
    custmast, ordhdr, orddtl, invhdr = statements[:4]
    for fragment in ('"CUST_ID" NUMBER(10) NOT NULL', '"CUST_CODE" CHAR(10) NOT NULL', '"CUST_NAME" VARCHAR2(100)',
                     '"CREDIT_LIMIT" NUMBER(19,4),', '"CREATED_DT" DATE NOT NULL', '"LAST_UPD_DT" DATE,'):
        assert fragment in custmast
    assert '"NOTES" CLOB,' in ordhdr and '"TOTAL_AMT" NUMBER(19,4) NOT NULL' in ordhdr
    assert 'CONSTRAINT "PK_ORDDTL" PRIMARY KEY ("ORD_NO", "LINE_NO")' in orddtl
    assert '"PAID_DT" DATE\n' in invhdr.replace(",\n", "\n")
    assert not any(statement.rstrip().endswith(";") for statement in statements)  # cx/oracledb refuse a ';'


@pytest.mark.parametrize("vendor", ddl.VENDORS)
def test_no_engine_gets_foreign_keys_and_every_table_gets_its_primary_key(vendor):
    statements = ddl.ddl_for(vendor)
    assert len(statements) == 7  # five tables, two LAST_UPD_DT indexes
    assert not any("REFERENCES" in s or "FOREIGN KEY" in s for s in statements)
    assert sum("PRIMARY KEY" in s for s in statements) == 5


def test_refuses_an_engine_it_has_no_ddl_for():
    with pytest.raises(ValueError, match="no legacy DDL for the 'db2' engine"):
        ddl.ddl_for("db2")
