"""--engine replay through the pipeline: a captured page is read back into GPUs, MIG instances, identities and
values; what the pipeline cannot print back exactly is kept as captured, in its place; the capture steps at its
pace times --replay-speed, holds or loops; a replay pushes over OTLP (to a real gRPC MetricsService) with the
recorded identities; and a replayed incident fires the alert rule in a real Prometheus."""

from __future__ import annotations

import io
import signal
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from otel_fakegpu.engine.recording import RecordingWriter
from otel_fakegpu.engine.replay import ReplayEngine
from otel_fakegpu.engine.replay_page import INSTANCE_BASE, INSTANCE_BLOCK, parse_page
from tests.conftest import ExporterProcess
from tests.prometheus_server import JOB, PrometheusServer, static_scrape
from tests.receivers import OtlpGrpcReceiver, wait_for
from tests.test_alert_rules import RULES, wait_firing
from tests.test_replay import dcgm_part

Factory = Callable[..., ExporterProcess]
_GPU0 = 'gpu="0",UUID="GPU-aaaa",pci_bus_id="00000000:18:00.0",device="nvidia0",modelName="NVIDIA H100 80GB HBM3"'
_GPU3 = 'gpu="3",UUID="GPU-dddd",pci_bus_id="00000000:9A:00.0",device="nvidia3",modelName="NVIDIA H100 80GB HBM3"'
_MIG = ',GPU_I_PROFILE="3g.40gb",GPU_I_ID="%d"'
_TAIL = ',Hostname="dgx-b7",DCGM_FI_DRIVER_VERSION="550.54.15"'
# A page as dcgm-exporter prints it: GPU 0 whole, GPU 3 split in two MIG instances, a vendor field, NVSwitch series,
# a family with a label of its own, and a double printed with fewer decimals than dcgm-exporter prints.
CAPTURED = (
    "# HELP DCGM_FI_DEV_GPU_TEMP GPU temperature (in C).\n# TYPE DCGM_FI_DEV_GPU_TEMP gauge\n"
    f"DCGM_FI_DEV_GPU_TEMP{{{_GPU0}{_TAIL}}} %d\n"
    f"DCGM_FI_DEV_GPU_TEMP{{{_GPU3}{_MIG % 1}{_TAIL}}} 51\n"
    f"DCGM_FI_DEV_GPU_TEMP{{{_GPU3}{_MIG % 2}{_TAIL}}} 51\n"
    "# HELP ACME_FABRIC_RETRIES A field no catalog knows.\n# TYPE ACME_FABRIC_RETRIES counter\n"
    f"ACME_FABRIC_RETRIES{{{_GPU0}{_TAIL}}} 12\n"
    "# HELP DCGM_FI_DEV_POWER_USAGE Power draw (in W).\n# TYPE DCGM_FI_DEV_POWER_USAGE gauge\n"
    f"DCGM_FI_DEV_POWER_USAGE{{{_GPU0}{_TAIL}}} 301.250000\n"
    f"DCGM_FI_DEV_POWER_USAGE{{{_GPU3}{_MIG % 1}{_TAIL}}} 402.500000\n"
    f"DCGM_FI_DEV_POWER_USAGE{{{_GPU3}{_MIG % 2}{_TAIL}}} 402.500000\n"
    "# HELP DCGM_FI_DEV_FB_USED Framebuffer memory used (in MiB).\n# TYPE DCGM_FI_DEV_FB_USED gauge\n"
    f'DCGM_FI_DEV_FB_USED{{{_GPU0}{_TAIL},pod="train-0"}} 1024\n'
    "# HELP DCGM_FI_PROF_GR_ENGINE_ACTIVE Ratio of time the graphics engine is active.\n"
    "# TYPE DCGM_FI_PROF_GR_ENGINE_ACTIVE gauge\n"
    f"DCGM_FI_PROF_GR_ENGINE_ACTIVE{{{_GPU0}{_TAIL}}} 0.5\n"
    "# HELP DCGM_FI_DEV_NVSWITCH_TEMPERATURE_CURRENT NVSwitch temperature.\n"
    "# TYPE DCGM_FI_DEV_NVSWITCH_TEMPERATURE_CURRENT gauge\n"
    'DCGM_FI_DEV_NVSWITCH_TEMPERATURE_CURRENT{nvswitch="0",Hostname="dgx-b7"} 44\n'
    "# HELP otel_fakegpu_gpus GPU entities in this cycle.\n# TYPE otel_fakegpu_gpus gauge\notel_fakegpu_gpus 2\n"
)
MAPPED = {"DCGM_FI_DEV_GPU_TEMP": True, "ACME_FABRIC_RETRIES": False, "DCGM_FI_DEV_POWER_USAGE": True,
          "DCGM_FI_DEV_FB_USED": False, "DCGM_FI_PROF_GR_ENGINE_ACTIVE": False,
          "DCGM_FI_DEV_NVSWITCH_TEMPERATURE_CURRENT": False}  # fmt: skip


