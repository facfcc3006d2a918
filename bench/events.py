"""The event log at scale (SPEC 6.1, 6.3): the feed and the admin's Events page with
1,000 events against 1,000,000, side by side, on PostgreSQL; and its disk size.

    .venv/bin/python bench/events.py            # 1,000 vs 1,000,000 events, ~5-8 minutes
    .venv/bin/python bench/events.py --quick    # 1,000 vs 100,000 events, fewer requests
    .venv/bin/python bench/events.py --database alloc_ev --small-database alloc_ev_small

What it does, in one run:

1. Creates two databases (``--small-database``, ``--database``; each dropped
   first if it exists), migrates the small one and copies it as a template,
   collects static files (production serves the admin from the manifest).
2. Fills each event table with set-based SQL (``generate_series``):
   ``--small-events`` (1,000) and ``--events`` (1,000,000) events as the
   service writes them (SPEC 6): every type, ``data`` as the domain shapes it,
   orders of three lines sharing a transaction, batches renewed every 20 events
   of a SKU, actors and sources. Both databases have the same density,
   ``--events-per-sku`` (200) events per SKU (1,000,000 events: 5,000 SKUs),
   so a filter matches as many events in both and only the table's length
   differs. The id sequence is set past the last id, as the writers leave it,
   so the feed's horizon (``selectors.event_horizon``) serves every event; the
   run checks that it does. Then ``VACUUM ANALYZE``, as autovacuum would.
3. Serves each database with gunicorn (the repository's ``gunicorn.conf.py``,
   DEBUG off, ``--workers`` workers) on 127.0.0.1 and measures, one request at
   a time in ten short alternating rounds (small, big, big, small, ...), the feed
   (first page, ``?after=`` in the middle and near the end, each filter with
   and without ``after``) as a token user holding only ``view_event``, and the
   admin's Events changelist (unfiltered, by SKU, searches) as a superuser.
4. Prints a table: p50 and p95 on each database, the ratio big/small of the
   p50s (pooled, and the median of the rounds' ratios), the events each answer
   held on each database; then the event table's disk size (heap, TOAST, each
   index) per million events. Writes ``bench/results/events.json``; stops
   every process it started (by PID) and drops its databases (unless
   ``--keep-databases``; ``--reuse`` measures databases kept by an earlier run).

``--explain`` prints ``EXPLAIN (ANALYZE, BUFFERS)`` of every statement each
request runs on the big database (``bench/events_explain.py``).

The machine is shared and noisy: absolute figures move from run to run, the
ratios, taken in the same rounds, much less. Nothing here is a test.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import json
import os
import re
import sys
import time
from pathlib import Path
from urllib.parse import urlencode

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench import loadgen, perf, perf_seed  # noqa: E402

RESULTS = ROOT / "bench" / "results"
TABLE = "allocation_event"
TARGETS = {
    "feed_p50_ratio": 1.5,  # issue 12: 1M events within 1.5x of 1,000 events
    "admin_p50_seconds": 1.0,  # issue 12: the Events changelist at 1M under 1 s
}
# Events of one SKU between two batch_created (a SKU's batches are renewed).
EVENTS_PER_BATCH = 20


def log(message: str) -> None:
    print(f"[events {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


# -- the fixture --------------------------------------------------------------------

# Event i (1..n) belongs to SKU (i-1) % skus, so consecutive ids cycle through
# the SKUs as concurrent traffic would, and is that SKU's sku_seq (i-1)/skus+1
# (gapless, in id order). Every 20th event of a SKU creates its next batch;
# the others are, by a fixed pseudo-random draw: 70% line_allocated, 12%
# line_deallocated, 8% line_moved, 4% line_backordered, 5% batch_changed, 1%
# batch_deleted (of the SKU's previous batch). Three consecutive events (three
# SKUs) are one unit of work: one transaction, and one order for the
# line_allocated among them; a later line event of a SKU names the order
# allocated ten of that SKU's events before.
_FILL_SQL = f"""
INSERT INTO {TABLE} (id, type, sku, sku_seq, occurred_at, actor, source, txn, order_id, data)
SELECT i, type, sku, k,
       timestamptz '2026-01-01 00:00:00+00' + i * interval '31.5 seconds',
       CASE i %% 10 WHEN 6 THEN 'alice' WHEN 7 THEN 'bob' WHEN 8 THEN NULL ELSE 'shop-eu' END,
       CASE i %% 10 WHEN 6 THEN 'admin' WHEN 7 THEN 'admin' WHEN 8 THEN 'cli' ELSE 'api' END,
       md5('bench-' || grp),
       CASE WHEN type LIKE 'line%%' THEN order_id END,
       CASE type
         WHEN 'batch_created' THEN jsonb_build_object(
             'reference', ref, 'purchased_quantity', purchased, 'eta', eta)
         WHEN 'batch_changed' THEN jsonb_build_object(
             'reference', ref, 'purchased_quantity', purchased - 10, 'eta', eta,
             'previous', jsonb_build_object('purchased_quantity', purchased, 'eta', eta))
         WHEN 'batch_deleted' THEN jsonb_build_object('reference', prev_ref)
         WHEN 'line_allocated' THEN jsonb_build_object(
             'order_id', order_id, 'qty', qty,
             'batches', jsonb_build_array(jsonb_build_object('reference', ref, 'qty', qty)),
             'previous_status', CASE WHEN h %% 20 = 0 THEN 'backordered' END)
         WHEN 'line_moved' THEN jsonb_build_object(
             'order_id', order_id, 'qty', qty,
             'batches', jsonb_build_array(jsonb_build_object('reference', ref, 'qty', qty)),
             'previous_batches',
             jsonb_build_array(jsonb_build_object('reference', prev_ref, 'qty', qty)))
         ELSE jsonb_build_object(
             'order_id', order_id, 'qty', qty,
             'previous_batches',
             jsonb_build_array(jsonb_build_object('reference', ref, 'qty', qty)))
       END
