"""Fixtures of the API tests: clients that authenticate with a real JWT, and a clean cache layer."""

from __future__ import annotations

import pytest
from rest_framework.test import APIClient
from rest_framework_simplejwt.tokens import AccessToken

from oms.cache import hot_cache


@pytest.fixture(autouse=True)
def _fresh_cache_layer():
    """Every test starts with the breaker closed, no missed bumps and an empty local layer."""
    hot_cache.reset()
    yield
    hot_cache.reset()


@pytest.fixture
def api():
    """api(user) → an APIClient sending `Authorization: Bearer <a real access token for user>`;
    api() → an anonymous client."""

    def make(user=None) -> APIClient:
        client = APIClient()
        if user is not None:
            client.credentials(HTTP_AUTHORIZATION=f"Bearer {AccessToken.for_user(user)}")
        return client

    return make
