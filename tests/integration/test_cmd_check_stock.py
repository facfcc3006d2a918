"""check_stock: finds each kind of broken invariant, reports it, repairs nothing (SPEC 3).

The database's CHECK constraints forbid several of these states, so the tests
switch them off for their own transaction (dropped on PostgreSQL, ignored on
SQLite); the test's rollback puts them back.
"""

from __future__ import annotations

from datetime import date

import pytest
from django.db import connection

from allocation import models as orm
from allocation import services
from tests.integration.cmd_support import fail, run

pytestmark = pytest.mark.django_db

_CHECKS = [
    ("allocation_batch", "batch_allocated_within_purchased"),
    ("allocation_batch", "batch_purchased_quantity_gte_0"),
    ("allocation_allocation", "allocation_qty_gt_0"),
    ("allocation_orderline", "orderline_status_valid"),
    ("allocation_orderline", "orderline_qty_gt_0"),
]


@pytest.fixture
def unchecked():
    """Raw SQL that breaks the rules, with the CHECK constraints out of the way."""
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            # Deferred foreign-key checks still queued from the fixtures would
            # block ALTER TABLE: run them now.
            cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
            for table, name in _CHECKS:
                cursor.execute(f"ALTER TABLE {table} DROP CONSTRAINT {name}")  # noqa: S608
            cursor.execute("SET CONSTRAINTS ALL DEFERRED")
        else:
            cursor.execute("PRAGMA ignore_check_constraints = ON")

    def execute(sql: str, params=()) -> None:
        with connection.cursor() as cursor:
            cursor.execute(sql, params)

    yield execute
    if connection.vendor != "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("PRAGMA ignore_check_constraints = OFF")


@pytest.fixture
def stock():
    """RED: b1 (10) holds o1 (4). BLUE: b2 (5) holds o2 (2). GREEN: b3 (5), no lines."""
    services.add_batch(reference="b1", sku="RED", purchased_quantity=10)
    services.add_batch(reference="b2", sku="BLUE", purchased_quantity=5)
    services.add_batch(reference="b3", sku="GREEN", purchased_quantity=5)
    services.allocate(order_id="o1", sku="RED", qty=4)
    services.allocate(order_id="o2", sku="BLUE", qty=2)


def raw_state() -> tuple:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT reference, purchased_quantity, allocated_quantity FROM allocation_batch"
            " ORDER BY reference"
        )
        batches = cursor.fetchall()
        cursor.execute(
            "SELECT order_id, sku, qty, status FROM allocation_orderline ORDER BY order_id"
        )
        lines = cursor.fetchall()
        cursor.execute(
            "SELECT line_id, batch_id, qty FROM allocation_allocation ORDER BY line_id, batch_id"
        )
        parts = cursor.fetchall()
    return batches, lines, parts


def check_finds(*violations: str) -> None:
    """Run check_stock: it prints exactly these violations, exits 1 and changes nothing."""
    before = raw_state()
    error, result = fail("check_stock")
    assert result.stdout.splitlines() == list(violations)
    noun = "violation" if len(violations) == 1 else "violations"
    batches, lines = orm.Batch.objects.count(), orm.OrderLine.objects.count()
    assert str(error) == f"{len(violations)} {noun} found: {batches} batches, {lines} lines checked"
    assert raw_state() == before


def part_id(order_id: str) -> int:
    return orm.Allocation.objects.get(line__order_id=order_id).pk


# -- a sound database ---------------------------------------------------------------


def test_an_empty_database_is_ok():
    result = run("check_stock")

    assert result.stdout == "ok: 0 batches, 0 lines checked\n"


def test_a_database_written_through_the_services_is_ok():
    services.add_batch(reference="s", sku="RED", purchased_quantity=3)
    services.add_batch(reference="i", sku="RED", purchased_quantity=10, eta=date(2027, 1, 1))
    services.allocate(order_id="o1", sku="RED", qty=8)
    services.allocate(order_id="o2", sku="RED", qty=4)  # split
    services.change_batch(reference="i", purchased_quantity=5)  # o1 split, o2 backordered
    services.deallocate(order_id="o1", sku="RED")  # o2 served
    services.allocate(order_id="o3", sku="RED", qty=1)

    result = run("check_stock")

    assert result.stdout == "ok: 2 batches, 2 lines checked\n"
    assert result.stderr == ""


