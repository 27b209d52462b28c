"""The big PostgreSQL database the benchmarks run against, loaded fast with COPY.

`ensure_dataset()` gives a migrated database holding `Scale` rows: customers, orders with their
lines, invoices (with credit notes and payments). Loading 1,000,000 orders takes minutes, so a
database that is already there with the same scale and the recorded counts is reused; `reload`
forces a fresh one.

How it loads:
1. Drop and create the database, run Django's migrations (the real schema, with its checks).
2. Drop the secondary indexes, unique constraints and foreign keys of the four big tables (kept:
   primary keys and CHECK constraints, so every row is still checked as it arrives).
3. COPY the rows, generated in chunks in primary-key order. Amounts are whole cents in Python
   ints (exact, never float) and add up as the models require: line total = quantity × price ×
   (100 − discount %) / 100 rounded half-up; subtotal = Σ lines; total = subtotal − discount +
   tax + freight; invoice total = net + tax.
4. Recreate what step 2 dropped. Rebuilding a unique index or adding a foreign key checks every
   row, so duplicate numbers or a dangling reference fail the load instead of passing silently.
5. Set the id sequences and the NumberSequence counters, record the load in `bench_dataset`
   (written last: a load that died halfway is never mistaken for a finished one) and ANALYZE.

Not loaded: invoice lines and status events (the changelists do not read them); payments are.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import random
import time
from collections.abc import Callable
from itertools import accumulate
from urllib.parse import urlparse

import psycopg

BIG_TABLES = ["orders_customer", "orders_order", "orders_orderline", "invoices_invoice", "invoices_payment"]
MARKER_TABLE = "bench_dataset"
CHUNK_ORDERS = 25_000


@dataclasses.dataclass(frozen=True)
class Scale:
    customers: int = 200_000
    orders: int = 1_000_000
    lines_per_order: float = 3.0
    invoices: int = 800_000
    years: int = 3
    seed: int = 1

    def as_dict(self) -> dict:
        return dataclasses.asdict(self)


# ---------------------------------------------------------------------------------------------
# Database plumbing
# ---------------------------------------------------------------------------------------------
def _connect(url: str, *, dbname: str | None = None, autocommit: bool = False) -> psycopg.Connection:
    parts = urlparse(url)
    return psycopg.connect(host=parts.hostname or "127.0.0.1", port=parts.port or 5432,
                           user=parts.username or "postgres", password=parts.password,
                           dbname=dbname or parts.path.lstrip("/"), autocommit=autocommit)


def database_name(url: str) -> str:
    return urlparse(url).path.lstrip("/")


def _database_exists(url: str) -> bool:
    with _connect(url, dbname="postgres", autocommit=True) as conn:
        return conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [database_name(url)]).fetchone() is not None


def loaded_counts(url: str) -> dict[str, int]:
    with _connect(url) as conn:
        return {table: conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0] for table in BIG_TABLES}


def _recorded_load(url: str) -> dict | None:
    """The marker row of a finished load, or None (no database, no marker, half-finished load)."""
    if not _database_exists(url):
        return None
    with _connect(url) as conn:
        exists = conn.execute("SELECT to_regclass(%s)", [MARKER_TABLE]).fetchone()[0]
        if exists is None:
            return None
        row = conn.execute(f"SELECT scale, counts, seconds, loaded_at FROM {MARKER_TABLE}").fetchone()
    if row is None:
        return None
    scale, counts, seconds, loaded_at = row
    return {"scale": scale, "counts": counts, "seconds": float(seconds), "loaded_at": loaded_at.isoformat()}


def ensure_dataset(url: str, scale: Scale, *, reload: bool, migrate: Callable[[], None],
                   log: Callable[[str], None] = print) -> dict:
    """Reuse the loaded database if it matches `scale` and its counts, else (re)load it. Returns the load record."""
    record = None if reload else _recorded_load(url)
    if record is not None:
        if record["scale"] != scale.as_dict():
            log(f"{database_name(url)} holds another scale ({record['scale']}); reloading.")
            record = None
        elif loaded_counts(url) != record["counts"]:
            log(f"{database_name(url)} counts changed since it was loaded; reloading.")
            record = None
    if record is not None:
        log(f"Reusing {database_name(url)} loaded {record['loaded_at']} ({_counts_text(record['counts'])}); "
            "--reload to rebuild it.")
        migrate()  # applies any migration added since the load, on the loaded data, as production would
        record["reused"] = True
        return record
    return _load(url, scale, migrate=migrate, log=log)


def _counts_text(counts: dict[str, int]) -> str:
    return ", ".join(f"{table.split('_', 1)[1]} {n:,}" for table, n in counts.items())


def _load(url: str, scale: Scale, *, migrate: Callable[[], None], log: Callable[[str], None]) -> dict:
    started = time.monotonic()
    name = database_name(url)
    with _connect(url, dbname="postgres", autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')
    log(f"Created database {name}; migrating")
    migrate()
    with _connect(url) as conn:
        conn.execute("SET maintenance_work_mem = '512MB'")
        _check_columns_covered(conn)
        deferred = _drop_indexes_and_keys(conn)
        conn.commit()
        counts = _copy_rows(conn, scale, log)
        conn.commit()
        log("Rebuilding indexes, unique constraints and foreign keys (checks every row)")
        t0 = time.monotonic()
        for statement in deferred:
            conn.execute(statement)
        conn.commit()
        log(f"  done in {time.monotonic() - t0:.0f}s")
        for table in BIG_TABLES:
            conn.execute(f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), (SELECT max(id) FROM {table}))")
        conn.execute(f"CREATE TABLE {MARKER_TABLE} (scale jsonb NOT NULL, counts jsonb NOT NULL, "
                     "seconds numeric NOT NULL, loaded_at timestamptz NOT NULL DEFAULT now())")
        seconds = round(time.monotonic() - started, 1)
        conn.execute(f"INSERT INTO {MARKER_TABLE} (scale, counts, seconds) VALUES (%s, %s, %s)",
                     [json.dumps(scale.as_dict()), json.dumps(counts), seconds])
        conn.commit()
    with _connect(url, autocommit=True) as conn:
        log("VACUUM ANALYZE")
        conn.execute("VACUUM ANALYZE")
    log(f"Loaded {name} in {seconds:.0f}s: {_counts_text(counts)}")
    return {"scale": scale.as_dict(), "counts": counts, "seconds": seconds, "reused": False,
            "loaded_at": dt.datetime.now(dt.UTC).isoformat()}


def _drop_indexes_and_keys(conn: psycopg.Connection) -> list[str]:
    """Drop secondary indexes, unique constraints and foreign keys of the big tables; return how to recreate them."""
    tables = list(BIG_TABLES)
    constraints = conn.execute(
        """SELECT c.conrelid::regclass::text, c.conname, c.contype, pg_get_constraintdef(c.oid)
           FROM pg_constraint c WHERE c.conrelid::regclass::text = ANY(%s) AND c.contype IN ('u', 'f')""",
        [tables]).fetchall()
    indexes = conn.execute(
        """SELECT i.tablename, i.indexname, i.indexdef FROM pg_indexes i
           WHERE i.schemaname = 'public' AND i.tablename = ANY(%s)
             AND NOT EXISTS (SELECT 1 FROM pg_constraint c WHERE c.conname = i.indexname)""",
        [tables]).fetchall()
    recreate = [indexdef for _, _, indexdef in indexes]
    recreate += [f'ALTER TABLE {table} ADD CONSTRAINT "{name}" {definition}'
                 for table, name, kind, definition in sorted(constraints, key=lambda c: c[2] == "f")]
    for table, name, _, _ in sorted(constraints, key=lambda c: c[2] != "f"):  # foreign keys first
        conn.execute(f'ALTER TABLE {table} DROP CONSTRAINT "{name}"')
    for _, name, _ in indexes:
        conn.execute(f'DROP INDEX "{name}"')
    return recreate


# ---------------------------------------------------------------------------------------------
# Rows
# ---------------------------------------------------------------------------------------------
CUSTOMER_COLUMNS = ("id", "legacy_id", "code", "name", "email", "phone", "address_line1", "address_line2", "city",
                    "state", "postal_code", "country", "status", "credit_limit", "created_at", "updated_at",
                    "legacy_updated_at")
ORDER_COLUMNS = ("id", "number", "legacy_id", "customer_id", "status", "status_before_hold", "currency", "ordered_at",
                 "requested_ship_at", "subtotal", "discount", "tax", "freight", "total", "ship_name",
                 "ship_address_line1", "ship_address_line2", "ship_city", "ship_state", "ship_postal_code",
                 "ship_country", "po_number", "notes", "legacy_created_by", "created_by_id", "created_at",
                 "updated_at", "legacy_updated_at")
LINE_COLUMNS = ("id", "order_id", "line_number", "sku", "description", "quantity", "unit_price", "discount_percent",
                "line_total")
INVOICE_COLUMNS = ("id", "number", "kind", "series", "fiscal_year", "sequence_number", "legacy_id", "customer_id",
                   "order_id", "legacy_order_number", "credited_invoice_id", "status", "currency", "invoiced_at",
                   "due_at", "discount", "net", "tax", "total", "paid_amount", "paid_at", "credited_amount", "reason",
                   "void_reason", "notes", "created_by_id", "created_at", "updated_at")
PAYMENT_COLUMNS = ("id", "invoice_id", "amount", "received_at", "reference", "recorded_by_id", "recorded_at")
COLUMNS = {"orders_customer": CUSTOMER_COLUMNS, "orders_order": ORDER_COLUMNS, "orders_orderline": LINE_COLUMNS,
           "invoices_invoice": INVOICE_COLUMNS, "invoices_payment": PAYMENT_COLUMNS}


def _check_columns_covered(conn: psycopg.Connection) -> None:
    """Fail clearly if a model gained a required column this loader does not fill."""
    rows = conn.execute(
        """SELECT table_name, column_name FROM information_schema.columns
           WHERE table_schema = 'public' AND table_name = ANY(%s) AND is_nullable = 'NO' AND column_default IS NULL""",
        [BIG_TABLES]).fetchall()
    missing = [f"{table}.{column}" for table, column in rows if column not in COLUMNS[table]]
    if missing:
        raise RuntimeError(f"bench/dataset.py does not fill these required columns: {', '.join(missing)}")


HEADS_A = ["North", "South", "East", "West", "Red", "Blue", "Green", "Silver", "Iron", "Stone", "Oak", "Pine", "Cedar",
           "Maple", "Lake", "River", "Harbor", "Bay", "Summit", "Valley", "Prairie", "Granite", "Copper", "Bright",
           "Clear", "Fair", "High", "Long", "Mill", "Spring", "Sun", "Wind", "Frost", "Golden", "Rock", "Elm", "Ash",
           "Birch", "Fox", "Hawk"]
HEADS_B = ["brook", "field", "gate", "wood", "ridge", "stone", "water", "view", "point", "haven", "crest", "ford",
           "dale", "mont", "bridge", "port", "wick", "ton", "side", "land", "line", "worth", "mere", "well", "hurst",
           "shire", "bury", "moor", "glen", "vale", "cliff", "haven", "hill", "park", "grove", "holm", "marsh", "ley",
           "den", "combe"]
TRADES = ["Hardware", "Tool & Supply", "Building Supply", "Plumbing", "Electric", "Industrial", "Farm & Garden",
          "Marine Supply", "Auto Parts", "Facilities", "Restaurant Supply", "Machine Works", "Fasteners", "Packaging",
          "Janitorial", "Home Center", "Contractors", "Lumber", "Fabrication", "Office Supply"]
SUFFIXES = ["Inc.", "LLC", "Co.", "Ltd.", "Corp.", "& Sons", "Group", "Partners"]
PLACES = [("New York", "NY", "10001", "US", "USD", 8875), ("Buffalo", "NY", "14202", "US", "USD", 8750),
          ("Boston", "MA", "02110", "US", "USD", 6250), ("Philadelphia", "PA", "19103", "US", "USD", 8000),
          ("Atlanta", "GA", "30303", "US", "USD", 8900), ("Chicago", "IL", "60601", "US", "USD", 10250),
          ("Dallas", "TX", "75201", "US", "USD", 8250), ("Denver", "CO", "80202", "US", "USD", 8810),
          ("Seattle", "WA", "98101", "US", "USD", 10350), ("Portland", "OR", "97204", "US", "USD", 0),
          ("Toronto", "ON", "M5H 2N2", "CA", "CAD", 13000), ("Monterrey", "NL", "64000", "MX", "MXN", 16000),
          ("Manchester", "", "M1 1AE", "GB", "GBP", 20000), ("Rotterdam", "", "3011 AA", "NL", "EUR", 21000)]
PLACE_WEIGHTS = [8, 3, 4, 4, 4, 5, 4, 3, 3, 2, 2, 1, 1, 1]
# Order status by age: (statuses, weights) for an order younger than N days.
STATUS_BY_AGE = [
    (3, ["pending", "confirmed", "processing", "on_hold", "cancelled"], [45, 30, 15, 5, 5]),
    (14, ["pending", "confirmed", "processing", "shipped", "delivered", "on_hold", "cancelled"],
     [6, 10, 20, 30, 24, 4, 6]),
    (10**6, ["delivered", "cancelled", "on_hold", "shipped", "pending"], [91, 7, 1, 0.5, 0.5]),
]
INVOICEABLE = {"confirmed", "processing", "shipped", "delivered"}
SKUS = [(f"SKU-{n:05d}", f"Catalogue item {n:05d}", 50 + (n * 7919) % 49_950) for n in range(1, 5001)]


def _cents(c: int) -> str:
    return f"{c // 100}.{c % 100:02d}"


def _ts(seconds: int) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S+00", time.gmtime(seconds))


def _row(values) -> str:
    return "\t".join("\\N" if v is None else str(v) for v in values) + "\n"


def _copy(conn: psycopg.Connection, table: str, rows: list[str]) -> None:
    if not rows:
        return
    with conn.cursor() as cur, cur.copy(f"COPY {table} ({', '.join(COLUMNS[table])}) FROM STDIN") as copy:
        for start in range(0, len(rows), 10_000):
            copy.write("".join(rows[start:start + 10_000]))


def _copy_rows(conn: psycopg.Connection, scale: Scale, log: Callable[[str], None]) -> dict[str, int]:
    rng = random.Random(scale.seed)
    now = int(time.time()) - 3600
    start = now - scale.years * 365 * 86400
    t0 = time.monotonic()

    # Customers -------------------------------------------------------------------------------
    customers = []  # (name, place, city/street)
    rows = []
    for cid in range(1, scale.customers + 1):
        name = f"{rng.choice(HEADS_A)}{rng.choice(HEADS_B)} {rng.choice(TRADES)} {rng.choice(SUFFIXES)}"
        place = rng.choices(PLACES, weights=PLACE_WEIGHTS)[0]
        street = f"{rng.randint(1, 9800)} Commerce Dr"
        customers.append((name, place, street))
        status = rng.choices(["active", "inactive", "on_hold"], weights=[90, 6, 4])[0]
        created = start - rng.randint(0, 900) * 86400
        email = f"ap{cid}@{name.split(' ')[0].lower()}.example.com" if rng.random() > 0.03 else None
        rows.append(_row((cid, None, f"C{cid:07d}", name, email, f"555-{cid % 10000:04d}", street, "", place[0],
                          place[1], place[2], place[3], status, _cents(rng.choice([500_000, 1_000_000, 5_000_000])),
                          _ts(created), _ts(created + 86400), None)))
        if len(rows) >= 50_000:
            _copy(conn, "orders_customer", rows)
            rows = []
    _copy(conn, "orders_customer", rows)
    log(f"  customers {scale.customers:,} ({time.monotonic() - t0:.0f}s)")

    # Orders, lines, invoices, credit notes, payments: chunk by chunk in order-date order ---------
    # Big accounts order more (Pareto weights); cumulative weights make 1M draws cheap.
    cum_weights = list(accumulate(rng.paretovariate(1.2) for _ in range(scale.customers)))
    order_times = sorted(rng.randint(start, now) for _ in range(scale.orders))
    statuses_share = _invoiceable_share(order_times, now)
    invoice_probability = min(1.0, scale.invoices / max(1, scale.orders * statuses_share) * 0.99)
    numbers = {}  # (series, year) -> last number
    line_id = invoice_id = payment_id = 0
    counts = dict.fromkeys(BIG_TABLES, 0)
    counts["orders_customer"] = scale.customers
    max_lines = max(1, round(scale.lines_per_order * 2 - 1))

    def next_number(series: str, year: int) -> int:
        numbers[(series, year)] = numbers.get((series, year), 0) + 1
        return numbers[(series, year)]

    for chunk_start in range(0, scale.orders, CHUNK_ORDERS):
        chunk_times = order_times[chunk_start:chunk_start + CHUNK_ORDERS]
        customer_ids = rng.choices(range(1, scale.customers + 1), cum_weights=cum_weights, k=len(chunk_times))
        order_rows, line_rows, invoice_rows, payment_rows = [], [], [], []
        for offset, (ordered, cid) in enumerate(zip(chunk_times, customer_ids)):
            oid = chunk_start + offset + 1
            name, place, street = customers[cid - 1]
            age_days = (now - ordered) / 86400
            for limit, choices, weights in STATUS_BY_AGE:
                if age_days < limit:
                    status = rng.choices(choices, weights=weights)[0]
                    break
            subtotal = 0
            for line_number in range(1, rng.randint(1, max_lines) + 1):
                sku, description, price_cents = SKUS[rng.randrange(len(SKUS))]
                quantity = rng.choice((1, 1, 2, 3, 4, 5, 10, 12, 24))
                discount_pct = rng.choice((0, 0, 0, 0, 0, 5, 10))
                # quantity × price × (100 − pct) / 100, half-up to the cent (all positive ints).
                line_total = (quantity * price_cents * (100 - discount_pct) + 50) // 100
                subtotal += line_total
                line_id += 1
                line_rows.append(_row((line_id, oid, line_number, sku, description, f"{quantity}.000",
                                       f"{price_cents // 100}.{price_cents % 100:02d}00", f"{discount_pct}.00",
                                       _cents(line_total))))
            discount = (subtotal * 5 + 50) // 100 if rng.random() < 0.1 else 0
            tax = ((subtotal - discount) * place[5] + 50_000) // 100_000
            freight = 0 if subtotal >= 75_000 else rng.choice((1250, 1800, 2495, 3900))
            total = subtotal - discount + tax + freight
            year = time.gmtime(ordered).tm_year
            order_rows.append(_row((
                oid, f"SO{year}-{next_number('SO', year):06d}", None, cid, status,
                "confirmed" if status == "on_hold" else "", place[4], _ts(ordered), None, _cents(subtotal),
                _cents(discount), _cents(tax), _cents(freight), _cents(total), name, street, "", place[0], place[1],
                place[2], place[3], f"PO-{rng.randint(10000, 99999)}" if rng.random() < 0.4 else "", "", "", None,
                _ts(ordered), _ts(min(now, ordered + 3 * 86400)), None)))

            if status not in INVOICEABLE or rng.random() > invoice_probability:
                continue
            invoice_id += 1
            drafted = min(now, ordered + rng.randint(3600, 5 * 86400))
            net = subtotal + freight - discount
            if age_days > 45:
                inv_status = rng.choices(["paid", "issued", "void", "credited"], weights=[92, 4, 2, 2])[0]
            else:
                inv_status = rng.choices(["draft", "issued", "paid"], weights=[15, 60, 25])[0]
            number = series = fiscal_year = sequence = invoiced = due = None
            if inv_status != "draft":
                fiscal_year, series = time.gmtime(drafted).tm_year, "INV"
                sequence = next_number("INV", fiscal_year)
                number = f"INV-{fiscal_year}-{sequence:06d}"
                invoiced, due = drafted, drafted + 30 * 86400
            paid, paid_at = 0, None
            if inv_status == "paid":
                paid, paid_at = total, min(now, drafted + rng.randint(2, 45) * 86400)
            elif inv_status == "issued" and rng.random() < 0.2:
                paid = total // 2
            credited = total if inv_status == "credited" else 0
            invoice_rows.append(_row((
                invoice_id, number, "invoice", series or "", fiscal_year, sequence, None, cid, oid, None, None,
                inv_status, place[4], _ts(invoiced) if invoiced else None, _ts(due) if due else None,
                _cents(discount), _cents(net), _cents(tax), _cents(total), _cents(paid),
                _ts(paid_at) if paid_at else None, _cents(credited), "",
                "Billed to the wrong address" if inv_status == "void" else "", "", None, _ts(drafted),
                _ts(paid_at or drafted))))
            if paid:
                payment_id += 1
                received = paid_at or min(now, drafted + 20 * 86400)
                payment_rows.append(_row((payment_id, invoice_id, _cents(paid), _ts(received),
                                          f"ACH {rng.randint(100000, 999999)}", None, _ts(received))))
            if inv_status == "credited":
                credited_at = min(now, drafted + rng.randint(5, 40) * 86400)
                note_year = time.gmtime(credited_at).tm_year
                note_sequence = next_number("CN", note_year)
                original_id = invoice_id
                invoice_id += 1
                invoice_rows.append(_row((
                    invoice_id, f"CN-{note_year}-{note_sequence:06d}", "credit_note", "CN", note_year, note_sequence,
                    None, cid, oid, None, original_id, "issued", place[4], _ts(credited_at), None, _cents(discount),
                    _cents(net), _cents(tax), _cents(total), "0.00", None, "0.00", "Goods returned", "", "", None,
                    _ts(credited_at), _ts(credited_at))))
        _copy(conn, "orders_order", order_rows)
        _copy(conn, "orders_orderline", line_rows)
        _copy(conn, "invoices_invoice", invoice_rows)
        _copy(conn, "invoices_payment", payment_rows)
        conn.commit()
        done = chunk_start + len(chunk_times)
        if done % (CHUNK_ORDERS * 8) == 0 or done == scale.orders:
            log(f"  orders {done:,}/{scale.orders:,}, lines {line_id:,}, invoices {invoice_id:,}, "
                f"payments {payment_id:,} ({time.monotonic() - t0:.0f}s)")
    counts.update({"orders_order": scale.orders, "orders_orderline": line_id, "invoices_invoice": invoice_id,
                   "invoices_payment": payment_id})

    # The counters the services take numbers from, so a new order or invoice continues the series.
    with conn.cursor() as cur:
        cur.executemany("INSERT INTO orders_numbersequence (series, year, last_number) VALUES (%s, %s, %s)",
                        [(series, year, last) for (series, year), last in sorted(numbers.items())])
    return counts


def _invoiceable_share(order_times: list[int], now: int) -> float:
    """Expected share of orders in an invoiceable status, from the status-by-age table."""
    share = 0.0
    for ordered in order_times[:: max(1, len(order_times) // 10_000)]:
        age_days = (now - ordered) / 86400
        for limit, choices, weights in STATUS_BY_AGE:
            if age_days < limit:
                share += sum(w for c, w in zip(choices, weights) if c in INVOICEABLE) / sum(weights)
                break
    return share / len(order_times[:: max(1, len(order_times) // 10_000)])
