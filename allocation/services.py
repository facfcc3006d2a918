"""Use cases. Each is one unit of work; API, admin and commands all call these.

Functions are keyword-only, named with the domain's verbs, and return domain
objects (never model instances). Domain errors propagate unchanged; the API's
exception handler and the commands translate them for their audience.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta

from django.utils import timezone

from allocation.repository import BatchRow, RowProblem
from allocation.unit_of_work import AbstractUnitOfWork, DjangoUnitOfWork
from domain import orders
from domain.exceptions import (
    BatchNotFound,
    DuplicateBatch,
    InvalidSku,
    LineConflict,
    LineNotFound,
    OrderNotFound,
    OutOfStock,
    SkuChange,
)
from domain.model import (
    UNSET,
    Allocation,
    Batch,
    OrderLine,
    Product,
    StockChange,
    _Unset,
    batch_rows_move_lines,
)
from domain.orders import OrderAllocation


@dataclass(frozen=True)
class AllocationOutcome:
    allocation: Allocation
    created: bool


@dataclass(frozen=True)
class BatchOutcome:
    """The batch after the operation (None once deleted) and what it did to lines."""

    batch: Batch | None
    change: StockChange = field(default_factory=StockChange)

    @property
    def reallocated(self) -> list[Allocation]:
        return self.change.reallocated

    @property
    def backordered(self) -> list[Allocation]:
        return self.change.backordered

    @property
    def served(self) -> list[Allocation]:
        return self.change.served


def _now() -> datetime:
    return timezone.now()


def allocate(
    *, order_id: str, sku: str, qty: int, uow: AbstractUnitOfWork | None = None
) -> AllocationOutcome:
    """Rules 1-6: place a line on the SKU's batches, or say why not."""
    uow = uow or DjangoUnitOfWork()

    def use_case() -> AllocationOutcome:
        with uow:
            product = uow.products.get(sku, order_id=order_id)
            if product is None:
                raise InvalidSku(sku)
            allocation, created = product.allocate(OrderLine(order_id, sku, qty), now=_now())
            if created:
                uow.commit()
            return AllocationOutcome(allocation, created)

    return uow.run(use_case)


def deallocate(*, order_id: str, sku: str, uow: AbstractUnitOfWork | None = None) -> StockChange:
    """Rule 7: remove the line; freed stock goes to backorders (rule 9)."""
    uow = uow or DjangoUnitOfWork()

    def use_case() -> StockChange:
        with uow:
            product = uow.products.get(sku, order_id=order_id, backorders=True)
            if product is None:
                raise LineNotFound(order_id, sku)
            change = product.deallocate(order_id, now=_now())
            uow.commit()
            return change

    return uow.run(use_case)


def add_batch(
    *,
    reference: str,
    sku: str,
    purchased_quantity: int,
    eta: date | None = None,
    uow: AbstractUnitOfWork | None = None,
) -> BatchOutcome:
    """A new batch; its stock serves backorders first (rule 9)."""
    uow = uow or DjangoUnitOfWork()

    def use_case() -> BatchOutcome:
        with uow:
            if uow.products.sku_of_batch(reference) is not None:
                raise DuplicateBatch(reference)
            now = _now()
            product = uow.products.get_or_create(sku, now=now)
            batch = Batch(reference, sku, purchased_quantity, eta, created_at=now)
            change = product.add_batch(batch, now=now)
            uow.commit()
            return BatchOutcome(batch, change)

    return uow.run(use_case)


def change_batch(
    *,
    reference: str,
    purchased_quantity: int | None = None,
    eta: date | None | _Unset = UNSET,
    sku: str | None = None,
    uow: AbstractUnitOfWork | None = None,
) -> BatchOutcome:
    """Rules 8-10: a new quantity and/or eta. ``sku``, if given, must be the batch's own."""
    uow = uow or DjangoUnitOfWork()

    def use_case() -> BatchOutcome:
        with uow:
            product = _product_of_batch(uow, reference)
            batch = product.batch(reference)
            if sku is not None and sku != batch.sku:
                raise SkuChange(reference, batch.sku, sku)
            change = _change_batch(uow, product, batch, purchased_quantity, eta, _now())
            uow.commit()
            return BatchOutcome(batch, change)

    return uow.run(use_case)


