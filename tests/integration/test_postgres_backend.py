"""Our PostgreSQL backend (allocation.db.postgresql): the health check and prepared statements.

PostgreSQL only: SQLite uses Django's own backend (its driver keeps compiled
statements itself, and there is no server to lose).
"""

import time
from datetime import date

import psycopg2
import pytest
from django.conf import settings
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext

from allocation import services
from allocation.db import prepared
from allocation.models import Allocation, Batch

pytestmark = [
    pytest.mark.postgres_only,
    pytest.mark.skipif(connection.vendor != "postgresql", reason="needs PostgreSQL"),
    pytest.mark.django_db(transaction=True),
]


def backend_pid() -> int:
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        return cursor.fetchone()[0]


def terminate(pid: int) -> None:
    """Terminate a backend from a connection of our own, as a server restart would."""
    db = settings.DATABASES["default"]
    other = psycopg2.connect(
        dbname=connection.settings_dict["NAME"],
        user=db["USER"],
        password=db["PASSWORD"],
        host=db["HOST"],
        port=db["PORT"] or 5432,
    )
    try:
        other.autocommit = True
        with other.cursor() as cursor:
            cursor.execute("SELECT pg_terminate_backend(%s)", [pid])
    finally:
        other.close()


def test_a_healthy_idle_connection_passes_the_check_without_a_query():
    backend_pid()
    with CaptureQueriesContext(connection) as queries:
        assert connection.is_usable() is True
    assert len(queries) == 0
    assert connection.settings_dict["ENGINE"] == "allocation.db.postgresql"


def test_a_connection_the_server_terminated_fails_the_check_and_is_replaced():
    pid = backend_pid()
    terminate(pid)
    deadline = time.monotonic() + 5
    while connection.is_usable() and time.monotonic() < deadline:
        time.sleep(0.01)
    assert connection.is_usable() is False

    # What Django does at the start of a request: drop it, then connect anew.
    connection.health_check_done = False
    connection.close_if_health_check_failed()
    assert connection.connection is None
    assert backend_pid() != pid


def test_a_statement_is_prepared_once_per_connection_and_executed_by_name():
    sql = "SELECT %s::int + %s::int"

    first, params = prepared(sql, [2, 3])
    second, _ = prepared(sql, [4, 5])

    assert first == second
    assert first.startswith("EXECUTE allocation_") and first.endswith("(%s, %s)")
    assert params == [2, 3]
    with connection.cursor() as cursor:
        cursor.execute(first, params)
        assert cursor.fetchone() == (5,)
        cursor.execute(
            "SELECT count(*) FROM pg_prepared_statements WHERE statement LIKE %s",
            ["%$1::int + $2::int"],
        )
        assert cursor.fetchone() == (1,)


def test_a_new_connection_prepares_its_statements_again():
    sql = "SELECT %s::text || 'x'"
    name, params = prepared(sql, ["a"])
    connection.close()

    again, params = prepared(sql, ["b"])

    assert again != name
    with connection.cursor() as cursor:
        cursor.execute(again, params)
        assert cursor.fetchone() == ("bx",)


def test_prepared_statements_survive_a_rolled_back_transaction():
    sql = "SELECT %s::int * 2"
    with pytest.raises(ZeroDivisionError), transaction.atomic():
        name, params = prepared(sql, [21])
        raise ZeroDivisionError
    with connection.cursor() as cursor:
        cursor.execute(*prepared(sql, [21]))
        assert cursor.fetchone() == (42,)
    assert prepared(sql, [1])[0] == name


def test_a_connection_plans_each_prepared_statement_once_even_the_allocation_write():
    services.add_batch(reference="b-plan", sku="PLAN", purchased_quantity=100)
    connection.close()
    for n in range(8):
        services.allocate(order_id=f"o-{n}", sku="PLAN", qty=1)

    with connection.cursor() as cursor:
        cursor.execute("SHOW plan_cache_mode")
        assert cursor.fetchone() == ("force_generic_plan",)
        cursor.execute(
            "SELECT generic_plans, custom_plans FROM pg_prepared_statements "
            "WHERE statement LIKE %s",
            ["%INSERT INTO allocation_orderline%"],
        )
        # Left to itself PostgreSQL chose a custom plan, re-planned, every time.
        assert cursor.fetchall() == [(8, 0)]


def test_a_line_on_one_batch_is_written_in_scalars_and_a_split_line_in_arrays():
    """The allocate path's usual write is the scalar statement; other shapes take the array one."""
    services.add_batch(reference="b-one", sku="FORM", purchased_quantity=4)
    services.add_batch(reference="b-two", sku="FORM", purchased_quantity=10, eta=date(2027, 1, 1))
    connection.close()
    for n in range(3):
        services.allocate(order_id=f"o-{n}", sku="FORM", qty=1)
    # No batch holds 11 (b-one has 1 left, b-two 10): the line is split.
    services.allocate(order_id="o-split", sku="FORM", qty=11)

    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT statement LIKE %s, generic_plans FROM pg_prepared_statements "
            "WHERE statement LIKE %s ORDER BY 1",
            ["%unnest(%", "%INSERT INTO allocation_orderline%"],
        )
        # (uses arrays, executions): three by the scalar form, one by the array form.
        assert cursor.fetchall() == [(False, 3), (True, 1)]
    written = Allocation.objects.filter(line__order_id__in=["o-0", "o-split"])
    assert sorted(written.values_list("line__order_id", "batch__reference", "qty")) == [
        ("o-0", "b-one", 1),
        ("o-split", "b-one", 1),
        ("o-split", "b-two", 10),
    ]
    assert list(Batch.objects.order_by("reference").values_list("allocated_quantity")) == [
        (4,),
        (10,),
    ]


def test_without_prepared_statements_a_connection_keeps_the_servers_plan_cache_mode():
    """Behind a pooler in transaction mode: no session state of ours at all."""
    connection.close()
    before = connection.settings_dict["PREPARED_STATEMENTS"]
    connection.settings_dict["PREPARED_STATEMENTS"] = False
    try:
        with connection.cursor() as cursor:
            cursor.execute("SHOW plan_cache_mode")
            assert cursor.fetchone() == ("auto",)
    finally:
        connection.settings_dict["PREPARED_STATEMENTS"] = before
        connection.close()
