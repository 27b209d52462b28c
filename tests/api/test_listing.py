"""Lists: the filters integrators use, ordering, and keyset pagination that stays cheap deep down."""

from __future__ import annotations

import datetime as dt
import json
from urllib.parse import urlsplit

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from rest_framework.request import Request
from rest_framework.test import APIRequestFactory

from oms.api.pagination import Cursor, KeysetPagination
from oms.cache import bump_all
from orders.api.views import OrderViewSet
from orders.models import Order
from tests.factories import CustomerFactory, make_confirmed_order, make_order

pytestmark = pytest.mark.django_db


def _walk(client, url: str, key: str = "next") -> list[list[int]]:
    pages = []
    while url:
        response = client.get(url)
        assert response.status_code == 200, response.content
        body = response.json()
        pages.append([row["id"] for row in body["results"]])
        url = body[key]
    return pages


def test_cursor_pages_cover_every_order_once_in_order_even_with_equal_dates(api, sam):
    same_moment = timezone.now() - dt.timedelta(days=1)
    orders = [make_order(ordered_at=same_moment if i % 2 else same_moment - dt.timedelta(hours=i)) for i in range(8)]
    expected = [o.pk for o in sorted(orders, key=lambda o: (o.ordered_at, o.pk), reverse=True)]
    pages = _walk(api(sam), "/api/v1/orders/?page_size=3")
    assert [len(p) for p in pages] == [3, 3, 2]
    assert [pk for page in pages for pk in page] == expected


def test_previous_links_walk_back_to_the_first_page(api, sam):
    for _ in range(7):
        make_order()
    client = api(sam)
    forward = _walk(client, "/api/v1/orders/?page_size=3&ordering=id")
    last = client.get("/api/v1/orders/?page_size=3&ordering=id").json()
    while last["next"]:
        last = client.get(last["next"]).json()
    backward = _walk(client, last["previous"], key="previous")
    assert backward == list(reversed(forward[:-1]))


def test_each_ordering_is_total_and_keeps_other_parameters_in_the_links(api, sam):
    customer = CustomerFactory()
    mine = [make_order(customer=customer) for _ in range(5)]
    make_order()
    client = api(sam)
    for ordering in ("id", "-id", "ordered_at", "-updated_at", "number"):
        pages = _walk(client, f"/api/v1/orders/?customer={customer.pk}&ordering={ordering}&page_size=2")
        seen = [pk for page in pages for pk in page]
        assert sorted(seen) == sorted(o.pk for o in mine), ordering


def test_a_cursor_cannot_be_reused_with_another_ordering(api, sam):
    for _ in range(3):
        make_order()
    client = api(sam)
    next_url = client.get("/api/v1/orders/?page_size=1&ordering=id").json()["next"]
    cursor = dict(part.split("=") for part in urlsplit(next_url).query.split("&"))["cursor"]
    response = client.get(f"/api/v1/orders/?page_size=1&ordering=-id&cursor={cursor}")
    assert response.status_code == 400 and response.json()["code"] == "invalid_cursor"


def test_lists_never_count_rows_and_seek_with_a_row_value(api, sam):
    for _ in range(4):
        make_order()
    client = api(sam)
    next_url = client.get("/api/v1/orders/?page_size=2").json()["next"]
    with CaptureQueriesContext(connection) as queries:
        assert client.get(next_url, HTTP_CACHE_CONTROL="no-cache").status_code == 200
    sql = " ".join(q["sql"] for q in queries.captured_queries)
    assert "COUNT(" not in sql.upper()
    assert '("orders_order"."ordered_at", "orders_order"."id") < (' in sql


def test_a_deep_page_is_an_index_range_scan_without_sorting(api, sam):
    customer = CustomerFactory()
    start = timezone.now() - dt.timedelta(days=365)
    Order.objects.bulk_create([
        Order(number=f"BULK{i:07d}", customer=customer, ordered_at=start + dt.timedelta(minutes=i))
        for i in range(6000)
    ])
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE orders_order")
    client = api(sam)
    url = "/api/v1/orders/?page_size=50"
    for _ in range(3):
        url = client.get(url).json()["next"]
    cursor_value = dict(part.split("=", 1) for part in urlsplit(url).query.split("&"))["cursor"]
    request = Request(APIRequestFactory().get("/api/v1/orders/", {"cursor": cursor_value, "page_size": 50}))
    paginator = KeysetPagination()
    with CaptureQueriesContext(connection) as queries:
        paginator.paginate_queryset(Order.objects.all(), request, view=OrderViewSet())
    captured = [q["sql"] for q in queries.captured_queries if q["sql"].startswith("SELECT")]
    with connection.cursor() as cursor:
        cursor.execute("EXPLAIN (FORMAT JSON) " + captured[0])
        plan = json.dumps(cursor.fetchone()[0])
    assert "order_ordered_desc_idx" in plan
    assert '"Node Type": "Sort"' not in plan