FROM (
    SELECT *,
           CASE WHEN (k - 1) %% {EVENTS_PER_BATCH} = 0 THEN 'batch_created'
                WHEN h < 70 THEN 'line_allocated'
                WHEN h < 82 THEN 'line_deallocated'
                WHEN h < 90 THEN 'line_moved'
                WHEN h < 94 THEN 'line_backordered'
                WHEN h < 99 THEN 'batch_changed'
                ELSE 'batch_deleted' END AS type,
           sku || '-B' || lpad(((k - 1) / {EVENTS_PER_BATCH})::text, 3, '0') AS ref,
           sku || '-B' || lpad(greatest((k - 1) / {EVENTS_PER_BATCH} - 1, 0)::text, 3, '0')
               AS prev_ref,
           'SO-' || lpad((CASE WHEN h < 70 OR i <= 10 * %(skus)s THEN grp
                              ELSE (i - 1 - 10 * %(skus)s) / 3 END)::text, 7, '0') AS order_id,
           1 + (i * 31) %% 10 AS qty,
           100 * (1 + s %% 5) AS purchased,
           CASE WHEN ((k - 1) / {EVENTS_PER_BATCH}) %% 2 = 1
                THEN to_char(date '2027-01-01' + ((k * 7) %% 90)::int, 'YYYY-MM-DD') END AS eta
    FROM (
        SELECT i, (i - 1) %% %(skus)s AS s, (i - 1) / %(skus)s + 1 AS k, (i - 1) / 3 AS grp,
               'SKU-' || lpad(((i - 1) %% %(skus)s)::text, 5, '0') AS sku,
               (i * 7919 + ((i - 1) / %(skus)s) * 104729) %% 100 AS h
        FROM generate_series(1::bigint, %(events)s) AS i
    ) g
) e
"""  # noqa: S608 - the table's name is ours


def skus_for(events: int, per_sku: int) -> int:
    return max(1, events // per_sku)


def fill(dsn: str, *, events: int, per_sku: int) -> float:
    """Fill the event table; return the seconds it took."""
    started = time.monotonic()
    with perf_seed.connect(dsn) as connection, connection.cursor() as cursor:
        cursor.execute(_FILL_SQL, {"events": events, "skus": skus_for(events, per_sku)})
        # Where the writers leave the sequence: the next event gets n + 1, and
        # the feed's horizon (the sequence's last value) is n.
        cursor.execute(
            f"SELECT setval(pg_get_serial_sequence('{TABLE}', 'id'), %s)",  # noqa: S608
            [events],
        )
        cursor.execute(f"VACUUM ANALYZE {TABLE}")
    return time.monotonic() - started


_NAMES_BATCH = (
    "(data @> jsonb_build_object('reference', %(ref)s::text)"
    " OR data @> jsonb_build_object('batches', jsonb_build_array("
    "jsonb_build_object('reference', %(ref)s::text)))"
    " OR data @> jsonb_build_object('previous_batches', jsonb_build_array("
    "jsonb_build_object('reference', %(ref)s::text))))"
)

# Orders named near the middle; batches created after it.
_CANDIDATES = {
    "order_id": f"SELECT DISTINCT order_id FROM {TABLE}"  # noqa: S608
    " WHERE id BETWEEN %(mid)s AND %(mid)s + 300 AND order_id IS NOT NULL",
    "batch": f"SELECT data->>'reference' FROM {TABLE}"  # noqa: S608
    " WHERE id > %(mid)s AND type = 'batch_created' ORDER BY id LIMIT 50",
}
# The first event each names, and how many do.
_MATCHING = {
    "order_id": f"SELECT min(id), count(*) FROM {TABLE} WHERE order_id = %(ref)s",  # noqa: S608
    "batch": f"SELECT min(id), count(*) FROM {TABLE} WHERE {_NAMES_BATCH}",  # noqa: S608
}


def probes(dsn: str, events: int, per_sku: int, like: dict | None = None) -> dict:
    """What the filters ask for, found at the same place in both databases: the middle.

    The SKU of the middle event (a full page after the middle as well); the
    transaction of the middle event; an order named near the middle and a
    batch created after it, that as many events name as ``like``'s (the small
    database's) do (without ``like``: an order named three times, the first
    batch), so that an answer holds as many events in both: only the
    table's length differs. Each filter's ``after`` is the id of the first
    event it matches: the rest of them.
    """
    skus = skus_for(events, per_sku)
    mid = events // 2
    grp = (mid - 1) // 3
    out = {"mid": mid, "end": max(0, events - 50), "sku": f"SKU-{(mid - 1) % skus:05d}"}
    out["after"] = {"sku": mid}
    out["matches"] = {}
    with perf_seed.connect(dsn) as connection, connection.cursor() as cursor:
        out["transaction"] = hashlib.md5(f"bench-{grp}".encode()).hexdigest()  # noqa: S324 - as the SQL
        cursor.execute(
            f"SELECT min(id), count(*) FROM {TABLE} WHERE txn = %s",  # noqa: S608
            [out["transaction"]],
        )
        out["after"]["transaction"], out["matches"]["transaction"] = cursor.fetchone()
        for name in ("order_id", "batch"):
            cursor.execute(_CANDIDATES[name], {"mid": mid})
            found = []
            for (value,) in cursor.fetchall():
                cursor.execute(_MATCHING[name], {"ref": value})
                first, count = cursor.fetchone()
                found.append((value, first, count))
            if like:
                want = like["matches"][name]
            else:  # an order of three events; the first batch
                want = 3 if name == "order_id" else found[0][2]
            value, first, count = min(found, key=lambda f: (abs(f[2] - want), f[1]))
            out[name], out["after"][name], out["matches"][name] = value, first, count
    return out


def cases(p: dict) -> list[tuple[str, str, str]]:
    """(name, kind, path) for one database's probes; kind: feed or admin."""

    def feed(**params) -> str:
        return "/api/events/" + (f"?{urlencode(params)}" if params else "")

    def admin(**params) -> str:
        return "/admin/allocation/event/" + (f"?{urlencode(params)}" if params else "")

    out = [
        ("feed first page", "feed", feed()),
        ("feed after=middle", "feed", feed(after=p["mid"])),
        ("feed after=near end", "feed", feed(after=p["end"])),
    ]
    for name in ("sku", "order_id", "batch", "transaction"):
        out.append((f"feed {name}=", "feed", feed(**{name: p[name]})))
        after = p["after"][name]
        out.append((f"feed {name}= after=", "feed", feed(**{name: p[name], "after": after})))
    out += [
        # A type filter scans the id index for its type: as many events in
        # both answers (the small database has 40 line_backordered, 7 after
        # the middle of batch_deleted), so only the table's length differs.
        ("feed type=line_backordered", "feed", feed(type="line_backordered", limit=20)),
        (
            "feed type=batch_deleted after=middle",
            "feed",
            feed(type="batch_deleted", after=p["mid"], limit=5),
        ),
        ("admin events", "admin", admin()),
        ("admin events sku=", "admin", admin(sku=p["sku"])),
        ("admin events q=<order id>", "admin", admin(q=p["order_id"])),
        ("admin events q=<batch>", "admin", admin(q=p["batch"])),
        ("admin events type=line_moved", "admin", admin(type__exact="line_moved")),
        # One event in a thousand: no index finds them, the count and the page
        # read the whole table (the worst case of the type and source filters).
        (
            "admin events type=batch_deleted source=cli",
            "admin",
            admin(type__exact="batch_deleted", source__exact="cli"),
        ),
    ]
    return out


