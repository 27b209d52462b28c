"""Keyset ("cursor") pagination: page 20 000 costs what page 1 costs.

An offset makes the database walk past every earlier row; a cursor instead carries the sort
value and primary key of the last row shown, and the next page is `WHERE (field, id) < (value,
id) ORDER BY field DESC, id DESC LIMIT n` — a range scan on the (field, id) index. The row-value
comparison (not `field < v OR (field = v AND id < k)`) is what lets PostgreSQL use the index.
No COUNT(*) either: the response says whether there is a next page, not how many there are.
"""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass

from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import connections, models
from django.db.models.lookups import GreaterThan, LessThan
from rest_framework.exceptions import ValidationError
from rest_framework.pagination import BasePagination
from rest_framework.response import Response
from rest_framework.settings import api_settings
from rest_framework.utils.urls import remove_query_param, replace_query_param


class Row(models.Func):
    """A SQL row value, `(a, b)`, for comparing (sort value, primary key) pairs in one go."""

    template = "(%(expressions)s)"
    output_field = models.Field()


@dataclass(frozen=True)
class Cursor:
    ordering: str
    value: str
    pk: int
    backwards: bool


class KeysetPagination(BasePagination):
    """Pages of `page_size` rows ordered by one of the view's `ordering_fields`, then by id."""

    cursor_query_param = "cursor"
    page_size_query_param = "page_size"
    ordering_query_param = "ordering"
    max_page_size = 200

    @property
    def page_size(self) -> int:
        return api_settings.PAGE_SIZE or 50

    # -----------------------------------------------------------------------------------------
    # Query parameters
    # -----------------------------------------------------------------------------------------
    @staticmethod
    def orderings(view) -> list[str]:
        fields = getattr(view, "ordering_fields", ("id",))
        return [name for field in fields for name in (field, f"-{field}")]

    def _ordering(self, request, view) -> str:
        ordering = request.query_params.get(self.ordering_query_param) or view.default_ordering
        if ordering not in self.orderings(view):
            raise ValidationError({self.ordering_query_param: [_error(
                f"Unknown ordering {ordering!r}; use one of: {', '.join(self.orderings(view))}.", "invalid_choice")]})
        return ordering

    def _page_size(self, request) -> int:
        raw = request.query_params.get(self.page_size_query_param)
        if raw is None:
            return self.page_size
        if not raw.isdigit() or not 1 <= int(raw) <= self.max_page_size:
            raise ValidationError({self.page_size_query_param: [_error(
                f"page_size must be a whole number from 1 to {self.max_page_size}.", "invalid")]})
        return int(raw)

    def _cursor(self, request, ordering: str) -> Cursor | None:
        raw = request.query_params.get(self.cursor_query_param)
        if raw is None:
            return None
        try:
            data = json.loads(base64.urlsafe_b64decode(raw.encode("ascii") + b"=" * (-len(raw) % 4)))
            cursor = Cursor(ordering=data["o"], value=data["v"], pk=data["k"], backwards=bool(data["b"]))
            valid = (isinstance(cursor.ordering, str) and isinstance(cursor.value, str)
                     and isinstance(cursor.pk, int) and 0 < cursor.pk < 2**63)
        except (ValueError, KeyError, TypeError, UnicodeError, binascii.Error):
            valid = False
        if not valid:
            raise ValidationError({self.cursor_query_param: [_error(
                "This cursor is not one this API gave out; follow the next/previous links as they are.",
                "invalid_cursor")]})
        if cursor.ordering != ordering:
            raise ValidationError({self.cursor_query_param: [_error(
                "This cursor belongs to another ordering; keep the ordering parameter the link had.",
                "invalid_cursor")]})
        return cursor

    @staticmethod
    def _encode(cursor: Cursor) -> str:
        data = {"o": cursor.ordering, "v": cursor.value, "k": cursor.pk, "b": int(cursor.backwards)}
        return base64.urlsafe_b64encode(json.dumps(data, separators=(",", ":")).encode()).decode().rstrip("=")

    # -----------------------------------------------------------------------------------------
    # Paging
    # -----------------------------------------------------------------------------------------
    def paginate_queryset(self, queryset, request, view=None):
        ordering = self._ordering(request, view)
        size = self._page_size(request)
        cursor = self._cursor(request, ordering)
        field_name = ordering.lstrip("-")
        model_field = queryset.model._meta.get_field(field_name)
        descending = ordering.startswith("-")
        forwards = cursor is None or not cursor.backwards
        # Going back a page scans the other way from the cursor, then flips the rows.
        scan_descending = descending if forwards else not descending
        prefix = "-" if scan_descending else ""
        queryset = queryset.order_by(f"{prefix}{field_name}", f"{prefix}pk")
        if cursor is not None:
            try:
                value = model_field.to_python(cursor.value)
            except DjangoValidationError:
                value = None
            if value is None:
                raise ValidationError({self.cursor_query_param: [_error("This cursor is damaged.", "invalid_cursor")]})
            compare = LessThan if scan_descending else GreaterThan
            queryset = queryset.filter(compare(
                Row(models.F(field_name), models.F("pk")),
                Row(models.Value(value, output_field=model_field), models.Value(cursor.pk)),
            ))
        rows = self._page_rows(queryset, size + 1)
        more = len(rows) > size
        rows = rows[:size]
        if not forwards:
            rows.reverse()
        has_next, has_previous = (more, cursor is not None) if forwards else (True, more)

        self.request, self.ordering, self.field_name, self.model_field = request, ordering, field_name, model_field
        self.next_cursor = self._position(rows[-1], backwards=False) if has_next and rows else None
        self.previous_cursor = self._position(rows[0], backwards=True) if has_previous and rows else None
        return rows

    @staticmethod
    def _page_rows(queryset, limit: int) -> list:
        """The first `limit` rows of `queryset` (ordered, keyset-filtered): ids from the index first.

        On PostgreSQL the page's ids are read first, alone — an index-only scan of the
        (field, id) index with the row comparison as its index condition, stopping after
        `limit` entries — and then the rows by primary key. Asked for whole rows in one query,
        the planner prefers the single-column index on `field` plus an incremental sort, with
        the row comparison as a mere filter: it then reads, sorts and drops every row sharing
        the cursor's `field` value (20,000 orders with one `ordered_at`: 20,000 rows read for a
        page of 50, measured on the benchmark data). tests/api/test_listing.py holds the plan.
        """
        if connections[queryset.db].vendor != "postgresql" or queryset.query.distinct:
            return list(queryset[:limit])
        ids = list(queryset.prefetch_related(None).values_list("pk", flat=True)[:limit])
        if not ids:
            return []
        rows = {row.pk: row for row in queryset.order_by().filter(pk__in=ids)}
        return [rows[pk] for pk in ids if pk in rows]

    def _position(self, row, *, backwards: bool) -> Cursor:
        value = self.model_field.value_to_string(row)
        return Cursor(ordering=self.ordering, value=value, pk=row.pk, backwards=backwards)

    def _link(self, cursor: Cursor | None) -> str | None:
        if cursor is None:
            return None
        url = self.request.build_absolute_uri()
        return replace_query_param(url, self.cursor_query_param, self._encode(cursor))

    def get_paginated_response(self, data):
        return Response({"next": self._link(self.next_cursor), "previous": self._link(self.previous_cursor),
                         "results": data})

    def first_page_url(self) -> str:
        return remove_query_param(self.request.build_absolute_uri(), self.cursor_query_param)

    # -----------------------------------------------------------------------------------------
    # OpenAPI
    # -----------------------------------------------------------------------------------------
    def get_paginated_response_schema(self, schema):
        link = {"type": "string", "format": "uri", "nullable": True}
        return {
            "type": "object",
            "required": ["next", "previous", "results"],
            "properties": {
                "next": {**link, "description": "The next page, or null on the last page.",
                         "example": "https://oms.example.com/api/v1/orders/?cursor=eyJvIjoiLW9yZGVyZWRfYXQi"},
                "previous": {**link, "description": "The previous page, or null on the first page."},
                "results": schema,
            },
        }

    def get_schema_operation_parameters(self, view):
        return [
            {"name": self.cursor_query_param, "required": False, "in": "query",
             "description": "Opaque position from a `next` or `previous` link.", "schema": {"type": "string"}},
            {"name": self.page_size_query_param, "required": False, "in": "query",
             "description": f"Rows per page (default {self.page_size}).",
             "schema": {"type": "integer", "minimum": 1, "maximum": self.max_page_size}},
            {"name": self.ordering_query_param, "required": False, "in": "query",
             "description": f"Sort order; `-` for descending. Default `{view.default_ordering}`.",
             "schema": {"type": "string", "enum": self.orderings(view)}},
        ]


def _error(message: str, code: str):
    from rest_framework.exceptions import ErrorDetail

    return ErrorDetail(message, code=code)
