"""The migration, as staff see it: runs with their figures, the work items, every issue.

Everything here is read-only: a run is started by `manage.py migrate_legacy` (the operator's
terminal, cron or a pipeline), and its records are evidence, never edited. Migration operators
and auditors have view permission (oms/roles.py).
"""

from __future__ import annotations

from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.db.models import Count, Q
from django.http import JsonResponse
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.html import format_html, format_html_join
from django.utils.safestring import mark_safe

from legacy_migration import set_aside
from legacy_migration.models import (
    Discrepancy,
    IssueKind,
    MigrationIssue,
    MigrationRun,
    Reconciliation,
    ReconciliationStatus,
    SetAsideIndex,
    WorkItem,
)
from legacy_migration.reconcile import FIGURES, FINDINGS, entity_states
from legacy_migration.runner import COUNTERS, LegacyUnavailable
from legacy_migration.services import record_keys, remigrate_records
from oms.admin_tools import CsvColumn, CsvExportAdmin, LargeTableAdmin, admin_url


class ReadOnlyAdmin(admin.ModelAdmin):
    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(MigrationRun)
class MigrationRunAdmin(ReadOnlyAdmin):
    list_display = ["id", "started_at", "status", "started_by", "entities", "dry_run", "records_read", "duration",
                    "rate", "issue_links"]
    list_filter = ["status", "dry_run", "legacy_vendor", "started_at"]
    date_hierarchy = "started_at"
    search_fields = ["started_by", "message"]
    fields = ["status", "message", "started_at", "finished_at", "started_by", "legacy_vendor", "dry_run",
              "options_display", "figures", "duration", "rate", "issue_links", "work_progress", "indexes_set_aside"]
    readonly_fields = fields

    def get_queryset(self, request):
        return super().get_queryset(request).annotate(
            rejections=Count("issues", filter=Q(issues__kind=IssueKind.REJECTION)),
            warnings=Count("issues", filter=Q(issues__kind=IssueKind.WARNING)),
        )

    @admin.display(description="entities")
    def entities(self, run: MigrationRun) -> str:
        return ", ".join(run.options.get("entities", []))

    def _read(self, run: MigrationRun) -> int:
        return sum((figures.get("read") or 0) for figures in run.summary.values())

    @admin.display(description="records read")
    def records_read(self, run: MigrationRun) -> str:
        return f"{self._read(run):,}"

    @admin.display(description="duration")
    def duration(self, run: MigrationRun) -> str:
        return f"{run.seconds:,.1f} s"

    @admin.display(description="rows / s")
    def rate(self, run: MigrationRun) -> str:
        return f"{self._read(run) / run.seconds:,.0f}" if run.seconds else "–"

    @admin.display(description="issues")
    def issue_links(self, run: MigrationRun):
        return format_html(
            '<a href="{}">{} rejected</a> · <a href="{}">{} warnings</a>',
            admin_url(MigrationIssue, "changelist", query=f"run__id__exact={run.pk}&kind__exact=rejection"),
            getattr(run, "rejections", run.issues.filter(kind=IssueKind.REJECTION).count()),
            admin_url(MigrationIssue, "changelist", query=f"run__id__exact={run.pk}&kind__exact=warning"),
            getattr(run, "warnings", run.issues.filter(kind=IssueKind.WARNING).count()),
        )

    @admin.display(description="options")
    def options_display(self, run: MigrationRun):
        return format_html_join(", ", "{}={}", ((k, v) for k, v in run.options.items()))

    @admin.display(description="figures per entity")
    def figures(self, run: MigrationRun):
        header = format_html_join("", "<th>{}</th>", ((c,) for c in ("entity", *COUNTERS, "seconds")))
        rows = format_html_join(
            "", "<tr><td>{}</td>{}</tr>",
            ((entity, format_html_join("", '<td style="text-align:right">{}</td>',
                                       ((f"{figures.get(c) or 0:,}",) for c in COUNTERS)) +
              format_html('<td style="text-align:right">{}</td>', f"{figures.get('seconds') or 0:,.1f}"))
             for entity, figures in run.summary.items()),
        )
        return format_html("<table><thead><tr>{}</tr></thead><tbody>{}</tbody></table>", header, rows)

    @admin.display(description="indexes set aside")
    def indexes_set_aside(self, run: MigrationRun):
        figures = set_aside.summary_for(run)
        if not figures["indexes"] + figures["foreign_keys"]:
            return "none (kept while loading)"
        state = (f"{figures['pending']} not built yet" if figures["pending"]
                 else f"all built again in {figures['rebuild_seconds']:,.1f} s")
        return format_html('{} indexes and {} foreign keys for the first load; {} — <a href="{}">see all</a>',
                           figures["indexes"], figures["foreign_keys"], state,
                           admin_url(SetAsideIndex, "changelist", query=f"run__id__exact={run.pk}"))

    @admin.display(description="work items")
    def work_progress(self, run: MigrationRun):
        rows = run.work_items.values("entity", "status").annotate(n=Count("id")).order_by("entity", "status")
        return format_html(
            '{} — <a href="{}">see all</a>',
            ", ".join(f"{r['entity']}: {r['n']} {r['status']}" for r in rows) or "none",
            admin_url(WorkItem, "changelist", query=f"run__id__exact={run.pk}"),
        )


