"""The batch list and page: adding, changing and deleting go through the services."""

from __future__ import annotations

from urllib.parse import urlencode

from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.db import DatabaseError
from django.db.models import F
from django.http import HttpResponseRedirect
from django.urls import path, reverse
from django.utils.html import format_html, format_html_join

from allocation import models as orm
from allocation import selectors, services
from allocation.admin import stock_overview
from allocation.admin.events import events_link
from allocation.admin.filters import BatchStatusFilter, SkuFilter
from allocation.admin.forms import BatchForm
from allocation.admin.outcomes import (
    error_text,
    is_reportable,
    merge,
    tell,
    through_admin,
    when,
)
from allocation.admin.paginators import EstimatedCountPaginator
from allocation.unit_of_work import ServiceUnavailable, retrying
from domain.exceptions import BatchNotFound, DomainError
from domain.model import UNSET

#: How many allocations a batch page lists (the rest: a link to the order lines).
PARTS_ON_BATCH_PAGE = 50


@admin.register(orm.Batch)
class BatchAdmin(admin.ModelAdmin):
    form = BatchForm
    list_display = ("reference", "sku", "status", "eta", "purchased", "allocated", "available")
    list_filter = (BatchStatusFilter, SkuFilter)
    date_hierarchy = "eta"
    search_fields = ("reference", "product__sku")
    search_help_text = "Search by reference or SKU."
    # Rule 1's preference order within each SKU. The SKU is the foreign key
    # column itself, so no column of the list needs a join. Django takes
    # expressions here; django-stubs 5.2.9 says strings only (fixed by its PR #3121).
    ordering = ("product_id", *orm.preference_order())  # type: ignore[arg-type]
    list_select_related = False
    show_full_result_count = False
    # No full-table COUNT(*) on an unfiltered big table (see allocation.admin.paginators).
    paginator = EstimatedCountPaginator

    # -- columns and read-only fields ----------------------------------------

    @admin.display(description="SKU", ordering="product_id")
    def sku(self, batch: orm.Batch) -> str:
        return batch.product_id

    @admin.display(description="status", ordering=orm.IN_STOCK_FIRST)
    def status(self, batch: orm.Batch) -> str:
        return batch.status.replace("_", " ")

    # Short headers, so that the list fits a laptop screen next to its filters.
    @admin.display(description="purchased", ordering="purchased_quantity")
    def purchased(self, batch: orm.Batch) -> int:
        return batch.purchased_quantity

    @admin.display(description="allocated", ordering="allocated_quantity")
    def allocated(self, batch: orm.Batch) -> int:
        return batch.allocated_quantity

    @admin.display(
        description="available", ordering=F("purchased_quantity") - F("allocated_quantity")
    )
    def available(self, batch: orm.Batch) -> int:
        return batch.available_quantity

    @admin.display(description="allocations held on this batch")
    def held_allocations(self, batch: orm.Batch):
        parts = selectors.recent_parts_on_batch(batch.pk, limit=PARTS_ON_BATCH_PAGE + 1)
        if not parts:
            return "None."
        rows = format_html_join(
            "",
            '<tr><td><a href="{}">{}</a></td><td>{}</td><td>{}</td><td>{}</td></tr>',
            (
                (
                    reverse("admin:allocation_orderline_change", args=[part.line_id]),
                    part.line.order_id,
                    part.qty,
                    part.line.qty,
                    when(part.line.allocated_at),
                )
                for part in parts[:PARTS_ON_BATCH_PAGE]
            ),
        )
        more = ""
        if len(parts) > PARTS_ON_BATCH_PAGE:
            url = reverse("admin:allocation_orderline_changelist")
            query = urlencode({"batch": batch.reference})
            more = format_html(
                '<p>Showing the {} most recent. <a href="{}?{}">All lines on this batch</a></p>',
                PARTS_ON_BATCH_PAGE,
                url,
                query,
            )
        return format_html(
            '<table id="held-allocations"><thead><tr><th>order</th><th>qty on this batch</th>'
            "<th>line qty</th><th>allocated at</th></tr></thead><tbody>{}</tbody></table>{}",
            rows,
            more,
        )

    @admin.display(description="events")
    def events(self, batch: orm.Batch):
        return events_link("Every event naming this batch", batch=batch.reference)

    def get_fieldsets(self, request, obj=None):
        if obj is None:
            return [(None, {"fields": ("reference", "sku", "purchased_quantity", "eta")})]
        return [
            (
                None,
                {
                    "fields": (
                        "reference",
                        "sku",
                        "status",
                        "purchased_quantity",
                        "allocated_quantity",
                        "available",
                        "eta",
                        "created_at",
                        "events",
                    )
                },
            ),
            ("Allocations", {"fields": ("held_allocations",)}),
        ]

    def get_readonly_fields(self, request, obj=None):
        if obj is None:
            return ()
        # A batch's identity and SKU are fixed once it exists; allocated
        # quantity is the sum of its parts, never typed in.
        fixed = (
            "reference",
            "sku",
            "status",
            "allocated_quantity",
            "available",
            "created_at",
            "held_allocations",
            "events",
        )
        if not self.has_change_permission(request, obj):
            # View only: the form's declared fields must go too.
            return (*fixed, "purchased_quantity", "eta")
        return fixed

    # -- writes go through the service layer ------------------------------------

    def save_model(self, request, obj, form, change):
        data = form.cleaned_data
        if not change:
            outcome = services.add_batch(
                reference=data["reference"],
                sku=data["sku"],
                purchased_quantity=data["purchased_quantity"],
                eta=data["eta"],
                uow=through_admin(request),
            )
        else:
            changed = set(form.changed_data)
            if not changed & {"purchased_quantity", "eta"}:
                return
            outcome = services.change_batch(
                reference=obj.reference,
                purchased_quantity=(
                    data["purchased_quantity"] if "purchased_quantity" in changed else None
                ),
                eta=data["eta"] if "eta" in changed else UNSET,
                uow=through_admin(request),
            )
        # The admin goes on with ``obj`` (log entry, redirect): give it the
        # stored row, as the service left it.
        obj.pk = orm.Batch.objects.values_list("pk", flat=True).get(reference=obj.reference)
        obj.refresh_from_db()
        obj._state.adding = False
        tell(request, self, outcome.change)

    def delete_model(self, request, obj):
        outcome = services.delete_batch(reference=obj.reference, uow=through_admin(request))
        tell(request, self, outcome.change)

    def delete_queryset(self, request, queryset):
        changes, gone = [], []
        for reference in queryset.order_by("reference").values_list("reference", flat=True):
            try:
                outcome = services.delete_batch(reference=reference, uow=through_admin(request))
                changes.append(outcome.change)
            except BatchNotFound:
                gone.append(reference)
            except ServiceUnavailable as error:
                # Each batch is its own unit of work: those done so far stay done.
                self.message_user(
                    request, f"{error} Stopped before deleting {reference}.", messages.ERROR
                )
                break
        tell(request, self, merge(changes))
        if gone:
            self.message_user(
                request, f"Already deleted by someone else: {', '.join(gone)}.", messages.WARNING
            )

    def get_deleted_objects(self, objs, request):
        """What a delete will do, as the service does it (never the ORM's cascade).

        The parts on a batch protect it from a plain ORM delete; the service
        instead takes its lines off and places them again or backorders them
        (rule 8), so nothing is "protected" and nothing else is deleted.
        """
        batches = list(objs)
        held = selectors.lines_held(batches)
        to_delete = []
        for batch in batches:
            lines = held.get(batch.pk, 0)
            note = (
                f" ({lines} order line{'s' if lines != 1 else ''} on it will be allocated "
                "again or backordered)"
                if lines
                else ""
            )
            to_delete.append(f"Batch: {batch.reference}{note}")
        perms_needed = set() if self.has_delete_permission(request) else {"batch"}
        return to_delete, {"batches": len(batches)}, perms_needed, []

    # -- domain and database errors become messages, never a 500 page -------------
    # The admin wraps a form's whole view in its own transaction, so the
    # services inside cannot start over: a transient database error is retried
    # here, around that transaction, as the API retries around its use cases.

    def changeform_view(self, request, object_id=None, form_url="", extra_context=None):
        try:
            return retrying(
                lambda: super(BatchAdmin, self).changeform_view(
                    request, object_id, form_url, extra_context
                )
            )
        except (DomainError, ServiceUnavailable, DatabaseError) as error:
            if isinstance(error, DatabaseError) and not is_reportable(error):
                raise
            # The admin's transaction has rolled back: nothing was written.
            self.message_user(request, error_text(error), messages.ERROR)
            if object_id is None:
                # Back to the add form, filled in again from what was typed.
                fields = ("reference", "sku", "purchased_quantity", "eta")
                query = urlencode({f: request.POST.get(f, "") for f in fields})
                return HttpResponseRedirect(f"{request.path}?{query}")
            if isinstance(error, BatchNotFound):
                return HttpResponseRedirect(reverse("admin:allocation_batch_changelist"))
            return HttpResponseRedirect(request.path)

    def delete_view(self, request, object_id, extra_context=None):
        try:
            return retrying(
                lambda: super(BatchAdmin, self).delete_view(request, object_id, extra_context)
            )
        except (DomainError, ServiceUnavailable, DatabaseError) as error:
            if isinstance(error, DatabaseError) and not is_reportable(error):
                raise
            self.message_user(request, error_text(error), messages.ERROR)
            return HttpResponseRedirect(reverse("admin:allocation_batch_changelist"))

    # -- the stock overview lives under the batches -------------------------------

    def get_urls(self):
        overview = path(
            "overview/",
            self.admin_site.admin_view(self.stock_overview_view),
            name="allocation_stock_overview",
        )
        # Before the default URLs, whose "<object_id>/" would swallow "overview/".
        return [overview, *super().get_urls()]

    def stock_overview_view(self, request):
        if not self.has_view_permission(request):
            raise PermissionDenied
        return stock_overview.stock_overview(request, self)
