"""Shared machinery for the staff admin: saves through the services, big-table lists, CSV export, actions.

The order, customer and invoice admins are built from these pieces:

- ``ServiceBackedAdmin``: the add/change form saves through a service; a ``DomainError`` re-renders
  the form with the refusal instead of a 500.
- ``LargeTableAdmin``: a changelist that stays fast on millions of rows (no ``COUNT(*)`` of the
  whole table, no facet counts, no full-table ``DISTINCT`` for the date hierarchy).
- ``CsvExportAdmin``: a streamed CSV of the current filtered and searched list.
- ``Step`` / ``apply_step`` / ``outcome_message`` / ``action_with_reason`` / ``object_step_view``:
  thin life-cycle actions that call a service per record and say what happened and what was refused.
"""

from __future__ import annotations

import csv
import datetime as dt
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from django import forms
from django.conf import settings
from django.contrib import admin, messages
from django.contrib.admin import helpers
from django.contrib.admin.options import IncorrectLookupParameters
from django.contrib.admin.utils import unquote
from django.contrib.admin.views.main import ERROR_FLAG, PAGE_VAR, ChangeList
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.paginator import Paginator
from django.db import connections
from django.forms.models import construct_instance
from django.http import HttpResponseRedirect, StreamingHttpResponse
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils import formats, timezone
from django.utils.functional import cached_property
from django.utils.html import format_html
from django.utils.text import capfirst, smart_split, unescape_string_literal

from oms.errors import DomainError

# ---------------------------------------------------------------------------------------------
# Formatting and links
# ---------------------------------------------------------------------------------------------


def money(amount: Decimal | None, currency: str = "") -> str:
    """1234.5 → '1,234.50' (Decimal formatting, never a float); '' for no amount."""
    if amount is None:
        return ""
    text = format(Decimal(amount), ",.2f")
    return f"{text} {currency}" if currency else text


def admin_url(obj_or_model, view: str = "change", *, query: str = "") -> str:
    """The admin URL of a record ('change') or of its model's list ('changelist') with a query string."""
    opts = obj_or_model._meta
    name = f"admin:{opts.app_label}_{opts.model_name}_{view}"
    url = reverse(name, args=[obj_or_model.pk]) if view == "change" else reverse(name)
    return f"{url}?{query}" if query else url


def change_link(obj, text: str | None = None) -> str:
    """An HTML link to a record's admin page, or '—' for no record."""
    if obj is None:
        return "—"
    return format_html('<a href="{}">{}</a>', admin_url(obj), text if text is not None else str(obj))


# ---------------------------------------------------------------------------------------------
# Search
# ---------------------------------------------------------------------------------------------
def search_terms(search_term: str) -> list[str]:
    """Split like Django's admin search: words, or "quoted phrases"."""
    terms = []
    for bit in smart_split(search_term):
        if bit.startswith(('"', "'")) and bit[0] == bit[-1]:
            bit = unescape_string_literal(bit)
        if bit.strip():
            terms.append(bit.strip())
    return terms


def matching_keys(queryset, field: str = "pk", *, limit: int = 500):
    """The values of `field` in `queryset`: a short list when there are few, else the subquery itself.

    A short list makes ``column IN (1, 2, 3)`` an index lookup, which PostgreSQL can OR with the
    other alternatives of a search into one bitmap scan. A subquery inside an OR cannot use an
    index on the searched table: the whole table is scanned. Past `limit` keys the search word is
    too vague for the list to pay off, and the subquery is used.
    """
    keys = list(queryset.order_by().values_list(field, flat=True).distinct()[: limit + 1])
    return keys if len(keys) <= limit else queryset.order_by().values(field)


def narrowed_to_matches(listed, searched, *, limit: int | None = None):
    """The searched list as "these keys" when the search matches few records.

    A search condition (ORs of prefixes, customers, SKUs) is costly to evaluate, and a list page
    evaluates it several times: the count, the page's keys, the date hierarchy's bounds. Found
    once, up to `limit` keys, it becomes ``pk IN (…)`` for all of them, which is an index lookup.
    A vaguer search keeps its condition (and the count stops at the paginator's cap anyway).
    `listed` is the list's queryset before the search, `searched` the same with it.
    """
    limit = LargeTablePaginator.count_cap if limit is None else limit
    keys = list(searched.order_by().values_list("pk", flat=True)[: limit + 1])
    return listed.filter(pk__in=keys) if len(keys) <= limit else searched


