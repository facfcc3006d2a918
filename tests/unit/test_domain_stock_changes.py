"""Rules 8-10: reducing or deleting a batch, adding or raising stock, changing an eta."""

from datetime import date

import pytest

from domain.exceptions import BatchNotFound, DuplicateBatch
from domain.model import UNSET, Allocation, BatchStatus, LineStatus, Part, Product
from tests.factories import DomainBatchFactory, tick
from tests.unit.helpers import SKU, backorder, ids, line, stock

SOON = date(2027, 1, 10)
LATER = date(2027, 2, 10)


def held(order_id: str, qty: int, parts: list[Part], *, requested: int, allocated: int):
    """A recorded allocated line with explicit request and allocation times."""
    return Allocation(line(order_id, qty), tick(requested), parts, tick(allocated))


# -- rule 8: reducing a batch ----------------------------------------------------------------


def test_reducing_takes_most_recently_allocated_lines_off_first_until_the_batch_fits():
    product = Product(
        SKU,
        [
            DomainBatchFactory(reference="b1", purchased_quantity=10, created_at=tick(0)),
            DomainBatchFactory(reference="b2", purchased_quantity=10, eta=SOON, created_at=tick(0)),
        ],
    )
    old, _ = product.allocate(line("o-old", 4), now=tick(1))
    mid, _ = product.allocate(line("o-mid", 3), now=tick(2))
    new, _ = product.allocate(line("o-new", 3), now=tick(3))

    change = product.change_batch("b1", purchased_quantity=6, now=tick(4))

    assert ids(change.reallocated) == ["o-mid", "o-new"]
    assert (change.backordered, change.served) == ([], [])
    assert old.parts == [Part("b1", 4)]
    assert old.allocated_at == tick(1)
    # Re-placed oldest request first, each whole on the first batch that covers it.
    assert mid.parts == [Part("b2", 3)]
    assert new.parts == [Part("b2", 3)]
    assert (mid.allocated_at, new.allocated_at) == (tick(4), tick(4))
    assert product.batch("b1").purchased_quantity == 6
    assert stock(product) == {"b1": (4, 2), "b2": (6, 4)}


def test_reducing_to_exactly_the_allocated_quantity_takes_nothing_off():
    product = Product(SKU, [DomainBatchFactory(reference="b1", purchased_quantity=10)])
    allocation, _ = product.allocate(line("o1", 6), now=tick(1))

    change = product.change_batch("b1", purchased_quantity=6, now=tick(2))

    assert (change.reallocated, change.backordered, change.served) == ([], [], [])
    assert allocation.parts == [Part("b1", 6)]
    assert allocation.allocated_at == tick(1)
    assert stock(product) == {"b1": (6, 0)}


def test_reducing_only_free_stock_moves_no_line():
    product = Product(SKU, [DomainBatchFactory(reference="b1", purchased_quantity=10)])
    allocation, _ = product.allocate(line("o1", 6), now=tick(1))

    change = product.change_batch("b1", purchased_quantity=8, now=tick(2))

    assert (change.reallocated, change.backordered) == ([], [])
    assert allocation.parts == [Part("b1", 6)]
    assert stock(product) == {"b1": (6, 2)}


def test_line_taken_off_can_land_again_on_what_is_left_of_the_reduced_batch():
    product = Product(
        SKU,
        [
            DomainBatchFactory(reference="b1", purchased_quantity=10, created_at=tick(0)),
            DomainBatchFactory(reference="b2", purchased_quantity=2, eta=SOON, created_at=tick(0)),
        ],
    )
    product.allocate(line("o-old", 4), now=tick(1))
    product.allocate(line("o-mid", 3), now=tick(2))
    new, _ = product.allocate(line("o-new", 3), now=tick(3))

    # Down to 8: only o-new must go (10 - 3 = 7 fits); 1 is left on b1.
    change = product.change_batch("b1", purchased_quantity=8, now=tick(4))

    assert ids(change.reallocated) == ["o-new"]
    assert change.backordered == []
    assert new.parts == [Part("b1", 1), Part("b2", 2)]
    assert stock(product) == {"b1": (8, 0), "b2": (2, 0)}


