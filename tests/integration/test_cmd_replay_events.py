"""manage.py replay_events --check (SPEC 6.3): the log alone rebuilds the stored state."""

from datetime import date

import pytest

from allocation import models as orm
from allocation import services
from tests.integration.cmd_support import fail, run

pytestmark = pytest.mark.django_db


@pytest.fixture
def history():
    """Every kind of event over two SKUs."""
    services.add_batch(reference="b1", sku="A", purchased_quantity=10)
    services.add_batch(reference="b2", sku="A", purchased_quantity=10, eta=date(2027, 1, 10))
    services.allocate(order_id="o1", sku="A", qty=8)
    services.allocate(order_id="o2", sku="A", qty=6)
    services.change_batch(reference="b1", purchased_quantity=4)  # o1 moves, split
    services.change_batch(reference="b2", purchased_quantity=20)
    services.allocate(order_id="o3", sku="A", qty=1)
    services.deallocate(order_id="o3", sku="A")
    services.add_batch(reference="c1", sku="C", purchased_quantity=3)
    services.allocate(order_id="o1", sku="C", qty=3)
    services.delete_batch(reference="c1")  # o1 of C backordered
    services.add_batch(reference="c2", sku="C", purchased_quantity=1)


def test_a_log_written_by_the_services_replays_to_the_stored_state(history):
    result = run("replay_events", "--check")

    count = orm.Event.objects.count()
    assert result.stdout == f"ok: {count} events, 2 skus\n"
    assert set(orm.Event.objects.values_list("type", flat=True)) == {
        "batch_created",
        "batch_changed",
        "batch_deleted",
        "line_allocated",
        "line_moved",
        "line_backordered",
        "line_deallocated",
    }


def test_a_change_written_behind_the_log_is_reported(history):
    orm.Batch.objects.filter(reference="b2").update(purchased_quantity=25)
    orm.OrderLine.objects.filter(order_id="o1", product_id="C").delete()

    error, result = fail("replay_events", "--check")

    assert result.stdout.splitlines() == [
        "A: batch b2: stored (25, '2027-01-10'), events say (20, '2027-01-10')",
        "C: line o1: stored nothing, events say (3, [])",
    ]
    assert str(error).startswith("2 differences:")


def test_without_check_it_refuses():
    error, _ = fail("replay_events")

    assert "--check" in str(error)
