"""The allocation domain: batches, order lines and the Product aggregate.

Pure Python on purpose: nothing here imports Django, DRF or the app, so the
rules can be read, tested and reasoned about on their own.

A ``Product`` is the consistency boundary for one SKU. The persistence adapter
may hand it a *partial* view of the SKU: every batch that has stock available,
plus whatever batches and lines the use case touches (the batch being changed,
the lines on it, the backorders waiting). Used-up batches and the lines on
them carry no decision, so they need not be loaded; that is what keeps an
allocation as cheap after years of history as on day one. Batch totals
(``allocated_quantity``) are therefore stored numbers kept in step part by
part, never sums over whatever happens to be loaded.
"""

from __future__ import annotations

import enum
import operator
from collections.abc import Iterable, Set
from dataclasses import dataclass, field
from datetime import date, datetime

from domain import events
from domain.exceptions import (
    BatchNotFound,
    DuplicateBatch,
    InvalidQuantity,
    InvalidSku,
    LineConflict,
    LineNotFound,
    OutOfStock,
)
from domain.validation import MAX_QUANTITY, is_quantity

#: Rule 1, preference order: a SKU's batches in ascending order of these
#: fields, a batch without a value (no ``eta``: in stock) before every batch
#: with one. ``Batch.preference_key`` reads it, and so does the ORM's
#: ordering (``allocation.models.preference_order``).
PREFERENCE_ORDER = ("eta", "created_at", "reference")
_preference_values = operator.attrgetter(*PREFERENCE_ORDER)


class _Unset(enum.Enum):
    UNSET = "UNSET"


#: Marks "leave this field as it is" where ``None`` is a meaningful value (``eta``).
UNSET = _Unset.UNSET


class LineStatus(enum.StrEnum):
    ALLOCATED = "allocated"
    BACKORDERED = "backordered"


class BatchStatus(enum.StrEnum):
    IN_STOCK = "in_stock"
    INBOUND = "inbound"

    @classmethod
    def of(cls, eta: date | None) -> BatchStatus:
        """A batch with no eta is in the warehouse already; one with an eta is on its way."""
        return cls.IN_STOCK if eta is None else cls.INBOUND


@dataclass(frozen=True)
class OrderLine:
    """What a customer asked for: identity is (order_id, sku)."""

    order_id: str
    sku: str
    qty: int


@dataclass(frozen=True)
class Part:
    """A share of a line held on one batch."""

    batch_reference: str
    qty: int


class Batch:
    """Stock of one SKU; ``eta`` None means it is in the warehouse already."""

    def __init__(
        self,
        reference: str,
        sku: str,
        purchased_quantity: int,
        eta: date | None = None,
        *,
        created_at: datetime,
        allocated_quantity: int = 0,
    ) -> None:
        self.reference = reference
        self.sku = sku
        self.purchased_quantity = purchased_quantity
        self.eta = eta
        self.created_at = created_at
        self.allocated_quantity = allocated_quantity

    def __repr__(self) -> str:
        return (
            f"<Batch {self.reference} {self.sku} {self.allocated_quantity}/"
            f"{self.purchased_quantity} eta={self.eta}>"
        )

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Batch) and other.reference == self.reference

    def __hash__(self) -> int:
        return hash(self.reference)

    @property
    def available_quantity(self) -> int:
        return self.purchased_quantity - self.allocated_quantity

    @property
    def status(self) -> BatchStatus:
        return BatchStatus.of(self.eta)

    @property
    def preference_key(self) -> tuple[tuple[bool, object], ...]:
        """Rule 1 (``PREFERENCE_ORDER``): in stock first (oldest first), then inbound by eta."""
        # Each value as (present, value): a missing one, (False, None), sorts
        # before every present one and meets only another missing one, as equal.
        return tuple((value is not None, value) for value in _preference_values(self))


def _preference_key(batch: Batch) -> tuple[tuple[bool, object], ...]:
    return batch.preference_key


