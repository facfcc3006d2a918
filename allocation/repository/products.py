"""The product repository: all ORM <-> domain conversion lives here.

Model instances never leave this module; services see ``domain.model``
objects only. A product is loaded in a small, fixed number of queries that
does not grow with the SKU's history: the batches that still have stock, and
only the lines a decision needs (the line asked about, the lines on a batch
being reduced, the backorders waiting). On ``flush`` the repository compares
each aggregate with the snapshot it took when loading it and writes only the
difference.

The queries every allocation runs (lock the SKU, load the batches with stock,
write the few rows that changed) are written as plain SQL, prepared once per
connection on PostgreSQL: on that path building them with the ORM, and
planning them, cost more than running them. The rest uses the ORM.

Every ``get`` locks the SKU first, then reads. Under READ COMMITTED each
statement sees what was committed before it started, so a read made after
the lock sees every change of the requests that held the lock before: the
line asked about is read in the same statement as the batches with stock,
and a new line then costs no extra round trip, nor does a repeat.

Events (SPEC 6) are written here too, by ``flush`` (the events the products
recorded) or ``record`` (for writers that change rows set-wise), in the same
transaction as the change, with the unit of work's ``Origin``. On the
allocate path the event goes in the statement that writes the line. How the
feed never skips an event that commits late: see ``EVENT_RESERVATION``.
"""

from __future__ import annotations

import abc
import contextlib
import json
import uuid
from collections import defaultdict
from collections.abc import Collection, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import NamedTuple

from django.db import IntegrityError, connection, transaction
from django.db.backends.utils import CursorWrapper
from django.db.models import Q
from django.utils import timezone

from allocation import models as orm
from allocation.db import prepared
from domain.events import Event
from domain.exceptions import DuplicateBatch
from domain.model import Allocation, Batch, Demand, LineStatus, OrderLine, Part, Product

SOURCES = ("api", "admin", "cli", "migration")


@dataclass(frozen=True)
class Origin:
    """Where a unit of work's changes come from, stamped on each of its events.

    ``actor``: the username behind the change (None when nobody logged in
    caused it); ``source``: the door (``api``, ``admin``, ``cli``);
    ``transaction``: one opaque value per unit of work, shared by its events.
    """

    actor: str | None = None
    source: str = "cli"
    transaction: str = field(default_factory=lambda: uuid.uuid4().hex)

    def __post_init__(self) -> None:
        if self.source not in SOURCES:
            raise ValueError(f"unknown event source {self.source!r}")


class BatchRow(NamedTuple):
    """One row of a batch file: ``line`` is its physical line in the file (SPEC 3).

    A named tuple: a file may have millions, and they stream to COPY as they are.
    """

    line: int
    reference: str
    sku: str
    purchased_quantity: int
    eta: date | None


@dataclass(frozen=True)
class RowProblem:
    """Why a staged row cannot be applied: ``line N: field: message``."""

    line: int
    field: str
    message: str


@dataclass(frozen=True)
class SkuFacts:
    """What storage knows of one SKU of a load, for the domain to decide on.

    ``backorders_waiting``: the SKU has backordered lines; ``lowered_below_allocated``:
    a row sets an existing batch's quantity below what it has allocated.
    """

    sku: str
    backorders_waiting: bool
    lowered_below_allocated: bool


class BatchLoad(abc.ABC):
    """A whole file of batch rows staged in storage, to be upserted in this unit of work.

    Storage holds the rows (a file may have millions), so the checks and the
    plain writes are set-based; the rows whose SKUs need the ``Product``
    aggregate come back as ``BatchRow`` objects.
    """

    @abc.abstractmethod
    def problems(self) -> list[RowProblem]:
        """A reference given twice, a row changing an existing batch's SKU; by line."""

    @abc.abstractmethod
    def counts(self) -> tuple[int, int, int]:
        """(created, updated, unchanged) against the stored batches."""

    @abc.abstractmethod
    def lock(self, *, now: datetime) -> None:
        """Create the SKUs that are new, then lock every SKU of the file in sorted order."""

    @abc.abstractmethod
    def facts(self) -> Iterator[SkuFacts]:
        """For each SKU of the file: what the domain needs to decide whether lines move."""

    @abc.abstractmethod
    def write_as_given(self, *, skipping: Collection[str], clock: datetime) -> None:
        """Write the rows of every SKU not in ``skipping`` as they are, with their events.

        New batches are inserted (``created_at``: ``clock`` plus the row's line
        number in microseconds, so the file order is the creation order, as
        if created one by one), changed ones get their quantity and eta; each
        gets its ``batch_created`` or ``batch_changed`` event, in file order.
        Only for SKUs whose rows the domain said move no line.
        """

    @abc.abstractmethod
    def rows_of(self, skus: Collection[str]) -> Iterator[list[BatchRow]]:
        """The rows of these SKUs, one list per SKU (sorted by SKU), each in file order."""

    @abc.abstractmethod
    def close(self) -> None:
        """Drop what staging the rows took."""


class AbstractProductRepository(abc.ABC):
    """What services may ask of storage. Every ``get_*`` locks the SKU first."""

    def __init__(self, origin: Origin | None = None) -> None:
        self.seen: dict[str, Product] = {}
        self.origin = origin or Origin()

    @abc.abstractmethod
    def get(
        self,
        sku: str,
        *,
        order_id: str | None = None,
        batch_reference: str | None = None,
        backorders: bool = False,
    ) -> Product | None:
        """Lock and load the SKU with what a decision about these needs; None if no such SKU."""

    @abc.abstractmethod
    def get_for_order(self, order_id: str, skus: Collection[str]) -> dict[str, Product]:
        """Lock the SKUs in sorted order and load each with the order's line on it, if any.

        SKUs that do not exist are left out. Costs the same few statements
        whatever the number of SKUs.
        """

    @abc.abstractmethod
    def get_many(self, lines: Iterable[OrderLine]) -> dict[str, Product]:
        """Lock the lines' SKUs in sorted order and load each for allocating its lines.

        For allocating many lines at once, in the order given: each product
        holds the lines already recorded for these (order_id, sku) and at
        least the batches that decide where its new lines go
        (``domain.model.deciding_batches`` of the SKU's ``Demand``).
        SKUs that do not exist are left out.
        """

    @abc.abstractmethod
    def get_for_load(self, sku: str, references: Collection[str], *, now: datetime) -> Product:
        """The SKU (created if new; its row locked) with its backorders and these batches.

        The named batches are loaded whatever their stock, with the lines on
        them if any; references that do not exist are ignored.
        """

    @abc.abstractmethod
    def stage_batches(self, rows: Iterable[BatchRow]) -> BatchLoad:
        """Stage a file's rows (consumed as they come) for an upsert in this unit of work."""

    @abc.abstractmethod
    def skus_of_order(self, order_id: str) -> list[str]:
        """The SKUs the order has lines of, sorted (read without locking)."""

    @abc.abstractmethod
    def get_or_create(self, sku: str, *, now: datetime, backorders: bool = True) -> Product:
        """Like ``get`` with backorders, creating the SKU if it is new."""

    @abc.abstractmethod
    def load_lines_on_batch(self, product: Product, reference: str) -> None:
        """Add every line with a part on ``reference`` (and their batches) to ``product``."""

    @abc.abstractmethod
    def sku_of_batch(self, reference: str) -> str | None:
        """The SKU a batch belongs to, or None if no such batch exists."""

    @abc.abstractmethod
    def flush(self) -> None:
        """Write every change made to the products handed out, with their events."""

    @abc.abstractmethod
    def record(self, events: Sequence[Event]) -> None:
        """Write events for changes this unit of work made without a ``Product``.

        The caller holds the lock of every SKU named (so each SKU's ``sku_seq``
        goes on from its last value); the events get ids in the order given.
        """


