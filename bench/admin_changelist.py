"""Admin changelists at scale: how long staff wait for the order list with 1,000,000 orders.

The issue: "with 1,000,000 orders an orders changelist page renders in well under a second".

Steps:
1. Point Django at the benchmark database (oms.settings, not the test settings; DEBUG off) and
   make sure it holds the data set (bench/dataset.py: loaded once with COPY, then reused).
2. ANALYZE, log a superuser in with Django's test Client.
3. Work out each case's URL from the registered ModelAdmin itself (the status filter's query
   parameter, the date hierarchy field, the column sorted by total), so the cases follow the
   admin as it changes.
4. Per case: warm-ups, then N timed renders (median, p95); one more render with every SQL
   statement recorded (count, time); and the floor: the page's own SELECT run raw.
5. Cases slower than the threshold get EXPLAIN (ANALYZE, BUFFERS) of their slowest statements.
6. Print a table; write bench/results/admin_changelist.md and .json.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime as dt
import json
import os
import platform
import statistics
import subprocess
import sys
import time
import warnings
from pathlib import Path
from urllib.parse import urlencode

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results"
DEFAULT_URL = "postgres://postgres@127.0.0.1:5432/oms_bench_admin"


@dataclasses.dataclass
class Case:
    name: str
    model: str  # app_label.model_name
    params: dict = dataclasses.field(default_factory=dict)
    note: str = ""
    skipped: str = ""
    url: str = ""
    status_code: int | None = None
    runs_ms: list[float] = dataclasses.field(default_factory=list)
    queries: list[dict] = dataclasses.field(default_factory=list)
    floor_ms: float | None = None
    keys_ms: float | None = None
    #: For a case the admin does not offer: the ordering to time raw instead (what it would cost).
    raw_order_by: tuple[str, ...] = ()
    explains: list[dict] = dataclasses.field(default_factory=list)

    @property
    def median(self) -> float | None:
        return statistics.median(self.runs_ms) if self.runs_ms else None

    @property
    def p95(self) -> float | None:
        if not self.runs_ms:
            return None
        ordered = sorted(self.runs_ms)
        return ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]

    @property
    def sql_ms(self) -> float:
        return sum(q["ms"] for q in self.queries)


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="bench/run.py admin_changelist", description=__doc__.split("\n")[0])
    parser.add_argument("--database-url", default=os.environ.get("BENCH_DATABASE_URL", DEFAULT_URL))
    parser.add_argument("--reload", action="store_true", help="Drop and load the database again.")
    parser.add_argument("--runs", type=int, default=15)
    parser.add_argument("--warmups", type=int, default=2)
    parser.add_argument("--slow-ms", type=float, default=500.0,
                        help="A case whose median is above this gets EXPLAIN ANALYZE (default 500 ms).")
    parser.add_argument("--case-budget", type=float, default=60.0,
                        help="Seconds of timed renders per case; a slower case stops after 5 runs (default 60).")
    parser.add_argument("--customers", type=int, default=200_000)
    parser.add_argument("--orders", type=int, default=1_000_000)
    parser.add_argument("--invoices", type=int, default=800_000)
    parser.add_argument("--lines-per-order", type=float, default=3.0)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--no-write", action="store_true", help="Print only; do not write bench/results/.")
    return parser.parse_args(argv)


def main(argv: list[str]) -> int:
    args = parse_args(argv)
    # Production settings, not the test settings: the admin as staff get it.
    os.environ["DJANGO_SETTINGS_MODULE"] = "oms.settings"
    os.environ["DATABASE_URL"] = args.database_url
    os.environ["DEBUG"] = "false"
    # WhiteNoise warns that collectstatic has not run; pages are timed without their static files anyway.
    warnings.filterwarnings("ignore", message="No directory at", category=UserWarning)
    import django

    django.setup()
    from django.conf import settings
    from django.core.management import call_command
    from django.db import connection, connections

    from bench.dataset import Scale, ensure_dataset

    assert not settings.DEBUG and settings.DATABASES["default"]["ENGINE"].endswith("postgresql")
    scale = Scale(customers=args.customers, orders=args.orders, lines_per_order=args.lines_per_order,
                  invoices=args.invoices, seed=args.seed)

    def migrate():
        connections.close_all()
        call_command("migrate", verbosity=0, interactive=False)

    load = ensure_dataset(args.database_url, scale, reload=args.reload, migrate=migrate,
                          log=lambda m: print(m, flush=True))
    connections.close_all()
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE")

    client = logged_in_client()
    cases = build_cases()
    load_at_start = os.getloadavg()
    for case in cases:
        measure(case, client, runs=args.runs, warmups=args.warmups, budget_s=args.case_budget)
        floor(case, runs=args.runs)
        if case.median is not None and case.median > args.slow_ms:
            explain(case)
        print(f"  {case.name}: " + (f"median {case.median:.0f} ms" if case.median is not None else case.skipped)
              + (f"; its SELECT run raw: {case.floor_ms:.0f} ms" if case.raw_order_by else ""), flush=True)

    report = build_report(args, load, cases)
    report["machine"]["load_average_at_start"] = load_at_start
    print()
    print(markdown_table(cases))
    if not args.no_write:
        RESULTS.mkdir(exist_ok=True)
        (RESULTS / "admin_changelist.json").write_text(json.dumps(report, indent=2, default=str) + "\n")
        (RESULTS / "admin_changelist.md").write_text(markdown_report(report, cases))
        print(f"\nWrote {RESULTS / 'admin_changelist.md'} and .json")
    return 0


# ---------------------------------------------------------------------------------------------
# Cases, from the admin as registered
# ---------------------------------------------------------------------------------------------
def _model_admin(label: str):
    from django.apps import apps
    from django.contrib import admin

    model = apps.get_model(label)
    return model, admin.site._registry.get(model)


def _changelist(label: str, params: dict | None = None):
    """The ChangeList the admin would build for a superuser and these query parameters."""
    from django.contrib.auth.models import User
    from django.test import RequestFactory

    model, model_admin = _model_admin(label)
    request = RequestFactory().get("/", params or {})
    request.user = User.objects.get(username=BENCH_USER)
    return model_admin.get_changelist_instance(request)


BENCH_USER = "bench"


def build_cases() -> list[Case]:
    from django.db.models import Count

    from orders.models import Customer, Order

    cases: list[Case] = []
    order_cases = [Case("orders: page 1", "orders.order"), Case("orders: page 1000 (?p=1000)", "orders.order",
                                                                 {"p": "1000"})]
    _, order_admin = _model_admin("orders.order")
    if order_admin is None:
        for case in order_cases:
            case.skipped = "orders.Order is not registered in the admin"
        cases += order_cases
    else:
        cl = _changelist("orders.order")
        status_param = next((param for spec in cl.filter_specs for param in spec.expected_parameters()
                             if param.split("__")[0] == "status"), None)
        for value, note in (("shipped", "a mid-sized status"), ("on_hold", "a rare status"),
                            ("delivered", "the biggest status (~85%)")):
            case = Case(f"orders: status = {value}", "orders.order", note=note)
            if status_param:
                case.params = {status_param: value}
            else:
                case.skipped = "no status filter in OrderAdmin.list_filter"
            order_cases.append(case)
        hierarchy = order_admin.date_hierarchy
        latest = Order.objects.order_by("-ordered_at").values_list("ordered_at", flat=True).first()
        year_case = Case("orders: date drill-down, year", "orders.order")
        month_case = Case("orders: date drill-down, month", "orders.order")
        if hierarchy and latest:
            from django.utils import timezone

            local = timezone.localtime(latest)
            year_case.params = {f"{hierarchy}__year": str(local.year - 1)}
            month_case.params = {f"{hierarchy}__year": str(local.year - 1), f"{hierarchy}__month": "6"}
        else:
            year_case.skipped = month_case.skipped = "OrderAdmin has no date_hierarchy"
        order_cases += [year_case, month_case]
        number = Order.objects.filter(pk=Order.objects.count() // 2).values_list("number", flat=True).first()
        # A customer with a typical number of orders (the median account), searched by full name.
        busy = (Customer.objects.annotate(n=Count("orders")).filter(n__gte=5, n__lte=15)
                .order_by("pk").values_list("name", "n").first())
        order_cases.append(Case("orders: search by order number", "orders.order", {"q": number or ""},
                                note=f"q={number}"))
        if busy:
            order_cases.append(Case("orders: search by customer name", "orders.order", {"q": busy[0]},
                                    note=f"q={busy[0]!r} ({busy[1]} orders)"))
        total_index = next((index for index, name in enumerate(cl.list_display)
                            if cl.get_ordering_field(name) in ("total", "-total")), None)
        sort_case = Case("orders: sorted by total, largest first", "orders.order")
        if total_index is None:
            sort_case.skipped = "OrderAdmin does not offer sorting by total (sortable_by)"
            sort_case.raw_order_by = ("-total", "-pk")
        else:
            sort_case.params = {"o": f"-{total_index}"}
        order_cases.append(sort_case)
        cases += order_cases
    for label, name in (("invoices.invoice", "invoices: page 1"), ("orders.customer", "customers: page 1")):
        case = Case(name, label)
        if _model_admin(label)[1] is None:
            case.skipped = f"{label} is not registered in the admin"
        cases.append(case)
    for case in cases:
        app_label, model_name = case.model.split(".")
        case.url = f"/admin/{app_label}/{model_name}/" + (f"?{urlencode(case.params)}" if case.params else "")
    return cases


def logged_in_client():
    from django.contrib.auth.models import User
    from django.test import Client

    user = User.objects.filter(username=BENCH_USER).first()
    if user is None:
        user = User.objects.create_superuser(BENCH_USER, "bench@example.com", None)
    client = Client()
    client.force_login(user)
    return client


# ---------------------------------------------------------------------------------------------
# Measuring
# ---------------------------------------------------------------------------------------------
class _Recorder:
    """connection.execute_wrapper: every statement with its parameters and its time."""

    def __init__(self):
        self.queries: list[dict] = []

    def __call__(self, execute, sql, params, many, context):
        started = time.perf_counter()
        try:
            return execute(sql, params, many, context)
        finally:
            self.queries.append({"sql": sql, "params": params, "many": many,
                                 "ms": (time.perf_counter() - started) * 1000})


def measure(case: Case, client, *, runs: int, warmups: int, budget_s: float) -> None:
    """Time the render; a case slower than the budget stops after MIN_RUNS runs (its figures say so)."""
    from django.db import connection

    if case.skipped:
        return
    response = client.get(case.url)
    case.status_code = response.status_code
    if response.status_code != 200:
        case.skipped = f"HTTP {response.status_code}" + (
            f" → {response.get('Location')}" if response.status_code in (301, 302) else "")
        return
    for _ in range(max(0, warmups - 1)):
        client.get(case.url)
    deadline = time.monotonic() + budget_s
    for _ in range(runs):
        started = time.perf_counter()
        response = client.get(case.url)
        # Reading the body: the render is only done once the content is there.
        assert len(response.content) > 0 and response.status_code == 200
        case.runs_ms.append((time.perf_counter() - started) * 1000)
        if len(case.runs_ms) >= MIN_RUNS and time.monotonic() > deadline:
            break
    recorder = _Recorder()
    with connection.execute_wrapper(recorder):
        client.get(case.url)
    # The session and user look-ups are the same on every admin page; keep them, they are part of the wait.
    case.queries = recorder.queries


MIN_RUNS = 5


def _timed(cursor, sql: str, params, runs: int) -> float:
    """Median time of running a statement and fetching its rows, after one untimed run."""
    timings = []
    for _ in range(runs + 1):
        started = time.perf_counter()
        cursor.execute(sql, params)
        cursor.fetchall()
        timings.append((time.perf_counter() - started) * 1000)
    return statistics.median(timings[1:])


def floor(case: Case, *, runs: int) -> None:
    """The page's own SELECT (the rows shown), executed raw: what no admin tuning can beat.

    Also the same SELECT fetching the primary keys only: when that is much quicker, the time goes
    into computing columns (subqueries, joins) for rows the page skips or sorts away, and fetching
    the page's keys first, then their columns, would recover it.
    """
    from django.db import connection

    if case.skipped and not case.raw_order_by:
        return
    cl = _changelist(case.model, case.params)
    page = cl.result_list
    if case.raw_order_by:
        page = cl.queryset.order_by(*case.raw_order_by)[:cl.list_per_page]
    sql, params = page.query.sql_with_params()
    if case.raw_order_by:
        case.queries = [{"sql": sql, "params": params, "many": False, "ms": 0.0}]
    keys = page.query.clone()
    keys.clear_select_clause()
    keys.add_fields([page.model._meta.pk.name])
    keys_sql, keys_params = keys.sql_with_params()
    # Slow statements are timed fewer times: the budget is the same for every case.
    first = time.perf_counter()
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        cursor.fetchall()
        repeat = runs if time.perf_counter() - first < 0.5 else MIN_RUNS
        case.floor_ms = _timed(cursor, sql, params, repeat)
        case.keys_ms = _timed(cursor, keys_sql, keys_params, repeat)
    if case.raw_order_by:
        case.queries[0]["ms"] = case.floor_ms
        explain(case)
        case.queries = []


def explain(case: Case, top: int = 3) -> None:
    from django.db import connection

    slowest = sorted((q for q in case.queries if not q["many"] and q["sql"].lstrip().upper().startswith("SELECT")),
                     key=lambda q: -q["ms"])[:top]
    with connection.cursor() as cursor:
        for query in slowest:
            cursor.execute("EXPLAIN (ANALYZE, BUFFERS) " + query["sql"], query["params"])
            plan = "\n".join(row[0] for row in cursor.fetchall())
            case.explains.append({"ms": round(query["ms"], 1), "sql": _inline(cursor, query), "plan": plan})


def _inline(cursor, query: dict) -> str:
    """The statement with its parameters in place (psycopg's own quoting), for someone to re-run."""
    try:
        return cursor.cursor.mogrify(query["sql"], query["params"])
    except Exception:  # noqa: BLE001 - the raw SQL is still useful without parameters
        return f"{query['sql']}  -- params: {query['params']!r}"


# ---------------------------------------------------------------------------------------------
# Reporting
# ---------------------------------------------------------------------------------------------
def machine() -> dict:
    from django.db import connection

    meminfo = Path("/proc/meminfo").read_text() if Path("/proc/meminfo").exists() else ""
    mem_kb = next((int(line.split()[1]) for line in meminfo.splitlines() if line.startswith("MemTotal")), 0)
    cpuinfo = Path("/proc/cpuinfo").read_text() if Path("/proc/cpuinfo").exists() else ""
    cpu = next((line.split(":", 1)[1].strip() for line in cpuinfo.splitlines() if line.startswith("model name")),
               platform.processor())
    with connection.cursor() as cursor:
        cursor.execute("SELECT version()")
        pg_version = cursor.fetchone()[0].split(" on ")[0]
        pg_settings = {}
        for name in ("shared_buffers", "work_mem", "effective_cache_size", "random_page_cost", "jit"):
            cursor.execute(f"SHOW {name}")
            pg_settings[name] = cursor.fetchone()[0]
    try:
        load_average = os.getloadavg()
    except OSError:
        load_average = None
    return {"nproc": os.cpu_count(), "memory_gb": round(mem_kb / 1024 / 1024, 1), "cpu": cpu,
            "python": platform.python_version(), "django": __import__("django").get_version(),
            "postgresql": pg_version, "postgresql_settings": pg_settings, "load_average_at_end": load_average}


def git_revision() -> str:
    try:
        head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True,
                              check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--", "orders", "invoices", "oms"], cwd=ROOT,
                               capture_output=True, text=True).stdout.strip()
        return head + (" + uncommitted changes" if dirty else "")
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def build_report(args, load: dict, cases: list[Case]) -> dict:
    from django.conf import settings

    return {
        "benchmark": "admin_changelist",
        "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "code": git_revision(),
        "database": args.database_url.rsplit("/", 1)[-1],
        "machine": machine(),
        "settings": {"module": os.environ["DJANGO_SETTINGS_MODULE"], "DEBUG": settings.DEBUG,
                     "cache": settings.CACHES["default"]["BACKEND"], "ADMIN_LIST_PER_PAGE":
                     getattr(settings, "ADMIN_LIST_PER_PAGE", None)},
        "dataset": load,
        "method": {"runs": args.runs, "warmups": args.warmups, "slow_ms": args.slow_ms,
                   "case_budget_s": args.case_budget,
                   "client": "django.test.Client, superuser, in-process (no network, no static files)"},
        "cases": [
            {"name": c.name, "url": c.url, "note": c.note, "skipped": c.skipped or None,
             "median_ms": _round(c.median), "p95_ms": _round(c.p95), "min_ms": _round(min(c.runs_ms, default=None)),
             "queries": len(c.queries), "sql_ms": _round(c.sql_ms) if c.queries else None,
             "floor_ms": _round(c.floor_ms), "page_keys_only_ms": _round(c.keys_ms),
             "runs_ms": [round(ms, 1) for ms in c.runs_ms],
             "slowest_queries": [{"ms": round(q["ms"], 1), "sql": q["sql"][:2000]}
                                 for q in sorted(c.queries, key=lambda q: -q["ms"])[:3]],
             "explain": c.explains}
            for c in cases
        ],
    }


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 1)


