"""Orders (SPEC 2.5): the domain's all-or-nothing rule and the services, without a database."""

from __future__ import annotations

from datetime import date

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from allocation import services
from domain.exceptions import (
    LineConflict,
    OrderLineConflict,
    OrderNotFound,
    OrderOutOfStock,
    OutOfStock,
    UnknownSkus,
)
from domain.model import Batch, LineStatus, Product
from domain.orders import allocate_order
from tests.factories import tick
from tests.unit.fakes import FakeUnitOfWork

LATER = date(2027, 3, 1)


def product(sku: str, *stock: int, eta: date | None = None) -> Product:
    """A SKU with one batch per quantity in ``stock`` (``<sku>-1``, ``<sku>-2``, ...)."""
    batches = [
        Batch(f"{sku}-{n}", sku, qty, eta, created_at=tick(n)) for n, qty in enumerate(stock, 1)
    ]
    return Product(sku, batches)


def uow_with(*products: Product) -> FakeUnitOfWork:
    return FakeUnitOfWork(list(products))


def held(uow: FakeUnitOfWork, sku: str) -> dict[str, int]:
    """Each batch's allocated quantity in the stored product."""
    return {b.reference: b.allocated_quantity for b in uow.products.stored(sku).batches}


def lines_of(uow: FakeUnitOfWork, sku: str) -> dict[str, tuple[int, list]]:
    return {
        a.order_id: (a.qty, [(p.batch_reference, p.qty) for p in a.parts])
        for a in uow.products.stored(sku).allocations
    }


# -- the domain ----------------------------------------------------------------------------


def test_every_line_fits_so_every_line_is_allocated_in_request_order():
    products = {"RED": product("RED", 5), "BLUE": product("BLUE", 2, 10)}

    result = allocate_order("o1", [("RED", 4), ("BLUE", 3)], products, now=tick(10))

    assert result.created is True
    assert [(a.sku, a.qty, a.status) for a in result.allocations] == [
        ("RED", 4, LineStatus.ALLOCATED),
        ("BLUE", 3, LineStatus.ALLOCATED),
    ]
    # Rule 3: BLUE's 3 fit whole only in the second batch.
    assert [(p.batch_reference, p.qty) for p in result.allocations[1].parts] == [("BLUE-2", 3)]


def test_a_short_line_refuses_the_order_and_lists_every_short_line():
    products = {"RED": product("RED", 5), "BLUE": product("BLUE", 2), "TEAL": product("TEAL", 0)}

    with pytest.raises(OrderOutOfStock) as refused:
        allocate_order("o1", [("RED", 6), ("BLUE", 2), ("TEAL", 1)], products, now=tick(10))

    assert refused.value.code == "out_of_stock"
    assert refused.value.details() == {
        "lines": [
            {"sku": "RED", "requested": 6, "available": 5},
            {"sku": "TEAL", "requested": 1, "available": 0},
        ]
    }


def test_unknown_skus_win_over_a_conflict_and_a_shortage():
    products = {"RED": product("RED", 1), "BLUE": product("BLUE", 5)}
    allocate_order("o1", [("BLUE", 2)], products, now=tick(10))

    with pytest.raises(UnknownSkus) as refused:
        allocate_order(
            "o1", [("NOPE", 1), ("RED", 9), ("BLUE", 3), ("GONE", 1)], products, now=tick(11)
        )

    assert (refused.value.code, refused.value.details()) == (
        "invalid_sku",
        {"skus": ["NOPE", "GONE"]},
    )


def test_a_conflict_wins_over_a_shortage_and_names_the_first_conflicting_sku():
    products = {"RED": product("RED", 1), "BLUE": product("BLUE", 5), "TEAL": product("TEAL", 5)}
    allocate_order("o1", [("BLUE", 2), ("TEAL", 2)], products, now=tick(10))

    with pytest.raises(OrderLineConflict) as refused:
        allocate_order("o1", [("RED", 9), ("TEAL", 3), ("BLUE", 3)], products, now=tick(11))

    assert isinstance(refused.value, LineConflict)
    assert (refused.value.code, refused.value.details()) == ("line_conflict", {"sku": "TEAL"})


