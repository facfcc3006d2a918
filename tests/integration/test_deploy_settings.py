"""Production settings: ``manage.py check --deploy`` is clean, and the headers and cookies show it.

The check runs in a subprocess with the environment production has (DEBUG
off, a real SECRET_KEY, ALLOWED_HOSTS, nothing else), since settings are read
once per process.
"""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
from pathlib import Path

import pytest
from django.conf import settings

ROOT = Path(__file__).resolve().parents[2]


def check_deploy(**env: str) -> subprocess.CompletedProcess:
    clean = {
        k: v for k, v in os.environ.items() if not k.startswith(("SECURE_", "SESSION_", "CSRF_"))
    }
    clean.update(
        DEBUG="0",
        SECRET_KEY=secrets.token_urlsafe(50),
        ALLOWED_HOSTS="allocation.example.com",
    )
    clean.pop("DATABASE_URL", None)
    clean.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)  # browser tests' setting, never production's
    clean.update(env)
    return subprocess.run(  # noqa: S603 - our own manage.py
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        cwd=ROOT,
        env=clean,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_check_deploy_is_clean_with_production_settings():
    result = check_deploy()

    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "System check identified no issues (1 silenced)."


def test_check_deploy_fails_with_debug_on():
    result = check_deploy(DEBUG="1")

    assert result.returncode == 1
    assert "security.W018" in result.stderr  # DEBUG in deployment


@pytest.mark.parametrize(
    ("variable", "warning"),
    [
        ("SECURE_HSTS_SECONDS=0", "security.W004"),
        ("SECURE_SSL_REDIRECT=0", "security.W008"),
        ("SESSION_COOKIE_SECURE=0", "security.W012"),
        ("CSRF_COOKIE_SECURE=0", "security.W016"),
    ],
)
def test_each_security_setting_is_configurable_and_checked(variable, warning):
    name, value = variable.split("=")

    result = check_deploy(**{name: value})

    assert result.returncode == 1
    assert warning in result.stderr


def test_a_short_secret_key_fails_the_check():
    result = check_deploy(SECRET_KEY="short")

    assert result.returncode == 1
    assert "security.W009" in result.stderr


def test_the_test_settings_are_the_production_ones_where_it_matters():
    # pytest-env sets DEBUG=0 and turns only the HTTPS redirect off.
    assert settings.DEBUG is False
    assert settings.SESSION_COOKIE_SECURE is True
    assert settings.CSRF_COOKIE_SECURE is True
    assert settings.SESSION_COOKIE_HTTPONLY is True
    assert settings.SECURE_HSTS_SECONDS == 31536000
    assert settings.X_FRAME_OPTIONS == "DENY"


@pytest.mark.django_db
def test_responses_carry_the_security_headers(client):
    response = client.get("/healthz", secure=True)

    assert response.status_code == 200
    assert response["Strict-Transport-Security"] == "max-age=31536000; includeSubDomains"
    assert response["X-Content-Type-Options"] == "nosniff"
    assert response["Referrer-Policy"] == "same-origin"
    admin = client.get("/admin/login/", secure=True)
    assert admin["X-Frame-Options"] == "DENY"


@pytest.mark.django_db
def test_session_and_csrf_cookies_are_secure_and_session_is_http_only(client, django_user_model):
    django_user_model.objects.create_user("clerk", password="correct-horse-battery", is_staff=True)
    page = client.get("/admin/login/", secure=True)
    assert page.cookies["csrftoken"]["secure"] is True

    response = client.post(
        "/admin/login/",
        {"username": "clerk", "password": "correct-horse-battery", "next": "/admin/"},
        secure=True,
    )

    assert response.status_code == 302
    session = response.cookies["sessionid"]
    assert session["secure"] is True
    assert session["httponly"] is True