def _change_batch(
    uow: AbstractUnitOfWork,
    product: Product,
    batch: Batch,
    purchased_quantity: int | None,
    eta: date | None | _Unset,
    now: datetime,
) -> StockChange:
    """Rules 8-10 on a loaded product; lines on the batch are loaded first if it must shed some."""
    if purchased_quantity is not None and purchased_quantity < batch.allocated_quantity:
        uow.products.load_lines_on_batch(product, batch.reference)
    return product.change_batch(
        batch.reference, purchased_quantity=purchased_quantity, eta=eta, now=now
    )


def delete_batch(*, reference: str, uow: AbstractUnitOfWork | None = None) -> BatchOutcome:
    """Rule 8 for a batch that goes away: its lines are placed again or backordered."""
    uow = uow or DjangoUnitOfWork()

    def use_case() -> BatchOutcome:
        with uow:
            product = _product_of_batch(uow, reference)
            if product.batch(reference).allocated_quantity:
                uow.products.load_lines_on_batch(product, reference)
            change = product.delete_batch(reference, now=_now())
            uow.commit()
            return BatchOutcome(None, change)

    return uow.run(use_case)


def _product_of_batch(uow: AbstractUnitOfWork, reference: str) -> Product:
    sku = uow.products.sku_of_batch(reference)
    if sku is None:
        raise BatchNotFound(reference)
    # A batch never changes SKU, so the SKU read before the lock is still
    # right after it; the batch itself may be gone by then (404 below).
    product = uow.products.get(sku, batch_reference=reference, backorders=True)
    if product is None:
        raise BatchNotFound(reference)
    product.batch(reference)
    return product


def allocate_order(
    *, order_id: str, lines: Sequence[tuple[str, int]], uow: AbstractUnitOfWork | None = None
) -> OrderAllocation:
    """SPEC 2.5: every ``(sku, qty)`` line of the order by rules 1-6, all or nothing.

    One unit of work: the order's SKUs are locked together in sorted order
    (so orders sharing SKUs queue, never deadlock), each line is decided by
    its SKU's product, and the result is written only if every line fits.
    """
    uow = uow or DjangoUnitOfWork()

    def use_case() -> OrderAllocation:
        with uow:
            products = uow.products.get_for_order(order_id, [sku for sku, _qty in lines])
            result = orders.allocate_order(order_id, lines, products, now=_now())
            if result.created:
                uow.commit()
            return result

    return uow.run(use_case)


def deallocate_order(*, order_id: str, uow: AbstractUnitOfWork | None = None) -> StockChange:
    """Rule 7 for every line of the order, in one unit of work; freed stock serves backorders."""
    uow = uow or DjangoUnitOfWork()

    def use_case() -> StockChange:
        with uow:
            served: list[Allocation] = []
            found = False
            # SKUs locked one by one in sorted order, as every multi-SKU writer does.
            for sku in uow.products.skus_of_order(order_id):
                product = uow.products.get(sku, order_id=order_id, backorders=True)
                if product is None or product.get_allocation(order_id) is None:
                    continue  # deallocated meanwhile by someone else
                found = True
                served += product.deallocate(order_id, now=_now()).served
            if not found:
                raise OrderNotFound(order_id)
            uow.commit()
            return StockChange(served=served)

    return uow.run(use_case)


# -- bulk: the management commands' use cases ---------------------------------------


@dataclass(frozen=True)
class LoadSummary:
    """What ``upsert_batches`` did, counted against the batches as they were."""

    created: int = 0
    updated: int = 0
    unchanged: int = 0

    def __str__(self) -> str:
        return f"created {self.created}, updated {self.updated}, unchanged {self.unchanged}"


class RowsRejected(Exception):
    """Rows of a batch file that cannot be applied together; nothing was written."""

    def __init__(self, problems: list[RowProblem]) -> None:
        self.problems = problems
        super().__init__(f"{len(problems)} rows cannot be applied; nothing was written.")


def _reject(problems: list[RowProblem]) -> None:
    if problems:
        raise RowsRejected(problems)


