"""Over OTLP a workload's points carry the same attributes as /metrics, and with semantic-convention naming
also k8s.pod.name, k8s.namespace.name and k8s.container.name."""

from __future__ import annotations

from pathlib import Path

from otel_fakegpu.attribution import AttributionStage, Claim, DeviceRef, LabelStyle, Source, WorkloadIdentity
from otel_fakegpu.attribution.source import Claims
from otel_fakegpu.engine import Column, EmbeddedEngine, GpuInstanceEntity, Snapshot
from otel_fakegpu.fields import default_collectors_path, load_collectors
from otel_fakegpu.sim import SKUS, FleetSpec, Simulator
from otel_fakegpu.telemetry import (
    SCOPE_NAME,
    SEMCONV_SCOPE_NAME,
    CycleStats,
    LabelScheme,
    TelemetryPipeline,
    default_resource,
)
from tests.conftest import FakeClock


class Fixed(Source):
    """A source answering the same claims every cycle."""

    name = "fixed"

    def __init__(self, claims: Claims) -> None:
        self.claims = claims

    def fetch(self, timeout_s: float) -> Claims:
        return self.claims


def _points(semconv: bool, claims: Claims, collectors_path: Path | None = None) -> dict[str, list[dict[str, object]]]:
    clock = FakeClock()
    engine = EmbeddedEngine(clock)
    Simulator(FleetSpec(2, ("static",), (SKUS["h100-sxm"],), "host", 1), engine, clock=clock).start()
    collectors = load_collectors(collectors_path or default_collectors_path())
    pipeline = TelemetryPipeline(
        collectors, LabelScheme("host", collectors.labels), default_resource("svc", "host"), CycleStats(),
        lambda: engine.reads_total, semconv=semconv,
        attribution=AttributionStage(Fixed(claims), LabelStyle(pod_uid=True), 1.0),
    )  # fmt: skip
    pipeline.watch(engine, 3600.0)
    data = pipeline.collect(pipeline.read(engine))
    found: dict[str, list[dict[str, object]]] = {}
    for rm in data.resource_metrics:
        for sm in rm.scope_metrics:
            assert sm.scope.name in (SCOPE_NAME, SEMCONV_SCOPE_NAME)
            for metric in sm.metrics:
                found[metric.name] = [dict(p.attributes or {}) for p in metric.data.data_points]
    return found


def test_otlp_points_carry_pod_attributes_and_k8s_names_under_semconv() -> None:
    claims = (
        Claim(DeviceRef(index=0), WorkloadIdentity("trainer-0", "ml", "pytorch", pod_uid="uid-1")),
        Claim(DeviceRef(index=0), WorkloadIdentity("trainer-1", "ml", "pytorch", pod_uid="uid-2")),
    )
    points = _points(True, claims)
    temps = points["DCGM_FI_DEV_GPU_TEMP"]
    assert len(temps) == 3  # GPU 0 twice (two pods), GPU 1 once
    gpu0 = [p for p in temps if p["gpu"] == "0"]
    assert sorted((p["pod"], p["pod_uid"], p["namespace"], p["container"]) for p in gpu0) == [
        ("trainer-0", "uid-1", "ml", "pytorch"),
        ("trainer-1", "uid-2", "ml", "pytorch"),
    ]
    assert not any(k.startswith("k8s.") for p in temps for k in p)  # dotted names never reach /metrics
    util = points["hw.gpu.utilization"]
    assert len(util) == 3
    pods = sorted((p["k8s.pod.name"], p["k8s.namespace.name"], p["k8s.container.name"], p["k8s.pod.uid"])
                  for p in util if "k8s.pod.name" in p)  # fmt: skip
    assert pods == [("trainer-0", "ml", "pytorch", "uid-1"), ("trainer-1", "ml", "pytorch", "uid-2")]
    assert all("hw.id" in p for p in util)
    unused = [p for p in util if "k8s.pod.name" not in p]
    assert len(unused) == 1 and not any(k.startswith("k8s.") for k in unused[0])  # GPU 1: no pod


