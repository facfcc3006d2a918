"""SPEC 2.2: allocate, list, read and deallocate order lines, reading state back each time."""

import pytest

from tests.e2e.helpers import (
    LINE_KEYS,
    SKU,
    allocate,
    allocated,
    assert_error,
    assert_field_errors,
    assert_recent_timestamp,
    create_batch,
    get_line,
    get_product,
    held,
    line_body,
    placement,
    stock,
)

pytestmark = pytest.mark.django_db


def order_ids(response) -> list[tuple[str, str]]:
    assert response.status_code == 200, response.content
    return [(x["order_id"], x["sku"]) for x in response.json()["results"]]


# -- POST /api/allocations/ --------------------------------------------------------------


def test_allocate_returns_201_with_the_line_on_the_preferred_batch(api):
    create_batch(api, "a-inbound", qty=10, eta="2027-01-01")
    create_batch(api, "z-stock", qty=10)

    response = allocate(api, "o1", qty=4)

    assert response.status_code == 201
    body = response.json()
    assert set(body) == LINE_KEYS
    assert_recent_timestamp(body["requested_at"])
    assert body == line_body("o1", 4, [("z-stock", 4)], body["requested_at"])
    assert get_line(api, "o1") == body
    assert stock(api, "z-stock") == (10, 4, 6)
    assert stock(api, "a-inbound") == (10, 0, 10)
    assert held(api, "z-stock") == [("o1", 4)]


def test_a_line_no_batch_covers_is_split_in_preference_order(api):
    create_batch(api, "a-inbound-late", qty=5, eta="2027-05-01")
    create_batch(api, "b-inbound-early", qty=3, eta="2027-01-01")
    create_batch(api, "z-stock", qty=2)

    body = allocated(api, "o1", qty=8)

    assert body["batches"] == [
        {"reference": "z-stock", "qty": 2},
        {"reference": "b-inbound-early", "qty": 3},
        {"reference": "a-inbound-late", "qty": 3},
    ]
    assert placement(api, "o1") == (
        "allocated",
        [("z-stock", 2), ("b-inbound-early", 3), ("a-inbound-late", 3)],
    )
    assert stock(api, "z-stock") == (2, 2, 0)
    assert stock(api, "b-inbound-early") == (3, 3, 0)
    assert stock(api, "a-inbound-late") == (5, 3, 2)


def test_a_line_goes_whole_to_a_later_batch_rather_than_split(api):
    create_batch(api, "stock", qty=3)
    create_batch(api, "inbound", qty=10, eta="2027-01-01")

    assert allocated(api, "o1", qty=5)["batches"] == [{"reference": "inbound", "qty": 5}]
    assert stock(api, "stock") == (3, 0, 3)
    assert stock(api, "inbound") == (10, 5, 5)


def test_repeating_an_allocation_returns_200_with_the_same_line_and_changes_nothing(api):
    create_batch(api, "b1", qty=10)
    first = allocated(api, "o1", qty=4)

    response = allocate(api, "o1", qty=4)

    assert response.status_code == 200
    assert response.json() == first
    assert get_line(api, "o1") == first
    assert stock(api, "b1") == (10, 4, 6)
    assert len(api.get("/api/allocations/").json()["results"]) == 1


def test_repeating_an_allocation_once_stock_has_run_out_returns_it_not_out_of_stock(api):
    # The repeat is first taken for a new line (not read), which the rules
    # refuse for lack of stock: the existing line must answer, not that error.
    create_batch(api, "b1", qty=4)
    first = allocated(api, "o1", qty=4)

    response = allocate(api, "o1", qty=4)

    assert response.status_code == 200
    assert response.json() == first
    assert stock(api, "b1") == (4, 4, 0)


def test_repeating_a_backordered_line_returns_it_unchanged(api):
    create_batch(api, "b1", qty=10)
    first = allocated(api, "o1", qty=4)
    api.patch("/api/batches/b1/", {"purchased_quantity": 0}, format="json")

    response = allocate(api, "o1", qty=4)

    assert response.status_code == 200
    assert response.json() == line_body("o1", 4, [], first["requested_at"])
    assert placement(api, "o1") == ("backordered", [])
    assert stock(api, "b1") == (0, 0, 0)


def test_not_enough_stock_is_a_409_out_of_stock_with_what_is_available(api):
    create_batch(api, "b1", qty=3)
    create_batch(api, "b2", qty=4, eta="2027-01-01")
    allocated(api, "o1", qty=2)

    response = allocate(api, "o2", qty=6)

    body = assert_error(response, 409, "out_of_stock")
    assert (body["sku"], body["requested"], body["available"]) == (SKU, 6, 5)
    assert_error(api.get(f"/api/allocations/o2/{SKU}/"), 404, "not_found")
    assert stock(api, "b1") == (3, 2, 1)
    assert stock(api, "b2") == (4, 0, 4)


