"""The stock overview: one admin page with every SKU's totals and a bar each.

Ops compare allocated against available stock at a glance, so the bar is
plain server-rendered HTML with inline widths: no JavaScript, no external
assets. Its totals come from ``selectors.stock_levels``.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse
from django.template.response import TemplateResponse

from allocation import selectors

OVERVIEW_PAGE_SIZE = 100


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
    page = Paginator(selectors.stock_levels(search), OVERVIEW_PAGE_SIZE).get_page(
        request.GET.get("p")
    )
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