# ---------------------------------------------------------------------------------------------
# Saving through the services
# ---------------------------------------------------------------------------------------------
#: Where a refused save leaves its DomainError on the request for the second, re-rendering pass.
REFUSAL_ATTR = "_oms_refusal"


def refusal_of(request) -> DomainError | None:
    """The DomainError that refused this request's save, if the form is being shown again because of it."""
    return getattr(request, REFUSAL_ATTR, None)


def _form_with_refusal(form_class: type[forms.BaseForm], refusal: DomainError) -> type[forms.BaseForm]:
    class RefusedForm(form_class):
        def clean(self):
            cleaned = super().clean()
            # On the field the service named when the form shows it, otherwise above the form.
            self.add_error(refusal.field if refusal.field in self.fields else None, refusal.message)
            return cleaned

    RefusedForm.__name__ = form_class.__name__
    return RefusedForm


class ParseOnlyModelForm(forms.ModelForm):
    """A row form that only turns input into typed values, for rows a service validates as a whole.

    A normal ModelForm also runs model validation, which checks every database constraint with
    its own query (three per order line) and words failures as constraint names. The services
    check the same rules once, for all lines together, and say which line is wrong.
    """

    def _post_clean(self):
        try:
            self.instance = construct_instance(self, self.instance, self._meta.fields, self._meta.exclude)
        except ValidationError as exc:
            self._update_errors(exc)


def adopt_saved(target, saved) -> None:
    """Turn the unsaved instance the admin holds into the record a service saved.

    The admin logs, messages and redirects with the instance it built from the form; the
    service returns its own. Reloading keeps the admin's object and the database in agreement.
    """
    target.pk = saved.pk
    target.refresh_from_db()
    target._state.adding = False


class ServiceBackedAdmin(admin.ModelAdmin):
    """A ModelAdmin whose saves call a service (in ``save_model`` / ``save_related``).

    When the service raises a DomainError, the whole attempt is rolled back (``changeform_view``
    runs in one transaction) and the same POST is rendered again, with the refusal as a form
    error: staff keep what they typed and read why it was refused. The second pass cannot save,
    because the refused form is invalid.
    """

    def changeform_view(self, request, object_id=None, form_url="", extra_context=None):
        if request.method == "POST" and object_id is not None:
            frozen = self._frozen_since_drawn(request, object_id)
            if frozen is not None:
                return frozen
        try:
            return super().changeform_view(request, object_id, form_url, extra_context)
        except DomainError as refusal:
            if refusal_of(request) is not None:  # pragma: no cover - the refused form never saves
                raise
            setattr(request, REFUSAL_ATTR, refusal)
            return super().changeform_view(request, object_id, form_url, extra_context)

    def _frozen_since_drawn(self, request, object_id):
        """A save posted from a page drawn while the record could still change (it has since been
        shipped, issued, …): say so and show it again, rather than answer a bare 403."""
        obj = self.get_object(request, unquote(object_id))
        if obj is None or not self.has_change_permission(request) or self.has_change_permission(request, obj):
            return None
        status = obj.get_status_display().lower() if hasattr(obj, "get_status_display") else "read-only"
        self.message_user(request, f"{obj} is {status} now and can no longer be edited here; "
                                   "your changes were not saved.", messages.ERROR)
        return HttpResponseRedirect(request.get_full_path())

    def get_form(self, request, obj=None, change=False, **kwargs):
        form_class = super().get_form(request, obj, change, **kwargs)
        refusal = refusal_of(request)
        return form_class if refusal is None else _form_with_refusal(form_class, refusal)


