"""What every API view shares: throttling first, strict query parameters, cached reads."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable

from django.http import HttpResponse
from rest_framework import viewsets
from rest_framework.exceptions import ErrorDetail, ValidationError
from rest_framework.renderers import JSONRenderer
from rest_framework.response import Response

from oms.cache import hot_cache

#: Record ids in URLs: at most 18 digits, so any id a client sends fits the database's bigint.
ID_REGEX = "[0-9]{1,18}"
ID_MAX = 10**18 - 1
#: Query parameters every list accepts besides its filters.
PAGING_PARAMS = frozenset({"cursor", "page_size", "ordering", "format"})


class ThrottleFirstMixin:
    """Count the request against the rate limits before checking its permissions.

    DRF checks permissions first, so an anonymous caller would get an endless stream of free
    401s; counting first gives anonymous callers a limit too.
    """

    def initial(self, request, *args, **kwargs):
        self.format_kwarg = self.get_format_suffix(**kwargs)
        request.accepted_renderer, request.accepted_media_type = self.perform_content_negotiation(request)
        request.version, request.versioning_scheme = self.determine_version(request, *args, **kwargs)
        self.perform_authentication(request)
        self.check_throttles(request)
        self.check_permissions(request)


class ApiViewSet(ThrottleFirstMixin, viewsets.GenericViewSet):
    """Base of the resource view sets.

    - Ids in URLs are 1–18 digits, so a path can never carry a number the database cannot hold.
    - A list refuses query parameters it does not know (a typo must not silently mean "all").
    - Details and first list pages are served through oms.cache (see `cache_kind`).
    """

    lookup_value_regex = ID_REGEX
    #: The oms.cache kind whose writes make this view's cached answers stale.
    cache_kind: str = ""
    #: List parameters whose answer changes with the clock (not only with writes): never cached.
    uncacheable_params: frozenset[str] = frozenset()
    #: POST actions that honour Idempotency-Key (documented in the schema).
    idempotent_actions: frozenset[str] = frozenset()
    default_ordering = "-id"
    ordering_fields: tuple[str, ...] = ("id",)

    # -----------------------------------------------------------------------------------------
    # Query parameters
    # -----------------------------------------------------------------------------------------
    def allowed_query_params(self) -> set[str]:
        allowed = set(PAGING_PARAMS)
        filterset_class = getattr(self, "filterset_class", None)
        if filterset_class is not None:
            allowed |= set(filterset_class.base_filters)
        return allowed

    def check_query_params(self, request) -> None:
        unknown = sorted(set(request.query_params) - self.allowed_query_params())
        if unknown:
            raise ValidationError({name: [ErrorDetail("Unknown query parameter.", code="unknown_parameter")]
                                   for name in unknown})

    # -----------------------------------------------------------------------------------------
    # Cached answers
    # -----------------------------------------------------------------------------------------
    def cached_answer(self, request, *, ident: int | None, key: str, build: Callable[[], object]):
        """Serve `build()`'s data through the cache; JSON clients get the stored bytes as they are."""
        refresh = "no-cache" in request.headers.get("Cache-Control", "")
        body, hit = hot_cache.fetch(kind=self.cache_kind, ident=ident, key=key,
                                    build=lambda: JSONRenderer().render(build()), refresh=refresh)
        if request.accepted_renderer.format == "json":
            response = HttpResponse(body, content_type="application/json")
        else:  # the browsable API renders data, not bytes
            response = Response(json.loads(body))
        response["X-Cache"] = "hit" if hit else "miss"
        return response

    def retrieve(self, request, *args, **kwargs):
        pk = int(kwargs[self.lookup_url_kwarg or self.lookup_field])
        # The view's name is part of the key: an invoice and an invoice status event share a kind
        # (and so their invalidation) and may share an id.
        return self.cached_answer(request, ident=pk, key=f"detail:{type(self).__name__}",
                                  build=lambda: self.get_serializer(self.get_object()).data)

    def list(self, request, *args, **kwargs):
        self.check_query_params(request)
        params = set(request.query_params)
        if "cursor" in params or params & self.uncacheable_params:
            # Deep pages are read once by a sync job; caching them would only push out hot keys.
            return Response(self._list_data())
        fingerprint = hashlib.sha256(
            f"{request.scheme}://{request.get_host()}{request.get_full_path()}".encode()).hexdigest()[:32]
        return self.cached_answer(request, ident=None, key=f"list:{fingerprint}", build=self._list_data)

    def _list_data(self):
        queryset = self.filter_queryset(self.get_queryset())
        page = self.paginate_queryset(queryset)
        return self.get_paginated_response(self.get_serializer(page, many=True).data).data