@admin.register(WorkItem)
class WorkItemAdmin(ReadOnlyAdmin, LargeTableAdmin):
    list_display = ["run", "entity", "position", "scope", "after_key", "last_key", "status", "planned", "read",
                    "inserted", "updated", "unchanged", "excluded", "rejected", "warned", "seconds", "worker"]
    list_filter = ["status", "entity", "scope", "run"]
    search_fields = ["last_key", "worker"]
    list_select_related = ["run"]


@admin.register(SetAsideIndex)
class SetAsideIndexAdmin(ReadOnlyAdmin):
    """What a first load dropped and whether it is back: a pending row is an index still missing."""

    list_display = ["name", "table_name", "kind", "entity", "run", "set_aside_at", "rebuilt_at", "seconds"]
    list_filter = [("rebuilt_at", admin.EmptyFieldListFilter), "kind", "entity", "table_name", "run"]
    search_fields = ["name", "table_name"]
    list_select_related = ["run"]
    fields = ["run", "entity", "table_name", "name", "kind", "definition", "set_aside_at", "rebuilt_at", "seconds"]
    readonly_fields = fields


@admin.register(MigrationIssue)
class MigrationIssueAdmin(ReadOnlyAdmin, CsvExportAdmin, LargeTableAdmin):
    list_display = ["legacy_key", "entity", "kind", "rule", "message", "run_link", "created_at"]
    list_filter = ["kind", "entity", "rule", "run"]
    search_fields = ["=legacy_key", "message"]
    list_select_related = ["run"]
    date_hierarchy = "created_at"
    fields = ["run", "entity", "legacy_key", "kind", "rule", "message", "raw_values", "created_at"]
    readonly_fields = fields
    csv_columns = [CsvColumn("run", "run_id"), CsvColumn("entity", "entity"), CsvColumn("legacy key", "legacy_key"),
                   CsvColumn("kind", "kind"), CsvColumn("rule", "rule"), CsvColumn("message", "message"),
                   CsvColumn("created", "created_at")]

    @admin.display(description="run", ordering="run")
    def run_link(self, issue: MigrationIssue):
        return format_html('<a href="{}">#{}</a>', admin_url(issue.run), issue.run_id)

    @admin.display(description="legacy values as read")
    def raw_values(self, issue: MigrationIssue):
        def cells(values: dict):
            return format_html_join("", "<tr><th>{}</th><td><code>{}</code></td></tr>",
                                    ((k, repr(v)) for k, v in values.items() if k != "lines"))

        lines = issue.raw.get("lines") or []
        line_tables = format_html_join("", "<h4>Line {}</h4><table>{}</table>",
                                       ((line.get("LINE_NO"), cells(line)) for line in lines))
        return format_html("<table>{}</table>{}", cells(issue.raw), line_tables)


