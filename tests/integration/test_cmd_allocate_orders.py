"""allocate_orders: the API's allocation, line by line in file order, reported (SPEC 3)."""

from __future__ import annotations

import codecs
import csv
import io
import random
from datetime import date

import pytest
from django.db import DatabaseError

from allocation import models as orm
from allocation import services
from allocation.management import order_file as orders
from tests.integration.cmd_support import csv_text, fail, feed_stdin, run, write
from tests.integration.helpers import lines

pytestmark = pytest.mark.django_db

HEADER = "order_id,sku,qty"
REPORT_HEADER = "order_id,sku,qty,outcome,batches"
# The API's message for an invalid identifier.
BAD_IDENTIFIER = (
    "1-255 characters from letters, digits and . _ - : , starting with a letter or digit."
)


def report_rows(text: str) -> list[tuple]:
    rows = list(csv.reader(io.StringIO(text)))
    assert rows[0] == REPORT_HEADER.split(",")
    return [tuple(row) for row in rows[1:]]


def batch_totals() -> list[tuple]:
    return list(
        orm.Batch.objects.order_by("reference").values_list("reference", "allocated_quantity")
    )


def allocate(tmp_path, *rows: str, **options):
    return run("allocate_orders", write(tmp_path, "orders.csv", csv_text(HEADER, *rows)), **options)


@pytest.fixture
def stock():
    """RED: 5 in stock, then 10 and 20 inbound. BLUE: 3 in stock. GREEN: no batch left."""
    services.add_batch(reference="r-ship-2", sku="RED", purchased_quantity=20, eta=date(2027, 2, 1))
    services.add_batch(reference="r-stock", sku="RED", purchased_quantity=5)
    services.add_batch(reference="r-ship-1", sku="RED", purchased_quantity=10, eta=date(2027, 1, 1))
    services.add_batch(reference="b-stock", sku="BLUE", purchased_quantity=3)
    services.add_batch(reference="g-gone", sku="GREEN", purchased_quantity=1)
    services.delete_batch(reference="g-gone")


# -- outcomes and the report ----------------------------------------------------------


def test_reports_every_outcome_in_file_order_with_parts_in_preference_order(tmp_path, stock):
    result = allocate(
        tmp_path,
        "o1,RED,3",  # whole, on the in-stock batch
        "o2,RED,25",  # no batch covers it: split in preference order
        "o1,RED,3",  # the same line again: idempotent
        "o1,RED,4",  # the same line, another qty: conflict
        "o3,BLUE,4",  # 3 available
        "o4,NOPE,1",  # no such SKU
        "o5,GREEN,1",  # a SKU with no batches left
        "o3,BLUE,3",  # o3/BLUE was refused, so this is new
    )

    assert report_rows(result.stdout) == [
        ("o1", "RED", "3", "allocated", "r-stock:3"),
        ("o2", "RED", "25", "allocated", "r-stock:2;r-ship-1:10;r-ship-2:13"),
        ("o1", "RED", "3", "already_allocated", "r-stock:3"),
        ("o1", "RED", "4", "line_conflict", ""),
        ("o3", "BLUE", "4", "out_of_stock", ""),
        ("o4", "NOPE", "1", "invalid_sku", ""),
        ("o5", "GREEN", "1", "invalid_sku", ""),
        ("o3", "BLUE", "3", "allocated", "b-stock:3"),
    ]
    # The report is on stdout, so the summary goes to stderr.
    assert result.stderr == (
        "allocated 3, already_allocated 1, out_of_stock 1, invalid_sku 2, line_conflict 1\n"
    )
    assert lines() == [
        ("o1", "RED", 3, "allocated", [("r-stock", 3)]),
        ("o2", "RED", 25, "allocated", [("r-ship-1", 10), ("r-ship-2", 13), ("r-stock", 2)]),
        ("o3", "BLUE", 3, "allocated", [("b-stock", 3)]),
    ]
    assert batch_totals() == [
        ("b-stock", 3),
        ("r-ship-1", 10),
        ("r-ship-2", 13),
        ("r-stock", 5),
    ]


def test_a_report_file_gets_the_report_and_stdout_the_summary(tmp_path, stock):
    out = tmp_path / "report.csv"

    result = allocate(tmp_path, "o1,RED,1", "o2,BLUE,9", report=str(out))

    assert result.stdout == (
        "allocated 1, already_allocated 0, out_of_stock 1, invalid_sku 0, line_conflict 0\n"
    )
    assert result.stderr == ""
    assert report_rows(out.read_text()) == [
        ("o1", "RED", "1", "allocated", "r-stock:1"),
        ("o2", "BLUE", "9", "out_of_stock", ""),
    ]


def test_running_the_same_file_again_changes_nothing(tmp_path, stock):
    allocate(tmp_path, "o1,RED,30", "o2,BLUE,1")
    before = (lines(), batch_totals())

    result = allocate(tmp_path, "o1,RED,30", "o2,BLUE,1")

    assert report_rows(result.stdout) == [
        ("o1", "RED", "30", "already_allocated", "r-stock:5;r-ship-1:10;r-ship-2:15"),
        ("o2", "BLUE", "1", "already_allocated", "b-stock:1"),
    ]
    assert (lines(), batch_totals()) == before


