"""GET /api/events/ and /api/events/{id}/ (SPEC 6.1), read back after writes over HTTP."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from allocation import models as orm
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db
SKU = "RED-CHAIR"


@pytest.fixture
def history(api):
    """Through the API as root: three batches, two lines on b1, then b1 lowered to 3: both
    come off, o1 (older) goes whole to b2, o2 back on b1."""
    for body in (
        {"reference": "b1", "sku": SKU, "purchased_quantity": 10},
        {"reference": "b2", "sku": SKU, "purchased_quantity": 10, "eta": "2027-01-10"},
        {"reference": "x1", "sku": "OTHER", "purchased_quantity": 1},
    ):
        assert api.post("/api/batches/", body, format="json").status_code == 201
    for body in (
        {"order_id": "o1", "sku": SKU, "qty": 4},
        {"order_id": "o2", "sku": SKU, "qty": 3},
    ):
        assert api.post("/api/allocations/", body, format="json").status_code == 201
    assert (
        api.patch("/api/batches/b1/", {"purchased_quantity": 3}, format="json").status_code == 200
    )
    return list(orm.Event.objects.order_by("id"))


def types(body) -> list[str]:
    return [e["type"] for e in body["results"]]


def test_the_feed_serves_every_event_in_id_order_as_the_spec_shows_them(api, history):
    body = api.get("/api/events/").json()

    assert types(body) == [
        "batch_created",
        "batch_created",
        "batch_created",
        "line_allocated",
        "line_allocated",
        "batch_changed",
        "line_moved",
        "line_moved",
    ]
    assert body["next_after"] == history[-1].id
    moved = body["results"][-1]
    assert set(moved) == {
        "id",
        "type",
        "sku",
        "sku_seq",
        "occurred_at",
        "actor",
        "source",
        "transaction",
        "data",
    }
    assert (moved["sku"], moved["sku_seq"], moved["actor"], moved["source"]) == (
        SKU,
        7,
        "root",
        "api",
    )
    assert moved["data"] == {
        "order_id": "o2",
        "qty": 3,
        "batches": [{"reference": "b1", "qty": 3}],
        "previous_batches": [{"reference": "b1", "qty": 3}],
    }
    assert moved["transaction"] == body["results"][-2]["transaction"]


def test_after_and_limit_page_through_the_feed(api, history):
    ids = [e.id for e in history]

    first = api.get("/api/events/?limit=3").json()
    rest = api.get(f"/api/events/?after={first['next_after']}&limit=1000").json()
    nothing = api.get(f"/api/events/?after={rest['next_after']}").json()

    assert [e["id"] for e in first["results"]] == ids[:3]
    assert first["next_after"] == ids[2]
    assert [e["id"] for e in rest["results"]] == ids[3:]
    assert nothing == {"results": [], "next_after": ids[-1]}


def test_filters(api, history):
    def ids(query: str) -> list[int]:
        return [e["id"] for e in api.get(f"/api/events/?{query}").json()["results"]]

    by_type = {e.type: [x.id for x in history if x.type == e.type] for e in history}
    assert ids("sku=OTHER") == [history[2].id]
    assert ids("type=line_moved,batch_changed") == by_type["batch_changed"] + by_type["line_moved"]
    assert ids("order_id=o2") == [history[4].id, history[7].id]
    # b1 is named by its creation, both placements, the change and both moves.
    assert ids("batch=b1") == [history[n].id for n in (0, 3, 4, 5, 6, 7)]
    assert ids("batch=b2") == [history[1].id, history[6].id]
    assert ids(f"transaction={history[5].transaction}") == [history[n].id for n in (5, 6, 7)]
    assert ids("sku=NONE") == []


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ("after=-1", "after"),
        ("after=x", "after"),
        ("limit=0", "limit"),
        ("limit=1001", "limit"),
        ("limit=1.5", "limit"),
        ("type=line_eaten", "type"),
        ("type=line_moved,", "type"),
        ("sku=%00", "sku"),
        ("transaction=XYZ", "transaction"),
    ],
)
def test_bad_parameters_are_400_field_errors(api, query, field):
    response = api.get(f"/api/events/?{query}")

    assert response.status_code == 400
    assert list(response.json()) == [field]


def test_one_event_by_id_and_404_for_an_unknown_one(api, history):
    one = api.get(f"/api/events/{history[0].id}/")
    missing = api.get("/api/events/999999/")

    assert one.status_code == 200
    assert one.json()["data"] == {"reference": "b1", "purchased_quantity": 10, "eta": None}
    assert missing.status_code == 404
    assert missing.json()["code"] == "not_found"


def test_reading_events_needs_view_event(client_for, history):
    plain = client_for(UserFactory(username="plain", permissions=["view_batch"]))
    reader = client_for(UserFactory(username="reader", permissions=["view_event"]))

    assert plain.get("/api/events/").status_code == 403
    assert plain.get(f"/api/events/{history[0].id}/").status_code == 403
    assert reader.get("/api/events/").status_code == 200


def test_a_feed_page_costs_the_same_queries_whatever_it_holds(client_for, history):
    reader = client_for(UserFactory(username="reader", permissions=["view_event"]))

    counts = []
    for query in (
        "limit=1",
        "limit=1000",
        "batch=b1",
        "type=line_moved&sku=RED-CHAIR",
        "after=999",
    ):
        with CaptureQueriesContext(connection) as queries:
            assert reader.get(f"/api/events/?{query}").status_code == 200
        counts.append(len(queries))

    # The token with its user and permissions, (PostgreSQL) the horizon, the page.
    assert counts == [3 if connection.vendor == "postgresql" else 2] * 5


def test_every_filter_costs_the_same_queries_with_300_more_events_matching_it(client_for, history):
    """A feed page's statements do not depend on the filters nor on the log's length."""
    reader = client_for(UserFactory(username="reader", permissions=["view_event"]))
    moved = history[-1]
    middle = history[3].id
    queries = [
        "",
        f"after={middle}",
        "limit=1000",
        "sku=RED-CHAIR",
        f"sku=RED-CHAIR&after={middle}",
        "order_id=o2",
        f"order_id=o2&after={middle}",
        "batch=b1",
        f"batch=b1&after={middle}",
        f"transaction={moved.transaction}",
        f"transaction={moved.transaction}&after={middle}",
        "type=line_moved",
        f"type=line_moved,batch_changed&sku=RED-CHAIR&order_id=o2&batch=b1&after={middle}",
    ]

    def measure() -> tuple[list[int], list[int]]:
        counts, sizes = [], []
        for query in queries:
            with CaptureQueriesContext(connection) as captured:
                response = reader.get(f"/api/events/?{query}")
            assert response.status_code == 200
            counts.append(len(captured))
            sizes.append(len(response.json()["results"]))
        return counts, sizes

    before, few = measure()
    # 300 more events that every filter above matches: the same SKU, order,
    # batch and transaction (written as rows: the feed reads, whoever wrote).
    orm.Event.objects.bulk_create(
        orm.Event(
            type="line_moved",
            sku=SKU,
            sku_seq=100 + n,
            occurred_at=moved.occurred_at,
            actor=None,
            source="cli",
            transaction=moved.transaction,
            order_id="o2",
            data={**moved.data, "qty": n},
        )
        for n in range(300)
    )
    after, many = measure()

    # The token with its user and permissions, (PostgreSQL) the horizon, the page.
    expected = 3 if connection.vendor == "postgresql" else 2
    assert before == after == [expected] * len(queries)
    assert few == [8, 4, 8, 7, 4, 2, 2, 6, 4, 3, 3, 2, 1]
    assert many == [100, 100, 308, 100, 100, 100, 100, 100, 100, 100, 100, 100, 100]
