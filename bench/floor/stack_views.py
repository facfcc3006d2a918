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

from django.db import IntegrityError, connection, transaction
from django.utils import timezone
from rest_framework.response import Response
from rest_framework.views import APIView

from allocation.db import prepared
from allocation.models import OrderLine
from bench.floor.views import LOCK_BATCHES

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


class StackAllocateView(APIView):
    """POST /api/allocations/ under the product's settings: token, permission, event."""

    # ModelWritePermissions reads the model off this: POST needs add_orderline.
    queryset = OrderLine.objects.none()

    def post(self, request):
        try:
            order_id = str(request.data["order_id"])
            sku = str(request.data["sku"])
            qty = int(request.data["qty"])
        except (KeyError, TypeError, ValueError):
            return Response({"detail": "order_id, sku and qty are required"}, status=400)
        now = timezone.now()
        try:
            with transaction.atomic(), connection.cursor() as cursor:
                cursor.execute(*prepared(LOCK_BATCHES, [sku]))
                chosen = next(((i, ref) for i, ref, free in cursor.fetchall() if free >= qty), None)
                if chosen is None:
                    return Response({"code": "out_of_stock"}, status=409)
                batch_id, reference = chosen
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
        except IntegrityError:
            return Response({"code": "line_conflict"}, status=409)
        body = {
            "order_id": order_id,
            "sku": sku,
            "qty": qty,
            "status": "allocated",
            "batches": [{"reference": reference, "qty": qty}],
            "requested_at": now,
        }
        return Response(body, status=201)
