"""Every SPEC 6 event type the admin door can write, read back from the feed.

A member of ``warehouse ops`` works through the admin's forms and actions;
after each one the feed (``GET /api/events/``, read with the same session)
holds the events it wrote, in order, stamped ``actor: "olga"``,
``source: "admin"`` and one ``transaction`` of their own. The admin places no
new lines (lines come from the API and the commands): ``line_allocated``
through it is a backorder served (rule 9).
"""

from __future__ import annotations

from datetime import date

import pytest
from django.contrib.auth.models import Group
from django.urls import reverse

from allocation import models as orm
from allocation import services
from tests.e2e.helpers import Feed, parts
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db
SKU = "RED-CHAIR"
ADD = reverse("admin:allocation_batch_add")
BATCHES = reverse("admin:allocation_batch_changelist")
LINES = reverse("admin:allocation_orderline_changelist")


@pytest.fixture
def olga(client):
    user = UserFactory(username="olga", is_staff=True)
    user.groups.add(Group.objects.get(name="warehouse ops"))
    client.force_login(user)
    return client


@pytest.fixture
def feed(olga) -> Feed:
    return Feed(olga)


def unit(feed: Feed) -> list[tuple[str, str, int, dict]]:
    return feed.unit(actor="olga", source="admin")


def batch_pk(reference: str) -> int:
    return orm.Batch.objects.get(reference=reference).pk


def line_pk(order_id: str, sku: str = SKU) -> int:
    return orm.OrderLine.objects.get(order_id=order_id, product_id=sku).pk


def add_batch(client, reference: str, qty: int, eta: str = "", sku: str = SKU):
    body = {"reference": reference, "sku": sku, "purchased_quantity": str(qty), "eta": eta}
    return client.post(ADD, body)


def change_batch(client, reference: str, qty: int, eta: str = ""):
    url = reverse("admin:allocation_batch_change", args=[batch_pk(reference)])
    return client.post(url, {"purchased_quantity": str(qty), "eta": eta})


def test_batch_forms_and_line_actions_write_each_event_type_in_order(olga, feed):
    assert add_batch(olga, "b1", 10).status_code == 302
    assert unit(feed) == [
        ("batch_created", SKU, 1, {"reference": "b1", "purchased_quantity": 10, "eta": None})
    ]

    assert add_batch(olga, "b2", 5, eta="2027-01-10").status_code == 302
    assert unit(feed) == [
        ("batch_created", SKU, 2, {"reference": "b2", "purchased_quantity": 5, "eta": "2027-01-10"})
    ]

    # Lines come from another door: numbered in the same sequence, stamped as theirs.
    for order_id, qty, seq in (("o1", 6, 3), ("o2", 4, 4)):
        services.allocate(order_id=order_id, sku=SKU, qty=qty)
        assert [(t, n) for t, _, n, _ in feed.unit(actor=None, source="cli")] == [
            ("line_allocated", seq)
        ]

    # Rule 8: o2 (newer) then o1 come off b1; o1 is split over b1 and b2, o2 waits.
    assert change_batch(olga, "b1", 2).status_code == 302
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

    assert change_batch(olga, "b2", 5, eta="2027-02-01").status_code == 302
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

    # Saved unchanged, or refused: no event.
    assert change_batch(olga, "b2", 5, eta="2027-02-01").status_code == 302
    assert add_batch(olga, "b1", 3).status_code == 200  # reference taken: the form again
    feed.nothing()

    # Rule 9: the new batch serves the backorder, in the same unit of work.
    assert add_batch(olga, "b3", 4).status_code == 302
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

    selected = {"action": "deallocate_lines", "_selected_action": [str(line_pk("o1"))]}
    assert olga.post(LINES, selected).status_code == 302
    assert unit(feed) == [
        (
            "line_deallocated",
            SKU,
            11,
            {"order_id": "o1", "qty": 6, "previous_batches": parts(("b1", 2), ("b2", 4))},
        )
    ]

    # A batch's delete page: batch_deleted first, then o2 goes whole to b2.
    url = reverse("admin:allocation_batch_delete", args=[batch_pk("b3")])
    assert olga.post(url, {"post": "yes"}).status_code == 302
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

    # The changelist's delete action: b1 (2 free) cannot take o2.
    selected = {"action": "delete_selected", "_selected_action": [batch_pk("b2")], "post": "yes"}
    assert olga.post(BATCHES, selected).status_code == 302
    assert unit(feed) == [
        ("batch_deleted", SKU, 14, {"reference": "b2"}),
        (
            "line_backordered",
            SKU,
            15,
            {"order_id": "o2", "qty": 4, "previous_batches": parts(("b2", 4))},
        ),
    ]

    # A backordered line deleted from its page: no previous batches.
    url = reverse("admin:allocation_orderline_delete", args=[line_pk("o2")])
    assert olga.post(url, {"post": "yes"}).status_code == 302
    assert unit(feed) == [
        ("line_deallocated", SKU, 16, {"order_id": "o2", "qty": 4, "previous_batches": []})
    ]

    assert list(orm.Batch.objects.values_list("reference", "purchased_quantity", "eta")) == [
        ("b1", 2, None)
    ]
    assert not orm.OrderLine.objects.exists()


def test_an_action_over_several_lines_is_one_unit_of_work_per_line(olga, feed):
    services.add_batch(reference="r1", sku=SKU, purchased_quantity=5)
    services.add_batch(reference="g1", sku="GREEN-LAMP", purchased_quantity=5, eta=date(2027, 1, 2))
    services.allocate(order_id="o1", sku=SKU, qty=2)
    services.allocate(order_id="o1", sku="GREEN-LAMP", qty=1)
    feed.read()

    selected = [str(line_pk("o1")), str(line_pk("o1", "GREEN-LAMP"))]
    response = olga.post(LINES, {"action": "deallocate_lines", "_selected_action": selected})

    assert response.status_code == 302
    events = feed.read()
    assert [(e["type"], e["sku"], e["sku_seq"], e["data"]) for e in events] == [
        (
            "line_deallocated",
            "GREEN-LAMP",
            3,
            {"order_id": "o1", "qty": 1, "previous_batches": parts(("g1", 1))},
        ),
        (
            "line_deallocated",
            SKU,
            3,
            {"order_id": "o1", "qty": 2, "previous_batches": parts(("r1", 2))},
        ),
    ]
    assert {(e["actor"], e["source"]) for e in events} == {("olga", "admin")}
    # Each line is deallocated by a unit of work of its own (a failure stops
    # the action with the lines done so far kept).
    assert len({e["transaction"] for e in events}) == 2
