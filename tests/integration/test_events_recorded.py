"""Events are stored with the change that caused them, by the repository (SPEC 6)."""

from __future__ import annotations

import pytest
from django.db import connection, transaction

from allocation import models as orm
from allocation import services
from allocation.repository import EVENT_ID_SEQUENCE
from allocation.unit_of_work import DjangoUnitOfWork
from domain.events import BatchCreated

pytestmark = pytest.mark.django_db
SKU = "RED-CHAIR"


def stored() -> list[tuple]:
    return list(
        orm.Event.objects.order_by("id").values_list("type", "sku", "sku_seq", "actor", "source")
    )


def test_each_use_case_stores_its_events_with_who_and_which_door():
    services.add_batch(reference="b1", sku=SKU, purchased_quantity=10)
    services.allocate(
        order_id="o1", sku=SKU, qty=6, uow=DjangoUnitOfWork(actor="alice", source="api")
    )
    services.change_batch(
        reference="b1", purchased_quantity=4, uow=DjangoUnitOfWork(actor="bob", source="admin")
    )

    assert stored() == [
        ("batch_created", SKU, 1, None, "cli"),
        ("line_allocated", SKU, 2, "alice", "api"),
        ("batch_changed", SKU, 3, "bob", "admin"),
        ("line_backordered", SKU, 4, "bob", "admin"),
    ]
    allocated = orm.Event.objects.get(type="line_allocated")
    assert allocated.order_id == "o1"
    assert allocated.data == {
        "order_id": "o1",
        "qty": 6,
        "batches": [{"reference": "b1", "qty": 6}],
        "previous_status": None,
    }
    transactions = list(orm.Event.objects.order_by("id").values_list("transaction", flat=True))
    # One value per unit of work: the PATCH's two events share one.
    assert len(set(transactions)) == 3
    assert transactions[2] == transactions[3]
    assert len(transactions[0]) == 32


def test_sku_seq_counts_per_sku_and_a_repeat_or_refusal_stores_nothing():
    services.add_batch(reference="a1", sku="A", purchased_quantity=5)
    services.add_batch(reference="b1", sku="B", purchased_quantity=5)
    services.allocate(order_id="o1", sku="A", qty=2)
    services.allocate(order_id="o1", sku="A", qty=2)  # idempotent repeat
    services.change_batch(reference="b1", purchased_quantity=5)  # changes nothing

    assert [(sku, seq) for _, sku, seq, _, _ in stored()] == [("A", 1), ("B", 1), ("A", 2)]


def test_a_rolled_back_unit_of_work_leaves_no_event():
    services.add_batch(reference="b1", sku=SKU, purchased_quantity=10)
    with transaction.atomic():
        services.allocate(order_id="o1", sku=SKU, qty=1)
        transaction.set_rollback(True)

    assert [t for t, *_ in stored()] == ["batch_created"]


def test_record_writes_many_events_with_sku_seq_going_on_and_ids_in_order():
    services.add_batch(reference="x0", sku="X", purchased_quantity=1)
    uow = DjangoUnitOfWork(actor="loader", source="cli")
    with uow:
        uow.products.get("X")
        uow.products.record(
            [BatchCreated("X" if n % 2 else "Y", f"x{n + 1}", n, None) for n in range(400)]
        )
        uow.commit()

    rows = orm.Event.objects.filter(actor="loader").order_by("id")
    assert [e.data["reference"] for e in rows] == [f"x{n + 1}" for n in range(400)]
    assert [e.sku_seq for e in rows if e.sku == "X"] == list(range(2, 202))
    assert [e.sku_seq for e in rows if e.sku == "Y"] == list(range(1, 201))


def test_event_ids_come_from_where_the_writers_expect():
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            # The sequence the reservation reads and nextval() draws from.
            cursor.execute("SELECT pg_get_serial_sequence('allocation_event', 'id')")
            assert cursor.fetchone()[0] == f"public.{EVENT_ID_SEQUENCE}"
        else:
            # AUTOINCREMENT: an id is never handed out twice, even after a rollback.
            cursor.execute("SELECT sql FROM sqlite_master WHERE name = 'allocation_event'")
            assert "AUTOINCREMENT" in cursor.fetchone()[0]