# ---------------------------------------------------------------------------------------------
# Reconciliation: dashboard, reports, drill-down
# ---------------------------------------------------------------------------------------------
def discrepancy_chart(reconciliations: list[Reconciliation]) -> str:
    """An inline SVG bar chart: discrepancies per reconciliation, oldest left, colour by outcome."""
    width, height, gap = 640, 160, 4
    if not reconciliations:
        return ""
    counts = [sum(f.get(kind, 0) for f in r.figures.values() for kind in FINDINGS) for r in reconciliations]
    top = max(max(counts), 1)
    bar = max((width - gap * len(counts)) // len(counts), 2)
    bars = []
    for n, (rec, count) in enumerate(zip(reconciliations, counts)):
        # A clean reconciliation still gets a visible (green) bar: "checked, nothing found".
        h = max(int((height - 30) * count / top), 4)
        colour = "#3a7d44" if rec.status == ReconciliationStatus.VALIDATED else "#b3261e"
        x = n * (bar + gap)
        bars.append(format_html(
            '<a href="{}"><rect x="{}" y="{}" width="{}" height="{}" fill="{}"><title>#{} {}: {} discrepancies'
            '</title></rect></a><text x="{}" y="{}" font-size="10" text-anchor="middle">{}</text>',
            admin_url(rec), x, height - h, bar, h, colour, rec.pk, rec.started_at.strftime("%Y-%m-%d %H:%M"), count,
            x + bar / 2, height - h - 3, count))
    return format_html(
        '<svg width="{}" height="{}" role="img" aria-label="Discrepancies per reconciliation">{}</svg>',
        width, height, format_html_join("", "{}", ((b,) for b in bars)))


@admin.register(Reconciliation)
class ReconciliationAdmin(ReadOnlyAdmin):
    list_display = ["id", "started_at", "status", "scope_display", "discrepancy_count", "duration", "started_by"]
    list_filter = ["status", "started_at"]
    date_hierarchy = "started_at"
    fields = ["status", "message", "started_at", "finished_at", "started_by", "scope_display", "duration",
              "figures_table", "control_totals_table", "discrepancy_links"]
    readonly_fields = fields
    change_list_template = "admin/legacy_migration/reconciliation/change_list.html"

    def get_urls(self):
        return [path("dashboard/", self.admin_site.admin_view(self.dashboard_view),
                     name="legacy_migration_reconciliation_dashboard"), *super().get_urls()]

    def dashboard_view(self, request):
        if not self.has_view_permission(request):
            raise PermissionDenied
        history = list(Reconciliation.objects.exclude(status=ReconciliationStatus.RUNNING).order_by("-id")[:40])[::-1]
        latest_full = next((r for r in reversed(history) if r.is_full), None)
        totals = list(latest_full.control_totals.all()) if latest_full else []
        context = {
            **self.admin_site.each_context(request), "title": "Legacy vs modern: reconciliation dashboard",
            "opts": self.opts, "states": entity_states(), "chart": discrepancy_chart(history),
            "latest_full": latest_full, "control_totals": totals,
            "wrong_totals": [t for t in totals if not t.agrees],
            "shadow_mismatches": _shadow_summary(),
        }
        return TemplateResponse(request, "admin/legacy_migration/dashboard.html", context)

    @admin.display(description="scope")
    def scope_display(self, rec: Reconciliation) -> str:
        parts = [", ".join(rec.scope.get("entities", []))]
        if rec.scope.get("since"):
            parts.append(f"since {rec.scope['since']}")
        if rec.scope.get("keys"):
            parts.append("chosen keys")
        return "; ".join(parts)

    @admin.display(description="discrepancies")
    def discrepancy_count(self, rec: Reconciliation) -> int:
        return sum(f.get(kind, 0) for f in rec.figures.values() for kind in FINDINGS)

    @admin.display(description="duration")
    def duration(self, rec: Reconciliation) -> str:
        return f"{rec.seconds:,.1f} s"

    @admin.display(description="figures")
    def figures_table(self, rec: Reconciliation):
        header = format_html_join("", "<th>{}</th>", ((c,) for c in ("entity", *FIGURES)))
        rows = format_html_join("", "<tr><td>{}</td>{}</tr>", (
            (entity, format_html_join("", '<td style="text-align:right">{}</td>',
                                      ((f"{figures.get(c, 0):,}",) for c in FIGURES)))
            for entity, figures in rec.figures.items()))
        return format_html("<table><thead><tr>{}</tr></thead><tbody>{}</tbody></table>", header, rows)

    @admin.display(description="control totals that disagree")
    def control_totals_table(self, rec: Reconciliation):
        wrong = [t for t in rec.control_totals.all() if not t.agrees]
        if not rec.is_full:
            return "Only full reconciliations compare control totals."
        if not wrong:
            return f"All {rec.control_totals.count()} agree."
        return format_html(
            "<table><tr><th>entity</th><th>currency</th><th>month</th><th>legacy</th><th>modern</th>"
            "<th>difference</th></tr>{}</table>",
            format_html_join("", "<tr><td>{}</td><td>{}</td><td>{}</td><td>{} ({})</td><td>{} ({})</td>"
                                 "<td><strong>{}</strong></td></tr>",
                             ((t.entity, t.currency, t.month.strftime("%Y-%m"), t.legacy_amount, t.legacy_count,
                               t.modern_amount, t.modern_count, t.difference) for t in wrong)))

    @admin.display(description="discrepancies")
    def discrepancy_links(self, rec: Reconciliation):
        base = f"reconciliation__id__exact={rec.pk}"
        return format_html(
            '<a href="{}">all</a> · export <a href="{}">CSV</a> · <a href="{}">JSON</a>',
            admin_url(Discrepancy, "changelist", query=base),
            reverse("admin:legacy_migration_discrepancy_export_csv") + f"?{base}",
            reverse("admin:legacy_migration_discrepancy_export_json") + f"?{base}")


def _shadow_summary():
    """Shadow-read mismatches, when that feature records any (kept beside reconciliation)."""
    try:
        from legacy_migration.models import ShadowMismatch
    except ImportError:
        return None
    return ShadowMismatch.objects.order_by("-id")[:10]


@admin.register(Discrepancy)
class DiscrepancyAdmin(ReadOnlyAdmin, CsvExportAdmin, LargeTableAdmin):
    list_display = ["legacy_key", "entity", "kind", "differing_fields", "reconciliation_link"]
    list_filter = ["kind", "entity", "reconciliation"]
    search_fields = ["=legacy_key"]
    list_select_related = ["reconciliation"]
    fields = ["reconciliation", "entity", "legacy_key", "kind", "side_by_side"]
    readonly_fields = fields
    actions = ["remigrate"]
    csv_columns = [CsvColumn("reconciliation", "reconciliation_id"), CsvColumn("entity", "entity"),
                   CsvColumn("legacy key", "legacy_key"), CsvColumn("kind", "kind"), CsvColumn("fields", "fields")]

    def get_urls(self):
        return [path("export.json", self.admin_site.admin_view(self.export_json_view),
                     name="legacy_migration_discrepancy_export_json"), *super().get_urls()]

    def export_json_view(self, request):
        if not self.has_view_permission(request):
            raise PermissionDenied
        queryset = self.get_changelist_instance(request).queryset
        rows = queryset.values("reconciliation_id", "entity", "legacy_key", "kind", "fields", "legacy", "modern")
        response = JsonResponse({"discrepancies": list(rows.iterator(chunk_size=2000))},
                                json_dumps_params={"indent": 1})
        response["Content-Disposition"] = 'attachment; filename="discrepancies.json"'
        return response

    @admin.display(description="fields")
    def differing_fields(self, d: Discrepancy) -> str:
        return ", ".join(d.fields) or "—"

    @admin.display(description="reconciliation", ordering="reconciliation")
    def reconciliation_link(self, d: Discrepancy):
        return format_html('<a href="{}">#{}</a>', admin_url(d.reconciliation), d.reconciliation_id)

    @admin.display(description="legacy (as carried over) and modern")
    def side_by_side(self, d: Discrepancy):
        legacy, modern = d.legacy or {}, d.modern or {}
        names = list(dict.fromkeys([*legacy, *modern]))
        rows = format_html_join("", '<tr{}><th>{}</th><td><code>{}</code></td><td><code>{}</code></td></tr>', (
            (mark_safe(' style="background:#fde7e9"') if name in d.fields else "", name,
             "—" if name not in legacy else repr(legacy[name]), "—" if name not in modern else repr(modern[name]))
            for name in names))
        return format_html('<table><tr><th>field</th><th>legacy, as carried over</th><th>modern</th></tr>{}</table>'
                           '<p>Differing fields are highlighted.</p>', rows)

    def has_remigrate_permission(self, request) -> bool:
        return request.user.has_perm("legacy_migration.run_migration")

    @admin.action(description="Re-migrate these records and reconcile them again", permissions=["remigrate"])
    def remigrate(self, request, queryset):
        keys = record_keys(queryset)
        try:
            result = remigrate_records(keys=keys, by=request.user.get_username())
        except LegacyUnavailable as exc:
            self.message_user(request, f"Nothing re-migrated: {exc}", messages.ERROR)
            return
        count = sum(len(v) for v in keys.values())
        rec = result.reconciliation
        self.message_user(
            request,
            format_html('Re-migrated {} record(s) (run {}); <a href="{}">reconciliation #{}</a>: {}.', count,
                        ", ".join(f"#{r.pk}" for r in result.runs), admin_url(rec), rec.pk,
                        rec.get_status_display().lower()),
            messages.SUCCESS if rec.status == ReconciliationStatus.VALIDATED else messages.WARNING)


# ---------------------------------------------------------------------------------------------
# Shadow reads: mismatches between what modern served and what legacy says (beside reconciliation)
# ---------------------------------------------------------------------------------------------
import json  # noqa: E402 - this section's imports are kept with it

from legacy_migration.models import ShadowMismatch  # noqa: E402
from legacy_migration.shadow import OUTCOMES, RESOURCES, shadow_status  # noqa: E402


@admin.register(ShadowMismatch)
class ShadowMismatchAdmin(ReadOnlyAdmin):
    list_display = ["legacy_key", "resource", "differing_fields", "occurrences", "origin", "last_seen_at",
                    "record_link"]
    list_filter = ["resource", "origin", "last_seen_at"]
    search_fields = ["=legacy_key"]
    date_hierarchy = "last_seen_at"
    fields = ["resource", "legacy_key", "record_link", "origin", "path", "occurrences", "first_seen_at",
              "last_seen_at", "side_by_side"]
    readonly_fields = fields
    change_list_template = "admin/legacy_migration/shadowmismatch/change_list.html"

    def changelist_view(self, request, extra_context=None):
        # The outcome counters of the sampled reads (timeouts and errors included) above the list.
        context = {**(extra_context or {}), "shadow_status": shadow_status(), "shadow_outcomes": OUTCOMES}
        return super().changelist_view(request, context)

    @admin.display(description="fields")
    def differing_fields(self, m: ShadowMismatch) -> str:
        return ", ".join(m.fields) or "—"

    @admin.display(description="modern record")
    def record_link(self, m: ShadowMismatch):
        model = RESOURCES[m.resource].model
        return format_html('<a href="{}">{} #{}</a>', admin_url(model, "changelist", query=f"id__exact={m.record_id}"),
                           model._meta.verbose_name, m.record_id)

    @admin.display(description="legacy (through the mapping) and modern (as served)")
    def side_by_side(self, m: ShadowMismatch):
        legacy, modern = m.legacy or {}, m.modern or {}
        names = list(dict.fromkeys([*legacy, *modern]))
        differing = {name.split("[", 1)[0].split(".", 1)[0] for name in m.fields}
        rows = format_html_join("", '<tr{}><th>{}</th><td><code>{}</code></td><td><code>{}</code></td></tr>', (
            (mark_safe(' style="background:#fde7e9"') if name in differing else "", name,
             "—" if name not in legacy else json.dumps(legacy[name]),
             "—" if name not in modern else json.dumps(modern[name]))
            for name in names))
        listed = format_html_join("", "<li><code>{}</code>: legacy <code>{}</code>, modern <code>{}</code></li>",
                                  ((name, sides.get("legacy"), sides.get("modern"))
                                   for name, sides in m.fields.items()))
        return format_html('<ul>{}</ul><table><tr><th>field</th><th>legacy, through the mapping</th>'
                           '<th>modern, as served</th></tr>{}</table>', listed, rows)
