"""Token authentication: the user and their permissions read in one plain query.

DRF's ``TokenAuthentication`` builds ``Token.objects.select_related("user")``
for every request, and the permission check that follows reads the user's
permissions with a second query. Here one statement returns the user's
columns and, for an active user who is not a superuser, the names of their
own and their groups' permissions, which are handed to the permission backend
for the request (``allocation.auth.backends.remember_permissions``). Same
header, same answers, same errors: only the lookups are fewer.
"""

import weakref

from django.contrib.auth import get_user_model
from django.db import DEFAULT_DB_ALIAS, connection, connections
from django.utils.functional import SimpleLazyObject
from django.utils.translation import gettext_lazy as _
from rest_framework import authentication, exceptions
from rest_framework.authtoken.models import Token

from allocation.auth.backends import permission_names_sql, remember_permissions
from allocation.db import prepared

# Separates permission names in the aggregated column (never part of a name).
_SEPARATOR = "\x1f"


def _user_by_token_sql() -> str:
    user_model = get_user_model()
    meta = user_model._meta
    columns = ", ".join(f"u.{field.column}" for field in meta.concrete_fields)
    names = permission_names_sql(user_id=f"u.{meta.pk.column}")
    if connection.vendor == "postgresql":
        aggregate = f"(SELECT string_agg(n.name, chr(31)) FROM ({names}) n)"  # noqa: S608
    else:
        aggregate = f"(SELECT group_concat(n.name, char(31)) FROM ({names}) n)"  # noqa: S608
    return (
        f"SELECT {columns}, CASE WHEN u.is_active AND NOT u.is_superuser "  # noqa: S608
        f"THEN COALESCE({aggregate}, '') END AS perms "
        f"FROM {meta.db_table} u "
        f"JOIN {Token._meta.db_table} t ON t.user_id = u.{meta.pk.column} "
        "WHERE t.key = %s"
    )  # table and column names come from model metadata; the key is a parameter


def _converters() -> list[tuple[int, object, list]]:
    """Per user column that needs one, the driver-to-Python converters (as the ORM has them)."""
    meta = get_user_model()._meta
    found: list[tuple[int, object, list]] = []
    for index, field in enumerate(meta.concrete_fields):
        column = field.get_col(meta.db_table)
        converters = connection.ops.get_db_converters(column) + column.get_db_converters(connection)
        if converters:
            found.append((index, column, converters))
    return found


class TokenAuthentication(authentication.TokenAuthentication):
    # Per connection (converters are bound to its backend): the SQL and converters.
    _plans: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()

    def authenticate_credentials(self, key):
        db = connections[DEFAULT_DB_ALIAS]
        plan = self._plans.get(db)
        if plan is None:
            plan = self._plans[db] = (_user_by_token_sql(), _converters())
        sql, converters = plan
        with connection.cursor() as cursor:
            cursor.execute(*prepared(sql, [key]))
            row = cursor.fetchone()
        if row is None:
            raise exceptions.AuthenticationFailed(_("Invalid token."))
        user_model = get_user_model()
        *values, perms = row
        for index, column, column_converters in converters:
            for convert in column_converters:
                values[index] = convert(values[index], column, connection)
        user = user_model.from_db(
            connection.alias, [f.attname for f in user_model._meta.concrete_fields], values
        )
        if not user.is_active:
            raise exceptions.AuthenticationFailed(_("User inactive or deleted."))
        if perms is not None:
            remember_permissions(user, perms.split(_SEPARATOR) if perms else ())
        # request.auth: the token, as DRF gives it (built only if asked for,
        # not fetched again).
        return user, SimpleLazyObject(lambda: Token(key=key, user=user))
