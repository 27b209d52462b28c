"""Money, prices and quantities: Decimal everywhere, amounts rounded half-up to the cent once."""

from decimal import Decimal

import pytest

from oms.money import (
    AMOUNT_MAX,
    CENT,
    PRICE_MAX,
    QUANTITY_MAX,
    AmountField,
    PercentField,
    PriceField,
    QuantityField,
    line_amount,
    round_amount,
    round_price,
    round_quantity,
)

D = Decimal


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("0.005", "0.01"),
        ("0.004", "0.00"),
        ("1.005", "1.01"),  # 1.005 as a float is 1.00499…, which would round down
        ("2.675", "2.68"),  # likewise 2.67499… as a float
        ("10.125", "10.13"),  # half-up, not banker's rounding (which gives 10.12)
        ("10.135", "10.14"),
        ("-0.005", "-0.01"),  # half away from zero: a refund rounds like the charge it reverses
        ("19.9949", "19.99"),
        ("7", "7.00"),
    ],
)
def test_rounds_amounts_half_up_to_the_cent(value, expected):
    rounded = round_amount(D(value))
    assert rounded == D(expected)
    assert rounded.as_tuple().exponent == -2


def test_rounds_unit_prices_to_four_places_and_quantities_to_three():
    assert round_price(D("1.23455")) == D("1.2346")
    assert round_price(D("3")).as_tuple().exponent == -4
    assert round_quantity(D("0.0005")) == D("0.001")
    assert round_quantity(D("2.1234")) == D("2.123")


@pytest.mark.parametrize(
    ("quantity", "price", "discount", "expected"),
    [
        ("2", "10.0000", "0", "20.00"),
        ("3", "0.3350", "0", "1.01"),  # 1.005 → 1.01
        ("1.250", "3.9900", "0", "4.99"),  # 4.9875 → 4.99
        ("0.125", "0.0400", "0", "0.01"),  # 0.005 → 0.01
        ("0.333", "9.9999", "10", "3.00"),  # 2.99697… → 3.00
        ("1", "100.0000", "100", "0.00"),  # free of charge
        ("7", "1.4285", "12.5", "8.75"),  # 8.749562… → 8.75
    ],
)
def test_line_amount_is_quantity_times_price_less_discount_rounded_half_up(quantity, price, discount, expected):
    assert line_amount(D(quantity), D(price), D(discount)) == D(expected)


def test_line_amount_rounds_once_at_the_end_so_no_cent_is_lost():
    # 10.005 × 50 % = 5.0025 → 5.00; rounding the gross first (10.01) would give 5.005 → 5.01.
    assert line_amount(D("1"), D("10.0050"), D("50")) == D("5.00")


def test_line_amount_never_turns_into_a_float():
    assert isinstance(line_amount(D("1.5"), D("2.2222"), D("3.33")), Decimal)


def test_fields_carry_the_documented_precision():
    amount, price, quantity, percent = AmountField(), PriceField(), QuantityField(), PercentField()
    assert (amount.max_digits, amount.decimal_places) == (15, 2)
    assert (price.max_digits, price.decimal_places) == (15, 4)
    assert (quantity.max_digits, quantity.decimal_places) == (12, 3)
    assert (percent.max_digits, percent.decimal_places) == (5, 2)
    assert amount.default == D("0.00")
    assert percent.default == D("0.00")


def test_largest_storable_values_fit_their_columns():
    assert AMOUNT_MAX == D("9999999999999.99")
    assert PRICE_MAX == D("99999999999.9999")
    assert QUANTITY_MAX == D("999999999.999")
    assert AMOUNT_MAX + CENT == D(10) ** 13
