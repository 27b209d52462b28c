"""Money, quantity and currency: one definition of the precision every app and the migration use.

Amounts are kept to 2 decimal places and rounded half-up (the legacy contract's rule 5);
unit prices keep 4 places; quantities keep 3. Nothing here ever touches a float.
"""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal

from django.db import models

#: Digits of the modern columns. An amount has 13 integer digits (up to 9,999,999,999,999.99):
#: far above any real order, and smaller than the legacy DECIMAL(19,4), so the migration must
#: reject (not truncate) a legacy value that does not fit.
AMOUNT_DIGITS, AMOUNT_PLACES = 15, 2
PRICE_DIGITS, PRICE_PLACES = 15, 4
QUANTITY_DIGITS, QUANTITY_PLACES = 12, 3
PERCENT_DIGITS, PERCENT_PLACES = 5, 2

CENT = Decimal("0.01")
HALF_CENT = Decimal("0.005")
ZERO = Decimal("0.00")
AMOUNT_MAX = Decimal(10) ** (AMOUNT_DIGITS - AMOUNT_PLACES) - CENT
PRICE_MAX = Decimal(10) ** (PRICE_DIGITS - PRICE_PLACES) - Decimal("0.0001")
QUANTITY_MAX = Decimal(10) ** (QUANTITY_DIGITS - QUANTITY_PLACES) - Decimal("0.001")

#: ISO 4217 codes the business trades in. A legacy code outside this list is rejected.
CURRENCIES = ["USD", "CAD", "MXN", "EUR", "GBP", "CHF", "JPY", "AUD"]
DEFAULT_CURRENCY = "USD"
CURRENCY_CHOICES = [(code, code) for code in CURRENCIES]


def round_amount(value: Decimal | int | str) -> Decimal:
    """Round to cents, half-up (0.005 -> 0.01), as the legacy contract requires."""
    return Decimal(value).quantize(CENT, rounding=ROUND_HALF_UP)


def round_price(value: Decimal | int | str) -> Decimal:
    return Decimal(value).quantize(Decimal("0.0001"), rounding=ROUND_HALF_UP)


def round_quantity(value: Decimal | int | str) -> Decimal:
    return Decimal(value).quantize(Decimal("0.001"), rounding=ROUND_HALF_UP)


def line_amount(quantity: Decimal, unit_price: Decimal, discount_percent: Decimal = ZERO) -> Decimal:
    """quantity × price × (1 − discount/100), rounded once at the end so no cent is lost."""
    return round_amount(quantity * unit_price * (Decimal(100) - discount_percent) / Decimal(100))


def AmountField(verbose_name: str | None = None, **kwargs) -> models.DecimalField:  # noqa: N802
    kwargs.setdefault("default", ZERO)
    return models.DecimalField(verbose_name, max_digits=AMOUNT_DIGITS, decimal_places=AMOUNT_PLACES, **kwargs)


def PriceField(verbose_name: str | None = None, **kwargs) -> models.DecimalField:  # noqa: N802
    return models.DecimalField(verbose_name, max_digits=PRICE_DIGITS, decimal_places=PRICE_PLACES, **kwargs)


def QuantityField(verbose_name: str | None = None, **kwargs) -> models.DecimalField:  # noqa: N802
    return models.DecimalField(verbose_name, max_digits=QUANTITY_DIGITS, decimal_places=QUANTITY_PLACES, **kwargs)


def PercentField(verbose_name: str | None = None, **kwargs) -> models.DecimalField:  # noqa: N802
    kwargs.setdefault("default", ZERO)
    return models.DecimalField(verbose_name, max_digits=PERCENT_DIGITS, decimal_places=PERCENT_PLACES, **kwargs)
