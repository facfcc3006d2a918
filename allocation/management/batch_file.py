"""load_batches: a file of batches, checked row by row, then upserted by the services.

Each record's values are checked here, as they stream past, with the API's
own field rules (``allocation.management.fields``); the valid rows go on to
``services.upsert_batches``, which stages them (COPY), checks the file as a
whole (a reference twice, a SKU change) and applies it in one unit of work.
Every error, of a value or of the file, is listed by line; any error writes
nothing.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from datetime import date
from typing import Any

from allocation import services
from allocation.management import fields
from allocation.management.reading import ErrorList, InvalidInput, Record, RowError
from allocation.repository import BatchRow, RowProblem
from allocation.services import LoadSummary
from allocation.unit_of_work import DjangoUnitOfWork

COLUMNS = ("reference", "sku", "purchased_quantity", "eta")
OPTIONAL = ("eta",)

__all__ = ["COLUMNS", "OPTIONAL", "LoadSummary", "load_batches"]


def load_batches(
    records: Iterable[Record], *, dry_run: bool = False, actor: str | None = None
) -> LoadSummary:
    """Check ``records`` (from ``reading.records``) and upsert them in one unit of work.

    Raises ``InvalidInput`` (nothing written) when any row is wrong.
    """
    rows = _Rows()

    def check(problems: list[RowProblem]) -> None:
        for problem in problems:
            rows.file_errors.add(RowError(problem.line, problem.field, problem.message))
        rows.errors.merge(rows.file_errors)
        if rows.errors:
            raise InvalidInput(rows.errors)

    return services.upsert_batches(
        rows=rows.valid(records),
        uow=DjangoUnitOfWork(actor=actor, source="cli"),
        dry_run=dry_run,
        check=check,
    )


class _Rows:
    """The valid rows of a file, as ``BatchRow``; the others' errors, by line."""

    def __init__(self) -> None:
        self.errors = ErrorList()
        self.file_errors = ErrorList()

    def valid(self, records: Iterable[Record]) -> Iterator[BatchRow]:
        identifier = fields.IDENTIFIER_RE.match
        max_quantity = fields.MAX_QUANTITY
        etas: dict[object, date | None] = {"": None, fields.MISSING: None}
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
                        etas[eta] = _day(fields.eta(eta))
                    except fields.FieldError:
                        yield from self._validate(line, values)
                        continue
                yield BatchRow(line, reference, sku, int(quantity), etas[eta])
                continue
            yield from self._validate(line, values)

    def _validate(self, line: int, values: tuple) -> Iterator[BatchRow]:
        """The valid row, or nothing (its errors recorded)."""
        reference, sku, quantity, eta = values
        failed = False

        def checked(name: str, check: Callable[[Any], Any], value: object) -> Any:
            nonlocal failed
            try:
                return check(value)
            except fields.FieldError as error:
                self.errors.add(RowError(line, name, str(error)))
                failed = True
                return None

        valid_reference = checked("reference", fields.identifier, reference)
        valid_sku = checked("sku", fields.identifier, sku)
        valid_quantity = checked("purchased_quantity", _purchased_quantity, quantity)
        valid_eta = checked("eta", fields.eta, eta)
        if not failed:
            yield BatchRow(line, valid_reference, valid_sku, valid_quantity, _day(valid_eta))


def _day(text: str | None) -> date | None:
    return None if text is None else date.fromisoformat(text)


def _purchased_quantity(value: object) -> int:
    return fields.quantity(value, minimum=0)
