"""Hypothesis: random sequences of stock operations never break the Product's invariants.

The state machine drives one fully loaded Product through adds, allocations,
deallocations, quantity and eta changes and deletions, checks each step's
outcome against the rules, and checks every invariant after every step.
"""

from datetime import date

from hypothesis import example, given, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from domain.exceptions import InvalidSku, LineConflict, OutOfStock
from domain.model import (
    Allocation,
    Batch,
    Demand,
    LineStatus,
    OrderLine,
    Part,
    Product,
    StockChange,
    deciding_batches,
)
from tests.factories import tick

SKU = "RED-CHAIR"

quantities = st.integers(min_value=0, max_value=12)
line_quantities = st.integers(min_value=1, max_value=10)
# A few etas only, so batches often share one and the tie-breaks are exercised.
etas = st.none() | st.sampled_from([date(2027, 1, 1), date(2027, 1, 2), date(2027, 1, 3)])
order_ids = st.sampled_from([f"o{n}" for n in range(8)])


def expected_parts(batches: list[Batch], qty: int) -> list[Part] | None:
    """Rules 1-4 restated: whole on the first batch that covers it, else split in order."""
    for batch in batches:
        if batch.available_quantity >= qty:
            return [Part(batch.reference, qty)]
    if sum(b.available_quantity for b in batches) < qty:
        return None
    parts, remaining = [], qty
    for batch in batches:
        take = min(batch.available_quantity, remaining)
        if take:
            parts.append(Part(batch.reference, take))
            remaining -= take
    return parts


def holding(parts_by_line: dict[str, list[Part]], reference: str) -> set[str]:
    """The lines with a part on ``reference``."""
    return {
        order_id
        for order_id, parts in parts_by_line.items()
        if any(p.batch_reference == reference for p in parts)
    }


class ProductMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.product = Product(SKU)
        self.clock = 0
        self.batch_count = 0
        # Every line that exists: only deallocate may remove one.
        self.expected_lines: dict[str, int] = {}

    def now(self):
        self.clock += 1
        return tick(self.clock)

    def parts_by_line(self) -> dict[str, list[Part]]:
        return {a.order_id: list(a.parts) for a in self.product.allocations}

    def assert_in_preference_order(self, allocations: list[Allocation]) -> None:
        rank = {b.reference: i for i, b in enumerate(self.product.batches)}
        for allocation in allocations:
            positions = [rank[p.batch_reference] for p in allocation.parts]
            assert positions == sorted(positions), allocation
            assert len(set(positions)) == len(positions), allocation

    def assert_change_is_consistent(self, change: StockChange, before: dict[str, list[Part]]):
        """Lines reported moved are the only ones that moved, and each got its due."""
        moved = change.reallocated + change.backordered + change.served
        assert len({a.order_id for a in moved}) == len(moved)
        for allocation in change.reallocated + change.served:
            assert allocation.status is LineStatus.ALLOCATED
            assert allocation.allocated_at == tick(self.clock)
        for allocation in change.backordered:
            assert allocation.status is LineStatus.BACKORDERED
        for allocation in change.served:
            assert before[allocation.order_id] == []
        self.assert_in_preference_order(change.reallocated + change.served)
        reported = {a.order_id for a in moved}
        for order_id, parts in self.parts_by_line().items():
            if order_id not in reported and order_id in before:
                assert parts == before[order_id], order_id

    # -- operations ------------------------------------------------------------------------

    @rule(qty=quantities, eta=etas)
    def add_batch(self, qty, eta):
        now = self.now()
        reference = f"b{self.batch_count:02d}"
        self.batch_count += 1
        before = self.parts_by_line()

        change = self.product.add_batch(Batch(reference, SKU, qty, eta, created_at=now), now=now)

        assert (change.reallocated, change.backordered) == ([], [])
        self.assert_change_is_consistent(change, before)

    @rule(order_id=order_ids, qty=line_quantities)
    def allocate(self, order_id, qty):
        now = self.now()
        existing = self.product.get_allocation(order_id)
        before = self.parts_by_line()
        stock_before = {b.reference: b.allocated_quantity for b in self.product.batches}
        expected = expected_parts(self.product.batches, qty)
        available = sum(b.available_quantity for b in self.product.batches)

        try:
            allocation, created = self.product.allocate(OrderLine(order_id, SKU, qty), now=now)
        except InvalidSku:
            assert existing is None and self.product.batches == []
        except OutOfStock as error:
            assert existing is None and expected is None and self.product.batches != []
            assert (error.requested, error.available) == (qty, available)
        except LineConflict:
            assert existing is not None and existing.qty != qty
        else:
            if created:
                assert existing is None
                assert allocation.parts == expected
                self.assert_in_preference_order([allocation])
                self.expected_lines[order_id] = qty
            else:
                assert allocation is existing and existing.qty == qty
        if self.product.get_allocation(order_id) is not existing:
            return
        # Refused or repeated: nothing at all changed.
        assert self.parts_by_line() == before
        assert {b.reference: b.allocated_quantity for b in self.product.batches} == stock_before

    @precondition(lambda self: self.expected_lines)
    @rule(data=st.data())
    def deallocate(self, data):
        order_id = data.draw(st.sampled_from(sorted(self.expected_lines)))
        now = self.now()
        before = self.parts_by_line()

        change = self.product.deallocate(order_id, now=now)

        del self.expected_lines[order_id]
        assert self.product.get_allocation(order_id) is None
        assert (change.reallocated, change.backordered) == ([], [])
        del before[order_id]
        self.assert_change_is_consistent(change, before)

    @precondition(lambda self: self.product.batches)
    @rule(data=st.data(), qty=quantities)
    def change_quantity(self, data, qty):
        reference = data.draw(st.sampled_from([b.reference for b in self.product.batches]))
        now = self.now()
        before = self.parts_by_line()
        held_before = holding(before, reference)

        change = self.product.change_batch(reference, purchased_quantity=qty, now=now)

        taken = {a.order_id for a in change.reallocated + change.backordered}
        assert taken <= held_before
        assert self.product.batch(reference).purchased_quantity == qty
        self.assert_change_is_consistent(change, before)

    @precondition(lambda self: self.product.batches)
    @rule(data=st.data(), eta=etas)
    def change_eta(self, data, eta):
        reference = data.draw(st.sampled_from([b.reference for b in self.product.batches]))
        now = self.now()
        before = self.parts_by_line()

        change = self.product.change_batch(reference, eta=eta, now=now)

        # Rule 10: existing allocations stay where they are.
        assert (change.reallocated, change.backordered, change.served) == ([], [], [])
        assert self.parts_by_line() == before
        assert self.product.batch(reference).eta == eta

    @precondition(lambda self: self.product.batches)
    @rule(data=st.data())
    def delete_batch(self, data):
        reference = data.draw(st.sampled_from([b.reference for b in self.product.batches]))
        now = self.now()
        before = self.parts_by_line()
        held_before = holding(before, reference)

        change = self.product.delete_batch(reference, now=now)

        assert {a.order_id for a in change.reallocated + change.backordered} == held_before
        assert reference not in {b.reference for b in self.product.batches}
        self.assert_change_is_consistent(change, before)

    # -- invariants ------------------------------------------------------------------------

    @invariant()
    def no_batch_is_over_or_under_allocated(self):
        for batch in self.product.batches:
            assert 0 <= batch.allocated_quantity <= batch.purchased_quantity, batch

    @invariant()
    def batch_totals_equal_the_parts_on_them(self):
        totals = {b.reference: 0 for b in self.product.batches}
        for allocation in self.product.allocations:
            for part in allocation.parts:
                totals[part.batch_reference] += part.qty  # KeyError: part on a missing batch
        assert totals == {b.reference: b.allocated_quantity for b in self.product.batches}

    @invariant()
    def allocated_lines_are_covered_exactly_and_backorders_hold_nothing(self):
        for allocation in self.product.allocations:
            if allocation.status is LineStatus.ALLOCATED:
                assert sum(p.qty for p in allocation.parts) == allocation.qty
                assert all(p.qty > 0 for p in allocation.parts)
                assert allocation.allocated_at is not None
            else:
                assert allocation.parts == []
                assert allocation.allocated_at is None

    @invariant()
    def no_line_disappears_except_by_deallocate(self):
        assert {a.order_id: a.qty for a in self.product.allocations} == self.expected_lines

    @invariant()
    def no_backorder_waits_while_stock_could_cover_it(self):
        # Rule 9: after every step each waiting line that fits has been served.
        available = self.product.available_quantity
        for allocation in self.product.allocations:
            if allocation.status is LineStatus.BACKORDERED:
                assert allocation.qty > available, allocation


ProductMachine.TestCase.settings = settings(max_examples=200, stateful_step_count=30, deadline=None)
TestProductInvariants = ProductMachine.TestCase


# -- deciding_batches: the partial view a bulk allocation loads ---------------

