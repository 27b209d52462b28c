"""Shadow reads: legacy mode serves the legacy truth; shadow mode records mismatches and its failures are harmless.

Real PostgreSQL for modern, the SQLite legacy stand-in for legacy (as test_reconcile does): the
legacy database is built with legacy_db, migrated with migrate_legacy, then one side is changed.
"""

from __future__ import annotations

import contextlib
import io
import json
import random
import time
from decimal import Decimal

import pytest
from django.core.exceptions import ImproperlyConfigured
from django.core.management import CommandError, call_command
from django.db import connections
from django.db.models import F
from rest_framework.test import APIClient
from rest_framework_simplejwt.tokens import AccessToken

from invoices.models import Invoice
from legacy_migration import shadow
from legacy_migration.models import ShadowMismatch, ShadowOrigin
from oms import settings as oms_settings
from oms.api.views import ApiViewSet
from oms.cache import hot_cache
from orders.models import Customer, Order, OrderLine
from tests.factories import make_order
from tests.legacy_migration import legacy_db
from tests.legacy_migration.test_migrate_legacy import migrate

pytestmark = pytest.mark.django_db(transaction=True, databases=["default", "legacy"])


@pytest.fixture(autouse=True)
def comparers():
    """Fresh comparers and counters per test (started with the test's settings); all work done at the end."""
    hot_cache.reset()
    shadow.comparer.stop()
    shadow.counters.reset()
    yield shadow.comparer
    assert shadow.comparer.drain(timeout=30), "a shadow comparison was still running after the test"
    shadow.comparer.stop()
    shadow.counters.reset()
    hot_cache.reset()


@pytest.fixture
def migrated():
    expected = legacy_db.build("legacy")
    migrate("legacy", "--batch-size", "13")
    return expected


@pytest.fixture
def reader(audrey):
    """An auditor calling with a real JWT, as a client system does (the cache's fast path answers those)."""
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {AccessToken.for_user(audrey)}")
    return client


@pytest.fixture
def fast_answers(monkeypatch):
    """What the cache's fast path answered (None: it left the request to DRF). A spy, not a stub."""
    answered = []
    original = ApiViewSet._fast_cached_answer

    def spy(self, request, kwargs):
        response = original(self, request, kwargs)
        answered.append(None if response is None else response.status_code)
        return response

    monkeypatch.setattr(ApiViewSet, "_fast_cached_answer", spy)
    return answered


def read_from(settings, source: str, **extra) -> None:
    for resource in ("ORDERS", "INVOICES", "CUSTOMERS"):
        setattr(settings, f"READ_SOURCE_{resource}", source)
    for name, value in extra.items():
        setattr(settings, name, value)


def legacy_sql(sql: str, params=()) -> None:
    with connections["legacy"].cursor() as cursor:
        cursor.execute(sql, list(params))


@contextlib.contextmanager
def slow_legacy_orders():
    """ORDHDR becomes a view that takes ~30 s to answer (a real SQLite query, interruptible)."""
    legacy_sql('ALTER TABLE "ORDHDR" RENAME TO "ORDHDR_SLOW"')
    legacy_sql('CREATE VIEW "ORDHDR" AS SELECT * FROM "ORDHDR_SLOW" WHERE (WITH RECURSIVE c(x) AS '
               "(SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 100000000) SELECT count(*) FROM c) > 0")
    try:
        yield
    finally:
        legacy_sql('DROP VIEW "ORDHDR"')
        legacy_sql('ALTER TABLE "ORDHDR_SLOW" RENAME TO "ORDHDR"')


def without(data: dict, *names: str) -> dict:
    return {k: v for k, v in data.items() if k not in names}