@dataclass(eq=False)
class Allocation:
    """A recorded order line and where it ships from.

    ``parts`` is empty for a backordered line. ``requested_at`` orders
    requests (oldest first, rules 8-9); ``allocated_at`` orders placements
    (most recent first when stock is reduced, rule 8).
    """

    line: OrderLine
    requested_at: datetime
    parts: list[Part] = field(default_factory=list)
    allocated_at: datetime | None = None

    @property
    def order_id(self) -> str:
        return self.line.order_id

    @property
    def sku(self) -> str:
        return self.line.sku

    @property
    def qty(self) -> int:
        return self.line.qty

    @property
    def status(self) -> LineStatus:
        return LineStatus.ALLOCATED if self.parts else LineStatus.BACKORDERED

    @property
    def request_key(self) -> tuple[datetime, str]:
        return (self.requested_at, self.order_id)

    @property
    def recency_key(self) -> tuple[datetime, datetime, str]:
        return (self.allocated_at or self.requested_at, self.requested_at, self.order_id)

    def holds_on(self, reference: str) -> bool:
        return any(part.batch_reference == reference for part in self.parts)

    def __repr__(self) -> str:
        return f"<Allocation {self.order_id} {self.sku} x{self.qty} {self.status} {self.parts}>"


@dataclass
class StockChange:
    """What a change of stock did to the SKU's lines.

    ``reallocated`` and ``backordered`` are the lines taken off a reduced or
    deleted batch (rule 8), split by whether they found a place again;
    ``served`` are backorders that the change allowed to be allocated (rule 9).
    """

    reallocated: list[Allocation] = field(default_factory=list)
    backordered: list[Allocation] = field(default_factory=list)
    served: list[Allocation] = field(default_factory=list)


