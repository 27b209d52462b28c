"""Checksums of key ranges: what lets a reconciliation skip the records that have not changed.

Reconciliation compares the legacy value *as carried over* (mapped in Python) with the modern value,
so a legacy checksum can never be compared with a modern one directly. Instead each side is
checksummed on its own terms, per key range, and the pair is remembered:

1. The legacy engine checksums the RAW rows of a range, header table and lines table, with a hash it
   has: md5 on PostgreSQL, CRC32 on MariaDB, HASHBYTES on SQL Server, ORA_HASH on Oracle. SQLite has
   none, so a CRC32 is registered on the connection (`register_sqlite_functions`) and applied to each
   range's rows as SQLite's printf quotes them; it runs in-process but costs a fraction of moving
   the rows through the mapping.
2. PostgreSQL checksums the modern rows of the same keys: exactly the values reconciliation compares
   (`modern_hash_sql`), so touching a column reconciliation does not compare changes nothing.
3. A range that was compared field by field and found equal is stored with both checksums
   (models.ReconciledRange). On the next reconciliation a range whose two checksums are unchanged is
   still equal — the mapping is a pure function of the raw row and of the parent states it read,
   which are stored and re-checked too — so its rows are not moved at all. Only the ranges whose
   checksum changed are read, mapped and compared.

A checksum is "rows:sum of row hashes" per table: a sum does not depend on the order in which the
engine visits the rows (SQLite, hashing a range's rows together, reads them in key order). One
grouped query answers for a whole span of ranges, fifty ranges in one round trip: the two-level
narrowing reladiff gets from bisecting, without its extra round trips.

Range membership is always decided by the engine that holds the rows: a CASE over the ranges' upper
bounds, so that the engine's own collation orders string keys (INV_NO) the way it ordered them when
the ranges were cut. The SQL is plain text per vendor, tested without a server for SQL Server and
Oracle (tests/legacy_migration/test_reconcile_checksums.py).

`table_diff` is the same idea between two PostgreSQL tables of the same shape (a table and its copy),
the like-for-like comparison with reladiff in bench/reconcile.py.
"""

from __future__ import annotations

import zlib
from collections.abc import Sequence
from dataclasses import dataclass, field

from legacy_migration import ddl

#: Bumped whenever a hash or its text changes, so that stored checksums of another version are ignored.
ALGORITHM = 1
#: The name under which the CRC32 is registered on a SQLite connection.
SQLITE_FUNCTION = "oms_crc32"


# ---------------------------------------------------------------------------------------------
# Row hashes on the legacy engines
# ---------------------------------------------------------------------------------------------
def _crc32(text: str | None) -> int:
    return zlib.crc32((text or "").encode("utf-8", "surrogatepass"))


def register_sqlite_functions(raw_connection) -> None:
    """Give a sqlite3 connection the CRC32 the checksum queries call (idempotent).

    It is called once per range, on the range's rows as SQLite's own printf('%Q', …) quotes them
    (NULL apart from 'NULL', quotes doubled), concatenated in key order: one call into Python per
    hundred rows rather than one per row.
    """
    raw_connection.create_function(SQLITE_FUNCTION, 1, _crc32, deterministic=True)


def _mssql_text(column: ddl.Column) -> str:
    name = ddl.quote("microsoft", column.name)
    if column.kind == ddl.DATETIME:
        return f"CONVERT(NVARCHAR(30), {name}, 121)"  # style 121 keeps the milliseconds
    return f"CONVERT(NVARCHAR(MAX), {name})"


def _oracle_text(column: ddl.Column) -> str:
    name = ddl.quote("oracle", column.name)
    if column.kind == ddl.DATETIME:
        return f"TO_CHAR({name}, 'YYYY-MM-DD HH24:MI:SS')"
    if column.kind in (ddl.INT, ddl.SMALLINT, ddl.MONEY, ddl.DECIMAL):
        return f"TO_CHAR({name}, 'TM9')"
    return name


#: Oracle hashes a CLOB in chunks of this many characters (ORA_HASH takes no LOB, and a VARCHAR2
#: expression is limited to 4000 bytes: 1000 characters fit in any character set).
ORACLE_LOB_CHUNK = 1000
ORACLE_LOB_CHUNKS = 4


