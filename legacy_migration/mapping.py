"""What each legacy value means today: one mapping per entity, pure functions, no I/O.

This module is the single source of truth for carrying legacy data over. The migration loads
what it returns, reconciliation compares the modern store against what it returns, and the
shadow reads serve what it returns. Each rule of ../shared/legacy/LEGACY_SCHEMA.md is a function
or a branch here, named after the rule, and each has a test in tests/legacy_migration/test_mapping.py.

A mapping returns an Outcome: the modern values (plus warnings), or a rejection naming the rule
it broke, or an exclusion by rule (soft-deleted orders). It never raises for bad data; it raises
only for a configuration error (a driver handing over floats, which would lose cents).
"""

from __future__ import annotations

import datetime as dt
import enum
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import Any
from zoneinfo import ZoneInfo

from oms.money import AMOUNT_MAX, CURRENCIES, PRICE_MAX, QUANTITY_MAX

#: The legacy "no date" value.
SENTINEL = dt.datetime(1900, 1, 1, 0, 0, 0)
#: Disagreements up to this much are rounding noise; above it they are reported.
TOLERANCE = Decimal("0.01")

ORDER_STATUS = {"N": "pending", "A": "confirmed", "P": "processing", "S": "shipped", "D": "delivered",
                "C": "cancelled", "H": "on_hold"}
INVOICE_STATUS = {"D": "draft", "O": "issued", "P": "paid", "V": "void"}
CUSTOMER_STATUS = {"A": "active", "I": "inactive", "H": "on_hold"}

#: C1 control characters (U+0080..U+009F): never real text, always cp1252 bytes decoded as Latin-1.
_C1_CONTROLS = re.compile("[\x80-\x9f]")
#: Quantizers, built once: the mapping runs for millions of values.
_PLACES = {places: Decimal(places) for places in ("0.01", "0.0001", "0.001")}
_ZERO, _HUNDRED = Decimal(0), Decimal(100)
#: The naive and the UTC epoch: a local time less its offset becomes UTC by exact timedelta arithmetic.
_EPOCH, _EPOCH_UTC = dt.datetime(1970, 1, 1), dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
#: Decimal texts already read, for the columns whose values repeat (a line's quantity, price and
#: discount): text → (the text as a Decimal, rounded half-up to its places), only for texts that read
#: as a number within the column's bounds. A text always reads as the same Decimal, so a hit is exactly
#: what reading it again would give. Bounded: emptied when full.
_CACHE_LIMIT = 16_384
_QUANTITIES: dict[str, tuple[Decimal, Decimal]] = {}
_PRICES: dict[str, tuple[Decimal, Decimal]] = {}
_PERCENTS: dict[str, tuple[Decimal, Decimal]] = {}


def _number(value: str, places: str, maximum: Decimal) -> tuple[Decimal, Decimal] | None:
    """A decimal text (SQLite's) as (Decimal, rounded half-up to `places`), if it reads as a number whose
    rounded value is within ±`maximum`; else None, and the rule's own code decides (rejects, or raises)."""
    try:
        number = Decimal(value)  # Decimal() strips the same white space as str.strip()
        rounded = number.quantize(_PLACES[places], rounding=ROUND_HALF_UP)
        if abs(rounded) > maximum:  # NaN raises here (InvalidOperation), as infinities did above
            return None
    except InvalidOperation:
        return None
    return number, rounded


def _known(cache: dict, value: str, places: str, maximum: Decimal) -> tuple[Decimal, Decimal] | None:
    """_number, remembered."""
    hit = cache.get(value)
    if hit is None:
        hit = _number(value, places, maximum)
        if hit is not None:
            if len(cache) >= _CACHE_LIMIT:
                cache.clear()
            cache[value] = hit
    return hit


