"""Reading the legacy tables: keyset-paginated SQL per engine, and streaming of the rows.

Every read is `WHERE key > last AND key <= upto ORDER BY key` (keyset pagination, never OFFSET),
so memory is bounded by the batch size and a deep page costs what the first one does. The SQL is
built from plain strings per vendor so that the SQL Server and Oracle paths can be tested here,
without a server (tests/legacy_migration/test_extract_sql.py).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from itertools import repeat

from legacy_migration import ddl

#: Parameters per IN (...) list: Oracle allows 1000 expressions, SQL Server 2100 parameters.
IN_LIST_LIMIT = 1000


@dataclass(frozen=True)
class LegacyTable:
    """What extraction needs of a legacy table; derived from the one schema definition in ddl.py."""

    name: str
    key: str
    columns: tuple[str, ...]
    updated_column: str | None = None

    @classmethod
    def of(cls, table: ddl.Table) -> LegacyTable:
        return cls(table.name, table.primary_key[0], tuple(table.column_names),
                   "LAST_UPD_DT" if table.has_last_update else None)


CUSTMAST = LegacyTable.of(ddl.CUSTMAST)
ORDHDR = LegacyTable.of(ddl.ORDHDR)
ORDDTL = LegacyTable.of(ddl.ORDDTL)
INVHDR = LegacyTable.of(ddl.INVHDR)
INVDTL = LegacyTable.of(ddl.INVDTL)
quote = ddl.quote


def _cols(vendor: str, table: LegacyTable, alias: str = "") -> str:
    prefix = f"{alias}." if alias else ""
    return ", ".join(prefix + quote(vendor, c) for c in table.columns)


def _limit(vendor: str, sql_select: str, order_by: str, limit: int | None) -> str:
    if limit is None:
        return f"{sql_select} ORDER BY {order_by}"
    if vendor == "microsoft":
        return sql_select.replace("SELECT ", f"SELECT TOP ({int(limit)}) ", 1) + f" ORDER BY {order_by}"
    if vendor == "oracle":
        return f"{sql_select} ORDER BY {order_by} FETCH FIRST {int(limit)} ROWS ONLY"
    return f"{sql_select} ORDER BY {order_by} LIMIT {int(limit)}"


def since_clause(vendor: str, table: LegacyTable, alias: str = "") -> str | None:
    """The incremental filter. INVHDR has no LAST_UPD_DT: an invoice counts as changed when it was
    dated or fully paid since then (the two events that create or change a legacy invoice)."""
    prefix = f"{alias}." if alias else ""
    if table.updated_column:
        return f"{prefix}{quote(vendor, table.updated_column)} >= %s"
    if table is INVHDR:
        return f"({prefix}{quote(vendor, 'INV_DT')} >= %s OR {prefix}{quote(vendor, 'PAID_DT')} >= %s)"
    return None


def since_params(table: LegacyTable, since: dt.datetime | None) -> list:
    if since is None:
        return []
    return [since, since] if table is INVHDR else [since]


def keys_sql(vendor: str, table: LegacyTable, *, since: bool) -> str:
    """All keys of a table in key order (the planner cuts them into ranges while streaming)."""
    key = quote(vendor, table.key)
    where = f" WHERE {since_clause(vendor, table)}" if since else ""
    return f"SELECT {key} FROM {quote(vendor, table.name)}{where} ORDER BY {key}"


def range_sql(vendor: str, table: LegacyTable, *, since: bool, bounded_below: bool = True,
              lower: str = ">") -> str:
    """Rows of a key range, in key order: key > %s (the previous range's last key) AND key <= %s.

    The first range has no lower bound. Bounds are keys read from the same engine, so its own
    collation decides string order (INV_NO) and no key can fall between two ranges.
    """
    key = quote(vendor, table.key)
    where = f"{key} {lower} %s AND {key} <= %s" if bounded_below else f"{key} <= %s"
    if since:
        where += f" AND {since_clause(vendor, table)}"
    order = key if table.name not in ("ORDDTL", "INVDTL") else f"{key}, {quote(vendor, 'LINE_NO')}"
    return f"SELECT {_cols(vendor, table)} FROM {quote(vendor, table.name)} WHERE {where} ORDER BY {order}"


def lines_for_range_sql(vendor: str, lines: LegacyTable, *, bounded_below: bool = True, lower: str = ">") -> str:
    """The lines of every header in a key range (lines are fetched by range, not by header)."""
    return range_sql(vendor, lines, since=False, bounded_below=bounded_below, lower=lower)


def next_keys_sql(vendor: str, table: LegacyTable, *, since: bool, bounded_below: bool, limit: int,
                  lower: str = ">") -> str:
    """The next `limit` keys after a key (keyset pagination: the last of them bounds the next batch)."""
    key = quote(vendor, table.key)
    conditions = [f"{key} {lower} %s"] if bounded_below else []
    if since:
        conditions.append(since_clause(vendor, table))
    where = f" WHERE {' AND '.join(conditions)}" if conditions else ""
    return _limit(vendor, f"SELECT {key} FROM {quote(vendor, table.name)}{where}", key, limit)


def exists_sql(vendor: str, table: LegacyTable, count: int, extra_columns: Sequence[str] = ()) -> str:
    """Which of these keys exist (IN list of `count` parameters, count <= IN_LIST_LIMIT)."""
    assert 0 < count <= IN_LIST_LIMIT
    columns = ", ".join(quote(vendor, c) for c in (table.key, *extra_columns))
    marks = ", ".join(["%s"] * count)
    return f"SELECT {columns} FROM {quote(vendor, table.name)} WHERE {quote(vendor, table.key)} IN ({marks})"


def orphan_lines_sql(vendor: str, lines: LegacyTable, header: LegacyTable) -> str:
    """Lines whose header does not exist (no foreign key in the legacy schema)."""
    key = quote(vendor, lines.key)
    return (
        f"SELECT {_cols(vendor, lines, 'd')} FROM {quote(vendor, lines.name)} d "
        f"WHERE NOT EXISTS (SELECT 1 FROM {quote(vendor, header.name)} h WHERE h.{key} = d.{key}) "
        f"ORDER BY d.{key}, d.{quote(vendor, 'LINE_NO')}"
    )


def count_sql(vendor: str, table: LegacyTable, *, since: bool) -> str:
    where = f" WHERE {since_clause(vendor, table)}" if since else ""
    return f"SELECT COUNT(*) FROM {quote(vendor, table.name)}{where}"


def stream(cursor, sql: str, params: Sequence, *, size: int = 2000) -> Iterator[tuple]:
    """Execute and yield rows with fetchmany, so no result is held whole in memory."""
    cursor.execute(sql, list(params))
    while True:
        rows = cursor.fetchmany(size)
        if not rows:
            return
        yield from rows


def as_dicts(table: LegacyTable, rows: Iterable[Sequence]) -> list[dict]:
    """Rows as {column: value}. map() keeps the loop in C: twice as fast as a generator of dict(zip(…))
    for the 9-column line rows (the most numerous), the same for 25-column headers."""
    return list(map(dict, map(zip, repeat(table.columns), rows)))


def chunks(values: Sequence, size: int = IN_LIST_LIMIT) -> Iterator[Sequence]:
    for start in range(0, len(values), size):
        yield values[start:start + size]