def row_hash_sql(vendor: str, table: ddl.Table) -> str:
    """An integer hash of a whole legacy row, in the engine's own SQL.

    Every column takes part, NULL apart from '' where the engine keeps them apart; each value is
    length-prefixed (or quoted) so that moving text from one column to the next changes the hash.
    """
    columns = table.columns
    if vendor == "sqlite":
        raise ValueError("SQLite hashes a range's rows together, not row by row: see row_text_sql")
    if vendor == "postgresql":
        row = ", ".join(ddl.quote(vendor, c.name) for c in columns)
        return f"('x' || substr(md5(ROW({row})::text), 1, 8))::bit(32)::bigint"
    if vendor == "mysql":
        # QUOTE() returns the word NULL for NULL and a quoted, escaped literal otherwise.
        parts = ", ".join(f"QUOTE({ddl.quote(vendor, c.name)})" for c in columns)
        return f"CRC32(CONCAT_WS(',', {parts}))"
    if vendor == "microsoft":
        parts = ", ".join(
            f"CASE WHEN {ddl.quote(vendor, c.name)} IS NULL THEN N'~' "
            f"ELSE CONCAT(DATALENGTH({_mssql_text(c)}), N':', {_mssql_text(c)}) END"
            for c in columns)
        # The first 4 bytes of the MD5 as a signed INT, widened so that a range's SUM cannot overflow.
        return f"CAST(CAST(SUBSTRING(HASHBYTES('MD5', CONCAT({parts})), 1, 4) AS INT) AS BIGINT)"
    if vendor == "oracle":
        plain = [c for c in columns if c.kind != ddl.LONG_TEXT]
        lobs = [c for c in columns if c.kind == ddl.LONG_TEXT]
        parts = [f"NVL2({ddl.quote(vendor, c.name)}, LENGTH({_oracle_text(c)}) || ':' || {_oracle_text(c)}, '~')"
                 for c in plain]
        parts += [f"NVL(TO_CHAR(DBMS_LOB.GETLENGTH({ddl.quote(vendor, c.name)})), '~')" for c in lobs]
        terms = [f"ORA_HASH({' || '.join(parts)})"]
        factor = 3
        for column in lobs:
            for chunk in range(ORACLE_LOB_CHUNKS):
                start = chunk * ORACLE_LOB_CHUNK + 1
                terms.append(f"{factor} * NVL(ORA_HASH(DBMS_LOB.SUBSTR({ddl.quote(vendor, column.name)}, "
                             f"{ORACLE_LOB_CHUNK}, {start})), 0)")
                factor += 2
        return f"MOD({' + '.join(terms)}, 4294967296)"
    raise ValueError(f"no row hash for the {vendor!r} engine; expected one of {', '.join(ddl.VENDORS)}")


def row_text_sql(table: ddl.Table) -> str:
    """SQLite: a row as one unambiguous text, built in C by printf's %Q."""
    columns = ", ".join(ddl.quote("sqlite", c.name) for c in table.columns)
    return f"printf('{','.join(['%Q'] * len(table.columns))}', {columns})"


# ---------------------------------------------------------------------------------------------
# Ranges: a span of consecutive key ranges in one query
# ---------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Span:
    """Consecutive key ranges (after, upper_1], (upper_1, upper_2], …, (upper_n-1, upper_n].

    `after` None: the first range has no lower bound. The last upper None: the last range has no
    upper bound (the open end of the table, where new records arrive).
    """

    after: object | None
    uppers: tuple

    def __post_init__(self):
        if not self.uppers:
            raise ValueError("a span holds at least one range")
        if any(u is None for u in self.uppers[:-1]):
            raise ValueError("only the last range of a span may be open above")

    def __len__(self) -> int:
        return len(self.uppers)

    @property
    def open_above(self) -> bool:
        return self.uppers[-1] is None


def range_of_sql(key_sql: str, span: Span) -> str:
    """The range index (0-based) of a row: a CASE over the uppers, evaluated by the engine itself."""
    if len(span) == 1:
        return "0"
    whens = " ".join(f"WHEN {key_sql} <= %s THEN {i}" for i in range(len(span) - 1))
    return f"CASE {whens} ELSE {len(span) - 1} END"


def span_where_sql(key_sql: str, span: Span) -> str:
    conditions = ([f"{key_sql} > %s"] if span.after is not None else []) + \
                 ([f"{key_sql} <= %s"] if not span.open_above else [])
    return " AND ".join(conditions) or "1 = 1"


