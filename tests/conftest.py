import pytest
from django.db import connection
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from allocation import unit_of_work
from tests.factories import UserFactory


def on_postgres() -> bool:
    return connection.vendor == "postgresql"


@pytest.fixture
def superuser(db):
    return UserFactory(username="root", is_superuser=True)


@pytest.fixture
def api(superuser) -> APIClient:
    """An API client authenticated with the superuser's token."""
    client = APIClient()
    token, _ = Token.objects.get_or_create(user=superuser)
    client.credentials(HTTP_AUTHORIZATION=f"Token {token.key}")
    return client


@pytest.fixture
def client_for(db):
    """``client_for(user)``: an API client authenticated with that user's token."""

    def make(user) -> APIClient:
        client = APIClient()
        token, _ = Token.objects.get_or_create(user=user)
        client.credentials(HTTP_AUTHORIZATION=f"Token {token.key}")
        return client

    return make


@pytest.fixture
def ops(client, superuser):
    """Django's test client logged in as the superuser (admin pages, session API)."""
    client.force_login(superuser)
    return client


@pytest.fixture
def anonymous() -> APIClient:
    return APIClient()


@pytest.fixture
def no_backoff(monkeypatch):
    """Transient database errors are retried at once: the tests count attempts, not wait."""
    monkeypatch.setattr(unit_of_work, "BACKOFF_SECONDS", 0)


@pytest.fixture(autouse=True, scope="session")
def fast_password_hashing():
    """Creating users with PBKDF2 costs most of a second each; tests need no strength."""
    from django.test import override_settings

    with override_settings(PASSWORD_HASHERS=["django.contrib.auth.hashers.MD5PasswordHasher"]):
        yield
