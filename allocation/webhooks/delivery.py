"""``deliver_webhooks``: every subscription's events, each POSTed alone, in id order.

For each active subscription that is due, a worker of a thread pool (one per
subscription at a time, so a slow or dead receiver holds up only itself)
owns its row (``repository.claimed``) and sends the next event it wants
under the event horizon; a 2xx moves ``delivered_through`` to it and the
worker goes on to the next; anything else (another status, a redirect, a
timeout, a refused connection, a TLS error) is recorded as ``last_error``
and retried after a back-off (``domain.webhooks.retry_delay``), never
skipped. The position moves only after the 2xx, so a deliverer killed
mid-request sends that event again: at least once, the receiver
deduplicates by ``webhook-id``.

Delivery reads events and writes subscription rows only: it never writes an
event, and holds no lock that an event's writer takes.
"""

from __future__ import annotations

import logging
import threading
import time
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime

import httpx
from django.db import DatabaseError, connection
from rest_framework.renderers import JSONRenderer
from standardwebhooks.webhooks import Webhook

from allocation import models as orm
from allocation.api.serializers import EventSerializer
from allocation.webhooks import repository, secrets, selectors, services

log = logging.getLogger(__name__)

#: SPEC 6.2: a receiver has this long to answer.
TIMEOUT_SECONDS = 10.0
#: How often a deliverer that runs until stopped looks for new events.
POLL_SECONDS = 0.5
USER_AGENT = "allocation-webhooks/1"


def body_of(event: orm.Event) -> bytes:
    """The event's JSON representation, exactly as the feed renders it."""
    return JSONRenderer().render(EventSerializer(event).data)


def signed_headers(secret: str, event_id: int, body: bytes, now: datetime) -> dict[str, str]:
    """Standard Webhooks headers: ``webhook-signature`` is ``v1,`` + base64 of
    HMAC-SHA256(``{id}.{timestamp}.{body}``) keyed with the secret's bytes."""
    msg_id = str(event_id)
    return {
        "content-type": "application/json",
        "user-agent": USER_AGENT,
        "webhook-id": msg_id,
        "webhook-timestamp": str(int(now.timestamp())),
        "webhook-signature": Webhook(secret).sign(msg_id, now, body),
    }


def send(client: httpx.Client, url: str, headers: dict[str, str], body: bytes) -> str | None:
    """None when the receiver answered 2xx; else why not, for ``last_error``. The answer's
    body is never read: its size or content cannot matter."""
    try:
        with client.stream("POST", url, content=body, headers=headers) as response:
            if response.is_success:
                return None
            if response.is_redirect:
                where = response.headers.get("location", "")
                return f"HTTP {response.status_code}: redirects are not followed ({where})"
            return f"HTTP {response.status_code} {response.reason_phrase}".rstrip()
    except httpx.TimeoutException:
        return f"timeout: no answer within {TIMEOUT_SECONDS:g} s"
    except httpx.HTTPError as error:
        return f"{type(error).__name__}: {error}"
    except (httpx.InvalidURL, OSError, ValueError) as error:  # what the client refuses to send
        return f"{type(error).__name__}: {error}"


@dataclass
class Tally:
    delivered: int = 0
    failed: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, delivered: int, failed: int) -> None:
        with self.lock:
            self.delivered += delivered
            self.failed += failed


class Deliverer:
    """Runs the pool. ``stop`` set (SIGTERM, Ctrl-C): every worker ends after the request in
    flight, and ``run`` returns."""

    def __init__(self, *, workers: int = 8, stop: threading.Event | None = None) -> None:
        self.workers = workers
        self.stop = stop or threading.Event()
        self.tally = Tally()

    def run(self, *, once: bool = False) -> Tally:
        """Until stopped; ``once``: until every subscription has had everything pending
        delivered or has failed on an event (retried by a later run, after its back-off)."""
        running: dict[int, Future[None]] = {}
        with ThreadPoolExecutor(self.workers, thread_name_prefix="webhook") as pool:
            while not self.stop.is_set():
                try:
                    due = selectors.due_subscription_ids()
                except DatabaseError:
                    if once:
                        raise
                    # Down or busy for a moment: the running deliverer waits it out.
                    log.exception("webhooks: cannot read the subscriptions; trying again")
                    connection.close()
                    due = []
                for subscription_id in due:
                    if subscription_id not in running:
                        running[subscription_id] = pool.submit(self._serve, subscription_id)
                if once:
                    break
                self.stop.wait(POLL_SECONDS)
                for subscription_id, future in list(running.items()):
                    if future.done():
                        del running[subscription_id]
                        _log_crash(subscription_id, future)
            for subscription_id, future in running.items():
                future.exception()  # waits
                _log_crash(subscription_id, future)
        return self.tally

    def _serve(self, subscription_id: int) -> None:
        """Deliver to one subscription until it is caught up, fails, or the deliverer stops."""
        try:
            # Receivers are reached directly: proxy variables meant for other traffic do not
            # apply (nor see the signed bodies); redirects are failures (SPEC 6.2).
            with httpx.Client(
                timeout=TIMEOUT_SECONDS, follow_redirects=False, trust_env=False
            ) as client:
                while not self.stop.is_set() and self._deliver_next(client, subscription_id):
                    pass
        finally:
            connection.close()  # this thread's own connection

    def _deliver_next(self, client: httpx.Client, subscription_id: int) -> bool:
        """One event to the subscription: True when it went through and there may be more."""
        with repository.claimed(subscription_id) as claim:
            if claim is None:
                return False
            event, ceiling = selectors.next_event(after=claim.delivered_through, types=claim.types)
            if event is None:
                services.record_delivered(subscription_id=claim.id, through=ceiling)
                return False
            body = body_of(event)
            secret = secrets.unseal(claim.sealed_secret)
            headers = signed_headers(secret, event.id, body, datetime.now(UTC))
            started = time.monotonic()
            error = send(client, claim.url, headers, body)
            if error is None:
                services.record_delivered(subscription_id=claim.id, through=event.id)
                self.tally.add(1, 0)
                log.info("webhook %s: event %s delivered", claim.id, event.id)
                return True
            delay = services.record_failure(
                subscription_id=claim.id, error=error, attempts=claim.attempts + 1
            )
            self.tally.add(0, 1)
            log.warning(
                "webhook %s: event %s failed after %.1f s (%s); retry in %.1f s",
                claim.id,
                event.id,
                time.monotonic() - started,
                error,
                delay,
            )
            return False


def _log_crash(subscription_id: int, future: Future[None]) -> None:
    error = future.exception()
    if error is not None:
        log.error("webhook %s: deliverer crashed", subscription_id, exc_info=error)
