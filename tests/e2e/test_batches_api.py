"""SPEC 2.1: create, list, read, change and delete batches, reading state back each time."""

import pytest

from tests.e2e.helpers import (
    BATCH_KEYS,
    SKU,
    allocate,
    allocated,
    assert_error,
    assert_field_errors,
    assert_recent_timestamp,
    create_batch,
    get_batch,
    get_line,
    get_product,
    held,
    line_body,
    placement,
    stock,
)

pytestmark = pytest.mark.django_db


def references(response) -> list[str]:
    assert response.status_code == 200, response.content
    return [b["reference"] for b in response.json()["results"]]


# -- POST /api/batches/ ---------------------------------------------------------------


def test_create_batch_returns_201_with_the_full_representation(api):
    response = api.post(
        "/api/batches/",
        {"reference": "b1", "sku": SKU, "purchased_quantity": 20, "eta": None},
        format="json",
    )

    assert response.status_code == 201
    body = response.json()
    assert set(body) == BATCH_KEYS
    created_at = body.pop("created_at")
    assert_recent_timestamp(created_at)
    assert body == {
        "reference": "b1",
        "sku": SKU,
        "purchased_quantity": 20,
        "eta": None,
        "status": "in_stock",
        "allocated_quantity": 0,
        "available_quantity": 20,
    }
    stored = get_batch(api, "b1")
    assert stored == {**body, "created_at": created_at, "allocations": []}


def test_create_batch_without_eta_is_in_stock(api):
    body = create_batch(api, "b1", qty=5)

    assert (body["eta"], body["status"]) == (None, "in_stock")
    assert (get_batch(api, "b1")["eta"], get_batch(api, "b1")["status"]) == (None, "in_stock")


def test_create_batch_with_eta_is_inbound(api):
    body = create_batch(api, "b1", qty=5, eta="2026-12-24")

    assert (body["eta"], body["status"]) == ("2026-12-24", "inbound")
    stored = get_batch(api, "b1")
    assert (stored["eta"], stored["status"], stored["purchased_quantity"]) == (
        "2026-12-24",
        "inbound",
        5,
    )


def test_create_batch_accepts_zero_and_the_largest_quantity(api):
    assert create_batch(api, "empty", qty=0)["available_quantity"] == 0
    assert create_batch(api, "huge", qty=2_147_483_647)["available_quantity"] == 2_147_483_647

    assert stock(api, "empty") == (0, 0, 0)
    assert stock(api, "huge") == (2_147_483_647, 0, 2_147_483_647)


def test_create_batch_accepts_every_identifier_character_and_255_characters(api):
    reference = ("A.b_c-d:9" * 29)[:255]
    assert len(reference) == 255
    create_batch(api, reference, sku="Sku.1_x-y:Z")

    stored = get_batch(api, reference)
    assert (stored["reference"], stored["sku"]) == (reference, "Sku.1_x-y:Z")


def test_identifiers_are_case_sensitive(api):
    create_batch(api, "b1", sku="chair", qty=3)
    create_batch(api, "B1", sku="CHAIR", qty=4)

    assert (get_batch(api, "b1")["sku"], get_batch(api, "B1")["sku"]) == ("chair", "CHAIR")
    assert get_product(api, "chair")["purchased_quantity"] == 3
    assert get_product(api, "CHAIR")["purchased_quantity"] == 4


@pytest.mark.parametrize("other_sku", [SKU, "BLUE-TABLE"])
def test_creating_an_existing_reference_is_a_409_duplicate_batch(api, other_sku):
    create_batch(api, "b1", qty=20)

    response = api.post(
        "/api/batches/",
        {"reference": "b1", "sku": other_sku, "purchased_quantity": 99},
        format="json",
    )

    assert_error(response, 409, "duplicate_batch")
    assert stock(api, "b1") == (20, 0, 20)
    assert get_batch(api, "b1")["sku"] == SKU
    assert len(api.get("/api/batches/").json()["results"]) == 1


