"""The order line list: read-only rows, and deallocation through the service."""

from __future__ import annotations

from django.contrib import admin, messages
from django.db.models import Prefetch
from django.urls import reverse
from django.utils.html import format_html, format_html_join
from django.utils.http import urlencode

from allocation import models as orm
from allocation import selectors, services
from allocation.admin.events import events_link
from allocation.admin.filters import LinesOnBatchFilter, SkuFilter
from allocation.admin.outcomes import merge, named, tell, through_admin
from allocation.admin.paginators import EstimatedCountPaginator
from allocation.unit_of_work import ServiceUnavailable
from domain.exceptions import LineNotFound
from domain.model import LineStatus, StockChange


@admin.register(orm.OrderLine)
class OrderLineAdmin(admin.ModelAdmin):
    list_display = ("order_id", "sku", "qty", "status_badge", "batches", "requested_at")
    list_filter = ("status", SkuFilter, LinesOnBatchFilter)
    search_fields = ("order_id",)
    search_help_text = "Search by order id."
    ordering = ("-requested_at", "order_id")
    list_select_related = False
    show_full_result_count = False
    # No full-table COUNT(*) on an unfiltered big table (see allocation.admin.paginators).
    paginator = EstimatedCountPaginator
    actions = ("deallocate_lines",)
    fields = (
        "order_id",
        "sku",
        "qty",
        "status_badge",
        "batches",
        "requested_at",
        "allocated_at",
        "order",
        "events",
    )
    readonly_fields = fields

    def get_queryset(self, request):
        # Parts come in one extra query for the whole page, in preference
        # order, each with its batch (no query per row).
        return (
            super()
            .get_queryset(request)
            .prefetch_related(Prefetch("parts", queryset=selectors.line_parts()))
        )

    # Lines are recorded by allocating (API, commands), never typed in here.
    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def get_actions(self, request):
        actions = super().get_actions(request)
        # The ORM's bulk delete would skip rule 7; "Deallocate" is the way.
        actions.pop("delete_selected", None)
        return actions

    @admin.display(description="order")
    def order(self, line: orm.OrderLine):
        # The changelist filters on any field given in the query string.
        url = (
            reverse("admin:allocation_orderline_changelist")
            + "?"
            + urlencode({"order_id": line.order_id})
        )
        return format_html('<a href="{}">All lines of order {}</a>', url, line.order_id)

    @admin.display(description="events")
    def events(self, line: orm.OrderLine):
        return events_link("Every event of this line", order_id=line.order_id, sku=line.product_id)

    @admin.display(description="SKU", ordering="product_id")
    def sku(self, line: orm.OrderLine) -> str:
        return line.product_id

    @admin.display(description="status", ordering="status")
    def status_badge(self, line: orm.OrderLine):
        backordered = line.status == LineStatus.BACKORDERED.value
        colour = "#ba2121" if backordered else "#2e7d32"
        return format_html(
            '<span class="line-status line-status-{}" style="display:inline-block;'
            "padding:1px 8px;border-radius:9px;color:#fff;background:{};font-weight:{};"
            'white-space:nowrap">{}</span>',
            line.status,
            colour,
            "bold" if backordered else "normal",
            line.get_status_display(),
        )

    @admin.display(description="batches")
    def batches(self, line: orm.OrderLine):
        parts = line.parts.all()
        if not parts:
            return "—"
        return format_html_join(
            ", ",
            '<a href="{}">{}</a>&nbsp;×&nbsp;{}',
            (
                (
                    reverse("admin:allocation_batch_change", args=[part.batch_id]),
                    part.batch.reference,
                    part.qty,
                )
                for part in parts
            ),
        )

    @admin.action(permissions=["delete"], description="Deallocate selected lines")
    def deallocate_lines(self, request, queryset):
        self._deallocate(request, queryset)

    def delete_model(self, request, obj):
        self._deallocate(request, [obj])

    def delete_queryset(self, request, queryset):
        self._deallocate(request, queryset)

    def _deallocate(self, request, lines) -> None:
        removed, gone, changes = [], [], []
        # Backorders first: stock freed by the others is then not handed to
        # a line that is about to be removed anyway.
        lines = sorted(
            lines,
            key=lambda line: (
                line.status != LineStatus.BACKORDERED.value,
                line.product_id,
                line.order_id,
            ),
        )
        for line in lines:
            try:
                changes.append(
                    services.deallocate(
                        order_id=line.order_id, sku=line.product_id, uow=through_admin(request)
                    )
                )
                removed.append((line.product_id, line.order_id))
            except LineNotFound:
                gone.append(f"{line.order_id} ({line.product_id})")
            except ServiceUnavailable as error:
                # Each line is its own unit of work: those done so far stay done.
                self.message_user(
                    request,
                    f"{error} Stopped before {line.order_id} ({line.product_id}).",
                    messages.ERROR,
                )
                break
        if removed:
            names = [f"{order_id} ({sku})" for sku, order_id in removed]
            plural = "s" if len(names) != 1 else ""
            self.message_user(
                request, f"Deallocated {len(names)} line{plural}: {named(names)}.", messages.SUCCESS
            )
        # A backorder served by one deallocation and then deallocated itself
        # (it was selected too) is gone, not served.
        removed_keys = set(removed)
        served = [a for a in merge(changes).served if (a.sku, a.order_id) not in removed_keys]
        tell(request, self, StockChange(served=served), with_sku=True)
        if gone:
            self.message_user(
                request, f"Already removed by someone else: {', '.join(gone)}.", messages.WARNING
            )