@dataclass
class _BatchRow:
    id: int
    purchased_quantity: int
    allocated_quantity: int
    eta: object


@dataclass
class _LineRow:
    id: int
    status: str
    allocated_at: datetime | None
    parts: tuple[Part, ...]


class _Snapshot:
    """What one product looked like in the database when it was loaded."""

    def __init__(self) -> None:
        self.batches: dict[str, _BatchRow] = {}
        self.lines: dict[str, _LineRow] = {}


_BATCH_FIELDS = ("id", "reference", "purchased_quantity", "allocated_quantity", "eta", "created_at")

_PRODUCT = orm.Product._meta.db_table
_BATCH = orm.Batch._meta.db_table
_LINE = orm.OrderLine._meta.db_table
_PART = orm.Allocation._meta.db_table

_LOCK_SQL = f"SELECT sku FROM {_PRODUCT} WHERE sku = %s"  # noqa: S608 - names from model metadata
#: What _LOCK_SQL ends with, by whether the engine locks rows (SQLite: the IMMEDIATE transaction).
_FOR_UPDATE = {True: " FOR UPDATE", False: ""}
_BATCHES_WITH_STOCK_SQL = (
    f"SELECT {', '.join(_BATCH_FIELDS)} FROM {_BATCH} "  # noqa: S608 - names from model metadata
    "WHERE sku = %s AND (allocated_quantity < purchased_quantity{or_wanted})"
)
# The batches with stock and those the line (order_id, sku) holds parts on,
# then that line's rows (one per part; one with no part for a backorder), in
# one statement. The batch branch comes first and uses real columns in every
# position: SQLite takes a compound SELECT's column types (and so its date
# conversions) from the leftmost branch. The two kinds of batch are two
# branches (UNION: a batch of both kinds comes once), so that the first reads
# batch_with_stock_idx alone: one condition "with stock OR held" made
# PostgreSQL read every batch the SKU ever had, used-up ones included.
_BATCH_ROW = (
    "'b', id, reference, purchased_quantity, allocated_quantity, eta, created_at, "
    "created_at, reference"
)
_BATCHES_AND_LINE_SQL = f"""
    SELECT {_BATCH_ROW}
    FROM {_BATCH}
    WHERE sku = %s AND allocated_quantity < purchased_quantity
    UNION
    SELECT {_BATCH_ROW}
    FROM {_BATCH}
    WHERE id IN (
        SELECT a.batch_id FROM {_PART} a JOIN {_LINE} l ON l.id = a.line_id
        WHERE l.sku = %s AND l.order_id = %s)
    UNION ALL
    SELECT 'l', l.id, l.order_id, l.qty, a.qty, NULL, l.requested_at, l.allocated_at, b.reference
    FROM {_LINE} l
    LEFT JOIN {_PART} a ON a.line_id = l.id
    LEFT JOIN {_BATCH} b ON b.id = a.batch_id
    WHERE l.sku = %s AND l.order_id = %s
"""  # noqa: S608 - names from model metadata
# An order's SKUs: the batches with stock or held by the order's lines, those
# lines (one row per part), and which SKUs have any batch at all, in one
# statement; ``{skus}`` is ``= ANY(%s)`` (one array: fixed text) on
# PostgreSQL, an IN list on SQLite. Batches first, in two branches, as above.
_ORDER_SQL = """
    SELECT 'b', sku, id, reference, purchased_quantity, allocated_quantity, eta, created_at,
           created_at, reference
    FROM {batch}
    WHERE sku {skus} AND allocated_quantity < purchased_quantity
    UNION
    SELECT 'b', sku, id, reference, purchased_quantity, allocated_quantity, eta, created_at,
           created_at, reference
    FROM {batch}
    WHERE id IN (
        SELECT a.batch_id FROM {part} a JOIN {line} l ON l.id = a.line_id
        WHERE l.order_id = %s AND l.sku {skus})
    UNION ALL
    SELECT 'l', l.sku, l.id, l.order_id, l.qty, a.qty, NULL, l.requested_at, l.allocated_at,
           b.reference
    FROM {line} l
    LEFT JOIN {part} a ON a.line_id = l.id
    LEFT JOIN {batch} b ON b.id = a.batch_id
    WHERE l.order_id = %s AND l.sku {skus}
    UNION ALL
    SELECT 'p', p.sku, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL
    FROM {product} p
    WHERE p.sku {skus} AND EXISTS (SELECT 1 FROM {batch} x WHERE x.sku = p.sku)
"""
#: Batches with stock a bulk allocation first walks per SKU (``_MANY_SQL``):
#: nearly always enough to cover a group's demand; a SKU whose first ones do
#: not is walked again to the end, in the same statement.
FIRST_WALK = 32


def _walk(limit: str) -> str:
    """A SKU's (``d``) batches with stock in preference order, with what decides the cut.

    Walked along batch_with_stock_idx, so in its order without a sort, and
    stopping after ``limit`` (SQL, "" for none): each batch's position and the
    spare units (``Demand.spare``) up to and including it, and the first
    position where those cover the demand (``last``; null if none does).
    """
    return f"""
        SELECT ranked.id, ranked.position,
               min(ranked.position) FILTER (WHERE ranked.spare >= d.units) OVER () AS last
        FROM (
            SELECT s.id,
                   row_number() OVER in_order AS position,
                   sum(greatest(s.purchased_quantity - s.allocated_quantity
                                - (d.largest - 1), 0)) OVER in_order AS spare
            FROM (
                SELECT id, purchased_quantity, allocated_quantity, eta, created_at, reference
                FROM {_BATCH}
                WHERE sku = d.sku AND allocated_quantity < purchased_quantity
                ORDER BY {orm.preference_order_sql()}
                {limit}
            ) s
            WINDOW in_order AS (ORDER BY {orm.preference_order_sql("s.")}
                                ROWS UNBOUNDED PRECEDING)
        ) ranked
    """  # noqa: S608 - names from model metadata