def test_a_sku_with_no_batches_left_is_an_unknown_sku():
    products = {"RED": Product("RED", [])}

    with pytest.raises(UnknownSkus) as refused:
        allocate_order("o1", [("RED", 1)], products, now=tick(10))

    assert refused.value.skus == ["RED"]


def test_an_order_whose_lines_all_exist_with_their_qty_is_a_repeat():
    products = {"RED": product("RED", 5), "BLUE": product("BLUE", 5)}
    first = allocate_order("o1", [("RED", 2), ("BLUE", 2)], products, now=tick(10))

    again = allocate_order("o1", [("BLUE", 2), ("RED", 2)], products, now=tick(11))

    assert again.created is False
    assert [a.sku for a in again.allocations] == ["BLUE", "RED"]
    assert again.allocations == list(reversed(first.allocations))


def test_one_new_line_among_existing_ones_makes_the_order_new():
    products = {"RED": product("RED", 5), "BLUE": product("BLUE", 5)}
    allocate_order("o1", [("RED", 2)], products, now=tick(10))

    result = allocate_order("o1", [("RED", 2), ("BLUE", 1)], products, now=tick(11))

    assert result.created is True
    assert [(a.sku, a.qty) for a in result.allocations] == [("RED", 2), ("BLUE", 1)]


def test_a_sku_twice_is_a_programming_error_not_a_rule():
    with pytest.raises(ValueError, match="names a SKU twice"):
        allocate_order("o1", [("RED", 1), ("RED", 2)], {"RED": product("RED", 5)}, now=tick(1))


# -- the services on the fake unit of work -----------------------------------------------------


def test_allocate_order_commits_every_line_once():
    uow = uow_with(product("RED", 5), product("BLUE", 3, eta=LATER))

    result = services.allocate_order(order_id="o1", lines=[("RED", 4), ("BLUE", 3)], uow=uow)

    assert result.created is True
    assert uow.commits == 1
    assert held(uow, "RED") == {"RED-1": 4}
    assert held(uow, "BLUE") == {"BLUE-1": 3}
    assert lines_of(uow, "BLUE") == {"o1": (3, [("BLUE-1", 3)])}


def test_a_refused_order_records_nothing_even_for_the_lines_that_fit():
    uow = uow_with(product("RED", 5), product("BLUE", 2))

    with pytest.raises(OrderOutOfStock):
        services.allocate_order(order_id="o1", lines=[("RED", 4), ("BLUE", 3)], uow=uow)

    assert uow.commits == 0
    assert held(uow, "RED") == {"RED-1": 0}
    assert lines_of(uow, "RED") == {}
    assert lines_of(uow, "BLUE") == {}


def test_a_repeated_order_commits_nothing():
    uow = uow_with(product("RED", 5))
    services.allocate_order(order_id="o1", lines=[("RED", 4)], uow=uow)

    again = services.allocate_order(order_id="o1", lines=[("RED", 4)], uow=uow)

    assert again.created is False
    assert (uow.commits, uow.rollbacks) == (1, 1)
    assert held(uow, "RED") == {"RED-1": 4}


def test_a_conflicting_order_records_nothing():
    uow = uow_with(product("RED", 5), product("BLUE", 5))
    services.allocate_order(order_id="o1", lines=[("RED", 4)], uow=uow)

    with pytest.raises(OrderLineConflict):
        services.allocate_order(order_id="o1", lines=[("BLUE", 1), ("RED", 3)], uow=uow)

    assert uow.commits == 1
    assert lines_of(uow, "BLUE") == {}
    assert lines_of(uow, "RED") == {"o1": (4, [("RED-1", 4)])}


def test_an_order_with_an_unknown_sku_records_nothing():
    uow = uow_with(product("RED", 5))

    with pytest.raises(UnknownSkus) as refused:
        services.allocate_order(order_id="o1", lines=[("RED", 1), ("NOPE", 1)], uow=uow)

    assert refused.value.skus == ["NOPE"]
    assert lines_of(uow, "RED") == {}


