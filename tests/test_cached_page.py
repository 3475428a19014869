"""The cached-page fast path (serve/pages.py) and the negotiation table (serve/negotiate.py): a scrape of a held
page is answered as the full chain would answer it, and only when nothing else in the chain applies to it."""

from __future__ import annotations

import asyncio
import base64
import gzip
import time
from collections.abc import Awaitable, Callable

import pytest
from aiohttp import ClientResponse, web
from aiohttp.test_utils import TestClient, TestServer

from otel_fakegpu.outputs import Format
from otel_fakegpu.runtime.published import HostExposition, PublishedFleet
from otel_fakegpu.serve import HealthReport, WebConfig, build_app
from otel_fakegpu.serve.negotiate import NegotiationTable, accepts_gzip, choose_format
from otel_fakegpu.serve.pages import Body
from tests.pages import bcrypt_hash
from tests.serving_harness import exchange, serving

PAGE = b'# HELP DCGM_FI_DEV_GPU_TEMP x\n# TYPE DCGM_FI_DEV_GPU_TEMP gauge\nDCGM_FI_DEV_GPU_TEMP{gpu="0"} 40\n'
OPENMETRICS = PAGE + b"# EOF\n"
PROMETHEUS_ACCEPT = (
    "application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;q=0.75,"
    "text/plain;version=0.0.4;q=0.5,*/*;q=0.1"
)
HEADER_PAIRS = [
    (None, None),
    ("", ""),
    ("text/plain", "gzip"),
    (PROMETHEUS_ACCEPT, "gzip"),
    (PROMETHEUS_ACCEPT, None),
    ("application/openmetrics-text;q=0", "gzip;q=0"),
    ("application/openmetrics-text;q=bogus", "br, gzip;q=0.8"),
    ("*/*", "*"),
]


@pytest.mark.parametrize(("accept", "encoding"), HEADER_PAIRS)
def test_the_table_answers_what_parsing_answers_first_time_and_after(accept: str | None, encoding: str | None) -> None:
    table = NegotiationTable()
    expected = (choose_format(accept), accepts_gzip(encoding))
    assert table.variant(accept, encoding) == expected
    assert len(table) == 1
    assert table.variant(accept, encoding) == expected  # remembered: the same answer
    assert len(table) == 1


def test_the_table_is_bounded_in_entries_and_in_key_length() -> None:
    table = NegotiationTable()
    for n in range(NegotiationTable.MAX_ENTRIES * 3):
        assert table.variant(f"text/plain;n={n}", "gzip") == (Format.PROMETHEUS, True)
        assert len(table) <= NegotiationTable.MAX_ENTRIES
    table = NegotiationTable()
    long_accept = "text/plain;q=0.1," * 100 + "application/openmetrics-text"
    assert table.variant(long_accept, None) == (Format.OPENMETRICS, False)  # answered, not remembered
    assert len(table) == 0


class CountingFleet(PublishedFleet):
    """The serving process's store, counting the requests that took the long way (``exposition``)."""

    def __init__(self, hosts: list[str]) -> None:
        super().__init__(hosts, lambda fmt: b"# summary\n")
        self.long_way = 0
        for host in hosts:
            variants = {(Format.PROMETHEUS, False): PAGE, (Format.OPENMETRICS, False): OPENMETRICS}
            variants[(Format.PROMETHEUS, True)] = gzip.compress(PAGE, mtime=0)
            self.store(host, HostExposition(1, time.time() - 3, variants))
        self.note_status(time.time())

    async def exposition(self, host: str | None, fmt: Format, gzipped: bool) -> tuple[Body, float] | None:
        self.long_way += 1
        return await super().exposition(host, fmt, gzipped)


Client = TestClient[web.Request, web.Application]
Scenario = Callable[[Client, CountingFleet], Awaitable[None]]
BARE = ("Accept", "Accept-Encoding")  # not the client's own: only the headers a test names


def _run(fleet: CountingFleet, scenario: Scenario, web_config: WebConfig | None = None) -> None:
    async def main() -> None:
        app = build_app(fleet, lambda: HealthReport(True, {}), web_config)
        async with TestClient(TestServer(app)) as client:
            await scenario(client, fleet)

    asyncio.run(main())


def _answer(response: ClientResponse, body: bytes) -> tuple[int, bytes, dict[str, str]]:
    return response.status, body, {k: v for k, v in response.headers.items() if k != "Date"}


@pytest.mark.parametrize(("accept", "encoding"), HEADER_PAIRS)
def test_a_held_page_is_answered_as_the_long_way_answers_it(accept: str | None, encoding: str | None) -> None:
    headers = {k: v for k, v in (("Accept", accept), ("Accept-Encoding", encoding)) if v is not None}

    async def scenario(client: Client, fleet: CountingFleet) -> None:
        response = await client.get("/metrics", headers=headers, auto_decompress=False, skip_auto_headers=BARE)
        fast = _answer(response, await response.read())
        taken = fleet.long_way
        fleet.cached = lambda host, fmt, gzipped: None  # type: ignore[method-assign]  # nothing held: the long way
        response = await client.get("/metrics", headers=headers, auto_decompress=False, skip_auto_headers=BARE)
        assert _answer(response, await response.read()) == fast
        assert fleet.long_way == taken + 1
        held = (choose_format(accept), accepts_gzip(encoding)) != (Format.OPENMETRICS, True)
        assert taken == (0 if held else 1)  # the variant not held took the long way the first time too (no worker
        assert fast[0] == (200 if held else 503)  # here to build it: 503)
        assert not held or (fast[2]["Age"] == "3" and fast[2]["Vary"] == "Accept, Accept-Encoding")

    _run(CountingFleet(["node-1"]), scenario)


