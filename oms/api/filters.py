"""Filter types shared by the resources' filter sets: strict ids and zoned times in query strings."""

from __future__ import annotations

import datetime as dt

import django_filters
from django import forms
from django.utils.dateparse import parse_datetime
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema_field

ID_MAX = 2**63 - 1


class ZonedDateTimeFormField(forms.DateTimeField):
    """A query-string time with its zone (`2025-03-01T00:00:00Z`); a naive one is refused."""

    default_error_messages = {
        "invalid": "Use an ISO 8601 date-time with a zone, e.g. 2025-03-01T00:00:00Z.",
        "naive": "Add the zone to this time, e.g. 2025-03-01T00:00:00Z.",
    }

    def to_python(self, value):
        if value in self.empty_values:
            return None
        try:
            parsed = parse_datetime(str(value).strip())
        except ValueError:
            parsed = None
        if parsed is None:
            raise forms.ValidationError(self.error_messages["invalid"], code="invalid")
        if parsed.tzinfo is None or parsed.utcoffset() is None:
            raise forms.ValidationError(self.error_messages["naive"], code="naive")
        try:
            return parsed.astimezone(dt.UTC)
        except OverflowError:
            raise forms.ValidationError(self.error_messages["invalid"], code="invalid") from None


class ZonedDateTimeFilter(django_filters.IsoDateTimeFilter):
    field_class = ZonedDateTimeFormField


@extend_schema_field(OpenApiTypes.INT64)
class IdFilter(django_filters.NumberFilter):
    """A record id: a whole number the database can hold, or a 400."""

    field_class = forms.IntegerField

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("min_value", 1)
        kwargs.setdefault("max_value", ID_MAX)
        super().__init__(*args, **kwargs)


@extend_schema_field(OpenApiTypes.BOOL)
class StrictBooleanFilter(django_filters.BooleanFilter):
    """`true` or `false`; anything else is a 400 rather than silently no filter."""

    field_class = forms.TypedChoiceField

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("choices", [("true", "true"), ("false", "false")])
        kwargs.setdefault("coerce", lambda value: value == "true")
        kwargs.setdefault("empty_value", None)
        super().__init__(*args, **kwargs)