class Rule(str, enum.Enum):
    """Every rule a legacy record can break or trip, by the name staff see in the admin."""

    # rejections
    REQUIRED_VALUE_MISSING = "required_value_missing"
    UNKNOWN_STATUS = "unknown_status"
    UNKNOWN_CURRENCY = "unknown_currency"
    ORPHAN_CUSTOMER = "orphan_customer"
    ORPHAN_LINE = "orphan_line"
    PARENT_REJECTED = "parent_rejected"
    BAD_QUANTITY = "bad_quantity"
    NEGATIVE_PRICE = "negative_price"
    BAD_DISCOUNT = "bad_discount"
    NEGATIVE_AMOUNT = "negative_amount"
    VALUE_OUT_OF_RANGE = "value_out_of_range"
    BAD_VALUE = "bad_value"
    DUPLICATE_CODE = "duplicate_code"
    DATABASE_REFUSED = "database_refused"
    # exclusions
    SOFT_DELETED = "soft_deleted"
    # warnings
    DUPLICATE_EMAIL = "duplicate_email"
    SUBTOTAL_MISMATCH = "subtotal_mismatch"
    TOTAL_MISMATCH = "total_mismatch"
    LINE_TOTAL_MISMATCH = "line_total_mismatch"
    INVOICE_TOTAL_MISMATCH = "invoice_total_mismatch"
    INVOICE_LINES_MISMATCH = "invoice_lines_mismatch"
    OVERPAID = "overpaid"
    ORDER_NOT_MIGRATED = "order_not_migrated"
    ORDER_NOT_FOUND = "order_not_found"
    NO_LINES = "no_lines"

    def __str__(self) -> str:
        return self.value


class ParentState(enum.Enum):
    """What became of a record's parent (an order's customer, an invoice's order)."""

    MIGRATED = "migrated"
    REJECTED = "rejected"
    EXCLUDED = "excluded"
    MISSING = "missing"


@dataclass(frozen=True)
class Finding:
    """A rejection, exclusion or warning about one legacy record."""

    entity: str
    legacy_key: str
    rule: Rule
    message: str


@dataclass
class Outcome:
    """The result of mapping one legacy record (with its lines, for orders and invoices)."""

    entity: str
    legacy_key: str
    values: dict[str, Any] | None = None
    lines: list[dict[str, Any]] = field(default_factory=list)
    rejection: Finding | None = None
    exclusion: Finding | None = None
    warnings: list[Finding] = field(default_factory=list)

    @property
    def mapped(self) -> bool:
        return self.values is not None


class _Reject(Exception):
    def __init__(self, rule: Rule, message: str):
        super().__init__(message)
        self.rule, self.message = rule, message


# ---------------------------------------------------------------------------------------------
# Value rules (contract §"How each value is carried over")
# ---------------------------------------------------------------------------------------------
def text(value: Any) -> str | None:
    """Rule 2: strip padding and white space; '' and NULL are the same (None); cp1252 arrives as Unicode."""
    if value is None:
        return None
    if type(value) is str and value.isascii():  # noqa: E721 - the common case: no C1 character possible
        value = value.strip()
        return value or None
    if type(value) is not str:
        if isinstance(value, (bytes, bytearray, memoryview)):
            value = bytes(value).decode("cp1252", errors="replace")
        value = str(value)
    if _C1_CONTROLS.search(value) is not None:
        # C1 control characters never occur in real text: they are cp1252 bytes (€, ’, “ …) that a
        # driver decoded as Latin-1. Re-decode them as what they are.
        try:
            value = value.encode("latin-1").decode("cp1252")
        except (UnicodeEncodeError, UnicodeDecodeError):
            pass
    value = value.strip()
    return value or None


def email(value: Any) -> str | None:
    """Rule 3: trimmed, lower-cased, '' → None."""
    cleaned = text(value)
    return cleaned.lower() if cleaned else None


def required(value: Any, column: str) -> Any:
    """Rule 7: a value the dictionary says is NOT NULL must be there ('' counts as missing)."""
    if value is None or (isinstance(value, str) and not value.strip()):
        raise _Reject(Rule.REQUIRED_VALUE_MISSING, f"{column} is required but missing.")
    return value


def timestamp(value: Any, tz: ZoneInfo) -> dt.datetime | None:
    """Rule 4: legacy local time → aware UTC; the 1900-01-01 sentinel → None.

    In the autumn hour that occurs twice the first occurrence is taken (fold=0); a spring-gap time
    that never existed moves forward by the gap. zoneinfo does both with fold=0: a gap time is
    read with the offset in force before the change, i.e. 02:30 EST = 03:30 EDT.
    """
    if type(value) is dt.datetime and value.tzinfo is None and type(tz) is ZoneInfo:  # noqa: E721 - the common case
        if value == SENTINEL:
            return None
        # The same as below without building the aware local time: the zone's offset for the local
        # time (fold=0), taken off by timedelta arithmetic, which is exact to the microsecond.
        offset = tz.utcoffset(value.replace(fold=0) if value.fold else value)
        if offset is not None:
            try:
                return _EPOCH_UTC + ((value - _EPOCH) - offset)
            except OverflowError:
                pass
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    if isinstance(value, str):
        value = dt.datetime.fromisoformat(value.strip())
    elif isinstance(value, dt.date) and not isinstance(value, dt.datetime):
        value = dt.datetime.combine(value, dt.time())
    if value.tzinfo is not None:
        return value.astimezone(dt.UTC)
    if value == SENTINEL:
        return None
    return value.replace(tzinfo=tz, fold=0).astimezone(dt.UTC)


