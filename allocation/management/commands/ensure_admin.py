"""Make sure a superuser exists for local use, and show how to log in.

A new user gets a random password, printed once: it is stored only as a hash,
so it cannot be shown again (``changepassword`` resets it).
"""

from __future__ import annotations

import secrets

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandParser
from django.urls import reverse
from rest_framework.authtoken.models import Token


class Command(BaseCommand):
    help = "Create a superuser (default: admin) with a random password if it does not exist."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--username", default="admin", help="superuser name (default: admin)")
        parser.add_argument(
            "--base-url",
            default="http://127.0.0.1:8000",
            help="where the service is reached, for the printed links",
        )

    def handle(self, *args: object, username: str, base_url: str, **options: object) -> None:
        user_model = get_user_model()
        admin_url = base_url.rstrip("/") + reverse("admin:index")
        lookup = {user_model.USERNAME_FIELD: username}
        user = user_model._default_manager.filter(**lookup).first()

        if user is None:
            password = secrets.token_urlsafe(12)
            user = user_model._default_manager.create_superuser(
                **lookup, email="", password=password
            )
            self.stdout.write(self.style.SUCCESS(f"Created superuser {username!r}."))
            self.stdout.write(f"  username: {username}")
            self.stdout.write(f"  password: {password}   (shown only this once)")
        else:
            self.stdout.write(f"User {username!r} exists already.")
            self.stdout.write(f"  forgot the password? python manage.py changepassword {username}")
        self.stdout.write(f"  log in at {admin_url}")

        token, _ = Token.objects.get_or_create(user=user)
        self.stdout.write(f"  API token: {token.key}")
        self.stdout.write(
            f'  try: curl -H "Authorization: Token {token.key}" {base_url.rstrip("/")}/api/batches/'
        )
