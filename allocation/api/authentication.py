"""Token authentication with the user read in one plain query.

DRF's ``TokenAuthentication`` builds ``Token.objects.select_related("user")``
for every request; the ORM's query building costs more CPU than the query
itself on the allocate path. Same header, same answers, same errors: only the
lookup is written out.
"""

from django.contrib.auth import get_user_model
from django.utils.translation import gettext_lazy as _
from rest_framework import authentication, exceptions
from rest_framework.authtoken.models import Token


def _user_by_token_sql() -> str:
    user_model = get_user_model()
    columns = ", ".join(f"u.{field.column}" for field in user_model._meta.concrete_fields)
    return (
        f"SELECT {columns} FROM {user_model._meta.db_table} u "  # noqa: S608 - names from metadata
        f"JOIN {Token._meta.db_table} t ON t.user_id = u.{user_model._meta.pk.column} "
        "WHERE t.key = %s"
    )


class TokenAuthentication(authentication.TokenAuthentication):
    _sql: str | None = None

    def authenticate_credentials(self, key):
        if TokenAuthentication._sql is None:
            TokenAuthentication._sql = _user_by_token_sql()
        user = next(iter(get_user_model().objects.raw(TokenAuthentication._sql, [key])), None)
        if user is None:
            raise exceptions.AuthenticationFailed(_("Invalid token."))
        if not user.is_active:
            raise exceptions.AuthenticationFailed(_("User inactive or deleted."))
        # request.auth: the token, as DRF gives it (built, not fetched again).
        return user, Token(key=key, user=user)
