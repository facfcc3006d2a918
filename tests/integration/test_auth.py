"""Authentication and permissions: Django's answers, in fewer queries, through public APIs only.

The permission backend keeps a request's permission names under an attribute
of its own and relies on Django's public backend contract to be asked for
them; the tests marked "contract" fail if Django or DRF stop honouring it.
"""

import pytest
from django.contrib.auth import backends as django_backends
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group, Permission
from rest_framework.authtoken.models import Token
from rest_framework.test import APIRequestFactory

from allocation import models as orm
from allocation.auth.backends import ModelBackend, remember_permissions
from allocation.auth.permissions import ModelWritePermissions
from allocation.auth.tokens import TokenAuthentication
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db


def allocation_permissions(*codenames: str) -> list[Permission]:
    return list(
        Permission.objects.filter(content_type__app_label="allocation", codename__in=codenames)
    )


def fresh(user):
    """The user read again: no permissions remembered by anyone."""
    return get_user_model().objects.get(pk=user.pk)


@pytest.fixture
def users(db) -> dict:
    group = Group.objects.create(name="pickers")
    group.permissions.add(*allocation_permissions("delete_orderline", "view_batch"))
    own = UserFactory(username="own", permissions=["add_orderline"])
    grouped = UserFactory(username="grouped")
    grouped.groups.add(group)
    both = UserFactory(username="both", permissions=["add_batch", "view_batch"])
    both.groups.add(group)
    inactive = UserFactory(username="inactive", permissions=["add_batch"], is_active=False)
    return {
        "own": own,
        "grouped": grouped,
        "both": both,
        "none": UserFactory(username="none"),
        "inactive": inactive,
        "superuser": UserFactory(username="root", is_superuser=True),
    }


@pytest.mark.parametrize("who", ["own", "grouped", "both", "none", "inactive", "superuser"])
def test_the_backend_answers_as_djangos_model_backend(users, who):
    ours, django = ModelBackend(), django_backends.ModelBackend()
    user = users[who]

    assert ours.get_all_permissions(fresh(user)) == django.get_all_permissions(fresh(user))
    for perm in ("allocation.add_orderline", "allocation.view_batch", "allocation.add_batch"):
        assert ours.has_perm(fresh(user), perm) == django.has_perm(fresh(user), perm)
    assert ours.has_module_perms(fresh(user), "allocation") == django.has_module_perms(
        fresh(user), "allocation"
    )


def test_the_backend_reads_a_users_permissions_in_one_query_then_none(
    users, django_assert_num_queries
):
    user = fresh(users["both"])

    with django_assert_num_queries(1):
        assert user.has_perm("allocation.add_batch")
    with django_assert_num_queries(0):
        assert user.has_perms(["allocation.view_batch", "allocation.delete_orderline"])
        assert not user.has_perm("allocation.change_batch")
        assert user.has_module_perms("allocation")


def test_contract_remembered_permissions_answer_every_check_without_a_query(
    users, django_assert_num_queries
):
    # Django's User asks the backend; the backend's has_perm and
    # has_module_perms ask get_all_permissions. If that chain changes, the
    # permissions remembered by token authentication stop being used.
    user = fresh(users["none"])
    remember_permissions(user, ["allocation.add_batch"])

    with django_assert_num_queries(0):
        assert user.get_all_permissions() == {"allocation.add_batch"}
        assert user.has_perm("allocation.add_batch")
        assert user.has_perms(["allocation.add_batch"])
        assert not user.has_perm("allocation.delete_batch")
        assert user.has_module_perms("allocation")
        assert not user.has_module_perms("auth")


def test_token_authentication_reads_the_user_and_their_permissions_in_one_query(
    users, django_assert_num_queries
):
    key = Token.objects.create(user=users["both"]).key
    expected = django_backends.ModelBackend().get_all_permissions(fresh(users["both"]))

    with django_assert_num_queries(1):
        user, token = TokenAuthentication().authenticate_credentials(key)
    with django_assert_num_queries(0):
        assert user.get_all_permissions() == expected
        assert user.has_perms(["allocation.add_batch", "allocation.delete_orderline"])
        assert not user.has_perm("allocation.change_batch")
    assert token.key == key
    assert token.user == user


def test_token_authentication_leaves_a_superusers_checks_to_django(
    users, django_assert_num_queries
):
    key = Token.objects.create(user=users["superuser"]).key

    user, _ = TokenAuthentication().authenticate_credentials(key)

    with django_assert_num_queries(0):
        assert user.has_perm("allocation.delete_batch")


class ListView:
    """A view as DRF's generic views are: a class-level queryset, and a costly get_queryset."""

    queryset = orm.Batch.objects.all()

    def get_queryset(self):
        raise AssertionError("the permission check must not build the list's queryset")


@pytest.mark.parametrize(
    ("method", "codename", "allowed"),
    [
        ("GET", None, True),
        ("POST", None, False),
        ("POST", "add_batch", True),
        ("PATCH", "add_batch", False),
        ("PATCH", "change_batch", True),
        ("DELETE", "delete_batch", True),
    ],
)
def test_write_permissions_come_from_the_views_model(method, codename, allowed):
    user = UserFactory(username="writer", permissions=[codename] if codename else [])
    request = getattr(APIRequestFactory(), method.lower())("/api/batches/")
    request.user = fresh(user)

    assert ModelWritePermissions().has_permission(request, ListView()) is allowed