# PostgreSQL, for allocating many lines: for each SKU the batches that decide
# where its wanted lines go (``domain.model.deciding_batches``: those with
# stock in preference order until their spare units, ``Demand.spare``, add up
# to the demand) and those the wanted lines hold parts on, those lines (one
# row per part), and which SKUs have any batch, in one statement; the wanted
# (order_id, sku) pairs, the SKUs and their demands come as arrays. A SKU may
# have a thousand batches with stock: the database ranks them and sends the
# few that decide. Batches first, as above.
_MANY_SQL = f"""
    WITH wanted AS MATERIALIZED (
        SELECT l.id, l.sku, l.order_id, l.qty, l.requested_at, l.allocated_at
        FROM unnest(%s::text[], %s::text[]) AS w (order_id, sku)
        JOIN {_LINE} l ON l.order_id = w.order_id AND l.sku = w.sku
    ), demand AS (
        SELECT * FROM unnest(%s::text[], %s::bigint[], %s::integer[]) AS d (sku, units, largest)
    ), first_walk AS MATERIALIZED (
        SELECT d.sku, r.id, r.position, r.last
        FROM demand d CROSS JOIN LATERAL ({_walk("LIMIT %s")}) r
    ), unfinished AS (
        -- SKUs whose first batches (as many as the limit) do not cover the
        -- demand: walked again, to the end.
        SELECT d.* FROM demand d JOIN first_walk w ON w.sku = d.sku
        GROUP BY d.sku, d.units, d.largest
        HAVING bool_and(w.last IS NULL) AND count(*) = %s
    ), deciding AS MATERIALIZED (
        SELECT b.sku, b.id, b.reference, b.purchased_quantity, b.allocated_quantity, b.eta,
               b.created_at
        FROM (
            SELECT id FROM first_walk w
            WHERE w.position <= w.last
               OR (w.last IS NULL AND w.sku NOT IN (SELECT sku FROM unfinished))
            UNION ALL
            SELECT r.id FROM unfinished d CROSS JOIN LATERAL ({_walk("")}) r
            WHERE r.last IS NULL OR r.position <= r.last
        ) ids
        JOIN {_BATCH} b ON b.id = ids.id
    )
    SELECT 'b', sku, id, reference, purchased_quantity, allocated_quantity, eta, created_at,
           created_at, reference
    FROM deciding
    UNION ALL
    SELECT 'b', sku, id, reference, purchased_quantity, allocated_quantity, eta, created_at,
           created_at, reference
    FROM {_BATCH}
    WHERE id IN (SELECT a.batch_id FROM {_PART} a JOIN wanted l ON l.id = a.line_id)
      AND id NOT IN (SELECT id FROM deciding)
    UNION ALL
    SELECT 'l', l.sku, l.id, l.order_id, l.qty, a.qty, NULL, l.requested_at, l.allocated_at,
           b.reference
    FROM wanted l
    LEFT JOIN {_PART} a ON a.line_id = l.id
    LEFT JOIN {_BATCH} b ON b.id = a.batch_id
    UNION ALL
    SELECT 'p', p.sku, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL
    FROM {_PRODUCT} p
    WHERE p.sku = ANY(%s) AND EXISTS (SELECT 1 FROM {_BATCH} x WHERE x.sku = p.sku)
"""  # noqa: S608 - names from model metadata
_EVENT = orm.Event._meta.db_table
# The identity column's sequence (PostgreSQL names it <table>_<column>_seq;
# a test checks it with pg_get_serial_sequence).
EVENT_ID_SEQUENCE = f"{_EVENT}_id_seq"
_EVENT_COLUMNS = "type, sku, sku_seq, occurred_at, actor, source, txn, order_id, data"

# The feed never skips an event (SPEC 6.1). PostgreSQL hands out ids when rows
# are inserted, but transactions commit in their own order: a reader that
# has passed id 10 must never later find a 9 committed. So each writer, in
# the statement that takes its event ids and before taking them, reserves the
# sequence's current value k with a *shared* transaction-level advisory lock
# on EVENT_RESERVATION + k: every id it takes is above k, and the lock lasts
# exactly as long as its transaction could still commit them. Shared locks
# never wait for each other, so writers of different SKUs do not serialise.
# The feed (``allocation.selectors.event_horizon``) first reads the sequence
# (S), then the smallest k reserved in pg_locks (K), and serves only ids up to
# min(S, K), in a later statement (a fresh snapshot): a writer that reserved
# before the reader looked has every id above K; one that reserved after
# takes its ids after S was read, so above S. A lock is released only once
# its transaction's commit is visible, so what the reader then sees below the
# horizon is final. The base keeps our keys apart from anyone else's
# advisory locks (classid >= 2**30 in pg_locks, objsubid 1 for a bigint key).
EVENT_RESERVATION = 1 << 62
_RESERVE_SQL = f"""reserve AS MATERIALIZED (
        SELECT k, pg_advisory_xact_lock_shared({EVENT_RESERVATION} + k)
        FROM (SELECT CASE WHEN is_called THEN last_value ELSE 0 END AS k
              FROM {EVENT_ID_SEQUENCE}) s
    )"""  # noqa: S608 - names from model metadata
# Events as arrays (fixed text, so prepared once): ids from the sequence after
# the reservation (the join makes each row wait for it); each SKU's sku_seq
# goes on from its last one (the statement's snapshot holds every earlier
# event of the SKU: its lock is held) plus the event's rank in the batch.
_EVENT_VALUES_SQL = f"""event_rows AS MATERIALIZED (
        SELECT * FROM unnest(%s::text[], %s::text[], %s::integer[], %s::text[], %s::text[])
            WITH ORDINALITY AS v (type, sku, nth, order_id, data, ord)
    ), event_last AS MATERIALIZED (
        SELECT s.sku, (SELECT COALESCE(MAX(e.sku_seq), 0) FROM {_EVENT} e
                       WHERE e.sku = s.sku COLLATE "C") AS seq
        FROM (SELECT DISTINCT sku FROM event_rows) s
    )"""  # noqa: S608 - names from model metadata
# Each SKU's last sku_seq is read once (a thousand events of one SKU in a
# statement would otherwise each step over the ones this statement inserted
# before it); ids are taken in the events' order (PostgreSQL evaluates
# nextval() after the ORDER BY), after the reservation.
_INSERT_EVENTS_SQL = f"""
        INSERT INTO {_EVENT} (id, {_EVENT_COLUMNS})
        SELECT nextval('{EVENT_ID_SEQUENCE}'), v.type, v.sku, last.seq + v.nth,
               %s, %s, %s, %s, v.order_id, v.data::jsonb
        FROM reserve, event_rows v JOIN event_last last ON last.sku = v.sku
        ORDER BY v.ord
"""  # noqa: S608 - names from model metadata
_WRITE_EVENTS_SQL = f"WITH {_RESERVE_SQL}, {_EVENT_VALUES_SQL} {_INSERT_EVENTS_SQL}"
# SQLite: writers hold the database's one write lock until they commit, so
# ids (AUTOINCREMENT) commit in order as they are. The SELECT reads the table
# it inserts into, so SQLite computes every row (each SKU's last sku_seq
# included) before inserting any.
_SQLITE_EVENT_ROW = "(%s, %s, %s, %s, %s)"
_SQLITE_EVENTS_SQL = f"""
    INSERT INTO {_EVENT} ({_EVENT_COLUMNS})
    SELECT v.column1, v.column2,
           (SELECT COALESCE(MAX(e.sku_seq), 0) FROM {_EVENT} e WHERE e.sku = v.column2)
               + v.column3,
           %s, %s, %s, %s, v.column4, v.column5
    FROM (VALUES {{rows}}) AS v
"""  # noqa: S608 - names from model metadata
#: Events per statement (SQLite: bounded by its limit on parameters).
EVENT_CHUNK = {"postgresql": 5000, "sqlite": 150}

