"""reconcile: a clean migration validates; every kind of seeded discrepancy is found, exactly."""

from __future__ import annotations

import datetime as dt
import io
import json
from decimal import Decimal

import pytest
from django.core.management import call_command
from django.db import connections
from django.db.models import F

from legacy_migration.models import Discrepancy, Reconciliation, ReconciliationStatus
from legacy_migration.reconcile import entity_states
from orders.models import Customer, Order, OrderLine
from tests.legacy_migration import legacy_db
from tests.legacy_migration.test_migrate_legacy import migrate

pytestmark = pytest.mark.django_db(transaction=True, databases=["default", "legacy"])


def reconcile(*args: str) -> tuple[int, dict]:
    out = io.StringIO()
    try:
        call_command("reconcile", "--no-progress", "--json", "--batch-size", "17", *args, stdout=out,
                     stderr=io.StringIO())
        code = 0
    except SystemExit as exit_:
        code = exit_.code
    return code, json.loads(out.getvalue())


def found(report: dict) -> set:
    return {(d["entity"], d["legacy_key"], d["kind"], tuple(sorted(d["fields"]))) for d in report["discrepancies"]}


def legacy_sql(sql: str, params=()) -> None:
    with connections["legacy"].cursor() as cursor:
        cursor.execute(sql, list(params))


@pytest.fixture
def migrated():
    expected = legacy_db.build("legacy")
    migrate("legacy", "--batch-size", "13")
    return expected


def test_a_clean_migration_validates_with_no_false_positive(migrated):
    code, report = reconcile()
    assert code == 0 and report["status"] == ReconciliationStatus.VALIDATED, report["discrepancies"][:5]
    figures = report["figures"]
    assert figures["orders"]["matched"] == len(migrated.orders)
    assert figures["orders"]["excluded"] == len(migrated.orders_excluded)
    assert figures["orders"]["rejected"] == len(migrated.orders_rejected)
    assert figures["orders"]["missing"] == 0  # excluded and rejected are never reported missing
    assert figures["order_line"]["matched"] == 2 * len(migrated.orders)
    assert figures["order_line"]["rejected"] == len(migrated.orphan_order_lines)
    assert figures["invoices"]["matched"] == len(migrated.invoices)
    assert all(t["difference"] == "0.00" for t in report["control_totals"])
    assert {t["entity"] for t in report["control_totals"]} == {"orders", "invoices"}


def test_finds_every_kind_of_discrepancy_exactly(migrated):
    orders = sorted(migrated.orders)
    uninvoiced = [o for o in orders if o > 60]  # invoices bill orders 1..60
    missing, gone, cents, status, text, shifted, line_changed, line_extra, line_missing = uninvoiced[:9]
    # missing in modern
    OrderLine.objects.filter(order__legacy_id=missing).delete()
    Order.objects.filter(legacy_id=missing).delete()
    # modern record whose legacy source is gone
    legacy_sql('DELETE FROM "ORDDTL" WHERE "ORD_NO" = %s', [gone])
    legacy_sql('DELETE FROM "ORDHDR" WHERE "ORD_NO" = %s', [gone])
    # field differences in modern
    Order.objects.filter(legacy_id=cents).update(total=F("total") + Decimal("0.01"))
    Order.objects.filter(legacy_id=status).update(status="shipped")
    Order.objects.filter(legacy_id=text).update(notes="note (edited)")
    Order.objects.filter(legacy_id=shifted).update(ordered_at=F("ordered_at") + dt.timedelta(hours=1))
    OrderLine.objects.filter(order__legacy_id=line_changed, line_number=2).update(quantity=Decimal("1.001"))
    source = OrderLine.objects.get(order__legacy_id=line_extra, line_number=2)
    OrderLine.objects.create(order=source.order, line_number=3, sku="SKU-3", quantity=1, unit_price=1, line_total=1)
    OrderLine.objects.filter(order__legacy_id=line_missing, line_number=1).delete()
    # '' versus NULL, and padding the mapping absorbs: no discrepancy
    legacy_sql('UPDATE "CUSTMAST" SET "PHONE" = NULL, "ADDR_LINE2" = NULL, "CUST_NAME" = %s WHERE "CUST_ID" = 3',
               ["Customer 3 Café      "])
    Customer.objects.filter(legacy_id=3).update(phone="")
    # a case-only change the mapping does not absorb, and a trailing space in modern
    legacy_sql('UPDATE "CUSTMAST" SET "CUST_NAME" = %s WHERE "CUST_ID" = 4', ["CUSTOMER 4 CAFÉ"])
    Customer.objects.filter(legacy_id=6).update(name="Customer 6 Café ")
    # a legacy record that is now rejected by rule, but is in modern
    legacy_sql('UPDATE "ORDHDR" SET "ORD_STATUS" = %s WHERE "ORD_NO" = %s', ["X", orders[0]])

    code, report = reconcile()
    assert code == 1 and report["status"] == ReconciliationStatus.MISMATCHED
    assert found(report) == {
        ("order", str(missing), "missing", ()),
        ("order", str(gone), "extra", ()),
        ("order", str(cents), "differs", ("total",)),
        ("order", str(status), "differs", ("status",)),
        ("order", str(text), "differs", ("notes",)),
        ("order", str(shifted), "differs", ("ordered_at",)),
        ("order_line", f"{line_changed}/2", "differs", ("quantity",)),
        ("order_line", f"{line_extra}/3", "extra", ()),
        ("order_line", f"{line_missing}/1", "missing", ()),
        ("customer", "4", "differs", ("name",)),
        ("customer", "6", "differs", ("name",)),
        ("order", str(orders[0]), "not_expected", ("rule",)),
    }
    cents_discrepancy = next(d for d in report["discrepancies"] if d["legacy_key"] == str(cents))
    assert cents_discrepancy["fields"]["total"] == {"legacy": "37.40", "modern": "37.41"}
    wrong = [t for t in report["control_totals"] if t["difference"] != "0.00"]
    assert wrong and {t["entity"] for t in wrong} == {"orders"}


def test_a_changed_control_total_is_reported_with_both_sides(migrated):
    order = Order.objects.get(legacy_id=max(migrated.orders))
    Order.objects.filter(pk=order.pk).update(total=order.total + Decimal("100.00"))
    code, report = reconcile("--entities", "orders")
    month = [t for t in report["control_totals"] if t["difference"] != "0.00"]
    assert code == 1 and len(month) == 1
    assert month[0]["month"] == "2023-11" and month[0]["difference"] == "100.00"
    assert Decimal(month[0]["modern_amount"]) - Decimal(month[0]["legacy_amount"]) == Decimal("100.00")


def test_restricts_to_a_key_range(migrated):
    Order.objects.filter(legacy_id=max(migrated.orders)).update(status="shipped")
    code, report = reconcile("--entities", "orders", "--keys", "1:20")
    assert code == 0 and report["figures"]["orders"]["legacy"] == 20
    assert report["control_totals"] == []  # control totals belong to full reconciliations


def test_each_entity_has_a_state_at_a_glance(migrated):
    assert {s["entity"]: s["state"] for s in entity_states()}["orders"] == "not yet checked"
    Order.objects.filter(legacy_id=max(migrated.orders)).update(status="shipped")
    reconcile()
    states = {s["entity"]: s for s in entity_states()}
    assert states["orders"]["state"] == "mismatched" and states["orders"]["findings"] == 1
    assert states["customers"]["state"] == "validated"
    assert Reconciliation.objects.count() == 1 and Discrepancy.objects.count() == 1
