"""Webhook signing secrets at rest: encrypted under SECRET_KEY, readable after a rotation
that keeps the old key in SECRET_KEY_FALLBACKS."""

from __future__ import annotations

import pytest

from allocation.webhooks import secrets


def test_a_sealed_secret_hides_it_and_unseals_to_it():
    secret = secrets.generate()

    sealed = secrets.unseal(secrets.seal(secret))

    assert sealed == secret
    assert secret not in secrets.seal(secret)
    assert secrets.seal(secret) != secrets.seal(secret)  # a fresh IV each time


def test_after_a_rotation_the_old_key_still_opens_what_it_sealed(settings):
    secret = secrets.generate()
    settings.SECRET_KEY = "old-key"
    sealed = secrets.seal(secret)

    settings.SECRET_KEY, settings.SECRET_KEY_FALLBACKS = "new-key", ["old-key"]
    assert secrets.unseal(sealed) == secret
    settings.SECRET_KEY_FALLBACKS = []
    with pytest.raises(ValueError, match="SECRET_KEY_FALLBACKS"):
        secrets.unseal(sealed)
