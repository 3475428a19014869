"""Helpers for the attribution tests: a real fake-kubelet gRPC server on a Unix socket, and pods."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import grpc

from otel_fakegpu.attribution import AttributionStage, LabelStyle, Source
from otel_fakegpu.attribution.fakekubelet import FakeKubelet, serve
from otel_fakegpu.attribution.podresources_v1 import api_pb2
from tests.conftest import Stack, build_stack

Device = tuple[str, Sequence[str]]  # resource name, device ids


def pod(name: str, namespace: str, containers: dict[str, Sequence[Device]]) -> api_pb2.PodResources:
    return api_pb2.PodResources(
        name=name,
        namespace=namespace,
        containers=[
            api_pb2.ContainerResources(
                name=cname,
                devices=[api_pb2.ContainerDevices(resource_name=r, device_ids=list(ids)) for r, ids in devices],
            )
            for cname, devices in containers.items()
        ],
    )


def answer(*pods: api_pb2.PodResources) -> api_pb2.ListPodResourcesResponse:
    return api_pb2.ListPodResourcesResponse(pod_resources=list(pods))


@dataclass
class RunningKubelet:
    """A FakeKubelet served on ``socket``; ``stop``/``start`` take it away and bring it back."""

    kubelet: FakeKubelet
    socket: Path
    server: grpc.Server | None = None

    def start(self) -> None:
        self.server = serve(self.kubelet, self.socket)

    def stop(self) -> None:
        if self.server is not None:
            self.server.stop(grace=None).wait()
            self.server = None
        self.socket.unlink(missing_ok=True)


@contextmanager
def running_kubelet(initial: api_pb2.ListPodResourcesResponse) -> Iterator[RunningKubelet]:
    directory = Path(tempfile.mkdtemp(prefix="kl"))  # short: Unix socket paths are limited to ~107 bytes
    running = RunningKubelet(FakeKubelet(initial), directory / "kubelet.sock")
    running.start()
    try:
        yield running
    finally:
        running.stop()
        shutil.rmtree(directory, ignore_errors=True)


def attributed_stack(
    source: Source, count: int = 4, style: LabelStyle | None = None, timeout_s: float = 2.0, mig: str | None = None
) -> Stack:
    stage = AttributionStage(source, style or LabelStyle(), timeout_s)
    return build_stack(count, ["static"], attribution=stage, mig=mig)


def series(body: bytes, metric: str) -> list[str]:
    return [line for line in body.decode().splitlines() if line.startswith(metric + "{")]


def uuids(stack: Stack) -> list[str]:
    snapshot = stack.engine.read_latest([54])
    return [str(v) for v in snapshot.column(54)]
