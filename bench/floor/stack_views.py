"""The floor inside the product's stack: the bare allocation plus what the SPEC adds.

What the SPEC adds to the bare allocation of ``bench.floor.views``, and
nothing of the product's own design: the product's settings (its
middleware; DRF's authentication, permission, parser, renderer and
negotiation classes, so the same token statement and the same add_orderline
check) and the line_allocated event of SPEC 6, written in the same
transaction. The line, its part, the batch and the event go in one
statement, so this floor pays three statements (token, lock, write) against
the product's four. It leaves out the product's domain layer, service, unit
of work and repository, its reading of the line before deciding (the
idempotent 200 of a repeat), splitting, and the feed's reservation: the cost
of the design, which is what the product is compared on against this floor.
"""

import json
import uuid

from allocation.db import prepared
from allocation.models import OrderLine
from bench.floor.views import AllocateView

WRITE_WITH_EVENT = """
    WITH line AS (
        INSERT INTO allocation_orderline (order_id, sku, qty, status, requested_at, allocated_at)
        VALUES (%s, %s, %s, 'allocated', %s, %s)
        RETURNING id
    ), part AS (
        INSERT INTO allocation_allocation (line_id, batch_id, qty) SELECT id, %s, %s FROM line
    ), batch AS (
        UPDATE allocation_batch SET allocated_quantity = allocated_quantity + %s WHERE id = %s
    ), event AS (
        INSERT INTO allocation_event
            (type, sku, sku_seq, occurred_at, actor, source, txn, order_id, data)
        SELECT 'line_allocated', %s, COALESCE(MAX(sku_seq), 0) + 1, %s, %s, 'api', %s, %s,
               %s::jsonb
        FROM allocation_event WHERE sku = %s
    )
    SELECT id FROM line
"""


class StackAllocateView(AllocateView):
    """POST /api/allocations/ under the product's settings: token, permission, event."""

    # ModelWritePermissions reads the model off this: POST needs add_orderline.
    queryset = OrderLine.objects.none()

    def write(self, cursor, request, order_id, sku, qty, batch_id, reference, now) -> None:
        """The line, its part, the batch and the line_allocated event, in one statement."""
        data = {
            "order_id": order_id,
            "qty": qty,
            "batches": [{"reference": reference, "qty": qty}],
            "previous_status": None,
        }
        params = [order_id, sku, qty, now, now, batch_id, qty, qty, batch_id]
        params += [sku, now, request.user.get_username(), uuid.uuid4().hex, order_id]
        params += [json.dumps(data, separators=(",", ":")), sku]
        cursor.execute(*prepared(WRITE_WITH_EVENT, params))
