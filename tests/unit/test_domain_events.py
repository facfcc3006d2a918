"""SPEC 6: the Product records one event per change, in the order of the changes."""

from datetime import date

import pytest

from domain.events import EVENT_TYPES, batch_references
from domain.exceptions import InvalidQuantity, LineConflict, OutOfStock
from domain.model import Allocation, OrderLine, Part, Product
from tests.factories import DomainBatchFactory, tick

SKU = "RED-CHAIR"
SOON = date(2027, 1, 10)


def published(product: Product) -> list[tuple[str, dict]]:
    """(type, data) of the events recorded so far, then forget them (as a flush does)."""
    out = [(event.type, event.data) for event in product.events]
    assert all(event.sku == product.sku for event in product.events)
    product.events.clear()
    return out


def two_batches() -> Product:
    return Product(
        SKU,
        [
            DomainBatchFactory(reference="b1", sku=SKU, purchased_quantity=10, created_at=tick(0)),
            DomainBatchFactory(
                reference="b2", sku=SKU, purchased_quantity=10, eta=SOON, created_at=tick(0)
            ),
        ],
    )


def test_a_new_line_is_line_allocated_with_no_previous_status():
    product = two_batches()

    product.allocate(OrderLine("o1", SKU, 12), now=tick(1))

    assert published(product) == [
        (
            "line_allocated",
            {
                "order_id": "o1",
                "qty": 12,
                "batches": [{"reference": "b1", "qty": 10}, {"reference": "b2", "qty": 2}],
                "previous_status": None,
            },
        )
    ]


def test_repeats_and_refusals_record_nothing():
    product = two_batches()
    product.allocate(OrderLine("o1", SKU, 3), now=tick(1))
    published(product)

    product.allocate(OrderLine("o1", SKU, 3), now=tick(2))
    with pytest.raises(LineConflict):
        product.allocate(OrderLine("o1", SKU, 4), now=tick(3))
    with pytest.raises(OutOfStock):
        product.allocate(OrderLine("o2", SKU, 100), now=tick(4))
    with pytest.raises(InvalidQuantity):
        product.change_batch("b1", purchased_quantity=-1, now=tick(5))

    assert product.events == []


def test_a_new_batch_is_batch_created_then_the_backorders_it_serves():
    product = two_batches()
    product.include(allocations=[Allocation(OrderLine("o-wait", SKU, 25), tick(0))])

    product.add_batch(
        DomainBatchFactory(reference="b3", sku=SKU, purchased_quantity=5, created_at=tick(1)),
        now=tick(2),
    )

    assert published(product) == [
        ("batch_created", {"reference": "b3", "purchased_quantity": 5, "eta": None}),
        (
            "line_allocated",
            {
                "order_id": "o-wait",
                "qty": 25,
                "batches": [
                    {"reference": "b1", "qty": 10},
                    {"reference": "b3", "qty": 5},
                    {"reference": "b2", "qty": 10},
                ],
                "previous_status": "backordered",
            },
        ),
    ]


def test_lowering_a_batch_gives_batch_changed_then_each_line_taken_off_then_backorders_served():
    product = Product(
        SKU,
        [
            DomainBatchFactory(reference="b1", sku=SKU, purchased_quantity=10, created_at=tick(0)),
            DomainBatchFactory(
                reference="b2", sku=SKU, purchased_quantity=4, eta=SOON, created_at=tick(0)
            ),
        ],
    )
    product.allocate(OrderLine("o-old", SKU, 2), now=tick(1))
    product.allocate(OrderLine("o-mid", SKU, 4), now=tick(2))
    product.allocate(OrderLine("o-new", SKU, 4), now=tick(3))
    published(product)

    # b1 down to 2: o-new, then o-mid come off (most recent first); they go back
    # oldest request first: o-mid fills b2, o-new finds no room; b1 keeps o-old.
    product.change_batch("b1", purchased_quantity=2, eta=SOON, now=tick(4))

    assert published(product) == [
        (
            "batch_changed",
            {
                "reference": "b1",
                "purchased_quantity": 2,
                "eta": "2027-01-10",
                "previous": {"purchased_quantity": 10, "eta": None},
            },
        ),
        (
            "line_moved",
            {
                "order_id": "o-mid",
                "qty": 4,
                "batches": [{"reference": "b2", "qty": 4}],
                "previous_batches": [{"reference": "b1", "qty": 4}],
            },
        ),
        (
            "line_backordered",
            {"order_id": "o-new", "qty": 4, "previous_batches": [{"reference": "b1", "qty": 4}]},
        ),
    ]


