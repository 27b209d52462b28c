"""The migration's reports over the API, read-only: runs and issues, reconciliations with their
figures, discrepancies, control totals, entity states, shadow mismatches and shadow-read counts.

Migration operators and auditors read them; every other role gets 403, anonymous callers 401.
"""

from __future__ import annotations

import io
from decimal import Decimal

import pytest
from django.core.management import call_command
from django.db.models import F

from legacy_migration import shadow
from legacy_migration.models import (
    ControlTotal,
    Discrepancy,
    DiscrepancyKind,
    IssueKind,
    MigrationIssue,
    MigrationRun,
    Reconciliation,
    ReconciliationStatus,
    RunStatus,
    ShadowMismatch,
    ShadowOrigin,
)
from orders.models import Order
from tests.legacy_migration import legacy_db
from tests.legacy_migration.test_migrate_legacy import migrate

EVERYONE = ["alice", "sam", "bill", "otto", "audrey", "nora", None]
#: Read off oms/roles.py by hand, on purpose (as test_permissions.py does): MIGRATION_VIEW.
REPORT_READERS = {"alice", "otto", "audrey"}


@pytest.fixture
def evidence(db):
    """One record of each kind, as migrate_legacy, reconcile and the shadow reads write them."""
    run = MigrationRun.objects.create(
        started_by="otto", options={"entities": ["orders"], "batch_size": 5000}, fingerprint="f" * 64,
        legacy_vendor="sqlite", status=RunStatus.SUCCEEDED, planned_entities=["orders"], seconds=1.5,
        summary={"orders": {"read": 3, "inserted": 2, "updated": 0, "unchanged": 0, "excluded": 0, "rejected": 1,
                            "warned": 0, "seconds": 1.25, "planned": 3}})
    issue = MigrationIssue.objects.create(
        run=run, entity="order", legacy_key="9", kind=IssueKind.REJECTION, rule="orphan_customer",
        message="Order 9 points at customer 77, which does not exist in the legacy database.",
        raw={"ORD_NO": 9, "CUST_ID": 77, "lines": [{"LINE_NO": 1, "QTY_ORD": "1.000"}]})
    MigrationIssue.objects.create(run=run, entity="order", legacy_key="8", kind=IssueKind.WARNING,
                                  rule="no_lines", message="Order 8 has no lines in ORDDTL.", raw={"ORD_NO": 8})
    reconciliation = Reconciliation.objects.create(
        started_by="otto", scope={"entities": ["orders"], "since": None, "keys": None},
        status=ReconciliationStatus.MISMATCHED, seconds=0.75, message="1 discrepancy; control totals disagree",
        figures={"orders": {"legacy": 3, "modern": 2, "matched": 1, "missing": 0, "extra": 0, "differs": 1,
                            "not_expected": 0, "excluded": 0, "rejected": 1},
                 "order_line": {"legacy": 4, "modern": 4, "matched": 4, "missing": 0, "extra": 0, "differs": 0,
                                "not_expected": 0, "excluded": 0, "rejected": 0}})
    discrepancy = Discrepancy.objects.create(
        reconciliation=reconciliation, entity="order", legacy_key="7", kind=DiscrepancyKind.DIFFERS,
        fields={"total": {"legacy": "37.40", "modern": "37.41"}},
        legacy={"legacy_id": 7, "total": "37.40"}, modern={"legacy_id": 7, "total": "37.41"})
    agreeing = ControlTotal.objects.create(reconciliation=reconciliation, entity="orders", currency="USD",
                                           month="2023-11-01", legacy_count=2, legacy_amount=Decimal("74.80"),
                                           modern_count=2, modern_amount=Decimal("74.80"))
    disagreeing = ControlTotal.objects.create(reconciliation=reconciliation, entity="orders", currency="USD",
                                              month="2023-12-01", legacy_count=1, legacy_amount=Decimal("37.40"),
                                              modern_count=1, modern_amount=Decimal("37.41"))
    mismatch = ShadowMismatch.objects.create(
        resource="orders", record_id=42, legacy_key="7", digest="d" * 64, origin=ShadowOrigin.LIVE,
        fields={"notes": {"legacy": "note", "modern": "edited"}}, legacy={"id": 42, "notes": "note"},
        modern={"id": 42, "notes": "edited"}, path="/api/v1/orders/42/")
    return {"run": run, "issue": issue, "reconciliation": reconciliation, "discrepancy": discrepancy,
            "agreeing": agreeing, "disagreeing": disagreeing, "mismatch": mismatch}


