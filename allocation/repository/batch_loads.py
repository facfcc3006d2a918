"""A file of batch rows upserted at once: storage for ``services.upsert_batches``.

The rows stream into a temporary table (COPY on PostgreSQL), so a file of a
million rows is checked and written with a few set-based statements instead
of a million round trips. This module answers questions and writes what it
is told to; the decisions are the domain's:

- ``facts`` tells, per SKU, whether backorders wait and whether a row lowers
  a batch below what it has allocated; ``domain.model.batch_rows_move_lines``
  decides from that whether the SKU's rows need the ``Product`` aggregate;
- ``write_as_given`` writes the other SKUs' rows as they are (inserts and
  updates), each with its ``batch_created``/``batch_changed`` event, in the
  statements' own transaction, ids reserved as every event writer reserves
  them (``products.EVENT_RESERVATION``).

The event ``data`` is built by SQL here with the same keys as
``domain.events.BatchCreated``/``BatchChanged``; a test compares the two.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Iterator
from datetime import date, datetime

from django.db import connection

from allocation import models as orm
from allocation.repository.products import (
    _RESERVE_SQL,
    EVENT_ID_SEQUENCE,
    BatchLoad,
    BatchRow,
    Origin,
    RowProblem,
    SkuFacts,
    stamp,
)
from allocation.repository.staging import (
    StagingTable,
    column,
    identifier_type,
    is_distinct,
    on_postgres,
    table,
)
from domain.model import LineStatus

#: Rows fetched at a time for the SKUs that go through the domain.
PAGE = 2000
#: New batches from which a load refreshes the table's planner statistics.
ANALYZE_AFTER = 10_000


class DjangoBatchLoad(BatchLoad):
    def __init__(self, rows: Iterable[BatchRow], origin: Origin) -> None:
        self.origin = origin
        pg = on_postgres()
        self.rows = StagingTable(
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
        self.moving = StagingTable("bulk_batch_skus", [("sku", identifier_type("PRIMARY KEY"))])
        self._moving: frozenset[str] | None = None
        self.names = {
            "rows": self.rows.name,
            "skus": self.moving.name,
            "batch": table(orm.Batch),
            "b_sku": column(orm.Batch, "product"),
            "product": table(orm.Product),
            "line": table(orm.OrderLine),
            "l_sku": column(orm.OrderLine, "product"),
            "event": table(orm.Event),
        }
        if pg:
            # For this transaction only: the checks group and sort the whole
            # file, which the 4 MB default would spill to disk.
            with connection.cursor() as cursor:
                cursor.execute("SET LOCAL work_mem = '64MB'")
        self.rows.create()
        self.rows.fill(rows)

    def sql(self, template: str) -> str:
        return template.format(**self.names)

    def problems(self) -> list[RowProblem]:
        found = []
        with connection.cursor() as cursor:
            cursor.execute(
                self.sql(
                    "SELECT r.line, f.first FROM {rows} r JOIN ("
                    " SELECT reference, MIN(line) AS first FROM {rows}"
                    " GROUP BY reference HAVING COUNT(*) > 1"
                    ") f ON f.reference = r.reference WHERE r.line > f.first ORDER BY r.line"
                )
            )
            for line, first in cursor.fetchall():
                found.append(RowProblem(line, "reference", f"the same reference as line {first}"))
            cursor.execute(
                self.sql(
                    "SELECT r.line, r.reference, b.{b_sku}, r.sku FROM {rows} r"
                    " JOIN {batch} b ON b.reference = r.reference"
                    " WHERE b.{b_sku} <> r.sku ORDER BY r.line"
                )
            )
            for line, reference, sku, requested in cursor.fetchall():
                found.append(
                    RowProblem(
                        line,
                        "sku",
                        f"batch {reference} holds SKU {sku}; its SKU cannot change to {requested}",
                    )
                )
        return sorted(found, key=lambda problem: problem.line)

    def counts(self) -> tuple[int, int, int]:
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
        return created, updated, existing - updated

    def lock(self, *, now: datetime) -> None:
        # New SKUs first (sorted, so two loads insert them in the same order),
        # then every SKU of the file locked in sorted order: requests and
        # other loads for these SKUs wait until this load commits, and lock
        # order is the same for everyone, so nobody deadlocks.
        with connection.cursor() as cursor:
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

    def facts(self) -> Iterator[SkuFacts]:
        with connection.cursor() as cursor:
            cursor.execute(
                self.sql(
                    "SELECT DISTINCT r.sku FROM {rows} r JOIN {batch} b"
                    " ON b.reference = r.reference"
                    " WHERE r.purchased_quantity < b.allocated_quantity"
                )
            )
            lowered = {sku for (sku,) in cursor.fetchall()}
            cursor.execute(
                self.sql(
                    "SELECT d.sku, EXISTS (SELECT 1 FROM {line} l"
                    " WHERE l.{l_sku} = d.sku AND l.status = %s)"
                    " FROM (SELECT DISTINCT sku FROM {rows}) d"
                ),
                [LineStatus.BACKORDERED.value],
            )
            while page := cursor.fetchmany(10_000):
                for sku, waiting in page:
                    yield SkuFacts(sku, bool(waiting), sku in lowered)

    def _set_moving(self, skus: Collection[str]) -> None:
        wanted = frozenset(skus)
        if wanted == self._moving:
            return
        self.moving.create()
        self.moving.fill((sku,) for sku in sorted(wanted))
        self._moving = wanted

    def write_as_given(self, *, skipping: Collection[str], clock: datetime) -> None:
        self._set_moving(skipping)
        pg = on_postgres()
        as_given = "NOT EXISTS (SELECT 1 FROM {skus} c WHERE c.sku = r.sku)"
        changed = is_distinct("b.eta", "r.eta")
        with connection.cursor() as cursor:
            # 1. The events, from the rows and the batches as they still are.
            event_rows = _EVENT_ROWS_SQL.format(
                **self.names,
                json="jsonb_build_object" if pg else "json_object",
                as_given=self.sql(as_given),
                changed=changed,
            )
            cursor.execute(
                (_EVENTS_SQL if pg else _SQLITE_EVENTS_SQL).format(
                    **self.names, event_rows=event_rows
                ),
                stamp(self.origin),
            )
            # 2. Changed batches: their new quantity and eta.
            cursor.execute(
                self.sql(
                    "UPDATE {batch} SET purchased_quantity = r.purchased_quantity, eta = r.eta"  # noqa: S608 - our own table names
                    " FROM {rows} r WHERE {batch}.reference = r.reference"
                    " AND ({batch}.purchased_quantity <> r.purchased_quantity"
                    f" OR {is_distinct('{batch}.eta', 'r.eta')})"
                    f" AND {as_given}"
                )
            )
            # 3. New batches, created in file order (as one by one through the
            # API): the clock plus the row's line number in microseconds.
            # Sorted by the preference index's key, so the inserts walk that
            # index in order instead of all over it.
            created_at = (
                "%s::timestamptz + r.line * interval '1 microsecond'" if pg else _SQLITE_CREATED_AT
            )
            clock_value = (
                connection.ops.adapt_datetimefield_value(clock)
                if pg
                else int(clock.timestamp() * 1_000_000)
            )
            cursor.execute(
                self.sql(
                    "INSERT INTO {batch}"  # noqa: S608 - our own table names
                    " (reference, {b_sku}, purchased_quantity, allocated_quantity, eta, created_at)"
                    f" SELECT r.reference, r.sku, r.purchased_quantity, 0, r.eta, {created_at}"
                    " FROM {rows} r"
                    " WHERE NOT EXISTS (SELECT 1 FROM {batch} b WHERE b.reference = r.reference)"
                    f" AND {as_given}"
                    " ORDER BY r.sku, r.eta, r.reference"
                ),
                [clock_value] if pg else [clock_value, clock_value],
            )
            if pg and cursor.rowcount >= ANALYZE_AFTER:
                # A big load changes the table's statistics at once; the planner
                # should not wait for autovacuum (which may be off) to learn it.
                # Inside the transaction ANALYZE counts the new rows too, and its
                # statistics commit or roll back with them.
                cursor.execute(self.sql("ANALYZE {batch}, {event}"))

    def rows_of(self, skus: Collection[str]) -> Iterator[list[BatchRow]]:
        if not skus:
            return
        self._set_moving(skus)
        select = self.sql(
            "SELECT r.sku, r.line, r.reference, r.purchased_quantity, r.eta FROM {rows} r"
            " WHERE r.sku IN (SELECT sku FROM {skus}) AND {{after}}"
        )
        current: list[BatchRow] = []
        for page in self.rows.pages(select, key=["r.sku", "r.line"], size=PAGE):
            for sku, line, reference, quantity, eta in page:
                if current and current[0].sku != sku:
                    yield current
                    current = []
                current.append(BatchRow(line, reference, sku, quantity, _as_date(eta)))
        if current:
            yield current

    def close(self) -> None:
        self.moving.drop()
        self.rows.drop()


def _as_date(value: str | date | None) -> date | None:
    """A staged eta: SQLite keeps dates as ISO text."""
    return date.fromisoformat(value) if isinstance(value, str) else value


# The rows written as given that create or change a batch, as events: type,
# rank among the SKU's rows (file order) and data with the keys of
# domain.events.BatchCreated/BatchChanged; {json} is the engine's JSON object
# builder.
_EVENT_ROWS_SQL = """
    SELECT r.line, r.sku,
           CASE WHEN b.id IS NULL THEN 'batch_created' ELSE 'batch_changed' END AS type,
           row_number() OVER (PARTITION BY r.sku ORDER BY r.line) AS nth,
           CASE WHEN b.id IS NULL THEN {json}(
                    'reference', r.reference, 'purchased_quantity', r.purchased_quantity,
                    'eta', r.eta)
                ELSE {json}(
                    'reference', r.reference, 'purchased_quantity', r.purchased_quantity,
                    'eta', r.eta, 'previous', {json}(
                        'purchased_quantity', b.purchased_quantity, 'eta', b.eta))
           END AS data
    FROM {rows} r LEFT JOIN {batch} b ON b.reference = r.reference
    WHERE {as_given} AND (b.id IS NULL OR b.purchased_quantity <> r.purchased_quantity
                          OR {changed})
