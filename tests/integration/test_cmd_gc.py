"""Bulk commands run with fewer cycle collections, and leave the collector as they found it."""

from __future__ import annotations

import gc

import pytest
from django.core.management.base import CommandError

from allocation.management.base import BULK_GC_THRESHOLD, BulkCommand


class _Probe(BulkCommand):
    """A bulk command that only records how the collector is set while it runs."""

    seen: tuple[tuple[int, int, int], int] | None = None

    def handle(self, *args, fail=False, **options):
        _Probe.seen = (gc.get_threshold(), gc.get_freeze_count())
        if fail:
            raise CommandError("failed on purpose")


@pytest.mark.parametrize("fail", [False, True])
def test_a_bulk_run_collects_less_and_puts_the_collector_back(fail):
    before = gc.get_threshold()
    frozen_before = gc.get_freeze_count()
    command = _Probe()

    if fail:
        with pytest.raises(CommandError, match="failed on purpose"):
            command.execute(fail=True, skip_checks=True, no_color=True, force_color=False)
    else:
        command.execute(skip_checks=True, no_color=True, force_color=False)

    threshold, frozen = _Probe.seen
    assert threshold == (BULK_GC_THRESHOLD, *before[1:])
    # Everything alive when the run started (Django, the test run) is frozen.
    assert frozen > frozen_before + 10_000
    assert gc.get_threshold() == before
    assert gc.get_freeze_count() == frozen_before