def _decimal(value: Any, column: str) -> Decimal:
    kind = type(value)
    if kind is Decimal:
        return value
    if kind is str:  # SQLite and some drivers hand exact decimals over as text
        try:
            return Decimal(value.strip())
        except InvalidOperation:
            raise _Reject(Rule.BAD_VALUE, f"{column} is not a number: {value!r}.") from None
    if isinstance(value, float):
        # Not bad data: a misconfigured driver (e.g. oracledb without fetch_decimals). Stop loudly.
        raise TypeError(f"{column} arrived as a float; the legacy driver must return Decimal")
    try:
        return Decimal(str(value).strip()) if not isinstance(value, Decimal) else value
    except InvalidOperation:
        raise _Reject(Rule.BAD_VALUE, f"{column} is not a number: {value!r}.") from None


def _fit(value: Decimal, places: str, maximum: Decimal, column: str) -> Decimal:
    rounded = value.quantize(_PLACES[places], rounding=ROUND_HALF_UP)
    if abs(rounded) > maximum:
        raise _Reject(Rule.VALUE_OUT_OF_RANGE,
                      f"{column} = {value} does not fit the modern column (at most {maximum}); not truncated.")
    return rounded


def amount(value: Any, column: str, *, allow_negative: bool = False) -> Decimal:
    """Rule 5: amounts rounded half-up to 2 places; never below zero in the modern store."""
    if type(value) is str:  # noqa: E721 - a decimal text (SQLite): the common case, without the column's name
        known = _number(value, "0.01", AMOUNT_MAX)
        if known is not None and (allow_negative or not known[1] < 0):
            return known[1]
    result = _fit(_decimal(required(value, column), column), "0.01", AMOUNT_MAX, column)
    if result < 0 and not allow_negative:
        raise _Reject(Rule.NEGATIVE_AMOUNT, f"{column} = {value} is negative.")
    return result


def optional_amount(value: Any, column: str) -> Decimal | None:
    return None if value is None or (isinstance(value, str) and not value.strip()) else amount(value, column)


def price(value: Any, column: str) -> Decimal:
    """Rule 5: unit prices keep 4 places."""
    if type(value) is str:  # noqa: E721
        known = _known(_PRICES, value, "0.0001", PRICE_MAX)
        if known is not None:
            return known[1]
    return _fit(_decimal(required(value, column), column), "0.0001", PRICE_MAX, column)


def quantity(value: Any, column: str) -> Decimal:
    """Rule 5: quantities keep 3 places."""
    if type(value) is str:  # noqa: E721
        known = _known(_QUANTITIES, value, "0.001", QUANTITY_MAX)
        if known is not None:
            return known[1]
    return _fit(_decimal(required(value, column), column), "0.001", QUANTITY_MAX, column)


def currency(value: Any) -> str:
    """Rule 2 + 7: blank currency is USD; a code the business does not know is rejected."""
    code = (text(value) or "USD").upper()
    if code not in CURRENCIES:
        raise _Reject(Rule.UNKNOWN_CURRENCY, f"Currency {code!r} is not one of {', '.join(CURRENCIES)}.")
    return code


def country(value: Any) -> str:
    """Rule 2: blank country is US."""
    return (text(value) or "US").upper()


def status(value: Any, table: Mapping[str, str], column: str) -> str:
    code = text(required(value, column))
    if code not in table:
        raise _Reject(Rule.UNKNOWN_STATUS, f"{column} {code!r} is not a known code ({', '.join(table)}).")
    return table[code]


def _blank(value: Any) -> str:
    """Modern optional text columns store '' for none."""
    if type(value) is str and value.isascii():  # noqa: E721 - as text() does, without the call
        return value.strip()
    return text(value) or ""


def _off_by(a: Decimal, b: Decimal) -> bool:
    return abs(a - b) > TOLERANCE