def test_creating_a_batch_serves_backorders_in_request_order(api):
    create_batch(api, "b1", qty=10)
    first = allocated(api, "o1", qty=3)
    second = allocated(api, "o2", qty=4)
    third = allocated(api, "o3", qty=2)
    # Lowering b1 to 0 takes every line off; nothing else has stock.
    lowered = api.patch("/api/batches/b1/", {"purchased_quantity": 0}, format="json").json()
    assert [line["order_id"] for line in lowered["backordered"]] == ["o1", "o2", "o3"]

    # 6 units: o1 (3) fits, o2 (4) then does not, o3 (2) does.
    body = create_batch(api, "b2", qty=6)

    assert (body["allocated_quantity"], body["available_quantity"]) == (5, 1)
    assert stock(api, "b2") == (6, 5, 1)
    assert held(api, "b2") == [("o1", 3), ("o3", 2)]
    assert get_line(api, "o1") == line_body("o1", 3, [("b2", 3)], first["requested_at"])
    assert get_line(api, "o2") == line_body("o2", 4, [], second["requested_at"])
    assert get_line(api, "o3") == line_body("o3", 2, [("b2", 2)], third["requested_at"])
    assert get_product(api)["backordered_quantity"] == 4


def test_creating_a_batch_for_another_sku_serves_no_backorder(api):
    create_batch(api, "b1", qty=5)
    allocated(api, "o1", qty=5)
    api.patch("/api/batches/b1/", {"purchased_quantity": 0}, format="json")

    body = create_batch(api, "other", sku="BLUE-TABLE", qty=50)

    assert body["allocated_quantity"] == 0
    assert placement(api, "o1") == ("backordered", [])


# -- GET /api/batches/ -------------------------------------------------------------------


def test_list_is_in_preference_order_within_each_sku(api):
    # Created in an order where neither creation nor name gives the answer.
    create_batch(api, "a-inbound-late", eta="2027-03-01")
    create_batch(api, "z-stock-old")
    create_batch(api, "b-inbound-early-2", eta="2027-01-15")
    create_batch(api, "m-inbound-early-1", eta="2027-01-15")
    create_batch(api, "a-stock-new")
    create_batch(api, "c-inbound-earliest", eta="2026-12-01")
    create_batch(api, "other-sku", sku="BLUE-TABLE")

    response = api.get("/api/batches/")

    assert references(response) == [
        "other-sku",
        "z-stock-old",
        "a-stock-new",
        "c-inbound-earliest",
        "b-inbound-early-2",
        "m-inbound-early-1",
        "a-inbound-late",
    ]


def test_list_entries_carry_the_batch_representation(api):
    create_batch(api, "b1", qty=10, eta="2027-01-01")
    allocated(api, "o1", qty=4)

    [entry] = api.get("/api/batches/").json()["results"]

    detail = get_batch(api, "b1")
    del detail["allocations"]
    assert entry == detail
    assert (entry["status"], entry["allocated_quantity"], entry["available_quantity"]) == (
        "inbound",
        4,
        6,
    )


@pytest.fixture
def mixed_batches(api):
    create_batch(api, "stock-full", qty=2)
    allocated(api, "o1", qty=2)  # uses up stock-full exactly
    create_batch(api, "stock-free", qty=5)
    create_batch(api, "inbound-free", qty=5, eta="2027-01-01")
    create_batch(api, "inbound-empty", qty=0, eta="2027-02-01")
    create_batch(api, "blue-stock", sku="BLUE", qty=1)


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("sku=RED-CHAIR", ["stock-full", "stock-free", "inbound-free", "inbound-empty"]),
        ("sku=BLUE", ["blue-stock"]),
        ("sku=NOPE", []),
        ("status=in_stock", ["blue-stock", "stock-full", "stock-free"]),
        ("status=inbound", ["inbound-free", "inbound-empty"]),
        ("available=true", ["blue-stock", "stock-free", "inbound-free"]),
        ("available=false", ["stock-full", "inbound-empty"]),
        ("sku=RED-CHAIR&status=in_stock&available=true", ["stock-free"]),
        (
            "sku=RED-CHAIR&colour=red&ordering=-reference",
            ["stock-full", "stock-free", "inbound-free", "inbound-empty"],
        ),
        ("status=", ["blue-stock", "stock-full", "stock-free", "inbound-free", "inbound-empty"]),
    ],
)
def test_list_filters(api, mixed_batches, query, expected):
    assert references(api.get(f"/api/batches/?{query}")) == expected


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ("status=bogus", "status"),
        ("status=IN_STOCK", "status"),
        ("available=maybe", "available"),
        ("available=1", "available"),
    ],
)
def test_an_invalid_filter_value_is_a_400_field_error(api, mixed_batches, query, field):
    assert_field_errors(api.get(f"/api/batches/?{query}"), field)