# An event's link on the changelist: one per row.
ADMIN_ROW = re.compile(rb"/admin/allocation/event/(\d+)/change/")
# Rows the issue does not name: measured, not held to its target.
INFORMATIONAL = {"feed type=line_backordered", "feed type=batch_deleted after=middle"}


def disk(dsn: str) -> dict:
    with perf_seed.connect(dsn) as connection, connection.cursor() as cursor:
        cursor.execute(
            f"""
            SELECT pg_total_relation_size('{TABLE}'), pg_relation_size('{TABLE}'),
                   pg_table_size('{TABLE}') - pg_relation_size('{TABLE}'),
                   pg_indexes_size('{TABLE}'), (SELECT count(*) FROM {TABLE}),
                   (SELECT avg(pg_column_size(data)) FROM {TABLE})
            """  # noqa: S608 - the table's name is ours
        )
        total, heap, toast, indexes, rows, data_bytes = cursor.fetchone()
        cursor.execute(
            """
            SELECT c.relname, pg_relation_size(c.oid)
            FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid
            WHERE i.indrelid = %s::regclass ORDER BY c.relname
            """,
            [TABLE],
        )
        each = dict(cursor.fetchall())
    return {
        "rows": rows,
        "total_bytes": total,
        "heap_bytes": heap,
        "toast_and_maps_bytes": toast,
        "indexes_bytes": indexes,
        "index_bytes": each,
        "avg_data_bytes": round(float(data_bytes or 0), 1),
    }


