"""Plumbing shared by bench/soak.py and bench/fuzz.py: databases, manage.py, gunicorn.

Every process started here is remembered by PID and stopped by PID; every
database created here is dropped by name. Nothing binds anything but 127.0.0.1.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PYTHON = sys.executable
GUNICORN = str(Path(PYTHON).with_name("gunicorn"))
PG = {"host": "127.0.0.1", "port": 5432, "user": "postgres"}


def log(tag: str, message: str) -> None:
    print(f"[{tag} {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def postgres_url(name: str) -> str:
    return f"postgres://{PG['user']}@{PG['host']}:{PG['port']}/{name}"


def _admin_connection():
    import psycopg2

    connection = psycopg2.connect(dbname="postgres", connect_timeout=5, **PG)
    connection.autocommit = True
    return connection


def admin_sql(*statements: str) -> None:
    """Run statements on the maintenance database (autocommit)."""
    with contextlib.closing(_admin_connection()) as connection, connection.cursor() as cursor:
        for statement in statements:
            cursor.execute(statement)


def query(database: str, sql: str) -> list[tuple]:
    import psycopg2

    with contextlib.closing(psycopg2.connect(dbname=database, connect_timeout=5, **PG)) as conn:
        with conn.cursor() as cursor:
            cursor.execute(sql)
            return cursor.fetchall()


def recreate_postgres_db(name: str) -> None:
    with contextlib.closing(_admin_connection()) as connection, connection.cursor() as cursor:
        cursor.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        cursor.execute(f'CREATE DATABASE "{name}"')


def drop_postgres_db(name: str) -> None:
    for _ in range(10):
        try:
            with (
                contextlib.closing(_admin_connection()) as connection,
                connection.cursor() as cursor,
            ):
                cursor.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            return
        except Exception as error:  # noqa: BLE001 - PostgreSQL may still be restarting
            log("harness", f"drop {name} failed ({error}); retrying")
            time.sleep(1)


def django_on_new_database(name: str) -> None:
    """Set up this process's Django (product settings, DEBUG off) on a new, migrated database.

    For the benches that call the service in process (``hot_sku.py``,
    ``write_statements.py``): ``name`` is dropped if it exists and created
    on 127.0.0.1; drop it with ``drop_postgres_db`` when done.
    """
    recreate_postgres_db(name)
    os.environ.update(
        DATABASE_URL=postgres_url(name),
        DJANGO_SETTINGS_MODULE="allocation_project.settings",
        SECRET_KEY="bench-only-" + "x" * 40,
        DEBUG="0",
    )
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))
    import django
    from django.core.management import call_command

    django.setup()
    call_command("migrate", verbosity=0)


def app_env(database_url: str, **extra: str) -> dict[str, str]:
    """The environment of a production-like process: DEBUG off, only 127.0.0.1."""
    env = dict(os.environ)
    env.update(
        DATABASE_URL=database_url,
        SECRET_KEY=secrets.token_urlsafe(50),
        DEBUG="0",
        ALLOWED_HOSTS="127.0.0.1",
        # Plain HTTP on 127.0.0.1: no TLS proxy in front to redirect to.
        SECURE_SSL_REDIRECT="0",
        WHITENOISE_USE_FINDERS="1",
        LOG_LEVEL="WARNING",
        PYTHONUNBUFFERED="1",
    )
    env.update(extra)
    return env


def manage(env: dict[str, str], *args: str, check: bool = True) -> subprocess.CompletedProcess:
    return subprocess.run(  # noqa: S603 - our own manage.py, fixed arguments
        [PYTHON, "manage.py", *args],
        cwd=ROOT,
        env=env,
        check=check,
        capture_output=True,
        text=True,
        timeout=300,
    )


def set_up_database(env: dict[str, str], username: str) -> str:
    """Migrate, create a superuser and return its API token (via manage.py api_token)."""
    manage(env, "migrate", "--noinput", "-v", "0")
    manage(
        {**env, "DJANGO_SUPERUSER_PASSWORD": secrets.token_urlsafe(16)},
        "createsuperuser",
        "--noinput",
        "--username",
        username,
        "--email",
        f"{username}@example.com",
    )
    return manage(env, "api_token", "create", username).stdout.strip()


class Gunicorn:
    """One gunicorn master on 127.0.0.1, with the repository's gunicorn.conf.py."""

    def __init__(
        self,
        name: str,
        env: dict[str, str],
        workers: int,
        log_dir: Path,
        extra_args: tuple[str, ...] = (),
    ) -> None:
        self.name = name
        self.extra_args = list(extra_args)
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.env = env
        self.workers = workers
        self.log_dir = log_dir
        self.process: subprocess.Popen | None = None

    @property
    def access_log(self) -> Path:
        return self.log_dir / f"{self.name}.access.log"

    @property
    def error_log(self) -> Path:
        return self.log_dir / f"{self.name}.error.log"

    def start(self) -> None:
        args = [
            GUNICORN,
            "-c",
            str(ROOT / "gunicorn.conf.py"),
            "--bind",
            f"127.0.0.1:{self.port}",
            "--workers",
            str(self.workers),
            "--access-logfile",
            str(self.access_log),
            "--error-logfile",
            str(self.error_log),
            *self.extra_args,
        ]
        self.process = subprocess.Popen(  # noqa: S603 - fixed arguments
            args,
            cwd=ROOT,
            env=self.env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        self.wait_ready()

    def wait_ready(self, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"gunicorn {self.name} exited with {self.process.returncode}")
            try:
                with urllib.request.urlopen(f"{self.url}/healthz", timeout=2) as response:  # noqa: S310
                    if response.status == 200 and len(self.worker_pids()) == self.workers:
                        return
            except (urllib.error.URLError, OSError):
                pass
            time.sleep(0.2)
        raise RuntimeError(f"gunicorn {self.name} did not become ready on {self.url}")

    def worker_pids(self) -> list[int]:
        """The master's current worker processes (children), read from /proc."""
        if self.process is None:
            return []
        children = Path(f"/proc/{self.process.pid}/task/{self.process.pid}/children")
        try:
            return [int(pid) for pid in children.read_text().split()]
        except (FileNotFoundError, ProcessLookupError):
            return []

    def stop(self) -> None:
        """SIGTERM the master by PID (it stops its workers), SIGKILL if it lingers."""
        if self.process is None or self.process.poll() is not None:
            return
        workers = self.worker_pids()
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout=35)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=10)
        for pid in workers:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