# ---------------------------------------------------------------------------------------------
# legacy mode
# ---------------------------------------------------------------------------------------------
def test_legacy_mode_answers_in_the_modern_shape_and_agrees_with_a_clean_migration(migrated, reader, settings):
    records = {"customers": Customer.objects.get(legacy_id=min(migrated.customers)),
               "orders": Order.objects.get(legacy_id=min(migrated.orders)),
               "invoices": Invoice.objects.get(legacy_id=min(migrated.invoices))}
    for resource, record in records.items():
        read_from(settings, "modern")
        modern = reader.get(f"/api/v1/{resource}/{record.pk}/")
        read_from(settings, "legacy")
        legacy = reader.get(f"/api/v1/{resource}/{record.pk}/")
        assert modern.status_code == legacy.status_code == 200, legacy.content
        assert (modern["X-Read-Source"], legacy["X-Read-Source"]) == ("modern", "legacy")
        # Same JSON, key for key; only when the row was last written differs (legacy: LAST_UPD_DT).
        assert list(legacy.json()) == list(modern.json()), resource
        assert without(legacy.json(), "updated_at") == without(modern.json(), "updated_at"), resource
    order = reader.get(f"/api/v1/orders/{records['orders'].pk}/").json()
    assert order["updated_at"] == "2024-01-01T14:00:00Z"  # LAST_UPD_DT 09:00 in New York
    assert reader.get(f"/api/v1/invoices/{records['invoices'].pk}/").json()["updated_at"] is None  # INVHDR has none


def test_legacy_mode_still_serves_the_legacy_value_after_modern_changed(migrated, reader, settings, fast_answers):
    order = Order.objects.get(legacy_id=max(migrated.orders))
    path = f"/api/v1/orders/{order.pk}/"
    Order.objects.filter(pk=order.pk).update(notes="edited in modern", total=F("total") + Decimal("1.00"),
                                             status="shipped")
    OrderLine.objects.filter(order=order, line_number=1).update(quantity=Decimal("5.000"))
    read_from(settings, "modern")
    for _ in range(2):  # the second answer comes from the cache, through the fast path
        modern = reader.get(path)
    assert modern["X-Cache"] == "hit" and fast_answers[-1] == 200
    assert (modern.json()["notes"], modern.json()["total"], modern.json()["status"]) == (
        "edited in modern", "38.40", "shipped")

    read_from(settings, "legacy")
    fast_answers.clear()
    legacy = reader.get(path)
    assert legacy.status_code == 200 and legacy["X-Read-Source"] == "legacy"
    assert "X-Cache" not in legacy and fast_answers == [None]  # the cached modern answer is not served
    body = legacy.json()
    assert (body["notes"], body["total"], body["status"]) == ("note", "37.40", "confirmed")
    assert [line["quantity"] for line in body["lines"]] == ["2.000", "1.000"]
    assert body["customer"] == Customer.objects.get(legacy_id=order.customer.legacy_id).pk


def test_legacy_mode_follows_a_change_made_in_legacy(migrated, reader, settings):
    customer = Customer.objects.get(legacy_id=min(migrated.customers))
    legacy_sql('UPDATE "CUSTMAST" SET "CUST_NAME" = %s, "EMAIL" = %s WHERE "CUST_ID" = %s',
               ["  Renamed In Legacy  ", " New@Example.COM ", customer.legacy_id])
    read_from(settings, "legacy")
    body = reader.get(f"/api/v1/customers/{customer.pk}/").json()
    assert (body["name"], body["email"]) == ("Renamed In Legacy", "new@example.com")  # through the mapping's rules


def test_legacy_mode_answers_404_for_a_record_made_in_modern(migrated, reader, settings):
    made_here = make_order(customer=Customer.objects.get(legacy_id=min(migrated.customers)))
    read_from(settings, "legacy")
    response = reader.get(f"/api/v1/orders/{made_here.pk}/")
    assert response.status_code == 404
    assert "made in the modern system" in response.json()["detail"]
    assert reader.get(f"/api/v1/orders/{made_here.pk + 10_000}/").status_code == 404


