"""Set-based seeding of the benchmark databases (seconds, not minutes).

Rows are written straight into the product's tables with generate_series,
consistent with every invariant ``check_stock`` verifies: each batch's
``allocated_quantity`` is the sum of its parts, each allocated line's parts
add up to its qty. This is benchmark setup, not a product path: the product
writes only through its services.
"""

from __future__ import annotations

import contextlib

import psycopg2

# Stock that never runs out during a run.
PLENTY = 1_000_000_000

# The write database: 1,000 ordinary SKUs, one hot SKU, a fresh SKU and a SKU
# with a long history. Each has the same two batches with stock: one in the
# warehouse, one inbound.
MANY_SKUS = 1000
HOT_SKU = "HOT"
FRESH_SKU = "FRESH"
HISTORY_SKU = "HIST"


def sku_name(n: int) -> str:
    return f"S{n:04d}"


@contextlib.contextmanager
def connect(dsn: str):
    """An autocommit connection (CREATE/DROP DATABASE and VACUUM refuse transactions)."""
    connection = psycopg2.connect(dsn)
    connection.autocommit = True
    try:
        yield connection
    finally:
        connection.close()


def recreate_database(admin_dsn: str, name: str) -> None:
    with connect(admin_dsn) as connection, connection.cursor() as cursor:
        cursor.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        cursor.execute(f'CREATE DATABASE "{name}"')


def drop_database(admin_dsn: str, name: str) -> None:
    with connect(admin_dsn) as connection, connection.cursor() as cursor:
        cursor.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def seed_writes(dsn: str, *, history_lines: int) -> None:
    """SKUs for the allocation benchmark, and ``history_lines`` past lines on HIST."""
    skus = [sku_name(n) for n in range(MANY_SKUS)] + [HOT_SKU, FRESH_SKU, HISTORY_SKU]
    used_up = max(1, history_lines // 100)
    with connect(dsn) as connection, connection.cursor() as cursor:
        cursor.execute("SET session_replication_role = replica")  # see seed_reads
        cursor.execute(
            """
            INSERT INTO allocation_product (sku, created_at)
            SELECT s, now() - interval '30 days' FROM unnest(%s::text[]) AS s
            """,
            [skus],
        )
        cursor.execute(
            """
            INSERT INTO allocation_batch
                (reference, sku, purchased_quantity, allocated_quantity, eta, created_at)
            SELECT s || '-' || kind, s, %s, 0,
                   CASE kind WHEN 'inbound' THEN current_date + 30 END,
                   now() - interval '10 days'
            FROM unnest(%s::text[]) AS s, unnest(ARRAY['stock', 'inbound']) AS kind
            """,
            [PLENTY, skus],
        )
        # HIST's past: used-up batches (100 each), older than its stock, and
        # one allocated line of qty 1 per unit on them.
        cursor.execute(
            """
            INSERT INTO allocation_batch
                (reference, sku, purchased_quantity, allocated_quantity, eta, created_at)
            SELECT 'HIST-old-' || n, %s, 100, 100, NULL,
                   now() - interval '1 year' + n * interval '1 minute'
            FROM generate_series(1, %s) AS n
            """,
            [HISTORY_SKU, used_up],
        )
        cursor.execute(
            """
            INSERT INTO allocation_orderline
                (order_id, sku, qty, status, requested_at, allocated_at)
            SELECT 'past-' || n, %s, 1, 'allocated',
                   now() - interval '1 year' + n * interval '1 second',
                   now() - interval '1 year' + n * interval '1 second'
            FROM generate_series(1, %s) AS n
            """,
            [HISTORY_SKU, used_up * 100],
        )
        cursor.execute(
            """
            INSERT INTO allocation_allocation (line_id, batch_id, qty)
            SELECT l.id, b.id, 1
            FROM allocation_orderline l
            JOIN allocation_batch b
              ON b.reference = 'HIST-old-' || ((substr(l.order_id, 6)::int - 1) / 100 + 1)
            WHERE l.sku = %s
            """,
            [HISTORY_SKU],
        )
        cursor.execute("VACUUM ANALYZE")


def seed_reads(dsn: str, *, batches: int) -> None:
    """``batches`` batches and as many lines, ten of each per SKU, ten lines per order.

    SKU ``R<n>`` holds batches ``B<10n+1>``..``B<10n+10>`` (even ones inbound);
    line ``j`` holds 10 units on batch ``B<j>`` and belongs to order
    ``O<(j-1) mod (batches/10)>``: every order has ten lines, on ten SKUs.
    """
    skus = batches // 10
    with connect(dsn) as connection, connection.cursor() as cursor:
        # The rows are consistent by construction: skip the per-row foreign key
        # triggers (PostgreSQL's usual bulk-load setting; this session only).
        cursor.execute("SET session_replication_role = replica")
        cursor.execute(
            """
            INSERT INTO allocation_product (sku, created_at)
            SELECT 'R' || n, now() - interval '1 year' FROM generate_series(0, %s - 1) AS n
            """,
            [skus],
        )
        cursor.execute(
            """
            INSERT INTO allocation_batch
                (id, reference, sku, purchased_quantity, allocated_quantity, eta, created_at)
            SELECT j, 'B' || j, 'R' || ((j - 1) / 10), 100, 10,
                   CASE WHEN j %% 2 = 0 THEN current_date + (j %% 90) END,
                   now() - interval '1 year' + j * interval '1 second'
            FROM generate_series(1, %s) AS j
            """,
            [batches],
        )
        cursor.execute(
            """
            INSERT INTO allocation_orderline
                (id, order_id, sku, qty, status, requested_at, allocated_at)
            SELECT j, 'O' || ((j - 1) %% %s), 'R' || ((j - 1) / 10), 10, 'allocated',
                   now() - interval '1 year' + j * interval '1 second',
                   now() - interval '1 year' + j * interval '1 second'
            FROM generate_series(1, %s) AS j
            """,
            [skus, batches],
        )
        cursor.execute(
            """
            INSERT INTO allocation_allocation (id, line_id, batch_id, qty)
            SELECT j, j, j, 10 FROM generate_series(1, %s) AS j
            """,
            [batches],
        )
        for table in ("allocation_batch", "allocation_orderline", "allocation_allocation"):
            cursor.execute(
                f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "  # noqa: S608 - fixed names
                f"(SELECT max(id) FROM {table}))"
            )
        cursor.execute("VACUUM ANALYZE")
