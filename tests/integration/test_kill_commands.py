"""Nothing half-written: a bulk command killed with SIGKILL part-way leaves the database as it was.

Each test runs the real command in a subprocess on the test database, with
its stderr on a pseudo-terminal so that it draws its progress bar, waits
until the bar shows the command part-way through the file, kills it with
SIGKILL (no handler, no cleanup, as the kernel's OOM killer would) and
compares every stored row with what was there before. Both commands run in
one transaction: the database itself throws away what a dead process wrote.
"""

from __future__ import annotations

import os
import pty
import re
import select
import signal
import subprocess
import sys
import time
from io import StringIO
from pathlib import Path

import pytest
from django.core.management import call_command
from django.db import connection

from allocation import models as orm
from allocation import services
from tests.integration.cmd_support import ROOT, database_url

pytestmark = pytest.mark.django_db(transaction=True)

PERCENT = re.compile(r"(?P<what>reading|allocating)\s*:\s*(?P<percent>\d+)%")


def state() -> dict:
    """Every stored row that a command could change."""
    return {
        "batches": sorted(
            orm.Batch.objects.values_list(
                "reference", "product_id", "purchased_quantity", "allocated_quantity", "eta"
            )
        ),
        "lines": sorted(
            orm.OrderLine.objects.values_list("order_id", "product_id", "qty", "status")
        ),
        "parts": sorted(
            orm.Allocation.objects.values_list("line__order_id", "batch__reference", "qty")
        ),
        "products": sorted(orm.Product.objects.values_list("sku", flat=True)),
    }


def passed(phase: str, percent: int):
    """True once the ``phase`` progress bar shows at least ``percent``."""

    def check(seen: str, pid: int) -> bool:
        shown = [int(m["percent"]) for m in PERCENT.finditer(seen) if m["what"] == phase]
        return bool(shown) and shown[-1] >= percent

    return check


def position_in(pid: int, path: Path) -> int | None:
    """How far process ``pid`` has read the open file ``path`` (from /proc), or None."""
    for fd in os.listdir(f"/proc/{pid}/fd"):
        try:
            if os.readlink(f"/proc/{pid}/fd/{fd}") == str(path):
                fdinfo = Path(f"/proc/{pid}/fdinfo/{fd}").read_text()
                return int(re.search(r"pos:\s*(\d+)", fdinfo)[1])
        except (FileNotFoundError, ProcessLookupError):
            continue
    return None


def writing(path: Path):
    """True once the command has read all of ``path`` and is writing the real tables.

    On PostgreSQL: its connection holds a write lock on the batch table (taken
    by the first INSERT or UPDATE, held until commit). On SQLite, where a
    writer holds the one database lock from the start: a moment after it has
    read the whole file (checking and writing 300,000 rows take seconds).
    """
    size = path.stat().st_size
    since = []

    def check(seen: str, pid: int) -> bool:
        if connection.vendor == "postgresql":
            with connection.cursor() as cursor:
                cursor.execute(
                    "SELECT count(*) FROM pg_locks WHERE pid <> pg_backend_pid() "
                    "AND relation = 'allocation_batch'::regclass AND mode = 'RowExclusiveLock'"
                )
                return cursor.fetchone()[0] > 0
        if not since and position_in(pid, path) == size:
            since.append(time.monotonic())
        return bool(since) and time.monotonic() - since[0] >= 0.3

    return check


def kill_part_way(args: list[str], *, when) -> tuple[int, str]:
    """Run ``manage.py *args``; SIGKILL it as soon as ``when(progress output, pid)`` is true."""
    master, slave = pty.openpty()
    env = {**os.environ, "DATABASE_URL": database_url(), "COLUMNS": "120"}
    process = subprocess.Popen(  # noqa: S603 - our own manage.py
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=slave,
    )
    os.close(slave)
    seen = ""
    deadline = time.monotonic() + 120
    try:
        while time.monotonic() < deadline and process.poll() is None:
            ready, _, _ = select.select([master], [], [], 0.05)
            if ready:
                try:
                    seen += os.read(master, 65536).decode(errors="replace")
                except OSError:
                    break
            if when(seen, process.pid):
                break
        still_running = process.poll() is None
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=30)
    finally:
        os.close(master)
    assert still_running, f"the command ended before it could be killed:\n{seen[-2000:]}"
    return process.returncode, seen


def wait_for_orphaned_backends() -> None:
    """PostgreSQL rolls a dead client's transaction back; wait until it has."""
    if connection.vendor != "postgresql":
        return
    for _ in range(200):
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT count(*) FROM pg_stat_activity "
                "WHERE datname = current_database() AND pid <> pg_backend_pid()"
            )
            if cursor.fetchone()[0] == 0:
                return
        time.sleep(0.05)


def check_stock() -> str:
    out = StringIO()
    call_command("check_stock", stdout=out)
    return out.getvalue().strip()


@pytest.fixture
def existing_stock():
    """What was there before: a few batches and lines the commands would touch."""
    for i in range(5):
        services.add_batch(reference=f"old-{i}", sku=f"SKU-{i}", purchased_quantity=100)
    for i in range(5):
        services.allocate(order_id=f"before-{i}", sku=f"SKU-{i}", qty=3)
    return state()


@pytest.mark.parametrize("moment", ["while reading the file", "after reading, while writing"])
def test_load_batches_killed_part_way_writes_nothing(tmp_path, existing_stock, moment):
    big = tmp_path / "batches.csv"
    with big.open("w") as out:
        out.write("reference,sku,purchased_quantity,eta\n")
        # Updates of the existing batches (one below what is allocated), then new ones.
        for i in range(5):
            out.write(f"old-{i},SKU-{i},{2 if i == 0 else 150},\n")
        for i in range(300_000):
            out.write(f"new-{i},SKU-{i % 400},{i % 50},{'2031-01-01' if i % 3 else ''}\n")
    when = passed("reading", 40) if moment == "while reading the file" else writing(big)

    returncode, progress = kill_part_way(["load_batches", str(big)], when=when)

    assert returncode == -signal.SIGKILL
    assert "reading" in progress
    wait_for_orphaned_backends()
    assert state() == existing_stock
    assert check_stock() == "ok: 5 batches, 5 lines checked"


def test_allocate_orders_killed_part_way_allocates_nothing(tmp_path, existing_stock):
    for i in range(5):
        services.add_batch(reference=f"deep-{i}", sku=f"SKU-{i}", purchased_quantity=100_000)
    before = state()
    orders = tmp_path / "orders.csv"
    with orders.open("w") as out:
        out.write("order_id,sku,qty\n")
        for i in range(40_000):
            out.write(f"order-{i},SKU-{i % 5},1\n")

    returncode, progress = kill_part_way(
        ["allocate_orders", str(orders), "--report", str(tmp_path / "report.csv")],
        when=passed("allocating", 10),
    )

    assert returncode == -signal.SIGKILL
    assert "allocating" in progress
    wait_for_orphaned_backends()
    assert state() == before
    assert check_stock() == "ok: 10 batches, 5 lines checked"
    # The database is as usable as before: the killed run left no lock behind.
    assert services.allocate(order_id="after", sku="SKU-0", qty=1).created
