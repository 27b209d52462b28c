"""Reconciliation as staff use it: dashboard, drill-down, exports, and re-migrating what differs."""

from __future__ import annotations

import json

import pytest
from django.urls import reverse

from legacy_migration.models import Discrepancy, MigrationRun, Reconciliation, ReconciliationStatus
from orders.models import Order
from tests.legacy_migration import legacy_db
from tests.legacy_migration.test_migrate_legacy import migrate
from tests.legacy_migration.test_reconcile import reconcile

pytestmark = pytest.mark.django_db(transaction=True, databases=["default", "legacy"])


@pytest.fixture
def mismatched():
    expected = legacy_db.build("legacy")
    migrate("legacy")
    reconcile()  # a clean one first: the chart then has a green bar and a red one
    key = max(expected.orders)
    Order.objects.filter(legacy_id=key).update(status="shipped", notes="typed over")
    code, _ = reconcile()
    assert code == 1
    return key


def test_the_dashboard_shows_each_entity_state_the_history_and_control_totals(mismatched, audrey, client_for):
    page = client_for(audrey).get(reverse("admin:legacy_migration_reconciliation_dashboard")).content.decode()
    assert "mismatched" in page and "validated" in page
    assert page.count("<rect") == 2 and "#b3261e" in page and "#3a7d44" in page
    assert "All " in page and "agree" in page  # the status change moved no amount


def test_the_drill_down_puts_legacy_beside_modern_and_marks_what_differs(mismatched, otto, client_for):
    discrepancy = Discrepancy.objects.get(legacy_key=str(mismatched))
    assert set(discrepancy.fields) == {"status", "notes"}
    page = client_for(otto).get(reverse("admin:legacy_migration_discrepancy_change",
                                        args=[discrepancy.pk])).content.decode()
    assert page.count('style="background:#fde7e9"') == 2
    assert "&#x27;confirmed&#x27;" in page and "&#x27;shipped&#x27;" in page


def test_discrepancies_export_as_csv_and_json(mismatched, audrey, client_for):
    client = client_for(audrey)
    csv_body = b"".join(client.get(reverse("admin:legacy_migration_discrepancy_export_csv")).streaming_content)
    assert str(mismatched) in csv_body.decode("utf-8-sig")
    data = json.loads(client.get(reverse("admin:legacy_migration_discrepancy_export_json")).content)
    assert [d["legacy_key"] for d in data["discrepancies"]] == [str(mismatched)]
    assert data["discrepancies"][0]["fields"]["status"] == {"legacy": "confirmed", "modern": "shipped"}


def test_re_migrating_the_selected_records_puts_them_right_and_reconciles_them_again(mismatched, otto, client_for):
    discrepancy = Discrepancy.objects.get(legacy_key=str(mismatched))
    response = client_for(otto).post(reverse("admin:legacy_migration_discrepancy_changelist"),
                                     {"action": "remigrate", "_selected_action": [discrepancy.pk]}, follow=True)
    assert "Re-migrated 1 record(s)" in response.content.decode()
    assert Order.objects.get(legacy_id=mismatched).status == "confirmed"
    latest = Reconciliation.objects.order_by("-id").first()
    assert latest.status == ReconciliationStatus.VALIDATED and latest.scope["keys"] == {"orders": [[str(mismatched)] * 2]}
    assert MigrationRun.objects.order_by("-id").first().options["keys"] == [str(mismatched)]


def test_auditors_read_reports_but_cannot_re_migrate(mismatched, audrey, client_for):
    discrepancy = Discrepancy.objects.get(legacy_key=str(mismatched))
    client = client_for(audrey)
    listing = client.get(reverse("admin:legacy_migration_discrepancy_changelist")).content.decode()
    assert "remigrate" not in listing
    client.post(reverse("admin:legacy_migration_discrepancy_changelist"),
                {"action": "remigrate", "_selected_action": [discrepancy.pk]})
    assert Order.objects.get(legacy_id=mismatched).status == "shipped"


def test_sales_staff_cannot_see_reconciliations(mismatched, sam, client_for):
    assert client_for(sam).get(reverse("admin:legacy_migration_reconciliation_dashboard")).status_code == 403
