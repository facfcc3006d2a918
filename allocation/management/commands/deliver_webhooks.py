"""Deliver the events to the webhook subscriptions (SPEC 6.2), until stopped or ``--once``."""

from __future__ import annotations

import signal
import threading

from django.core.management.base import BaseCommand

from allocation.webhooks.delivery import Deliverer


class Command(BaseCommand):
    help = (
        "POST each event to every active webhook subscription that wants it, one at a time "
        "and in id order per subscription, signed the Standard Webhooks way. Runs until "
        "SIGTERM or Ctrl-C (the requests in flight finish, exit 0); --once delivers what is "
        "pending and exits."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument(
            "--once", action="store_true", help="deliver everything pending, then exit"
        )
        parser.add_argument(
            "--workers",
            type=int,
            default=8,
            help="subscriptions served side by side (default 8)",
        )

    def handle(self, *args, **options) -> None:
        stop = threading.Event()
        previous = {}
        if threading.current_thread() is threading.main_thread():
            for signum in (signal.SIGTERM, signal.SIGINT):
                previous[signum] = signal.signal(signum, lambda *_: stop.set())
        try:
            tally = Deliverer(workers=max(1, options["workers"]), stop=stop).run(
                once=options["once"]
            )
        finally:
            for signum, handler in previous.items():
                signal.signal(signum, handler)
        self.stdout.write(f"delivered {tally.delivered} events, {tally.failed} failed attempts")