def _raw_decimal(value: Any) -> Decimal:
    return _decimal(value, "value")


# ---------------------------------------------------------------------------------------------
# Entities
# ---------------------------------------------------------------------------------------------
def _run(entity: str, key: str, build) -> Outcome:
    outcome = Outcome(entity=entity, legacy_key=key)
    try:
        build(outcome)
    except _Reject as reject:
        outcome.values, outcome.lines, outcome.warnings = None, [], []
        outcome.rejection = Finding(entity, key, reject.rule, reject.message)
    return outcome


def _warn(outcome: Outcome, rule: Rule, message: str) -> None:
    outcome.warnings.append(Finding(outcome.entity, outcome.legacy_key, rule, message))


def map_customer(row: Mapping[str, Any], *, tz: ZoneInfo) -> Outcome:
    """CUSTMAST → orders.Customer."""

    def build(outcome: Outcome) -> None:
        outcome.values = {
            "legacy_id": int(row["CUST_ID"]),
            "code": text(required(text(row["CUST_CODE"]), "CUST_CODE")),
            "name": text(required(text(row["CUST_NAME"]), "CUST_NAME")),
            "email": email(row.get("EMAIL")),
            "phone": _blank(row.get("PHONE")),
            "address_line1": _blank(row.get("ADDR_LINE1")),
            "address_line2": _blank(row.get("ADDR_LINE2")),
            "city": _blank(row.get("CITY")),
            "state": _blank(row.get("STATE_CD")).upper(),
            "postal_code": _blank(row.get("POSTAL_CD")),
            "country": country(row.get("COUNTRY_CD")),
            "status": status(row["CUST_STATUS"], CUSTOMER_STATUS, "CUST_STATUS"),
            "credit_limit": optional_amount(row.get("CREDIT_LIMIT"), "CREDIT_LIMIT"),
            "created_at": timestamp(required(row["CREATED_DT"], "CREATED_DT"), tz),
            "legacy_updated_at": timestamp(row.get("LAST_UPD_DT"), tz),
        }

    return _run("customer", str(row["CUST_ID"]), build)


def duplicate_email_warning(customer_key: str, address: str, others: Sequence[str]) -> Finding:
    """Rule 3: shared mailboxes are allowed, and reported."""
    return Finding("customer", customer_key, Rule.DUPLICATE_EMAIL,
                   f"Email {address} is shared with customer(s) {', '.join(others)}.")


def duplicate_code_rejection(customer_key: str, code: str, holder: str) -> Finding:
    """The modern customer code is unique; the legacy one is not guaranteed to be. First come keeps it."""
    return Finding("customer", customer_key, Rule.DUPLICATE_CODE,
                   f"CUST_CODE {code!r} is already used by customer {holder}; fix one of them at the source.")


def _parent_check(state: ParentState, *, child: str, parent: str, parent_key: Any) -> None:
    if state is ParentState.MISSING:
        raise _Reject(Rule.ORPHAN_CUSTOMER if parent == "customer" else Rule.ORPHAN_LINE,
                      f"{child} points at {parent} {parent_key}, which does not exist in the legacy database.")
    if state in (ParentState.REJECTED, ParentState.EXCLUDED):
        raise _Reject(Rule.PARENT_REJECTED, f"{child} belongs to {parent} {parent_key}, which was "
                                            f"{'rejected' if state is ParentState.REJECTED else 'excluded'}.")