def report_paths(evidence) -> list[str]:
    return [
        "/api/v1/migration/runs/", f"/api/v1/migration/runs/{evidence['run'].pk}/",
        "/api/v1/migration/issues/", f"/api/v1/migration/issues/{evidence['issue'].pk}/",
        "/api/v1/migration/reconciliations/", f"/api/v1/migration/reconciliations/{evidence['reconciliation'].pk}/",
        "/api/v1/migration/discrepancies/", f"/api/v1/migration/discrepancies/{evidence['discrepancy'].pk}/",
        "/api/v1/migration/control-totals/", f"/api/v1/migration/control-totals/{evidence['agreeing'].pk}/",
        "/api/v1/migration/entity-states/",
        "/api/v1/migration/shadow-mismatches/", f"/api/v1/migration/shadow-mismatches/{evidence['mismatch'].pk}/",
        "/api/v1/migration/shadow-reads/",
    ]


@pytest.mark.parametrize("username", EVERYONE)
def test_only_migration_operators_and_auditors_read_the_reports(username, request, api, evidence):
    user = request.getfixturevalue(username) if username else None
    expected = 401 if user is None else 200 if username in REPORT_READERS else 403
    client = api(user)
    for path in report_paths(evidence):
        response = client.get(path)
        assert response.status_code == expected, (username, path, response.content[:200])
        if expected != 200:
            assert "results" not in response.json() and "figures" not in response.json()


def test_the_reports_are_read_only(api, alice, evidence):
    client = api(alice)
    for path in report_paths(evidence):
        assert client.post(path, {}, format="json").status_code == 405, path
        if path.endswith(f"/{evidence['discrepancy'].pk}/"):
            assert client.delete(path).status_code == 405
            assert client.patch(path, {"kind": "missing"}, format="json").status_code == 405
    assert Discrepancy.objects.get().kind == DiscrepancyKind.DIFFERS


def test_a_reconciliation_comes_with_its_figures_and_what_disagrees(api, audrey, evidence):
    reconciliation = evidence["reconciliation"]
    body = api(audrey).get(f"/api/v1/migration/reconciliations/{reconciliation.pk}/").json()
    assert body["status"] == "mismatched" and body["message"] == reconciliation.message
    assert body["figures"] == reconciliation.figures
    assert body["discrepancies"] == Discrepancy.objects.filter(reconciliation=reconciliation).count()
    assert body["control_totals_disagreeing"] == sum(
        not t.agrees for t in ControlTotal.objects.filter(reconciliation=reconciliation))
    listed = api(audrey).get("/api/v1/migration/reconciliations/", {"status": "mismatched"}).json()["results"]
    assert [r["id"] for r in listed] == [reconciliation.pk]
    assert api(audrey).get("/api/v1/migration/reconciliations/", {"status": "validated"}).json()["results"] == []


def test_discrepancies_carry_the_differing_fields_and_both_sides(api, otto, evidence):
    discrepancy = evidence["discrepancy"]
    client = api(otto)
    listed = client.get("/api/v1/migration/discrepancies/",
                        {"reconciliation": discrepancy.reconciliation_id, "kind": "differs"}).json()["results"]
    assert listed == [{"id": discrepancy.pk, "reconciliation": discrepancy.reconciliation_id, "entity": "order",
                       "legacy_key": "7", "kind": "differs", "fields": discrepancy.fields,
                       "legacy": discrepancy.legacy, "modern": discrepancy.modern}]
    assert client.get("/api/v1/migration/discrepancies/", {"kind": "missing"}).json()["results"] == []
    unknown = client.get("/api/v1/migration/discrepancies/", {"kindd": "missing"})
    assert unknown.status_code == 400 and unknown.json()["field"] == "kindd"


def test_control_totals_show_both_sides_and_the_difference(api, otto, evidence):
    rows = api(otto).get("/api/v1/migration/control-totals/",
                         {"reconciliation": evidence["reconciliation"].pk}).json()["results"]
    by_month = {row["month"]: row for row in rows}
    wrong = evidence["disagreeing"]
    assert set(by_month) == {"2023-11-01", "2023-12-01"}
    assert by_month["2023-12-01"] | {"id": None} == {
        "id": None, "reconciliation": evidence["reconciliation"].pk, "entity": "orders", "currency": "USD",
        "month": "2023-12-01", "legacy_count": wrong.legacy_count, "legacy_amount": str(wrong.legacy_amount),
        "modern_count": wrong.modern_count, "modern_amount": str(wrong.modern_amount),
        "difference": str(wrong.difference), "agrees": False}
    assert by_month["2023-11-01"]["agrees"] is True and by_month["2023-11-01"]["difference"] == "0.00"


