"""SPEC 2: ``busy`` and ``unavailable`` (503) when the database will not cooperate.

These tests run outside a test transaction (``transaction=True``): a unit of
work retries only when it is the outermost transaction, as in production.
"""

import pytest
from django.db import OperationalError

from allocation import selectors, unit_of_work
from allocation.repository import DjangoProductRepository
from tests.e2e.helpers import SKU, allocate, assert_error, create_batch, held, stock

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("no_backoff")]


def failing_lock(monkeypatch, message: str, times: int) -> list[int]:
    """Make the SKU lock raise ``message`` the first ``times`` times; count the calls.

    ``_lock_row`` is where every use case takes a SKU's lock (allocating a
    line takes it in the round trip that reads the line's batches).
    """
    calls: list[int] = []
    real_lock = DjangoProductRepository._lock_row

    def lock(self, sku, *args, **kwargs):
        calls.append(1)
        if len(calls) <= times:
            raise OperationalError(message)
        return real_lock(self, sku, *args, **kwargs)

    monkeypatch.setattr(DjangoProductRepository, "_lock_row", lock)
    return calls


def test_a_conflict_that_persists_is_a_503_busy(api, monkeypatch):
    create_batch(api, "b1", qty=10)
    calls = failing_lock(monkeypatch, "database is locked", times=1000)

    response = allocate(api, "o1", qty=3)

    assert_error(response, 503, "busy")
    assert response["Retry-After"] == "1"
    assert len(calls) == unit_of_work.MAX_ATTEMPTS
    monkeypatch.undo()
    assert stock(api, "b1") == (10, 0, 10)
    assert_error(api.get(f"/api/allocations/o1/{SKU}/"), 404, "not_found")


def test_a_passing_conflict_is_retried_and_the_write_happens_once(api, monkeypatch):
    create_batch(api, "b1", qty=10)
    calls = failing_lock(monkeypatch, "database is locked", times=2)

    response = allocate(api, "o1", qty=3)

    assert response.status_code == 201
    assert len(calls) == 3
    assert stock(api, "b1") == (10, 3, 7)
    assert held(api, "b1") == [("o1", 3)]


def test_a_database_that_cannot_be_reached_is_a_503_unavailable(api, monkeypatch):
    create_batch(api, "b1", qty=10)
    failing_lock(monkeypatch, "could not connect to server: Connection refused", times=1000)

    response = api.patch("/api/batches/b1/", {"purchased_quantity": 1}, format="json")

    assert_error(response, 503, "unavailable")
    assert response["Retry-After"] == "1"
    monkeypatch.undo()
    assert stock(api, "b1") == (10, 0, 10)


@pytest.mark.parametrize(
    ("message", "code"),
    [("server closed the connection unexpectedly", "unavailable"), ("database is locked", "busy")],
)
def test_a_read_that_hits_a_database_error_is_a_503(api, monkeypatch, message, code):
    create_batch(api, "b1", qty=10)

    def broken(*args, **kwargs):
        raise OperationalError(message)

    monkeypatch.setattr(selectors, "batch_detail", broken)

    assert_error(api.get("/api/batches/b1/"), 503, code)
    monkeypatch.undo()
    assert stock(api, "b1") == (10, 0, 10)