def test_legacy_mode_answers_404_when_the_legacy_record_is_gone_or_no_longer_carried_over(migrated, reader,
                                                                                          settings):
    gone, rejected = sorted(migrated.orders)[:2]
    legacy_sql('DELETE FROM "ORDHDR" WHERE "ORD_NO" = %s', [gone])
    legacy_sql('UPDATE "ORDHDR" SET "ORD_STATUS" = %s WHERE "ORD_NO" = %s', ["X", rejected])
    read_from(settings, "legacy")
    assert reader.get(f"/api/v1/orders/{Order.objects.get(legacy_id=gone).pk}/").status_code == 404
    response = reader.get(f"/api/v1/orders/{Order.objects.get(legacy_id=rejected).pk}/")
    assert response.status_code == 404 and "unknown_status" in response.json()["detail"]


def test_legacy_mode_answers_503_when_the_legacy_database_fails(migrated, reader, settings):
    order = Order.objects.get(legacy_id=min(migrated.orders))
    legacy_sql('DROP TABLE "ORDDTL"')
    read_from(settings, "legacy")
    response = reader.get(f"/api/v1/orders/{order.pk}/")
    assert response.status_code == 503 and response.json()["code"] == "legacy_unavailable"


def test_lists_are_served_from_modern_in_every_mode(migrated, reader, settings):
    order = Order.objects.get(legacy_id=min(migrated.orders))
    Order.objects.filter(pk=order.pk).update(notes="edited in modern")
    read_from(settings, "legacy")
    listed = reader.get("/api/v1/orders/", {"legacy_id": order.legacy_id}).json()["results"]
    assert [o["notes"] for o in listed] == ["edited in modern"]


# ---------------------------------------------------------------------------------------------
# shadow mode
# ---------------------------------------------------------------------------------------------
def test_shadow_mode_records_a_seeded_mismatch_with_both_representations(migrated, reader, settings, comparers,
                                                                         fast_answers):
    order = Order.objects.get(legacy_id=max(migrated.orders))
    Order.objects.filter(pk=order.pk).update(total=F("total") + Decimal("0.01"))
    OrderLine.objects.filter(order=order, line_number=2).update(quantity=Decimal("1.500"))
    read_from(settings, "shadow", SHADOW_SAMPLE_RATE=1.0)
    path = f"/api/v1/orders/{order.pk}/"
    first, second = reader.get(path), reader.get(path)
    assert first.status_code == second.status_code == 200
    assert first.json()["total"] == "37.41" and first["X-Read-Source"] == "modern"  # served from modern
    assert second["X-Cache"] == "hit" and fast_answers[-1] == 200  # the fast path answered, and was sampled too
    assert comparers.drain(timeout=30)

    mismatch = ShadowMismatch.objects.get()
    assert (mismatch.resource, mismatch.record_id, mismatch.legacy_key) == ("orders", order.pk, str(order.legacy_id))
    assert mismatch.fields == {"total": {"legacy": "37.40", "modern": "37.41"},
                               "lines[2].quantity": {"legacy": "1.000", "modern": "1.500"}}
    assert mismatch.legacy["total"] == "37.40" and mismatch.modern["total"] == "37.41"
    assert mismatch.legacy["lines"][1]["quantity"] == "1.000" and mismatch.modern["lines"][1]["quantity"] == "1.500"
    assert (mismatch.occurrences, mismatch.path, mismatch.origin) == (2, path, ShadowOrigin.LIVE)
    counts = shadow.counters.totals()["orders"]
    assert (counts["sampled"], counts["mismatched"], counts["matched"]) == (2, 2, 0)


def test_shadow_mode_finds_no_mismatch_on_a_clean_migration(migrated, reader, settings, comparers):
    read_from(settings, "shadow", SHADOW_SAMPLE_RATE=1.0, SHADOW_QUEUE_SIZE=1000)
    reads = {"customers": Customer.objects.exclude(legacy_id=None), "orders": Order.objects.exclude(legacy_id=None),
             "invoices": Invoice.objects.exclude(legacy_id=None)}
    for resource, records in reads.items():
        for pk in records.values_list("pk", flat=True):
            assert reader.get(f"/api/v1/{resource}/{pk}/").status_code == 200
    assert comparers.drain(timeout=60)
    assert list(ShadowMismatch.objects.values_list("resource", "legacy_key", "fields")) == []
    totals = shadow.counters.totals()
    for resource, records in reads.items():
        assert totals[resource]["matched"] == totals[resource]["sampled"] == records.count(), resource


