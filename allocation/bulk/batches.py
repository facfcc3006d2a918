"""load_batches: upsert batches by reference from a file, all or nothing.

1. Validate every row while streaming it into a temporary table; then check
   the whole file with SQL (a reference twice, a row that would change an
   existing batch's SKU). Any error: nothing is written.
2. In one transaction, lock the SKUs touched (in sorted order, as every
   multi-SKU writer does) and apply:

   - SKUs where no domain decision is needed are written set-based: new
     batches are inserted and existing ones get their new quantity and eta
     in a few statements. That is every SKU with no backordered line and no
     batch lowered below what it has allocated: there rules 8-9 move nothing,
     so ``Product.change_batch``/``add_batch`` would only set those fields.
   - Every other SKU goes row by row, in file order, through the services
     (``add_batch``/``change_batch``), exactly as the API would: lines are
     taken off lowered batches and placed again (rule 8), and new stock
     serves backorders (rule 9).

``created``/``updated``/``unchanged`` are counted against the database as it
was: a row is ``unchanged`` when its batch exists with the same quantity and eta.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import date

from django.db import connection, transaction
from django.utils import timezone

from allocation import models as orm
from allocation import services
from allocation.bulk.staging import (
    StagingTable,
    column,
    identifier_type,
    is_distinct,
    on_postgres,
    table,
)
from allocation.management import fields
from allocation.management.reading import ErrorList, InvalidInput, Record, RowError
from domain.model import LineStatus

COLUMNS = ("reference", "sku", "purchased_quantity", "eta")
OPTIONAL = ("eta",)

#: Rows fetched at a time for the ones that go through the services.
SERVICE_PAGE = 500
#: New batches from which a load refreshes the table's planner statistics.
ANALYZE_AFTER = 10_000


@dataclass(frozen=True)
class LoadSummary:
    created: int = 0
    updated: int = 0
    unchanged: int = 0

    def __str__(self) -> str:
        return f"created {self.created}, updated {self.updated}, unchanged {self.unchanged}"


def load_batches(records: Iterable[Record], *, dry_run: bool = False) -> LoadSummary:
    """Validate ``records`` (from ``reading.records``), then upsert them in one transaction.

    Raises ``InvalidInput`` (nothing written) when any row is wrong.
    """
    with transaction.atomic():
        loader = _Loader()
        loader.stage(records)
        loader.check()
        summary = loader.apply(timezone.now())
        loader.staging.drop()
        if dry_run:
            transaction.set_rollback(True)
    return summary


class _Loader:
    def __init__(self) -> None:
        pg = on_postgres()
        self.staging = StagingTable(
            "bulk_batch_rows",
            [
                ("line", "bigint NOT NULL"),
                ("reference", identifier_type()),
                ("sku", identifier_type()),
                ("purchased_quantity", "integer NOT NULL"),
                # SQLite stores dates as ISO text, as Django does.
                ("eta", "date" if pg else "text"),
            ],
        )
        self.complex = StagingTable("bulk_batch_skus", [("sku", identifier_type("PRIMARY KEY"))])
        self.errors = ErrorList()
        self.names = {
            "rows": self.staging.name,
            "skus": self.complex.name,
            "batch": table(orm.Batch),
            "b_sku": column(orm.Batch, "product"),
            "product": table(orm.Product),
            "line": table(orm.OrderLine),
            "l_sku": column(orm.OrderLine, "product"),
        }

    def sql(self, template: str) -> str:
        return template.format(**self.names)

    # -- 1. validate --------------------------------------------------------

    def stage(self, records: Iterable[Record]) -> None:
        if on_postgres():
            # For this transaction only: the checks group and sort the whole
            # file, which the 4 MB default would spill to disk.
            with connection.cursor() as cursor:
                cursor.execute("SET LOCAL work_mem = '64MB'")
        self.staging.create()
        self.staging.fill(self._valid_rows(records))

    def _valid_rows(self, records: Iterable[Record]) -> Iterator[tuple]:
        identifier = fields.IDENTIFIER_RE.match
        max_quantity = fields.MAX_QUANTITY
        etas: dict[object, str | None] = {"": None, fields.MISSING: None}
        for line, values in records:
            if type(values) is not tuple:
                for error in values:
                    self.errors.add(error)
                continue
            reference, sku, quantity, eta = values
            # The common case (CSV text, all valid) in a few cheap tests;
            # anything else gets the full rules, which also say what is wrong.
            if (
                type(reference) is str
                and type(sku) is str
                and type(quantity) is str
                and quantity.isascii()
                and quantity.isdigit()
                and (len(quantity) < 10 or (len(quantity) == 10 and int(quantity) <= max_quantity))
                and identifier(reference)
                and identifier(sku)
                and (type(eta) is str or eta is fields.MISSING)
            ):
                if eta not in etas:
                    try:
                        etas[eta] = fields.eta(eta)
                    except fields.FieldError:
                        yield from self._validate(line, values)
                        continue
                yield line, reference, sku, quantity, etas[eta]
                continue
            yield from self._validate(line, values)

    def _validate(self, line: int, values: tuple) -> Iterator[tuple]:
        """The valid row, or nothing (its errors recorded)."""
        reference, sku, quantity, eta = values
        checked = []
        failed = False
        for name, check, value in (
            ("reference", fields.identifier, reference),
            ("sku", fields.identifier, sku),
            ("purchased_quantity", _purchased_quantity, quantity),
            ("eta", fields.eta, eta),
        ):
            try:
                checked.append(check(value))
            except fields.FieldError as error:
                self.errors.add(RowError(line, name, str(error)))
                failed = True
        if not failed:
            yield (line, *checked)

    def check(self) -> None:
        """The rules about the file as a whole, then raise if anything was wrong."""
        with connection.cursor() as cursor:
            duplicates = ErrorList()
            cursor.execute(
                self.sql(
                    "SELECT r.line, f.first FROM {rows} r JOIN ("
                    " SELECT reference, MIN(line) AS first FROM {rows}"
                    " GROUP BY reference HAVING COUNT(*) > 1"
                    ") f ON f.reference = r.reference WHERE r.line > f.first ORDER BY r.line"
                )
            )
            for line, first in cursor.fetchall():
                duplicates.add(RowError(line, "reference", f"the same reference as line {first}"))
            sku_changes = ErrorList()
            cursor.execute(
                self.sql(
                    "SELECT r.line, r.reference, b.{b_sku}, r.sku FROM {rows} r"
                    " JOIN {batch} b ON b.reference = r.reference"
                    " WHERE b.{b_sku} <> r.sku ORDER BY r.line"
                )
            )
            for line, reference, sku, requested in cursor.fetchall():
                sku_changes.add(
                    RowError(
                        line,
                        "sku",
                        f"batch {reference} holds SKU {sku}; its SKU cannot change to {requested}",
                    )
                )
        self.errors.merge(duplicates)
        self.errors.merge(sku_changes)
        if self.errors:
            raise InvalidInput(self.errors)

    # -- 2. apply -----------------------------------------------------------

    def apply(self, now) -> LoadSummary:
        summary = self._count()
        with connection.cursor() as cursor:
            self._lock_products(cursor, now)
            self._find_complex_skus(cursor)
            self._write_set_based(cursor, now)
        self._write_through_services()
        self.complex.drop()
        return summary

    def _count(self) -> LoadSummary:
        changed = is_distinct("b.eta", "r.eta")
        with connection.cursor() as cursor:
            cursor.execute(
                self.sql(
                    "SELECT"  # noqa: S608 - our own table names
                    " COALESCE(SUM(CASE WHEN b.id IS NULL THEN 1 ELSE 0 END), 0),"
                    " COALESCE(SUM(CASE WHEN b.id IS NOT NULL AND (b.purchased_quantity"
                    f" <> r.purchased_quantity OR {changed}) THEN 1 ELSE 0 END), 0),"
                    " COUNT(b.id)"
                    " FROM {rows} r LEFT JOIN {batch} b ON b.reference = r.reference"
                )
            )
            created, updated, existing = cursor.fetchone()
        return LoadSummary(created=created, updated=updated, unchanged=existing - updated)

    def _lock_products(self, cursor, now) -> None:
        # New SKUs first (sorted, so two loads insert them in the same order),
        # then every SKU of the file locked in sorted order: requests and
        # other loads for these SKUs wait until this load commits, and lock
        # order is the same for everyone, so nobody deadlocks.
        cursor.execute(
            self.sql(
                "INSERT INTO {product} (sku, created_at)"
                " SELECT DISTINCT r.sku, %s FROM {rows} r"
                " WHERE NOT EXISTS (SELECT 1 FROM {product} p WHERE p.sku = r.sku)"
                " ORDER BY r.sku"
                " ON CONFLICT (sku) DO NOTHING"
            ),
            [connection.ops.adapt_datetimefield_value(now)],
        )
        if on_postgres():
            cursor.execute(
                self.sql(
                    "SELECT p.sku FROM {product} p WHERE p.sku IN (SELECT sku FROM {rows})"
                    " ORDER BY p.sku FOR UPDATE"
                )
            )
            # Fetched in chunks: a file may touch a million SKUs.
            while cursor.fetchmany(10_000):
                pass

    def _find_complex_skus(self, cursor) -> None:
        """SKUs whose rows need the domain: backorders waiting, or a batch lowered too far."""
        self.complex.create()
        cursor.execute(
            self.sql(
                "INSERT INTO {skus} (sku)"
                " SELECT d.sku FROM (SELECT DISTINCT sku FROM {rows}) d"
                " WHERE EXISTS (SELECT 1 FROM {line} l WHERE l.{l_sku} = d.sku AND l.status = %s)"
                " UNION"
                " SELECT r.sku FROM {rows} r JOIN {batch} b ON b.reference = r.reference"
                " WHERE r.purchased_quantity < b.allocated_quantity"
            ),
            [LineStatus.BACKORDERED.value],
        )

    def _write_set_based(self, cursor, now) -> None:
        simple = "NOT EXISTS (SELECT 1 FROM {skus} c WHERE c.sku = r.sku)"
        changed = is_distinct("{batch}.eta", "r.eta")
        cursor.execute(
            self.sql(
                "UPDATE {batch} SET purchased_quantity = r.purchased_quantity, eta = r.eta"  # noqa: S608 - our own table names
                " FROM {rows} r WHERE {batch}.reference = r.reference"
                f" AND ({{batch}}.purchased_quantity <> r.purchased_quantity OR {changed})"
                f" AND {simple}"
            )
        )
        # Sorted by the preference index's key: the inserts then walk that
        # index in order instead of all over it.
        cursor.execute(
            self.sql(
                "INSERT INTO {batch}"  # noqa: S608 - our own table names
                " (reference, {b_sku}, purchased_quantity, allocated_quantity, eta, created_at)"
                " SELECT r.reference, r.sku, r.purchased_quantity, 0, r.eta, %s FROM {rows} r"
                " WHERE NOT EXISTS (SELECT 1 FROM {batch} b WHERE b.reference = r.reference)"
                f" AND {simple}"
                " ORDER BY r.sku, r.eta, r.reference"
            ),
            [connection.ops.adapt_datetimefield_value(now)],
        )
        if on_postgres() and cursor.rowcount >= ANALYZE_AFTER:
            # A big load changes the table's statistics at once; the planner
            # should not wait for autovacuum (which may be off) to learn it.
            # Inside the transaction ANALYZE counts the new rows too, and its
            # statistics commit or roll back with them.
            cursor.execute(self.sql("ANALYZE {batch}"))

    def _write_through_services(self) -> None:
        with connection.cursor() as cursor:
            cursor.execute(self.sql("SELECT COUNT(*) FROM {skus}"))
            if not cursor.fetchone()[0]:
                return
        self.staging.index("line")
        select = self.sql(
            "SELECT r.line, r.reference, r.sku, r.purchased_quantity, r.eta,"
            " b.purchased_quantity, b.eta FROM {rows} r"
            " LEFT JOIN {batch} b ON b.reference = r.reference"
            " WHERE r.sku IN (SELECT sku FROM {skus}) AND {{after}}"
        )
        for page in self.staging.pages(select, key=["r.line"], size=SERVICE_PAGE):
            for _line, reference, sku, quantity, eta, old_quantity, old_eta in page:
                eta, old_eta = _as_date(eta), _as_date(old_eta)
                if old_quantity is None:
                    services.add_batch(
                        reference=reference, sku=sku, purchased_quantity=quantity, eta=eta
                    )
                elif (quantity, eta) != (old_quantity, old_eta):
                    services.change_batch(
                        reference=reference, purchased_quantity=quantity, eta=eta, sku=sku
                    )


def _purchased_quantity(value: object) -> int:
    return fields.quantity(value, minimum=0)


def _as_date(value: str | date | None) -> date | None:
    return date.fromisoformat(value) if isinstance(value, str) else value
