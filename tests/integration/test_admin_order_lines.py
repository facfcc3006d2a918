"""The order line admin: read-only lines, parts without N+1, deallocation through the service."""

from datetime import date

import pytest
from django.urls import reverse
from django.utils.html import strip_tags

from allocation import models as orm
from allocation import services
from tests.factories import (
    AllocationRowFactory,
    BatchRowFactory,
    OrderLineRowFactory,
    ProductFactory,
    tick,
)
from tests.integration.helpers import messages_of, placements

CHANGELIST = reverse("admin:allocation_orderline_changelist")


def line_pk(order_id: str, sku: str = "RED-CHAIR") -> int:
    return orm.OrderLine.objects.get(order_id=order_id, product_id=sku).pk


@pytest.fixture
def stock(db):
    """RED-CHAIR: b1 in stock (5), b2 inbound (4); GREEN-LAMP: g1 (2).

    o1/RED 6 is split b1 5 + b2 1; o2/RED 3 sits on b2; o3/RED 4 is backordered
    (it had stock until b2 went back down); o1/GREEN 2 sits on g1.
    """
    services.add_batch(reference="b1", sku="RED-CHAIR", purchased_quantity=5)
    services.add_batch(reference="b2", sku="RED-CHAIR", purchased_quantity=4, eta=date(2026, 4, 1))
    services.allocate(order_id="o1", sku="RED-CHAIR", qty=6)
    services.allocate(order_id="o2", sku="RED-CHAIR", qty=3)
    services.change_batch(reference="b2", purchased_quantity=8)
    services.allocate(order_id="o3", sku="RED-CHAIR", qty=4)
    services.change_batch(reference="b2", purchased_quantity=4)
    services.add_batch(reference="g1", sku="GREEN-LAMP", purchased_quantity=2)
    services.allocate(order_id="o1", sku="GREEN-LAMP", qty=2)
    assert placements() == {
        ("o1", "RED-CHAIR"): ("allocated", [("b1", 5), ("b2", 1)]),
        ("o2", "RED-CHAIR"): ("allocated", [("b2", 3)]),
        ("o3", "RED-CHAIR"): ("backordered", []),
        ("o1", "GREEN-LAMP"): ("allocated", [("g1", 2)]),
    }


def row_of(html: str, order_id: str, sku: str) -> str:
    """The changelist row (<tr>...</tr>) of one line."""
    marker = f'value="{line_pk(order_id, sku)}"'
    start = html.rindex("<tr", 0, html.index(marker))
    return html[start : html.index("</tr>", start)]


# -- changelist -------------------------------------------------------------------


def test_changelist_shows_lines_with_status_badge_and_batch_parts(ops, stock):
    response = ops.get(CHANGELIST)

    assert response.status_code == 200
    html = response.content.decode()
    split = row_of(html, "o1", "RED-CHAIR")
    assert '<th class="field-order_id">' in split
    assert '<td class="field-sku">RED-CHAIR</td>' in split
    assert '<td class="field-qty">6</td>' in split
    assert "line-status-allocated" in split
    # Parts in preference order: in-stock b1 before inbound b2.
    assert strip_tags(split[split.index('class="field-batches"') :]).startswith(
        'class="field-batches">b1&nbsp;×&nbsp;5, b2&nbsp;×&nbsp;1'
    )
    waiting = row_of(html, "o3", "RED-CHAIR")
    assert "line-status-backordered" in waiting
    assert "font-weight:bold" in waiting
    assert ">backordered</span>" in waiting
    assert '<td class="field-batches">—</td>' in waiting


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("status__exact=backordered", [("o3", "RED-CHAIR")]),
        ("status__exact=allocated&sku=RED-CHAIR", [("o1", "RED-CHAIR"), ("o2", "RED-CHAIR")]),
        ("sku=GREEN-LAMP", [("o1", "GREEN-LAMP")]),
        ("q=o1", [("o1", "GREEN-LAMP"), ("o1", "RED-CHAIR")]),
        ("q=o3", [("o3", "RED-CHAIR")]),
        ("batch=b2", [("o1", "RED-CHAIR"), ("o2", "RED-CHAIR")]),
        ("batch=g1&status__exact=allocated", [("o1", "GREEN-LAMP")]),
        ("batch=nope", []),
        ("batch=%00", []),
    ],
)
def test_changelist_filters_by_status_and_sku_and_searches_order_id(ops, stock, query, expected):
    response = ops.get(f"{CHANGELIST}?{query}")

    assert response.status_code == 200
    found = sorted((line.order_id, line.product_id) for line in response.context["cl"].result_list)
    assert found == expected


def _lines(count: int) -> None:
    product = ProductFactory(sku="BULK")
    batches = [
        BatchRowFactory(product=product, purchased_quantity=1000, allocated_quantity=0)
        for _ in range(2)
    ]
    for n in range(count):
        backordered = n % 4 == 0
        line = OrderLineRowFactory(
            order_id=f"bulk-{n:04d}",
            product=product,
            qty=2,
            status="backordered" if backordered else "allocated",
            requested_at=tick(n),
            allocated_at=None if backordered else tick(n),
        )
        if not backordered:
            AllocationRowFactory(line=line, batch=batches[0], qty=1)
            AllocationRowFactory(line=line, batch=batches[1], qty=1)


# session, user, SKU filter choices, page count, page rows, their parts (one prefetch)
CHANGELIST_QUERIES = 6


@pytest.mark.parametrize("count", [5, 200])
def test_changelist_costs_the_same_queries_for_5_and_200_lines(
    ops, django_assert_num_queries, count
):
    _lines(count)

    with django_assert_num_queries(CHANGELIST_QUERIES):
        response = ops.get(CHANGELIST)

    assert response.status_code == 200
    assert len(response.context["cl"].result_list) == min(count, 100)
    assert response.content.decode().count("&nbsp;×&nbsp;1") == 2 * len(
        [line for line in response.context["cl"].result_list if line.status == "allocated"]
    )


