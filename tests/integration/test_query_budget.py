"""Allocating costs a fixed, small number of queries, however long the SKU's history.

Counted through the whole HTTP request (token authentication and the
permission check included) for a non-superuser who holds only the allocate
permission, so nothing is skipped by ``is_superuser`` shortcuts. Counts, not
timings: the budget holds on any machine.
"""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from allocation import models as orm
from tests.factories import UserFactory
from tests.integration.helpers import give_history, stock_for

QUERY_BUDGET = 10
PRIOR_LINES = 1000


def allocate_counting_queries(client, order_id: str, sku: str):
    with CaptureQueriesContext(connection) as queries:
        response = client.post(
            "/api/allocations/", {"order_id": order_id, "sku": sku, "qty": 3}, format="json"
        )
    return response, [q["sql"] for q in queries.captured_queries]


@pytest.fixture
def allocator(client_for):
    """An API client for a staff user who may allocate and nothing else."""
    user = UserFactory(username="allocator", permissions=["add_orderline"])
    assert not user.is_superuser
    assert user.get_all_permissions() == {"allocation.add_orderline"}
    return client_for(user)


@pytest.mark.django_db
def test_allocating_on_a_sku_with_history_costs_the_same_queries_as_on_a_fresh_sku(allocator):
    stock_for("FRESH")
    give_history(stock_for("OLD"), PRIOR_LINES)
    assert orm.OrderLine.objects.filter(product_id="OLD").count() == PRIOR_LINES

    fresh, fresh_queries = allocate_counting_queries(allocator, "o-1", "FRESH")
    old, old_queries = allocate_counting_queries(allocator, "o-1", "OLD")

    assert fresh.status_code == 201, fresh.content
    assert old.status_code == 201, old.content
    assert fresh.json()["batches"] == [{"reference": "FRESH-stock", "qty": 3}]
    assert old.json()["batches"] == [{"reference": "OLD-stock", "qty": 3}]
    assert len(old_queries) == len(fresh_queries), "\n".join(old_queries)
    assert orm.Batch.objects.get(reference="OLD-stock").allocated_quantity == 3


@pytest.mark.django_db
def test_allocating_over_http_stays_within_the_query_budget(allocator):
    give_history(stock_for("OLD"), PRIOR_LINES)

    response, queries = allocate_counting_queries(allocator, "o-2", "OLD")

    assert response.status_code == 201, response.content
    assert len(queries) <= QUERY_BUDGET, "\n".join(queries)


@pytest.mark.django_db
def test_repeating_an_allocation_stays_within_the_query_budget(allocator):
    give_history(stock_for("OLD"), PRIOR_LINES)
    first, _ = allocate_counting_queries(allocator, "o-3", "OLD")

    again, queries = allocate_counting_queries(allocator, "o-3", "OLD")

    assert (first.status_code, again.status_code) == (201, 200)
    assert again.json()["batches"] == [{"reference": "OLD-stock", "qty": 3}]
    assert len(queries) <= QUERY_BUDGET, "\n".join(queries)
    assert orm.Batch.objects.get(reference="OLD-stock").allocated_quantity == 3
