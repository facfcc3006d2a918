"""The bulk commands record their events like every other door (SPEC 3, 6).

``load_batches`` writes the rows that move no line set-based (their events
built by SQL) and the others through the ``Product``; either way every
created or changed batch, and every line it moves, is an event in the same
transaction, with the ``--actor`` and ``source: cli``; one ``transaction``
per run. Unchanged rows and refused lines write none.
"""

from __future__ import annotations

import json
from datetime import date

import pytest

from allocation import models as orm
from allocation import selectors, services
from domain import events
from tests.integration.cmd_support import csv_text, fail, run, write

pytestmark = pytest.mark.django_db

BATCHES = "reference,sku,purchased_quantity,eta"
ORDERS = "order_id,sku,qty"


def feed() -> list[dict]:
    return [
        {
            "id": e.id,
            "type": e.type,
            "sku": e.sku,
            "sku_seq": e.sku_seq,
            "actor": e.actor,
            "source": e.source,
            "transaction": e.transaction,
            "order_id": e.order_id,
            "data": e.data,
        }
        for e in orm.Event.objects.order_by("id")
    ]


def replay_differences() -> list[str]:
    return list(selectors.replay_differences(selectors.ReplayResult()))


def test_load_batches_records_each_created_and_changed_batch_with_the_actor(tmp_path):
    services.add_batch(reference="old", sku="BLUE", purchased_quantity=10)
    services.add_batch(reference="same", sku="BLUE", purchased_quantity=3)
    before = orm.Event.objects.count()

    result = run(
        "load_batches",
        write(
            tmp_path,
            "b.csv",
            csv_text(
                BATCHES,
                "n1,RED,5,2031-01-02",
                "old,BLUE,20,",
                "same,BLUE,3,",  # unchanged: no event
                "n2,RED,7,",
                "n3,BLUE,1,",
            ),
        ),
        actor="alice",
    )

    assert result.stdout == "created 3, updated 1, unchanged 1\n"
    new = feed()[before:]
    assert [(e["type"], e["sku"], e["sku_seq"]) for e in new] == [
        ("batch_created", "RED", 1),
        ("batch_changed", "BLUE", 3),
        ("batch_created", "RED", 2),
        ("batch_created", "BLUE", 4),
    ]
    # The data the SQL built is the domain event's own data.
    assert [e["data"] for e in new] == [
        events.BatchCreated("RED", "n1", 5, date(2031, 1, 2)).data,
        events.BatchChanged(
            "BLUE", "old", 20, None, previous_purchased_quantity=10, previous_eta=None
        ).data,
        events.BatchCreated("RED", "n2", 7, None).data,
        events.BatchCreated("BLUE", "n3", 1, None).data,
    ]
    assert {(e["actor"], e["source"], e["order_id"]) for e in new} == {("alice", "cli", None)}
    assert len({e["transaction"] for e in new}) == 1
    assert len(new[0]["transaction"]) == 32
    assert replay_differences() == []


def test_load_batches_rows_that_move_lines_record_the_lines_events_too(tmp_path):
    services.add_batch(reference="b1", sku="RED", purchased_quantity=10)
    services.allocate(order_id="o1", sku="RED", qty=6)
    services.allocate(order_id="o2", sku="RED", qty=4)
    services.change_batch(reference="b1", purchased_quantity=6)  # o2 waits
    services.add_batch(reference="g1", sku="GREEN", purchased_quantity=1)
    before = orm.Event.objects.count()

    run(
        "load_batches",
        write(
            tmp_path,
            "b.csv",
            csv_text(BATCHES, "b2,RED,4,2031-01-01", "g1,GREEN,2,", "b1,RED,2,"),
        ),
        actor="bob",
    )

    new = feed()[before:]
    by_sku = {
        sku: [(e["type"], e["sku_seq"], e["data"]) for e in new if e["sku"] == sku]
        for sku in ("RED", "GREEN")
    }
    assert by_sku["GREEN"] == [
        ("batch_changed", 2, events.BatchChanged("GREEN", "g1", 2, None, 1, None).data)
    ]
    assert by_sku["RED"] == [
        ("batch_created", 6, events.BatchCreated("RED", "b2", 4, date(2031, 1, 1)).data),
        (
            "line_allocated",
            7,
            {
                "order_id": "o2",
                "qty": 4,
                "batches": [{"reference": "b2", "qty": 4}],
                "previous_status": "backordered",
            },
        ),
        ("batch_changed", 8, events.BatchChanged("RED", "b1", 2, None, 6, None).data),
        (
            "line_backordered",
            9,
            {"order_id": "o1", "qty": 6, "previous_batches": [{"reference": "b1", "qty": 6}]},
        ),
    ]
    assert {(e["actor"], e["source"]) for e in new} == {("bob", "cli")}
    assert len({e["transaction"] for e in new}) == 1
    assert replay_differences() == []


