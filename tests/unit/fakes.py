"""In-memory stand-ins for the repository and unit of work: services without a database.

The fake repository keeps every Product whole (all batches, all lines), so
it never needs the lazy loading the Django adapter does. Like a database, it
forgets what a unit of work changed unless it commits: a rollback puts every
product handed out back as it was when handed out (in place, so objects the
use case returned keep their identity).
"""

from __future__ import annotations

import copy
from collections.abc import Collection, Iterable, Iterator
from datetime import datetime, timedelta

from allocation.repository import (
    AbstractProductRepository,
    BatchLoad,
    BatchRow,
    RowProblem,
    SkuFacts,
)
from allocation.unit_of_work import AbstractUnitOfWork
from domain import events
from domain.events import Event
from domain.model import Batch, LineStatus, OrderLine, Product


class FakeProductRepository(AbstractProductRepository):
    def __init__(self, products: list[Product] | None = None) -> None:
        super().__init__()
        self._products: dict[str, Product] = {p.sku: p for p in products or []}
        self.lines_loaded_for: list[str] = []
        # Each product as it was when first handed out in this unit of work.
        self._as_handed_out: dict[str, Product] = {}
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
        return self._hand_out(sku)

    def get_for_order(self, order_id: str, skus: Collection[str]) -> dict[str, Product]:
        found = {sku: self._hand_out(sku) for sku in sorted(skus)}
        return {sku: product for sku, product in found.items() if product is not None}

    def get_many(self, lines: Iterable[OrderLine]) -> dict[str, Product]:
        found = {sku: self._hand_out(sku) for sku in sorted({line.sku for line in lines})}
        return {sku: product for sku, product in found.items() if product is not None}

    def get_for_load(self, sku: str, references: Collection[str], *, now: datetime) -> Product:
        return self.get_or_create(sku, now=now)

    def stage_batches(self, rows: Iterable[BatchRow]) -> BatchLoad:
        return FakeBatchLoad(self, list(rows))

    def skus_of_order(self, order_id: str) -> list[str]:
        return sorted(
            sku for sku, product in self._products.items() if product.get_allocation(order_id)
        )

    def get_or_create(self, sku: str, *, now: datetime, backorders: bool = True) -> Product:
        self._products.setdefault(sku, Product(sku))
        product = self._hand_out(sku)
        assert product is not None
        return product

    def _hand_out(self, sku: str) -> Product | None:
        product = self._products.get(sku)
        if product is not None:
            self.seen[sku] = product
            self._as_handed_out.setdefault(sku, copy.deepcopy(product))
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
        self._as_handed_out.clear()

    def record(self, events) -> None:
        self.published.extend(events)

    def forget_changes(self) -> None:
        for sku, before in self._as_handed_out.items():
            vars(self._products[sku]).clear()
            vars(self._products[sku]).update(vars(before))
        self._as_handed_out.clear()

    # -- for assertions ------------------------------------------------------------------

    def stored(self, sku: str) -> Product | None:
        return self._products.get(sku)

    @property
    def skus(self) -> list[str]:
        return sorted(self._products)


class FakeBatchLoad(BatchLoad):
    """The rows in a list; "storage" is the fake repository's products, written directly."""

    def __init__(self, repository: FakeProductRepository, rows: list[BatchRow]) -> None:
        self.repository = repository
        self.rows = rows
        self.closed = False

    def _stored(self, reference: str) -> Batch | None:
        sku = self.repository.sku_of_batch(reference)
        return None if sku is None else self.repository.stored(sku).batch(reference)

    def problems(self) -> list[RowProblem]:
        found, first = [], {}
        for row in self.rows:
            if row.reference in first:
                message = f"the same reference as line {first[row.reference]}"
                found.append(RowProblem(row.line, "reference", message))
            else:
                first[row.reference] = row.line
            batch = self._stored(row.reference)
            if batch is not None and batch.sku != row.sku:
                message = (
                    f"batch {row.reference} holds SKU {batch.sku}; "
                    f"its SKU cannot change to {row.sku}"
                )
                found.append(RowProblem(row.line, "sku", message))
        return sorted(found, key=lambda problem: problem.line)

    def counts(self) -> tuple[int, int, int]:
        created = updated = unchanged = 0
        for row in self.rows:
            batch = self._stored(row.reference)
            if batch is None:
                created += 1
            elif (batch.purchased_quantity, batch.eta) != (row.purchased_quantity, row.eta):
                updated += 1
            else:
                unchanged += 1
        return created, updated, unchanged

    def lock(self, *, now: datetime) -> None:
        for row in self.rows:
            self.repository._products.setdefault(row.sku, Product(row.sku))

    def facts(self) -> Iterator[SkuFacts]:
        for sku in sorted({row.sku for row in self.rows}):
            product = self.repository.stored(sku)
            waiting = any(a.status is LineStatus.BACKORDERED for a in product.allocations)
            lowered = any(
                (batch := self._stored(row.reference)) is not None
                and row.purchased_quantity < batch.allocated_quantity
                for row in self.rows
                if row.sku == sku
            )
            yield SkuFacts(sku, waiting, lowered)

    def write_as_given(self, *, skipping: Collection[str], clock: datetime) -> None:
        for row in self.rows:
            if row.sku in skipping:
                continue
            product = self.repository.stored(row.sku)
            batch = self._stored(row.reference)
            if batch is None:
                created_at = clock + timedelta(microseconds=row.line)
                product.include(
                    batches=[
                        Batch(
                            row.reference,
                            row.sku,
                            row.purchased_quantity,
                            row.eta,
                            created_at=created_at,
                        )
                    ]
                )
                self.repository.record(
                    [events.BatchCreated(row.sku, row.reference, row.purchased_quantity, row.eta)]
                )
            elif (batch.purchased_quantity, batch.eta) != (row.purchased_quantity, row.eta):
                previous = (batch.purchased_quantity, batch.eta)
                batch.purchased_quantity, batch.eta = row.purchased_quantity, row.eta
                product._ordered = None  # storage changed under the aggregate's cache
                self.repository.record(
                    [
                        events.BatchChanged(
                            row.sku, row.reference, row.purchased_quantity, row.eta, *previous
                        )
                    ]
                )

    def rows_of(self, skus: Collection[str]) -> Iterator[list[BatchRow]]:
        for sku in sorted(set(skus)):
            rows = sorted((row for row in self.rows if row.sku == sku), key=lambda r: r.line)
            if rows:
                yield rows

    def close(self) -> None:
        self.closed = True


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

    def __exit__(self, exc_type, exc, tb) -> None:
        super().__exit__(exc_type, exc, tb)
        if not self.committed:
            # As leaving transaction.atomic without a commit: after a rollback
            # call, or an error raised out of the use case.
            self.products.forget_changes()

    def rollback(self) -> None:
        self.rollbacks += 1
