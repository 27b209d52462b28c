"""What every API view shares: throttling first, strict query parameters, cached reads."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable

from django.core.cache import caches
from django.http import HttpResponse
from rest_framework import viewsets
from rest_framework.exceptions import ErrorDetail, ValidationError
from rest_framework.renderers import JSONRenderer
from rest_framework.response import Response

from oms.api.auth import JWTAuthentication, principal_spec
from oms.api.permissions import RolePermissions
from oms.cache import REDIS_ALIAS, hot_cache

#: Record ids in URLs: at most 18 digits, so any id a client sends fits the database's bigint.
ID_REGEX = "[0-9]{1,18}"
ID_MAX = 10**18 - 1
#: Query parameters every list accepts besides its filters.
PAGING_PARAMS = frozenset({"cursor", "page_size", "ordering", "format"})
#: Accept headers the fast path answers (anything else, e.g. a browser's, goes through DRF).
JSON_ACCEPTS = frozenset({"", "*/*", "application/json"})


def _refresh(request) -> bool:
    """Cache-Control: no-cache — the client wants an answer read from the database now."""
    # META, not request.headers: building the headers mapping costs more than the whole check.
    return "no-cache" in request.META.get("HTTP_CACHE_CONTROL", "")


class ThrottleFirstMixin:
    """Count the request against the rate limits before checking its permissions.

    DRF checks permissions first, so an anonymous caller would get an endless stream of free
    401s; counting first gives anonymous callers a limit too.
    """

    def initial(self, request, *args, **kwargs):
        self.format_kwarg = self.get_format_suffix(**kwargs)
        request.accepted_renderer, request.accepted_media_type = self.perform_content_negotiation(request)
        request.version, request.versioning_scheme = self.determine_version(request, *args, **kwargs)
        # The fast path may have prefetched already; counting the request twice would be wrong.
        prefetched = getattr(request._request, "oms_prefetch", _NOT_YET)
        request.oms_prefetch = self.prefetch(request) if prefetched is _NOT_YET else prefetched
        self.perform_authentication(request)
        self.check_throttles(request)
        self.check_permissions(request)

    def prefetch(self, request):
        """One Redis round trip for what this request will read: the caller's principal, their rate
        counter and, when the answer may come from the cache, the answer itself.

        Nothing is decided here: authentication, the rate limit, the permission check and the
        view still run in order, reading these results instead of asking Redis again.
        """
        user_id = JWTAuthentication.peek_user_id(request)
        return None if user_id is None else self._prefetch_for(user_id, request, self.cached_answer_spec(request))

    def _prefetch_for(self, user_id: int, request, answer: tuple[str, int | None, str] | None):
        """The round trip for this user's request; `answer` is its cached_answer_spec (or None)."""
        values = [principal_spec(user_id)]
        if answer is not None:
            values.append(answer)
        counters = [c for c in (t.counter_for_user(user_id) for t in self._throttles()
                                if hasattr(t, "counter_for_user")) if c is not None]
        return hot_cache.prefetch(values=values, counters=counters)

    def _throttles(self):
        if getattr(self, "_throttle_instances", None) is None:
            self._throttle_instances = self.get_throttles()
        return self._throttle_instances

    def cached_answer_spec(self, request) -> tuple[str, int | None, str] | None:
        """The (kind, ident, key) the view will read from the cache for this request, if any."""
        return None


_NOT_YET = object()
#: Request attributes between oms.api.middleware and ApiViewSet.dispatch: "answer from the cache
#: or decline" (set by the middleware), and "the fast path was tried already" (set on declining).
FAST_ONLY = "oms_fast_only"
FAST_TRIED = "oms_fast_tried"


#: get_required_permissions() reads only its arguments: one instance serves every request.
_ROLE_PERMISSIONS = RolePermissions()
#: The Allow header per (view set, action map): the routes are fixed, so this stays small.
_ALLOW_HEADERS: dict[tuple, str] = {}


class Declined(HttpResponse):
    """What a view set returns to oms.api.middleware when its fast path cannot answer. Never sent."""

    status_code = 204


