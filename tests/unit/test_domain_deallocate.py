"""Rule 7 (deallocate) and rule 9 for the stock it frees."""

from datetime import date

import pytest

from domain.exceptions import LineNotFound
from domain.model import Allocation, LineStatus, Part, Product
from tests.factories import DomainBatchFactory, tick
from tests.unit.helpers import SKU, backorder, line, stock

SOON = date(2027, 1, 10)


def test_deallocating_removes_the_line_and_frees_all_its_parts():
    product = Product(
        SKU,
        [
            DomainBatchFactory(reference="b1", purchased_quantity=4, created_at=tick(1)),
            DomainBatchFactory(reference="b2", purchased_quantity=5, eta=SOON, created_at=tick(2)),
        ],
    )
    keep, _ = product.allocate(line("o-keep", 1), now=tick(10))
    split, _ = product.allocate(line("o-split", 7), now=tick(11))
    assert split.parts == [Part("b1", 3), Part("b2", 4)]

    change = product.deallocate("o-split", now=tick(12))

    assert product.get_allocation("o-split") is None
    assert product.allocations == [keep]
    assert split.parts == []
    assert stock(product) == {"b1": (1, 3), "b2": (0, 5)}
    assert (change.reallocated, change.backordered, change.served) == ([], [], [])


def test_deallocated_line_can_be_allocated_again_as_a_new_line():
    product = Product(SKU, [DomainBatchFactory(reference="b1", purchased_quantity=10)])
    product.allocate(line("o1", 3), now=tick(10))
    product.deallocate("o1", now=tick(11))

    again, created = product.allocate(line("o1", 5), now=tick(12))

    assert created is True
    assert again.parts == [Part("b1", 5)]
    assert again.requested_at == tick(12)
    assert stock(product) == {"b1": (5, 5)}


def test_deallocating_an_unknown_line_is_line_not_found():
    product = Product(SKU, [DomainBatchFactory(reference="b1")])
    product.allocate(line("o1", 2), now=tick(10))

    with pytest.raises(LineNotFound) as raised:
        product.deallocate("o-missing", now=tick(11))

    assert (raised.value.order_id, raised.value.sku) == ("o-missing", SKU)
    assert [a.order_id for a in product.allocations] == ["o1"]
    assert stock(product) == {"b1": (2, 18)}


def test_deallocating_a_backordered_line_simply_removes_it():
    product = Product(
        SKU,
        [DomainBatchFactory(reference="b1", purchased_quantity=2, allocated_quantity=2)],
        [
            Allocation(line("o-holds", 2), tick(1), [Part("b1", 2)], tick(1)),
            backorder("o-waits", 5, requested=2),
        ],
    )

    change = product.deallocate("o-waits", now=tick(10))

    assert [a.order_id for a in product.allocations] == ["o-holds"]
    assert stock(product) == {"b1": (2, 0)}
    assert change.served == []


def test_freed_stock_serves_backorders_in_request_order():
    product = Product(
        SKU,
        [DomainBatchFactory(reference="b1", purchased_quantity=3, allocated_quantity=3)],
        [
            Allocation(line("o-holds", 3), tick(1), [Part("b1", 3)], tick(1)),
            # Named so that alphabetical order is the opposite of request order.
            backorder("z-first", 3, requested=2),
            backorder("a-second", 3, requested=3),
        ],
    )

    change = product.deallocate("o-holds", now=tick(10))

    first = product.allocation("z-first")
    second = product.allocation("a-second")
    assert change.served == [first]
    assert first.parts == [Part("b1", 3)]
    assert first.allocated_at == tick(10)
    assert second.status is LineStatus.BACKORDERED
    assert second.parts == []
    assert stock(product) == {"b1": (3, 0)}


def test_freed_stock_serves_a_smaller_later_backorder_when_an_earlier_bigger_one_does_not_fit():
    product = Product(
        SKU,
        [DomainBatchFactory(reference="b1", purchased_quantity=10, created_at=tick(0))],
    )
    product.allocate(line("o-keep", 4), now=tick(1))
    product.allocate(line("o-big", 5), now=tick(2))
    product.allocate(line("o-small", 1), now=tick(3))
    # Down to 4: o-small then o-big are taken off and find no place.
    reduced = product.change_batch("b1", purchased_quantity=4, now=tick(4))
    assert [a.order_id for a in reduced.backordered] == ["o-big", "o-small"]

    change = product.deallocate("o-keep", now=tick(5))

    assert [a.order_id for a in change.served] == ["o-small"]
    assert product.allocation("o-small").parts == [Part("b1", 1)]
    assert product.allocation("o-big").status is LineStatus.BACKORDERED
    assert stock(product) == {"b1": (1, 3)}


def test_freed_stock_serves_every_backorder_that_fits_in_request_order():
    product = Product(
        SKU,
        [DomainBatchFactory(reference="b1", purchased_quantity=6, allocated_quantity=6)],
        [
            Allocation(line("o-holds", 6), tick(1), [Part("b1", 6)], tick(1)),
            backorder("w-big", 8, requested=2),
            backorder("w-two", 2, requested=3),
            backorder("w-three", 3, requested=4),
            backorder("w-four", 4, requested=5),
        ],
    )

    change = product.deallocate("o-holds", now=tick(10))

    assert [a.order_id for a in change.served] == ["w-two", "w-three"]
    assert {a.order_id: a.status for a in product.allocations} == {
        "w-big": LineStatus.BACKORDERED,
        "w-two": LineStatus.ALLOCATED,
        "w-three": LineStatus.ALLOCATED,
        "w-four": LineStatus.BACKORDERED,
    }
    assert stock(product) == {"b1": (5, 1)}


def test_served_backorder_is_split_by_the_same_rules_as_a_new_line():
    product = Product(
        SKU,
        [
            DomainBatchFactory(
                reference="b-ship",
                purchased_quantity=3,
                allocated_quantity=3,
                eta=SOON,
                created_at=tick(0),
            ),
            DomainBatchFactory(
                reference="b-here", purchased_quantity=4, allocated_quantity=2, created_at=tick(1)
            ),
        ],
        [
            Allocation(
                line("o-holds", 5), tick(1), [Part("b-here", 2), Part("b-ship", 3)], tick(1)
            ),
            backorder("w", 7, requested=2),
        ],
    )

    change = product.deallocate("o-holds", now=tick(10))

    assert change.served == [product.allocation("w")]
    assert product.allocation("w").parts == [Part("b-here", 4), Part("b-ship", 3)]
    assert stock(product) == {"b-here": (4, 0), "b-ship": (3, 0)}
