"""CREATE TABLE statements for the legacy tables, per engine, exactly as the data contract lists them.

The contract (/work/shared/legacy/LEGACY_SCHEMA.md) is written down once here, as data: table and
column names, types and nullability. `ddl_for(vendor)` turns it into the statements for one engine;
it is a pure function so that the SQL Server and Oracle text can be checked without a server.

Deliberate choices:
- No foreign keys: the monolith has none, and the orphans it holds must be loadable.
- Names are always quoted, so that PostgreSQL keeps them upper-case (unquoted it folds to lower).
- Nullability follows the contract, so a stand-in refuses the same NULLs the monolith would; the
  generator injects "missing required" values as '' or blanks, which the mapping treats as NULL.
- The LAST_UPD_DT index is a separate statement: the generator creates it after the bulk load,
  which is several times faster than maintaining it row by row.
"""

from __future__ import annotations

from dataclasses import dataclass

VENDORS = ("microsoft", "oracle", "postgresql", "mysql", "sqlite")

# Column kinds of the contract. Each maps to one type per engine in `_type_for`.
INT, SMALLINT, CHAR, VARCHAR, NVARCHAR, LONG_TEXT, MONEY, DECIMAL, DATETIME = (
    "int", "smallint", "char", "varchar", "nvarchar", "long_text", "money", "decimal", "datetime",
)


@dataclass(frozen=True)
class Column:
    name: str
    kind: str
    length: int | None = None  # CHAR/VARCHAR/NVARCHAR length
    precision: tuple[int, int] | None = None  # DECIMAL (digits, places); MONEY is always (19, 4)
    nullable: bool = True

    @property
    def is_char(self) -> bool:
        """A fixed-width code: the monolith pads it with spaces to its length."""
        return self.kind == CHAR


@dataclass(frozen=True)
class Table:
    name: str
    columns: tuple[Column, ...]
    primary_key: tuple[str, ...]

    @property
    def column_names(self) -> list[str]:
        return [column.name for column in self.columns]

    def column(self, name: str) -> Column:
        return next(column for column in self.columns if column.name == name)

    @property
    def has_last_update(self) -> bool:
        return any(column.name == "LAST_UPD_DT" for column in self.columns)


def _req(name: str, kind: str, length: int | None = None, precision: tuple[int, int] | None = None) -> Column:
    return Column(name, kind, length, precision, nullable=False)


def _opt(name: str, kind: str, length: int | None = None, precision: tuple[int, int] | None = None) -> Column:
    return Column(name, kind, length, precision, nullable=True)


CUSTMAST = Table(
    "CUSTMAST",
    (
        _req("CUST_ID", INT),
        _req("CUST_CODE", CHAR, 10),
        _req("CUST_NAME", NVARCHAR, 100),
        _opt("EMAIL", VARCHAR, 254),
        _opt("PHONE", VARCHAR, 30),
        _opt("ADDR_LINE1", NVARCHAR, 100),
        _opt("ADDR_LINE2", NVARCHAR, 100),
        _opt("CITY", NVARCHAR, 60),
        _opt("STATE_CD", CHAR, 2),
        _opt("POSTAL_CD", VARCHAR, 10),
        _opt("COUNTRY_CD", CHAR, 2),
        _req("CUST_STATUS", CHAR, 1),
        _opt("CREDIT_LIMIT", MONEY),
        _req("CREATED_DT", DATETIME),
        _opt("LAST_UPD_DT", DATETIME),
    ),
    ("CUST_ID",),
)

ORDHDR = Table(
    "ORDHDR",
    (
        _req("ORD_NO", INT),
        _req("CUST_ID", INT),
        _req("ORD_DT", DATETIME),
        _opt("REQ_SHIP_DT", DATETIME),
        _req("ORD_STATUS", CHAR, 1),
        _opt("CURR_CD", CHAR, 3),
        _req("SUBTOTAL_AMT", MONEY),
        _req("DISC_AMT", MONEY),
        _req("TAX_AMT", MONEY),
        _req("FREIGHT_AMT", MONEY),
        _req("TOTAL_AMT", MONEY),
        _opt("SHIP_NAME", NVARCHAR, 100),
        _opt("SHIP_ADDR1", NVARCHAR, 100),
        _opt("SHIP_ADDR2", NVARCHAR, 100),
        _opt("SHIP_CITY", NVARCHAR, 100),
        _opt("SHIP_STATE", CHAR, 2),
        _opt("SHIP_POSTAL", VARCHAR, 10),
        _opt("SHIP_COUNTRY", CHAR, 2),
        _opt("PO_NUMBER", VARCHAR, 30),
        _opt("NOTES", LONG_TEXT),
        _req("DEL_FLG", CHAR, 1),
        _opt("CREATED_BY", VARCHAR, 30),
        _opt("LAST_UPD_DT", DATETIME),
    ),
    ("ORD_NO",),
)

