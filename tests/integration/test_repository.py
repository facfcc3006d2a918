"""The repository against a real database: round trips and what it loads."""

import json
import uuid
from datetime import UTC, date, datetime
from unittest import mock

import pytest
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from allocation import models as orm
from allocation import services
from allocation.repository import DjangoProductRepository, products
from domain.model import Demand, LineStatus, OrderLine, Part, deciding_batches
from tests.factories import tick

pytestmark = pytest.mark.django_db


def load(sku, **kwargs):
    repo = DjangoProductRepository()
    return repo, repo.get(sku, **kwargs)


def test_round_trip_of_batches_lines_and_parts():
    services.add_batch(reference="b-stock", sku="LAMP", purchased_quantity=5)
    services.add_batch(reference="b-ship", sku="LAMP", purchased_quantity=10, eta=date(2027, 3, 1))
    services.allocate(order_id="o1", sku="LAMP", qty=12)

    with transaction.atomic():
        _, product = load("LAMP", order_id="o1")
    allocation = product.allocation("o1")
    assert allocation.line == OrderLine("o1", "LAMP", 12)
    assert allocation.status is LineStatus.ALLOCATED
    assert allocation.parts == [Part("b-stock", 5), Part("b-ship", 7)]
    # The line's own batches come along (deallocating it would free them).
    assert [(b.reference, b.allocated_quantity, b.available_quantity) for b in product.batches] == [
        ("b-stock", 5, 0),
        ("b-ship", 7, 3),
    ]
    with transaction.atomic():
        _, product = load("LAMP", order_id="another")
    # b-stock is used up: for a new line it carries no decision, so it stays unloaded.
    assert [b.reference for b in product.batches] == ["b-ship"]
    assert product.has_batches is True


def test_unknown_sku_is_none():
    with transaction.atomic():
        _, product = load("NOPE")
    assert product is None


def test_used_up_batches_and_their_lines_are_not_loaded():
    services.add_batch(reference="old", sku="CUP", purchased_quantity=3)
    for n in range(3):
        services.allocate(order_id=f"past-{n}", sku="CUP", qty=1)
    services.add_batch(reference="new", sku="CUP", purchased_quantity=4)

    with transaction.atomic():
        _, product = load("CUP", order_id="today")
    assert [b.reference for b in product.batches] == ["new"]
    assert product.allocations == []


def test_loading_for_many_lines_brings_the_batches_that_decide_and_the_lines_own():
    services.add_batch(reference="b-used", sku="MUG", purchased_quantity=2)
    services.allocate(order_id="o-old", sku="MUG", qty=2)
    services.add_batch(reference="b-small", sku="MUG", purchased_quantity=3)
    services.add_batch(reference="b-mid", sku="MUG", purchased_quantity=10)
    services.add_batch(reference="b-late", sku="MUG", purchased_quantity=50)
    services.add_batch(reference="b-ship", sku="MUG", purchased_quantity=100, eta=date(2027, 1, 1))
    lines = [OrderLine("o-old", "MUG", 2), OrderLine("o-a", "MUG", 3), OrderLine("o-b", "MUG", 4)]

    with transaction.atomic():
        product = DjangoProductRepository().get_many(lines)["MUG"]
    loaded = [b.reference for b in product.batches]
    if connection.vendor == "postgresql":
        # 9 units, lines of up to 4: b-small's 3 are no spare, b-mid has 7,
        # b-late takes it past 9 (domain.model.deciding_batches); o-old's
        # own batch comes along.
        assert loaded == ["b-used", "b-small", "b-mid", "b-late"]
    else:
        # SQLite loads every batch with stock, as ``get`` does: more, same outcome.
        assert loaded == ["b-used", "b-small", "b-mid", "b-late", "b-ship"]
    assert [a.order_id for a in product.allocations] == ["o-old"]

    with transaction.atomic():
        product = DjangoProductRepository().get_many([OrderLine("o-c", "MUG", 200)])["MUG"]
    # Lines of 200: no batch has a spare unit, every batch with stock decides.
    assert [b.reference for b in product.batches] == ["b-small", "b-mid", "b-late", "b-ship"]

    outcomes = services.allocate_many(lines=[*lines, OrderLine("o-c", "MUG", 200)])
    assert [(o.outcome, o.allocation.parts if o.allocation else None) for o in outcomes] == [
        ("already_allocated", [Part("b-used", 2)]),
        ("allocated", [Part("b-small", 3)]),
        ("allocated", [Part("b-mid", 4)]),
        ("out_of_stock", None),
    ]


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    specs=st.lists(
        st.tuples(st.integers(1, 12), st.booleans(), st.integers(0, 3)), min_size=1, max_size=8
    ),
    quantities=st.lists(st.integers(1, 10), min_size=1, max_size=6),
)
def test_the_batches_loaded_for_many_lines_are_the_domains_deciding_batches(specs, quantities):
    sku = f"H-{uuid.uuid4().hex[:12]}"
    for n, (qty, inbound, day) in enumerate(specs):
        eta = date(2027, 1, 1 + day) if inbound else None
        services.add_batch(reference=f"{sku}-{n}", sku=sku, purchased_quantity=qty, eta=eta)
    services.allocate(order_id="first", sku=sku, qty=1)
    lines = [OrderLine(f"o{n}", sku, qty) for n, qty in enumerate(quantities)]

    with transaction.atomic():
        every = DjangoProductRepository().get(sku).batches
    deciding = deciding_batches(every, Demand.per_sku(lines)[sku])
    # PostgreSQL walks each SKU's first FIRST_WALK batches, then to the end
    # if those do not decide: a small limit takes the second path too.
    for first_walk in (1, 3, products.FIRST_WALK):
        with mock.patch.object(products, "FIRST_WALK", first_walk), transaction.atomic():
            product = DjangoProductRepository().get_many(lines)[sku]
        loaded = [b.reference for b in product.batches]
        if connection.vendor == "postgresql":
            assert loaded == [b.reference for b in deciding], first_walk
        else:
            assert loaded == [b.reference for b in every if b.available_quantity > 0]


