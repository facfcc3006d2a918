"""Rules 1-6 on the Product aggregate: where a new line goes, or why it cannot go anywhere."""

from datetime import date

import pytest

from domain.exceptions import InvalidQuantity, InvalidSku, LineConflict, OutOfStock
from domain.model import (
    MAX_QUANTITY,
    BatchStatus,
    LineStatus,
    OrderLine,
    Part,
    Product,
)
from tests.factories import DomainBatchFactory, tick
from tests.unit.helpers import SKU, line, stock

SOON = date(2027, 1, 10)
LATER = date(2027, 2, 10)


# -- the batch itself ------------------------------------------------------------------


def test_batch_without_eta_is_in_stock_and_with_eta_is_inbound():
    in_stock = DomainBatchFactory(eta=None)
    inbound = DomainBatchFactory(eta=SOON)

    assert in_stock.status is BatchStatus.IN_STOCK
    assert inbound.status is BatchStatus.INBOUND


def test_batch_available_quantity_is_purchased_minus_allocated():
    batch = DomainBatchFactory(purchased_quantity=20, allocated_quantity=7)

    assert batch.available_quantity == 13


def test_batches_are_equal_by_reference():
    assert DomainBatchFactory(reference="b1", purchased_quantity=5) == DomainBatchFactory(
        reference="b1", purchased_quantity=9
    )
    assert DomainBatchFactory(reference="b1") != DomainBatchFactory(reference="b2")


# -- rule 1: preference order ------------------------------------------------------------


def test_batches_are_in_stock_oldest_first_then_inbound_by_eta_created_at_reference():
    product = Product(
        SKU,
        [
            DomainBatchFactory(reference="i-late", eta=LATER, created_at=tick(0)),
            DomainBatchFactory(reference="s-new", created_at=tick(5)),
            DomainBatchFactory(reference="i-soon-new", eta=SOON, created_at=tick(9)),
            DomainBatchFactory(reference="s-tie-b", created_at=tick(3)),
            DomainBatchFactory(reference="i-soon-old", eta=SOON, created_at=tick(2)),
            DomainBatchFactory(reference="s-old", created_at=tick(1)),
            DomainBatchFactory(reference="i-soon-tie-b", eta=SOON, created_at=tick(7)),
            DomainBatchFactory(reference="s-tie-a", created_at=tick(3)),
            DomainBatchFactory(reference="i-soon-tie-a", eta=SOON, created_at=tick(7)),
        ],
    )

    assert [b.reference for b in product.batches] == [
        "s-old",
        "s-tie-a",
        "s-tie-b",
        "s-new",
        "i-soon-old",
        "i-soon-tie-a",
        "i-soon-tie-b",
        "i-soon-new",
        "i-late",
    ]


def test_prefers_in_stock_batch_to_earlier_shipment():
    product = Product(
        SKU,
        [
            DomainBatchFactory(reference="shipment", eta=SOON, created_at=tick(1)),
            DomainBatchFactory(reference="warehouse", eta=None, created_at=tick(2)),
        ],
    )

    allocation, created = product.allocate(line("o1", 10), now=tick(10))

    assert created is True
    assert allocation.parts == [Part("warehouse", 10)]
    assert stock(product) == {"warehouse": (10, 10), "shipment": (0, 20)}


def test_prefers_oldest_in_stock_batch_whatever_its_reference():
    product = Product(
        SKU,
        [
            DomainBatchFactory(reference="aaa-newer", created_at=tick(2)),
            DomainBatchFactory(reference="zzz-older", created_at=tick(1)),
        ],
    )

    allocation, _ = product.allocate(line("o1", 3), now=tick(10))

    assert allocation.parts == [Part("zzz-older", 3)]


def test_in_stock_batches_created_together_are_taken_by_reference():
    product = Product(
        SKU,
        [
            DomainBatchFactory(reference="b-two", created_at=tick(1)),
            DomainBatchFactory(reference="b-one", created_at=tick(1)),
        ],
    )

    allocation, _ = product.allocate(line("o1", 3), now=tick(10))

    assert allocation.parts == [Part("b-one", 3)]