def test_most_recently_allocated_goes_first_even_if_requested_earlier():
    product = Product(
        SKU,
        [DomainBatchFactory(reference="b1", purchased_quantity=10, allocated_quantity=10)],
        [
            # o-early was requested first but (re)allocated last.
            held("o-early", 5, [Part("b1", 5)], requested=1, allocated=9),
            held("o-late", 5, [Part("b1", 5)], requested=2, allocated=3),
        ],
    )

    change = product.change_batch("b1", purchased_quantity=5, now=tick(10))

    assert ids(change.backordered) == ["o-early"]
    assert change.reallocated == []
    assert product.allocation("o-late").parts == [Part("b1", 5)]
    assert product.allocation("o-early").parts == []
    assert product.allocation("o-early").allocated_at is None
    assert stock(product) == {"b1": (5, 0)}


def test_lines_taken_off_are_placed_again_oldest_request_first():
    product = Product(
        SKU,
        [
            DomainBatchFactory(
                reference="b1", purchased_quantity=10, allocated_quantity=10, created_at=tick(0)
            ),
            DomainBatchFactory(reference="b2", purchased_quantity=4, created_at=tick(1)),
        ],
        [
            held("o-keep", 2, [Part("b1", 2)], requested=0, allocated=0),
            held("o-old", 4, [Part("b1", 4)], requested=1, allocated=8),
            held("o-young", 4, [Part("b1", 4)], requested=2, allocated=9),
        ],
    )

    change = product.change_batch("b1", purchased_quantity=2, now=tick(10))

    # Both are taken off; b2 has room for one: the older request gets it.
    assert ids(change.reallocated) == ["o-old"]
    assert ids(change.backordered) == ["o-young"]
    assert product.allocation("o-old").parts == [Part("b2", 4)]
    assert product.allocation("o-young").status is LineStatus.BACKORDERED
    assert product.allocation("o-keep").parts == [Part("b1", 2)]
    assert stock(product) == {"b1": (2, 0), "b2": (4, 0)}


def test_line_taken_off_loses_its_parts_on_other_batches_too():
    product = Product(
        SKU,
        [
            DomainBatchFactory(reference="b1", purchased_quantity=5, created_at=tick(0)),
            DomainBatchFactory(reference="b2", purchased_quantity=5, created_at=tick(1)),
        ],
    )
    split, _ = product.allocate(line("o-split", 7), now=tick(2))
    other, _ = product.allocate(line("o-other", 3), now=tick(3))
    assert split.parts == [Part("b1", 5), Part("b2", 2)]
    assert other.parts == [Part("b2", 3)]

    change = product.change_batch("b1", purchased_quantity=3, now=tick(4))

    # 7 no longer fits in 3 + 2: it waits, holding nothing on either batch.
    assert ids(change.backordered) == ["o-split"]
    assert change.reallocated == []
    assert split.parts == []
    assert split.status is LineStatus.BACKORDERED
    assert other.parts == [Part("b2", 3)]
    assert stock(product) == {"b1": (0, 3), "b2": (3, 2)}


def test_split_line_taken_off_is_placed_whole_where_it_now_fits():
    product = Product(
        SKU,
        [
            DomainBatchFactory(reference="b1", purchased_quantity=5, created_at=tick(0)),
            DomainBatchFactory(reference="b2", purchased_quantity=5, created_at=tick(1)),
        ],
    )
    split, _ = product.allocate(line("o-split", 7), now=tick(2))
    product.add_batch(
        DomainBatchFactory(reference="b3", purchased_quantity=10, eta=SOON, created_at=tick(3)),
        now=tick(3),
    )

    change = product.change_batch("b1", purchased_quantity=3, now=tick(4))

    assert ids(change.reallocated) == ["o-split"]
    assert split.parts == [Part("b3", 7)]
    assert stock(product) == {"b1": (0, 3), "b2": (0, 5), "b3": (7, 3)}


