"""What grows: the rows each operation adds to each table (README, Events: what grows).

Batches, lines and their parts are the current state: a line goes when it is
deallocated, a part when its line moves. Only the event log grows with every
change, by one row per event of SPEC 6 (1 per line placed, moved, backordered
or removed, 1 per batch created, changed or deleted).
"""

from __future__ import annotations

from datetime import date

import pytest

from allocation import models as orm
from allocation import services
from domain.exceptions import OutOfStock

pytestmark = pytest.mark.django_db

TABLES = {
    "product": orm.Product,
    "batch": orm.Batch,
    "line": orm.OrderLine,
    "part": orm.Allocation,
    "event": orm.Event,
}


class Rows:
    """Row counts of every table; ``delta()`` gives what changed since the last call."""

    def __init__(self) -> None:
        self.last = self.now()

    @staticmethod
    def now() -> dict[str, int]:
        return {name: model.objects.count() for name, model in TABLES.items()}

    def delta(self) -> dict[str, int]:
        now = self.now()
        change = {
            name: now[name] - self.last[name] for name in TABLES if now[name] != self.last[name]
        }
        self.last = now
        return change


def test_rows_each_operation_adds():
    rows = Rows()

    services.add_batch(reference="b1", sku="A", purchased_quantity=10)
    assert rows.delta() == {"product": 1, "batch": 1, "event": 1}
    services.add_batch(reference="b2", sku="A", purchased_quantity=10, eta=date(2027, 1, 10))
    assert rows.delta() == {"batch": 1, "event": 1}

    services.allocate(order_id="o1", sku="A", qty=4)  # whole, on b1
    assert rows.delta() == {"line": 1, "part": 1, "event": 1}
    services.allocate(order_id="o2", sku="A", qty=14)  # split: 6 on b1, 8 on b2
    assert rows.delta() == {"line": 1, "part": 2, "event": 1}

    services.allocate(order_id="o1", sku="A", qty=4)  # an idempotent repeat
    with pytest.raises(OutOfStock):
        services.allocate(order_id="o3", sku="A", qty=50)
    services.change_batch(reference="b2", purchased_quantity=10)  # changes nothing
    assert rows.delta() == {}

    services.add_batch(reference="c1", sku="B", purchased_quantity=5)
    services.add_batch(reference="d1", sku="C", purchased_quantity=5)
    assert rows.delta() == {"product": 2, "batch": 2, "event": 2}
    services.allocate_order(order_id="o4", lines=[("B", 2), ("C", 2)])
    assert rows.delta() == {"line": 2, "part": 2, "event": 2}

    services.change_batch(reference="b2", purchased_quantity=20)  # raised: nothing moves
    assert rows.delta() == {"event": 1}

    services.deallocate(order_id="o1", sku="A")
    assert rows.delta() == {"line": -1, "part": -1, "event": 1}

    # b1 lowered to 2 takes o2 off it; o2 goes whole onto b2 (14 of its 20):
    # batch_changed, line_moved; o2's two parts become one.
    services.change_batch(reference="b1", purchased_quantity=2)
    assert rows.delta() == {"part": -1, "event": 2}
    assert orm.Allocation.objects.filter(line__order_id="o2").count() == 1

    # c1 was B's only batch: its line is backordered (a line without parts).
    services.delete_batch(reference="c1")
    assert rows.delta() == {"batch": -1, "part": -1, "event": 2}
    # New stock serves the backorder: batch_created, line_allocated.
    services.add_batch(reference="c2", sku="B", purchased_quantity=5)
    assert rows.delta() == {"batch": 1, "part": 1, "event": 2}

    services.deallocate_order(order_id="o4")
    assert rows.delta() == {"line": -2, "part": -2, "event": 2}

    # What stays is the state; the log kept every change.
    assert Rows.now() == {"product": 3, "batch": 4, "line": 1, "part": 1, "event": 18}
    assert list(orm.Event.objects.order_by("id").values_list("type", flat=True)) == [
        "batch_created",
        "batch_created",
        "line_allocated",
        "line_allocated",
        "batch_created",
        "batch_created",
        "line_allocated",
        "line_allocated",
        "batch_changed",
        "line_deallocated",
        "batch_changed",
        "line_moved",
        "batch_deleted",
        "line_backordered",
        "batch_created",
        "line_allocated",
        "line_deallocated",
        "line_deallocated",
    ]