# -- the run ---------------------------------------------------------------------


def fetch_json(port: int, path: str, headers: dict) -> tuple[int, bytes]:
    return loadgen.fetch(port, loadgen.http_request("GET", path, port=port, headers=headers))


def answer_size(kind: str, status: int, body: bytes) -> int | None:
    """Events in a feed answer; rows on an admin page."""
    if status != 200:
        return None
    if kind == "feed":
        return len(json.loads(body)["results"])
    return len(set(ADMIN_ROW.findall(body)))


def check_served(port: int, headers: dict, events: int) -> None:
    """The horizon must not hide the filled events: the last one is served."""
    status, body = fetch_json(port, f"/api/events/?after={events - 1}", headers)
    served = json.loads(body)["results"] if status == 200 else []
    if [e["id"] for e in served] != [events]:
        raise RuntimeError(f"the feed does not serve event {events}: {status} {body[:200]!r}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="100,000 events, fewer requests")
    parser.add_argument(
        "--pg", default=os.environ.get("PERF_PG_URL", "postgres://postgres@127.0.0.1:5432/postgres"),
        help="PostgreSQL server (a URL to any existing database on it)",
    )  # fmt: skip
    parser.add_argument(
        "--database", default="allocation_bench_events", help="the big one (dropped first)"
    )
    parser.add_argument(
        "--small-database", help="the small one (dropped first); default: <database>_small"
    )
    parser.add_argument("--events", type=int, help="events in the big database (1,000,000)")
    parser.add_argument("--small-events", type=int, default=1000)
    parser.add_argument("--events-per-sku", type=int, default=200)
    parser.add_argument("--rounds", type=int, help="alternating rounds (10; --quick 4)")
    parser.add_argument("--requests", type=int, help="feed requests per case per round (30)")
    parser.add_argument("--admin-requests", type=int, help="admin requests per round (4)")
    parser.add_argument("--workers", type=int, default=2, help="gunicorn workers per server")
    parser.add_argument("--only", choices=["feed", "admin"], help="measure one half")
    parser.add_argument("--explain", action="store_true", help="EXPLAIN ANALYZE each request")
    parser.add_argument("--keep-databases", action="store_true")
    parser.add_argument(
        "--reuse", action="store_true", help="measure databases kept by an earlier run"
    )
    parser.add_argument("--output", type=Path, default=RESULTS / "events.json")
    args = parser.parse_args()

    quick = args.quick
    cfg = {
        "events": {
            "small": args.small_events,
            "big": args.events or (100_000 if quick else 1_000_000),
        },
        "events_per_sku": args.events_per_sku,
        # Many short rounds: the two databases are measured close together in
        # time, so the other tenants' load falls on both alike.
        "rounds": args.rounds or (4 if quick else 10),
        "requests": args.requests or (15 if quick else 30),
        "admin_requests": args.admin_requests or (2 if quick else 4),
        "workers": args.workers,
    }
    names = {"small": args.small_database or f"{args.database}_small", "big": args.database}
    dsn = {key: perf.database_url(args.pg, name) for key, name in names.items()}
    RESULTS.mkdir(parents=True, exist_ok=True)
    log_dir = RESULTS / "logs"
    log_dir.mkdir(exist_ok=True)
    secret = "events-bench-" + os.urandom(16).hex()

    def env_for(key: str) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "DATABASE_"))}
        env.update(
            DATABASE_URL=dsn[key],
            SECRET_KEY=secret,
            DEBUG="0",
            ALLOWED_HOSTS="127.0.0.1",
            PYTHONDONTWRITEBYTECODE="1",
            WEB_CONCURRENCY=str(cfg["workers"]),
        )
        return env

    report: dict = {
        "command": " ".join(["bench/events.py", *sys.argv[1:]]),
        "started": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "machine": perf.machine(),
        "config": {**cfg, "databases": names},
        "targets": TARGETS,
    }
    servers: list[perf.Server] = []
    load_before = os.getloadavg()
    pg_started = perf.postmaster_start(args.pg)
    try:
        if args.reuse:
            log(f"reusing {names}")
        else:
            log(f"databases {names}: migrate, copy, fill")
            perf_seed.recreate_database(args.pg, names["small"])
            perf.run_django(env_for("small"), "manage.py", "migrate", "--noinput", "-v0")
            perf.copy_database(args.pg, names["small"], names["big"])
            seconds = {}
            for key in ("small", "big"):
                seconds[key] = round(
                    fill(dsn[key], events=cfg["events"][key], per_sku=cfg["events_per_sku"]), 1
                )
                log(f"  {key}: {cfg['events'][key]:,} events in {seconds[key]} s")
            report["fill_seconds"] = seconds
        perf.run_django(env_for("small"), "manage.py", "collectstatic", "--noinput", "-v0")
        report["disk"] = {key: disk(dsn[key]) for key in ("small", "big")}
        for key in ("small", "big"):
            rows = report["disk"][key]["rows"]
            if rows != cfg["events"][key]:
                raise RuntimeError(f"{names[key]} holds {rows} events, not {cfg['events'][key]}")
        creds = {key: json.loads(perf.run_django(env_for(key), "bench/perf_accounts.py"))
                 for key in ("small", "big")}  # fmt: skip
        srv = {}
        for key in ("small", "big"):
            server = perf.Server(f"events-{key}", "allocation_project.wsgi", env_for(key), log_dir)
            srv[key] = perf.start(servers, server, "/healthz")
        headers = {
            key: {
                "feed": {
                    "Authorization": f"Token {creds[key]['reader_token']}",
                    "Accept": "application/json",
                    "X-Forwarded-Proto": "https",
                },
                "admin": {
                    "Cookie": f"sessionid={creds[key]['session']}",
                    "X-Forwarded-Proto": "https",
                },
            }
            for key in srv
        }
        for key in srv:
            check_served(srv[key].port, headers[key]["feed"], cfg["events"][key])
        found = {"small": probes(dsn["small"], cfg["events"]["small"], cfg["events_per_sku"])}
        found["big"] = probes(
            dsn["big"], cfg["events"]["big"], cfg["events_per_sku"], like=found["small"]
        )
        report["probes"] = found
        paths = {key: cases(found[key]) for key in ("small", "big")}
        if args.only:
            paths = {key: [c for c in cs if c[1] == args.only] for key, cs in paths.items()}
        if args.explain:
            big = [{"name": n, "kind": k, "path": p} for n, k, p in paths["big"]]
            print(
                perf.run_django(env_for("big"), "bench/events_explain.py", json.dumps(big)),
                flush=True,
            )
        report["cases"] = measure(cfg, paths, srv, headers)
    finally:
        perf.stop_all(servers)
        if not args.keep_databases and not args.reuse:
            for name in names.values():
                with contextlib.suppress(Exception):
                    perf_seed.drop_database(args.pg, name)
    report["postgres_restarted_during_run"] = perf.postmaster_start(args.pg) != pg_started
    report["load_average_before"] = [round(x, 2) for x in load_before]
    report["load_average_after"] = [round(x, 2) for x in os.getloadavg()]
    report["verdict"] = verdict(report)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(report, indent=2) + "\n")
    print_table(report)
    print(f"\nJSON: {args.output}")
    return 0


