"""allocate_orders: allocate a file of order lines, each as POST /api/allocations/ would.

1. Validate every line while streaming it into a temporary table. A malformed
   file allocates nothing.
2. In one transaction, allocate SKU by SKU: the lines are read back ordered by
   (SKU, line number), a few SKUs at a time; each group is one unit of work
   that locks its SKUs in sorted order, loads each ``Product`` once (with the
   lines already recorded for the group's order ids) and calls
   ``Product.allocate`` for each line in file order, then writes once.

A SKU is the consistency boundary: lines of different SKUs never affect each
other, so allocating per SKU in file order gives every line the outcome it
would get from one API call after another down the file, with far fewer
queries. ``invalid_sku``, ``out_of_stock`` and ``line_conflict`` are outcomes
reported per line, not errors. The report is built from a second temporary
table in file order, so memory does not grow with the file.
"""

from __future__ import annotations

import csv
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TextIO

from django.db import connection, transaction
from django.utils import timezone

from allocation import models as orm
from allocation.bulk.staging import StagingTable, identifier_type, on_postgres, table
from allocation.management import fields
from allocation.management.reading import ErrorList, InvalidInput, Progress, Record, RowError
from allocation.unit_of_work import DjangoUnitOfWork
from domain.exceptions import InvalidSku, LineConflict, OutOfStock
from domain.model import Allocation, OrderLine

COLUMNS = ("order_id", "sku", "qty")
REPORT_COLUMNS = ("order_id", "sku", "qty", "outcome", "batches")
OUTCOMES = ("allocated", "already_allocated", "out_of_stock", "invalid_sku", "line_conflict")

#: Lines read back at a time, and SKUs locked and loaded per unit of work:
#: together they bound memory (a SKU may have a thousand batches with stock).
PAGE_LINES = 10_000
SKUS_PER_UNIT = 50
REPORT_PAGE = 5000
#: Lines allocated from which a run refreshes the planner statistics of the line tables.
ANALYZE_AFTER = 10_000


@dataclass
class AllocationSummary:
    counts: Counter = field(default_factory=Counter)

    def __str__(self) -> str:
        return ", ".join(f"{outcome} {self.counts[outcome]}" for outcome in OUTCOMES)


def allocate_orders(
    records: Iterable[Record],
    report: TextIO,
    *,
    progress: Callable[[int], Progress | None] | None = None,
) -> AllocationSummary:
    """Validate ``records``, allocate them in one transaction, write the report CSV.

    ``progress(total)`` is called once the file is read, and returns something
    with ``update(n)`` (a progress bar) or None. Raises ``InvalidInput`` when
    the file is malformed (nothing allocated).
    """
    summary = AllocationSummary()
    with transaction.atomic():
        lines, count = _stage(records)
        outcomes = StagingTable(
            "bulk_order_outcomes",
            [
                ("line", "bigint PRIMARY KEY"),
                ("order_id", identifier_type()),
                ("sku", identifier_type()),
                ("qty", "integer NOT NULL"),
                ("outcome", "varchar(32) NOT NULL"),
                ("batches", "text NOT NULL"),
            ],
        ).create()
        bar = progress(count) if progress else None
        clock = _Clock()
        select = f"SELECT sku, line, order_id, qty FROM {lines.name} WHERE {{after}}"  # noqa: S608 - our own table names
        for page in lines.pages(select, key=["sku", "line"], size=PAGE_LINES):
            results = []
            for group in _groups_of_skus(page, SKUS_PER_UNIT):
                results += _allocate_group(group, clock)
            outcomes.fill(results)
            summary.counts.update(row[4] for row in results)
            if bar is not None:
                bar.update(len(page))
        _write_report(outcomes, report)
        outcomes.drop()
        lines.drop()
        if on_postgres() and summary.counts["allocated"] >= ANALYZE_AFTER:
            # As after a bulk load of batches: the planner should know the
            # new size of these tables now, not when autovacuum comes round.
            with connection.cursor() as cursor:
                cursor.execute(f"ANALYZE {table(orm.OrderLine)}, {table(orm.Allocation)}")
    return summary