def test_runs_and_their_issues_with_the_legacy_values_as_read(api, otto, evidence):
    run, issue = evidence["run"], evidence["issue"]
    client = api(otto)
    body = client.get(f"/api/v1/migration/runs/{run.pk}/").json()
    assert (body["status"], body["summary"], body["options"]) == ("succeeded", run.summary, run.options)
    issues = client.get("/api/v1/migration/issues/", {"run": run.pk, "kind": "rejection"}).json()["results"]
    assert [(i["legacy_key"], i["rule"], i["raw"]) for i in issues] == [(issue.legacy_key, issue.rule, issue.raw)]
    page = client.get("/api/v1/migration/issues/", {"run": run.pk, "page_size": 1}).json()
    assert len(page["results"]) == 1 and page["next"]
    rest = client.get(page["next"]).json()
    assert [i["id"] for i in page["results"] + rest["results"]] == sorted(
        MigrationIssue.objects.filter(run=run).values_list("id", flat=True))


def test_shadow_mismatches_and_the_counts_of_shadow_reads(api, audrey, evidence, settings):
    mismatch = evidence["mismatch"]
    client = api(audrey)
    listed = client.get("/api/v1/migration/shadow-mismatches/", {"resource": "orders"}).json()["results"]
    assert [(m["id"], m["fields"], m["legacy"], m["modern"], m["path"]) for m in listed] == [
        (mismatch.pk, mismatch.fields, mismatch.legacy, mismatch.modern, mismatch.path)]
    assert client.get("/api/v1/migration/shadow-mismatches/", {"resource": "invoices"}).json()["results"] == []

    settings.READ_SOURCE_INVOICES, settings.SHADOW_SAMPLE_RATE = "shadow", 0.25
    shadow.counters.reset()
    shadow.counters.add("invoices", "timeout", 2)
    shadow.counters.add("invoices", "matched", 3)
    shadow.counters.flush()
    shadow.counters.add("invoices", "dropped")  # not flushed yet: this process still shows it
    rows = {row["resource"]: row for row in client.get("/api/v1/migration/shadow-reads/").json()}
    assert rows["invoices"]["read_source"] == "shadow" and rows["orders"]["read_source"] == "modern"
    assert rows["invoices"]["sample_rate"] == 0.25
    assert {k: v for k, v in rows["invoices"]["counts"].items() if v} == {"timeout": 2, "matched": 3, "dropped": 1}
    shadow.counters.reset()


@pytest.mark.django_db(transaction=True, databases=["default", "legacy"])
def test_entity_states_and_findings_of_a_real_reconciliation(api, otto):
    expected = legacy_db.build("legacy")
    migrate("legacy", "--batch-size", "13")
    changed = max(expected.orders)
    Order.objects.filter(legacy_id=changed).update(total=F("total") + Decimal("1.00"))
    try:
        call_command("reconcile", "--no-progress", "--json", stdout=io.StringIO(), stderr=io.StringIO())
    except SystemExit as exit_:
        assert exit_.code == 1
    reconciliation = Reconciliation.objects.get()
    client = api(otto)

    states = {s["entity"]: s for s in client.get("/api/v1/migration/entity-states/").json()}
    assert states["orders"] == {"entity": "orders", "state": "mismatched", "reconciliation": reconciliation.pk,
                                "findings": 1, "figures": reconciliation.figures["orders"]}
    assert states["customers"]["state"] == "validated" and states["customers"]["findings"] == 0
    found = client.get("/api/v1/migration/discrepancies/", {"reconciliation": reconciliation.pk}).json()["results"]
    assert [(d["entity"], d["legacy_key"], d["kind"], list(d["fields"])) for d in found] == [
        ("order", str(changed), "differs", ["total"])]
    totals = client.get("/api/v1/migration/control-totals/", {"reconciliation": reconciliation.pk}).json()["results"]
    assert [t["difference"] for t in totals if not t["agrees"]] == ["1.00"]
    body = client.get(f"/api/v1/migration/reconciliations/{reconciliation.pk}/").json()
    assert body["discrepancies"] == 1 and body["control_totals_disagreeing"] == 1
    runs = client.get("/api/v1/migration/runs/").json()["results"]
    assert [r["status"] for r in runs] == ["succeeded"]
    assert runs[0]["summary"]["orders"]["inserted"] == len(expected.orders)
