"""Migration 0005: a database that held batches and lines before events gets a baseline."""

import importlib
from datetime import date
from types import SimpleNamespace

import pytest
from django.apps import apps as global_apps
from django.db import connection

from allocation import models as orm
from allocation import services

pytestmark = pytest.mark.django_db
migration = importlib.import_module("allocation.migrations.0005_baseline_events")


def test_existing_batches_and_lines_get_one_baseline_event_each():
    services.add_batch(reference="b1", sku="A", purchased_quantity=5)
    services.add_batch(reference="b2", sku="A", purchased_quantity=5, eta=date(2027, 1, 10))
    services.allocate(order_id="o1", sku="A", qty=7)
    services.change_batch(reference="b2", purchased_quantity=1)  # o1 backordered
    services.allocate(order_id="o2", sku="A", qty=3)
    services.add_batch(reference="c1", sku="C", purchased_quantity=2)
    orm.Event.objects.all().delete()  # as before events existed

    migration.write_baseline(global_apps, SimpleNamespace(connection=connection))

    rows = list(
        orm.Event.objects.order_by("sku", "sku_seq").values_list(
            "sku", "sku_seq", "type", "source", "data"
        )
    )
    assert rows == [
        (
            "A",
            1,
            "batch_created",
            "migration",
            {"reference": "b1", "purchased_quantity": 5, "eta": None},
        ),
        (
            "A",
            2,
            "batch_created",
            "migration",
            {"reference": "b2", "purchased_quantity": 1, "eta": "2027-01-10"},
        ),
        (
            "A",
            3,
            "line_backordered",
            "migration",
            {"order_id": "o1", "qty": 7, "previous_batches": []},
        ),
        (
            "A",
            4,
            "line_allocated",
            "migration",
            {
                "order_id": "o2",
                "qty": 3,
                "batches": [{"reference": "b1", "qty": 3}],
                "previous_status": None,
            },
        ),
        (
            "C",
            1,
            "batch_created",
            "migration",
            {"reference": "c1", "purchased_quantity": 2, "eta": None},
        ),
    ]
    assert len(set(orm.Event.objects.values_list("transaction", flat=True))) == 1
    # Events already there: it writes nothing again.
    migration.write_baseline(global_apps, SimpleNamespace(connection=connection))
    assert orm.Event.objects.count() == 5


def test_a_fresh_database_gets_no_baseline():
    migration.write_baseline(global_apps, SimpleNamespace(connection=connection))

    assert orm.Event.objects.count() == 0
