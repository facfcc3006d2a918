"""export_allocations: the pick list, one CSV row per part, streamed.

Rows come from one query in the order the SPEC fixes (order_id, sku, then
the parts in preference order, as the API lists a line's batches), read
through ``QuerySet.iterator`` (a server-side cursor on PostgreSQL), so memory
stays flat however many parts there are.
"""

from __future__ import annotations

import csv
from typing import TextIO

from django.db.models import F

from allocation import models as orm

COLUMNS = ("order_id", "sku", "qty", "batch_reference", "batch_eta")
CHUNK = 2000


def export_allocations(out: TextIO, *, order_id: str | None = None, sku: str | None = None) -> int:
    """Write the pick list CSV to ``out``; return the number of rows (parts) written."""
    parts = orm.Allocation.objects.all()
    if order_id is not None:
        parts = parts.filter(line__order_id=order_id)
    if sku is not None:
        parts = parts.filter(line__product_id=sku)
    rows = (
        parts.order_by(
            "line__order_id",
            "line__product_id",
            F("batch__eta").asc(nulls_first=True),
            "batch__created_at",
            "batch__reference",
        )
        .values_list("line__order_id", "line__product_id", "qty", "batch__reference", "batch__eta")
        .iterator(chunk_size=CHUNK)
    )
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(COLUMNS)
    count = 0
    buffer = []
    for line_order_id, line_sku, qty, reference, eta in rows:
        buffer.append((line_order_id, line_sku, qty, reference, eta.isoformat() if eta else ""))
        if len(buffer) == CHUNK:
            writer.writerows(buffer)
            count += len(buffer)
            buffer.clear()
    writer.writerows(buffer)
    return count + len(buffer)
