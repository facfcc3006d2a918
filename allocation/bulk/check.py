"""check_stock: verify the stored invariants with set-based queries; report, never repair.

Each check is one SQL statement (a filter, or a join with GROUP BY), so it
scales with the database, not with Python memory, and sees one consistent
snapshot of the rows it compares. The database's CHECK constraints already
forbid some of these states; the checks look anyway, since a constraint can
be dropped, disabled or bypassed by a restore.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from django.db.models import Count, F, Q, Sum
from django.db.models.functions import Coalesce

from allocation import models as orm
from domain.model import LineStatus

CHUNK = 2000
ALLOCATED = LineStatus.ALLOCATED.value
BACKORDERED = LineStatus.BACKORDERED.value


@dataclass(frozen=True)
class Checked:
    batches: int
    lines: int


def count_checked() -> Checked:
    return Checked(batches=orm.Batch.objects.count(), lines=orm.OrderLine.objects.count())


def violations() -> Iterator[str]:
    """Every violation found, one sentence each, check by check."""
    yield from _batches_out_of_range()
    yield from _batch_totals()
    yield from _allocated_lines()
    yield from _backordered_lines()
    yield from _misplaced_parts()
    yield from _non_positive_parts()
    yield from _unknown_statuses()


def _batches_out_of_range() -> Iterator[str]:
    rows = (
        orm.Batch.objects.filter(
            Q(allocated_quantity__gt=F("purchased_quantity"))
            | Q(allocated_quantity__lt=0)
            | Q(purchased_quantity__lt=0)
        )
        .order_by("reference")
        .values_list("reference", "purchased_quantity", "allocated_quantity")
    )
    for reference, purchased, allocated in rows.iterator(chunk_size=CHUNK):
        if purchased < 0:
            yield f"batch {reference}: purchased_quantity {purchased} is negative"
        if allocated < 0:
            yield f"batch {reference}: allocated_quantity {allocated} is negative"
        if allocated > purchased:
            yield (
                f"batch {reference}: allocated_quantity {allocated} exceeds "
                f"purchased_quantity {purchased}"
            )


def _batch_totals() -> Iterator[str]:
    rows = (
        orm.Batch.objects.annotate(parts_total=Coalesce(Sum("parts__qty"), 0))
        .exclude(allocated_quantity=F("parts_total"))
        .order_by("reference")
        .values_list("reference", "allocated_quantity", "parts_total")
    )
    for reference, allocated, total in rows.iterator(chunk_size=CHUNK):
        yield (
            f"batch {reference}: stored allocated_quantity {allocated} but the parts on it "
            f"add up to {total}"
        )


def _allocated_lines() -> Iterator[str]:
    rows = (
        orm.OrderLine.objects.filter(status=ALLOCATED)
        .annotate(parts_total=Coalesce(Sum("parts__qty"), 0), parts_count=Count("parts"))
        .exclude(parts_total=F("qty"))
        .order_by("order_id", "product_id")
        .values_list("order_id", "product_id", "qty", "parts_total", "parts_count")
    )
    for order_id, sku, qty, total, count in rows.iterator(chunk_size=CHUNK):
        if count == 0:
            yield f"line {order_id}/{sku}: allocated (qty {qty}) but has no parts"
        else:
            yield f"line {order_id}/{sku}: allocated with qty {qty} but its parts add up to {total}"


def _backordered_lines() -> Iterator[str]:
    rows = (
        orm.OrderLine.objects.filter(status=BACKORDERED)
        .annotate(parts_total=Coalesce(Sum("parts__qty"), 0), parts_count=Count("parts"))
        .filter(parts_count__gt=0)
        .order_by("order_id", "product_id")
        .values_list("order_id", "product_id", "parts_count", "parts_total")
    )
    for order_id, sku, count, total in rows.iterator(chunk_size=CHUNK):
        yield f"line {order_id}/{sku}: backordered but holds {count} part(s) of total qty {total}"


def _misplaced_parts() -> Iterator[str]:
    rows = (
        orm.Allocation.objects.exclude(batch__product_id=F("line__product_id"))
        .order_by("line__order_id", "line__product_id", "batch__reference")
        .values_list("line__order_id", "line__product_id", "batch__reference", "batch__product_id")
    )
    for order_id, sku, reference, batch_sku in rows.iterator(chunk_size=CHUNK):
        yield f"line {order_id}/{sku}: has a part on batch {reference} of another SKU, {batch_sku}"


def _non_positive_parts() -> Iterator[str]:
    rows = (
        orm.Allocation.objects.filter(qty__lte=0)
        .order_by("line__order_id", "line__product_id", "batch__reference")
        .values_list("line__order_id", "line__product_id", "batch__reference", "qty")
    )
    for order_id, sku, reference, qty in rows.iterator(chunk_size=CHUNK):
        yield f"line {order_id}/{sku}: its part on batch {reference} has qty {qty}"


def _unknown_statuses() -> Iterator[str]:
    rows = (
        orm.OrderLine.objects.exclude(status__in=[ALLOCATED, BACKORDERED])
        .order_by("order_id", "product_id")
        .values_list("order_id", "product_id", "status")
    )
    for order_id, sku, status in rows.iterator(chunk_size=CHUNK):
        yield f"line {order_id}/{sku}: unknown status {status!r}"
