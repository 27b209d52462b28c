"""The project's URLs plus two calibration views.

- /bench/minimal/: the framework's own ceiling on this server. It goes through the same
  middleware stack as the API (sessions, CSRF, auth, WhiteNoise) but touches no database, no
  cache and no DRF: what any Django view costs here.
- /bench/redis-get/: the minimal view plus one GET to Redis — the floor of any answer that
  has to ask Redis anything (a cached answer asks it once).
"""

from django.core.cache import caches
from django.http import JsonResponse
from django.urls import path

from oms.urls import handler404, handler500  # noqa: F401
from oms.urls import urlpatterns as project_urlpatterns


def minimal(request):
    return JsonResponse({"ok": True})


def redis_get(request):
    caches["hot"].client.get_client(write=True).get("bench:calibration")
    return JsonResponse({"ok": True})


urlpatterns = [path("bench/minimal/", minimal), path("bench/redis-get/", redis_get), *project_urlpatterns]