class ApiViewSet(ThrottleFirstMixin, viewsets.GenericViewSet):
    """Base of the resource view sets.

    - Ids in URLs are 1–18 digits, so a path can never carry a number the database cannot hold.
    - A list refuses query parameters it does not know (a typo must not silently mean "all").
    - Details and first list pages are served through oms.cache (see `cache_kind`), and a
      cached answer to a JWT client can be served by the fast path (see `dispatch`).
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
    # The fast path
    # -----------------------------------------------------------------------------------------
    def dispatch(self, request, *args, **kwargs):
        if getattr(request, FAST_TRIED, False):  # oms.api.middleware tried already and declined
            return super().dispatch(request, *args, **kwargs)
        response = self._fast_cached_answer(request, kwargs)
        if response is not None:
            return response
        if getattr(request, FAST_ONLY, False):
            setattr(request, FAST_TRIED, True)
            return Declined()
        return super().dispatch(request, *args, **kwargs)

    def _fast_cached_answer(self, request, kwargs) -> HttpResponse | None:
        """Serve a cached JSON answer to a JWT client after the same checks DRF would make.

        The checks are the same as on the ordinary path, and taken from the same places: a valid
        access token (oms.api.auth), an active user with the view permission RolePermissions
        requires for GET, a rate counter within the limit. One Redis round trip reads the user,
        counts the request and fetches the answer. Anything else — no token, an unusual Accept,
        a format suffix, no-cache, a miss, a refusal — returns None and DRF handles the request
        in full (reusing the round trip, so the request is counted once).
        """
        self.action = self.action_map.get(request.method.lower())  # as DRF's initialize_request sets it
        if (request.method != "GET" or self.action not in ("retrieve", "list") or "format" in kwargs
                or request.META.get("HTTP_ACCEPT", "") not in JSON_ACCEPTS
                or (request.META.get("QUERY_STRING") and "format" in request.GET)):
            return None
        self.kwargs = kwargs
        spec = self.cached_answer_spec(request)
        if spec is None:
            return None
        user_id = JWTAuthentication.peek_user_id(request)
        if user_id is None:
            return None
        self.request = request  # get_throttles() and friends read it
        prefetched = request.oms_prefetch = self._prefetch_for(user_id, request, spec)
        if prefetched is None:
            return None
        principal = _principal(prefetched.values.get(principal_spec(user_id)))
        answer = prefetched.values.get(spec)
        if not principal or not principal["is_active"] or answer is None or answer[2] is None:
            return None
        if not principal["is_superuser"]:
            model = (self.queryset if self.queryset is not None else self.get_queryset()).model
            needed = _ROLE_PERMISSIONS.get_required_permissions("GET", model)
            if not set(needed) <= principal["permission_set"]:
                return None
        for throttle in self._throttles():
            counter = throttle.counter_for_user(user_id) if hasattr(throttle, "counter_for_user") else None
            if counter is not None and prefetched.counters[counter[0]][0] > throttle.limit:
                return None
        body = _decoded(answer)
        response = HttpResponse(body, content_type="application/json")
        response["X-Cache"] = "hit"
        response["Vary"] = "Accept"
        response["Allow"] = self._allow_header()
        # What CommonMiddleware would add; oms.api.middleware may answer before it runs.
        response["Content-Length"] = str(len(body))
        return response

    def _allow_header(self) -> str:
        """What DRF puts in Allow, once per view set and action map (it probes every HTTP method)."""
        key = (type(self), tuple(sorted(self.action_map.items())))
        allow = _ALLOW_HEADERS.get(key)
        if allow is None:
            allow = _ALLOW_HEADERS[key] = ", ".join(self.allowed_methods)
        return allow

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
    def answer_key(self, request) -> tuple[int | None, str] | None:
        """(ident, key) of this request's answer in the cache, or None if it is not cached."""
        if request.method != "GET":
            return None
        if self.action == "retrieve":
            # The view's name is part of the key: an invoice and an invoice status event share a
            # kind (and so their invalidation) and may share an id.
            return int(self.kwargs[self.lookup_url_kwarg or self.lookup_field]), f"detail:{type(self).__name__}"
        if self.action == "list":
            params = set(request.GET)
            if "cursor" in params or params & self.uncacheable_params:
                # Deep pages are read once by a sync job; caching them would only push out hot keys.
                return None
            fingerprint = hashlib.sha256(
                f"{request.scheme}://{request.get_host()}{request.get_full_path()}".encode()).hexdigest()[:32]
            return None, f"list:{fingerprint}"
        return None

    def cached_answer_spec(self, request):
        found = None if _refresh(request) else self.answer_key(request)
        return None if found is None else (self.cache_kind, *found)

    def cached_answer(self, request, *, ident: int | None, key: str, build: Callable[[], object]):
        """Serve `build()`'s data through the cache; JSON clients get the stored bytes as they are."""
        body, hit = hot_cache.fetch(kind=self.cache_kind, ident=ident, key=key,
                                    build=lambda: JSONRenderer().render(build()), refresh=_refresh(request),
                                    prefetched=getattr(request, "oms_prefetch", None))
        if request.accepted_renderer.format == "json":
            response = HttpResponse(body, content_type="application/json")
        else:  # the browsable API renders data, not bytes
            response = Response(json.loads(body))
        response["X-Cache"] = "hit" if hit else "miss"
        return response

    def retrieve(self, request, *args, **kwargs):
        ident, key = self.answer_key(request)
        return self.cached_answer(request, ident=ident, key=key,
                                  build=lambda: self.get_serializer(self.get_object()).data)

    def list(self, request, *args, **kwargs):
        self.check_query_params(request)
        found = self.answer_key(request)
        if found is None:
            return Response(self._list_data())
        ident, key = found
        return self.cached_answer(request, ident=ident, key=key, build=self._list_data)

    def filter_queryset(self, queryset):
        # Filters are a list's business; on a detail DRF would still build the whole filter form.
        return super().filter_queryset(queryset) if self.action == "list" else queryset

    def _list_data(self):
        queryset = self.filter_queryset(self.get_queryset())
        page = self.paginate_queryset(queryset)
        return self.get_paginated_response(self.get_serializer(page, many=True).data).data


_PRINCIPALS: dict[bytes, dict] = {}


def _principal(found) -> dict | None:
    """The prefetched principal, decoded once per process per distinct stored value.

    Keyed by the stored bytes themselves, so a changed principal (new permissions, deactivated)
    is a different key: this memo can never answer with an old principal.
    """
    if found is None or found[2] is None:
        return None
    raw = found[2]
    principal = _PRINCIPALS.get(raw)
    if principal is None:
        principal = _decoded(found)
        if principal:
            principal = {**principal, "permission_set": frozenset(principal["permissions"])}
        if len(_PRINCIPALS) > 10_000:
            _PRINCIPALS.clear()
        _PRINCIPALS[raw] = principal
    return principal


def _decoded(found):
    """The value of a prefetched (namespace, token, raw) triple, or None."""
    if found is None or found[2] is None:
        return None
    return caches[REDIS_ALIAS].client.decode(found[2])
