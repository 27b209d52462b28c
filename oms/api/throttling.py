"""Rate limits per user and per anonymous address, answered with 429 and Retry-After.

Windows that start at a caller's first request, counted with one atomic INCR in Redis (through
oms.cache, so a dead Redis means per-process counting, not no limit and not an error). DRF's own
throttles keep a list of timestamps per caller and rewrite it on every request: a race between
workers, and ~1 000 pickled floats per request at the rates integrators need.
"""

from __future__ import annotations

from functools import lru_cache

from rest_framework.settings import api_settings
from rest_framework.throttling import BaseThrottle

from oms.cache import hot_cache

_PERIODS = {"s": 1, "sec": 1, "second": 1, "m": 60, "min": 60, "minute": 60, "h": 3600, "hour": 3600,
            "d": 86400, "day": 86400}


@lru_cache(maxsize=64)  # every request builds its throttles; the configured rates are few
def parse_rate(rate: str) -> tuple[int, int]:
    """'1200/min' → (1200, 60). A malformed rate is a configuration error and fails loudly."""
    count, _, period = rate.partition("/")
    if not count.isdigit() or period not in _PERIODS:
        raise ValueError(f"throttle rate must look like '100/min', got {rate!r}")
    return int(count), _PERIODS[period]


class WindowThrottle(BaseThrottle):
    scope = ""

    def __init__(self) -> None:
        self.limit, self.window = parse_rate(api_settings.DEFAULT_THROTTLE_RATES[self.scope])
        self._wait = 0.0

    def ident(self, request) -> str | None:
        """Who is counted, or None when this throttle does not apply to the request."""
        raise NotImplementedError

    def counter(self, ident: str) -> tuple[str, int]:
        """The cache counter (key, window) this throttle counts `ident` on."""
        return f"throttle:{self.scope}:{ident}", self.window

    def counter_for_user(self, user_id: int) -> tuple[str, int] | None:
        """The counter a request by this user will hit, for oms.api.views to prefetch; None if none."""
        return None

    def allow_request(self, request, view) -> bool:
        ident = self.ident(request)
        if ident is None:
            return True
        key, window = self.counter(ident)
        hits, self._wait = hot_cache.count(key, window, prefetched=getattr(request, "oms_prefetch", None))
        return hits <= self.limit

    def wait(self) -> float:
        return max(self._wait, 1.0)


class UserThrottle(WindowThrottle):
    """Authenticated callers, by user."""

    scope = "user"

    def ident(self, request):
        user = request.user
        return str(user.pk) if user and user.is_authenticated else None

    def counter_for_user(self, user_id: int) -> tuple[str, int] | None:
        return self.counter(str(user_id))


class AnonThrottle(WindowThrottle):
    """Callers without credentials, by address (X-Forwarded-For honoured as NUM_PROXIES says)."""

    scope = "anon"

    def ident(self, request):
        user = request.user
        return None if user and user.is_authenticated else self.get_ident(request)


class TokenThrottle(WindowThrottle):
    """The token endpoints, by address: a brake on password guessing."""

    scope = "token"

    def ident(self, request):
        return self.get_ident(request)
