"""The front (serve/front.py, serve/scrape_head.py): a scrape of a held page over TCP is answered in front of aiohttp
byte for byte as aiohttp answers it, and every other request, on the same connection too, gets aiohttp's own answer.
Real listeners on loopback (serve.http.start); the same requests sent to the same application served by aiohttp's
own TCPSite give the answers to compare with."""

from __future__ import annotations

import asyncio
import base64
import email.utils
import gzip
import logging
import random
import socket
import threading
import time
from collections.abc import Collection, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import pytest
from aiohttp import web

from otel_fakegpu.outputs import Format, Variant
from otel_fakegpu.runtime.published import HostExposition, PublishedFleet
from otel_fakegpu.serve import (
    HealthReport,
    Listeners,
    LiveWebConfig,
    UdsSettings,
    WebConfig,
    bind_unix_socket,
    build_app,
    start,
)
from otel_fakegpu.serve.front import HeldPages
from otel_fakegpu.serve.http import HELD_PAGES
from otel_fakegpu.serve.negotiate import NegotiationTable
from otel_fakegpu.serve.scrape_head import ScrapeHeads, http_date
from tests.conftest import free_port
from tests.pages import bcrypt_hash

PAGE = b"".join(b'DCGM_FI_DEV_GPU_TEMP{gpu="%d"} 40\n' % n for n in range(2000))  # ~70 KB: more than one send
OPENMETRICS = PAGE + b"# EOF\n"
SCRAPE = b"GET /metrics HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"


ALL_VARIANTS = {
    (Format.PROMETHEUS, False): PAGE,
    (Format.OPENMETRICS, False): OPENMETRICS,
    (Format.PROMETHEUS, True): gzip.compress(PAGE, mtime=0),
    (Format.OPENMETRICS, True): gzip.compress(OPENMETRICS, mtime=0),
}


def _fleet(hosts: list[str], held: Collection[Variant] = tuple(ALL_VARIANTS)) -> PublishedFleet:
    """Published pages of ``hosts`` in the ``held`` variants; the others are built when asked (as a worker would)."""
    fleet, collected_at = PublishedFleet(hosts, lambda fmt: b"# summary\n"), time.time() - 3

    async def build(host: str, fmt: Format, gzipped: bool) -> None:
        await asyncio.sleep(0.05)
        fleet.store(host, HostExposition(1, collected_at, {(fmt, gzipped): ALL_VARIANTS[(fmt, gzipped)]}))

    fleet.builder = build
    for host in hosts:
        fleet.store(host, HostExposition(1, collected_at, {v: ALL_VARIANTS[v] for v in held}))
    fleet.note_status(time.time())
    return fleet


@dataclass
class Served:
    front: int  # port of serve.http.start's listener (the front)
    plain: int  # port of the same kind of application under aiohttp's own TCPSite
    pages: HeldPages
    live: LiveWebConfig
    fleet: PublishedFleet
    stop_front: threading.Event


