"""The fast path (a cached answer served before DRF runs) makes exactly the checks DRF makes.

The dangerous case is an answer already in the cache, put there by someone allowed to read it:
each test below first warms the cache as an allowed user, then calls as someone who is not.
"""

from __future__ import annotations

import pytest
from django.contrib.auth.models import Permission
from django.test import Client

from oms.api.views import ApiViewSet
from tests.factories import make_order

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def fast_answers(monkeypatch):
    """Records what the fast path answered (None: it left the request to DRF). A spy, not a stub."""
    answered = []
    original = ApiViewSet._fast_cached_answer

    def spy(self, request, kwargs):
        response = original(self, request, kwargs)
        answered.append(None if response is None else response.status_code)
        return response

    monkeypatch.setattr(ApiViewSet, "_fast_cached_answer", spy)
    return answered


@pytest.fixture
def warm_order(api, audrey):
    order = make_order()
    client = api(audrey)
    for _ in range(2):
        assert client.get(f"/api/v1/orders/{order.pk}/").status_code == 200
    return order


def test_fast_path_answers_exactly_what_drf_answers(api, audrey, warm_order, client_for, fast_answers):
    path = f"/api/v1/orders/{warm_order.pk}/"
    fast_answers.clear()
    fast = api(audrey).get(path)
    assert fast_answers == [200]
    slow = api(audrey).get(path, HTTP_ACCEPT="application/json; indent=2")  # not a fast-path Accept
    assert fast_answers == [200, None]
    assert fast["X-Cache"] == slow["X-Cache"] == "hit"
    assert fast.json() == slow.json()
    for header in ("Content-Type", "Vary", "Allow"):
        assert fast[header] == slow[header], header
    session = client_for(audrey).get(path, HTTP_ACCEPT="application/json")
    assert session.json() == fast.json()


def test_a_cached_read_is_answered_before_the_session_layers_with_every_header_drf_sends(
        api, audrey, warm_order, fast_answers, monkeypatch):
    from django.contrib.sessions.middleware import SessionMiddleware

    sessions = []
    original = SessionMiddleware.process_request
    monkeypatch.setattr(SessionMiddleware, "process_request",
                        lambda self, request: sessions.append(request.path) or original(self, request))
    path = f"/api/v1/orders/{warm_order.pk}/"
    fast_answers.clear()
    fast = api(audrey).get(path)
    assert fast_answers == [200] and sessions == []  # oms.api.middleware answered
    slow = api(audrey).get(path, HTTP_ACCEPT="application/json; indent=2")
    assert fast_answers == [200, None] and sessions == [path]  # the whole stack, then DRF
    assert fast.content == slow.content
    # Security headers (SecurityMiddleware, X-Frame-Options), Content-Length, Vary, Allow: all of them.
    assert dict(fast.items()) == dict(slow.items())
    assert fast["X-Frame-Options"] == "SAMEORIGIN" and fast["X-Content-Type-Options"] == "nosniff"
    assert int(fast["Content-Length"]) == len(fast.content)


# In each refusal below the second call finds the caller's principal cached too, so the fast
# path is the one that has to refuse (it hands the request to DRF, which answers the error).

def test_a_cached_answer_is_refused_to_a_role_without_the_view_permission(api, nora, warm_order, fast_answers):
    client = api(nora)
    for _ in range(2):
        response = client.get(f"/api/v1/orders/{warm_order.pk}/")
        assert response.status_code == 403
        assert "number" not in response.json()
    assert fast_answers[-2:] == [None, None]


def test_a_cached_answer_is_refused_once_the_permission_is_taken_away(api, audrey, warm_order, fast_answers):
    client = api(audrey)
    path = f"/api/v1/orders/{warm_order.pk}/"
    assert client.get(path).status_code == 200
    assert fast_answers[-1] == 200
    auditors = audrey.groups.get()
    auditors.permissions.remove(Permission.objects.get(codename="view_order"))
    assert [client.get(path).status_code for _ in range(2)] == [403, 403]
    assert fast_answers[-2:] == [None, None]


def test_a_cached_answer_is_refused_to_a_deactivated_user(api, audrey, warm_order, fast_answers):
    client = api(audrey)
    audrey.is_active = False
    audrey.save()
    assert [client.get(f"/api/v1/orders/{warm_order.pk}/").status_code for _ in range(2)] == [401, 401]
    assert fast_answers[-2:] == [None, None]


def test_a_cached_answer_is_refused_without_a_valid_token(api, warm_order):
    client = Client()
    for header in ("", "Bearer nonsense", "Basic YWxpY2U6cHc="):
        response = client.get(f"/api/v1/orders/{warm_order.pk}/", HTTP_AUTHORIZATION=header)
        assert response.status_code == 401, header


def test_cached_answers_count_against_the_rate_limit_once_each(api, audrey, warm_order, settings, fast_answers):
    settings.REST_FRAMEWORK = {**settings.REST_FRAMEWORK, "DEFAULT_THROTTLE_RATES": {
        "user": "8/min", "anon": "100/min", "token": "100/min"}}
    client = api(audrey)  # the fixture's two reads were the first two of eight
    path = f"/api/v1/orders/{warm_order.pk}/"
    # A hit (fast path), a miss (DRF), a hit... each is one request against the limit.
    statuses = [client.get(path, **({"HTTP_CACHE_CONTROL": "no-cache"} if i % 2 else {})).status_code
                for i in range(6)]
    assert statuses == [200] * 6
    assert fast_answers[-6:] == [200, None, 200, None, 200, None]
    for _ in range(2):  # the first refusal could come from DRF; the second is on the fast path's watch
        throttled = client.get(path)
        assert throttled.status_code == 429 and int(throttled["Retry-After"]) >= 1
    assert fast_answers[-2:] == [None, None]
