"""Signing secrets: generated with ``secrets``, stored encrypted.

A subscription's secret is shown once, in the answer that creates it, and the
deliverer needs it back to sign every request, so it cannot be hashed. It is
stored encrypted with Fernet (the ``cryptography`` package: AES-128-CBC and
HMAC-SHA256, authenticated, with a version and a timestamp), under a key
derived from ``SECRET_KEY``: a dump of the database alone does not give the
secrets away. ``SECRET_KEY_FALLBACKS`` still decrypt, so the key can be
rotated the way Django rotates it (``re_encrypt`` is then a data migration
away; not needed while the fallbacks are kept).
"""

from __future__ import annotations

import base64
import secrets

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from django.conf import settings
from django.utils.crypto import salted_hmac

from domain.webhooks import MIN_SECRET_BYTES, secret_from_bytes

_SALT = "allocation.webhooks.secrets"


def generate() -> str:
    """A new Standard Webhooks secret: ``whsec_`` + base64 of 32 random bytes."""
    return secret_from_bytes(secrets.token_bytes(max(32, MIN_SECRET_BYTES)))


def _fernet(key: str) -> Fernet:
    derived = salted_hmac(_SALT, "fernet", secret=key, algorithm="sha256").digest()
    return Fernet(base64.urlsafe_b64encode(derived))


def _keys() -> MultiFernet:
    # The current key encrypts; it and every fallback decrypt.
    keys = [settings.SECRET_KEY, *getattr(settings, "SECRET_KEY_FALLBACKS", [])]
    return MultiFernet([_fernet(key) for key in keys])


def seal(secret: str) -> str:
    """What the database stores for a secret."""
    return _keys().encrypt(secret.encode("ascii")).decode("ascii")


def unseal(stored: str) -> str:
    """The secret back; ``ValueError`` if no key of this service encrypted it."""
    try:
        return _keys().decrypt(stored.encode("ascii")).decode("ascii")
    except InvalidToken:
        raise ValueError(
            "The webhook secret was encrypted with another SECRET_KEY "
            "(add the old one to SECRET_KEY_FALLBACKS)."
        ) from None