def span_params(span: Span) -> list:
    """Parameters for range_of_sql then span_where_sql, in that order."""
    return list(span.uppers[:-1]) + ([span.after] if span.after is not None else []) + \
        ([span.uppers[-1]] if not span.open_above else [])


def legacy_checksums_sql(vendor: str, table: ddl.Table, key: str, span: Span) -> str:
    """Per range of the span: (range index, rows, sum of row hashes) of one legacy table.

    `key` is the column the ranges are cut on: the table's key, or for a lines table its header key.
    """
    key_sql = ddl.quote(vendor, key)
    source = f"FROM {ddl.quote(vendor, table.name)} WHERE {span_where_sql(key_sql, span)}"
    if vendor == "sqlite":
        order = ", ".join(ddl.quote(vendor, c) for c in table.primary_key)
        return (f"SELECT r, COUNT(*), {SQLITE_FUNCTION}(group_concat(t, char(30))) FROM ("
                f"SELECT {range_of_sql(key_sql, span)} AS r, {row_text_sql(table)} AS t {source} ORDER BY {order}"
                f") s GROUP BY r")
    return (f"SELECT r, COUNT(*), SUM(h) FROM (SELECT {range_of_sql(key_sql, span)} AS r, "
            f"{row_hash_sql(vendor, table)} AS h {source}) s GROUP BY r")


def span_where_params(span: Span) -> list:
    """Parameters for span_where_sql alone (no range index asked for)."""
    return ([span.after] if span.after is not None else []) + ([span.uppers[-1]] if not span.open_above else [])


def row_check_sql(vendor: str, table: ddl.Table) -> str:
    """What a legacy row adds to its range's checksum, as a column beside the row (a cold reconciliation
    reads the rows anyway): its hash (row_hash_sql), or on SQLite its text (row_text_sql), which
    `range_checksum` then sums, or concatenates in key order and hashes, exactly as
    legacy_checksums_sql does in the engine."""
    return row_text_sql(table) if vendor == "sqlite" else row_hash_sql(vendor, table)


def range_checksum(vendor: str, checks: Sequence) -> tuple[int, int]:
    """(rows, total) of one range from its rows' row_check_sql values in key order: what
    legacy_checksums_sql returns for that range."""
    if not checks:
        return 0, 0
    if vendor == "sqlite":
        return len(checks), _crc32(chr(30).join(checks))
    return len(checks), sum(int(check) for check in checks)


def span_rows_sql(vendor: str, table: ddl.Table, key: str, span: Span, *, inclusive: bool = False,
                  since: str | None = None, with_range: bool = True, check: bool = False) -> str:
    """Every column of a span's rows in key order, then the range index of each (a header table is cut on
    its key, a lines table on its header's key). `inclusive`: the lower bound is included (--keys A:B);
    `since`: an extra condition (the incremental filter) whose parameters follow the span's.
    `with_range=False`: the columns only (parameters: span_where_params), for rows whose range the
    reader knows without the engine (lines, which follow their header; integer keys, which order alike
    everywhere). `check`: each row's row_check_sql last, for its range's checksum."""
    key_sql = ddl.quote(vendor, key)
    where = span_where_sql(key_sql, span)
    if inclusive:
        where = where.replace(f"{key_sql} > %s", f"{key_sql} >= %s", 1)
    columns = ", ".join(ddl.quote(vendor, c) for c in table.column_names)
    if with_range:
        columns += f", {range_of_sql(key_sql, span)}"
    if check:
        columns += f", {row_check_sql(vendor, table)}"
    order = ", ".join(ddl.quote(vendor, c) for c in table.primary_key)
    return (f"SELECT {columns} FROM {ddl.quote(vendor, table.name)} "
            f"WHERE {where}{f' AND {since}' if since else ''} ORDER BY {order}")


def legacy_keys_sql(vendor: str, table: ddl.Table, span: Span) -> str:
    """Every key of the span with its range index (string keys: the modern side is reached by key)."""
    key_sql = ddl.quote(vendor, table.primary_key[0])
    return (f"SELECT {key_sql}, {range_of_sql(key_sql, span)} FROM {ddl.quote(vendor, table.name)} "
            f"WHERE {span_where_sql(key_sql, span)}")


def orphan_count_sql(vendor: str, lines: ddl.Table, header: ddl.Table) -> str:
    """How many lines have no header (counted, never fetched: there can be many)."""
    key = ddl.quote(vendor, header.primary_key[0])
    return (f"SELECT COUNT(*) FROM {ddl.quote(vendor, lines.name)} d WHERE NOT EXISTS "
            f"(SELECT 1 FROM {ddl.quote(vendor, header.name)} h WHERE h.{key} = d.{key})")


