"""One bare allocation transaction per request: the floor the product is measured against.

In one transaction: lock the SKU's batches that have stock, in preference
order; take the first that covers the line; insert the line and its part;
add the quantity to that batch. Plain SQL on the product's own tables, no
authentication, no domain layer, no splitting, no idempotency check (the
unique constraint still refuses a repeat). It is what a minimal correct
implementation costs, and nothing more.

On Django's own PostgreSQL backend (the default) ``prepared`` leaves each
statement as it is; with ``FLOOR_PREPARED=1`` (``bench/perf.py
--floor-prepared``) the floor runs on the product's backend and prepares them
once per connection, as the product does.
"""

from django.db import IntegrityError, connection, transaction
from django.http import HttpResponse
from django.utils import timezone
from rest_framework.response import Response
from rest_framework.views import APIView

from allocation.db import prepared

LOCK_BATCHES = """
    SELECT id, reference, purchased_quantity - allocated_quantity
    FROM allocation_batch
    WHERE sku = %s AND allocated_quantity < purchased_quantity
    ORDER BY eta ASC NULLS FIRST, created_at, reference
    FOR UPDATE
"""
INSERT_LINE = """
    INSERT INTO allocation_orderline (order_id, sku, qty, status, requested_at, allocated_at)
    VALUES (%s, %s, %s, 'allocated', %s, %s)
    RETURNING id
"""
INSERT_PART = "INSERT INTO allocation_allocation (line_id, batch_id, qty) VALUES (%s, %s, %s)"
ADD_TO_BATCH = (
    "UPDATE allocation_batch SET allocated_quantity = allocated_quantity + %s WHERE id = %s"
)


class AllocateView(APIView):
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
                self.write(cursor, request, order_id, sku, qty, batch_id, reference, now)
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

    def write(self, cursor, request, order_id, sku, qty, batch_id, reference, now) -> None:
        """Insert the line and its part, add to the batch."""
        cursor.execute(*prepared(INSERT_LINE, [order_id, sku, qty, now, now]))
        (line_id,) = cursor.fetchone()
        cursor.execute(*prepared(INSERT_PART, [line_id, batch_id, qty]))
        cursor.execute(*prepared(ADD_TO_BATCH, [qty, batch_id]))


def healthz(request):
    return HttpResponse(b'{"status": "ok"}', content_type="application/json")
