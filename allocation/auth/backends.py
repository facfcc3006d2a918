"""Django's model permissions, read in one query instead of two.

Every API write checks a model permission (``ModelWritePermissions``), and
Django's ``ModelBackend`` reads a user's own permissions and their groups'
permissions in two separate, join-heavy queries. This backend answers exactly
the same (active users only, superusers have all, no object permissions) from
one query, and remembers the answer on the user object for the request, as
Django's backend does. Token authentication reads the same names in the query
that finds the user and hands them over (``remember_permissions``), so the
permission check of an API request costs no query at all.

The answer is kept under an attribute of our own, not in Django's private
permission caches: Django's public backend contract (``User.has_perm``,
``has_perms`` and ``has_module_perms`` ask the backend, whose ``has_perm``
asks ``get_all_permissions``) is all this relies on, and
``tests/integration/test_auth_backend.py`` fails if that ever changes.
"""

from __future__ import annotations

from collections.abc import Iterable

from django.contrib.auth import backends, get_user_model
from django.contrib.auth.models import Group, Permission
from django.contrib.contenttypes.models import ContentType
from django.db import connection


def permission_names_sql(user_id: str = "%s") -> str:
    """A query of the names ("app_label.codename") of a user's own and groups' permissions.

    ``user_id`` is the SQL for the user's id: a parameter by default, or a
    column of an outer query (token authentication reads them with the user).
    """
    user_model = get_user_model()
    return f"""
        SELECT ct.app_label || '.' || p.codename AS name
        FROM {Permission._meta.db_table} p
        JOIN {ContentType._meta.db_table} ct ON ct.id = p.content_type_id
        WHERE p.id IN (
            SELECT permission_id FROM {user_model.user_permissions.through._meta.db_table}
            WHERE user_id = {user_id}
            UNION
            SELECT gp.permission_id
            FROM {Group.permissions.through._meta.db_table} gp
            JOIN {user_model.groups.through._meta.db_table} ug ON ug.group_id = gp.group_id
            WHERE ug.user_id = {user_id}
        )
    """  # noqa: S608 - table names from model metadata; values are parameters


#: Where a user object keeps its permission names for the request (ours, not Django's).
PERMISSIONS_ATTRIBUTE = "_allocation_permission_names"


def remember_permissions(user, names: Iterable[str]) -> None:
    """Let ``ModelBackend`` answer this user object's permission checks from ``names``.

    ``names`` are "app_label.codename" strings of the user's own and groups'
    permissions, as ``permission_names_sql`` reads them; an active user who is
    not a superuser is the only kind whose checks read them.
    """
    setattr(user, PERMISSIONS_ATTRIBUTE, set(names))


class ModelBackend(backends.ModelBackend):
    _sql: str | None = None

    def get_all_permissions(self, user_obj, obj=None) -> set[str]:
        if not user_obj.is_active or user_obj.is_anonymous or obj is not None:
            return set()
        if user_obj.is_superuser:
            return super().get_all_permissions(user_obj, obj)
        if not hasattr(user_obj, PERMISSIONS_ATTRIBUTE):
            remember_permissions(user_obj, self._permission_names(user_obj.pk))
        return getattr(user_obj, PERMISSIONS_ATTRIBUTE)

    @staticmethod
    def _permission_names(user_id) -> list[str]:
        if ModelBackend._sql is None:
            ModelBackend._sql = permission_names_sql()
        with connection.cursor() as cursor:
            cursor.execute(ModelBackend._sql, [user_id, user_id])
            return [name for (name,) in cursor.fetchall()]
