"""An order: every line allocated, or none (SPEC 2.5).

Each line is decided by its SKU's ``Product`` with the same rules as a line
on its own (rules 1-6); the order adds only two things: all or nothing, and
which refusal to report when several apply. A SKU appears at most once in an
order, so its lines never compete with each other for stock: deciding them
one after the other in request order gives each the outcome it would get
alone, and the caller records the result only if every line fits.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime

from domain.exceptions import (
    InvalidSku,
    LineConflict,
    OrderLineConflict,
    OrderOutOfStock,
    OutOfStock,
    Shortage,
    UnknownSkus,
)
from domain.model import Allocation, OrderLine, Product


@dataclass(frozen=True)
class OrderAllocation:
    """The order's lines in request order, and whether any of them is new."""

    order_id: str
    allocations: list[Allocation]
    created: bool


def allocate_order(
    order_id: str,
    lines: Sequence[tuple[str, int]],
    products: Mapping[str, Product],
    *,
    now: datetime,
) -> OrderAllocation:
    """Allocate ``(sku, qty)`` lines of one order on their SKUs' products, all or nothing.

    ``products`` holds the product of every SKU that exists (a SKU missing
    from it has no batches). When lines are refused, the first of these wins
    (SPEC 2.5): ``invalid_sku`` (every such SKU), ``line_conflict`` (the first
    line in request order), ``out_of_stock`` (every line that does not fit).
    The products may then hold some of the order's lines: the caller must not
    record them.
    """
    skus = [sku for sku, _qty in lines]
    if len(set(skus)) != len(skus):
        raise ValueError(f"order {order_id!r} names a SKU twice")
    unknown: list[str] = []
    conflict: LineConflict | None = None
    shortages: list[Shortage] = []
    allocations: list[Allocation] = []
    created = False
    for sku, qty in lines:
        product = products.get(sku)
        if product is None:
            unknown.append(sku)
            continue
        try:
            allocation, new = product.allocate(OrderLine(order_id, sku, qty), now=now)
        except InvalidSku:
            unknown.append(sku)
        except LineConflict as error:
            conflict = conflict or error
        except OutOfStock as error:
            shortages.append(Shortage(error.sku, error.requested, error.available))
        else:
            allocations.append(allocation)
            created = created or new
    if unknown:
        raise UnknownSkus(unknown)
    if conflict is not None:
        raise OrderLineConflict(conflict.order_id, conflict.sku, conflict.qty, conflict.requested)
    if shortages:
        raise OrderOutOfStock(order_id, shortages)
    return OrderAllocation(order_id, allocations, created)
