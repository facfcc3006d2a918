"""SPEC 2.3: the stock summary of one SKU."""

import pytest

from tests.e2e.helpers import SKU, allocated, assert_error, create_batch, get_batch

pytestmark = pytest.mark.django_db


def batch_entry(api, reference: str) -> dict:
    entry = get_batch(api, reference)
    del entry["allocations"]
    return entry


def test_product_totals_include_backordered_quantity(api):
    create_batch(api, "z-stock", qty=10)
    create_batch(api, "a-inbound", qty=5, eta="2027-01-01")
    create_batch(api, "blue", sku="BLUE", qty=100)
    allocated(api, "o1", qty=4)  # z-stock
    allocated(api, "o2", qty=6)  # z-stock
    allocated(api, "o3", qty=3)  # a-inbound
    allocated(api, "o4", qty=9, sku="BLUE")
    # Lowering z-stock to 5 takes off o2 (6), which fits nowhere: backordered.
    api.patch("/api/batches/z-stock/", {"purchased_quantity": 5}, format="json")

    response = api.get(f"/api/products/{SKU}/")

    assert response.status_code == 200
    assert response.json() == {
        "sku": SKU,
        "purchased_quantity": 10,
        "allocated_quantity": 7,
        "available_quantity": 3,
        "backordered_quantity": 6,
        "batches": [batch_entry(api, "z-stock"), batch_entry(api, "a-inbound")],
    }
    assert [(b["reference"], b["allocated_quantity"]) for b in response.json()["batches"]] == [
        ("z-stock", 4),
        ("a-inbound", 3),
    ]


def test_product_with_only_backordered_lines_is_still_found(api):
    create_batch(api, "b1", qty=10)
    allocated(api, "o1", qty=4)
    api.delete("/api/batches/b1/")

    response = api.get(f"/api/products/{SKU}/")

    assert response.status_code == 200
    assert response.json() == {
        "sku": SKU,
        "purchased_quantity": 0,
        "allocated_quantity": 0,
        "available_quantity": 0,
        "backordered_quantity": 4,
        "batches": [],
    }


def test_product_with_batches_and_no_lines(api):
    create_batch(api, "b1", qty=0)

    body = api.get(f"/api/products/{SKU}/").json()

    assert (
        body["purchased_quantity"],
        body["available_quantity"],
        body["backordered_quantity"],
    ) == (
        0,
        0,
        0,
    )
    assert [b["reference"] for b in body["batches"]] == ["b1"]


def test_unknown_product_is_a_404_not_found(api):
    create_batch(api, "b1", sku="OTHER")

    assert_error(api.get(f"/api/products/{SKU}/"), 404, "not_found")


def test_product_that_lost_its_last_batch_and_line_is_a_404(api):
    create_batch(api, "b1", qty=10)
    api.delete("/api/batches/b1/")

    assert_error(api.get(f"/api/products/{SKU}/"), 404, "not_found")