def map_order(header: Mapping[str, Any], lines: Sequence[Mapping[str, Any]], *, customer: ParentState,
              tz: ZoneInfo) -> Outcome:
    """ORDHDR + its ORDDTL lines → orders.Order + OrderLines, all or nothing (rule 7)."""
    key = str(header["ORD_NO"])

    def build(outcome: Outcome) -> None:
        flag = text(required(header["DEL_FLG"], "DEL_FLG"))
        if flag and flag.upper() == "Y":
            outcome.exclusion = Finding("order", key, Rule.SOFT_DELETED, "Soft-deleted in legacy (DEL_FLG = 'Y').")
            return
        customer_key = header["CUST_ID"]
        if customer is not ParentState.MIGRATED:  # a migrated parent passes: no message to make
            _parent_check(customer, child=f"Order {key}", parent="customer", parent_key=customer_key)
        values = {
            "legacy_id": int(header["ORD_NO"]),
            "number": key,
            "customer_legacy_id": int(header["CUST_ID"]),
            "status": status(header["ORD_STATUS"], ORDER_STATUS, "ORD_STATUS"),
            "currency": currency(header.get("CURR_CD")),
            "ordered_at": timestamp(required(header["ORD_DT"], "ORD_DT"), tz),
            "requested_ship_at": timestamp(header.get("REQ_SHIP_DT"), tz),
            "subtotal": amount(header["SUBTOTAL_AMT"], "SUBTOTAL_AMT"),
            "discount": amount(header["DISC_AMT"], "DISC_AMT"),
            "tax": amount(header["TAX_AMT"], "TAX_AMT"),
            "freight": amount(header["FREIGHT_AMT"], "FREIGHT_AMT"),
            "total": amount(header["TOTAL_AMT"], "TOTAL_AMT"),
            "ship_name": _blank(header.get("SHIP_NAME")),
            "ship_address_line1": _blank(header.get("SHIP_ADDR1")),
            "ship_address_line2": _blank(header.get("SHIP_ADDR2")),
            "ship_city": _blank(header.get("SHIP_CITY")),
            "ship_state": _blank(header.get("SHIP_STATE")).upper(),
            "ship_postal_code": _blank(header.get("SHIP_POSTAL")),
            "ship_country": country(header.get("SHIP_COUNTRY")),
            "po_number": _blank(header.get("PO_NUMBER")),
            "notes": _blank(header.get("NOTES")),
            "legacy_created_by": _blank(header.get("CREATED_BY")),
            "legacy_updated_at": timestamp(header.get("LAST_UPD_DT"), tz),
        }
        values["created_at"] = values["ordered_at"]
        outcome.lines = [_map_order_line(outcome, line) for line in lines]
        outcome.values = values
        if not lines:
            _warn(outcome, Rule.NO_LINES, f"Order {key} has no lines in ORDDTL.")
        lines_sum = sum((line["line_total"] for line in outcome.lines), Decimal(0))
        if lines and _off_by(values["subtotal"], lines_sum):
            _warn(outcome, Rule.SUBTOTAL_MISMATCH,
                  f"SUBTOTAL_AMT {values['subtotal']} ≠ sum of line totals {lines_sum}; legacy amount kept.")
        expected = values["subtotal"] - values["discount"] + values["tax"] + values["freight"]
        if _off_by(values["total"], expected):
            _warn(outcome, Rule.TOTAL_MISMATCH,
                  f"TOTAL_AMT {values['total']} ≠ subtotal − discount + tax + freight = {expected}; legacy amount kept.")

    return _run("order", key, build)


def _map_order_line(outcome: Outcome, line: Mapping[str, Any]) -> dict[str, Any]:
    # The common case first: the line's four numbers are decimal texts that pass their checks, so
    # their values are known without the column names the rules quote; anything else goes the whole
    # way (_map_order_line_in_full), which finds the same values, or the rule the line breaks.
    number = line["LINE_NO"]  # read first, as the whole way reads it
    raw = line["QTY_ORD"], line["UNIT_PRICE"], line["DISC_PCT"], line["LINE_TOTAL"]
    if type(raw[0]) is str and type(raw[1]) is str and type(raw[2]) is str and type(raw[3]) is str:  # noqa: E721
        qty = _known(_QUANTITIES, raw[0], "0.001", QUANTITY_MAX)
        unit_price = _known(_PRICES, raw[1], "0.0001", PRICE_MAX)
        pct, total = _known(_PERCENTS, raw[2], "0.01", _HUNDRED), _number(raw[3], "0.01", AMOUNT_MAX)
        if (qty is not None and unit_price is not None and pct is not None and total is not None
                and qty[1] > 0 and not unit_price[1] < 0 and _ZERO <= pct[0] <= _HUNDRED and not total[1] < 0):
            sku = text(line["ITEM_SKU"])
            if sku is not None:
                values = {
                    "line_number": int(number),
                    "sku": sku,
                    "description": _blank(line.get("ITEM_DESC")),
                    "quantity": qty[1],
                    "unit_price": unit_price[1],
                    "discount_percent": pct[1],
                    "line_total": total[1],
                }
                _check_line_total(outcome, line, number, qty[0], unit_price[0], pct[0], total[0])
                return values
    return _map_order_line_in_full(outcome, line)