# -- GET /api/batches/{reference}/ ------------------------------------------------------------


def test_detail_lists_the_parts_held_on_the_batch(api):
    create_batch(api, "b1", qty=5)
    create_batch(api, "b2", qty=3, eta="2027-01-01")
    allocated(api, "o2", qty=3)
    allocated(api, "o1", qty=4)  # no batch covers 4: split, 2 on b1 and 2 on b2

    b1 = get_batch(api, "b1")
    b2 = get_batch(api, "b2")

    assert b1["allocations"] == [
        {"order_id": "o1", "sku": SKU, "qty": 2},
        {"order_id": "o2", "sku": SKU, "qty": 3},
    ]
    assert (b1["allocated_quantity"], b1["available_quantity"]) == (5, 0)
    assert b2["allocations"] == [{"order_id": "o1", "sku": SKU, "qty": 2}]
    assert (b2["allocated_quantity"], b2["available_quantity"]) == (2, 1)


def test_detail_of_an_unknown_batch_is_a_404_not_found(api):
    create_batch(api, "b1")

    body = assert_error(api.get("/api/batches/nope/"), 404, "not_found")

    assert "nope" in body["detail"]


def test_reference_with_dots_and_colons_is_found(api):
    create_batch(api, "b.1:x.json")

    assert get_batch(api, "b.1:x.json")["reference"] == "b.1:x.json"


# -- PATCH /api/batches/{reference}/ -------------------------------------------------------------


def test_lowering_quantity_takes_off_the_most_recent_lines_and_places_them_again(api):
    create_batch(api, "b1", qty=10)
    create_batch(api, "b2", qty=4, eta="2027-01-01")
    o1 = allocated(api, "o1", qty=4)
    o2 = allocated(api, "o2", qty=3)
    o3 = allocated(api, "o3", qty=2)
    assert stock(api, "b1") == (10, 9, 1)

    response = api.patch("/api/batches/b1/", {"purchased_quantity": 4}, format="json")

    # o3 then o2 come off (most recent first) until 4 fit; o2 (oldest request)
    # goes back first and takes b2's 3, leaving 1: not enough for o3.
    assert response.status_code == 200
    body = response.json()
    assert body.pop("reallocated") == [line_body("o2", 3, [("b2", 3)], o2["requested_at"])]
    assert body.pop("backordered") == [line_body("o3", 2, [], o3["requested_at"])]
    detail = get_batch(api, "b1")
    assert body == {k: v for k, v in detail.items() if k != "allocations"}
    assert stock(api, "b1") == (4, 4, 0)
    assert held(api, "b1") == [("o1", 4)]
    assert stock(api, "b2") == (4, 3, 1)
    assert held(api, "b2") == [("o2", 3)]
    assert get_line(api, "o1") == line_body("o1", 4, [("b1", 4)], o1["requested_at"])
    assert placement(api, "o3") == ("backordered", [])
    product = get_product(api)
    assert (product["allocated_quantity"], product["backordered_quantity"]) == (7, 2)


def test_lowering_quantity_may_put_a_line_back_on_the_same_batch_split(api):
    create_batch(api, "b1", qty=10)
    create_batch(api, "b2", qty=3, eta="2027-01-01")
    allocated(api, "o1", qty=6)

    body = api.patch("/api/batches/b1/", {"purchased_quantity": 4}, format="json").json()

    # o1 comes off; rules 1-4 against all stock, b1 included: 4 on b1 + 2 on b2.
    assert [(x["order_id"], x["batches"]) for x in body["reallocated"]] == [
        ("o1", [{"reference": "b1", "qty": 4}, {"reference": "b2", "qty": 2}])
    ]
    assert body["backordered"] == []
    assert placement(api, "o1") == ("allocated", [("b1", 4), ("b2", 2)])
    assert stock(api, "b1") == (4, 4, 0)
    assert stock(api, "b2") == (3, 2, 1)