# ---------------------------------------------------------------------------------------------
# The modern side (PostgreSQL)
# ---------------------------------------------------------------------------------------------
def modern_hash_sql(expressions: Sequence[str], *, pg_version: int) -> str:
    """An integer hash of the modern values reconciliation compares (never of the whole row)."""
    row = ", ".join(expressions)
    if pg_version >= 140000:
        # Hashes each value with its type's own hash function: no text conversion, several times
        # cheaper than md5 over the row's text.
        return f"hash_record_extended(ROW({row}), 0)"
    return f"('x' || substr(md5(ROW({row})::text), 1, 16))::bit(64)::bigint"


def checksum_text(rows: int, total) -> str:
    return f"{rows}:{int(total or 0)}"


# ---------------------------------------------------------------------------------------------
# Table against table (PostgreSQL): the like-for-like comparison with reladiff
# ---------------------------------------------------------------------------------------------
@dataclass
class TableDiff:
    segments: int = 0
    segments_differing: int = 0
    rows_fetched: int = 0
    only_in_a: list = field(default_factory=list)
    only_in_b: list = field(default_factory=list)
    differing: list = field(default_factory=list)  # (key, [column, …])

    @property
    def keys(self) -> set:
        return set(self.only_in_a) | set(self.only_in_b) | {key for key, _ in self.differing}


def table_segments_sql(table: str, key: str, columns: Sequence[str], segment: int, *, pg_version: int) -> str:
    """(segment, rows, sum of row hashes) for a whole table, in one pass; segment = key div `segment`."""
    return (f"SELECT {key} / {int(segment)} AS seg, count(*), "
            f"sum({modern_hash_sql([key, *columns], pg_version=pg_version)}) "
            f"FROM {table} GROUP BY 1")


def table_rows_sql(table: str, key: str, columns: Sequence[str], segment: int) -> str:
    """The rows of some segments (an array of segment numbers), by index range scans."""
    return (f"SELECT t.{key}, {', '.join('t.' + c for c in columns)} FROM unnest(%s::bigint[]) AS g(seg) "
            f"JOIN {table} t ON t.{key} >= g.seg * {int(segment)} AND t.{key} < (g.seg + 1) * {int(segment)}")


def table_diff(connect, table_a: str, table_b: str, *, key: str, columns: Sequence[str], segment: int = 1000,
               pg_version: int = 150000) -> TableDiff:
    """Which rows differ between two tables with an integer key, by checksum narrowing.

    1. Both tables are checksummed per segment of `segment` keys, at the same time on two connections
       (one grouped pass each; the server uses a core per table).
    2. Segments whose (rows, sum) differ are the only ones whose rows are fetched, from both sides.
    3. Those rows are compared in Python, value by value.

    `connect` returns a new psycopg connection (one per table, for the concurrent pass).
    """
    from concurrent.futures import ThreadPoolExecutor

    def checksums(table: str) -> dict:
        with connect() as conn:
            rows = conn.execute(table_segments_sql(table, key, columns, segment, pg_version=pg_version)).fetchall()
        return {seg: (n, total) for seg, n, total in rows}

    with ThreadPoolExecutor(max_workers=2) as pool:
        side_a, side_b = pool.map(checksums, (table_a, table_b))
    result = TableDiff(segments=len(side_a.keys() | side_b.keys()))
    differing = sorted(seg for seg in side_a.keys() | side_b.keys() if side_a.get(seg) != side_b.get(seg))
    result.segments_differing = len(differing)
    if not differing:
        return result
    with connect() as conn:
        rows_a = {row[0]: row[1:] for row in conn.execute(table_rows_sql(table_a, key, columns, segment),
                                                          [differing])}
        rows_b = {row[0]: row[1:] for row in conn.execute(table_rows_sql(table_b, key, columns, segment),
                                                          [differing])}
    result.rows_fetched = len(rows_a) + len(rows_b)
    for k in sorted(rows_a.keys() | rows_b.keys()):
        a, b = rows_a.get(k), rows_b.get(k)
        if b is None:
            result.only_in_a.append(k)
        elif a is None:
            result.only_in_b.append(k)
        elif a != b:
            result.differing.append((k, [c for c, x, y in zip(columns, a, b) if x != y]))
    return result