def test_reducing_to_zero_backorders_every_line_that_fits_nowhere_and_drops_none():
    product = Product(SKU, [DomainBatchFactory(reference="b1", purchased_quantity=9)])
    for n, qty in enumerate([2, 3, 4], start=1):
        product.allocate(line(f"o{n}", qty), now=tick(n))

    change = product.change_batch("b1", purchased_quantity=0, now=tick(10))

    assert ids(change.backordered) == ["o1", "o2", "o3"]
    assert change.reallocated == []
    assert ids(product.allocations) == ["o1", "o2", "o3"]
    assert all(a.parts == [] and a.allocated_at is None for a in product.allocations)
    assert stock(product) == {"b1": (0, 0)}


def test_freeing_a_split_line_off_one_batch_lets_a_waiting_backorder_in():
    product = Product(
        SKU,
        [
            DomainBatchFactory(
                reference="b1", purchased_quantity=4, allocated_quantity=4, created_at=tick(0)
            ),
            DomainBatchFactory(
                reference="b2", purchased_quantity=4, allocated_quantity=2, created_at=tick(1)
            ),
        ],
        [
            backorder("w", 3, requested=0),
            held("o-split", 6, [Part("b1", 4), Part("b2", 2)], requested=1, allocated=1),
        ],
    )

    change = product.change_batch("b1", purchased_quantity=0, now=tick(10))

    assert ids(change.backordered) == ["o-split"]
    assert ids(change.served) == ["w"]
    assert product.allocation("w").parts == [Part("b2", 3)]
    assert stock(product) == {"b1": (0, 0), "b2": (3, 1)}


def test_changing_an_unknown_batch_is_batch_not_found():
    product = Product(SKU, [DomainBatchFactory(reference="b1")])

    with pytest.raises(BatchNotFound) as raised:
        product.change_batch("nope", purchased_quantity=3, now=tick(1))

    assert raised.value.reference == "nope"


# -- rule 8: deleting a batch ------------------------------------------------------------------


def test_deleting_a_batch_places_its_lines_again_or_backorders_them():
    product = Product(
        SKU,
        [
            DomainBatchFactory(reference="b1", purchased_quantity=10, created_at=tick(0)),
            DomainBatchFactory(reference="b2", purchased_quantity=5, eta=SOON, created_at=tick(0)),
        ],
    )
    first, _ = product.allocate(line("o-first", 4), now=tick(1))
    second, _ = product.allocate(line("o-second", 6), now=tick(2))

    change = product.delete_batch("b1", now=tick(3))

    assert ids(change.reallocated) == ["o-first"]
    assert ids(change.backordered) == ["o-second"]
    assert first.parts == [Part("b2", 4)]
    assert second.parts == []
    assert ids(product.allocations) == ["o-first", "o-second"]
    assert stock(product) == {"b2": (4, 1)}
    with pytest.raises(BatchNotFound):
        product.batch("b1")


def test_deleting_a_batch_moves_the_whole_of_a_split_line():
    product = Product(
        SKU,
        [
            DomainBatchFactory(reference="b1", purchased_quantity=3, created_at=tick(0)),
            DomainBatchFactory(reference="b2", purchased_quantity=10, created_at=tick(1)),
        ],
    )
    product.allocate(line("o-fill", 7), now=tick(3))  # b2: 3 left
    split, _ = product.allocate(line("o-split", 6), now=tick(4))
    assert split.parts == [Part("b1", 3), Part("b2", 3)]
    product.add_batch(
        DomainBatchFactory(reference="b3", purchased_quantity=8, eta=SOON, created_at=tick(5)),
        now=tick(5),
    )

    change = product.delete_batch("b1", now=tick(6))

    # Its 3 on b2 are freed too, but b2's 3 free cannot cover 6: b3 takes it whole.
    assert ids(change.reallocated) == ["o-split"]
    assert split.parts == [Part("b3", 6)]
    assert stock(product) == {"b2": (7, 3), "b3": (6, 2)}


def test_deleting_a_batch_without_lines_changes_no_line():
    product = Product(
        SKU,
        [
            DomainBatchFactory(reference="b1", created_at=tick(0)),
            DomainBatchFactory(reference="b2", created_at=tick(1)),
        ],
    )
    allocation, _ = product.allocate(line("o1", 5), now=tick(2))

    change = product.delete_batch("b2", now=tick(3))

    assert (change.reallocated, change.backordered, change.served) == ([], [], [])
    assert allocation.parts == [Part("b1", 5)]
    assert [b.reference for b in product.batches] == ["b1"]


