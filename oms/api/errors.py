"""One error body for every 4xx the API gives, so a client can branch on it without parsing prose.

    {"code": "invalid", "field": "lines[0].quantity", "detail": "lines[0].quantity: Ensure ...",
     "errors": [{"field": "lines[0].quantity", "code": "min_value", "detail": "Ensure ..."}]}

`code`, `field` and `detail` describe the first problem; `errors` lists all of them. `field` is
null when the problem is not about one field (bad JSON, a refused action, authentication).
Domain errors from the services become 400, illegal life-cycle moves 409.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator

from django.core.exceptions import ObjectDoesNotExist
from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.db import DataError, IntegrityError
from django.http import Http404, JsonResponse
from django.views import defaults
from rest_framework import exceptions, status
from rest_framework.response import Response
from rest_framework.settings import api_settings
from rest_framework.views import exception_handler as drf_exception_handler

from oms.errors import DomainError

log = logging.getLogger("oms.api")

ILLEGAL_TRANSITION = "illegal_transition"


def _flatten(detail, path: str = "") -> Iterator[tuple[str | None, str, str]]:
    """(field path, code, message) for every leaf of a DRF error detail."""
    if isinstance(detail, dict):
        for key, value in detail.items():
            if key in (api_settings.NON_FIELD_ERRORS_KEY, "detail") and not path:
                yield from _flatten(value, "")
            elif isinstance(key, int):  # a list serializer reports {index: errors}
                yield from _flatten(value, f"{path}[{key}]")
            else:
                yield from _flatten(value, f"{path}.{key}" if path else str(key))
    elif isinstance(detail, list):
        nested = any(isinstance(item, (dict, list)) for item in detail)
        for index, item in enumerate(detail):
            if nested:
                if item:  # many=True serializers report {} for the items that were fine
                    yield from _flatten(item, f"{path}[{index}]")
            else:
                yield from _flatten(item, path)
    else:
        code = getattr(detail, "code", None) or "invalid"
        yield (path or None), str(code), str(detail)


def error_body(code: str, detail: str, field: str | None = None, errors=None, **extra) -> dict:
    errors = errors if errors is not None else [{"field": field, "code": code, "detail": detail}]
    return {"code": code, "field": field, "detail": detail, "errors": errors, **extra}


def _body_for(exc: exceptions.APIException) -> dict:
    if isinstance(exc, exceptions.ValidationError):
        problems = [{"field": f, "code": c, "detail": d} for f, c, d in _flatten(exc.detail)]
        if not problems:
            problems = [{"field": None, "code": "invalid", "detail": "Invalid input."}]
        first = problems[0]
        summary = f"{first['field']}: {first['detail']}" if first["field"] else first["detail"]
        if len(problems) > 1:
            summary += f" (and {len(problems) - 1} more)"
        return error_body(first["code"], summary, first["field"], problems)
    detail = exc.detail
    if isinstance(detail, dict):  # simplejwt: {"detail": ..., "code": ..., "messages": [...]}
        code = str(detail.get("code") or exc.default_code)
        message = str(detail.get("detail") or exc.default_detail)
    else:
        code = str(getattr(detail, "code", None) or exc.default_code)
        message = str(detail)
    extra = {}
    if isinstance(exc, exceptions.Throttled) and exc.wait is not None:
        extra["retry_after"] = int(exc.wait) + (0 if float(exc.wait).is_integer() else 1)
    return error_body(code, message, None, **extra)


def exception_handler(exc, context):
    """DRF's handler, plus domain errors and the database errors a client can cause, in one body."""
    if isinstance(exc, DomainError):
        status_code = status.HTTP_409_CONFLICT if exc.code == ILLEGAL_TRANSITION else status.HTTP_400_BAD_REQUEST
        return Response(error_body(exc.code, exc.message, exc.field), status=status_code)
    if isinstance(exc, (Http404, ObjectDoesNotExist)):
        exc = exceptions.NotFound()
    elif isinstance(exc, DjangoPermissionDenied):
        exc = exceptions.PermissionDenied()
    elif isinstance(exc, IntegrityError):
        # A constraint the services did not see coming: almost always a concurrent write.
        log.warning("integrity error answered with 409: %s", exc)
        return Response(error_body("conflict", "The request conflicts with the current state of the record "
                                   "(probably a concurrent change); read it again and retry."),
                        status=status.HTTP_409_CONFLICT)
    elif isinstance(exc, DataError):
        log.warning("data error answered with 400: %s", exc)
        return Response(error_body("out_of_range", "A value is out of the range the system can store."),
                        status=status.HTTP_400_BAD_REQUEST)

    response = drf_exception_handler(exc, context)
    if response is None:
        return None
    response.data = _body_for(exc)
    return response


_COMPACT = {"separators": (",", ":")}


def _is_api(request) -> bool:
    return request.path.startswith("/api/")


def not_found(request, exception=None):
    """handler404: under /api/ an unknown URL answers in the API's error format."""
    if _is_api(request):
        return JsonResponse(error_body("not_found", "No such resource."), status=404, json_dumps_params=_COMPACT)
    return defaults.page_not_found(request, exception)


def server_error(request):
    """handler500: under /api/ a crash still answers JSON (the details are in the server log)."""
    if _is_api(request):
        return JsonResponse(error_body("server_error", "Something went wrong on our side; it has been logged."),
                            status=500, json_dumps_params=_COMPACT)
    return defaults.server_error(request)