def _plan_nodes(plan: dict):
    yield plan
    for child in plan.get("Plans", []):
        yield from _plan_nodes(child)


def test_a_deep_page_among_thousands_of_equal_dates_reads_only_its_own_rows(api, sam):
    """A migrated batch shares one ordered_at by the thousand, above years of older orders. A page
    inside that run must still seek on the (ordered_at, id) index with the row value as the index
    condition and stop after the page, not read the whole run through the ordered_at index,
    sort it and filter it."""
    customer = CustomerFactory()
    same_moment = timezone.now() - dt.timedelta(days=30)
    Order.objects.bulk_create(
        [Order(number=f"OLD{i:07d}", customer=customer, ordered_at=same_moment - dt.timedelta(minutes=3000 - i))
         for i in range(3000)]
        + [Order(number=f"TIE{i:07d}", customer=customer, ordered_at=same_moment) for i in range(6000)])
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE orders_order")
    run = list(Order.objects.filter(ordered_at=same_moment).order_by("-id").values_list("pk", flat=True))
    position = Cursor(ordering="-ordered_at", value=Order._meta.get_field("ordered_at").value_to_string(
        Order(ordered_at=same_moment)), pk=run[2000], backwards=False)
    request = Request(APIRequestFactory().get("/api/v1/orders/", {"cursor": KeysetPagination._encode(position)}))
    with CaptureQueriesContext(connection) as queries:
        rows = KeysetPagination().paginate_queryset(OrderViewSet.queryset.all(), request, view=OrderViewSet())
    assert [row.pk for row in rows] == run[2001:2051]
    seek = [q["sql"] for q in queries.captured_queries
            if '("orders_order"."ordered_at", "orders_order"."id") < (' in q["sql"]]
    with connection.cursor() as cursor:
        cursor.execute("EXPLAIN (ANALYZE, FORMAT JSON) " + seek[0])
        nodes = list(_plan_nodes(cursor.fetchone()[0][0]["Plan"]))
    scans = [n for n in nodes if n.get("Relation Name") == "orders_order"]; print([(n["Node Type"], n.get("Index Name"), n.get("Actual Rows"), n.get("Rows Removed by Filter")) for n in nodes])
    assert [n.get("Index Name") for n in scans] == ["order_ordered_desc_idx"]
    assert "ROW(ordered_at, id) < ROW(" in scans[0]["Index Cond"]
    assert scans[0]["Actual Rows"] == 51 and not scans[0].get("Rows Removed by Filter")
    assert not [n["Node Type"] for n in nodes if "Sort" in n["Node Type"]]


def test_filters_integrators_need(api, sam, django_capture_on_commit_callbacks):
    alpha, beta = CustomerFactory(), CustomerFactory()
    old = make_order(customer=alpha, ordered_at=timezone.now() - dt.timedelta(days=40), po_number="PO-OLD")
    confirmed = make_confirmed_order(customer=beta, currency="EUR")
    Order.objects.filter(pk=old.pk).update(legacy_id=4711)
    client = api(sam)

    def ids(query: str) -> set[int]:
        response = client.get(f"/api/v1/orders/?{query}")
        assert response.status_code == 200, response.content
        return {row["id"] for row in response.json()["results"]}

    assert ids("status=confirmed") == {confirmed.pk}
    assert ids("status=confirmed&status=pending") == {old.pk, confirmed.pk}
    assert ids(f"customer={alpha.pk}") == {old.pk}
    assert ids("currency=EUR") == {confirmed.pk}
    cutoff = (timezone.now() - dt.timedelta(days=30)).isoformat().replace("+00:00", "Z")
    assert ids(f"ordered_before={cutoff}") == {old.pk}
    assert ids(f"ordered_after={cutoff}") == {confirmed.pk}
    since = timezone.now().isoformat().replace("+00:00", "Z")
    assert ids(f"updated_since={since}") == set()
    # A write that bypasses the services (as the legacy migration's bulk upserts do) bumps the cache
    # itself; the bump runs on commit, which this test's transaction stands in for.
    with django_capture_on_commit_callbacks(execute=True):
        Order.objects.filter(pk=old.pk).update(updated_at=timezone.now() + dt.timedelta(seconds=5))
        bump_all()
    assert ids(f"updated_since={since}") == {old.pk}
    assert ids("legacy_id=4711") == {old.pk}
    assert ids(f"number={confirmed.number}") == {confirmed.pk}
    assert ids("search=PO-OL") == {old.pk}
    assert ids(f"search={confirmed.number.lower()}") == {confirmed.pk}
