"""The read side: every read query, for the API, the admin and the commands.

Reads never go through the aggregate: they ask the database for exactly what
a page or report shows, in preference order, with related rows fetched up
front. Writes are ``allocation.services``; nothing here changes a row.
"""

from __future__ import annotations

import itertools
import operator
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import date

from django.db import connection
from django.db.models import (
    BooleanField,
    Count,
    F,
    IntegerField,
    OuterRef,
    Prefetch,
    Q,
    QuerySet,
    Subquery,
    Sum,
)
from django.db.models.expressions import RawSQL
from django.db.models.functions import Coalesce

from allocation import models as orm
from allocation.repository import EVENT_ID_SEQUENCE, EVENT_RESERVATION
from domain.exceptions import BatchNotFound, LineNotFound, OrderNotFound, ProductNotFound
from domain.model import LineStatus

#: Rows fetched per round trip by the reports that stream (server-side cursor on PostgreSQL).
CHUNK = 2000
ALLOCATED = LineStatus.ALLOCATED.value
BACKORDERED = LineStatus.BACKORDERED.value

#: Parts in their batches' preference order (rule 1).
PART_PREFERENCE = orm.preference_order("batch__")


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


def line_parts() -> QuerySet:
    """Parts with their batches, in preference order: what a line's ``batches`` lists."""
    return orm.Allocation.objects.select_related("batch").order_by(*PART_PREFERENCE)


def lines():
    return orm.OrderLine.objects.prefetch_related(
        Prefetch("parts", queryset=line_parts())
    ).order_by("order_id", "product_id")


def line(order_id: str, sku: str) -> orm.OrderLine:
    found = lines().filter(order_id=order_id, product_id=sku).first()
    if found is None:
        raise LineNotFound(order_id, sku)
    return found


def order_lines(order_id: str) -> list[orm.OrderLine]:
    """Every line of an order, by SKU (SPEC 2.5)."""
    found = list(lines().filter(order_id=order_id).order_by("product_id"))
    if not found:
        raise OrderNotFound(order_id)
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


# -- the admin -----------------------------------------------------------------


def skus(limit: int) -> list[str]:
    """Up to ``limit`` SKUs, in order (one bounded query however many there are)."""
    return list(orm.Product.objects.order_by("sku").values_list("sku", flat=True)[:limit])


def recent_parts_on_batch(batch_id: int, limit: int) -> list[orm.Allocation]:
    """Up to ``limit`` parts held on a batch, with their lines, most recently allocated first."""
    return list(
        orm.Allocation.objects.filter(batch_id=batch_id)
        .select_related("line")
        .order_by(F("line__allocated_at").desc(nulls_last=True), "line__order_id")[:limit]
    )


def lines_held(batches: Iterable[orm.Batch]) -> dict[int, int]:
    """{batch id: how many lines hold a part on it}, for the batches that hold any."""
    return dict(
        orm.Allocation.objects.filter(batch__in=batches)
        .values("batch")
        .annotate(lines=Count("line"))
        .values_list("batch", "lines")
    )


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
    """Every SKU that has batches or waiting lines, with its stock totals, by SKU.

    The totals come from correlated subqueries, one per table, never from a
    join of batches and lines (a join would multiply each sum by the other
    side's row count).
    """
    batches = orm.Batch.objects.all()
    backorders = orm.OrderLine.objects.filter(status=BACKORDERED)
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


# -- the pick list (export_allocations) ----------------------------------------


def pick_list(
    *, order_id: str | None = None, sku: str | None = None
) -> Iterator[tuple[str, str, int, str, date | None]]:
    """``(order_id, sku, qty, batch reference, batch eta)`` per part, streamed.

    In the order the SPEC fixes (order_id, sku, then the parts in preference
    order, as the API lists a line's batches), read through
    ``QuerySet.iterator``, so memory stays flat however many parts there are.
    """
    parts = orm.Allocation.objects.all()
    if order_id is not None:
        parts = parts.filter(line__order_id=order_id)
    if sku is not None:
        parts = parts.filter(line__product_id=sku)
    return (
        parts.order_by("line__order_id", "line__product_id", *PART_PREFERENCE)
        .values_list("line__order_id", "line__product_id", "qty", "batch__reference", "batch__eta")
        .iterator(chunk_size=CHUNK)
    )


