"""Lists page by keyset: a deep page runs the same queries as the first, with no OFFSET or COUNT.

Counts and SQL text, not timings: what makes page 9,000 of a million rows as
cheap as page 1 is that its query seeks by key instead of skipping rows.
"""

from datetime import date

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from allocation import models as orm
from tests.factories import BatchRowFactory, OrderLineRowFactory, ProductFactory, tick

pytestmark = pytest.mark.django_db


def some_batches() -> list[str]:
    """Two SKUs, in-stock and inbound batches mixed: references in preference order."""
    expected = []
    for sku in ("A", "B"):
        product = ProductFactory(sku=sku)
        inbound = [
            BatchRowFactory(
                reference=f"{sku}-in-{n}", product=product, eta=date(2027, 1, 1 + n % 3)
            )
            for n in range(6)
        ]
        in_stock = [BatchRowFactory(reference=f"{sku}-st-{n}", product=product) for n in range(5)]
        inbound.sort(key=lambda b: (b.eta, b.created_at, b.reference))
        expected += [b.reference for b in in_stock + inbound]
    return expected


def some_lines() -> list[tuple[str, str]]:
    for sku in ("A", "B", "C"):
        product = ProductFactory(sku=sku)
        for n in range(7):
            OrderLineRowFactory(order_id=f"o-{n}", product=product, requested_at=tick(n))
    return sorted((f"o-{n}", sku) for n in range(7) for sku in ("A", "B", "C"))


def walk(api, url: str, link: str = "next") -> list[dict]:
    """Every page from ``url`` following ``link``; each page's body."""
    pages = []
    while url:
        response = api.get(url)
        assert response.status_code == 200, response.content
        pages.append(response.json())
        url = pages[-1][link]
    return pages


def sql_of(api, url: str) -> list[str]:
    with CaptureQueriesContext(connection) as queries:
        assert api.get(url).status_code == 200
    return [q["sql"] for q in queries.captured_queries]


def test_following_next_lists_batches_in_preference_order_within_each_sku(api):
    expected = some_batches()

    pages = walk(api, "/api/batches/?page_size=4")

    assert [b["reference"] for p in pages for b in p["results"]] == expected
    assert [len(p["results"]) for p in pages] == [4, 4, 4, 4, 4, 2]
    assert pages[0]["previous"] is None
    assert all(p["previous"] for p in pages[1:])


def test_following_previous_from_the_last_page_walks_back_over_every_batch(api):
    expected = some_batches()
    last = walk(api, "/api/batches/?page_size=4")[-1]

    back = walk(api, last["previous"], link="previous")

    seen = [b["reference"] for p in reversed(back) for b in p["results"]]
    assert seen == expected[: len(expected) - len(last["results"])]
    assert back[-1]["previous"] is None


def test_following_next_lists_lines_by_order_then_sku(api):
    expected = some_lines()

    pages = walk(api, "/api/allocations/?page_size=5")

    assert [(x["order_id"], x["sku"]) for p in pages for x in p["results"]] == expected
    assert len(pages) == 5


def test_a_line_added_behind_the_cursor_is_not_listed_twice_or_shifting_the_rest(api):
    expected = some_lines()
    first = api.get("/api/allocations/?page_size=5").json()
    OrderLineRowFactory(order_id="a-first", product=ProductFactory(sku="A"))

    rest = walk(api, first["next"])

    seen = [(x["order_id"], x["sku"]) for x in first["results"]]
    seen += [(x["order_id"], x["sku"]) for p in rest for x in p["results"]]
    assert seen == expected


@pytest.mark.parametrize("url", ["/api/batches/?page_size=3", "/api/allocations/?page_size=3"])
def test_a_deep_page_runs_the_same_queries_as_the_first_without_offset_or_count(api, url):
    some_batches()
    some_lines()
    pages = walk(api, url)
    assert len(pages) >= 6
    deep = api.get(url).json()
    for _ in range(4):
        deep = api.get(deep["next"]).json()

    first_sql = sql_of(api, url)
    deep_sql = sql_of(api, deep["next"])

    assert len(deep_sql) == len(first_sql)
    for sql in first_sql + deep_sql:
        assert "OFFSET" not in sql.upper()
        assert "COUNT(" not in sql.upper()


def test_the_list_query_seeks_with_a_bound_on_the_leading_key(api):
    some_batches()
    first = api.get("/api/batches/?page_size=3").json()

    sql = sql_of(api, first["next"])

    listing = [s for s in sql if 'FROM "allocation_batch"' in s]
    assert len(listing) == 1
    # sku >= 'A': lets the index scan start at the cursor's SKU.
    assert '"allocation_batch"."sku" >= \'A\'' in listing[0]
    assert orm.Batch.objects.count() == 22