def _capture(path: Path, temperatures: list[int], every_s: float = 1.0, page: str = CAPTURED) -> None:
    buffer = io.BytesIO()
    writer = RecordingWriter(buffer, {"source": "test", "every_s": every_s, "started_at": 1000.0}, 1 << 20)
    for i, temperature in enumerate(temperatures):
        assert writer.append(1000.0 + i * every_s, (page % temperature).encode())
    path.write_bytes(buffer.getvalue())


def test_a_page_reads_back_into_entities_identities_and_values_and_keeps_the_rest() -> None:
    page = parse_page(CAPTURED % 40)
    assert {f.name: f.mapped for f in page.families} == MAPPED  # otel_fakegpu_* left out: the replay has its own
    mig = [INSTANCE_BASE + 3 * INSTANCE_BLOCK + 1, INSTANCE_BASE + 3 * INSTANCE_BLOCK + 2]
    assert list(page.entities) == [0, *mig]
    assert page.entities[0] == ("GPU-aaaa", "00000000:18:00.0", 0, "NVIDIA H100 80GB HBM3", None,
                                (("DCGM_FI_DRIVER_VERSION", "550.54.15"),))  # fmt: skip
    assert [(page.instances[e].parent, page.instances[e].instance_id, page.instances[e].profile) for e in mig] == [
        (3, 1, "3g.40gb"), (3, 2, "3g.40gb")
    ]  # fmt: skip
    assert page.hostname == "dgx-b7" and list(page.labels) == ["DCGM_FI_DRIVER_VERSION"]
    assert page.values[150] == {0: 40, mig[0]: 51, mig[1]: 51} and page.values[155][0] == 301.25


def test_a_gpu_whose_identity_changes_within_the_page_keeps_the_family_as_captured() -> None:
    other = CAPTURED.replace(
        f"DCGM_FI_DEV_POWER_USAGE{{{_GPU0}", f"DCGM_FI_DEV_POWER_USAGE{{{_GPU0.replace('aaaa', 'eeee')}"
    )
    page = parse_page(other % 40)
    assert {f.name: f.mapped for f in page.families}["DCGM_FI_DEV_POWER_USAGE"] is False
    assert page.entities[0][0] == "GPU-aaaa" and 155 not in page.values


def test_escaped_label_values_are_read_as_the_renderer_will_escape_them_again() -> None:
    page = parse_page(
        (CAPTURED % 40).replace('modelName="NVIDIA H100 80GB HBM3"', r'modelName="A \"quoted\" \\ model"')
    )
    assert page.entities[0][3] == 'A "quoted" \\ model' and page.families[0].mapped


def test_the_engine_steps_at_the_recorded_pace_times_the_speed_then_holds_or_loops(tmp_path: Path) -> None:
    path = tmp_path / "cap.bin"
    _capture(path, [40, 41, 42])
    now = [0.0]
    held = ReplayEngine(path, speed=2.0, clock=lambda: now[0])

    def temperature(engine: ReplayEngine) -> object:
        snapshot = engine.read_latest((150,))
        return snapshot.column(150)[0]

    seen = []
    for t in (0.0, 0.4, 0.6, 1.1, 5.0):  # capture seconds 0, 0.8, 1.2, 2.2, 10
        now[0] = t
        seen.append(temperature(held))
    assert seen == [40, 40, 41, 42, 42]
    assert held.status().detail == "page 3 of 3 (ended, holding the last)"
    looped = ReplayEngine(path, loop=True, clock=lambda: now[0])
    now[0] = 0.0
    assert temperature(looped) == 40
    now[0] = 3.5  # the capture is 3 s long (its last page lasts one interval): second 0.5 of the second pass
    assert temperature(looped) == 40 and looped.status().detail == "page 1 of 3"
    snapshot = looped.read_latest((54, 57, 55, 50))
    assert snapshot.column(54)[0] == "GPU-aaaa" and snapshot.column(55)[0] == 0 and len(snapshot.instances) == 2


