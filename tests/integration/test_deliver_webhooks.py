"""deliver_webhooks (SPEC 6.2) against a real HTTP receiver on 127.0.0.1 in the test process."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import socket
import threading
import time
from datetime import UTC, datetime, timedelta

import pytest
from django.db import OperationalError, connection
from rest_framework.test import APIClient

from allocation import models as orm
from allocation import services
from allocation.webhooks import delivery, selectors
from allocation.webhooks import services as webhook_services
from tests.factories import UserFactory
from tests.integration.helpers import held_open
from tests.integration.webhook_support import deliver_once, history, row

pytestmark = pytest.mark.django_db(transaction=True)


def verify(secret: str, request: dict) -> bool:
    """The Standard Webhooks signature, checked with hmac and base64 only."""
    headers = {k.lower(): v for k, v in request["headers"].items()}
    key = base64.b64decode(secret.removeprefix("whsec_"))
    signed = f"{headers['webhook-id']}.{headers['webhook-timestamp']}.".encode() + request["body"]
    expected = "v1," + base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()).decode()
    return hmac.compare_digest(expected, headers["webhook-signature"])


def run_until(condition, timeout: float = 20.0) -> None:
    """The deliverer running until stopped, in a thread, until ``condition()`` holds."""
    deliverer = delivery.Deliverer(workers=4)

    def work():
        try:
            deliverer.run()
        finally:
            connection.close()  # this thread's own

    thread = threading.Thread(target=work)
    thread.start()
    try:
        deadline = time.monotonic() + timeout
        while not condition() and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        deliverer.stop.set()
        thread.join(timeout=30)
    assert not thread.is_alive()
    assert condition()


@pytest.fixture
def quick_retries(monkeypatch):
    """Retries after 50 ms: the tests count attempts, not wait."""
    monkeypatch.setattr(webhook_services, "retry_delay", lambda attempts, jitter: 0.05)


def test_events_go_out_one_by_one_in_id_order_signed_as_the_feed_renders_them(receivers):
    receiver = receivers()
    subscribed = webhook_services.subscribe(url=receiver.url)
    ids = history()

    out = deliver_once()

    assert out == f"delivered {len(ids)} events, 0 failed attempts\n"
    assert receiver.ids() == ids
    feed = APIClient()
    feed.force_authenticate(orm_user())
    page = feed.get("/api/events/", {"after": 0}).json()["results"]
    assert [json.loads(r["body"]) for r in receiver.requests] == page
    now = datetime.now(UTC).timestamp()
    for request in receiver.requests:
        assert verify(subscribed.secret, request)
        assert abs(int(request["headers"]["webhook-timestamp"]) - now) < 60
        assert request["headers"]["content-type"] == "application/json"
    assert (row(subscribed.id).delivered_through, row(subscribed.id).pending) == (ids[-1], 0)
    assert deliver_once() == "delivered 0 events, 0 failed attempts\n"
    assert len(receiver.requests) == len(ids)


def orm_user():

    return UserFactory(username="reader", is_superuser=True)


def test_a_signature_made_with_another_secret_does_not_verify(receivers):
    receiver = receivers()
    webhook_services.subscribe(url=receiver.url)
    history()
    deliver_once()
    other = webhook_services.subscribe(url=receiver.url).secret

    assert not verify(other, receiver.requests[0])


def test_a_500_is_retried_after_a_back_off_and_nothing_is_skipped(receivers, quick_retries):
    receiver = receivers(script=[200, 500, 500])
    subscribed = webhook_services.subscribe(url=receiver.url)
    ids = history()

    out = deliver_once()

    failed = row(subscribed.id)
    assert out == "delivered 1 events, 1 failed attempts\n"
    assert receiver.ids() == ids[:2]
    assert (failed.delivered_through, failed.pending) == (ids[0], len(ids) - 1)
    assert failed.last_error == "HTTP 500 Internal Server Error"
    assert failed.attempts == 1
    run_until(lambda: receiver.delivered_ids() == ids)
    assert receiver.ids() == [ids[0], ids[1], ids[1], *ids[1:]]
    done = row(subscribed.id)
    assert (done.delivered_through, done.pending, done.last_error, done.attempts) == (
        ids[-1],
        0,
        None,
        0,
    )


def test_the_first_retry_is_due_within_two_seconds(receivers):
    receiver = receivers(script=[503])
    subscribed = webhook_services.subscribe(url=receiver.url)
    history()

    before = datetime.now(UTC)
    deliver_once()

    failed = row(subscribed.id)
    assert failed.last_error == "HTTP 503 Service Unavailable"
    assert before < failed.next_attempt_at <= before + timedelta(seconds=2.5)
    # Not due yet: a second run right away sends nothing.
    assert deliver_once() == "delivered 0 events, 0 failed attempts\n"
    assert len(receiver.requests) == 1


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_a_refused_connection_is_retried_until_the_receiver_is_up(receivers, quick_retries):
    port = free_port()
    subscribed = webhook_services.subscribe(url=f"http://127.0.0.1:{port}/hook")
    ids = history()

    deliver_once()

    failed = row(subscribed.id)
    assert failed.last_error.startswith("ConnectError")
    assert (failed.delivered_through < ids[0], failed.pending) == (True, len(ids))
    receiver = receivers(port=port)
    run_until(lambda: receiver.delivered_ids() == ids)
    assert row(subscribed.id).last_error is None


def test_a_redirect_is_a_failure_not_followed(receivers):
    receiver = receivers(script=[302])
    subscribed = webhook_services.subscribe(url=receiver.url)
    ids = history()

    deliver_once()

    failed = row(subscribed.id)
    assert failed.last_error == (
        "HTTP 302: redirects are not followed (http://127.0.0.1:1/elsewhere)"
    )
    assert (failed.delivered_through < ids[0], failed.pending) == (True, len(ids))
    assert len(receiver.requests) == 1


def test_a_receiver_slower_than_the_timeout_is_a_failure(receivers, monkeypatch):
    monkeypatch.setattr(delivery, "TIMEOUT_SECONDS", 0.2)
    receiver = receivers(delay=1.0)
    subscribed = webhook_services.subscribe(url=receiver.url)
    ids = history()

    deliver_once()

    failed = row(subscribed.id)
    assert failed.last_error == "timeout: no answer within 0.2 s"
    assert (failed.delivered_through < ids[0], failed.pending) == (True, len(ids))


def test_a_subscription_receives_only_its_types_and_passes_the_others(receivers):
    receiver = receivers()
    subscribed = webhook_services.subscribe(url=receiver.url, types=["line_backordered"])
    ids = history()

    deliver_once()

    backordered = list(
        orm.Event.objects.filter(type="line_backordered").values_list("id", flat=True)
    )
    assert len(backordered) == 1
    assert receiver.ids() == backordered
    assert json.loads(receiver.requests[0]["body"])["data"]["order_id"] == "o2"
    assert (row(subscribed.id).delivered_through, row(subscribed.id).pending) == (ids[-1], 0)


def test_a_paused_subscription_gets_nothing_until_resumed(receivers):
    receiver = receivers()
    subscribed = webhook_services.subscribe(url=receiver.url)
    ids = history()
    webhook_services.pause(subscription_ids=[subscribed.id])

    deliver_once()
    assert receiver.requests == []
    assert row(subscribed.id).pending == len(ids)
    webhook_services.resume(subscription_ids=[subscribed.id])
    deliver_once()

    assert receiver.ids() == ids


def test_a_slow_receiver_does_not_hold_up_the_others(receivers, monkeypatch):
    monkeypatch.setattr(delivery, "TIMEOUT_SECONDS", 5.0)
    slow = receivers(delay=0.5)
    fast = receivers()
    webhook_services.subscribe(url=slow.url)
    webhook_services.subscribe(url=fast.url)
    ids = history()

    started = time.monotonic()
    run_until(lambda: fast.delivered_ids() == ids, timeout=1.5)

    assert time.monotonic() - started < 1.5
    assert len(slow.requests) < len(ids)


@pytest.mark.postgres_only
@pytest.mark.skipif(connection.vendor != "postgresql", reason="needs PostgreSQL")
def test_an_event_committed_after_a_later_id_is_delivered_first(receivers):
    receiver = receivers()
    services.add_batch(reference="a1", sku="A", purchased_quantity=10)
    services.add_batch(reference="b1", sku="B", purchased_quantity=10)
    subscribed = webhook_services.subscribe(url=receiver.url)
    start = row(subscribed.id).delivered_through
    # The slow writer's event (the lower id) is written, then its transaction waits.
    with held_open(lambda: services.allocate(order_id="slow", sku="A", qty=1)):
        services.allocate(order_id="fast", sku="B", qty=1)  # the higher id, committed

        deliver_once()
        # The later id is committed, but going out now would skip A's when it commits.
        assert receiver.requests == []
    deliver_once()

    events = list(orm.Event.objects.filter(id__gt=start).order_by("id"))
    assert [e.sku for e in events] == ["A", "B"]
    assert receiver.ids() == [e.id for e in events]
    assert [json.loads(r["body"])["data"]["order_id"] for r in receiver.requests] == [
        "slow",
        "fast",
    ]


class RawReceiver:
    """A TCP server that reads a request and answers each with ``answer`` (bytes) as is."""

    def __init__(self, answer: bytes):
        self.answer = answer
        self.count = 0
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self.sock.getsockname()[1]}/hook"
        self.thread = threading.Thread(target=self.serve, daemon=True)
        self.thread.start()

    def serve(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            with conn:
                conn.recv(65536)
                self.count += 1
                try:
                    conn.sendall(self.answer)
                except OSError:
                    pass  # the client hung up without reading it all

    def close(self) -> None:
        self.sock.close()


@pytest.fixture
def raw_receiver():
    started: list[RawReceiver] = []

    def start(answer: bytes) -> RawReceiver:
        started.append(RawReceiver(answer))
        return started[-1]

    yield start
    for receiver in started:
        receiver.close()


def test_a_garbage_answer_is_a_failure(raw_receiver):
    receiver = raw_receiver(b"this is not HTTP\r\n\r\n")
    subscribed = webhook_services.subscribe(url=receiver.url)
    ids = history()

    deliver_once()

    failed = row(subscribed.id)
    assert failed.last_error.startswith("RemoteProtocolError")
    assert (failed.delivered_through < ids[0], failed.attempts, receiver.count) == (True, 1, 1)


def test_a_huge_body_in_a_2xx_is_not_read_and_the_event_counts_as_delivered(raw_receiver):
    head = b"HTTP/1.1 200 OK\r\nContent-Length: 1000000000\r\nConnection: close\r\n\r\n"
    receiver = raw_receiver(head + b"x" * 65536)
    subscribed = webhook_services.subscribe(url=receiver.url)
    ids = history()

    started = time.monotonic()
    deliver_once()

    assert time.monotonic() - started < 10
    assert receiver.count == len(ids)
    assert row(subscribed.id).delivered_through == ids[-1]


def test_the_running_deliverer_waits_out_a_database_error(receivers, monkeypatch):
    receiver = receivers()
    webhook_services.subscribe(url=receiver.url)
    ids = history()
    real = selectors.due_subscription_ids
    failures = [OperationalError("server closed the connection unexpectedly")]

    def flaky():
        if failures:
            raise failures.pop()
        return real()

    monkeypatch.setattr(selectors, "due_subscription_ids", flaky)

    run_until(lambda: receiver.delivered_ids() == ids)
    assert failures == []