_LINE_COLUMNS = "order_id, sku, qty, status, requested_at, allocated_at"
# PostgreSQL: a new line, its parts and the batches they take from, in one
# statement. Parts and batches come as arrays, so the text is the same
# whatever their number (one prepared statement per connection).
_WRITE_NEW_LINE_SQL = f"""
    WITH line AS (
        INSERT INTO {_LINE} ({_LINE_COLUMNS}) VALUES (%s, %s, %s, %s, %s, %s) RETURNING id
    ), parts AS (
        INSERT INTO {_PART} (line_id, batch_id, qty)
        SELECT line.id, v.batch_id, v.qty
        FROM line, unnest(%s::bigint[], %s::integer[]) AS v (batch_id, qty)
    ), batches AS (
        UPDATE {_BATCH} b
        SET purchased_quantity = v.purchased, allocated_quantity = v.allocated, eta = v.eta
        FROM unnest(%s::bigint[], %s::integer[], %s::integer[], %s::date[])
            AS v (id, purchased, allocated, eta)
        WHERE b.id = v.id
    ), {_RESERVE_SQL}, {_EVENT_VALUES_SQL}, events AS ({_INSERT_EVENTS_SQL})
    SELECT id FROM line
"""  # noqa: S608 - names from model metadata
# PostgreSQL: the allocate path's usual write, a new line on one batch with
# its one event, every value a scalar. The same rows as _WRITE_NEW_LINE_SQL
# with one part, one batch and one event, and the same reservation, but no
# arrays to unnest and no events to sort, so a cheaper plan to run; its cost
# beside the array form's and the stack floor's: bench/write_statements.py.
_WRITE_ONE_PART_SQL = f"""
    WITH line AS (
        INSERT INTO {_LINE} ({_LINE_COLUMNS}) VALUES (%s, %s, %s, %s, %s, %s) RETURNING id
    ), parts AS (
        INSERT INTO {_PART} (line_id, batch_id, qty) SELECT line.id, %s, %s FROM line
    ), batches AS (
        UPDATE {_BATCH} SET purchased_quantity = %s, allocated_quantity = %s, eta = %s
        WHERE id = %s
    ), {_RESERVE_SQL}, events AS (
        INSERT INTO {_EVENT} (id, {_EVENT_COLUMNS})
        SELECT nextval('{EVENT_ID_SEQUENCE}'), %s, %s,
               (SELECT COALESCE(MAX(e.sku_seq), 0) FROM {_EVENT} e
                WHERE e.sku = %s COLLATE "C") + %s,
               %s, %s, %s, %s, %s, %s::jsonb
        FROM reserve
    )
    SELECT id FROM line
"""  # noqa: S608 - names from model metadata
# PostgreSQL: several new lines (an order's, a bulk group's), their parts,
# the batches they take from and their events, in one statement; every value
# an array, so the text is fixed. A part finds its line by (order_id, sku),
# which is unique.
_WRITE_NEW_LINES_SQL = f"""
    WITH line AS (
        INSERT INTO {_LINE} ({_LINE_COLUMNS})
        SELECT * FROM unnest(%s::text[], %s::text[], %s::integer[], %s::text[],
                             %s::timestamptz[], %s::timestamptz[])
        RETURNING id, order_id, sku
    ), parts AS (
        INSERT INTO {_PART} (line_id, batch_id, qty)
        SELECT line.id, v.batch_id, v.qty
        FROM unnest(%s::text[], %s::text[], %s::bigint[], %s::integer[])
            AS v (order_id, sku, batch_id, qty)
        JOIN line ON line.order_id = v.order_id AND line.sku = v.sku
    ), batches AS (
        UPDATE {_BATCH} b
        SET purchased_quantity = v.purchased, allocated_quantity = v.allocated, eta = v.eta
        FROM unnest(%s::bigint[], %s::integer[], %s::integer[], %s::date[])
            AS v (id, purchased, allocated, eta)
        WHERE b.id = v.id
    ), {_RESERVE_SQL}, {_EVENT_VALUES_SQL}, events AS ({_INSERT_EVENTS_SQL})
    SELECT id, order_id, sku FROM line
"""  # noqa: S608 - names from model metadata
_UPDATE_BATCH_SQL = (
    f"UPDATE {_BATCH} SET purchased_quantity = %s, allocated_quantity = %s, eta = %s "  # noqa: S608
    "WHERE id = %s"
)


def _insert_one(table: str, values: dict) -> int:
    """Insert one row with plain SQL; its new id."""
    columns, placeholders = ", ".join(values), ", ".join(["%s"] * len(values))
    sql = f"INSERT INTO {table} ({columns}) VALUES ({placeholders})"  # noqa: S608 - our own names
    with connection.cursor() as cursor:
        if connection.features.can_return_columns_from_insert:
            cursor.execute(*prepared(sql + " RETURNING id", list(values.values())))
            return cursor.fetchone()[0]
        cursor.execute(sql, list(values.values()))
        return cursor.lastrowid


def _sort_parts(snapshot: _Snapshot, batches: list[Batch], lines: list[Allocation]) -> None:
    """Lines' parts in preference order (rule 1): every batch they hold on is loaded."""
    held = {part.batch_reference for allocation in lines for part in allocation.parts}
    if not held:
        return
    # Keys of the batches held only: a SKU may have a thousand with stock.
    preference = {b.reference: b.preference_key for b in batches if b.reference in held}
    for allocation in lines:
        allocation.parts.sort(key=lambda part: preference[part.batch_reference])
        snapshot.lines[allocation.order_id].parts = tuple(allocation.parts)


def _aware(value: datetime | None) -> datetime | None:
    """A datetime read with plain SQL: PostgreSQL's are aware, SQLite's naive (in UTC)."""
    if value is not None and timezone.is_naive(value):
        return timezone.make_aware(value, connection.timezone)
    return value


def stamp(origin: Origin) -> list:
    """occurred_at, actor, source, transaction: the same for every event of one write."""
    now = connection.ops.adapt_datetimefield_value(timezone.now())
    return [now, origin.actor, origin.source, origin.transaction]


#: json.dumps with these separators builds an encoder per call; one is enough.
_compact_json = json.JSONEncoder(separators=(",", ":")).encode


def _event_rows(events: Sequence[Event]) -> list[tuple]:
    """(type, sku, rank among this batch's events of its SKU, order_id, data as JSON)."""
    rank: dict[str, int] = {}
    rows = []
    for event in events:
        rank[event.sku] = rank.get(event.sku, 0) + 1
        data = _compact_json(event.data)
        rows.append(
            (event.type, event.sku, rank[event.sku], getattr(event, "order_id", None), data)
        )
    return rows


def _event_columns(events: Sequence[Event]) -> list[str]:
    """The rows of ``_event_rows`` as five arrays (PostgreSQL's unnest), as array text."""
    rows = _event_rows(events)
    return [_array_text([row[i] for row in rows]) for i in range(5)]


def _array_text(values: Sequence) -> str:
    """``values`` as the text of a PostgreSQL array (``{"a","b",NULL}``), for an ``%s::type[]``.

    The driver adapts a Python list element by element; a bulk write sends
    arrays of thousands (a 5,000-line group: 70 ms to adapt as lists, 40 ms
    as text). Every element is double-quoted, with its backslashes and
    double quotes escaped, which is how PostgreSQL reads any value of any
    element type from an array's text; None is NULL. Escaping is skipped
    when no element needs it (one scan of them all), and the join is one
    C call when there is no NULL: most arrays are numbers and identifiers.
    """
    texts = [None if value is None else str(value) for value in values]
    present = [text for text in texts if text is not None]
    everything = "".join(present)
    if "\\" in everything or '"' in everything:
        texts = [
            None if text is None else text.replace("\\", "\\\\").replace('"', '\\"')
            for text in texts
        ]
    if not texts:
        return "{}"
    if len(present) == len(texts):
        return '{"' + '","'.join(texts) + '"}'  # type: ignore[arg-type]
    return "{" + ",".join("NULL" if text is None else f'"{text}"' for text in texts) + "}"