def test_head_and_the_web_configs_headers_on_the_fast_path() -> None:
    async def scenario(client: Client, fleet: CountingFleet) -> None:
        head = await client.head("/metrics", skip_auto_headers=BARE)
        assert head.status == 200 and await head.read() == b"" and head.headers["Content-Length"] == str(len(PAGE))
        got = await client.get("/metrics", skip_auto_headers=BARE)
        assert await got.read() == PAGE and got.headers["X-Frame-Options"] == "DENY"
        assert head.headers["X-Frame-Options"] == "DENY" and fleet.long_way == 0

    _run(CountingFleet(["node-1"]), scenario, WebConfig(headers={"X-Frame-Options": "DENY"}))


def test_basic_auth_is_checked_for_a_held_page() -> None:
    users = {"alice": bcrypt_hash(b"pw").encode()}
    good = {"Authorization": "Basic " + base64.b64encode(b"alice:pw").decode()}

    async def scenario(client: Client, fleet: CountingFleet) -> None:
        assert (await client.get("/metrics")).status == 401
        assert (await client.get("/hosts/node-1/metrics")).status == 401
        refused = await client.get(
            "/metrics", headers={"Authorization": "Basic " + base64.b64encode(b"alice:x").decode()}
        )
        assert refused.status == 401
        allowed = await client.get("/metrics", headers=good)
        assert allowed.status == 200 and await allowed.read() == PAGE

    _run(CountingFleet(["node-1"]), scenario, WebConfig(users=users))


def test_drilled_unknown_and_summary_pages_in_a_fleet() -> None:
    async def scenario(client: Client, fleet: CountingFleet) -> None:
        host_page = await client.get("/hosts/node-2/metrics")
        assert host_page.status == 200 and await host_page.read() == PAGE and fleet.long_way == 0
        assert await (await client.get("/metrics")).read() == b"# summary\n"  # the fleet's own page
        assert (await client.get("/hosts/node-9/metrics")).status == 404
        fleet.set_serving("node-2", "http_500", 0.0)
        assert (await client.get("/hosts/node-2/metrics")).status == 500
        fleet.set_serving("node-2", "empty_page", 0.0)
        assert await (await client.get("/hosts/node-2/metrics")).read() == b""
        fleet.set_serving("node-2", "truncated", 0.0)
        assert await (await client.get("/hosts/node-2/metrics")).read() != PAGE
        fleet.set_serving("node-2", "ok", 0.0)
        assert await (await client.get("/hosts/node-2/metrics")).read() == PAGE
        assert (await client.post("/hosts/node-2/metrics")).status == 405

    _run(CountingFleet(["node-1", "node-2"]), scenario)


def test_a_held_variant_served_fast_still_counts_as_asked_for() -> None:
    fleet = CountingFleet(["node-1"])
    fleet.forget_unasked(0.0)  # nobody asked for anything yet: the workers stop sending every variant
    assert fleet.demand == set()
    assert fleet.cached(None, Format.OPENMETRICS, False) == (OPENMETRICS, fleet.published("node-1").collected_at)  # type: ignore[union-attr]
    assert fleet.demand == {(Format.OPENMETRICS, False)}


def test_cached_is_none_where_the_long_way_decides() -> None:
    fleet = PublishedFleet(["node-1"], lambda fmt: b"")
    assert fleet.cached(None, Format.PROMETHEUS, False) is None  # before the first cycle: 503 the long way
    fleet.store("node-1", HostExposition(1, 5.0, {(Format.PROMETHEUS, False): PAGE}))
    assert fleet.cached(None, Format.PROMETHEUS, False) == (PAGE, 5.0)
    assert fleet.cached("node-1", Format.PROMETHEUS, True) is None  # not built yet: the worker is asked
    assert fleet.cached("node-2", Format.PROMETHEUS, False) is None  # unknown: 404
    fleet.set_serving("node-1", "stale", 0.0)
    assert fleet.cached(None, Format.PROMETHEUS, False) is None


@pytest.mark.parametrize("request_line", [b"GET /metrics HTTP/0.9", b"GET /metrics HTTP/2.0"])
def test_only_http1_reaches_a_held_page(request_line: bytes) -> None:
    with serving() as server:
        answer = exchange(server, request_line + b"\r\nHost: x\r\n\r\n")
    assert answer.split(b"\r\n")[0].endswith(b" 400 Bad Request") and b"# TYPE" not in answer
