"""Rule 1 and "in stock" are the domain's; every query that orders or filters batches agrees.

The data is chosen where engines and hand-written orderings go wrong: null
etas (SQLite puts NULL first, PostgreSQL last), equal etas, equal etas and
equal ``created_at`` (down to the reference), and references whose byte
order differs from a locale's ("ST-9" before "st-a").
"""

from datetime import date

import pytest
from django.db import connection, transaction

from allocation import models as orm
from allocation import selectors
from allocation.admin.batches import BatchAdmin
from allocation.api.views import BatchViewSet
from allocation.repository import DjangoProductRepository
from domain.model import PREFERENCE_ORDER, Batch, BatchStatus, OrderLine
from tests.factories import AllocationRowFactory, BatchRowFactory, OrderLineRowFactory, tick

pytestmark = pytest.mark.django_db

EARLY, LATE = date(2027, 1, 1), date(2027, 1, 2)

#: (reference, sku, eta, created_at tick), in the order rule 1 gives them.
IN_PREFERENCE_ORDER = [
    ("R-st", "R", None, 9),
    ("R-in", "R", EARLY, 0),
    ("st-c", "S", None, 0),
    ("ST-9", "S", None, 1),
    ("st-a", "S", None, 1),
    ("st-b", "S", None, 1),
    ("in-w", "S", EARLY, 2),
    ("in-x", "S", EARLY, 5),
    ("in-y", "S", LATE, 0),
    ("in-a", "S", LATE, 3),
    ("in-b", "S", LATE, 3),
]
EXPECTED = [reference for reference, *_ in IN_PREFERENCE_ORDER]
EXPECTED_S = EXPECTED[2:]
IN_STOCK = ["R-st", "st-c", "ST-9", "st-a", "st-b"]


@pytest.fixture
def batches() -> dict[str, orm.Batch]:
    # Created in reverse reference order, so that neither insertion order nor
    # id order happens to be the preference order.
    rows = {}
    for reference, sku, eta, created in sorted(IN_PREFERENCE_ORDER, reverse=True):
        rows[reference] = BatchRowFactory(
            reference=reference,
            product__sku=sku,
            eta=eta,
            created_at=tick(created),
            purchased_quantity=5,
            allocated_quantity=1 if sku == "S" else 0,
        )
    return rows


@pytest.fixture
def split_line(batches) -> str:
    """Order o-1 holds 1 unit on every batch of SKU S, its parts inserted in reverse order."""
    line = OrderLineRowFactory(order_id="o-1", product=batches["st-a"].product, qty=9)
    for reference in sorted(EXPECTED_S, reverse=True):
        AllocationRowFactory(line=line, batch=batches[reference], qty=1)
    return "o-1"


def references(queryset) -> list[str]:
    return list(queryset.values_list("reference", flat=True))


def test_the_domain_sorts_the_batches_in_the_expected_order():
    domain = [
        Batch(reference, sku, 5, eta, created_at=tick(created))
        for reference, sku, eta, created in reversed(IN_PREFERENCE_ORDER)
    ]

    ordered = sorted(domain, key=lambda b: (b.sku, b.preference_key))

    assert [b.reference for b in ordered] == EXPECTED


def test_the_orm_helper_orders_batches_as_the_domain_does(batches):
    assert references(orm.Batch.objects.in_preference_order()) == EXPECTED


def test_the_sql_order_by_text_orders_batches_as_the_domain_does(batches):
    table = orm.Batch._meta.db_table
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT b.reference FROM {table} b "  # noqa: S608 - names from model metadata
            f"ORDER BY b.sku, {orm.preference_order_sql('b.')}"
        )
        aliased = [row[0] for row in cursor.fetchall()]
        cursor.execute(
            f"SELECT reference FROM {table} "  # noqa: S608 - names from model metadata
            f"ORDER BY sku, {orm.preference_order_sql()}"
        )
        bare = [row[0] for row in cursor.fetchall()]

    assert orm.preference_order_sql("b.") == "b.eta ASC NULLS FIRST, b.created_at, b.reference"
    assert aliased == EXPECTED
    assert bare == EXPECTED