def measure(cfg: dict, paths: dict, srv: dict, headers: dict) -> list[dict]:
    recorder = perf.Recorder()
    out = []
    for index, (name, kind, _) in enumerate(paths["small"]):
        case = {"name": name, "kind": kind}
        requests = cfg["requests"] if kind == "feed" else cfg["admin_requests"]
        for key in ("small", "big"):
            path = paths[key][index][2]
            case[f"{key}_path"] = path
            status, body = fetch_json(srv[key].port, path, headers[key][kind])
            case[f"{key}_answer_rows"] = answer_size(kind, status, body)
            # Warm every worker on this request (2 per worker, at least).
            loadgen.run(srv[key].port, perf.get_factory(srv[key].port, path, headers[key][kind]),
                        concurrency=cfg["workers"], max_requests=4 * cfg["workers"],
                        max_seconds=60)  # fmt: skip
        log(f"{name}: {case['small_path']} | {case['big_path']}")
        for _, order in perf.interleaved(cfg["rounds"], ["small", "big"]):
            for key in order:
                port = srv[key].port
                result = loadgen.run(
                    port,
                    perf.get_factory(port, case[f"{key}_path"], headers[key][kind]),
                    concurrency=1,
                    max_requests=requests,
                    max_seconds=60,
                )
                recorder.add(name, key, result)
        small, big = recorder.pooled(name, "small"), recorder.pooled(name, "big")
        case.update(
            small=small,
            big=big,
            p95_ms={key: p95(recorder, name, key) for key in ("small", "big")},
            big_to_small_p50=perf.round_ratios(recorder, name, "big", "small", "p50"),
        )
        out.append(case)
    return out