def test_prefers_earliest_shipment_even_if_created_later():
    product = Product(
        SKU,
        [
            DomainBatchFactory(reference="later-eta", eta=LATER, created_at=tick(1)),
            DomainBatchFactory(reference="sooner-eta", eta=SOON, created_at=tick(2)),
        ],
    )

    allocation, _ = product.allocate(line("o1", 4), now=tick(10))

    assert allocation.parts == [Part("sooner-eta", 4)]


def test_shipments_with_same_eta_are_taken_oldest_created_first():
    product = Product(
        SKU,
        [
            DomainBatchFactory(reference="aaa-newer", eta=SOON, created_at=tick(2)),
            DomainBatchFactory(reference="zzz-older", eta=SOON, created_at=tick(1)),
        ],
    )

    allocation, _ = product.allocate(line("o1", 4), now=tick(10))

    assert allocation.parts == [Part("zzz-older", 4)]


def test_shipments_with_same_eta_and_created_at_are_taken_by_reference():
    product = Product(
        SKU,
        [
            DomainBatchFactory(reference="ship-b", eta=SOON, created_at=tick(1)),
            DomainBatchFactory(reference="ship-a", eta=SOON, created_at=tick(1)),
        ],
    )

    allocation, _ = product.allocate(line("o1", 4), now=tick(10))

    assert allocation.parts == [Part("ship-a", 4)]


# -- rule 2: whole first -------------------------------------------------------------------


def test_line_goes_whole_to_first_batch_that_covers_it_even_if_an_earlier_batch_has_some():
    product = Product(
        SKU,
        [
            DomainBatchFactory(reference="first", purchased_quantity=20, created_at=tick(1)),
            DomainBatchFactory(reference="second", purchased_quantity=20, created_at=tick(2)),
        ],
    )
    product.allocate(line("o-big", 15), now=tick(10))

    allocation, _ = product.allocate(line("o-eight", 8), now=tick(11))

    assert allocation.parts == [Part("second", 8)]
    assert stock(product) == {"first": (15, 5), "second": (8, 12)}


def test_line_goes_whole_to_a_shipment_when_no_in_stock_batch_covers_it():
    product = Product(
        SKU,
        [
            DomainBatchFactory(reference="warehouse", purchased_quantity=3, created_at=tick(1)),
            DomainBatchFactory(
                reference="shipment", purchased_quantity=10, eta=SOON, created_at=tick(2)
            ),
        ],
    )

    allocation, _ = product.allocate(line("o1", 5), now=tick(10))

    assert allocation.parts == [Part("shipment", 5)]
    assert stock(product) == {"warehouse": (0, 3), "shipment": (5, 5)}


def test_line_that_exactly_matches_available_takes_all_of_it():
    product = Product(SKU, [DomainBatchFactory(reference="b1", purchased_quantity=20)])

    allocation, _ = product.allocate(line("o1", 20), now=tick(10))

    assert allocation.parts == [Part("b1", 20)]
    assert stock(product) == {"b1": (20, 0)}


def test_new_allocation_records_line_request_and_allocation_time():
    product = Product(SKU, [DomainBatchFactory(reference="b1")])

    allocation, created = product.allocate(line("o1", 2), now=tick(42))

    assert created is True
    assert allocation.line == OrderLine("o1", SKU, 2)
    assert (allocation.order_id, allocation.sku, allocation.qty) == ("o1", SKU, 2)
    assert allocation.status is LineStatus.ALLOCATED
    assert allocation.requested_at == tick(42)
    assert allocation.allocated_at == tick(42)
    assert product.allocation("o1") is allocation
    assert product.allocations == [allocation]


# -- rule 3: split --------------------------------------------------------------------------


