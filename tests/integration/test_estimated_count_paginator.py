"""The admin's changelists never count a whole big table (SQL text and counts, not timings)."""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from allocation import models as orm
from allocation.admin import paginators
from allocation.admin.paginators import EstimatedCountPaginator
from tests.conftest import on_postgres
from tests.factories import BatchRowFactory, ProductFactory

pytestmark = pytest.mark.django_db


def batches(count: int, sku: str = "A") -> None:
    BatchRowFactory.create_batch(count, product=ProductFactory(sku=sku))


def counting(queryset) -> tuple[int, list[str]]:
    with CaptureQueriesContext(connection) as queries:
        count = EstimatedCountPaginator(queryset, 100).count
    return count, [q["sql"] for q in queries.captured_queries]


def test_a_small_table_is_counted_exactly_in_one_query():
    batches(7)

    count, sql = counting(orm.Batch.objects.order_by("reference"))

    assert count == 7
    assert len(sql) == 1


def test_a_filtered_list_is_counted_exactly_however_big_the_table(monkeypatch):
    monkeypatch.setattr(paginators, "EXACT_BELOW", 3)
    batches(5, sku="A")
    batches(2, sku="B")

    count, sql = counting(orm.Batch.objects.filter(product_id="A").order_by("reference"))

    assert count == 5
    assert len(sql) == 1
    assert "LIMIT" not in sql[0]


def test_an_unfiltered_big_table_is_estimated_on_postgres_and_counted_on_sqlite(monkeypatch):
    monkeypatch.setattr(paginators, "EXACT_BELOW", 3)
    batches(5)

    if on_postgres():
        with connection.cursor() as cursor:
            cursor.execute("ANALYZE allocation_batch")
        count, sql = counting(orm.Batch.objects.order_by("reference"))
        # Counted up to the cap (no sort), then the planner's estimate.
        assert count >= 3
        assert len(sql) == 2
        assert "LIMIT 3" in sql[0] and "ORDER BY" not in sql[0]
        assert "reltuples" in sql[1]
    else:
        count, sql = counting(orm.Batch.objects.order_by("reference"))
        assert count == 5
        assert len(sql) == 1
