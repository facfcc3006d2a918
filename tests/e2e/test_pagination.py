"""SPEC 2: lists are paginated ``{next, previous, results}``; page_size default 100, cap 1000."""

import base64
import json

import pytest

from allocation import models as orm
from tests.e2e.helpers import all_pages
from tests.factories import BatchRowFactory, OrderLineRowFactory, ProductFactory

pytestmark = pytest.mark.django_db


def bulk_batches(count: int, sku: str = "BULK") -> list[str]:
    """``count`` in-stock batches of one SKU, in preference (= creation) order."""
    product = ProductFactory(sku=sku)
    rows = BatchRowFactory.build_batch(count, product=product)
    orm.Batch.objects.bulk_create(rows)
    return [row.reference for row in rows]


def page(api, query: str) -> dict:
    response = api.get(f"/api/batches/?{query}")
    assert response.status_code == 200, response.content
    body = response.json()
    assert {"next", "previous", "results"} <= set(body)
    return body


def test_default_page_has_100_results_and_links_to_the_next(api):
    expected = bulk_batches(150)

    first = page(api, "")

    assert [b["reference"] for b in first["results"]] == expected[:100]
    assert first["previous"] is None
    assert first["next"].startswith("http://testserver/api/batches/?cursor=")
    second = api.get(first["next"]).json()
    assert [b["reference"] for b in second["results"]] == expected[100:]
    assert second["next"] is None
    back = api.get(second["previous"]).json()
    assert [b["reference"] for b in back["results"]] == expected[:100]
    assert back["previous"] is None


def test_page_size_above_1000_is_capped_at_1000(api):
    expected = bulk_batches(1005)

    body = page(api, "page_size=5000")

    assert len(body["results"]) == 1000
    assert [b["reference"] for b in body["results"]] == expected[:1000]
    assert "page_size=5000" in body["next"]
    rest = api.get(body["next"]).json()
    assert [b["reference"] for b in rest["results"]] == expected[1000:]


def test_page_size_of_exactly_1000_is_honoured(api):
    bulk_batches(1001)

    assert len(page(api, "page_size=1000")["results"]) == 1000


@pytest.mark.parametrize("value", ["0", "-5", "abc", "2.5", "", "1e3", "%00"])
def test_non_positive_or_junk_page_size_gives_the_default(api, value):
    bulk_batches(101)

    assert len(page(api, f"page_size={value}")["results"]) == 100


def test_small_page_size_is_honoured(api):
    bulk_batches(5)

    body = page(api, "page_size=2")

    assert len(body["results"]) == 2
    assert "page_size=2" in body["next"]
    assert len(api.get(body["next"]).json()["results"]) == 2


def test_following_next_reads_every_batch_exactly_once(api):
    expected = bulk_batches(53, sku="A") + bulk_batches(20, sku="B")

    seen = [b["reference"] for b in all_pages(api, "/api/batches/?page_size=7")]

    assert seen == expected
    assert len(set(seen)) == 73


def test_following_next_keeps_the_filters(api):
    bulk_batches(30, sku="A")
    wanted = bulk_batches(25, sku="B")

    seen = [b["reference"] for b in all_pages(api, "/api/batches/?sku=B&page_size=10")]

    assert seen == wanted


def test_following_next_reads_every_line_exactly_once(api):
    product = ProductFactory(sku="BULK")
    rows = OrderLineRowFactory.build_batch(
        230, product=product, status="backordered", allocated_at=None
    )
    orm.OrderLine.objects.bulk_create(rows)

    seen = [(x["order_id"], x["status"]) for x in all_pages(api, "/api/allocations/")]

    assert seen == sorted((row.order_id, "backordered") for row in rows)


def test_a_cursor_that_is_not_ours_is_a_404_not_found(api):
    bulk_batches(3)

    response = api.get("/api/batches/?cursor=not-a-cursor")

    assert response.status_code == 404
    assert response.json()["code"] == "not_found"


def _cursor(key: list, reverse: bool = False) -> str:
    raw = json.dumps({"k": key, "r": reverse}).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


@pytest.mark.parametrize(
    ("url", "key"),
    [
        ("/api/batches/", ["BULK\x00", None, "2026-01-01T00:00:00Z", "r"]),
        ("/api/batches/", ["BULK", None, "2026-01-01T00:00:00Z", "r\x00"]),
        ("/api/batches/", ["BULK", "2026-02-30", "2026-01-01T00:00:00Z", "r"]),
        ("/api/batches/", ["BULK", None, "yesterday", "r"]),
        ("/api/batches/", ["BULK", 5, 10**30, "r"]),
        ("/api/batches/", ["BULK", None]),
        ("/api/allocations/", ["o\x00", "BULK"]),
        ("/api/allocations/", [["o"], {"s": 1}]),
    ],
)
@pytest.mark.parametrize("reverse", [False, True])
def test_a_forged_cursor_is_a_404_never_a_5xx(api, url, key, reverse):
    bulk_batches(3)

    response = api.get(f"{url}?cursor={_cursor(key, reverse)}")

    assert response.status_code == 404
    assert response.json()["code"] == "not_found"


def test_an_empty_list_is_one_empty_page(api):
    assert page(api, "") == {"next": None, "previous": None, "results": []}
