"""Authentication: JWT for machines, the session for the browsable API; nothing for anonymous callers."""

from __future__ import annotations

import pytest
from django.test import Client

from tests.factories import make_order

pytestmark = pytest.mark.django_db


def test_a_machine_gets_tokens_and_uses_the_access_token(api, sam):
    client = api()
    tokens = client.post("/api/v1/auth/token/", {"username": "sam", "password": "pw"}, format="json")
    assert tokens.status_code == 200
    assert set(tokens.json()) == {"access", "refresh"}
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {tokens.json()['access']}")
    assert client.get("/api/v1/orders/").status_code == 200
    refreshed = api().post("/api/v1/auth/token/refresh/", {"refresh": tokens.json()["refresh"]}, format="json")
    assert refreshed.status_code == 200 and "access" in refreshed.json()


def test_wrong_credentials_are_a_401(api, sam):
    response = api().post("/api/v1/auth/token/", {"username": "sam", "password": "nope"}, format="json")
    assert response.status_code == 401
    assert response.json()["code"] == "no_active_account"


def test_a_refresh_token_is_not_an_access_token(api, sam):
    refresh = api().post("/api/v1/auth/token/", {"username": "sam", "password": "pw"}, format="json").json()["refresh"]
    client = api()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {refresh}")
    assert client.get("/api/v1/orders/").status_code == 401


def test_the_browsable_api_works_with_the_session(client_for, sam):
    order = make_order()
    browser = client_for(sam)
    page = browser.get(f"/api/v1/orders/{order.pk}/", HTTP_ACCEPT="text/html")
    assert page.status_code == 200
    assert page["Content-Type"].startswith("text/html")
    assert order.number in page.content.decode()


def test_session_writes_need_the_csrf_token(sam):
    browser = Client(enforce_csrf_checks=True)
    browser.force_login(sam)
    order = make_order()
    response = browser.post(f"/api/v1/orders/{order.pk}/confirm/", {}, content_type="application/json")
    assert response.status_code == 403
    assert "CSRF" in response.json()["detail"]


def test_docs_need_a_login(api, client_for, audrey):
    for path in ("/api/schema/", "/api/docs/", "/api/redoc/"):
        assert api().get(path).status_code == 401, path
        assert client_for(audrey).get(path).status_code == 200, path
