"""batch_with_stock_idx: a SKU's batches with stock, now in preference order (rule 1).

The index was on the SKU alone. Bulk allocation ranks each SKU's batches with
stock in preference order to find the few that decide where its lines go
(``allocation.repository.products._MANY_SQL``); with the index in that order
PostgreSQL walks it instead of sorting every such batch of the SKU. Rule 1
puts a batch without eta (in stock) first: PostgreSQL's ascending index puts
NULL last unless told, and SQLite, which puts it first anyway, cannot parse
``NULLS FIRST`` in an index, hence SQL per engine rather than a Meta index.
The index stays partial, so used-up batches never enter it.
"""

from django.db import migrations

INDEX = "batch_with_stock_idx"
COLUMNS = {
    "postgresql": "sku, eta ASC NULLS FIRST, created_at, reference",
    "sqlite": "sku, eta ASC, created_at, reference",
}


def create_index(apps, schema_editor):
    columns = COLUMNS[schema_editor.connection.vendor]
    schema_editor.execute(
        f"CREATE INDEX {INDEX} ON allocation_batch ({columns}) "
        "WHERE allocated_quantity < purchased_quantity"
    )


def drop_index(apps, schema_editor):
    schema_editor.execute(f"DROP INDEX IF EXISTS {INDEX}")


class Migration(migrations.Migration):
    dependencies = [
        ("allocation", "0007_webhook_permissions"),
    ]

    operations = [
        migrations.RemoveIndex(model_name="batch", name=INDEX),
        migrations.RunPython(create_index, drop_index),
    ]
