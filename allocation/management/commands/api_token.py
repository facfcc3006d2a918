"""Create, revoke and list API tokens (DRF authtoken: one token per user).

    python manage.py api_token create USER [--rotate]   # prints the key on stdout
    python manage.py api_token revoke USER
    python manage.py api_token list

``create`` prints only the key on stdout, so a script can capture it
(``TOKEN=$(python manage.py api_token create alice)``); the summary goes to
stderr. A user keeps one token: ``create`` prints the existing key unless
``--rotate`` replaces it (the old key stops working at once). ``revoke``
deletes the token: every client using it gets 401 from then on.
"""

from __future__ import annotations

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction
from rest_framework.authtoken.models import Token


class Command(BaseCommand):
    help = "Create (or rotate), revoke and list API tokens for users."

    def add_arguments(self, parser) -> None:
        actions = parser.add_subparsers(dest="action", required=True, metavar="ACTION")
        create = actions.add_parser("create", help="Print USER's token, creating it if needed.")
        create.add_argument("username", metavar="USER")
        create.add_argument(
            "--rotate", action="store_true", help="Replace an existing token with a new one."
        )
        revoke = actions.add_parser("revoke", help="Delete USER's token.")
        revoke.add_argument("username", metavar="USER")
        actions.add_parser("list", help="List users who have a token (keys are not shown).")

    def handle(self, *args, action: str, **options) -> None:
        if action == "list":
            self.list_tokens()
        elif action == "create":
            self.create(options["username"], rotate=options["rotate"])
        else:
            self.revoke(options["username"])

    def _user(self, username: str):
        user = get_user_model().objects.filter(username=username).first()
        if user is None:
            raise CommandError(f"no user named {username!r}")
        if not user.is_active:
            raise CommandError(f"user {username!r} is inactive; a token would not authenticate")
        return user

    def create(self, username: str, *, rotate: bool) -> None:
        user = self._user(username)
        with transaction.atomic():
            existing = Token.objects.select_for_update().filter(user=user).first()
            if existing is not None and rotate:
                existing.delete()
            if existing is None or rotate:
                token = Token.objects.create(user=user)
                summary = f"{'rotated' if existing else 'created'} token for {username}"
            else:
                token = existing
                summary = f"{username} already has a token (use --rotate to replace it)"
        self.stdout.write(token.key)
        self.stderr.write(summary)

    def revoke(self, username: str) -> None:
        user = get_user_model().objects.filter(username=username).first()
        if user is None:
            raise CommandError(f"no user named {username!r}")
        deleted, _ = Token.objects.filter(user=user).delete()
        if deleted:
            self.stdout.write(f"revoked token of {username}")
        else:
            self.stdout.write(f"{username} has no token; nothing to revoke")

    def list_tokens(self) -> None:
        tokens = Token.objects.select_related("user").order_by("user__username")
        count = 0
        for token in tokens:
            count += 1
            created = token.created.strftime("%Y-%m-%d %H:%M:%S")
            self.stdout.write(f"{token.user.get_username()}\tcreated {created}")
        self.stderr.write(f"{count} token{'s' if count != 1 else ''}")
