"""A bulk command on a busy database: one line saying so and to run it again, nothing written.

The commands do not retry (one long transaction would be redone unasked);
README "Retries: what each door does" states each door's behaviour.
"""

from __future__ import annotations

import pytest
from django.db import OperationalError, connection

from allocation import models as orm
from allocation import services
from tests.integration.cmd_support import csv_text, fail, write

pytestmark = pytest.mark.django_db


def is_write(sql: str) -> bool:
    """A statement that writes; an ``EXECUTE`` of a prepared one is judged by its text."""
    text = sql.lstrip().upper()
    if text.startswith("EXECUTE"):
        name = text.split()[1].split("(")[0].lower()
        prepared = getattr(connection, "prepared_statements", {})
        text = {v: k for k, v in prepared.items()}.get(name, "").lstrip().upper()
    return text.startswith(("INSERT", "UPDATE", "COPY")) or "INSERT INTO" in text


def locked_at_first_write(execute, sql, params, many, context):
    if is_write(sql):
        raise OperationalError("database is locked")
    return execute(sql, params, many, context)


def test_load_batches_on_a_busy_database_says_run_again_and_writes_nothing(tmp_path):
    services.add_batch(reference="b1", sku="RED", purchased_quantity=10)
    path = write(
        tmp_path,
        "b.csv",
        csv_text("reference,sku,purchased_quantity,eta", "b1,RED,20,", "n1,NEW,5,"),
    )

    with connection.execute_wrapper(locked_at_first_write):
        error, result = fail("load_batches", path)

    assert str(error) == (
        "database busy: database is locked; nothing was written. Run the command again."
    )
    assert error.returncode == 1
    assert result.stdout == ""
    assert list(orm.Batch.objects.values_list("reference", "purchased_quantity")) == [("b1", 10)]


def test_allocate_orders_on_a_busy_database_says_run_again_and_writes_nothing(tmp_path):
    services.add_batch(reference="b1", sku="RED", purchased_quantity=10)
    orders = write(tmp_path, "o.csv", csv_text("order_id,sku,qty", "o1,RED,2", "o2,RED,3"))
    report = tmp_path / "report.csv"

    with connection.execute_wrapper(locked_at_first_write):
        error, result = fail("allocate_orders", orders, report=str(report))

    assert str(error) == (
        "database busy: database is locked; nothing was written. Run the command again."
    )
    assert result.stdout == ""
    assert orm.OrderLine.objects.count() == 0
    assert orm.Batch.objects.get(reference="b1").allocated_quantity == 0
    assert not report.exists()


def test_a_lost_connection_is_still_a_database_error_not_busy(tmp_path):
    def lost(execute, sql, params, many, context):
        if is_write(sql):
            raise OperationalError("server closed the connection unexpectedly")
        return execute(sql, params, many, context)

    path = write(tmp_path, "b.csv", csv_text("reference,sku,purchased_quantity,eta", "n1,NEW,5,"))

    with connection.execute_wrapper(lost):
        error, _ = fail("load_batches", path)

    assert str(error) == (
        "database error: server closed the connection unexpectedly; nothing was written."
    )
    assert orm.Batch.objects.count() == 0