@contextmanager
def served(
    hosts: list[str],
    config: WebConfig | None = None,
    idle_timeout_s: float = 5.0,
    fleet: PublishedFleet | None = None,
    sockets: Path | None = None,
) -> Iterator[Served]:
    """The front on a loopback port (and ``sockets``/front.sock), aiohttp alone on another (and plain.sock)."""
    loop, ready, stop_front, stop = asyncio.new_event_loop(), threading.Event(), threading.Event(), asyncio.Event()
    live, ports = LiveWebConfig(config or WebConfig()), (free_port(), free_port())
    fleet = fleet or _fleet(hosts)
    holder: list[Served] = []

    async def main() -> None:
        app = build_app(fleet, lambda: HealthReport(True, {"status": "healthy"}), live)
        unix = bind_unix_socket(UdsSettings(sockets / "front.sock")) if sockets else None
        runner = await start(app, Listeners(tcp=("127.0.0.1", ports[0]), unix=unix, idle_timeout_s=idle_timeout_s))
        plain = web.AppRunner(build_app(fleet, lambda: HealthReport(True, {"status": "healthy"}), live))
        await plain.setup()
        await web.TCPSite(plain, "127.0.0.1", ports[1]).start()
        if sockets:
            await web.SockSite(plain, bind_unix_socket(UdsSettings(sockets / "plain.sock")).sock).start()
        holder.append(Served(ports[0], ports[1], app[HELD_PAGES], live, fleet, stop_front))
        ready.set()
        while not stop.is_set() and not stop_front.is_set():
            await asyncio.sleep(0.02)
        await runner.cleanup()
        await stop.wait()
        await plain.cleanup()

    failed: list[BaseException] = []

    async def run() -> None:
        try:
            await main()
        except BaseException as exc:  # shown by the test, not lost in the thread
            failed.append(exc)
            ready.set()

    thread = threading.Thread(target=loop.run_until_complete, args=(run(),), daemon=True)
    thread.start()
    assert ready.wait(10)
    if failed:
        raise failed[0]
    try:
        yield holder[0]
    finally:
        loop.call_soon_threadsafe(stop.set)
        thread.join(10)
        loop.close()


def read_response(reader: BinaryIO, head_only: bool = False) -> bytes:
    """One response from ``reader`` (a socket's file): its head and its Content-Length body; b"" when closed first."""
    head = b""
    while not head.endswith(b"\r\n\r\n"):
        line = reader.readline()
        if not line:
            return head
        head += line
    length = next((int(line.split(b":")[1]) for line in head.split(b"\r\n") if line.lower().startswith(b"content-length:")), 0)  # fmt: skip
    body = b"" if head_only else reader.read(length)
    assert len(body) == (0 if head_only else length), "closed mid-body"
    return head + body


def _connect(where: int | Path) -> socket.socket:
    if isinstance(where, int):
        return socket.create_connection(("127.0.0.1", where), timeout=5)
    sock = socket.socket(socket.AF_UNIX)
    sock.settimeout(5)
    sock.connect(str(where))
    return sock


def ask(where: int | Path, request: bytes, responses: int = 1) -> list[bytes]:
    """Answers to ``request`` from a loopback port or a Unix socket's path."""
    with _connect(where) as sock, sock.makefile("rb") as reader:
        sock.sendall(request)
        return [read_response(reader, request.startswith(b"HEAD ")) for _ in range(responses)]


def without_date(response: bytes) -> bytes:
    return b"\r\n".join(line for line in response.split(b"\r\n") if not line.startswith(b"Date: "))


def same_second(served: Served, request: bytes, responses: int = 1) -> tuple[list[bytes], list[bytes]]:
    """The front's and aiohttp's answers to ``request``, asked within one second (Age and Date then agree). The
    front's counters count the kept try only: one that straddled a second had asked the front too."""
    pages = served.pages
    for _ in range(5):
        counts = pages.answered_total, pages.handed_over_total
        started = int(time.time())
        front, plain = ask(served.front, request, responses), ask(served.plain, request, responses)
        if int(time.time()) == started:
            return front, plain
        pages.answered_total, pages.handed_over_total = counts  # no request is in flight between tries
    raise AssertionError("never within one second")


SCRAPES = [
    SCRAPE,
    b"GET /metrics HTTP/1.1\r\nHost: x\r\nAccept-Encoding: gzip\r\n\r\n",
    b"GET /metrics HTTP/1.1\r\nHost: x\r\nAccept: application/openmetrics-text;version=1.0.0,text/plain;q=0.5\r\n"
    b"Accept-Encoding: gzip\r\nUser-Agent: Prometheus/3.1.0\r\nX-Prometheus-Scrape-Timeout-Seconds: 10\r\n\r\n",
    b"GET /metrics HTTP/1.1\r\nhost:x\r\naccept:   application/openmetrics-text  \r\nConnection: Keep-Alive\r\n\r\n",
    b"GET /hosts/node-2/metrics HTTP/1.1\r\nHost: x\r\n\r\n",
    b"GET /metrics HTTP/1.1\r\nHost: x\r\nAuthorization: Basic YTpi\r\n\r\n",  # auth off: nothing to check
]