def test_a_backordered_line_repeated_is_already_allocated_with_no_batches(tmp_path, stock):
    services.allocate(order_id="o1", sku="BLUE", qty=3)
    services.change_batch(reference="b-stock", purchased_quantity=1)  # o1 backordered

    result = allocate(tmp_path, "o1,BLUE,3", "o1,BLUE,1")

    assert report_rows(result.stdout) == [
        ("o1", "BLUE", "3", "already_allocated", ""),
        ("o1", "BLUE", "1", "line_conflict", ""),
    ]
    assert lines() == [("o1", "BLUE", 3, "backordered", [])]


def test_reads_json_lines(tmp_path, stock):
    path = write(
        tmp_path,
        "orders.jsonl",
        '{"order_id": "o1", "sku": "RED", "qty": 2}\n'
        '{"order_id": "o2", "sku": "BLUE", "qty": "1"}\n',
    )

    result = run("allocate_orders", path)

    assert report_rows(result.stdout) == [
        ("o1", "RED", "2", "allocated", "r-stock:2"),
        ("o2", "BLUE", "1", "allocated", "b-stock:1"),
    ]


def test_reads_standard_input_and_a_spreadsheet_csv(monkeypatch, stock):
    feed_stdin(monkeypatch, codecs.BOM_UTF8 + csv_text(HEADER, "o1,RED,1", newline="\r\n").encode())

    result = run("allocate_orders", "-")

    assert report_rows(result.stdout) == [("o1", "RED", "1", "allocated", "r-stock:1")]


@pytest.mark.parametrize("content", [b"", HEADER.encode() + b"\n"])
def test_an_empty_file_allocates_nothing_and_reports_no_rows(tmp_path, content):
    result = run("allocate_orders", write(tmp_path, "orders.csv", content))

    assert result.stdout == REPORT_HEADER + "\n"
    assert result.stderr == (
        "allocated 0, already_allocated 0, out_of_stock 0, invalid_sku 0, line_conflict 0\n"
    )


def test_verbosity_0_still_writes_the_report_but_no_summary(tmp_path, stock):
    result = allocate(tmp_path, "o1,RED,1", verbosity=0)

    assert report_rows(result.stdout) == [("o1", "RED", "1", "allocated", "r-stock:1")]
    assert result.stderr == ""


# -- malformed files allocate nothing -------------------------------------------------------


def test_a_malformed_file_allocates_nothing_and_lists_every_error(tmp_path, stock):
    out = tmp_path / "report.csv"

    error, result = fail(
        "allocate_orders",
        write(
            tmp_path,
            "orders.csv",
            csv_text(
                HEADER,
                "o1,RED,1",
                "o2,RED,0",
                "o 3,RED,1",
                "o4,,1",
                "o5,RED,x",
                "o6,RED",
                "o7,RED,-2",
            ),
        ),
        report=str(out),
    )

    assert result.err_lines == [
        "line 3: qty: Ensure this value is greater than or equal to 1.",
        f"line 4: order_id: {BAD_IDENTIFIER}",
        "line 5: sku: This field may not be blank.",
        "line 6: qty: A valid integer is required.",
        "line 7: row: expected 3 fields, found 2",
        "line 8: qty: Ensure this value is greater than or equal to 1.",
    ]
    assert str(error) == "6 errors; nothing was written."
    assert result.stdout == ""
    assert not out.exists()
    assert lines() == []


def test_a_bad_header_is_one_line(tmp_path):
    error, result = fail("allocate_orders", write(tmp_path, "o.csv", "order,sku,qty\no1,RED,1\n"))

    assert str(error) == (
        "line 1: header: expected the columns order_id,sku,qty; missing order_id; unknown order"
    )
    assert (result.stdout, result.stderr) == ("", "")


def test_a_report_that_cannot_be_written_is_one_line(tmp_path, stock):
    error, _ = fail(
        "allocate_orders",
        write(tmp_path, "o.csv", csv_text(HEADER, "o1,RED,1")),
        report=str(tmp_path / "missing" / "report.csv"),
    )

    assert (
        str(error)
        == f"cannot write {tmp_path / 'missing' / 'report.csv'}: No such file or directory"
    )
    assert lines() == []


def test_a_failure_half_way_allocates_nothing_and_writes_no_report(tmp_path, stock, monkeypatch):
    monkeypatch.setattr(orders, "SKUS_PER_UNIT", 1)
    real = orders._allocate_group
    groups = []

    def second_group_fails(rows, clock, origin):
        groups.append(rows[0][0])
        if len(groups) == 2:
            raise DatabaseError("server closed the connection unexpectedly")
        return real(rows, clock, origin)

    monkeypatch.setattr(orders, "_allocate_group", second_group_fails)
    out = tmp_path / "report.csv"

    error, result = fail(
        "allocate_orders",
        write(tmp_path, "o.csv", csv_text(HEADER, "o1,BLUE,1", "o2,RED,1")),
        report=str(out),
    )

    assert groups == ["BLUE", "RED"]
    assert str(error) == (
        "database error: server closed the connection unexpectedly; nothing was written."
    )
    assert lines() == []
    assert batch_totals() == [("b-stock", 0), ("r-ship-1", 0), ("r-ship-2", 0), ("r-stock", 0)]
    assert not out.exists()
    assert list(tmp_path.iterdir()) == [tmp_path / "o.csv"]


