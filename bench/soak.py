"""Soak across processes: two gunicorn servers, one PostgreSQL database, 32 clients.

    .venv/bin/python bench/soak.py                  # hostile, clean and faults phases
    .venv/bin/python bench/soak.py --phases clean --duration 20
    .venv/bin/python bench/soak.py --outage terminate   # outage without restarting PostgreSQL

Not part of the test suite (it takes about 2.5 minutes and restarts the
PostgreSQL cluster). What it does:

1. Creates the database ``allocation_soak`` on 127.0.0.1 (dropped first),
   migrates it, creates a superuser and its token (``manage.py api_token``),
   and starts two gunicorn servers (the repository's gunicorn.conf.py, 2
   workers each, ``GUNICORN_TIMEOUT=10``) on free ports of 127.0.0.1, both on
   that database. Seeds 20 SKUs with two batches each.
2. ``hostile``: bad input against the real servers: an oversized body (413),
   deeply nested JSON, SQL-looking identifiers, a wrong content type, an
   over-long header, and two slow clients (a trickled body, trickled
   headers) that gunicorn must cut off at its timeout while the servers go on
   serving. Every one must be refused cleanly, appear in a log, and write
   nothing.
3. ``clean``: 32 client threads for ``--duration`` seconds (60) over the 20
   contended SKUs, each request to either server at random: allocate,
   repeat an allocation, deallocate, PATCH a batch down and up, create a
   batch, delete a batch. Each client keeps a ledger of what the service
   acknowledged.
4. ``faults``: the same load, while a random gunicorn worker is killed with
   SIGKILL every ``--kill-every`` seconds (3) and, half-way through,
   PostgreSQL is restarted (``--outage restart``: pg_ctlcluster restart; or
   ``terminate``: this database refuses connections for a few seconds and its
   sessions are terminated, which leaves other databases alone).

After each load phase: zero 5xx other than the outage's 503 ``unavailable``
(fast: none slower than 5 s), zero 503 ``busy`` (no deadlock or conflict
surfaced to a client), ``manage.py check_stock`` passes, every line a client
saw acknowledged (201/200) and did not deallocate is in the database
(allocated, or backordered after a reduction) with its qty, every line
deallocated (204) or refused (409) is absent, both gunicorn masters are the
processes started at the beginning (recovery without a restart). The script
prints the operation counts and outcomes, writes bench/results/soak.json, and
exits 1 if any check failed. Every process it started is stopped by PID and
the database is dropped, even on failure; PostgreSQL is started again if an
outage left it down.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import random
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench import harness  # noqa: E402

DB_NAME = "allocation_soak"
SKUS = [f"SOAK-{i:02d}" for i in range(20)]
CLIENTS = 32
WORKERS = 2
GUNICORN_TIMEOUT = 10
REQUEST_TIMEOUT = 15  # seconds a client waits for an answer before giving up
OUTAGE_LATENCY_LIMIT = 5.0
RESULTS = ROOT / "bench" / "results" / "soak.json"
PG_ISREADY = shutil.which("pg_isready") or "/usr/bin/pg_isready"
PG_CTLCLUSTER = shutil.which("pg_ctlcluster") or "/usr/bin/pg_ctlcluster"

OPERATIONS = {
    "allocate": 35,
    "repeat": 10,
    "deallocate": 15,
    "patch_down": 10,
    "patch_up": 10,
    "create_batch": 10,
    "delete_batch": 10,
}


def log(message: str) -> None:
    harness.log("soak", message)


# -- HTTP ----------------------------------------------------------------------------


@dataclass
class Answer:
    status: int | None  # None: no HTTP answer (connection dropped, timed out)
    body: object
    error: str | None
    started: float
    latency: float

    @property
    def code(self) -> str | None:
        if isinstance(self.body, dict):
            return self.body.get("code")
        return None


def call(port: int, token: str, method: str, path: str, body=None) -> Answer:
    started = time.monotonic()
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=REQUEST_TIMEOUT)
    try:
        headers = {"Authorization": f"Token {token}", "Connection": "close"}
        payload = None
        if body is not None:
            payload = json.dumps(body)
            headers["Content-Type"] = "application/json"
        connection.request(method, path, body=payload, headers=headers)
        response = connection.getresponse()
        raw = response.read()
        try:
            parsed = json.loads(raw) if raw else None
        except ValueError:
            parsed = raw[:200].decode(errors="replace")
        return Answer(response.status, parsed, None, started, time.monotonic() - started)
    except (OSError, http.client.HTTPException) as error:
        return Answer(None, None, type(error).__name__, started, time.monotonic() - started)
    finally:
        connection.close()


# -- clients ---------------------------------------------------------------------------


@dataclass
class Ledger:
    """What one client was told. Keys are (order_id, sku)."""

    acknowledged: dict[tuple[str, str], int] = field(default_factory=dict)
    deallocated: set[tuple[str, str]] = field(default_factory=set)
    refused: set[tuple[str, str]] = field(default_factory=set)
    uncertain: set[tuple[str, str]] = field(default_factory=set)
    violations: list[str] = field(default_factory=list)
    outcomes: Counter = field(default_factory=Counter)
    answers: list[tuple[float, float, str, int | None, str | None]] = field(default_factory=list)


EXPECTED = {
    "allocate": {201, 409},
    "repeat": {200},
    "deallocate": {204},
    "patch_down": {200},
    "patch_up": {200},
    "create_batch": {201},
    "delete_batch": {200},
}


class Client(threading.Thread):
    def __init__(self, index: int, phase: str, ports: list[int], token: str, deadline: float,
                 max_requests: int, batches: dict[str, list[str]]) -> None:  # fmt: skip
        super().__init__(name=f"client-{index}", daemon=True)
        self.index = index
        self.prefix = f"{phase[0]}{index}"
        self.ports = ports
        self.token = token
        self.deadline = deadline
        self.max_requests = max_requests
        self.seed_batches = batches
        self.own_batches: list[tuple[str, str]] = []
        self.random = random.Random(f"{phase}-{index}")
        self.ledger = Ledger()
        self.counter = 0

    def request(self, operation: str, method: str, path: str, body=None) -> Answer:
        answer = call(self.random.choice(self.ports), self.token, method, path, body)
        self.ledger.outcomes[operation, answer.status or answer.error, answer.code] += 1
        self.ledger.answers.append(
            (answer.started, answer.latency, operation, answer.status, answer.code)
        )
        if answer.status is not None and answer.status < 500:
            if answer.status not in EXPECTED[operation]:
                self.ledger.violations.append(
                    f"{operation} {method} {path}: unexpected {answer.status} {answer.body}"
                )
        return answer

    def run(self) -> None:
        names = list(OPERATIONS)
        weights = list(OPERATIONS.values())
        while time.monotonic() < self.deadline and self.counter < self.max_requests:
            self.counter += 1
            operation = self.random.choices(names, weights)[0]
            getattr(self, operation)()

    # -- operations -------------------------------------------------------------------

    def allocate(self) -> None:
        key = (f"{self.prefix}-o{self.counter}", self.random.choice(SKUS))
        qty = self.random.randint(1, 4)
        answer = self.request(
            "allocate", "POST", "/api/allocations/", {"order_id": key[0], "sku": key[1], "qty": qty}
        )
        if answer.status == 201:
            self.ledger.acknowledged[key] = qty
        elif answer.status == 409 and answer.code == "out_of_stock":
            self.ledger.refused.add(key)
        elif answer.status is None or answer.status >= 500:
            self.ledger.uncertain.add(key)

    def _acknowledged_key(self):
        if not self.ledger.acknowledged:
            return None
        return self.random.choice(sorted(self.ledger.acknowledged))

    def repeat(self) -> None:
        key = self._acknowledged_key()
        if key is None:
            return self.allocate()
        qty = self.ledger.acknowledged[key]
        answer = self.request(
            "repeat", "POST", "/api/allocations/", {"order_id": key[0], "sku": key[1], "qty": qty}
        )
        if answer.status == 201:
            self.ledger.violations.append(f"repeat of acknowledged {key} created it again")

    def deallocate(self) -> None:
        key = self._acknowledged_key()
        if key is None:
            return self.allocate()
        answer = self.request("deallocate", "DELETE", f"/api/allocations/{key[0]}/{key[1]}/")
        del self.ledger.acknowledged[key]
        if answer.status == 204:
            self.ledger.deallocated.add(key)
        elif answer.status == 404:
            self.ledger.violations.append(f"acknowledged line {key} was gone (404)")
        else:
            self.ledger.uncertain.add(key)

    def _some_batch(self) -> str:
        sku = self.random.choice(SKUS)
        own = [ref for ref, s in self.own_batches if s == sku]
        return self.random.choice(self.seed_batches[sku] + own)

    def patch_down(self) -> None:
        self.request(
            "patch_down",
            "PATCH",
            f"/api/batches/{self._some_batch()}/",
            {"purchased_quantity": self.random.randint(0, 10)},
        )

    def patch_up(self) -> None:
        self.request(
            "patch_up",
            "PATCH",
            f"/api/batches/{self._some_batch()}/",
            {"purchased_quantity": self.random.randint(20, 40)},
        )

    def create_batch(self) -> None:
        reference = f"{self.prefix}-b{self.counter}"
        sku = self.random.choice(SKUS)
        body = {
            "reference": reference,
            "sku": sku,
            "purchased_quantity": self.random.randint(5, 20),
            "eta": self.random.choice([None, "2031-01-15", "2031-02-01"]),
        }
        if self.request("create_batch", "POST", "/api/batches/", body).status == 201:
            self.own_batches.append((reference, sku))

    def delete_batch(self) -> None:
        if not self.own_batches:
            return self.create_batch()
        reference, _ = self.own_batches.pop(self.random.randrange(len(self.own_batches)))
        answer = self.request("delete_batch", "DELETE", f"/api/batches/{reference}/")
        if answer.status == 404:
            self.ledger.violations.append(f"own batch {reference} was gone (404)")


# -- faults ----------------------------------------------------------------------------


class HealthMonitor(threading.Thread):
    """Polls each server's /healthz every 0.2 s: when it failed, when it came back."""

    def __init__(self, servers: list[harness.Gunicorn], stop: threading.Event) -> None:
        super().__init__(name="health", daemon=True)
        self.servers = servers
        self.stop = stop
        self.samples: list[tuple[float, str, int | None, float]] = []

    def run(self) -> None:
        while not self.stop.is_set():
            for server in self.servers:
                answer = call(server.port, "-", "GET", "/healthz")
                self.samples.append((answer.started, server.name, answer.status, answer.latency))
            self.stop.wait(0.2)