def test_line_no_batch_covers_is_split_in_preference_order():
    product = Product(
        SKU,
        [
            DomainBatchFactory(
                reference="ship", purchased_quantity=10, eta=SOON, created_at=tick(1)
            ),
            DomainBatchFactory(reference="old", purchased_quantity=5, created_at=tick(2)),
            DomainBatchFactory(reference="new", purchased_quantity=4, created_at=tick(3)),
        ],
    )

    allocation, _ = product.allocate(line("o1", 12), now=tick(10))

    assert allocation.parts == [Part("old", 5), Part("new", 4), Part("ship", 3)]
    assert stock(product) == {"old": (5, 0), "new": (4, 0), "ship": (3, 7)}


def test_split_stops_as_soon_as_the_line_is_covered():
    product = Product(
        SKU,
        [
            DomainBatchFactory(reference="b1", purchased_quantity=3, created_at=tick(1)),
            DomainBatchFactory(reference="b2", purchased_quantity=3, created_at=tick(2)),
            DomainBatchFactory(reference="b3", purchased_quantity=3, created_at=tick(3)),
        ],
    )

    allocation, _ = product.allocate(line("o1", 4), now=tick(10))

    assert allocation.parts == [Part("b1", 3), Part("b2", 1)]
    assert stock(product) == {"b1": (3, 0), "b2": (1, 2), "b3": (0, 3)}


def test_split_skips_used_up_batches_and_takes_what_is_left_on_partly_used_ones():
    product = Product(
        SKU,
        [
            DomainBatchFactory(reference="b1", purchased_quantity=4, created_at=tick(1)),
            DomainBatchFactory(reference="b2", purchased_quantity=5, created_at=tick(2)),
            DomainBatchFactory(reference="b3", purchased_quantity=3, eta=SOON, created_at=tick(3)),
        ],
    )
    product.allocate(line("o-fill", 4), now=tick(10))  # b1 used up
    product.allocate(line("o-some", 2), now=tick(11))  # b2: 3 left

    allocation, _ = product.allocate(line("o1", 5), now=tick(12))

    assert allocation.parts == [Part("b2", 3), Part("b3", 2)]
    assert stock(product) == {"b1": (4, 0), "b2": (5, 0), "b3": (2, 1)}


def test_line_needing_every_unit_left_is_split_over_all_batches():
    product = Product(
        SKU,
        [
            DomainBatchFactory(reference="b1", purchased_quantity=2, created_at=tick(1)),
            DomainBatchFactory(reference="b2", purchased_quantity=3, eta=SOON, created_at=tick(2)),
        ],
    )

    allocation, _ = product.allocate(line("o1", 5), now=tick(10))

    assert allocation.parts == [Part("b1", 2), Part("b2", 3)]
    assert product.available_quantity == 0


# -- rule 4: out of stock -------------------------------------------------------------------


def test_out_of_stock_changes_nothing_and_tells_sku_requested_and_total_available():
    product = Product(
        SKU,
        [
            DomainBatchFactory(reference="b1", purchased_quantity=5, created_at=tick(1)),
            DomainBatchFactory(reference="b2", purchased_quantity=4, eta=SOON, created_at=tick(2)),
        ],
    )
    first, _ = product.allocate(line("o-first", 2), now=tick(10))

    with pytest.raises(OutOfStock) as raised:
        product.allocate(line("o-too-big", 8), now=tick(11))

    assert (raised.value.sku, raised.value.requested, raised.value.available) == (SKU, 8, 7)
    assert product.get_allocation("o-too-big") is None
    assert product.allocations == [first]
    assert first.parts == [Part("b1", 2)]
    assert stock(product) == {"b1": (2, 3), "b2": (0, 4)}


def test_out_of_stock_when_nothing_is_left_says_zero_available():
    product = Product(SKU, [DomainBatchFactory(reference="b1", purchased_quantity=3)])
    product.allocate(line("o-all", 3), now=tick(10))

    with pytest.raises(OutOfStock) as raised:
        product.allocate(line("o-more", 1), now=tick(11))

    assert (raised.value.sku, raised.value.requested, raised.value.available) == (SKU, 1, 0)
    assert stock(product) == {"b1": (3, 0)}


