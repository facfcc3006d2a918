"""Every service through the in-memory unit of work: no database involved."""

from datetime import UTC, date, datetime

import pytest
from django.utils import timezone

from allocation import services
from domain.exceptions import (
    BatchNotFound,
    DuplicateBatch,
    InvalidQuantity,
    InvalidSku,
    LineConflict,
    LineNotFound,
    OutOfStock,
    SkuChange,
)
from domain.model import BatchStatus, LineStatus, OrderLine, Part
from tests.factories import tick
from tests.unit.fakes import FakeUnitOfWork
from tests.unit.helpers import ids

SKU = "RED-CHAIR"
SOON = date(2027, 1, 10)


@pytest.fixture
def clock(monkeypatch):
    """``timezone.now()`` ticks one second per call, so batch ages are distinct and known."""
    calls = []

    def now() -> datetime:
        calls.append(None)
        return tick(len(calls))

    monkeypatch.setattr(timezone, "now", now)
    return calls


@pytest.fixture
def uow() -> FakeUnitOfWork:
    return FakeUnitOfWork()


def stock(uow: FakeUnitOfWork, sku: str = SKU) -> dict[str, tuple[int, int]]:
    """Each batch's (allocated, available) in the stored product."""
    return {
        b.reference: (b.allocated_quantity, b.available_quantity)
        for b in uow.products.stored(sku).batches
    }


# -- allocate -------------------------------------------------------------------------------------


def test_allocate_places_a_new_line_and_commits(uow, clock):
    services.add_batch(reference="b1", sku=SKU, purchased_quantity=10, uow=uow)

    outcome = services.allocate(order_id="o1", sku=SKU, qty=3, uow=uow)

    assert outcome.created is True
    assert outcome.allocation.line == OrderLine("o1", SKU, 3)
    assert outcome.allocation.parts == [Part("b1", 3)]
    assert outcome.allocation.requested_at == tick(2)
    assert uow.committed is True
    assert uow.commits == 2
    assert stock(uow) == {"b1": (3, 7)}


def test_allocate_stamps_the_line_with_an_aware_current_time(uow):
    services.add_batch(reference="b1", sku=SKU, purchased_quantity=10, uow=uow)
    before = datetime.now(UTC)

    outcome = services.allocate(order_id="o1", sku=SKU, qty=1, uow=uow)

    assert outcome.allocation.requested_at.tzinfo is not None
    assert before <= outcome.allocation.requested_at <= datetime.now(UTC)


def test_allocate_repeat_returns_the_existing_line_and_commits_nothing(uow, clock):
    services.add_batch(reference="b1", sku=SKU, purchased_quantity=10, uow=uow)
    first = services.allocate(order_id="o1", sku=SKU, qty=3, uow=uow)

    again = services.allocate(order_id="o1", sku=SKU, qty=3, uow=uow)

    assert again.created is False
    assert again.allocation is first.allocation
    assert again.allocation.requested_at == tick(2)
    assert uow.committed is False
    assert uow.commits == 2
    assert stock(uow) == {"b1": (3, 7)}


def test_allocate_for_an_unknown_sku_is_invalid_sku_and_creates_nothing(uow):
    with pytest.raises(InvalidSku) as raised:
        services.allocate(order_id="o1", sku="NO-SUCH-SKU", qty=1, uow=uow)

    assert raised.value.sku == "NO-SUCH-SKU"
    assert uow.committed is False
    assert uow.commits == 0
    assert uow.products.skus == []


def test_allocate_for_a_sku_whose_batches_are_all_deleted_is_invalid_sku(uow, clock):
    services.add_batch(reference="b1", sku=SKU, purchased_quantity=10, uow=uow)
    services.delete_batch(reference="b1", uow=uow)

    with pytest.raises(InvalidSku):
        services.allocate(order_id="o1", sku=SKU, qty=1, uow=uow)

    assert uow.committed is False
    assert uow.commits == 2


def test_allocate_out_of_stock_commits_nothing_and_reports_what_is_available(uow, clock):
    services.add_batch(reference="b1", sku=SKU, purchased_quantity=5, uow=uow)
    services.add_batch(reference="b2", sku=SKU, purchased_quantity=4, eta=SOON, uow=uow)
    services.allocate(order_id="o1", sku=SKU, qty=2, uow=uow)

    with pytest.raises(OutOfStock) as raised:
        services.allocate(order_id="o2", sku=SKU, qty=8, uow=uow)

    assert (raised.value.sku, raised.value.requested, raised.value.available) == (SKU, 8, 7)
    assert uow.committed is False
    assert uow.commits == 3
    assert ids(uow.products.stored(SKU).allocations) == ["o1"]
    assert stock(uow) == {"b1": (2, 3), "b2": (0, 4)}