class Faults(threading.Thread):
    """SIGKILL a random worker every few seconds; one database outage half-way."""

    def __init__(self, servers, start: float, duration: float, kill_every: float,
                 outage: str, stop: threading.Event) -> None:  # fmt: skip
        super().__init__(name="faults", daemon=True)
        self.servers = servers
        self.start_time = start
        self.duration = duration
        self.kill_every = kill_every
        self.outage = outage
        self.stop = stop
        self.kills: list[tuple[float, str, int]] = []
        self.outage_window: tuple[float, float] | None = None
        self.random = random.Random("faults")
        self.error: str | None = None

    def run(self) -> None:
        outage_at = self.start_time + self.duration / 2
        next_kill = self.start_time + self.kill_every
        outage_done = self.outage == "none"
        while not self.stop.is_set():
            now = time.monotonic()
            if not outage_done and now >= outage_at:
                outage_done = True
                try:
                    self.outage_window = database_outage(self.outage)
                except Exception as error:  # noqa: BLE001 - reported, and PostgreSQL is restored
                    self.error = f"outage failed: {error}"
                    ensure_postgres_up()
            if now >= next_kill:
                next_kill = now + self.kill_every
                server = self.random.choice(self.servers)
                workers = server.worker_pids()
                if workers:
                    pid = self.random.choice(workers)
                    try:
                        os.kill(pid, signal.SIGKILL)
                        self.kills.append((now, server.name, pid))
                    except ProcessLookupError:
                        pass
            self.stop.wait(0.1)


