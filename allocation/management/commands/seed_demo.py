"""Load a small demo data set, idempotently, through the service layer.

Batches whose reference exists are left alone; allocations are repeated with
the same quantity, which the service treats as a no-op (rule 6). So running
this again after a restart changes nothing, and never bypasses the domain.
"""

from __future__ import annotations

import datetime

from django.core.management.base import BaseCommand
from django.utils import timezone

from allocation import models as orm
from allocation import services
from domain.exceptions import LineConflict, OutOfStock

# (reference, sku, purchased_quantity, eta in days from today or None = in stock)
DEMO_BATCHES: list[tuple[str, str, int, int | None]] = [
    ("DEMO-RED-CHAIR-STOCK", "RED-CHAIR", 20, None),
    ("DEMO-RED-CHAIR-IN-1", "RED-CHAIR", 50, 7),
    ("DEMO-RED-CHAIR-IN-2", "RED-CHAIR", 30, 21),
    ("DEMO-BLUE-TABLE-STOCK", "BLUE-TABLE", 10, None),
    ("DEMO-BLUE-TABLE-IN-1", "BLUE-TABLE", 8, 14),
    ("DEMO-GREEN-LAMP-STOCK", "GREEN-LAMP", 100, None),
    ("DEMO-GREEN-LAMP-IN-1", "GREEN-LAMP", 40, 10),
    ("DEMO-YELLOW-SOFA-STOCK", "YELLOW-SOFA", 2, None),
    ("DEMO-YELLOW-SOFA-IN-1", "YELLOW-SOFA", 10, 21),
]

# (order_id, sku, qty), allocated in this order.
DEMO_LINES: list[tuple[str, str, int]] = [
    ("DEMO-ORDER-1001", "RED-CHAIR", 5),  # whole, from stock
    ("DEMO-ORDER-1001", "GREEN-LAMP", 3),
    ("DEMO-ORDER-1002", "BLUE-TABLE", 12),  # no batch covers 12: split, 10 stock + 2 inbound
    ("DEMO-ORDER-1003", "RED-CHAIR", 8),
    ("DEMO-ORDER-1004", "YELLOW-SOFA", 4),  # stock holds 2: whole, from the shipment
]


class Command(BaseCommand):
    help = "Load a small demo data set (batches and allocations); safe to run repeatedly."

    def handle(self, *args: object, **options: object) -> None:
        today = timezone.localdate()
        created = existing = 0
        for reference, sku, quantity, days in DEMO_BATCHES:
            if orm.Batch.objects.filter(reference=reference).exists():
                existing += 1
                continue
            eta = None if days is None else today + datetime.timedelta(days=days)
            services.add_batch(reference=reference, sku=sku, purchased_quantity=quantity, eta=eta)
            created += 1

        allocated = already = skipped = 0
        for order_id, sku, qty in DEMO_LINES:
            try:
                outcome = services.allocate(order_id=order_id, sku=sku, qty=qty)
            except (OutOfStock, LineConflict) as error:
                # The demo data was changed by hand since the last run: keep the
                # user's version rather than fight it.
                skipped += 1
                self.stderr.write(f"skipped {order_id}/{sku}: {error}")
                continue
            if outcome.created:
                allocated += 1
            else:
                already += 1

        self.stdout.write(
            f"demo data: batches {created} created, {existing} already present; "
            f"order lines {allocated} allocated, {already} already allocated, {skipped} skipped"
        )