def test_a_split_line_taken_off_loses_all_its_parts(api):
    create_batch(api, "b1", qty=5)
    create_batch(api, "b2", qty=5, eta="2027-01-01")
    o1 = allocated(api, "o1", qty=8)  # 5 on b1 + 3 on b2
    o2 = allocated(api, "o2", qty=2)  # b2
    assert placement(api, "o1") == ("allocated", [("b1", 5), ("b2", 3)])

    body = api.patch("/api/batches/b2/", {"purchased_quantity": 1}, format="json").json()

    # o2 then o1 come off b2; o1 leaves b1 too. Oldest first: o1 (8) finds
    # only 5 + 1 and waits; o2 (2) then fits whole on b1.
    assert body["reallocated"] == [line_body("o2", 2, [("b1", 2)], o2["requested_at"])]
    assert body["backordered"] == [line_body("o1", 8, [], o1["requested_at"])]
    assert (body["purchased_quantity"], body["allocated_quantity"]) == (1, 0)
    assert stock(api, "b1") == (5, 2, 3)
    assert held(api, "b1") == [("o2", 2)]
    assert stock(api, "b2") == (1, 0, 1)
    assert held(api, "b2") == []
    assert placement(api, "o1") == ("backordered", [])


def test_lowering_quantity_above_the_allocated_amount_moves_nothing(api):
    create_batch(api, "b1", qty=10)
    allocated(api, "o1", qty=4)

    body = api.patch("/api/batches/b1/", {"purchased_quantity": 4}, format="json").json()

    assert (body["reallocated"], body["backordered"]) == ([], [])
    assert (body["purchased_quantity"], body["allocated_quantity"]) == (4, 4)
    assert stock(api, "b1") == (4, 4, 0)
    assert held(api, "b1") == [("o1", 4)]


def test_raising_quantity_serves_backorders_which_appear_in_neither_list(api):
    create_batch(api, "b1", qty=10)
    o1 = allocated(api, "o1", qty=6)
    o2 = allocated(api, "o2", qty=3)
    api.patch("/api/batches/b1/", {"purchased_quantity": 0}, format="json")
    assert placement(api, "o1") == ("backordered", [])

    response = api.patch("/api/batches/b1/", {"purchased_quantity": 8}, format="json")

    assert response.status_code == 200
    body = response.json()
    assert (body["reallocated"], body["backordered"]) == ([], [])
    assert (body["purchased_quantity"], body["allocated_quantity"], body["available_quantity"]) == (
        8,
        6,
        2,
    )
    assert get_line(api, "o1") == line_body("o1", 6, [("b1", 6)], o1["requested_at"])
    assert get_line(api, "o2") == line_body("o2", 3, [], o2["requested_at"])
    assert held(api, "b1") == [("o1", 6)]
    assert get_product(api)["backordered_quantity"] == 3


def test_changing_eta_changes_preference_for_future_allocations_only(api):
    create_batch(api, "b-stock", qty=10)
    create_batch(api, "b-inbound", qty=10, eta="2027-01-01")
    allocated(api, "o1", qty=3)
    assert placement(api, "o1") == ("allocated", [("b-stock", 3)])

    response = api.patch("/api/batches/b-stock/", {"eta": "2027-06-01"}, format="json")

    assert response.status_code == 200
    body = response.json()
    assert (body["eta"], body["status"], body["allocated_quantity"]) == ("2027-06-01", "inbound", 3)
    assert (body["reallocated"], body["backordered"]) == ([], [])
    assert placement(api, "o1") == ("allocated", [("b-stock", 3)])
    assert allocated(api, "o2", qty=2)["batches"] == [{"reference": "b-inbound", "qty": 2}]
    assert [b["reference"] for b in get_product(api)["batches"]] == ["b-inbound", "b-stock"]

    back = api.patch("/api/batches/b-stock/", {"eta": None}, format="json").json()

    assert (back["eta"], back["status"]) == (None, "in_stock")
    assert get_batch(api, "b-stock")["status"] == "in_stock"
    assert placement(api, "o2") == ("allocated", [("b-inbound", 2)])


def test_patch_changes_quantity_and_eta_together(api):
    create_batch(api, "b1", qty=10)

    body = api.patch(
        "/api/batches/b1/", {"purchased_quantity": 12, "eta": "2027-02-03"}, format="json"
    ).json()

    assert (body["purchased_quantity"], body["eta"], body["status"]) == (
        12,
        "2027-02-03",
        "inbound",
    )
    stored = get_batch(api, "b1")
    assert (stored["purchased_quantity"], stored["eta"]) == (12, "2027-02-03")


