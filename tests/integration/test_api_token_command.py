"""manage.py api_token: tokens are created, rotated, listed and revoked from the command line."""

from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from tests.factories import UserFactory

pytestmark = pytest.mark.django_db


def api_token(*args: str) -> tuple[str, str]:
    out, err = StringIO(), StringIO()
    call_command("api_token", *args, stdout=out, stderr=err)
    return out.getvalue(), err.getvalue()


def status_with(key: str) -> int:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {key}")
    return client.get("/api/batches/").status_code


def test_create_prints_a_key_that_authenticates_the_user():
    UserFactory(username="alice")

    out, err = api_token("create", "alice")

    key = out.strip()
    assert Token.objects.get(user__username="alice").key == key
    assert len(key) == 40
    assert err.strip() == "created token for alice"
    assert status_with(key) == 200


def test_create_again_prints_the_same_key():
    UserFactory(username="alice")
    first, _ = api_token("create", "alice")

    again, err = api_token("create", "alice")

    assert again == first
    assert err.strip() == "alice already has a token (use --rotate to replace it)"
    assert Token.objects.filter(user__username="alice").count() == 1


def test_rotate_replaces_the_key_and_the_old_one_stops_working():
    UserFactory(username="alice")
    old = api_token("create", "alice")[0].strip()

    out, err = api_token("create", "alice", "--rotate")

    new = out.strip()
    assert new != old
    assert err.strip() == "rotated token for alice"
    assert status_with(old) == 401
    assert status_with(new) == 200


def test_revoke_deletes_the_token_and_its_clients_get_401():
    UserFactory(username="alice")
    key = api_token("create", "alice")[0].strip()

    out, _ = api_token("revoke", "alice")

    assert out.strip() == "revoked token of alice"
    assert not Token.objects.filter(user__username="alice").exists()
    assert status_with(key) == 401


def test_revoking_a_user_without_a_token_says_so():
    UserFactory(username="alice")

    out, _ = api_token("revoke", "alice")

    assert out.strip() == "alice has no token; nothing to revoke"


def test_list_shows_users_with_tokens_but_never_the_keys():
    UserFactory(username="bob")
    UserFactory(username="alice")
    UserFactory(username="carol")
    keys = [api_token("create", name)[0].strip() for name in ("bob", "alice")]

    out, err = api_token("list")

    assert [line.split("\t")[0] for line in out.splitlines()] == ["alice", "bob"]
    assert all(line.split("\t")[1].startswith("created 20") for line in out.splitlines())
    assert not any(key in out for key in keys)
    assert err.strip() == "2 tokens"


@pytest.mark.parametrize("action", ["create", "revoke"])
def test_an_unknown_user_is_an_error(action):
    with pytest.raises(CommandError, match="no user named 'nobody'"):
        api_token(action, "nobody")
    assert Token.objects.count() == 0


def test_an_inactive_user_gets_no_token():
    UserFactory(username="gone", is_active=False)

    with pytest.raises(CommandError, match="inactive"):
        api_token("create", "gone")
    assert Token.objects.count() == 0


def test_an_action_is_required():
    with pytest.raises(CommandError):
        api_token()
