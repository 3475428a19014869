"""Fleets and the process shape: hosts, shards, workers; a real Prometheus discovering hosts through /sd,
per-host OTLP resources in VictoriaMetrics, and a killed worker seen on /health and restarted."""

from __future__ import annotations

import asyncio
import gzip
import json
import os
import re
import signal
import socket
import threading
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, cast

import pytest

from otel_fakegpu.cli import config_from_args
from otel_fakegpu.fields import default_collectors_path, load_collectors
from otel_fakegpu.host.collection import HostCollection, build_collection
from otel_fakegpu.host.spec import HostSpec
from otel_fakegpu.outputs import Exposition, Format
from otel_fakegpu.runtime import Collection, PublishedFleet, RemoteError, WorkerPool, WorkerSettings, plan_fleet
from otel_fakegpu.runtime.frame_reader import FrameReader
from otel_fakegpu.runtime.frames import MAX_HEADER_BYTES, PREFIX, encode_frame, read_frame, write_frame
from otel_fakegpu.runtime.pool import demand_keep_s
from otel_fakegpu.runtime.published import HostExposition
from otel_fakegpu.runtime.spawn import fork_workers
from otel_fakegpu.runtime.worker import Worker
from tests.conftest import ExporterProcess, run_cli
from tests.polling import wait_until
from tests.prometheus_server import PrometheusServer, sd_scrape
from tests.receivers import VictoriaMetrics

Factory = Callable[..., ExporterProcess]
IDENTITY = re.compile(r'^DCGM_FI_DEV_GPU_TEMP\{gpu="(\d+)",UUID="([^"]+)",pci_bus_id="([^"]+)",.*Hostname="([^"]+)"')


def _identities(exporter: ExporterProcess) -> set[tuple[str, ...]]:
    """(Hostname, gpu, UUID, pci_bus_id) of every GPU of every host the exporter lists in /sd."""
    groups = json.loads(exporter.get("/sd")[1])
    found: set[tuple[str, ...]] = set()
    for group in groups:
        status, body, _ = exporter.get(group["labels"]["__metrics_path__"])
        assert status == 200
        for line in body.decode().splitlines():
            match = IDENTITY.match(line)
            if match:
                found.add((match[4], match[1], match[2], match[3]))
    return found


def test_plan_deals_every_host_once_whatever_the_split() -> None:
    whole = plan_fleet("node", 10, (0, 1), 3)
    assert [h.name for h in whole.hosts] == [f"node-{i}" for i in range(10)]
    assert sorted(h.index for w in whole.assignments for h in w) == list(range(10))
    assert len(whole.assignments) == 3
    shards = [plan_fleet("node", 10, (i, 3), 8) for i in range(3)]
    assert sorted(h for s in shards for h in s.hosts) == sorted(whole.hosts)
    assert len(plan_fleet("node", 1, (0, 1), 8).assignments) == 1  # never an idle worker
    assert plan_fleet("node", 1, (0, 1), 1).hosts[0].name == "node"  # one host keeps the host's name


def test_frames_carry_a_header_and_blobs_unchanged() -> None:
    left, right = socket.socketpair()
    with left, right:
        blob = os.urandom(3 << 20)
        writer = threading.Thread(target=write_frame, args=(left, {"kind": "publish", "n": 1}, (b"", blob, b"x")))
        writer.start()
        header, blobs = read_frame(right)
        writer.join()
    assert header == {"kind": "publish", "n": 1}
    assert blobs == [b"", blob, b"x"]


def test_the_serving_sides_reader_takes_frames_in_order_then_says_the_worker_is_gone() -> None:
    """FrameReader (the serving process's protocol): headers and blobs unchanged, empty and large blobs included,
    frames split anywhere by the socket; a frame cut short ends in IncompleteReadError, a broken one in ValueError."""
    blob = os.urandom(5 << 20)
    frames_sent: list[tuple[dict[str, Any], tuple[bytes, ...]]] = [
        ({"kind": "publish", "n": 1}, (b"", blob, b"x")), ({"kind": "ready"}, ()), ({"kind": "s"}, (b"",))
    ]  # fmt: skip

    async def read_all(sent: list[tuple[dict[str, Any], tuple[bytes, ...]]], tail: bytes) -> list[Any]:
        left, right = socket.socketpair()
        _, reader = await asyncio.get_running_loop().create_unix_connection(FrameReader, sock=left)

        def send() -> None:
            with right:
                for header, blobs in sent:
                    write_frame(right, header, blobs)
                right.sendall(tail)

        writer = threading.Thread(target=send)
        writer.start()
        got: list[Any] = []
        try:
            while True:
                got.append(await reader.read())
        except (asyncio.IncompleteReadError, ValueError) as exc:
            got.append(type(exc).__name__)
        writer.join()
        return got

    whole = asyncio.run(read_all(frames_sent, b""))
    assert whole == [(h, list(b)) for h, b in frames_sent] + ["IncompleteReadError"]
    cut = asyncio.run(read_all(frames_sent[:1], b"".join(encode_frame({"kind": "x"}, (b"abc",)))[:-1]))
    assert cut[1:] == ["IncompleteReadError"]
    broken = asyncio.run(read_all([], PREFIX.pack(MAX_HEADER_BYTES + 1, 0)))
    assert broken == ["ValueError"]


