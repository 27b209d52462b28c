"""The legacy data generator behind `manage.py seed_legacy`.

It creates the five legacy tables of the data contract (/work/shared/legacy/LEGACY_SCHEMA.md) on
a Django connection alias and fills them with realistic, deliberately dirty data: every quirk the
contract says occurs in production, at configurable rates, deterministic for a given seed. It
feeds `make demo`, the migration tests and the benchmark (1,000,000 orders).

How it works:
1. Refuse to touch existing legacy tables unless asked to replace them.
2. Inside one transaction: create the tables (raw DDL from legacy_migration.ddl), stream the rows
   into them in batches (COPY on PostgreSQL, executemany elsewhere, which PyMySQL turns into
   multi-row INSERTs), then create the LAST_UPD_DT indexes. Memory stays bounded: only the
   current batch, the customer id list and a small e-mail reservoir are held.
3. Return a `SeedSummary`: rows per table, and per quirk the exact count plus the keys of the
   records carrying it (capped), so that a migration test can assert exact expectations.

Quirks are placed by selection sampling (Knuth's algorithm S): for a quirk with rate r on a table
of n records, exactly max(1, round(r·n)) records are given it, spread at random, so every quirk
is present even at small sizes. The summary counts what was written, not what was planned: a
record that carries a quirk by chance (an ordinary time inside the DST hour, a tax that happens
to end in 50, an invoice inheriting its order's blank currency) is counted and listed too. Quirks that would fight
over the same record (two reasons to reject one order, a blank and an unknown currency) are drawn
from one exclusive "share", so each record gets at most one of them.
"""

from __future__ import annotations

import random
import time
from array import array
from collections import Counter
from collections.abc import Callable
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta
from datetime import timezone as dt_timezone
from decimal import Decimal
from functools import lru_cache
from typing import Any
from zoneinfo import ZoneInfo

from django.conf import settings
from django.db import connections, transaction

from legacy_migration.ddl import (
    LEGACY_TABLES,
    TABLES_BY_NAME,
    VENDORS,
    copy_sql,
    drop_table_sql,
    index_ddl,
    insert_sql,
    table_ddl,
)
from oms.errors import DomainError
from oms.money import CURRENCIES

# ---------------------------------------------------------------------------------------------
# The quirk catalogue
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Quirk:
    name: str
    table: str
    rate: float | None  # share of the records (see `per`); None: occurs naturally, not configurable
    description: str
    per: str = ""  # the population the rate applies to, when it is not the quirk's own table


_QUIRK_LIST = [
    # CUSTMAST
    Quirk("customer_name_padded", "CUSTMAST", 0.02, "CUST_NAME with leading/trailing spaces"),
    Quirk("customer_name_missing", "CUSTMAST", 0.01, "CUST_NAME '' or blanks (required value missing)"),
    Quirk("customer_unknown_status", "CUSTMAST", 0.01, "CUST_STATUS 'Q' (not in the status map)"),
    Quirk("customer_blank_country", "CUSTMAST", 0.03, "COUNTRY_CD '', blanks or NULL (means US)"),
    Quirk("customer_email_messy", "CUSTMAST", 0.03, "EMAIL in mixed case with stray spaces"),
    Quirk("customer_email_empty", "CUSTMAST", 0.03, "EMAIL '' for none"),
    Quirk("customer_email_duplicate", "CUSTMAST", 0.02,
          "EMAIL equal (after trim + lower-case) to an earlier customer's"),
    Quirk("customer_cp1252_text", "CUSTMAST", 0.03, "name/address/city with cp1252 accents and punctuation"),
    # ORDHDR: reasons to exclude or reject an order (at most one per order)
    Quirk("order_soft_deleted", "ORDHDR", 0.02, "DEL_FLG 'Y' (some of them invoiced)"),
    Quirk("order_orphan_customer", "ORDHDR", 0.01, "CUST_ID with no customer"),
    Quirk("order_unknown_status", "ORDHDR", 0.01, "ORD_STATUS 'X' (not in the status map)"),
    Quirk("order_missing_status", "ORDHDR", 0.005, "ORD_STATUS blank (required value missing)"),
    Quirk("order_unknown_currency", "ORDHDR", 0.01, "CURR_CD 'XYZ' (not ISO 4217 / not traded)"),
    Quirk("order_amount_too_large", "ORDHDR", 0.0005,
          "one line and the totals at 99999999999999.9999: fits DECIMAL(19,4), not the modern column"),
    Quirk("order_amount_at_modern_max", "ORDHDR", 0.0005,
          "totals 9999999999999.99 (100 × 99999999999.9999): the largest amount that does fit"),
    # ORDHDR: oddities that do not reject the order
    Quirk("order_blank_currency", "ORDHDR", 0.03, "CURR_CD '', blanks or NULL (means USD)"),
    Quirk("order_blank_ship_country", "ORDHDR", 0.03, "SHIP_COUNTRY '', blanks or NULL (means US)"),
    Quirk("order_ship_date_sentinel", "ORDHDR", 0.03, "REQ_SHIP_DT 1900-01-01 00:00:00 (means none)"),
    Quirk("order_dst_repeated_hour", "ORDHDR", 0.01, "ORD_DT inside the autumn hour that occurs twice"),
    Quirk("order_dst_spring_gap", "ORDHDR", 0.01, "ORD_DT inside the spring gap (a time that never existed)"),
    Quirk("order_sqlserver_milliseconds", "ORDHDR", 0.03, "ORD_DT/LAST_UPD_DT with 1/300 s milliseconds"),
    Quirk("order_cp1252_text", "ORDHDR", 0.03, "ship-to or NOTES with cp1252 accents, curly quotes, €, ™"),
    Quirk("order_subtotal_mismatch", "ORDHDR", 0.01, "SUBTOTAL_AMT ≠ Σ LINE_TOTAL by more than 0.01"),
    Quirk("order_total_mismatch", "ORDHDR", 0.01, "TOTAL_AMT ≠ SUBTOTAL − DISC + TAX + FREIGHT by more than 0.01"),
    Quirk("order_half_up_amount", "ORDHDR", 0.02,
          "TAX_AMT like 12.3450 (even cent, then 50): half-up gives 12.35, banker's rounding 12.34"),
    Quirk("order_no_last_update", "ORDHDR", 0.01, "LAST_UPD_DT NULL"),
    Quirk("order_line_number_gaps", "ORDHDR", 0.03, "LINE_NO numbering with a gap"),
    # ORDDTL (rates are per order: the share of orders with one such line)
    Quirk("line_orphan", "ORDDTL", 0.01, "lines whose ORD_NO has no header (1–3 per missing header)", per="ORDHDR"),
    Quirk("line_non_positive_quantity", "ORDDTL", 0.005, "QTY_ORD <= 0", per="ORDHDR"),
    Quirk("line_negative_price", "ORDDTL", 0.005, "UNIT_PRICE < 0", per="ORDHDR"),
    Quirk("line_discount_out_of_range", "ORDDTL", 0.005, "DISC_PCT > 100 or < 0", per="ORDHDR"),
    Quirk("line_missing_sku", "ORDDTL", 0.003, "ITEM_SKU '' or blanks (required value missing)", per="ORDHDR"),
    Quirk("line_total_mismatch", "ORDDTL", 0.01, "LINE_TOTAL ≠ QTY × PRICE × (1 − DISC/100) by more than 0.01",
          per="ORDHDR"),
    Quirk("line_cp1252_text", "ORDDTL", 0.03, "ITEM_DESC with cp1252 accents, curly quotes, ™", per="ORDHDR"),
    Quirk("line_fractional_quantity", "ORDDTL", None, "QTY_ORD with decimals (weighed goods; not dirt)"),
    # INVHDR
    Quirk("invoice_manual", "INVHDR", 0.03, "ORD_NO NULL (manual invoice)"),
    Quirk("invoice_orphan_customer", "INVHDR", 0.01, "CUST_ID with no customer (also inherited from orphan orders)"),
    Quirk("invoice_unknown_status", "INVHDR", 0.01, "INV_STATUS 'Z' (not in the status map)"),
    Quirk("invoice_unknown_currency", "INVHDR", 0.005, "CURR_CD 'XYZ' (also inherited from the order)"),
    Quirk("invoice_blank_currency", "INVHDR", 0.03, "CURR_CD '', blanks or NULL (also inherited from the order)"),
    Quirk("invoice_due_date_sentinel", "INVHDR", 0.03, "DUE_DT 1900-01-01 00:00:00 (means none)"),
    Quirk("invoice_amount_mismatch", "INVHDR", 0.01, "INV_AMT ≠ NET_AMT + TAX_AMT by more than 0.01"),
    Quirk("invoice_dst_repeated_hour", "INVHDR", 0.01, "INV_DT inside the autumn hour that occurs twice"),
    Quirk("invoice_dst_spring_gap", "INVHDR", 0.01, "INV_DT inside the spring gap"),
    Quirk("invoice_of_soft_deleted_order", "INVHDR", None, "ORD_NO of a soft-deleted order (see order_soft_deleted)"),
    # INVDTL
    Quirk("invoice_line_orphan", "INVDTL", 0.01, "lines whose INV_NO has no header (1–2 per missing header)",
          per="INVHDR"),
]
QUIRKS: dict[str, Quirk] = {quirk.name: quirk for quirk in _QUIRK_LIST}

