"""The cache of the hot reads (order, customer and invoice details, first pages of lists).

How it stays correct:

1. Versioned keys. A cached value is stored under a key that embeds three tokens: the namespace
   token (`bump_all` replaces it), the token of the record or of the record kind (for lists),
   and the request's own key. A write never deletes values; it replaces the token, so the old
   values simply stop being addressed. A reader reads the token *before* it reads the database,
   so a reader racing a writer can at worst store an old value under an old token, which
   nobody will read again. Tokens are random, not counters: when Redis evicts a token, the
   next reader makes a new one instead of counting again from 0 into old values.
2. Invalidation after commit. `invalidate_order(pk)` (and its siblings) registers the bump with
   `transaction.on_commit`: a rolled-back write evicts nothing, and the writer's own next read,
   right after commit, finds the new token.
3. A circuit breaker. Redis is reached with short socket timeouts and without retries. The first
   failure is logged once and opens the breaker: for CACHE_REDIS_RETRY_SECONDS every call skips
   Redis and uses a per-process local-memory layer (values kept CACHE_LOCAL_TTL seconds, so the
   staleness another process's write can cause there is bounded by that) and the database. Then
   one caller probes Redis again. Bumps that could not reach Redis are remembered and replayed
   when it answers again, before any value is read from it; a process that missed more than
   CACHE_PENDING_LIMIT of them bumps the whole namespace instead.

Without REDIS_URL (the embedded demo) the local layer is the only one, with the normal TTL.
"""

from __future__ import annotations

import logging
import secrets
import threading
import time
from collections.abc import Callable, Iterable

from django.conf import settings
from django.core.cache import caches
from django.core.cache.backends.locmem import LocMemCache
from django.db import transaction

log = logging.getLogger("oms.cache")

#: The kinds of records the API caches. A write to one bumps that record's token and the kind's.
KINDS = ("order", "invoice", "customer")
NAMESPACE_KEY = "ns"
REDIS_ALIAS = "hot"


def _errors() -> tuple[type[BaseException], ...]:
    """What 'Redis is unavailable' looks like, whichever layer raises it."""
    from redis.exceptions import RedisError

    try:
        from django_redis.exceptions import ConnectionInterrupted
    except ImportError:  # pragma: no cover - django-redis is a pinned dependency
        return (RedisError, OSError)
    return (RedisError, ConnectionInterrupted, OSError)


