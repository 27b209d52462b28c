"""The cached-read fast path, tried before the middleware a JWT read has no use for.

A GET with a bearer token to a resource view (oms.api.views.ApiViewSet) whose answer is in the
cache needs no session, no CSRF check, no session user and no messages: the view's fast path
(`ApiViewSet._fast_cached_answer`) authenticates the token, checks the user behind it (active,
the view permission of their role), counts the request against their rate limit and reads the
answer in its one Redis round trip. This middleware, placed after SecurityMiddleware,
XFrameOptionsMiddleware and WhiteNoise, lets that fast path answer before the rest of the stack
runs. It calls the view exactly as Django would (the same view function, the same arguments), so
the view's own wrappers — READ_SOURCE_* (X-Read-Source, shadow sampling) included — stay in
charge; the view is only told that it may answer from the cache or decline, nothing else.

Declined (no token, a miss, a refusal, an unusual Accept...): the request goes on through the
whole stack as if this middleware were not there, and the view reuses the round trip already
made, so the request is counted once. What the skipped middleware would have added to a fast
answer: SessionMiddleware and CsrfViewMiddleware nothing (no session is read, no CSRF cookie is
due), AuthenticationMiddleware and MessageMiddleware nothing, CommonMiddleware the
Content-Length (set by the fast path itself). Security headers come from SecurityMiddleware and
XFrameOptionsMiddleware, which sit before this one.
"""

from __future__ import annotations

import threading

from django.conf import settings
from django.urls import Resolver404, get_resolver

#: Resolved paths kept per process (ids make them many; beyond this the memo starts again).
MEMO_SIZE = 4096


class CachedReadMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response
        self._matches: dict[tuple[str, str], object] = {}
        self._lock = threading.Lock()

    def __call__(self, request):
        # CommonMiddleware refuses DISALLOWED_USER_AGENTS; with any configured, it must see every request.
        if request.method == "GET" and "HTTP_AUTHORIZATION" in request.META and not settings.DISALLOWED_USER_AGENTS:
            response = self._try(request)
            if response is not None:
                return response
        return self.get_response(request)

    def _try(self, request):
        from oms.api.views import FAST_ONLY, Declined

        match = self._match(request.path_info)
        if match is None:
            return None
        request.resolver_match = match
        setattr(request, FAST_ONLY, True)
        try:
            response = match.func(request, *match.args, **match.kwargs)
        finally:
            delattr(request, FAST_ONLY)
        if isinstance(response, Declined):
            request.resolver_match = None  # resolved again, as usual, by the rest of the stack
            return None
        return response

    def _match(self, path: str):
        """The ResolverMatch of an ApiViewSet view for `path`, or None (memoised per process)."""
        key = (settings.ROOT_URLCONF, path)
        try:
            return self._matches[key]
        except KeyError:
            pass
        from oms.api.views import ApiViewSet

        try:
            match = get_resolver().resolve(path)
        except Resolver404:
            match = None
        view_class = getattr(match.func, "cls", None) if match is not None else None
        if not (isinstance(view_class, type) and issubclass(view_class, ApiViewSet)):
            match = None
        with self._lock:
            if len(self._matches) >= MEMO_SIZE:
                self._matches.clear()
            self._matches[key] = match
        return match
