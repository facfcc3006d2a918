"""The product repository: all ORM <-> domain conversion lives here.

Model instances never leave this module; services see ``domain.model``
objects only. A product is loaded in a small, fixed number of queries that
does not grow with the SKU's history: the batches that still have stock, and
only the lines a decision needs (the line asked about, the lines on a batch
being reduced, the backorders waiting). On ``flush`` the repository compares
each aggregate with the snapshot it took when loading it and writes only the
difference.
"""

from __future__ import annotations

import abc
from dataclasses import dataclass
from datetime import datetime

from django.db import IntegrityError, transaction
from django.db.models import Q

from allocation import models as orm
from domain.exceptions import DuplicateBatch
from domain.model import Allocation, Batch, LineStatus, OrderLine, Part, Product


class AbstractProductRepository(abc.ABC):
    """What services may ask of storage. Every ``get_*`` locks the SKU first."""

    def __init__(self) -> None:
        self.seen: dict[str, Product] = {}

    @abc.abstractmethod
    def get(
        self,
        sku: str,
        *,
        order_id: str | None = None,
        batch_reference: str | None = None,
        backorders: bool = False,
    ) -> Product | None:
        """Lock and load the SKU with what a decision about these needs; None if no such SKU."""

    @abc.abstractmethod
    def get_or_create(self, sku: str, *, now: datetime, backorders: bool = True) -> Product:
        """Like ``get`` with backorders, creating the SKU if it is new."""

    @abc.abstractmethod
    def load_lines_on_batch(self, product: Product, reference: str) -> None:
        """Add every line with a part on ``reference`` (and their batches) to ``product``."""

    @abc.abstractmethod
    def sku_of_batch(self, reference: str) -> str | None:
        """The SKU a batch belongs to, or None if no such batch exists."""

    @abc.abstractmethod
    def flush(self) -> None:
        """Write every change made to the products handed out."""


@dataclass
class _BatchRow:
    id: int
    purchased_quantity: int
    allocated_quantity: int
    eta: object


@dataclass
class _LineRow:
    id: int
    status: str
    allocated_at: datetime | None
    parts: tuple[Part, ...]


class _Snapshot:
    """What one product looked like in the database when it was loaded."""

    def __init__(self) -> None:
        self.batches: dict[str, _BatchRow] = {}
        self.lines: dict[str, _LineRow] = {}


_BATCH_FIELDS = ("id", "reference", "purchased_quantity", "allocated_quantity", "eta", "created_at")


