"""The REST API under load: gunicorn on this machine, a load generator on loopback.

The issue: "report requests/s and p50/p99 for a cached order detail, an uncached one, and an
order list page, next to a minimal Django view on the same server in the same run (the
framework's own ceiling). Goal: the cached detail reaches at least 70% of that ceiling."

Steps:
1. Load (or reuse) the benchmark database with bench/dataset.py (COPY; `--reload` rebuilds it).
2. Make a read-only API user (the Auditors role: real permission checks) and a JWT for it.
3. Start gunicorn (gthread workers; one instance per worker on a shared port, SO_REUSEPORT) with
   bench.api_settings — production settings plus the minimal view — against that database and
   Redis; wait for /health/ready.
4. Check every scenario answers 200, that the cached detail is a cache hit and the uncached one
   a miss, before anything is timed.
5. Per scenario: a warm-up, then the load generator for --duration seconds over --connections
   keep-alive connections (wrk when installed; otherwise a Python generator, slower, noted in
   the report). The details rotate over --hot-orders ids. --rounds rounds; in each, the minimal
   view and the cached detail run back to back (their order alternating from round to round),
   then the other scenarios. A measurement during which one gunicorn worker held more than its
   share of the connections (+2) is taken again (the workers race to accept; one of them often
   takes all 16, which halves that measurement whatever it measures).
6. Print a table (per scenario, its median round); the cached detail's share of the ceiling is
   the median of its per-round shares — each measured against the minimal view of the same
   round, seconds apart, so that a burst of other work on this shared machine falls on both
   sides of the ratio instead of on one scenario's median. Write bench/results/api.md and .json.

Every scenario sends the same Authorization header, so the only difference is the work done.
"""

from __future__ import annotations

import argparse
import datetime as dt
import http.client
import json
import os
import platform
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results"
DEFAULT_DATABASE_URL = "postgres://postgres@127.0.0.1:5432/oms_bench_api"
DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/14"
GOAL = 0.70
#: Times a measurement is taken while the kernel keeps handing most connections to one worker.
MEASURE_ATTEMPTS = 6


@dataclass
class Scenario:
    name: str
    label: str
    paths: list[str]
    headers: dict[str, str] = field(default_factory=dict)
    result: dict = field(default_factory=dict)

    @property
    def rps(self) -> float:
        return self.result.get("rps", 0.0)


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="bench/run.py api", description=__doc__.split("\n")[0])
    parser.add_argument("--database-url", default=os.environ.get("BENCH_API_DATABASE_URL", DEFAULT_DATABASE_URL))
    parser.add_argument("--redis-url", default=os.environ.get("BENCH_API_REDIS_URL", DEFAULT_REDIS_URL))
    parser.add_argument("--reload", action="store_true", help="Drop and load the database again.")
    parser.add_argument("--customers", type=int, default=50_000)
    parser.add_argument("--orders", type=int, default=200_000)
    parser.add_argument("--invoices", type=int, default=150_000)
    parser.add_argument("--duration", type=float, default=4.0, help="Seconds per scenario and round (default 4).")
    parser.add_argument("--rounds", type=int, default=5,
                        help="Scenarios run in turn this many times; the median round counts (default 5). "
                             "Interleaving keeps a burst of other load on the machine from favouring one.")
    parser.add_argument("--only", default="", help="Comma-separated scenario names to run (default: all).")
    parser.add_argument("--warmup", type=float, default=2.0)
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 2, help="gunicorn workers (default: cores)")
    parser.add_argument("--threads", type=int, default=4, help="threads per gunicorn worker (default 4)")
    parser.add_argument("--hot-orders", type=int, default=200, help="Distinct order ids the detail rotates over.")
    parser.add_argument("--generator", choices=["auto", "wrk", "python"], default="auto")
    parser.add_argument("--no-write", action="store_true", help="Print only; do not write bench/results/.")
    return parser.parse_args(argv)


# ---------------------------------------------------------------------------------------------
# Set-up: data, user, server
# ---------------------------------------------------------------------------------------------
def _server_env(args) -> dict[str, str]:
    return {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "bench.api_settings",
        "DATABASE_URL": args.database_url,
        "REDIS_URL": args.redis_url,
        "CACHE_KEY_PREFIX": "oms-bench-api",
        "DEBUG": "false",
        "LOG_LEVEL": "WARNING",
        "CONN_MAX_AGE": "600",
        "JWT_ACCESS_MINUTES": "600",
        "PYTHONPATH": str(ROOT),
    }


