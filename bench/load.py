"""A keep-alive HTTP/1.1 load generator over TCP or a Unix socket: C connections, each scraping in a loop,
every response read whole. Raw asyncio streams keep the client's own cost small next to the server's."""

from __future__ import annotations

import asyncio
import statistics
import time
from dataclasses import dataclass

# A server whose accept backlog overflows leaves clients in SYN retries for seconds: after this long the
# attempt counts as an error instead of stretching the run.
CONNECT_TIMEOUT_S = 5.0


@dataclass(frozen=True)
class Target:
    host: str = "127.0.0.1"
    port: int = 0
    uds: str | None = None
    path: str = "/metrics"

    async def connect(self) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        if self.uds is not None:
            return await asyncio.open_unix_connection(self.uds, limit=1 << 20)
        return await asyncio.open_connection(self.host, self.port, limit=1 << 20)


@dataclass(frozen=True)
class LoadResult:
    latencies_ms: list[float]
    bytes_per_response: int
    errors: int

    @property
    def p50(self) -> float:
        return statistics.median(self.latencies_ms) if self.latencies_ms else float("nan")

    @property
    def p99(self) -> float:
        if not self.latencies_ms:
            return float("nan")
        ordered = sorted(self.latencies_ms)
        return ordered[min(len(ordered) - 1, round(0.99 * (len(ordered) - 1)))]


async def _read_response(reader: asyncio.StreamReader) -> tuple[int, int, bool]:
    """(status, body bytes, whether the server keeps the connection open)."""
    head = await reader.readuntil(b"\r\n\r\n")
    status = int(head.split(b" ", 2)[1])
    keep_alive = head.startswith(b"HTTP/1.1")
    length: int | None = None
    chunked = False
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        name = name.strip().lower()
        if name == b"content-length":
            length = int(value)
        elif name == b"transfer-encoding" and b"chunked" in value.lower():
            chunked = True
        elif name == b"connection":
            keep_alive = b"keep-alive" in value.lower() or (keep_alive and b"close" not in value.lower())
    if chunked:
        total = 0
        while True:
            size = int((await reader.readuntil(b"\r\n")).strip(), 16)
            await reader.readexactly(size + 2)
            total += size
            if size == 0:
                return status, total, keep_alive
    if length is None:  # HTTP/1.0 style: the body runs to the end of the connection
        return status, len(await reader.read()), False
    await reader.readexactly(length)
    return status, length, keep_alive


async def _client(
    target: Target, request: bytes, per_client: int, deadline: float, out: list[float]
) -> tuple[int, int]:
    """Keep-alive where the server allows it; servers that close after each response (prometheus_client's
    wsgiref server speaks HTTP/1.0) are reconnected, and the reconnect counts in that scrape's latency."""
    connection: tuple[asyncio.StreamReader, asyncio.StreamWriter] | None = None
    size = errors = 0
    try:
        for done in range(per_client):
            if done and time.monotonic() > deadline:
                break
            started = time.perf_counter()
            try:
                if connection is None:
                    connection = await asyncio.wait_for(target.connect(), CONNECT_TIMEOUT_S)
                reader, writer = connection
                writer.write(request)
                status, size, keep_alive = await _read_response(reader)
            except (OSError, asyncio.IncompleteReadError, asyncio.TimeoutError):
                # A refused or reset connection is the server's failure under this load: counted, not timed.
                errors += 1
                if connection is not None:
                    connection[1].close()
                connection = None
                continue
            out.append((time.perf_counter() - started) * 1000.0)
            errors += status != 200
            if not keep_alive:
                writer.close()
                connection = None
    finally:
        if connection is not None:
            connection[1].close()
    return size, errors


async def _run(target: Target, clients: int, per_client: int, seconds: float, gzip: bool, cap_s: float) -> LoadResult:
    # A User-Agent, as every client library sends: on the Unix socket a request with no header but Host is taken for
    # a hand-written read-until-close consumer and answered with Connection: close (docs/serving.md, Unix socket).
    headers = f"GET {target.path} HTTP/1.1\r\nHost: bench\r\nUser-Agent: otel-fakegpu-bench\r\n"
    if gzip:
        headers += "Accept-Encoding: gzip\r\n"
    request = (headers + "\r\n").encode()
    latencies: list[float] = []
    deadline = time.monotonic() + seconds
    tasks = [asyncio.ensure_future(_client(target, request, per_client, deadline, latencies)) for _ in range(clients)]
    done, stuck = await asyncio.wait(tasks, timeout=cap_s)
    for task in stuck:  # a request still unanswered after the cap: the server failed it
        task.cancel()
    if stuck:
        await asyncio.wait(stuck)
    finished = [task.result() for task in done if task.exception() is None]
    size = max((r[0] for r in finished), default=0)
    errors = sum(r[1] for r in finished) + len(stuck) + (len(done) - len(finished))
    return LoadResult(latencies, size, errors)


def run_load(
    target: Target, clients: int, per_client: int, seconds: float, gzip: bool, cap_s: float = 60.0
) -> LoadResult:
    """``clients`` connections each make up to ``per_client`` requests (at least one) within ``seconds``;
    requests still unanswered ``cap_s`` after the start are abandoned and counted as errors."""
    return asyncio.run(_run(target, clients, per_client, seconds, gzip, cap_s))
