"""The Events page (SPEC 6.3): the audit log, read-only, a fixed cost however long it grows."""

from __future__ import annotations

from collections.abc import Callable
from urllib.parse import urlencode

from django.contrib import admin
from django.db.models import Q
from django.urls import reverse
from django.utils.html import format_html

from allocation import models as orm
from allocation import selectors
from allocation.admin.paginators import CappedCountPaginator
from domain.validation import is_identifier


def events_link(text: str, **params: str):
    """A link to the Events page filtered by ``params`` (batch, order_id, sku)."""
    url = reverse("admin:allocation_event_changelist")
    return format_html('<a href="{}?{}">{}</a>', url, urlencode(params), text)


class _ChosenOnly(admin.SimpleListFilter):
    """A filter set by links from other pages: it lists only the value chosen.

    Subclasses say which rows a chosen value selects with ``condition``.
    """

    condition: Callable[[str], Q]

    def lookups(self, request, model_admin):
        chosen = request.GET.get(self.parameter_name)
        return [(chosen, chosen)] if chosen and is_identifier(chosen) else []

    def queryset(self, request, queryset):
        value = self.value()
        if value is None:
            return queryset
        if not is_identifier(value):
            return queryset.none()
        return queryset.filter(self.condition(value))


class BatchEventsFilter(_ChosenOnly):
    title = "batch"
    parameter_name = "batch"

    def condition(self, value: str) -> Q:
        return selectors.events_naming_batch(value)


class OrderEventsFilter(_ChosenOnly):
    title = "order"
    parameter_name = "order_id"

    def condition(self, value: str) -> Q:
        return Q(order_id=value)


class SkuEventsFilter(_ChosenOnly):
    title = "SKU"
    parameter_name = "sku"

    def condition(self, value: str) -> Q:
        return Q(sku=value)


@admin.register(orm.Event)
class EventAdmin(admin.ModelAdmin):
    list_display = ("id", "occurred_at", "type", "sku", "subject", "actor", "source")
    list_filter = ("type", "source", SkuEventsFilter, BatchEventsFilter, OrderEventsFilter)
    search_fields = ("order_id",)
    search_help_text = "Search by order id or batch reference (exact)."
    ordering = ("-id",)
    list_select_related = False
    show_full_result_count = False
    # Never a count of the whole log, filtered or not.
    paginator = CappedCountPaginator
    fields = (
        "id",
        "type",
        "sku",
        "sku_seq",
        "occurred_at",
        "actor",
        "source",
        "transaction",
        "order_id",
        "data",
    )
    readonly_fields = fields

    @admin.display(description="order or batch")
    def subject(self, event: orm.Event) -> str:
        return event.order_id or event.data.get("reference", "")

    def get_search_results(self, request, queryset, search_term):
        # An exact order id or batch reference: both answered from an index.
        term = search_term.strip()
        if not term:
            return queryset, False
        if not is_identifier(term):
            return queryset.none(), False
        return queryset.filter(Q(order_id=term) | selectors.events_naming_batch(term)), False

    # The log is written by the services only, never edited.
    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False