def p95(recorder: perf.Recorder, section: str, label: str) -> float:
    latencies = sorted(x for r in recorder.runs[(section, label)] for x in r.latencies)
    return round(latencies[min(len(latencies) - 1, round(0.95 * len(latencies)) - 1)] * 1000, 2)


def verdict(report: dict) -> dict:
    checks = {}
    for case in report.get("cases", []):
        ok_statuses = set(case["small"]["statuses"]) == set(case["big"]["statuses"]) == {"200"}
        if case["kind"] == "feed" and case["name"] not in INFORMATIONAL:
            ratio = case["big_to_small_p50"]["pooled"]
            checks[f"{case['name']} p50 ratio"] = {
                "value": ratio, "target": f"<= {TARGETS['feed_p50_ratio']} (all 200)",
                "met": ratio <= TARGETS["feed_p50_ratio"] and ok_statuses,
            }  # fmt: skip
        elif case["kind"] == "admin":
            seconds = case["big"]["p50_ms"] / 1000
            checks[f"{case['name']} p50 seconds at big"] = {
                "value": round(seconds, 3), "target": f"< {TARGETS['admin_p50_seconds']} (all 200)",
                "met": seconds < TARGETS["admin_p50_seconds"] and ok_statuses,
            }  # fmt: skip
    return checks