def test_flush_writes_only_the_difference_and_twice_is_harmless():
    services.add_batch(reference="b1", sku="MUG", purchased_quantity=10)
    with transaction.atomic():
        repo, product = load("MUG", order_id="o1")
        product.allocate(OrderLine("o1", "MUG", 4), now=tick(1))
        repo.flush()
        with CaptureQueriesContext(connection) as second:
            repo.flush()
    assert len(second) == 0
    row = orm.Batch.objects.get(reference="b1")
    assert (row.allocated_quantity, row.purchased_quantity) == (4, 10)
    line = orm.OrderLine.objects.get(order_id="o1")
    assert (line.qty, line.status, line.requested_at, line.allocated_at) == (
        4,
        "allocated",
        tick(1),
        tick(1),
    )
    assert list(orm.Allocation.objects.values_list("batch__reference", "qty")) == [("b1", 4)]


def test_lines_on_a_reduced_batch_are_loaded_with_all_their_parts():
    services.add_batch(reference="a", sku="DESK", purchased_quantity=3)
    services.add_batch(reference="b", sku="DESK", purchased_quantity=3, eta=date(2027, 1, 1))
    services.allocate(order_id="split", sku="DESK", qty=5)  # a:3 b:2

    with transaction.atomic():
        repo, product = load("DESK", batch_reference="b", backorders=True)
        assert [b.reference for b in product.batches] == ["b"]
        repo.load_lines_on_batch(product, "b")
        assert [b.reference for b in product.batches] == ["a", "b"]
        assert product.allocation("split").parts == [Part("a", 3), Part("b", 2)]


def test_allocating_is_a_fixed_number_of_queries_whatever_the_history():
    services.add_batch(reference="h-old", sku="HIST", purchased_quantity=40)
    for n in range(40):
        services.allocate(order_id=f"h-{n}", sku="HIST", qty=1)
    services.add_batch(reference="h-new", sku="HIST", purchased_quantity=40)
    services.add_batch(reference="f-new", sku="FRESH", purchased_quantity=40)

    with CaptureQueriesContext(connection) as fresh:
        services.allocate(order_id="x", sku="FRESH", qty=1)
    with CaptureQueriesContext(connection) as busy:
        services.allocate(order_id="x", sku="HIST", qty=1)
    assert len(busy) == len(fresh)
    # Lock the SKU, read its batches with stock and the line (one statement),
    # then write: on PostgreSQL one statement inserts the line and its part,
    # updates the batch and inserts the line_allocated event; on SQLite those
    # are four statements (the event its own). (Plus the savepoint
    # bookkeeping that the test's own transaction adds.) On PostgreSQL the
    # lock and the read go in one round trip.
    round_trips = [
        q["sql"] for q in busy.captured_queries if not q["sql"].startswith(("SAVEPOINT", "RELEASE"))
    ]
    statements = [part for sql in round_trips for part in sql.split("; ")]
    assert len(statements) == (3 if connection.vendor == "postgresql" else 6), statements
    assert len(round_trips) == (2 if connection.vendor == "postgresql" else 6), round_trips


