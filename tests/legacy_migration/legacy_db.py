"""A small legacy database with one of each quirk, built in any stand-in engine, with what a
correct migration must make of it (computed from how it was built, not hard-coded)."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from decimal import Decimal

from django.db import connections

from legacy_migration import ddl


@dataclass
class Expected:
    customers: set = field(default_factory=set)
    customers_rejected: set = field(default_factory=set)
    orders: set = field(default_factory=set)
    orders_rejected: set = field(default_factory=set)
    orders_excluded: set = field(default_factory=set)
    invoices: set = field(default_factory=set)
    invoices_rejected: set = field(default_factory=set)
    orphan_order_lines: set = field(default_factory=set)
    orphan_invoice_lines: set = field(default_factory=set)
    lines_per_order: int = 2


def drop_and_create(alias: str) -> None:
    connection = connections[alias]
    vendor = connection.vendor
    with connection.cursor() as cursor:
        existing = {name.upper() for name in connection.introspection.table_names(cursor)}
        for table in ddl.LEGACY_TABLES:
            if table.name in existing:
                cursor.execute(ddl.drop_table_sql(vendor, table.name))
        for statement in ddl.ddl_for(vendor):
            cursor.execute(statement)


def insert(alias: str, table: ddl.Table, rows: list[tuple]) -> None:
    connection = connections[alias]
    with connection.cursor() as cursor:
        cursor.executemany(ddl.insert_sql(connection.vendor, table), rows)
    if not connection.get_autocommit():
        connection.commit()


def money(value: str) -> Decimal | str:
    return Decimal(value)


def build(alias: str, *, customers: int = 40, orders: int = 120, invoices: int = 60,
          base_updated: dt.datetime = dt.datetime(2024, 1, 1, 9, 0)) -> Expected:
    """Customers 1..N, orders 1..M (customer = order % (N + 2) + 1, so two customer ids do not exist)."""
    drop_and_create(alias)
    sqlite = connections[alias].vendor == "sqlite"

    def d(value: str):
        return value if sqlite else Decimal(value)

    expected = Expected()
    bad_customer = 5
    rows = []
    for cid in range(1, customers + 1):
        status = "Q" if cid == bad_customer else "A"
        rows.append((cid, f"C{cid:07d}  ", f" Customer {cid} Café ", "Shared@Example.com " if cid <= 2 else f"c{cid}@example.com",
                     "555-0100", "1 Main St", "", "Albany", "NY", "12207", "  ", status, d("1000.0050"),
                     dt.datetime(2020, 1, 1, 10, 0), base_updated))
        (expected.customers_rejected if cid == bad_customer else expected.customers).add(cid)
    insert(alias, ddl.CUSTMAST, rows)

    header_rows, line_rows = [], []
    for ono in range(1, orders + 1):
        cid = ono % (customers + 2) + 1
        deleted = ono % 50 == 7
        bad_qty = ono % 50 == 9
        header_rows.append((ono, cid, dt.datetime(2023, 11, 5, 1, 30), dt.datetime(1900, 1, 1), "A", "   ",
                            d("30.0000"), d("0.0000"), d("2.4000"), d("5.0000"), d("37.4000"), "Ship", "1 Main", None,
                            "Albany", "NY", "12207", "", f"PO-{ono}", "note", "Y" if deleted else "N", "jsmith",
                            base_updated))
        line_rows.append((ono, 1, "SKU-1", "Widget", d("2.000"), d("10.0000"), d("0.00"), d("20.0000")))
        line_rows.append((ono, 2, "SKU-2", "Gadget", d("0.000") if bad_qty else d("1.000"), d("10.0000"),
                          d("0.00"), d("10.0000")))
        if deleted:
            expected.orders_excluded.add(ono)
        elif cid > customers or cid == bad_customer or bad_qty:
            expected.orders_rejected.add(ono)
        else:
            expected.orders.add(ono)
    line_rows.append((orders + 1000, 1, "SKU-X", "orphan", d("1.000"), d("1.0000"), d("0.00"), d("1.0000")))
    expected.orphan_order_lines.add(f"{orders + 1000}/1")
    insert(alias, ddl.ORDHDR, header_rows)
    insert(alias, ddl.ORDDTL, line_rows)

    inv_rows, inv_lines = [], []
    for n in range(1, invoices + 1):
        number = f"INV-{n:07d}"
        ono = n if n % 10 else None  # every tenth is a manual invoice
        cid = (n % customers) + 1
        inv_rows.append((number, ono, cid, dt.datetime(2024, 1, 20, 12, 0), dt.datetime(1900, 1, 1), "O", "USD",
                         d("35.0000"), d("2.4000"), d("37.4000"), d("0.0000"), None))
        inv_lines.append((number, 1, "Widget", d("2.000"), d("17.5000"), d("35.0000")))
        if cid == bad_customer or (ono is not None and ono in expected.orders_rejected):
            expected.invoices_rejected.add(number)
        else:
            expected.invoices.add(number)
    inv_lines.append(("INV-9999999", 1, "orphan", d("1.000"), d("1.0000"), d("1.0000")))
    expected.orphan_invoice_lines.add("INV-9999999/1")
    insert(alias, ddl.INVHDR, inv_rows)
    insert(alias, ddl.INVDTL, inv_lines)
    return expected