def _stage(records: Iterable[Record]) -> tuple[StagingTable, int]:
    lines = StagingTable(
        "bulk_order_lines",
        [
            ("line", "bigint NOT NULL"),
            ("order_id", identifier_type()),
            ("sku", identifier_type()),
            ("qty", "integer NOT NULL"),
        ],
    )
    lines.create()
    errors = ErrorList()
    count = lines.fill(_valid_rows(records, errors))
    if errors:
        raise InvalidInput(errors)
    lines.index("sku", "line")
    return lines, count


def _valid_rows(records: Iterable[Record], errors: ErrorList) -> Iterator[tuple]:
    for line, values in records:
        if type(values) is not tuple:
            for error in values:
                errors.add(error)
            continue
        checked: list[str | int] = []
        for name, value in zip(COLUMNS, values, strict=True):
            try:
                if name == "qty":
                    checked.append(fields.quantity(value, minimum=1))
                else:
                    checked.append(fields.identifier(value))
            except fields.FieldError as error:
                errors.add(RowError(line, name, str(error)))
        # Once the file is known to be bad nothing more needs staging;
        # reading on only finds the rest of its errors.
        if len(checked) == len(COLUMNS) and not errors:
            yield line, *checked


def _groups_of_skus(rows: list[tuple], size: int) -> Iterator[list[tuple]]:
    """Split rows ordered by SKU into runs of at most ``size`` SKUs."""
    group: list[tuple] = []
    skus = 0
    previous = None
    for row in rows:
        if row[0] != previous:
            if skus == size:
                yield group
                group, skus = [], 0
            skus += 1
            previous = row[0]
        group.append(row)
    if group:
        yield group


def _allocate_group(rows: list[tuple], clock: _Clock) -> list[tuple]:
    """One unit of work: lock and load the group's SKUs, allocate each line in file order."""
    wanted: dict[str, set[str]] = defaultdict(set)
    for sku, _line, order_id, _qty in rows:
        wanted[sku].add(order_id)
    results = []
    uow = DjangoUnitOfWork()
    with uow:
        products = uow.products.get_many(wanted)
        for sku, line, order_id, qty in rows:
            outcome, batches = "invalid_sku", ""
            product = products.get(sku)
            if product is not None:
                try:
                    allocation, created = product.allocate(
                        OrderLine(order_id, sku, qty), now=clock()
                    )
                except (InvalidSku, OutOfStock, LineConflict) as refused:
                    outcome = refused.code  # the report's outcomes are the API's codes
                else:
                    outcome = "allocated" if created else "already_allocated"
                    batches = _parts(allocation)
            results.append((line, order_id, sku, qty, outcome, batches))
        uow.commit()
    return results


def _parts(allocation: Allocation) -> str:
    """``ref:qty;ref:qty``, in preference order (the order the domain keeps parts in)."""
    return ";".join(f"{part.batch_reference}:{part.qty}" for part in allocation.parts)


def _write_report(outcomes: StagingTable, report: TextIO) -> None:
    writer = csv.writer(report, lineterminator="\n")
    writer.writerow(REPORT_COLUMNS)
    select = (
        f"SELECT line, order_id, sku, qty, outcome, batches FROM {outcomes.name} WHERE {{after}}"  # noqa: S608 - our own table names
    )
    for page in outcomes.pages(select, key=["line"], size=REPORT_PAGE):
        writer.writerows(row[1:] for row in page)


class _Clock:
    """Now, but strictly later than the last reading.

    A line's ``requested_at`` orders backorders and reallocation (rules 8-9),
    so lines of one SKU must keep their file order even within one microsecond.
    """

    def __init__(self) -> None:
        self._last: datetime | None = None

    def __call__(self) -> datetime:
        now = timezone.now()
        if self._last is not None and now <= self._last:
            now = self._last + timedelta(microseconds=1)
        self._last = now
        return now