def _check_line_total(outcome: Outcome, line: Mapping[str, Any], number: Any, raw_qty: Decimal, raw_price: Decimal,
                      pct: Decimal, raw_total: Decimal) -> None:
    computed = raw_qty * raw_price * (100 - pct) / 100
    if _off_by(raw_total, computed):
        _warn(outcome, Rule.LINE_TOTAL_MISMATCH,
              f"Line {number}: LINE_TOTAL {line['LINE_TOTAL']} ≠ QTY × PRICE × (1 − DISC/100) = "
              f"{computed.quantize(Decimal('0.0001'))}; legacy amount kept.")


def _map_order_line_in_full(outcome: Outcome, line: Mapping[str, Any]) -> dict[str, Any]:
    number = line["LINE_NO"]
    where = f"Line {number}"
    # Quantity and price are read as Decimals once, where their rules first need them (the rules
    # take a Decimal as they take the raw value); the line-total check reuses them exactly.
    raw_qty = _decimal(required(line["QTY_ORD"], f"{where} QTY_ORD"), f"{where} QTY_ORD")
    qty = quantity(raw_qty, f"{where} QTY_ORD")
    if qty <= 0:
        raise _Reject(Rule.BAD_QUANTITY, f"{where}: QTY_ORD = {line['QTY_ORD']} must be more than 0; "
                                         "the whole order is rejected with it.")
    raw_price = _decimal(required(line["UNIT_PRICE"], f"{where} UNIT_PRICE"), f"{where} UNIT_PRICE")
    unit_price = price(raw_price, f"{where} UNIT_PRICE")
    if unit_price < 0:
        raise _Reject(Rule.NEGATIVE_PRICE, f"{where}: UNIT_PRICE = {line['UNIT_PRICE']} is negative; "
                                           "the whole order is rejected with it.")
    pct = _decimal(required(line["DISC_PCT"], f"{where} DISC_PCT"), f"{where} DISC_PCT")
    if not _ZERO <= pct <= _HUNDRED:
        raise _Reject(Rule.BAD_DISCOUNT, f"{where}: DISC_PCT = {line['DISC_PCT']} is outside 0..100; "
                                         "the whole order is rejected with it.")
    total = amount(line["LINE_TOTAL"], f"{where} LINE_TOTAL")  # its message quotes the value as read
    values = {
        "line_number": int(number),
        "sku": text(required(text(line["ITEM_SKU"]), f"{where} ITEM_SKU")),
        "description": _blank(line.get("ITEM_DESC")),
        "quantity": qty,
        "unit_price": unit_price,
        "discount_percent": pct.quantize(_PLACES["0.01"], rounding=ROUND_HALF_UP),
        "line_total": total,
    }
    _check_line_total(outcome, line, number, raw_qty, raw_price, pct, _raw_decimal(line["LINE_TOTAL"]))
    return values


