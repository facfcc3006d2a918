"""SPEC 5: configuration comes from the environment only, and fails loudly.

Settings are read once per process, so each case loads them in a fresh
interpreter with exactly the environment it describes.
"""

import json
import os
import shutil
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


# -- The checkout's .env (read by the settings, never by the test run) ------------

SHOW_SECRET = (
    "import django; from django.conf import settings; django.setup(); "
    "print(settings.DEBUG, settings.SECRET_KEY)"
)


def project_copy(tmp_path: Path) -> Path:
    """The code a fresh checkout has, without the developer's .env or database."""
    copy = tmp_path / "checkout"
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
    for package in ("allocation_project", "allocation", "domain"):
        shutil.copytree(ROOT / package, copy / package, ignore=ignore)
    shutil.copy2(ROOT / "manage.py", copy / "manage.py")
    return copy


def run_python(cwd: Path, code_or_args: list[str], **env: str) -> subprocess.CompletedProcess:
    """Our interpreter in ``cwd`` with no settings variable but those given.

    ENV_FILE is dropped too (the test run empties it), so the settings look
    for a .env where a developer's shell would: in the project folder.
    """
    kept = {"DATABASE_URL", "SECRET_KEY", "DEBUG", "ALLOWED_HOSTS", "ENV_FILE"}
    clean = {k: v for k, v in os.environ.items() if k not in kept}
    clean["DJANGO_SETTINGS_MODULE"] = "allocation_project.settings"
    clean.update(env)
    return subprocess.run(  # noqa: S603 - our own interpreter and code
        [sys.executable, *code_or_args],
        cwd=cwd,
        env=clean,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_the_test_run_reads_no_dotenv_file():
    from django.conf import settings

    assert os.environ["ENV_FILE"] == ""
    assert settings.ENV_FILE == ""


def test_without_a_dotenv_file_production_still_refuses_to_load(tmp_path):
    checkout = project_copy(tmp_path)

    result = run_python(checkout, ["-c", SHOW_SECRET])

    assert result.returncode == 1
    assert "django.core.exceptions.ImproperlyConfigured: SECRET_KEY is not set" in result.stderr


def test_the_dotenv_file_of_the_project_folder_fills_in_debug_and_secret_key(tmp_path):
    checkout = project_copy(tmp_path)
    (checkout / ".env").write_text("# local\nDEBUG=1\nSECRET_KEY=from-the-file\n")

    result = run_python(checkout, ["-c", SHOW_SECRET])

    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["True", "from-the-file"]


def test_the_environment_wins_over_the_dotenv_file(tmp_path):
    checkout = project_copy(tmp_path)
    (checkout / ".env").write_text("DEBUG=1\nSECRET_KEY=from-the-file\n")

    result = run_python(checkout, ["-c", SHOW_SECRET], DEBUG="0", SECRET_KEY="from-the-env")

    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["False", "from-the-env"]


def test_an_empty_env_file_variable_ignores_the_dotenv_file(tmp_path):
    checkout = project_copy(tmp_path)
    (checkout / ".env").write_text("DEBUG=1\nSECRET_KEY=from-the-file\n")

    result = run_python(checkout, ["-c", SHOW_SECRET], ENV_FILE="")

    assert result.returncode == 1
    assert "ImproperlyConfigured: SECRET_KEY is not set" in result.stderr


def test_env_file_names_another_file_and_a_missing_one_is_an_error(tmp_path):
    checkout = project_copy(tmp_path)
    elsewhere = tmp_path / "local.env"
    elsewhere.write_text("DEBUG=0\nSECRET_KEY=from-elsewhere\n")

    named = run_python(checkout, ["-c", SHOW_SECRET], ENV_FILE=str(elsewhere))
    missing = run_python(checkout, ["-c", SHOW_SECRET], ENV_FILE=str(tmp_path / "nothing.env"))

    assert named.returncode == 0, named.stderr
    assert named.stdout.split() == ["False", "from-elsewhere"]
    assert missing.returncode == 1
    assert f"ImproperlyConfigured: ENV_FILE={tmp_path / 'nothing.env'} is not a file" in (
        missing.stderr
    )


def test_manage_py_commands_work_with_only_a_dotenv_file(tmp_path):
    checkout = project_copy(tmp_path)
    database = tmp_path / "db.sqlite3"
    (checkout / ".env").write_text(
        f"DEBUG=1\nSECRET_KEY=from-the-file\nDATABASE_URL=sqlite:///{database}\n"
    )

    migrate = run_python(checkout, ["manage.py", "migrate", "--noinput"])
    check = run_python(checkout, ["manage.py", "check_stock"])

    assert migrate.returncode == 0, migrate.stderr
    assert check.returncode == 0, check.stderr
    assert check.stdout.strip() == "ok: 0 batches, 0 lines checked"
    assert database.is_file()