def test_allocate_with_another_qty_is_a_line_conflict(uow, clock):
    services.add_batch(reference="b1", sku=SKU, purchased_quantity=10, uow=uow)
    services.allocate(order_id="o1", sku=SKU, qty=3, uow=uow)

    with pytest.raises(LineConflict) as raised:
        services.allocate(order_id="o1", sku=SKU, qty=4, uow=uow)

    assert (raised.value.qty, raised.value.requested) == (3, 4)
    assert uow.committed is False
    assert uow.commits == 2
    assert stock(uow) == {"b1": (3, 7)}


def test_allocate_with_zero_qty_is_invalid_quantity(uow, clock):
    services.add_batch(reference="b1", sku=SKU, purchased_quantity=10, uow=uow)

    with pytest.raises(InvalidQuantity) as raised:
        services.allocate(order_id="o1", sku=SKU, qty=0, uow=uow)

    assert (raised.value.field, raised.value.value) == ("qty", 0)
    assert uow.committed is False


def test_allocate_splits_across_batches_in_preference_order(uow, clock):
    services.add_batch(reference="ship", sku=SKU, purchased_quantity=10, eta=SOON, uow=uow)
    services.add_batch(reference="here", sku=SKU, purchased_quantity=4, uow=uow)

    outcome = services.allocate(order_id="o1", sku=SKU, qty=12, uow=uow)

    assert outcome.allocation.parts == [Part("here", 4), Part("ship", 8)]


# -- deallocate -----------------------------------------------------------------------------------


def test_deallocate_removes_the_line_and_commits(uow, clock):
    services.add_batch(reference="b1", sku=SKU, purchased_quantity=10, uow=uow)
    services.allocate(order_id="o1", sku=SKU, qty=3, uow=uow)

    change = services.deallocate(order_id="o1", sku=SKU, uow=uow)

    assert (change.reallocated, change.backordered, change.served) == ([], [], [])
    assert uow.committed is True
    assert uow.products.stored(SKU).get_allocation("o1") is None
    assert stock(uow) == {"b1": (0, 10)}


def test_deallocate_serves_waiting_backorders(uow, clock):
    services.add_batch(reference="b1", sku=SKU, purchased_quantity=6, uow=uow)
    services.allocate(order_id="o-keep", sku=SKU, qty=4, uow=uow)
    services.allocate(order_id="o-wait", sku=SKU, qty=2, uow=uow)
    services.change_batch(reference="b1", purchased_quantity=4, uow=uow)

    change = services.deallocate(order_id="o-keep", sku=SKU, uow=uow)

    assert ids(change.served) == ["o-wait"]
    assert change.served[0].parts == [Part("b1", 2)]
    assert stock(uow) == {"b1": (2, 2)}


def test_deallocate_in_an_unknown_sku_is_line_not_found(uow):
    with pytest.raises(LineNotFound) as raised:
        services.deallocate(order_id="o1", sku="NO-SUCH-SKU", uow=uow)

    assert (raised.value.order_id, raised.value.sku) == ("o1", "NO-SUCH-SKU")
    assert uow.committed is False
    assert uow.products.skus == []


def test_deallocate_an_unknown_line_is_line_not_found(uow, clock):
    services.add_batch(reference="b1", sku=SKU, purchased_quantity=10, uow=uow)
    services.allocate(order_id="o1", sku=SKU, qty=3, uow=uow)

    with pytest.raises(LineNotFound) as raised:
        services.deallocate(order_id="o2", sku=SKU, uow=uow)

    assert (raised.value.order_id, raised.value.sku) == ("o2", SKU)
    assert uow.committed is False
    assert uow.commits == 2
    assert stock(uow) == {"b1": (3, 7)}


# -- add_batch -------------------------------------------------------------------------------------


def test_add_batch_creates_the_product_and_the_batch_and_commits(uow, clock):
    outcome = services.add_batch(reference="b1", sku=SKU, purchased_quantity=10, eta=SOON, uow=uow)

    batch = outcome.batch
    assert (batch.reference, batch.sku, batch.purchased_quantity, batch.eta) == (
        "b1",
        SKU,
        10,
        SOON,
    )
    assert batch.status is BatchStatus.INBOUND
    assert batch.created_at == tick(1)
    assert (outcome.reallocated, outcome.backordered, outcome.served) == ([], [], [])
    assert uow.committed is True
    assert uow.products.skus == [SKU]
    assert uow.products.sku_of_batch("b1") == SKU
    assert stock(uow) == {"b1": (0, 10)}


