"""The migration's runs and issues in the admin: visible to operators and auditors, read-only."""

from __future__ import annotations

import pytest
from django.urls import reverse

from legacy_migration.models import MigrationIssue, MigrationRun, SetAsideIndex
from tests.legacy_migration import legacy_db
from tests.legacy_migration.test_migrate_legacy import migrate

pytestmark = pytest.mark.django_db(transaction=True, databases=["default", "legacy"])


@pytest.fixture
def migrated():
    expected = legacy_db.build("legacy")
    migrate("legacy")
    return expected


def test_operators_and_auditors_see_runs_with_their_figures(migrated, otto, audrey, client_for):
    run = MigrationRun.objects.get()
    for user in (otto, audrey):
        client = client_for(user)
        listing = client.get(reverse("admin:legacy_migration_migrationrun_changelist"))
        assert listing.status_code == 200 and f"{len(migrated.orders_rejected) + 2}" in listing.content.decode()
        detail = client.get(reverse("admin:legacy_migration_migrationrun_change", args=[run.pk]))
        page = detail.content.decode()
        assert detail.status_code == 200
        assert "inserted" in page and f"{len(migrated.orders):,}" in page


def test_every_rejection_is_listed_with_its_rule_and_raw_values(migrated, otto, client_for):
    client = client_for(otto)
    url = reverse("admin:legacy_migration_migrationissue_changelist")
    page = client.get(url, {"kind__exact": "rejection", "entity__exact": "order"}).content.decode()
    for key in migrated.orders_rejected:
        assert f">{key}<" in page
    issue = MigrationIssue.objects.get(entity="order", rule="bad_quantity", legacy_key="9")
    detail = client.get(reverse("admin:legacy_migration_migrationissue_change", args=[issue.pk])).content.decode()
    assert "QTY_ORD" in detail and "0.000" in detail and "must be more than 0" in detail


def test_issues_export_to_csv_with_the_current_filter(migrated, audrey, client_for):
    response = client_for(audrey).get(reverse("admin:legacy_migration_migrationissue_export_csv"),
                                      {"rule__exact": "soft_deleted"})
    body = b"".join(response.streaming_content).decode("utf-8-sig")
    rows = body.strip().splitlines()
    assert rows[0].startswith("run,entity,legacy key")
    assert len(rows) - 1 == len(migrated.orders_excluded)


def test_nobody_can_edit_or_delete_migration_evidence(migrated, alice, client_for):
    client = client_for(alice)
    issue = MigrationIssue.objects.first()
    assert client.get(reverse("admin:legacy_migration_migrationissue_add")).status_code == 403
    assert client.post(reverse("admin:legacy_migration_migrationissue_delete", args=[issue.pk])).status_code == 403
    assert MigrationIssue.objects.filter(pk=issue.pk).exists()


@pytest.mark.parametrize("user", ["sam", "nora"])
def test_staff_without_a_migration_role_cannot_see_runs(migrated, user, client_for, request):
    response = client_for(request.getfixturevalue(user)).get(reverse("admin:legacy_migration_migrationrun_changelist"))
    assert response.status_code == 403


def test_operators_and_auditors_see_which_indexes_a_first_load_set_aside_and_cannot_change_them(
        migrated, otto, audrey, client_for):
    run = MigrationRun.objects.get()
    aside = SetAsideIndex.objects.filter(run=run)
    assert aside.exists() and not aside.filter(rebuilt_at__isnull=True).exists()
    for user in (otto, audrey):
        client = client_for(user)
        detail = client.get(reverse("admin:legacy_migration_migrationrun_change", args=[run.pk])).content.decode()
        assert f"{aside.filter(kind='index').count()} indexes and" in detail and "all built again" in detail
        listing = client.get(reverse("admin:legacy_migration_setasideindex_changelist"),
                             {"table_name__exact": "orders_orderline"})
        assert listing.status_code == 200 and "order_line_sku_idx" in listing.content.decode()
        one = aside.first()
        assert client.post(reverse("admin:legacy_migration_setasideindex_delete", args=[one.pk])).status_code == 403
    assert SetAsideIndex.objects.filter(run=run).count() == aside.count()