#: Reasons to reject or exclude a whole order: drawn from one share, so an order has at most one.
ORDER_FATES = (
    "order_soft_deleted", "order_orphan_customer", "order_unknown_status", "order_missing_status",
    "order_unknown_currency", "line_non_positive_quantity", "line_negative_price",
    "line_discount_out_of_range", "line_missing_sku", "order_amount_too_large", "order_amount_at_modern_max",
)
LINE_FATES = frozenset({"line_non_positive_quantity", "line_negative_price", "line_discount_out_of_range",
                        "line_missing_sku"})
#: These orders have one special line and exact totals; they are never invoiced, and no other
#: amount quirk touches them, so "does not fit" is the only thing wrong with them.
SPECIAL_AMOUNT_FATES = frozenset({"order_amount_too_large", "order_amount_at_modern_max"})

#: Share of invoices in each status (P, paid, takes the rest). Not quirks: every status must exist.
INVOICE_STATUS_SHARES = {"D": 0.04, "O": 0.25, "V": 0.06}
#: Share of deleted customer ids (gaps that orphan orders and invoices point at).
DELETED_CUSTOMER_SHARE = 0.005

SENTINEL = datetime(1900, 1, 1)
ORDERS_FROM, ORDERS_UNTIL = datetime(2008, 1, 1), datetime(2025, 1, 1)
CUSTOMERS_FROM, CUSTOMERS_UNTIL = datetime(2003, 1, 1), datetime(2024, 7, 1)
LAST_POSSIBLE = ORDERS_UNTIL - timedelta(seconds=1)  # no legacy update after the extract was taken
FIRST_ORDER_NO, FIRST_CUSTOMER_ID = 100001, 1001


class SeedRefused(DomainError):
    """The generator will not run as asked (existing tables, bad sizes, unknown engine)."""


# ---------------------------------------------------------------------------------------------
# Options and summary
# ---------------------------------------------------------------------------------------------