def pg_version() -> str:
    return sorted(os.listdir("/etc/postgresql"))[-1]


def pg_ready() -> bool:
    command = [PG_ISREADY, "-h", "127.0.0.1", "-q"]
    return subprocess.run(command, check=False, timeout=10).returncode == 0  # noqa: S603


def ensure_postgres_up() -> None:
    if pg_ready():
        return
    log("PostgreSQL is down: starting it again")
    subprocess.run(  # noqa: S603 - fixed arguments
        [PG_CTLCLUSTER, "--skip-systemctl-redirect", pg_version(), "main", "start"],
        check=False,
        timeout=120,
    )
    for _ in range(60):
        if pg_ready():
            return
        time.sleep(1)


def database_outage(kind: str) -> tuple[float, float]:
    """Take the database away and bring it back; (went away, answers again) in monotonic time."""
    if kind == "restart":
        log("outage: restarting PostgreSQL (pg_ctlcluster restart)")
        began = time.monotonic()
        subprocess.run(  # noqa: S603 - fixed arguments
            [PG_CTLCLUSTER, "--skip-systemctl-redirect", pg_version(), "main", "restart",
             "-m", "fast"],
            check=True,
            timeout=120,
        )  # fmt: skip
        while not pg_ready():
            time.sleep(0.05)
        back = time.monotonic()
    else:
        log(f"outage: {DB_NAME} refuses connections for 4 s; its sessions are terminated")
        began = time.monotonic()
        harness.admin_sql(
            f'ALTER DATABASE "{DB_NAME}" ALLOW_CONNECTIONS false',
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "  # noqa: S608 - a constant
            f"WHERE datname = '{DB_NAME}' AND pid <> pg_backend_pid()",
        )
        time.sleep(4)
        harness.admin_sql(f'ALTER DATABASE "{DB_NAME}" ALLOW_CONNECTIONS true')
        back = time.monotonic()
    log(f"outage: database answers again after {back - began:.2f} s")
    return began, back


