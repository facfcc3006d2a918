"""A use case that fails half-way leaves neither its change nor its events (SPEC 6).

A database error is injected before commit, after the repository has written
the change and its events inside the transaction (the events' own statement
included). The client gets SPEC 2's JSON error (503 ``busy`` or
``unavailable``, never a 500), and afterwards the feed, the tables and the
replay of the log are exactly as before. Once the database behaves again, the
same request lands with its events numbered on from the SKU's last
``sku_seq``, with no gap.

These tests run outside a test transaction (``transaction=True``): the unit
of work is the outermost transaction, and retries, as in production.
"""

from __future__ import annotations

import pytest
from django.db import DatabaseError, OperationalError, transaction

from allocation import models as orm
from allocation import selectors, unit_of_work
from allocation.repository import DjangoProductRepository
from tests.e2e.helpers import SKU, all_pages, allocated, assert_error, create_batch

pytestmark = pytest.mark.django_db(transaction=True)


def replayed_differences() -> list[str]:
    """As ``replay_events --check`` reads: in one transaction (its streaming cursors
    need one behind a transaction-mode pooler)."""
    with transaction.atomic():
        return list(selectors.replay_differences(selectors.ReplayResult()))


SOFA = "BLUE-SOFA"
LAMP = "GREEN-LAMP"

NO_SPACE = DatabaseError("could not extend file: No space left on device")
CONNECTION_LOST = OperationalError("server closed the connection unexpectedly")
LOCKED = OperationalError("database is locked")


@pytest.fixture(autouse=True)
def no_backoff(monkeypatch):
    monkeypatch.setattr(unit_of_work, "BACKOFF_SECONDS", 0)


@pytest.fixture
def stock(api):
    """Through the API: o1 and o2 on b1, b2 inbound, o3 backordered for a sofa, a lamp."""
    create_batch(api, "b1", qty=10)
    create_batch(api, "b2", qty=5, eta="2027-01-10")
    create_batch(api, "s1", sku=SOFA, qty=3)
    create_batch(api, "l1", sku=LAMP, qty=2)
    allocated(api, "o1", qty=6)
    allocated(api, "o2", qty=4)
    allocated(api, "o3", sku=SOFA, qty=3)
    response = api.patch("/api/batches/s1/", {"purchased_quantity": 0}, format="json")
    assert [line["order_id"] for line in response.json()["backordered"]] == ["o3"]


def everything(api) -> dict:
    """The whole feed and every batch and line, read over HTTP."""
    feed = api.get("/api/events/?limit=1000")
    assert feed.status_code == 200
    return {
        "events": feed.json()["results"],
        "batches": all_pages(api, "/api/batches/"),
        "lines": all_pages(api, "/api/allocations/"),
    }


REQUESTS = {
    # Rule 8: batch_changed, line_moved (o1), line_backordered (o2).
    "lower a batch": ("patch", "/api/batches/b1/", {"purchased_quantity": 2}),
    "allocate a line": ("post", "/api/allocations/", {"order_id": "o4", "sku": SKU, "qty": 1}),
    "deallocate a line": ("delete", f"/api/allocations/o1/{SKU}/", None),
    "delete a batch": ("delete", "/api/batches/b1/", None),
    # Rule 9: batch_created, then line_allocated for o3.
    "add a batch": (
        "post",
        "/api/batches/",
        {"reference": "s2", "sku": SOFA, "purchased_quantity": 3},
    ),
    "allocate an order": (
        "post",
        "/api/orders/",
        {"order_id": "o9", "lines": [{"sku": LAMP, "qty": 1}, {"sku": SKU, "qty": 2}]},
    ),
    "deallocate an order": ("delete", "/api/orders/o1/", None),
}


def send(api, request: str):
    method, url, body = REQUESTS[request]
    return getattr(api, method)(url, body, format="json")


def fail_after(monkeypatch, step: str, error: DatabaseError) -> list[int]:
    """Let ``DjangoProductRepository.<step>`` write, then raise ``error`` before commit.

    Returns, per attempt, how many events the transaction held when it failed.
    """
    real = getattr(DjangoProductRepository, step)
    held: list[int] = []

    def write_then_fail(self, *args, **kwargs):
        real(self, *args, **kwargs)
        held.append(orm.Event.objects.count())
        raise error

    monkeypatch.setattr(DjangoProductRepository, step, write_then_fail)
    return held


def assert_nothing_left_and_it_lands_later(api, monkeypatch, request: str, before: dict) -> None:
    assert everything(api) == before
    assert replayed_differences() == []

    monkeypatch.undo()
    landed = send(api, request)
    assert landed.status_code in (200, 201, 204), landed.content
    after = everything(api)["events"]
    last_seq: dict[str, int] = {}
    for event in before["events"]:
        last_seq[event["sku"]] = event["sku_seq"]
    new = after[len(before["events"]) :]
    assert after[: len(before["events"])] == before["events"]
    assert new, "the request wrote no event"
    for sku in {event["sku"] for event in new}:
        seqs = [event["sku_seq"] for event in new if event["sku"] == sku]
        first = last_seq.get(sku, 0) + 1
        assert seqs == list(range(first, first + len(seqs))), (sku, seqs)
    assert replayed_differences() == []


@pytest.mark.parametrize("request_name", sorted(REQUESTS))
def test_a_database_error_before_commit_leaves_neither_change_nor_events(
    api, stock, monkeypatch, request_name
):
    before = everything(api)
    held = fail_after(monkeypatch, "flush", NO_SPACE)

    response = send(api, request_name)

    assert_error(response, 503, "unavailable")
    # Not a transient error: one attempt, which had written its events.
    assert len(held) == 1
    assert held[0] > len(before["events"])
    assert_nothing_left_and_it_lands_later(api, monkeypatch, request_name, before)


@pytest.mark.parametrize(
    ("error", "code", "attempts"),
    [
        (NO_SPACE, "unavailable", 1),
        (CONNECTION_LOST, "unavailable", unit_of_work.MAX_CONNECTION_ATTEMPTS),
        (LOCKED, "busy", unit_of_work.MAX_ATTEMPTS),
    ],
)
def test_an_error_right_after_the_events_are_written_rolls_them_back(
    api, stock, monkeypatch, error, code, attempts
):
    """The PATCH writes its events in their own statement (``record``), after the rows."""
    before = everything(api)
    held = fail_after(monkeypatch, "record", error)

    response = send(api, "lower a batch")

    assert_error(response, 503, code)
    assert response["Retry-After"] == "1"
    # Each attempt wrote the three events of the PATCH, then failed.
    assert held == [len(before["events"]) + 3] * attempts
    assert_nothing_left_and_it_lands_later(api, monkeypatch, "lower a batch", before)