# ---------------------------------------------------------------------------------------------
# Big tables: counting, date hierarchy, changelist
# ---------------------------------------------------------------------------------------------
class LargeTablePaginator(Paginator):
    """A paginator that never counts a whole big table.

    1. Unfiltered list on PostgreSQL: the planner's row estimate (``pg_class.reltuples``, kept
       fresh by autovacuum) when the table holds at least ``estimate_from`` rows: close, and free;
       the list says "about N".
    2. Otherwise (a filter or a search, or a small table): ``COUNT(*)`` of at most ``count_cap``
       rows, so a filter matching most of a huge table still counts quickly; the list says "N+".
    """

    # Counting 10,000 index entries takes a few milliseconds; 200 pages of 50 is more than anyone
    # pages through (past that, staff narrow the filter or export the list).
    estimate_from = 10_000
    count_cap = 10_000

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.is_estimate = False
        self.is_capped = False

    @cached_property
    def count(self) -> int:
        queryset = self.object_list
        if not queryset.query.where:
            estimate = self._planner_estimate(queryset)
            if estimate is not None and estimate >= self.estimate_from:
                self.is_estimate = True
                return estimate
        # COUNT(*) over a LIMITed subquery: stops after count_cap rows.
        counted = queryset.order_by().values("pk")[: self.count_cap].count()
        self.is_capped = counted >= self.count_cap
        return counted

    def page(self, number):
        """One page of rows, found by key first, then loaded.

        With OFFSET, PostgreSQL computes every skipped row's columns (the joined customer, the
        invoice subqueries) before throwing it away: page 1,000 of a million orders took 1 s.
        Walking the index for the page's keys alone takes a few milliseconds; then only the
        page's own rows are loaded, in the list's order.
        """
        number = self.validate_number(number)
        bottom = (number - 1) * self.per_page
        top = bottom + self.per_page
        if top + self.orphans >= self.count:
            top = self.count
        keys = list(self.object_list.values_list("pk", flat=True)[bottom:top])
        return self._get_page(self.object_list.filter(pk__in=keys), number, self)

    @staticmethod
    def _planner_estimate(queryset) -> int | None:
        connection = connections[queryset.db]
        if connection.vendor != "postgresql":
            return None
        with connection.cursor() as cursor:
            cursor.execute("SELECT reltuples::bigint FROM pg_class WHERE oid = to_regclass(%s)",
                           [queryset.model._meta.db_table])
            row = cursor.fetchone()
        # -1 means "never analysed" (PostgreSQL 14+): count instead.
        return int(row[0]) if row and row[0] is not None and row[0] >= 0 else None


class FastChangeList(ChangeList):
    """The changelist of a big table: defers heavy columns and draws a cheap date hierarchy."""

    def get_queryset(self, request, exclude_parameters=None):
        queryset = super().get_queryset(request, exclude_parameters)
        deferred = getattr(self.model_admin, "list_defer", ())
        return queryset.defer(*deferred) if deferred else queryset

    @cached_property
    def date_hierarchy_links(self) -> dict[str, Any]:
        """The date drill-down without Django's full-table SELECT DISTINCT.

        Django lists the years (months, days) that have rows with a SELECT DISTINCT over every
        matching row: 0.5–1.2 s for the years of 1,000,000 orders, 0.1–0.3 s for the months of one
        year, measured here. This takes only the first and last date of the current list (two index
        probes, ~1 ms) and offers every year (month, day) between them: a link may lead to an
        empty period, which is the price of not scanning.
        """
        field_name = self.date_hierarchy
        generic = f"{field_name}__"
        year, month, day = (self.params.get(f"{field_name}__{part}") for part in ("year", "month", "day"))

        def link(filters):
            return self.get_query_string(filters, [generic])

        y_key, m_key, d_key = f"{field_name}__year", f"{field_name}__month", f"{field_name}__day"
        if year and month and day:
            chosen = dt.date(int(year), int(month), int(day))
            return {
                "show": True,
                "back": {"link": link({y_key: year, m_key: month}),
                         "title": capfirst(formats.date_format(chosen, "YEAR_MONTH_FORMAT"))},
                "choices": [{"title": capfirst(formats.date_format(chosen, "MONTH_DAY_FORMAT"))}],
            }
        # Two ORDER BY … LIMIT 1 rather than one MIN()/MAX(): PostgreSQL turns MIN/MAX into index
        # probes only for simple filters; with the "ready to invoice" anti-join it aggregated every
        # matching order (0.6 s on a million), where walking the date index stops at the first match.
        dated = self.queryset.filter(**{f"{field_name}__isnull": False}).values_list(field_name, flat=True)
        first = dated.order_by(field_name).first()
        last = dated.order_by(f"-{field_name}").first()
        if first is None or last is None:
            # An empty period (the links above may lead to one): offer the way back up, as Django does.
            if year and month:
                return {"show": True, "back": {"link": link({y_key: year}), "title": year}, "choices": []}
            if year:
                return {"show": True, "back": {"link": link({}), "title": "All dates"}, "choices": []}
            return {"show": False}
        first, last = (timezone.localtime(v) if timezone.is_aware(v) else v for v in (first, last))
        if not year and first.year == last.year:
            year = str(first.year)
            if first.month == last.month:
                month = str(first.month)
        if year and month:
            # The list is already limited to that month, so first/last are inside it.
            days = range(first.day, last.day + 1) if (first.year, first.month) == (int(year), int(month)) else ()
            return {
                "show": True,
                "back": {"link": link({y_key: year}), "title": year},
                "choices": [
                    {"link": link({y_key: year, m_key: month, d_key: d}),
                     "title": capfirst(formats.date_format(dt.date(int(year), int(month), d), "MONTH_DAY_FORMAT"))}
                    for d in days
                ],
            }
        if year:
            months = range(first.month, last.month + 1) if first.year == last.year == int(year) else ()
            return {
                "show": True,
                "back": {"link": link({}), "title": "All dates"},
                "choices": [
                    {"link": link({y_key: year, m_key: m}),
                     "title": capfirst(formats.date_format(dt.date(int(year), m, 1), "YEAR_MONTH_FORMAT"))}
                    for m in months
                ],
            }
        return {
            "show": True,
            "back": None,
            "choices": [{"link": link({y_key: str(y)}), "title": str(y)} for y in range(first.year, last.year + 1)],
        }


