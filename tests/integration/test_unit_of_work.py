"""The unit of work: commit, rollback, and bounded retries of transient errors."""

import threading
import time

import pytest
from django.db import OperationalError, connection, connections, transaction
from django.test.utils import CaptureQueriesContext

from allocation import models as orm
from allocation import services, unit_of_work
from allocation.unit_of_work import Busy, DjangoUnitOfWork, Unavailable, classify
from domain.exceptions import OutOfStock
from domain.model import Batch, OrderLine
from tests.factories import tick
from tests.integration.helpers import held_open

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("no_backoff")]


class FakePgError(Exception):
    def __init__(self, pgcode):
        super().__init__(f"pgcode {pgcode}")
        self.pgcode = pgcode


def db_error(pgcode=None, message="boom") -> OperationalError:
    error = OperationalError(message)
    if pgcode is not None:
        error.__cause__ = FakePgError(pgcode)
    return error


def test_commit_writes_the_product():
    uow = DjangoUnitOfWork()
    with uow:
        product = uow.products.get_or_create("SOFA", now=tick(0))
        product.add_batch(Batch("s1", "SOFA", 5, created_at=tick(0)), now=tick(0))
        uow.commit()
    assert orm.Batch.objects.filter(reference="s1", purchased_quantity=5).exists()


def test_leaving_without_commit_rolls_back():
    services.add_batch(reference="s1", sku="SOFA", purchased_quantity=5)
    uow = DjangoUnitOfWork()
    with uow:
        product = uow.products.get("SOFA", order_id="o1")
        product.allocate(OrderLine("o1", "SOFA", 2), now=tick(1))
    assert orm.OrderLine.objects.count() == 0
    assert orm.Batch.objects.get(reference="s1").allocated_quantity == 0


def test_an_error_rolls_back_everything_written_so_far():
    services.add_batch(reference="s1", sku="SOFA", purchased_quantity=5)
    uow = DjangoUnitOfWork()
    with pytest.raises(OutOfStock), uow:
        product = uow.products.get("SOFA", order_id="o1")
        product.allocate(OrderLine("o1", "SOFA", 2), now=tick(1))
        uow.products.flush()  # written inside the transaction...
        product.allocate(OrderLine("o2", "SOFA", 9), now=tick(2))  # ...then a rule refuses
    assert orm.OrderLine.objects.count() == 0
    assert orm.Batch.objects.get(reference="s1").allocated_quantity == 0


@pytest.mark.parametrize(
    ("error", "kind"),
    [
        (db_error("40001"), "conflict"),
        (db_error("40P01"), "conflict"),
        (db_error("55P03"), "conflict"),
        (db_error(message="database is locked"), "conflict"),
        (db_error(message="server closed the connection unexpectedly"), "connection"),
        (db_error("23505"), None),
    ],
)
def test_classifies_database_errors(error, kind):
    assert classify(error) == kind


def retrying_use_case(errors):
    calls = []

    def use_case():
        calls.append(1)
        if errors:
            raise errors.pop(0)
        return "done"

    return use_case, calls


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("pgcode", ["40001", "40P01"])
def test_transient_conflicts_are_retried_then_succeed(pgcode):
    use_case, calls = retrying_use_case([db_error(pgcode), db_error(pgcode)])
    assert DjangoUnitOfWork().run(use_case) == "done"
    assert len(calls) == 3


@pytest.mark.django_db(transaction=True)
def test_a_lost_connection_is_retried_on_a_new_connection():
    use_case, calls = retrying_use_case([db_error(message="connection already closed")])
    assert DjangoUnitOfWork().run(use_case) == "done"
    assert len(calls) == 2


@pytest.mark.django_db(transaction=True)
def test_persistent_conflicts_give_busy_after_bounded_attempts():
    errors = [db_error("40001") for _ in range(10)]
    use_case, calls = retrying_use_case(errors)
    with pytest.raises(Busy):
        DjangoUnitOfWork().run(use_case)
    assert len(calls) == unit_of_work.MAX_ATTEMPTS


