"""A fleet host's page is the page one host per process serves, byte for byte, in every variant; a fleet's pages are
held gzipped only (the worker builds gzip, the serving process unzips per request for a scraper without gzip)."""

from __future__ import annotations

import asyncio
import gzip
import os
import urllib.request
from collections.abc import Callable

from otel_fakegpu.outputs import Format
from otel_fakegpu.runtime import PublishedFleet
from otel_fakegpu.runtime.published import UNZIP_INLINE_BELOW, HostExposition
from tests.conftest import ExporterProcess

Factory = Callable[..., ExporterProcess]
TEXT, TEXT_GZ = (Format.PROMETHEUS, False), (Format.PROMETHEUS, True)
OPENMETRICS, OPENMETRICS_GZ = (Format.OPENMETRICS, False), (Format.OPENMETRICS, True)
TIMED = (b"otel_fakegpu_cycle_duration_seconds ", b"otel_fakegpu_last_cycle_timestamp_seconds ")


def _get(exporter: ExporterProcess, path: str, accept: str = "", gzipped: bool = False) -> bytes:
    headers = {"Accept": accept} if accept else {}
    if gzipped:
        headers["Accept-Encoding"] = "gzip"
    with urllib.request.urlopen(urllib.request.Request(exporter.base + path, headers=headers), timeout=10) as resp:
        body = resp.read()
        return gzip.decompress(body) if resp.headers.get("Content-Encoding") == "gzip" else body


def _untimed(body: bytes) -> bytes:
    return b"\n".join(line for line in body.split(b"\n") if not line.startswith(TIMED))


def test_a_fleet_hosts_page_is_the_single_hosts_page_in_every_variant(exporter_factory: Factory) -> None:
    common = ("--num-gpus", "2", "-c", "600000", "--update-interval", "3600", "--seed", "7", "--gpu-profiles",
              "wave,spike", "--gpu-model", "h100-sxm,a100-80gb")  # fmt: skip
    fleet = exporter_factory("--hosts", "3", *common, env={"NODE_NAME": "n"})
    alone = exporter_factory(*common, env={"NODE_NAME": "n-1"})
    openmetrics = "application/openmetrics-text; version=1.0.0"
    for accept in ("", openmetrics):
        expected = _untimed(_get(alone, "/metrics", accept))
        assert b'Hostname="n-1"' in expected and b"DCGM_FI_DEV_GPU_TEMP{" in expected
        for gzipped in (False, True):
            assert _untimed(_get(fleet, "/hosts/n-1/metrics", accept, gzipped)) == expected, (accept, gzipped)


def test_a_fleet_asks_its_workers_for_gzip_and_unzips_for_text() -> None:
    fleet = PublishedFleet(["a", "b"], lambda fmt: b"")
    assert fleet.gzip_only and fleet.demand == {TEXT_GZ} and fleet.held(OPENMETRICS) == OPENMETRICS_GZ
    fleet.store("a", HostExposition(1, 5.0, {TEXT_GZ: gzip.compress(b"text")}))
    assert asyncio.run(fleet.exposition("a", *TEXT)) == (b"text", 5.0)
    assert asyncio.run(fleet.exposition("a", *TEXT_GZ)) == (gzip.compress(b"text"), 5.0)
    asked: list[set[object]] = []
    fleet.on_new_demand = lambda: asked.append(set(fleet.demand))
    assert asyncio.run(fleet.exposition("a", *OPENMETRICS)) is None  # not published, no worker to ask
    assert asked == [{TEXT_GZ, OPENMETRICS_GZ}]  # the gzip form is what the workers are asked to build


def test_a_single_host_keeps_its_text() -> None:
    alone = PublishedFleet(["a"], lambda fmt: b"")
    assert not alone.gzip_only and alone.demand == {TEXT} and alone.held(TEXT) == TEXT


def test_a_large_gzipped_page_is_unzipped_off_the_event_loop_to_the_same_bytes() -> None:
    text = os.urandom(UNZIP_INLINE_BELOW)  # random bytes barely compress: the gzip form is over the threshold
    fleet = PublishedFleet(["a", "b"], lambda fmt: b"")
    fleet.store("b", HostExposition(1, 5.0, {TEXT_GZ: gzip.compress(text)}))
    assert len(gzip.compress(text)) >= UNZIP_INLINE_BELOW
    assert asyncio.run(fleet.exposition("b", *TEXT)) == (text, 5.0)


def test_a_stale_host_repeats_its_gzipped_page_as_text_too() -> None:
    fleet = PublishedFleet(["a", "b"], lambda fmt: b"")
    fleet.store("a", HostExposition(1, 5.0, {TEXT_GZ: gzip.compress(b"first")}))
    fleet.set_serving("a", "stale", 0.0)
    fleet.store("a", HostExposition(2, 6.0, {TEXT_GZ: gzip.compress(b"second")}))
    assert asyncio.run(fleet.exposition("a", *TEXT)) == (b"first", 5.0)
    assert asyncio.run(fleet.exposition("a", *TEXT_GZ)) == (gzip.compress(b"first"), 5.0)
    assert asyncio.run(fleet.exposition("a", *OPENMETRICS)) == (b"first", 5.0)  # what it has: its text
