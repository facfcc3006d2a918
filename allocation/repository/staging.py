"""Temporary tables for validated rows, filled by streaming.

A whole file is checked and applied with set-based SQL against a temporary
table instead of Python memory: on PostgreSQL the rows stream in through
``COPY ... FROM STDIN`` (psycopg2's ``copy_expert``), on SQLite through
``executemany`` in chunks. Temporary tables belong to this connection only
and are dropped at the end of the run (and rolled back with it).

Rows go to COPY in its CSV format, written by the csv module (in C): None
becomes an unquoted empty field, which COPY reads as NULL, except in NOT NULL
columns, where it is read as an empty string.
"""

from __future__ import annotations

import csv
import io
import itertools
from collections.abc import Iterable, Iterator, Sequence

from django.db import connection, models

COPY_CHUNK = 1 << 16
INSERT_CHUNK = 2000


def on_postgres() -> bool:
    return connection.vendor == "postgresql"


def identifier_type(constraint: str = "NOT NULL") -> str:
    """The SQL type of a staged identifier (reference, SKU, order id).

    On PostgreSQL in the "C" collation, as the tables' identifier columns
    are: sorting staged rows then gives the real indexes' order whatever the
    server's locale (and byte-wise comparison is the cheapest there is).
    """
    collate = ' COLLATE "C"' if on_postgres() else ""
    return f"varchar(255){collate} {constraint}"


def table(name: str | type[models.Model]) -> str:
    """A model's table name, quoted for raw SQL (``table(orm.Batch)``)."""
    return connection.ops.quote_name(name._meta.db_table if hasattr(name, "_meta") else name)


def column(model, field: str) -> str:
    return connection.ops.quote_name(model._meta.get_field(field).column)


def is_distinct(left: str, right: str) -> str:
    """NULL-aware inequality (two NULL etas are the same eta)."""
    return f"{left} IS DISTINCT FROM {right}" if on_postgres() else f"{left} IS NOT {right}"


class StagingTable:
    """A temporary table named ``name`` with ``columns`` given as ``(name, sql type)``."""

    def __init__(self, name: str, columns: Sequence[tuple[str, str]]) -> None:
        self.name = name
        self.columns = [c for c, _ in columns]
        self._not_null = [c for c, t in columns if "NOT NULL" in t.upper()]
        self._definition = ", ".join(f"{c} {t}" for c, t in columns)

    def create(self) -> StagingTable:
        with connection.cursor() as cursor:
            # A test (or a caller's own transaction) may run two loads on one
            # connection: the earlier table is still there until its commit.
            cursor.execute(f"DROP TABLE IF EXISTS {self.name}")
            suffix = " ON COMMIT DROP" if on_postgres() else ""
            cursor.execute(f"CREATE TEMPORARY TABLE {self.name} ({self._definition}){suffix}")
        return self

    def drop(self) -> None:
        with connection.cursor() as cursor:
            cursor.execute(f"DROP TABLE IF EXISTS {self.name}")

    def fill(self, rows: Iterable[Sequence]) -> int:
        """Insert every row (a sequence of values in column order), streaming; return how many."""
        if on_postgres():
            return self._copy(rows)
        return self._insert(rows)

    def _copy(self, rows: Iterable[Sequence]) -> int:
        source = _CopySource(rows)
        options = "FORMAT csv"
        if self._not_null:
            options += f", FORCE_NOT_NULL ({', '.join(self._not_null)})"
        sql = f"COPY {self.name} ({', '.join(self.columns)}) FROM STDIN WITH ({options})"
        with connection.cursor() as cursor:
            cursor.copy_expert(sql, source, size=COPY_CHUNK)
        if source.error is not None:
            # Raised here, not inside COPY, so the error reaches the caller as
            # itself rather than as a failed COPY.
            raise source.error
        return source.count

    def _insert(self, rows: Iterable[Sequence]) -> int:
        marks = ", ".join(["%s"] * len(self.columns))
        sql = f"INSERT INTO {self.name} ({', '.join(self.columns)}) VALUES ({marks})"  # noqa: S608 - our own table names
        iterator = iter(rows)
        count = 0
        with connection.cursor() as cursor:
            while chunk := list(itertools.islice(iterator, INSERT_CHUNK)):
                cursor.executemany(sql, chunk)
                count += len(chunk)
        return count

    def index(self, *columns: str) -> None:
        with connection.cursor() as cursor:
            name = f"{self.name}_{'_'.join(columns)}_idx"
            cursor.execute(f"CREATE INDEX {name} ON {self.name} ({', '.join(columns)})")
            if on_postgres():
                # Fresh statistics, so the planner knows how big the table is.
                cursor.execute(f"ANALYZE {self.name}")

    def pages(
        self, select: str, key: Sequence[str], size: int, params: Sequence = ()
    ) -> Iterator[list]:
        """Rows of ``select`` in ``key`` order, ``size`` at a time (keyset paging).

        ``select`` is a query with a ``{after}`` placeholder for the paging
        condition inside its WHERE clause; ``key`` names the columns it is
        ordered by, which are the first columns it returns.
        """
        after = "1 = 1"
        last: tuple = ()
        width = len(key)
        with connection.cursor() as cursor:
            while True:
                sql = select.format(after=after) + f" ORDER BY {', '.join(key)} LIMIT {int(size)}"
                cursor.execute(sql, [*params, *last])
                rows = cursor.fetchall()
                if not rows:
                    return
                yield rows
                if len(rows) < size:
                    return
                last = tuple(rows[-1][:width])
                after = f"({', '.join(key)}) > ({', '.join(['%s'] * width)})"


class _CopySource:
    """A read()-able file over rows, as CSV, for ``copy_expert``."""

    ROWS_PER_READ = 2000

    def __init__(self, rows: Iterable[Sequence]) -> None:
        self._rows = iter(rows)
        self._buffer = io.StringIO()
        self._writer = csv.writer(self._buffer, lineterminator="\n")
        self.error: BaseException | None = None
        self.count = 0

    def read(self, size: int = -1) -> bytes:
        self._buffer.seek(0)
        self._buffer.truncate()
        try:
            chunk = list(itertools.islice(self._rows, self.ROWS_PER_READ))
        except BaseException as error:  # re-raised by the caller
            # Ending the COPY cleanly keeps the connection usable; the caller
            # re-raises, and the transaction rolls back.
            self.error = error
            return b""
        self.count += len(chunk)
        self._writer.writerows(chunk)
        return self._buffer.getvalue().encode()
