"""Webhook delivery (SPEC 6.2) on PostgreSQL: throughput to a local receiver, and the lag
behind a steady allocation load.

    .venv/bin/python bench/webhooks.py            # 3,000 events; lag at 50/s for 40 s
    .venv/bin/python bench/webhooks.py --quick    # 1,000 events; lag at 50/s for 15 s
    .venv/bin/python bench/webhooks.py --database alloc_hooks --events 10000 --rounds 2

What it does, in one run:

1. Creates its database (``--database``, **dropped first if it exists**) on
   127.0.0.1 and migrates it. Starts the receiver in this process: a threaded
   ``http.server`` on 127.0.0.1 (ephemeral port, HTTP/1.1 keep-alive) that
   answers every POST with 204 and records when it arrived, its path and its
   ``webhook-id`` (every 97th request whole, to verify its signature after
   the round with ``standardwebhooks``, as a receiver would).
2. Subscribes 11 receivers' URLs through ``allocation.webhooks.services``
   (``WEBHOOKS_ALLOW_PRIVATE=1``): one for the single-subscription rounds, ten
   for the ten-subscription rounds; then writes ``--events`` events with
   ``bench/events.py``'s set-based fill (every type, ``data`` as the domain
   shapes it; the id sequence where the writers would leave it, so the feed's
   horizon serves them all: checked).
3. Throughput, in alternating rounds (1, 10, 10, 1, ...): the round's
   subscriptions are resumed and the others paused (services), their positions
   rewound to 0 by SQL (bench setup, not a product path), and
   ``manage.py deliver_webhooks --once --workers 10`` runs as a subprocess
   (one worker per subscription). Measured: the wall time of the command
   (Python and Django start-up included) and the receiver's first-to-last
   request; deliveries per second in total and per subscription; the
   deliverer's CPU. Checked: every subscription received every event exactly
   once, in id order; the command said ``0 failed attempts``; the sampled
   signatures verify.
4. Lag: every other subscription paused, a new one subscribed (it starts at
   the horizon), ``manage.py deliver_webhooks`` started until stopped, and a
   load process calls ``services.allocate`` at a fixed rate (``--rate`` per
   second for ``--seconds``, open loop: on schedule, not after the previous
   answer). For each delivered event: the time it reached the receiver minus
   its ``occurred_at`` (from the body); p50, p95, max. Once every event is
   delivered the deliverer gets SIGTERM and must exit 0.
5. Prints a table; writes ``bench/results/webhooks.json``; stops every process
   it started (by PID) and drops its database (unless ``--keep-database``).

The machine is shared and noisy: absolute figures move from run to run.
Nothing here is a test.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import resource
import signal
import statistics
import subprocess
import sys
import threading
import time
from datetime import datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench import events as events_bench  # noqa: E402
from bench import perf, perf_seed  # noqa: E402

PYTHON = sys.executable
RESULTS = ROOT / "bench" / "results"
#: One request in this many is kept whole, to verify its signature.
SAMPLE_EVERY = 97
#: Throughput rounds' subscriptions: one, then ten.
SIZES = (1, 10)


def log(message: str) -> None:
    print(f"[webhooks {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


# -- the receiver -------------------------------------------------------------------


class Receiver:
    """Answers every POST with 204 at once; records (arrival, path, webhook-id), and the
    bodies when ``keep_bodies``. One thread per connection (the deliverer keeps its
    connections alive)."""

    def __init__(self) -> None:
        self.records: list[tuple[float, str, int]] = []
        self.bodies: list[bytes] = []
        self.samples: list[tuple[str, dict[str, str], bytes]] = []
        self.keep_bodies = False
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                arrived = time.time()
                receiver.records.append((arrived, self.path, int(self.headers["webhook-id"])))
                if receiver.keep_bodies:
                    receiver.bodies.append(body)
                if len(receiver.records) % SAMPLE_EVERY == 0:
                    headers = {k.lower(): v for k, v in self.headers.items()}
                    receiver.samples.append((self.path, headers, body))
                self.send_response(204)
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_port}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def reset(self, *, keep_bodies: bool = False) -> None:
        self.records = []
        self.bodies = []
        self.samples = []
        self.keep_bodies = keep_bodies

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


# -- the load (a process of its own: ``--drive-load``) -------------------------------------


def drive_load(rate: float, seconds: float) -> None:
    """``services.allocate`` ``rate`` times a second for ``seconds``, on schedule; prints JSON."""
    import django

    django.setup()
    from allocation import services

    skus = [f"LAG-{n}" for n in range(10)]
    for sku in skus:
        services.add_batch(reference=f"{sku}-B", sku=sku, purchased_quantity=perf_seed.PLENTY)
    total = int(rate * seconds)
    latencies = []
    started = time.monotonic()
    for i in range(total):
        delay = started + i / rate - time.monotonic()
        if delay > 0:
            time.sleep(delay)
        t = time.monotonic()
        services.allocate(order_id=f"lag-{i}", sku=skus[i % len(skus)], qty=1)
        latencies.append(time.monotonic() - t)
    elapsed = time.monotonic() - started
    print(
        json.dumps(
            {
                "allocations": total,
                "seconds": round(elapsed, 2),
                "achieved_per_s": round(total / elapsed, 1),
                "allocate_p50_ms": round(1000 * statistics.median(latencies), 2),
                "allocate_p95_ms": round(1000 * percentile(latencies, 95), 2),
            }
        )
    )


# -- helpers -------------------------------------------------------------------------


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


def children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def verify_samples(receiver: Receiver, secrets_by_path: dict[str, str]) -> int:
    """How many sampled requests' signatures verify; raises on the first that does not."""
    from standardwebhooks.webhooks import Webhook

    for path, headers, body in receiver.samples:
        Webhook(secrets_by_path[path]).verify(body, headers)
    return len(receiver.samples)


