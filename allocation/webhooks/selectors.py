"""Reads about webhook subscriptions: lists with ``pending``, and the events due to one.

Delivery reads events only up to ``allocation.selectors.event_horizon``, as the
feed does, so it never passes an event whose transaction commits late.
"""

from __future__ import annotations

from django.db import connection
from django.db.models import BigIntegerField, Max, Q, QuerySet
from django.db.models.expressions import RawSQL
from django.utils import timezone

from allocation import models as orm
from allocation.selectors import event_horizon
from domain.exceptions import SubscriptionNotFound
from domain.webhooks import ACTIVE

_SUB = orm.WebhookSubscription._meta.db_table
_EVENT = orm.Event._meta.db_table
# Does the subscription want the event's type? An empty list wants all.
# The tables' names are ours (model metadata); the horizon is a parameter.
_WANTS = {
    "postgresql": f"(jsonb_array_length({_SUB}.types) = 0 OR jsonb_exists({_SUB}.types, e.type))",
    "sqlite": (
        f"(json_array_length({_SUB}.types) = 0 OR EXISTS "  # noqa: S608
        f"(SELECT 1 FROM json_each({_SUB}.types) t WHERE t.value = e.type))"
    ),
}


def start_position() -> int:
    """Where a new subscription starts: after every event a reader may see now (SPEC 6.2:
    it receives the events written after its creation)."""
    horizon = event_horizon()
    if horizon is not None:
        return horizon
    return orm.Event.objects.aggregate(last=Max("id"))["last"] or 0


def subscriptions() -> QuerySet[orm.WebhookSubscription]:
    """Every subscription with ``pending``: the events after ``delivered_through`` that it
    wants and a reader may see now. One statement (after the horizon's on PostgreSQL)."""
    horizon = event_horizon()
    below = "" if horizon is None else " AND e.id <= %s"
    pending = RawSQL(  # noqa: S611
        f"SELECT COUNT(*) FROM {_EVENT} e WHERE e.id > {_SUB}.delivered_through"  # noqa: S608
        f"{below} AND {_WANTS[connection.vendor]}",
        [] if horizon is None else [horizon],
        output_field=BigIntegerField(),
    )
    return orm.WebhookSubscription.objects.annotate(pending=pending).order_by("id")


def subscription(subscription_id: int) -> orm.WebhookSubscription:
    found = subscriptions().filter(id=subscription_id).first()
    if found is None:
        raise SubscriptionNotFound(subscription_id)
    return found


def due_subscription_ids() -> list[int]:
    """Active subscriptions not waiting for a retry, with an event after their position."""
    now = timezone.now()
    last = orm.Event.objects.aggregate(last=Max("id"))["last"] or 0
    return list(
        orm.WebhookSubscription.objects.filter(status=ACTIVE, delivered_through__lt=last)
        .filter(Q(next_attempt_at__isnull=True) | Q(next_attempt_at__lte=now))
        .filter(Q(claimed_until__isnull=True) | Q(claimed_until__lt=now))
        .order_by("id")
        .values_list("id", flat=True)
    )


def next_event(*, after: int, types: list[str]) -> tuple[orm.Event | None, int]:
    """The first event after ``after`` of those types (all when empty) that a reader may see
    now, and the highest id a reader may see now: with no event, a subscription has passed
    every one up to there."""
    ceiling = start_position()
    events = orm.Event.objects.filter(id__gt=after, id__lte=ceiling)
    if types:
        events = events.filter(type__in=types)
    return events.order_by("id").first(), ceiling
