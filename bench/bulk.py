"""Benchmark of the bulk commands on PostgreSQL, against psql's \\copy as the floor.

    .venv/bin/python bench/bulk.py                             # 1,000,000 batches, 100,000 lines
    .venv/bin/python bench/bulk.py --rows 100000 --lines 10000 # a quicker run

What it does, in one run:

1. Generates the files itself in a temporary folder: a batches CSV of
   ``--rows`` rows over ``--skus`` SKUs (a third in stock, the rest inbound),
   and an order-lines CSV of ``--lines`` lines over the same SKUs.
2. Creates a fresh database (``allocation_bench``) and migrates it.
3. Floor: ``psql \\copy`` of the same CSV into a bare table with the same four
   columns (no index, no constraint).
   Then the floors issue 11 and 12 compare ``load_batches`` with: ``\\copy``
   into an empty copy of ``allocation_batch`` (``LIKE ... INCLUDING ALL``:
   its indexes and CHECKs), that plus the same batches' events into a copy
   of ``allocation_event``, and the two again with the batch copy keeping
   ``allocation_batch``'s foreign key to ``allocation_product``, which
   ``LIKE`` leaves out and which a real load pays for at commit.
4. For reference, the database work alone: the same CSV copied into a staging
   table by psql, then inserted into the real ``allocation_batch`` table (its
   five indexes, CHECKs and foreign key) with the set-based SQL load_batches
   uses, in one transaction. No Python; what any loader keeping the schema
   pays. The table is emptied afterwards.
5. ``manage.py load_batches`` of the CSV, as a subprocess: wall time and peak
   RSS (its own maximum resident set, through a small wrapper process).
6. ``manage.py allocate_orders`` of the lines over the loaded batches, then
   ``manage.py export_allocations`` of the result, likewise.
7. Prints a table, writes ``bench/results/bulk.json``, drops the database.

Speeds are rows per second; each ratio is the command's speed divided by the
floor's (1.0 = as fast as \\copy into a bare table). The machine is shared and
noisy: run it more than once before trusting a figure.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import platform
import random
import subprocess
import sys
import tempfile
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results"
PYTHON = sys.executable
DATABASE = "allocation_bench"

# Targets from the issue: a third of \copy's speed, under 300 MB, 2,000 lines/s.
TARGET_RATIO = 1 / 3
TARGET_PEAK_MB = 300
TARGET_LINES_PER_S = 2000

# Runs the command given as arguments and writes its peak RSS (KiB, Linux) to
# the file named first: RUSAGE_CHILDREN of this wrapper covers only that child.
_PEAK_WRAPPER = (
    "import resource, subprocess, sys\n"
    "rc = subprocess.call(sys.argv[2:])\n"
    "open(sys.argv[1], 'w').write(str(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss))\n"
    "sys.exit(rc)\n"
)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=1_000_000, help="batches to load")
    parser.add_argument("--skus", type=int, default=1_000, help="SKUs they spread over")
    parser.add_argument("--lines", type=int, default=100_000, help="order lines to allocate")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", default="5432")
    parser.add_argument("--user", default="postgres")
    parser.add_argument("--database", default=DATABASE, help="the database it creates and drops")
    parser.add_argument("--keep", action="store_true", help="keep the database afterwards")
    args = parser.parse_args()

    database = args.database
    pg = Postgres(args.host, args.port, args.user, database)
    url = f"postgres://{args.user}@{args.host}:{args.port}/{database}"
    env = {**os.environ, "DATABASE_URL": url, "SECRET_KEY": "bench-only", "DEBUG": "0"}

    with tempfile.TemporaryDirectory(prefix="bulk-bench-") as folder:
        folder = Path(folder)
        batches_csv = folder / "batches.csv"
        lines_csv = folder / "lines.csv"
        say(f"generating {args.rows:,} batches over {args.skus:,} SKUs, {args.lines:,} lines")
        write_batches(batches_csv, args.rows, args.skus)
        write_batch_events(folder / "events.csv", batches_csv)
        write_lines(lines_csv, args.lines, args.skus)

        say(f"creating database {database}")
        pg.admin(f"DROP DATABASE IF EXISTS {database}")
        pg.admin(f"CREATE DATABASE {database}")
        try:
            migrate = [PYTHON, "manage.py", "migrate", "-v0"]
            subprocess.run(migrate, cwd=ROOT, env=env, check=True)  # noqa: S603 - ours
            results = run_all(pg, env, args, batches_csv, lines_csv, folder)
        finally:
            if not args.keep:
                pg.admin(f"DROP DATABASE IF EXISTS {database}")

    print_table(results)
    RESULTS.mkdir(parents=True, exist_ok=True)
    out = RESULTS / "bulk.json"
    out.write_text(json.dumps(results, indent=2) + "\n")
    say(f"wrote {out.relative_to(ROOT)}")


def run_all(pg, env, args, batches_csv: Path, lines_csv: Path, folder: Path) -> dict:
    rows, lines = args.rows, args.lines

    say("floor: psql \\copy into a bare table")
    pg.sql(
        "CREATE TABLE bulk_floor (reference varchar(255), sku varchar(255),"
        " purchased_quantity integer, eta date)"
    )
    copy_seconds = timed(
        lambda: pg.sql(f"\\copy bulk_floor FROM '{batches_csv}' WITH (FORMAT csv, HEADER true)")
    )
    pg.sql("DROP TABLE bulk_floor")

    # Issue 11's floor: the same CSV into an empty copy of the batch table with
    # the same indexes and constraints (LIKE ... INCLUDING ALL; the columns
    # the CSV lacks get defaults).
    say("floor: psql \\copy into an empty copy of allocation_batch (same indexes, constraints)")
    pg.sql(
        "CREATE TABLE bulk_floor_indexed (LIKE allocation_batch INCLUDING ALL);"
        " ALTER TABLE bulk_floor_indexed ALTER allocated_quantity SET DEFAULT 0,"
        " ALTER created_at SET DEFAULT now()"
    )
    indexed_seconds = timed(
        lambda: pg.sql(
            f"\\copy bulk_floor_indexed (reference, sku, purchased_quantity, eta)"
            f" FROM '{batches_csv}' WITH (FORMAT csv, HEADER true)"
        )
    )
    pg.sql("DROP TABLE bulk_floor_indexed")

    # With events (issue 12): a load also writes one batch_created per new
    # batch. The floor for that: the batches as above plus the same events
    # copied into an empty copy of allocation_event (its indexes, the GIN one
    # included), each by psql \copy.
    say("floor: psql \\copy of the batches and of their events into empty copies of both tables")
    pg.sql(
        "CREATE TABLE bulk_floor_indexed (LIKE allocation_batch INCLUDING ALL);"
        " ALTER TABLE bulk_floor_indexed ALTER allocated_quantity SET DEFAULT 0,"
        " ALTER created_at SET DEFAULT now();"
        " CREATE TABLE bulk_floor_events (LIKE allocation_event INCLUDING ALL);"
    )
    events_csv = folder / "events.csv"
    with_events_seconds = timed(
        lambda: pg.sql(
            f"\\copy bulk_floor_indexed (reference, sku, purchased_quantity, eta)"
            f" FROM '{batches_csv}' WITH (FORMAT csv, HEADER true)\n"
            "\\copy bulk_floor_events (type, sku, sku_seq, occurred_at, actor, source, txn,"
            f" order_id, data) FROM '{events_csv}' WITH (FORMAT csv)"
        )
    )
    pg.sql("DROP TABLE bulk_floor_indexed; DROP TABLE bulk_floor_events")

    # LIKE ... INCLUDING ALL copies no foreign key, but allocation_batch has
    # one (sku -> allocation_product, checked at commit), and so do the
    # batches load_batches writes. The same two copies again, the batch copy
    # keeping that foreign key; its products are inserted first, untimed.
    say("floor: the same two copies, the batch copy with allocation_batch's foreign key")
    if args.skus > 99_999:
        raise SystemExit("sku_name() has five digits: at most 99,999 SKUs")
    last_sku = int(args.skus) - 1
    pg.sql(
        "INSERT INTO allocation_product (sku, created_at) SELECT 'SKU-' ||"  # noqa: S608 - an int
        f" lpad(n::text, 5, '0'), now() FROM generate_series(0, {last_sku}) n;"
        " CREATE TABLE bulk_floor_indexed (LIKE allocation_batch INCLUDING ALL);"
        " ALTER TABLE bulk_floor_indexed ALTER allocated_quantity SET DEFAULT 0,"
        " ALTER created_at SET DEFAULT now(), ADD FOREIGN KEY (sku)"
        " REFERENCES allocation_product (sku) DEFERRABLE INITIALLY DEFERRED;"
        " CREATE TABLE bulk_floor_events (LIKE allocation_event INCLUDING ALL);"
    )
    keyed_seconds = timed(
        lambda: pg.sql(
            f"\\copy bulk_floor_indexed (reference, sku, purchased_quantity, eta)"
            f" FROM '{batches_csv}' WITH (FORMAT csv, HEADER true)"
        )
    )
    keyed_events_seconds = timed(
        lambda: pg.sql(
            "\\copy bulk_floor_events (type, sku, sku_seq, occurred_at, actor, source, txn,"
            f" order_id, data) FROM '{events_csv}' WITH (FORMAT csv)"
        )
    )
    keyed_with_events_seconds = keyed_seconds + keyed_events_seconds
    pg.sql(
        "DROP TABLE bulk_floor_indexed; DROP TABLE bulk_floor_events;"
        " DELETE FROM allocation_product"
    )

    say("reference: the database work alone (psql, set-based SQL into the real tables)")
    sql_seconds = timed(lambda: pg.sql(_sql_only_load(batches_csv)))
    pg.sql(
        "TRUNCATE allocation_allocation, allocation_orderline, allocation_batch, allocation_product"
    )

    say("manage.py load_batches")
    load = run_command(env, folder, "load_batches", str(batches_csv))
    expect(load, f"created {rows}, updated 0, unchanged 0")

    say("manage.py allocate_orders")
    report = folder / "report.csv"
    allocate = run_command(env, folder, "allocate_orders", str(lines_csv), "--report", str(report))
    outcomes = parse_outcomes(load_line(allocate))

    say("manage.py export_allocations")
    export = run_command(env, folder, "export_allocations", "--output", str(folder / "picks.csv"))

    say("manage.py check_stock")
    check = run_command(env, folder, "check_stock")

    copy_rate = rows / copy_seconds

    def floor(seconds: float) -> dict:
        return {"seconds": round(seconds, 2), "rows_per_s": round(rows / seconds)}

    load_rate = rows / load["seconds"]
    lines_rate = lines / allocate["seconds"]
    return {
        "when": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": {
            "python": platform.python_version(),
            "cpus": os.cpu_count(),
            "postgres": pg.scalar("SHOW server_version"),
            "load_average": os.getloadavg(),
        },
        "sizes": {"rows": rows, "skus": args.skus, "lines": lines},
        "copy_floor": {"seconds": round(copy_seconds, 2), "rows_per_s": round(copy_rate)},
        "indexed_copy_floor": floor(indexed_seconds),
        "indexed_copy_with_events_floor": floor(with_events_seconds),
        # The same copies with allocation_batch's foreign key kept.
        "keyed_copy_floor": floor(keyed_seconds),
        "keyed_copy_with_events_floor": floor(keyed_with_events_seconds),
        "sql_only_load": {
            "seconds": round(sql_seconds, 2),
            "rows_per_s": round(rows / sql_seconds),
            "ratio_to_copy": round((rows / sql_seconds) / copy_rate, 3),
        },
        "load_batches": {
            "seconds": round(load["seconds"], 2),
            "rows_per_s": round(load_rate),
            "ratio_to_copy": round(load_rate / copy_rate, 3),
            "ratio_to_indexed_copy": round(load_rate / (rows / indexed_seconds), 3),
            "ratio_to_indexed_copy_with_events": round(load_rate / (rows / with_events_seconds), 3),
            "ratio_to_keyed_copy": round(load_rate / (rows / keyed_seconds), 3),
            "ratio_to_keyed_copy_with_events": round(
                load_rate / (rows / keyed_with_events_seconds), 3
            ),
            "ratio_to_sql_only": round(load_rate / (rows / sql_seconds), 3),
            "peak_mb": load["peak_mb"],
            "summary": load_line(load),
            "target_ratio": round(TARGET_RATIO, 3),
            "meets_ratio": load_rate / copy_rate >= TARGET_RATIO,
            "meets_memory": load["peak_mb"] < TARGET_PEAK_MB,
        },
        "allocate_orders": {
            "seconds": round(allocate["seconds"], 2),
            "lines_per_s": round(lines_rate),
            "peak_mb": allocate["peak_mb"],
            "outcomes": outcomes,
            "meets_speed": lines_rate >= TARGET_LINES_PER_S,
        },
        "export_allocations": {
            "seconds": round(export["seconds"], 2),
            "rows_per_s": round(outcomes.get("allocated", 0) / export["seconds"]),
            "peak_mb": export["peak_mb"],
            "summary": load_line(export),
        },
        "check_stock": {
            "seconds": round(check["seconds"], 2),
            "peak_mb": check["peak_mb"],
            "summary": load_line(check),
        },
    }


def _sql_only_load(batches_csv: Path) -> str:
    """What load_batches asks of the database for new batches, without the Python."""
    return "\n".join(
        [
            "BEGIN;",
            "SET LOCAL work_mem = '64MB';",
            "CREATE TEMPORARY TABLE rows (reference varchar(255), sku varchar(255),"
            " purchased_quantity integer, eta date) ON COMMIT DROP;",
            f"\\copy rows FROM '{batches_csv}' WITH (FORMAT csv, HEADER true)",
            "INSERT INTO allocation_product (sku, created_at)"
            " SELECT DISTINCT sku, now() FROM rows ORDER BY sku;",
            "INSERT INTO allocation_batch"
            " (reference, sku, purchased_quantity, allocated_quantity, eta, created_at)"
            " SELECT reference, sku, purchased_quantity, 0, eta, now() FROM rows"
            " ORDER BY sku, eta, reference;",
            "COMMIT;",
        ]
    )


# -- files ------------------------------------------------------------------------------


def sku_name(n: int) -> str:
    return f"SKU-{n:05d}"


def write_batches(path: Path, rows: int, skus: int) -> None:
    rng = random.Random(1)
    first = date(2027, 1, 1)
    with path.open("w", newline="") as out:
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(["reference", "sku", "purchased_quantity", "eta"])
        for n in range(rows):
            eta = "" if n % 3 == 0 else (first + timedelta(days=n % 365)).isoformat()
            writer.writerow([f"B{n:08d}", sku_name(n % skus), rng.randint(50, 500), eta])


def write_batch_events(path: Path, batches_csv: Path) -> None:
    """One batch_created per row of the batches file, as allocation_event rows (COPY's CSV)."""
    when = datetime.now(UTC).isoformat()
    seqs: dict[str, int] = {}
    with batches_csv.open(newline="") as source, path.open("w", newline="") as out:
        reader = csv.reader(source)
        next(reader)
        writer = csv.writer(out, lineterminator="\n")
        for reference, sku, quantity, eta in reader:
            seqs[sku] = seqs.get(sku, 0) + 1
            data = json.dumps(
                {"reference": reference, "purchased_quantity": int(quantity), "eta": eta or None}
            )
            writer.writerow(["batch_created", sku, seqs[sku], when, "", "cli", "0" * 32, "", data])


def write_lines(path: Path, lines: int, skus: int) -> None:
    rng = random.Random(2)
    with path.open("w", newline="") as out:
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(["order_id", "sku", "qty"])
        for n in range(lines):
            writer.writerow([f"O{n:08d}", sku_name(rng.randrange(skus)), rng.randint(1, 10)])


# -- running things ---------------------------------------------------------------------


class Postgres:
    def __init__(self, host: str, port: str, user: str, database: str = DATABASE) -> None:
        self.base = ["psql", "-h", host, "-p", port, "-U", user, "-v", "ON_ERROR_STOP=1", "-q"]
        self.database = database

    def admin(self, statement: str) -> None:
        command = [*self.base, "-d", "postgres", "-c", statement]
        subprocess.run(command, check=True)  # noqa: S603 - our own command line

    def sql(self, script: str) -> None:
        command = [*self.base, "-d", self.database]
        subprocess.run(command, input=script, text=True, check=True)  # noqa: S603 - ours

    def scalar(self, query: str) -> str:
        done = subprocess.run(  # noqa: S603 - our own command line
            [*self.base, "-d", self.database, "-At", "-c", query],
            capture_output=True,
            text=True,
            check=True,
        )
        return done.stdout.strip()


def run_command(env: dict, folder: Path, *args: str) -> dict:
    peak_file = folder / "peak"
    started = time.perf_counter()
    done = subprocess.run(  # noqa: S603 - our own command line
        [PYTHON, "-c", _PEAK_WRAPPER, str(peak_file), PYTHON, "manage.py", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
    )
    seconds = time.perf_counter() - started
    if done.returncode != 0:
        sys.exit(
            f"{args[0]} failed ({done.returncode}):\n{done.stdout[-2000:]}\n{done.stderr[-2000:]}"
        )
    peak_kib = int(peak_file.read_text())
    return {
        "seconds": seconds,
        "peak_mb": round(peak_kib / 1024, 1),
        "stdout": done.stdout,
        "stderr": done.stderr,
    }


def load_line(result: dict) -> str:
    """The command's one-line summary (stdout, or stderr when stdout carried data)."""
    text = result["stdout"].strip() or result["stderr"].strip()
    return text.splitlines()[-1] if text else ""


def expect(result: dict, summary: str) -> None:
    if load_line(result) != summary:
        sys.exit(f"unexpected summary: {load_line(result)!r}, wanted {summary!r}")


def parse_outcomes(summary: str) -> dict:
    counts = {}
    for part in summary.split(", "):
        name, _, number = part.rpartition(" ")
        counts[name] = int(number)
    return counts


def timed(action) -> float:
    started = time.perf_counter()
    action()
    return time.perf_counter() - started


def say(text: str) -> None:
    print(f"-- {text}", file=sys.stderr, flush=True)


def print_table(r: dict) -> None:
    rows = r["sizes"]["rows"]
    lines = r["sizes"]["lines"]
    load = r["load_batches"]
    table = [
        ("what", "seconds", "rate", "vs \\copy", "peak MB"),
        (
            f"psql \\copy, bare table ({rows:,} rows)",
            f"{r['copy_floor']['seconds']:.2f}",
            f"{r['copy_floor']['rows_per_s']:,} rows/s",
            "1.000",
            "",
        ),
        (
            "psql \\copy, empty copy of allocation_batch",
            f"{r['indexed_copy_floor']['seconds']:.2f}",
            f"{r['indexed_copy_floor']['rows_per_s']:,} rows/s",
            f"{r['copy_floor']['seconds'] / r['indexed_copy_floor']['seconds']:.3f}",
            "",
        ),
        (
            "psql \\copy, copies of allocation_batch + allocation_event",
            f"{r['indexed_copy_with_events_floor']['seconds']:.2f}",
            f"{r['indexed_copy_with_events_floor']['rows_per_s']:,} rows/s",
            f"{r['copy_floor']['seconds'] / r['indexed_copy_with_events_floor']['seconds']:.3f}",
            "",
        ),
        (
            "psql \\copy, the same, batch copy with its foreign key",
            f"{r['keyed_copy_with_events_floor']['seconds']:.2f}",
            f"{r['keyed_copy_with_events_floor']['rows_per_s']:,} rows/s",
            f"{r['copy_floor']['seconds'] / r['keyed_copy_with_events_floor']['seconds']:.3f}",
            "",
        ),
        (
            "psql, set-based SQL into allocation_batch",
            f"{r['sql_only_load']['seconds']:.2f}",
            f"{r['sql_only_load']['rows_per_s']:,} rows/s",
            f"{r['sql_only_load']['ratio_to_copy']:.3f}",
            "",
        ),
        (
            "manage.py load_batches",
            f"{load['seconds']:.2f}",
            f"{load['rows_per_s']:,} rows/s",
            f"{load['ratio_to_copy']:.3f}",
            f"{load['peak_mb']}",
        ),
        (
            f"manage.py allocate_orders ({lines:,} lines)",
            f"{r['allocate_orders']['seconds']:.2f}",
            f"{r['allocate_orders']['lines_per_s']:,} lines/s",
            "",
            f"{r['allocate_orders']['peak_mb']}",
        ),
        (
            "manage.py export_allocations",
            f"{r['export_allocations']['seconds']:.2f}",
            f"{r['export_allocations']['rows_per_s']:,} rows/s",
            "",
            f"{r['export_allocations']['peak_mb']}",
        ),
        (
            "manage.py check_stock",
            f"{r['check_stock']['seconds']:.2f}",
            "",
            "",
            f"{r['check_stock']['peak_mb']}",
        ),
    ]
    widths = [max(len(row[i]) for row in table) for i in range(len(table[0]))]
    for row in table:
        print("  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)))
    print()
    print(
        f"load_batches: {load['ratio_to_indexed_copy']:.3f} of \\copy's speed into a copy of "
        "allocation_batch with its indexes and constraints (issue 11 target 0.8)"
    )
    print(
        f"load_batches: {load['ratio_to_indexed_copy_with_events']:.3f} of \\copy's speed into"
        " copies of allocation_batch and allocation_event (batches and their events)"
    )
    print(
        f"load_batches: {load['ratio_to_keyed_copy']:.3f} / "
        f"{load['ratio_to_keyed_copy_with_events']:.3f} of the same two floors with"
        " allocation_batch's foreign key kept (LIKE ... INCLUDING ALL leaves it out)"
    )
    print(
        f"load_batches: {load['ratio_to_copy']:.3f} of \\copy's speed (target "
        f"{TARGET_RATIO:.3f}: {'met' if load['meets_ratio'] else 'NOT met'}), "
        f"{load['ratio_to_sql_only']:.3f} of the SQL-only load; peak {load['peak_mb']} MB "
        f"(target < {TARGET_PEAK_MB}: {'met' if load['meets_memory'] else 'NOT met'})"
    )
    print(
        f"allocate_orders: {r['allocate_orders']['lines_per_s']:,} lines/s (target "
        f"{TARGET_LINES_PER_S:,}: {'met' if r['allocate_orders']['meets_speed'] else 'NOT met'}); "
        f"outcomes {r['allocate_orders']['outcomes']}"
    )
    print(f"check_stock: {r['check_stock']['summary']}")


if __name__ == "__main__":
    main()