def test_shadow_mode_counts_a_record_made_in_modern_without_calling_it_a_mismatch(migrated, reader, settings,
                                                                                comparers):
    made_here = make_order(customer=Customer.objects.get(legacy_id=min(migrated.customers)))
    read_from(settings, "shadow", SHADOW_SAMPLE_RATE=1.0)
    assert reader.get(f"/api/v1/orders/{made_here.pk}/").status_code == 200
    assert comparers.drain(timeout=30)
    assert ShadowMismatch.objects.count() == 0
    assert shadow.counters.totals()["orders"]["no_legacy_record"] == 1


def test_shadow_mode_reports_a_modern_record_whose_legacy_record_is_gone(migrated, reader, settings, comparers):
    order = Order.objects.get(legacy_id=max(migrated.orders))
    legacy_sql('DELETE FROM "ORDHDR" WHERE "ORD_NO" = %s', [order.legacy_id])
    read_from(settings, "shadow", SHADOW_SAMPLE_RATE=1.0)
    assert reader.get(f"/api/v1/orders/{order.pk}/").status_code == 200
    assert comparers.drain(timeout=30)
    mismatch = ShadowMismatch.objects.get()
    assert mismatch.fields == {"record": {"legacy": "gone", "modern": "present"}} and mismatch.legacy is None


def test_a_sample_rate_of_zero_records_nothing(migrated, reader, settings, comparers):
    order = Order.objects.get(legacy_id=max(migrated.orders))
    Order.objects.filter(pk=order.pk).update(total=F("total") + Decimal("0.01"))
    read_from(settings, "shadow", SHADOW_SAMPLE_RATE=0.0)
    for _ in range(5):
        assert reader.get(f"/api/v1/orders/{order.pk}/").status_code == 200
    assert comparers.drain(timeout=30)
    assert ShadowMismatch.objects.count() == 0
    assert shadow.counters.totals()["orders"]["sampled"] == 0


def test_a_failing_legacy_read_is_harmless_and_counted(migrated, reader, settings, comparers):
    order = Order.objects.get(legacy_id=max(migrated.orders))
    Order.objects.filter(pk=order.pk).update(total=F("total") + Decimal("0.01"))
    legacy_sql('DROP TABLE "ORDDTL"')  # the legacy read now fails with "no such table"
    read_from(settings, "shadow", SHADOW_SAMPLE_RATE=1.0)
    response = reader.get(f"/api/v1/orders/{order.pk}/")
    assert response.status_code == 200 and response.json()["total"] == "37.41"
    assert comparers.drain(timeout=30)
    assert ShadowMismatch.objects.count() == 0
    counts = shadow.counters.totals()["orders"]
    assert (counts["sampled"], counts["error"], counts["mismatched"]) == (1, 1, 0)


def test_a_slow_legacy_read_is_cut_off_at_the_budget_without_delaying_the_response(migrated, reader, settings,
                                                                                   comparers):
    order = Order.objects.get(legacy_id=max(migrated.orders))
    Order.objects.filter(pk=order.pk).update(total=F("total") + Decimal("0.01"))
    read_from(settings, "shadow", SHADOW_SAMPLE_RATE=1.0, SHADOW_TIMEOUT_MS=300)
    with slow_legacy_orders():
        started = time.monotonic()
        response = reader.get(f"/api/v1/orders/{order.pk}/")
        answered_in = time.monotonic() - started
        # The legacy query takes ~30 s; the watchdog interrupts it at the budget, so the
        # comparer is free again within seconds.
        assert comparers.drain(timeout=10)
    assert response.status_code == 200 and answered_in < 2
    assert ShadowMismatch.objects.count() == 0  # an abandoned comparison records nothing
    counts = shadow.counters.totals()["orders"]
    assert (counts["sampled"], counts["timeout"]) == (1, 1)


