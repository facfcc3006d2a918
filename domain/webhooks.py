"""Webhook subscriptions' rules (SPEC 6.2): which URLs and secrets are acceptable, and
when a failed delivery is tried again.

Plain Python, like the rest of ``domain``: the app stores subscriptions, sends
the requests and asks these functions what to decide.
"""

from __future__ import annotations

import base64
import binascii
import ipaddress
from urllib.parse import urlsplit

#: Standard Webhooks secrets: this prefix, then the key in base64.
SECRET_PREFIX = "whsec_"  # noqa: S105 - a format, not a secret
#: The fewest random bytes a key may have (SPEC 6.2: at least 24).
MIN_SECRET_BYTES = 24
#: Longer keys add nothing to HMAC-SHA256 beyond its 64-byte block.
MAX_SECRET_BYTES = 64

#: The first retry comes within this many seconds of the failure.
FIRST_RETRY_SECONDS = 2.0
#: No wait between two attempts is longer than this.
MAX_RETRY_SECONDS = 300.0

ACTIVE = "active"
PAUSED = "paused"
STATUSES = (ACTIVE, PAUSED)


class BadWebhook(ValueError):
    """A subscription's URL or secret is not acceptable; the message says why."""


def secret_from_bytes(key: bytes) -> str:
    """The Standard Webhooks text of a key: ``whsec_`` + base64."""
    if len(key) < MIN_SECRET_BYTES:
        raise BadWebhook(f"A secret needs at least {MIN_SECRET_BYTES} random bytes.")
    return SECRET_PREFIX + base64.b64encode(key).decode("ascii")


def secret_key(secret: str) -> bytes:
    """The HMAC key of a ``whsec_`` secret; ``BadWebhook`` if it is not one."""
    if not secret.startswith(SECRET_PREFIX):
        raise BadWebhook(f"A secret starts with {SECRET_PREFIX!r}, then base64.")
    try:
        key = base64.b64decode(secret[len(SECRET_PREFIX) :], validate=True)
    except (binascii.Error, ValueError) as error:
        raise BadWebhook(f"A secret is {SECRET_PREFIX!r} then base64: {error}.") from None
    if not MIN_SECRET_BYTES <= len(key) <= MAX_SECRET_BYTES:
        raise BadWebhook(
            f"A secret's key is {MIN_SECRET_BYTES} to {MAX_SECRET_BYTES} bytes, not {len(key)}."
        )
    return key


def check_url(url: str, *, allow_private: bool) -> str:
    """The URL if deliveries may go there: ``http`` or ``https`` with a host, which unless
    ``allow_private`` is no loopback, private, link-local or otherwise non-public address
    (so that a subscriber cannot make the service probe the internal network). Host names
    are checked as written (``localhost`` is loopback); the app resolves the others."""
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises ValueError on a port that is not a number
    except ValueError as error:
        raise BadWebhook(f"Not a URL: {error}.") from None
    if parts.scheme not in ("http", "https"):
        raise BadWebhook("The URL must be http or https.")
    host = parts.hostname
    if not host:
        raise BadWebhook("The URL has no host.")
    if not allow_private and not host_is_public(host):
        raise BadWebhook(f"The URL's host {host} is a loopback, private or link-local address.")
    return url


def host_is_public(host: str) -> bool:
    """False for ``localhost`` names and for addresses that are not public ones."""
    name = host.rstrip(".").lower()
    if name == "localhost" or name.endswith(".localhost"):
        return False
    try:
        address = ipaddress.ip_address(name)
    except ValueError:
        return True  # a name: the app checks what it resolves to
    return address_is_public(address)


def address_is_public(address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return not (
        address.is_loopback
        or address.is_private
        or address.is_link_local
        or address.is_unspecified
        or address.is_multicast
        or address.is_reserved
    )


def retry_delay(attempts: int, jitter: float) -> float:
    """Seconds to wait after the ``attempts``-th failure in a row (1, 2, ...): doubling from
    ``FIRST_RETRY_SECONDS``, capped at ``MAX_RETRY_SECONDS``; ``jitter`` in [0, 1) takes up to
    half of it off, so receivers that failed together are not all retried at once."""
    if attempts < 1:
        raise ValueError("retry_delay counts failures from 1")
    ceiling = min(MAX_RETRY_SECONDS, FIRST_RETRY_SECONDS * 2.0 ** min(attempts - 1, 32))
    return ceiling * (1.0 - jitter / 2.0)
