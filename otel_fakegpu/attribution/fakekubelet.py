"""A stand-in kubelet: the real pod-resources v1 gRPC service on a Unix socket, answering from a file.

For trying attribution without a cluster, and for the tests (a real gRPC server, not a mock)::

    python -m otel_fakegpu.attribution.fakekubelet --socket /tmp/kubelet.sock --pods pods.yaml

The pods file (JSON or YAML) is the ``List`` answer in the proto's field names, ``{pod_resources: [...]}`` or
just the list: ``[{name, namespace, containers: [{name, devices: [{resource_name, device_ids}]}]}]``. It is
re-read when it changes. ``--delay`` makes every answer that slow (a kubelet under load).
"""

from __future__ import annotations

import argparse
import errno
import logging
import math
import os
import signal
import socket
import stat
import sys
import threading
import time
from concurrent import futures
from pathlib import Path
from typing import Any

import grpc
from google.protobuf import json_format

from otel_fakegpu.attribution.limits import MAX_PODS_FILE_BYTES
from otel_fakegpu.attribution.podresources_v1 import api_pb2, api_pb2_grpc
from otel_fakegpu.config.files import load_yaml, read_config_text

log = logging.getLogger(__name__)

MAX_SOCKET_PATH_BYTES = 107  # sun_path holds 108 bytes with the terminating NUL
MAX_DELAY_S = 3600.0


def load_pods(path: Path) -> api_pb2.ListPodResourcesResponse:
    """Parse a pods file into the ``List`` answer; ValueError names the file and the reason. Read by the bounded
    reader (a regular file up to MAX_PODS_FILE_BYTES) and the bounded YAML loader (JSON is YAML)."""
    data: Any = load_yaml(read_config_text(path, MAX_PODS_FILE_BYTES, "pods file"), str(path))  # ConfigError
    if isinstance(data, list):
        data = {"pod_resources": data}
    if not isinstance(data, dict | None):
        raise ValueError(f"{path}: expected {{pod_resources: [...]}} or a list of pods")
    try:
        return json_format.ParseDict(data or {}, api_pb2.ListPodResourcesResponse())
    except (json_format.ParseError, TypeError, AttributeError) as exc:
        raise ValueError(f"{path}: {' '.join(str(exc).split())[:300]}") from None


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


def _clear_stale_socket(path: str) -> None:
    """Remove ``path`` only when it is a socket nobody listens on; ValueError for anything else there."""
    if len(os.fsencode(path)) > MAX_SOCKET_PATH_BYTES:
        raise ValueError(f"{path}: socket path longer than {MAX_SOCKET_PATH_BYTES} bytes")
    try:
        info = os.lstat(path)
    except FileNotFoundError:
        return
    if not stat.S_ISSOCK(info.st_mode):
        raise ValueError(f"{path}: exists and is not a socket; refusing to remove it")
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as probe:
        probe.settimeout(1.0)
        try:
            probe.connect(path)
        except OSError as exc:
            if exc.errno != errno.ECONNREFUSED:
                raise ValueError(f"{path}: cannot probe the existing socket: {exc.strerror}") from None
            os.unlink(path)  # nobody listens: left behind by a run that ended
            return
    raise ValueError(f"{path}: another process is serving on this socket")


def serve(kubelet: FakeKubelet, socket_path: str | Path, workers: int = 4) -> grpc.Server:
    """Start the service on ``socket_path`` (replacing only a stale socket); stop it with ``server.stop``.
    ValueError when the path is too long, is something else than a socket or has a live server."""
    path = os.path.abspath(socket_path)
    _clear_stale_socket(path)
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=workers))
    api_pb2_grpc.add_PodResourcesListerServicer_to_server(kubelet, server)  # type: ignore[no-untyped-call]
    server.add_insecure_port(f"unix:{path}")
    server.start()
    return server


def _delay(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not 0.0 <= value <= MAX_DELAY_S:  # also NaN and infinities
        raise argparse.ArgumentTypeError(f"{text[:40]!r} is not a number of seconds from 0 to {MAX_DELAY_S:g}")
    return value


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m otel_fakegpu.attribution.fakekubelet", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--socket", required=True, help="Unix socket to serve on")
    parser.add_argument("--pods", required=True, type=Path, help="pods file (JSON or YAML), re-read when it changes")
    parser.add_argument("--delay", type=_delay, default=0.0, help="seconds every List answer takes (0 to 3600)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(message)s")
    try:
        kubelet = FakeKubelet(args.pods, args.delay)
        server = serve(kubelet, args.socket)
    except (OSError, ValueError, RuntimeError) as exc:  # RuntimeError: grpc could not bind the socket
        sys.stderr.write(f"fakekubelet: error: {' '.join(str(exc).split())[:500]}\n")
        return 2
    log.info("pod-resources v1 on unix:%s from %s", args.socket, args.pods)
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    stop.wait()
    server.stop(grace=1).wait()
    return 0


if __name__ == "__main__":
    sys.exit(main())
