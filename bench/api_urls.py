"""The project's URLs plus /bench/minimal/: the framework's own ceiling on this server.

The minimal view goes through the same middleware stack as the API (sessions, CSRF, auth,
WhiteNoise) but touches no database, no cache and no DRF: what any Django view costs here.
"""

from django.http import JsonResponse
from django.urls import path

from oms.urls import handler404, handler500, urlpatterns as project_urlpatterns  # noqa: F401


def minimal(request):
    return JsonResponse({"ok": True})


urlpatterns = [path("bench/minimal/", minimal), *project_urlpatterns]
