"""Workload attribution's cost: an 8-GPU cycle with the kubelet's default pod limit (110 pods, 8 of them holding
a GPU, the rest CPUs, memory and other devices) attributed through a fake kubelet in its own process, next to
the same exporter unattributed. Runs alternate so a shared machine's load falls on both alike.

A third run answers the same 110 pods with the GPUs renamed to another resource: the kubelet call and the
mapping happen, but no series gains a label. It separates the stage's own cost from the cost of the three
extra labels on every series, which the OpenTelemetry SDK charges per attribute and per point."""

from __future__ import annotations

import json
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from bench.procs import health, start_exporter

GPUS, PODS = 8, 110
ROUNDS = 5  # alternating runs of the three exporters; the median of each is reported (one run can be 1.5x)
TARGET_RATIO = 1.10


def node_pods(gpu_resource: str = "nvidia.com/gpu") -> list[dict[str, Any]]:
    """A full node: every pod has CPUs and memory; one in fourteen also a NIC; 8 hold one GPU each."""
    pods = []
    for i in range(PODS):
        devices: list[dict[str, Any]] = []
        if i < GPUS:
            devices.append({"resource_name": gpu_resource, "device_ids": [f"nvidia{i}"]})
        elif i % 14 == 0:
            devices.append({"resource_name": "example.com/nic", "device_ids": [f"nic{i}"]})
        container = {"name": "main", "devices": devices, "cpu_ids": [i % 64, (i + 1) % 64],
                     "memory": [{"memory_type": "memory", "size": 1 << 30}]}  # fmt: skip
        pods.append({"name": f"pod-{i}", "namespace": "default" if i % 3 else "batch",
                     "containers": [container, {"name": "sidecar", "cpu_ids": [i % 64]}]})  # fmt: skip
    return pods


def _cycle_ms(cycles: int, extra: tuple[str, ...], attributed_gpus: int) -> float:
    interval_ms = 250
    proc, port, _ = start_exporter(
        ["--num-gpus", str(GPUS), "-c", str(interval_ms), *extra], f'gpu="{GPUS - 1}"'.encode()
    )
    try:
        time.sleep((cycles + 3) * interval_ms / 1000)
        last = health(port)
        if extra:
            assert last["attribution"]["attributed_entities"] == attributed_gpus, last["attribution"]
        return float(statistics.median(d * 1000 for d in last["recent_cycle_durations_seconds"][-cycles:]))
    finally:
        proc.stop()


def _kubelet(tmp: Path, name: str, pods: list[dict[str, Any]]) -> tuple[subprocess.Popen[bytes], Path]:
    pods_file, sock = tmp / f"{name}.json", tmp / f"{name}.sock"
    pods_file.write_text(json.dumps(pods))
    kubelet = subprocess.Popen(
        [sys.executable, "-m", "otel_fakegpu.attribution.fakekubelet", "--socket", str(sock), "--pods", str(pods_file)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    deadline = time.monotonic() + 30
    while not sock.exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    return kubelet, sock


def _flags(sock: Path) -> tuple[str, ...]:
    return ("-k", "--pod-resources-kubelet-socket", str(sock), "--kubernetes-gpu-id-type", "device-name")


def measure_attribution(quick: bool, tmp: Path) -> dict[str, Any]:
    """Median cycle ms unattributed, attributed (8 GPU pods of 110), and fetch-and-map only; ratios."""
    gpu_kubelet, gpu_sock = _kubelet(tmp, "kubelet-gpu", node_pods())
    other_kubelet, other_sock = _kubelet(tmp, "kubelet-other", node_pods("example.com/fpga"))
    runs: dict[str, list[float]] = {"unattributed": [], "attributed": [], "fetch_and_map_only": []}
    cycles = 5 if quick else 24
    try:
        for _ in range(1 if quick else ROUNDS):
            runs["unattributed"].append(_cycle_ms(cycles, (), 0))
            runs["attributed"].append(_cycle_ms(cycles, _flags(gpu_sock), GPUS))
            runs["fetch_and_map_only"].append(_cycle_ms(cycles, _flags(other_sock), 0))
    finally:
        for kubelet in (gpu_kubelet, other_kubelet):
            kubelet.terminate()
            kubelet.wait(timeout=30)
    base, attr, machinery = (statistics.median(runs[k]) for k in runs)
    return {
        "gpus": GPUS,
        "pods": PODS,
        "unattributed_cycle_ms": round(base, 3),
        "attributed_cycle_ms": round(attr, 3),
        "fetch_and_map_only_cycle_ms": round(machinery, 3),
        "ratio": round(attr / base, 3),
        "fetch_and_map_ratio": round(machinery / base, 3),
        "runs": {k: [round(v, 3) for v in values] for k, values in runs.items()},
    }


def report_line(results: dict[str, Any]) -> str:
    a = results.get("attribution")
    if not a:
        return "attribution: not measured"
    return (
        f"attribution, {a['gpus']} GPUs + {a['pods']} pods from a kubelet: cycle {a['attributed_cycle_ms']} ms "
        f"vs {a['unattributed_cycle_ms']} ms unattributed (x{a['ratio']}); kubelet call and mapping without "
        f"new labels {a['fetch_and_map_only_cycle_ms']} ms (x{a['fetch_and_map_ratio']})"
    )