def test_a_load_without_actor_records_null_and_a_dry_run_records_nothing(tmp_path):
    path = write(tmp_path, "b.csv", csv_text(BATCHES, "n1,RED,5,"))

    run("load_batches", path, dry_run=True, actor="alice")
    assert feed() == []

    run("load_batches", path)
    assert [(e["type"], e["actor"], e["source"]) for e in feed()] == [
        ("batch_created", None, "cli")
    ]


def test_a_load_creates_batches_in_file_order_as_the_api_would(tmp_path):
    # Same SKU, both in stock: rule 1 breaks the tie by created_at, then
    # reference. Created one by one down the file, z1 is the older.
    run("load_batches", write(tmp_path, "b.csv", csv_text(BATCHES, "z1,RED,5,", "a1,RED,5,")))

    z1, a1 = (orm.Batch.objects.get(reference=r).created_at for r in ("z1", "a1"))
    assert z1 < a1
    assert (
        services.allocate(order_id="o1", sku="RED", qty=5).allocation.parts[0].batch_reference
        == "z1"
    )


def test_a_load_that_goes_through_the_domain_keeps_file_order_too(tmp_path):
    services.add_batch(reference="b0", sku="RED", purchased_quantity=10)
    services.allocate(order_id="o1", sku="RED", qty=1)
    services.allocate(order_id="o2", sku="RED", qty=9)
    services.change_batch(reference="b0", purchased_quantity=1)  # o2 waits: RED needs the domain

    run("load_batches", write(tmp_path, "b.csv", csv_text(BATCHES, "z1,RED,5,", "a1,RED,5,")))

    z1, a1 = (orm.Batch.objects.get(reference=r).created_at for r in ("z1", "a1"))
    assert z1 < a1
    # o2 (9) was served once both were in: split, z1 first in preference order.
    assert (
        services.allocate(order_id="o2", sku="RED", qty=9).allocation.parts[0].batch_reference
        == "z1"
    )


def test_allocate_orders_records_one_event_per_new_line_with_the_actor(tmp_path):
    services.add_batch(reference="r1", sku="RED", purchased_quantity=5)
    services.add_batch(reference="b1", sku="BLUE", purchased_quantity=5)
    services.allocate(order_id="o0", sku="RED", qty=1)
    before = orm.Event.objects.count()

    result = run(
        "allocate_orders",
        write(
            tmp_path,
            "o.csv",
            csv_text(
                ORDERS,
                "o1,RED,2",
                "o0,RED,1",  # already allocated: no event
                "o2,BLUE,5",
                "o3,BLUE,1",  # out of stock: no event
                "o4,NOPE,1",  # invalid sku: no event
                "o0,RED,3",  # line conflict: no event
            ),
        ),
        report=str(tmp_path / "report.csv"),
        actor="carol",
    )

    assert result.stdout.strip() == (
        "allocated 2, already_allocated 1, out_of_stock 1, invalid_sku 1, line_conflict 1"
    )
    new = feed()[before:]
    assert sorted(
        (e["type"], e["sku"], e["sku_seq"], e["order_id"], json.dumps(e["data"], sort_keys=True))
        for e in new
    ) == sorted(
        [
            (
                "line_allocated",
                "RED",
                3,
                "o1",
                json.dumps(
                    events.LineAllocated("RED", "o1", 2, (("r1", 2),), None).data, sort_keys=True
                ),
            ),
            (
                "line_allocated",
                "BLUE",
                2,
                "o2",
                json.dumps(
                    events.LineAllocated("BLUE", "o2", 5, (("b1", 5),), None).data, sort_keys=True
                ),
            ),
        ]
    )
    assert {(e["actor"], e["source"]) for e in new} == {("carol", "cli")}
    assert len({e["transaction"] for e in new}) == 1
    assert replay_differences() == []


def test_allocate_orders_events_of_a_sku_go_on_in_file_order_in_id_and_sku_seq(tmp_path):
    services.add_batch(reference="r1", sku="RED", purchased_quantity=100)
    services.add_batch(reference="b1", sku="BLUE", purchased_quantity=100)
    before = orm.Event.objects.count()
    rows = [f"o{n},{'RED' if n % 3 else 'BLUE'},1" for n in range(30)]

    run(
        "allocate_orders",
        write(tmp_path, "o.csv", csv_text(ORDERS, *rows)),
        report=str(tmp_path / "report.csv"),
    )

    new = feed()[before:]
    for sku in ("RED", "BLUE"):
        mine = [e for e in new if e["sku"] == sku]
        # One statement writes them all: ids, sku_seq and file order agree.
        assert [e["sku_seq"] for e in mine] == list(range(2, 2 + len(mine)))
        assert [e["order_id"] for e in mine] == [
            f"o{n}" for n in range(30) if (sku == "RED") == bool(n % 3)
        ]
    assert replay_differences() == []


@pytest.mark.parametrize("actor", ["", "   ", "x" * 151])
def test_a_bad_actor_is_refused_before_anything_is_read(tmp_path, actor):
    path = write(tmp_path, "b.csv", csv_text(BATCHES, "n1,RED,5,"))

    error, _ = fail("load_batches", path, f"--actor={actor}")

    assert "--actor" in str(error)
    assert orm.Batch.objects.count() == 0
    assert feed() == []
