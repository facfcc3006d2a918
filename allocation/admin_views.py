"""The stock overview: one admin page with every SKU's totals and a bar each.

Ops compare allocated against available stock at a glance, so the bar is
plain server-rendered HTML with inline widths: no JavaScript, no external
assets. Its totals come from correlated subqueries, one per table, never from
a join of batches and lines (a join would multiply each sum by the other
side's row count).
"""

from __future__ import annotations

from dataclasses import dataclass

from django.core.paginator import Paginator
from django.db.models import Count, IntegerField, OuterRef, Q, QuerySet, Subquery, Sum
from django.db.models.functions import Coalesce
from django.http import HttpRequest, HttpResponse
from django.template.response import TemplateResponse

from allocation import models as orm
from domain.model import LineStatus

OVERVIEW_PAGE_SIZE = 100


def _per_product(queryset: QuerySet, aggregate) -> Coalesce:
    """``aggregate`` over ``queryset``'s rows of the outer product, 0 when there are none."""
    total = (
        queryset.filter(product=OuterRef("pk"))
        .order_by()
        .values("product")
        .annotate(total=aggregate)
        .values("total")
    )
    return Coalesce(Subquery(total, output_field=IntegerField()), 0)


def stock_levels(search: str = "") -> QuerySet:
    """Every SKU that has batches or waiting lines, with its stock totals, by SKU."""
    batches = orm.Batch.objects.all()
    backorders = orm.OrderLine.objects.filter(status=LineStatus.BACKORDERED.value)
    products = orm.Product.objects.annotate(
        batch_count=_per_product(batches, Count("pk")),
        purchased=_per_product(batches, Sum("purchased_quantity")),
        allocated=_per_product(batches, Sum("allocated_quantity")),
        backordered=_per_product(backorders, Sum("qty")),
        backordered_lines=_per_product(backorders, Count("pk")),
    )
    # A product row outlives its last batch; a SKU with nothing at all is noise.
    products = products.filter(Q(batch_count__gt=0) | Q(backordered_lines__gt=0))
    if search:
        products = products.filter(sku__icontains=search)
    return products.order_by("sku")


@dataclass(frozen=True)
class StockRow:
    sku: str
    batch_count: int
    purchased: int
    allocated: int
    available: int
    backordered: int
    backordered_lines: int

    @property
    def allocated_percent(self) -> float:
        return round(100 * self.allocated / self.purchased, 1) if self.purchased else 0.0

    @property
    def available_percent(self) -> float:
        return round(100 - self.allocated_percent, 1) if self.purchased else 0.0


def stock_overview(request: HttpRequest, model_admin) -> HttpResponse:
    """The page itself; ``model_admin`` (the batch admin) supplies permissions and context."""
    # NUL cannot reach PostgreSQL in a string; it cannot be part of a SKU anyway.
    search = request.GET.get("q", "").replace("\x00", "").strip()
    page = Paginator(stock_levels(search), OVERVIEW_PAGE_SIZE).get_page(request.GET.get("p"))
    rows = [
        StockRow(
            sku=product.sku,
            batch_count=product.batch_count,
            purchased=product.purchased,
            allocated=product.allocated,
            available=product.purchased - product.allocated,
            backordered=product.backordered,
            backordered_lines=product.backordered_lines,
        )
        for product in page.object_list
    ]
    context = {
        **model_admin.admin_site.each_context(request),
        "title": "Stock overview",
        "opts": model_admin.model._meta,
        "rows": rows,
        "page_obj": page,
        "search": search,
    }
    return TemplateResponse(request, "admin/allocation/stock_overview.html", context)
