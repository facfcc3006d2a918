"""Every use case publishes its events through the unit of work (SPEC 6), none when refused."""

from datetime import date

import pytest

from allocation import services
from domain.exceptions import BatchNotFound, LineConflict, OutOfStock
from tests.unit.fakes import FakeUnitOfWork

SKU = "RED-CHAIR"
SOON = date(2027, 1, 10)


@pytest.fixture
def uow() -> FakeUnitOfWork:
    uow = FakeUnitOfWork()
    services.add_batch(reference="b1", sku=SKU, purchased_quantity=10, uow=uow)
    services.add_batch(reference="b2", sku=SKU, purchased_quantity=10, eta=SOON, uow=uow)
    uow.products.published.clear()
    return uow


def published(uow: FakeUnitOfWork) -> list[tuple[str, dict]]:
    out = [(event.type, event.data) for event in uow.products.published]
    uow.products.published.clear()
    return out


def test_add_batch_publishes_batch_created():
    uow = FakeUnitOfWork()

    services.add_batch(reference="b1", sku=SKU, purchased_quantity=7, eta=SOON, uow=uow)

    assert published(uow) == [
        ("batch_created", {"reference": "b1", "purchased_quantity": 7, "eta": "2027-01-10"})
    ]


def test_allocate_publishes_line_allocated_once(uow):
    services.allocate(order_id="o1", sku=SKU, qty=3, uow=uow)
    services.allocate(order_id="o1", sku=SKU, qty=3, uow=uow)

    assert published(uow) == [
        (
            "line_allocated",
            {
                "order_id": "o1",
                "qty": 3,
                "batches": [{"reference": "b1", "qty": 3}],
                "previous_status": None,
            },
        )
    ]


def test_refused_requests_publish_nothing(uow):
    services.allocate(order_id="o1", sku=SKU, qty=3, uow=uow)
    published(uow)

    with pytest.raises(LineConflict):
        services.allocate(order_id="o1", sku=SKU, qty=4, uow=uow)
    with pytest.raises(OutOfStock):
        services.allocate(order_id="o2", sku=SKU, qty=100, uow=uow)
    with pytest.raises(BatchNotFound):
        services.change_batch(reference="nope", purchased_quantity=1, uow=uow)

    assert published(uow) == []


def test_change_batch_lowering_then_raising(uow):
    services.allocate(order_id="o1", sku=SKU, qty=6, uow=uow)
    services.allocate(order_id="o2", sku=SKU, qty=4, uow=uow)
    services.allocate(order_id="o3", sku=SKU, qty=8, uow=uow)  # whole on b2
    published(uow)

    # o2 then o1 come off b1; o1 (older) goes back split, o2 finds no room.
    services.change_batch(reference="b1", purchased_quantity=5, uow=uow)

    assert published(uow) == [
        (
            "batch_changed",
            {
                "reference": "b1",
                "purchased_quantity": 5,
                "eta": None,
                "previous": {"purchased_quantity": 10, "eta": None},
            },
        ),
        (
            "line_moved",
            {
                "order_id": "o1",
                "qty": 6,
                "batches": [{"reference": "b1", "qty": 5}, {"reference": "b2", "qty": 1}],
                "previous_batches": [{"reference": "b1", "qty": 6}],
            },
        ),
        (
            "line_backordered",
            {"order_id": "o2", "qty": 4, "previous_batches": [{"reference": "b1", "qty": 4}]},
        ),
    ]

    services.change_batch(reference="b2", purchased_quantity=20, uow=uow)

    assert published(uow) == [
        (
            "batch_changed",
            {
                "reference": "b2",
                "purchased_quantity": 20,
                "eta": "2027-01-10",
                "previous": {"purchased_quantity": 10, "eta": "2027-01-10"},
            },
        ),
        (
            "line_allocated",
            {
                "order_id": "o2",
                "qty": 4,
                "batches": [{"reference": "b2", "qty": 4}],
                "previous_status": "backordered",
            },
        ),
    ]


def test_a_patch_that_changes_nothing_publishes_nothing(uow):
    services.change_batch(reference="b2", purchased_quantity=10, eta=SOON, sku=SKU, uow=uow)

    assert published(uow) == []
    assert uow.commits == 3  # the two batches of the fixture, then this one


def test_delete_batch_publishes_batch_deleted_first(uow):
    services.allocate(order_id="o1", sku=SKU, qty=6, uow=uow)
    published(uow)

    services.delete_batch(reference="b1", uow=uow)

    assert published(uow) == [
        ("batch_deleted", {"reference": "b1"}),
        (
            "line_moved",
            {
                "order_id": "o1",
                "qty": 6,
                "batches": [{"reference": "b2", "qty": 6}],
                "previous_batches": [{"reference": "b1", "qty": 6}],
            },
        ),
    ]


def test_deallocate_publishes_line_deallocated_then_backorders_served(uow):
    services.allocate(order_id="o1", sku=SKU, qty=15, uow=uow)
    services.change_batch(reference="b2", purchased_quantity=4, uow=uow)  # o1 backordered
    services.allocate(order_id="o2", sku=SKU, qty=10, uow=uow)
    services.change_batch(reference="b2", purchased_quantity=10, uow=uow)  # 10 < 15: waits
    published(uow)

    services.deallocate(order_id="o2", sku=SKU, uow=uow)

    assert published(uow) == [
        (
            "line_deallocated",
            {"order_id": "o2", "qty": 10, "previous_batches": [{"reference": "b1", "qty": 10}]},
        ),
        (
            "line_allocated",
            {
                "order_id": "o1",
                "qty": 15,
                "batches": [{"reference": "b1", "qty": 10}, {"reference": "b2", "qty": 5}],
                "previous_status": "backordered",
            },
        ),
    ]
