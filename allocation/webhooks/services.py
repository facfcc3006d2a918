"""Webhook use cases (SPEC 6.2); the API, the admin and ``deliver_webhooks`` call these.

The domain (``domain.webhooks``) says which URLs and secrets are acceptable and
how long to wait after a failure; ``repository`` writes the rows.
"""

from __future__ import annotations

import random
import socket
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta
from ipaddress import ip_address
from urllib.parse import urlsplit

from django.conf import settings
from django.utils import timezone

from allocation.webhooks import repository, secrets
from allocation.webhooks.selectors import start_position
from domain.events import EVENT_TYPES
from domain.exceptions import SubscriptionNotFound
from domain.webhooks import (
    ACTIVE,
    PAUSED,
    BadWebhook,
    address_is_public,
    check_url,
    retry_delay,
    secret_key,
)

#: last_error keeps this much of a failure's description.
MAX_ERROR_LENGTH = 500


@dataclass(frozen=True)
class Subscribed:
    id: int
    #: Shown once, to the subscriber; stored encrypted.
    secret: str


def allows_private() -> bool:
    return bool(getattr(settings, "WEBHOOKS_ALLOW_PRIVATE", False))


def checked_url(url: str) -> str:
    """The URL if deliveries may go there (``domain.webhooks.check_url``); a host name must
    also not resolve to a non-public address. ``BadWebhook`` says why not."""
    allow_private = allows_private()
    check_url(url, allow_private=allow_private)
    host = urlsplit(url).hostname or ""
    if allow_private or _is_address(host):
        return url
    try:
        resolved = {info[4][0] for info in socket.getaddrinfo(host, None)}
    except (OSError, UnicodeError):
        return url  # unknown now: deliveries fail and say so until it resolves
    for address in resolved:
        if not address_is_public(ip_address(str(address).split("%")[0])):
            raise BadWebhook(f"The URL's host {host} resolves to a non-public address.")
    return url


def _is_address(host: str) -> bool:
    try:
        ip_address(host)
    except ValueError:
        return False
    return True


def checked_types(types: Sequence[str]) -> list[str]:
    unknown = [t for t in types if t not in EVENT_TYPES]
    if unknown:
        raise BadWebhook(f"Unknown event types: {', '.join(unknown)}.")
    return list(dict.fromkeys(types))


def subscribe(*, url: str, types: Sequence[str] = (), secret: str | None = None) -> Subscribed:
    """A new active subscription that receives the events written from now on."""
    checked_url(url)
    wanted = checked_types(types)
    if secret is None:
        secret = secrets.generate()
    else:
        secret_key(secret)
    subscription_id = repository.create(
        url=url,
        types=wanted,
        sealed_secret=secrets.seal(secret),
        delivered_through=start_position(),
    )
    return Subscribed(id=subscription_id, secret=secret)


def unsubscribe(*, subscription_id: int) -> None:
    if not repository.delete(subscription_id):
        raise SubscriptionNotFound(subscription_id)


def pause(*, subscription_ids: Sequence[int]) -> int:
    """Deliveries stop after the request in flight; the number of subscriptions paused."""
    return repository.set_status(list(subscription_ids), PAUSED)


def resume(*, subscription_ids: Sequence[int]) -> int:
    """Deliveries go on from where they stopped, at once; the number resumed."""
    return repository.set_status(list(subscription_ids), ACTIVE)


def record_delivered(*, subscription_id: int, through: int) -> None:
    repository.record_delivered(subscription_id, through)


def record_failure(*, subscription_id: int, error: str, attempts: int) -> float:
    """The ``attempts``-th failure in a row on the subscription's next event: retried after
    the delay returned (seconds; ``domain.webhooks.retry_delay``), never skipped."""
    delay = retry_delay(attempts, random.random())  # noqa: S311 - jitter, not a secret
    repository.record_failure(
        subscription_id,
        error=error[:MAX_ERROR_LENGTH],
        attempts=attempts,
        retry_at=timezone.now() + timedelta(seconds=delay),
    )
    return delay
