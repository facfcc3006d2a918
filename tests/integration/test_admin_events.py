"""The admin's Events page (SPEC 6.3): read-only, filters, search, links, a fixed cost."""

from __future__ import annotations

import re

import pytest
from django.contrib.auth.models import Group
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from allocation import models as orm
from allocation import services
from allocation.admin.paginators import CappedCountPaginator
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db
CHANGELIST = reverse("admin:allocation_event_changelist")
SKU = "RED-CHAIR"


@pytest.fixture
def history(ops):
    """Through the admin's own services door: b1, b2 and a line moved by deleting b1."""
    services.add_batch(reference="b1", sku=SKU, purchased_quantity=5)
    services.add_batch(reference="b2", sku=SKU, purchased_quantity=5)
    services.add_batch(reference="x1", sku="OTHER", purchased_quantity=5)
    services.allocate(order_id="o1", sku=SKU, qty=2)
    response = ops.post(
        reverse("admin:allocation_batch_delete", args=[orm.Batch.objects.get(reference="b1").pk]),
        {"post": "yes"},
    )
    assert response.status_code == 302
    return {e.id: e for e in orm.Event.objects.all()}


def listed(response) -> list[int]:
    """Event ids on the page, in order (the id column links to the event's page)."""
    return [int(n) for n in re.findall(r"/admin/allocation/event/(\d+)/change/", response.text)]


def test_the_page_lists_events_newest_first_with_who_and_where(ops, history):
    response = ops.get(CHANGELIST)

    assert response.status_code == 200
    assert listed(response) == sorted(history, reverse=True)
    deleted = orm.Event.objects.get(type="batch_deleted")
    assert (deleted.actor, deleted.source) == ("root", "admin")
    assert "batch_deleted" in response.text


@pytest.mark.parametrize(
    ("query", "types"),
    [
        ("type=line_moved", ["line_moved"]),
        ("source=admin", ["line_moved", "batch_deleted"]),
        ("sku=OTHER", ["batch_created"]),
        ("batch=b1", ["line_moved", "batch_deleted", "line_allocated", "batch_created"]),
        ("order_id=o1", ["line_moved", "line_allocated"]),
        ("q=o1", ["line_moved", "line_allocated"]),
        ("q=b2", ["line_moved", "batch_created"]),
        ("q=no%20such", []),
    ],
)
def test_filters_and_search(ops, history, query, types):
    response = ops.get(f"{CHANGELIST}?{query}")

    assert response.status_code == 200
    assert [history[i].type for i in listed(response)] == types


def test_events_are_read_only(ops, history):
    event = orm.Event.objects.earliest("id")

    page = ops.get(reverse("admin:allocation_event_change", args=[event.pk]))
    add = ops.get(reverse("admin:allocation_event_add"))
    delete = ops.post(reverse("admin:allocation_event_delete", args=[event.pk]), {"post": "yes"})

    assert page.status_code == 200
    assert 'name="_save"' not in page.text
    assert (add.status_code, delete.status_code) == (403, 403)
    assert orm.Event.objects.filter(pk=event.pk).exists()


def test_viewers_see_events_and_staff_without_the_permission_do_not(client, history):
    viewer = UserFactory(username="watcher", is_staff=True)
    viewer.groups.add(Group.objects.get(name="viewer"))
    plain = UserFactory(username="plain", is_staff=True)

    client.force_login(viewer)
    assert client.get(CHANGELIST).status_code == 200
    client.force_login(plain)
    assert client.get(CHANGELIST).status_code == 403


def test_batch_and_line_pages_link_to_their_events(ops, history):
    batch = orm.Batch.objects.get(reference="b2")
    line = orm.OrderLine.objects.get(order_id="o1")

    batch_page = ops.get(reverse("admin:allocation_batch_change", args=[batch.pk]))
    line_page = ops.get(reverse("admin:allocation_orderline_change", args=[line.pk]))

    assert f'href="{CHANGELIST}?batch=b2"' in batch_page.text
    assert f'href="{CHANGELIST}?order_id=o1&amp;sku={SKU}"' in line_page.text


def test_the_page_costs_the_same_whatever_the_log_holds(ops, history, monkeypatch):
    def queries(query: str = "") -> int:
        with CaptureQueriesContext(connection) as captured:
            assert ops.get(f"{CHANGELIST}?{query}").status_code == 200
        return len(captured)

    before = queries(), queries("type=line_allocated")
    for n in range(5):
        services.allocate(order_id=f"more-{n}", sku="OTHER", qty=1)
    monkeypatch.setattr(CappedCountPaginator, "CAP", 3)
    after = queries(), queries("type=line_allocated")

    assert before == after
    # The count stops at the cap: never the whole log.
    capped = ops.get(CHANGELIST)
    assert capped.context["cl"].result_count == 3


def test_every_filter_and_search_costs_the_same_queries_with_300_more_matching_events(ops, history):
    moved = orm.Event.objects.get(type="line_moved")
    queries = [
        "",
        f"sku={SKU}",
        "batch=b2",
        "order_id=o1",
        "q=o1",
        "q=b2",
        "type=line_moved",
        "source=admin",
        f"type=line_moved&source=admin&sku={SKU}&q=o1",
    ]

    def measure() -> tuple[list[int], list[int]]:
        counts, sizes = [], []
        for query in queries:
            with CaptureQueriesContext(connection) as captured:
                response = ops.get(f"{CHANGELIST}?{query}")
            assert response.status_code == 200
            counts.append(len(captured))
            sizes.append(len(listed(response)))
        return counts, sizes

    before, few = measure()
    # 300 more events that every filter above matches (rows: the page reads,
    # whoever wrote them).
    orm.Event.objects.bulk_create(
        orm.Event(
            type="line_moved",
            sku=SKU,
            sku_seq=100 + n,
            occurred_at=moved.occurred_at,
            actor="root",
            source="admin",
            transaction=moved.transaction,
            order_id="o1",
            data=moved.data,
        )
        for n in range(300)
    )
    after, many = measure()
    with CaptureQueriesContext(connection) as third_page:
        page = ops.get(f"{CHANGELIST}?sku={SKU}&p=3")

    assert before == after
    # The session, its user, the count (capped), the page: on either engine.
    assert before == [4] * len(queries)
    assert len(third_page) == 4
    assert few == [6, 5, 2, 2, 2, 2, 1, 2, 1]
    assert many == [100] * len(queries)
    newest_first = orm.Event.objects.filter(sku=SKU).order_by("-id").values_list("id", flat=True)
    assert listed(page) == list(newest_first[200:300])