def test_add_batch_without_eta_is_in_stock(uow, clock):
    outcome = services.add_batch(reference="b1", sku=SKU, purchased_quantity=10, uow=uow)

    assert outcome.batch.eta is None
    assert outcome.batch.status is BatchStatus.IN_STOCK


def test_add_batch_with_an_existing_reference_is_a_duplicate(uow, clock):
    services.add_batch(reference="b1", sku=SKU, purchased_quantity=10, uow=uow)

    with pytest.raises(DuplicateBatch) as raised:
        services.add_batch(reference="b1", sku=SKU, purchased_quantity=5, uow=uow)

    assert raised.value.reference == "b1"
    assert uow.committed is False
    assert uow.commits == 1
    assert stock(uow) == {"b1": (0, 10)}


def test_add_batch_with_a_reference_used_by_another_sku_is_a_duplicate(uow, clock):
    services.add_batch(reference="b1", sku=SKU, purchased_quantity=10, uow=uow)

    with pytest.raises(DuplicateBatch) as raised:
        services.add_batch(reference="b1", sku="BLUE-LAMP", purchased_quantity=5, uow=uow)

    assert raised.value.reference == "b1"
    assert uow.committed is False
    assert uow.products.skus == [SKU]
    assert uow.products.sku_of_batch("b1") == SKU


def test_add_batch_serves_backorders(uow, clock):
    services.add_batch(reference="b1", sku=SKU, purchased_quantity=5, uow=uow)
    services.allocate(order_id="o1", sku=SKU, qty=5, uow=uow)
    services.change_batch(reference="b1", purchased_quantity=0, uow=uow)

    outcome = services.add_batch(reference="b2", sku=SKU, purchased_quantity=8, uow=uow)

    assert ids(outcome.served) == ["o1"]
    assert outcome.served[0].parts == [Part("b2", 5)]
    assert (outcome.reallocated, outcome.backordered) == ([], [])
    assert stock(uow) == {"b1": (0, 0), "b2": (5, 3)}


def test_add_batch_with_negative_quantity_is_invalid_and_commits_nothing(uow, clock):
    with pytest.raises(InvalidQuantity) as raised:
        services.add_batch(reference="b1", sku=SKU, purchased_quantity=-1, uow=uow)

    assert (raised.value.field, raised.value.value) == ("purchased_quantity", -1)
    assert uow.committed is False
    assert uow.products.sku_of_batch("b1") is None


# -- change_batch ----------------------------------------------------------------------------------


def test_change_batch_of_an_unknown_reference_is_batch_not_found(uow):
    with pytest.raises(BatchNotFound) as raised:
        services.change_batch(reference="nope", purchased_quantity=3, uow=uow)

    assert raised.value.reference == "nope"
    assert uow.committed is False


def test_change_batch_to_another_sku_is_refused_and_changes_nothing(uow, clock):
    services.add_batch(reference="b1", sku=SKU, purchased_quantity=10, uow=uow)

    with pytest.raises(SkuChange) as raised:
        services.change_batch(reference="b1", sku="BLUE-LAMP", purchased_quantity=3, uow=uow)

    error = raised.value
    assert (error.reference, error.sku, error.requested_sku) == ("b1", SKU, "BLUE-LAMP")
    assert uow.committed is False
    assert uow.commits == 1
    assert stock(uow) == {"b1": (0, 10)}


def test_change_batch_naming_its_own_sku_is_accepted(uow, clock):
    services.add_batch(reference="b1", sku=SKU, purchased_quantity=10, uow=uow)

    outcome = services.change_batch(reference="b1", sku=SKU, purchased_quantity=12, uow=uow)

    assert outcome.batch.purchased_quantity == 12
    assert uow.committed is True
    assert stock(uow) == {"b1": (0, 12)}