def test_deleting_an_unknown_batch_is_batch_not_found():
    product = Product(SKU, [DomainBatchFactory(reference="b1")])

    with pytest.raises(BatchNotFound) as raised:
        product.delete_batch("nope", now=tick(1))

    assert raised.value.reference == "nope"
    assert [b.reference for b in product.batches] == ["b1"]


# -- rule 9: new stock serves backorders -------------------------------------------------------


def test_new_batch_serves_backorders_in_request_order_each_one_that_fits():
    product = Product(
        SKU,
        [],
        [
            backorder("w-big", 8, requested=1),
            backorder("w-small", 2, requested=2),
            backorder("w-mid", 3, requested=3),
        ],
        has_batches=True,
    )

    change = product.add_batch(
        DomainBatchFactory(reference="b-new", purchased_quantity=6), now=tick(10)
    )

    assert ids(change.served) == ["w-small", "w-mid"]
    assert (change.reallocated, change.backordered) == ([], [])
    assert product.allocation("w-small").parts == [Part("b-new", 2)]
    assert product.allocation("w-mid").parts == [Part("b-new", 3)]
    assert product.allocation("w-mid").allocated_at == tick(10)
    assert product.allocation("w-big").status is LineStatus.BACKORDERED
    assert stock(product) == {"b-new": (5, 1)}


def test_new_inbound_batch_serves_backorders_too():
    product = Product(SKU, [], [backorder("w", 4, requested=1)], has_batches=True)

    change = product.add_batch(
        DomainBatchFactory(reference="ship", purchased_quantity=4, eta=SOON), now=tick(10)
    )

    assert ids(change.served) == ["w"]
    assert product.allocation("w").parts == [Part("ship", 4)]


def test_new_batch_with_no_backorders_waiting_serves_nothing():
    product = Product(SKU)

    change = product.add_batch(
        DomainBatchFactory(reference="b1", purchased_quantity=6), now=tick(1)
    )

    assert (change.reallocated, change.backordered, change.served) == ([], [], [])
    assert stock(product) == {"b1": (0, 6)}
    assert product.has_batches is True


def test_adding_a_batch_whose_reference_exists_is_a_duplicate():
    product = Product(SKU, [DomainBatchFactory(reference="b1", purchased_quantity=6)])

    with pytest.raises(DuplicateBatch) as raised:
        product.add_batch(DomainBatchFactory(reference="b1", purchased_quantity=9), now=tick(1))

    assert raised.value.reference == "b1"
    assert stock(product) == {"b1": (0, 6)}


def test_adding_a_batch_of_another_sku_is_refused():
    product = Product(SKU)

    with pytest.raises(ValueError, match="BLUE-LAMP"):
        product.add_batch(DomainBatchFactory(reference="b1", sku="BLUE-LAMP"), now=tick(1))

    assert product.batches == []


def test_raising_a_batch_quantity_serves_backorders():
    product = Product(
        SKU,
        [DomainBatchFactory(reference="b1", purchased_quantity=5, allocated_quantity=5)],
        [
            held("o-keep", 5, [Part("b1", 5)], requested=1, allocated=1),
            backorder("w-four", 4, requested=2),
            backorder("w-three", 3, requested=3),
        ],
    )

    change = product.change_batch("b1", purchased_quantity=8, now=tick(10))

    assert ids(change.served) == ["w-three"]
    assert (change.reallocated, change.backordered) == ([], [])
    assert product.allocation("w-three").parts == [Part("b1", 3)]
    assert product.allocation("w-four").status is LineStatus.BACKORDERED
    assert product.allocation("o-keep").parts == [Part("b1", 5)]
    assert stock(product) == {"b1": (8, 0)}