@pytest.mark.parametrize("request_bytes", SCRAPES)
@pytest.mark.parametrize("headers", [{}, {"X-Frame-Options": "DENY", "vary": "Accept", "Cache-Control": "100%"}])
def test_the_front_answers_a_scrape_as_aiohttp_answers_it(request_bytes: bytes, headers: dict[str, str]) -> None:
    with served(["node-1", "node-2"] if b"/hosts/" in request_bytes else ["node-1"], WebConfig(headers=headers)) as s:
        front, plain = same_second(s, request_bytes)
        assert without_date(front[0]) == without_date(plain[0])
        assert front[0].startswith(b"HTTP/1.1 200 OK\r\n") and b"\r\nDate: " in front[0]
        assert (s.pages.answered_total, s.pages.handed_over_total) == (1, 0)


HANDED_OVER = [
    b"HEAD /metrics HTTP/1.1\r\nHost: x\r\n\r\n",
    b"POST /metrics HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\nabc",
    b"GET /metrics HTTP/1.0\r\n\r\n",
    b"GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    b"GET /metrics HTTP/1.1\r\n\r\n",
    b"GET /metrics HTTP/1.1\r\nHost: x\r\nAccept: text/plain\r\nAccept: application/openmetrics-text\r\n\r\n",
    b"GET /metrics HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\n\r\n",
    b"GET /metrics HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
    b"get /metrics HTTP/1.1\r\nHost: x\r\n\r\n",
    b"GET /metrics?x=1 HTTP/1.1\r\nHost: x\r\n\r\n",
    b"GET /metrics/ HTTP/1.1\r\nHost: x\r\n\r\n",
    b"GET /hosts/node-9/metrics HTTP/1.1\r\nHost: x\r\n\r\n",
    b"GET /hosts/node%2D1/metrics HTTP/1.1\r\nHost: x\r\n\r\n",
    b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n",
    b"GET /metrics HTTP/1.1\r\nHost: x\r\nX-Note: caf\xc3\xa9\r\n\r\n",
    b"GET /metrics HTTP/1.1\r\nHost: x\r\nX-Note: a\r\n  folded\r\n\r\n",
    b"GET /metrics HTTP/1.1\r\nHost : x\r\n\r\n",
    b"GET /metrics HTTP/1.1\nHost: x\n\n",
]


@pytest.mark.parametrize("request_bytes", HANDED_OVER)
def test_anything_else_gets_aiohttps_own_answer(request_bytes: bytes) -> None:
    with served(["node-1"]) as s:
        front, plain = same_second(s, request_bytes)
        assert without_date(front[0]) == without_date(plain[0])
        assert s.pages.answered_total == 0 and s.pages.handed_over_total == 1


def test_pipelined_scrapes_then_another_request_then_a_scrape_answer_in_order() -> None:
    health = b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n"
    with served(["node-1"]) as s:
        front, plain = same_second(s, SCRAPE * 2 + health + SCRAPE, responses=4)
        assert [without_date(r) for r in front] == [without_date(r) for r in plain]
        assert [r.split(b"\r\n")[0] for r in front] == [b"HTTP/1.1 200 OK"] * 4 and b'"healthy"' in front[2]
        assert (s.pages.answered_total, s.pages.handed_over_total) == (2, 1)  # the last scrape: aiohttp's


OPENMETRICS_GZIP = (
    b"GET /metrics HTTP/1.1\r\nHost: x\r\nAccept: application/openmetrics-text\r\nAccept-Encoding: gzip\r\n\r\n"
)