class LargeTableAdmin(admin.ModelAdmin):
    """Changelist settings for tables that grow to millions of rows.

    - the paginator above instead of COUNT(*), and no second "of N total" count;
    - no facet counts (one COUNT per filter choice over the whole table);
    - ``list_defer``: columns the list never shows (long notes) stay in the table;
    - the cheap date hierarchy of ``FastChangeList`` (drawn by admin/oms/change_list.html).
    Subclasses keep ``sortable_by`` to indexed columns: sorting on anything else sorts the table.
    """

    paginator = LargeTablePaginator
    list_per_page = settings.ADMIN_LIST_PER_PAGE
    show_full_result_count = False
    show_facets = admin.ShowFacets.NEVER
    change_list_template = "admin/oms/change_list.html"
    list_defer: Sequence[str] = ()

    def get_changelist(self, request, **kwargs):
        return FastChangeList


# ---------------------------------------------------------------------------------------------
# CSV export of the current list
# ---------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class CsvColumn:
    header: str
    #: A values_list() path: a field ("number"), a related field ("customer__code") or an annotation.
    path: str


#: Text that a spreadsheet would run as a formula (CSV injection); such text gets a leading quote.
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def csv_cell(value: Any) -> Any:
    """One value as written to CSV: Decimals exactly as stored, times in the desk's zone, ISO dates."""
    if value is None:
        return ""
    if isinstance(value, Decimal):
        return format(value, "f")
    if isinstance(value, dt.datetime):
        return (timezone.localtime(value) if timezone.is_aware(value) else value).isoformat()
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, str) and value.startswith(_FORMULA_START):
        return "'" + value
    return value


class _Echo:
    """A file-like object whose write() hands the line back, so csv.writer can feed a generator."""

    def write(self, value: str) -> str:
        return value