def test_backorder_served_by_a_raise_is_split_by_rules_one_to_four():
    product = Product(
        SKU,
        [
            DomainBatchFactory(
                reference="ship",
                purchased_quantity=2,
                eta=SOON,
                created_at=tick(0),
            ),
            DomainBatchFactory(
                reference="here", purchased_quantity=1, allocated_quantity=1, created_at=tick(1)
            ),
        ],
        [
            held("o-keep", 1, [Part("here", 1)], requested=1, allocated=1),
            backorder("w", 5, requested=2),
        ],
    )

    change = product.change_batch("here", purchased_quantity=4, now=tick(10))

    assert ids(change.served) == ["w"]
    assert product.allocation("w").parts == [Part("here", 3), Part("ship", 2)]
    assert stock(product) == {"here": (4, 0), "ship": (2, 0)}


# -- rule 10: eta ---------------------------------------------------------------------------------


def test_changing_eta_leaves_existing_allocations_where_they_are():
    product = Product(
        SKU,
        [
            DomainBatchFactory(reference="b-here", purchased_quantity=10, created_at=tick(0)),
            DomainBatchFactory(
                reference="b-ship", purchased_quantity=10, eta=SOON, created_at=tick(0)
            ),
        ],
    )
    existing, _ = product.allocate(line("o-existing", 4), now=tick(1))

    change = product.change_batch("b-here", eta=LATER, now=tick(2))

    assert (change.reallocated, change.backordered, change.served) == ([], [], [])
    assert existing.parts == [Part("b-here", 4)]
    assert existing.allocated_at == tick(1)
    assert product.batch("b-here").status is BatchStatus.INBOUND
    assert stock(product) == {"b-ship": (0, 10), "b-here": (4, 6)}


def test_changing_eta_changes_preference_for_future_allocations():
    product = Product(
        SKU,
        [
            DomainBatchFactory(reference="b-here", purchased_quantity=10, created_at=tick(0)),
            DomainBatchFactory(
                reference="b-ship", purchased_quantity=10, eta=SOON, created_at=tick(0)
            ),
        ],
    )
    product.allocate(line("o-before", 4), now=tick(1))
    product.change_batch("b-here", eta=LATER, now=tick(2))

    after, _ = product.allocate(line("o-after", 4), now=tick(3))

    assert [b.reference for b in product.batches] == ["b-ship", "b-here"]
    assert after.parts == [Part("b-ship", 4)]


def test_shipment_that_arrives_is_preferred_as_in_stock():
    product = Product(
        SKU,
        [
            DomainBatchFactory(reference="b-here", purchased_quantity=10, created_at=tick(5)),
            DomainBatchFactory(
                reference="b-ship", purchased_quantity=10, eta=SOON, created_at=tick(1)
            ),
        ],
    )

    product.change_batch("b-ship", eta=None, now=tick(6))
    allocation, _ = product.allocate(line("o1", 2), now=tick(7))

    assert product.batch("b-ship").status is BatchStatus.IN_STOCK
    assert [b.reference for b in product.batches] == ["b-ship", "b-here"]
    assert allocation.parts == [Part("b-ship", 2)]


def test_change_without_eta_keeps_the_eta():
    product = Product(SKU, [DomainBatchFactory(reference="b1", purchased_quantity=10, eta=SOON)])

    product.change_batch("b1", purchased_quantity=12, eta=UNSET, now=tick(1))

    assert product.batch("b1").eta == SOON
    assert product.batch("b1").purchased_quantity == 12


def test_reducing_and_changing_eta_together_places_lines_by_the_new_order():
    product = Product(
        SKU,
        [
            DomainBatchFactory(reference="b-here", purchased_quantity=10, created_at=tick(0)),
            DomainBatchFactory(
                reference="b-ship", purchased_quantity=3, eta=SOON, created_at=tick(0)
            ),
        ],
    )
    taken, _ = product.allocate(line("o1", 5), now=tick(1))

    change = product.change_batch("b-here", purchased_quantity=4, eta=LATER, now=tick(2))

    # b-ship (soon) now comes first: 3 there, the rest on what is left of b-here.
    assert ids(change.reallocated) == ["o1"]
    assert taken.parts == [Part("b-ship", 3), Part("b-here", 2)]
    assert stock(product) == {"b-ship": (3, 0), "b-here": (2, 2)}
