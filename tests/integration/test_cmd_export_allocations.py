"""export_allocations: the pick list, one row per part, as the API sees the lines (SPEC 3)."""

from __future__ import annotations

import csv
import io
import tracemalloc
from datetime import UTC, date, datetime

import pytest

from allocation import models as orm
from allocation import services
from tests.integration.cmd_support import fail, run

pytestmark = pytest.mark.django_db

HEADER = ["order_id", "sku", "qty", "batch_reference", "batch_eta"]
# The API's message for an invalid identifier.
BAD_IDENTIFIER = (
    "1-255 characters from letters, digits and . _ - : , starting with a letter or digit."
)


def rows(text: str) -> list[tuple]:
    parsed = list(csv.reader(io.StringIO(text)))
    assert parsed[0] == HEADER
    return [tuple(row) for row in parsed[1:]]


@pytest.fixture
def allocations():
    services.add_batch(reference="r-ship", sku="RED", purchased_quantity=10, eta=date(2027, 1, 1))
    services.add_batch(reference="r-stock", sku="RED", purchased_quantity=4)
    services.add_batch(reference="b-stock", sku="BLUE", purchased_quantity=5)
    services.allocate(order_id="o2", sku="RED", qty=12)  # split: r-stock 4, r-ship 8
    services.allocate(order_id="o1", sku="RED", qty=2)  # r-ship 2
    services.allocate(order_id="o1", sku="BLUE", qty=2)
    services.allocate(order_id="o4", sku="BLUE", qty=3)
    services.change_batch(reference="b-stock", purchased_quantity=2)  # o4 backordered: no parts


def test_one_row_per_part_ordered_by_order_sku_and_preference(allocations):
    result = run("export_allocations")

    assert rows(result.stdout) == [
        ("o1", "BLUE", "2", "b-stock", ""),
        ("o1", "RED", "2", "r-ship", "2027-01-01"),
        ("o2", "RED", "4", "r-stock", ""),
        ("o2", "RED", "8", "r-ship", "2027-01-01"),
    ]
    # The export is on stdout, so its summary goes to stderr.
    assert result.stderr == "exported 4 rows\n"


def test_rows_match_the_api_view_of_the_same_lines(allocations, api):
    services.add_batch(reference="r-late", sku="RED", purchased_quantity=20, eta=date(2027, 6, 1))
    services.add_batch(reference="r-mid", sku="RED", purchased_quantity=20, eta=date(2027, 3, 1))
    services.allocate(order_id="o5", sku="RED", qty=30)  # r-mid 20, r-late 10
    from_api = []
    url = "/api/allocations/?page_size=1000"
    while url:
        page = api.get(url).json()
        for line in page["results"]:
            for part in line["batches"]:
                batch = api.get(f"/api/batches/{part['reference']}/").json()
                from_api.append(
                    (
                        line["order_id"],
                        line["sku"],
                        str(part["qty"]),
                        part["reference"],
                        batch["eta"] or "",
                    )
                )
        url = page["next"]

    assert rows(run("export_allocations").stdout) == from_api
    assert len(from_api) == 6


@pytest.mark.parametrize(
    ("options", "expected"),
    [
        (
            {"order_id": "o2"},
            [("o2", "RED", "4", "r-stock", ""), ("o2", "RED", "8", "r-ship", "2027-01-01")],
        ),
        ({"sku": "BLUE"}, [("o1", "BLUE", "2", "b-stock", "")]),
        ({"order_id": "o1", "sku": "RED"}, [("o1", "RED", "2", "r-ship", "2027-01-01")]),
        ({"order_id": "o4"}, []),
        ({"sku": "NOPE"}, []),
    ],
)
def test_filters_by_order_id_and_sku(allocations, options, expected):
    assert rows(run("export_allocations", **options).stdout) == expected


def test_writes_a_file_and_prints_the_summary_to_stdout(allocations, tmp_path):
    out = tmp_path / "picks.csv"

    result = run("export_allocations", "--output", str(out), "--sku", "BLUE")

    assert result.stdout == "exported 1 rows\n"
    assert out.read_text() == "order_id,sku,qty,batch_reference,batch_eta\no1,BLUE,2,b-stock,\n"


def test_an_empty_database_exports_the_header_only():
    result = run("export_allocations")

    assert result.stdout == "order_id,sku,qty,batch_reference,batch_eta\n"
    assert result.stderr == "exported 0 rows\n"


def test_an_invalid_filter_value_is_one_line():
    error, _ = fail("export_allocations", "--sku", "two words")

    assert str(error) == f"--sku: {BAD_IDENTIFIER}"


def test_an_unwritable_output_is_one_line(tmp_path):
    error, _ = fail("export_allocations", "--output", str(tmp_path / "no" / "picks.csv"))

    assert str(error) == f"cannot write {tmp_path / 'no' / 'picks.csv'}: No such file or directory"


def _many_parts(count: int) -> None:
    """``count`` allocated lines of one part each, written straight as rows (fast)."""
    now = datetime(2026, 1, 1, tzinfo=UTC)
    product = orm.Product.objects.create(sku="BULK")
    batch = orm.Batch.objects.create(
        reference="bulk",
        product=product,
        purchased_quantity=count,
        allocated_quantity=count,
        created_at=now,
    )
    orm.OrderLine.objects.bulk_create(
        orm.OrderLine(
            order_id=f"o{n:06d}",
            product=product,
            qty=1,
            status="allocated",
            requested_at=now,
            allocated_at=now,
        )
        for n in range(count)
    )
    orm.Allocation.objects.bulk_create(
        orm.Allocation(line_id=line_id, batch=batch, qty=1)
        for line_id in orm.OrderLine.objects.values_list("id", flat=True)
    )


def test_memory_stays_flat_however_many_rows_are_exported(tmp_path):
    _many_parts(30_000)
    out = tmp_path / "picks.csv"

    tracemalloc.start()
    try:
        result = run("export_allocations", "--output", str(out))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()

    assert result.stdout == "exported 30000 rows\n"
    assert out.read_text().count("\n") == 30_001
    # 30,000 rows held at once would take several MB; streamed, it is a chunk at a time.
    assert peak < 3_000_000


@pytest.mark.django_db(transaction=True)
def test_streams_outside_any_transaction_of_the_caller(tmp_path):
    # As a command runs for real: no test transaction around it. Its streaming
    # read then runs in a transaction of its own, which is what lets it work
    # through a transaction-mode pooler (scripts/test-pgbouncer runs this).
    _many_parts(5_001)
    out = tmp_path / "picks.csv"

    result = run("export_allocations", "--output", str(out))
    check = run("check_stock")

    assert result.stdout == "exported 5001 rows\n"
    lines = out.read_text().splitlines()
    assert len(lines) == 5_002
    assert lines[1] == "o000000,BULK,1,bulk,"
    assert lines[-1] == "o005000,BULK,1,bulk,"
    assert check.stdout == "ok: 1 batches, 5001 lines checked\n"
