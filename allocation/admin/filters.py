"""Changelist filters whose choices stay bounded however many SKUs and batches there are."""

from __future__ import annotations

from django.contrib import admin

from allocation import selectors
from domain.model import BatchStatus
from domain.validation import is_identifier


class SkuFilter(admin.SimpleListFilter):
    title = "SKU"
    parameter_name = "sku"

    #: With more SKUs than this the filter offers only the one chosen (the
    #: search box finds the others): 100,000 links would make a page of megabytes.
    max_listed = 100

    def lookups(self, request, model_admin):
        # One bounded query whatever the list shows.
        skus = selectors.skus(limit=self.max_listed + 1)
        if len(skus) > self.max_listed:
            chosen = request.GET.get(self.parameter_name)
            return [(chosen, chosen)] if chosen and is_identifier(chosen) else []
        return [(sku, sku) for sku in skus]

    def queryset(self, request, queryset):
        sku = self.value()
        if sku is None:
            return queryset
        # Not a SKU at all (a NUL would not even reach PostgreSQL): nothing matches.
        if not is_identifier(sku):
            return queryset.none()
        return queryset.filter(product_id=sku)


class LinesOnBatchFilter(admin.SimpleListFilter):
    """``?batch=<reference>``: the lines with a part on that batch (linked from a batch page).

    Offers no list of its own (batches are many); it shows only the batch
    being filtered on, so the filter can be seen and cleared.
    """

    title = "batch"
    parameter_name = "batch"

    def lookups(self, request, model_admin):
        reference = request.GET.get(self.parameter_name)
        return [(reference, reference)] if reference else []

    def queryset(self, request, queryset):
        reference = self.value()
        if reference is None:
            return queryset
        if not is_identifier(reference):
            return queryset.none()
        return queryset.filter(parts__batch__reference=reference)


class BatchStatusFilter(admin.SimpleListFilter):
    title = "status"
    parameter_name = "status"

    def lookups(self, request, model_admin):
        return [(s.value, s.value.replace("_", " ")) for s in BatchStatus]

    def queryset(self, request, queryset):
        if self.value() in {s.value for s in BatchStatus}:
            return queryset.with_status(self.value())
        return queryset
