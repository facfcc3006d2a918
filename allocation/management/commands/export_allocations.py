"""Write the pick list: one CSV row per allocated part (SPEC 3).

The rows stream from ``selectors.pick_list`` and are written in chunks, so
memory stays flat however many parts there are.
"""

from __future__ import annotations

import csv
from typing import TextIO

from django.core.management.base import CommandError, CommandParser
from django.db import transaction

from allocation import selectors
from allocation.management import fields
from allocation.management.base import STDIO, BulkCommand

COLUMNS = ("order_id", "sku", "qty", "batch_reference", "batch_eta")


class Command(BulkCommand):
    help = (
        "Export allocations as CSV (order_id,sku,qty,batch_reference,batch_eta), one row per "
        "part, ordered by order id, SKU and preference order."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--order-id", metavar="ID", help="only this order's lines")
        parser.add_argument("--sku", metavar="SKU", help="only this SKU's lines")
        parser.add_argument(
            "--output",
            metavar="FILE",
            default=STDIO,
            help="where the CSV goes (default: - , standard output)",
        )

    def handle(self, *args, order_id: str | None, sku: str | None, output: str, **options) -> None:
        for option, value in (("--order-id", order_id), ("--sku", sku)):
            if value is not None:
                try:
                    fields.identifier(value)
                except fields.FieldError as error:
                    raise CommandError(f"{option}: {error}") from None
        # One transaction: the streaming read's server-side cursor then needs
        # no WITH HOLD, so it works through a transaction-mode pooler too.
        with self.output(output) as out, transaction.atomic():
            count = write_pick_list(out, order_id=order_id, sku=sku)
        self.summary(f"exported {count} rows", to_stderr=output == STDIO)


def write_pick_list(out: TextIO, *, order_id: str | None, sku: str | None) -> int:
    """Write the pick list CSV to ``out``; return the number of rows (parts) written."""
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(COLUMNS)
    count = 0
    buffer = []
    for line_order_id, line_sku, qty, reference, eta in selectors.pick_list(
        order_id=order_id, sku=sku
    ):
        buffer.append((line_order_id, line_sku, qty, reference, eta.isoformat() if eta else ""))
        if len(buffer) == selectors.CHUNK:
            writer.writerows(buffer)
            count += len(buffer)
            buffer.clear()
    writer.writerows(buffer)
    return count + len(buffer)
