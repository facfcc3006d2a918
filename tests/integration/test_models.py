"""Schema facts the rules depend on, checked against the real database."""

import pytest
from django.db import IntegrityError, connection, transaction

from allocation import models as orm
from tests.factories import BatchRowFactory, ProductFactory

pytestmark = pytest.mark.django_db

MIXED = ["b-2", "B1", "b_1", "a:9", "A-10", "a.1", "Z9", "z0", "0x"]


def test_identifiers_sort_like_python_strings_on_every_engine():
    # The domain breaks ties by reference with str comparison; SQL lists,
    # cursors and exports must agree, whatever the server's locale.
    product = ProductFactory(sku="MIXED")
    for reference in MIXED:
        BatchRowFactory(reference=reference, product=product)
    listed = list(orm.Batch.objects.order_by("reference").values_list("reference", flat=True))
    assert listed == sorted(MIXED)
    assert listed[:3] == ["0x", "A-10", "B1"]


def test_identifier_columns_use_the_c_collation_on_postgresql():
    if connection.vendor != "postgresql":
        assert connection.vendor == "sqlite"  # BINARY comparison is SQLite's default
        return
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT table_name, column_name, collation_name FROM information_schema.columns "
            "WHERE table_name LIKE 'allocation_%%' "
            "AND column_name IN ('sku', 'reference', 'order_id') "
            "ORDER BY table_name, column_name"
        )
        rows = cursor.fetchall()
    assert rows == [
        ("allocation_batch", "reference", "C"),
        ("allocation_batch", "sku", "C"),
        ("allocation_event", "order_id", "C"),
        ("allocation_event", "sku", "C"),
        ("allocation_orderline", "order_id", "C"),
        ("allocation_orderline", "sku", "C"),
        ("allocation_product", "sku", "C"),
    ]


def test_the_database_refuses_an_over_allocated_batch():
    batch = BatchRowFactory(purchased_quantity=5, allocated_quantity=5)
    with pytest.raises(IntegrityError), transaction.atomic():
        orm.Batch.objects.filter(id=batch.id).update(allocated_quantity=6)
    with pytest.raises(IntegrityError), transaction.atomic():
        orm.Batch.objects.filter(id=batch.id).update(allocated_quantity=-1)
    assert orm.Batch.objects.get(id=batch.id).allocated_quantity == 5


def test_batch_references_are_unique_across_skus():
    BatchRowFactory(reference="same", product=ProductFactory(sku="ONE"))
    with pytest.raises(IntegrityError), transaction.atomic():
        BatchRowFactory(reference="same", product=ProductFactory(sku="TWO"))