# -- hostile input ------------------------------------------------------------------------


def raw_exchange(port: int, head: bytes, trickle: bytes = b"", every: float = 1.0,
                 limit: float = 30.0) -> tuple[bytes, float]:  # fmt: skip
    """Send ``head`` then ``trickle`` one byte per ``every`` s; what came back and when it ended."""
    started = time.monotonic()
    received = b""
    with socket.create_connection(("127.0.0.1", port), timeout=limit) as sock:
        sock.sendall(head)
        sock.settimeout(every)
        for byte in trickle:
            try:
                sock.sendall(bytes([byte]))
            except OSError:
                break
            try:
                chunk = sock.recv(65536)
                if not chunk:
                    break
                received += chunk
                break
            except TimeoutError:
                if time.monotonic() - started > limit:
                    break
            except OSError:
                break
        sock.settimeout(max(1.0, limit - (time.monotonic() - started)))
        try:
            while chunk := sock.recv(65536):
                received += chunk
        except OSError:
            pass
    return received, time.monotonic() - started


def status_of(raw: bytes) -> int | None:
    try:
        return int(raw.split(b" ", 2)[1])
    except (IndexError, ValueError):
        return None


def json_code_of(raw: bytes) -> str | None:
    """The ``code`` of a raw HTTP/1.1 answer's JSON body (plain or chunked)."""
    head, _, body = raw.partition(b"\r\n\r\n")
    if b"transfer-encoding: chunked" in head.lower():
        decoded = b""
        while body:
            size_line, _, rest = body.partition(b"\r\n")
            size = int(size_line.split(b";")[0] or b"0", 16)
            if size == 0:
                break
            decoded += rest[:size]
            body = rest[size + 2 :]
        body = decoded
    try:
        return json.loads(body).get("code")
    except (ValueError, AttributeError):
        return None


def request_bytes(
    method: str,
    path: str,
    token: str,
    body: bytes = b"",
    content_type: str = "application/json",
    length: int | None = None,
    extra: str = "",
) -> bytes:
    head = (
        f"{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Token {token}\r\n"
        f"Content-Type: {content_type}\r\nContent-Length: {len(body) if length is None else length}"
        f"\r\nConnection: close\r\n{extra}\r\n"
    )
    return head.encode() + body