def upsert_batches(
    *,
    rows: Iterable[BatchRow],
    uow: AbstractUnitOfWork | None = None,
    dry_run: bool = False,
    check: Callable[[list[RowProblem]], None] = _reject,
) -> LoadSummary:
    """``load_batches`` (SPEC 3): upsert every row by reference, in one unit of work.

    ``rows`` (already valid one by one) are staged as they come; then
    ``check`` gets the problems of the file as a whole (a reference twice, a
    SKU change) and raises to write nothing (by default ``RowsRejected``).
    New batches are created as if one by one down the file (``created_at``
    in file order); existing ones get their quantity and eta by rules 8-10.
    Per SKU, the domain decides (``batch_rows_move_lines``) whether the rows
    can move a line: if not, storage writes them as given, set-based, with
    their events; if so, each row goes through the SKU's ``Product`` in file
    order, exactly as ``add_batch``/``change_batch`` would. SKUs never
    affect each other, so this is the outcome of applying the file row by
    row. Not retried (the rows are read once): a busy database is the caller's
    to report.
    """
    uow = uow or DjangoUnitOfWork()
    with uow:
        load = uow.products.stage_batches(rows)
        check(load.problems())
        summary = LoadSummary(*load.counts())
        clock = _now()
        load.lock(now=clock)
        moving = sorted(
            facts.sku
            for facts in load.facts()
            if batch_rows_move_lines(
                backorders_waiting=facts.backorders_waiting,
                lowered_below_allocated=facts.lowered_below_allocated,
            )
        )
        load.write_as_given(skipping=moving, clock=clock)
        for sku_rows in load.rows_of(moving):
            _upsert_rows(uow, sku_rows, clock)
        load.close()
        uow.commit()
        if dry_run:
            uow.rollback()
    return summary


def _upsert_rows(uow: AbstractUnitOfWork, rows: list[BatchRow], clock: datetime) -> None:
    """One SKU's rows, in file order, through its ``Product``."""
    sku = rows[0].sku
    product = uow.products.get_for_load(sku, [row.reference for row in rows], now=clock)
    for row in rows:
        # The same clock as the rows written as given: file order is creation order.
        now = clock + timedelta(microseconds=row.line)
        try:
            batch = product.batch(row.reference)
        except BatchNotFound:
            product.add_batch(
                Batch(row.reference, sku, row.purchased_quantity, row.eta, created_at=now),
                now=now,
            )
        else:
            _change_batch(uow, product, batch, row.purchased_quantity, row.eta, now)


#: ``allocate_many`` outcomes: the API's answers (SPEC 2.2), as the report names them.
ALLOCATED, ALREADY_ALLOCATED = "allocated", "already_allocated"


@dataclass(frozen=True)
class LineOutcome:
    """One line of ``allocate_many``: ``allocated``, ``already_allocated`` or a refusal's code."""

    line: OrderLine
    outcome: str
    allocation: Allocation | None = None


class StrictClock:
    """Now, but strictly later than the last reading.

    A line's ``requested_at`` orders backorders and reallocation (rules 8-9),
    so lines allocated one after another keep their order even within one
    microsecond.
    """

    def __init__(self) -> None:
        self._last: datetime | None = None

    def __call__(self) -> datetime:
        now = _now()
        if self._last is not None and now <= self._last:
            now = self._last + timedelta(microseconds=1)
        self._last = now
        return now


def allocate_many(
    *,
    lines: Sequence[OrderLine],
    uow: AbstractUnitOfWork | None = None,
    clock: Callable[[], datetime] = _now,
) -> list[LineOutcome]:
    """Rules 1-6 for each line, in the order given, as one allocate after another.

    One unit of work: the lines' SKUs are locked together in sorted order and
    each is loaded once, with the lines already recorded for these order
    ids. A refused line (``invalid_sku``, ``out_of_stock``, ``line_conflict``)
    is an outcome, not an error: the others still go ahead. Lines of
    different SKUs never affect each other, so a caller may group a file's
    lines by SKU and still give each the outcome of the file order.
    """
    uow = uow or DjangoUnitOfWork()

    def use_case() -> list[LineOutcome]:
        outcomes = []
        with uow:
            products = uow.products.get_many(lines)
            for line in lines:
                product = products.get(line.sku)
                try:
                    if product is None:
                        raise InvalidSku(line.sku)
                    allocation, created = product.allocate(line, now=clock())
                except (InvalidSku, OutOfStock, LineConflict) as refused:
                    outcomes.append(LineOutcome(line, refused.code))
                else:
                    outcome = ALLOCATED if created else ALREADY_ALLOCATED
                    outcomes.append(LineOutcome(line, outcome, allocation))
            uow.commit()
        return outcomes

    return uow.run(use_case)