@pytest.mark.parametrize(
    ("args", "named"),
    [
        (["--shard", "2/2"], "--shard"),
        (["--shard", "one/two"], "--shard"),
        (["--hosts", "2", "--shard", "3/4"], "--shard"),
        (["--hosts", "0"], "--hosts"),
        (["--workers", "0"], "--workers"),
    ],
)
def test_bad_fleet_options_are_one_line_and_exit_2(args: list[str], named: str) -> None:
    result = run_cli(*args)
    assert result.returncode == 2
    assert named in result.stderr and len(result.stderr.strip().splitlines()) == 1


def test_shards_serve_disjoint_hosts_whose_union_is_the_fleet(exporter_factory: Factory) -> None:
    common = ("--hosts", "5", "--num-gpus", "3", "-c", "600000", "--workers", "2")
    env = {"NODE_NAME": "rack"}
    whole = _identities(exporter_factory(*common, env=env))
    first = _identities(exporter_factory(*common, "--shard", "0/2", env=env))
    second = _identities(exporter_factory(*common, env={**env, "OTEL_FAKEGPU_SHARD": "1/2"}))
    assert len(whole) == 15 and len({h for h, *_ in whole}) == 5
    assert first and second and not first & second
    assert first | second == whole
    assert {h for h, *_ in first} == {"rack-0", "rack-2", "rack-4"}


def test_fleet_metrics_page_and_unknown_hosts(exporter_factory: Factory) -> None:
    exporter = exporter_factory("--hosts", "3", "--num-gpus", "2", "-c", "600000", env={"NODE_NAME": "n"})
    body = exporter.get("/metrics")[1].decode()
    assert "otel_fakegpu_hosts 3" in body and "otel_fakegpu_gpus 6" in body and "DCGM_" not in body
    assert exporter.get("/hosts/nope/metrics")[0] == 404
    groups = json.loads(exporter.get("/sd")[1])
    assert [g["labels"]["instance"] for g in groups] == ["n-0", "n-1", "n-2"]
    assert all(g["targets"] == [f"127.0.0.1:{exporter.port}"] for g in groups)
    status, health = exporter.health()
    assert status == 200 and health["gpus"] == 6 and health["hosts"] == 3


def test_a_killed_worker_is_seen_on_health_and_restarted(exporter_factory: Factory) -> None:
    exporter = exporter_factory("--num-gpus", "4", "-c", "1000")
    status, health = exporter.health()
    assert status == 200
    workers = health["workers"]
    assert isinstance(workers, list) and len(workers) == 1
    old_pid = workers[0]["pid"]
    os.kill(old_pid, signal.SIGKILL)
    wait_until(lambda: exporter.health()[1]["status"] == "engine_failed", timeout=20, interval=0.02)
    status, health = exporter.health()
    assert status == 503 and "exited" in str(health["engine"])
    assert exporter.get("/metrics")[0] == 200  # the last published bytes are still served

    def recovered() -> bool:
        status, health = exporter.health()
        workers = health["workers"]
        assert isinstance(workers, list)
        return status == 200 and workers[0]["restarts"] == 1 and workers[0]["pid"] != old_pid

    wait_until(recovered, timeout=30)
    new_pid = exporter.health()[1]["workers"][0]["pid"]
    assert exporter.stop() == 0
    for pid in (old_pid, new_pid):  # no orphan, no zombie left behind
        assert not Path(f"/proc/{pid}").exists()


@pytest.mark.slow
def test_prometheus_discovers_every_host_through_sd(
    prometheus: Callable[..., PrometheusServer], exporter_factory: Factory
) -> None:
    exporter = exporter_factory("--hosts", "64", "--num-gpus", "8", "--workers", "2", "-c", "2000")
    server = prometheus(sd_scrape("fleet", f"{exporter.base}/sd"))
    wait_until(lambda: server.scalar('count(up{job="fleet"} == 1)') == 64, timeout=90, interval=1)
    wait_until(lambda: server.scalar("count(DCGM_FI_DEV_GPU_TEMP)") == 512, timeout=60, interval=1)
    assert server.scalar("count(count by (Hostname) (DCGM_FI_DEV_GPU_TEMP))") == 64
    assert server.scalar("count(count by (UUID) (DCGM_FI_DEV_GPU_TEMP))") == 512
    assert server.scalar("count(count by (instance, Hostname) (DCGM_FI_DEV_GPU_TEMP))") == 64