def prepare(args) -> tuple[dict, str, list[int], str]:
    """Load the data set; return (load record, access token, hot order ids, a deep cursor)."""
    os.environ.update(_server_env(args))
    warnings.filterwarnings("ignore", message="No directory at", category=UserWarning)
    import django

    django.setup()
    from django.conf import settings
    from django.contrib.auth.models import Group, User
    from django.core.management import call_command
    from django.db import connection, connections
    from rest_framework_simplejwt.tokens import AccessToken

    from bench.dataset import Scale, ensure_dataset
    from oms.api.pagination import Cursor, KeysetPagination
    from orders.models import Order

    assert not settings.DEBUG and settings.DATABASES["default"]["ENGINE"].endswith("postgresql")

    def migrate():
        connections.close_all()
        call_command("migrate", verbosity=0, interactive=False)

    scale = Scale(customers=args.customers, orders=args.orders, invoices=args.invoices)
    load = ensure_dataset(args.database_url, scale, reload=args.reload, migrate=migrate,
                          log=lambda m: print(m, flush=True))
    connections.close_all()
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE")
    user, _ = User.objects.get_or_create(username="bench-api-reader", defaults={"is_staff": True})
    user.groups.set([Group.objects.get(name="Auditors")])
    token = str(AccessToken.for_user(user))
    hot = list(Order.objects.order_by("-ordered_at", "-id").values_list("pk", flat=True)[: args.hot_orders])
    middle = Order.objects.order_by("-ordered_at", "-id")[args.orders // 2]
    cursor = KeysetPagination._encode(Cursor(ordering="-ordered_at", value=middle.ordered_at.isoformat(),
                                             pk=middle.pk, backwards=False))
    connections.close_all()
    return load, token, hot, cursor


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_server(args, port: int) -> list[subprocess.Popen]:
    """`--workers` gunicorn instances of one gthread worker each, sharing the port (SO_REUSEPORT).

    One gunicorn with N workers has them race to accept() on one socket: on this machine one
    worker often takes all 16 connections while the other idles, halving a measurement at
    random. With one listening socket per instance the kernel spreads connections over them.
    """
    servers: list[subprocess.Popen] = []
    try:
        for _ in range(args.workers):
            command = [sys.executable, "-m", "gunicorn", "oms.wsgi:application", "--bind", f"127.0.0.1:{port}",
                       "--reuse-port", "--workers", "1", "--worker-class", "gthread", "--threads", str(args.threads),
                       "--keep-alive", "75", "--log-level", "warning", "--chdir", str(ROOT)]
            servers.append(subprocess.Popen(command, env=_server_env(args), start_new_session=True))
            _wait_ready(servers, port)
        # Connections are spread by hash: enough fresh ones reach every instance at least once.
        for _ in range(10 * args.workers):
            _wait_ready(servers, port)
    except BaseException:
        stop_server(servers)
        raise
    return servers


def _wait_ready(servers: list[subprocess.Popen], port: int) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        for server in servers:
            if server.poll() is not None:
                raise RuntimeError(f"gunicorn exited with {server.returncode}")
        try:
            status, _, _ = fetch(port, "/health/ready")
            if status == 200:
                return
        except OSError:
            pass
        time.sleep(0.2)
    raise RuntimeError("gunicorn did not become ready within 60 s")


def stop_server(servers: list[subprocess.Popen]) -> None:
    for server in servers:
        if server.poll() is None:
            os.killpg(server.pid, signal.SIGTERM)
    for server in servers:
        try:
            server.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)
            server.wait()