class _NoSuchProduct(Exception):
    """Raised by a load that locks when the SKU has no row (``get`` answers None)."""


@dataclass
class _Diff:
    """What changed in one product since it was loaded: the rows to write."""

    allocations: dict[str, Allocation]
    gone_lines: list[int]
    moved: list[int]
    new_lines: list[Allocation]
    new_batches: list[Batch]
    changed: list[Batch]
    gone_batches: list[int]
    restated: list[orm.OrderLine]

    @property
    def only_new_lines(self) -> bool:
        """New lines (and the batch totals they change), nothing else: the allocate path."""
        return bool(self.new_lines) and not (
            self.gone_lines or self.moved or self.new_batches or self.gone_batches or self.restated
        )


def _diff(product: Product, snapshot: _Snapshot) -> _Diff:
    batches = {b.reference: b for b in product.batches}
    allocations = {a.order_id: a for a in product.allocations}
    return _Diff(
        allocations=allocations,
        gone_lines=[row.id for oid, row in snapshot.lines.items() if oid not in allocations],
        moved=[
            row.id
            for oid, row in snapshot.lines.items()
            if oid in allocations and tuple(allocations[oid].parts) != row.parts
        ],
        new_lines=[a for oid, a in allocations.items() if oid not in snapshot.lines],
        new_batches=[b for ref, b in batches.items() if ref not in snapshot.batches],
        changed=[
            b
            for ref, b in batches.items()
            if ref in snapshot.batches
            and (
                snapshot.batches[ref].purchased_quantity,
                snapshot.batches[ref].allocated_quantity,
                snapshot.batches[ref].eta,
            )
            != (b.purchased_quantity, b.allocated_quantity, b.eta)
        ],
        gone_batches=[row.id for ref, row in snapshot.batches.items() if ref not in batches],
        restated=[
            orm.OrderLine(
                id=row.id,
                status=allocations[oid].status.value,
                allocated_at=allocations[oid].allocated_at,
            )
            for oid, row in snapshot.lines.items()
            if oid in allocations
            and (row.status, row.allocated_at)
            != (allocations[oid].status.value, allocations[oid].allocated_at)
        ],
    )