def stream_csv(*, header: Sequence[str], rows: Iterable[Sequence[Any]], filename: str,
               batch: int = 500) -> StreamingHttpResponse:
    """A CSV download produced row by row: memory stays flat however many rows there are.

    UTF-8 with a byte-order mark, so that spreadsheet programs read accented names correctly.
    """
    writer = csv.writer(_Echo())

    def lines():
        yield "\ufeff" + writer.writerow(header)
        chunk = []
        for row in rows:
            chunk.append(writer.writerow([csv_cell(v) for v in row]))
            if len(chunk) >= batch:
                yield "".join(chunk)
                chunk = []
        if chunk:
            yield "".join(chunk)

    response = StreamingHttpResponse(lines(), content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    return response


class CsvExportAdmin(admin.ModelAdmin):
    """Adds "Export CSV" to the changelist: the rows of the current filters and search, all pages.

    Viewing is enough to export (what can be read on screen can be taken away). The export is a
    button, not an action, so read-only staff get it without seeing any action.
    """

    csv_columns: Sequence[CsvColumn] = ()

    def get_urls(self):
        info = self.opts.app_label, self.opts.model_name
        return [
            path("export.csv", self.admin_site.admin_view(self.export_csv_view), name="%s_%s_export_csv" % info),
            *super().get_urls(),
        ]

    def csv_export_url(self, request) -> str:
        query = request.GET.copy()
        for name in (PAGE_VAR, ERROR_FLAG):
            query.pop(name, None)
        url = reverse(f"admin:{self.opts.app_label}_{self.opts.model_name}_export_csv",
                      current_app=self.admin_site.name)
        return f"{url}?{query.urlencode()}" if query else url

    def changelist_view(self, request, extra_context=None):
        extra_context = {"csv_export_url": self.csv_export_url(request), **(extra_context or {})}
        return super().changelist_view(request, extra_context)

    def export_csv_view(self, request):
        if not self.has_view_or_change_permission(request):
            raise PermissionDenied
        try:
            # The same ChangeList the screen uses: same filters, search, ordering and queryset.
            changelist = self.get_changelist_instance(request)
        except IncorrectLookupParameters:
            return HttpResponseRedirect(admin_url(self.model, "changelist", query=f"{ERROR_FLAG}=1"))
        rows = changelist.queryset.values_list(*(c.path for c in self.csv_columns)).iterator(chunk_size=2000)
        stamp = timezone.localtime().strftime("%Y%m%d-%H%M")
        return stream_csv(header=[c.header for c in self.csv_columns], rows=rows,
                          filename=f"{self.opts.model_name}s-{stamp}.csv")


# ---------------------------------------------------------------------------------------------
# Life-cycle steps: bulk actions and the buttons on a record's page
# ---------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Step:
    """One business step staff can take on a record, and how the admin presents it."""

    name: str  # in URLs: "confirm", "void"
    label: str  # on buttons: "Confirm"
    done: str  # in messages: "Confirmed"
    permission: str  # "app_label.codename"
    run: Callable[..., Any]  # run(obj, by=user, reason=str) → the result (the record, a new invoice, …)
    reason: str = ""  # "" (none asked), "optional" or "required"
    question: str = ""  # the intermediate page's question


@dataclass
class Outcome:
    done: list[Any] = field(default_factory=list)
    refused: list[tuple[str, str]] = field(default_factory=list)  # (record label, why)


def apply_step(queryset, step: Step, *, by, reason: str = "", label: Callable[[Any], str] = str,
               chunk: int = 200) -> Outcome:
    """Run the step on each record, each in the service's own transaction; collect what was refused.

    Records are taken in primary-key order, the order oms.locking locks in, so two people running
    bulk actions over overlapping selections cannot deadlock.
    """
    outcome = Outcome()
    pks = list(queryset.order_by("pk").values_list("pk", flat=True))
    for start in range(0, len(pks), chunk):
        for obj in queryset.filter(pk__in=pks[start:start + chunk]).order_by("pk"):
            try:
                outcome.done.append(step.run(obj, by=by, reason=reason))
            except DomainError as exc:
                outcome.refused.append((label(obj), exc.message))
    return outcome


def outcome_message(outcome: Outcome, *, step: Step, noun: str, plural: str, detail: str = "",
                    shown: int = 10) -> tuple[str, int]:
    """"Confirmed 12 orders; 3 refused: SO2026-000004: …" and the message level that fits it."""
    count = len(outcome.done)
    head = f"{step.done} {count} {noun if count == 1 else plural}"
    if detail:
        head += f" ({detail})"
    if not outcome.refused:
        return head + ".", messages.SUCCESS
    reasons = " ".join(why if who in why else f"{who}: {why}" for who, why in outcome.refused[:shown])
    if len(outcome.refused) > shown:
        reasons += f" … and {len(outcome.refused) - shown} more."
    level = messages.WARNING if count else messages.ERROR
    return f"{head}; {len(outcome.refused)} refused: {reasons}", level


class ReasonForm(forms.Form):
    reason = forms.CharField(widget=forms.Textarea(attrs={"rows": 3, "cols": 60}), max_length=2000)

    def __init__(self, *args, required: bool = True, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["reason"].required = required
        if not required:
            self.fields["reason"].help_text = "Optional; kept in the status history."


def action_with_reason(modeladmin, request, queryset, *, step: Step, action: str, noun: str, plural: str,
                       label: Callable[[Any], str] = str, detail: Callable[[list], str] | None = None,
                       sample: int = 50):
    """A bulk action that first asks for a reason on an intermediate page, as delete_selected asks.

    The page posts back to the changelist (same URL, so same filters) with the selection,
    "select all" and the reason; the second post runs the step. Returns None once done, which
    sends staff back to the list with the message.
    """
    required = step.reason == "required"
    if request.POST.get("post") == "yes":
        form = ReasonForm(request.POST, required=required)
        if form.is_valid():
            outcome = apply_step(queryset, step, by=request.user, reason=form.cleaned_data["reason"], label=label)
            text, level = outcome_message(outcome, step=step, noun=noun, plural=plural,
                                          detail=detail(outcome.done) if detail and outcome.done else "")
            modeladmin.message_user(request, text, level)
            return None
    else:
        form = ReasonForm(required=required)
    count = queryset.count()
    shown = list(queryset.order_by("pk")[:sample])
    opts = modeladmin.model._meta
    context = {
        **modeladmin.admin_site.each_context(request),
        "title": f"{step.label} {plural}",
        "subtitle": None,
        "opts": opts,
        "step": step,
        "form": form,
        "objects": [(obj, admin_url(obj)) for obj in shown],
        "count": count,
        "more": count - len(shown),
        "noun": noun if count == 1 else plural,
        "selected": request.POST.getlist(helpers.ACTION_CHECKBOX_NAME),
        "select_across": request.POST.get("select_across", "0"),
        "action": action,
        "action_checkbox_name": helpers.ACTION_CHECKBOX_NAME,
        "media": modeladmin.media,
    }
    request.current_app = modeladmin.admin_site.name
    return TemplateResponse(request, "admin/oms/action_confirmation.html", context)


def object_step_view(modeladmin, request, object_id: str, step: Step, *,
                     success_url: Callable[[Any], str] | None = None, label: Callable[[Any], str] = str,
                     done_message: Callable[[Any, Any], str] | None = None):
    """The page behind a life-cycle button on a record: confirm (and give a reason), then run the step.

    A GET only asks; the step runs on POST. A refusal is shown on the same page, and the record
    is left as it was.
    """
    obj = modeladmin.get_object(request, unquote(object_id))
    if obj is None:
        return modeladmin._get_obj_does_not_exist_redirect(request, modeladmin.opts, object_id)
    if not modeladmin.has_view_or_change_permission(request, obj) or not request.user.has_perm(step.permission):
        raise PermissionDenied
    form = ReasonForm(request.POST if request.method == "POST" else None, required=step.reason == "required")
    if request.method == "POST" and form.is_valid():
        try:
            result = step.run(obj, by=request.user, reason=form.cleaned_data.get("reason", "") if step.reason else "")
        except DomainError as exc:
            form.add_error(None, exc.message)
        else:
            text = done_message(obj, result) if done_message else f"{step.done} {label(obj)}."
            modeladmin.message_user(request, text, messages.SUCCESS)
            return HttpResponseRedirect(success_url(result) if success_url else admin_url(obj))
    context = {
        **modeladmin.admin_site.each_context(request),
        "title": f"{step.label}: {label(obj)}",
        "subtitle": None,
        "opts": modeladmin.opts,
        "original": obj,
        "object_url": admin_url(obj),
        "step": step,
        "form": form,
        "ask_reason": bool(step.reason),
        "media": modeladmin.media,
    }
    request.current_app = modeladmin.admin_site.name
    return TemplateResponse(request, "admin/oms/object_step.html", context)


# ---------------------------------------------------------------------------------------------
# Filters
# ---------------------------------------------------------------------------------------------
def selected_record_filter(field_name: str, title: str) -> type[admin.SimpleListFilter]:
    """A filter box that appears only when the list is limited to one related record.

    Links such as "orders of this customer" use ``?customer__id__exact=<pk>``; this shows which
    customer the list is limited to, with "All" to clear it. It never lists every customer (that
    would load the whole customer table into the sidebar): one query, only when active.
    """

    class SelectedRecordFilter(admin.SimpleListFilter):
        parameter_name = f"{field_name}__id__exact"

        def lookups(self, request, model_admin):
            value = self.value()
            if not value or not str(value).isdigit():
                return ()
            related = model_admin.model._meta.get_field(field_name).related_model
            record = related._default_manager.filter(pk=value).first()
            return [(value, str(record) if record else f"#{value} (not found)")]

        def queryset(self, request, queryset):
            if self.value():
                return queryset.filter(**{f"{field_name}_id": self.value()})
            return queryset

    SelectedRecordFilter.title = title
    SelectedRecordFilter.__name__ = f"Selected{field_name.title().replace('_', '')}Filter"
    return SelectedRecordFilter
