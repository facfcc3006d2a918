"""Create or update batches from a CSV or JSON Lines file, all or nothing (SPEC 3)."""

from __future__ import annotations

from django.core.management.base import CommandParser

from allocation.management import reading
from allocation.management.base import BulkCommand
from allocation.management.batch_file import COLUMNS, OPTIONAL, load_batches


class Command(BulkCommand):
    help = (
        "Upsert batches by reference from FILE (columns reference,sku,purchased_quantity,eta). "
        "Every row is checked first; any error writes nothing."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        self.add_input_arguments(parser, "batches as CSV or JSON Lines")
        parser.add_argument(
            "--dry-run",
            action="store_true",
            help="check and apply everything, print the summary, then roll back",
        )
        self.add_actor_argument(parser)

    def handle(
        self,
        *args,
        file: str,
        format: str | None,
        dry_run: bool,
        actor: str | None,
        **options,
    ) -> None:
        fmt = self.input_format(file, format)
        with self.open_input(file) as stream:
            records = reading.records(self.read_lines(stream), fmt, COLUMNS, OPTIONAL)
            summary = load_batches(records, dry_run=dry_run, actor=actor)
        self.summary(str(summary))
        if dry_run:
            self.summary("dry run: rolled back, nothing was written", to_stderr=True)