def markdown_table(cases: list[Case]) -> str:
    lines = ["| case | median ms | p95 ms | runs | SQL queries | SQL ms | page SELECT raw (floor) ms "
             "| same, keys only ms |",
             "|---|---:|---:|---:|---:|---:|---:|---:|"]

    def ms(value):
        return "–" if value is None else f"{value:.1f}"

    for c in cases:
        if c.skipped:
            raw = (f"; the SELECT it would run, raw: {c.floor_ms:.0f} ms (keys only {c.keys_ms:.0f} ms)"
                   if c.floor_ms is not None else "")
            lines.append(f"| {c.name} | – | – | – | – | – | skipped: {c.skipped}{raw} | |")
            continue
        lines.append(f"| {c.name} | {c.median:.0f} | {c.p95:.0f} | {len(c.runs_ms)} | {len(c.queries)} | "
                     f"{c.sql_ms:.0f} | {ms(c.floor_ms)} | {ms(c.keys_ms)} |")
    return "\n".join(lines)


def markdown_report(report: dict, cases: list[Case]) -> str:
    m, d = report["machine"], report["dataset"]
    counts = ", ".join(f"{n:,} {table.split('_', 1)[1]}" for table, n in d["counts"].items())
    slow = [c for c in cases if c.explains]
    load = " → ".join(" / ".join(f"{x:.2f}" for x in m[key] or ())
                      for key in ("load_average_at_start", "load_average_at_end"))
    out = [
        "# Admin changelists at scale",
        "",
        f"Run {report['date']} on code {report['code']} — `make bench BENCH_ARGS=admin_changelist`.",
        "",
        f"- Machine: {m['nproc']} CPUs ({m['cpu']}), {m['memory_gb']} GB RAM; {m['postgresql']} "
        f"({', '.join(f'{k}={v}' for k, v in m['postgresql_settings'].items())}); Python {m['python']}, "
        f"Django {m['django']}. Load average (1/5/15 min) at start → end: {load}. The machine is shared, "
        "so single figures move; the medians are what to compare.",
        f"- Data: {counts} (database `{report['database']}`, "
        + ("reused" if d.get("reused") else f"loaded in {d['seconds']:.0f}s") + ").",
        f"- Method: {report['method']['client']}; settings `{report['settings']['module']}`, DEBUG off, "
        f"cache {report['settings']['cache'].rsplit('.', 1)[-1]}. {report['method']['warmups']} warm-ups then "
        f"{report['method']['runs']} timed renders per case (a case slower than the "
        f"{report['method']['case_budget_s']:.0f} s budget stops after {MIN_RUNS}); the query count comes from one "
        "more render with "
        "every statement recorded. The floor is the page's own SELECT (the rows shown) run raw; 'keys only' "
        "is that SELECT fetching the primary keys alone (the cost of finding the page's rows, without "
        "computing their columns).",
        "",
        markdown_table(cases),
        "",
    ]
    notes = [f"- {c.name}: {c.note}" for c in cases if c.note]
    if notes:
        out += ["Case details:", "", *notes, ""]
    if slow:
        out += [f"## Slow cases (median over {report['method']['slow_ms']:.0f} ms) and cases the admin does not offer",
                ""]
        for c in slow:
            if c.median is not None:
                out += [f"### {c.name} — median {c.median:.0f} ms, {len(c.queries)} queries", "", f"URL: `{c.url}`", ""]
            else:
                out += [f"### {c.name} — {c.skipped}; its SELECT run raw takes {c.floor_ms:.0f} ms", ""]
            for e in c.explains:
                out += [f"Statement ({e['ms']} ms when recorded):", "", "```sql", e["sql"], "```", "",
                        "```", e["plan"], "```", ""]
    else:
        out += [f"No case had a median over {report['method']['slow_ms']:.0f} ms.", ""]
    return "\n".join(out)


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))
    sys.exit(main(sys.argv[1:]))