def set_round(active: list[int], paused: list[int], *, rewind: bool) -> None:
    from django.db import connection

    from allocation.webhooks import services as webhooks

    webhooks.pause(subscription_ids=paused)
    webhooks.resume(subscription_ids=active)
    if rewind:
        # Bench setup, not a product path: the round's subscriptions start over.
        with connection.cursor() as cursor:
            cursor.execute(
                "UPDATE allocation_webhooksubscription SET delivered_through = 0, attempts = 0,"
                " next_attempt_at = NULL, last_error = NULL WHERE id = ANY(%s)",
                [active],
            )
    connection.close()


def throughput_round(
    env: dict[str, str],
    receiver: Receiver,
    subs: list[tuple[int, str]],
    others: list[int],
    events: int,
    secrets_by_path: dict[str, str],
    log_dir: Path,
) -> dict:
    set_round([sid for sid, _ in subs], others, rewind=True)
    receiver.reset()
    cpu = children_cpu()
    command = [PYTHON, "manage.py", "deliver_webhooks", "--once", "--workers", "10"]
    started = time.monotonic()
    with open(log_dir / f"deliver_once_{len(subs)}.log", "ab") as stderr:
        done = subprocess.run(  # noqa: S603 - our own command line
            command, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=stderr, check=True
        )
    wall = time.monotonic() - started
    cpu = children_cpu() - cpu
    out = done.stdout.decode().strip()
    records = receiver.records
    by_path: dict[str, list[int]] = {path: [] for _, path in subs}
    for _, path, event_id in records:
        by_path.setdefault(path, []).append(event_id)
    expected = list(range(1, events + 1))
    complete = all(by_path[path] == expected for _, path in subs) and len(by_path) == len(subs)
    arrivals = [r[0] for r in records]
    busy = max(arrivals) - min(arrivals) if arrivals else float("nan")
    result = {
        "subscriptions": len(subs),
        "deliveries": len(records),
        "wall_seconds": round(wall, 2),
        "per_s": round(len(records) / wall, 1),
        "per_s_per_subscription": round(len(records) / wall / len(subs), 1),
        "busy_seconds": round(busy, 2),
        "busy_per_s": round(len(records) / busy, 1),
        "deliverer_cpu_seconds": round(cpu, 2),
        "deliverer_cpu_ms_per_delivery": round(1000 * cpu / max(1, len(records)), 3),
        "every_event_once_in_order": complete,
        "command_output": out,
        "signatures_verified": verify_samples(receiver, secrets_by_path),
        "command": " ".join(command[1:]),
    }
    if not complete or not out.endswith(", 0 failed attempts"):
        raise RuntimeError(f"incomplete delivery: {result}")
    return result


