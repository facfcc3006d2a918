"""The statements of an order (SPEC 2.5): known for 1 and for 10 lines, not growing with history."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from allocation import models as orm
from allocation import services
from tests.integration.helpers import give_history, stock_for

pytestmark = pytest.mark.django_db(transaction=True)


def order_statements(order_id: str, skus: list[str]) -> list[str]:
    with CaptureQueriesContext(connection) as queries:
        result = services.allocate_order(order_id=order_id, lines=[(sku, 3) for sku in skus])
    assert result.created is True
    return [q["sql"] for q in queries.captured_queries]


def test_an_order_costs_a_fixed_number_of_statements_whatever_the_skus_history():
    fresh = [f"FRESH-{n}" for n in range(10)]
    old = [f"OLD-{n}" for n in range(10)]
    for sku in fresh:
        stock_for(sku)
    for sku in old:
        give_history(stock_for(sku), 200)

    one_fresh = order_statements("o-1", fresh[:1])
    ten_fresh = order_statements("o-10", fresh)
    one_old = order_statements("o-1", old[:1])
    ten_old = order_statements("o-10", old)

    # PostgreSQL: BEGIN, one lock of every SKU, one load of every SKU, one
    # write of every new line (their parts, batch totals and events), COMMIT:
    # the same five statements for one line or ten. SQLite writes a line, its
    # part and its batch in plain statements.
    expected = (5, 5) if connection.vendor == "postgresql" else (8, 35)
    assert (len(one_fresh), len(ten_fresh)) == expected
    assert (len(one_old), len(ten_old)) == expected
    assert orm.OrderLine.objects.filter(order_id="o-10").count() == 20
