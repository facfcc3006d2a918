"""What the domain's unit tests build and read back the same way, on one SKU."""

from __future__ import annotations

from domain.model import Allocation, OrderLine, Product
from tests.factories import OrderLineFactory, tick

SKU = "RED-CHAIR"


def line(order_id: str, qty: int) -> OrderLine:
    return OrderLineFactory(order_id=order_id, sku=SKU, qty=qty)


def backorder(order_id: str, qty: int, *, requested: int) -> Allocation:
    """A line waiting for stock, as the adapter would load it."""
    return Allocation(line=line(order_id, qty), requested_at=tick(requested))


def stock(product: Product) -> dict[str, tuple[int, int]]:
    """Each batch's (allocated, available), by reference."""
    return {b.reference: (b.allocated_quantity, b.available_quantity) for b in product.batches}


def ids(allocations: list[Allocation]) -> list[str]:
    """The order ids of these allocations, in their order."""
    return [a.order_id for a in allocations]