batch_specs = st.lists(
    st.tuples(st.integers(0, 12), st.integers(0, 12), etas, st.integers(0, 5)),
    max_size=10,
)


def batches_from(specs) -> list[Batch]:
    """Fresh batches from (purchased, allocated, eta, created) specs, allocated capped."""
    return [
        Batch(
            f"b{n}",
            SKU,
            purchased,
            eta,
            created_at=tick(created),
            allocated_quantity=min(allocated, purchased),
        )
        for n, (purchased, allocated, eta, created) in enumerate(specs)
    ]


def outcomes(product: Product, lines: list[OrderLine]) -> list[object]:
    """Each line's placement, or the refusal it got, in the order given."""
    result: list[object] = []
    for n, line in enumerate(lines):
        try:
            allocation, created = product.allocate(line, now=tick(100 + n))
        except (InvalidSku, OutOfStock, LineConflict) as refused:
            result.append(refused.code)
        else:
            result.append((created, list(allocation.parts)))
    return result


@settings(max_examples=400, deadline=None)
# The bound is tight: with one spare unit more per batch, b0 and b1 (3 + 1 >= 4)
# would seem enough, and o1 would be split over them instead of going whole to b2.
@example(
    specs=[(3, 0, None, 0), (1, 0, None, 1), (10, 0, None, 2)],
    lines=[("o0", 2), ("o1", 2)],
    extra=[],
)
@given(
    specs=batch_specs,
    lines=st.lists(st.tuples(order_ids, line_quantities), max_size=8),
    extra=st.lists(st.integers(0, 9), max_size=3),
)
def test_the_deciding_batches_place_every_line_as_all_batches_do(specs, lines, extra):
    order_lines = [OrderLine(order_id, SKU, qty) for order_id, qty in lines]
    demand = Demand.per_sku(order_lines).get(SKU, Demand(0, 1))
    every = batches_from(specs)
    deciding = deciding_batches(batches_from(specs), demand)
    # Any further batches may come along (a line's own batches, say): same outcome.
    chosen = {b.reference for b in deciding}
    more = [
        b
        for b in batches_from(specs)
        if b.reference not in chosen and int(b.reference[1:]) in extra
    ]

    # The adapter says whether the SKU has batches at all, loaded or not.
    partial = Product(SKU, deciding + more, has_batches=bool(every))
    assert outcomes(partial, order_lines) == outcomes(Product(SKU, every), order_lines)


def test_the_deciding_batches_end_where_their_spare_units_cover_the_demand():
    in_stock_old = Batch("a", SKU, 5, created_at=tick(1))
    used_up = Batch("b", SKU, 4, created_at=tick(2), allocated_quantity=4)
    in_stock_big = Batch("c", SKU, 20, created_at=tick(3))
    inbound = Batch("d", SKU, 50, date(2027, 1, 1), created_at=tick(0))
    batches = [inbound, in_stock_big, used_up, in_stock_old]

    # Lines of 1 unit: every unit is spare.
    assert deciding_batches(batches, Demand(units=5, largest=1)) == [in_stock_old]
    assert deciding_batches(batches, Demand(units=6, largest=1)) == [in_stock_old, in_stock_big]
    # Lines of up to 3 units: a batch's last 2 units may be too few for one.
    assert deciding_batches(batches, Demand(units=3, largest=3)) == [in_stock_old]
    assert deciding_batches(batches, Demand(units=4, largest=3)) == [in_stock_old, in_stock_big]
    assert deciding_batches(batches, Demand(units=21, largest=3)) == [in_stock_old, in_stock_big]
    assert deciding_batches(batches, Demand(units=22, largest=3)) == [
        in_stock_old,
        in_stock_big,
        inbound,
    ]
    # Never enough: every batch with stock decides (a split, or out of stock).
    assert deciding_batches(batches, Demand(units=200, largest=3)) == [
        in_stock_old,
        in_stock_big,
        inbound,
    ]
    assert deciding_batches([used_up], Demand(units=1, largest=1)) == []


def test_demand_per_sku_adds_up_the_units_and_keeps_the_largest_line():
    lines = [OrderLine("o1", "A", 3), OrderLine("o2", "B", 1), OrderLine("o3", "A", 7)]
    assert Demand.per_sku(lines) == {"A": Demand(units=10, largest=7), "B": Demand(1, 1)}
    assert Demand(units=10, largest=7).spare(Batch("x", "A", 9, created_at=tick(1))) == 3
    assert Demand(units=10, largest=7).spare(Batch("x", "A", 5, created_at=tick(1))) == 0