def lag_run(
    env: dict[str, str],
    receiver: Receiver,
    others: list[int],
    rate: float,
    seconds: float,
    log_dir: Path,
    processes: list[subprocess.Popen],
) -> dict:
    from allocation.webhooks import selectors
    from allocation.webhooks import services as webhooks

    webhooks.pause(subscription_ids=others)
    subscribed = webhooks.subscribe(url=f"{receiver.url}/lag")
    start_position = selectors.subscription(subscribed.id).delivered_through
    secrets_by_path = {"/lag": subscribed.secret}
    receiver.reset(keep_bodies=True)
    command = [PYTHON, "manage.py", "deliver_webhooks"]
    stderr = open(log_dir / "deliver_running.log", "ab")  # noqa: SIM115 - closed below
    deliverer = subprocess.Popen(  # noqa: S603 - our own command line
        command, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=stderr, start_new_session=True
    )
    processes.append(deliverer)
    try:
        time.sleep(3)  # its start-up, before the load begins
        if deliverer.poll() is not None:
            raise RuntimeError("deliver_webhooks exited at start; see deliver_running.log")
        load_command = [PYTHON, "bench/webhooks.py", "--drive-load", str(rate), str(seconds)]
        done = subprocess.run(  # noqa: S603 - our own command line
            load_command, cwd=ROOT, env=env, capture_output=True, check=True, text=True
        )
        load = json.loads(done.stdout)
        # Wait for the last events to arrive.
        deadline = time.monotonic() + 60
        pending = None
        while time.monotonic() < deadline:
            pending = selectors.subscription(subscribed.id).pending
            if pending == 0:
                break
            time.sleep(0.2)
        from django.db import connection

        connection.close()
        stopped = time.monotonic()
        deliverer.send_signal(signal.SIGTERM)
        try:
            code = deliverer.wait(timeout=30)
        except subprocess.TimeoutExpired:
            deliverer.kill()
            deliverer.wait()
            code = None
        stop_seconds = time.monotonic() - stopped
        out = deliverer.stdout.read().decode().strip() if deliverer.stdout else ""
    finally:
        if deliverer.poll() is None:
            deliverer.kill()
            deliverer.wait()
        processes.remove(deliverer)
        stderr.close()
    lags = []
    ids = []
    for (arrived, _, event_id), body in zip(receiver.records, receiver.bodies, strict=True):
        occurred = datetime.fromisoformat(json.loads(body)["occurred_at"]).timestamp()
        lags.append(arrived - occurred)
        ids.append(event_id)
    in_order = ids == sorted(set(ids)) and (not ids or ids[0] == start_position + 1)
    result = {
        "load": load,
        "load_command": " ".join(load_command[1:]),
        "deliverer_command": " ".join(command[1:]),
        "events_delivered": len(ids),
        "pending_at_stop": pending,
        "every_event_once_in_order": in_order and pending == 0,
        "lag_p50_ms": round(1000 * statistics.median(lags)) if lags else None,
        "lag_p95_ms": round(1000 * percentile(lags, 95)) if lags else None,
        "lag_max_ms": round(1000 * max(lags)) if lags else None,
        "lag_min_ms": round(1000 * min(lags)) if lags else None,
        "signatures_verified": verify_samples(receiver, secrets_by_path),
        "sigterm_exit_code": code,
        "sigterm_seconds_to_exit": round(stop_seconds, 2),
        "command_output": out,
    }
    if code != 0 or not result["every_event_once_in_order"]:
        raise RuntimeError(f"lag run went wrong: {result}")
    return result


# -- the run -------------------------------------------------------------------------------