def test_a_full_queue_drops_comparisons_instead_of_waiting(migrated, reader, settings, comparers):
    order = Order.objects.get(legacy_id=max(migrated.orders))
    read_from(settings, "shadow", SHADOW_SAMPLE_RATE=1.0, SHADOW_TIMEOUT_MS=3000, SHADOW_WORKERS=1,
              SHADOW_QUEUE_SIZE=1)
    with slow_legacy_orders():
        started = time.monotonic()
        statuses = [reader.get(f"/api/v1/orders/{order.pk}/").status_code for _ in range(6)]
        answered_in = time.monotonic() - started
        assert comparers.drain(timeout=20)
    assert statuses == [200] * 6 and answered_in < 3
    counts = shadow.counters.totals()["orders"]
    # One comparer busy for the 3 s budget, one read waiting: the other reads were dropped, not waited for.
    assert counts["sampled"] + counts["dropped"] == 6 and counts["dropped"] >= 3
    assert counts["timeout"] == counts["sampled"]


def test_the_same_mismatch_seen_by_two_paths_is_one_record_counted_twice(migrated, settings):
    customer = Customer.objects.get(legacy_id=min(migrated.customers))
    Customer.objects.filter(pk=customer.pk).update(name="Renamed In Modern")
    spec = shadow.RESOURCES["customers"]
    modern = shadow.modern_representation(spec, customer.pk)
    first = shadow.compare_and_record(spec, record_id=customer.pk, modern=modern, origin=ShadowOrigin.LIVE, path="/a")
    second = shadow.compare_and_record(spec, record_id=customer.pk, modern=modern, origin=ShadowOrigin.OFFLINE,
                                       path="/b")
    assert first.outcome == second.outcome == "mismatched" and first.mismatch.pk == second.mismatch.pk
    stored = ShadowMismatch.objects.get()
    assert (stored.occurrences, stored.path, stored.origin) == (2, "/b", ShadowOrigin.OFFLINE)
    assert stored.fields == {"name": {"legacy": f"Customer {customer.legacy_id} Café", "modern": "Renamed In Modern"}}


# ---------------------------------------------------------------------------------------------
# manage.py shadow_compare
# ---------------------------------------------------------------------------------------------
def shadow_compare(*args: str) -> tuple[int, dict]:
    out = io.StringIO()
    try:
        call_command("shadow_compare", "--json", *args, stdout=out, stderr=io.StringIO())
        code = 0
    except SystemExit as exit_:
        code = exit_.code
    return code, json.loads(out.getvalue())


def test_shadow_compare_finds_a_seeded_mismatch_and_exits_1(migrated):
    invoice = Invoice.objects.get(legacy_id=max(migrated.invoices))
    Invoice.objects.filter(pk=invoice.pk).update(paid_amount=Decimal("10.00"))
    code, report = shadow_compare("--resource", "invoices", "--sample", str(len(migrated.invoices)), "--seed", "7")
    assert code == 1
    assert report["compared"] == {"invoices": len(migrated.invoices)}
    assert [(m["legacy_key"], m["fields"]) for m in report["mismatches"]] == [
        (invoice.legacy_id, {"paid_amount": {"legacy": "0.00", "modern": "10.00"}})]
    stored = ShadowMismatch.objects.get()
    assert (stored.origin, stored.record_id, stored.modern["paid_amount"], stored.legacy["paid_amount"]) == (
        ShadowOrigin.OFFLINE, invoice.pk, "10.00", "0.00")


def test_shadow_compare_on_a_clean_migration_exits_0(migrated):
    code, report = shadow_compare("--sample", "25", "--seed", "3")
    assert code == 0 and report["mismatched"] == 0
    assert report["compared"] == {"customers": 25, "orders": 25, "invoices": 25}
    assert report["matched"] == report["compared"]


