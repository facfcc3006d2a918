"""Running commands in tests: files, standard input, captured output; for commands run
as processes, the checkout and the test database."""

from __future__ import annotations

import io
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection


@dataclass
class Result:
    stdout: str
    stderr: str

    @property
    def err_lines(self) -> list[str]:
        return self.stderr.splitlines()


def run(name: str, *args: str, **options) -> Result:
    stdout, stderr = io.StringIO(), io.StringIO()
    call_command(name, *args, stdout=stdout, stderr=stderr, **options)
    return Result(stdout.getvalue(), stderr.getvalue())


def fail(name: str, *args: str, **options) -> tuple[CommandError, Result]:
    """Run a command that must fail; its CommandError and what it printed before."""
    stdout, stderr = io.StringIO(), io.StringIO()
    with pytest.raises(CommandError) as caught:
        call_command(name, *args, stdout=stdout, stderr=stderr, **options)
    return caught.value, Result(stdout.getvalue(), stderr.getvalue())


def write(tmp_path: Path, name: str, content: str | bytes) -> str:
    path = tmp_path / name
    if isinstance(content, str):
        content = content.encode()
    path.write_bytes(content)
    return str(path)


def feed_stdin(monkeypatch, content: str | bytes) -> None:
    """Make ``content`` the process's standard input (read as bytes via ``sys.stdin.buffer``)."""
    if isinstance(content, str):
        content = content.encode()
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(content)))


def csv_text(header: str, *rows: str, newline: str = "\n") -> str:
    return newline.join([header, *rows]) + newline


#: The checkout: where manage.py is, for commands run as processes.
ROOT = Path(__file__).resolve().parents[2]


def database_url() -> str:
    """The test database, as DATABASE_URL for a subprocess."""
    settings = connection.settings_dict
    if connection.vendor == "sqlite":
        return f"sqlite:///{settings['NAME']}"
    user = settings["USER"] or "postgres"
    password = f":{settings['PASSWORD']}" if settings["PASSWORD"] else ""
    host = settings["HOST"] or "127.0.0.1"
    return f"postgres://{user}{password}@{host}:{settings['PORT'] or 5432}/{settings['NAME']}"
