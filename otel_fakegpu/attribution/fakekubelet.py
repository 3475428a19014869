"""A stand-in kubelet: the real pod-resources v1 gRPC service on a Unix socket, answering from a file.

For trying attribution without a cluster, and for the tests (a real gRPC server, not a mock)::

    python -m otel_fakegpu.attribution.fakekubelet --socket /tmp/kubelet.sock --pods pods.yaml

The pods file (JSON or YAML) is the ``List`` answer in the proto's field names, ``{pod_resources: [...]}`` or
just the list: ``[{name, namespace, containers: [{name, devices: [{resource_name, device_ids}]}]}]``. It is
re-read when it changes. ``--delay`` makes every answer that slow (a kubelet under load).
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
import threading
import time
from concurrent import futures
from pathlib import Path
from typing import Any

import grpc
import yaml
from google.protobuf import json_format

from otel_fakegpu.attribution.podresources_v1 import api_pb2, api_pb2_grpc

log = logging.getLogger(__name__)


def load_pods(path: Path) -> api_pb2.ListPodResourcesResponse:
    """Parse a pods file into the ``List`` answer; ValueError names the file and the reason."""
    try:
        data: Any = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError) as exc:
        raise ValueError(f"{path}: {exc}") from None
    if isinstance(data, list):
        data = {"pod_resources": data}
    try:
        return json_format.ParseDict(data or {}, api_pb2.ListPodResourcesResponse())
    except json_format.ParseError as exc:
        raise ValueError(f"{path}: {exc}") from None


class FakeKubelet(api_pb2_grpc.PodResourcesListerServicer):
    """PodResourcesLister over a pods file; counts ``List`` calls."""

    def __init__(self, pods: Path | api_pb2.ListPodResourcesResponse, delay_s: float = 0.0) -> None:
        self.delay_s = delay_s
        self.list_calls = 0
        self._lock = threading.Lock()
        self._path = pods if isinstance(pods, Path) else None
        self._stamp: tuple[int, int] | None = None
        self._answer = pods if isinstance(pods, api_pb2.ListPodResourcesResponse) else None
        if self._path is not None:
            self._reload()

    def set_pods(self, answer: api_pb2.ListPodResourcesResponse) -> None:
        with self._lock:
            self._answer, self._path = answer, None

    def _reload(self) -> None:
        assert self._path is not None
        stat = self._path.stat()
        stamp = (stat.st_mtime_ns, stat.st_size)
        if stamp != self._stamp:
            self._answer, self._stamp = load_pods(self._path), stamp

    def List(self, request: Any, context: grpc.ServicerContext) -> api_pb2.ListPodResourcesResponse:  # noqa: N802
        with self._lock:
            self.list_calls += 1
            if self._path is not None:
                try:
                    self._reload()
                except (OSError, ValueError) as exc:  # keep answering from the last good file
                    log.warning("%s", exc)
            answer = self._answer
        if self.delay_s > 0:
            time.sleep(self.delay_s)
        return answer or api_pb2.ListPodResourcesResponse()

    def GetAllocatableResources(self, request: Any, context: grpc.ServicerContext) -> Any:  # noqa: N802
        return api_pb2.AllocatableResourcesResponse()

    def Get(self, request: Any, context: grpc.ServicerContext) -> Any:  # noqa: N802
        with self._lock:
            answer = self._answer or api_pb2.ListPodResourcesResponse()
        for pod in answer.pod_resources:
            if pod.name == request.pod_name and pod.namespace == request.pod_namespace:
                return api_pb2.GetPodResourcesResponse(pod_resources=pod)
        context.abort(grpc.StatusCode.NOT_FOUND, f"pod {request.pod_namespace}/{request.pod_name} not found")


def serve(kubelet: FakeKubelet, socket_path: str | Path, workers: int = 4) -> grpc.Server:
    """Start the service on ``socket_path`` (replacing a stale socket file); stop it with ``server.stop``."""
    path = os.path.abspath(socket_path)
    if os.path.exists(path):
        os.unlink(path)
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=workers))
    api_pb2_grpc.add_PodResourcesListerServicer_to_server(kubelet, server)  # type: ignore[no-untyped-call]
    server.add_insecure_port(f"unix:{path}")
    server.start()
    return server


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m otel_fakegpu.attribution.fakekubelet", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--socket", required=True, help="Unix socket to serve on")
    parser.add_argument("--pods", required=True, type=Path, help="pods file (JSON or YAML), re-read when it changes")
    parser.add_argument("--delay", type=float, default=0.0, help="seconds every List answer takes")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(message)s")
    try:
        kubelet = FakeKubelet(args.pods, args.delay)
    except (OSError, ValueError) as exc:
        sys.stderr.write(f"fakekubelet: {exc}\n")
        return 2
    server = serve(kubelet, args.socket)
    log.info("pod-resources v1 on unix:%s from %s", args.socket, args.pods)
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    stop.wait()
    server.stop(grace=1).wait()
    return 0


if __name__ == "__main__":
    sys.exit(main())
