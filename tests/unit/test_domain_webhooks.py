"""domain.webhooks: acceptable URLs and secrets, and the retry delays (SPEC 6.2)."""

from __future__ import annotations

import base64

import pytest
from hypothesis import given
from hypothesis import strategies as st

from domain.webhooks import (
    FIRST_RETRY_SECONDS,
    MAX_RETRY_SECONDS,
    BadWebhook,
    check_url,
    retry_delay,
    secret_from_bytes,
    secret_key,
)


def test_the_first_retry_comes_within_two_seconds():
    assert retry_delay(1, 0.0) == 2.0
    assert retry_delay(1, 0.999) == pytest.approx(1.001)


def test_delays_double_then_stop_at_five_minutes():
    assert [retry_delay(n, 0.0) for n in range(1, 11)] == [
        2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0, 256.0, 300.0, 300.0,
    ]  # fmt: skip
    assert retry_delay(10_000, 0.0) == 300.0


@given(st.integers(min_value=1, max_value=10_000), st.floats(min_value=0, max_value=0.9999))
def test_every_delay_is_between_half_its_ceiling_and_the_cap(attempts, jitter):
    delay = retry_delay(attempts, jitter)
    assert FIRST_RETRY_SECONDS / 2 <= delay <= MAX_RETRY_SECONDS


def test_a_secret_round_trips_to_its_key():
    key = bytes(range(24))
    secret = secret_from_bytes(key)
    assert secret == "whsec_" + base64.b64encode(key).decode()
    assert secret_key(secret) == key


@pytest.mark.parametrize(
    "secret",
    ["", "whsec_", "abc", "whsec_***", "whsec_" + base64.b64encode(b"x" * 23).decode()],
)
def test_malformed_secrets_are_refused(secret):
    with pytest.raises(BadWebhook):
        secret_key(secret)


def test_short_keys_make_no_secret():
    with pytest.raises(BadWebhook):
        secret_from_bytes(b"x" * 23)


@pytest.mark.parametrize(
    "url", ["https://hooks.example.com/a", "http://93.184.215.14:8080/x", "https://[2606:4700::1]/"]
)
def test_public_http_urls_are_accepted(url):
    assert check_url(url, allow_private=False) == url


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.2/",
        "http://LOCALHOST./",
        "http://app.localhost/",
        "http://172.16.0.1/",
        "http://[::ffff:10.0.0.1]/",
        "http://[fd00::1]/",
        "http://224.0.0.1/",
    ],
)
def test_internal_hosts_are_refused_unless_allowed(url):
    with pytest.raises(BadWebhook, match="loopback, private or link-local"):
        check_url(url, allow_private=False)
    assert check_url(url, allow_private=True) == url


@pytest.mark.parametrize("url", ["file:///etc/passwd", "gopher://x/", "https://", "http://h:port/"])
def test_other_schemes_and_broken_urls_are_refused_even_when_private_hosts_are_allowed(url):
    with pytest.raises(BadWebhook):
        check_url(url, allow_private=True)
