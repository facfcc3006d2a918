"""The stock overview page: per-SKU totals and a bar, in a fixed number of queries."""

import re
from datetime import date

import pytest
from django.urls import reverse

from allocation import models as orm
from allocation import services
from tests.factories import (
    AllocationRowFactory,
    BatchRowFactory,
    OrderLineRowFactory,
    ProductFactory,
    UserFactory,
)

OVERVIEW = reverse("admin:allocation_stock_overview")


def table(response) -> dict[str, list[str]]:
    """{sku: [batches, purchased, allocated, available, backordered]} as the page shows them."""
    rows = {}
    for row in response.context["rows"]:
        rows[row.sku] = [
            row.batch_count,
            row.purchased,
            row.allocated,
            row.available,
            row.backordered,
        ]
    return rows


def row_html(response, sku: str) -> str:
    html = response.content.decode()
    start = html.index(f'<tr id="sku-{sku}"')
    return html[start : html.index("</tr>", start)]


@pytest.fixture
def shelves(db):
    """MIXED: 3 batches, 1 allocated line, 2 backordered lines (a join would multiply sums).

    WAITING: only a backorder (its batch was deleted). EMPTY: a product row
    whose only batch was deleted, with no lines: not worth a row.
    """
    mixed = ProductFactory(sku="MIXED")
    b1 = BatchRowFactory(product=mixed, purchased_quantity=10, allocated_quantity=4)
    BatchRowFactory(product=mixed, purchased_quantity=20, allocated_quantity=20)
    BatchRowFactory(product=mixed, purchased_quantity=5, allocated_quantity=0, eta=date(2026, 9, 1))
    line = OrderLineRowFactory(product=mixed, qty=24)
    AllocationRowFactory(line=line, batch=b1, qty=4)
    OrderLineRowFactory(product=mixed, qty=3, status="backordered", allocated_at=None)
    OrderLineRowFactory(product=mixed, qty=2, status="backordered", allocated_at=None)
    waiting = ProductFactory(sku="WAITING")
    OrderLineRowFactory(product=waiting, qty=7, status="backordered", allocated_at=None)
    ProductFactory(sku="EMPTY")


def test_overview_lists_each_sku_with_purchased_allocated_available_and_backordered(ops, shelves):
    response = ops.get(OVERVIEW)

    assert response.status_code == 200
    assert table(response) == {
        "MIXED": [3, 35, 24, 11, 5],
        "WAITING": [0, 0, 0, 0, 7],
    }
    mixed = row_html(response, "MIXED")
    assert '<td class="number purchased">35</td>' in mixed
    assert '<td class="number allocated">24</td>' in mixed
    assert '<td class="number available">11</td>' in mixed
    assert ">5</a>" in mixed and "(2 lines)" in mixed
    assert "?status__exact=backordered&amp;sku=MIXED" in mixed


def test_each_sku_has_a_bar_of_allocated_against_available(ops, shelves):
    response = ops.get(OVERVIEW)

    mixed = row_html(response, "MIXED")
    # 24 of 35 allocated = 68.6 %, 11 available = 31.4 %.
    assert re.findall(r'class="(allocated|available)" style="width: ([\d.]+)%"', mixed) == [
        ("allocated", "68.6"),
        ("available", "31.4"),
    ]
    assert 'aria-label="24 allocated, 11 available of 35"' in mixed
    waiting = row_html(response, "WAITING")
    assert re.findall(r'style="width: ([\d.]+)%"', waiting) == ["0.0", "0.0"]
    # Server-rendered only: no script of its own, nothing fetched from elsewhere.
    content = response.content.decode()
    own = content[content.index('<div id="content-main">') : content.index("<!-- END Content -->")]
    assert "<script" not in own
    assert re.findall(r'(?:src|href|url)[=(]"?(?:https?:)?//', content) == []


def test_overview_follows_the_services(ops):
    services.add_batch(reference="b1", sku="RED-CHAIR", purchased_quantity=10)
    services.add_batch(reference="b2", sku="RED-CHAIR", purchased_quantity=4, eta=date(2026, 4, 1))
    services.allocate(order_id="o1", sku="RED-CHAIR", qty=8)
    services.allocate(order_id="o2", sku="RED-CHAIR", qty=5)
    services.change_batch(reference="b2", purchased_quantity=0)

    response = ops.get(OVERVIEW)

    # o2 (5) lost b2: 2 left on b1 is not enough, so it waits.
    assert table(response) == {"RED-CHAIR": [2, 10, 8, 2, 5]}


def test_overview_searches_skus(ops, shelves):
    response = ops.get(f"{OVERVIEW}?q=wait")

    assert list(table(response)) == ["WAITING"]


def _skus(count: int) -> None:
    for n in range(count):
        product = ProductFactory(sku=f"SKU-{n:04d}")
        BatchRowFactory(product=product, purchased_quantity=10, allocated_quantity=n % 10)
        BatchRowFactory(product=product, purchased_quantity=5, allocated_quantity=0)
        OrderLineRowFactory(product=product, qty=1, status="backordered", allocated_at=None)


# session, user, the page's count, the page's rows (all totals in that one query)
OVERVIEW_QUERIES = 4


@pytest.mark.parametrize("count", [5, 200])
def test_overview_costs_the_same_queries_for_5_and_200_skus(ops, django_assert_num_queries, count):
    _skus(count)

    with django_assert_num_queries(OVERVIEW_QUERIES):
        response = ops.get(OVERVIEW)

    assert response.status_code == 200
    assert len(response.context["rows"]) == min(count, 100)
    assert table(response)["SKU-0003"] == [2, 15, 3, 12, 1]
    assert ("page 1 of 2" in response.content.decode()) is (count > 100)


def test_overview_is_linked_from_the_admin_index_the_batch_list_and_each_batch(ops):
    services.add_batch(reference="b1", sku="RED-CHAIR", purchased_quantity=10)
    batch = orm.Batch.objects.get(reference="b1")

    index = ops.get(reverse("admin:index")).content.decode()
    app_index = ops.get(reverse("admin:app_list", args=["allocation"])).content.decode()
    changelist = ops.get(reverse("admin:allocation_batch_changelist")).content.decode()
    page = ops.get(reverse("admin:allocation_batch_change", args=[batch.pk])).content.decode()

    assert f'<a href="{OVERVIEW}" id="stock-overview-link">Stock overview</a>' in index
    assert f'<a href="{OVERVIEW}" id="stock-overview-link">Stock overview</a>' in app_index
    assert f'<a href="{OVERVIEW}" class="viewlink">Stock overview</a>' in changelist
    assert f'href="{OVERVIEW}?q=RED-CHAIR#sku-RED-CHAIR"' in page


def test_overview_needs_permission_to_view_batches(client, db):
    client.force_login(UserFactory(username="clerk"))
    assert client.get(OVERVIEW).status_code == 403
    assert "stock-overview-link" not in client.get(reverse("admin:index")).content.decode()

    client.force_login(UserFactory(username="looker", permissions=["view_batch"]))
    assert client.get(OVERVIEW).status_code == 200
    assert "stock-overview-link" in client.get(reverse("admin:index")).content.decode()


def test_overview_needs_a_staff_login(client, db):
    response = client.get(OVERVIEW)

    assert response.status_code == 302
    assert response["Location"] == f"{reverse('admin:login')}?next={OVERVIEW}"