def hostile_phase(servers, token: str, counts) -> dict:
    """Bad input against real gunicorn: refused cleanly, logged, nothing written."""
    port = servers[0].port
    before = counts()
    results: list[dict] = []

    def expect(name: str, raw: bytes, status: int, code: str | None, elapsed: float) -> None:
        got, got_code = status_of(raw), json_code_of(raw)
        ok = got == status and (code is None or got_code == code)
        results.append(
            {"case": name, "status": got, "code": got_code, "seconds": round(elapsed, 2), "ok": ok}
        )

    big = 2 * 1024 * 1024
    raw, t = raw_exchange(
        port,
        request_bytes("POST", "/api/allocations/", token, b'{"order_id": "', length=big),
    )
    expect("body above the 1 MiB limit", raw, 413, "payload_too_large", t)

    nested = b"[" * 200_000 + b"]" * 200_000
    raw, t = raw_exchange(port, request_bytes("POST", "/api/allocations/", token, nested))
    expect("JSON nested 200,000 deep", raw, 400, "parse_error", t)

    for value in ("x'; DROP TABLE allocation_batch; --", "1 OR 1=1", "SOAK-00\x00"):
        body = json.dumps({"order_id": value, "sku": "SOAK-00", "qty": 1}).encode()
        raw, t = raw_exchange(port, request_bytes("POST", "/api/allocations/", token, body))
        expect(f"SQL-looking order_id {value!r}", raw, 400, None, t)
    raw, t = raw_exchange(
        port, request_bytes("GET", "/api/batches/?sku=%27%20OR%20%271%27%3D%271", token)
    )
    results.append(
        {
            "case": "SQL-looking ?sku= filter",
            "status": status_of(raw),
            "ok": status_of(raw) == 200 and b'"results":[]' in raw.replace(b" ", b""),
            "seconds": round(t, 2),
        }
    )
    raw, t = raw_exchange(port, request_bytes("DELETE", "/api/batches/1%27%20OR%20%271/", token))
    expect("SQL-looking batch reference in the path", raw, 404, "not_found", t)

    raw, t = raw_exchange(
        port, request_bytes("POST", "/api/batches/", token, b"reference=x", content_type="text/csv")
    )
    expect("wrong content type", raw, 415, "unsupported_media_type", t)

    raw, t = raw_exchange(
        port, request_bytes("GET", "/api/batches/", token, extra=f"X-Junk: {'a' * 20000}\r\n")
    )
    expect("header above gunicorn's 8190-byte field limit", raw, 431, None, t)

    # Slow clients, one on each server at once: a body trickled one byte a
    # second, and headers trickled one byte a second. Gunicorn must cut both
    # off at its timeout; meanwhile each server's other worker keeps serving.
    slow: dict[str, tuple[bytes, float]] = {}

    def slow_body():
        head = request_bytes("POST", "/api/allocations/", token, b"", length=200)
        body = b'{"order_id": "slow-body", "sku": "SOAK-00", "qty": 1}'.ljust(200)
        slow["body"] = raw_exchange(servers[0].port, head, trickle=body, limit=GUNICORN_TIMEOUT * 3)

    def slow_headers():
        head = b"GET /api/batches/ HTTP/1.1\r\n"
        rest = f"Host: 127.0.0.1\r\nAuthorization: Token {token}\r\nX-Pad: {'p' * 200}\r\n\r\n"
        slow["headers"] = raw_exchange(
            servers[1].port, head, trickle=rest.encode(), limit=GUNICORN_TIMEOUT * 3
        )

    threads = [threading.Thread(target=slow_body), threading.Thread(target=slow_headers)]
    for thread in threads:
        thread.start()
    time.sleep(2)
    served = [call(s.port, token, "GET", "/api/batches/?page_size=1") for s in servers]
    for thread in threads:
        thread.join()
    for name, (raw, elapsed) in slow.items():
        results.append(
            {
                "case": f"slow client ({name} trickled 1 byte/s)",
                "status": status_of(raw),
                "seconds": round(elapsed, 2),
                # Cut off within the timeout plus the arbiter's tick: gunicorn aborts
                # the worker (WORKER TIMEOUT) and answers its generic 500, if anything;
                # Django never sees the request and nothing is written.
                "ok": elapsed <= GUNICORN_TIMEOUT + 5 and status_of(raw) in (None, 400, 408, 500),
            }
        )
    results.append(
        {
            "case": "other workers serve while slow clients hold one each",
            "status": [a.status for a in served],
            "seconds": round(max(a.latency for a in served), 2),
            "ok": all(a.status == 200 and a.latency < 2 for a in served),
        }
    )

    after = counts()
    results.append({"case": "nothing written", "ok": before == after, "status": [before, after]})
    time.sleep(1)  # let the access logs flush
    access = "".join(s.access_log.read_text(errors="replace") for s in servers)
    errors = "".join(s.error_log.read_text(errors="replace") for s in servers)
    logged = {
        "413 in access log": '" 413 ' in access,
        "400 in access log": '" 400 ' in access,
        "415 in access log": '" 415 ' in access,
        "WORKER TIMEOUT in error log": "WORKER TIMEOUT" in errors,
        "Django warning for the 413": "Request Entity Too Large: /api/" in errors,
        "Django warnings for the 400s": "Bad Request: /api/" in errors,
        # A head gunicorn cannot parse never reaches the access log; its warning does.
        "gunicorn warning for the 431": "Invalid request from ip" in errors,
    }
    for name, ok in logged.items():
        results.append({"case": f"logged: {name}", "ok": ok})
    return {"cases": results, "ok": all(r["ok"] for r in results)}