@pytest.mark.django_db(transaction=True)
def test_an_unreachable_database_gives_unavailable():
    errors = [db_error(message="could not connect to server") for _ in range(10)]
    use_case, calls = retrying_use_case(errors)
    with pytest.raises(Unavailable):
        DjangoUnitOfWork().run(use_case)
    assert len(calls) == unit_of_work.MAX_CONNECTION_ATTEMPTS


def test_no_retry_inside_an_outer_transaction():
    use_case, calls = retrying_use_case([db_error("40001")])
    with pytest.raises(OperationalError), transaction.atomic():
        DjangoUnitOfWork().run(use_case)
    assert len(calls) == 1


def test_other_errors_are_not_retried():
    use_case, calls = retrying_use_case([ValueError("bug")])
    with pytest.raises(ValueError):
        DjangoUnitOfWork().run(use_case)
    assert len(calls) == 1


def test_busy_and_unavailable_reach_api_clients_as_503(api, monkeypatch):
    def busy(**kwargs):
        raise Busy()

    monkeypatch.setattr(services, "allocate", busy)
    response = api.post("/api/allocations/", {"order_id": "o", "sku": "S", "qty": 1}, format="json")
    assert response.status_code == 503
    assert response.json()["code"] == "busy"

    def unavailable(**kwargs):
        raise Unavailable()

    monkeypatch.setattr(services, "allocate", unavailable)
    response = api.post("/api/allocations/", {"order_id": "o", "sku": "S", "qty": 1}, format="json")
    assert response.status_code == 503
    assert response.json() == {
        "detail": "The database cannot be reached; please retry shortly.",
        "code": "unavailable",
    }


# A repeated allocation reads the line in the statement that loads the
# batches, after the SKU's lock: one pass, no second run of the use case.
# Outside any test transaction, so that the unit of work owns a real
# transaction as it does in a request.


def same_line(a, b) -> bool:
    fields = ("line", "status", "parts", "requested_at")
    return all(getattr(a, name) == getattr(b, name) for name in fields)


@pytest.mark.django_db(transaction=True)
def test_a_repeat_is_answered_from_the_line_read_with_the_batches_in_one_transaction():
    services.add_batch(reference="r1", sku="RUG", purchased_quantity=10)
    first = services.allocate(order_id="o1", sku="RUG", qty=4)

    with CaptureQueriesContext(connection) as queries:
        again = services.allocate(order_id="o1", sku="RUG", qty=4)

    assert (first.created, again.created) == (True, False)
    assert same_line(again.allocation, first.allocation)
    assert not connection.in_atomic_block
    assert orm.Batch.objects.get(reference="r1").allocated_quantity == 4
    assert orm.OrderLine.objects.filter(order_id="o1").count() == 1
    # One transaction, the SKU locked once: BEGIN, lock, the batches and the
    # line in one statement, and ROLLBACK: nothing to write, nothing to commit.
    # On PostgreSQL the lock and that statement share one round trip.
    round_trips = [q["sql"] for q in queries.captured_queries]
    statements = [part for sql in round_trips for part in sql.split("; ")]
    assert len(statements) == 4, statements
    assert len(round_trips) == (3 if connection.vendor == "postgresql" else 4), round_trips
    assert [s.split()[0] for s in statements if s.startswith(("BEGIN", "ROLLBACK", "COMMIT"))] == [
        "BEGIN",
        "ROLLBACK",
    ]


@pytest.mark.django_db(transaction=True)
def test_a_repeat_after_stock_ran_out_is_answered_from_the_line():
    services.add_batch(reference="r1", sku="RUG", purchased_quantity=4)
    first = services.allocate(order_id="o1", sku="RUG", qty=4)
    with pytest.raises(OutOfStock):
        services.allocate(order_id="o2", sku="RUG", qty=1)

    again = services.allocate(order_id="o1", sku="RUG", qty=4)

    assert again.created is False
    assert same_line(again.allocation, first.allocation)
    assert not connection.in_atomic_block
    assert orm.Batch.objects.get(reference="r1").allocated_quantity == 4


