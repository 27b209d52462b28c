"""Field types of the public contract: decimals travel as strings, times as ISO 8601 with a zone.

Decimals are strings both ways so that no client (or JSON library) ever turns 0.10 into a float;
a JSON number where a decimal is expected is refused rather than guessed at. Times are written
in UTC ("Z"); a time without a zone is refused rather than read in the server's zone.
"""

from __future__ import annotations

import datetime as dt
import re
from decimal import Decimal

from django.utils.dateparse import parse_datetime
from rest_framework import serializers

from oms import money

_DECIMAL = re.compile(r"^-?[0-9]+(\.[0-9]+)?$")


class DecimalString(serializers.DecimalField):
    """A decimal sent and received as a JSON string, e.g. "12.50"."""

    default_error_messages = {
        "not_a_string": 'Send this decimal as a string, e.g. "12.50", not as a JSON {type}.',
        "invalid": 'A decimal string is required, e.g. "12.50" (digits, an optional point, no exponent).',
    }
    example = "12.50"

    def __init__(self, **kwargs):
        kwargs.setdefault("coerce_to_string", True)
        super().__init__(**kwargs)
        whole = self.max_digits - self.decimal_places
        sign = "-?" if self.min_value is None or self.min_value < 0 else ""
        #: Exactly what is accepted; the OpenAPI schema publishes this pattern (oms/api/schema.py).
        self.pattern = rf"^{sign}0*[0-9]{{1,{whole}}}(\.[0-9]{{1,{self.decimal_places}}})?$"

    def to_internal_value(self, data):
        if not isinstance(data, str):
            self.fail("not_a_string", type=type(data).__name__ if data is not None else "null")
        if not _DECIMAL.match(data):
            self.fail("invalid")
        value = super().to_internal_value(data)  # the precise digits / places / range messages
        if not re.match(self.pattern, data):
            self.fail("invalid")
        return value


def AmountString(**kwargs) -> DecimalString:  # noqa: N802 - a field factory, named like a field
    """An amount in the order's currency: up to 13 digits before the point, 2 after, not negative."""
    kwargs.setdefault("min_value", Decimal("0"))
    return DecimalString(max_digits=money.AMOUNT_DIGITS, decimal_places=money.AMOUNT_PLACES, **kwargs)


def PriceString(**kwargs) -> DecimalString:  # noqa: N802
    kwargs.setdefault("min_value", Decimal("0"))
    return DecimalString(max_digits=money.PRICE_DIGITS, decimal_places=money.PRICE_PLACES, **kwargs)


def QuantityString(**kwargs) -> DecimalString:  # noqa: N802
    kwargs.setdefault("min_value", Decimal("0.001"))
    return DecimalString(max_digits=money.QUANTITY_DIGITS, decimal_places=money.QUANTITY_PLACES, **kwargs)


def PercentString(**kwargs) -> DecimalString:  # noqa: N802
    kwargs.setdefault("min_value", Decimal("0"))
    kwargs.setdefault("max_value", Decimal("100"))
    return DecimalString(max_digits=money.PERCENT_DIGITS, decimal_places=money.PERCENT_PLACES, **kwargs)


class ZonedDateTime(serializers.DateTimeField):
    """An ISO 8601 time with its zone; always written back in UTC."""

    default_error_messages = {
        "invalid": "An ISO 8601 date-time with a zone is required, e.g. 2025-03-01T14:30:00Z.",
        "naive": "Add the zone to this time (e.g. 2025-03-01T14:30:00Z or 2025-03-01T09:30:00-05:00).",
        "overflow": "This time is out of range.",
    }

    def to_internal_value(self, value):
        if not isinstance(value, str):
            self.fail("invalid")
        try:
            parsed = parse_datetime(value.strip())
        except ValueError:
            self.fail("invalid")
        if parsed is None:
            self.fail("invalid")
        if parsed.tzinfo is None or parsed.utcoffset() is None:
            self.fail("naive")
        try:
            parsed = parsed.astimezone(dt.UTC)
        except OverflowError:
            self.fail("overflow")
        if not dt.datetime(1900, 1, 1, tzinfo=dt.UTC) <= parsed < dt.datetime(9000, 1, 1, tzinfo=dt.UTC):
            self.fail("overflow")
        return parsed

    def to_representation(self, value):
        if value is None:
            return None
        return value.astimezone(dt.UTC).isoformat().replace("+00:00", "Z")