"""  # noqa: S608 - names from model metadata
# PostgreSQL: ids after the reservation, in file order; each SKU's sku_seq
# goes on from its last one (its lock is held) by the row's rank.
_EVENTS_SQL = f"""
    WITH {_RESERVE_SQL},
    last AS (
        SELECT e.sku, MAX(e.sku_seq) AS seq FROM {{event}} e
        WHERE e.sku IN (SELECT sku FROM {{rows}}) GROUP BY e.sku
    )
    INSERT INTO {{event}} (id, type, sku, sku_seq, occurred_at, actor, source, txn, order_id, data)
    SELECT nextval('{EVENT_ID_SEQUENCE}'), v.type, v.sku, COALESCE(last.seq, 0) + v.nth,
           %s, %s, %s, %s, NULL, v.data
    FROM reserve, ({{event_rows}}) v LEFT JOIN last ON last.sku = v.sku
    ORDER BY v.line
"""  # noqa: S608 - names from model metadata
# SQLite: writers hold the database's one write lock, so AUTOINCREMENT ids
# in insertion order are the feed's order; the rows go in file order.
_SQLITE_EVENTS_SQL = """
    INSERT INTO {event} (type, sku, sku_seq, occurred_at, actor, source, txn, order_id, data)
    SELECT v.type, v.sku,
           COALESCE((SELECT MAX(e.sku_seq) FROM {event} e WHERE e.sku = v.sku), 0) + v.nth,
           %s, %s, %s, %s, NULL, v.data
    FROM ({event_rows}) v
    ORDER BY v.line
"""  # noqa: S608 - names from model metadata
# Django stores SQLite datetimes as UTC text 'YYYY-MM-DD HH:MM:SS.ffffff';
# %s is the clock in microseconds since the epoch.
_SQLITE_CREATED_AT = (
    "strftime('%%Y-%%m-%%d %%H:%%M:%%S', (%s + r.line) / 1000000, 'unixepoch')"
    " || '.' || printf('%%06d', (%s + r.line) %% 1000000)"
)
