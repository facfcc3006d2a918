"""allocate_orders: allocate a file of order lines, each as POST /api/allocations/ would.

1. Validate every line while streaming it into a temporary table. A malformed
   file allocates nothing.
2. In one transaction, allocate SKU by SKU: the lines are read back ordered by
   (SKU, line number), a few SKUs at a time; each group goes to
   ``services.allocate_many`` (one unit of work: its SKUs locked in sorted
   order, each ``Product`` loaded once, each line allocated in file order,
   written once, with its events). All the file's events share one
   ``transaction`` and the ``--actor``.

A SKU is the consistency boundary: lines of different SKUs never affect each
other, so allocating per SKU in file order gives every line the outcome it
would get from one API call after another down the file, with far fewer
queries. ``invalid_sku``, ``out_of_stock`` and ``line_conflict`` are outcomes
reported per line, not errors. The report is built from a second temporary
table in file order, so memory does not grow with the file.
"""

from __future__ import annotations

import csv
import uuid
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import TextIO

from django.db import connection, transaction

from allocation import models as orm
from allocation import services
from allocation.management import fields
from allocation.management.reading import ErrorList, InvalidInput, Progress, Record, RowError
from allocation.repository.staging import StagingTable, identifier_type, on_postgres, table
from allocation.services import StrictClock
from allocation.unit_of_work import DjangoUnitOfWork
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
    actor: str | None = None,
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
        clock = StrictClock()
        origin = _Origin(actor)
        select = f"SELECT sku, line, order_id, qty FROM {lines.name} WHERE {{after}}"  # noqa: S608 - our own table names
        for page in lines.pages(select, key=["sku", "line"], size=PAGE_LINES):
            results = []
            for group in _groups_of_skus(page, SKUS_PER_UNIT):
                results += _allocate_group(group, clock, origin)
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


def _allocate_group(rows: list[tuple], clock: StrictClock, origin: _Origin) -> list[tuple]:
    """One unit of work for a few SKUs' lines, in file order: ``services.allocate_many``."""
    outcomes = services.allocate_many(
        lines=[OrderLine(order_id, sku, qty) for sku, _line, order_id, qty in rows],
        uow=DjangoUnitOfWork(actor=origin.actor, source="cli", transaction=origin.transaction),
        clock=clock,
    )
    return [
        (line, order_id, sku, qty, result.outcome, _parts(result.allocation))
        for (sku, line, order_id, qty), result in zip(rows, outcomes, strict=True)
    ]


def _parts(allocation: Allocation | None) -> str:
    """``ref:qty;ref:qty``, in preference order (the order the domain keeps parts in)."""
    if allocation is None:
        return ""
    return ";".join(f"{part.batch_reference}:{part.qty}" for part in allocation.parts)


@dataclass(frozen=True)
class _Origin:
    """Who runs the file, and the one ``transaction`` all its events share (SPEC 6)."""

    actor: str | None
    transaction: str = field(default_factory=lambda: uuid.uuid4().hex)


def _write_report(outcomes: StagingTable, report: TextIO) -> None:
    writer = csv.writer(report, lineterminator="\n")
    writer.writerow(REPORT_COLUMNS)
    select = (
        f"SELECT line, order_id, sku, qty, outcome, batches FROM {outcomes.name} WHERE {{after}}"  # noqa: S608 - our own table names
    )
    for page in outcomes.pages(select, key=["line"], size=REPORT_PAGE):
        writer.writerows(row[1:] for row in page)
