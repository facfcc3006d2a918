"""The only code that writes webhook subscription rows.

A deliverer owns a subscription while it sends it an event, so that two
processes never send it events at once (SPEC 6.2: in id order, one after the
other). On PostgreSQL the owner holds the row's lock (``FOR UPDATE SKIP
LOCKED``) in a transaction that lasts the request: others skip the row, and
a killed owner's lock goes with its connection. SQLite has no row locks and
one writer at a time, so the owner writes ``claimed_until`` instead (a lease
longer than any request) and clears it when done; a killed owner's lease
simply runs out.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.db import connection, transaction
from django.db.models import Q
from django.utils import timezone

from allocation import models as orm
from domain.webhooks import ACTIVE

#: How long an SQLite lease lasts: well beyond one request's 10 s timeout.
LEASE = timedelta(seconds=60)


@dataclass(frozen=True)
class Claimed:
    """A subscription a deliverer owns until the ``claimed`` block ends."""

    id: int
    url: str
    types: list[str]
    sealed_secret: str
    delivered_through: int
    attempts: int


def create(*, url: str, types: list[str], sealed_secret: str, delivered_through: int) -> int:
    row = orm.WebhookSubscription.objects.create(
        url=url, types=types, secret=sealed_secret, delivered_through=delivered_through
    )
    return row.id


def delete(subscription_id: int) -> bool:
    deleted, _ = orm.WebhookSubscription.objects.filter(id=subscription_id).delete()
    return deleted > 0


def set_status(ids: list[int], status: str) -> int:
    """The number of subscriptions whose status changed. Resuming one makes it due now."""
    rows = orm.WebhookSubscription.objects.filter(id__in=ids).exclude(status=status)
    changes: dict[str, object] = {"status": status}
    if status == ACTIVE:
        changes.update(next_attempt_at=None, attempts=0)
    return rows.update(**changes)


def _due(now: datetime) -> Q:
    return Q(status=ACTIVE) & (Q(next_attempt_at__isnull=True) | Q(next_attempt_at__lte=now))


def _claimed_of(row: orm.WebhookSubscription) -> Claimed:
    return Claimed(
        id=row.id,
        url=row.url,
        types=list(row.types),
        sealed_secret=row.secret,
        delivered_through=row.delivered_through,
        attempts=row.attempts,
    )


@contextmanager
def claimed(subscription_id: int) -> Iterator[Claimed | None]:
    """The subscription, owned by this deliverer for the block; None when it is paused,
    deleted, waiting for a retry, or owned by another deliverer."""
    now = timezone.now()
    rows = orm.WebhookSubscription.objects.filter(_due(now), id=subscription_id)
    if connection.vendor == "postgresql":
        with transaction.atomic():
            row = rows.select_for_update(skip_locked=True).first()
            yield None if row is None else _claimed_of(row)
        return
    until = now + LEASE
    free = Q(claimed_until__isnull=True) | Q(claimed_until__lt=now)
    if not rows.filter(free).update(claimed_until=until):
        yield None
        return
    try:
        row = orm.WebhookSubscription.objects.get(id=subscription_id)
        yield _claimed_of(row)
    finally:
        orm.WebhookSubscription.objects.filter(id=subscription_id, claimed_until=until).update(
            claimed_until=None
        )


def record_delivered(subscription_id: int, through: int) -> None:
    """Every event up to ``through`` is delivered (or not wanted): the failures are over."""
    orm.WebhookSubscription.objects.filter(
        id=subscription_id, delivered_through__lt=through
    ).update(delivered_through=through, attempts=0, next_attempt_at=None, last_error=None)


def record_failure(subscription_id: int, *, error: str, attempts: int, retry_at: datetime) -> None:
    orm.WebhookSubscription.objects.filter(id=subscription_id).update(
        last_error=error, attempts=attempts, next_attempt_at=retry_at
    )