ORDDTL = Table(
    "ORDDTL",
    (
        _req("ORD_NO", INT),
        _req("LINE_NO", SMALLINT),
        _req("ITEM_SKU", CHAR, 20),
        _opt("ITEM_DESC", NVARCHAR, 200),
        _req("QTY_ORD", DECIMAL, precision=(12, 3)),
        _req("UNIT_PRICE", MONEY),
        _req("DISC_PCT", DECIMAL, precision=(5, 2)),
        _req("LINE_TOTAL", MONEY),
    ),
    ("ORD_NO", "LINE_NO"),
)

INVHDR = Table(
    "INVHDR",
    (
        _req("INV_NO", VARCHAR, 12),
        _opt("ORD_NO", INT),
        _req("CUST_ID", INT),
        _req("INV_DT", DATETIME),
        _opt("DUE_DT", DATETIME),
        _req("INV_STATUS", CHAR, 1),
        _opt("CURR_CD", CHAR, 3),
        _req("NET_AMT", MONEY),
        _req("TAX_AMT", MONEY),
        _req("INV_AMT", MONEY),
        _req("PAID_AMT", MONEY),
        _opt("PAID_DT", DATETIME),
    ),
    ("INV_NO",),
)

INVDTL = Table(
    "INVDTL",
    (
        _req("INV_NO", VARCHAR, 12),
        _req("LINE_NO", SMALLINT),
        _opt("DESCR", NVARCHAR, 200),
        _req("QTY", DECIMAL, precision=(12, 3)),
        _req("UNIT_PRICE", MONEY),
        _req("LINE_AMT", MONEY),
    ),
    ("INV_NO", "LINE_NO"),
)

#: In the order the generator fills them (parents first, which is also the order a reader expects).
LEGACY_TABLES: tuple[Table, ...] = (CUSTMAST, ORDHDR, ORDDTL, INVHDR, INVDTL)
TABLES_BY_NAME = {table.name: table for table in LEGACY_TABLES}


def quote(vendor: str, name: str) -> str:
    """Quote an identifier the way the engine keeps its case (all contract names are upper-case)."""
    if vendor == "mysql":
        return f"`{name}`"
    if vendor == "microsoft":
        return f"[{name}]"
    return f'"{name}"'


