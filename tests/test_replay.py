"""record and --engine replay: a capture of the simulator replays through the pipeline with byte-identical DCGM
series in order (the exporter's own otel_fakegpu_* series are the replaying exporter's); fields no catalog knows are
kept; a truncated or corrupt capture serves its whole part and says where it stopped; bad input is one line and
exit 2; the file stays within --max-bytes."""

from __future__ import annotations

import gzip
import io
import re
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path

import pytest

from otel_fakegpu.engine.recording import MAGIC, RecordingWriter, read_recording
from otel_fakegpu.engine.replay_page import SELF_PREFIX, parse_page, split_families
from otel_fakegpu.host.replay import page_families
from otel_fakegpu.outputs.prometheus_text import join_openmetrics, join_prometheus
from tests.conftest import ExporterProcess, run_cli

Factory = Callable[..., ExporterProcess]
VENDOR_PAGE = (
    "# HELP DCGM_FI_DEV_GPU_TEMP GPU temperature (in C).\n# TYPE DCGM_FI_DEV_GPU_TEMP gauge\n"
    'DCGM_FI_DEV_GPU_TEMP{gpu="0",UUID="GPU-x",Hostname="n"} %d\n'
    "# HELP ACME_FABRIC_RETRIES A field no catalog knows.\n# TYPE ACME_FABRIC_RETRIES counter\n"
    'ACME_FABRIC_RETRIES{gpu="0",port="7"} 12\n'
    'acme_untyped{gpu="0"} 1.5e+3\n'
)


def _capture(path: Path, pages: list[bytes], every_s: float = 0.3) -> None:
    buffer = io.BytesIO()
    writer = RecordingWriter(buffer, {"source": "test", "every_s": every_s, "started_at": 1000.0}, 1 << 20)
    for i, page in enumerate(pages):
        assert writer.append(1000.0 + i * every_s, page)
    path.write_bytes(buffer.getvalue())


def dcgm_part(page: bytes) -> bytes:
    """The page less the exporting process's own ``otel_fakegpu_*`` families: what a replay must reproduce."""
    kept = []
    for header, samples, _ in split_families(page.decode()):
        name = re.match(r"(?:# \S+ )?([^\s{]+)", header or samples)
        if name is None or not name.group(1).startswith(SELF_PREFIX):
            kept.append(header + samples)
    return "".join(kept).encode()


def _served_sequence(exporter: ExporterProcess, count: int, timeout: float = 60) -> list[bytes]:
    """Every distinct DCGM part /metrics served, in order, until ``count`` of them (consecutive repeats once)."""
    seen: list[bytes] = []
    deadline = time.monotonic() + timeout
    while len(seen) < count and time.monotonic() < deadline:
        body = dcgm_part(exporter.get("/metrics")[1])
        if not seen or seen[-1] != body:
            seen.append(body)
        time.sleep(0.02)  # deliberate: sampling fast enough to see every page the replay serves
    return seen


def _once_each(pages: list[bytes]) -> list[bytes]:
    return [page for i, page in enumerate(pages) if i == 0 or pages[i - 1] != page]


def test_page_families_join_back_to_the_page_and_declare_counters_without_total_unknown() -> None:
    page = VENDOR_PAGE % 40
    families = page_families(page)
    assert join_prometheus(families).decode() == page
    openmetrics = join_openmetrics(families).decode()
    assert "# TYPE ACME_FABRIC_RETRIES unknown" in openmetrics and openmetrics.endswith("# EOF\n")


def test_a_capture_cut_short_or_corrupt_keeps_its_whole_records(tmp_path: Path) -> None:
    path = tmp_path / "cap.bin"
    _capture(path, [(VENDOR_PAGE % t).encode() for t in range(40, 45)])
    whole = path.read_bytes()
    assert [p for _, p in read_recording(path).pages] == [(VENDOR_PAGE % t).encode() for t in range(40, 45)]
    path.write_bytes(whole[:-10])
    cut = read_recording(path)
    assert len(cut.pages) == 4 and cut.stopped and "record 5 at byte" in cut.stopped and "cut short" in cut.stopped
    corrupt = bytearray(whole)
    corrupt[-3] ^= 0xFF  # inside the last record's body
    path.write_bytes(bytes(corrupt))
    broken = read_recording(path)
    assert len(broken.pages) == 4 and broken.stopped and "record 5" in broken.stopped and "corrupt" in broken.stopped
    assert len(whole) < 5 * len(VENDOR_PAGE) // 2  # each page after the first costs a small delta


