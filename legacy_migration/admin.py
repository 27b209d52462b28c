"""The migration, as staff see it: runs with their figures, the work items, every issue.

Everything here is read-only: a run is started by `manage.py migrate_legacy` (the operator's
terminal, cron or a pipeline), and its records are evidence, never edited. Migration operators
and auditors have view permission (oms/roles.py).
"""

from __future__ import annotations

from django.contrib import admin
from django.db.models import Count, Q
from django.utils.html import format_html, format_html_join

from legacy_migration.models import IssueKind, MigrationIssue, MigrationRun, WorkItem
from legacy_migration.runner import COUNTERS
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
              "options_display", "figures", "duration", "rate", "issue_links", "work_progress"]
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
