"""SPEC 5: configuration comes from the environment only, and fails loudly.

Settings are read once per process, so each case loads them in a fresh
interpreter with exactly the environment it describes.
"""

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

SHOW = (
    "import json, django; from django.conf import settings; django.setup(); "
    "db = settings.DATABASES['default']; "
    "print(json.dumps({'engine': db['ENGINE'], 'name': str(db['NAME']), "
    "'options': db.get('OPTIONS', {}), 'debug': settings.DEBUG, "
    "'conn_max_age': db.get('CONN_MAX_AGE'), 'health': db.get('CONN_HEALTH_CHECKS')}))"
)


def load_settings(**env: str) -> subprocess.CompletedProcess:
    clean = {
        k: v
        for k, v in os.environ.items()
        if k not in {"DATABASE_URL", "SECRET_KEY", "DEBUG", "ALLOWED_HOSTS"}
    }
    clean["DJANGO_SETTINGS_MODULE"] = "allocation_project.settings"
    clean.update(env)
    return subprocess.run(  # noqa: S603 - our own interpreter and code
        [sys.executable, "-c", SHOW],
        cwd=ROOT,
        env=clean,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_without_secret_key_and_debug_off_settings_refuse_to_load():
    result = load_settings(DEBUG="0")

    assert result.returncode == 1
    assert "django.core.exceptions.ImproperlyConfigured: SECRET_KEY is not set" in result.stderr


def test_the_embedded_default_is_a_sqlite_file_in_the_project_that_queues_writers():
    result = load_settings(SECRET_KEY="k")

    shown = json.loads(result.stdout)
    assert shown["engine"] == "django.db.backends.sqlite3"
    assert shown["name"] == str(ROOT / "db.sqlite3")
    assert shown["options"]["transaction_mode"] == "IMMEDIATE"
    assert "journal_mode=WAL" in shown["options"]["init_command"]
    assert shown["debug"] is False


def test_database_url_switches_to_postgresql_with_checked_persistent_connections():
    result = load_settings(
        SECRET_KEY="k", DATABASE_URL="postgres://app:pw@127.0.0.1:5432/allocation"
    )

    shown = json.loads(result.stdout)
    # Django's backend with a health check that costs no query (allocation.db.postgresql).
    assert shown["engine"] == "allocation.db.postgresql"
    assert shown["name"] == "allocation"
    assert (shown["conn_max_age"], shown["health"]) == (60, True)
    assert shown["options"]["connect_timeout"] == 3
