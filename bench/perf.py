"""Performance benchmark: the product against a bare floor, interleaved, on PostgreSQL.

    .venv/bin/python bench/perf.py            # full run (1M-row read database)
    .venv/bin/python bench/perf.py --quick    # smoke run, smaller and shorter

What it does, in one run:

1. Creates fresh ``allocation_perf*`` databases on 127.0.0.1 (migrated once,
   copied from a template), seeds them with set-based SQL and collects static
   files (production serves the admin from the collectstatic manifest).
2. Serves the product (``allocation_project.wsgi``) and the floor
   (``bench.floor``: one bare allocation transaction in a minimal Django + DRF
   app) under gunicorn with identical settings: the repository's
   ``gunicorn.conf.py`` if there is one, else the Dockerfile's flags; DEBUG
   off; the product with its production middleware and token auth, as a
   non-superuser holding only the allocate permission. Requests carry
   ``X-Forwarded-Proto: https`` as the TLS proxy in front of production does.
3. Drives both with ``bench.loadgen`` (closed loop, one process per
   connection, bounded by request count and time) in alternating rounds, and
   reports every figure as a ratio to what it is compared with in the same
   rounds: the product to the floor, a SKU with 100,000 past lines to a fresh
   SKU, the 1M-row database to the 1,000-row one.
4. For the throughput rounds, also measures where the CPU goes: the CPU
   time of the server's gunicorn tree (workers it recycled included) and of
   PostgreSQL (its postmaster's tree, when this user can read its PID file),
   per request; at c8 the machine's two cores are what runs out, so these
   explain the ratio.
5. Prints a table and writes ``bench/results/perf.json``; stops every process
   it started (by PID) and drops its databases.

The machine is shared and noisy: absolute figures move from run to run, the
ratios much less. Nothing here is a test; nothing in the test suite is timed.
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import json
import os
import platform
import random
import signal
import socket
import statistics
import subprocess
import sys
import time
from datetime import UTC
from pathlib import Path
from urllib.parse import urlsplit

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench import loadgen, perf_seed  # noqa: E402

PYTHON = sys.executable
GUNICORN = str(Path(PYTHON).with_name("gunicorn"))
RESULTS = ROOT / "bench" / "results"

# The Dockerfile's gunicorn flags: used when the repository has no gunicorn.conf.py.
DOCKERFILE_FLAGS = [
    "--timeout", "30",
    "--graceful-timeout", "30",
    "--keep-alive", "5",
    "--max-requests", "1000",
    "--max-requests-jitter", "100",
    "--access-logfile", "-",
]  # fmt: skip
DOCKERFILE_WORKERS = "3"

TARGETS = {
    "throughput_ratio": 0.8,  # product rps >= 0.8 x floor rps
    "history_p50_ratio": 1.15,  # p50 on a SKU with history <= 1.15 x fresh SKU
    "read_p50_ratio": 1.5,  # p50 on 1M rows <= 1.5 x 1,000 rows
    "admin_p50_seconds": 1.0,  # batch changelist on 1M batches
}


# -- plumbing -------------------------------------------------------------------


def log(message: str) -> None:
    print(f"[perf {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def database_url(base: str, name: str) -> str:
    parts = urlsplit(base)
    return parts._replace(path=f"/{name}").geturl()


class Server:
    """One gunicorn master serving ``app`` on 127.0.0.1; stopped by its PID."""

    #: Extra gunicorn arguments for every server (--gunicorn-arg): what-if runs only.
    extra_args: list[str] = []

    def __init__(self, label: str, app: str, env: dict[str, str], log_dir: Path) -> None:
        self.label = label
        self.port = free_port()
        if (ROOT / "gunicorn.conf.py").exists():
            flags = ["-c", str(ROOT / "gunicorn.conf.py")]
        else:
            flags = list(DOCKERFILE_FLAGS)
            env = {"WEB_CONCURRENCY": DOCKERFILE_WORKERS, **env}
        command = [GUNICORN, app, "--bind", f"127.0.0.1:{self.port}", *flags, *self.extra_args]
        self.log_path = log_dir / f"{label}.log"
        self.log_file = open(self.log_path, "wb")  # noqa: SIM115 - closed in stop()
        self.process = subprocess.Popen(  # noqa: S603 - our own command line
            command,
            cwd=ROOT,
            env=env,
            stdout=self.log_file,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        self.command = command

    def wait_ready(self, path: str, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        request = loadgen.http_request("GET", path, port=self.port)
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"{self.label} exited; see {self.log_path}")
            with contextlib.suppress(OSError):
                status, _ = loadgen.fetch(self.port, request)
                if status == 200:
                    return
            time.sleep(0.2)
        raise RuntimeError(f"{self.label} did not answer {path} within {timeout}s")

    def workers(self) -> int:
        children = Path(f"/proc/{self.process.pid}/task/{self.process.pid}/children")
        with contextlib.suppress(OSError):
            return len(children.read_text().split())
        return 0

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.log_file.close()


def run_django(env: dict[str, str], *args: str) -> str:
    done = subprocess.run(  # noqa: S603 - our own command line
        [PYTHON, *args], cwd=ROOT, env=env, check=True, capture_output=True, text=True
    )
    return done.stdout


# -- request factories ------------------------------------------------------------


def api_headers(token: str) -> dict[str, str]:
    return {
        "Authorization": f"Token {token}",
        "Accept": "application/json",
        "X-Forwarded-Proto": "https",
    }


def allocation_factory(port: int, headers: dict, tag: str, skus: list[str], qty: int = 1):
    """POST /api/allocations/ with a new order id every time, on a random SKU of ``skus``."""
    rngs: dict[int, random.Random] = {}

    def make(worker: int, n: int) -> bytes:
        rng = rngs.setdefault(worker, random.Random(f"{tag}-{worker}"))
        sku = skus[rng.randrange(len(skus))] if len(skus) > 1 else skus[0]
        body = json.dumps({"order_id": f"{tag}-{worker}-{n}", "sku": sku, "qty": qty})
        return loadgen.http_request(
            "POST", "/api/allocations/", port=port, body=body.encode(), headers=headers
        )

    return make


def order_factory(port: int, headers: dict, tag: str, skus: list[str], lines: int = 10):
    """POST /api/orders/ of ``lines`` lines on distinct random SKUs of ``skus``, a new order id."""
    rngs: dict[int, random.Random] = {}

    def make(worker: int, n: int) -> bytes:
        rng = rngs.setdefault(worker, random.Random(f"{tag}-{worker}"))
        chosen = rng.sample(skus, lines)
        body = json.dumps(
            {"order_id": f"{tag}-{worker}-{n}", "lines": [{"sku": s, "qty": 1} for s in chosen]}
        )
        return loadgen.http_request(
            "POST", "/api/orders/", port=port, body=body.encode(), headers=headers
        )

    return make


def get_factory(port: int, path: str, headers: dict):
    request = loadgen.http_request("GET", path, port=port, headers=headers)
    return lambda worker, n: request


# -- measurements ------------------------------------------------------------------


class Recorder:
    """Collects loadgen results under (section, label) and pools them across rounds."""

    def __init__(self) -> None:
        self.runs: dict[tuple[str, str], list[loadgen.Result]] = {}
        #: (server, PostgreSQL) CPU seconds of each run measured with a CpuMeter.
        self.cpu: dict[tuple[str, str], list[tuple[float | None, float | None]]] = {}

    def add(
        self, section: str, label: str, result: loadgen.Result, cpu: CpuMeter | None = None
    ) -> loadgen.Result:
        self.runs.setdefault((section, label), []).append(result)
        s = result.summary()
        spent = ""
        if cpu is not None:
            self.cpu.setdefault((section, label), []).append((cpu.app_seconds, cpu.pg_seconds))
            per = {k: _per_request(v, result.requests) for k, v in
                   (("app", cpu.app_seconds), ("pg", cpu.pg_seconds))}  # fmt: skip
            spent = f"  cpu ms/req app {per['app']} pg {per['pg']}"
        log(
            f"  {section:<22} {label:<16} {s['rps']:>8.1f} req/s  p50 {s['p50_ms']:>8.2f} ms  "
            f"p99 {s['p99_ms']:>8.2f} ms  {s['statuses']}  busy {s['machine_busy_pct']}%{spent}"
        )
        return result

    def cpu_per_request(self, section: str, label: str) -> dict:
        """Server and PostgreSQL CPU milliseconds per request, pooled over the rounds."""
        runs = self.cpu.get((section, label), [])
        requests = sum(r.requests for r in self.runs[(section, label)])
        out = {}
        for index, name in ((0, "server_cpu_ms"), (1, "postgres_cpu_ms")):
            values = [run[index] for run in runs]
            out[name] = (
                None if not values or None in values else _per_request(sum(values), requests)
            )
        return out

    def pooled(self, section: str, label: str) -> dict:
        results = self.runs[(section, label)]
        merged = loadgen.Result(
            concurrency=results[0].concurrency,
            requests=sum(r.requests for r in results),
            seconds=sum(r.seconds for r in results),
            latencies=[x for r in results for x in r.latencies],
            client_cpu_seconds=sum(r.client_cpu_seconds for r in results),
            machine_busy=statistics.fmean(r.machine_busy for r in results),
        )
        for r in results:
            merged.statuses.update(r.statuses)
        summary = merged.summary()
        summary["rounds_rps"] = [round(r.rps, 1) for r in results]
        summary["rounds_p50_ms"] = [round(r.percentile(50) * 1000, 2) for r in results]
        return summary


def _per_request(seconds: float | None, requests: int) -> float | None:
    return None if seconds is None or not requests else round(seconds / requests * 1000, 3)


def round_ratios(recorder: Recorder, section: str, top: str, bottom: str, key: str) -> dict:
    """Ratio top/bottom per round (they ran side by side) and over the pooled runs."""
    tops = recorder.runs[(section, top)]
    bottoms = recorder.runs[(section, bottom)]

    def value(result: loadgen.Result) -> float:
        return result.rps if key == "rps" else result.percentile(50)

    per_round = [value(t) / value(b) for t, b in zip(tops, bottoms, strict=True)]
    pooled_top = recorder.pooled(section, top)
    pooled_bottom = recorder.pooled(section, bottom)
    field = "rps" if key == "rps" else "p50_ms"
    return {
        "median_of_rounds": round(statistics.median(per_round), 3),
        "rounds": [round(x, 3) for x in per_round],
        "pooled": round(pooled_top[field] / pooled_bottom[field], 3),
    }


def interleaved(rounds: int, labels: list[str]):
    """Round r runs the labels in order, reversed on odd rounds (ABBA): drift cancels."""
    for r in range(rounds):
        yield r, (labels if r % 2 == 0 else list(reversed(labels)))


def has_5xx(summary: dict) -> int:
    return sum(v for k, v in summary["statuses"].items() if k.startswith("5") or k == "0")


# -- the run ---------------------------------------------------------------------------


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="small, short smoke run")
    parser.add_argument(
        "--pg", default=os.environ.get("PERF_PG_URL", "postgres://postgres@127.0.0.1:5432/postgres"),
        help="PostgreSQL server (a URL to any existing database on it)",
    )  # fmt: skip
    parser.add_argument("--rounds", type=int, help="interleaved rounds per comparison")
    parser.add_argument(
        "--gunicorn-arg",
        action="append",
        default=[],
        help="extra gunicorn argument for product and floor alike (what-if runs, e.g. --preload)",
    )
    parser.add_argument(
        "--floor-prepared",
        action="store_true",
        help="what-if: the floor on the product's database backend (prepared statements)",
    )
    parser.add_argument(
        "--product-env",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="what-if: an environment variable for the product's servers only "
        "(e.g. DATABASE_PREPARED_STATEMENTS=0)",
    )
    parser.add_argument("--keep-databases", action="store_true")
    parser.add_argument(
        "--setup-only", action="store_true", help="create and seed the databases, keep them, stop"
    )
    parser.add_argument("--output", type=Path, default=RESULTS / "perf.json")
    parser.add_argument("--only", choices=["writes", "reads"], help="run one half (default: both)")
    args = parser.parse_args()

    quick = args.quick
    Server.extra_args = list(args.gunicorn_arg)
    cfg = {
        "rounds": args.rounds or (2 if quick else 5),
        "throughput_requests": 600 if quick else 2500,
        "throughput_seconds": 10 if quick else 20,
        "warmup_requests": 150 if quick else 400,
        "history_lines": 100_000,
        "latency_requests": 100 if quick else 300,
        "read_rows_big": 100_000 if quick else 1_000_000,
        "read_rows_small": 1_000,
        "read_requests": 50 if quick else 200,
        "admin_requests": 5 if quick else 15,
    }
    RESULTS.mkdir(parents=True, exist_ok=True)
    log_dir = RESULTS / "logs"
    log_dir.mkdir(exist_ok=True)
    secret = "perf-" + os.urandom(16).hex()
    names = {
        "template": "allocation_perf_template",
        "writes": "allocation_perf",
        "small": "allocation_perf_read_small",
        "big": "allocation_perf_read_big",
    }

    def product_env(db: str) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "DATABASE_"))}
        env.update(
            DATABASE_URL=database_url(args.pg, db),
            SECRET_KEY=secret,
            DEBUG="0",
            ALLOWED_HOSTS="127.0.0.1",
            PYTHONDONTWRITEBYTECODE="1",
        )
        return env

    what_if = dict(item.split("=", 1) for item in args.product_env)

    def product_server_env(db: str) -> dict[str, str]:
        return {**product_env(db), **what_if}

    def floor_env(db: str) -> dict[str, str]:
        env = {**product_env(db), "DJANGO_SETTINGS_MODULE": "bench.floor.settings"}
        if args.floor_prepared:
            env["FLOOR_PREPARED"] = "1"
        return env

    servers: list[Server] = []
    recorder = Recorder()
    report: dict = {
        "command": " ".join(["bench/perf.py", *sys.argv[1:]]),
        "started": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "machine": machine(),
        "config": {**cfg, "floor_prepared": args.floor_prepared, "product_env": what_if},
        "targets": TARGETS,
    }
    load_before = os.getloadavg()
    pg_started = postmaster_start(args.pg)
    try:
        log("databases: migrate a template, copy it, seed")
        started = time.monotonic()
        perf_seed.recreate_database(args.pg, names["template"])
        run_django(product_env(names["template"]), "manage.py", "migrate", "--noinput", "-v0")
        run_django(product_env(names["template"]), "manage.py", "collectstatic", "--noinput", "-v0")
        wanted = ["writes", "small", "big"]
        if args.only == "writes":
            wanted = ["writes"]
        elif args.only == "reads":
            wanted = ["small", "big"]
        for key in wanted:
            copy_database(args.pg, names["template"], names[key])
        seeding = {}
        if "writes" in wanted:
            t = time.monotonic()
            perf_seed.seed_writes(
                database_url(args.pg, names["writes"]), history_lines=cfg["history_lines"]
            )
            seeding["writes_seconds"] = round(time.monotonic() - t, 1)
        if "small" in wanted:
            for key, rows in (("small", cfg["read_rows_small"]), ("big", cfg["read_rows_big"])):
                t = time.monotonic()
                perf_seed.seed_reads(database_url(args.pg, names[key]), batches=rows)
                seeding[f"{key}_seconds"] = round(time.monotonic() - t, 1)
        seeding["total_seconds"] = round(time.monotonic() - started, 1)
        report["seeding"] = seeding
        log(f"seeded: {seeding}")
        if args.setup_only:
            args.keep_databases = True
            print(json.dumps({k: database_url(args.pg, names[k]) for k in wanted}, indent=2))
            return 0

        if "writes" in wanted:
            report["writes"] = bench_writes(
                cfg, names, product_server_env, floor_env, log_dir, servers, recorder
            )
            stop_all(servers)
        if "small" in wanted:
            report["reads"] = bench_reads(
                cfg, args.pg, names, product_server_env, log_dir, servers, recorder
            )
            stop_all(servers)
    finally:
        stop_all(servers)
        if not args.keep_databases:
            for name in names.values():
                with contextlib.suppress(Exception):
                    perf_seed.drop_database(args.pg, name)
    # Someone else restarting the shared PostgreSQL mid-run shows up as 5xx
    # that are not the product's: say so rather than let them pass as results.
    report["postgres_restarted_during_run"] = postmaster_start(args.pg) != pg_started
    report["load_average_before"] = [round(x, 2) for x in load_before]
    report["load_average_after"] = [round(x, 2) for x in os.getloadavg()]
    report["verdict"] = verdict(report)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(report, indent=2) + "\n")
    print_table(report)
    print(f"\nJSON: {args.output}")
    return 0


def postmaster_start(pg: str) -> str:
    with perf_seed.connect(pg) as connection, connection.cursor() as cursor:
        cursor.execute("SELECT pg_postmaster_start_time()::text")
        return cursor.fetchone()[0]


def postmaster_pid(pg: str) -> int | None:
    """The PID of the PostgreSQL server (its postmaster.pid), if this user may read it."""
    with contextlib.suppress(Exception):
        with perf_seed.connect(pg) as connection, connection.cursor() as cursor:
            cursor.execute("SHOW data_directory")
            (directory,) = cursor.fetchone()
        return int((Path(directory) / "postmaster.pid").read_text().split()[0])
    return None


def tree_cpu_seconds(pid: int | None) -> float | None:
    """CPU seconds of a process, its live children and the children it has reaped.

    A gunicorn master reaps the workers it recycles and PostgreSQL's
    postmaster the backends that end, so this counts them too (Linux /proc).
    """
    if pid is None:
        return None
    try:
        ticks = os.sysconf("SC_CLK_TCK")
        total = _own_and_reaped(pid)
        children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    except (OSError, ValueError):
        return None
    for child in children:
        with contextlib.suppress(OSError, ValueError):
            total += _own_and_reaped(int(child))
    return total / ticks


def _own_and_reaped(pid: int) -> int:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    # utime, stime, cutime, cstime (fields 14-17 of proc(5); two are before ")").
    return sum(int(value) for value in fields[11:15])


class CpuMeter:
    """Server-side CPU of one loadgen run: the gunicorn tree and PostgreSQL, per request."""

    def __init__(self, server: Server, pg_pid: int | None) -> None:
        self.server, self.pg_pid = server, pg_pid

    def __enter__(self) -> CpuMeter:
        self.app = tree_cpu_seconds(self.server.process.pid)
        self.pg = tree_cpu_seconds(self.pg_pid)
        return self

    def __exit__(self, *exc) -> None:
        app, pg = tree_cpu_seconds(self.server.process.pid), tree_cpu_seconds(self.pg_pid)
        self.app_seconds = None if app is None or self.app is None else app - self.app
        self.pg_seconds = None if pg is None or self.pg is None else pg - self.pg


def copy_database(pg: str, template: str, name: str) -> None:
    perf_seed.drop_database(pg, name)
    with perf_seed.connect(pg) as connection, connection.cursor() as cursor:
        cursor.execute(f'CREATE DATABASE "{name}" TEMPLATE "{template}"')


def stop_all(servers: list[Server]) -> None:
    while servers:
        servers.pop().stop()


def start(servers: list[Server], server: Server, ready_path: str) -> Server:
    servers.append(server)
    server.wait_ready(ready_path)
    return server


def accounts(env: dict[str, str]) -> dict:
    return json.loads(run_django(env, "bench/perf_accounts.py"))


def machine() -> dict:
    mem_kib = 0
    with contextlib.suppress(OSError), open("/proc/meminfo") as meminfo:
        mem_kib = int(meminfo.readline().split()[1])
    cpu = ""
    with contextlib.suppress(OSError), open("/proc/cpuinfo") as cpuinfo:
        cpu = next((line.split(":", 1)[1].strip() for line in cpuinfo if "model name" in line), "")
    pg = ""
    with contextlib.suppress(Exception):
        psql = ["psql", "-h", "127.0.0.1", "-U", "postgres", "-Atc", "SHOW server_version"]
        done = subprocess.run(psql, capture_output=True, text=True, check=False)  # noqa: S603
        pg = done.stdout.strip()
    return {
        "cpus": os.cpu_count(),
        "cpu_model": cpu,
        "memory_gib": round(mem_kib / 1024 / 1024, 1),
        "python": platform.python_version(),
        "postgresql": pg,
        "kernel": platform.release(),
    }


def bench_writes(cfg, names, product_env, floor_env, log_dir, servers, recorder) -> dict:
    db = names["writes"]
    creds = accounts(product_env(db))
    product = start(
        servers, Server("product", "allocation_project.wsgi", product_env(db), log_dir), "/healthz"
    )
    floor = start(servers, Server("floor", "bench.floor.wsgi", floor_env(db), log_dir), "/healthz")
    # The floor's allocation in the product's stack, with its event (floor/stack_views.py).
    stack_env = {**product_env(db), "DJANGO_SETTINGS_MODULE": "bench.floor.stack_settings"}
    stack = start(
        servers, Server("stack_floor", "bench.floor.stack_wsgi", stack_env, log_dir), "/healthz"
    )
    headers = api_headers(creds["token"])
    many = [perf_seed.sku_name(n) for n in range(perf_seed.MANY_SKUS)]
    out: dict = {
        "gunicorn": {"command": product.command, "workers": product.workers()},
        "floor_gunicorn": {"command": floor.command, "workers": floor.workers()},
        "stack_floor_gunicorn": {"command": stack.command, "workers": stack.workers()},
    }
    workers = out["gunicorn"]["workers"]
    log(
        f"writes: product :{product.port}, floor :{floor.port}, stack floor :{stack.port},"
        f" {workers} workers each"
    )

    # Warm every worker (imports, URL resolvers, connections) before measuring.
    for server in (floor, stack, product):
        loadgen.run(
            server.port,
            allocation_factory(server.port, headers, f"warm-{server.label}", many),
            concurrency=8,
            max_requests=cfg["warmup_requests"],
            max_seconds=30,
        )

    scenarios = [
        ("many_skus_c8", 8, many),
        ("one_sku_c16", 16, [perf_seed.HOT_SKU]),
    ]
    pg_pid = postmaster_pid(product_env(db)["DATABASE_URL"])
    for section, concurrency, skus in scenarios:
        log(f"throughput: {section}")
        for r, order in interleaved(cfg["rounds"], [floor, product, stack]):
            for server in order:
                with CpuMeter(server, pg_pid) as cpu:
                    result = loadgen.run(
                        server.port,
                        allocation_factory(
                            server.port, headers, f"{section}-{r}-{server.label}", skus
                        ),
                        concurrency=concurrency,
                        max_requests=cfg["throughput_requests"],
                        max_seconds=cfg["throughput_seconds"],
                    )
                recorder.add(section, server.label, result, cpu)
        out[section] = {
            "floor": recorder.pooled(section, "floor"),
            "product": recorder.pooled(section, "product"),
            "stack_floor": recorder.pooled(section, "stack_floor"),
            # Where the CPU goes (the machine's two cores are what runs out at
            # c8): the gunicorn tree's and PostgreSQL's, per request.
            "cpu_per_request": {
                label: recorder.cpu_per_request(section, label)
                for label in ("floor", "product", "stack_floor")
            },
            "rps_ratio": round_ratios(recorder, section, "product", "floor", "rps"),
            # Against the floor with the SPEC's own work (token, permission,
            # middleware, event): what the product's design costs.
            "rps_ratio_to_stack_floor": round_ratios(
                recorder, section, "product", "stack_floor", "rps"
            ),
            "p50_ratio": round_ratios(recorder, section, "product", "floor", "p50"),
        }

    # Orders (SPEC 2.5): 10-line orders against single-line allocations, both
    # on the product at c8 over the many SKUs; compared in lines per second.
    section = "orders_c8"
    log(f"throughput: {section}")
    kinds = [("single_line", allocation_factory), ("order_of_10", order_factory)]
    for r, order in interleaved(cfg["rounds"], kinds):
        for label, factory in order:
            result = loadgen.run(
                product.port,
                factory(product.port, headers, f"{section}-{r}-{label}", many),
                concurrency=8,
                max_requests=cfg["throughput_requests"] // (10 if label == "order_of_10" else 1),
                max_seconds=cfg["throughput_seconds"],
            )
            recorder.add(section, label, result)
    single = recorder.pooled(section, "single_line")
    orders = recorder.pooled(section, "order_of_10")
    out[section] = {
        "single_line": single,
        "order_of_10": orders,
        # Issue #14's target: at least 4.
        "lines_per_s_ratio": round(10 * orders["rps"] / single["rps"], 2),
    }

    # Latency alone (one request at a time): a SKU with a long history
    # against a fresh one, the floor beside them for scale.
    section = "history_c1"
    log(f"latency: {section}")
    cases = [
        ("fresh", product, perf_seed.FRESH_SKU),
        ("history", product, perf_seed.HISTORY_SKU),
        ("floor_fresh", floor, perf_seed.FRESH_SKU),
    ]
    for r, order in interleaved(cfg["rounds"], cases):
        for label, server, sku in order:
            result = loadgen.run(
                server.port,
                allocation_factory(server.port, headers, f"{section}-{r}-{label}", [sku]),
                concurrency=1,
                max_requests=cfg["latency_requests"],
                max_seconds=30,
            )
            recorder.add(section, label, result)
    out[section] = {
        label: recorder.pooled(section, label) for label in ("fresh", "history", "floor_fresh")
    }
    out[section]["history_to_fresh_p50"] = round_ratios(
        recorder, section, "history", "fresh", "p50"
    )
    out[section]["fresh_to_floor_p50"] = round_ratios(
        recorder, section, "fresh", "floor_fresh", "p50"
    )
    out[section]["history_lines"] = cfg["history_lines"]
    return out


def deep_page_path(port: int, headers: dict, dsn: str) -> str:
    """GET /api/batches/ from a cursor 90% of the way through the list.

    Following ``next`` 9,000 times would take minutes; the cursor is built
    here from the row at that depth, the way the product's keyset pagination
    (allocation/api/pagination.py) encodes it, and checked against the row
    the page must start with.
    """
    with perf_seed.connect(dsn) as connection, connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM allocation_batch")
        (total,) = cursor.fetchone()
        cursor.execute(
            """
            SELECT sku, eta, created_at, reference FROM allocation_batch
            ORDER BY sku, eta ASC NULLS FIRST, created_at, reference
            OFFSET %s LIMIT 2
            """,
            [total * 9 // 10],
        )
        (sku, eta, created_at, reference), (*_, expected) = cursor.fetchall()
    key = [sku, eta and eta.isoformat(), created_at.astimezone(UTC).isoformat(), reference]
    raw = json.dumps({"k": key, "r": False}, separators=(",", ":")).encode()
    path = "/api/batches/?cursor=" + base64.urlsafe_b64encode(raw).decode().rstrip("=")
    status, body = loadgen.fetch(
        port, loadgen.http_request("GET", path, port=port, headers=headers)
    )
    first = json.loads(body)["results"][0]["reference"] if status == 200 else None
    if first != expected:
        raise RuntimeError(
            f"deep cursor page starts at {first!r} (status {status}), not {expected!r}"
        )
    return path


def bench_reads(cfg, pg, names, product_env, log_dir, servers, recorder) -> dict:
    creds = {key: accounts(product_env(names[key])) for key in ("small", "big")}
    srv = {}
    for key in ("small", "big"):
        env = product_env(names[key])
        server = Server(f"product-{key}", "allocation_project.wsgi", env, log_dir)
        srv[key] = start(servers, server, "/healthz")
    hdr = {key: api_headers(creds[key]["token"]) for key in srv}
    endpoints = {
        "batches_by_sku": "/api/batches/?sku=R42",
        "lines_by_order": "/api/allocations/?order_id=O42",
        "product": "/api/products/R42/",
        "batches_first_page": "/api/batches/",
    }
    out: dict = {"rows": {"small": cfg["read_rows_small"], "big": cfg["read_rows_big"]}}
    # Deep pages are compared with the first page on the same (big) database.
    deep = {
        key: deep_page_path(srv[key].port, hdr[key], database_url(pg, names[key])) for key in srv
    }
    for key in srv:  # warm up every worker on every endpoint
        for path in [*endpoints.values(), deep[key]]:
            loadgen.run(srv[key].port, get_factory(srv[key].port, path, hdr[key]),
                        concurrency=4, max_requests=20, max_seconds=30)  # fmt: skip
    for name, path in endpoints.items():
        section = f"read_{name}"
        log(f"reads: {section} {path}")
        for _, order in interleaved(cfg["rounds"], ["small", "big"]):
            for key in order:
                result = loadgen.run(
                    srv[key].port,
                    get_factory(srv[key].port, path, hdr[key]),
                    concurrency=1,
                    max_requests=cfg["read_requests"],
                    max_seconds=30,
                )
                recorder.add(section, key, result)
        out[name] = {
            "path": path,
            "small": recorder.pooled(section, "small"),
            "big": recorder.pooled(section, "big"),
            "big_to_small_p50": round_ratios(recorder, section, "big", "small", "p50"),
        }
    section = "read_deep_page"
    log(f"reads: {section} {deep['big']}")
    for _, order in interleaved(cfg["rounds"], ["first", "deep"]):
        for which in order:
            path = "/api/batches/" if which == "first" else deep["big"]
            result = loadgen.run(
                srv["big"].port, get_factory(srv["big"].port, path, hdr["big"]),
                concurrency=1, max_requests=cfg["read_requests"], max_seconds=30,
            )  # fmt: skip
            recorder.add(section, which, result)
    out["deep_page"] = {
        "path": deep["big"],
        "first": recorder.pooled(section, "first"),
        "deep": recorder.pooled(section, "deep"),
        "deep_to_first_p50": round_ratios(recorder, section, "deep", "first", "p50"),
    }

    section = "admin_batch_changelist"
    log(f"admin: {section}")
    admin_headers = {
        key: {"Cookie": f"sessionid={creds[key]['session']}", "X-Forwarded-Proto": "https"}
        for key in srv
    }
    path = "/admin/allocation/batch/"
    for key in srv:
        loadgen.run(srv[key].port, get_factory(srv[key].port, path, admin_headers[key]),
                    concurrency=4, max_requests=8, max_seconds=60)  # fmt: skip
    for _, order in interleaved(cfg["rounds"], ["small", "big"]):
        for key in order:
            result = loadgen.run(
                srv[key].port, get_factory(srv[key].port, path, admin_headers[key]),
                concurrency=1, max_requests=cfg["admin_requests"], max_seconds=60,
            )  # fmt: skip
            recorder.add(section, key, result)
    out["admin_batch_changelist"] = {
        "path": path,
        "small": recorder.pooled(section, "small"),
        "big": recorder.pooled(section, "big"),
        "big_to_small_p50": round_ratios(recorder, section, "big", "small", "p50"),
    }
    return out


# -- verdict and table ------------------------------------------------------------------


def verdict(report: dict) -> dict:
    checks = {}
    writes = report.get("writes")
    if writes:
        for section in ("many_skus_c8", "one_sku_c16"):
            ratio = writes[section]["rps_ratio"]["median_of_rounds"]
            errors = has_5xx(writes[section]["product"])
            checks[f"{section}_rps_ratio"] = {
                "value": ratio, "target": f">= {TARGETS['throughput_ratio']}",
                "met": ratio >= TARGETS["throughput_ratio"],
            }  # fmt: skip
            checks[f"{section}_5xx"] = {"value": errors, "target": "0", "met": errors == 0}
            stacked = writes[section].get("rps_ratio_to_stack_floor")
            if stacked:
                ratio = stacked["median_of_rounds"]
                checks[f"{section}_rps_ratio_to_stack_floor"] = {
                    "value": ratio, "target": f">= {TARGETS['throughput_ratio']}",
                    "met": ratio >= TARGETS["throughput_ratio"],
                }  # fmt: skip
        ratio = writes["history_c1"]["history_to_fresh_p50"]["pooled"]
        checks["history_p50_ratio"] = {
            "value": ratio, "target": f"<= {TARGETS['history_p50_ratio']}",
            "met": ratio <= TARGETS["history_p50_ratio"],
        }  # fmt: skip
    reads = report.get("reads")
    if reads:
        for name in ("batches_by_sku", "lines_by_order", "product"):
            ratio = reads[name]["big_to_small_p50"]["pooled"]
            checks[f"read_{name}_p50_ratio"] = {
                "value": ratio, "target": f"<= {TARGETS['read_p50_ratio']}",
                "met": ratio <= TARGETS["read_p50_ratio"],
            }  # fmt: skip
        ratio = reads["deep_page"]["deep_to_first_p50"]["pooled"]
        checks["deep_page_p50_ratio"] = {
            "value": ratio, "target": f"<= {TARGETS['read_p50_ratio']}",
            "met": ratio <= TARGETS["read_p50_ratio"],
        }  # fmt: skip
        admin = reads["admin_batch_changelist"]["big"]
        seconds = admin["p50_ms"] / 1000
        ok = seconds < TARGETS["admin_p50_seconds"] and set(admin["statuses"]) == {"200"}
        checks["admin_changelist_p50_seconds"] = {
            "value": round(seconds, 3), "target": f"< {TARGETS['admin_p50_seconds']} (all 200)",
            "met": ok,
        }  # fmt: skip
    return checks


def print_table(report: dict) -> None:
    rows = []

    def add(name, s, ratio=""):
        statuses = " ".join(f"{k}:{v}" for k, v in s["statuses"].items())
        rows.append(
            (name, f"{s['rps']:.0f}", f"{s['p50_ms']:.1f}", f"{s['p90_ms']:.1f}",
             f"{s['p99_ms']:.1f}", statuses, ratio)
        )  # fmt: skip

    writes = report.get("writes")
    if writes:
        for section in ("many_skus_c8", "one_sku_c16"):
            w = writes[section]
            add(f"{section} floor", w["floor"])
            add(
                f"{section} product",
                w["product"],
                f"rps x{w['rps_ratio']['median_of_rounds']:.2f} of floor "
                f"(rounds {w['rps_ratio']['rounds']})",
            )
            if "stack_floor" in w:
                stacked = w["rps_ratio_to_stack_floor"]
                add(
                    f"{section} stack floor",
                    w["stack_floor"],
                    f"product rps x{stacked['median_of_rounds']:.2f} of it "
                    f"(rounds {stacked['rounds']})",
                )
            cpu = w.get("cpu_per_request")
            if cpu:
                rows.append(
                    (f"  {section} CPU ms/request", "", "", "", "", "",
                     "server {} / floor {} / stack {}; postgres {} / floor {} / stack {}".format(
                         cpu["product"]["server_cpu_ms"], cpu["floor"]["server_cpu_ms"],
                         cpu.get("stack_floor", {}).get("server_cpu_ms"),
                         cpu["product"]["postgres_cpu_ms"], cpu["floor"]["postgres_cpu_ms"],
                         cpu.get("stack_floor", {}).get("postgres_cpu_ms")))
                )  # fmt: skip
        h = writes["history_c1"]
        add("alloc c1 floor, fresh SKU", h["floor_fresh"])
        add(
            "alloc c1 fresh SKU",
            h["fresh"],
            f"p50 x{h['fresh_to_floor_p50']['pooled']:.2f} of floor",
        )
        add(
            f"alloc c1 SKU w/ {h['history_lines']:,} lines",
            h["history"],
            f"p50 x{h['history_to_fresh_p50']['pooled']:.2f} of fresh",
        )
    reads = report.get("reads")
    if reads:
        rows_small, rows_big = reads["rows"]["small"], reads["rows"]["big"]
        for name in ("batches_by_sku", "lines_by_order", "product", "batches_first_page"):
            r = reads[name]
            add(f"GET {r['path']} @{rows_small:,}", r["small"])
            add(
                f"GET {r['path']} @{rows_big:,}",
                r["big"],
                f"p50 x{r['big_to_small_p50']['pooled']:.2f} of {rows_small:,} rows",
            )
        d = reads["deep_page"]
        add(
            f"GET deep page @{rows_big:,}",
            d["deep"],
            f"p50 x{d['deep_to_first_p50']['pooled']:.2f} of first page",
        )
        a = reads["admin_batch_changelist"]
        add(f"admin batch list @{rows_small:,}", a["small"])
        add(
            f"admin batch list @{rows_big:,}",
            a["big"],
            f"p50 x{a['big_to_small_p50']['pooled']:.2f}",
        )
    header = ("case", "req/s", "p50 ms", "p90 ms", "p99 ms", "statuses", "ratio")
    widths = [max(len(str(row[i])) for row in [header, *rows]) for i in range(len(header))]
    line = "  ".join(f"{{:<{w}}}" for w in widths)
    print()
    print(line.format(*header))
    print(line.format(*("-" * w for w in widths)))
    for row in rows:
        print(line.format(*row))
    print()
    m = report["machine"]
    print(
        f"machine: {m['cpus']} CPUs ({m['cpu_model']}), {m['memory_gib']} GiB, "
        f"Python {m['python']}, PostgreSQL {m['postgresql']}; load before "
        f"{report['load_average_before']}, after {report['load_average_after']}"
    )
    if report["postgres_restarted_during_run"]:
        print("  WARNING: PostgreSQL restarted during the run (not by this benchmark): rerun.")
    for name, check in report["verdict"].items():
        mark = "ok  " if check["met"] else "MISS"
        print(f"  [{mark}] {name}: {check['value']} (target {check['target']})")


if __name__ == "__main__":
    sys.exit(main())