def map_invoice(header: Mapping[str, Any], lines: Sequence[Mapping[str, Any]], *, customer: ParentState,
                order: ParentState | None, tz: ZoneInfo) -> Outcome:
    """INVHDR + its INVDTL lines → invoices.Invoice + InvoiceLines.

    `order` is None for a manual invoice (ORD_NO NULL, rule 8). An invoice of a soft-deleted order
    keeps the order's legacy number only (rule 6); an invoice of a rejected order is rejected.
    """
    key = text(header["INV_NO"]) or str(header["INV_NO"])

    def build(outcome: Outcome) -> None:
        required(text(header["INV_NO"]), "INV_NO")
        customer_key = header["CUST_ID"]
        if customer is not ParentState.MIGRATED:  # a migrated parent passes: no message to make
            _parent_check(customer, child=f"Invoice {key}", parent="customer", parent_key=customer_key)
        order_number = header.get("ORD_NO")
        order_linked = False
        if order_number is not None:
            if order is ParentState.REJECTED:
                raise _Reject(Rule.PARENT_REJECTED, f"Invoice {key} bills order {order_number}, which was rejected.")
            order_linked = order is ParentState.MIGRATED
        values = {
            "legacy_id": key,
            "number": key,
            "kind": "invoice",
            "customer_legacy_id": int(header["CUST_ID"]),
            "order_legacy_id": int(order_number) if order_linked else None,
            "legacy_order_number": int(order_number) if order_number is not None else None,
            "status": status(header["INV_STATUS"], INVOICE_STATUS, "INV_STATUS"),
            "currency": currency(header.get("CURR_CD")),
            "invoiced_at": timestamp(required(header["INV_DT"], "INV_DT"), tz),
            "due_at": timestamp(header.get("DUE_DT"), tz),
            "discount": Decimal("0.00"),
            "net": amount(header["NET_AMT"], "NET_AMT"),
            "tax": amount(header["TAX_AMT"], "TAX_AMT"),
            "total": amount(header["INV_AMT"], "INV_AMT"),
            "paid_amount": amount(header["PAID_AMT"], "PAID_AMT"),
            "paid_at": timestamp(header.get("PAID_DT"), tz),
            "credited_amount": Decimal("0.00"),
        }
        values["created_at"] = values["invoiced_at"]
        outcome.lines = [_map_invoice_line(line) for line in lines]
        outcome.values = values
        if order_number is not None and order is ParentState.EXCLUDED:
            _warn(outcome, Rule.ORDER_NOT_MIGRATED, f"Invoice {key} bills order {order_number}, which is "
                                                    "soft-deleted; only its legacy number is kept.")
        elif order_number is not None and order is ParentState.MISSING:
            _warn(outcome, Rule.ORDER_NOT_FOUND, f"Invoice {key} bills order {order_number}, which does not "
                                                 "exist in the legacy database; only its number is kept.")
        if _off_by(values["total"], values["net"] + values["tax"]):
            _warn(outcome, Rule.INVOICE_TOTAL_MISMATCH,
                  f"INV_AMT {values['total']} ≠ NET + TAX = {values['net'] + values['tax']}; legacy amount kept.")
        lines_sum = sum((line["amount"] for line in outcome.lines), Decimal(0))
        if lines and _off_by(values["net"], lines_sum):
            _warn(outcome, Rule.INVOICE_LINES_MISMATCH,
                  f"NET_AMT {values['net']} ≠ sum of line amounts {lines_sum}; legacy amount kept.")
        if values["paid_amount"] > values["total"]:
            _warn(outcome, Rule.OVERPAID, f"PAID_AMT {values['paid_amount']} exceeds INV_AMT {values['total']}.")

    return _run("invoice", key, build)


def _map_invoice_line(line: Mapping[str, Any]) -> dict[str, Any]:
    # As for order lines: decimal texts that pass their rules first, anything else the whole way.
    number = line["LINE_NO"]  # read first, as the whole way reads it
    raw_qty, raw_price, raw_amount = line["QTY"], line["UNIT_PRICE"], line["LINE_AMT"]
    if type(raw_qty) is str and type(raw_price) is str and type(raw_amount) is str:  # noqa: E721
        qty = _known(_QUANTITIES, raw_qty, "0.001", QUANTITY_MAX)
        unit_price = _known(_PRICES, raw_price, "0.0001", PRICE_MAX)
        line_amount = _number(raw_amount, "0.01", AMOUNT_MAX)
        if qty is not None and unit_price is not None and line_amount is not None and not qty[1] < 0:
            return {
                "line_number": int(number),
                "sku": "",
                "description": _blank(line.get("DESCR")),
                "quantity": qty[1],
                "unit_price": unit_price[1],
                "amount": line_amount[1],
            }
    return _map_invoice_line_in_full(line)


def _map_invoice_line_in_full(line: Mapping[str, Any]) -> dict[str, Any]:
    where = f"Line {line['LINE_NO']}"
    qty = quantity(line["QTY"], f"{where} QTY")
    if qty < 0:
        raise _Reject(Rule.BAD_QUANTITY, f"{where}: QTY = {line['QTY']} is negative; the invoice is rejected with it.")
    return {
        "line_number": int(line["LINE_NO"]),
        "sku": "",
        "description": _blank(line.get("DESCR")),
        "quantity": qty,
        # A negative price is a discount line ("Order discount"): carried as it is, like the legacy does.
        "unit_price": price(line["UNIT_PRICE"], f"{where} UNIT_PRICE"),
        "amount": amount(line["LINE_AMT"], f"{where} LINE_AMT", allow_negative=True),
    }


def orphan_line_rejection(entity: str, parent_table: str, parent_key: Any, line_no: Any) -> Finding:
    """Rule 7: a line whose header does not exist."""
    return Finding(entity, f"{parent_key}/{line_no}", Rule.ORPHAN_LINE,
                   f"Line {line_no} of {parent_table} {parent_key}: no such header in the legacy database.")