class Product:
    """The aggregate for one SKU: every change to the SKU's stock goes through it.

    ``has_batches`` tells whether the SKU has any batch at all, loaded or not
    (the adapter knows; a used-up batch is not loaded but still counts).
    """

    def __init__(
        self,
        sku: str,
        batches: Iterable[Batch] = (),
        allocations: Iterable[Allocation] = (),
        *,
        has_batches: bool | None = None,
    ) -> None:
        self.sku = sku
        self._batches: dict[str, Batch] = {b.reference: b for b in batches}
        self._allocations: dict[str, Allocation] = {a.order_id: a for a in allocations}
        # None: the batches given are all the SKU has, so they alone tell (and a
        # product whose last batch is deleted has none again: InvalidSku).
        self._has_batches = bool(has_batches)
        # Rule 1's order of the loaded batches, sorted once and reused: a SKU
        # may have a thousand batches with stock, and re-sorting them for every
        # line would dominate a bulk run. The order depends only on which
        # batches are loaded and on their etas (created_at and reference never
        # change), so every method below that changes either clears it.
        self._ordered: list[Batch] | None = None
        # What changed, in order (SPEC 6): the repository writes these with
        # the change and empties the list. Refused requests, idempotent
        # repeats and changes that change nothing add none.
        self.events: list[events.Event] = []

    def include(
        self, *, batches: Iterable[Batch] = (), allocations: Iterable[Allocation] = ()
    ) -> None:
        """Make more of the SKU's stored state known (adapters load lazily)."""
        for batch in batches:
            if batch.reference not in self._batches:
                self._batches[batch.reference] = batch
                self._ordered = None
        for allocation in allocations:
            self._allocations.setdefault(allocation.order_id, allocation)

    # -- reading -----------------------------------------------------------

    @property
    def batches(self) -> list[Batch]:
        """The loaded batches in preference order (rule 1)."""
        return list(self._preference_order())

    def _preference_order(self) -> list[Batch]:
        if self._ordered is None:
            self._ordered = sorted(self._batches.values(), key=_preference_key)
        return self._ordered

    @property
    def allocations(self) -> list[Allocation]:
        return sorted(self._allocations.values(), key=lambda a: a.request_key)

    @property
    def has_batches(self) -> bool:
        return self._has_batches or bool(self._batches)

    def batch(self, reference: str) -> Batch:
        try:
            return self._batches[reference]
        except KeyError:
            raise BatchNotFound(reference) from None

    def allocation(self, order_id: str) -> Allocation:
        try:
            return self._allocations[order_id]
        except KeyError:
            raise LineNotFound(order_id, self.sku) from None

    def get_allocation(self, order_id: str) -> Allocation | None:
        return self._allocations.get(order_id)

    @property
    def available_quantity(self) -> int:
        """Available stock of the SKU: every batch with any is loaded."""
        return sum(max(b.available_quantity, 0) for b in self._batches.values())

    # -- use cases ---------------------------------------------------------

    def allocate(self, line: OrderLine, *, now: datetime) -> tuple[Allocation, bool]:
        """Rules 2-4 and 6. Returns the allocation and whether it is new."""
        if line.sku != self.sku:
            raise ValueError(f"line for {line.sku!r} offered to product {self.sku!r}")
        _check_quantity("qty", line.qty, minimum=1)
        existing = self._allocations.get(line.order_id)
        if existing is not None:
            if existing.qty != line.qty:
                raise LineConflict(line.order_id, line.sku, existing.qty, line.qty)
            return existing, False
        if not self.has_batches:
            raise InvalidSku(line.sku)
        parts = self._choose_parts(line.qty)
        if parts is None:
            raise OutOfStock(line.sku, line.qty, self.available_quantity)
        allocation = Allocation(line=line, requested_at=now)
        self._allocations[line.order_id] = allocation
        self._hold(allocation, parts, now)
        self._allocated(allocation, previous_status=None)
        return allocation, True

    def deallocate(self, order_id: str, *, now: datetime) -> StockChange:
        """Rule 7: remove the line and its parts, then serve backorders."""
        allocation = self.allocation(order_id)
        previous = events.placement(allocation.parts)
        self._release(allocation)
        del self._allocations[order_id]
        self.events.append(
            events.LineDeallocated(self.sku, order_id, allocation.qty, previous_batches=previous)
        )
        return StockChange(served=self._serve_backorders(now))

    def add_batch(self, batch: Batch, *, now: datetime) -> StockChange:
        """A new batch of this SKU; its stock goes to backorders first (rule 9)."""
        if batch.sku != self.sku:
            raise ValueError(f"batch for {batch.sku!r} offered to product {self.sku!r}")
        if batch.reference in self._batches:
            raise DuplicateBatch(batch.reference)
        _check_quantity("purchased_quantity", batch.purchased_quantity, minimum=0)
        self._batches[batch.reference] = batch
        self._ordered = None
        self.events.append(
            events.BatchCreated(self.sku, batch.reference, batch.purchased_quantity, batch.eta)
        )
        return StockChange(served=self._serve_backorders(now))

    def change_batch(
        self,
        reference: str,
        *,
        purchased_quantity: int | None = None,
        eta: date | None | _Unset = UNSET,
        now: datetime,
    ) -> StockChange:
        """Rules 8-10: new quantity and/or eta for a batch."""
        batch = self.batch(reference)
        previous = (batch.purchased_quantity, batch.eta)
        taken: list[tuple[Allocation, events.Placement]] = []
        if purchased_quantity is not None:
            _check_quantity("purchased_quantity", purchased_quantity, minimum=0)
            taken = self._take_off(batch, fit_to=purchased_quantity)
            batch.purchased_quantity = purchased_quantity
        if eta is not UNSET:
            batch.eta = eta
            self._ordered = None
        if (batch.purchased_quantity, batch.eta) != previous:
            # First: the lines' events below are its consequences.
            self.events.append(
                events.BatchChanged(
                    self.sku,
                    reference,
                    batch.purchased_quantity,
                    batch.eta,
                    previous_purchased_quantity=previous[0],
                    previous_eta=previous[1],
                )
            )
        return self._replace(taken, now)

    def delete_batch(self, reference: str, *, now: datetime) -> StockChange:
        """Rule 8 with nothing left: every line on the batch is placed again."""
        batch = self.batch(reference)
        taken = self._take_off(batch, fit_to=0)
        del self._batches[reference]
        self._ordered = None
        self.events.append(events.BatchDeleted(self.sku, reference))
        return self._replace(taken, now)

    # -- mechanics ---------------------------------------------------------

    def _choose_parts(self, qty: int) -> list[Part] | None:
        """Rules 1-3: whole on the first batch that covers it, else split in order."""
        ordered = self._preference_order()
        # qty >= 1, so the first batch that covers it is also the first
        # candidate that does; stopping there avoids building the list.
        for batch in ordered:
            if batch.available_quantity >= qty:
                return [Part(batch.reference, qty)]
        candidates = [b for b in ordered if b.available_quantity > 0]
        if sum(b.available_quantity for b in candidates) < qty:
            return None
        parts: list[Part] = []
        remaining = qty
        for batch in candidates:
            take = min(batch.available_quantity, remaining)
            parts.append(Part(batch.reference, take))
            remaining -= take
            if remaining == 0:
                break
        return parts

    def _hold(self, allocation: Allocation, parts: list[Part], now: datetime) -> None:
        for part in parts:
            batch = self._batches[part.batch_reference]
            batch.allocated_quantity += part.qty
            # Rule 5 in the model itself; the database CHECK is the second line.
            if batch.allocated_quantity > batch.purchased_quantity:
                raise RuntimeError(f"{batch!r} would be over-allocated")
        allocation.parts = parts
        allocation.allocated_at = now

    def _release(self, allocation: Allocation) -> None:
        for part in allocation.parts:
            batch = self._batches.get(part.batch_reference)
            if batch is None:
                raise RuntimeError(
                    f"batch {part.batch_reference!r} of line {allocation.order_id!r} was not loaded"
                )
            batch.allocated_quantity -= part.qty
        allocation.parts = []

    def _allocated(self, allocation: Allocation, *, previous_status: str | None) -> None:
        self.events.append(
            events.LineAllocated(
                self.sku,
                allocation.order_id,
                allocation.qty,
                batches=events.placement(allocation.parts),
                previous_status=previous_status,
            )
        )

    def _take_off(self, batch: Batch, *, fit_to: int) -> list[tuple[Allocation, events.Placement]]:
        """Rule 8: lines off ``batch``, most recently allocated first, until it fits.

        Each with the parts it had, for its event."""
        on_batch = sorted(
            (a for a in self._allocations.values() if a.holds_on(batch.reference)),
            key=lambda a: a.recency_key,
            reverse=True,
        )
        taken = []
        for allocation in on_batch:
            if batch.allocated_quantity <= fit_to:
                break
            previous = events.placement(allocation.parts)
            self._release(allocation)
            taken.append((allocation, previous))
        if batch.allocated_quantity > fit_to:
            raise RuntimeError(f"lines on batch {batch.reference!r} were not all loaded")
        return taken

    def _replace(
        self, taken: list[tuple[Allocation, events.Placement]], now: datetime
    ) -> StockChange:
        """Rule 8: lines taken off go back, oldest request first, or wait as backorders."""
        change = StockChange()
        for allocation, previous in sorted(taken, key=lambda t: t[0].request_key):
            parts = self._choose_parts(allocation.qty)
            if parts is None:
                allocation.allocated_at = None
                change.backordered.append(allocation)
                self.events.append(
                    events.LineBackordered(
                        self.sku, allocation.order_id, allocation.qty, previous_batches=previous
                    )
                )
            else:
                self._hold(allocation, parts, now)
                change.reallocated.append(allocation)
                self.events.append(
                    events.LineMoved(
                        self.sku,
                        allocation.order_id,
                        allocation.qty,
                        batches=events.placement(allocation.parts),
                        previous_batches=previous,
                    )
                )
        # Taking lines off can free stock on other batches too (a split line
        # leaves them all): waiting lines get their chance (rule 9).
        just_backordered = {a.order_id for a in change.backordered}
        change.served = self._serve_backorders(now, skip=just_backordered)
        return change

    def _serve_backorders(self, now: datetime, skip: Set[str] = frozenset()) -> list[Allocation]:
        """Rule 9: backorders in request order, each one that fits."""
        served = []
        waiting = sorted(
            (
                a
                for a in self._allocations.values()
                if a.status is LineStatus.BACKORDERED and a.order_id not in skip
            ),
            key=lambda a: a.request_key,
        )
        for allocation in waiting:
            if self.available_quantity < allocation.qty:
                continue
            parts = self._choose_parts(allocation.qty)
            if parts is not None:
                self._hold(allocation, parts, now)
                served.append(allocation)
                self._allocated(allocation, previous_status=LineStatus.BACKORDERED.value)
        return served


