"""/health/live and /health/ready for load balancers and orchestrators.

- live: the process answers (no dependency is touched: a slow database must not get a healthy
  process restarted).
- ready: each dependency, checked now with a short timeout. Only the database is required:
  without Redis the API answers from local memory and the database, and the legacy database
  only feeds the migration, so their failure is reported ("degraded") but the answer stays 200.
  A failed database answers 503 so the balancer stops sending traffic here.
No credentials are needed and nothing but up/down, latency and the error's type is shown.
"""

from __future__ import annotations

import time

from django.conf import settings
from django.db import connections
from django.http import JsonResponse
from django.urls import path
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

from oms.cache import hot_cache


def _check(probe) -> dict:
    started = time.perf_counter()
    try:
        probe()
    except Exception as exc:  # noqa: BLE001 - any failure means "down"; the type says which
        return {"status": "down", "error": exc.__class__.__name__,
                "latency_ms": round((time.perf_counter() - started) * 1000, 1)}
    return {"status": "ok", "latency_ms": round((time.perf_counter() - started) * 1000, 1)}


def _database(alias: str):
    def probe():
        with connections[alias].cursor() as cursor:
            cursor.execute("SELECT 1")
    return probe


@never_cache
@require_GET
def live(request):
    return JsonResponse({"status": "ok"})


@never_cache
@require_GET
def ready(request):
    checks = {"database": _check(_database("default"))}
    if "legacy" in settings.DATABASES:
        checks["legacy_database"] = _check(_database("legacy"))
    else:
        checks["legacy_database"] = {"status": "not_configured"}
    if hot_cache.redis_configured():
        checks["redis"] = _check(hot_cache.ping_redis)
        checks["redis"]["circuit"] = "open" if hot_cache.breaker.is_open else "closed"
    else:
        checks["redis"] = {"status": "not_configured"}
    if checks["database"]["status"] != "ok":
        overall, code = "down", 503
    elif any(check["status"] == "down" for check in checks.values()):
        overall, code = "degraded", 200
    else:
        overall, code = "ok", 200
    return JsonResponse({"status": overall, "checks": checks}, status=code)


urlpatterns = [
    path("live", live, name="health-live"),
    path("ready", ready, name="health-ready"),
]
