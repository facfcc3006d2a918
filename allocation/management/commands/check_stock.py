"""Verify every stock invariant in the database; report violations, never repair (SPEC 3)."""

from __future__ import annotations

from django.core.management.base import CommandError
from django.db import transaction

from allocation import selectors
from allocation.management.base import BulkCommand


class Command(BulkCommand):
    help = (
        "Check that no batch is allocated beyond its stock, every allocated line's parts add up "
        "to its qty, backordered lines hold no parts and stored totals match their parts. "
        "Prints each violation and exits 1 if any; changes nothing."
    )

    def handle(self, *args, **options) -> None:
        # One transaction: the streaming reads' server-side cursors then need
        # no WITH HOLD, so they work through a transaction-mode pooler too.
        with transaction.atomic():
            checked = selectors.count_checked()
            found = 0
            for violation in selectors.stock_violations():
                self.stdout.write(violation)
                found += 1
        scope = f"{checked.batches} batches, {checked.lines} lines checked"
        if found:
            noun = "violation" if found == 1 else "violations"
            raise CommandError(f"{found} {noun} found: {scope}")
        self.summary(f"ok: {scope}")