class DjangoProductRepository(AbstractProductRepository):
    def __init__(self) -> None:
        super().__init__()
        self._snapshots: dict[str, _Snapshot] = {}
        # Batch ids by reference, for every batch known in this unit of work.
        self._batch_ids: dict[str, int] = {}

    # -- loading -------------------------------------------------------------

    def _lock(self, sku: str) -> bool:
        # One row per SKU: locking it serialises every change to the SKU's
        # stock, so two requests for one SKU queue here and requests for
        # different SKUs never wait on each other. On SQLite the IMMEDIATE
        # transaction already holds the database's single write lock.
        return bool(list(orm.Product.objects.select_for_update().filter(sku=sku).values_list("sku")))

    def get(
        self,
        sku: str,
        *,
        order_id: str | None = None,
        batch_reference: str | None = None,
        backorders: bool = False,
    ) -> Product | None:
        if sku in self.seen:
            raise RuntimeError(f"product {sku!r} is already loaded in this unit of work")
        if not self._lock(sku):
            return None
        return self._load(sku, order_id=order_id, batch_reference=batch_reference, backorders=backorders)

    def get_or_create(self, sku: str, *, now: datetime, backorders: bool = True) -> Product:
        if not self._lock(sku):
            # ignore_conflicts: a concurrent creator of the same SKU wins the
            # insert, and we then wait for its lock like everyone else.
            orm.Product.objects.bulk_create([orm.Product(sku=sku, created_at=now)], ignore_conflicts=True)
            self._lock(sku)
        return self._load(sku, backorders=backorders)

    def sku_of_batch(self, reference: str) -> str | None:
        return orm.Batch.objects.filter(reference=reference).values_list("product_id", flat=True).first()

    def _load(
        self,
        sku: str,
        *,
        order_id: str | None = None,
        batch_reference: str | None = None,
        backorders: bool = False,
    ) -> Product:
        snapshot = _Snapshot()
        allocations: list[Allocation] = []
        wanted_refs: set[str] = set()
        if order_id is not None:
            allocations += self._load_lines(snapshot, sku, Q(order_id=order_id))
        if backorders:
            allocations += self._load_lines(
                snapshot, sku, Q(status=LineStatus.BACKORDERED.value), exclude=snapshot.lines
            )
        for allocation in allocations:
            wanted_refs.update(p.batch_reference for p in allocation.parts)
        if batch_reference is not None:
            wanted_refs.add(batch_reference)
        stock = Q(allocated_quantity__lt=orm.models.F("purchased_quantity"))
        if wanted_refs:
            stock |= Q(reference__in=wanted_refs)
        batches = self._load_batches(snapshot, sku, orm.Batch.objects.filter(product_id=sku).filter(stock))
        has_batches = bool(batches) or orm.Batch.objects.filter(product_id=sku).exists()
        product = Product(sku, batches, allocations, has_batches=has_batches)
        self.seen[sku] = product
        self._snapshots[sku] = snapshot
        return product

    def load_lines_on_batch(self, product: Product, reference: str) -> None:
        snapshot = self._snapshots[product.sku]
        holding = orm.Allocation.objects.filter(batch__reference=reference).values("line_id")
        allocations = self._load_lines(
            snapshot, product.sku, Q(id__in=holding), exclude=snapshot.lines
        )
        known = {b.reference for b in product.batches}
        missing = {p.batch_reference for a in allocations for p in a.parts} - known
        batches = []
        if missing:
            batches = self._load_batches(
                snapshot, product.sku, orm.Batch.objects.filter(reference__in=missing)
            )
        product.include(batches=batches, allocations=allocations)

    def _load_batches(self, snapshot: _Snapshot, sku: str, queryset) -> list[Batch]:
        batches = []
        for row in queryset.values_list(*_BATCH_FIELDS):
            batch_id, reference, purchased, allocated, eta, created_at = row
            self._batch_ids[reference] = batch_id
            snapshot.batches[reference] = _BatchRow(batch_id, purchased, allocated, eta)
            batches.append(
                Batch(
                    reference,
                    sku,
                    purchased_quantity=purchased,
                    eta=eta,
                    created_at=created_at,
                    allocated_quantity=allocated,
                )
            )
        return batches

    def _load_lines(
        self, snapshot: _Snapshot, sku: str, condition: Q, exclude=()
    ) -> list[Allocation]:
        """Lines with their parts in one query (a LEFT JOIN: backorders have none)."""
        rows = (
            orm.OrderLine.objects.filter(condition, product_id=sku)
            .values_list(
                "id",
                "order_id",
                "qty",
                "status",
                "requested_at",
                "allocated_at",
                "parts__qty",
                "parts__batch__reference",
            )
            .order_by(
                "id",
                orm.models.F("parts__batch__eta").asc(nulls_first=True),
                "parts__batch__created_at",
                "parts__batch__reference",
            )
        )
        by_id: dict[int, Allocation] = {}
        for line_id, order_id, qty, status, requested_at, allocated_at, part_qty, ref in rows:
            if order_id in exclude:
                continue
            allocation = by_id.get(line_id)
            if allocation is None:
                allocation = by_id[line_id] = Allocation(
                    line=OrderLine(order_id, sku, qty),
                    requested_at=requested_at,
                    allocated_at=allocated_at,
                )
            if part_qty is not None:
                allocation.parts.append(Part(ref, part_qty))
        for line_id, allocation in by_id.items():
            snapshot.lines[allocation.order_id] = _LineRow(
                line_id, allocation.status.value, allocation.allocated_at, tuple(allocation.parts)
            )
        return list(by_id.values())

    # -- writing ---------------------------------------------------------------

    def flush(self) -> None:
        for sku, product in self.seen.items():
            self._flush_product(product, self._snapshots[sku])
            # What is written is the new baseline: a second flush writes nothing.
            self._snapshots[sku] = self._take_snapshot(product)

    def _take_snapshot(self, product: Product) -> _Snapshot:
        snapshot = _Snapshot()
        old = self._snapshots[product.sku]
        for batch in product.batches:
            snapshot.batches[batch.reference] = _BatchRow(
                self._batch_ids[batch.reference],
                batch.purchased_quantity,
                batch.allocated_quantity,
                batch.eta,
            )
        for allocation in product.allocations:
            snapshot.lines[allocation.order_id] = _LineRow(
                old.lines[allocation.order_id].id,
                allocation.status.value,
                allocation.allocated_at,
                tuple(allocation.parts),
            )
        return snapshot

    def _flush_product(self, product: Product, snapshot: _Snapshot) -> None:
        sku = product.sku
        batches = {b.reference: b for b in product.batches}
        allocations = {a.order_id: a for a in product.allocations}

        # 1. Lines that are gone, and parts that moved, leave first, so batch
        #    rows can be deleted and parts inserted without clashing.
        gone_lines = [row.id for oid, row in snapshot.lines.items() if oid not in allocations]
        moved = [
            row.id
            for oid, row in snapshot.lines.items()
            if oid in allocations and tuple(allocations[oid].parts) != row.parts
        ]
        if gone_lines or moved:
            orm.Allocation.objects.filter(line_id__in=gone_lines + moved).delete()
        if gone_lines:
            orm.OrderLine.objects.filter(id__in=gone_lines).delete()

        # 2. Batches: new, changed, gone.
        new_batches = [
            orm.Batch(
                reference=b.reference,
                product_id=sku,
                purchased_quantity=b.purchased_quantity,
                allocated_quantity=b.allocated_quantity,
                eta=b.eta,
                created_at=b.created_at,
            )
            for ref, b in batches.items()
            if ref not in snapshot.batches
        ]
        if new_batches:
            try:
                # A savepoint, so that a duplicate reference (another SKU's
                # batch, created concurrently) is reported, not left to poison
                # the transaction.
                with transaction.atomic():
                    orm.Batch.objects.bulk_create(new_batches)
            except IntegrityError as error:
                refs = [b.reference for b in new_batches]
                taken = list(
                    orm.Batch.objects.filter(reference__in=refs).values_list("reference", flat=True)
                )
                if taken:
                    raise DuplicateBatch(taken[0]) from error
                raise
            for row in new_batches:
                self._batch_ids[row.reference] = row.id
        changed = [
            b
            for ref, b in batches.items()
            if ref in snapshot.batches
            and (
                snapshot.batches[ref].purchased_quantity,
                snapshot.batches[ref].allocated_quantity,
                snapshot.batches[ref].eta,
            )
            != (b.purchased_quantity, b.allocated_quantity, b.eta)
        ]
        for batch in changed:
            orm.Batch.objects.filter(id=self._batch_ids[batch.reference]).update(
                purchased_quantity=batch.purchased_quantity,
                allocated_quantity=batch.allocated_quantity,
                eta=batch.eta,
            )
        gone_batches = [row.id for ref, row in snapshot.batches.items() if ref not in batches]
        if gone_batches:
            orm.Batch.objects.filter(id__in=gone_batches).delete()

        # 3. New lines, lines whose status moved, then every new part.
        new_lines = [
            orm.OrderLine(
                order_id=a.order_id,
                product_id=sku,
                qty=a.qty,
                status=a.status.value,
                requested_at=a.requested_at,
                allocated_at=a.allocated_at,
            )
            for oid, a in allocations.items()
            if oid not in snapshot.lines
        ]
        line_ids = {oid: row.id for oid, row in snapshot.lines.items()}
        if new_lines:
            orm.OrderLine.objects.bulk_create(new_lines)
            line_ids.update({row.order_id: row.id for row in new_lines})
            for row in new_lines:
                snapshot.lines[row.order_id] = _LineRow(row.id, "", None, ())
        restated = [
            orm.OrderLine(id=row.id, status=allocations[oid].status.value, allocated_at=allocations[oid].allocated_at)
            for oid, row in snapshot.lines.items()
            if oid in allocations
            and row.status
            and (row.status, row.allocated_at)
            != (allocations[oid].status.value, allocations[oid].allocated_at)
        ]
        if len(restated) == 1:
            orm.OrderLine.objects.filter(id=restated[0].id).update(
                status=restated[0].status, allocated_at=restated[0].allocated_at
            )
        elif restated:
            orm.OrderLine.objects.bulk_update(restated, ["status", "allocated_at"])
        new_parts = [
            orm.Allocation(line_id=line_ids[oid], batch_id=self._batch_ids[p.batch_reference], qty=p.qty)
            for oid, a in allocations.items()
            if tuple(a.parts) != snapshot.lines[oid].parts
            for p in a.parts
        ]
        if new_parts:
            orm.Allocation.objects.bulk_create(new_parts)