def test_out_of_stock_with_nothing_left_says_zero_available(api):
    create_batch(api, "b1", qty=2)
    allocated(api, "o1", qty=2)

    body = assert_error(allocate(api, "o2", qty=1), 409, "out_of_stock")

    assert (body["sku"], body["requested"], body["available"]) == (SKU, 1, 0)
    assert len(api.get("/api/allocations/").json()["results"]) == 1


def test_the_same_line_with_another_qty_is_a_409_line_conflict(api):
    create_batch(api, "b1", qty=10)
    first = allocated(api, "o1", qty=3)

    assert_error(allocate(api, "o1", qty=4), 409, "line_conflict")

    assert get_line(api, "o1") == first
    assert stock(api, "b1") == (10, 3, 7)


def test_another_qty_once_stock_has_run_out_is_still_a_line_conflict_not_out_of_stock(api):
    # Taken for a new line first, the repeat is refused for lack of stock;
    # the line that exists must answer instead: a conflict.
    create_batch(api, "b1", qty=3)
    first = allocated(api, "o1", qty=3)

    assert_error(allocate(api, "o1", qty=4), 409, "line_conflict")

    assert get_line(api, "o1") == first
    assert stock(api, "b1") == (3, 3, 0)


def test_one_order_may_have_one_line_per_sku(api):
    create_batch(api, "red", qty=10)
    create_batch(api, "blue", sku="BLUE", qty=10)

    allocated(api, "o1", qty=3)
    allocated(api, "o1", sku="BLUE", qty=5)

    assert placement(api, "o1") == ("allocated", [("red", 3)])
    assert placement(api, "o1", "BLUE") == ("allocated", [("blue", 5)])


def test_a_sku_without_batches_is_a_400_invalid_sku(api):
    create_batch(api, "b1", qty=10)

    assert_error(allocate(api, "o1", sku="NO-SUCH-SKU", qty=1), 400, "invalid_sku")

    assert_error(api.get("/api/allocations/o1/NO-SUCH-SKU/"), 404, "not_found")
    assert_error(api.get("/api/products/NO-SUCH-SKU/"), 404, "not_found")
    assert stock(api, "b1") == (10, 0, 10)


def test_a_sku_whose_batches_are_all_used_up_is_out_of_stock_not_invalid(api):
    create_batch(api, "b1", qty=2)
    allocated(api, "o1", qty=2)

    assert_error(allocate(api, "o2", qty=1), 409, "out_of_stock")


@pytest.mark.parametrize(
    ("body", "fields"),
    [
        ({}, ["order_id", "sku", "qty"]),
        ({"order_id": "o1", "sku": SKU}, ["qty"]),
        ({"order_id": "o1", "sku": SKU, "qty": 0}, ["qty"]),
        ({"order_id": "o1", "sku": SKU, "qty": -1}, ["qty"]),
        ({"order_id": "", "sku": SKU, "qty": 1}, ["order_id"]),
        ({"order_id": "o1", "sku": "bad sku", "qty": 1}, ["sku"]),
    ],
)
def test_invalid_line_is_a_400_field_error(api, body, fields):
    create_batch(api, "b1", qty=10)

    assert_field_errors(api.post("/api/allocations/", body, format="json"), *fields)

    assert len(api.get("/api/allocations/").json()["results"]) == 0
    assert stock(api, "b1") == (10, 0, 10)


# -- GET /api/allocations/ -----------------------------------------------------------------


@pytest.fixture
def lines(api):
    create_batch(api, "red-1", qty=5)
    create_batch(api, "red-2", qty=10, eta="2027-01-01")
    create_batch(api, "blue-1", sku="BLUE", qty=5)
    allocated(api, "o2", qty=4)  # red-1
    allocated(api, "o1", qty=3)  # red-1 (1) + red-2 (2)
    allocated(api, "o1", sku="BLUE", qty=5)  # blue-1
    allocated(api, "o3", qty=6)  # red-2
    # Lowering red-2 to 2 takes off o3 (the most recent) and backorders it.
    api.patch("/api/batches/red-2/", {"purchased_quantity": 2}, format="json")


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("", [("o1", "BLUE"), ("o1", SKU), ("o2", SKU), ("o3", SKU)]),
        ("order_id=o1", [("o1", "BLUE"), ("o1", SKU)]),
        ("sku=BLUE", [("o1", "BLUE")]),
        (f"sku={SKU}", [("o1", SKU), ("o2", SKU), ("o3", SKU)]),
        ("batch=red-1", [("o1", SKU), ("o2", SKU)]),
        ("batch=red-2", [("o1", SKU)]),
        ("batch=no-such-batch", []),
        ("status=allocated", [("o1", "BLUE"), ("o1", SKU), ("o2", SKU)]),
        ("status=backordered", [("o3", SKU)]),
        (f"order_id=o1&sku={SKU}&batch=red-2&status=allocated", [("o1", SKU)]),
        ("unknown=1&order_id=o2", [("o2", SKU)]),
    ],
)
def test_line_list_filters(api, lines, query, expected):
    assert order_ids(api.get(f"/api/allocations/?{query}")) == expected


