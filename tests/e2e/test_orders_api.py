"""POST/GET/DELETE /api/orders/ (SPEC 2.5): every line of an order at once, all or nothing."""

from __future__ import annotations

import pytest

from allocation import models as orm
from tests.e2e.helpers import (
    assert_error,
    assert_field_errors,
    create_batch,
    get_product,
    held,
    line_body,
)
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db


def order(api, order_id: str, *lines: tuple[str, int]):
    body = {"order_id": order_id, "lines": [{"sku": sku, "qty": qty} for sku, qty in lines]}
    return api.post("/api/orders/", body, format="json")


def recorded() -> list[tuple]:
    """Every stored line (order, SKU, qty, status) and every batch's allocated quantity."""
    lines = sorted(
        orm.OrderLine.objects.values_list("order_id", "product_id", "qty", "status"),
    )
    batches = sorted(orm.Batch.objects.values_list("reference", "allocated_quantity"))
    return [lines, batches]


@pytest.fixture
def shop(api):
    create_batch(api, "red-1", sku="RED", qty=5)
    create_batch(api, "red-2", sku="RED", qty=10, eta="2027-01-10")
    create_batch(api, "blue-1", sku="BLUE", qty=3)
    create_batch(api, "teal-1", sku="TEAL", qty=0)
    return api


def test_a_new_order_answers_201_with_its_lines_in_request_order(shop):
    response = order(shop, "o1", ("BLUE", 2), ("RED", 7))

    assert response.status_code == 201, response.content
    body = response.json()
    at = body["lines"][0]["requested_at"]
    assert body == {
        "order_id": "o1",
        "lines": [
            line_body("o1", 2, [("blue-1", 2)], at, sku="BLUE"),
            # Rule 3: 7 fit whole only in the inbound batch.
            line_body("o1", 7, [("red-2", 7)], at, sku="RED"),
        ],
    }
    assert held(shop, "red-2") == [("o1", 7)]
    assert get_product(shop, "RED")["allocated_quantity"] == 7


def test_the_same_order_again_answers_200_with_the_same_lines_and_writes_nothing(shop):
    first = order(shop, "o1", ("BLUE", 2), ("RED", 7))
    before = recorded()

    again = order(shop, "o1", ("RED", 7), ("BLUE", 2))

    assert again.status_code == 200, again.content
    assert again.json()["lines"] == list(reversed(first.json()["lines"]))
    assert recorded() == before


def test_an_order_adding_a_line_to_existing_ones_answers_201(shop):
    order(shop, "o1", ("RED", 1))

    response = order(shop, "o1", ("RED", 1), ("BLUE", 1))

    assert response.status_code == 201, response.content
    assert [(line["sku"], line["qty"]) for line in response.json()["lines"]] == [
        ("RED", 1),
        ("BLUE", 1),
    ]
    assert orm.OrderLine.objects.filter(order_id="o1").count() == 2


def test_a_short_line_refuses_the_whole_order_and_lists_every_short_line(shop):
    before = recorded()

    response = order(shop, "o1", ("RED", 16), ("BLUE", 3), ("TEAL", 1))

    body = assert_error(response, 409, "out_of_stock")
    assert body["lines"] == [
        {"sku": "RED", "requested": 16, "available": 15},
        {"sku": "TEAL", "requested": 1, "available": 0},
    ]
    assert recorded() == before  # BLUE fitted, and is not recorded either


def test_a_line_recorded_with_another_qty_is_line_conflict_naming_its_sku(shop):
    order(shop, "o1", ("RED", 2))
    before = recorded()

    response = order(shop, "o1", ("BLUE", 1), ("RED", 3))

    body = assert_error(response, 409, "line_conflict")
    assert body["sku"] == "RED"
    assert recorded() == before


def test_skus_without_batches_are_invalid_sku_listing_them(shop):
    before = recorded()

    response = order(shop, "o1", ("NOPE", 1), ("RED", 1), ("NADA", 2))

    body = assert_error(response, 400, "invalid_sku")
    assert body["skus"] == ["NOPE", "NADA"]
    assert recorded() == before


def test_when_several_refusals_apply_invalid_sku_wins_then_line_conflict(shop):
    order(shop, "o1", ("BLUE", 1))

    everything = order(shop, "o1", ("RED", 99), ("BLUE", 2), ("NOPE", 1))
    conflict_and_short = order(shop, "o1", ("RED", 99), ("BLUE", 2))

    assert assert_error(everything, 400, "invalid_sku")["skus"] == ["NOPE"]
    assert assert_error(conflict_and_short, 409, "line_conflict")["sku"] == "BLUE"


def test_field_errors_win_over_every_refusal(shop):
    response = order(shop, "o1", ("NOPE", 1), ("RED", 0))

    body = assert_field_errors(response, "lines")
    assert body["lines"] == ["lines[1].qty: Ensure this value is greater than or equal to 1."]