@pytest.fixture
def grpc_receiver() -> Iterator[OtlpGrpcReceiver]:
    receiver = OtlpGrpcReceiver().start()
    yield receiver
    receiver.stop()


def test_a_replay_serves_the_page_as_captured_and_pushes_the_recorded_identities(
    tmp_path: Path, exporter_factory: Factory, grpc_receiver: OtlpGrpcReceiver
) -> None:
    capture = tmp_path / "dgx.bin"
    captured = CAPTURED.replace('UUID="GPU-aaaa"', r'UUID="GPU-\"a\\aaa"')  # escaped as the renderer escapes
    _capture(capture, [40], page=captured)
    replay = exporter_factory(
        "--engine", "replay", "--replay-file", str(capture), "-c", "200", "--otlp-protocol", "grpc",
        "--otlp-endpoint", f"127.0.0.1:{grpc_receiver.port}", "--otlp-insecure",
        "--label-style", "dcgm-fake-gpu-exporter", "--use-old-namespace",  # the capture's labels win over these
        env={"NODE_NAME": "elsewhere"},
    )  # fmt: skip
    expected = (captured % 40).split("# HELP otel_fakegpu_gpus")[0].encode()
    assert dcgm_part(replay.get("/metrics")[1]) == expected  # mapped, kept and all, in the captured order
    assert b"otel_fakegpu_gpus 3\n" in replay.get("/metrics")[1]  # the replay's own: GPU 0 and two instances
    wait_for(lambda: any(p.metric == "DCGM_FI_DEV_POWER_USAGE" for p in grpc_receiver.snapshot()))
    pushed = {(p.metric, dict(p.attributes).get("GPU_I_ID", "-")): p for p in grpc_receiver.snapshot()}
    power = pushed[("DCGM_FI_DEV_POWER_USAGE", "2")]
    assert dict(power.attributes) == {
        "gpu": "3", "UUID": "GPU-dddd", "pci_bus_id": "00000000:9A:00.0", "device": "nvidia3",
        "modelName": "NVIDIA H100 80GB HBM3", "GPU_I_PROFILE": "3g.40gb", "GPU_I_ID": "2", "Hostname": "dgx-b7",
        "DCGM_FI_DRIVER_VERSION": "550.54.15",
    }  # fmt: skip
    assert power.value == 402.5 and pushed[("DCGM_FI_DEV_GPU_TEMP", "-")].value == 40
    assert dict(pushed[("DCGM_FI_DEV_GPU_TEMP", "-")].attributes)["UUID"] == 'GPU-"a\\aaa'  # mapped, unescaped
    assert grpc_receiver.resources[0]["host.name"] == "dgx-b7"  # the recorded host, not the replaying one
    replay.proc.send_signal(signal.SIGHUP)  # a reload keeps the capture's fields, not the collectors file's
    wait_for(lambda: b'otel_fakegpu_reloads_total{result="ok"} 1' in replay.get("/metrics")[1])
    assert dcgm_part(replay.get("/metrics")[1]) == expected


XID_PAGE = (
    "# HELP DCGM_FI_DEV_XID_ERRORS Value of the last XID error encountered.\n"
    "# TYPE DCGM_FI_DEV_XID_ERRORS gauge\n"
    f"DCGM_FI_DEV_XID_ERRORS{{{_GPU0}{_TAIL}}} %d\n"
)


@pytest.mark.slow
def test_a_replayed_incident_fires_the_alert_rule_for_the_recorded_gpu(
    tmp_path: Path, exporter_factory: Factory, prometheus: Callable[..., PrometheusServer]
) -> None:
    capture = tmp_path / "incident.bin"
    # An XID 79 twenty seconds into the capture: Prometheus, started after the replay, must scrape the zeros
    # before it for changes() to see the XID (its start took over 6 s on a loaded machine).
    _capture(capture, [0] * 10 + [79], every_s=2.0, page=XID_PAGE)
    replay = exporter_factory("--engine", "replay", "--replay-file", str(capture), "-c", "200")
    server = prometheus(static_scrape(JOB, replay.port), (RULES,))
    server.wait_ready()
    alerts = wait_firing(server, "GpuXidError", timeout=90)
    labels = alerts[0]["labels"]
    assert (labels["Hostname"], labels["UUID"], labels["gpu"]) == ("dgx-b7", "GPU-aaaa", "0")
    assert float(alerts[0]["value"]) == 79
