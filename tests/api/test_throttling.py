"""Rate limits: per user and per anonymous address, a 429 with Retry-After."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.django_db


@pytest.fixture
def low_limits(settings):
    settings.REST_FRAMEWORK = {**settings.REST_FRAMEWORK, "DEFAULT_THROTTLE_RATES": {
        "user": "5/min", "anon": "3/min", "token": "2/min"}}


def _assert_throttled(response):
    assert response.status_code == 429, response.content
    retry_after = int(response["Retry-After"])
    assert 1 <= retry_after <= 60
    body = response.json()
    assert body["code"] == "throttled" and body["retry_after"] == retry_after


def test_a_user_over_the_limit_gets_429_with_retry_after_and_others_do_not(api, sam, audrey, low_limits):
    client = api(sam)
    assert [client.get("/api/v1/orders/").status_code for _ in range(5)] == [200] * 5
    _assert_throttled(client.get("/api/v1/orders/"))
    assert api(audrey).get("/api/v1/orders/").status_code == 200


def test_anonymous_callers_are_limited_by_address_even_when_refused(api, low_limits):
    client = api()
    assert [client.get("/api/v1/orders/").status_code for _ in range(3)] == [401] * 3
    _assert_throttled(client.get("/api/v1/orders/"))
    other_address = api()
    assert other_address.get("/api/v1/orders/", REMOTE_ADDR="10.0.0.9").status_code == 401


def test_the_token_endpoint_brakes_password_guessing(api, sam, low_limits):
    client = api()
    guesses = [client.post("/api/v1/auth/token/", {"username": "sam", "password": f"guess{i}"}, format="json")
               for i in range(2)]
    assert [g.status_code for g in guesses] == [401, 401]
    _assert_throttled(client.post("/api/v1/auth/token/", {"username": "sam", "password": "pw"}, format="json"))