@dataclass
class SeedOptions:
    customers: int
    orders: int
    invoices: int
    seed: int = 1
    dirty_rate: float = 1.0  # multiplies every default rate; 0 gives clean data
    rates: dict[str, float] = field(default_factory=dict)  # per-quirk overrides (not multiplied)
    replace: bool = False
    batch_size: int = 5000
    key_limit: int = 100  # keys kept per quirk in the summary
    time_zone: str = ""  # legacy local time zone; default settings.LEGACY_TIME_ZONE

    @classmethod
    def at_scale(cls, orders: int, **overrides: Any) -> SeedOptions:
        """Sizes in the benchmark's proportions: 1 customer per 5 orders, 0.8 invoices per order."""
        sizes = {"customers": max(1, orders // 5) if orders else 0, "orders": orders, "invoices": orders * 4 // 5}
        sizes.update({k: v for k, v in overrides.items() if k in sizes and v is not None})
        rest = {k: v for k, v in overrides.items() if k not in sizes and v is not None}
        return cls(**sizes, **rest)

    def rate(self, name: str) -> float:
        if name in self.rates:
            return self.rates[name]
        default = QUIRKS[name].rate
        return (default or 0.0) * self.dirty_rate

    def check(self) -> None:
        problems = []
        for name in ("customers", "orders", "invoices"):
            if getattr(self, name) < 0:
                problems.append(f"{name} cannot be negative")
        if self.orders and not self.customers:
            problems.append("orders need at least one customer")
        if self.invoices and not self.customers:
            problems.append("invoices need at least one customer")
        if self.dirty_rate < 0:
            problems.append("the dirty rate cannot be negative")
        if self.batch_size < 1:
            problems.append("the batch size must be at least 1")
        for name, value in self.rates.items():
            if name not in QUIRKS or QUIRKS[name].rate is None:
                configurable = ", ".join(q.name for q in _QUIRK_LIST if q.rate is not None)
                problems.append(f"unknown quirk {name!r} (configurable: {configurable})")
            elif not 0 <= value <= 1:
                problems.append(f"the rate of {name} must be between 0 and 1, got {value}")
        if problems:
            raise SeedRefused("Cannot seed the legacy tables: " + "; ".join(problems) + ".", code="bad_options")


@dataclass
class QuirkTally:
    table: str
    description: str
    count: int = 0
    keys: list = field(default_factory=list)


@dataclass
class SeedSummary:
    alias: str
    vendor: str
    seed: int
    sizes: dict[str, int]
    rows: dict[str, int] = field(default_factory=dict)
    quirks: dict[str, QuirkTally] = field(default_factory=dict)
    distributions: dict[str, dict[str, int]] = field(default_factory=dict)
    seconds: float = 0.0

    def keys(self, quirk: str) -> list:
        return self.quirks[quirk].keys

    def count(self, quirk: str) -> int:
        return self.quirks[quirk].count

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def as_text(self) -> str:
        lines = [f"Seeded the legacy tables on '{self.alias}' ({self.vendor}, seed {self.seed}) "
                 f"in {self.seconds:.1f} s:"]
        lines += [f"  {table:<9} {count:>12,} rows" for table, count in self.rows.items()]
        lines.append("Quirks (records carrying each):")
        lines += [f"  {name:<34} {tally.count:>10,}  {tally.table:<8} {tally.description}"
                  for name, tally in self.quirks.items()]
        for name, counts in self.distributions.items():
            lines.append(f"{name}: " + ", ".join(f"{value!r}: {count:,}" for value, count in sorted(counts.items())))
        return "\n".join(lines)


@dataclass(frozen=True)
class SeedProgress:
    phase: str  # "customers" or "orders"
    done: int
    total: int
    rows: int  # rows written so far, all tables
    elapsed: float

    @property
    def rows_per_second(self) -> float:
        return self.rows / self.elapsed if self.elapsed else 0.0

    @property
    def eta_seconds(self) -> float | None:
        if not self.done or self.done >= self.total:
            return None
        return self.elapsed * (self.total - self.done) / self.done

    def as_text(self) -> str:
        eta = self.eta_seconds
        eta_text = "" if eta is None else f", ETA {timedelta(seconds=round(eta))} for this phase"
        share = 100.0 * self.done / self.total if self.total else 100.0
        return (f"{self.phase}: {self.done:,}/{self.total:,} ({share:.1f}%), {self.rows:,} rows, "
                f"{self.rows_per_second:,.0f} rows/s{eta_text}")


# ---------------------------------------------------------------------------------------------
# The entry point
# ---------------------------------------------------------------------------------------------


def seed_legacy(*, using: str = "legacy", options: SeedOptions,
                progress: Callable[[SeedProgress], None] | None = None) -> SeedSummary:
    """Create the legacy tables on connection `using` and fill them; return what was written."""
    options.check()
    if using not in connections.databases:
        raise SeedRefused(f"There is no database connection '{using}' (set LEGACY_DATABASE_URL for 'legacy').",
                          code="no_connection")
    connection = connections[using]
    vendor = connection.vendor
    if vendor not in VENDORS:
        raise SeedRefused(f"Cannot create legacy tables on a {vendor} database.", code="bad_engine")
    existing = existing_legacy_tables(using)
    if existing and not options.replace:
        raise SeedRefused(
            f"The legacy tables {', '.join(existing)} already exist on '{using}'; nothing was changed. "
            "Use --replace to drop and recreate them.",
            code="tables_exist",
        )
    started = time.monotonic()
    with _bulk_load_settings(connection), transaction.atomic(using=using):
        with connection.cursor() as cursor:
            for name in existing:
                cursor.execute(drop_table_sql(vendor, name))
            for sql in table_ddl(vendor):
                cursor.execute(sql)
            sink = _RowSink(cursor, vendor, options.batch_size)
            generator = _LegacyDataGenerator(options, vendor=vendor, sink=sink, progress=progress)
            summary = generator.run()
            sink.close()
            for sql in index_ddl(vendor):
                cursor.execute(sql)
    summary.alias = using
    summary.rows = dict(sink.rows_written)
    summary.seconds = round(time.monotonic() - started, 3)
    return summary


def existing_legacy_tables(using: str) -> list[str]:
    """The contract's tables already present on `using` (names compared case-insensitively)."""
    connection = connections[using]
    with connection.cursor() as cursor:
        present = {name.upper() for name in connection.introspection.table_names(cursor)}
    return [table.name for table in LEGACY_TABLES if table.name in present]


@contextmanager
def _bulk_load_settings(connection):
    """SQLite: skip the fsync on every page while loading, then restore the previous setting.

    The stand-in can always be regenerated from its seed, so durability during the load buys
    nothing, and syncing costs most of the load time. SQLite refuses the change inside a
    transaction, so a caller's open transaction keeps its setting.
    """
    if connection.vendor != "sqlite" or connection.in_atomic_block:
        yield
        return
    with connection.cursor() as cursor:
        cursor.execute("PRAGMA synchronous")
        previous = int(cursor.fetchone()[0])
        cursor.execute("PRAGMA synchronous = OFF")
    try:
        yield
    finally:
        with connection.cursor() as cursor:
            cursor.execute(f"PRAGMA synchronous = {previous}")


class _RowSink:
    """Buffers rows per table and writes each batch the fastest way the engine offers."""

    def __init__(self, cursor, vendor: str, batch_size: int):
        self.cursor = cursor
        self.vendor = vendor
        self.batch_size = batch_size
        self.buffers: dict[str, list[tuple]] = {table.name: [] for table in LEGACY_TABLES}
        self.sql = {table.name: insert_sql(vendor, table) for table in LEGACY_TABLES}
        self.rows_written: Counter[str] = Counter({table.name: 0 for table in LEGACY_TABLES})
        if vendor == "microsoft":
            # pyodbc sends a whole batch in one round trip only when asked to.
            raw = getattr(cursor.cursor, "cursor", cursor.cursor)
            if hasattr(raw, "fast_executemany"):
                raw.fast_executemany = True

    @property
    def total_rows(self) -> int:
        return sum(self.rows_written.values()) + sum(len(b) for b in self.buffers.values())

    def add(self, table: str, row: tuple) -> None:
        buffer = self.buffers[table]
        buffer.append(row)
        if len(buffer) >= self.batch_size:
            self.flush(table)

    def flush(self, table: str) -> None:
        rows = self.buffers[table]
        if not rows:
            return
        if self.vendor == "postgresql":
            with self.cursor.cursor.copy(copy_sql(TABLES_BY_NAME[table])) as copy:
                for row in rows:
                    copy.write_row(row)
        else:
            self.cursor.executemany(self.sql[table], rows)
        self.rows_written[table] += len(rows)
        self.buffers[table] = []

    def close(self) -> None:
        for table in self.buffers:
            self.flush(table)


# ---------------------------------------------------------------------------------------------
# Sampling: exact counts, spread at random
# ---------------------------------------------------------------------------------------------


def _quota(rate: float, population: int) -> int:
    """How many of `population` records carry a quirk of `rate`: at least one whenever rate > 0."""
    if rate <= 0 or population <= 0:
        return 0
    return min(population, max(1, round(rate * population)))


def _fit(quotas: dict[str, int], population: int) -> dict[str, int]:
    """Shrink the largest quotas until an exclusive share fits its population (tiny sizes only)."""
    quotas = dict(quotas)
    while sum(quotas.values()) > population:
        largest = max(quotas, key=lambda name: quotas[name])
        quotas[largest] -= 1
    return quotas


class _Quota:
    """Selection sampling (Knuth's algorithm S): exactly `k` of the next `n` draws return True."""

    __slots__ = ("left", "population", "random")

    def __init__(self, rng: random.Random, k: int, n: int):
        self.left, self.population, self.random = min(k, n), n, rng.random

    def take(self) -> bool:
        n = self.population
        if n <= 0:
            return False
        self.population = n - 1
        if self.left and self.random() * n < self.left:
            self.left -= 1
            return True
        return False


class _Share:
    """Exclusive categories over `n` draws: exactly quotas[c] draws return c, the others None."""

    __slots__ = ("left", "total", "population", "random")

    def __init__(self, rng: random.Random, quotas: dict[str, int], n: int):
        self.left = {name: k for name, k in _fit(quotas, n).items() if k > 0}
        self.total = sum(self.left.values())
        self.population, self.random = n, rng.random

    def draw(self) -> str | None:
        n = self.population
        if n <= 0:
            return None
        self.population = n - 1
        if not self.total:
            return None
        x = self.random() * n
        if x >= self.total:
            return None
        for name, left in self.left.items():
            if x < left:
                self.left[name] = left - 1
                self.total -= 1
                return name
            x -= left
        return None  # unreachable: x < total


# ---------------------------------------------------------------------------------------------
# Money in integer units: exact, and several times faster than Decimal arithmetic
# ---------------------------------------------------------------------------------------------
# Amounts and prices are held in ten-thousandths (the legacy DECIMAL(19,4)), quantities in
# thousandths, percentages in hundredths, and turned into Decimal only when a row is written.
_D = Decimal


def _money(units: int) -> Decimal:
    return _D(units).scaleb(-4)


def _qty(units: int) -> Decimal:
    return _D(units).scaleb(-3)


def _pct(units: int) -> Decimal:
    return _D(units).scaleb(-2)


def _half_up(numerator: int, denominator: int) -> int:
    """numerator / denominator rounded half away from zero, as SQL Server's ROUND does."""
    q, r = divmod(abs(numerator), denominator)
    if 2 * r >= denominator:
        q += 1
    return q if numerator >= 0 else -q


def _line_total(qty_m: int, price_t: int, disc_h: int) -> int:
    """QTY × PRICE × (1 − DISC/100) in ten-thousandths (qty 1e-3 · price 1e-4 · (1e4 − disc) 1e-4 → 1e-4)."""
    return _half_up(qty_m * price_t * (10000 - disc_h), 10_000_000)


TOO_LARGE_T = 999_999_999_999_999_999  # 99999999999999.9999: fits DECIMAL(19,4), not the modern 13.2
MODERN_MAX_PRICE_T = 999_999_999_999_999  # 99999999999.9999: the modern price column's maximum
MODERN_MAX_QTY_M = 100_000  # 100.000 × the maximum price = 9999999999999.99, the modern amount maximum

#: SQL Server DATETIME ticks are 1/300 s, so milliseconds always end in 0, 3 or 7.
SQLSERVER_MILLISECONDS = [round(tick * 1000 / 300) for tick in range(1, 300)]


@lru_cache(maxsize=64)
def _dst_hours(zone: str, year: int) -> tuple[tuple[datetime, int] | None, tuple[datetime, int] | None]:
    """(day, hour) of the spring gap and of the autumn repeated hour in `zone` for `year`, if any."""
    tz, gap, fold = ZoneInfo(zone), None, None
    day = datetime(year, 1, 1)
    while day.year == year:
        nxt = day + timedelta(days=1)
        if day.replace(tzinfo=tz).utcoffset() != nxt.replace(tzinfo=tz).utcoffset():
            for candidate in (day, nxt):
                for hour in range(24):
                    local = candidate.replace(hour=hour, minute=30)
                    if _never_existed(local, tz) and gap is None:
                        gap = (candidate, hour)
                    if _occurs_twice(local, tz) and fold is None:
                        fold = (candidate, hour)
        day = nxt
    return gap, fold


def midnight(local: datetime) -> datetime:
    return local.replace(hour=0, minute=0, second=0, microsecond=0)


def _never_existed(local: datetime, tz: ZoneInfo) -> bool:
    round_trip = local.replace(tzinfo=tz).astimezone(dt_timezone.utc).astimezone(tz).replace(tzinfo=None)
    return round_trip != local


def _occurs_twice(local: datetime, tz: ZoneInfo) -> bool:
    # fold=0 and fold=1 also differ inside the gap (PEP 495), so rule that out first.
    offsets_differ = local.replace(tzinfo=tz, fold=0).utcoffset() != local.replace(tzinfo=tz, fold=1).utcoffset()
    return offsets_differ and not _never_existed(local, tz)


# ---------------------------------------------------------------------------------------------
# Word lists. The plain ones are ASCII on purpose: cp1252 text comes only from the lists below
# them, injected at the configured rate, so the count in the summary is exact and a dirty rate of
# 0 really gives plain text.
# ---------------------------------------------------------------------------------------------
FIRST_NAMES = (
    "James Mary John Patricia Robert Jennifer Michael Linda William Elizabeth David Barbara Richard Susan "
    "Joseph Jessica Thomas Sarah Charles Karen Daniel Nancy Matthew Lisa Anthony Betty Mark Margaret Donald "
    "Sandra Steven Ashley Paul Kimberly Andrew Emily Joshua Donna Kenneth Michelle Kevin Carol Brian Amanda "
    "George Melissa Edward Deborah Ronald Stephanie Timothy Rebecca Jason Laura Jeffrey Sharon Ryan Cynthia "
    "Jacob Kathleen Gary Amy Nicholas Shirley Eric Angela Jonathan Helen Luis Maria Carlos Ana Wei Mei Raj Priya"
).split()
LAST_NAMES = (
    "Smith Johnson Williams Brown Jones Garcia Miller Davis Rodriguez Martinez Hernandez Lopez Gonzalez Wilson "
    "Anderson Thomas Taylor Moore Jackson Martin Lee Perez Thompson White Harris Sanchez Clark Ramirez Lewis "
    "Robinson Walker Young Allen King Wright Scott Torres Nguyen Hill Flores Green Adams Nelson Baker Hall "
    "Rivera Campbell Mitchell Carter Roberts Gomez Phillips Evans Turner Diaz Parker Cruz Edwards Collins "
    "Reyes Stewart Morris Morales Murphy Cook Rogers Gutierrez Ortiz Morgan Cooper Peterson Bailey Reed Kelly "
    "Howard Ramos Kim Cox Ward Richardson Watson Brooks Chavez Wood James Bennett Gray Mendoza Ruiz Hughes Patel"
).split()
COMPANY_WORDS = (
    "Acme Apex Atlas Beacon Blue Ridge Cardinal Cascade Central Coastal Columbia Crescent Delta Eagle Empire "
    "Evergreen Frontier Granite Harbor Heritage Horizon Keystone Lakeside Liberty Lone Star Meridian Midwest "
    "Northern Pacific Patriot Pinnacle Prairie Premier Redwood Riverside Summit Sun Valley Tri-County United "
    "Westfield"
).split()
COMPANY_TRADES = (
    "Industrial Supply|Hardware|Plumbing|Electric|Building Products|Restaurant Supply|Office Products|Auto Parts|"
    "Marine Supply|Janitorial|Medical Supply|Farm & Garden|Packaging|Tool & Die|Fasteners|Distributors|Foods"
).split("|")
COMPANY_SUFFIXES = ("Inc.", "LLC", "Co.", "Corp.", "Ltd.", "& Sons", "Group", "")
STREET_NAMES = (
    "Main Oak Maple Cedar Pine Elm Washington Lake Hill Park Sunset Lincoln Jackson Madison Franklin River "
    "Church Market Spring Highland Center Union Mill Forest Meadow Ridge Walnut Chestnut Broad Water"
).split()
STREET_TYPES = ("St", "Ave", "Blvd", "Rd", "Dr", "Ln", "Way", "Ct", "Pkwy", "Street", "Avenue", "Road")
ADDRESS_LINE2 = ("Suite 100", "Suite 210", "Ste 4B", "Floor 3", "Bldg 2", "Dock 4", "Unit 12", "Apt 5C",
                 "Attn: Receiving", "PO Box 1187")
#: (city, state, postal code prefix, country). US cities dominate, as the monolith's customers do.
CITIES = (
    ("New York", "NY", "100", "US"), ("Brooklyn", "NY", "112", "US"), ("Buffalo", "NY", "142", "US"),
    ("Newark", "NJ", "071", "US"), ("Boston", "MA", "021", "US"), ("Philadelphia", "PA", "191", "US"),
    ("Pittsburgh", "PA", "152", "US"), ("Baltimore", "MD", "212", "US"), ("Richmond", "VA", "232", "US"),
    ("Charlotte", "NC", "282", "US"), ("Atlanta", "GA", "303", "US"), ("Miami", "FL", "331", "US"),
    ("Orlando", "FL", "328", "US"), ("Tampa", "FL", "336", "US"), ("Nashville", "TN", "372", "US"),
    ("Columbus", "OH", "432", "US"), ("Cleveland", "OH", "441", "US"), ("Detroit", "MI", "482", "US"),
    ("Chicago", "IL", "606", "US"), ("Milwaukee", "WI", "532", "US"), ("Minneapolis", "MN", "554", "US"),
    ("St. Louis", "MO", "631", "US"), ("Kansas City", "MO", "641", "US"), ("Dallas", "TX", "752", "US"),
    ("Houston", "TX", "770", "US"), ("Austin", "TX", "787", "US"), ("Denver", "CO", "802", "US"),
    ("Phoenix", "AZ", "850", "US"), ("Las Vegas", "NV", "891", "US"), ("Los Angeles", "CA", "900", "US"),
    ("San Diego", "CA", "921", "US"), ("San Francisco", "CA", "941", "US"), ("Portland", "OR", "972", "US"),
    ("Seattle", "WA", "981", "US"), ("Toronto", "ON", "M5V", "CA"), ("Vancouver", "BC", "V6B", "CA"),
    ("Calgary", "AB", "T2P", "CA"), ("Monterrey", "NL", "640", "MX"), ("Guadalajara", "JA", "441", "MX"),
    ("London", None, "EC1", "GB"), ("Hamburg", None, "201", "DE"),
)
US_CITIES = tuple(city for city in CITIES if city[3] == "US")
PRODUCT_LINES = (  # (SKU prefix, noun, weighed: sold by weight with a fractional quantity)
    ("WID", "Widget", False), ("GAD", "Gadget", False), ("BRK", "Bracket", False), ("FST", "Fastener kit", False),
    ("CBL", "Cable", False), ("VLV", "Valve", False), ("PMP", "Pump", False), ("FLT", "Filter", False),
    ("BLT", "Hex bolt", False), ("GSK", "Gasket", False), ("TAP", "Tape", False), ("GLV", "Work gloves", False),
    ("PNT", "Paint", False), ("LBL", "Labels", False), ("BOX", "Carton", False), ("HOS", "Hose", False),
    ("CHM", "Epoxy resin, per kg", True), ("WIR", "Copper wire, per lb", True), ("GRN", "Granules, per kg", True),
    ("NUT", "Mixed nuts, per lb", True),
)
WEIGHED_LINES = tuple(line for line in PRODUCT_LINES if line[2])
COUNTED_LINES = tuple(line for line in PRODUCT_LINES if not line[2])
PRODUCT_ADJECTIVES = ("Heavy-duty", "Stainless", "Compact", "Industrial", "Premium", "Economy", "Galvanized",
                      "Insulated", "Reinforced", "Universal", "High-temp", "Low-profile")
PRODUCT_SIZES = ('1/4"', '3/8"', '1/2"', "10 mm", "25 mm", "2 m", "5 m", "Small", "Large", "XL", "500 ml",
                 "1 gal", "Black", "White", "Red", "Pack of 10", "Pack of 50")
NOTES = ("Leave at back door", "Call before delivery", "Rush order", "Net 30 per J. Smith",
         "Split shipment OK", "Use PO on packing slip", "Deliver Mon-Fri 8-4 only", "Lift gate required",
         "Do not substitute", "Hold for pickup", "Customer will call with PO", "Ship complete")
CREATED_BY = ("jsmith", "mgarcia", "SA", "ORDERENTRY", "BATCH_IMP", "CORP\\tnguyen", "webuser", "kpatel",
              "EDI_GATEWAY", "dbo", "lchen  ", "RWILSON", "ops_night")
PHONE_FORMATS = ("({a}) {b}-{c}", "{a}-{b}-{c}", "{a}.{b}.{c}", "+1 {a} {b} {c}", "{a}{b}{c}", "1-{a}-{b}-{c} x12")
SERVICE_LINES = ("Restocking fee", "Expedite fee", "Pallet charge", "Setup fee", "Credit adjustment",
                 "Consulting, 1 h", "Returned goods handling", "Late payment fee")
CURRENCY_TABLE = ["USD"] * 80 + ["CAD"] * 8 + ["EUR"] * 4 + ["MXN"] * 3 + ["GBP"] * 2 + ["CHF", "JPY", "AUD"]
LINES_PER_ORDER = [1] * 22 + [2] * 22 + [3] * 20 + [4] * 14 + [5] * 12 + [6] * 10  # mean 3.02

# cp1252 repertoire: accents, ’ “ ” – • … € ™ (all of them encode in Windows-1252).
CP1252_PEOPLE = ("José Núñez", "Zoë Brontë", "Renée Lefèvre", "François Müller", "Björn Østergård",
                 "Inés García-Peña", "Chloé D’Angelo", "Jürgen Schäfer", "Agnès Béranger", "Raúl Gómez",
                 "Seán O’Brien", "Noël Côté")
CP1252_COMPANIES = ("Café Olé Distributors", "Crème de la Crème Bakery", "Señor Frío S.A. de C.V.",
                    "Hôtel Élysée Supplies", "Müller & Söhne GmbH", "Böhm Präzision™ Tools",
                    "O’Malley’s Pub Supply", "Zoë’s Naturals", "Niño Feliz Toys", "“Best Value” Liquidators",
                    "Société Générale d’Équipement", "Smörgås Deli Co.")
CP1252_STREETS = ("12 Rue Saint-Honoré", "45 Calle Peñalver", "7 Königstraße", "1500 Avenida São João",
                  "88 Chemin de la Côte-Sainte-Catherine", "3 Plaza de la Condesa – Local 4")
CP1252_CITIES = (("Montréal", "QC", "H2X", "CA"), ("Québec", "QC", "G1R", "CA"), ("Zürich", None, "800", "CH"),
                 ("São Paulo", None, "013", "BR"), ("Düsseldorf", None, "402", "DE"),
                 ("Cancún", "QR", "775", "MX"), ("San José", "CA", "951", "US"), ("Española", "NM", "875", "US"))
CP1252_DESCRIPTIONS = ("Jalapeño salsa, 16 oz", "Crème fraîche, 8 oz", "Café au lait mug", "Widget Pro™ 3000",
                       "“Deluxe” gift box", "Piñata, large", "Résumé folder, leather", "24” monitor arm",
                       "Euro plug adapter – € pricing", "Über-Grip™ gloves", "Smörgåsbord platter",
                       "Açaí bowl kit • 4 pack")
CP1252_NOTES = ("Customer’s dock closes at 5 pm", "Deliver to “Receiving”, not the front desk",
                "Paid €50 deposit by card", "Ask for José – night shift", "Fragile • this side up",
                "Price per Señor García’s quote…", "Müller order ™ see fax")


# ---------------------------------------------------------------------------------------------
# The generator
# ---------------------------------------------------------------------------------------------


class _LegacyDataGenerator:
    """Writes customers, then orders with their lines and invoices, through a `_RowSink`.

    Everything random comes from one random.Random(seed), consumed in a fixed order, so a seed
    always gives the same rows whatever the batch size or engine.
    """

    def __init__(self, options: SeedOptions, *, vendor: str, sink: _RowSink,
                 progress: Callable[[SeedProgress], None] | None):
        self.options = options
        self.vendor = vendor
        self.sink = sink
        self.progress = progress
        self.rng = random.Random(options.seed)
        self.zone = options.time_zone or settings.LEGACY_TIME_ZONE
        self.summary = SeedSummary(
            alias="", vendor=vendor, seed=options.seed,
            sizes={"customers": options.customers, "orders": options.orders, "invoices": options.invoices},
            quirks={q.name: QuirkTally(q.table, q.description) for q in _QUIRK_LIST},
        )
        self.order_status_counts: Counter[str] = Counter()
        self.invoice_status_counts: Counter[str] = Counter()
        self.invoice_number_formats: Counter[str] = Counter()
        self.started = time.monotonic()
        self.last_report = 0.0
        # Oracle stores '' as NULL, so a "missing" required value must be blanks there, or the
        # NOT NULL column would refuse the row instead of the mapping rejecting it.
        # The same seed consumes the same random numbers on every engine; only these values differ.
        self.empty_text = None if vendor == "oracle" else ""
        self.blank_texts = ("   ", "   ") if vendor == "oracle" else ("", "   ")
        self.empty_or_null = (None, None) if vendor == "oracle" else ("", None)

    # -- bookkeeping --------------------------------------------------------------------------

    def tally(self, quirk: str, key) -> None:
        entry = self.summary.quirks[quirk]
        entry.count += 1
        if len(entry.keys) < self.options.key_limit:
            entry.keys.append(key)

    def report(self, phase: str, done: int, total: int, force: bool = False) -> None:
        if self.progress is None:
            return
        now = time.monotonic()
        if force or now - self.last_report >= 2.0:
            self.last_report = now
            self.progress(SeedProgress(phase, done, total, self.sink.total_rows, now - self.started))

    def pick(self, seq):
        return seq[int(self.rng.random() * len(seq))]

    def blank_code(self, width: int):
        """A blank code as the monolith holds it: '' (or NULL) from one screen, spaces from another."""
        r = self.rng.random()
        if r < 0.4:
            return " " * width
        return self.pick(self.empty_or_null) if r < 0.8 else None

    def pad(self, value: str | None, width: int) -> str | None:
        """CHAR(n) semantics: the monolith stores codes right-padded with spaces. A '' is left as
        it is: SQL Server would pad it too, but a stand-in or an export may hold it, and the
        mapping must treat '', blanks and NULL alike."""
        return value.ljust(width) if value else value

    # -- run ------------------------------------------------------------------------------------

    def run(self) -> SeedSummary:
        self.build_catalogue()
        self.write_customers()
        self.write_orders_and_invoices()
        self.summary.distributions = {
            "ORDHDR.ORD_STATUS": dict(self.order_status_counts),
            "INVHDR.INV_STATUS": dict(self.invoice_status_counts),
            "INVHDR.INV_NO format": dict(self.invoice_number_formats),
        }
        return self.summary

    def build_catalogue(self) -> None:
        """About 2,000 products: padded SKU, description, price in ten-thousandths, weighed or not."""
        r, pick = self.rng.random, self.pick
        self.products = []
        for number in range(2000):
            # Weighed goods are a small part of the range, as in the monolith's catalogue.
            prefix, noun, weighed = pick(WEIGHED_LINES if r() < 0.08 else COUNTED_LINES)
            sku = f"{prefix}-{10000 + number:05d}"
            if r() < 0.3:
                sku += "-" + pick(("BLK", "WHT", "RED", "SS", "XL", "R2"))
            description = f"{pick(PRODUCT_ADJECTIVES)} {noun.lower() if r() < 0.1 else noun}"
            if not weighed:
                description += f", {pick(PRODUCT_SIZES)}"
            if r() < 0.12:  # priced per piece to the hundredth of a cent (fasteners, labels)
                price_t = 50 + int(r() * 9950)
            else:
                price_t = (99 + int(r() ** 3 * 49900)) * 100
            self.products.append((sku.ljust(20), description, price_t, weighed))

    # -- customers ------------------------------------------------------------------------------

    def write_customers(self) -> None:
        opts, rng, r, pick = self.options, self.rng, self.rng.random, self.pick
        n = opts.customers
        wants_orphans = any(opts.rate(q) > 0 for q in ("order_orphan_customer", "invoice_orphan_customer"))
        deleted_ids = _quota(DELETED_CUSTOMER_SHARE * opts.dirty_rate, n)
        gaps = _Quota(rng, max(deleted_ids, 1) if wants_orphans and n else deleted_ids, n)
        fates = _fit({q: _quota(opts.rate(q), n) for q in ("customer_name_missing", "customer_unknown_status")}, n)
        fate = _Share(rng, fates, n)
        named = n - fates["customer_name_missing"]
        padded = _Quota(rng, _quota(opts.rate("customer_name_padded"), named), named)
        emails = _Share(rng, {q: _quota(opts.rate(q), max(n - 1, 0)) for q in
                              ("customer_email_messy", "customer_email_empty", "customer_email_duplicate")},
                        max(n - 1, 0))
        blank_country = _Quota(rng, _quota(opts.rate("customer_blank_country"), n), n)
        cp1252 = _Quota(rng, _quota(opts.rate("customer_cp1252_text"), n), n)
        span = (CUSTOMERS_UNTIL - CUSTOMERS_FROM).total_seconds()

        self.customer_ids = array("q")
        self.missing_customer_ids: list[int] = []
        recent_emails: list[str] = []
        cust_id = FIRST_CUSTOMER_ID - 1
        for index in range(n):
            cust_id += 1
            if gaps.take():  # a customer deleted long ago: its id is a gap orphans point at
                self.missing_customer_ids.append(cust_id)
                cust_id += 1
            self.customer_ids.append(cust_id)
            customer_fate = fate.draw()
            is_company = r() < 0.6
            first, last = pick(FIRST_NAMES), pick(LAST_NAMES)
            if is_company:
                name = f"{pick(COMPANY_WORDS)} {pick(COMPANY_TRADES)} {pick(COMPANY_SUFFIXES)}".strip()
                local = pick(("ap", "orders", "billing", "purchasing", "info", first.lower()))
                domain = name.split()[0].lower().replace("-", "") + pick((".com", ".net", ".biz", "supply.com"))
            else:
                name = f"{first} {last}"
                local = f"{first.lower()}.{last.lower()}"
                domain = pick(("gmail.com", "yahoo.com", "aol.com", "hotmail.com", "comcast.net", "verizon.net"))
            email = f"{local}{cust_id}@{domain}"  # the id makes it unique: duplicates come only from the quirk
            city, state, postal, country = pick(CITIES)
            address1 = f"{int(r() * 9899) + 1} {pick(STREET_NAMES)} {pick(STREET_TYPES)}"
            if cp1252.take():
                target = pick(("name", "address", "city"))
                if target == "name":
                    name = pick(CP1252_COMPANIES if is_company else CP1252_PEOPLE)
                elif target == "address":
                    address1 = pick(CP1252_STREETS)
                else:
                    city, state, postal, country = pick(CP1252_CITIES)
            if customer_fate == "customer_name_missing":
                name = pick(self.blank_texts)
                self.tally("customer_name_missing", cust_id)
            elif padded.take():
                name = pick((" ", "  ", "")) + name + pick((" ", "   ", "\t")) if r() < 0.8 else " " + name
                self.tally("customer_name_padded", cust_id)
            stored_email: str | None = email
            email_quirk = emails.draw() if index else None
            if email_quirk == "customer_email_messy":
                stored_email = pick((" ", "  ", "")) + email.title() + pick((" ", "  ")) if r() < 0.7 \
                    else email.upper() + " "
            elif email_quirk == "customer_email_empty":
                stored_email = self.empty_text
            elif email_quirk == "customer_email_duplicate":
                if recent_emails:
                    original = pick(recent_emails)
                    stored_email = original if r() < 0.5 else original.upper()
                else:
                    email_quirk = None  # nobody before has a mailbox to share (tiny sizes only)
            elif r() < 0.05:
                stored_email = None
            if email_quirk:
                self.tally(email_quirk, cust_id)
            if stored_email and stored_email.strip():  # a mailbox that really is in the table
                if len(recent_emails) < 500:
                    recent_emails.append(stored_email.strip().lower())
                else:
                    recent_emails[int(r() * 500)] = stored_email.strip().lower()
            if blank_country.take():
                if country != "US":  # blank means US, so the address must be a US one
                    city, state, postal, country = pick(US_CITIES)
                stored_country = self.blank_code(2)
                self.tally("customer_blank_country", cust_id)
            else:
                stored_country = country
            status = "Q" if customer_fate == "customer_unknown_status" else pick("AAAAAAAAAAAAAAAAAIIH")
            if customer_fate == "customer_unknown_status":
                self.tally("customer_unknown_status", cust_id)
            created = self.existing(CUSTOMERS_FROM + timedelta(seconds=int(span * (index + r()) / n)))
            updated = None if r() < 0.05 else min(created + (LAST_POSSIBLE - created) * (r() ** 2), LAST_POSSIBLE)
            if updated is not None:
                updated = self.existing(updated.replace(microsecond=0))
            phone = pick(PHONE_FORMATS).format(a=200 + int(r() * 790), b=200 + int(r() * 790),
                                               c=f"{int(r() * 10000):04d}") if r() < 0.85 \
                else pick(self.empty_or_null)
            row = (
                cust_id,
                f"C{cust_id:07d}".ljust(10),
                name,
                stored_email,
                phone,
                address1,
                pick(ADDRESS_LINE2) if r() < 0.2 else pick((None, None, None, self.empty_text)),
                city,
                self.pad(state, 2) if state else (self.blank_code(2) if r() < 0.5 else None),
                self._postal(postal, country),
                self.pad(stored_country, 2),
                status,
                None if r() < 0.2 else _money((1000 + int(r() * 99) * 500) * 10000),
                created,
                updated,
            )
            if not (name.isascii() and address1.isascii() and city.isascii()):  # after every change above
                self.tally("customer_cp1252_text", cust_id)
            self.sink.add("CUSTMAST", row)
            if index % 5000 == 0:
                self.report("customers", index, n)
        self.report("customers", n, n, force=True)
        if not self.missing_customer_ids and wants_orphans:
            self.missing_customer_ids.append(cust_id + 1)  # no gap drawn (tiny size): the next id
        self.missing_customers = frozenset(self.missing_customer_ids)

    def _postal(self, prefix: str, country: str) -> str:
        r = self.rng.random
        if country == "US":
            code = f"{prefix}{int(r() * 100):02d}"
            return code + f"-{int(r() * 10000):04d}" if r() < 0.1 else code
        if country == "CA":
            return f"{prefix} {int(r() * 10)}{chr(65 + int(r() * 26))}{int(r() * 10)}"
        return f"{prefix}{int(r() * 100):02d}"

    # -- orders, lines, invoices ----------------------------------------------------------------

    def write_orders_and_invoices(self) -> None:
        opts, rng = self.options, self.rng
        n, n_inv = opts.orders, opts.invoices
        manual_total = min(n_inv, max(_quota(opts.rate("invoice_manual"), n_inv), n_inv - n))
        invoiced_total = min(n, n_inv - manual_total)
        self.invoiced = _Quota(rng, invoiced_total, n)
        self.manual_here = _Quota(rng, min(manual_total, n), n)

        # Reasons to reject/exclude an order, split between invoiced and not-invoiced orders so that
        # some soft-deleted orders have invoices and no special-amount order has one.
        quotas = {fate: _quota(opts.rate(fate), n) for fate in ORDER_FATES}
        share_invoiced = invoiced_total / n if n else 0.0
        fate_invoiced, fate_other = {}, {}
        for fate, k in quotas.items():
            if fate in SPECIAL_AMOUNT_FATES:
                k_inv = 0
            else:
                k_inv = round(k * share_invoiced)
                if fate == "order_soft_deleted" and k and invoiced_total:
                    k_inv = max(k_inv, 1)
            fate_invoiced[fate], fate_other[fate] = k_inv, k - k_inv
        fate_invoiced, fate_other = _fit(fate_invoiced, invoiced_total), _fit(fate_other, n - invoiced_total)
        self.fate_invoiced = _Share(rng, fate_invoiced, invoiced_total)
        self.fate_other = _Share(rng, fate_other, n - invoiced_total)
        placed = {fate: fate_invoiced[fate] + fate_other[fate] for fate in ORDER_FATES}

        ordinary = n - placed["order_amount_too_large"] - placed["order_amount_at_modern_max"]
        not_unknown_currency = n - placed["order_unknown_currency"]

        def quota(name: str, population: int) -> _Quota:
            return _Quota(rng, _quota(opts.rate(name), population), population)

        self.q_orphan_lines = quota("line_orphan", n)
        self.q_blank_currency = quota("order_blank_currency", not_unknown_currency)
        self.q_blank_ship_country = quota("order_blank_ship_country", n)
        self.q_ship_sentinel = quota("order_ship_date_sentinel", n)
        self.q_dst = _Share(rng, {q: _quota(opts.rate(q), n) for q in ("order_dst_repeated_hour",
                                                                          "order_dst_spring_gap")}, n)
        self.q_milliseconds = quota("order_sqlserver_milliseconds", n)
        self.q_cp1252 = quota("order_cp1252_text", n)
        self.q_no_last_update = quota("order_no_last_update", n)
        self.q_subtotal_mismatch = quota("order_subtotal_mismatch", ordinary)
        self.q_total_mismatch = quota("order_total_mismatch", ordinary)
        self.q_half_up = quota("order_half_up_amount", ordinary)
        self.q_line_gaps = quota("order_line_number_gaps", ordinary)
        self.q_line_mismatch = quota("line_total_mismatch", ordinary)
        self.q_line_cp1252 = quota("line_cp1252_text", ordinary)

        # Invoices, over all of them in the order they are written (manual ones interleaved).
        statuses = {status: _quota(share, n_inv) for status, share in INVOICE_STATUS_SHARES.items()}
        statuses["Z"] = _quota(opts.rate("invoice_unknown_status"), n_inv)
        self.q_invoice_status = _Share(rng, statuses, n_inv)
        self.q_invoice_orphan = quota("invoice_orphan_customer", n_inv)
        self.q_invoice_currency = _Share(rng, {q: _quota(opts.rate(q), n_inv) for q in
                                               ("invoice_unknown_currency", "invoice_blank_currency")}, n_inv)
        self.q_due_sentinel = quota("invoice_due_date_sentinel", n_inv)
        self.q_invoice_mismatch = quota("invoice_amount_mismatch", n_inv)
        self.q_invoice_dst = _Share(rng, {q: _quota(opts.rate(q), n_inv) for q in
                                          ("invoice_dst_repeated_hour", "invoice_dst_spring_gap")}, n_inv)
        self.q_invoice_line_orphans = quota("invoice_line_orphan", n_inv)
        self.year_sequences: Counter[int] = Counter()
        self.short_sequence = 4000
        self.long_sequence = 1200

        span_days = (ORDERS_UNTIL - ORDERS_FROM).days
        ord_no = FIRST_ORDER_NO - 1
        for index in range(n):
            ord_no += 1
            if self.q_orphan_lines.take():  # a header deleted by hand, its lines left behind
                self.write_orphan_lines(ord_no)
                ord_no += 1
            day = ORDERS_FROM + timedelta(days=int(span_days * (index + self.rng.random()) / n))
            if self.manual_here.take():
                self.write_invoice(None, day)
            invoiced = self.invoiced.take()
            fate = (self.fate_invoiced if invoiced else self.fate_other).draw()
            order = self.write_order(ord_no, day, fate, invoiced)
            if invoiced:
                self.write_invoice(order, day)
            if index % 2000 == 0:
                self.report("orders", index, n)
        for _ in range(manual_total - min(manual_total, n)):  # more invoices asked for than orders
            self.write_invoice(None, ORDERS_UNTIL - timedelta(days=1 + int(self.rng.random() * 365)))
        self.report("orders", n, n, force=True)

    def business_time(self, day: datetime) -> datetime:
        r = self.rng.random
        seconds = 28800 + int(r() * 36000) if r() < 0.9 else int(r() * 86400)
        return self.existing(day + timedelta(seconds=seconds))

    def existing(self, local: datetime) -> datetime:
        """Move a random time out of the spring gap: a time that never existed is a quirk, placed on
        purpose (and counted), never left to chance."""
        if self.dst_kind(local) == "spring_gap":
            return local + timedelta(hours=1)
        return local

    def dst_time(self, when: datetime, which: str) -> datetime | None:
        """A local time in the same year as `when` inside the spring gap or the autumn repeated hour."""
        gap, fold = _dst_hours(self.zone, when.year)
        chosen = gap if which == "gap" else fold
        if chosen is None:
            return None  # a zone without daylight saving time: the quirk cannot exist there
        day, hour = chosen
        return day.replace(hour=hour, minute=int(self.rng.random() * 60), second=int(self.rng.random() * 60))

    def dst_kind(self, local: datetime) -> str | None:
        """'spring_gap' or 'repeated_hour' when `local` falls in that hour of the legacy zone."""
        gap, fold = _dst_hours(self.zone, local.year)
        if gap and local.hour == gap[1] and local.date() == gap[0].date():
            return "spring_gap"
        if fold and local.hour == fold[1] and local.date() == fold[0].date():
            return "repeated_hour"
        return None

    def customer_for(self, day: datetime) -> int:
        """A customer who already existed on `day`, mostly (the ids grow with the creation date)."""
        ids = self.customer_ids
        elapsed = (day - CUSTOMERS_FROM) / (CUSTOMERS_UNTIL - CUSTOMERS_FROM)
        known = min(len(ids), max(1, int(len(ids) * elapsed)))
        return ids[int(self.rng.random() * known)]

    def orphan_customer(self) -> int:
        return self.pick(self.missing_customer_ids)

    def write_orphan_lines(self, ord_no: int) -> None:
        r = self.rng.random
        for line_no in range(1, 2 + int(r() * 3)):
            sku, description, price_t, weighed = self.pick(self.products)
            qty_m = 1000 * (1 + int(r() * 10))
            self.sink.add("ORDDTL", (ord_no, line_no, sku, description, _qty(qty_m), _money(price_t), _pct(0),
                                     _money(_line_total(qty_m, price_t, 0))))
            self.tally("line_orphan", [ord_no, line_no])

    def write_order(self, ord_no: int, day: datetime, fate: str | None, invoiced: bool) -> dict:
        rng, r, pick, tally = self.rng, self.rng.random, self.pick, self.tally
        special = fate in SPECIAL_AMOUNT_FATES
        ordered_at = self.business_time(day)
        dst = self.q_dst.draw()
        if dst:
            ordered_at = self.dst_time(ordered_at, "gap" if dst == "order_dst_spring_gap" else "fold") or ordered_at
        dst = self.dst_kind(ordered_at)  # also an ordinary time that happens to fall there
        if dst:
            tally(f"order_dst_{dst}", ord_no)
        milliseconds = self.q_milliseconds.take()
        if milliseconds:
            ordered_at = ordered_at.replace(microsecond=pick(SQLSERVER_MILLISECONDS) * 1000)
            tally("order_sqlserver_milliseconds", ord_no)

        # Customer
        if fate == "order_orphan_customer":
            cust_id = self.orphan_customer()
        else:
            cust_id = self.customer_for(day)

        # Lines
        lines = []
        if special:
            qty_m, price_t = (1000, TOO_LARGE_T) if fate == "order_amount_too_large" \
                else (MODERN_MAX_QTY_M, MODERN_MAX_PRICE_T)
            sku, description, _, _ = pick(self.products)
            lines.append([1, sku, description, qty_m, price_t, 0, _line_total(qty_m, price_t, 0)])
            tally(fate, ord_no)
        else:
            count = pick(LINES_PER_ORDER)
            gaps = self.q_line_gaps.take()
            if gaps:
                count = max(count, 2)
                skip_after, skipped = 1 + int(r() * (count - 1)), 1 + int(r() * 3)
                tally("order_line_number_gaps", ord_no)
            products = self.products
            n_products = len(products)
            for position in range(count):
                line_no = position + 1 + (skipped if gaps and position >= skip_after else 0)
                sku, description, price_t, weighed = products[int(r() * n_products)]
                if weighed:
                    qty_m = 250 + int(r() * 24750)
                else:
                    qty_m = 1000 * (1 + int(r() ** 2 * 24))
                disc_h = 0 if r() < 0.8 else pick((500, 1000, 1250, 1500, 250))
                if r() < 0.03:
                    description = pick(self.empty_or_null)
                lines.append([line_no, sku, description, qty_m, price_t, disc_h, 0])
            if fate in LINE_FATES:
                bad = pick(lines)
                if fate == "line_non_positive_quantity":
                    bad[3] = 0 if r() < 0.3 else -1000 * (1 + int(r() * 5))
                elif fate == "line_negative_price":
                    bad[4] = -bad[4]
                elif fate == "line_discount_out_of_range":
                    bad[5] = 10001 + int(r() * 5000) if r() < 0.6 else -(1 + int(r() * 500))
                else:
                    bad[1] = pick(self.blank_texts).ljust(20) if r() < 0.5 else pick(self.blank_texts)
                tally(fate, [ord_no, bad[0]])
            for line in lines:
                line[6] = _line_total(line[3], line[4], line[5])
            if self.q_line_mismatch.take():
                wrong = pick(lines)
                wrong[6] += pick((1, -1)) * (200 + int(r() * 50000))
                tally("line_total_mismatch", [ord_no, wrong[0]])
            if self.q_line_cp1252.take():
                accented = pick(lines)
                accented[2] = pick(CP1252_DESCRIPTIONS)
                tally("line_cp1252_text", [ord_no, accented[0]])
        add = self.sink.add
        for line_no, sku, description, qty_m, price_t, disc_h, total_t in lines:
            add("ORDDTL", (ord_no, line_no, sku, description, _qty(qty_m), _money(price_t), _pct(disc_h),
                           _money(total_t)))
            if qty_m % 1000 and qty_m > 0:
                tally("line_fractional_quantity", [ord_no, line_no])

        # Amounts, as the legacy application computed them (4 decimals, half-up).
        subtotal_t = sum(line[6] for line in lines)
        half_up = mismatch_sub = mismatch_total = False
        if special:
            discount_t = tax_t = freight_t = 0
        else:
            discount_t = 0 if r() < 0.85 else _half_up(subtotal_t * (2 + int(r() * 9)), 100 * 100) * 100
            tax_t = _half_up((subtotal_t - discount_t) * pick((0, 4000, 6250, 7000, 8875, 6000)), 100_000)
            freight_t = pick((0, 0, 99500, 145000, 250000)) if r() < 0.8 else (500 + int(r() * 20000)) * 100
            half_up = self.q_half_up.take()
            mismatch_sub = self.q_subtotal_mismatch.take()
            mismatch_total = self.q_total_mismatch.take()
        if half_up:
            cents = max(tax_t // 100, 2)
            tax_t = (cents - cents % 2) * 100 + 50  # e.g. 12.3450: half-up 12.35, banker's 12.34
        if tax_t > 0 and tax_t % 100 == 50 and (tax_t // 100) % 2 == 0:  # forced, or by chance
            tally("order_half_up_amount", ord_no)
        if mismatch_sub:
            subtotal_t += pick((1, -1)) * (200 + int(r() * 500000))
            tally("order_subtotal_mismatch", ord_no)
        total_t = subtotal_t - discount_t + tax_t + freight_t
        if mismatch_total:
            total_t += pick((1, -1)) * (200 + int(r() * 100000))
            tally("order_total_mismatch", ord_no)

        # Status, currency, flags
        if fate == "order_unknown_status":
            status = "X"
        elif fate == "order_missing_status":
            status = " "
        elif fate == "order_soft_deleted":
            status = "C" if r() < 0.6 else pick("NAPSD")
        elif invoiced:
            status = pick("SSSSSSSDDDDDDDDDDDPC")
        else:
            status = pick("NNAAAPPSDDDDDDCCCCHH")
        if fate in ("order_unknown_status", "order_missing_status"):
            tally(fate, ord_no)
        self.order_status_counts[status] += 1
        if fate == "order_unknown_currency":
            currency = "XYZ"
            tally(fate, ord_no)
        elif self.q_blank_currency.take():
            currency = self.blank_code(3)
            tally("order_blank_currency", ord_no)
        else:
            currency = pick(CURRENCY_TABLE)
        deleted = fate == "order_soft_deleted"
        if deleted:
            tally(fate, ord_no)
        if fate == "order_orphan_customer":
            tally(fate, ord_no)

        # Ship-to, reference, notes
        ship_city, ship_state, postal, ship_country = pick(CITIES)
        ship_name = f"{pick(FIRST_NAMES)} {pick(LAST_NAMES)}" if r() < 0.5 else \
            f"{pick(COMPANY_WORDS)} {pick(COMPANY_TRADES)}"
        ship_address = f"{1 + int(r() * 9899)} {pick(STREET_NAMES)} {pick(STREET_TYPES)}"
        notes = pick(NOTES) if r() < 0.25 else (pick(self.empty_or_null) if r() < 0.2 else None)
        if self.q_cp1252.take():
            target = pick(("name", "address", "notes"))
            if target == "name":
                ship_name = pick(CP1252_PEOPLE + CP1252_COMPANIES)
            elif target == "address":
                ship_address = pick(CP1252_STREETS)
            else:
                notes = pick(CP1252_NOTES)
            tally("order_cp1252_text", ord_no)
        if self.q_blank_ship_country.take():
            if ship_country != "US":
                ship_city, ship_state, postal, ship_country = pick(US_CITIES)
            stored_ship_country = self.blank_code(2)
            tally("order_blank_ship_country", ord_no)
        else:
            stored_ship_country = ship_country
        if self.q_ship_sentinel.take():
            requested = SENTINEL
            tally("order_ship_date_sentinel", ord_no)
        elif r() < 0.85:
            requested = midnight(ordered_at) + timedelta(days=3 + int(r() * 19))
        else:
            requested = None
        if self.q_no_last_update.take():
            updated = None
            tally("order_no_last_update", ord_no)
        else:
            updated = self.existing(min(ordered_at + timedelta(seconds=int(r() ** 3 * 400 * 86400) + 60),
                                        LAST_POSSIBLE))
            if milliseconds:
                updated = updated.replace(microsecond=pick(SQLSERVER_MILLISECONDS) * 1000)
        po_number = (f"PO-{int(r() * 100000):05d}" if r() < 0.5 else f"45{int(r() * 100000000):08d}") \
            if r() < 0.6 else pick(self.empty_or_null)
        row = (
            ord_no, cust_id, ordered_at, requested, status, self.pad(currency, 3),
            _money(subtotal_t), _money(discount_t), _money(tax_t), _money(freight_t), _money(total_t),
            ship_name, ship_address, pick(ADDRESS_LINE2) if r() < 0.1 else None, ship_city,
            self.pad(ship_state, 2), self._postal(postal, ship_country), self.pad(stored_ship_country, 2),
            po_number, notes, "Y" if deleted else "N", pick(CREATED_BY) if r() < 0.95 else None, updated,
        )
        self.sink.add("ORDHDR", row)
        return {"ord_no": ord_no, "cust_id": cust_id, "ordered_at": ordered_at, "currency": currency,
                "lines": lines, "discount_t": discount_t, "tax_t": tax_t, "freight_t": freight_t,
                "total_t": total_t, "deleted": deleted}

    def next_invoice_number(self, when: datetime, *, issued: bool = True) -> str:
        """The next number in the format of the era the invoice was raised in (`issued` False: a
        number whose header was later deleted, not counted among the formats written)."""
        if when.year < 2012:
            self.year_sequences[when.year] += 1
            number, era = f"{when.year}/{self.year_sequences[when.year]:05d}", "YYYY/nnnnn"
        elif when.year < 2017:
            self.short_sequence += 1
            number, era = f"I{self.short_sequence:05d}", "Innnnn"
        else:
            self.long_sequence += 1
            number, era = f"INV-{self.long_sequence:07d}", "INV-nnnnnnn"
        if issued:
            self.invoice_number_formats[era] += 1
        return number

    def write_invoice(self, order: dict | None, day: datetime) -> None:
        r, pick, tally, add = self.rng.random, self.pick, self.tally, self.sink.add
        if order is None:
            invoiced_at = self.business_time(day + timedelta(days=int(r() * 20)))
        else:
            # From the day after the order: an invoice never predates what it bills.
            invoiced_at = self.business_time(midnight(order["ordered_at"])
                                             + timedelta(days=1 + int(r() * 20)))
        dst = self.q_invoice_dst.draw()
        if dst:
            invoiced_at = self.dst_time(invoiced_at, "gap" if dst == "invoice_dst_spring_gap" else "fold") \
                or invoiced_at
        if self.q_invoice_line_orphans.take():  # header deleted, lines kept: its number is a gap
            lost = self.next_invoice_number(invoiced_at, issued=False)
            for line_no in range(1, 2 + int(r() * 2)):
                amount_t = (1000 + int(r() * 50000)) * 100
                add("INVDTL", (lost, line_no, pick(SERVICE_LINES), _qty(1000), _money(amount_t), _money(amount_t)))
                tally("invoice_line_orphan", [lost, line_no])
        inv_no = self.next_invoice_number(invoiced_at)
        dst = self.dst_kind(invoiced_at)
        if dst:
            tally(f"invoice_dst_{dst}", inv_no)

        # Lines and amounts
        lines = []
        if order is None:
            for _ in range(1 + int(r() * 3)):
                amount_t = (500 + int(r() * 30000)) * 100
                lines.append((pick(SERVICE_LINES), 1000, amount_t, amount_t))
            net_t = sum(line[3] for line in lines)
            tax_t = _half_up(net_t * pick((0, 6250, 8875)), 100_000)
            ord_no, cust_id, currency = None, self.customer_for(day), pick(CURRENCY_TABLE)
            tally("invoice_manual", inv_no)
        else:
            for _, sku, description, qty_m, price_t, _, total_t in order["lines"]:
                lines.append((description if description else sku.strip(), qty_m, price_t, total_t))
            if order["freight_t"]:
                lines.append(("Freight", 1000, order["freight_t"], order["freight_t"]))
            if order["discount_t"]:
                lines.append(("Order discount", 1000, -order["discount_t"], -order["discount_t"]))
            tax_t = order["tax_t"]
            net_t = order["total_t"] - tax_t
            ord_no, cust_id, currency = order["ord_no"], order["cust_id"], order["currency"]
            if order["deleted"]:
                tally("invoice_of_soft_deleted_order", inv_no)
        amount_t = net_t + tax_t
        if self.q_invoice_mismatch.take():
            amount_t += pick((1, -1)) * (200 + int(r() * 100000))
            tally("invoice_amount_mismatch", inv_no)

        # Customer and currency: billed as the order, unless the invoice itself is wrong.
        if self.q_invoice_orphan.take():
            cust_id = self.orphan_customer()
        currency_quirk = self.q_invoice_currency.draw()
        if currency_quirk == "invoice_unknown_currency":
            currency = "XYZ"
        elif currency_quirk == "invoice_blank_currency":
            currency = self.blank_code(3)
        if cust_id in self.missing_customers:
            tally("invoice_orphan_customer", inv_no)
        if currency is None or not currency.strip():
            tally("invoice_blank_currency", inv_no)
        elif currency.strip() not in CURRENCIES:
            tally("invoice_unknown_currency", inv_no)

        # Status, payment, due date
        status = self.q_invoice_status.draw() or "P"
        if status == "Z":
            tally("invoice_unknown_status", inv_no)
        self.invoice_status_counts[status] += 1
        if status == "P" or (status == "Z" and r() < 0.5):
            paid_t, paid_at = amount_t, self.business_time(midnight(invoiced_at)
                                                           + timedelta(days=3 + int(r() * 60)))
        elif status == "O" and r() < 0.4 and amount_t > 0:
            paid_t, paid_at = _half_up(amount_t * (10 + int(r() * 80)), 100 * 100) * 100, None
        else:
            paid_t, paid_at = 0, None
        if self.q_due_sentinel.take():
            due = SENTINEL
            tally("invoice_due_date_sentinel", inv_no)
        elif r() < 0.95:
            due = midnight(invoiced_at) + timedelta(days=30)
        else:
            due = None
        add("INVHDR", (inv_no, ord_no, cust_id, invoiced_at, due, status, self.pad(currency, 3), _money(net_t),
                       _money(tax_t), _money(amount_t), _money(paid_t), paid_at))
        for line_no, (description, qty_m, price_t, line_t) in enumerate(lines, start=1):
            add("INVDTL", (inv_no, line_no, description, _qty(qty_m), _money(price_t), _money(line_t)))


def quirk_catalogue() -> list[dict[str, Any]]:
    """The quirks with their default rates, for `seed_legacy --list-quirks` and the docs."""
    return [asdict(quirk) for quirk in _QUIRK_LIST]
