"""Python CPU and wall time per allocation, in process: the product against the floor.

    .venv/bin/python bench/cpu_per_request.py              # 3,000 allocations each
    .venv/bin/python bench/cpu_per_request.py --requests 1000 --database NAME

Where ``bench/perf.py`` measures throughput through gunicorn, this asks one
narrower question: how much Python CPU does one ``POST /api/allocations/``
cost the product, the floor (``bench/floor/``) and the stack floor (the
floor's allocation in the product's stack, with its event), on the same
database?
It creates a PostgreSQL database on 127.0.0.1 (dropped first if it exists,
dropped again at the end), migrates it, adds 1,000 SKUs with a batch each and
a token user with only ``add_orderline``, then runs each side in a process of
its own (the product's and the floor's settings cannot share one) through
Django's test client: warm-up, then the measured requests, each a new order
line on one of the SKUs in turn. Prints, per side, wall milliseconds and
``time.process_time`` milliseconds per request. The test client's own work
is in both figures alike.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PYTHON = sys.executable
SKUS = 1000
SIDES = {
    "product": "allocation_project.settings",
    "floor": "bench.floor.settings",
    "stack_floor": "bench.floor.stack_settings",
}


def _env(url: str, settings: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "DATABASE_"))}
    env.update(
        DATABASE_URL=url,
        DJANGO_SETTINGS_MODULE=settings,
        SECRET_KEY="bench-only-" + "x" * 40,
        DEBUG="0",
        ALLOWED_HOSTS="testserver",
    )
    return env


def _psql(statement: str) -> None:
    command = ["psql", "-h", "127.0.0.1", "-U", "postgres", "-qc", statement]
    subprocess.run(command, check=True)  # noqa: S603, S607 - psql from PATH, our statement


def _child(side: str, requests: int, warmup: int) -> None:
    """Run in a fresh process with DJANGO_SETTINGS_MODULE set: measure one side."""
    sys.path.insert(0, str(ROOT))
    import django

    django.setup()
    from django.db import connection
    from django.test import Client

    with connection.cursor() as cursor:
        cursor.execute("SELECT key FROM authtoken_token LIMIT 1")
        (key,) = cursor.fetchone()
    client = Client(HTTP_AUTHORIZATION=f"Token {key}")
    tag = f"{side}-{time.time_ns()}"

    def allocate(first: int, count: int) -> None:
        for n in range(first, first + count):
            body = json.dumps({"order_id": f"{tag}-{n}", "sku": f"CPU-{n % SKUS}", "qty": 1})
            response = client.post(
                "/api/allocations/", data=body, content_type="application/json", secure=True
            )
            if response.status_code != 201:
                raise SystemExit(f"{side}: {response.status_code} {response.content[:200]!r}")

    allocate(0, warmup)
    wall, cpu = time.perf_counter(), time.process_time()
    allocate(warmup, requests)
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    print(
        json.dumps(
            {"side": side, "wall_ms": wall / requests * 1000, "cpu_ms": cpu / requests * 1000}
        )
    )


def _seed(url: str) -> None:
    code = f"""
import django; django.setup()
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Permission
from django.core.management import call_command
from rest_framework.authtoken.models import Token
from allocation import services
call_command("migrate", verbosity=0)
for n in range({SKUS}):
    services.add_batch(reference=f"cpu-b{{n}}", sku=f"CPU-{{n}}", purchased_quantity=10**9)
user = get_user_model().objects.create(username="cpu-bench")
user.user_permissions.set([Permission.objects.get(codename="add_orderline")])
Token.objects.create(user=user)
"""
    subprocess.run(  # noqa: S603 - our own code
        [PYTHON, "-c", code], cwd=ROOT, env=_env(url, SIDES["product"]), check=True
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=3000)
    parser.add_argument("--warmup", type=int, default=300)
    parser.add_argument("--rounds", type=int, default=2, help="product, floor, ... alternating")
    parser.add_argument("--database", default="allocation_bench_cpu")
    parser.add_argument("--child", choices=sorted(SIDES), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        _child(args.child, args.requests, args.warmup)
        return

    url = f"postgres://postgres@127.0.0.1:5432/{args.database}"
    _psql(f"DROP DATABASE IF EXISTS {args.database}")
    _psql(f"CREATE DATABASE {args.database}")
    try:
        _seed(url)
        results: dict[str, list[dict]] = {side: [] for side in SIDES}
        for _ in range(args.rounds):
            for side, settings in SIDES.items():
                done = subprocess.run(  # noqa: S603 - our own command line
                    [
                        PYTHON,
                        __file__,
                        "--child",
                        side,
                        "--requests",
                        str(args.requests),
                        "--warmup",
                        str(args.warmup),
                    ],
                    cwd=ROOT,
                    env=_env(url, settings),
                    check=True,
                    capture_output=True,
                    text=True,
                )
                results[side].append(json.loads(done.stdout.strip().splitlines()[-1]))
    finally:
        _psql(f"DROP DATABASE IF EXISTS {args.database}")
    for side, runs in results.items():
        walls = ", ".join(f"{r['wall_ms']:.2f}" for r in runs)
        cpus = ", ".join(f"{r['cpu_ms']:.2f}" for r in runs)
        print(f"{side:11} wall ms/request: {walls}   python cpu ms/request: {cpus}")


if __name__ == "__main__":
    main()