class CircuitBreaker:
    """Remembers that Redis failed, so that only one call per cool-down pays a timeout."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._down = False
        self._retry_at = 0.0

    @property
    def is_open(self) -> bool:
        return self._down

    def allows_call(self) -> bool:
        if not self._down:
            return True
        with self._lock:
            now = time.monotonic()
            if now < self._retry_at:
                return False
            # This caller is the probe; everybody else keeps skipping until it reports.
            self._retry_at = now + settings.CACHE_REDIS_RETRY_SECONDS
            return True

    def record_failure(self, exc: BaseException) -> bool:
        """Open (or keep open) the breaker. True when this failure is the one that opened it."""
        with self._lock:
            opened = not self._down
            self._down = True
            self._retry_at = time.monotonic() + settings.CACHE_REDIS_RETRY_SECONDS
        if opened:
            log.warning("Redis is unavailable (%s: %s); serving from local memory and the database, "
                        "retrying every %ss", exc.__class__.__name__, exc, settings.CACHE_REDIS_RETRY_SECONDS)
        return opened

    def record_success(self) -> bool:
        """Close the breaker. True when this success is the one that closed it."""
        if not self._down:
            return False
        with self._lock:
            closed, self._down = self._down, False
        if closed:
            log.warning("Redis answers again; the cache is back on Redis")
        return closed

    def reset(self) -> None:
        with self._lock:
            self._down, self._retry_at = False, 0.0


class HotCache:
    """Read-through cache with versioned keys over Redis, with a local-memory stand-in."""

    def __init__(self) -> None:
        self.breaker = CircuitBreaker()
        self.local = LocMemCache("oms-hot-local", {"OPTIONS": {"MAX_ENTRIES": 10_000, "CULL_FREQUENCY": 4}})
        self._pending: set[str] = set()
        self._pending_overflow = False
        self._pending_lock = threading.Lock()

    # -----------------------------------------------------------------------------------------
    # Layers
    # -----------------------------------------------------------------------------------------
    @staticmethod
    def redis_configured() -> bool:
        return REDIS_ALIAS in settings.CACHES

    def _redis(self):
        """The Redis cache if it is configured and the breaker lets us try it, else None."""
        if not self.redis_configured() or not self.breaker.allows_call():
            return None
        redis = caches[REDIS_ALIAS]
        if self.breaker.is_open or self._pending or self._pending_overflow:
            # Probing after an outage: replay the missed bumps before reading anything from it.
            try:
                self._replay_pending(redis)
            except _errors() as exc:
                self._failed(exc)
                return None
            self._recovered()
        return redis

    def _failed(self, exc: BaseException) -> None:
        if self.breaker.record_failure(exc):
            # Start the outage with an empty local layer: whatever it held predates writes that
            # other processes made while Redis was the shared layer.
            self.local.clear()

    def _recovered(self) -> None:
        self.breaker.record_success()

    def _local_ttl(self) -> int | float:
        return settings.CACHE_LOCAL_TTL if self.redis_configured() else settings.CACHE_TTL

    @staticmethod
    def _token_ttl() -> int:
        # Tokens outlive the values under them; one that expires anyway is simply made anew
        # (the values under the old one are then unreachable, never wrong).
        return max(settings.CACHE_TTL * 4, 3600)

    # -----------------------------------------------------------------------------------------
    # Tokens
    # -----------------------------------------------------------------------------------------
    @staticmethod
    def _new_token() -> str:
        return secrets.token_hex(6)

    def _tokens(self, layer, keys: list[str], ttl: float) -> list[str]:
        """Current tokens of `keys`, creating any that are missing (first writer wins)."""
        found = layer.get_many(keys)
        tokens = []
        for key in keys:
            token = found.get(key)
            if token is None:
                candidate = self._new_token()
                token = candidate if layer.add(key, candidate, ttl) else layer.get(key, candidate)
            tokens.append(token)
        return tokens

    @staticmethod
    def _token_key(kind: str, ident: str | int | None) -> str:
        return f"t:{kind}" if ident is None else f"t:{kind}:{ident}"

    # -----------------------------------------------------------------------------------------
    # Reads
    # -----------------------------------------------------------------------------------------
    def fetch(self, *, kind: str, ident: str | int | None, key: str, build: Callable[[], bytes],
              ttl: float | None = None, refresh: bool = False) -> tuple[bytes, bool]:
        """Return (value, was_cached) for `key`, building and storing it on a miss.

        ident is the record's primary key for a detail (its token changes on every write to it),
        or None for a list (the kind's token changes on every write to any record of the kind).
        refresh skips the cached value (Cache-Control: no-cache) but still stores the new one.
        """
        ttl = settings.CACHE_TTL if ttl is None else ttl
        built: list[bytes] = []

        def build_once() -> bytes:
            # If Redis fails after the value was built, the local layer reuses it: one build per read.
            if not built:
                try:
                    built.append(build())
                except Exception as exc:  # noqa: BLE001 - re-raised untouched below
                    raise _BuildFailed(exc) from exc
            return built[0]

        try:
            redis = self._redis()
            if redis is not None:
                try:
                    return self._fetch_from(redis, kind, ident, key, build_once, ttl, self._token_ttl(), refresh)
                except _errors() as exc:
                    self._failed(exc)
            local_ttl = min(ttl, self._local_ttl())
            return self._fetch_from(self.local, kind, ident, key, build_once, local_ttl, local_ttl, refresh)
        except _BuildFailed as failure:
            raise failure.original from None

    def _fetch_from(self, layer, kind, ident, key, build, ttl, token_ttl, refresh) -> tuple[bytes, bool]:
        namespace, record = self._tokens(layer, [NAMESPACE_KEY, self._token_key(kind, ident)], token_ttl)
        value_key = f"v:{namespace}:{kind}:{record}:{key}"
        if not refresh:
            value = layer.get(value_key)
            if value is not None:
                return value, True
        value = build()
        layer.set(value_key, value, ttl)
        return value, False

    # -----------------------------------------------------------------------------------------
    # Writes
    # -----------------------------------------------------------------------------------------
    def bump(self, keys: Iterable[str]) -> None:
        """Give `keys` new tokens now, in the local layer and in Redis (or remember them)."""
        keys = list(keys)
        self.local.delete_many(keys)
        if not self.redis_configured():
            return
        redis = self._redis()
        if redis is not None:
            try:
                redis.set_many({key: self._new_token() for key in keys}, timeout=self._token_ttl())
                return
            except _errors() as exc:
                self._failed(exc)
        self._remember(keys)

    def _remember(self, keys: list[str]) -> None:
        with self._pending_lock:
            if NAMESPACE_KEY in keys or len(self._pending) + len(keys) > settings.CACHE_PENDING_LIMIT:
                self._pending_overflow = True
                self._pending.clear()
            else:
                self._pending.update(keys)

    def _replay_pending(self, redis) -> None:
        with self._pending_lock:
            overflow, pending = self._pending_overflow, set(self._pending)
        if overflow:
            redis.set(NAMESPACE_KEY, self._new_token(), timeout=self._token_ttl())
        elif pending:
            redis.set_many({key: self._new_token() for key in pending}, timeout=self._token_ttl())
        else:
            redis.get(NAMESPACE_KEY)  # the probe itself
        with self._pending_lock:
            self._pending -= pending
            self._pending_overflow = self._pending_overflow and not overflow

    def invalidate(self, kind: str, pk: int | None) -> None:
        """After the current transaction commits, make `kind` #pk and every list of `kind` stale."""
        if kind not in KINDS:
            raise ValueError(f"unknown cache kind {kind!r}")
        keys = [self._token_key(kind, None)] if pk is None else [self._token_key(kind, pk), self._token_key(kind, None)]
        transaction.on_commit(lambda: self.bump(keys), robust=True)

    def bump_all(self) -> None:
        """After the current transaction commits, make every cached value stale (bulk writes)."""
        transaction.on_commit(lambda: self.bump([NAMESPACE_KEY]), robust=True)

    # -----------------------------------------------------------------------------------------
    # Counters (throttling)
    # -----------------------------------------------------------------------------------------
    def count(self, key: str, window: int) -> tuple[int, float]:
        """Add one to a counter that lives `window` seconds from its first hit.

        Returns (hits so far, seconds until the counter starts again).
        """
        redis = self._redis()
        if redis is not None:
            try:
                client = redis.client.get_client(write=True)
                full_key = redis.make_key(f"c:{key}")
                # SET NX EX, INCR and PTTL in one round trip: the window starts at the first hit
                # and the counter can never be left without an expiry.
                pipe = client.pipeline(transaction=False)
                pipe.set(full_key, 0, ex=window, nx=True)
                pipe.incr(full_key)
                pipe.pttl(full_key)
                _, hits, ttl_ms = pipe.execute()
                return int(hits), max(ttl_ms, 0) / 1000
            except _errors() as exc:
                self._failed(exc)
        now = time.time()
        count_key, start_key = f"c:{key}", f"c:{key}:start"
        if self.local.add(count_key, 0, window):
            self.local.set(start_key, now, window)
        try:
            hits = self.local.incr(count_key)
        except ValueError:  # expired between add() and incr()
            self.local.set(count_key, 1, window)
            self.local.set(start_key, now, window)
            hits = 1
        return hits, max(self.local.get(start_key, now) + window - now, 0.0)

    # -----------------------------------------------------------------------------------------
    # Health
    # -----------------------------------------------------------------------------------------
    def ping_redis(self) -> None:
        """Raise unless Redis answers a PING now (ignores the breaker; for /health/ready)."""
        caches[REDIS_ALIAS].client.get_client(write=True).ping()

    def reset(self) -> None:
        """Forget breaker state, missed bumps and local values (tests; a fresh process)."""
        self.breaker.reset()
        with self._pending_lock:
            self._pending.clear()
            self._pending_overflow = False
        self.local.clear()


class _BuildFailed(Exception):
    """Carries an exception raised while building a value past the 'Redis failed' handler."""

    def __init__(self, original: BaseException):
        super().__init__(str(original))
        self.original = original


hot_cache = HotCache()


def invalidate_order(pk: int) -> None:
    """Call from every write to an order, its lines or its status (on commit)."""
    hot_cache.invalidate("order", pk)


def invalidate_invoice(pk: int) -> None:
    """Call from every write to an invoice or credit note, its lines or payments (on commit)."""
    hot_cache.invalidate("invoice", pk)


def invalidate_customer(pk: int) -> None:
    """Call from every write to a customer (on commit)."""
    hot_cache.invalidate("customer", pk)


def bump_all() -> None:
    """Call after a bulk write that bypasses the services (e.g. each legacy migration batch)."""
    hot_cache.bump_all()