def test_the_api_cursor_and_the_admin_order_batches_as_the_domain_does(batches):
    keyset = BatchViewSet.keyset

    assert references(orm.Batch.objects.order_by(*keyset.ordering())) == EXPECTED
    assert (
        references(orm.Batch.objects.order_by(*keyset.ordering(reverse=True))) == (EXPECTED[::-1])
    )
    assert references(orm.Batch.objects.order_by(*BatchAdmin.ordering)) == EXPECTED


def test_sorting_by_status_puts_in_stock_batches_first(batches):
    ordered = references(orm.Batch.objects.order_by(orm.IN_STOCK_FIRST, "reference"))

    # In stock first; the column sorts by eta, so inbound ones follow by eta.
    assert ordered == [
        *["R-st", "ST-9", "st-a", "st-b", "st-c"],
        *["R-in", "in-w", "in-x", "in-a", "in-b", "in-y"],
    ]


def test_a_lines_parts_are_listed_and_exported_in_preference_order(split_line):
    line = selectors.line(split_line, "S")

    assert [part.batch.reference for part in line.parts.all()] == EXPECTED_S
    assert [row[3] for row in selectors.pick_list(order_id=split_line)] == EXPECTED_S


@pytest.mark.parametrize("load", ["for_the_line", "for_lines"])
def test_the_repository_loads_a_lines_parts_in_preference_order(split_line, load):
    repository = DjangoProductRepository()
    with transaction.atomic():
        if load == "for_the_line":
            product = repository.get("S", order_id=split_line)
        else:
            product = repository.get_many([OrderLine(split_line, "S", 9)])["S"]

    allocation = product.allocation(split_line)
    assert [part.batch_reference for part in allocation.parts] == EXPECTED_S


def test_in_stock_means_no_eta_in_every_filter(batches):
    in_stock = orm.Batch.objects.with_status(BatchStatus.IN_STOCK)
    inbound = orm.Batch.objects.with_status("inbound")

    assert sorted(references(in_stock)) == sorted(IN_STOCK)
    assert sorted(references(inbound)) == sorted(set(EXPECTED) - set(IN_STOCK))
    assert {b.reference: b.status for b in orm.Batch.objects.all()} == {
        reference: BatchStatus.IN_STOCK if reference in IN_STOCK else BatchStatus.INBOUND
        for reference in EXPECTED
    }


def test_the_index_of_batches_with_stock_is_in_preference_order(batches):
    """batch_with_stock_idx (migration 0008) holds a SKU's batches with stock in rule 1's order.

    Bulk allocation walks it to rank a SKU's batches (``_MANY_SQL``): an
    index in any other order would make PostgreSQL sort them all again.
    """
    columns = [orm.Batch._meta.get_field(name).column for name in PREFERENCE_ORDER]
    order = orm.preference_order_sql()
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute("SET LOCAL enable_sort = off")
            cursor.execute("SET LOCAL enable_seqscan = off")
            cursor.execute(
                "EXPLAIN (FORMAT JSON) SELECT id FROM allocation_batch "  # noqa: S608 - our own SQL
                f"WHERE sku = %s AND allocated_quantity < purchased_quantity ORDER BY {order}",
                ["S"],
            )
            plan = cursor.fetchone()[0][0]["Plan"]
            assert (plan["Node Type"], plan["Index Name"]) == ("Index Scan", "batch_with_stock_idx")
            cursor.execute(
                "SELECT indexdef FROM pg_indexes WHERE indexname = 'batch_with_stock_idx'"
            )
            assert cursor.fetchone()[0].endswith(
                "(sku, eta NULLS FIRST, created_at, reference) "
                "WHERE (allocated_quantity < purchased_quantity)"
            )
        else:
            cursor.execute("SELECT name FROM pragma_index_info('batch_with_stock_idx')")
            assert [name for (name,) in cursor.fetchall()] == ["sku", *columns]
            cursor.execute("SELECT sql FROM sqlite_master WHERE name = 'batch_with_stock_idx'")
            assert cursor.fetchone()[0].endswith("WHERE allocated_quantity < purchased_quantity")
    with transaction.atomic(), connection.cursor() as cursor:
        # The rows it gives, in its order, are the batches with stock in rule 1's order.
        cursor.execute(
            "SELECT reference FROM allocation_batch "  # noqa: S608 - our own SQL
            f"WHERE sku = %s AND allocated_quantity < purchased_quantity ORDER BY {order}",
            ["S"],
        )
        assert [r for (r,) in cursor.fetchall()] == EXPECTED_S
