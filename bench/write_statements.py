"""The allocate path's write statement alone: its two forms and the stack floor's, side by side.

    .venv/bin/python bench/write_statements.py                 # 1,000 each, 4 rounds
    .venv/bin/python bench/write_statements.py --writes 2000 --database NAME

A new line on one batch is written in one statement: the line, its part,
the batch, its ``line_allocated`` event. The repository has it in two forms:
``_WRITE_ONE_PART_SQL`` (scalars: the usual case, one part, one batch, one
event) and ``_WRITE_NEW_LINE_SQL`` (arrays: a line split over batches, a
backorder). The stack floor (``bench/floor/stack_views.py``) writes the same
rows with ``WRITE_WITH_EVENT``. This times each, prepared as the product
prepares them, in transactions that lock the SKU, write and roll back, on
one connection, alternating in rounds: milliseconds per transaction, wall
time, so PostgreSQL's work and the round trips are in it alike. It creates
its database (dropped first if it exists, dropped at the end), migrates it
and adds 1,000 SKUs with a batch each.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench import harness  # noqa: E402

SKUS = 1000


class _RolledBack(Exception):
    pass


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--writes", type=int, default=1000, help="transactions per form and round")
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--database", default="allocation_bench_writes")
    args = parser.parse_args()

    harness.django_on_new_database(args.database)
    from django.db import connection, connections, transaction
    from django.utils import timezone

    from allocation import services
    from allocation.db import prepared
    from allocation.repository import products as repo
    from bench.floor.stack_views import WRITE_WITH_EVENT

    try:
        for n in range(SKUS):
            services.add_batch(reference=f"w-b{n}", sku=f"W-{n}", purchased_quantity=10**9)
        with connection.cursor() as cursor:
            cursor.execute("SELECT sku, id FROM allocation_batch")
            batch_ids = dict(cursor.fetchall())

        def line(n: int) -> tuple[str, str, int, str]:
            order_id = f"w-{n}-{uuid.uuid4().hex[:8]}"
            sku = f"W-{n % SKUS}"
            data = {
                "order_id": order_id,
                "qty": 1,
                "batches": [{"reference": f"w-b{n % SKUS}", "qty": 1}],
                "previous_status": None,
            }
            return order_id, sku, batch_ids[sku], json.dumps(data, separators=(",", ":"))

        def scalars(n: int) -> tuple[str, list]:
            order_id, sku, batch, data = line(n)
            now = timezone.now()
            params = [order_id, sku, 1, "allocated", now, now, batch, 1, 10**9, 1, None, batch]
            params += ["line_allocated", sku, sku, 1, now, "bench", "api", uuid.uuid4().hex]
            return prepared(repo._WRITE_ONE_PART_SQL, [*params, order_id, data])

        def arrays(n: int) -> tuple[str, list]:
            order_id, sku, batch, data = line(n)
            now = timezone.now()
            params = [order_id, sku, 1, "allocated", now, now, [batch], [1]]
            params += [[batch], [10**9], [1], [None]]
            params += ["{line_allocated}", f"{{{sku}}}", "{1}", f'{{"{order_id}"}}']
            params += [repo._array_text([data]), now, "bench", "api", uuid.uuid4().hex]
            return prepared(repo._WRITE_NEW_LINE_SQL, params)

        def stack_floor(n: int) -> tuple[str, list]:
            order_id, sku, batch, data = line(n)
            now = timezone.now()
            params = [order_id, sku, 1, now, now, batch, 1, 1, batch]
            params += [sku, now, "bench", uuid.uuid4().hex, order_id, data, sku]
            return prepared(WRITE_WITH_EVENT, params)

        forms = {"scalars": scalars, "arrays": arrays, "stack_floor": stack_floor}
        results: dict[str, list[float]] = {name: [] for name in forms}
        for round_ in range(args.rounds + 1):  # round 0 warms up (and prepares)
            for name, statement in forms.items():
                started = time.perf_counter()
                for n in range(args.writes):
                    try:
                        with transaction.atomic(), connection.cursor() as cursor:
                            lock = prepared(repo._LOCK_SQL + " FOR UPDATE", [f"W-{n % SKUS}"])
                            cursor.execute(*lock)
                            cursor.execute(*statement(n))
                            if cursor.fetchone() is None:
                                raise SystemExit(f"{name}: no line written")
                            raise _RolledBack
                    except _RolledBack:
                        pass
                if round_:
                    results[name].append((time.perf_counter() - started) / args.writes * 1000)
        for name, times in results.items():
            each = ", ".join(f"{t:.3f}" for t in times)
            print(f"{name:11} ms per transaction: median {statistics.median(times):.3f} ({each})")
    finally:
        connections.close_all()
        harness.drop_postgres_db(args.database)


if __name__ == "__main__":
    main()
