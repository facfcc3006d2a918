"""Every SPEC 6 event type written through the API door, read back from the feed.

Each request is followed by a read of ``GET /api/events/?after=<last>``: the
events it wrote, in order, with their ``type``, ``sku``, ``sku_seq`` and
``data``, stamped ``actor: "alice"``, ``source: "api"`` and one
``transaction`` of their own (``tests.e2e.helpers.Feed``).
"""

from __future__ import annotations

import pytest

from tests.e2e.helpers import Feed, assert_error, assert_field_errors, parts
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db
SKU = "RED-CHAIR"
SOFA = "BLUE-SOFA"


@pytest.fixture
def alice(client_for):
    """A warehouse user with exactly the permissions the API's writes and the feed need."""
    return client_for(
        UserFactory(
            username="alice",
            permissions=[
                "add_batch",
                "change_batch",
                "delete_batch",
                "view_batch",
                "add_orderline",
                "delete_orderline",
                "view_orderline",
                "view_event",
            ],
        )
    )


@pytest.fixture
def feed(alice) -> Feed:
    return Feed(alice)


def unit(feed: Feed) -> list[tuple[str, str, int, dict]]:
    return feed.unit(actor="alice", source="api")


def post_batch(client, reference: str, qty: int, eta: str | None = None, sku: str = SKU):
    body = {"reference": reference, "sku": sku, "purchased_quantity": qty, "eta": eta}
    return client.post("/api/batches/", body, format="json")


def test_batches_and_allocations_write_each_event_type_in_order(alice, feed):
    assert post_batch(alice, "b1", 10).status_code == 201
    assert unit(feed) == [
        ("batch_created", SKU, 1, {"reference": "b1", "purchased_quantity": 10, "eta": None})
    ]

    assert post_batch(alice, "b2", 5, eta="2027-01-10").status_code == 201
    assert unit(feed) == [
        ("batch_created", SKU, 2, {"reference": "b2", "purchased_quantity": 5, "eta": "2027-01-10"})
    ]

    for order_id, qty, seq in (("o1", 6, 3), ("o2", 4, 4)):
        body = {"order_id": order_id, "sku": SKU, "qty": qty}
        assert alice.post("/api/allocations/", body, format="json").status_code == 201
        assert unit(feed) == [
            (
                "line_allocated",
                SKU,
                seq,
                {
                    "order_id": order_id,
                    "qty": qty,
                    "batches": parts(("b1", qty)),
                    "previous_status": None,
                },
            )
        ]

    # Rule 8: o2 (newer) then o1 come off b1; o1 (older) is placed first, split
    # over b1's 2 and b2; o2 finds 1 left and is backordered.
    response = alice.patch("/api/batches/b1/", {"purchased_quantity": 2}, format="json")
    assert response.status_code == 200
    assert [line["order_id"] for line in response.json()["reallocated"]] == ["o1"]
    assert [line["order_id"] for line in response.json()["backordered"]] == ["o2"]
    assert unit(feed) == [
        (
            "batch_changed",
            SKU,
            5,
            {
                "reference": "b1",
                "purchased_quantity": 2,
                "eta": None,
                "previous": {"purchased_quantity": 10, "eta": None},
            },
        ),
        (
            "line_moved",
            SKU,
            6,
            {
                "order_id": "o1",
                "qty": 6,
                "batches": parts(("b1", 2), ("b2", 4)),
                "previous_batches": parts(("b1", 6)),
            },
        ),
        (
            "line_backordered",
            SKU,
            7,
            {"order_id": "o2", "qty": 4, "previous_batches": parts(("b1", 4))},
        ),
    ]

    # An eta alone: batch_changed with the previous eta; 1 free is too little for o2.
    response = alice.patch("/api/batches/b2/", {"eta": "2027-02-01"}, format="json")
    assert response.status_code == 200
    assert unit(feed) == [
        (
            "batch_changed",
            SKU,
            8,
            {
                "reference": "b2",
                "purchased_quantity": 5,
                "eta": "2027-02-01",
                "previous": {"purchased_quantity": 5, "eta": "2027-01-10"},
            },
        )
    ]

    # Rule 9: new stock serves the backorder, in the same unit of work.
    assert post_batch(alice, "b3", 4).status_code == 201
    assert unit(feed) == [
        ("batch_created", SKU, 9, {"reference": "b3", "purchased_quantity": 4, "eta": None}),
        (
            "line_allocated",
            SKU,
            10,
            {
                "order_id": "o2",
                "qty": 4,
                "batches": parts(("b3", 4)),
                "previous_status": "backordered",
            },
        ),
    ]

    assert alice.delete(f"/api/allocations/o1/{SKU}/").status_code == 204
    assert unit(feed) == [
        (
            "line_deallocated",
            SKU,
            11,
            {"order_id": "o1", "qty": 6, "previous_batches": parts(("b1", 2), ("b2", 4))},
        )
    ]

    # batch_deleted first, then the lines' events: o2 goes whole to b2 (b1 has 2).
    response = alice.delete("/api/batches/b3/")
    assert response.status_code == 200
    assert unit(feed) == [
        ("batch_deleted", SKU, 12, {"reference": "b3"}),
        (
            "line_moved",
            SKU,
            13,
            {
                "order_id": "o2",
                "qty": 4,
                "batches": parts(("b2", 4)),
                "previous_batches": parts(("b3", 4)),
            },
        ),
    ]

    assert alice.delete("/api/batches/b2/").status_code == 200
    assert unit(feed) == [
        ("batch_deleted", SKU, 14, {"reference": "b2"}),
        (
            "line_backordered",
            SKU,
            15,
            {"order_id": "o2", "qty": 4, "previous_batches": parts(("b2", 4))},
        ),
    ]

    # A backordered line deallocated: no previous batches.
    assert alice.delete(f"/api/allocations/o2/{SKU}/").status_code == 204
    assert unit(feed) == [
        ("line_deallocated", SKU, 16, {"order_id": "o2", "qty": 4, "previous_batches": []})
    ]