@pytest.mark.slow
def test_record_then_replay_a_scenario_byte_identical_per_cycle(tmp_path: Path, exporter_factory: Factory) -> None:
    scenario = tmp_path / "five-minutes.yaml"
    scenario.write_text("seed: 4\ntime_scale: 20\nevents:\n  - {at: 2m, gpu: 1, xid: 31}\n")
    source = exporter_factory("--num-gpus", "2", "-c", "500", "--update-interval", "0.5", "--scenario", str(scenario))
    capture = tmp_path / "capture.bin"
    done = run_cli(
        "record", "--from", f"{source.base}/metrics", "--every", "0.5s", "--duration", "15s", "--out", str(capture),
        timeout=90,
    )  # fmt: skip
    assert done.returncode == 0 and "31 pages" in done.stdout, done.stdout + done.stderr
    source.close()
    recorded = _once_each([dcgm_part(page) for _, page in read_recording(capture).pages])
    assert any(b'DCGM_FI_DEV_XID_ERRORS{gpu="1"' in p and b"} 31\n" in p for p in recorded)  # the scenario's minute 2
    assert all(f.mapped for p in recorded for f in parse_page(p.decode()).families)  # through the pipeline, all
    replay = exporter_factory("--engine", "replay", "--replay-file", str(capture), "--replay-speed", "2", "-c", "100")
    served = _served_sequence(replay, len(recorded))
    assert served == recorded  # every recorded page's DCGM series, in order, byte for byte
    status, health = replay.health()
    assert status == 200 and health["engine"]["kind"] == "replay" and health["gpus"] == 2, health
    page = replay.get("/metrics")[1]
    assert b"otel_fakegpu_sdk_collections_total " in page and b"otel_fakegpu_gpus 2\n" in page  # the pipeline's own


def test_fields_no_catalog_knows_are_served_as_captured_and_a_cut_capture_says_where(
    tmp_path: Path, exporter_factory: Factory
) -> None:
    capture = tmp_path / "vendor.bin"
    pages = [(VENDOR_PAGE % t).encode() for t in (40, 41, 42)]
    _capture(capture, pages)
    capture.write_bytes(capture.read_bytes()[:-5])  # the last record cut short
    replay = exporter_factory("--engine", "replay", "--replay-file", str(capture), "--replay-loop", "-c", "100")
    assert _served_sequence(replay, 2, timeout=10) == pages[:2]
    looped = _served_sequence(replay, 4, timeout=10)  # looping over the two whole pages, never the cut one
    assert len(looped) == 4 and all(page in pages[:2] for page in looped), looped
    assert dcgm_part(replay.get("/metrics")[1]) in pages[:2]
    detail = replay.health()[1]["engine"]["detail"]
    assert "record 3 at byte" in detail and "cut short" in detail, detail
    assert "replaying the whole part only" in replay.stderr_text()
    request = urllib.request.Request(f"{replay.base}/metrics", headers={"Accept-Encoding": "gzip"})
    with urllib.request.urlopen(request, timeout=10) as response:
        assert response.headers["Content-Encoding"] == "gzip"
        assert dcgm_part(gzip.decompress(response.read())) in pages[:2]


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["--engine", "replay"], "needs --replay-file"),
        (["--engine", "replay", "--replay-file", "{junk}"], "not an otel-fakegpu capture"),
        (["--engine", "replay", "--replay-file", "{missing}"], "cannot read"),
        (["--replay-file", "{capture}"], "served by --engine replay"),
        (["--engine", "replay", "--replay-file", "{capture}", "--hosts", "2"], "replay serves one host"),
        (["--engine", "replay", "--replay-file", "{capture}", "--replay-speed", "0"], "--replay-speed"),
    ],
)
def test_bad_replay_input_is_one_line_and_exit_2(tmp_path: Path, args: list[str], says: str) -> None:
    junk, capture = tmp_path / "junk.bin", tmp_path / "cap.bin"
    junk.write_bytes(b"not a capture\n")
    _capture(capture, [b"x 1\n"])
    paths = {"junk": str(junk), "missing": str(tmp_path / "none.bin"), "capture": str(capture)}
    done = run_cli("--check-config", *[a.format(**paths) for a in args])
    assert done.returncode == 2 and says in done.stderr and done.stderr.count("\n") == 1, done.stderr


def test_record_refuses_bad_input_and_stays_within_max_bytes(tmp_path: Path, exporter_factory: Factory) -> None:
    out = tmp_path / "cap.bin"
    for bad, says in [
        (["--every", "soon"], "not a duration"),
        (["--max-bytes", "lots"], "--max-bytes"),
        (["--from", "gpu-node:9400"], "expected an http://"),
    ]:
        args = ["--from", "http://127.0.0.1:9/metrics", "--duration", "1s", "--out", str(out), *bad]
        done = run_cli("record", *args)
        assert done.returncode == 2 and says in done.stderr and done.stderr.count("\n") == 1, done.stderr
    nobody = run_cli(
        "record", "--from", "http://127.0.0.1:9/metrics", "--every", "0.5s", "--duration", "1s", "--out", str(out)
    )
    assert nobody.returncode == 1 and "no page recorded" in nobody.stderr.splitlines()[-1], nobody.stderr
    source = exporter_factory("--num-gpus", "2", "-c", "200")
    done = run_cli(
        "record", "--from", f"{source.base}/metrics", "--every", "0.1s", "--duration", "30s", "--out", str(out),
        "--max-bytes", "6000",
    )  # fmt: skip
    assert done.returncode == 0 and "--max-bytes 6000 reached" in done.stdout, done.stdout + done.stderr
    assert len(MAGIC) < out.stat().st_size <= 6000 and read_recording(out).stopped is None
