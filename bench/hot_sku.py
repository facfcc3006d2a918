"""Allocations per second on one SKU, in process: the lock's critical section alone.

    .venv/bin/python bench/hot_sku.py                    # 1 and 4 threads, 3 rounds
    .venv/bin/python bench/hot_sku.py --rounds 5 --database NAME

Every allocation of one SKU queues on that SKU's lock, so on one SKU the
rate is set by how long a request holds the lock: the statements it runs
and waits for between the lock and the commit, and the Python between them.
This measures that and nothing else: ``services.allocate`` called directly
(no HTTP, no gunicorn, no authentication) on PostgreSQL on 127.0.0.1, by one
thread (each allocation's own latency) and by four threads with a
connection each (queued on the lock). It creates its database (dropped
first if it exists, dropped at the end), migrates it, adds one batch large
enough for every line, warms up, then runs ``--rounds`` rounds of both and
prints allocations per second for each. Run it in two worktrees one after
the other to compare two versions of the code on the same machine.
"""

from __future__ import annotations

import argparse
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench import harness  # noqa: E402

SKU = "HOT"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--single", type=int, default=1500, help="allocations by one thread")
    parser.add_argument("--each", type=int, default=600, help="allocations by each of 4 threads")
    parser.add_argument("--database", default="allocation_bench_hot")
    args = parser.parse_args()

    harness.django_on_new_database(args.database)
    from django.db import connections

    from allocation import services

    tag = f"hot-{time.time_ns()}"

    def allocate(worker: str, count: int) -> None:
        try:
            for n in range(count):
                services.allocate(order_id=f"{tag}-{worker}-{n}", sku=SKU, qty=1)
        finally:
            connections.close_all()

    def rate(threads: int, each: int, label: str) -> float:
        workers = [
            threading.Thread(target=allocate, args=(f"{label}-{k}", each)) for k in range(threads)
        ]
        started = time.perf_counter()
        for worker in workers:
            worker.start()
        for worker in workers:
            worker.join()
        return threads * each / (time.perf_counter() - started)

    try:
        services.add_batch(reference="hot-stock", sku=SKU, purchased_quantity=10**9)
        allocate("warm", 200)
        single, queued = [], []
        for r in range(args.rounds):
            single.append(rate(1, args.single, f"{r}-one"))
            queued.append(rate(4, args.each, f"{r}-four"))
    finally:
        connections.close_all()
        harness.drop_postgres_db(args.database)
    print(f"1 thread   allocations/s: {', '.join(f'{x:.0f}' for x in single)}")
    print(f"4 threads  allocations/s: {', '.join(f'{x:.0f}' for x in queued)}")


if __name__ == "__main__":
    main()
