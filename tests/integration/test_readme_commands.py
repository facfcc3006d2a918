"""The README's first commands work as written, in a fresh checkout.

Every shell command of the README's "Quick start" and "Bulk commands" sections
is read from README.md and run, in order, in a fresh copy of the project (no
.env, no database: what a new clone has), with a minimal environment, as a
new user would type it. So the README cannot drift from what works: a command
that fails, or prints another summary than its comment shows, fails here.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

# `./scripts/test` runs the whole suite, this test included: never from here.
EXCLUDED_PROGRAMS = {"./scripts/test"}

# The one-line summaries of SPEC 3 (and the export's count). A README comment
# that shows one promises exactly that line; without one, the output must
# still hold a line of the command's kind.
SUMMARIES = {
    "load_batches": r"created \d+, updated \d+, unchanged \d+",
    "allocate_orders": (
        r"allocated \d+, already_allocated \d+, out_of_stock \d+, invalid_sku \d+, "
        r"line_conflict \d+"
    ),
    "export_allocations": r"exported \d+ rows?",
    "check_stock": r"ok: \d+ batches, \d+ lines checked",
}

# What a fresh clone does not have: local state, caches, the VCS (all ignored
# by git), and folders the README's commands do not use.
NOT_IN_A_FRESH_CLONE = shutil.ignore_patterns(
    ".git",
    ".venv",
    ".env",
    "db.sqlite3*",
    "staticfiles",
    "__pycache__",
    "*.py[cod]",
    ".pytest_cache",
    ".ruff_cache",
    ".mypy_cache",
    ".hypothesis",
    "test-artifacts",
    "*.log",
    "tests",
    "bench",
)

SERVER_START_TIMEOUT = 90  # seconds: the first run may check the venv with pip
COMMAND_TIMEOUT = 120


@dataclass
class Command:
    line: str  # as written in the README, run by bash
    comment: str  # its trailing comment and the comment lines right below it
    argv: list[str] = field(default_factory=list)

    @property
    def program(self) -> str:
        """The program run, after any leading VAR=value assignments."""
        words = [w for w in self.argv if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*=.*", w)]
        return words[0] if words else ""

    @property
    def management_command(self) -> str | None:
        if "manage.py" in self.argv:
            rest = self.argv[self.argv.index("manage.py") + 1 :]
            return rest[0] if rest else None
        return None


def section(readme: str, title: str) -> str:
    match = re.search(rf"^## {re.escape(title)}\n(.*?)(?=^## |\Z)", readme, re.M | re.S)
    assert match, f"README.md has no section '## {title}'"
    return match.group(1)


def shell_commands(text: str) -> list[Command]:
    """The commands of the ```sh blocks, each with the comment that describes it."""
    commands: list[Command] = []
    for block in re.findall(r"^```sh\n(.*?)^```", text, re.M | re.S):
        pending = ""
        for raw in block.splitlines():
            line = pending + raw
            if line.endswith("\\"):
                pending = line[:-1] + " "
                continue
            pending = ""
            stripped = line.strip()
            if not stripped:
                continue
            if stripped.startswith("#"):
                # A comment line right below a command tells what it prints.
                assert commands, f"a comment before any command: {stripped}"
                commands[-1].comment += " " + stripped.lstrip("#").strip()
                continue
            argv = shlex.split(stripped, comments=True)
            _, _, comment = stripped.partition(" #")
            commands.append(Command(line=stripped, comment=comment.strip(), argv=argv))
    return commands


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def fresh_environment(**extra: str) -> dict[str, str]:
    """What a new user's shell has: none of the variables the test run sets."""
    keep = ("PATH", "HOME", "LANG", "LC_ALL", "TMPDIR", "USER", "TERM")
    env = {name: os.environ[name] for name in keep if name in os.environ}
    env.update(extra)
    return env


@pytest.fixture
def checkout(tmp_path: Path) -> Path:
    """A copy of the project as a fresh clone has it, sharing the test run's virtualenv."""
    copy = tmp_path / "checkout"
    shutil.copytree(ROOT, copy, ignore=NOT_IN_A_FRESH_CLONE, symlinks=True)
    # The README's commands use .venv/bin/python: link the one running the tests
    # (scripts/run only checks it, since its requirements are installed).
    venv = ROOT / ".venv" if (ROOT / ".venv" / "bin" / "python").exists() else Path(sys.prefix)
    (copy / ".venv").symlink_to(venv, target_is_directory=True)
    return copy


@contextlib.contextmanager
def serving(command: Command, checkout: Path, log: Path) -> Iterator[str]:
    """Run ./scripts/run (which serves for ever) until /healthz answers, then stop it."""
    port = free_port()
    with log.open("w") as out:
        server = subprocess.Popen(  # noqa: S602 - the README's own command line
            command.line,
            shell=True,
            executable="/bin/bash",
            cwd=checkout,
            env=fresh_environment(PORT=str(port)),
            stdout=out,
            stderr=subprocess.STDOUT,
            # Its own process group: runserver's autoreloader runs a child
            # process, and both must stop with it.
            start_new_session=True,
        )
    try:
        url = f"http://127.0.0.1:{port}/healthz"
        deadline = time.monotonic() + SERVER_START_TIMEOUT
        while True:
            assert server.poll() is None, f"{command.line} exited early:\n{log.read_text()}"
            assert time.monotonic() < deadline, f"{url} never answered:\n{log.read_text()}"
            try:
                with urllib.request.urlopen(url, timeout=2) as response:  # noqa: S310 - local
                    health = (response.status, json.loads(response.read()))
                break
            except OSError:
                time.sleep(0.3)
        assert health == (200, {"status": "ok"}), log.read_text()
        yield log.read_text()
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(server.pid, signal.SIGTERM)
        try:
            server.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)
            server.wait()


def run(command: Command, checkout: Path) -> subprocess.CompletedProcess:
    return subprocess.run(  # noqa: S603 - the README's own command line
        ["/bin/bash", "-c", command.line],
        cwd=checkout,
        env=fresh_environment(),
        capture_output=True,
        text=True,
        timeout=COMMAND_TIMEOUT,
    )


def check_summary(command: Command, result: subprocess.CompletedProcess) -> None:
    """The command printed the summary its README comment shows, or one of its kind."""
    output = [line.strip() for line in (result.stdout + result.stderr).splitlines()]
    pattern = SUMMARIES[command.management_command]
    promised = re.search(pattern, command.comment)
    if promised:
        assert promised.group(0) in output, (
            f"README says `{command.line}` prints '{promised.group(0)}'; it printed:\n"
            f"{result.stdout}{result.stderr}"
        )
    else:
        assert any(re.fullmatch(pattern, line) for line in output), (
            f"`{command.line}` printed no summary:\n{result.stdout}{result.stderr}"
        )


def test_readme_quick_start_and_bulk_commands_work_in_a_fresh_checkout(checkout, tmp_path):
    readme = (ROOT / "README.md").read_text()
    commands = shell_commands(section(readme, "Quick start")) + shell_commands(
        section(readme, "Bulk commands")
    )
    ran = [c for c in commands if c.program not in EXCLUDED_PROGRAMS]
    # The README keeps showing the first command and every bulk command.
    assert "./scripts/run" in [c.program for c in ran]
    assert set(SUMMARIES) <= {c.management_command for c in ran}

    for command in ran:
        if command.program == "./scripts/run":
            with serving(command, checkout, tmp_path / "run.log") as output:
                pass
            assert "writing local development settings" in output, output
            assert re.search(r"password: \S+", output), output
            assert re.search(r"API token: [0-9a-f]{40}", output), output
            dotenv = (checkout / ".env").read_text()
            assert re.search(r"^DEBUG=1$", dotenv, re.M)
            assert re.search(r"^SECRET_KEY=[A-Za-z0-9_-]{50,}$", dotenv, re.M)
            assert (checkout / ".env").stat().st_mode & 0o077 == 0
            continue
        result = run(command, checkout)
        assert result.returncode == 0, (
            f"`{command.line}` exited {result.returncode}:\n{result.stdout}{result.stderr}"
        )
        if command.management_command in SUMMARIES:
            check_summary(command, result)

    # The files the commands name were written where the README says.
    assert (checkout / "report.csv").read_text().startswith("order_id,sku,qty,outcome,batches")
    assert (checkout / "picks.csv").read_text().startswith("order_id,sku,qty,batch_reference")


def test_run_keeps_an_existing_env_file(checkout, tmp_path):
    mine = "# my own settings\nDEBUG=1\nSECRET_KEY=mine-and-not-generated\n"
    (checkout / ".env").write_text(mine)

    with serving(Command("./scripts/run", ""), checkout, tmp_path / "run.log") as output:
        pass

    assert (checkout / ".env").read_text() == mine
    assert "kept as it is" in output