class DjangoProductRepository(AbstractProductRepository):
    def __init__(self, origin: Origin | None = None) -> None:
        super().__init__(origin)
        # SKUs whose row this transaction has locked already.
        self.locked: set[str] = set()
        self._open_cursor: CursorWrapper | None = None
        self._snapshots: dict[str, _Snapshot] = {}
        # Batch ids by reference, for every batch known in this unit of work.
        self._batch_ids: dict[str, int] = {}

    @contextlib.contextmanager
    def _cursor(self):
        """The repository's own cursor, opened once for the few statements of a use case."""
        if self._open_cursor is None:
            self._open_cursor = connection.cursor()
        yield self._open_cursor

    # -- loading -------------------------------------------------------------

    def _lock(self, sku: str) -> bool:
        if sku in self.locked:
            return True
        if self._lock_row(sku) is None:
            return False
        self.locked.add(sku)
        return True

    def _lock_row(self, sku: str, then: tuple[str, list] | None = None) -> list | None:
        """Lock the SKU's row, then run ``then``: its rows, or None if there is no such SKU.

        One row per SKU: locking it serialises every change to the SKU's
        stock, so two requests for one SKU queue here and requests for
        different SKUs never wait on each other. On SQLite the IMMEDIATE
        transaction already holds the database's single write lock.

        On PostgreSQL the lock and ``then`` go in one round trip, as two
        statements: under READ COMMITTED each statement of a query string
        takes its own snapshot when it starts, so ``then`` starts after the
        lock is granted and sees whatever the previous holder committed.
        While a request holds a SKU's lock, that is one wait on the network
        fewer. Only the second statement's rows come back: rows prove the
        SKU exists (batches and lines refer to it); after an empty answer
        the lock runs again alone to tell (instantly: if the SKU exists,
        this transaction holds its lock already).
        """
        locking = _FOR_UPDATE[connection.features.has_select_for_update]
        statement = prepared(_LOCK_SQL + locking, [sku])
        with self._cursor() as cursor:
            if then is not None and connection.vendor == "postgresql":
                cursor.execute(f"{statement[0]}; {then[0]}", [*statement[1], *then[1]])
                rows = cursor.fetchall()
                if rows:
                    return rows
                then = None
            cursor.execute(*statement)
            if cursor.fetchone() is None:
                return None
            if then is None:
                return []
            cursor.execute(*then)
            return cursor.fetchall()

    def get(
        self,
        sku: str,
        *,
        order_id: str | None = None,
        batch_reference: str | None = None,
        backorders: bool = False,
    ) -> Product | None:
        if sku in self.seen:
            raise RuntimeError(f"product {sku!r} is already loaded in this unit of work")
        if order_id is not None and sku not in self.locked:
            # Allocating a line: the lock and the load in one round trip.
            try:
                return self._load(
                    sku,
                    order_id=order_id,
                    batch_reference=batch_reference,
                    backorders=backorders,
                    lock=True,
                )
            except _NoSuchProduct:
                return None
        if not self._lock(sku):
            return None
        return self._load(
            sku, order_id=order_id, batch_reference=batch_reference, backorders=backorders
        )

    def _lock_sorted(self, skus: Collection[str]) -> list[str]:
        """Lock the SKUs' rows in one statement, in sorted order; the ones that exist.

        The sort runs before the rows are locked: two writers sharing SKUs
        queue on the first SKU they share instead of deadlocking.
        """
        wanted = sorted(set(skus))
        for sku in wanted:
            if sku in self.seen:
                raise RuntimeError(f"product {sku!r} is already loaded in this unit of work")
        found = list(
            orm.Product.objects.select_for_update()
            .filter(sku__in=wanted)
            .order_by("sku")
            .values_list("sku", flat=True)
        )
        self.locked.update(found)
        return found

    def get_many(self, lines: Iterable[OrderLine]) -> dict[str, Product]:
        """Lock and load the lines' SKUs for allocating them; unknown SKUs are left out.

        For bulk allocation: one lock query takes the SKUs' rows in sorted
        order (so two bulk runs, or a bulk run and requests, never deadlock),
        then one statement loads them all on PostgreSQL (``_MANY_SQL``, only
        the deciding batches); on SQLite each SKU loads as ``get`` would,
        with all of its order ids and every batch with stock.
        """
        lines = list(lines)
        order_ids: dict[str, set[str]] = defaultdict(set)
        for line in lines:
            order_ids[line.sku].add(line.order_id)
        found = self._lock_sorted(order_ids)
        if connection.vendor != "postgresql":
            return {sku: self._load(sku, order_ids=order_ids[sku]) for sku in found}
        if not found:
            return {}
        # PostgreSQL: every SKU in one statement, as for an order.
        demands = Demand.per_sku(lines)
        pairs = [(order_id, sku) for sku in found for order_id in order_ids[sku]]
        params = [
            [p[0] for p in pairs],
            [p[1] for p in pairs],
            found,
            [demands[sku].units for sku in found],
            [demands[sku].largest for sku in found],
            FIRST_WALK,
            FIRST_WALK,
            found,
        ]
        with self._cursor() as cursor:
            cursor.execute(*prepared(_MANY_SQL, params))
            rows = cursor.fetchall()
        return self._products_from(found, rows)

    def get_for_order(self, order_id: str, skus: Collection[str]) -> dict[str, Product]:
        found = self._lock_sorted(skus)
        if not found:
            return {}
        if connection.vendor == "postgresql":
            sql = _ORDER_SQL.format(
                batch=_BATCH, part=_PART, line=_LINE, product=_PRODUCT, skus="= ANY(%s)"
            )
            params = [found, order_id, found, order_id, found, found]
            query = prepared(sql, params)
        else:
            among = f"IN ({', '.join(['%s'] * len(found))})"
            sql = _ORDER_SQL.format(
                batch=_BATCH, part=_PART, line=_LINE, product=_PRODUCT, skus=among
            )
            query = (sql, [*found, order_id, *found, order_id, *found, *found])
        with self._cursor() as cursor:
            cursor.execute(*query)
            rows = cursor.fetchall()
        return self._products_from(found, rows)

    def _products_from(self, found: list[str], rows: list[tuple]) -> dict[str, Product]:
        """Products from the rows of ``_ORDER_SQL`` or ``_MANY_SQL``."""
        batch_rows: dict[str, list[tuple]] = {sku: [] for sku in found}
        line_rows: dict[str, list[tuple]] = {sku: [] for sku in found}
        with_batches: set[str] = set()
        for kind, sku, row_id, name, qty, other_qty, eta, at, allocated_at, ref in rows:
            if kind == "b":
                batch_rows[sku].append((row_id, name, qty, other_qty, eta, _aware(at)))
            elif kind == "l":
                line_rows[sku].append(
                    (row_id, name, qty, "", _aware(at), _aware(allocated_at), other_qty, ref)
                )
            else:
                with_batches.add(sku)
        products = {}
        for sku in found:
            snapshot = _Snapshot()
            batches = self._add_batches(snapshot, sku, batch_rows[sku])
            lines = self._add_lines(snapshot, sku, line_rows[sku])
            _sort_parts(snapshot, batches, lines)
            product = Product(sku, batches, lines, has_batches=sku in with_batches)
            self.seen[sku] = products[sku] = product
            self._snapshots[sku] = snapshot
        return products

    def skus_of_order(self, order_id: str) -> list[str]:
        return list(
            orm.OrderLine.objects.filter(order_id=order_id)
            .order_by("product_id")
            .values_list("product_id", flat=True)
        )

    def get_or_create(self, sku: str, *, now: datetime, backorders: bool = True) -> Product:
        if not self._lock(sku):
            # ignore_conflicts: a concurrent creator of the same SKU wins the
            # insert, and we then wait for its lock like everyone else.
            orm.Product.objects.bulk_create(
                [orm.Product(sku=sku, created_at=now)], ignore_conflicts=True
            )
            self._lock(sku)
        return self._load(sku, backorders=backorders)

    def get_for_load(self, sku: str, references: Collection[str], *, now: datetime) -> Product:
        if sku in self.seen:
            raise RuntimeError(f"product {sku!r} is already loaded in this unit of work")
        if not self._lock(sku):
            orm.Product.objects.bulk_create(
                [orm.Product(sku=sku, created_at=now)], ignore_conflicts=True
            )
            self._lock(sku)
        return self._load(sku, backorders=True, batch_references=references)

    def stage_batches(self, rows: Iterable[BatchRow]) -> BatchLoad:
        from allocation.repository.batch_loads import DjangoBatchLoad

        return DjangoBatchLoad(rows, self.origin)

    def sku_of_batch(self, reference: str) -> str | None:
        return (
            orm.Batch.objects.filter(reference=reference)
            .values_list("product_id", flat=True)
            .first()
        )

    def _load(
        self,
        sku: str,
        *,
        order_id: str | None = None,
        batch_reference: str | None = None,
        backorders: bool = False,
        order_ids: Collection[str] = (),
        batch_references: Collection[str] = (),
        lock: bool = False,
    ) -> Product:
        """Load the product; with ``lock`` (one line's) its row is locked first.

        Raises ``_NoSuchProduct`` if ``lock`` finds no such SKU.
        """
        if order_id is not None and (batch_reference is not None or order_ids or batch_references):
            raise ValueError("a product is loaded for one line, or for a batch, or for lines")
        if lock and order_id is None:
            raise ValueError("only a line's product is locked as it loads")
        snapshot = _Snapshot()
        allocations: list[Allocation] = []
        if lock:
            # The line and its batches, read in the lock's round trip; the
            # other reads below come after the lock too.
            batches, line = self._load_batches_and_line(snapshot, sku, str(order_id), lock=True)
        if order_ids:
            allocations += self._load_lines(snapshot, sku, Q(order_id__in=list(order_ids)))
        if backorders:
            allocations += self._load_lines(
                snapshot, sku, Q(status=LineStatus.BACKORDERED.value), exclude=snapshot.lines
            )
        if order_id is not None:
            if not lock:
                batches, line = self._load_batches_and_line(snapshot, sku, order_id)
            allocations += line
        else:
            # The batches with stock, and those the loaded lines hold parts on.
            wanted_refs = {p.batch_reference for a in allocations for p in a.parts}
            if batch_reference is not None:
                wanted_refs.add(batch_reference)
            wanted_refs.update(batch_references)
            batches = self._load_batches(snapshot, sku, sorted(wanted_refs))
        has_batches = bool(batches) or orm.Batch.objects.filter(product_id=sku).exists()
        product = Product(sku, batches, allocations, has_batches=has_batches)
        self.seen[sku] = product
        self._snapshots[sku] = snapshot
        return product

    def _load_batches(self, snapshot: _Snapshot, sku: str, wanted: list[str]) -> list[Batch]:
        """The SKU's batches with stock, and the ``wanted`` ones whatever their stock."""
        sql = _BATCHES_WITH_STOCK_SQL.format(
            or_wanted=f" OR reference IN ({', '.join(['%s'] * len(wanted))})" if wanted else ""
        )
        with self._cursor() as cursor:
            if wanted:  # its text varies with the number of references: not prepared
                cursor.execute(sql, [sku, *wanted])
            else:
                cursor.execute(*prepared(sql, [sku]))
            rows = [(*row[:5], _aware(row[5])) for row in cursor.fetchall()]
        return self._add_batches(snapshot, sku, rows)

    def _load_batches_and_line(
        self, snapshot: _Snapshot, sku: str, order_id: str, *, lock: bool = False
    ) -> tuple[list[Batch], list[Allocation]]:
        """One statement: the batches with stock or held by the line, and the line if it exists.

        With ``lock``, after locking the SKU's row (``_lock_row``); ``_NoSuchProduct``
        if there is none.
        """
        statement = prepared(_BATCHES_AND_LINE_SQL, [sku, sku, order_id, sku, order_id])
        if lock:
            found = self._lock_row(sku, then=statement)
            if found is None:
                raise _NoSuchProduct(sku)
            self.locked.add(sku)
            rows = found
        else:
            with self._cursor() as cursor:
                cursor.execute(*statement)
                rows = cursor.fetchall()
        batch_rows, line_rows = [], []
        for kind, row_id, name, qty, other_qty, eta, at, allocated_at, ref in rows:
            if kind == "b":
                batch_rows.append((row_id, name, qty, other_qty, eta, _aware(at)))
            else:
                line_rows.append(
                    (row_id, name, qty, "", _aware(at), _aware(allocated_at), other_qty, ref)
                )
        batches = self._add_batches(snapshot, sku, batch_rows)
        line = self._add_lines(snapshot, sku, line_rows)
        _sort_parts(snapshot, batches, line)
        return batches, line

    def load_lines_on_batch(self, product: Product, reference: str) -> None:
        snapshot = self._snapshots[product.sku]
        holding = orm.Allocation.objects.filter(batch__reference=reference).values("line_id")
        allocations = self._load_lines(
            snapshot, product.sku, Q(id__in=holding), exclude=snapshot.lines
        )
        known = {b.reference for b in product.batches}
        missing = {p.batch_reference for a in allocations for p in a.parts} - known
        batches = []
        if missing:
            batches = self._add_batches(
                snapshot,
                product.sku,
                orm.Batch.objects.filter(reference__in=missing).values_list(*_BATCH_FIELDS),
            )
        product.include(batches=batches, allocations=allocations)

    def _add_batches(self, snapshot: _Snapshot, sku: str, rows) -> list[Batch]:
        """Domain batches from rows of ``_BATCH_FIELDS``, remembered in the snapshot."""
        batches = []
        for row in rows:
            batch_id, reference, purchased, allocated, eta, created_at = row
            self._batch_ids[reference] = batch_id
            snapshot.batches[reference] = _BatchRow(batch_id, purchased, allocated, eta)
            batches.append(
                Batch(
                    reference,
                    sku,
                    purchased_quantity=purchased,
                    eta=eta,
                    created_at=created_at,
                    allocated_quantity=allocated,
                )
            )
        return batches

    def _load_lines(
        self, snapshot: _Snapshot, sku: str, condition: Q, exclude=()
    ) -> list[Allocation]:
        """Lines with their parts in one query (a LEFT JOIN: backorders have none)."""
        rows = (
            orm.OrderLine.objects.filter(condition, product_id=sku)
            .values_list(
                "id",
                "order_id",
                "qty",
                "status",
                "requested_at",
                "allocated_at",
                "parts__qty",
                "parts__batch__reference",
            )
            .order_by("id", *orm.preference_order("parts__batch__"))
        )
        return self._add_lines(snapshot, sku, rows, exclude)

    def _add_lines(self, snapshot: _Snapshot, sku: str, rows, exclude=()) -> list[Allocation]:
        """Domain allocations from (line..., part qty, part batch) rows, in the snapshot."""
        by_id: dict[int, Allocation] = {}
        for line_id, order_id, qty, _status, requested_at, allocated_at, part_qty, ref in rows:
            if order_id in exclude:
                continue
            allocation = by_id.get(line_id)
            if allocation is None:
                allocation = by_id[line_id] = Allocation(
                    line=OrderLine(order_id, sku, qty),
                    requested_at=requested_at,
                    allocated_at=allocated_at,
                )
            if part_qty is not None:
                allocation.parts.append(Part(ref, part_qty))
        for line_id, allocation in by_id.items():
            snapshot.lines[allocation.order_id] = _LineRow(
                line_id, allocation.status.value, allocation.allocated_at, tuple(allocation.parts)
            )
        return list(by_id.values())

    # -- writing ---------------------------------------------------------------

    def flush(self) -> None:
        pending: list[Event] = []
        # PostgreSQL: every product whose only change is new lines (the
        # allocate path, an order, a bulk group) is written in one statement,
        # with their events: an order of ten lines costs one write, not ten.
        together: list[tuple[_Snapshot, _Diff]] = []
        their_events: list[Event] = []
        diffs: list[tuple[_Snapshot, _Diff]] = []
        pg = connection.vendor == "postgresql"
        for sku, product in self.seen.items():
            snapshot = self._snapshots[sku]
            diff = _diff(product, snapshot)
            diffs.append((snapshot, diff))
            if pg and diff.only_new_lines:
                together.append((snapshot, diff))
                their_events += product.events
            else:
                self._write_diff(sku, snapshot, diff)
                pending += product.events
            # Written (or about to be, below): a second flush writes nothing again.
            product.events.clear()
        if together:
            self._write_new_lines(together, their_events)
        for snapshot, diff in diffs:
            # What is written is the new baseline: a second flush writes nothing.
            self._advance(snapshot, diff)
        self.record(pending)

    def record(self, events: Sequence[Event]) -> None:
        if not events:
            return
        vendor = connection.vendor
        size = EVENT_CHUNK.get(vendor, EVENT_CHUNK["sqlite"])
        stamp = self._stamp()
        with self._cursor() as cursor:
            for start in range(0, len(events), size):
                # Ranks restart with each statement: it sees the ones before.
                chunk = events[start : start + size]
                if vendor == "postgresql":
                    cursor.execute(*prepared(_WRITE_EVENTS_SQL, [*_event_columns(chunk), *stamp]))
                else:
                    rows = _event_rows(chunk)
                    sql = _SQLITE_EVENTS_SQL.format(rows=", ".join([_SQLITE_EVENT_ROW] * len(rows)))
                    cursor.execute(sql, [*stamp, *(value for row in rows for value in row)])

    def _stamp(self) -> list:
        return stamp(self.origin)

    def _advance(self, snapshot: _Snapshot, diff: _Diff) -> None:
        """Make the snapshot what was just written: only the rows that changed are visited."""
        if diff.gone_batches:
            gone = set(diff.gone_batches)
            for reference in [r for r, row in snapshot.batches.items() if row.id in gone]:
                del snapshot.batches[reference]
        for batch in (*diff.new_batches, *diff.changed):
            snapshot.batches[batch.reference] = _BatchRow(
                self._batch_ids[batch.reference],
                batch.purchased_quantity,
                batch.allocated_quantity,
                batch.eta,
            )
        for order_id in [o for o in snapshot.lines if o not in diff.allocations]:
            del snapshot.lines[order_id]
        for order_id, allocation in diff.allocations.items():
            snapshot.lines[order_id] = _LineRow(
                snapshot.lines[order_id].id,
                allocation.status.value,
                allocation.allocated_at,
                tuple(allocation.parts),
            )

    def _write_diff(self, sku: str, snapshot: _Snapshot, diff: _Diff) -> None:
        """Write one product's changes with the ORM and plain statements."""
        gone_lines, moved, new_lines = diff.gone_lines, diff.moved, diff.new_lines
        new_batches, changed, gone_batches = diff.new_batches, diff.changed, diff.gone_batches
        restated, allocations = diff.restated, diff.allocations

        # 1. Lines that are gone, and parts that moved, leave first, so batch
        #    rows can be deleted and parts inserted without clashing.
        if gone_lines or moved:
            orm.Allocation.objects.filter(line_id__in=gone_lines + moved).delete()
        if gone_lines:
            orm.OrderLine.objects.filter(id__in=gone_lines).delete()

        # 2. New lines, so that their parts can refer to them.
        if new_lines:
            for allocation, line_id in zip(
                new_lines, self._insert_lines(sku, new_lines), strict=True
            ):
                snapshot.lines[allocation.order_id] = _LineRow(line_id, "", None, ())

        # 3. Batches: new, changed, gone.
        if new_batches:
            self._insert_batches(sku, new_batches)
        if changed:
            adapt_date = connection.ops.adapt_datefield_value
            with connection.cursor() as cursor:
                for batch in changed:
                    cursor.execute(
                        _UPDATE_BATCH_SQL,
                        [
                            batch.purchased_quantity,
                            batch.allocated_quantity,
                            adapt_date(batch.eta),
                            self._batch_ids[batch.reference],
                        ],
                    )
        if gone_batches:
            orm.Batch.objects.filter(id__in=gone_batches).delete()

        # 4. Lines whose status moved, then every new part.
        if len(restated) == 1:
            orm.OrderLine.objects.filter(id=restated[0].id).update(
                status=restated[0].status, allocated_at=restated[0].allocated_at
            )
        elif restated:
            orm.OrderLine.objects.bulk_update(restated, ["status", "allocated_at"])
        new_parts = [
            {
                "line_id": snapshot.lines[oid].id,
                "batch_id": self._batch_ids[p.batch_reference],
                "qty": p.qty,
            }
            for oid, a in allocations.items()
            if tuple(a.parts) != snapshot.lines[oid].parts
            for p in a.parts
        ]
        if len(new_parts) == 1:
            _insert_one(_PART, new_parts[0])
        elif new_parts:
            orm.Allocation.objects.bulk_create(orm.Allocation(**part) for part in new_parts)

    def _insert_batches(self, sku: str, batches: list[Batch]) -> None:
        rows = [
            orm.Batch(
                reference=b.reference,
                product_id=sku,
                purchased_quantity=b.purchased_quantity,
                allocated_quantity=b.allocated_quantity,
                eta=b.eta,
                created_at=b.created_at,
            )
            for b in batches
        ]
        try:
            # A savepoint, so that a duplicate reference (another SKU's
            # batch, created concurrently) is reported, not left to poison
            # the transaction.
            with transaction.atomic():
                orm.Batch.objects.bulk_create(rows)
        except IntegrityError as error:
            refs = [row.reference for row in rows]
            taken = list(
                orm.Batch.objects.filter(reference__in=refs).values_list("reference", flat=True)
            )
            if taken:
                raise DuplicateBatch(taken[0]) from error
            raise
        for row in rows:
            self._batch_ids[row.reference] = row.id

    def _write_new_lines(
        self, together: list[tuple[_Snapshot, _Diff]], events: list[Event]
    ) -> None:
        """PostgreSQL: new lines, their parts, the batches they take from, events: one write."""
        adapt_datetime = connection.ops.adapt_datetimefield_value
        adapt_date = connection.ops.adapt_datefield_value
        lines = [(snapshot, a) for snapshot, diff in together for a in diff.new_lines]
        changed = [batch for _snapshot, diff in together for batch in diff.changed]
        ids = self._batch_ids
        if len(lines) == 1:
            # The allocate path: a statement whose plan is the simplest.
            allocation = lines[0][1]
            line_values = [
                allocation.order_id,
                allocation.sku,
                allocation.qty,
                allocation.status.value,
                adapt_datetime(allocation.requested_at),
                adapt_datetime(allocation.allocated_at),
            ]
            if len(allocation.parts) == 1 and len(changed) == 1 and len(events) == 1:
                # Its usual shape: scalars only.
                (part,), (batch,) = allocation.parts, changed
                ((kind, sku, rank, order_id, data),) = _event_rows(events)
                params = [
                    *line_values,
                    ids[part.batch_reference],
                    part.qty,
                    batch.purchased_quantity,
                    batch.allocated_quantity,
                    adapt_date(batch.eta),
                    ids[batch.reference],
                    kind,
                    sku,
                    sku,
                    rank,
                    *self._stamp(),
                    order_id,
                    data,
                ]
                self._run_line_write(lines, prepared(_WRITE_ONE_PART_SQL, params))
                return
            sql = _WRITE_NEW_LINE_SQL
            params = [
                *line_values,
                [ids[part.batch_reference] for part in allocation.parts],
                [part.qty for part in allocation.parts],
            ]
        else:
            parts = [(a, part) for _snapshot, a in lines for part in a.parts]
            sql = _WRITE_NEW_LINES_SQL
            params = [
                _array_text(column)
                for column in (
                    [a.order_id for _snapshot, a in lines],
                    [a.sku for _snapshot, a in lines],
                    [a.qty for _snapshot, a in lines],
                    [a.status.value for _snapshot, a in lines],
                    [adapt_datetime(a.requested_at) for _snapshot, a in lines],
                    [adapt_datetime(a.allocated_at) for _snapshot, a in lines],
                    [a.order_id for a, _part in parts],
                    [a.sku for a, _part in parts],
                    [ids[part.batch_reference] for _a, part in parts],
                    [part.qty for _a, part in parts],
                )
            ]
        params += [
            [ids[batch.reference] for batch in changed],
            [batch.purchased_quantity for batch in changed],
            [batch.allocated_quantity for batch in changed],
            [adapt_date(batch.eta) for batch in changed],
            *_event_columns(events),
            *self._stamp(),
        ]
        self._run_line_write(lines, prepared(sql, params))

    def _run_line_write(
        self, lines: list[tuple[_Snapshot, Allocation]], statement: tuple[str, list]
    ) -> None:
        """Run the write of new lines; the snapshots learn their ids."""
        with self._cursor() as cursor:
            cursor.execute(*statement)
            if len(lines) == 1:
                (line_id,) = cursor.fetchone()
                written = {(lines[0][1].order_id, lines[0][1].sku): line_id}
            else:
                written = {(order, sku): line_id for line_id, order, sku in cursor.fetchall()}
        for snapshot, allocation in lines:
            line_id = written[(allocation.order_id, allocation.sku)]
            snapshot.lines[allocation.order_id] = _LineRow(line_id, "", None, ())

    def _insert_lines(self, sku: str, allocations: list[Allocation]) -> list[int]:
        """Insert new lines; their ids in the same order."""
        if len(allocations) == 1:
            # The allocate path: one plain INSERT.
            allocation = allocations[0]
            adapt = connection.ops.adapt_datetimefield_value
            values = {
                "order_id": allocation.order_id,
                "sku": sku,
                "qty": allocation.qty,
                "status": allocation.status.value,
                "requested_at": adapt(allocation.requested_at),
                "allocated_at": adapt(allocation.allocated_at),
            }
            return [_insert_one(_LINE, values)]
        rows = orm.OrderLine.objects.bulk_create(
            orm.OrderLine(
                order_id=a.order_id,
                product_id=sku,
                qty=a.qty,
                status=a.status.value,
                requested_at=a.requested_at,
                allocated_at=a.allocated_at,
            )
            for a in allocations
        )
        return [row.id for row in rows]
