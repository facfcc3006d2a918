"""API fuzzing against real gunicorn workers: schemathesis over /api/schema/.

    .venv/bin/python bench/fuzz.py                          # SQLite in a temp dir
    .venv/bin/python bench/fuzz.py --postgres allocation_fuzz --max-examples 50

1. Creates a fresh database (a SQLite file in a temporary directory, or the
   named PostgreSQL database on 127.0.0.1, dropped and recreated), migrates
   it, creates a superuser and its token with ``manage.py api_token``.
2. Starts gunicorn (the repository's gunicorn.conf.py, 2 workers) on a free
   port of 127.0.0.1 with production settings (DEBUG off).
3. Runs ``st run`` (schemathesis CLI, every check, settings in
   schemathesis.toml) with the token: examples, coverage, fuzzing and stateful
   phases, a bounded number of examples per operation.
4. Reads gunicorn's access log: counts answers by status, fails on any 5xx,
   and lists each documented status code of each operation that the run
   never produced (informational: tests/e2e/test_documented_statuses.py
   produces every one of them, 503 included).
5. Runs ``manage.py check_stock``: whatever the fuzzer did, every invariant
   must still hold.

Stops gunicorn by PID and drops the database, even on failure. Exit status 0
only if schemathesis passed, no 5xx was served and check_stock passed.
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
import tempfile
import urllib.request
from collections import Counter, defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench import harness  # noqa: E402

ST = str(Path(harness.PYTHON).with_name("st"))
ACCESS_LINE = re.compile(r'"(?P<method>[A-Z]+) (?P<target>\S+) HTTP/[\d.]+" (?P<status>\d{3}) ')


def log(message: str) -> None:
    harness.log("fuzz", message)


def documented_statuses(base_url: str) -> dict[tuple[str, str], set[int]]:
    with urllib.request.urlopen(f"{base_url}/api/schema/?format=json", timeout=10) as response:  # noqa: S310
        schema = json.load(response)
    return {
        (method.upper(), path): {int(code) for code in operation["responses"]}
        for path, operations in schema["paths"].items()
        for method, operation in operations.items()
    }


def template_of(path: str, templates: list[str]) -> str | None:
    for template in templates:
        pattern = "^" + re.sub(r"\\\{[^}]+\\\}", "[^/]+", re.escape(template)) + "$"
        if re.match(pattern, path):
            return template
    return None


def read_access_log(path: Path) -> list[tuple[str, str, int]]:
    answers = []
    for line in path.read_text(errors="replace").splitlines():
        match = ACCESS_LINE.search(line)
        if match:
            target = match["target"].split("?", 1)[0]
            answers.append((match["method"], target, int(match["status"])))
    return answers


def seed(base_url: str, token: str) -> None:
    """Stock under the short names generators try first, so allocations can succeed too."""
    calls = [
        ("/api/batches/", {"reference": "0", "sku": "0", "purchased_quantity": 100}),
        (
            "/api/batches/",
            {"reference": "1", "sku": "0", "purchased_quantity": 5, "eta": "2030-01-01"},
        ),
        ("/api/allocations/", {"order_id": "0", "sku": "0", "qty": 1}),
    ]
    for path, body in calls:
        request = urllib.request.Request(  # noqa: S310 - our own http:// URL
            f"{base_url}{path}",
            data=json.dumps(body).encode(),
            headers={"Authorization": f"Token {token}", "Content-Type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310
            if response.status != 201:
                raise RuntimeError(f"seeding {path} answered {response.status}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--postgres", metavar="NAME", help="fuzz on this PostgreSQL database")
    parser.add_argument("--max-examples", type=int, default=25, help="per operation (25)")
    parser.add_argument("--seed", type=int, default=None, help="schemathesis seed")
    parser.add_argument("--workers", type=int, default=2, help="gunicorn workers (2)")
    parser.add_argument("--junit", type=Path, help="also write a JUnit XML report here")
    args = parser.parse_args()

    failures: list[str] = []
    with tempfile.TemporaryDirectory(prefix="allocation-fuzz-") as scratch:
        scratch_dir = Path(scratch)
        if args.postgres:
            harness.recreate_postgres_db(args.postgres)
            database_url = harness.postgres_url(args.postgres)
        else:
            database_url = f"sqlite:///{scratch_dir / 'fuzz.sqlite3'}"
        env = harness.app_env(database_url, WEB_CONCURRENCY=str(args.workers))
        server = harness.Gunicorn("fuzz", env, workers=args.workers, log_dir=scratch_dir)
        try:
            log(f"database {database_url}")
            token = harness.set_up_database(env, "fuzzer")
            server.start()
            log(f"gunicorn on {server.url}, workers {server.worker_pids()}")
            seed(server.url, token)

            # Run from the scratch directory, so that schemathesis' cache
            # (.schemathesis/) does not land in the repository.
            command = [
                ST,
                "--config-file",
                str(ROOT / "schemathesis.toml"),
                "run",
                f"{server.url}/api/schema/",
                "--header",
                f"Authorization: Token {token}",
                "--max-examples",
                str(args.max_examples),
                "--phases",
                "examples,coverage,fuzzing,stateful",
                "--request-timeout",
                "10",
                "--no-color",
            ]
            if args.seed is not None:
                command += ["--seed", str(args.seed)]
            if args.junit:
                command += ["--report", "junit", "--report-junit-path", str(args.junit)]
            log(
                "schemathesis: "
                + " ".join(c if "Token" not in c else "Authorization: ***" for c in command)
            )
            result = subprocess.run(command, cwd=scratch_dir, env=env, check=False)  # noqa: S603
            if result.returncode != 0:
                failures.append(f"schemathesis exited with {result.returncode}")

            documented = documented_statuses(server.url)
            answers = read_access_log(scratch_dir / "fuzz.access.log")
            by_status = Counter(status for _, _, status in answers)
            print(f"\nrequests served: {len(answers)}")
            print("by status: " + ", ".join(f"{s}: {n}" for s, n in sorted(by_status.items())))
            server_errors = [a for a in answers if a[2] >= 500]
            print(f"5xx: {len(server_errors)}")
            if server_errors:
                failures.append(f"{len(server_errors)} answers were 5xx")
                for method, target, status in server_errors[:20]:
                    print(f"  {status} {method} {target}")

            seen: dict[tuple[str, str], set[int]] = defaultdict(set)
            templates = sorted({path for _, path in documented}, key=len, reverse=True)
            for method, target, status in answers:
                template = template_of(target, templates)
                if template is not None:
                    seen[method, template].add(status)
            print("documented status codes not produced by this run:")
            for (method, path), codes in sorted(documented.items()):
                missing = sorted(codes - seen[method, path])
                if missing:
                    print(f"  {method} {path}: {', '.join(map(str, missing))}")

            stock = harness.manage(env, "check_stock", check=False)
            print(f"check_stock (exit {stock.returncode}): {stock.stdout.strip()}")
            if stock.returncode != 0:
                failures.append("check_stock found violations")
                print(stock.stderr)
        finally:
            server.stop()
            if args.postgres:
                harness.drop_postgres_db(args.postgres)

    if failures:
        print("FAILED: " + "; ".join(failures))
        return 1
    print("fuzz: passed (schemathesis checks, zero 5xx, check_stock ok)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
