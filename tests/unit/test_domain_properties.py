"""Hypothesis: random sequences of stock operations never break the Product's invariants.

The state machine drives one fully loaded Product through adds, allocations,
deallocations, quantity and eta changes and deletions, checks each step's
outcome against the rules, and checks every invariant after every step.
"""

from datetime import date

from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from domain.exceptions import InvalidSku, LineConflict, OutOfStock
from domain.model import Allocation, Batch, LineStatus, OrderLine, Part, Product, StockChange
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
