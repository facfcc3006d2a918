"""Use cases. Each is one unit of work; API, admin and commands all call these.

Functions are keyword-only, named with the domain's verbs, and return domain
objects (never model instances). Domain errors propagate unchanged; the API's
exception handler and the commands translate them for their audience.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime

from django.utils import timezone

from allocation.unit_of_work import AbstractUnitOfWork, DjangoUnitOfWork
from domain import orders
from domain.exceptions import (
    BatchNotFound,
    DuplicateBatch,
    InvalidSku,
    LineNotFound,
    OrderNotFound,
    SkuChange,
)
from domain.model import UNSET, Allocation, Batch, OrderLine, Product, StockChange, _Unset
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
            if purchased_quantity is not None and purchased_quantity < batch.allocated_quantity:
                uow.products.load_lines_on_batch(product, reference)
            change = product.change_batch(
                reference, purchased_quantity=purchased_quantity, eta=eta, now=_now()
            )
            uow.commit()
            return BatchOutcome(batch, change)

    return uow.run(use_case)


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
