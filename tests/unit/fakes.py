"""In-memory stand-ins for the repository and unit of work: services without a database.

The fake repository keeps every Product whole (all batches, all lines), so
it never needs the lazy loading the Django adapter does.
"""

from __future__ import annotations

from datetime import datetime

from allocation.repository import AbstractProductRepository
from allocation.unit_of_work import AbstractUnitOfWork
from domain.events import Event
from domain.model import Product


class FakeProductRepository(AbstractProductRepository):
    def __init__(self, products: list[Product] | None = None) -> None:
        super().__init__()
        self._products: dict[str, Product] = {p.sku: p for p in products or []}
        self.lines_loaded_for: list[str] = []
        # Every event written, in order, as the Django repository writes them.
        self.published: list[Event] = []

    def get(
        self,
        sku: str,
        *,
        order_id: str | None = None,
        batch_reference: str | None = None,
        backorders: bool = False,
    ) -> Product | None:
        product = self._products.get(sku)
        if product is not None:
            self.seen[sku] = product
        return product

    def get_or_create(self, sku: str, *, now: datetime, backorders: bool = True) -> Product:
        product = self._products.setdefault(sku, Product(sku))
        self.seen[sku] = product
        return product

    def load_lines_on_batch(self, product: Product, reference: str) -> None:
        # Every line is in memory already; only remember that the service asked.
        self.lines_loaded_for.append(reference)

    def sku_of_batch(self, reference: str) -> str | None:
        for sku, product in self._products.items():
            if any(b.reference == reference for b in product.batches):
                return sku
        return None

    def flush(self) -> None:
        for product in self.seen.values():
            self.record(product.events)
            product.events.clear()

    def record(self, events) -> None:
        self.published.extend(events)

    # -- for assertions ------------------------------------------------------------------

    def stored(self, sku: str) -> Product | None:
        return self._products.get(sku)

    @property
    def skus(self) -> list[str]:
        return sorted(self._products)


class FakeUnitOfWork(AbstractUnitOfWork):
    """Counts commits and rollbacks; ``committed`` tells about the last use case."""

    def __init__(self, products: list[Product] | None = None) -> None:
        self.products = FakeProductRepository(products)
        self.committed = False
        self.commits = 0
        self.rollbacks = 0

    def _commit(self) -> None:
        self.products.flush()
        self.commits += 1

    def rollback(self) -> None:
        self.rollbacks += 1