# -- a load phase ---------------------------------------------------------------------------


def count_retries(servers) -> tuple[int, int]:
    """Transient database errors the unit of work retried, and gave up on (server logs)."""
    text = "".join(s.error_log.read_text(errors="replace") for s in servers)
    return text.count("transient database error"), text.count("giving up after")


def percentile(values: list[float], p: float) -> float:
    if not values:
        return 0.0
    values = sorted(values)
    return values[min(len(values) - 1, int(p * len(values)))]


def load_phase(name: str, servers, token, env, batches, args, faults: bool) -> dict:
    ports = [s.port for s in servers]
    masters = [s.process.pid for s in servers]
    retries_before = count_retries(servers)
    start = time.monotonic()
    deadline = start + args.duration
    stop = threading.Event()
    monitor = HealthMonitor(servers, stop)
    monitor.start()
    fault_thread = None
    if faults:
        fault_thread = Faults(servers, start, args.duration, args.kill_every, args.outage, stop)
        fault_thread.start()
    clients = [
        Client(i, name, ports, token, deadline, args.max_requests, batches) for i in range(CLIENTS)
    ]
    log(f"{name}: {CLIENTS} clients for {args.duration} s on ports {ports}")
    for client in clients:
        client.start()
    for client in clients:
        client.join(timeout=args.duration + REQUEST_TIMEOUT * 4)
    stop.set()
    monitor.join(timeout=10)
    if fault_thread is not None:
        fault_thread.join(timeout=180)
    elapsed = time.monotonic() - start
    ensure_postgres_up()
    if any(client.is_alive() for client in clients):
        log(f"{name}: some clients are still running")

    retried, gave_up = (
        after - before for after, before in zip(count_retries(servers), retries_before, strict=True)
    )

    # -- what clients saw
    outcomes: Counter = Counter()
    answers = []
    violations = []
    for client in clients:
        outcomes.update(client.ledger.outcomes)
        answers += client.ledger.answers
        violations += client.ledger.violations
    window = fault_thread.outage_window if fault_thread else None
    grace = 3.0

    def in_outage(started: float, latency: float) -> bool:
        return (
            window is not None
            and window[0] - 0.5 <= started + latency
            and started <= window[1] + grace
        )

    five_xx = [a for a in answers if a[3] is not None and a[3] >= 500]
    unexpected_5xx = [
        a for a in five_xx if not (a[3] == 503 and a[4] == "unavailable" and in_outage(a[0], a[1]))
    ]
    busy = [a for a in five_xx if a[4] == "busy"]
    outage_answers = [a for a in answers if window and in_outage(a[0], a[1])]
    outage_503 = [a for a in outage_answers if a[3] == 503]
    dropped = [a for a in answers if a[3] is None]
    latencies = [a[1] for a in answers if a[3] is not None]

    # -- recovery: from the database answering again to each server's first good answer
    recovery = {}
    if window:
        for server in servers:
            healthy = [
                t for t, who, status, _ in monitor.samples
                if who == server.name and status == 200 and t >= window[1]
            ]  # fmt: skip
            recovery[server.name] = round(min(healthy) - window[1], 2) if healthy else None
        first_ok = [a[0] + a[1] for a in answers if a[0] >= window[1] and a[3] and a[3] < 500]
        recovery["first client 2xx/4xx"] = round(min(first_ok) - window[1], 2) if first_ok else None
    health_during = [s for s in monitor.samples if window and window[0] <= s[0] <= window[1]]

    # -- the database afterwards
    stock = harness.manage(env, "check_stock", check=False)
    stored = {
        (order_id, sku): (qty, status)
        for order_id, sku, qty, status in harness.query(
            DB_NAME, "SELECT order_id, sku, qty, status FROM allocation_orderline"
        )
    }
    missing, wrong_qty, resurrected, refused_present = [], [], [], []
    for client in clients:
        ledger = client.ledger
        for key, qty in ledger.acknowledged.items():
            if key not in stored:
                missing.append(key)
            elif stored[key][0] != qty:
                wrong_qty.append(key)
        resurrected += [k for k in ledger.deallocated if k in stored and k not in ledger.uncertain]
        refused_present += [k for k in ledger.refused if k in stored]
    acknowledged = sum(len(c.ledger.acknowledged) for c in clients)
    statuses = Counter(status for _, status in stored.values())
    masters_now = [s.process.pid if s.process.poll() is None else None for s in servers]

    checks = {
        "zero 5xx outside the outage (all outage 5xx are 503 unavailable)": not unexpected_5xx,
        "zero 503 busy (no deadlock or conflict surfaced)": not busy,
        "no answer during the outage slower than 5 s": all(
            a[1] <= OUTAGE_LATENCY_LIMIT for a in outage_answers
        ),
        "manage.py check_stock passes": stock.returncode == 0,
        "every acknowledged line is stored (allocated or backordered)": not missing,
        "every acknowledged line has its qty": not wrong_qty,
        "no deallocated line came back": not resurrected,
        "no refused (out_of_stock) line was recorded": not refused_present,
        "clients saw only documented answers": not violations,
        "both gunicorn masters still the original processes": masters_now == masters,
    }
    if faults:
        checks["the outage happened and the database came back"] = (
            window is not None and fault_thread.error is None
        )
        checks["the service recovered by itself"] = bool(recovery) and all(
            v is not None for v in recovery.values()
        )

    by_operation: dict[str, Counter] = defaultdict(Counter)
    for (operation, status, code), n in outcomes.items():
        by_operation[operation][f"{status}" + (f" {code}" if code else "")] += n
    report = {
        "phase": name,
        "seconds": round(elapsed, 1),
        "requests": len(answers),
        "requests_per_second": round(len(answers) / elapsed, 1),
        "operations": {op: dict(c.most_common()) for op, c in sorted(by_operation.items())},
        "latency_seconds": {
            "p50": round(statistics.median(latencies), 4) if latencies else None,
            "p99": round(percentile(latencies, 0.99), 4),
            "max": round(max(latencies), 4) if latencies else None,
        },
        "5xx": len(five_xx),
        "5xx_outside_outage": len(unexpected_5xx),
        "503_busy": len(busy),
        "dropped_connections": len(dropped),
        "unit_of_work_retries": retried,
        "unit_of_work_gave_up": gave_up,
        "acknowledged_lines_checked": acknowledged,
        "stored_lines": dict(statuses),
        "check_stock": (stock.stdout or stock.stderr).strip(),
        "violations": violations[:20] + [f"missing {k}" for k in missing[:20]],
        "checks": checks,
        "ok": all(checks.values()),
    }
    if faults:
        report["faults"] = {
            "worker_kills": len(fault_thread.kills),
            "outage_kind": args.outage,
            "outage_seconds": round(window[1] - window[0], 2) if window else None,
            "answers_during_outage": len(outage_answers),
            "503_unavailable_during_outage": len(outage_503),
            "max_latency_during_outage": round(max((a[1] for a in outage_answers), default=0), 3),
            "healthz_during_outage": dict(Counter(str(s[2]) for s in health_during)),
            "recovery_seconds_after_database_back": recovery,
            "error": fault_thread.error,
        }
    return report