def test_batch_with_zero_purchased_quantity_holds_nothing():
    product = Product(SKU, [DomainBatchFactory(reference="empty", purchased_quantity=0)])

    with pytest.raises(OutOfStock) as raised:
        product.allocate(line("o1", 1), now=tick(10))

    assert raised.value.available == 0


# -- rule 6: no double allocation ------------------------------------------------------------


def test_repeating_a_line_with_same_qty_returns_existing_allocation_and_changes_nothing():
    product = Product(
        SKU,
        [
            DomainBatchFactory(reference="b1", purchased_quantity=4, created_at=tick(1)),
            DomainBatchFactory(reference="b2", purchased_quantity=10, created_at=tick(2)),
        ],
    )
    first, created_first = product.allocate(line("o1", 6), now=tick(10))

    again, created_again = product.allocate(line("o1", 6), now=tick(20))

    assert (created_first, created_again) == (True, False)
    assert again is first
    assert again.parts == [Part("b2", 6)]
    assert (again.requested_at, again.allocated_at) == (tick(10), tick(10))
    assert product.allocations == [first]
    assert stock(product) == {"b1": (0, 4), "b2": (6, 4)}


def test_repeating_a_line_is_idempotent_even_once_stock_has_run_out():
    product = Product(SKU, [DomainBatchFactory(reference="b1", purchased_quantity=5)])
    first, _ = product.allocate(line("o1", 5), now=tick(10))

    again, created = product.allocate(line("o1", 5), now=tick(11))

    assert (again, created) == (first, False)
    assert stock(product) == {"b1": (5, 0)}


def test_repeating_a_backordered_line_returns_it_still_backordered():
    product = Product(SKU, [DomainBatchFactory(reference="b1", purchased_quantity=5)])
    waiting, _ = product.allocate(line("o1", 5), now=tick(10))
    product.change_batch("b1", purchased_quantity=0, now=tick(11))
    assert waiting.status is LineStatus.BACKORDERED

    again, created = product.allocate(line("o1", 5), now=tick(12))

    assert (again, created) == (waiting, False)
    assert again.status is LineStatus.BACKORDERED
    assert again.parts == []
    assert stock(product) == {"b1": (0, 0)}


def test_same_line_with_another_qty_is_a_conflict_that_changes_nothing():
    product = Product(SKU, [DomainBatchFactory(reference="b1", purchased_quantity=10)])
    first, _ = product.allocate(line("o1", 3), now=tick(10))

    with pytest.raises(LineConflict) as raised:
        product.allocate(line("o1", 4), now=tick(11))

    error = raised.value
    assert (error.order_id, error.sku, error.qty, error.requested) == ("o1", SKU, 3, 4)
    assert product.allocations == [first]
    assert first.parts == [Part("b1", 3)]
    assert stock(product) == {"b1": (3, 7)}


def test_another_order_for_same_sku_is_a_separate_line():
    product = Product(SKU, [DomainBatchFactory(reference="b1", purchased_quantity=10)])
    product.allocate(line("o1", 3), now=tick(10))

    other, created = product.allocate(line("o2", 3), now=tick(11))

    assert created is True
    assert [a.order_id for a in product.allocations] == ["o1", "o2"]
    assert stock(product) == {"b1": (6, 4)}
    assert other.parts == [Part("b1", 3)]


# -- invalid SKU ------------------------------------------------------------------------------


def test_sku_without_any_batch_is_invalid():
    product = Product(SKU)

    with pytest.raises(InvalidSku) as raised:
        product.allocate(line("o1", 1), now=tick(10))

    assert raised.value.sku == SKU
    assert product.has_batches is False
    assert product.allocations == []


def test_sku_with_batches_none_loaded_with_stock_is_out_of_stock_not_invalid():
    # The adapter loads only batches with stock; it says the SKU has others.
    product = Product(SKU, has_batches=True)

    with pytest.raises(OutOfStock) as raised:
        product.allocate(line("o1", 3), now=tick(10))

    assert (raised.value.sku, raised.value.requested, raised.value.available) == (SKU, 3, 0)
    assert product.allocations == []