@pytest.mark.parametrize(
    ("body", "errors"),
    [
        ({"order_id": "o1", "lines": []}, {"lines": ["An order needs at least one line."]}),
        (
            {"order_id": "o1", "lines": [{"sku": "RED", "qty": 1}] * 1001},
            {"lines": ["An order has at most 1000 lines."]},
        ),
        (
            {"order_id": "o1", "lines": [{"sku": "RED", "qty": 1}, {"sku": "RED", "qty": 2}]},
            {"lines": ["Each SKU may appear once in an order: RED."]},
        ),
        (
            {"order_id": "o1", "lines": [{"sku": "RED"}]},
            {"lines": ["lines[0].qty: This field is required."]},
        ),
        (
            {"order_id": "o1", "lines": [{"sku": "RED", "qty": "2"}]},
            {"lines": ["lines[0].qty: A valid integer is required."]},
        ),
        (
            {"order_id": "o1", "lines": [{"sku": "bad sku", "qty": 1}]},
            {
                "lines": [
                    "lines[0].sku: 1-255 characters from letters, digits and . _ - : , "
                    "starting with a letter or digit."
                ]
            },
        ),
        (
            {"order_id": "-o1", "lines": [{"sku": "RED", "qty": 1}]},
            {
                "order_id": [
                    "1-255 characters from letters, digits and . _ - : , "
                    "starting with a letter or digit."
                ]
            },
        ),
        (
            {"order_id": "o1", "lines": "RED"},
            {"lines": ['Expected a list of lines but got type "str".']},
        ),
        (
            {"order_id": "o1", "lines": [7]},
            {"lines": ["lines[0]: Invalid data. Expected a dictionary, but got int."]},
        ),
        ({"lines": [{"sku": "RED", "qty": 1}]}, {"order_id": ["This field is required."]}),
        (
            [{"sku": "RED", "qty": 1}],
            {"non_field_errors": ["Invalid data. Expected a dictionary, but got list."]},
        ),
    ],
)
def test_bad_input_is_a_400_with_field_errors_and_writes_nothing(shop, body, errors):
    before = recorded()

    response = shop.post("/api/orders/", body, format="json")

    assert_field_errors(response, *errors)
    assert response.json() == errors
    assert recorded() == before


def test_an_order_of_1000_lines_is_allocated(api):
    skus = [f"SKU-{n:04d}" for n in range(1000)]
    for sku in skus:
        orm.Product.objects.create(sku=sku, created_at="2026-01-01T00:00:00Z")
    orm.Batch.objects.bulk_create(
        orm.Batch(
            reference=f"b-{sku}",
            product_id=sku,
            purchased_quantity=1,
            allocated_quantity=0,
            created_at="2026-01-01T00:00:00Z",
        )
        for sku in skus
    )

    response = order(api, "big", *[(sku, 1) for sku in skus])

    assert response.status_code == 201, response.content
    assert len(response.json()["lines"]) == 1000
    assert orm.OrderLine.objects.filter(order_id="big", status="allocated").count() == 1000
    assert sum(orm.Batch.objects.values_list("allocated_quantity", flat=True)) == 1000


def test_get_answers_every_line_of_the_order_by_sku(shop):
    order(shop, "o1", ("RED", 2), ("BLUE", 1))
    order(shop, "o2", ("RED", 1))

    response = shop.get("/api/orders/o1/")

    assert response.status_code == 200, response.content
    body = response.json()
    assert body["order_id"] == "o1"
    assert [(line["sku"], line["qty"], line["batches"]) for line in body["lines"]] == [
        ("BLUE", 1, [{"reference": "blue-1", "qty": 1}]),
        ("RED", 2, [{"reference": "red-1", "qty": 2}]),
    ]


def test_get_of_an_order_without_lines_is_404(shop):
    assert_error(shop.get("/api/orders/o9/"), 404, "not_found")


def test_delete_deallocates_the_orders_lines_and_no_other(shop):
    order(shop, "o1", ("RED", 15), ("BLUE", 1))
    order(shop, "o2", ("BLUE", 2))
    before_red = held(shop, "red-1")

    response = shop.delete("/api/orders/o1/")

    assert response.status_code == 204
    assert response.content == b""
    assert not orm.OrderLine.objects.filter(order_id="o1").exists()
    assert held(shop, "blue-1") == [("o2", 2)]
    assert before_red == [("o1", 5)]
    assert held(shop, "red-1") == []
    assert get_product(shop, "RED")["allocated_quantity"] == 0


def test_delete_of_an_order_frees_its_stock_for_a_backorder(shop):
    order(shop, "o1", ("BLUE", 3))
    create_batch(shop, "blue-2", sku="BLUE", qty=2)
    order(shop, "o2", ("BLUE", 2))
    shop.patch("/api/batches/blue-2/", {"purchased_quantity": 0}, format="json")
    assert orm.OrderLine.objects.get(order_id="o2").status == "backordered"

    response = shop.delete("/api/orders/o1/")

    assert response.status_code == 204
    assert orm.OrderLine.objects.filter(order_id="o1").count() == 0
    assert held(shop, "blue-1") == [("o2", 2)]


def test_delete_of_an_order_without_lines_is_404(shop):
    assert_error(shop.delete("/api/orders/o9/"), 404, "not_found")


# -- permissions: as for allocations (add/delete order lines) -------------------------------


def test_a_user_who_may_only_view_can_read_an_order_but_not_write_one(shop, client_for):
    order(shop, "o1", ("RED", 1))
    viewer = client_for(UserFactory(username="viewer", permissions=["view_orderline"]))
    before = recorded()

    assert viewer.get("/api/orders/o1/").status_code == 200
    assert_error(order(viewer, "o2", ("RED", 1)), 403, "permission_denied")
    assert_error(viewer.delete("/api/orders/o1/"), 403, "permission_denied")
    assert recorded() == before


def test_add_and_delete_order_line_permissions_allow_the_writes(shop, client_for):
    clerk = client_for(
        UserFactory(username="clerk", permissions=["add_orderline", "delete_orderline"])
    )

    assert order(clerk, "o1", ("RED", 1)).status_code == 201
    assert clerk.delete("/api/orders/o1/").status_code == 204


def test_anonymous_gets_401(shop):
    from rest_framework.test import APIClient

    anonymous = APIClient()

    assert_error(anonymous.get("/api/orders/o1/"), 401, "not_authenticated")
    assert_error(order(anonymous, "o1", ("RED", 1)), 401, "not_authenticated")