def test_a_page_not_held_yet_is_answered_by_the_front_once_built() -> None:
    fleet = _fleet(["node-1"], held=[(Format.PROMETHEUS, False)])
    with served(["node-1"], fleet=fleet) as s:
        front = ask(s.front, OPENMETRICS_GZIP + SCRAPE + OPENMETRICS_GZIP, responses=3)  # the 2nd waits for the 1st
        assert (s.pages.answered_total, s.pages.handed_over_total) == (3, 0)
        plain = ask(s.plain, OPENMETRICS_GZIP + SCRAPE + OPENMETRICS_GZIP, responses=3)
        assert [without_date(r) for r in front] == [without_date(r) for r in plain]
        assert gzip.decompress(front[0].partition(b"\r\n\r\n")[2]) == OPENMETRICS


def test_a_fleets_text_is_unzipped_by_the_front_and_a_drilled_host_is_aiohttps() -> None:
    fleet = _fleet(["node-1", "node-2"], held=[(Format.PROMETHEUS, True), (Format.OPENMETRICS, True)])
    with served([], fleet=fleet) as s:
        request = b"GET /hosts/node-2/metrics HTTP/1.1\r\nHost: x\r\n\r\n"
        front, plain = same_second(s, request)
        assert without_date(front[0]) == without_date(plain[0]) and front[0].endswith(PAGE)
        assert (s.pages.answered_total, s.pages.handed_over_total) == (1, 0)
        fleet.set_serving("node-2", "http_500", 0.0)
        assert ask(s.front, request)[0].startswith(b"HTTP/1.1 500 ") and s.pages.handed_over_total == 1


UNIX_REQUESTS = [
    b"GET /metrics HTTP/1.1\r\nHost: localhost\r\nUser-Agent: curl/8.5.0\r\nAccept: */*\r\n\r\n",  # the front's
    b"GET /metrics HTTP/1.1\r\nHost: localhost\r\nConnection: keep-alive\r\n\r\n",  # the front's: kept alive
    b"GET /metrics HTTP/1.1\r\nHost: localhost\r\n\r\n",  # hand-written: aiohttp answers, Connection: close
]


@pytest.mark.parametrize("request_bytes", UNIX_REQUESTS)
def test_on_the_unix_socket_the_front_keeps_the_sockets_rules(request_bytes: bytes, tmp_path: Path) -> None:
    users = {"alice": bcrypt_hash(b"pw").encode()}  # basic auth does not apply to the socket: the front answers
    with served(["node-1"], WebConfig(users=users), sockets=tmp_path) as s:
        for _ in range(5):
            started = int(time.time())
            front, plain = ask(tmp_path / "front.sock", request_bytes), ask(tmp_path / "plain.sock", request_bytes)
            if int(time.time()) == started:
                break
        assert without_date(front[0]) == without_date(plain[0]) and front[0].endswith(PAGE)
        handwritten = request_bytes == UNIX_REQUESTS[-1]
        assert (b"\r\nConnection: close\r\n" in front[0]) == handwritten
        assert (s.pages.answered_total, s.pages.handed_over_total) == ((0, 1) if handwritten else (1, 0))
        assert ask(s.front, SCRAPE)[0].startswith(b"HTTP/1.1 401 ")  # over TCP, auth applies


def test_a_page_over_a_mebibyte_is_streamed_by_aiohttp() -> None:
    big = b"".join(b'DCGM_FI_DEV_GPU_TEMP{gpu="%d"} 40\n' % n for n in range(40000))  # 1.4 MB
    fleet = PublishedFleet(["node-1"], lambda fmt: b"")
    fleet.store("node-1", HostExposition(1, time.time(), {(Format.PROMETHEUS, False): big}))
    with served(["node-1"], fleet=fleet) as s:
        front, plain = same_second(s, SCRAPE)
        assert without_date(front[0]) == without_date(plain[0]) and front[0].endswith(big)
        assert (s.pages.answered_total, s.pages.handed_over_total) == (0, 1)