def test_change_batch_below_allocated_reallocates_or_backorders_the_lines_taken_off(uow, clock):
    services.add_batch(reference="b1", sku=SKU, purchased_quantity=10, uow=uow)
    services.add_batch(reference="b2", sku=SKU, purchased_quantity=3, eta=SOON, uow=uow)
    services.allocate(order_id="o-old", sku=SKU, qty=4, uow=uow)
    services.allocate(order_id="o-mid", sku=SKU, qty=3, uow=uow)
    services.allocate(order_id="o-new", sku=SKU, qty=3, uow=uow)

    outcome = services.change_batch(reference="b1", purchased_quantity=4, uow=uow)

    # o-new then o-mid come off b1; placed again oldest request first: o-mid
    # takes b2, nothing is left for o-new.
    assert ids(outcome.reallocated) == ["o-mid"]
    assert outcome.reallocated[0].parts == [Part("b2", 3)]
    assert ids(outcome.backordered) == ["o-new"]
    assert outcome.backordered[0].status is LineStatus.BACKORDERED
    assert outcome.served == []
    assert outcome.batch.purchased_quantity == 4
    assert uow.products.lines_loaded_for == ["b1"]
    assert uow.committed is True
    assert stock(uow) == {"b1": (4, 0), "b2": (3, 0)}


def test_change_batch_above_allocated_serves_backorders_without_loading_lines(uow, clock):
    services.add_batch(reference="b1", sku=SKU, purchased_quantity=5, uow=uow)
    services.allocate(order_id="o1", sku=SKU, qty=5, uow=uow)
    services.change_batch(reference="b1", purchased_quantity=0, uow=uow)
    uow.products.lines_loaded_for.clear()

    outcome = services.change_batch(reference="b1", purchased_quantity=7, uow=uow)

    assert ids(outcome.served) == ["o1"]
    assert (outcome.reallocated, outcome.backordered) == ([], [])
    assert uow.products.lines_loaded_for == []
    assert stock(uow) == {"b1": (5, 2)}


def test_change_batch_eta_only_keeps_quantity_and_allocations(uow, clock):
    services.add_batch(reference="b1", sku=SKU, purchased_quantity=10, uow=uow)
    first = services.allocate(order_id="o1", sku=SKU, qty=4, uow=uow)

    outcome = services.change_batch(reference="b1", eta=SOON, uow=uow)

    assert (outcome.batch.eta, outcome.batch.purchased_quantity) == (SOON, 10)
    assert outcome.batch.status is BatchStatus.INBOUND
    assert first.allocation.parts == [Part("b1", 4)]
    assert uow.committed is True


def test_change_batch_without_eta_keeps_it_and_with_none_clears_it(uow, clock):
    services.add_batch(reference="b1", sku=SKU, purchased_quantity=10, eta=SOON, uow=uow)

    kept = services.change_batch(reference="b1", purchased_quantity=11, uow=uow)
    assert kept.batch.eta == SOON

    cleared = services.change_batch(reference="b1", eta=None, uow=uow)
    assert cleared.batch.eta is None
    assert cleared.batch.status is BatchStatus.IN_STOCK


# -- delete_batch ----------------------------------------------------------------------------------


def test_delete_batch_of_an_unknown_reference_is_batch_not_found(uow):
    with pytest.raises(BatchNotFound) as raised:
        services.delete_batch(reference="nope", uow=uow)

    assert raised.value.reference == "nope"
    assert uow.committed is False


def test_delete_batch_places_its_lines_again_or_backorders_them(uow, clock):
    services.add_batch(reference="b1", sku=SKU, purchased_quantity=10, uow=uow)
    services.add_batch(reference="b2", sku=SKU, purchased_quantity=5, eta=SOON, uow=uow)
    services.allocate(order_id="o-first", sku=SKU, qty=4, uow=uow)
    services.allocate(order_id="o-second", sku=SKU, qty=6, uow=uow)

    outcome = services.delete_batch(reference="b1", uow=uow)

    assert outcome.batch is None
    assert ids(outcome.reallocated) == ["o-first"]
    assert outcome.reallocated[0].parts == [Part("b2", 4)]
    assert ids(outcome.backordered) == ["o-second"]
    assert uow.products.lines_loaded_for == ["b1"]
    assert uow.products.sku_of_batch("b1") is None
    assert uow.committed is True
    assert stock(uow) == {"b2": (4, 1)}
    assert ids(uow.products.stored(SKU).allocations) == ["o-first", "o-second"]


def test_delete_batch_without_lines_loads_none(uow, clock):
    services.add_batch(reference="b1", sku=SKU, purchased_quantity=10, uow=uow)

    outcome = services.delete_batch(reference="b1", uow=uow)

    assert (outcome.reallocated, outcome.backordered, outcome.served) == ([], [], [])
    assert uow.products.lines_loaded_for == []
    assert uow.committed is True
    assert stock(uow) == {}
