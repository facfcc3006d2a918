"""The bulk use cases on the fake unit of work: upsert_batches and allocate_many.

The property at the end is the one that matters: whatever the stock and the
rows, ``upsert_batches`` ends where applying the rows one by one through
``add_batch``/``change_batch`` ends, events included (per SKU), although it
lets storage write the rows of SKUs where the domain says no line can move.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from allocation import services
from allocation.repository import BatchRow, RowProblem
from domain import events
from domain.exceptions import OutOfStock
from domain.model import Batch, OrderLine, Product, batch_rows_move_lines
from tests.unit.fakes import FakeUnitOfWork

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def product(sku: str, *batches: tuple[str, int], lines: tuple = ()) -> Product:
    made = Product(
        sku,
        [
            Batch(ref, sku, qty, created_at=T0 + timedelta(seconds=n))
            for n, (ref, qty) in enumerate(batches)
        ],
    )
    for n, (order_id, qty) in enumerate(lines):
        made.allocate(OrderLine(order_id, sku, qty), now=T0 + timedelta(minutes=n))
    made.events.clear()
    return made


def state(uow: FakeUnitOfWork) -> dict:
    out = {}
    for sku in uow.products.skus:
        p = uow.products.stored(sku)
        out[sku] = (
            [(b.reference, b.purchased_quantity, b.allocated_quantity, b.eta) for b in p.batches],
            sorted((a.order_id, a.qty, events.placement(a.parts)) for a in p.allocations),
        )
    return out


def test_domain_rule_rows_move_lines_only_with_backorders_or_a_batch_lowered_too_far():
    assert not batch_rows_move_lines(backorders_waiting=False, lowered_below_allocated=False)
    assert batch_rows_move_lines(backorders_waiting=True, lowered_below_allocated=False)
    assert batch_rows_move_lines(backorders_waiting=False, lowered_below_allocated=True)


def test_upsert_batches_creates_updates_and_counts_unchanged_rows_with_their_events():
    uow = FakeUnitOfWork([product("BLUE", ("old", 10), ("same", 3))])

    summary = services.upsert_batches(
        rows=[
            BatchRow(2, "n1", "RED", 5, date(2031, 1, 2)),
            BatchRow(3, "old", "BLUE", 20, None),
            BatchRow(4, "same", "BLUE", 3, None),
            BatchRow(5, "n2", "RED", 7, None),
        ],
        uow=uow,
    )

    assert str(summary) == "created 2, updated 1, unchanged 1"
    assert state(uow) == {
        "BLUE": ([("old", 20, 0, None), ("same", 3, 0, None)], []),
        "RED": ([("n2", 7, 0, None), ("n1", 5, 0, date(2031, 1, 2))], []),
    }
    assert uow.products.published == [
        events.BatchCreated("RED", "n1", 5, date(2031, 1, 2)),
        events.BatchChanged("BLUE", "old", 20, None, 10, None),
        events.BatchCreated("RED", "n2", 7, None),
    ]
    assert uow.commits == 1


def test_upsert_batches_new_batches_get_created_at_in_file_order():
    uow = FakeUnitOfWork()

    services.upsert_batches(
        rows=[BatchRow(2, "z1", "RED", 5, None), BatchRow(3, "a1", "RED", 5, None)], uow=uow
    )

    assert [b.reference for b in uow.products.stored("RED").batches] == ["z1", "a1"]


def test_upsert_batches_rows_that_move_lines_go_through_the_product():
    red = product("RED", ("b1", 10), lines=(("o1", 6), ("o2", 4)))
    red.change_batch("b1", purchased_quantity=6, now=T0 + timedelta(hours=1))  # o2 waits
    red.events.clear()
    uow = FakeUnitOfWork([red])

    services.upsert_batches(
        rows=[BatchRow(2, "b2", "RED", 4, date(2031, 1, 1)), BatchRow(3, "b1", "RED", 2, None)],
        uow=uow,
    )

    assert state(uow)["RED"] == (
        [("b1", 2, 0, None), ("b2", 4, 4, date(2031, 1, 1))],
        [("o1", 6, ()), ("o2", 4, (("b2", 4),))],
    )
    assert [type(e).__name__ for e in uow.products.published] == [
        "BatchCreated",
        "LineAllocated",
        "BatchChanged",
        "LineBackordered",
    ]


def test_upsert_batches_refuses_a_file_with_problems_and_writes_nothing():
    uow = FakeUnitOfWork([product("BLUE", ("b1", 10))])

    with pytest.raises(services.RowsRejected) as refused:
        services.upsert_batches(
            rows=[
                BatchRow(2, "n1", "RED", 5, None),
                BatchRow(3, "b1", "RED", 5, None),
                BatchRow(4, "n1", "RED", 6, None),
            ],
            uow=uow,
        )

    assert refused.value.problems == [
        RowProblem(3, "sku", "batch b1 holds SKU BLUE; its SKU cannot change to RED"),
        RowProblem(4, "reference", "the same reference as line 2"),
    ]
    assert state(uow) == {"BLUE": ([("b1", 10, 0, None)], [])}
    assert uow.products.published == []
    assert uow.commits == 0


def test_allocate_many_gives_each_line_its_outcome_in_order():
    uow = FakeUnitOfWork([product("RED", ("r1", 5), lines=(("o0", 1),))])
    clock = services.StrictClock()

    outcomes = services.allocate_many(
        lines=[
            OrderLine("o1", "RED", 2),
            OrderLine("o0", "RED", 1),
            OrderLine("o2", "RED", 5),
            OrderLine("o3", "NOPE", 1),
            OrderLine("o0", "RED", 3),
            OrderLine("o4", "RED", 2),
        ],
        uow=uow,
        clock=clock,
    )

    assert [(o.line.order_id, o.outcome) for o in outcomes] == [
        ("o1", "allocated"),
        ("o0", "already_allocated"),
        ("o2", "out_of_stock"),
        ("o3", "invalid_sku"),
        ("o0", "line_conflict"),
        ("o4", "allocated"),
    ]
    assert [o.allocation.parts[0].batch_reference for o in outcomes if o.allocation] == [
        "r1",
        "r1",
        "r1",
    ]
    assert [(e.type, e.order_id) for e in uow.products.published] == [
        ("line_allocated", "o1"),
        ("line_allocated", "o4"),
    ]
    assert uow.commits == 1


def test_strict_clock_never_repeats_a_reading():
    clock = services.StrictClock()
    readings = [clock() for _ in range(1000)]
    assert all(a < b for a, b in zip(readings, readings[1:], strict=False))


# -- the property: a bulk upsert is the rows applied one by one ---------------------

references = st.sampled_from(["b1", "b2", "b3", "b4"])
skus = st.sampled_from(["RED", "BLUE"])


def build(stored, lowering) -> list[Product]:
    products = []
    for sku, (batches, lines) in stored.items():
        p = product(sku, *batches)
        for n, qty in enumerate(lines):
            try:
                p.allocate(OrderLine(f"{sku}-o{n}", sku, qty), now=T0 + timedelta(minutes=n))
            except OutOfStock:  # not recorded, as through the API
                pass
        for ref, qty in lowering:
            if any(b.reference == ref for b in p.batches):
                p.change_batch(ref, purchased_quantity=qty, now=T0 + timedelta(hours=1))
        p.events.clear()
        products.append(p)
    return products


row_values = st.tuples(
    st.sampled_from(["b1", "b2", "b3", "n1", "n2", "n3"]),
    st.integers(0, 15),
    st.sampled_from([None, date(2031, 1, 1), date(2030, 6, 1)]),
)


@settings(max_examples=150, deadline=None)
@given(
    stock=st.fixed_dictionaries(
        {
            "RED": st.tuples(
                st.lists(st.integers(0, 12), min_size=2, max_size=2),
                st.lists(st.integers(1, 6), max_size=4),
            ),
            "BLUE": st.tuples(
                st.lists(st.integers(0, 12), min_size=1, max_size=1),
                st.lists(st.integers(1, 6), max_size=4),
            ),
        }
    ),
    lowering=st.lists(st.tuples(references, st.integers(0, 6)), max_size=2),
    values=st.lists(row_values, max_size=6, unique_by=lambda v: v[0]),
    new_skus=st.lists(skus, min_size=3, max_size=3),
)
def test_upsert_batches_ends_where_the_rows_one_by_one_end(stock, lowering, values, new_skus):
    refs = {"RED": ["b1", "b2"], "BLUE": ["b3"]}
    stored = {
        sku: (list(zip(refs[sku], qtys, strict=True)), lines)
        for sku, (qtys, lines) in stock.items()
    }
    sku_of = {
        "b1": "RED",
        "b2": "RED",
        "b3": "BLUE",
        **dict(zip(["n1", "n2", "n3"], new_skus, strict=True)),
    }
    rows = [
        BatchRow(line, ref, sku_of[ref], qty, eta)
        for line, (ref, qty, eta) in enumerate(values, start=2)
    ]

    bulk = FakeUnitOfWork(build(stored, lowering))
    services.upsert_batches(rows=rows, uow=bulk)

    one_by_one = FakeUnitOfWork(build(stored, lowering))
    for row in rows:
        if one_by_one.products.sku_of_batch(row.reference) is None:
            services.add_batch(
                reference=row.reference,
                sku=row.sku,
                purchased_quantity=row.purchased_quantity,
                eta=row.eta,
                uow=one_by_one,
            )
        else:
            services.change_batch(
                reference=row.reference,
                purchased_quantity=row.purchased_quantity,
                eta=row.eta,
                uow=one_by_one,
            )

    def lines_of(uow):
        return {
            sku: sorted(
                (a.order_id, a.qty, a.status.value, tuple(a.parts))
                for a in uow.products.stored(sku).allocations
            )
            for sku in uow.products.skus
        }

    def batches_of(uow):
        return {
            sku: sorted(
                (b.reference, b.purchased_quantity, b.allocated_quantity, b.eta)
                for b in uow.products.stored(sku).batches
            )
            for sku in uow.products.skus
        }

    def events_by_sku(uow):
        out: dict[str, list] = {}
        for event in uow.products.published:
            out.setdefault(event.sku, []).append(event)
        return out

    assert batches_of(bulk) == batches_of(one_by_one)
    assert lines_of(bulk) == lines_of(one_by_one)
    assert events_by_sku(bulk) == events_by_sku(one_by_one)
