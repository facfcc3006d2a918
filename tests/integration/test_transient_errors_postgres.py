"""Real transient PostgreSQL errors, retried by the unit of work.

test_unit_of_work.py forces each case with fake errors; here PostgreSQL
raises them itself: a deadlock between two threads, a serialization failure
under SERIALIZABLE, and a connection terminated before commit. Each time
``DjangoUnitOfWork.run`` must start the use case over on its own and the work
must land exactly once. PostgreSQL only: SQLite has none of these errors (its
writers queue on one lock).
"""

import threading

import pytest
from django.db import connection, connections, transaction

from allocation import unit_of_work
from allocation.unit_of_work import Busy, DjangoUnitOfWork

pytestmark = [
    pytest.mark.postgres_only,
    pytest.mark.skipif(connection.vendor != "postgresql", reason="needs PostgreSQL"),
    pytest.mark.django_db(transaction=True),
]


@pytest.fixture(autouse=True)
def counters(db):
    with connection.cursor() as cursor:
        cursor.execute("CREATE TABLE IF NOT EXISTS uow_probe (name text PRIMARY KEY, n int)")
        cursor.execute("TRUNCATE uow_probe")
        cursor.execute("INSERT INTO uow_probe VALUES ('a', 0), ('b', 0)")
    yield
    with connection.cursor() as cursor:
        cursor.execute("DROP TABLE uow_probe")


def counter(name: str) -> int:
    with connection.cursor() as cursor:
        cursor.execute("SELECT n FROM uow_probe WHERE name = %s", [name])
        return cursor.fetchone()[0]


def execute(sql: str, params=()) -> list:
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.fetchall() if cursor.description else []


def in_threads(*works):
    """Run each ``work()`` in its own thread (own connection); return results or errors."""
    results: list = [None] * len(works)

    def run(i, work):
        try:
            results[i] = work()
        except Exception as error:  # noqa: BLE001 - handed back to the test
            results[i] = error
        finally:
            connections.close_all()

    threads = [threading.Thread(target=run, args=(i, w)) for i, w in enumerate(works)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    return results


def test_a_real_deadlock_is_retried_and_both_use_cases_land_once():
    barrier = threading.Barrier(2, timeout=10)
    attempts = {"ab": 0, "ba": 0}

    def use_case(first: str, second: str):
        def body():
            attempts[first + second] += 1
            with transaction.atomic():
                execute("UPDATE uow_probe SET n = n + 1 WHERE name = %s", [first])
                if attempts[first + second] == 1:
                    barrier.wait()  # both hold their first row: each now waits for the other's
                execute("UPDATE uow_probe SET n = n + 1 WHERE name = %s", [second])
            return "done"

        return lambda: DjangoUnitOfWork().run(body)

    results = in_threads(use_case("a", "b"), use_case("b", "a"))

    assert results == ["done", "done"]
    # PostgreSQL broke the deadlock by failing one; only that one ran again.
    assert sorted(attempts.values()) == [1, 2]
    assert (counter("a"), counter("b")) == (2, 2)


def test_a_real_serialization_failure_is_retried_without_losing_an_update():
    barrier = threading.Barrier(2, timeout=10)
    attempts = [0, 0]

    def use_case(i: int):
        def body():
            attempts[i] += 1
            with transaction.atomic():
                execute("SET TRANSACTION ISOLATION LEVEL SERIALIZABLE")
                (seen,) = execute("SELECT n FROM uow_probe WHERE name = 'a'")[0]
                if attempts[i] == 1:
                    barrier.wait()  # both have read the same value
                execute("UPDATE uow_probe SET n = %s WHERE name = 'a'", [seen + 1])
            return seen

        return lambda: DjangoUnitOfWork().run(body)

    results = in_threads(use_case(0), use_case(1))

    # One wrote 0 -> 1; the other failed (40001), started over, read 1 and wrote 2.
    assert sorted(results) == [0, 1]
    assert sorted(attempts) == [1, 2]
    assert counter("a") == 2


def test_a_connection_lost_before_commit_is_retried_on_a_new_connection():
    attempts = []

    def terminate(pid: int) -> None:
        # From another connection, as an administrator (or a failover) would.
        in_threads(lambda: execute("SELECT pg_terminate_backend(%s)", [pid]))

    def body():
        attempts.append(execute("SELECT pg_backend_pid()")[0][0])
        with transaction.atomic():
            execute("UPDATE uow_probe SET n = n + 1 WHERE name = 'a'")
            if len(attempts) == 1:
                terminate(attempts[0])
            execute("UPDATE uow_probe SET n = n + 1 WHERE name = 'b'")
        return "done"

    assert DjangoUnitOfWork().run(body) == "done"

    assert len(attempts) == 2
    assert attempts[0] != attempts[1]  # the retry ran on a fresh connection
    # The first attempt's half-done transaction died with its connection.
    assert (counter("a"), counter("b")) == (1, 1)


def test_a_conflict_that_never_clears_ends_in_busy(monkeypatch):
    monkeypatch.setattr(unit_of_work, "BACKOFF_SECONDS", 0)
    attempts = []

    def body():
        attempts.append(1)
        with transaction.atomic():
            execute("SET LOCAL lock_timeout = '50ms'")
            execute("SELECT n FROM uow_probe WHERE name = 'a' FOR UPDATE")
        return "done"

    # Another session holds the row lock for the whole time: every attempt
    # fails with lock_not_available (55P03), a transient conflict.
    holder_ready, release = threading.Event(), threading.Event()

    def hold():
        with transaction.atomic():
            execute("SELECT n FROM uow_probe WHERE name = 'a' FOR UPDATE")
            holder_ready.set()
            release.wait(timeout=30)

    holder = threading.Thread(target=lambda: in_threads(hold))
    holder.start()
    try:
        assert holder_ready.wait(timeout=10)
        with pytest.raises(Busy):
            DjangoUnitOfWork().run(body)
    finally:
        release.set()
        holder.join(timeout=30)

    assert len(attempts) == unit_of_work.MAX_ATTEMPTS
