"""The log is complete from the start (SPEC 6.3): a database migrated with batches and
lines already in it gets one ``batch_created`` per batch and one ``line_allocated``
(``line_backordered`` for a backorder) per line, ``source: "migration"``, all sharing
one transaction. A fresh database has nothing to write.

Per SKU, batches come first in creation order, then lines in request order, so
``sku_seq`` replays as the state was built (ids: every batch, then every line).
Rows are read and written in chunks; only each line's parts (reference, qty)
are held in memory between the two passes.
"""

import uuid

from django.db import migrations
from django.db.models import F
from django.utils import timezone

CHUNK = 5000


def write_baseline(apps, schema_editor):
    using = schema_editor.connection.alias
    Batch = apps.get_model("allocation", "Batch")
    OrderLine = apps.get_model("allocation", "OrderLine")
    Allocation = apps.get_model("allocation", "Allocation")
    Event = apps.get_model("allocation", "Event")
    if Event.objects.using(using).exists():
        return
    transaction, now = uuid.uuid4().hex, timezone.now()
    seq: dict[str, int] = {}
    pending = []

    def add(sku, type_, data, order_id=None):
        seq[sku] = seq.get(sku, 0) + 1
        pending.append(
            Event(
                type=type_,
                sku=sku,
                sku_seq=seq[sku],
                occurred_at=now,
                actor=None,
                source="migration",
                transaction=transaction,
                order_id=order_id,
                data=data,
            )
        )
        if len(pending) >= CHUNK:
            Event.objects.using(using).bulk_create(pending)
            pending.clear()

    batches = (
        Batch.objects.using(using)
        .order_by("product_id", "created_at", "reference")
        .values_list("product_id", "reference", "purchased_quantity", "eta")
    )
    for sku, reference, purchased, eta in batches.iterator(chunk_size=CHUNK):
        data = {
            "reference": reference,
            "purchased_quantity": purchased,
            "eta": None if eta is None else eta.isoformat(),
        }
        add(sku, "batch_created", data)

    # Each line's parts in preference order (SPEC 1.1 rule 1), one row per part.
    parts = (
        Allocation.objects.using(using)
        .order_by(
            "line__product_id",
            "line__requested_at",
            "line__order_id",
            F("batch__eta").asc(nulls_first=True),
            "batch__created_at",
            "batch__reference",
        )
        .values_list("line_id", "batch__reference", "qty")
    )
    placed: dict[int, list] = {}
    for line_id, reference, qty in parts.iterator(chunk_size=CHUNK):
        placed.setdefault(line_id, []).append({"reference": reference, "qty": qty})
    lines = (
        OrderLine.objects.using(using)
        .order_by("product_id", "requested_at", "order_id")
        .values_list("id", "product_id", "order_id", "qty")
    )
    for line_id, sku, order_id, qty in lines.iterator(chunk_size=CHUNK):
        batches_of_line = placed.get(line_id, [])
        if batches_of_line:
            data = {
                "order_id": order_id,
                "qty": qty,
                "batches": batches_of_line,
                "previous_status": None,
            }
            add(sku, "line_allocated", data, order_id)
        else:
            add(
                sku,
                "line_backordered",
                {"order_id": order_id, "qty": qty, "previous_batches": []},
                order_id,
            )
    if pending:
        Event.objects.using(using).bulk_create(pending)


class Migration(migrations.Migration):
    dependencies = [("allocation", "0004_event_permissions")]

    operations = [migrations.RunPython(write_baseline, migrations.RunPython.noop)]
