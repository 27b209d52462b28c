"""The legacy contract, rule by rule (../shared/legacy/LEGACY_SCHEMA.md, "How each value is carried over")."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest

from legacy_migration import mapping
from legacy_migration.mapping import ParentState, Rule, map_customer, map_invoice, map_order

NY = ZoneInfo("America/New_York")
UTC = dt.UTC


def customer_row(**overrides):
    row = {
        "CUST_ID": 1234, "CUST_CODE": "C0001234  ", "CUST_NAME": "  Acme Café  ", "EMAIL": " Billing@ACME.example ",
        "PHONE": "555-0100", "ADDR_LINE1": "1 Main St", "ADDR_LINE2": "", "CITY": "Albany", "STATE_CD": "NY",
        "POSTAL_CD": "12207", "COUNTRY_CD": "  ", "CUST_STATUS": "A", "CREDIT_LIMIT": Decimal("15000.0050"),
        "CREATED_DT": dt.datetime(2015, 6, 1, 9, 30), "LAST_UPD_DT": None,
    }
    row.update(overrides)
    return row


def order_row(**overrides):
    row = {
        "ORD_NO": 5001, "CUST_ID": 1234, "ORD_DT": dt.datetime(2024, 1, 15, 10, 0), "REQ_SHIP_DT": dt.datetime(1900, 1, 1),
        "ORD_STATUS": "A", "CURR_CD": "   ", "SUBTOTAL_AMT": Decimal("30.0000"), "DISC_AMT": Decimal("0.0000"),
        "TAX_AMT": Decimal("2.4000"), "FREIGHT_AMT": Decimal("5.0000"), "TOTAL_AMT": Decimal("37.4000"),
        "SHIP_NAME": "Acme", "SHIP_ADDR1": "1 Main St", "SHIP_ADDR2": None, "SHIP_CITY": "Albany", "SHIP_STATE": "NY",
        "SHIP_POSTAL": "12207", "SHIP_COUNTRY": "", "PO_NUMBER": "PO-77 ", "NOTES": "", "DEL_FLG": "N",
        "CREATED_BY": "jsmith", "LAST_UPD_DT": dt.datetime(2024, 1, 16, 8, 0),
    }
    row.update(overrides)
    return row


def line_row(line_no=1, **overrides):
    row = {"ORD_NO": 5001, "LINE_NO": line_no, "ITEM_SKU": "WIDGET-1            ", "ITEM_DESC": "Widget",
           "QTY_ORD": Decimal("2.000"), "UNIT_PRICE": Decimal("10.0000"), "DISC_PCT": Decimal("0.00"),
           "LINE_TOTAL": Decimal("20.0000")}
    row.update(overrides)
    return row


def invoice_row(**overrides):
    row = {"INV_NO": "INV-0004567", "ORD_NO": 5001, "CUST_ID": 1234, "INV_DT": dt.datetime(2024, 1, 20, 12, 0),
           "DUE_DT": dt.datetime(2024, 2, 19), "INV_STATUS": "O", "CURR_CD": "USD", "NET_AMT": Decimal("35.0000"),
           "TAX_AMT": Decimal("2.4000"), "INV_AMT": Decimal("37.4000"), "PAID_AMT": Decimal("10.0000"),
           "PAID_DT": None}
    row.update(overrides)
    return row


def invoice_line_row(line_no=1, **overrides):
    row = {"INV_NO": "INV-0004567", "LINE_NO": line_no, "DESCR": "Widget", "QTY": Decimal("2.000"),
           "UNIT_PRICE": Decimal("17.5000"), "LINE_AMT": Decimal("35.0000")}
    row.update(overrides)
    return row


def two_lines():
    return [line_row(1), line_row(2, ITEM_SKU="GADGET-2", QTY_ORD=Decimal("1.000"), LINE_TOTAL=Decimal("10.0000"))]


# -- rule 1: legacy keys ---------------------------------------------------------------------------
def test_every_record_keeps_its_legacy_key():
    assert map_customer(customer_row(), tz=NY).values["legacy_id"] == 1234
    order = map_order(order_row(), two_lines(), customer=ParentState.MIGRATED, tz=NY)
    assert order.values["legacy_id"] == 5001 and order.values["number"] == "5001"
    assert [line["line_number"] for line in order.lines] == [1, 2]
    invoice = map_invoice(invoice_row(), [invoice_line_row()], customer=ParentState.MIGRATED,
                          order=ParentState.MIGRATED, tz=NY)
    assert invoice.values["legacy_id"] == "INV-0004567"


# -- rule 2: codes and text ------------------------------------------------------------------------
def test_strips_char_padding_and_surrounding_spaces():
    values = map_customer(customer_row(), tz=NY).values
    assert values["code"] == "C0001234"
    assert values["name"] == "Acme Café"


def test_treats_empty_string_and_null_the_same():
    assert mapping.text("") is None and mapping.text("   ") is None and mapping.text(None) is None
    values = map_customer(customer_row(ADDR_LINE2="", PHONE=None), tz=NY).values
    assert values["address_line2"] == "" and values["phone"] == ""


def test_blank_currency_means_usd_and_blank_country_means_us():
    order = map_order(order_row(CURR_CD="   ", SHIP_COUNTRY=None), two_lines(), customer=ParentState.MIGRATED, tz=NY)
    assert order.values["currency"] == "USD" and order.values["ship_country"] == "US"
    assert map_customer(customer_row(COUNTRY_CD="  "), tz=NY).values["country"] == "US"


@pytest.mark.parametrize("raw, expected", [
    (b"Caf\xe9 \x93quoted\x94 \x80 \x99", "Café “quoted” € ™"),  # cp1252 bytes from the driver
    ("Caf\xe9 \x93quoted\x94 \x80", "Café “quoted” €"),  # cp1252 bytes that a driver decoded as Latin-1
    ("Zoë’s “Ünïcode” Straße", "Zoë’s “Ünïcode” Straße"),  # already correct Unicode stays as it is
])
def test_cp1252_text_arrives_as_correct_unicode(raw, expected):
    assert mapping.text(raw) == expected


# -- rule 3: email -----------------------------------------------------------------------------------
def test_email_is_trimmed_and_lower_cased_and_blank_is_none():
    assert map_customer(customer_row(), tz=NY).values["email"] == "billing@acme.example"
    assert map_customer(customer_row(EMAIL="  "), tz=NY).values["email"] is None


def test_duplicate_email_is_a_warning_naming_the_other_customers():
    warning = mapping.duplicate_email_warning("7", "shared@example.com", ["3", "4"])
    assert warning.rule is Rule.DUPLICATE_EMAIL and "3, 4" in warning.message


# -- rule 4: timestamps --------------------------------------------------------------------------------
def test_local_time_becomes_aware_utc():
    assert mapping.timestamp(dt.datetime(2024, 1, 15, 10, 0), NY) == dt.datetime(2024, 1, 15, 15, 0, tzinfo=UTC)
    assert mapping.timestamp(dt.datetime(2024, 7, 15, 10, 0), NY) == dt.datetime(2024, 7, 15, 14, 0, tzinfo=UTC)


def test_autumn_repeated_hour_takes_the_first_occurrence():
    # 2023-11-05 01:30 happened twice in New York: first at EDT (UTC-4), then at EST (UTC-5).
    assert mapping.timestamp(dt.datetime(2023, 11, 5, 1, 30), NY) == dt.datetime(2023, 11, 5, 5, 30, tzinfo=UTC)


def test_spring_gap_time_moves_forward_by_the_gap():
    # 2024-03-10 02:30 never existed in New York; it becomes 03:30 EDT = 07:30 UTC.
    moved = mapping.timestamp(dt.datetime(2024, 3, 10, 2, 30), NY)
    assert moved == dt.datetime(2024, 3, 10, 7, 30, tzinfo=UTC)
    assert moved.astimezone(NY).replace(tzinfo=None) == dt.datetime(2024, 3, 10, 3, 30)


def test_sentinel_1900_01_01_becomes_none():
    assert mapping.timestamp(dt.datetime(1900, 1, 1), NY) is None
    assert mapping.timestamp("1900-01-01 00:00:00", NY) is None
    order = map_order(order_row(), two_lines(), customer=ParentState.MIGRATED, tz=NY)
    assert order.values["requested_ship_at"] is None


def test_text_timestamps_from_sqlite_and_sql_server_milliseconds_are_kept():
    assert mapping.timestamp("2024-01-15 10:00:00.003", NY) == dt.datetime(2024, 1, 15, 15, 0, 0, 3000, tzinfo=UTC)


# -- rule 5: money ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("raw, expected", [
    ("0.0050", "0.01"), ("0.0049", "0.00"), ("2.6750", "2.68"), ("-0.0050", "-0.01"), ("15000.0050", "15000.01"),
    ("9999999999999.9900", "9999999999999.99"),
])
def test_amounts_round_half_up_to_cents(raw, expected):
    assert mapping.amount(raw, "X", allow_negative=True) == Decimal(expected)


def test_unit_prices_keep_four_places_and_quantities_three():
    order = map_order(order_row(), [line_row(QTY_ORD=Decimal("1.2345"), UNIT_PRICE=Decimal("3.14159"),
                                             LINE_TOTAL=Decimal("3.8785"))],
                      customer=ParentState.MIGRATED, tz=NY)
    line = order.lines[0]
    assert line["quantity"] == Decimal("1.235") and line["unit_price"] == Decimal("3.1416")


def test_an_amount_too_large_for_the_modern_column_is_rejected_not_truncated():
    outcome = map_order(order_row(TOTAL_AMT=Decimal("99999999999999.9999")), two_lines(),
                        customer=ParentState.MIGRATED, tz=NY)
    assert outcome.rejection.rule is Rule.VALUE_OUT_OF_RANGE
    assert "99999999999999.9999" in outcome.rejection.message


def test_legacy_amounts_are_kept_even_when_they_disagree_and_the_disagreement_is_a_warning():
    outcome = map_order(order_row(SUBTOTAL_AMT=Decimal("31.0000"), TOTAL_AMT=Decimal("99.0000")), two_lines(),
                        customer=ParentState.MIGRATED, tz=NY)
    assert outcome.values["subtotal"] == Decimal("31.00") and outcome.values["total"] == Decimal("99.00")
    assert {w.rule for w in outcome.warnings} == {Rule.SUBTOTAL_MISMATCH, Rule.TOTAL_MISMATCH}


def test_a_disagreement_of_one_cent_is_not_reported():
    outcome = map_order(order_row(SUBTOTAL_AMT=Decimal("30.0100"), TOTAL_AMT=Decimal("37.4100")), two_lines(),
                        customer=ParentState.MIGRATED, tz=NY)
    assert outcome.warnings == []


def test_a_line_total_that_disagrees_with_quantity_times_price_is_a_warning():
    outcome = map_order(order_row(SUBTOTAL_AMT=Decimal("25.0000"), TOTAL_AMT=Decimal("32.4000")),
                        [line_row(1, LINE_TOTAL=Decimal("15.0000")), two_lines()[1]],
                        customer=ParentState.MIGRATED, tz=NY)
    assert [w.rule for w in outcome.warnings] == [Rule.LINE_TOTAL_MISMATCH]
    assert outcome.lines[0]["line_total"] == Decimal("15.00")


def test_floats_from_a_driver_are_a_configuration_error_not_data():
    with pytest.raises(TypeError):
        mapping.amount(1.5, "X")


# -- rule 6: soft deletes ----------------------------------------------------------------------------
def test_soft_deleted_orders_are_excluded_by_rule():
    outcome = map_order(order_row(DEL_FLG="Y"), two_lines(), customer=ParentState.MIGRATED, tz=NY)
    assert outcome.values is None and outcome.rejection is None
    assert outcome.exclusion.rule is Rule.SOFT_DELETED


def test_an_invoice_of_a_soft_deleted_order_keeps_the_legacy_order_number_only():
    outcome = map_invoice(invoice_row(), [invoice_line_row()], customer=ParentState.MIGRATED,
                          order=ParentState.EXCLUDED, tz=NY)
    assert outcome.values["order_legacy_id"] is None and outcome.values["legacy_order_number"] == 5001
    assert [w.rule for w in outcome.warnings] == [Rule.ORDER_NOT_MIGRATED]


# -- rule 7: rejections ------------------------------------------------------------------------------
def test_an_order_whose_customer_does_not_exist_is_rejected_as_orphan():
    outcome = map_order(order_row(), two_lines(), customer=ParentState.MISSING, tz=NY)
    assert outcome.rejection.rule is Rule.ORPHAN_CUSTOMER


def test_an_order_of_a_rejected_customer_is_rejected_naming_the_parent():
    outcome = map_order(order_row(), two_lines(), customer=ParentState.REJECTED, tz=NY)
    assert outcome.rejection.rule is Rule.PARENT_REJECTED and "customer 1234" in outcome.rejection.message


def test_an_invoice_of_a_rejected_order_is_rejected():
    outcome = map_invoice(invoice_row(), [], customer=ParentState.MIGRATED, order=ParentState.REJECTED, tz=NY)
    assert outcome.rejection.rule is Rule.PARENT_REJECTED and "order 5001" in outcome.rejection.message


def test_an_invoice_whose_customer_does_not_exist_is_rejected():
    outcome = map_invoice(invoice_row(), [], customer=ParentState.MISSING, order=ParentState.MIGRATED, tz=NY)
    assert outcome.rejection.rule is Rule.ORPHAN_CUSTOMER


def test_a_line_without_a_header_is_rejected_as_orphan():
    finding = mapping.orphan_line_rejection("order_line", "ORDHDR", 999, 2)
    assert finding.rule is Rule.ORPHAN_LINE and finding.legacy_key == "999/2"


@pytest.mark.parametrize("entity, row, column", [
    ("order", {"ORD_STATUS": "X"}, "ORD_STATUS"),
    ("customer", {"CUST_STATUS": "Q"}, "CUST_STATUS"),
    ("invoice", {"INV_STATUS": "Z"}, "INV_STATUS"),
])
def test_an_unknown_status_code_is_rejected(entity, row, column):
    if entity == "order":
        outcome = map_order(order_row(**row), two_lines(), customer=ParentState.MIGRATED, tz=NY)
    elif entity == "customer":
        outcome = map_customer(customer_row(**row), tz=NY)
    else:
        outcome = map_invoice(invoice_row(**row), [], customer=ParentState.MIGRATED, order=ParentState.MIGRATED, tz=NY)
    assert outcome.rejection.rule is Rule.UNKNOWN_STATUS and column in outcome.rejection.message


def test_an_unknown_currency_is_rejected():
    outcome = map_order(order_row(CURR_CD="XYZ"), two_lines(), customer=ParentState.MIGRATED, tz=NY)
    assert outcome.rejection.rule is Rule.UNKNOWN_CURRENCY


@pytest.mark.parametrize("line, rule", [
    ({"QTY_ORD": Decimal("0.000")}, Rule.BAD_QUANTITY),
    ({"QTY_ORD": Decimal("-1.000")}, Rule.BAD_QUANTITY),
    ({"UNIT_PRICE": Decimal("-0.0100")}, Rule.NEGATIVE_PRICE),
    ({"DISC_PCT": Decimal("100.01")}, Rule.BAD_DISCOUNT),
    ({"DISC_PCT": Decimal("-5.00")}, Rule.BAD_DISCOUNT),
])
def test_a_bad_line_rejects_the_whole_order(line, rule):
    outcome = map_order(order_row(), [line_row(1), line_row(2, **line)], customer=ParentState.MIGRATED, tz=NY)
    assert outcome.rejection.rule is rule and "Line 2" in outcome.rejection.message
    assert outcome.values is None and outcome.lines == []  # never half-migrated


def test_discount_of_exactly_0_and_100_percent_is_accepted():
    outcome = map_order(order_row(SUBTOTAL_AMT=Decimal("20.0000"), TOTAL_AMT=Decimal("27.4000")),
                        [line_row(1), line_row(2, DISC_PCT=Decimal("100.00"), LINE_TOTAL=Decimal("0.0000"))],
                        customer=ParentState.MIGRATED, tz=NY)
    assert outcome.mapped and outcome.warnings == []


@pytest.mark.parametrize("entity, overrides", [
    ("customer", {"CUST_NAME": "   "}),
    ("customer", {"CUST_CODE": "          "}),
    ("customer", {"CUST_STATUS": None}),
    ("order", {"ORD_DT": None}),
    ("order", {"TOTAL_AMT": None}),
    ("invoice", {"INV_DT": None}),
])
def test_a_required_value_missing_is_rejected(entity, overrides):
    if entity == "customer":
        outcome = map_customer(customer_row(**overrides), tz=NY)
    elif entity == "order":
        outcome = map_order(order_row(**overrides), two_lines(), customer=ParentState.MIGRATED, tz=NY)
    else:
        outcome = map_invoice(invoice_row(**overrides), [], customer=ParentState.MIGRATED, order=ParentState.MIGRATED,
                              tz=NY)
    assert outcome.rejection.rule is Rule.REQUIRED_VALUE_MISSING
    assert next(iter(overrides)) in outcome.rejection.message


def test_a_line_with_a_blank_sku_rejects_the_order():
    outcome = map_order(order_row(), [line_row(1, ITEM_SKU="                    ")], customer=ParentState.MIGRATED,
                        tz=NY)
    assert outcome.rejection.rule is Rule.REQUIRED_VALUE_MISSING and "ITEM_SKU" in outcome.rejection.message


# -- rule 8: manual invoices ---------------------------------------------------------------------------
def test_an_invoice_without_an_order_is_a_manual_invoice():
    outcome = map_invoice(invoice_row(ORD_NO=None), [invoice_line_row()], customer=ParentState.MIGRATED, order=None,
                          tz=NY)
    assert outcome.mapped and outcome.values["order_legacy_id"] is None
    assert outcome.values["legacy_order_number"] is None and outcome.warnings == []


def test_invoice_statuses_and_amounts_are_carried_over():
    outcome = map_invoice(invoice_row(INV_STATUS="P", PAID_AMT=Decimal("37.4000"),
                                      PAID_DT=dt.datetime(2024, 2, 1, 9, 0)),
                          [invoice_line_row()], customer=ParentState.MIGRATED, order=ParentState.MIGRATED, tz=NY)
    values = outcome.values
    assert values["status"] == "paid" and values["total"] == Decimal("37.40") and values["paid_amount"] == Decimal("37.40")
    assert values["paid_at"] == dt.datetime(2024, 2, 1, 14, 0, tzinfo=UTC)


def test_invoice_numbers_of_every_era_are_kept_as_they_are():
    for number in ("INV-0004567", "I04567", "2009/00123"):
        outcome = map_invoice(invoice_row(INV_NO=number, ORD_NO=None), [], customer=ParentState.MIGRATED, order=None,
                              tz=NY)
        assert outcome.values["number"] == number


@pytest.mark.parametrize("code, status", list(mapping.ORDER_STATUS.items()))
def test_every_order_status_code_maps(code, status):
    outcome = map_order(order_row(ORD_STATUS=code), two_lines(), customer=ParentState.MIGRATED, tz=NY)
    assert outcome.values["status"] == status


def test_an_invoice_discount_line_with_a_negative_price_is_carried_as_it_is():
    lines = [invoice_line_row(1, LINE_AMT=Decimal("40.0000"), UNIT_PRICE=Decimal("20.0000")),
             invoice_line_row(2, DESCR="Order discount", QTY=Decimal("1.000"), UNIT_PRICE=Decimal("-5.0000"),
                              LINE_AMT=Decimal("-5.0000"))]
    outcome = map_invoice(invoice_row(), lines, customer=ParentState.MIGRATED, order=ParentState.MIGRATED, tz=NY)
    assert outcome.mapped and outcome.warnings == []
    assert outcome.lines[1]["unit_price"] == Decimal("-5.0000") and outcome.lines[1]["amount"] == Decimal("-5.00")


# -- the same value whatever form it arrives in, the first time and every time after -----------------
DECIMAL_TEXTS = ["1.000", " 2.5 ", "\t7.25\n", "0.0049", "0.005", "-0.005", "12.3450", "-3.2500", "100.00", "0", "-0.00",
                 "99999999999.9999", "1E+2", "1_000"]


@pytest.mark.parametrize("rule, column", [(mapping.amount, "TOTAL_AMT"), (mapping.price, "UNIT_PRICE"),
                                          (mapping.quantity, "QTY_ORD")])
def test_a_decimal_text_maps_as_the_decimal_it_holds_every_time(rule, column):
    def outcome(value):
        try:
            result = rule(value, column)
            return "value", result, str(result)
        except mapping._Reject as reject:
            return "rejected", reject.rule, reject.message

    for text in DECIMAL_TEXTS * 3:  # three rounds: the values read the first time are remembered
        as_decimal = outcome(Decimal(text.strip().replace("_", "")))
        assert outcome(text)[:2] == as_decimal[:2], text
        if as_decimal[0] == "value":
            assert outcome(text)[2] == as_decimal[2], text  # the same places, not only the same value


@pytest.mark.parametrize("text", ["abc", "", "  ", "NaN", "1e30"])
def test_a_text_that_is_no_amount_is_rejected_or_refused_the_same_way_every_time(text):
    def outcome():
        try:
            return "value", mapping.amount(text, "TOTAL_AMT")
        except mapping._Reject as reject:
            return "rejected", reject.rule, reject.message
        except Exception as exc:  # noqa: BLE001 - the same exception, whatever it is
            return "raised", type(exc)

    first = outcome()
    assert first[0] != "value" and outcome() == first == outcome()


def _as_texts(row: dict) -> dict:
    return {k: (str(v) if isinstance(v, Decimal) else v) for k, v in row.items()}


@pytest.mark.parametrize("overrides", [
    {}, {"QTY_ORD": Decimal("0.000")}, {"UNIT_PRICE": Decimal("-1.0000")}, {"DISC_PCT": Decimal("100.01")},
    {"LINE_TOTAL": Decimal("-20.0000")}, {"ITEM_SKU": "   "}, {"LINE_TOTAL": Decimal("25.0000")},
    {"DISC_PCT": Decimal("12.50"), "LINE_TOTAL": Decimal("17.5000")}, {"QTY_ORD": Decimal("9999999999.999")},
])
def test_an_order_of_decimal_texts_maps_exactly_as_the_same_order_of_decimals(overrides):
    def essence(outcome):
        return (outcome.values, outcome.lines, outcome.rejection, [w.message for w in outcome.warnings])

    lines = [line_row(1), line_row(2, **overrides)]
    as_decimals = essence(map_order(order_row(), lines, customer=ParentState.MIGRATED, tz=NY))
    for _ in range(2):
        texts = essence(map_order(_as_texts(order_row()), [_as_texts(line) for line in lines],
                                  customer=ParentState.MIGRATED, tz=NY))
        assert texts == as_decimals


@pytest.mark.parametrize("overrides", [{}, {"QTY": Decimal("-1.000")}, {"LINE_AMT": Decimal("-5.0000")},
                                       {"UNIT_PRICE": Decimal("-17.5000")}, {"QTY": "x"}])
def test_an_invoice_of_decimal_texts_maps_exactly_as_the_same_invoice_of_decimals(overrides):
    def essence(outcome):
        return (outcome.values, outcome.lines, outcome.rejection, [w.message for w in outcome.warnings])

    lines = [invoice_line_row(1), invoice_line_row(2, **overrides)]
    kwargs = {"customer": ParentState.MIGRATED, "order": ParentState.MIGRATED, "tz": NY}
    as_decimals = essence(map_invoice(invoice_row(), lines, **kwargs))
    for _ in range(2):
        assert essence(map_invoice(_as_texts(invoice_row()), [_as_texts(line) for line in lines], **kwargs)) \
            == as_decimals


@pytest.mark.parametrize("zone", ["America/New_York", "Australia/Lord_Howe", "Europe/Dublin", "UTC"])
def test_every_minute_around_each_clock_change_becomes_the_utc_instant_zoneinfo_gives(zone):
    tz = ZoneInfo(zone)
    starts = [dt.datetime(2024, month, day) for month in (3, 4, 10, 11) for day in range(1, 32, 3)
              if not (month in (4, 11) and day == 31)]
    for start in starts:
        for minutes in range(0, 24 * 60, 7):
            local = start + dt.timedelta(minutes=minutes, seconds=13, microseconds=250)
            for value in (local, local.replace(fold=1)):
                expected = local.replace(tzinfo=tz, fold=0).astimezone(dt.UTC)
                got = mapping.timestamp(value, tz)
                assert got == expected and got.tzinfo is dt.UTC and got.utcoffset() == dt.timedelta(0), value


def test_ascii_text_is_trimmed_and_text_with_cp1252_bytes_is_still_re_decoded():
    assert mapping.text("  plain  ") == "plain" and mapping.text("   ") is None
    assert mapping.text(" \x93quoted\x94 ") == "\u201cquoted\u201d"
    assert mapping._blank("  ") == "" and mapping._blank(" \x80 ") == "\u20ac" and mapping._blank(None) == ""
