"""Loading mapped records into the modern tables: staging + one upsert per table.

Per batch: the mapped rows go into a temporary staging table (COPY on PostgreSQL, executemany
elsewhere), then one `INSERT … SELECT … ON CONFLICT (legacy key) DO UPDATE … WHERE something
differs` writes them. Unchanged rows are not rewritten (the WHERE), changed ones are updated,
new ones inserted; the keys it returns tell which is which. An order and its lines (an invoice
and its lines) are loaded in the same transaction, so a record arrives whole or not at all.

A first load is the common case of a cut-over (every record new), and on PostgreSQL it takes a
shorter road: when none of a chunk's legacy keys is in the modern table yet, the rows are COPYed
straight into the modern tables, header ids drawn from the table's own sequence, parent ids
taken from the look-up the work item made once (ParentIds). No staging table, no join, no
conflict check: PostgreSQL does what the COPY ceiling of the benchmark does. Anything else (a re-run, a changed record, a parent not
found) goes the staged-upsert way, which is the definition of what a load writes.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from operator import itemgetter

from django.db import connections, models
from django.utils import timezone

from invoices.models import Invoice, InvoiceLine
from legacy_migration.mapping import Outcome
from legacy_migration.models import Entity
from orders.models import Customer, Order, OrderLine

#: Staging column types per engine. On SQLite they must carry the same affinity as Django's own
#: columns (decimal → NUMERIC), or "unchanged" rows would compare text with numbers and look changed.
STAGING_TYPES = {
    "postgresql": {"DecimalField": "numeric", "DateTimeField": "timestamptz", "IntegerField": "bigint",
                   "PositiveSmallIntegerField": "integer", "CharField": "text", "TextField": "text",
                   "EmailField": "text"},
    "sqlite": {"DecimalField": "decimal", "DateTimeField": "datetime", "IntegerField": "integer",
               "PositiveSmallIntegerField": "integer", "CharField": "text", "TextField": "text",
               "EmailField": "text"},
}


#: COPY's text format, with the columns' types set (copy.set_types), so that each value is
#: written by the dumper of its column's type (a str-valued enum as its value, not its name).
#: Text, not binary: psycopg writes a Decimal as text (str(), exact) 2–3× faster than as
#: PostgreSQL's binary numeric, and Python is this load's bottleneck. Measured on 300,000 order
#: lines: 0.41 s of client CPU in text against 1.1–1.2 s in binary, the server's about the same.
COPY_FORMAT = "(FORMAT text)"


@dataclass
class LoadCounts:
    inserted: int = 0
    updated: int = 0
    unchanged: int = 0
    changed_keys: set = field(default_factory=set)


@dataclass(frozen=True)
class Parent:
    """A foreign key resolved from a legacy key: `column` = the id of the `model` row whose
    legacy_id is the staging column `key` (required: an inner join; else a left join, NULL)."""

    column: str
    key: str
    model: type
    alias: str
    required: bool = True


@dataclass(frozen=True)
class Target:
    """One modern table fed from one staging table."""

    model: type
    staging: str
    columns: tuple[str, ...]  # mapped value names = staging columns
    conflict: tuple[str, ...]  # the unique key the upsert is on
    parents: tuple[Parent, ...] = ()
    constants: tuple[tuple[str, str | None], ...] = ()  # insert-only columns with a fixed value
    returning: str = "legacy_id"

    def column(self, name: str) -> str:
        return self.model._meta.get_field(name).column

    @property
    def table(self) -> str:
        return self.model._meta.db_table

    @property
    def joins(self) -> str:
        return " ".join(f"{'JOIN' if p.required else 'LEFT JOIN'} {p.model._meta.db_table} {p.alias} "
                        f"ON {p.alias}.legacy_id = s.{p.key}" for p in self.parents)

    @property
    def has_updated_at(self) -> bool:
        return any(f.name == "updated_at" for f in self.model._meta.fields)

    def tail(self, now) -> tuple:
        """The values a load appends to each row after its mapped and parent columns (see insert_columns)."""
        return ((now,) if self.has_updated_at else ()) + tuple(value for _, value in self.constants)

    def insert_columns(self) -> list[str]:
        """The modern columns a load writes, in the order of `row_values`."""
        plain = [self.column(c) for c in self.columns if c not in KEY_ONLY]
        return (plain + [p.column for p in self.parents] + (["updated_at"] if self.has_updated_at else [])
                + [c for c, _ in self.constants])


def _sql_literal(value: str | None) -> str:
    if value is None:
        return "NULL"
    if value == "":
        return "''"
    raise ValueError(f"no literal for constant {value!r}")  # only these two are needed; keep it so


CUSTOMER_COLUMNS = ("legacy_id", "code", "name", "email", "phone", "address_line1", "address_line2", "city",
                    "state", "postal_code", "country", "status", "credit_limit", "created_at", "legacy_updated_at")
ORDER_COLUMNS = ("legacy_id", "number", "customer_legacy_id", "status", "currency", "ordered_at",
                 "requested_ship_at", "subtotal", "discount", "tax", "freight", "total", "ship_name",
                 "ship_address_line1", "ship_address_line2", "ship_city", "ship_state", "ship_postal_code",
                 "ship_country", "po_number", "notes", "legacy_created_by", "legacy_updated_at", "created_at")
ORDER_LINE_COLUMNS = ("order_legacy_id", "line_number", "sku", "description", "quantity", "unit_price",
                      "discount_percent", "line_total")
INVOICE_COLUMNS = ("legacy_id", "number", "kind", "customer_legacy_id", "order_legacy_id", "legacy_order_number",
                   "status", "currency", "invoiced_at", "due_at", "discount", "net", "tax", "total", "paid_amount",
                   "paid_at", "credited_amount", "created_at")
INVOICE_LINE_COLUMNS = ("invoice_legacy_id", "line_number", "sku", "description", "quantity", "unit_price", "amount")

CUSTOMERS = Target(Customer, "stg_customer", CUSTOMER_COLUMNS, ("legacy_id",))
ORDERS = Target(
    Order, "stg_order", ORDER_COLUMNS, ("legacy_id",),
    parents=(Parent("customer_id", "customer_legacy_id", Customer, "c"),),
    constants=(("status_before_hold", ""), ("created_by_id", None)),
)
ORDER_LINES = Target(
    OrderLine, "stg_orderline", ORDER_LINE_COLUMNS, ("order_id", "line_number"),
    parents=(Parent("order_id", "order_legacy_id", Order, "o"),),
    returning="order_id",
)
INVOICES = Target(
    Invoice, "stg_invoice", INVOICE_COLUMNS, ("legacy_id",),
    parents=(Parent("customer_id", "customer_legacy_id", Customer, "c"),
             Parent("order_id", "order_legacy_id", Order, "o", required=False)),
    constants=(("series", ""), ("fiscal_year", None), ("sequence_number", None),
               ("credited_invoice_id", None), ("reason", ""), ("void_reason", ""), ("notes", ""),
               ("created_by_id", None)),
)
INVOICE_LINES = Target(
    InvoiceLine, "stg_invoiceline", INVOICE_LINE_COLUMNS, ("invoice_id", "line_number"),
    parents=(Parent("invoice_id", "invoice_legacy_id", Invoice, "i"),),
    returning="invoice_id",
)
#: The modern tables each entity's load writes, header first: the one list of them, read by
#: set_aside (which tables a first load finds empty) and by reconciliation (what it compares).
ENTITY_TARGETS: dict[str, tuple[Target, ...]] = {
    Entity.CUSTOMERS: (CUSTOMERS,),
    Entity.ORDERS: (ORDERS, ORDER_LINES),
    Entity.INVOICES: (INVOICES, INVOICE_LINES),
}

#: The migrated parents of a work item, per parent model: {legacy key: modern id}, looked up once by
#: Step.parent_states. A first load takes a parent's id from here instead of asking again per chunk.
ParentIds = Mapping[type, Mapping]

#: Staging columns that exist only to resolve a foreign key (not modern columns themselves).
KEY_ONLY = {"customer_legacy_id", "order_legacy_id", "invoice_legacy_id"}


class Loader:
    """Writes batches into the modern tables over one connection (the `default` alias)."""

    def __init__(self, using: str = "default"):
        self.connection = connections[using]
        self.vendor = self.connection.vendor
        self._column_oids: dict[str, dict[str, int]] = {}
        self._id_sequences: dict[str, str] = {}

    # -- staging -------------------------------------------------------------------------------
    def _staging_type(self, target: Target, name: str) -> str:
        types = STAGING_TYPES.get(self.vendor, {})
        if name in KEY_ONLY:
            return types.get("CharField" if name == "invoice_legacy_id" else "IntegerField", "")
        return types.get(target.model._meta.get_field(name).get_internal_type(), "")

    def _stage(self, cursor, target: Target, rows: Sequence[Sequence]) -> None:
        # Every batch, not once per connection: a temp table created inside a transaction that is
        # rolled back (a dry run, a refused batch) is gone again, whatever we remembered.
        types = [self._staging_type(target, c) for c in target.columns]
        columns = ", ".join(f"{c} {t}".strip() for c, t in zip(target.columns, types))
        create = f"CREATE TEMP TABLE IF NOT EXISTS {target.staging} ({columns})"
        if self.vendor == "postgresql":
            # TRUNCATE, not DELETE: autovacuum never visits temp tables, so deleted rows would pile
            # up for the whole run and every upsert would scan them again. One round trip for both.
            cursor.execute(f"{create}; TRUNCATE {target.staging}")
        else:
            cursor.execute(create)
            if self.vendor == "sqlite" and target.conflict != ("legacy_id",):
                # SQLite runs the stale-line NOT EXISTS as a nested loop: without this index it is
                # quadratic in the batch (12 s for 9,000 lines). PostgreSQL hashes it by itself.
                first = target.columns[0]
                cursor.execute(f"CREATE INDEX IF NOT EXISTS {target.staging}_key ON {target.staging} "
                               f"({first}, line_number)")
            cursor.execute(f"DELETE FROM {target.staging}")
        if not rows:
            return
        if self.vendor == "postgresql":
            # COPY is the fastest way into PostgreSQL; see COPY_FORMAT for the format.
            with cursor.cursor.copy(f"COPY {target.staging} ({', '.join(target.columns)}) FROM STDIN "
                                    f"{COPY_FORMAT}") as copy:
                copy.set_types(types)
                for row in rows:
                    copy.write_row(row)
        else:
            marks = ", ".join(["%s"] * len(target.columns))
            cursor.executemany(f"INSERT INTO {target.staging} ({', '.join(target.columns)}) VALUES ({marks})",
                               [tuple(self._adapt(v) for v in row) for row in rows])

    def _adapt(self, value):
        """Parameters as Django's ORM would write them on this engine (same text for datetimes)."""
        if isinstance(value, dt.datetime):
            return self.connection.ops.adapt_datetimefield_value(value)
        return value

    # -- upsert --------------------------------------------------------------------------------
    def _upsert_sql(self, target: Target, *, with_id: bool = False) -> str:
        differs = "IS DISTINCT FROM" if self.vendor == "postgresql" else "IS NOT"
        table = target.table
        insert_columns = target.insert_columns()
        select_exprs = ([f"s.{c}" for c in target.columns if c not in KEY_ONLY]
                        + [f"{p.alias}.id" for p in target.parents] + (["%s"] if target.has_updated_at else [])
                        + [_sql_literal(v) for _, v in target.constants])
        compared = [c for c in insert_columns[:len(insert_columns) - len(target.constants)]
                    if c not in target.conflict and c != "updated_at"]
        assignments = [f"{c} = excluded.{c}" for c in compared]
        if target.has_updated_at:
            assignments.append("updated_at = excluded.updated_at")
        changed = " OR ".join(f"{table}.{c} {differs} excluded.{c}" for c in compared)
        return (
            f"INSERT INTO {table} ({', '.join(insert_columns)}) "
            f"SELECT {', '.join(select_exprs)} FROM {target.staging} s {target.joins} WHERE true "
            f"ON CONFLICT ({', '.join(target.conflict)}) DO UPDATE SET {', '.join(assignments)} "
            f"WHERE {changed} RETURNING {table}.{target.returning}" + (f", {table}.id" if with_id else "")
        )

    def _upsert(self, cursor, target: Target, rows: Sequence[Sequence], now, *, staged: bool = False,
                with_ids: bool = False) -> set | dict:
        """The keys of the rows written (inserted or changed); with_ids: {key: id} instead."""
        if not staged:
            self._stage(cursor, target, rows)
        if not rows:
            return {} if with_ids else set()
        params = [now] if target.has_updated_at else []
        cursor.execute(self._upsert_sql(target, with_id=with_ids), params)
        if with_ids:
            return dict(cursor.fetchall())
        return {r[0] for r in cursor.fetchall()}

    def _existing(self, cursor, target: Target) -> set:
        table = target.model._meta.db_table
        cursor.execute(f"SELECT t.legacy_id FROM {table} t JOIN {target.staging} s ON s.legacy_id = t.legacy_id")
        return {r[0] for r in cursor.fetchall()}

    def _delete_stale_lines(self, cursor, lines: Target, parent: Target, parent_fk: str, parent_key: str) -> set:
        """Lines the legacy record no longer has: delete them, return their parents' ids."""
        table, parent_table = lines.model._meta.db_table, parent.model._meta.db_table
        cursor.execute(
            f"DELETE FROM {table} WHERE {parent_fk} IN (SELECT p.id FROM {parent_table} p "
            f"JOIN {parent.staging} s ON s.legacy_id = p.legacy_id) AND NOT EXISTS ("
            f"SELECT 1 FROM {lines.staging} l JOIN {parent_table} p2 ON p2.legacy_id = l.{parent_key} "
            f"WHERE p2.id = {table}.{parent_fk} AND l.line_number = {table}.line_number) RETURNING {parent_fk}"
        )
        return {r[0] for r in cursor.fetchall()}

    # -- first loads: COPY straight into the modern tables (PostgreSQL) --------------------------
    def _all_new(self, cursor, target: Target, keys: Sequence) -> bool:
        """Whether none of these legacy keys is in the modern table yet: then a plain COPY is exact.

        Integer keys are asked as their range: no row between the lowest and the highest means none
        of them is there, in one index probe instead of one per key (a row in the range that is not
        one of the keys only sends the chunk the staged-upsert way, which is always right). Text
        keys are asked one by one: the column's collation, not Python's, orders them."""
        if self.vendor != "postgresql" or not keys:
            return False
        if isinstance(target.model._meta.get_field("legacy_id"), models.IntegerField):
            cursor.execute(f"SELECT EXISTS (SELECT 1 FROM {target.table} WHERE legacy_id BETWEEN %s AND %s)",
                           [min(keys), max(keys)])
        else:
            cursor.execute(f"SELECT EXISTS (SELECT 1 FROM {target.table} WHERE legacy_id = ANY(%s))", [list(keys)])
        return not cursor.fetchone()[0]

    def _new_ids(self, cursor, table: str, count: int) -> list[int]:
        """Ids for new rows from the table's own identity sequence, so lines can point at their
        header before either is written (a rolled-back chunk leaves a gap in ids, nothing else).

        The sequence is looked up once: pg_get_serial_sequence() in the select list runs for every
        row, and made each id cost 2.7 µs of PostgreSQL's time instead of 0.3 µs."""
        sequence = self._id_sequences.get(table)
        if sequence is None:
            cursor.execute("SELECT pg_get_serial_sequence(%s, 'id')", [table])
            sequence = self._id_sequences[table] = cursor.fetchone()[0]
        cursor.execute("SELECT nextval(%s::regclass) FROM generate_series(1, %s)", [sequence, count])
        return [r[0] for r in cursor.fetchall()]

    def _copy_into(self, cursor, table: str, columns: Sequence[str], rows: Sequence[Sequence]) -> None:
        oids = self._column_oids.get(table)
        if oids is None:
            cursor.execute("SELECT attname, atttypid::int FROM pg_attribute WHERE attrelid = %s::regclass "
                           "AND attnum > 0 AND NOT attisdropped", [table])
            oids = self._column_oids[table] = dict(cursor.fetchall())
        # The modern table's own checks run here (a value too long, a constraint): raised as
        # Django's DatabaseError, as the upsert's are, so a refused row is rejected, not fatal.
        with self.connection.wrap_database_errors, cursor.cursor.copy(
                f"COPY {table} ({', '.join(columns)}) FROM STDIN {COPY_FORMAT}") as copy:
            copy.set_types([oids[c] for c in columns])
            for row in rows:
                copy.write_row(row)

    def _copy_new(self, cursor, target: Target, outcomes: Sequence[Outcome], now, ids: Sequence[int] | None = None,
                  parent_ids: Sequence[dict] = ()) -> bool:
        """COPY these records, new to the modern store, into `target`'s table: parents resolved from
        `parent_ids` (one {legacy key: id} per `target.parents`), with these ids if given. Writes
        nothing and returns False if a required parent is missing: the upsert, whose join drops
        such a row, is then the one to say what happens."""
        pick = itemgetter(*[c for c in target.columns if c not in KEY_ONLY])
        tail = target.tail(now)
        parents = [(p.key, p.required, found) for p, found in zip(target.parents, parent_ids)]
        rows = []
        for n, outcome in enumerate(outcomes):
            values = outcome.values
            resolved = []
            for key, required, found in parents:
                parent_id = found.get(values[key])
                if parent_id is None and required:
                    return False
                resolved.append(parent_id)
            rows.append(pick(values) + tuple(resolved) + tail + ((ids[n],) if ids is not None else ()))
        self._copy_into(cursor, target.table, target.insert_columns() + (["id"] if ids is not None else []), rows)
        return True

    def _copy_new_lines(self, cursor, lines: Target, outcomes: Sequence[Outcome], header_ids: Sequence[int],
                        now) -> None:
        """COPY the lines of these new headers, which were just given `header_ids`."""
        (parent,) = lines.parents
        pick = itemgetter(*[c for c in lines.columns if c != parent.key])
        tail = lines.tail(now)
        rows = [pick(line) + (header_id,) + tail
                for outcome, header_id in zip(outcomes, header_ids) for line in outcome.lines]
        self._copy_into(cursor, lines.table, lines.insert_columns(), rows)

    def _load_new_with_lines(self, cursor, header: Target, lines: Target, outcomes: Sequence[Outcome], now,
                             known: ParentIds) -> bool:
        ids = self._new_ids(cursor, header.table, len(outcomes))
        parent_ids = [known[p.model] for p in header.parents]  # the join the upsert would make
        if not self._copy_new(cursor, header, outcomes, now, ids, parent_ids):
            return False
        self._copy_new_lines(cursor, lines, outcomes, ids, now)
        return True

    # -- entities ------------------------------------------------------------------------------
    def load_customers(self, outcomes: Sequence[Outcome]) -> LoadCounts:
        keys = [o.values["legacy_id"] for o in outcomes]
        now = timezone.now()
        with self.connection.cursor() as cursor:
            if self._all_new(cursor, CUSTOMERS, keys) and self._copy_new(cursor, CUSTOMERS, outcomes, now):
                return LoadCounts(inserted=len(keys), changed_keys=set(keys))
            values = itemgetter(*CUSTOMER_COLUMNS)
            rows = [values(o.values) for o in outcomes]
            self._stage(cursor, CUSTOMERS, rows)
            existing = self._existing(cursor, CUSTOMERS)
            changed = self._upsert(cursor, CUSTOMERS, rows, now, staged=True)
        return _counts(len(rows), existing, changed)

    def load_with_lines(self, outcomes: Sequence[Outcome], header: Target, lines: Target,
                        header_columns: Sequence[str], line_columns: Sequence[str], parent_fk: str,
                        known: ParentIds) -> LoadCounts:
        now = timezone.now()
        keys = [o.values["legacy_id"] for o in outcomes]
        with self.connection.cursor() as cursor:
            if (self._all_new(cursor, header, keys)
                    and self._load_new_with_lines(cursor, header, lines, outcomes, now, known)):
                return LoadCounts(inserted=len(keys), changed_keys=set(keys))
            table = header.table
            header_values, line_values = itemgetter(*header_columns), itemgetter(*line_columns[1:])
            rows = [header_values(o.values) for o in outcomes]
            line_rows = [(o.values["legacy_id"], *line_values(line)) for o in outcomes for line in o.lines]
            self._stage(cursor, header, rows)
            existing = self._existing(cursor, header)
            written = self._upsert(cursor, header, rows, now, staged=True, with_ids=True)
            changed = set(written)
            touched_ids = self._upsert(cursor, lines, line_rows, now)
            if existing:
                # Only a header that was there before can have lines the legacy record lost; a
                # first load (every header new) has none to look for.
                touched_ids |= self._delete_stale_lines(cursor, lines, header, parent_fk, line_columns[0])
            # Headers this batch inserted or updated carry `now` and are counted in `changed`
            # already: rewriting them would only write every new row twice.
            touched_ids -= set(written.values())
            lines_changed = set()
            if touched_ids:
                # A changed line changes its order: bump updated_at so "updated since" readers see it.
                cursor.execute(f"UPDATE {table} SET updated_at = %s WHERE {self._in('id', len(touched_ids))} "
                               "RETURNING legacy_id", [now, *self._in_params(touched_ids)])
                lines_changed = {r[0] for r in cursor.fetchall()}
        return _counts(len(rows), existing, changed | lines_changed)

    def load_orders(self, outcomes: Sequence[Outcome], known: ParentIds) -> LoadCounts:
        return self.load_with_lines(outcomes, ORDERS, ORDER_LINES, ORDER_COLUMNS, ORDER_LINE_COLUMNS, "order_id",
                                    known)

    def load_invoices(self, outcomes: Sequence[Outcome], known: ParentIds) -> LoadCounts:
        return self.load_with_lines(outcomes, INVOICES, INVOICE_LINES, INVOICE_COLUMNS, INVOICE_LINE_COLUMNS,
                                    "invoice_id", known)

    # -- key lists -------------------------------------------------------------------------------
    def _in(self, column: str, count: int) -> str:
        """`column IN (…)`: one array parameter on PostgreSQL (a statement with thousands of
        placeholders costs more to parse than to run), a placeholder per value elsewhere."""
        if self.vendor == "postgresql":
            return f"{column} = ANY(%s)"
        return f"{column} IN ({', '.join(['%s'] * count)})"

    def _in_params(self, values) -> list:
        return [list(values)] if self.vendor == "postgresql" else list(values)

    def customers_sharing_email(self, legacy_ids: Sequence[int]) -> dict[int, tuple[str, list[str]]]:
        """For these customers, the other customers with the same email (rule 3's warning)."""
        if not legacy_ids:
            return {}
        with self.connection.cursor() as cursor:
            cursor.execute(
                f"SELECT a.legacy_id, a.email, b.legacy_id FROM orders_customer a JOIN orders_customer b "
                f"ON b.email = a.email AND b.id <> a.id WHERE {self._in('a.legacy_id', len(legacy_ids))} "
                "ORDER BY a.legacy_id, b.legacy_id",
                self._in_params(legacy_ids))
            found: dict[int, tuple[str, list[str]]] = {}
            for key, address, other in cursor.fetchall():
                found.setdefault(key, (address, []))[1].append(str(other) if other is not None else "(modern)")
        return found

    def codes_taken(self, codes: Sequence[str]) -> dict[str, int | None]:
        """Customer codes already used in the modern store, and by which legacy customer."""
        if not codes:
            return {}
        with self.connection.cursor() as cursor:
            cursor.execute(f"SELECT code, legacy_id FROM orders_customer WHERE {self._in('code', len(codes))}",
                           self._in_params(codes))
            return dict(cursor.fetchall())

    def migrated_ids(self, model: type, keys: Sequence) -> dict:
        """{legacy key: modern id} of the records among these keys that are in the modern store."""
        if not keys:
            return {}
        with self.connection.cursor() as cursor:
            cursor.execute(f"SELECT legacy_id, id FROM {model._meta.db_table} "
                           f"WHERE {self._in('legacy_id', len(keys))}", self._in_params(keys))
            return dict(cursor.fetchall())


def _counts(total: int, existing: set, changed: set) -> LoadCounts:
    inserted = len(changed - existing)
    updated = len(changed & existing)
    return LoadCounts(inserted=inserted, updated=updated, unchanged=total - inserted - updated,
                      changed_keys=changed)

