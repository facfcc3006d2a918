"""A small closed-loop HTTP load generator: one process per connection.

Each worker process owns one blocking socket and sends one request at a time
(a closed loop: concurrency = number of workers). Processes, not threads, so
that the GIL never queues a response behind another worker's parsing and the
latency measured is the server's. Requests are pre-built bytes; responses are
parsed just enough to know the status and where the body ends. A server that
answers ``Connection: close`` (gunicorn's sync workers do) gets a new TCP
connection per request, as a real client would.

The run is bounded twice: a total request count shared by all workers and a
wall-clock deadline. Each worker also reports the CPU time it used, so the
generator's own share of the machine can be read next to the figures.
"""

from __future__ import annotations

import multiprocessing as mp
import os
import socket
import statistics
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field

# A request factory: (worker index, request number within the worker) -> bytes.
RequestFactory = Callable[[int, int], bytes]


def http_request(
    method: str,
    path: str,
    *,
    port: int,
    body: bytes = b"",
    headers: dict[str, str] | None = None,
) -> bytes:
    lines = [f"{method} {path} HTTP/1.1", f"Host: 127.0.0.1:{port}"]
    for name, value in (headers or {}).items():
        lines.append(f"{name}: {value}")
    if body or method in ("POST", "PUT", "PATCH"):
        lines.append("Content-Type: application/json")
        lines.append(f"Content-Length: {len(body)}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


class _Connection:
    def __init__(self, port: int) -> None:
        self.port = port
        self.sock: socket.socket | None = None
        self.buffer = b""

    def close(self) -> None:
        if self.sock is not None:
            self.sock.close()
        self.sock = None
        self.buffer = b""

    def exchange(self, request: bytes) -> tuple[int, bytes]:
        """Send one request, return (status, body). Reconnects when the server closed."""
        if self.sock is None:
            self.sock = socket.create_connection(("127.0.0.1", self.port), timeout=60)
            self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        sock = self.sock
        sock.sendall(request)
        buffer = self.buffer
        while (end := buffer.find(b"\r\n\r\n")) < 0:
            chunk = sock.recv(65536)
            if not chunk:
                raise ConnectionError("server closed the connection before answering")
            buffer += chunk
        head = buffer[:end].lower()
        rest = buffer[end + 4 :]
        status = int(head[9:12])
        length = -1
        at = head.find(b"\r\ncontent-length:")
        if at >= 0:
            stop = head.find(b"\r\n", at + 2)
            length = int(head[at + 17 : stop if stop >= 0 else None])
        closing = b"\r\nconnection: close" in head
        if length < 0:
            # No length: the body runs to the end of the connection.
            while chunk := sock.recv(65536):
                rest += chunk
            self.close()
            return status, rest
        while len(rest) < length:
            chunk = sock.recv(65536)
            if not chunk:
                raise ConnectionError("server closed the connection mid-body")
            rest += chunk
        body, self.buffer = rest[:length], rest[length:]
        if closing:
            self.close()
        return status, body


def fetch(port: int, request: bytes) -> tuple[int, bytes]:
    """One request on a fresh connection (setup, checks)."""
    connection = _Connection(port)
    try:
        return connection.exchange(request)
    finally:
        connection.close()


@dataclass
class Result:
    concurrency: int
    requests: int
    seconds: float
    latencies: list[float]  # seconds, one per completed request
    statuses: Counter = field(default_factory=Counter)
    client_cpu_seconds: float = 0.0
    machine_busy: float = 0.0  # share of all CPUs busy during the run, 0..1

    @property
    def rps(self) -> float:
        return self.requests / self.seconds if self.seconds else 0.0

    def percentile(self, q: float) -> float:
        if not self.latencies:
            return float("nan")
        ordered = sorted(self.latencies)
        index = min(len(ordered) - 1, max(0, round(q / 100 * len(ordered)) - 1))
        return ordered[index]

    def summary(self) -> dict:
        return {
            "concurrency": self.concurrency,
            "requests": self.requests,
            "seconds": round(self.seconds, 3),
            "rps": round(self.rps, 1),
            "p50_ms": round(self.percentile(50) * 1000, 2),
            "p90_ms": round(self.percentile(90) * 1000, 2),
            "p99_ms": round(self.percentile(99) * 1000, 2),
            "mean_ms": round(statistics.fmean(self.latencies) * 1000, 2)
            if self.latencies
            else None,
            "statuses": {str(k): v for k, v in sorted(self.statuses.items())},
            "client_cpu_us_per_request": (
                round(self.client_cpu_seconds / self.requests * 1e6, 1) if self.requests else None
            ),
            "machine_busy_pct": round(self.machine_busy * 100, 1),
        }


def _cpu_busy_ticks() -> tuple[int, int]:
    with open("/proc/stat") as stat:
        values = [int(v) for v in stat.readline().split()[1:]]
    idle = values[3] + values[4]  # idle + iowait
    return sum(values) - idle, sum(values)


def _worker(
    index: int,
    port: int,
    factory: RequestFactory,
    counter,
    limit: int,
    barrier,
    deadline_box,
    sink,
) -> None:
    connection = _Connection(port)
    starts: list[float] = []
    ends: list[float] = []
    statuses: Counter = Counter()
    barrier.wait()
    deadline = deadline_box.value
    cpu_before = os.times()
    n = 0
    while True:
        with counter.get_lock():
            if counter.value >= limit:
                break
            counter.value += 1
        request = factory(index, n)
        n += 1
        started = time.perf_counter()
        if started > deadline:
            break
        try:
            status, _ = connection.exchange(request)
        except OSError:
            connection.close()
            status = 0  # connection error: counted, never hidden
        ends.append(time.perf_counter())
        starts.append(started)
        statuses[status] += 1
    cpu_after = os.times()
    connection.close()
    cpu = (cpu_after.user - cpu_before.user) + (cpu_after.system - cpu_before.system)
    sink.send((starts, ends, dict(statuses), cpu))
    sink.close()


def run(
    port: int,
    factory: RequestFactory,
    *,
    concurrency: int,
    max_requests: int,
    max_seconds: float,
) -> Result:
    """Drive ``concurrency`` closed-loop connections until either bound is reached."""
    context = mp.get_context("fork")
    counter = context.Value("q", 0)
    barrier = context.Barrier(concurrency + 1)
    deadline_box = context.Value("d", 0.0)
    pipes = []
    processes = []
    for index in range(concurrency):
        receiver, sender = context.Pipe(duplex=False)
        process = context.Process(
            target=_worker,
            args=(index, port, factory, counter, max_requests, barrier, deadline_box, sender),
            daemon=True,
        )
        process.start()
        sender.close()
        pipes.append(receiver)
        processes.append(process)
    busy_before, total_before = _cpu_busy_ticks()
    deadline_box.value = time.perf_counter() + max_seconds
    barrier.wait()
    starts: list[float] = []
    ends: list[float] = []
    statuses: Counter = Counter()
    cpu = 0.0
    for receiver in pipes:
        s, e, counts, used = receiver.recv()
        starts += s
        ends += e
        statuses.update(counts)
        cpu += used
    busy_after, total_after = _cpu_busy_ticks()
    for process in processes:
        process.join(timeout=10)
    seconds = (max(ends) - min(starts)) if ends else 0.0
    ticks = total_after - total_before
    return Result(
        concurrency=concurrency,
        requests=len(ends),
        seconds=seconds,
        latencies=[e - s for s, e in zip(starts, ends, strict=True)],
        statuses=statuses,
        client_cpu_seconds=cpu,
        machine_busy=(busy_after - busy_before) / ticks if ticks else 0.0,
    )
