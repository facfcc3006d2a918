"""Playwright against ``live_server``, driving Debian's chromium (never a downloaded browser).

Each test gets a fresh browser context whose base URL is the live server, and
a ``screenshot(label)`` helper that saves PNGs under test-artifacts/screenshots/
(git-ignored); a failing test leaves a ``-FAILED`` screenshot there too.
"""

from __future__ import annotations

import importlib
import os
import re
from collections.abc import Callable, Iterator
from pathlib import Path
from types import SimpleNamespace

import pytest
from django.apps import apps as global_apps
from django.db import connection

from tests.factories import PASSWORD


@pytest.fixture(autouse=True, scope="package")
def allow_orm_beside_playwright():
    """Playwright's sync API keeps an asyncio loop running in this thread, and
    Django refuses ORM calls from such a thread unless told it is safe. It is:
    the tests call the ORM synchronously between browser steps. Only for these
    tests: the variable must not leak into anything else this run starts."""
    previous = os.environ.get("DJANGO_ALLOW_ASYNC_UNSAFE")
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    yield
    if previous is None:
        del os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"]
    else:
        os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = previous


CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]
PROJECT_ROOT = Path(__file__).resolve().parents[2]  # <root>/tests/browser/conftest.py
SCREENSHOTS = PROJECT_ROOT / "test-artifacts" / "screenshots"


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(config, items):
    """Every test of this folder is a browser test, whatever its module says:
    marked ``browser`` (``-m browser`` / ``-m "not browser"`` select this
    folder), and skipped only where Debian's chromium is not installed
    (``.ci/run`` installs it, so CI always runs them)."""
    here = Path(__file__).resolve().parent
    for item in items:
        if here in item.path.resolve().parents:
            item.add_marker(pytest.mark.browser)
            item.add_marker(
                pytest.mark.skipif(
                    not CHROMIUM.exists(),
                    reason="browser tests need Debian's chromium at /usr/bin/chromium",
                )
            )


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    setattr(item, f"report_{report.when}", report)


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True
        )
        yield browser
        browser.close()


@pytest.fixture(autouse=True)
def _plain_http_cookies(settings):
    # The live server speaks plain HTTP; with DEBUG off the settings mark
    # session and CSRF cookies Secure, which a browser would not send back.
    settings.SESSION_COOKIE_SECURE = False
    settings.CSRF_COOKIE_SECURE = False


def _file_name(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "-", text).strip("-")


@pytest.fixture
def page(browser, live_server, request) -> Iterator:
    # A test's screenshots are those of its last run only.
    for stale in SCREENSHOTS.glob(f"{_file_name(request.node.name)}-*.png"):
        stale.unlink()
    context = browser.new_context(base_url=live_server.url, viewport={"width": 1440, "height": 900})
    context.set_default_timeout(20_000)
    page = context.new_page()
    yield page
    report = getattr(request.node, "report_call", None)
    if report is not None and report.failed:
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(
            path=SCREENSHOTS / f"{_file_name(request.node.name)}-FAILED.png", full_page=True
        )
    context.close()


@pytest.fixture
def screenshot(page, request) -> Callable[[str], Path]:
    """``screenshot("label")`` saves the page as <test name>-<label>.png and returns the path."""

    def take(label: str) -> Path:
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        path = SCREENSHOTS / f"{_file_name(request.node.name)}-{_file_name(label)}.png"
        page.screenshot(path=path, full_page=True)
        return path

    return take


@pytest.fixture
def log_in(page) -> Callable:
    """``log_in(user)``: through the admin's login form, as a person would."""

    def do(user) -> None:
        page.goto("/admin/login/")
        page.fill("#id_username", user.username)
        page.fill("#id_password", PASSWORD)
        page.click("input[type=submit]")
        page.wait_for_selector("#user-tools")

    return do


@pytest.fixture
def groups(transactional_db) -> None:
    """The groups as the migrations leave them: made by 0002, given ``view_event`` by 0004.

    A transactional test ends by emptying every table, groups included, so
    the groups are made again here rather than taken from the migration run.
    """
    schema_editor = SimpleNamespace(connection=connection)
    importlib.import_module("allocation.migrations.0002_groups").create_groups(
        global_apps, schema_editor
    )
    importlib.import_module("allocation.migrations.0004_event_permissions").grant(
        global_apps, schema_editor
    )
