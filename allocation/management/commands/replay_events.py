"""Rebuild every batch and line from the events alone and compare with the stored state."""

from __future__ import annotations

from django.core.management.base import CommandError
from django.db import transaction

from allocation import selectors
from allocation.management.base import BulkCommand


class Command(BulkCommand):
    help = (
        "With --check: replay the event log per SKU and compare the batches and lines it "
        "builds with those stored. Prints each difference and exits 1 if any; changes nothing."
    )

    def add_arguments(self, parser) -> None:
        super().add_arguments(parser)
        parser.add_argument("--check", action="store_true", help="compare (the only mode)")

    def handle(self, *args, **options) -> None:
        if not options["check"]:
            raise CommandError("replay_events only checks: run it with --check")
        result = selectors.ReplayResult()
        found = 0
        # One transaction: one consistent view of events and state, and the
        # streaming reads' cursors need no WITH HOLD (transaction-mode poolers).
        with transaction.atomic():
            for difference in selectors.replay_differences(result):
                self.stdout.write(difference)
                found += 1
        if found:
            noun = "difference" if found == 1 else "differences"
            raise CommandError(f"{found} {noun}: {result.events} events, {result.skus} skus")
        self.summary(f"ok: {result.events} events, {result.skus} skus")