# -- no typing lines in by hand ---------------------------------------------------------


def test_lines_cannot_be_added_or_changed_by_hand(ops, stock):
    pk = line_pk("o1")
    assert ops.get(reverse("admin:allocation_orderline_add")).status_code == 403

    page = ops.get(reverse("admin:allocation_orderline_change", args=[pk]))
    assert page.status_code == 200
    assert page.context["has_change_permission"] is False
    assert list(page.context["adminform"].form.fields) == []
    assert "b1</a>&nbsp;×&nbsp;5" in page.content.decode()

    posted = ops.post(reverse("admin:allocation_orderline_change", args=[pk]), {"qty": "1"})
    assert posted.status_code == 403
    assert placements()[("o1", "RED-CHAIR")] == ("allocated", [("b1", 5), ("b2", 1)])


def test_only_the_deallocate_action_is_offered(ops, stock):
    response = ops.get(CHANGELIST)

    choices = [value for value, _ in response.context["action_form"].fields["action"].choices]
    assert choices == ["", "deallocate_lines"]
    assert "Deallocate selected lines" in response.content.decode()


# -- deallocating -----------------------------------------------------------------------


def test_deallocate_action_removes_lines_through_the_service_and_names_served_backorders(
    ops, stock
):
    selected = [line_pk("o1"), line_pk("o1", "GREEN-LAMP")]

    response = ops.post(
        CHANGELIST, {"action": "deallocate_lines", "_selected_action": [str(pk) for pk in selected]}
    )

    assert response.status_code == 302
    # o1/RED freed 5 on b1 and 1 on b2: o3 (4) fits on b1 now (rule 9).
    assert placements() == {
        ("o2", "RED-CHAIR"): ("allocated", [("b2", 3)]),
        ("o3", "RED-CHAIR"): ("allocated", [("b1", 4)]),
    }
    assert orm.Batch.objects.get(reference="b1").allocated_quantity == 4
    assert orm.Batch.objects.get(reference="g1").allocated_quantity == 0
    assert messages_of(response) == [
        "Deallocated 2 lines: o1 (GREEN-LAMP), o1 (RED-CHAIR).",
        "Served backorders: o3 (RED-CHAIR).",
    ]


def test_deallocating_a_line_that_frees_too_little_serves_nothing(ops, stock):
    response = ops.post(
        CHANGELIST, {"action": "deallocate_lines", "_selected_action": [str(line_pk("o2"))]}
    )

    assert response.status_code == 302
    assert placements()[("o3", "RED-CHAIR")] == ("backordered", [])
    assert messages_of(response) == ["Deallocated 1 line: o2 (RED-CHAIR)."]


def test_deallocating_a_backordered_line_simply_removes_it(ops, stock):
    response = ops.post(
        CHANGELIST, {"action": "deallocate_lines", "_selected_action": [str(line_pk("o3"))]}
    )

    assert response.status_code == 302
    assert ("o3", "RED-CHAIR") not in placements()
    assert messages_of(response) == ["Deallocated 1 line: o3 (RED-CHAIR)."]


def test_selected_backorders_are_removed_before_other_lines_free_stock(ops, stock):
    selected = [line_pk("o1"), line_pk("o3")]

    response = ops.post(
        CHANGELIST, {"action": "deallocate_lines", "_selected_action": [str(pk) for pk in selected]}
    )

    assert response.status_code == 302
    assert sorted(placements()) == [("o1", "GREEN-LAMP"), ("o2", "RED-CHAIR")]
    assert orm.Batch.objects.get(reference="b1").allocated_quantity == 0
    assert messages_of(response) == ["Deallocated 2 lines: o3 (RED-CHAIR), o1 (RED-CHAIR)."]


def test_a_line_removed_meanwhile_is_reported_not_a_500(ops, stock, monkeypatch):
    from domain.exceptions import LineNotFound

    def gone(*, order_id, sku, uow):
        raise LineNotFound(order_id, sku)

    monkeypatch.setattr(services, "deallocate", gone)

    response = ops.post(
        CHANGELIST, {"action": "deallocate_lines", "_selected_action": [str(line_pk("o2"))]}
    )

    assert response.status_code == 302
    assert messages_of(response) == ["Already removed by someone else: o2 (RED-CHAIR)."]


def test_deleting_one_line_from_its_page_deallocates_it(ops, stock):
    url = reverse("admin:allocation_orderline_delete", args=[line_pk("o1")])
    assert ops.get(url).status_code == 200

    response = ops.post(url, {"post": "yes"})

    assert response.status_code == 302
    assert placements()[("o3", "RED-CHAIR")] == ("allocated", [("b1", 4)])
    assert ("o1", "RED-CHAIR") not in placements()
    assert messages_of(response)[:2] == [
        "Deallocated 1 line: o1 (RED-CHAIR).",
        "Served backorders: o3 (RED-CHAIR).",
    ]


def test_a_lines_page_links_to_every_line_of_its_order_and_the_list_filters_by_it(ops, stock):
    page = ops.get(reverse("admin:allocation_orderline_change", args=[line_pk("o1", "RED-CHAIR")]))
    link = f"{CHANGELIST}?order_id=o1"

    assert page.status_code == 200
    assert f'<a href="{link}">All lines of order o1</a>' in page.content.decode()
    listed = ops.get(link)
    assert listed.status_code == 200
    found = sorted((line.order_id, line.product_id) for line in listed.context["cl"].result_list)
    assert found == [("o1", "GREEN-LAMP"), ("o1", "RED-CHAIR")]
