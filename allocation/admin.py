"""Django admin: the warehouse operations console.

Nothing here writes rows itself. Adding, changing and deleting batches and
deallocating lines call ``allocation.services`` (the same use cases as the
API), so rules 8-9 apply, and the outcome is told with ``message_user``.
Changelists are a fixed number of queries however long they are.
"""

from __future__ import annotations

from collections.abc import Iterable
from urllib.parse import urlencode

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.db import DatabaseError
from django.db.models import Count, F, Prefetch
from django.http import HttpRequest, HttpResponseRedirect
from django.urls import path, reverse
from django.utils import timezone
from django.utils.html import format_html, format_html_join

from allocation import admin_views, services
from allocation import models as orm
from allocation.paginators import EstimatedCountPaginator
from allocation.unit_of_work import ServiceUnavailable, classify
from domain.exceptions import BatchNotFound, DomainError, LineNotFound
from domain.model import (
    MAX_QUANTITY,
    UNSET,
    Allocation,
    BatchStatus,
    LineStatus,
    StockChange,
    is_identifier,
)

# The default admin site gets an index with a link to the stock overview.
admin.site.index_template = "admin/allocation/index.html"

#: How many order ids a message names before it says "and N more".
NAMED_IN_MESSAGE = 20
#: How many allocations a batch page lists (the rest: a link to the order lines).
PARTS_ON_BATCH_PAGE = 50


def _names(lines: Iterable[Allocation], *, with_sku: bool = False) -> str:
    names = [f"{a.order_id} ({a.sku})" if with_sku else a.order_id for a in lines]
    shown = ", ".join(names[:NAMED_IN_MESSAGE])
    if len(names) > NAMED_IN_MESSAGE:
        shown += f" and {len(names) - NAMED_IN_MESSAGE} more"
    return shown


def describe_change(change: StockChange, *, with_sku: bool = False) -> str:
    """'Reallocated: o1, o2. Backordered: o3. Served backorders: o4.' (empty if nothing moved)."""
    sentences = []
    if change.reallocated:
        sentences.append(f"Reallocated: {_names(change.reallocated, with_sku=with_sku)}.")
    if change.backordered:
        sentences.append(f"Backordered: {_names(change.backordered, with_sku=with_sku)}.")
    if change.served:
        sentences.append(f"Served backorders: {_names(change.served, with_sku=with_sku)}.")
    return " ".join(sentences)


def _merge(changes: Iterable[StockChange]) -> StockChange:
    """Several changes in a row as one: a line's last outcome is the one that stands."""
    outcome: dict[tuple[str, str], tuple[str, Allocation]] = {}
    for change in changes:
        for kind in ("reallocated", "backordered", "served"):
            for line in getattr(change, kind):
                key = (line.sku, line.order_id)
                if kind == "reallocated" and outcome.get(key, ("",))[0] == "served":
                    continue  # served first, then moved again: still a served backorder
                outcome.pop(key, None)
                outcome[key] = (kind, line)
    merged = StockChange()
    for kind, line in outcome.values():
        getattr(merged, kind).append(line)
    return merged


def _tell(request: HttpRequest, model_admin: admin.ModelAdmin, change: StockChange, **kw) -> None:
    text = describe_change(change, **kw)
    if text:
        level = messages.WARNING if change.backordered else messages.SUCCESS
        model_admin.message_user(request, text, level)


def _is_transient(error: DatabaseError) -> bool:
    return classify(error) is not None


class SkuFilter(admin.SimpleListFilter):
    title = "SKU"
    parameter_name = "sku"

    #: With more SKUs than this the filter offers only the one chosen (the
    #: search box finds the others): 100,000 links would make a page of megabytes.
    max_listed = 100

    def lookups(self, request, model_admin):
        # One bounded query whatever the list shows.
        skus = list(orm.Product.objects.values_list("sku", flat=True)[: self.max_listed + 1])
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
        return [(BatchStatus.IN_STOCK.value, "in stock"), (BatchStatus.INBOUND.value, "inbound")]

    def queryset(self, request, queryset):
        if self.value() == BatchStatus.IN_STOCK.value:
            return queryset.filter(eta__isnull=True)
        if self.value() == BatchStatus.INBOUND.value:
            return queryset.filter(eta__isnull=False)
        return queryset


class BatchForm(forms.ModelForm):
    """Shape only; the service decides what a new quantity does to the lines."""

    # The ORM field is the ``product`` foreign key; people type a SKU, and
    # the service creates the product row when the SKU is new.
    sku = forms.CharField(label="SKU", max_length=255)
    purchased_quantity = forms.IntegerField(min_value=0, max_value=MAX_QUANTITY)

    class Meta:
        model = orm.Batch
        fields = ("reference", "purchased_quantity", "eta")
        error_messages = {
            "reference": {"unique": "A batch with this reference already exists."},
        }

    def clean_reference(self):
        return _identifier(self.cleaned_data["reference"])

    def clean_sku(self):
        return _identifier(self.cleaned_data["sku"])


def _identifier(value: str) -> str:
    if not is_identifier(value):
        raise forms.ValidationError(
            "Use 1-255 letters, digits and . _ - : (starting with a letter or digit)."
        )
    return value