def test_a_head_sent_a_byte_at_a_time_is_answered_by_the_front() -> None:
    with served(["node-1"]) as s, socket.create_connection(("127.0.0.1", s.front), timeout=5) as sock:
        for byte in SCRAPE:
            sock.send(bytes([byte]))
            time.sleep(0.001)
        assert read_response(sock.makefile("rb")).endswith(PAGE) and s.pages.answered_total == 1


def test_a_client_that_asks_without_reading_is_held_back_then_gets_every_answer() -> None:
    with served(["node-1"]) as s, socket.create_connection(("127.0.0.1", s.front), timeout=10) as sock:
        sock.sendall(SCRAPE * 300)  # 21 MB of answers to a client that reads none for a while
        time.sleep(1.0)
        assert s.pages.answered_total < 300  # flow control: requests wait while the answers cannot go out
        assert ask(s.front, SCRAPE)[0].endswith(PAGE)  # other clients are served meanwhile
        reader = sock.makefile("rb")
        answers = [read_response(reader) for _ in range(300)]
        assert all(a.endswith(PAGE) for a in answers) and s.pages.answered_total == 301


def test_idle_connections_are_closed_at_the_idle_timeout_and_busy_ones_are_not() -> None:
    with served(["node-1"], idle_timeout_s=0.5) as s:
        partial = socket.create_connection(("127.0.0.1", s.front), timeout=5)
        partial.sendall(SCRAPE[:20])
        kept = socket.create_connection(("127.0.0.1", s.front), timeout=5)
        kept.sendall(SCRAPE)
        assert read_response(kept.makefile("rb")).endswith(PAGE)
        busy = socket.create_connection(("127.0.0.1", s.front), timeout=5)
        busy_reader, started = busy.makefile("rb"), time.monotonic()
        while time.monotonic() - started < 1.5:
            busy.sendall(SCRAPE)
            assert read_response(busy_reader).endswith(PAGE)
            time.sleep(0.2)
        assert partial.recv(10) == b"" and kept.recv(10) == b""  # closed by the server, after ~0.5 s
        for sock in (partial, kept, busy):
            sock.close()


def test_a_client_that_stops_reading_is_cut_at_the_idle_timeout() -> None:
    with (
        served(["node-1"], idle_timeout_s=0.5) as s,
        socket.create_connection(("127.0.0.1", s.front), timeout=5) as sock,
    ):
        sock.sendall(SCRAPE * 300)
        time.sleep(2.0)  # nothing read: the answers wait in the server's buffer until the sweep drops them
        reader, answered = sock.makefile("rb"), 0
        try:
            while read_response(reader).endswith(PAGE):
                answered += 1
        except (ConnectionError, AssertionError):
            pass
        assert 0 < answered < 300 and ask(s.front, SCRAPE)[0].endswith(PAGE)


def test_basic_auth_turned_on_by_a_reload_is_checked_on_an_open_connection() -> None:
    users = {"alice": bcrypt_hash(b"pw").encode()}
    good = b"Authorization: Basic " + base64.b64encode(b"alice:pw") + b"\r\n"
    with served(["node-1"]) as s, socket.create_connection(("127.0.0.1", s.front), timeout=5) as sock:
        reader = sock.makefile("rb")
        sock.sendall(SCRAPE)
        assert read_response(reader).endswith(PAGE)
        s.live.replace(WebConfig(users=users))
        sock.sendall(SCRAPE)
        assert read_response(reader).startswith(b"HTTP/1.1 401 ")
        sock.sendall(SCRAPE.replace(b"\r\n\r\n", b"\r\n" + good + b"\r\n"))
        assert read_response(reader).endswith(PAGE)
        assert (s.pages.answered_total, s.pages.handed_over_total) == (1, 1)