@pytest.mark.slow
def test_each_host_is_its_own_otlp_resource_in_victoriametrics(tmp_path: Path, exporter_factory: Factory) -> None:
    victoria = VictoriaMetrics(tmp_path)
    try:
        exporter_factory(
            "--hosts", "3", "--num-gpus", "2", "--workers", "2", "-c", "600000",
            "--otlp-endpoint", f"{victoria.base}/opentelemetry/v1/metrics", env={"NODE_NAME": "pod"},
        )  # fmt: skip
        wait_until(lambda: len(victoria.export("DCGM_FI_DEV_GPU_TEMP")) == 6, timeout=30)
        resources = set()
        for series in victoria.export("DCGM_FI_DEV_GPU_TEMP"):
            labels = series["metric"]
            assert labels["Hostname"] == labels["host.name"] == labels["service.instance.id"]
            resources.add((labels["host.name"], labels["gpu"]))
        assert resources == {(f"pod-{h}", str(g)) for h in range(3) for g in range(2)}
    finally:
        victoria.stop()


class _EchoCollection:
    """A real host collection plus one request method, as a control API would add one."""

    def __init__(self, inner: HostCollection) -> None:
        self.inner = inner

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    def handlers(self) -> Mapping[str, Callable[[dict[str, Any]], Any]]:
        return {"echo": lambda args: {"host": self.inner.config.host_identity, "args": args}}


def test_requests_cross_the_boundary_as_json_and_errors_come_back() -> None:
    config = config_from_args(["--hosts", "3", "--num-gpus", "1", "--workers", "2", "-c", "600000"], {"NODE_NAME": "h"})
    collectors = load_collectors(default_collectors_path())
    plan = plan_fleet("h", 3, (0, 1), 2)
    published = PublishedFleet([h.name for h in plan.hosts], lambda fmt: b"")

    def factory(host: HostSpec) -> _EchoCollection:
        return _EchoCollection(build_collection(config, collectors, host))

    settings = WorkerSettings(600.0, 600.0)
    workers = fork_workers(plan, factory, settings, frozenset(published.demand))  # as main.py forks them
    pool = WorkerPool(plan, factory, settings, published, workers)

    async def exercise() -> None:
        try:
            await checks()
        finally:
            await pool.close()

    async def checks() -> None:
        await pool.attach()
        assert await pool.wait_ready() is None
        assert await pool.call("echo", {"n": 1}, "h-2") == {"host": "h-2", "args": {"n": 1}}
        assert await pool.broadcast("echo", {}) == {f"h-{i}": {"host": f"h-{i}", "args": {}} for i in range(3)}
        with pytest.raises(RemoteError, match="no method 'nope'"):
            await pool.call("nope", {}, "h-0")
        with pytest.raises(RemoteError, match="name a host"):
            await pool.call("echo", {})
        with pytest.raises(RemoteError, match="no host"):
            await pool.call("echo", {}, "elsewhere")
        gzipped = await published.exposition("h-1", Format.OPENMETRICS, True)  # built on request, once
        assert gzipped is not None and gzip.decompress(gzipped[0]).endswith(b"# EOF\n")

    asyncio.run(exercise())
    assert all(w.process.exitcode == 0 for w in pool.workers)


def test_variants_nobody_asks_for_stop_being_built() -> None:
    fleet = PublishedFleet(["a"], lambda fmt: b"")
    changes: list[set[Any]] = []
    fleet.on_new_demand = lambda: changes.append(set(fleet.demand))
    fleet.store("a", HostExposition(1, 0.0, {(Format.PROMETHEUS, False): b"text"}))
    assert asyncio.run(fleet.exposition("a", Format.PROMETHEUS, False)) == (b"text", 0.0)
    assert asyncio.run(fleet.exposition("a", Format.PROMETHEUS, True)) is None  # not published, no worker
    assert changes == [{(Format.PROMETHEUS, False), (Format.PROMETHEUS, True)}]
    fleet.forget_unasked(60.0)
    assert len(changes) == 1  # both asked for just now
    fleet.forget_unasked(0.0)
    assert changes[-1] == set() and fleet.demand == set()
    with pytest.raises(KeyError):
        asyncio.run(fleet.exposition("b", Format.PROMETHEUS, False))


