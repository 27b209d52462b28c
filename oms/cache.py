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
4. One round trip per request. `prefetch` reads in one Lua script everything an API request
   will want from Redis — its caller's principal, its rate counter, its cached answer — and
   `fetch` / `count` use those results instead of asking again (oms/api/views.py). The scripts
   go out on a connection of the calling thread's own (`_Wire`: the pool's settings, no
   redis-py client machinery, never retried); a cached answer to a JWT client is served by
   oms/api/middleware.py before the session/CSRF/auth/messages middleware.

Without REDIS_URL (the embedded demo) the local layer is the only one, with the normal TTL.
"""

from __future__ import annotations

import hashlib
import logging
import os
import secrets
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field

from django.conf import settings
from django.core.cache import caches
from django.core.cache.backends.locmem import LocMemCache
from django.db import transaction

log = logging.getLogger("oms.cache")

#: The kinds of records the API caches. A write to one bumps that record's token and the kind's.
KINDS = ("order", "invoice", "customer", "principal")
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
    def _new_token() -> int:
        # An int: django-redis stores it as plain digits, which the lookup script can splice into a key.
        return secrets.randbits(62)

    def _tokens(self, layer, keys: list[str], ttl: float) -> list[int]:
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
              ttl: float | None = None, refresh: bool = False,
              prefetched: Prefetched | None = None) -> tuple[bytes, bool]:
        """Return (value, was_cached) for `key`, building and storing it on a miss.

        ident is the record's primary key for a detail (its token changes on every write to it),
        or None for a list (the kind's token changes on every write to any record of the kind).
        refresh skips the cached value (Cache-Control: no-cache) but still stores the new one.
        prefetched: what prefetch() already read for this request (saves the round trip).
        """
        found = prefetched.values.get((kind, ident, key)) if prefetched is not None else None
        if found is not None and not refresh:
            served = self._serve_prefetched(found, kind, key, build, ttl)
            if served is not None:
                return served
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
                    return self._fetch_from_redis(redis, kind, ident, key, build_once, ttl, refresh)
                except _errors() as exc:
                    self._failed(exc)
            local_ttl = min(ttl, self._local_ttl())
            return self._fetch_from(self.local, kind, ident, key, build_once, local_ttl, local_ttl, refresh)
        except _BuildFailed as failure:
            raise failure.original from None

    def _fetch_from_redis(self, redis, kind, ident, key, build, ttl, refresh) -> tuple[bytes, bool]:
        """The same as _fetch_from, in one round trip when the tokens exist (the usual case)."""
        token_key = self._token_key(kind, ident)
        namespace, record, raw = _run_script(
            redis.client.get_client(write=True), _LOOKUP,
            _UNIT.join([redis.make_key(NAMESPACE_KEY), redis.make_key(token_key), redis.make_key("v:"),
                        f":{kind}:", f":{key}", str(int(refresh))]))
        if not _is_token(namespace) or not _is_token(record):  # a first read, or an evicted token
            # Anything but digits (say, a token of an older format) is dropped and made anew.
            redis.delete_many([k for k, t in ((NAMESPACE_KEY, namespace), (token_key, record))
                               if t is not None and not _is_token(t)])
            namespace, record = self._tokens(redis, [NAMESPACE_KEY, token_key], self._token_ttl())
            raw = None
        elif raw is not None:
            return redis.client.decode(raw), True
        value_key = f"v:{int(namespace)}:{kind}:{int(record)}:{key}"
        value = build()
        redis.set(value_key, value, ttl)
        return value, False

    def _serve_prefetched(self, found, kind, key, build, ttl) -> tuple[bytes, bool] | None:
        namespace, record, raw = found
        if not _is_token(namespace) or not _is_token(record):
            return None  # the ordinary path makes the tokens
        redis = caches[REDIS_ALIAS]
        if raw is not None:
            return redis.client.decode(raw), True
        value = build()
        try:
            redis.set(f"v:{int(namespace)}:{kind}:{int(record)}:{key}", value,
                      settings.CACHE_TTL if ttl is None else ttl)
        except _errors() as exc:
            self._failed(exc)  # the answer is still good; it just is not stored
        return value, False

    def prefetch(self, *, values: Sequence[tuple[str, int | None, str]] = (),
                 counters: Sequence[tuple[str, int]] = ()) -> Prefetched | None:
        """Read several cached values and count several counters in ONE round trip.

        A request needs its caller's principal, a hit on its rate counter and, for a detail or
        a first list page, its answer: three round trips done one after the other, or this one.
        None when Redis is not there (callers then take the ordinary paths, local layer included).
        """
        redis = self._redis()
        if redis is None:
            return None
        try:
            make_key = redis.make_key
            parts = [str(len(values)), str(len(counters)), make_key("v:"), make_key(NAMESPACE_KEY)]
            for kind, ident, key in values:
                parts += [make_key(self._token_key(kind, ident)), f":{kind}:", f":{key}"]
            for key, window in counters:
                parts += [make_key(f"c:{key}"), str(window)]
            # One argument, not one per key: each argument costs redis-py as much as the Redis work.
            reply = _run_script(redis.client.get_client(write=True), _PREFETCH, _UNIT.join(parts))
        except _errors() as exc:
            self._failed(exc)
            return None
        namespace, result = reply[0], Prefetched()
        for position, spec in enumerate(values):
            record, raw = reply[1 + 2 * position], reply[2 + 2 * position]
            result.values[spec] = (namespace, record, raw)
        offset = 1 + 2 * len(values)
        for position, (key, _) in enumerate(counters):
            hits, ttl_ms = reply[offset + 2 * position], reply[offset + 2 * position + 1]
            result.counters[key] = (int(hits), max(int(ttl_ms), 0) / 1000)
        return result

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
    def count(self, key: str, window: int, prefetched: Prefetched | None = None) -> tuple[int, float]:
        """Add one to a counter that lives `window` seconds from its first hit.

        Returns (hits so far, seconds until the counter starts again).
        """
        if prefetched is not None and key in prefetched.counters:
            return prefetched.counters[key]
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


@dataclass
class Prefetched:
    """What HotCache.prefetch found: per (kind, ident, key) the two tokens and the value; per counter its count."""

    values: dict = field(default_factory=dict)
    counters: dict = field(default_factory=dict)


#: prefetch(): the namespace token; per value, its record token and the value both address; per
#: counter, SET NX EX + INCR + PTTL (the window starts at the first hit, never without expiry).
_PREFETCH = r"""
local a = {}
for part in string.gmatch(ARGV[1], '[^\31]+') do a[#a + 1] = part end
local values, counters, prefix = tonumber(a[1]), tonumber(a[2]), a[3]
local namespace = redis.call('GET', a[4])
local out = {namespace or false}
local i = 5
for _ = 1, values do
  local record = redis.call('GET', a[i])
  local value = false
  if namespace and record then
    value = redis.call('GET', prefix .. namespace .. a[i + 1] .. record .. a[i + 2])
  end
  out[#out + 1] = record or false
  out[#out + 1] = value
  i = i + 3
end
for _ = 1, counters do
  redis.call('SET', a[i], 0, 'EX', a[i + 1], 'NX')
  out[#out + 1] = redis.call('INCR', a[i])
  out[#out + 1] = redis.call('PTTL', a[i])
  i = i + 2
end
return out
"""

#: Reads the namespace token, the record's token and the value they address, in one round trip.
#: Argument: namespace key, token key, value-key prefix, ":kind:", ":key", refresh (1/0).
_LOOKUP = r"""
local a = {}
for part in string.gmatch(ARGV[1], '[^\31]+') do a[#a + 1] = part end
local namespace = redis.call('GET', a[1])
local record = redis.call('GET', a[2])
if not namespace or not record or a[6] == '1' then
  return {namespace or false, record or false, false}
end
return {namespace, record, redis.call('GET', a[3] .. namespace .. a[4] .. record .. a[5])}
"""
#: The scripts take one argument: their key names and values joined by this (never in a key).
#: Key names built inside a script are not declared in KEYS: fine on one Redis server or a
#: primary with replicas, not on Redis Cluster.
_UNIT = "\x1f"


_SCRIPT_SHAS: dict[str, str] = {}


class _Wire:
    """One Redis connection per thread for the per-request scripts, outside redis-py's pool.

    A command through redis-py's client costs about three times the Python time of the bare
    exchange on the socket (measured here: ~20 µs against ~7 µs for a GET; pool checkout with a
    readiness poll, the retry wrapper, metrics hooks). The scripts run
    on every API request, so they go straight to a connection of this thread's own, made with
    the pool's settings (the same socket timeouts, so the breaker sees the same failures) and
    never retried. A connection belongs to one pool and one process: a new pool (settings
    changed) or a fork makes a new one. Any failure but a Redis error reply drops the socket;
    the next call connects again.
    """

    def __init__(self) -> None:
        self._local = threading.local()

    def call(self, client, *args: str | bytes | int):
        from redis.exceptions import ResponseError

        pool = client.connection_pool
        held = getattr(self._local, "held", None)
        if held is None or held[0] is not pool or held[2] != os.getpid():
            if held is not None and held[2] == os.getpid():
                held[1].disconnect()
            held = self._local.held = (pool, pool.connection_class(**pool.connection_kwargs), os.getpid())
        connection = held[1]
        try:
            connection.send_packed_command([_pack(args)])  # connects when needed
            return connection.read_response()
        except ResponseError:
            raise  # a reply: the connection is in step
        except BaseException:
            connection.disconnect()
            raise


_wire = _Wire()


def _pack(args) -> bytes:
    """A command in the Redis protocol (what redis-py's packer makes, without its per-call checks)."""
    out = [b"*%d\r\n" % len(args)]
    for arg in args:
        raw = arg if isinstance(arg, bytes) else str(arg).encode()
        out += (b"$%d\r\n" % len(raw), raw, b"\r\n")
    return b"".join(out)


def _run_script(client, script: str, *args):
    """EVALSHA on this thread's connection, loading the script on first use (or after a Redis restart)."""
    from redis.exceptions import NoScriptError

    sha = _SCRIPT_SHAS.get(script)
    if sha is None:
        sha = _SCRIPT_SHAS[script] = hashlib.sha1(script.encode()).hexdigest()  # noqa: S324 - Redis's script id
    try:
        return _wire.call(client, "EVALSHA", sha, 0, *args)
    except NoScriptError:
        _wire.call(client, "SCRIPT", "LOAD", script)
        return _wire.call(client, "EVALSHA", sha, 0, *args)


def _is_token(raw) -> bool:
    return isinstance(raw, bytes) and raw.isdigit()


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