# -- stored invariants (check_stock) ---------------------------------------------
#
# Each check is one SQL statement (a filter, or a join with GROUP BY), so it
# scales with the database, not with Python memory, and sees one consistent
# snapshot of the rows it compares. The database's CHECK constraints already
# forbid some of these states; the checks look anyway, since a constraint can
# be dropped, disabled or bypassed by a restore. They report, never repair.


@dataclass(frozen=True)
class Checked:
    batches: int
    lines: int


def count_checked() -> Checked:
    return Checked(batches=orm.Batch.objects.count(), lines=orm.OrderLine.objects.count())


def stock_violations() -> Iterator[str]:
    """Every violation of a stored invariant, one sentence each, check by check."""
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


# -- events (SPEC 6.1) ----------------------------------------------------------------

_EVENT_TABLE = orm.Event._meta.db_table
# A reference anywhere in an event's data. PostgreSQL answers @> from the GIN
# index of migration 0003; SQLite looks inside each JSON document.
# The table's name is ours; the reference is a parameter.
_SQLITE_NAMES_BATCH = (
    f"(json_extract({_EVENT_TABLE}.data, '$.reference') = %s"  # noqa: S608
    f" OR EXISTS (SELECT 1 FROM json_each({_EVENT_TABLE}.data, '$.batches') j"
    "   WHERE json_extract(j.value, '$.reference') = %s)"
    f" OR EXISTS (SELECT 1 FROM json_each({_EVENT_TABLE}.data, '$.previous_batches') j"
    "   WHERE json_extract(j.value, '$.reference') = %s))"
)


def event_horizon() -> int | None:
    """The highest event id a reader may serve now without ever skipping one; None: no limit.

    PostgreSQL: see ``allocation.repository.EVENT_RESERVATION``. The sequence
    is read first (in a materialised CTE), then the reservations held (a
    subquery that depends on it, so it runs after); the events must then be
    read by a later statement, whose snapshot sees every transaction that
    released its reservation. SQLite has one writer at a time, committing
    in id order: every committed id can be served. The reader's own
    reservations do not count: its own events are visible to it already.
    """
    if connection.vendor != "postgresql":
        return None
    base = EVENT_RESERVATION >> 32
    with connection.cursor() as cursor:
        cursor.execute(
            f"""
            WITH s AS MATERIALIZED (
                SELECT CASE WHEN is_called THEN last_value ELSE 0 END AS last
                FROM {EVENT_ID_SEQUENCE}
            )
            SELECT LEAST(s.last, (
                SELECT MIN(((l.classid::bigint - %s) << 32) + l.objid::bigint)
                FROM pg_locks l
                WHERE l.locktype = 'advisory' AND l.objsubid = 1 AND l.classid >= %s
                  AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())
                  AND l.pid <> pg_backend_pid()
                  AND s.last IS NOT NULL
            ))
            FROM s
            """,  # noqa: S608 - the sequence's name is ours
            [base, base],
        )
        return cursor.fetchone()[0]


@dataclass(frozen=True)
class EventQuery:
    after: int = 0
    limit: int = 100
    sku: str | None = None
    types: tuple[str, ...] = ()
    order_id: str | None = None
    batch: str | None = None
    transaction: str | None = None


def event_page(query: EventQuery) -> list[orm.Event]:
    """Events with id > after, oldest first, at most ``limit``: two statements on
    PostgreSQL (the horizon, then the page), one on SQLite, whatever the filters."""
    horizon = event_horizon()
    events = orm.Event.objects.filter(id__gt=query.after)
    if horizon is not None:
        events = events.filter(id__lte=horizon)
    if query.sku is not None:
        events = events.filter(sku=query.sku)
    if query.types:
        events = events.filter(type__in=query.types)
    if query.order_id is not None:
        events = events.filter(order_id=query.order_id)
    if query.transaction is not None:
        events = events.filter(transaction=query.transaction)
    if query.batch is not None:
        events = events.filter(events_naming_batch(query.batch))
    return list(events.order_by("id")[: query.limit])


def events_naming_batch(reference: str) -> Q:
    """Events whose data names the batch: its ``reference``, ``batches`` or ``previous_batches``."""
    if connection.vendor == "postgresql":
        return (
            Q(data__contains={"reference": reference})
            | Q(data__contains={"batches": [{"reference": reference}]})
            | Q(data__contains={"previous_batches": [{"reference": reference}]})
        )
    names = RawSQL(_SQLITE_NAMES_BATCH, [reference] * 3, BooleanField())  # noqa: S611
    return Q(names)