def test_deallocate_order_removes_every_line_allocated_or_backordered():
    uow = uow_with(product("RED", 5), product("BLUE", 5))
    services.allocate_order(order_id="o1", lines=[("RED", 5), ("BLUE", 2)], uow=uow)
    services.allocate(order_id="o2", sku="BLUE", qty=3, uow=uow)
    services.add_batch(reference="RED-2", sku="RED", purchased_quantity=0, uow=uow)
    services.change_batch(reference="RED-1", purchased_quantity=3, uow=uow)
    assert lines_of(uow, "RED") == {"o1": (5, [])}  # backordered: 5 no longer fit

    change = services.deallocate_order(order_id="o1", uow=uow)

    assert change.served == []
    assert lines_of(uow, "RED") == {}
    assert lines_of(uow, "BLUE") == {"o2": (3, [("BLUE-1", 3)])}
    assert held(uow, "BLUE") == {"BLUE-1": 3}


def test_deallocate_order_serves_a_backorder_of_another_order():
    uow = uow_with(product("RED", 4))
    services.allocate_order(order_id="o1", lines=[("RED", 4)], uow=uow)
    services.add_batch(reference="RED-2", sku="RED", purchased_quantity=0, uow=uow)
    with pytest.raises(OutOfStock):
        services.allocate(order_id="o2", sku="RED", qty=3, uow=uow)
    services.change_batch(reference="RED-1", purchased_quantity=3, uow=uow)  # o1 backordered
    services.allocate(order_id="o2", sku="RED", qty=3, uow=uow)
    services.change_batch(reference="RED-1", purchased_quantity=4, uow=uow)

    change = services.deallocate_order(order_id="o2", uow=uow)

    assert [a.order_id for a in change.served] == ["o1"]
    assert lines_of(uow, "RED") == {"o1": (4, [("RED-1", 4)])}


def test_deallocating_an_order_without_lines_is_order_not_found():
    uow = uow_with(product("RED", 4))

    with pytest.raises(OrderNotFound) as missing:
        services.deallocate_order(order_id="o9", uow=uow)

    assert missing.value.code == "not_found"
    assert uow.commits == 0


# -- property: an order is its lines one by one, or nothing -------------------------------------

SKUS = ["A", "B", "C", "D"]


@st.composite
def stock_and_order(draw):
    stock = {sku: draw(st.lists(st.integers(0, 6), min_size=0, max_size=3)) for sku in SKUS}
    skus = draw(st.lists(st.sampled_from([*SKUS, "NOPE"]), min_size=1, max_size=5, unique=True))
    lines = [(sku, draw(st.integers(1, 8))) for sku in skus]
    earlier = draw(st.lists(st.tuples(st.sampled_from(SKUS), st.integers(1, 8)), max_size=3))
    return stock, lines, earlier


def build(stock: dict[str, list[int]]) -> FakeUnitOfWork:
    return FakeUnitOfWork([product(sku, *quantities) for sku, quantities in stock.items()])


def state(uow: FakeUnitOfWork) -> dict:
    return {sku: (held(uow, sku), lines_of(uow, sku)) for sku in uow.products.skus}


@settings(max_examples=300, deadline=None)
@given(stock_and_order())
def test_an_order_equals_its_lines_one_by_one_when_all_fit_and_changes_nothing_otherwise(case):
    stock, lines, earlier = case
    by_order, by_line = build(stock), build(stock)
    for uow in (by_order, by_line):
        # Some lines of the order may exist already, with the same qty or not.
        for sku, qty in earlier:
            try:
                services.allocate(order_id="o1", sku=sku, qty=qty, uow=uow)
            except Exception:  # noqa: BLE001, S112 - refused earlier lines are no lines
                continue
    before = state(by_order)

    try:
        result = services.allocate_order(order_id="o1", lines=lines, uow=by_order)
    except (UnknownSkus, OrderLineConflict, OrderOutOfStock):
        # Refused: nothing changed, and one by one at least one line is refused too.
        assert state(by_order) == before
        refusals = 0
        for sku, qty in lines:
            try:
                services.allocate(order_id="o1", sku=sku, qty=qty, uow=by_line)
            except Exception:  # noqa: BLE001 - any refusal counts
                refusals += 1
        assert refusals >= 1
        return

    one_by_one = [services.allocate(order_id="o1", sku=s, qty=q, uow=by_line) for s, q in lines]
    assert state(by_order) == state(by_line)
    assert [(a.sku, a.qty, a.parts) for a in result.allocations] == [
        (o.allocation.sku, o.allocation.qty, o.allocation.parts) for o in one_by_one
    ]
    assert result.created == any(o.created for o in one_by_one)