@dataclass(frozen=True)
class Demand:
    """What new lines of one SKU ask for: their units in all, and the largest line's."""

    units: int
    largest: int

    @classmethod
    def per_sku(cls, lines: Iterable[OrderLine]) -> dict[str, Demand]:
        units: dict[str, int] = {}
        largest: dict[str, int] = {}
        for line in lines:
            units[line.sku] = units.get(line.sku, 0) + line.qty
            largest[line.sku] = max(largest.get(line.sku, 0), line.qty)
        return {sku: cls(units[sku], largest[sku]) for sku in units}

    def spare(self, batch: Batch) -> int:
        """The units ``batch`` holds beyond ``largest - 1``: what lines must take
        from it before no line of this demand finds it covering."""
        return max(batch.available_quantity - (self.largest - 1), 0)


def deciding_batches(batches: Iterable[Batch], demand: Demand) -> list[Batch]:
    """The batches that decide where new lines of ``demand`` go, one after another.

    Rules 1-4 look at a SKU's batches with stock in preference order. Take
    them until their ``demand.spare`` adds up to ``demand.units`` (all of
    them if it never does). Then, when a line of this demand comes, one of
    the taken batches still covers it whole: for none to, each would have to
    be down to ``largest - 1`` units or fewer, so the lines before would have
    taken at least ``units`` from them, yet they took at most ``units`` minus
    this line's qty. So the first batch that covers it is among them: no line
    is split beyond them, none is out of stock, and a ``Product`` holding
    these batches (and any others) places every line as with all of the
    SKU's batches. A bulk run need not load the thousand batches with stock a
    SKU may have.
    """
    ordered = sorted((b for b in batches if b.available_quantity > 0), key=_preference_key)
    spare = 0
    for position, batch in enumerate(ordered):
        spare += demand.spare(batch)
        if spare >= demand.units:
            return ordered[: position + 1]
    return ordered


def batch_rows_move_lines(*, backorders_waiting: bool, lowered_below_allocated: bool) -> bool:
    """Whether new batches and new quantities or etas for a SKU's batches can move any line.

    Rule 9 places backorders when stock appears: only if some are waiting.
    Rule 8 takes lines off a batch only when its quantity goes below what it
    has allocated. Rule 10: a new eta moves nothing. When neither holds,
    ``add_batch``/``change_batch`` would only store the rows' values (and say
    so in ``batch_created``/``batch_changed``), so a bulk load may write such
    rows as they are; otherwise they go through the ``Product``.
    """
    return backorders_waiting or lowered_below_allocated


def _check_quantity(name: str, value: int, *, minimum: int) -> None:
    if is_quantity(value, minimum=minimum):
        return
    if not isinstance(value, int) or isinstance(value, bool):
        raise TypeError(f"{name} must be an int")
    raise InvalidQuantity(name, value, minimum, MAX_QUANTITY)