def main() -> int:
    if len(sys.argv) == 4 and sys.argv[1] == "--drive-load":
        drive_load(float(sys.argv[2]), float(sys.argv[3]))
        return 0
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="small, short smoke run")
    parser.add_argument(
        "--pg", default=os.environ.get("PERF_PG_URL", "postgres://postgres@127.0.0.1:5432/postgres"),
        help="PostgreSQL server (a URL to any existing database on it)",
    )  # fmt: skip
    parser.add_argument(
        "--database", default="allocation_bench_webhooks", help="dropped first if it exists"
    )
    parser.add_argument("--events", type=int, help="events per throughput round's subscription")
    parser.add_argument("--rounds", type=int, help="pairs of throughput rounds (1 and 10 subs)")
    parser.add_argument("--rate", type=float, default=50.0, help="lag: allocations per second")
    parser.add_argument("--seconds", type=float, help="lag: how long the load lasts")
    parser.add_argument("--keep-database", action="store_true")
    parser.add_argument("--output", type=Path, default=RESULTS / "webhooks.json")
    args = parser.parse_args()
    cfg = {
        "events": args.events or (1_000 if args.quick else 3_000),
        "rounds": args.rounds or 1,
        "rate": args.rate,
        "seconds": args.seconds or (15.0 if args.quick else 40.0),
        "database": args.database,
    }
    RESULTS.mkdir(parents=True, exist_ok=True)
    log_dir = RESULTS / "logs"
    log_dir.mkdir(exist_ok=True)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "DATABASE_"))}
    env.update(
        DJANGO_SETTINGS_MODULE="allocation_project.settings",
        DATABASE_URL=perf.database_url(args.pg, args.database),
        SECRET_KEY="webhooks-" + os.urandom(16).hex(),
        DEBUG="0",
        ALLOWED_HOSTS="127.0.0.1",
        WEBHOOKS_ALLOW_PRIVATE="1",
        PYTHONDONTWRITEBYTECODE="1",
    )
    report: dict = {
        "command": " ".join(["bench/webhooks.py", *sys.argv[1:]]),
        "started": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "machine": perf.machine(),
        "config": cfg,
        "load_average_before": [round(x, 2) for x in os.getloadavg()],
    }
    processes: list[subprocess.Popen] = []
    receiver = None
    try:
        log(f"database {args.database}: create, migrate")
        perf_seed.recreate_database(args.pg, args.database)
        perf.run_django(env, "manage.py", "migrate", "--noinput", "-v0")
        os.environ.update(env)
        import django

        django.setup()
        from allocation.webhooks import selectors
        from allocation.webhooks import services as webhooks

        receiver = Receiver()
        subscribed = [webhooks.subscribe(url=f"{receiver.url}/s{k}") for k in range(11)]
        secrets_by_path = {f"/s{k}": s.secret for k, s in enumerate(subscribed)}
        ids = [(s.id, f"/s{k}") for k, s in enumerate(subscribed)]
        groups = {1: ids[:1], 10: ids[1:]}

        log(f"fill {cfg['events']:,} events")
        dsn = env["DATABASE_URL"]
        fill_seconds = events_bench.fill(dsn, events=cfg["events"], per_sku=200)
        horizon = selectors.start_position()
        if horizon != cfg["events"]:
            raise RuntimeError(f"the horizon serves {horizon} of {cfg['events']} events")
        report["fill_seconds"] = round(fill_seconds, 1)

        rounds = []
        order = []
        for n in range(cfg["rounds"]):
            order += list(SIZES) if n % 2 == 0 else list(reversed(SIZES))
        for size in order:
            log(f"throughput: {size} subscription(s), {cfg['events']:,} events each")
            subs = groups[size]
            others = [sid for sid, path in ids if (sid, path) not in subs]
            result = throughput_round(
                env, receiver, subs, others, cfg["events"], secrets_by_path, log_dir
            )
            log(f"  {result['per_s']}/s ({result['wall_seconds']} s)")
            rounds.append(result)
        report["throughput"] = rounds

        log(f"lag: {cfg['rate']:g} allocations/s for {cfg['seconds']:g} s")
        report["lag"] = lag_run(
            env,
            receiver,
            [sid for sid, _ in ids],
            cfg["rate"],
            cfg["seconds"],
            log_dir,
            processes,
        )
    finally:
        for process in processes:
            if process.poll() is None:
                process.kill()
                process.wait()
        if receiver is not None:
            receiver.close()
        with contextlib.suppress(Exception):
            from django.db import connections

            connections.close_all()
        if not args.keep_database:
            with contextlib.suppress(Exception):
                perf_seed.drop_database(args.pg, args.database)
    report["load_average_after"] = [round(x, 2) for x in os.getloadavg()]
    args.output.write_text(json.dumps(report, indent=2) + "\n")
    print_table(report)
    print(f"\nJSON: {args.output}")
    return 0


def print_table(report: dict) -> None:
    cfg = report["config"]
    print(f"\nwebhook delivery, {cfg['events']:,} events per subscription, receiver answers 204")
    header = ("subs", "deliveries", "wall s", "per s", "per s/sub", "busy per s", "CPU ms/dlv")
    print("  ".join(f"{h:>11}" for h in header))
    for r in report["throughput"]:
        row = (
            r["subscriptions"],
            r["deliveries"],
            r["wall_seconds"],
            r["per_s"],
            r["per_s_per_subscription"],
            r["busy_per_s"],
            r["deliverer_cpu_ms_per_delivery"],
        )
        print("  ".join(f"{v:>11}" for v in row))
    lag = report["lag"]
    load = lag["load"]
    print(
        f"\nlag, 1 subscription, deliver_webhooks running, allocate at {cfg['rate']:g}/s "
        f"for {cfg['seconds']:g} s (achieved {load['achieved_per_s']}/s, "
        f"allocate p50 {load['allocate_p50_ms']} ms):"
    )
    print(
        f"  {lag['events_delivered']} events delivered, lag p50 {lag['lag_p50_ms']} ms, "
        f"p95 {lag['lag_p95_ms']} ms, max {lag['lag_max_ms']} ms; "
        f"SIGTERM -> exit {lag['sigterm_exit_code']} in {lag['sigterm_seconds_to_exit']} s"
    )
    print(
        f"load average before {report['load_average_before']}, after {report['load_average_after']}"
    )


if __name__ == "__main__":
    sys.exit(main())
