"""Real receivers started by the tests on loopback: an OTLP/gRPC MetricsService built on
opentelemetry-proto (with gRPC's default 4 MiB message limit), and VictoriaMetrics."""

from __future__ import annotations

import json
import subprocess
import threading
import time
import urllib.parse
from concurrent import futures
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc
from opentelemetry.proto.collector.metrics.v1 import metrics_service_pb2, metrics_service_pb2_grpc

from tests.conftest import PEERS, free_port, http_get
from tests.polling import wait_until

VICTORIA = PEERS / "victoria-metrics" / "usr" / "bin" / "victoria-metrics"


@dataclass(frozen=True)
class Point:
    metric: str
    attributes: tuple[tuple[str, str], ...]
    time_unix_nano: int
    value: float


class _Service(metrics_service_pb2_grpc.MetricsServiceServicer):
    def __init__(self, sink: OtlpGrpcReceiver) -> None:
        self._sink = sink

    def Export(self, request: Any, context: Any) -> Any:  # noqa: N802 - the gRPC method name
        self._sink.record(request)
        return metrics_service_pb2.ExportMetricsServiceResponse()


class OtlpGrpcReceiver:
    """Collects every data point it is sent; can be stopped and restarted on the same port."""

    def __init__(self, port: int | None = None) -> None:
        self.port = port or free_port()
        self._lock = threading.Lock()
        self.requests = 0
        self.last_request_at = 0.0  # wall-clock seconds when the last request was recorded
        self.points: list[Point] = []
        self.resources: list[dict[str, str]] = []
        self._server: grpc.Server | None = None

    def start(self) -> OtlpGrpcReceiver:
        server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))  # default 4 MiB receive limit
        metrics_service_pb2_grpc.add_MetricsServiceServicer_to_server(_Service(self), server)
        server.add_insecure_port(f"127.0.0.1:{self.port}")
        server.start()
        self._server = server
        return self

    def stop(self) -> None:
        if self._server is not None:
            # New calls are refused at once; a call already recorded is let finish, or its lost answer would make
            # the exporter send it again (at-least-once delivery), which an exactly-once test counts as a duplicate.
            self._server.stop(grace=5).wait()
            self._server = None

    def record(self, request: Any) -> None:
        with self._lock:
            self.requests += 1
            for rm in request.resource_metrics:
                self.resources.append({kv.key: kv.value.string_value for kv in rm.resource.attributes})
                for sm in rm.scope_metrics:
                    for metric in sm.metrics:
                        kind = metric.WhichOneof("data")
                        for dp in getattr(metric, kind).data_points:
                            value = dp.as_int if dp.WhichOneof("value") == "as_int" else dp.as_double
                            attrs = tuple((kv.key, kv.value.string_value) for kv in dp.attributes)
                            self.points.append(Point(metric.name, attrs, dp.time_unix_nano, value))
            self.last_request_at = time.time()

    def snapshot(self) -> list[Point]:
        with self._lock:
            return list(self.points)


class VictoriaMetrics:
    """A single-node VictoriaMetrics on a loopback port (a free one unless ``port`` is given) with its data in
    ``folder``."""

    def __init__(self, folder: Path, port: int | None = None) -> None:
        assert VICTORIA.exists(), f"{VICTORIA} missing: run `make peers` (tools/install-peers.sh)"
        self.port = port or free_port()
        self._log = (folder / "victoria.log").open("wb")
        self._proc = subprocess.Popen(
            [
                str(VICTORIA),
                f"-storageDataPath={folder / 'vm-data'}",
                f"-httpListenAddr=127.0.0.1:{self.port}",
                "-search.latencyOffset=0s",
                "-retentionPeriod=100y",
            ],
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )
        wait_until(
            lambda: http_get(self.base + "/health", timeout=1)[0] == 200,
            30,
            "VictoriaMetrics to start",
            ignore=(OSError,),
        )

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def export(self, match: str) -> list[dict[str, Any]]:
        """Raw samples (metric labels, values, timestamps) of the series matching ``match``."""
        status, body, _ = http_get(f"{self.base}/api/v1/export?match[]={urllib.parse.quote(match)}")
        assert status == 200, body
        return [json.loads(line) for line in body.decode().splitlines() if line.strip()]

    def query(self, promql: str) -> list[dict[str, Any]]:
        status, body, _ = http_get(f"{self.base}/api/v1/query?query={urllib.parse.quote(promql)}")
        assert status == 200, body
        result = json.loads(body)["data"]["result"]
        assert isinstance(result, list)
        return result

    def stop(self) -> None:
        self._proc.terminate()
        self._proc.wait(timeout=30)
        self._log.close()


# The name tests written before tests/polling.py import; new tests import wait_until from there.
wait_for = wait_until