def by_sku(events: list[tuple]) -> list[tuple]:
    """Events by SKU, each SKU's in its own order (SPEC 6 orders events within a SKU)."""
    return sorted(events, key=lambda event: (event[1], event[2]))


def test_an_order_is_one_unit_of_work_across_skus(alice, feed):
    assert post_batch(alice, "r1", 5).status_code == 201
    assert post_batch(alice, "s1", 3, sku=SOFA).status_code == 201
    feed.read()

    order = {"order_id": "o9", "lines": [{"sku": SOFA, "qty": 3}, {"sku": SKU, "qty": 2}]}
    assert alice.post("/api/orders/", order, format="json").status_code == 201
    assert by_sku(unit(feed)) == [
        (
            "line_allocated",
            SOFA,
            2,
            {"order_id": "o9", "qty": 3, "batches": parts(("s1", 3)), "previous_status": None},
        ),
        (
            "line_allocated",
            SKU,
            2,
            {"order_id": "o9", "qty": 2, "batches": parts(("r1", 2)), "previous_status": None},
        ),
    ]

    # A repeat of the whole order writes nothing.
    assert alice.post("/api/orders/", order, format="json").status_code == 200
    feed.nothing()

    # o0 waits for a sofa: placed on s2, backordered when s2 goes (s1 is full).
    assert post_batch(alice, "s2", 2, sku=SOFA).status_code == 201
    body = {"order_id": "o0", "sku": SOFA, "qty": 2}
    assert alice.post("/api/allocations/", body, format="json").status_code == 201
    assert alice.delete("/api/batches/s2/").status_code == 200
    assert [(e["type"], e["sku_seq"]) for e in feed.read()] == [
        ("batch_created", 3),
        ("line_allocated", 4),
        ("batch_deleted", 5),
        ("line_backordered", 6),
    ]

    # Deallocating the order gives its sofa to o0 (rule 9), in the same unit of work.
    assert alice.delete("/api/orders/o9/").status_code == 204
    assert by_sku(unit(feed)) == [
        (
            "line_deallocated",
            SOFA,
            7,
            {"order_id": "o9", "qty": 3, "previous_batches": parts(("s1", 3))},
        ),
        (
            "line_allocated",
            SOFA,
            8,
            {
                "order_id": "o0",
                "qty": 2,
                "batches": parts(("s1", 2)),
                "previous_status": "backordered",
            },
        ),
        (
            "line_deallocated",
            SKU,
            3,
            {"order_id": "o9", "qty": 2, "previous_batches": parts(("r1", 2))},
        ),
    ]


def test_refusals_repeats_and_no_op_changes_write_no_event(alice, feed):
    assert post_batch(alice, "b1", 10).status_code == 201
    body = {"order_id": "o1", "sku": SKU, "qty": 3}
    assert alice.post("/api/allocations/", body, format="json").status_code == 201
    feed.read()

    def allocate(order_id: str, qty: int, sku: str = SKU):
        body = {"order_id": order_id, "sku": sku, "qty": qty}
        return alice.post("/api/allocations/", body, format="json")

    assert allocate("o1", 3).status_code == 200  # idempotent repeat (rule 6)
    assert_error(allocate("o1", 4), 409, "line_conflict")
    assert_error(allocate("o2", 100), 409, "out_of_stock")
    assert_error(allocate("o2", 1, sku="NO-SUCH"), 400, "invalid_sku")
    assert_error(post_batch(alice, "b1", 5), 409, "duplicate_batch")
    assert_field_errors(post_batch(alice, "b2", -1), "purchased_quantity")
    assert (
        alice.patch("/api/batches/b1/", {"purchased_quantity": 10}, format="json").json()[
            "purchased_quantity"
        ]
        == 10
    )
    assert_field_errors(alice.patch("/api/batches/b1/", {"sku": "X"}, format="json"), "sku")
    assert_error(alice.delete(f"/api/allocations/o9/{SKU}/"), 404, "not_found")
    assert_error(alice.delete("/api/batches/zz/"), 404, "not_found")
    # All or nothing: o2's first line fits, its second does not.
    order = {"order_id": "o2", "lines": [{"sku": SKU, "qty": 1}, {"sku": SKU + "-2", "qty": 1}]}
    assert_error(alice.post("/api/orders/", order, format="json"), 400, "invalid_sku")
    order = {"order_id": "o2", "lines": [{"sku": SKU, "qty": 8}]}
    assert_error(alice.post("/api/orders/", order, format="json"), 409, "out_of_stock")
    assert_error(alice.delete("/api/orders/o9/"), 404, "not_found")

    feed.nothing()
    batch = alice.get("/api/batches/b1/").json()
    assert (batch["purchased_quantity"], batch["allocated_quantity"]) == (10, 3)
    assert [line["order_id"] for line in alice.get("/api/allocations/").json()["results"]] == ["o1"]
