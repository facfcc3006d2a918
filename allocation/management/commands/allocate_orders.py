"""Allocate a file of order lines with the API's rules, and report each outcome (SPEC 3)."""

from __future__ import annotations

from django.core.management.base import CommandParser

from allocation.management import reading
from allocation.management.base import STDIO, BulkCommand
from allocation.management.order_file import COLUMNS, allocate_orders


class Command(BulkCommand):
    help = (
        "Allocate order lines from FILE (columns order_id,sku,qty) in file order, as the API "
        "would, and write a CSV report of each line's outcome. A malformed file allocates nothing."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        self.add_input_arguments(parser, "order lines as CSV or JSON Lines")
        parser.add_argument(
            "--report",
            metavar="OUT",
            default=STDIO,
            help="where the report CSV goes (default: - , standard output)",
        )
        self.add_actor_argument(parser)

    def handle(
        self,
        *args,
        file: str,
        format: str | None,
        report: str,
        actor: str | None,
        **options,
    ) -> None:
        fmt = self.input_format(file, format)
        bars = []

        def allocating(total: int):
            bars.append(self.progress("allocating", total=total, unit="line"))
            return bars[-1]

        with self.open_input(file) as stream, self.output(report) as out:
            records = reading.records(self.read_lines(stream), fmt, COLUMNS)
            try:
                summary = allocate_orders(records, out, progress=allocating, actor=actor)
            finally:
                for bar in bars:
                    if bar is not None:
                        bar.close()
        self.summary(str(summary), to_stderr=report == STDIO)