def print_report(report: dict) -> None:
    print(f"\n== {report['phase']}: {report['requests']} requests in {report['seconds']} s "
          f"({report['requests_per_second']}/s)")  # fmt: skip
    for operation, outcomes in report["operations"].items():
        shown = ", ".join(f"{k}: {v}" for k, v in outcomes.items())
        print(f"  {operation:<13} {sum(outcomes.values()):>6}  {shown}")
    lat = report["latency_seconds"]
    print(f"  latency p50 {lat['p50']} s, p99 {lat['p99']} s, max {lat['max']} s")
    print(
        f"  5xx: {report['5xx']} (outside the outage: {report['5xx_outside_outage']}), "
        f"503 busy: {report['503_busy']}, dropped connections: {report['dropped_connections']}"
    )
    print(
        f"  unit of work: {report['unit_of_work_retries']} transient errors retried, "
        f"gave up {report['unit_of_work_gave_up']} times"
    )
    print(
        f"  stored lines: {report['stored_lines']}; acknowledged lines checked: "
        f"{report['acknowledged_lines_checked']}; check_stock: {report['check_stock']}"
    )
    if "faults" in report:
        for key, value in report["faults"].items():
            print(f"  {key}: {value}")
    for violation in report["violations"]:
        print(f"  ! {violation}")
    for check, ok in report["checks"].items():
        print(f"  [{'ok' if ok else 'FAIL'}] {check}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--phases", default="hostile,clean,faults")
    parser.add_argument("--duration", type=float, default=60.0, help="seconds per load phase")
    parser.add_argument("--max-requests", type=int, default=100_000, help="per client per phase")
    parser.add_argument("--kill-every", type=float, default=3.0, help="seconds between kills")
    parser.add_argument("--outage", choices=["restart", "terminate", "none"], default="restart")
    args = parser.parse_args()
    phases = args.phases.split(",")

    reports: dict[str, dict] = {}
    servers: list[harness.Gunicorn] = []
    scratch = Path(tempfile.mkdtemp(prefix="allocation-soak-"))
    try:
        harness.recreate_postgres_db(DB_NAME)
        env = harness.app_env(harness.postgres_url(DB_NAME), GUNICORN_TIMEOUT=str(GUNICORN_TIMEOUT))
        # Django's own log lines (4xx warnings, retries) go to gunicorn's error log.
        env["LOG_LEVEL"] = "INFO"
        token = harness.set_up_database(env, "soak")
        servers = [
            harness.Gunicorn(name, env, WORKERS, scratch, extra_args=("--capture-output",))
            for name in ("server-a", "server-b")
        ]
        for server in servers:
            server.start()
        log("servers: " + ", ".join(f"{s.name} {s.url} workers {s.worker_pids()}" for s in servers))
        batches = {}
        for sku in SKUS:
            batches[sku] = [f"{sku}-shelf", f"{sku}-ship"]
            for reference, qty, eta in (
                (batches[sku][0], 30, None),
                (batches[sku][1], 20, "2031-01-01"),
            ):
                body = {"reference": reference, "sku": sku, "purchased_quantity": qty, "eta": eta}
                answer = call(servers[0].port, token, "POST", "/api/batches/", body)
                if answer.status != 201:
                    raise RuntimeError(f"seeding {reference}: {answer.status} {answer.body}")

        def counts() -> tuple:
            return harness.query(
                DB_NAME,
                "SELECT (SELECT count(*) FROM allocation_batch), "
                "(SELECT count(*) FROM allocation_orderline), "
                "(SELECT coalesce(sum(allocated_quantity), 0) FROM allocation_batch)",
            )[0]

        if "hostile" in phases:
            reports["hostile"] = hostile_phase(servers, token, counts)
            print("\n== hostile input against gunicorn")
            for case in reports["hostile"]["cases"]:
                mark = "ok" if case["ok"] else "FAIL"
                detail = f"{case.get('status')} {case.get('code') or ''} {case.get('seconds', '')}"
                print(f"  [{mark}] {case['case']}: {detail}")
            for server in servers:  # the slow clients cost a worker each: wait for the respawn
                server.wait_ready()
        for phase in ("clean", "faults"):
            if phase in phases:
                reports[phase] = load_phase(
                    phase, servers, token, env, batches, args, faults=phase == "faults"
                )
                print_report(reports[phase])
    finally:
        for server in servers:
            server.stop()
        ensure_postgres_up()
        harness.drop_postgres_db(DB_NAME)
        RESULTS.parent.mkdir(parents=True, exist_ok=True)
        RESULTS.write_text(json.dumps(reports, indent=2, default=str) + "\n")
        log(f"logs in {scratch}; results in {RESULTS.relative_to(ROOT)}")

    ok = bool(reports) and all(r["ok"] for r in reports.values())
    print("\nsoak: " + ("passed" if ok else "FAILED"))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