def test_raising_a_batch_serves_backorders_after_batch_changed():
    product = two_batches()
    product.include(allocations=[Allocation(OrderLine("o-wait", SKU, 22), tick(0))])

    product.change_batch("b2", purchased_quantity=12, now=tick(1))

    assert [t for t, _ in published(product)] == ["batch_changed", "line_allocated"]


def test_a_change_that_changes_nothing_records_nothing():
    product = two_batches()

    product.change_batch("b1", purchased_quantity=10, eta=None, now=tick(1))
    product.change_batch("b2", eta=SOON, now=tick(2))

    assert product.events == []


def test_deleting_a_batch_gives_batch_deleted_first_then_the_lines():
    product = two_batches()
    product.allocate(OrderLine("o1", SKU, 8), now=tick(1))
    product.allocate(OrderLine("o2", SKU, 12), now=tick(2))
    published(product)

    product.delete_batch("b1", now=tick(3))

    # o2 (the later one, split b1:2 + b2:10) comes off first and o1 after it; they go
    # back oldest request first: o1 whole on b2, then no room for o2.
    assert published(product) == [
        ("batch_deleted", {"reference": "b1"}),
        (
            "line_moved",
            {
                "order_id": "o1",
                "qty": 8,
                "batches": [{"reference": "b2", "qty": 8}],
                "previous_batches": [{"reference": "b1", "qty": 8}],
            },
        ),
        (
            "line_backordered",
            {
                "order_id": "o2",
                "qty": 12,
                "previous_batches": [
                    {"reference": "b1", "qty": 2},
                    {"reference": "b2", "qty": 10},
                ],
            },
        ),
    ]


def test_deallocating_gives_line_deallocated_then_backorders_served():
    product = two_batches()
    product.allocate(OrderLine("o1", SKU, 15), now=tick(1))
    product.include(allocations=[Allocation(OrderLine("o-wait", SKU, 9), tick(2))])
    published(product)

    product.deallocate("o1", now=tick(3))
    product.deallocate("o-wait", now=tick(4))

    assert published(product) == [
        (
            "line_deallocated",
            {
                "order_id": "o1",
                "qty": 15,
                "previous_batches": [{"reference": "b1", "qty": 10}, {"reference": "b2", "qty": 5}],
            },
        ),
        (
            "line_allocated",
            {
                "order_id": "o-wait",
                "qty": 9,
                "batches": [{"reference": "b1", "qty": 9}],
                "previous_status": "backordered",
            },
        ),
        (
            "line_deallocated",
            {"order_id": "o-wait", "qty": 9, "previous_batches": [{"reference": "b1", "qty": 9}]},
        ),
    ]


def test_deallocating_a_backorder_names_no_previous_batches():
    product = Product(SKU, [], [Allocation(OrderLine("o-wait", SKU, 3), tick(0))])

    product.deallocate("o-wait", now=tick(1))

    assert published(product) == [
        ("line_deallocated", {"order_id": "o-wait", "qty": 3, "previous_batches": []})
    ]


def test_every_type_of_the_spec_exists_once():
    assert sorted(EVENT_TYPES) == [
        "batch_changed",
        "batch_created",
        "batch_deleted",
        "line_allocated",
        "line_backordered",
        "line_deallocated",
        "line_moved",
    ]


def test_batch_references_are_every_batch_an_event_names():
    assert batch_references({"reference": "b1"}) == {"b1"}
    assert batch_references(
        {
            "order_id": "o1",
            "batches": [{"reference": "b2", "qty": 1}],
            "previous_batches": [{"reference": "b1", "qty": 1}, {"reference": "b3", "qty": 1}],
        }
    ) == {"b1", "b2", "b3"}
    assert Part("b1", 1).batch_reference == "b1"