def mib(n: int) -> str:
    return f"{n / 2**20:,.1f} MiB"


def print_table(report: dict) -> None:
    events = report["config"]["events"]
    small_n, big_n = f"{events['small']:,}", f"{events['big']:,}"
    header = (
        "case", "rows", f"p50 @{small_n}", f"p50 @{big_n}", f"p95 @{small_n}",
        f"p95 @{big_n}", "p50 ratio", "median, range of rounds", "statuses",
    )  # fmt: skip
    rows = []
    for case in report.get("cases", []):
        ratio = case["big_to_small_p50"]
        merged = _merge(case["small"]["statuses"], case["big"]["statuses"])
        statuses = " ".join(f"{k}:{v}" for k, v in merged.items())
        rows.append(
            (
                case["name"] + (" (info)" if case["name"] in INFORMATIONAL else ""),
                f"{case['small_answer_rows']}/{case['big_answer_rows']}",
                f"{case['small']['p50_ms']:.1f} ms",
                f"{case['big']['p50_ms']:.1f} ms",
                f"{case['p95_ms']['small']:.1f} ms",
                f"{case['p95_ms']['big']:.1f} ms",
                f"x{ratio['pooled']:.2f}",
                f"x{ratio['median_of_rounds']:.2f}, "
                f"{min(ratio['rounds']):.2f}-{max(ratio['rounds']):.2f}",
                statuses,
            )
        )
    if rows:
        widths = [max(len(str(row[i])) for row in [header, *rows]) for i in range(len(header))]
        line = "  ".join(f"{{:<{w}}}" for w in widths)
        print()
        print(line.format(*header))
        print(line.format(*("-" * w for w in widths)))
        for row in rows:
            print(line.format(*row))
        print("rows: events in the feed's answer / rows on the admin page, small/big")
    print()
    for key in ("small", "big"):
        d = report["disk"][key]
        print(
            f"disk @{d['rows']:,} events: {mib(d['total_bytes'])} "
            f"(heap {mib(d['heap_bytes'])}, toast+maps {mib(d['toast_and_maps_bytes'])}, "
            f"indexes {mib(d['indexes_bytes'])}; data {d['avg_data_bytes']:.0f} B an event)"
        )
    # Per million from the big table only (the small one is mostly fixed overhead).
    d = report["disk"]["big"]
    per_million = 1_000_000 / d["rows"] if d["rows"] else 0
    print(
        f"per million events: {mib(int(d['total_bytes'] * per_million))}, "
        f"{d['total_bytes'] / d['rows']:.0f} B an event "
        f"(heap {mib(int(d['heap_bytes'] * per_million))}, "
        f"indexes {mib(int(d['indexes_bytes'] * per_million))}):"
    )
    for name, size in d["index_bytes"].items():
        print(f"    {name}: {mib(int(size * per_million))}")
    m = report["machine"]
    print(
        f"\nmachine: {m['cpus']} CPUs ({m['cpu_model']}), {m['memory_gib']} GiB, "
        f"Python {m['python']}, PostgreSQL {m['postgresql']}; load before "
        f"{report['load_average_before']}, after {report['load_average_after']}"
    )
    if report["postgres_restarted_during_run"]:
        print("  WARNING: PostgreSQL restarted during the run (not by this benchmark): rerun.")
    for name, check in report["verdict"].items():
        mark = "ok  " if check["met"] else "MISS"
        print(f"  [{mark}] {name}: {check['value']} (target {check['target']})")


def _merge(a: dict, b: dict) -> dict:
    out = dict(a)
    for k, v in b.items():
        out[k] = out.get(k, 0) + v
    return out


if __name__ == "__main__":
    sys.exit(main())
