"""The read side: querysets and summaries for lists, details and reports.

Reads never go through the aggregate: they ask the database for exactly what
a page shows, in preference order, with related rows fetched up front.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.db.models import F, Prefetch, Sum
from django.db.models.functions import Coalesce

from allocation import models as orm
from domain.exceptions import BatchNotFound, LineNotFound, ProductNotFound
from domain.model import LineStatus

PART_PREFERENCE = (
    F("batch__eta").asc(nulls_first=True),
    "batch__created_at",
    "batch__reference",
)


def batches() -> orm.BatchQuerySet:
    return orm.Batch.objects.in_preference_order()


def batch_detail(reference: str) -> orm.Batch:
    batch = orm.Batch.objects.filter(reference=reference).first()
    if batch is None:
        raise BatchNotFound(reference)
    batch.held_parts = list(
        orm.Allocation.objects.filter(batch=batch).select_related("line").order_by("line__order_id")
    )
    return batch


def lines():
    parts = orm.Allocation.objects.select_related("batch").order_by(*PART_PREFERENCE)
    return orm.OrderLine.objects.prefetch_related(Prefetch("parts", queryset=parts)).order_by(
        "order_id", "product_id"
    )


def line(order_id: str, sku: str) -> orm.OrderLine:
    found = lines().filter(order_id=order_id, product_id=sku).first()
    if found is None:
        raise LineNotFound(order_id, sku)
    return found


@dataclass(frozen=True)
class ProductSummary:
    sku: str
    purchased_quantity: int
    allocated_quantity: int
    available_quantity: int
    backordered_quantity: int
    batches: list


def product_summary(sku: str) -> ProductSummary:
    stock = list(batches().filter(product_id=sku))
    backordered = orm.OrderLine.objects.filter(
        product_id=sku, status=LineStatus.BACKORDERED.value
    ).aggregate(total=Coalesce(Sum("qty"), 0))["total"]
    if not stock and not orm.OrderLine.objects.filter(product_id=sku).exists():
        raise ProductNotFound(sku)
    purchased = sum(b.purchased_quantity for b in stock)
    allocated = sum(b.allocated_quantity for b in stock)
    return ProductSummary(
        sku=sku,
        purchased_quantity=purchased,
        allocated_quantity=allocated,
        available_quantity=purchased - allocated,
        backordered_quantity=backordered,
        batches=stock,
    )