def test_sku_whose_last_batch_was_deleted_is_invalid_again():
    product = Product(SKU, [DomainBatchFactory(reference="b1")])
    product.delete_batch("b1", now=tick(10))

    with pytest.raises(InvalidSku):
        product.allocate(line("o1", 1), now=tick(11))

    assert product.has_batches is False


def test_sku_whose_only_batch_is_used_up_is_out_of_stock_not_invalid():
    product = Product(SKU, [DomainBatchFactory(reference="b1", purchased_quantity=1)])
    product.allocate(line("o1", 1), now=tick(10))

    with pytest.raises(OutOfStock):
        product.allocate(line("o2", 1), now=tick(11))


def test_line_of_another_sku_is_refused():
    product = Product(SKU, [DomainBatchFactory(reference="b1")])

    with pytest.raises(ValueError, match="BLUE-LAMP"):
        product.allocate(OrderLine("o1", "BLUE-LAMP", 1), now=tick(10))

    assert product.allocations == []


# -- invalid quantities -----------------------------------------------------------------------


@pytest.mark.parametrize("qty", [0, -1, MAX_QUANTITY + 1])
def test_qty_outside_one_to_max_is_invalid(qty):
    product = Product(SKU, [DomainBatchFactory(reference="b1", purchased_quantity=MAX_QUANTITY)])

    with pytest.raises(InvalidQuantity) as raised:
        product.allocate(line("o1", qty), now=tick(10))

    assert (raised.value.field, raised.value.value) == ("qty", qty)
    assert product.allocations == []
    assert stock(product) == {"b1": (0, MAX_QUANTITY)}


def test_qty_of_max_quantity_is_allowed():
    product = Product(SKU, [DomainBatchFactory(reference="b1", purchased_quantity=MAX_QUANTITY)])

    allocation, _ = product.allocate(line("o1", MAX_QUANTITY), now=tick(10))

    assert allocation.parts == [Part("b1", MAX_QUANTITY)]


@pytest.mark.parametrize("qty", [True, 2.0, "2"])
def test_qty_that_is_not_an_int_is_refused(qty):
    product = Product(SKU, [DomainBatchFactory(reference="b1")])

    with pytest.raises(TypeError):
        product.allocate(line("o1", qty), now=tick(10))

    assert product.allocations == []


def test_invalid_qty_is_refused_even_for_a_recorded_line():
    product = Product(SKU, [DomainBatchFactory(reference="b1")])
    product.allocate(line("o1", 2), now=tick(10))

    with pytest.raises(InvalidQuantity):
        product.allocate(line("o1", 0), now=tick(11))


@pytest.mark.parametrize("purchased", [-1, MAX_QUANTITY + 1])
def test_new_batch_with_quantity_outside_zero_to_max_is_invalid(purchased):
    product = Product(SKU)

    with pytest.raises(InvalidQuantity) as raised:
        product.add_batch(
            DomainBatchFactory(reference="b1", purchased_quantity=purchased), now=tick(10)
        )

    assert (raised.value.field, raised.value.value) == ("purchased_quantity", purchased)
    assert product.batches == []
    assert product.has_batches is False


def test_new_batch_may_have_zero_quantity():
    product = Product(SKU)

    product.add_batch(DomainBatchFactory(reference="b1", purchased_quantity=0), now=tick(10))

    assert stock(product) == {"b1": (0, 0)}


@pytest.mark.parametrize("purchased", [-1, MAX_QUANTITY + 1])
def test_changing_batch_to_quantity_outside_zero_to_max_is_invalid_and_moves_nothing(purchased):
    product = Product(SKU, [DomainBatchFactory(reference="b1", purchased_quantity=10)])
    allocation, _ = product.allocate(line("o1", 6), now=tick(10))

    with pytest.raises(InvalidQuantity) as raised:
        product.change_batch("b1", purchased_quantity=purchased, now=tick(11))

    assert (raised.value.field, raised.value.value) == ("purchased_quantity", purchased)
    assert allocation.parts == [Part("b1", 6)]
    assert product.batch("b1").purchased_quantity == 10
    assert stock(product) == {"b1": (6, 4)}