def _type_for(vendor: str, column: Column) -> str:
    kind, n = column.kind, column.length
    digits, places = column.precision or (19, 4)
    if vendor == "microsoft":
        return {
            INT: "INT", SMALLINT: "SMALLINT", CHAR: f"CHAR({n})", VARCHAR: f"VARCHAR({n})",
            NVARCHAR: f"NVARCHAR({n})", LONG_TEXT: "NVARCHAR(MAX)", MONEY: "DECIMAL(19,4)",
            DECIMAL: f"DECIMAL({digits},{places})", DATETIME: "DATETIME",
        }[kind]
    if vendor == "oracle":
        return {
            INT: "NUMBER(10)", SMALLINT: "NUMBER(5)", CHAR: f"CHAR({n})", VARCHAR: f"VARCHAR2({n})",
            NVARCHAR: f"VARCHAR2({n})", LONG_TEXT: "CLOB", MONEY: "NUMBER(19,4)",
            DECIMAL: f"NUMBER({digits},{places})", DATETIME: "DATE",
        }[kind]
    if vendor == "postgresql":
        # CHAR(n) keeps SQL Server's semantics: stored and returned padded to n.
        return {
            INT: "INTEGER", SMALLINT: "SMALLINT", CHAR: f"CHAR({n})", VARCHAR: f"VARCHAR({n})",
            NVARCHAR: f"VARCHAR({n})", LONG_TEXT: "TEXT", MONEY: "NUMERIC(19,4)",
            DECIMAL: f"NUMERIC({digits},{places})", DATETIME: "TIMESTAMP WITHOUT TIME ZONE",
        }[kind]
    if vendor == "mysql":
        # MariaDB's CHAR drops trailing spaces when read back, which would hide the padding the
        # mapping must strip: a VARCHAR of the same length keeps it. DATETIME(3) keeps the
        # SQL Server milliseconds that a plain DATETIME would truncate.
        return {
            INT: "INT", SMALLINT: "SMALLINT", CHAR: f"VARCHAR({n})", VARCHAR: f"VARCHAR({n})",
            NVARCHAR: f"VARCHAR({n})", LONG_TEXT: "LONGTEXT", MONEY: "DECIMAL(19,4)",
            DECIMAL: f"DECIMAL({digits},{places})", DATETIME: "DATETIME(3)",
        }[kind]
    if vendor == "sqlite":
        # SQLite would turn a NUMERIC value into a float (REAL affinity); TEXT keeps the exact
        # decimal string, so no amount ever passes through binary floating point.
        return {
            INT: "INTEGER", SMALLINT: "SMALLINT", CHAR: f"CHAR({n})", VARCHAR: f"VARCHAR({n})",
            NVARCHAR: f"VARCHAR({n})", LONG_TEXT: "TEXT", MONEY: "TEXT",
            DECIMAL: "TEXT", DATETIME: "TIMESTAMP",
        }[kind]
    raise ValueError(f"no legacy DDL for the {vendor!r} engine; expected one of {', '.join(VENDORS)}")


def create_table_sql(vendor: str, table: Table) -> str:
    q = lambda name: quote(vendor, name)  # noqa: E731
    lines = [
        f"    {q(column.name)} {_type_for(vendor, column)}{'' if column.nullable else ' NOT NULL'}"
        for column in table.columns
    ]
    lines.append(f"    CONSTRAINT {q('PK_' + table.name)} PRIMARY KEY ({', '.join(q(c) for c in table.primary_key)})")
    suffix = " ENGINE=InnoDB DEFAULT CHARSET=utf8mb4" if vendor == "mysql" else ""
    return f"CREATE TABLE {q(table.name)} (\n" + ",\n".join(lines) + f"\n){suffix}"


def create_index_sql(vendor: str, table: Table) -> list[str]:
    """The LAST_UPD_DT index incremental extraction filters on (only the tables that have the column)."""
    if not table.has_last_update:
        return []
    _type_for(vendor, table.columns[0])  # refuse an unknown engine here too
    q = lambda name: quote(vendor, name)  # noqa: E731
    return [f"CREATE INDEX {q('IX_' + table.name + '_LAST_UPD_DT')} ON {q(table.name)} ({q('LAST_UPD_DT')})"]


def table_ddl(vendor: str) -> list[str]:
    return [create_table_sql(vendor, table) for table in LEGACY_TABLES]


def index_ddl(vendor: str) -> list[str]:
    return [sql for table in LEGACY_TABLES for sql in create_index_sql(vendor, table)]


def ddl_for(vendor: str) -> list[str]:
    """Every statement that creates the legacy schema on `vendor` (connection.vendor): tables, then indexes."""
    return table_ddl(vendor) + index_ddl(vendor)


def drop_table_sql(vendor: str, table_name: str) -> str:
    # Plain DROP TABLE (no IF EXISTS, which Oracle before 23c lacks): callers drop only what exists.
    return f"DROP TABLE {quote(vendor, table_name)}"


def insert_sql(vendor: str, table: Table) -> str:
    """A one-row INSERT with Django's %s placeholders (every backend's cursor wrapper accepts them)."""
    q = lambda name: quote(vendor, name)  # noqa: E731
    columns = ", ".join(q(c) for c in table.column_names)
    return f"INSERT INTO {q(table.name)} ({columns}) VALUES ({', '.join(['%s'] * len(table.columns))})"


def copy_sql(table: Table) -> str:
    """PostgreSQL COPY ... FROM STDIN for the whole row."""
    columns = ", ".join(quote("postgresql", c) for c in table.column_names)
    return f"COPY {quote('postgresql', table.name)} ({columns}) FROM STDIN"
