"""deliver_webhooks as real processes (SPEC 6.2): SIGTERM finishes the request in flight and
exits 0; SIGKILL mid-request loses nothing (the event goes again: at least once); two
deliverers at once never send one subscription two requests at a time."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from datetime import timedelta

import pytest
from django.db import connection
from django.utils import timezone

from allocation import models as orm
from allocation.webhooks import services as webhook_services
from tests.integration.cmd_support import ROOT, database_url
from tests.integration.webhook_support import deliver_once, history, row

pytestmark = pytest.mark.django_db(transaction=True)


def deliverer(*args: str) -> subprocess.Popen:
    env = {**os.environ, "DATABASE_URL": database_url(), "ENV_FILE": ""}
    return subprocess.Popen(  # noqa: S603 - our own manage.py
        [sys.executable, "manage.py", "deliver_webhooks", *args],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def wait_for(condition, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def test_sigterm_finishes_the_request_in_flight_and_exits_0(receivers):
    receiver = receivers(delay=2.0)
    subscribed = webhook_services.subscribe(url=receiver.url)
    ids = history()
    process = deliverer()

    wait_for(lambda: len(receiver.requests) == 1)
    process.send_signal(signal.SIGTERM)
    out, err = process.communicate(timeout=30)

    assert process.returncode == 0, err
    assert out == "delivered 1 events, 0 failed attempts\n"
    assert receiver.ids() == ids[:1]
    assert row(subscribed.id).delivered_through == ids[0]


def test_sigkill_mid_request_loses_nothing(receivers):
    receiver = receivers(delay=3.0)
    subscribed = webhook_services.subscribe(url=receiver.url)
    ids = history()
    process = deliverer()

    wait_for(lambda: len(receiver.requests) == 1)
    process.kill()
    process.communicate(timeout=30)
    killed = row(subscribed.id)
    assert killed.delivered_through < ids[0]
    if connection.vendor == "sqlite":
        # No row locks: the dead deliverer's lease holds the subscription until it runs out.
        assert timezone.now() < killed.claimed_until <= timezone.now() + timedelta(seconds=60)
        orm.WebhookSubscription.objects.update(claimed_until=timezone.now() - timedelta(seconds=1))
    else:
        # The lock went with the dead process's connection.
        assert killed.claimed_until is None
    receiver.delay = 0
    deliver_once()

    assert receiver.ids() == [ids[0], *ids]
    assert row(subscribed.id).delivered_through == ids[-1]


def test_two_deliverers_at_once_send_each_event_once_one_at_a_time(receivers):
    receiver = receivers(delay=0.2)
    subscribed = webhook_services.subscribe(url=receiver.url)
    ids = history() + history_more()
    processes = [deliverer(), deliverer()]

    try:
        wait_for(lambda: row(subscribed.id).delivered_through == ids[-1], timeout=60)
    finally:
        for process in processes:
            process.send_signal(signal.SIGTERM)
    results = [process.communicate(timeout=30) for process in processes]

    assert [p.returncode for p in processes] == [0, 0], results
    assert receiver.ids() == ids
    assert receiver.most_in_flight == 1


def history_more() -> list[int]:
    from allocation import services

    last = orm.Event.objects.order_by("-id").values_list("id", flat=True).first()
    for n in range(5):
        services.add_batch(reference=f"more-{n}", sku="OTHER", purchased_quantity=1)
    return list(orm.Event.objects.filter(id__gt=last).order_by("id").values_list("id", flat=True))