def event(event_id: int) -> orm.Event | None:
    """One event by id, committed or not yet under the feed's horizon; None if none."""
    return orm.Event.objects.filter(id=event_id).first()


# -- replay_events --check (SPEC 6.3) ---------------------------------------------------


@dataclass
class ReplayResult:
    events: int = 0
    skus: int = 0


def _by_sku(rows: Iterator[tuple]) -> Iterator[tuple[str, list[tuple]]]:
    """Consecutive rows grouped by their first column (rows arrive ordered by it)."""
    for sku, group in itertools.groupby(rows, key=operator.itemgetter(0)):
        yield sku, list(group)


def replay_differences(result: ReplayResult) -> Iterator[str]:
    """Rebuild each SKU's batches and lines from its events alone and say where the stored
    state differs. One SKU in memory at a time: events, batches and lines are streamed in
    SKU order and merged."""
    events = _by_sku(
        orm.Event.objects.order_by("sku", "sku_seq")
        .values_list("sku", "sku_seq", "type", "data")
        .iterator(chunk_size=CHUNK)
    )
    batches = _by_sku(
        orm.Batch.objects.order_by("product_id")
        .values_list("product_id", "reference", "purchased_quantity", "eta")
        .iterator(chunk_size=CHUNK)
    )
    parts = (
        orm.Allocation.objects.order_by("line__product_id", "line_id")
        .values_list("line__product_id", "line__order_id", "batch__reference", "qty")
        .iterator(chunk_size=CHUNK)
    )
    lines = _by_sku(
        orm.OrderLine.objects.order_by("product_id")
        .values_list("product_id", "order_id", "qty")
        .iterator(chunk_size=CHUNK)
    )
    streams = {"events": events, "batches": batches, "lines": lines, "parts": _by_sku(parts)}
    heads = {name: next(stream, None) for name, stream in streams.items()}
    while any(heads.values()):
        sku = min(head[0] for head in heads.values() if head)
        rows = {}
        for name, head in heads.items():
            if head and head[0] == sku:
                rows[name] = head[1]
                heads[name] = next(streams[name], None)
            else:
                rows[name] = []
        result.skus += 1
        result.events += len(rows["events"])
        yield from _replay_sku(sku, rows)


def _replay_sku(sku: str, rows: dict[str, list[tuple]]) -> Iterator[str]:
    rebuilt_batches: dict[str, tuple] = {}
    rebuilt_lines: dict[str, tuple] = {}
    expected_seq = 1
    for _, seq, type_, data in rows["events"]:
        if seq != expected_seq:
            yield f"{sku}: event sku_seq {seq} where {expected_seq} was expected"
        expected_seq = seq + 1
        if type_ in ("batch_created", "batch_changed"):
            rebuilt_batches[data["reference"]] = (data["purchased_quantity"], data["eta"])
        elif type_ == "batch_deleted":
            rebuilt_batches.pop(data["reference"], None)
        elif type_ in ("line_allocated", "line_moved"):
            placed = sorted((p["reference"], p["qty"]) for p in data["batches"])
            rebuilt_lines[data["order_id"]] = (data["qty"], placed)
        elif type_ == "line_backordered":
            rebuilt_lines[data["order_id"]] = (data["qty"], [])
        elif type_ == "line_deallocated":
            rebuilt_lines.pop(data["order_id"], None)
    stored_batches = {
        ref: (purchased, eta.isoformat() if eta else None)
        for _, ref, purchased, eta in rows["batches"]
    }
    held: dict[str, list] = {}
    for _, order_id, reference, qty in rows["parts"]:
        held.setdefault(order_id, []).append((reference, qty))
    stored_lines = {
        order_id: (qty, sorted(held.get(order_id, []))) for _, order_id, qty in rows["lines"]
    }
    for ref in sorted(stored_batches.keys() | rebuilt_batches.keys()):
        stored, rebuilt = stored_batches.get(ref), rebuilt_batches.get(ref)
        if stored != rebuilt:
            yield f"{sku}: batch {ref}: stored {_state(stored)}, events say {_state(rebuilt)}"
    for order_id in sorted(stored_lines.keys() | rebuilt_lines.keys()):
        stored, rebuilt = stored_lines.get(order_id), rebuilt_lines.get(order_id)
        if stored != rebuilt:
            yield (f"{sku}: line {order_id}: stored {_state(stored)}, events say {_state(rebuilt)}")


def _state(value) -> str:
    return "nothing" if value is None else repr(value)
