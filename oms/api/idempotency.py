"""Idempotency-Key: a POST retried with the same key gets the first answer instead of a second record.

Follows the IETF httpapi "Idempotency-Key" draft (and Stripe's practice):
1. The key is scoped to the caller; keys are opaque strings of 1–255 printable characters.
2. The first request inserts its record *in the same transaction as the write it makes*. A
   concurrent duplicate blocks on the unique index until the first commits, then replays it;
   if the first rolled back, the duplicate simply runs. So one key never makes two records.
3. Only successful (2xx) answers are kept: a request refused with a 4xx can be corrected and
   retried under the same key.
4. Reusing a key for a different request (another path or body) is refused with 422.
Records older than API_IDEMPOTENCY_HOURS no longer count (`manage.py purge_idempotency_keys`).
"""

from __future__ import annotations

import datetime as dt
import functools
import hashlib
import json
import re

from django.conf import settings
from django.core.serializers.json import DjangoJSONEncoder
from django.db import IntegrityError, transaction
from django.utils import timezone
from drf_spectacular.utils import OpenApiParameter
from rest_framework import status
from rest_framework.exceptions import APIException, ValidationError
from rest_framework.response import Response

from oms.api.models import IdempotencyRecord

HEADER = "Idempotency-Key"
REPLAYED_HEADER = "Idempotent-Replayed"
_KEY = re.compile(r"^[\x21-\x7e]{1,255}$")

#: How the header appears in the OpenAPI schema of every POST that honours it.
PARAMETER = OpenApiParameter(
    HEADER, str, OpenApiParameter.HEADER, required=False,
    description="Any unique string (a UUID is ideal). Retrying a POST with the same key returns the first "
                "response (with `Idempotent-Replayed: true`) instead of acting twice. Keys live "
                f"{getattr(settings, 'API_IDEMPOTENCY_HOURS', 24)} hours.",
)


class KeyReused(APIException):
    status_code = status.HTTP_422_UNPROCESSABLE_ENTITY
    default_code = "idempotency_key_reused"
    default_detail = "This Idempotency-Key was used for a different request; use a new key for a new request."


class _Discard(Exception):
    """Leaves the transaction (so the key's record is not kept) carrying a non-2xx response."""

    def __init__(self, response):
        super().__init__()
        self.response = response


def _fingerprint(request) -> str:
    body = json.dumps(request.data, sort_keys=True, cls=DjangoJSONEncoder, separators=(",", ":"))
    return hashlib.sha256(f"{request.method} {request.path}\n{body}".encode()).hexdigest()


def _replay(record: IdempotencyRecord, fingerprint: str) -> Response:
    if record.fingerprint != fingerprint:
        raise KeyReused()
    headers = {REPLAYED_HEADER: "true"}
    if record.location:
        headers["Location"] = record.location
    return Response(record.response_body, status=record.status_code, headers=headers)


def idempotent(handler):
    """Decorate a POST handler of an APIView/ViewSet to honour the Idempotency-Key header."""

    @functools.wraps(handler)
    def wrapper(self, request, *args, **kwargs):
        key = request.headers.get(HEADER)
        if key is None:
            return handler(self, request, *args, **kwargs)
        if not _KEY.match(key):
            raise ValidationError({HEADER: ["The key must be 1 to 255 printable ASCII characters."]},
                                  code="invalid")
        fingerprint = _fingerprint(request)
        fresh_after = timezone.now() - dt.timedelta(hours=settings.API_IDEMPOTENCY_HOURS)
        existing = IdempotencyRecord.objects.filter(user=request.user, key=key).first()
        if existing is not None and existing.created_at >= fresh_after:
            return _replay(existing, fingerprint)
        try:
            with transaction.atomic():
                if existing is not None:  # an expired record: the key starts over
                    existing.delete()
                try:
                    with transaction.atomic():
                        record = IdempotencyRecord.objects.create(
                            user=request.user, key=key, method=request.method, path=request.path[:500],
                            fingerprint=fingerprint)
                except IntegrityError:
                    # Another request with this key committed while we waited on the index.
                    raise _Discard(_replay(IdempotencyRecord.objects.get(user=request.user, key=key),
                                           fingerprint)) from None
                response = handler(self, request, *args, **kwargs)
                if not 200 <= response.status_code < 300:
                    raise _Discard(response)
                record.status_code = response.status_code
                record.response_body = response.data
                record.location = response.headers.get("Location", "")[:500]
                record.save(update_fields=["status_code", "response_body", "location"])
                return response
        except _Discard as discarded:
            return discarded.response

    return wrapper


def purge_expired() -> int:
    """Delete the records that no longer count; returns how many."""
    cutoff = timezone.now() - dt.timedelta(hours=settings.API_IDEMPOTENCY_HOURS)
    deleted, _ = IdempotencyRecord.objects.filter(created_at__lt=cutoff).delete()
    return deleted
