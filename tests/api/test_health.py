"""/health/live and /health/ready, as a load balancer calls them (no credentials)."""

from __future__ import annotations

import socket

import pytest
from django.db import connections


def test_liveness_answers_without_touching_any_dependency(client):
    # No database access is allowed in this test (no django_db mark): a query would raise.
    response = client.get("/health/live")
    assert response.status_code == 200 and response.json() == {"status": "ok"}


@pytest.mark.django_db(databases=["default", "legacy"])
def test_readiness_checks_each_dependency(client):
    response = client.get("/health/ready")
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "ok"
    assert {name: check["status"] for name, check in body["checks"].items()} == {
        "database": "ok", "legacy_database": "ok", "redis": "ok"}
    assert body["checks"]["redis"]["circuit"] == "closed"
    assert response["Cache-Control"].startswith("max-age=0")


@pytest.mark.django_db(transaction=True)
def test_readiness_is_503_when_the_database_is_unreachable(client):
    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        closed_port = probe.getsockname()[1]
    default = connections["default"]
    original = default.settings_dict["PORT"]
    default.close()
    default.settings_dict["PORT"] = closed_port
    try:
        response = client.get("/health/ready")
    finally:
        default.close()
        default.settings_dict["PORT"] = original
    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "down"
    assert body["checks"]["database"] == {"status": "down", "error": "OperationalError",
                                          "latency_ms": body["checks"]["database"]["latency_ms"]}
