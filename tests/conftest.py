"""The fixed cast of users every test can use (as healthchecks does with alice, bob, charlie).

- alice: superuser
- sam: staff in Sales
- bill: staff in Billing
- otto: staff in Migration operators
- audrey: staff in Auditors (read-only)
- nora: staff with no role at all
"""

from __future__ import annotations

import pytest
from django.apps import apps as django_apps
from django.contrib.auth.models import Group, User
from django.core.cache import cache
from django.test import Client

from oms.roles import sync_roles

CAST = {
    "sam": "Sales",
    "bill": "Billing",
    "otto": "Migration operators",
    "audrey": "Auditors",
    "nora": None,
}


@pytest.fixture(autouse=True)
def _clear_cache():
    """Every test starts with an empty cache (the suite shares one Redis database)."""
    cache.clear()
    yield


@pytest.fixture(autouse=True)
def _indexes_set_aside_are_back_after_each_test(request):
    """A first load sets the modern tables' secondary indexes and foreign keys aside. In a
    transaction=True test that stops a run on purpose, the schema change would outlive the test
    (its rows are flushed, the DDL is not rolled back): build them again before the flush."""
    yield
    marker = request.node.get_closest_marker("django_db")
    if marker and marker.kwargs.get("transaction"):
        from legacy_migration.set_aside import rebuild_all

        rebuild_all()


def _staff(username: str, role: str | None) -> User:
    user = User.objects.create_user(username, f"{username}@example.com", "pw", is_staff=True)
    if role:
        if not Group.objects.filter(name=role).exists():
            # A transaction=True test flushes the tables, data migrations' groups included.
            sync_roles(django_apps)
        user.groups.add(Group.objects.get(name=role))
    return user


@pytest.fixture
def alice(db) -> User:
    return User.objects.create_superuser("alice", "alice@example.com", "pw")


@pytest.fixture
def sam(db) -> User:
    return _staff("sam", CAST["sam"])


@pytest.fixture
def bill(db) -> User:
    return _staff("bill", CAST["bill"])


@pytest.fixture
def otto(db) -> User:
    return _staff("otto", CAST["otto"])


@pytest.fixture
def audrey(db) -> User:
    return _staff("audrey", CAST["audrey"])


@pytest.fixture
def nora(db) -> User:
    return _staff("nora", CAST["nora"])


@pytest.fixture
def client_for():
    """client_for(user) → a test client logged in as that user."""

    def make(user: User) -> Client:
        client = Client()
        client.force_login(user)
        return client

    return make