def fetch(port: int, path: str, headers: dict | None = None) -> tuple[int, dict, bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        conn.request("GET", path, headers=headers or {})
        response = conn.getresponse()
        return response.status, dict(response.getheaders()), response.read()
    finally:
        conn.close()


def check(port: int, scenarios: list[Scenario]) -> None:
    """Refuse to time anything that does not answer as it should."""
    for scenario in scenarios:
        status, headers, body = fetch(port, scenario.paths[0], scenario.headers)
        if status != 200:
            raise RuntimeError(f"{scenario.name}: {scenario.paths[0]} answered {status}: {body[:300]!r}")
    detail = next(s for s in scenarios if s.name == "order_detail_cached")
    for path in detail.paths:  # warm every hot id
        fetch(port, path, detail.headers)
    _, headers, _ = fetch(port, detail.paths[0], detail.headers)
    if headers.get("X-Cache") != "hit":
        raise RuntimeError(f"the cached detail is not served from the cache (X-Cache: {headers.get('X-Cache')})")
    uncached = next((s for s in scenarios if s.name == "order_detail_uncached"), None)
    if uncached is not None:
        _, headers, _ = fetch(port, uncached.paths[0], uncached.headers)
        if headers.get("X-Cache") != "miss":
            raise RuntimeError("the uncached detail was answered from the cache")


# ---------------------------------------------------------------------------------------------
# Load generators
# ---------------------------------------------------------------------------------------------
WRK_SCRIPT = """
local paths = {%(paths)s}
local i = 0
%(headers)s
request = function()
  i = i %% #paths + 1
  return wrk.format("GET", paths[i])
end
done = function(summary, latency, requests)
  io.write(string.format("WRKJSON {\\"requests\\":%%d,\\"duration_us\\":%%d,\\"errors\\":%%d,"
    .. "\\"non_2xx\\":%%d,\\"p50_us\\":%%d,\\"p99_us\\":%%d,\\"max_us\\":%%d}\\n",
    summary.requests, summary.duration,
    summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout,
    summary.errors.status, latency:percentile(50), latency:percentile(99), latency.max))
end
"""


def run_wrk(port: int, scenario: Scenario, *, seconds: float, connections: int) -> dict:
    script = WRK_SCRIPT % {
        "paths": ", ".join(json.dumps(p) for p in scenario.paths),
        "headers": "\n".join(f"wrk.headers[{json.dumps(k)}] = {json.dumps(v)}" for k, v in scenario.headers.items()),
    }
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as handle:
        handle.write(script)
    try:
        wrk = subprocess.Popen(
            ["wrk", "-t", "1", "-c", str(connections), "-d", f"{seconds:.0f}s", "--timeout", "10s", "-s", handle.name,
             f"http://127.0.0.1:{port}"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        time.sleep(min(0.5, seconds / 4))
        split = connection_split(port)
        output, errors = wrk.communicate()
        if wrk.returncode:
            raise subprocess.CalledProcessError(wrk.returncode, "wrk", output, errors)
    finally:
        os.unlink(handle.name)
    data = json.loads(next(line for line in output.splitlines() if line.startswith("WRKJSON "))[8:])
    return {"requests": data["requests"], "rps": data["requests"] / (data["duration_us"] / 1e6),
            "p50_ms": data["p50_us"] / 1000, "p99_ms": data["p99_us"] / 1000, "max_ms": data["max_us"] / 1000,
            "errors": data["errors"], "non_2xx": data["non_2xx"], "split": split}


def connection_split(port: int) -> list[int] | None:
    """How the load generator's connections are spread over the server's processes, most first.

    The gunicorn workers race to accept() on one socket: one of them often takes all 16
    connections and the other idles, halving the throughput of that whole measurement.
    None when `ss` cannot say.
    """
    try:
        out = subprocess.run(["ss", "-tnpH", "state", "established", f"( sport = :{port} )"],
                             capture_output=True, text=True, timeout=5).stdout
    except (OSError, subprocess.SubprocessError):
        return None
    counts: dict[str, int] = {}
    for pid in re.findall(r"pid=(\d+)", out):
        counts[pid] = counts.get(pid, 0) + 1
    return sorted(counts.values(), reverse=True) or None


def balanced(result: dict, *, connections: int, workers: int) -> bool:
    """Every worker holds its share of the connections, give or take two (or `ss` cannot tell)."""
    split = result.get("split")
    if split is None or workers < 2:
        return True
    share = connections / workers
    return len(split) == workers and split[0] <= share + 2


def run_python(port: int, scenario: Scenario, *, seconds: float, connections: int) -> dict:
    """A keep-alive generator in threads, for machines without wrk (it competes for the GIL)."""
    stop_at = time.perf_counter() + seconds
    latencies: list[float] = []
    failures = [0, 0]
    lock = threading.Lock()

    def worker(offset: int):
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        mine, bad, errors, i = [], 0, 0, offset
        while time.perf_counter() < stop_at:
            path = scenario.paths[i % len(scenario.paths)]
            i += 1
            started = time.perf_counter()
            try:
                conn.request("GET", path, headers=scenario.headers)
                response = conn.getresponse()
                response.read()
                bad += not 200 <= response.status < 300
            except (OSError, http.client.HTTPException):
                errors += 1
                conn.close()
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
                continue
            mine.append(time.perf_counter() - started)
        conn.close()
        with lock:
            latencies.extend(mine)
            failures[0] += errors
            failures[1] += bad

    started = time.perf_counter()
    threads = [threading.Thread(target=worker, args=(n,)) for n in range(connections)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - started
    ordered = sorted(latencies) or [0.0]
    return {"requests": len(latencies), "rps": len(latencies) / elapsed,
            "p50_ms": statistics.median(ordered) * 1000,
            "p99_ms": ordered[min(len(ordered) - 1, int(0.99 * len(ordered)))] * 1000,
            "max_ms": ordered[-1] * 1000, "errors": failures[0], "non_2xx": failures[1]}


def _median_round(results: list[dict]) -> dict:
    """The round with the median throughput, plus every round's requests/s and all errors."""
    ordered = sorted(results, key=lambda r: r["rps"])
    chosen = dict(ordered[(len(ordered) - 1) // 2])
    chosen["rounds_rps"] = [round(r["rps"], 1) for r in results]
    chosen["errors"] = sum(r["errors"] for r in results)
    chosen["non_2xx"] = sum(r["non_2xx"] for r in results)
    return chosen


# ---------------------------------------------------------------------------------------------
# Report
# ---------------------------------------------------------------------------------------------
def markdown_table(scenarios: list[Scenario], ceiling: float) -> str:
    rows = ["| scenario | requests/s | % of minimal view | p50 ms | p99 ms | non-2xx | errors |",
            "|---|---:|---:|---:|---:|---:|---:|"]
    for s in scenarios:
        r = s.result
        rows.append(f"| {s.label} | {r['rps']:,.0f} | {100 * r['rps'] / ceiling:.0f}% | {r['p50_ms']:.1f} | "
                    f"{r['p99_ms']:.1f} | {r['non_2xx']} | {r['errors']} |")
    return "\n".join(rows)


def write_report(args, load: dict, generator: str, scenarios: list[Scenario], ratio: float, table: str,
                 shares: list[float]) -> None:
    RESULTS.mkdir(exist_ok=True)
    machine = {"python": platform.python_version(), "cpus": os.cpu_count(), "platform": platform.platform()}
    report = {
        "when": dt.datetime.now(dt.UTC).isoformat(), "machine": machine, "generator": generator,
        "server": {"gunicorn_workers": args.workers, "threads": args.threads, "worker_class": "gthread",
                   "layout": "one gunicorn instance per worker, SO_REUSEPORT"},
        "load": {"connections": args.connections, "duration_s": args.duration, "hot_orders": args.hot_orders},
        "dataset": load, "goal": GOAL, "cached_detail_share_of_ceiling": round(ratio, 3),
        "cached_detail_share_by_round": [round(x, 3) for x in shares],
        "scenarios": {s.name: {"label": s.label, **{k: round(v, 2) if isinstance(v, float) else v
                                                    for k, v in s.result.items()}} for s in scenarios},
    }
    (RESULTS / "api.json").write_text(json.dumps(report, indent=2, default=str) + "\n")
    verdict = "met" if ratio >= GOAL else "NOT met"
    counts = ", ".join(f"{table_name.split('_', 1)[1]} {n:,}" for table_name, n in load["counts"].items())
    by_name = {s.name: s for s in scenarios}
    floor = ""
    if "redis_get" in by_name and by_name["redis_get"].rps:
        floor = (f" On this machine one Redis round trip alone takes the minimal view to "
                 f"{100 * by_name['redis_get'].rps / by_name['minimal'].rps:.0f}% (Redis, the load generator and "
                 f"gunicorn share the CPUs); the cached detail, which needs exactly one, is at "
                 f"{100 * by_name['order_detail_cached'].rps / by_name['redis_get'].rps:.0f}% of that floor.")
    rounds = "\n".join(f"- {s.label}: " + ", ".join(f"{v:,.0f}" for v in s.result.get("rounds_rps", []))
                       for s in scenarios)
    (RESULTS / "api.md").write_text(
        f"# API under load ({report['when'][:16]}Z)\n\n"
        f"gunicorn {args.workers} gthread workers × {args.threads} threads on {machine['cpus']} CPUs (one instance "
        f"per worker on a shared port, SO_REUSEPORT, so that the kernel spreads the connections); "
        f"{generator} with {args.connections} keep-alive connections on loopback; {args.rounds} rounds of "
        f"{args.duration:.0f} s per scenario, taken in turn, the median round reported (the machine is shared). "
        f"In each round the minimal view and the cached detail run back to back, in alternating order; "
        f"a measurement during which one worker held more than its share of the connections is taken again. "
        f"Data: {counts}. The details rotate over {args.hot_orders} order ids; every request carries the same "
        f"JWT of an Auditors user (real permission checks).\n\n"
        f"{table}\n\n"
        f"Cached order detail: **{100 * ratio:.0f}%** of the minimal Django view (goal {100 * GOAL:.0f}%: "
        f"{verdict}) — the median of its share in each round, against that round's minimal view: "
        f"{', '.join(f'{100 * x:.0f}%' for x in shares)}.{floor}\n\nRequests/s of each round:\n\n{rounds}\n\n"
        f"Run again: `make bench BENCH_ARGS=api` (options: `bench/run.py api --help`).\n")


def main(argv: list[str]) -> int:
    args = parse_args(argv)
    generator = args.generator
    if generator in ("auto", "wrk") and not shutil.which("wrk"):
        # Debian's package, as pgloader for the migration benchmark; installed once when missing.
        subprocess.run([str(ROOT / "bin" / "install-system-deps"), "wrk"], check=False)
    if generator == "auto":
        generator = "wrk" if shutil.which("wrk") else "python"
    if generator == "wrk" and not shutil.which("wrk"):
        print("wrk is not installed (apt-get install wrk)", file=sys.stderr)
        return 2
    load, token, hot, deep_cursor = prepare(args)
    only = {name for name in args.only.split(",") if name}
    auth = {"Authorization": f"Bearer {token}"}
    details = [f"/api/v1/orders/{pk}/" for pk in hot]
    scenarios = [
        Scenario("minimal", "minimal Django view (ceiling)", ["/bench/minimal/"], auth),
        Scenario("redis_get", "minimal view + one Redis GET (calibration)", ["/bench/redis-get/"], auth),
        Scenario("order_detail_cached", "order detail, cached", details, auth),
        Scenario("order_detail_uncached", "order detail, uncached (Cache-Control: no-cache)", details,
                 {**auth, "Cache-Control": "no-cache"}),
        Scenario("order_list_first_page", "order list, first page of 50 (cached)", ["/api/v1/orders/"], auth),
        Scenario("order_list_deep_page", f"order list, page of 50 at row {args.orders // 2:,} (uncached)",
                 [f"/api/v1/orders/?cursor={deep_cursor}"], auth),
    ]
    if only:
        scenarios = [s for s in scenarios if s.name in only | {"minimal", "order_detail_cached"}]
    port = _free_port()
    server = start_server(args, port)
    try:
        check(port, scenarios)
        runner = run_wrk if generator == "wrk" else run_python
        for scenario in scenarios:
            runner(port, scenario, seconds=args.warmup, connections=args.connections)
        rounds: dict[str, list[dict]] = {s.name: [] for s in scenarios}
        pair = [s for s in scenarios if s.name in ("minimal", "order_detail_cached")]
        rest = [s for s in scenarios if s not in pair]
        for number in range(1, args.rounds + 1):
            print(f"round {number}/{args.rounds}", flush=True)
            for scenario in (pair if number % 2 else pair[::-1]) + rest:
                for _ in range(MEASURE_ATTEMPTS):  # measured again while one worker took most connections
                    r = runner(port, scenario, seconds=args.duration, connections=args.connections)
                    if balanced(r, connections=args.connections, workers=args.workers):
                        break
                    print(f"  ({scenario.label}: connections split {r['split']} over the workers; again)", flush=True)
                rounds[scenario.name].append(r)
                print(f"  {scenario.label}: {r['rps']:,.0f} req/s, p50 {r['p50_ms']:.1f} ms, "
                      f"p99 {r['p99_ms']:.1f} ms"
                      + (f", {r['non_2xx']} non-2xx, {r['errors']} errors" if r["non_2xx"] or r["errors"] else ""),
                      flush=True)
        for scenario in scenarios:
            scenario.result = _median_round(rounds[scenario.name])
    finally:
        stop_server(server)
    ceiling = scenarios[0].rps
    cached = next(s for s in scenarios if s.name == "order_detail_cached")
    shares = [c["rps"] / m["rps"] for c, m in zip(rounds["order_detail_cached"], rounds["minimal"]) if m["rps"]]
    ratio = statistics.median(shares) if shares else 0.0
    table = markdown_table(scenarios, ceiling)
    print()
    print(table)
    print(f"\nCached order detail: {100 * ratio:.0f}% of the minimal view, median of the rounds "
          f"({', '.join(f'{100 * x:.0f}%' for x in shares)}; goal {100 * GOAL:.0f}%).")
    if not args.no_write:
        write_report(args, load, generator, scenarios, ratio, table, shares)
        print(f"Wrote {RESULTS / 'api.md'} and .json")
    failed = any(s.result["non_2xx"] or s.result["errors"] for s in scenarios)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))
    sys.exit(main(sys.argv[1:]))
