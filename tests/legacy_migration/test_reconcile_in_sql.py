"""The comparison in PostgreSQL: it finds exactly what the comparison in Python finds, and takes the
range checksums a cold run stores from the very rows it compares."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from django.db.models import F

from legacy_migration import reconcile
from legacy_migration.checksums import Span
from legacy_migration.models import ControlTotal, Discrepancy, Entity, Reconciliation
from legacy_migration.reconcile import SPECS, Reconciler
from orders.models import Customer, Order, OrderLine
from tests.legacy_migration import legacy_db
from tests.legacy_migration.test_migrate_legacy import migrate
from tests.legacy_migration.test_reconcile import legacy_sql

pytestmark = pytest.mark.django_db(transaction=True, databases=["default", "legacy"])


@pytest.fixture
def migrated():
    expected = legacy_db.build("legacy")
    migrate("legacy", "--batch-size", "13")
    return expected


def run(**options):
    reconciliation = Reconciler(batch_size=17, range_size=5, checksums=False, **options).run()
    discrepancies = sorted((d.entity, d.legacy_key, d.kind, repr(d.fields), repr(d.legacy), repr(d.modern))
                           for d in Discrepancy.objects.filter(reconciliation=reconciliation))
    totals = sorted((t.entity, t.currency, t.month, t.legacy_count, t.legacy_amount, t.modern_count, t.modern_amount)
                    for t in ControlTotal.objects.filter(reconciliation=reconciliation))
    return reconciliation.status, reconciliation.figures, discrepancies, totals


def test_comparing_in_postgresql_finds_exactly_what_comparing_in_python_finds(migrated):
    orders = sorted(migrated.orders)
    uninvoiced = [o for o in orders if o > 60]
    missing, gone, cents, status, blanked, shifted, line_changed, line_extra, line_missing = uninvoiced[:9]
    OrderLine.objects.filter(order__legacy_id=missing).delete()
    Order.objects.filter(legacy_id=missing).delete()
    legacy_sql('DELETE FROM "ORDDTL" WHERE "ORD_NO" = %s', [gone])
    legacy_sql('DELETE FROM "ORDHDR" WHERE "ORD_NO" = %s', [gone])
    Order.objects.filter(legacy_id=cents).update(total=F("total") + Decimal("0.01"))
    Order.objects.filter(legacy_id=status).update(status="shipped")
    Order.objects.filter(legacy_id=blanked).update(notes="", po_number="")  # '' where legacy says NULL, or ''
    legacy_sql('UPDATE "ORDHDR" SET "NOTES" = NULL, "PO_NUMBER" = %s WHERE "ORD_NO" = %s', ["  ", blanked])
    Order.objects.filter(legacy_id=shifted).update(ordered_at=F("ordered_at") + dt.timedelta(microseconds=1))
    OrderLine.objects.filter(order__legacy_id=line_changed, line_number=2).update(quantity=Decimal("1.001"))
    source = OrderLine.objects.get(order__legacy_id=line_extra, line_number=2)
    OrderLine.objects.create(order=source.order, line_number=3, sku="SKU-3", quantity=1, unit_price=1, line_total=1)
    OrderLine.objects.filter(order__legacy_id=line_missing, line_number=1).delete()
    Customer.objects.filter(legacy_id=3).update(phone="")
    legacy_sql('UPDATE "CUSTMAST" SET "PHONE" = NULL WHERE "CUST_ID" = 3')
    Customer.objects.filter(legacy_id=6).update(name="Customer 6 Café ")
    legacy_sql('UPDATE "ORDHDR" SET "ORD_STATUS" = %s WHERE "ORD_NO" = %s', ["X", orders[0]])

    in_python = run(compare_in_sql=False)
    in_sql = run(compare_in_sql=True)
    assert in_sql == in_python
    found = {(d[0], d[1], d[2]) for d in in_sql[2]}
    assert {("order", str(cents), "differs"), ("order", str(shifted), "differs"), ("order", str(gone), "extra"),
            ("order_line", f"{line_extra}/3", "extra"), ("order_line", f"{line_missing}/1", "missing"),
            ("order", str(missing), "missing"), ("order", str(orders[0]), "not_expected")} <= found
    assert ("order", str(blanked), "differs") not in found  # '' and NULL are the same in SQL too
    assert ("customer", "3", "differs") not in found


def test_a_span_whose_values_the_copy_refuses_is_compared_in_python_with_the_same_findings(migrated, monkeypatch):
    order = min(migrated.orders)
    Order.objects.filter(legacy_id=order).update(total=F("total") + Decimal("1.00"))
    expected = run(compare_in_sql=False)

    def refuse(self, obj):
        raise TypeError("refused")

    monkeypatch.setattr(reconcile._DecimalAsText, "dump", refuse)
    assert run(compare_in_sql=True) == expected
    assert [(d[0], d[1], d[2]) for d in expected[2]] == [("order", str(order), "differs")]


@pytest.mark.parametrize("entity", [Entity.CUSTOMERS, Entity.ORDERS, Entity.INVOICES])
def test_a_cold_run_takes_the_same_checksums_from_its_reads_as_the_checksum_pass(migrated, entity):
    legacy_sql('DELETE FROM "ORDHDR" WHERE "ORD_NO" = %s', [max(migrated.orders)])  # its lines are now orphans
    reconciler = Reconciler(entities=[entity], batch_size=17, range_size=5)
    spec = SPECS[entity]
    step = reconciler._step(spec)
    jobs = list(reconciler._planned_jobs(spec, step, after=None, position=1, store=True))
    reconciler.reconciliation = Reconciliation.objects.create(started_by="test")
    assert len(jobs) > 1
    for job in jobs:
        span = Span(job.after, job.uppers)
        legacy, modern, counts, _ = reconciler._checksums(spec, step, span)
        taken = {}
        reconciler._compare_span(spec, step, span, checksum=taken)
        assert (taken["legacy"], taken["modern"], taken["counts"]) == (legacy, modern, counts)