# -- the same outcomes as the API, one call at a time --------------------------------------


def _setup_stock() -> None:
    services.add_batch(reference="r-ship", sku="RED", purchased_quantity=40, eta=date(2027, 1, 1))
    services.add_batch(reference="r-stock", sku="RED", purchased_quantity=25)
    services.add_batch(reference="r-late", sku="RED", purchased_quantity=30, eta=date(2027, 3, 1))
    services.add_batch(reference="b-stock", sku="BLUE", purchased_quantity=12)
    services.add_batch(reference="b-ship", sku="BLUE", purchased_quantity=9, eta=date(2027, 1, 5))
    services.add_batch(reference="g-stock", sku="GREEN", purchased_quantity=6)
    services.add_batch(reference="gone", sku="EMPTY", purchased_quantity=1)
    services.delete_batch(reference="gone")
    # Lines recorded before the file: one allocated, one backordered.
    services.allocate(order_id="o-01", sku="RED", qty=4)
    services.allocate(order_id="o-02", sku="GREEN", qty=5)
    services.change_batch(reference="g-stock", purchased_quantity=4)


def _random_lines(count: int, seed: int) -> list[tuple[str, str, int]]:
    rng = random.Random(seed)
    made: list[tuple[str, str, int]] = []
    for _ in range(count):
        if made and rng.random() < 0.3:
            order_id, sku, qty = rng.choice(made)  # a repeat...
            if rng.random() < 0.3:
                qty += 1  # ...or a conflicting one
        else:
            order_id = f"o-{rng.randint(1, 80):02d}"
            sku = rng.choice(["RED", "RED", "BLUE", "GREEN", "NOPE", "EMPTY"])
            qty = rng.choice([1, 2, 3, 5, 8, 13, 30])
        made.append((order_id, sku, qty))
    return made


def _state() -> tuple:
    return lines(), batch_totals()


def _forget_everything() -> None:
    orm.Allocation.objects.all().delete()
    orm.OrderLine.objects.all().delete()
    orm.Batch.objects.all().delete()
    orm.Product.objects.all().delete()


_API_OUTCOMES = {
    (201, None): "allocated",
    (200, None): "already_allocated",
    (409, "out_of_stock"): "out_of_stock",
    (409, "line_conflict"): "line_conflict",
    (400, "invalid_sku"): "invalid_sku",
}


@pytest.mark.parametrize(("page_lines", "skus_per_unit"), [(10_000, 50), (7, 2)])
def test_outcomes_equal_one_api_call_after_another(
    tmp_path, api, monkeypatch, page_lines, skus_per_unit
):
    # Small pages make SKUs span pages and units of work: the outcome must not care.
    monkeypatch.setattr(orders, "PAGE_LINES", page_lines)
    monkeypatch.setattr(orders, "SKUS_PER_UNIT", skus_per_unit)
    file_lines = _random_lines(300, seed=page_lines)

    _setup_stock()
    result = allocate(tmp_path, *(f"{o},{s},{q}" for o, s, q in file_lines))
    by_command = report_rows(result.stdout)
    state_by_command = _state()

    _forget_everything()
    _setup_stock()
    by_api = []
    for order_id, sku, qty in file_lines:
        response = api.post(
            "/api/allocations/", {"order_id": order_id, "sku": sku, "qty": qty}, format="json"
        )
        body = response.json()
        outcome = _API_OUTCOMES[(response.status_code, body.get("code"))]
        batches = ";".join(f"{b['reference']}:{b['qty']}" for b in body.get("batches", []))
        by_api.append((order_id, sku, str(qty), outcome, batches))

    assert by_command == by_api
    assert state_by_command == _state()
    # The file really exercises every outcome.
    assert {row[3] for row in by_command} == set(orders.OUTCOMES)


# -- progress ------------------------------------------------------------------------------


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_progress_goes_to_stderr_on_a_terminal_and_never_into_the_report(tmp_path, stock):
    from django.core.management import call_command

    stdout, stderr = io.StringIO(), _Terminal()

    call_command(
        "allocate_orders",
        write(tmp_path, "o.csv", csv_text(HEADER, "o1,RED,1")),
        stdout=stdout,
        stderr=stderr,
    )

    assert report_rows(stdout.getvalue()) == [("o1", "RED", "1", "allocated", "r-stock:1")]
    assert "allocating" in stderr.getvalue()
    assert (
        stderr.getvalue()
        .rstrip()
        .endswith(
            "allocated 1, already_allocated 0, out_of_stock 0, invalid_sku 0, line_conflict 0"
        )
    )
