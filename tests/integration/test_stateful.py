"""Model-based test: random sequences of use cases against a small reference model.

Hypothesis drives the service layer (on the real database of the run, SQLite
or PostgreSQL) with creates, allocations, idempotent repeats, deallocations,
quantity changes up and down, eta changes and deletions over a few SKUs,
batches and orders. ``Reference`` below re-states SPEC section 1.1 as plainly
as possible, independent of ``domain.model``; after every step the service's
answer must equal the reference's, the stored state must equal the
reference's, every invariant ``check_stock`` verifies must hold, and replaying
the event log (the code ``replay_events --check`` runs) must rebuild exactly
the stored batches and lines (SPEC 6.3).

Bounded for CI: ``STATEFUL_EXAMPLES`` (default 40) sequences of up to
``STATEFUL_STEPS`` (default 30) steps, a few seconds per engine.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from datetime import date, datetime

import pytest
from django.db.models import Prefetch, Sum
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)

from allocation import models as orm
from allocation import selectors, services
from domain import exceptions as errors
from tests.factories import tick

pytestmark = pytest.mark.django_db

SKUS = ["CHAIR", "TABLE"]
REFERENCES = ["b1", "b2", "b3", "b4"]
ORDERS = ["o1", "o2", "o3", "o4", "o5", "o6", "o7"]
ETAS = [None, None, date(2026, 3, 1), date(2026, 3, 2), date(2026, 3, 9)]

skus = st.sampled_from(SKUS)
references = st.sampled_from(REFERENCES)
orders = st.sampled_from(ORDERS)
etas = st.sampled_from(ETAS)
purchased = st.integers(min_value=0, max_value=12)
qtys = st.integers(min_value=1, max_value=5)


# -- the reference model ---------------------------------------------------------


@dataclass
class RefBatch:
    sku: str
    purchased: int
    eta: date | None
    created: int
    allocated: int = 0

    @property
    def available(self) -> int:
        return self.purchased - self.allocated


@dataclass
class RefLine:
    qty: int
    requested: int
    parts: dict[str, int] = field(default_factory=dict)  # batch reference -> qty
    allocated: int | None = None  # clock of the last placement; None = backordered


@dataclass
class RefChange:
    reallocated: list[str] = field(default_factory=list)
    backordered: list[str] = field(default_factory=list)
    served: list[str] = field(default_factory=list)


class Reference:
    """SPEC 1.1, rule by rule, over plain dicts. Times are integer clock ticks."""

    def __init__(self) -> None:
        self.batches: dict[str, RefBatch] = {}
        self.lines: dict[tuple[str, str], RefLine] = {}

    # rule 1
    def preference(self, sku: str) -> list[str]:
        def key(ref):
            b = self.batches[ref]
            return (b.eta is not None, b.eta or date.min, b.created, ref)

        return sorted((r for r, b in self.batches.items() if b.sku == sku), key=key)

    def available(self, sku: str) -> int:
        return sum(self.batches[r].available for r in self.preference(sku))

    # rules 2-4
    def choose(self, sku: str, qty: int) -> list[tuple[str, int]] | None:
        refs = [r for r in self.preference(sku) if self.batches[r].available > 0]
        for ref in refs:
            if self.batches[ref].available >= qty:
                return [(ref, qty)]
        if sum(self.batches[r].available for r in refs) < qty:
            return None
        parts, remaining = [], qty
        for ref in refs:
            take = min(self.batches[ref].available, remaining)
            parts.append((ref, take))
            remaining -= take
            if not remaining:
                break
        return parts

    def hold(self, line: RefLine, parts: list[tuple[str, int]], now: int) -> None:
        for ref, qty in parts:
            self.batches[ref].allocated += qty
        line.parts = dict(parts)
        line.allocated = now

    def release(self, line: RefLine) -> None:
        for ref, qty in line.parts.items():
            self.batches[ref].allocated -= qty
        line.parts = {}
        line.allocated = None

    def lines_of(self, sku: str) -> dict[str, RefLine]:
        return {o: line for (o, s), line in self.lines.items() if s == sku}

    # rule 9
    def serve_backorders(self, sku: str, now: int, skip=()) -> list[str]:
        served = []
        waiting = sorted(
            (line.requested, o)
            for o, line in self.lines_of(sku).items()
            if not line.parts and o not in skip
        )
        for _, order in waiting:
            line = self.lines[order, sku]
            parts = self.choose(sku, line.qty)
            if parts is not None:
                self.hold(line, parts, now)
                served.append(order)
        return served

    # rule 8
    def take_off_and_replace(self, ref: str, fit_to: int, now: int, delete: bool) -> RefChange:
        batch = self.batches[ref]
        sku = batch.sku
        on_batch = sorted(
            (
                (line.allocated, line.requested, o)
                for o, line in self.lines_of(sku).items()
                if ref in line.parts
            ),
            reverse=True,
        )
        taken = []
        for _, _, order in on_batch:
            if batch.allocated <= fit_to:
                break
            self.release(self.lines[order, sku])
            taken.append(order)
        if delete:
            del self.batches[ref]
        else:
            batch.purchased = fit_to
        change = RefChange()
        for order in sorted(taken, key=lambda o: (self.lines[o, sku].requested, o)):
            line = self.lines[order, sku]
            parts = self.choose(sku, line.qty)
            if parts is None:
                change.backordered.append(order)
            else:
                self.hold(line, parts, now)
                change.reallocated.append(order)
        change.served = self.serve_backorders(sku, now, skip=set(change.backordered))
        return change

    # -- use cases: each returns what the service should, or raises the same error type

    def allocate(self, order: str, sku: str, qty: int, now: int):
        existing = self.lines.get((order, sku))
        if existing is not None:
            if existing.qty != qty:
                raise errors.LineConflict(order, sku, existing.qty, qty)
            return existing, False
        if not self.preference(sku):
            raise errors.InvalidSku(sku)
        parts = self.choose(sku, qty)
        if parts is None:
            raise errors.OutOfStock(sku, qty, self.available(sku))
        line = self.lines[order, sku] = RefLine(qty, requested=now)
        self.hold(line, parts, now)
        return line, True

    def deallocate(self, order: str, sku: str, now: int) -> RefChange:
        line = self.lines.get((order, sku))
        if line is None:
            raise errors.LineNotFound(order, sku)
        self.release(line)
        del self.lines[order, sku]
        return RefChange(served=self.serve_backorders(sku, now))

    def add_batch(self, ref: str, sku: str, qty: int, eta, now: int) -> RefChange:
        if ref in self.batches:
            raise errors.DuplicateBatch(ref)
        self.batches[ref] = RefBatch(sku, qty, eta, created=now)
        return RefChange(served=self.serve_backorders(sku, now))

    def change_quantity(self, ref: str, qty: int, now: int) -> RefChange:
        if ref not in self.batches:
            raise errors.BatchNotFound(ref)
        return self.take_off_and_replace(ref, qty, now, delete=False)

    def change_eta(self, ref: str, eta, now: int) -> RefChange:
        # Rule 10: preference changes for later allocations only.
        if ref not in self.batches:
            raise errors.BatchNotFound(ref)
        self.batches[ref].eta = eta
        return RefChange(served=self.serve_backorders(self.batches[ref].sku, now))

    def delete_batch(self, ref: str, now: int) -> RefChange:
        if ref not in self.batches:
            raise errors.BatchNotFound(ref)
        return self.take_off_and_replace(ref, 0, now, delete=True)


# -- the machine -------------------------------------------------------------------


class Clock:
    """What ``services._now`` returns during the test (see ``controlled_clock``)."""

    now: datetime = tick(0)


def outcome_or_error(call):
    """(result, None), or (None, the error's type and message: its data) for a call."""
    try:
        return call(), None
    except errors.DomainError as error:
        return None, (type(error), str(error))


def change_ids(change) -> RefChange:
    return RefChange(
        reallocated=[a.order_id for a in change.reallocated],
        backordered=[a.order_id for a in change.backordered],
        served=[a.order_id for a in change.served],
    )


class ServiceMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        # Each example starts from an empty store (all inside the test's transaction),
        # its event log included: the replay below reads the whole log.
        orm.Event.objects.all().delete()
        orm.Allocation.objects.all().delete()
        orm.OrderLine.objects.all().delete()
        orm.Batch.objects.all().delete()
        orm.Product.objects.all().delete()
        self.ref = Reference()
        self.clock = 0

    def tick(self) -> int:
        """Advance the clock the services read, so timestamps are distinct and known."""
        self.clock += 1
        Clock.now = tick(self.clock)
        return self.clock

    def both(self, service_call, reference_call):
        now = self.tick()
        got, got_error = outcome_or_error(service_call)
        want, want_error = outcome_or_error(lambda: reference_call(now))
        assert got_error == want_error, f"service raised {got_error}, reference {want_error}"
        return got, want

    def check_change(self, got, want: RefChange) -> None:
        if got is not None:
            assert change_ids(got) == want

    # -- rules -------------------------------------------------------------------

    @initialize(
        stock=st.lists(st.tuples(skus, st.integers(3, 12), etas), min_size=1, max_size=3),
        lines=st.lists(st.tuples(orders, skus, qtys), max_size=5),
    )
    def start_with_stock_and_lines(self, stock, lines):
        # Most sequences begin with stock and orders on it, so that reductions,
        # deletions and backorders meet lines (rules 8-9) within a few steps.
        for ref, (sku, qty, eta) in zip(REFERENCES, stock, strict=False):
            self.create_batch(ref, sku, qty, eta)
        for order, sku, qty in lines:
            self.allocate(order, sku, qty)

    @rule(ref=references, sku=skus, qty=purchased, eta=etas)
    def create_batch(self, ref, sku, qty, eta):
        got, want = self.both(
            lambda: services.add_batch(reference=ref, sku=sku, purchased_quantity=qty, eta=eta),
            lambda now: self.ref.add_batch(ref, sku, qty, eta, now),
        )
        if got is not None:
            assert (got.batch.reference, got.batch.sku, got.batch.purchased_quantity) == (
                ref,
                sku,
                qty,
            )
            self.check_change(got.change, want)

    @rule(order=orders, sku=skus, qty=qtys)
    def allocate(self, order, sku, qty):
        got, want = self.both(
            lambda: services.allocate(order_id=order, sku=sku, qty=qty),
            lambda now: self.ref.allocate(order, sku, qty, now),
        )
        if got is not None:
            line, created = want
            assert got.created is created
            assert got.allocation.qty == line.qty
            parts = [(p.batch_reference, p.qty) for p in got.allocation.parts]
            if created:
                # Rules 1-3: the parts, in the preference order they were taken in.
                assert parts == list(line.parts.items())
            else:
                assert dict(parts) == line.parts

    @precondition(lambda self: self.ref.lines)
    @rule(data=st.data(), same_qty=st.booleans())
    def repeat_allocate(self, data, same_qty):
        order, sku = data.draw(st.sampled_from(sorted(self.ref.lines)), label="line")
        qty = self.ref.lines[order, sku].qty + (0 if same_qty else 1)
        self.allocate(order, sku, qty)

    @rule(data=st.data(), order=orders, sku=skus)
    def deallocate(self, data, order, sku):
        # Mostly lines that exist; sometimes one that does not (404).
        if self.ref.lines and data.draw(st.booleans(), label="existing"):
            order, sku = data.draw(st.sampled_from(sorted(self.ref.lines)), label="line")
        got, want = self.both(
            lambda: services.deallocate(order_id=order, sku=sku),
            lambda now: self.ref.deallocate(order, sku, now),
        )
        self.check_change(got, want)

    def change_quantity(self, ref, qty):
        got, want = self.both(
            lambda: services.change_batch(reference=ref, purchased_quantity=qty),
            lambda now: self.ref.change_quantity(ref, qty, now),
        )
        if got is not None:
            assert got.batch.purchased_quantity == qty
            self.check_change(got.change, want)

    @precondition(lambda self: self.ref.batches)
    @rule(data=st.data(), more=st.integers(min_value=1, max_value=6))
    def raise_quantity(self, data, more):
        ref = data.draw(st.sampled_from(sorted(self.ref.batches)), label="batch")
        self.change_quantity(ref, self.ref.batches[ref].purchased + more)

    @precondition(lambda self: any(b.purchased for b in self.ref.batches.values()))
    @rule(data=st.data())
    def lower_quantity(self, data):
        # Often below what is allocated on the batch, so lines are taken off (rule 8).
        ref = data.draw(
            st.sampled_from(sorted(r for r, b in self.ref.batches.items() if b.purchased)),
            label="batch",
        )
        batch = self.ref.batches[ref]
        if batch.allocated:
            # Just below what is held, so some lines stay and some go.
            qty = batch.allocated - data.draw(st.integers(1, batch.allocated), label="below")
        else:
            qty = data.draw(st.integers(0, batch.purchased - 1), label="qty")
        self.change_quantity(ref, qty)

    @rule(ref=references, qty=purchased)
    def set_quantity_of_any_reference(self, ref, qty):
        # Unknown references too: BatchNotFound from both.
        self.change_quantity(ref, qty)

    @rule(ref=references, eta=etas)
    def change_eta(self, ref, eta):
        got, want = self.both(
            lambda: services.change_batch(reference=ref, eta=eta),
            lambda now: self.ref.change_eta(ref, eta, now),
        )
        if got is not None:
            assert got.batch.eta == eta
            self.check_change(got.change, want)

    @rule(ref=references)
    def delete_batch(self, ref):
        got, want = self.both(
            lambda: services.delete_batch(reference=ref),
            lambda now: self.ref.delete_batch(ref, now),
        )
        if got is not None:
            assert got.batch is None
            self.check_change(got.change, want)

    # -- after every step ------------------------------------------------------------

    @invariant()
    def stored_state_equals_the_reference_and_invariants_hold(self):
        batches = list(orm.Batch.objects.annotate(held=Sum("parts__qty")))
        parts = orm.Allocation.objects.select_related("batch")
        lines = list(orm.OrderLine.objects.prefetch_related(Prefetch("parts", queryset=parts)))

        assert {
            b.reference: (b.product_id, b.purchased_quantity, b.allocated_quantity, b.eta)
            for b in batches
        } == {ref: (b.sku, b.purchased, b.allocated, b.eta) for ref, b in self.ref.batches.items()}
        assert {
            (line.order_id, line.product_id): (
                line.qty,
                line.status,
                {p.batch.reference: p.qty for p in line.parts.all()},
                line.requested_at,
                line.allocated_at,
            )
            for line in lines
        } == {
            key: (
                line.qty,
                "allocated" if line.parts else "backordered",
                line.parts,
                tick(line.requested),
                tick(line.allocated) if line.allocated is not None else None,
            )
            for key, line in self.ref.lines.items()
        }

        # The SPEC's invariants (what check_stock verifies), on the stored rows.
        for batch in batches:
            # Rule 5, and the stored total equals the sum it stands for.
            assert 0 <= batch.allocated_quantity <= batch.purchased_quantity, batch
            assert batch.allocated_quantity == (batch.held or 0), batch
        for line in lines:
            held = list(line.parts.all())
            if line.status == "allocated":
                assert held and sum(p.qty for p in held) == line.qty, line
                assert {p.batch.product_id for p in held} == {line.product_id}, line
            else:
                assert line.status == "backordered" and held == [], line
                # Rule 9: a waiting line does not fit the SKU's free stock.
                assert line.qty > self.ref.available(line.product_id), line

    @invariant()
    def replaying_the_event_log_gives_the_stored_state(self):
        # SPEC 6: every change commits with its events, so the log alone
        # rebuilds every batch and line (and numbers each SKU's events 1, 2, 3...).
        assert list(selectors.replay_differences(selectors.ReplayResult())) == []


@pytest.fixture
def controlled_clock(monkeypatch):
    monkeypatch.setattr(services, "_now", lambda: Clock.now)


def test_services_match_the_reference_model_for_any_sequence(controlled_clock):
    run_state_machine_as_test(
        ServiceMachine,
        settings=settings(
            max_examples=int(os.environ.get("STATEFUL_EXAMPLES", 40)),
            stateful_step_count=int(os.environ.get("STATEFUL_STEPS", 30)),
            deadline=None,
            database=None,
            suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
        ),
    )


def changed_behind_the_services(change: str) -> None:
    """Rows or events changed with the ORM, as no use case would."""
    if change == "part moved":
        b2 = orm.Batch.objects.get(reference="b2")
        orm.Allocation.objects.filter(line__order_id="o1").update(batch=b2)
    elif change == "eta changed":
        orm.Batch.objects.filter(reference="b2").update(eta=date(2026, 3, 9))
    elif change == "event lost":
        orm.Event.objects.filter(type="batch_created", data__reference="b2").delete()


@pytest.mark.parametrize(
    ("change", "differences"),
    [
        (
            "part moved",
            ["CHAIR: line o1: stored (3, [('b2', 3)]), events say (3, [('b1', 3)])"],
        ),
        (
            "eta changed",
            ["CHAIR: batch b2: stored (5, '2026-03-09'), events say (5, '2026-03-01')"],
        ),
        (
            "event lost",
            [
                "CHAIR: event sku_seq 3 where 2 was expected",
                "CHAIR: batch b2: stored (5, '2026-03-01'), events say nothing",
            ],
        ),
    ],
)
def test_the_replay_check_fails_on_state_the_log_does_not_explain(
    controlled_clock, change, differences
):
    machine = ServiceMachine()
    machine.create_batch("b1", "CHAIR", 5, None)
    machine.create_batch("b2", "CHAIR", 5, date(2026, 3, 1))
    machine.allocate("o1", "CHAIR", 3)
    machine.replaying_the_event_log_gives_the_stored_state()

    changed_behind_the_services(change)

    assert list(selectors.replay_differences(selectors.ReplayResult())) == differences
    with pytest.raises(AssertionError):
        machine.replaying_the_event_log_gives_the_stored_state()
