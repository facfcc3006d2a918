"""Create the benchmark's users under the product's own settings; print their credentials.

Run by ``bench/perf.py`` with the product's environment (DATABASE_URL...):
a non-superuser API client with only ``add_orderline`` (the allocate
permission) and its token, an event reader with only ``view_event`` and its
token (``bench/events.py``), and a staff superuser with a logged-in session
for the admin pages. Prints one JSON object.
"""

import json
import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "allocation_project.settings")

import django  # noqa: E402

django.setup()

from django.conf import settings  # noqa: E402
from django.contrib.auth import (  # noqa: E402
    BACKEND_SESSION_KEY,
    HASH_SESSION_KEY,
    SESSION_KEY,
    get_user_model,
)
from django.contrib.auth.models import Permission  # noqa: E402
from django.contrib.sessions.backends.db import SessionStore  # noqa: E402
from rest_framework.authtoken.models import Token  # noqa: E402

User = get_user_model()

writer, _ = User.objects.get_or_create(username="bench-writer")
writer.set_unusable_password()
writer.save()
writer.user_permissions.set(
    [Permission.objects.get(content_type__app_label="allocation", codename="add_orderline")]
)
token, _ = Token.objects.get_or_create(user=writer)

reader, _ = User.objects.get_or_create(username="bench-reader")
reader.set_unusable_password()
reader.save()
reader.user_permissions.set(
    [Permission.objects.get(content_type__app_label="allocation", codename="view_event")]
)
reader_token, _ = Token.objects.get_or_create(user=reader)

admin, _ = User.objects.get_or_create(
    username="bench-admin", defaults={"is_staff": True, "is_superuser": True}
)
admin.set_unusable_password()
admin.save()
session = SessionStore()
session[SESSION_KEY] = str(admin.pk)
session[BACKEND_SESSION_KEY] = settings.AUTHENTICATION_BACKENDS[0]
session[HASH_SESSION_KEY] = admin.get_session_auth_hash()
session.create()

print(
    json.dumps(
        {"token": token.key, "reader_token": reader_token.key, "session": session.session_key}
    )
)