def test_a_late_variant_of_an_older_cycle_never_replaces_a_newer_cycle() -> None:
    fleet = PublishedFleet(["a"], lambda fmt: b"")
    text, gz = (Format.PROMETHEUS, False), (Format.PROMETHEUS, True)
    fleet.store("a", HostExposition(1, 10.0, {text: b"one"}))
    fleet.store("a", HostExposition(1, 10.0, {gz: b"one-gz"}))  # same cycle: merged
    assert fleet.published("a") == HostExposition(1, 10.0, {text: b"one", gz: b"one-gz"})
    fleet.store("a", HostExposition(2, 20.0, {text: b"two"}))
    fleet.store("a", HostExposition(1, 10.0, {gz: b"late"}))  # overtaken: dropped
    assert fleet.published("a") == HostExposition(2, 20.0, {text: b"two"})
    fleet.store("a", HostExposition(1, 30.0, {text: b"restarted"}))  # a restarted worker counts from 1 again
    assert fleet.published("a") == HostExposition(1, 30.0, {text: b"restarted"})


def test_concurrent_misses_of_a_variant_share_one_build() -> None:
    fleet = PublishedFleet(["a"], lambda fmt: b"")
    text, gz = (Format.PROMETHEUS, False), (Format.PROMETHEUS, True)
    fleet.store("a", HostExposition(1, 10.0, {text: b"text"}))
    builds: list[tuple[str, Format, bool]] = []

    async def build(host: str, fmt: Format, gzipped: bool) -> None:
        builds.append((host, fmt, gzipped))
        await asyncio.sleep(0.05)  # the worker compressing: every other scrape arrives meanwhile
        fleet.store(host, HostExposition(1, 10.0, {gz: b"text-gz"}))

    fleet.builder = build

    async def eight_scrapes() -> list[tuple[bytes | bytearray, float] | None]:
        return await asyncio.gather(*(fleet.exposition("a", *gz) for _ in range(8)))

    assert asyncio.run(eight_scrapes()) == [(b"text-gz", 10.0)] * 8
    assert builds == [("a", Format.PROMETHEUS, True)]


class _OneExposition:
    """A collection whose only part the "variant" request uses is its latest exposition."""

    def __init__(self, exposition: Exposition | None) -> None:
        self.exposition = exposition

    def latest(self) -> Exposition | None:
        return self.exposition


def test_a_variant_request_publishes_that_variant_alone_and_nothing_before_a_cycle() -> None:
    server, worker_end = socket.socketpair()
    with server, worker_end:
        collection = _OneExposition(None)
        worker = Worker(worker_end, (), lambda host: cast(Collection, collection), WorkerSettings(1.0, 1.0))
        worker._collections["h"] = cast(Collection, collection)
        assert worker._dispatch("variant", "h", {"format": "OPENMETRICS", "gzipped": True}) is False
        collection.exposition = Exposition(7, 5.0, ())
        assert worker._dispatch("variant", "h", {"format": "OPENMETRICS", "gzipped": True}) is True
        header, blobs = read_frame(server)  # the first frame: the call without a cycle sent none
        assert (header["kind"], header["cycle"], header["variants"]) == ("publish", 7, [["OPENMETRICS", True]])
        assert gzip.decompress(blobs[0]) == b"# EOF\n"


def test_demand_outlives_a_scrape_interval_longer_than_three_cycles() -> None:
    assert demand_keep_s(1.0) == 300.0  # a 15 s (or 5 min) scrape of a 1 s cycle keeps its variant built
    assert demand_keep_s(600.0) == 1800.0


def test_the_fleet_summary_is_rendered_once_per_status_and_dated_by_it() -> None:
    renders: list[Format] = []

    def summary(fmt: Format) -> bytes:
        renders.append(fmt)
        return f"otel_fakegpu_hosts {len(renders)}\n".encode()

    fleet = PublishedFleet(["a", "b"], summary)
    text = (Format.PROMETHEUS, False)
    assert asyncio.run(fleet.exposition(None, *text)) is None  # no worker reported yet
    fleet.note_status(100.0)
    for _ in range(3):
        assert asyncio.run(fleet.exposition(None, *text)) == (b"otel_fakegpu_hosts 1\n", 100.0)
    zipped = asyncio.run(fleet.exposition(None, Format.PROMETHEUS, True))
    assert zipped is not None and (gzip.decompress(zipped[0]), zipped[1]) == (b"otel_fakegpu_hosts 1\n", 100.0)
    assert renders == [Format.PROMETHEUS]
    fleet.note_status(105.0)
    assert asyncio.run(fleet.exposition(None, *text)) == (b"otel_fakegpu_hosts 2\n", 105.0)