def test_line_list_entries_carry_parts_in_preference_order(api, lines):
    [o1] = api.get(f"/api/allocations/?order_id=o1&sku={SKU}").json()["results"]

    assert o1 == get_line(api, "o1")
    assert o1["batches"] == [{"reference": "red-1", "qty": 1}, {"reference": "red-2", "qty": 2}]


@pytest.mark.parametrize("query", ["status=bogus", "status=ALLOCATED"])
def test_line_list_with_an_invalid_status_is_a_400(api, lines, query):
    assert_field_errors(api.get(f"/api/allocations/?{query}"), "status")


# -- GET /api/allocations/{order_id}/{sku}/ ------------------------------------------------------


def test_line_detail_of_a_backordered_line_has_no_batches(api, lines):
    line = get_line(api, "o3")

    assert (line["status"], line["batches"], line["qty"]) == ("backordered", [], 6)


@pytest.mark.parametrize("path", ["o9/RED-CHAIR", "o1/NO-SUCH-SKU", "o2/BLUE"])
def test_line_detail_of_an_unknown_line_is_a_404(api, lines, path):
    assert_error(api.get(f"/api/allocations/{path}/"), 404, "not_found")


# -- DELETE /api/allocations/{order_id}/{sku}/ ---------------------------------------------------


def test_deallocate_returns_204_and_frees_the_stock(api):
    create_batch(api, "b1", qty=5)
    create_batch(api, "b2", qty=5, eta="2027-01-01")
    allocated(api, "o1", qty=7)  # 5 on b1, 2 on b2
    allocated(api, "o2", qty=1)

    response = api.delete(f"/api/allocations/o1/{SKU}/")

    assert response.status_code == 204
    assert response.content == b""
    assert_error(api.get(f"/api/allocations/o1/{SKU}/"), 404, "not_found")
    assert stock(api, "b1") == (5, 0, 5)
    assert stock(api, "b2") == (5, 1, 4)
    assert held(api, "b1") == []
    assert held(api, "b2") == [("o2", 1)]


def test_deallocate_serves_backorders(api):
    create_batch(api, "b1", qty=10)
    allocated(api, "o1", qty=6)
    o2 = allocated(api, "o2", qty=4)
    api.patch("/api/batches/b1/", {"purchased_quantity": 6}, format="json")
    assert placement(api, "o2") == ("backordered", [])

    assert api.delete(f"/api/allocations/o1/{SKU}/").status_code == 204

    assert get_line(api, "o2") == line_body("o2", 4, [("b1", 4)], o2["requested_at"])
    assert stock(api, "b1") == (6, 4, 2)
    assert held(api, "b1") == [("o2", 4)]
    assert get_product(api)["backordered_quantity"] == 0


def test_deallocating_a_backordered_line_simply_removes_it(api):
    create_batch(api, "b1", qty=10)
    allocated(api, "o1", qty=6)
    allocated(api, "o2", qty=4)
    api.patch("/api/batches/b1/", {"purchased_quantity": 6}, format="json")

    assert api.delete(f"/api/allocations/o2/{SKU}/").status_code == 204

    assert_error(api.get(f"/api/allocations/o2/{SKU}/"), 404, "not_found")
    assert stock(api, "b1") == (6, 6, 0)
    assert held(api, "b1") == [("o1", 6)]
    assert get_product(api)["backordered_quantity"] == 0


def test_deallocating_twice_is_a_404_the_second_time(api):
    create_batch(api, "b1", qty=10)
    allocated(api, "o1", qty=6)
    assert api.delete(f"/api/allocations/o1/{SKU}/").status_code == 204

    assert_error(api.delete(f"/api/allocations/o1/{SKU}/"), 404, "not_found")
    assert stock(api, "b1") == (10, 0, 10)


@pytest.mark.parametrize("path", ["o9/RED-CHAIR", "o1/NO-SUCH-SKU"])
def test_deallocating_an_unknown_line_is_a_404(api, path):
    create_batch(api, "b1", qty=10)
    allocated(api, "o1", qty=6)

    assert_error(api.delete(f"/api/allocations/{path}/"), 404, "not_found")

    assert stock(api, "b1") == (10, 6, 4)