def test_verbosity_0_prints_nothing_when_ok(stock):
    assert run("check_stock", verbosity=0).stdout == ""


# -- each kind of violation ------------------------------------------------------------


def test_finds_a_batch_allocated_beyond_its_purchased_quantity(stock, unchecked):
    unchecked("UPDATE allocation_batch SET purchased_quantity = 3 WHERE reference = 'b1'")

    check_finds("batch b1: allocated_quantity 4 exceeds purchased_quantity 3")


def test_finds_a_negative_allocated_quantity(stock, unchecked):
    unchecked("UPDATE allocation_batch SET allocated_quantity = -1 WHERE reference = 'b3'")

    check_finds(
        "batch b3: allocated_quantity -1 is negative",
        "batch b3: stored allocated_quantity -1 but the parts on it add up to 0",
    )


def test_finds_a_negative_purchased_quantity(stock, unchecked):
    unchecked("UPDATE allocation_batch SET purchased_quantity = -2 WHERE reference = 'b3'")

    check_finds(
        "batch b3: purchased_quantity -2 is negative",
        "batch b3: allocated_quantity 0 exceeds purchased_quantity -2",
    )


def test_finds_a_stored_total_that_is_not_the_sum_of_its_parts(stock, unchecked):
    unchecked("UPDATE allocation_batch SET allocated_quantity = 6 WHERE reference = 'b1'")

    check_finds("batch b1: stored allocated_quantity 6 but the parts on it add up to 4")


def test_finds_an_allocated_line_whose_parts_do_not_add_up_to_its_qty(stock, unchecked):
    unchecked("UPDATE allocation_orderline SET qty = 5 WHERE order_id = 'o1'")

    check_finds("line o1/RED: allocated with qty 5 but its parts add up to 4")


def test_finds_an_allocated_line_with_no_parts(stock, unchecked):
    unchecked("DELETE FROM allocation_allocation WHERE id = %s", [part_id("o2")])
    unchecked("UPDATE allocation_batch SET allocated_quantity = 0 WHERE reference = 'b2'")

    check_finds("line o2/BLUE: allocated (qty 2) but has no parts")


def test_finds_a_backordered_line_that_holds_parts(stock, unchecked):
    unchecked("UPDATE allocation_orderline SET status = 'backordered' WHERE order_id = 'o1'")

    check_finds("line o1/RED: backordered but holds 1 part(s) of total qty 4")


def test_finds_a_part_on_a_batch_of_another_sku(stock, unchecked):
    b1 = orm.Batch.objects.get(reference="b1").pk
    unchecked("UPDATE allocation_allocation SET batch_id = %s WHERE id = %s", [b1, part_id("o2")])
    unchecked("UPDATE allocation_batch SET allocated_quantity = 6 WHERE reference = 'b1'")
    unchecked("UPDATE allocation_batch SET allocated_quantity = 0 WHERE reference = 'b2'")

    check_finds("line o2/BLUE: has a part on batch b1 of another SKU, RED")


def test_finds_a_part_with_no_quantity(stock, unchecked):
    services.add_batch(reference="b4", sku="RED", purchased_quantity=1)
    b4 = orm.Batch.objects.get(reference="b4").pk
    line = orm.OrderLine.objects.get(order_id="o1").pk
    unchecked(
        "INSERT INTO allocation_allocation (line_id, batch_id, qty) VALUES (%s, %s, 0)", [line, b4]
    )

    check_finds("line o1/RED: its part on batch b4 has qty 0")


def test_finds_a_line_with_an_unknown_status(stock, unchecked):
    unchecked("UPDATE allocation_orderline SET status = 'shipped' WHERE order_id = 'o2'")

    check_finds("line o2/BLUE: unknown status 'shipped'")


def test_lists_every_violation_found_at_once(stock, unchecked):
    unchecked("UPDATE allocation_batch SET purchased_quantity = 3 WHERE reference = 'b1'")
    unchecked("UPDATE allocation_orderline SET qty = 3 WHERE order_id = 'o2'")
    unchecked("UPDATE allocation_batch SET allocated_quantity = 1 WHERE reference = 'b3'")

    check_finds(
        "batch b1: allocated_quantity 4 exceeds purchased_quantity 3",
        "batch b3: stored allocated_quantity 1 but the parts on it add up to 0",
        "line o2/BLUE: allocated with qty 3 but its parts add up to 2",
    )