@pytest.mark.postgres_only
@pytest.mark.skipif(connection.vendor != "postgresql", reason="needs PostgreSQL")
def test_array_text_reads_back_as_the_values_it_was_made_of():
    """The bulk write sends its arrays as text (``products._array_text``): nothing may change."""
    values = [
        'a"b',
        "back\\slash",
        "\\",
        '\\"',
        "com,ma",
        "{brace}",
        " spaced ",
        "NULL",
        "",
        "é",
        None,
    ]
    when = datetime(2027, 1, 2, 3, 4, 5, 678901, tzinfo=UTC)
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT %s::text[], %s::integer[], %s::timestamptz[], %s::text[], "
            "(%s::text[])[1]::jsonb",
            [
                products._array_text(values),
                products._array_text([1, -2, None]),
                products._array_text([when, None]),
                products._array_text([]),
                products._array_text(['{"k":"v \\"q\\" \\\\ ,{}"}']),
            ],
        )
        texts, numbers, times, empty, document = cursor.fetchone()
    assert texts == values
    assert numbers == [1, -2, None]
    assert times == [when, None]
    assert empty == []
    # Django leaves jsonb as text for JSONField to decode.
    assert json.loads(document) == {"k": 'v "q" \\ ,{}'}


@given(
    st.lists(
        st.one_of(st.none(), st.integers(), st.text(), st.sampled_from(['"', "\\", '\\"', ","]))
    )
)
def test_array_text_quotes_every_element_and_escapes_only_backslashes_and_quotes(values):
    """Each element double-quoted with backslash and quote escaped, None as NULL, in order.

    The shortcuts (no escaping when nothing needs it, one join when nothing
    is NULL) must give exactly this.
    """
    expected = (
        "{"
        + ",".join(
            "NULL" if v is None else '"' + str(v).replace("\\", "\\\\").replace('"', '\\"') + '"'
            for v in values
        )
        + "}"
    )
    assert products._array_text(values) == expected
    assert products._array_text(["plain", 7]) == '{"plain","7"}'
    assert products._array_text(["a", None]) == '{"a",NULL}'


def _scans_of(plan: dict, table: str) -> list[dict]:
    found = [plan] if plan.get("Relation Name") == table else []
    for child in plan.get("Plans", []):
        found += _scans_of(child, table)
    return found


@pytest.mark.postgres_only
@pytest.mark.skipif(connection.vendor != "postgresql", reason="needs PostgreSQL")
def test_allocating_reads_only_the_batches_with_stock_not_the_skus_used_up_ones():
    """A SKU's history of used-up batches costs an allocation nothing (issue 11's history p50)."""
    for n in range(40):
        services.add_batch(reference=f"old-{n}", sku="MUG", purchased_quantity=1)
        services.allocate(order_id=f"o-{n}", sku="MUG", qty=1)
    services.add_batch(reference="now-1", sku="MUG", purchased_quantity=5)
    services.add_batch(reference="now-2", sku="MUG", purchased_quantity=5, eta=date(2027, 1, 1))
    services.allocate(order_id="held", sku="MUG", qty=1)

    with connection.cursor() as cursor:
        # Small tables: without these PostgreSQL would scan them whole anyway.
        cursor.execute("SET LOCAL enable_seqscan = off")
        cursor.execute("SET LOCAL enable_bitmapscan = off")
        cursor.execute(
            "EXPLAIN (ANALYZE, FORMAT JSON) " + products._BATCHES_AND_LINE_SQL,
            ["MUG", "MUG", "held", "MUG", "held"],
        )
        plan = cursor.fetchone()[0][0]["Plan"]
    scans = _scans_of(plan, orm.Batch._meta.db_table)
    # The SKU's batches are found through the index of those with stock, and
    # no scan of the batch table reads a used-up batch only to filter it out.
    by_sku = [scan for scan in scans if "sku" in scan.get("Index Cond", "")]
    assert [scan["Index Name"] for scan in by_sku] == ["batch_with_stock_idx"]
    assert by_sku[0]["Actual Rows"] == 2
    assert [scan.get("Rows Removed by Filter", 0) for scan in scans] == [0] * len(scans)
    with transaction.atomic():
        product = DjangoProductRepository().get("MUG", order_id="held")
    assert sorted(b.reference for b in product.batches) == ["now-1", "now-2"]
    assert [p.batch_reference for p in product.allocation("held").parts] == ["now-1"]