def test_series_per_workload_on_window_counts_too(tmp_path: Path) -> None:
    csv = tmp_path / "c.csv"
    csv.write_text("DCGM_FI_DEV_GPU_TEMP, gauge, t\nDCGM_EXP_XID_ERRORS_COUNT, gauge, x\n")
    claims = (
        Claim(DeviceRef(index=1), WorkloadIdentity(hpc_job="42")),
        Claim(DeviceRef(index=1), WorkloadIdentity(hpc_job="43")),
    )
    points = _points(False, claims, csv)
    for name in ("DCGM_FI_DEV_GPU_TEMP", "DCGM_EXP_XID_ERRORS_COUNT"):
        assert sorted(str(p.get("hpc_job")) for p in points[name]) == ["42", "43", "None"], name
    assert all(p["window_size_in_ms"] == "300000" for p in points["DCGM_EXP_XID_ERRORS_COUNT"])


def test_health_and_p2p_series_keep_workload_labels_when_a_gpu_has_two_workloads(tmp_path: Path) -> None:
    csv = tmp_path / "c.csv"
    csv.write_text(
        "DCGM_FI_DEV_GPU_TEMP, gauge, t\nDCGM_EXP_GPU_HEALTH_STATUS, gauge, h\nDCGM_EXP_P2P_STATUS, gauge, p\n"
    )
    one = (
        Claim(DeviceRef(index=0), WorkloadIdentity("a", "ml", "c")),
        Claim(DeviceRef(index=1), WorkloadIdentity("c", "ml", "c")),
    )
    two = (*one, Claim(DeviceRef(index=0), WorkloadIdentity("b", "ml", "c")))
    for claims, gpu0_pods in ((one, ["a"]), (two, ["a", "b"])):
        points = _points(False, claims, csv)
        for name, per_gpu in (("DCGM_EXP_GPU_HEALTH_STATUS", 11), ("DCGM_EXP_P2P_STATUS", 1)):
            gpu0 = [p for p in points[name] if p["gpu"] == "0"]
            assert sorted({str(p.get("pod")) for p in gpu0}) == gpu0_pods, name
            assert len(gpu0) == per_gpu * len(gpu0_pods), name
            assert {str(p.get("pod")) for p in points[name] if p["gpu"] == "1"} == {"c"}, name


def test_semconv_hw_id_follows_the_mig_instance_an_entity_now_is() -> None:
    """A MIG layout change may give an entity id another GPU instance: hw.id (which names it) must follow."""
    scheme = LabelScheme("h", ())
    columns: dict[int, Column] = {50: ("NVIDIA H100 80GB HBM3",), 54: ("GPU-a",)}
    for instance_id in (1, 2, 1):
        snapshot = Snapshot.build((5,), columns, 0.0, instances={5: GpuInstanceEntity(0, instance_id, "3g.40gb")})
        assert scheme.semconv_attributes(snapshot)[0]["hw.id"] == f"GPU-a/gi{instance_id}"


def test_labels_and_matches_are_reused_while_identities_hold_and_redone_when_one_changes() -> None:
    scheme = LabelScheme("h", ())
    stage = AttributionStage(
        Fixed((Claim(DeviceRef(uuid="GPU-b"), WorkloadIdentity("p", "ns", "c")),)), LabelStyle(), 1.0
    )
    first, same, moved = (Snapshot.build((0,), {54: (uuid,)}, t) for t, uuid in enumerate(("GPU-a", "GPU-a", "GPU-b")))
    assert scheme.attributes(first) is scheme.attributes(same)
    assert scheme.semconv_attributes(first) is scheme.semconv_attributes(same)
    assert stage.assign(first) == stage.assign(same) == ((),)
    assert scheme.attributes(moved)[0]["UUID"] == scheme.semconv_attributes(moved)[0]["hw.id"] == "GPU-b"
    assert [dict(pairs)["pod"] for pairs in stage.assign(moved)[0]] == ["p"]
    stage.close()