@pytest.mark.django_db(transaction=True)
def test_a_unit_of_work_used_again_locks_again_in_each_transaction(
    monkeypatch,
):
    from allocation.repository import DjangoProductRepository

    locked_rows = []
    lock_row = DjangoProductRepository._lock_row

    def counting(self, sku, *args, **kwargs):
        locked_rows.append(sku)
        return lock_row(self, sku, *args, **kwargs)

    monkeypatch.setattr(DjangoProductRepository, "_lock_row", counting)
    services.add_batch(reference="r1", sku="RUG", purchased_quantity=10)
    locked_rows.clear()
    uow = DjangoUnitOfWork()

    services.allocate(order_id="o1", sku="RUG", qty=1, uow=uow)
    repeat = services.allocate(order_id="o1", sku="RUG", qty=1, uow=uow)
    assert repeat.created is False
    assert locked_rows == ["RUG", "RUG"]  # one lock per use case: the repeat runs once

    services.allocate(order_id="o2", sku="RUG", qty=1, uow=uow)

    assert locked_rows == ["RUG", "RUG", "RUG"]  # a new transaction, locked anew
    assert not connection.in_atomic_block
    assert orm.Batch.objects.get(reference="r1").allocated_quantity == 2


@pytest.mark.postgres_only
@pytest.mark.skipif(connection.vendor != "postgresql", reason="needs PostgreSQL")
@pytest.mark.django_db(transaction=True)
def test_a_new_line_costs_three_statements_between_begin_and_commit_on_postgresql():
    services.add_batch(reference="r1", sku="RUG", purchased_quantity=10)

    with CaptureQueriesContext(connection) as queries:
        outcome = services.allocate(order_id="o1", sku="RUG", qty=4)

    assert outcome.created is True
    assert orm.Batch.objects.get(reference="r1").allocated_quantity == 4
    # BEGIN, the SKU's lock, the batches with the line (none yet), one write of
    # the line with its parts and the batch total, COMMIT. The lock and the
    # read share one round trip: four in all.
    round_trips = [q["sql"] for q in queries.captured_queries]
    statements = [part for sql in round_trips for part in sql.split("; ")]
    assert len(statements) == 5, statements
    assert (statements[0], statements[-1]) == ("BEGIN", "COMMIT")
    assert len(round_trips) == 4, round_trips
    assert round_trips[1].count("; ") == 1, round_trips


@pytest.mark.postgres_only
@pytest.mark.skipif(connection.vendor != "postgresql", reason="needs PostgreSQL")
@pytest.mark.django_db(transaction=True)
def test_requests_queued_on_the_lock_read_what_its_holder_committed():
    """The lock and the read share a round trip, but the read starts after the lock.

    Two requests wait for a SKU whose lock another transaction holds while
    it allocates. Once it commits, the repeat of its line must be answered
    from that line (200, nothing written) and the other must see the stock
    it took: a read from before the wait would insert the line twice or
    oversell the batch.
    """
    services.add_batch(reference="r1", sku="RUG", purchased_quantity=5)
    outcomes: dict[str, object] = {}

    def waiter(order_id: str, qty: int):
        try:
            outcomes[order_id] = services.allocate(order_id=order_id, sku="RUG", qty=qty)
        except OutOfStock as refused:
            outcomes[order_id] = refused
        finally:
            connections.close_all()

    waiters = [
        threading.Thread(target=waiter, args=("o1", 4)),
        threading.Thread(target=waiter, args=("o2", 2)),
    ]
    with held_open(lambda: services.allocate(order_id="o1", sku="RUG", qty=4)):
        for thread in waiters:
            thread.start()
        deadline = time.monotonic() + 30
        while _waiting_on_locks() < 2 and time.monotonic() < deadline:
            time.sleep(0.02)
        assert _waiting_on_locks() == 2
    for thread in waiters:
        thread.join(timeout=30)

    repeat = outcomes["o1"]
    assert isinstance(repeat, services.AllocationOutcome) and repeat.created is False
    assert [(p.batch_reference, p.qty) for p in repeat.allocation.parts] == [("r1", 4)]
    assert isinstance(outcomes["o2"], OutOfStock)
    assert orm.Batch.objects.get(reference="r1").allocated_quantity == 4
    assert list(orm.OrderLine.objects.values_list("order_id", flat=True)) == ["o1"]


def _waiting_on_locks() -> int:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM pg_stat_activity"
            " WHERE datname = current_database() AND wait_event_type = 'Lock'"
        )
        return cursor.fetchone()[0]