def test_the_same_seed_replays_the_same_sample(migrated):
    spec = shadow.RESOURCES["orders"]
    first = shadow.sample_ids(spec, 10, random.Random(5))
    assert first == shadow.sample_ids(spec, 10, random.Random(5))
    assert len(first) == 10 and set(first) <= set(Order.objects.exclude(legacy_id=None).values_list("pk", flat=True))
    assert first != shadow.sample_ids(spec, 10, random.Random(6))


def test_shadow_compare_stops_with_a_message_when_legacy_fails(migrated):
    legacy_sql('DROP TABLE "CUSTMAST"')
    with pytest.raises(CommandError, match="Stopped: .*legacy database"):
        call_command("shadow_compare", "--resource", "customers", "--sample", "3", stdout=io.StringIO())


# ---------------------------------------------------------------------------------------------
# Settings and the admin
# ---------------------------------------------------------------------------------------------
BAD_SETTINGS = [
    ("READ_SOURCE_ORDERS", "legacyy", lambda n: oms_settings.env_choice(n, oms_settings.READ_SOURCE_CHOICES, "modern")),
    ("SHADOW_SAMPLE_RATE", "5%", lambda n: oms_settings.env_number(n, 0.05, minimum=0.0, maximum=1.0)),
    ("SHADOW_SAMPLE_RATE", "1.5", lambda n: oms_settings.env_number(n, 0.05, minimum=0.0, maximum=1.0)),
    ("SHADOW_TIMEOUT_MS", "0", lambda n: oms_settings.env_number(n, 500, minimum=1, maximum=60_000, integer=True)),
    ("SHADOW_TIMEOUT_MS", "250ms", lambda n: oms_settings.env_number(n, 500, minimum=1, maximum=60_000, integer=True)),
]


@pytest.mark.parametrize("name, value, parse", BAD_SETTINGS)
def test_a_bad_shadow_setting_fails_loudly(monkeypatch, name, value, parse):
    monkeypatch.setenv(name, value)
    with pytest.raises(ImproperlyConfigured, match=name):
        parse(name)


def test_mismatches_and_counters_are_shown_in_the_admin_beside_reconciliation(migrated, reader, settings,
                                                                             comparers, client_for, otto):
    order = Order.objects.get(legacy_id=max(migrated.orders))
    Order.objects.filter(pk=order.pk).update(notes="edited in modern")
    read_from(settings, "shadow", SHADOW_SAMPLE_RATE=1.0)
    reader.get(f"/api/v1/orders/{order.pk}/")
    assert comparers.drain(timeout=30)
    mismatch = ShadowMismatch.objects.get()
    browser = client_for(otto)
    dashboard = browser.get("/admin/legacy_migration/reconciliation/dashboard/")
    assert dashboard.status_code == 200
    assert f"/admin/legacy_migration/shadowmismatch/{mismatch.pk}/change/" in dashboard.content.decode()
    listing = browser.get("/admin/legacy_migration/shadowmismatch/")
    assert listing.status_code == 200 and "Shadow reads" in listing.content.decode()
    assert [row["counts"]["mismatched"] for row in listing.context["shadow_status"]
            if row["resource"] == "orders"] == [1]
    page = browser.get(f"/admin/legacy_migration/shadowmismatch/{mismatch.pk}/change/").content.decode()
    assert "edited in modern" in page and "&quot;note&quot;" in page
    found = browser.get("/admin/legacy_migration/shadowmismatch/", {"q": mismatch.legacy_key, "resource": "orders"})
    assert list(found.context["cl"].result_list) == [mismatch]
    assert browser.get("/admin/legacy_migration/shadowmismatch/add/").status_code == 403  # evidence, never edited


def test_staff_without_a_migration_role_cannot_see_shadow_mismatches(nora, client_for):
    assert client_for(nora).get("/admin/legacy_migration/shadowmismatch/").status_code == 403