@admin.register(orm.Batch)
class BatchAdmin(admin.ModelAdmin):
    form = BatchForm
    list_display = ("reference", "sku", "status", "eta", "purchased", "allocated", "available")
    list_filter = (BatchStatusFilter, SkuFilter)
    date_hierarchy = "eta"
    search_fields = ("reference", "product__sku")
    search_help_text = "Search by reference or SKU."
    # Rule 1's preference order within each SKU. The SKU is the foreign key
    # column itself, so no column of the list needs a join.
    ordering = ("product_id", F("eta").asc(nulls_first=True), "created_at", "reference")
    list_select_related = False
    show_full_result_count = False
    # No full-table COUNT(*) on an unfiltered big table (see allocation.paginators).
    paginator = EstimatedCountPaginator

    # -- columns and read-only fields ----------------------------------------

    @admin.display(description="SKU", ordering="product_id")
    def sku(self, batch: orm.Batch) -> str:
        return batch.product_id

    @admin.display(description="status", ordering=F("eta").asc(nulls_first=True))
    def status(self, batch: orm.Batch) -> str:
        return "in stock" if batch.eta is None else "inbound"

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
        parts = list(
            orm.Allocation.objects.filter(batch_id=batch.pk)
            .select_related("line")
            .order_by(F("line__allocated_at").desc(nulls_last=True), "line__order_id")[
                : PARTS_ON_BATCH_PAGE + 1
            ]
        )
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
                    _when(part.line.allocated_at),
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
            )
        # The admin goes on with ``obj`` (log entry, redirect): give it the
        # stored row, as the service left it.
        obj.pk = orm.Batch.objects.values_list("pk", flat=True).get(reference=obj.reference)
        obj.refresh_from_db()
        obj._state.adding = False
        _tell(request, self, outcome.change)

    def delete_model(self, request, obj):
        outcome = services.delete_batch(reference=obj.reference)
        _tell(request, self, outcome.change)

    def delete_queryset(self, request, queryset):
        changes, gone = [], []
        for reference in queryset.order_by("reference").values_list("reference", flat=True):
            try:
                changes.append(services.delete_batch(reference=reference).change)
            except BatchNotFound:
                gone.append(reference)
            except ServiceUnavailable as error:
                # Each batch is its own unit of work: those done so far stay done.
                self.message_user(
                    request, f"{error} Stopped before deleting {reference}.", messages.ERROR
                )
                break
        _tell(request, self, _merge(changes))
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
        held = dict(
            orm.Allocation.objects.filter(batch__in=batches)
            .values("batch")
            .annotate(lines=Count("line"))
            .values_list("batch", "lines")
        )
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

    def changeform_view(self, request, object_id=None, form_url="", extra_context=None):
        try:
            return super().changeform_view(request, object_id, form_url, extra_context)
        except (DomainError, ServiceUnavailable, DatabaseError) as error:
            if isinstance(error, DatabaseError) and not _is_transient(error):
                raise
            # The admin's transaction has rolled back: nothing was written.
            self.message_user(request, _error_text(error), messages.ERROR)
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
            return super().delete_view(request, object_id, extra_context)
        except (DomainError, ServiceUnavailable, DatabaseError) as error:
            if isinstance(error, DatabaseError) and not _is_transient(error):
                raise
            self.message_user(request, _error_text(error), messages.ERROR)
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
        return admin_views.stock_overview(request, self)


def _when(moment) -> str:
    return timezone.localtime(moment).strftime("%Y-%m-%d %H:%M:%S") if moment else ""


def _error_text(error: Exception) -> str:
    if isinstance(error, DatabaseError):
        return "The database is busy; nothing was changed. Please try again."
    return f"{error} Nothing was changed."


@admin.register(orm.OrderLine)
class OrderLineAdmin(admin.ModelAdmin):
    list_display = ("order_id", "sku", "qty", "status_badge", "batches", "requested_at")
    list_filter = ("status", SkuFilter, LinesOnBatchFilter)
    search_fields = ("order_id",)
    search_help_text = "Search by order id."
    ordering = ("-requested_at", "order_id")
    list_select_related = False
    show_full_result_count = False
    # No full-table COUNT(*) on an unfiltered big table (see allocation.paginators).
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
    )
    readonly_fields = fields

    def get_queryset(self, request):
        # Parts come in one extra query for the whole page, in preference
        # order, each with its batch (no query per row).
        parts = orm.Allocation.objects.select_related("batch").order_by(
            F("batch__eta").asc(nulls_first=True), "batch__created_at", "batch__reference"
        )
        return super().get_queryset(request).prefetch_related(Prefetch("parts", queryset=parts))

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
                changes.append(services.deallocate(order_id=line.order_id, sku=line.product_id))
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
            shown = ", ".join(names[:NAMED_IN_MESSAGE])
            if len(names) > NAMED_IN_MESSAGE:
                shown += f" and {len(names) - NAMED_IN_MESSAGE} more"
            plural = "s" if len(names) != 1 else ""
            self.message_user(
                request, f"Deallocated {len(names)} line{plural}: {shown}.", messages.SUCCESS
            )
        # A backorder served by one deallocation and then deallocated itself
        # (it was selected too) is gone, not served.
        removed_keys = set(removed)
        served = [a for a in _merge(changes).served if (a.sku, a.order_id) not in removed_keys]
        _tell(request, self, StockChange(served=served), with_sku=True)
        if gone:
            self.message_user(
                request, f"Already removed by someone else: {', '.join(gone)}.", messages.WARNING
            )