def test_patch_accepts_the_same_reference_and_sku(api):
    create_batch(api, "b1", qty=10)

    response = api.patch(
        "/api/batches/b1/",
        {"reference": "b1", "sku": SKU, "purchased_quantity": 15},
        format="json",
    )

    assert response.status_code == 200
    assert stock(api, "b1") == (15, 0, 15)


def test_an_empty_patch_changes_nothing(api):
    create_batch(api, "b1", qty=10, eta="2027-01-01")

    response = api.patch("/api/batches/b1/", {}, format="json")

    assert response.status_code == 200
    assert (response.json()["reallocated"], response.json()["backordered"]) == ([], [])
    stored = get_batch(api, "b1")
    assert (stored["purchased_quantity"], stored["eta"]) == (10, "2027-01-01")


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"reference": "b2"}, "reference"),
        ({"sku": "BLUE-TABLE"}, "sku"),
    ],
)
def test_patch_refuses_a_different_reference_or_sku(api, change, field):
    create_batch(api, "b1", qty=10)

    response = api.patch("/api/batches/b1/", {**change, "purchased_quantity": 3}, format="json")

    assert_field_errors(response, field)
    stored = get_batch(api, "b1")
    assert (stored["reference"], stored["sku"], stored["purchased_quantity"]) == ("b1", SKU, 10)
    assert api.get("/api/batches/b2/").status_code == 404


def test_patch_of_an_unknown_batch_is_a_404(api):
    create_batch(api, "b1", qty=10)

    assert_error(
        api.patch("/api/batches/nope/", {"purchased_quantity": 3}, format="json"), 404, "not_found"
    )
    assert stock(api, "b1") == (10, 0, 10)


# -- DELETE /api/batches/{reference}/ -------------------------------------------------------------


def test_delete_places_the_lines_again_or_backorders_them(api):
    create_batch(api, "b1", qty=10)
    create_batch(api, "b2", qty=6, eta="2027-01-01")
    o1 = allocated(api, "o1", qty=4)
    o2 = allocated(api, "o2", qty=3)
    o3 = allocated(api, "o3", qty=2)

    response = api.delete("/api/batches/b1/")

    # Oldest request first against b2's 6: o1 (4) fits, o2 (3) not, o3 (2) fits.
    assert response.status_code == 200
    assert response.json() == {
        "reallocated": [
            line_body("o1", 4, [("b2", 4)], o1["requested_at"]),
            line_body("o3", 2, [("b2", 2)], o3["requested_at"]),
        ],
        "backordered": [line_body("o2", 3, [], o2["requested_at"])],
    }
    assert_error(api.get("/api/batches/b1/"), 404, "not_found")
    assert stock(api, "b2") == (6, 6, 0)
    assert held(api, "b2") == [("o1", 4), ("o3", 2)]
    assert placement(api, "o2") == ("backordered", [])
    product = get_product(api)
    assert [b["reference"] for b in product["batches"]] == ["b2"]
    assert (product["purchased_quantity"], product["backordered_quantity"]) == (6, 3)


def test_delete_of_an_unused_batch_moves_nothing(api):
    create_batch(api, "b1", qty=10)
    create_batch(api, "b2", qty=10)
    allocated(api, "o1", qty=4)

    response = api.delete("/api/batches/b2/")

    assert response.status_code == 200
    assert response.json() == {"reallocated": [], "backordered": []}
    assert api.get("/api/batches/b2/").status_code == 404
    assert [b["reference"] for b in api.get("/api/batches/").json()["results"]] == ["b1"]
    assert placement(api, "o1") == ("allocated", [("b1", 4)])


def test_delete_of_the_last_batch_backorders_everything(api):
    create_batch(api, "b1", qty=10)
    o1 = allocated(api, "o1", qty=4)

    body = api.delete("/api/batches/b1/").json()

    assert body == {"reallocated": [], "backordered": [line_body("o1", 4, [], o1["requested_at"])]}
    assert api.get("/api/batches/").json()["results"] == []
    product = get_product(api)
    assert (product["purchased_quantity"], product["backordered_quantity"], product["batches"]) == (
        0,
        4,
        [],
    )
    # A SKU whose batches are all gone has none at all: invalid_sku for new lines.
    assert_error(allocate(api, "o2", qty=1), 400, "invalid_sku")


def test_delete_of_an_unknown_batch_is_a_404(api):
    assert_error(api.delete("/api/batches/nope/"), 404, "not_found")
