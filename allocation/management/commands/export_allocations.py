"""Write the pick list: one CSV row per allocated part (SPEC 3)."""

from __future__ import annotations

from django.core.management.base import CommandError, CommandParser

from allocation.bulk import fields
from allocation.bulk.cli import STDIO, BulkCommand
from allocation.bulk.export import export_allocations


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
        with self.output(output) as out:
            count = export_allocations(out, order_id=order_id, sku=sku)
        self.summary(f"exported {count} rows", to_stderr=output == STDIO)