def test_a_fault_in_the_front_costs_the_client_nothing(caplog: pytest.LogCaptureFixture) -> None:
    with served(["node-1"]) as s:
        s.pages.scrapes = None  # type: ignore[assignment]  # answer() now raises AttributeError
        with caplog.at_level(logging.ERROR, "otel_fakegpu.serve.front"):
            assert ask(s.front, SCRAPE)[0].endswith(PAGE)
        assert [r.levelno for r in caplog.records if r.name == "otel_fakegpu.serve.front"] == [logging.ERROR]


def test_stopping_closes_the_fronts_connections() -> None:
    with served(["node-1"]) as s, socket.create_connection(("127.0.0.1", s.front), timeout=5) as sock:
        sock.sendall(SCRAPE)
        assert read_response(sock.makefile("rb")).endswith(PAGE)
        s.stop_front.set()
        assert sock.recv(10) == b""


def test_known_heads_are_bounded_and_the_date_is_aiohttps() -> None:
    heads = ScrapeHeads(NegotiationTable())
    for n in range(ScrapeHeads.MAX_ENTRIES * 3):
        assert heads.scrape(b"GET /metrics HTTP/1.1\r\nHost: h%d" % n) is not None
        assert len(heads._known) <= ScrapeHeads.MAX_ENTRIES
    assert heads.scrape(b"GET /metrics HTTP/1.1\r\nHost: x\r\nX-Long: " + b"a" * 5000) is not None
    assert len(heads._known) <= ScrapeHeads.MAX_ENTRIES  # answered, a head that long not remembered
    for now in (0, 951782400, int(time.time())):
        assert http_date(now) == email.utils.formatdate(now, usegmt=True)


ODD_FIELDS = [
    b"X-A: b", b"X-A:b", b"X-A :b", b"X-A: \x01", b": empty", b"Accept: */*", b"Accept-Encoding: gzip, deflate",
    b"Connection: keep-alive, close", b"Connection: Upgrade", b"Upgrade: h2c", b"Host: other", b"accept-encoding: GZIP",
    b"Accept: application/openmetrics-text;q=0.9, text/plain;q=1", b"X-B:\tb\t", b"Content-Length: 0", b"X-C: a\nb",
    b"X-D: \xff", b"Accept-Encoding: gzip;q=0", b"Via: 1.1 proxy", b"Host:", b"Keep-Alive: timeout=5",
]  # fmt: skip


def _mutated(rng: random.Random) -> bytes:
    request_line, *fields = rng.choice(SCRAPES)[:-4].split(b"\r\n")
    for _ in range(rng.randint(1, 3)):
        choice = rng.randrange(5)
        if choice == 0:
            fields.insert(rng.randint(0, len(fields)), rng.choice(ODD_FIELDS))
        elif choice == 1 and fields:
            fields.pop(rng.randrange(len(fields)))
        elif choice == 2 and fields:
            fields.append(fields[rng.randrange(len(fields))])
        elif choice == 3:
            request_line = rng.choice([request_line.lower(), request_line + b" ", request_line.replace(b" ", b"  ", 1),
                                       request_line.replace(b"1.1", b"1.0"), request_line.replace(b"GET", b"HEAD")])  # fmt: skip
        elif fields:
            at = rng.randrange(len(fields))
            fields[at] = fields[at].upper() if rng.random() < 0.5 else fields[at].replace(b": ", b":   ")
    return b"\r\n".join([request_line, *fields]) + b"\r\n\r\n"


def test_mutated_scrapes_get_from_the_front_what_aiohttp_gives() -> None:
    """A differential check: 300 requests near a scrape (fields added, dropped, repeated, recased, odd), each sent to
    the front and to aiohttp; the answers must be the same bytes (Date aside), whoever gave them."""
    rng = random.Random(24)
    with served(["node-1", "node-2"]) as s:
        for _ in range(300):
            request = _mutated(rng)
            front, plain = same_second(s, request)
            assert without_date(front[0]) == without_date(plain[0]), request
        assert s.pages.answered_total > 40 and s.pages.handed_over_total > 40  # both kinds were exercised
