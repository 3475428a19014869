"""The option groups that validate into one stage's settings each: OTLP push, the Unix socket, attribution, the
engine. ``config.build_config`` puts them together with the rest into one Config."""

from __future__ import annotations

import urllib.parse
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING

from otel_fakegpu.attribution import LabelStyle
from otel_fakegpu.attribution.settings import HPC, KUBELET, POD_LIST, SIMULATOR, AttributionSettings
from otel_fakegpu.config import parsers as P  # noqa: N812 - as the table names it
from otel_fakegpu.config.errors import ConfigError, OptionValue
from otel_fakegpu.config.table import parsed
from otel_fakegpu.config.values import (
    parse_host_port,
    parse_url,
)
from otel_fakegpu.engine.recording import RecordingError, read_recording
from otel_fakegpu.engine.selection import EngineSettings, ReplaySettings
from otel_fakegpu.outputs import PushQueueSettings
from otel_fakegpu.serve import UdsError, UdsSettings, check_socket_path
from otel_fakegpu.telemetry.tracing import TRACES_PROTOCOLS, TracingSettings

if TYPE_CHECKING:
    from otel_fakegpu.outputs.otlp import OtlpSettings


def _otlp_endpoint(value: OptionValue, protocol: str) -> str:
    """The exporter's endpoint. For HTTP, a base URL gets ``/v1/metrics`` as the specification says for
    OTEL_EXPORTER_OTLP_ENDPOINT; the metrics-specific variable is used as given."""
    text = (value.text or "").strip()
    if protocol == "grpc":
        if "://" in text:
            parse_url(text, value.source)
        else:
            parse_host_port(text, value.source)
        return text
    url = parse_url(text, value.source)
    if value.source == "OTEL_EXPORTER_OTLP_METRICS_ENDPOINT":
        return url
    path = urllib.parse.urlsplit(url).path
    if value.source == "OTEL_EXPORTER_OTLP_ENDPOINT" or path in ("", "/"):
        return url.rstrip("/") + "/v1/metrics"
    return url


def otlp_settings(values: Mapping[str, OptionValue]) -> OtlpSettings | None:
    """OTLP push, when an endpoint is given (its other options are checked only then)."""
    endpoint = values["otlp_endpoint"]
    if not (endpoint.text or "").strip():
        return None
    from otel_fakegpu.outputs.otlp import OtlpSettings  # noqa: PLC0415 - the OTLP output loads only when it pushes

    protocol = parsed(values, "otlp_protocol")
    compression, naming = parsed(values, "otlp_compression"), parsed(values, "naming")
    return OtlpSettings(
        endpoint=_otlp_endpoint(endpoint, protocol),
        protocol=protocol,
        headers=parsed(values, "otlp_headers"),
        compression=compression,
        timeout_s=parsed(values, "otlp_timeout"),
        insecure=parsed(values, "otlp_insecure"),
        export_interval_s=parsed(values, "export_interval"),
        max_points_per_request=parsed(values, "otlp_max_points"),
        naming=naming,
    )


def push_queue_settings(values: Mapping[str, OptionValue]) -> PushQueueSettings | None:
    """``--push-queue-dir`` and its bounds; None when push keeps its requests in memory only."""
    directory = parsed(values, "push_queue_dir")
    if directory is None:
        return None
    max_bytes, floor = parsed(values, "push_queue_max_bytes"), parsed(values, "push_queue_min_free_bytes")
    return PushQueueSettings(directory, max_bytes, floor)


def tracing_settings(exporter: OptionValue, env: Mapping[str, str]) -> TracingSettings | None:
    """Traces of the exporter's own work; the protocol is OpenTelemetry's variables' alone (it has no flag)."""
    name = P.traces_exporter(exporter)
    if name == "none":
        return None
    for variable in ("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", "OTEL_EXPORTER_OTLP_PROTOCOL"):
        protocol = env.get(variable, "").strip().lower()
        if protocol:
            if protocol not in TRACES_PROTOCOLS:
                raise ConfigError(f"{variable}={protocol!r}: expected grpc or http/protobuf for traces")
            return TracingSettings(name, protocol)
    return TracingSettings(name)


def uds_settings(values: Mapping[str, OptionValue]) -> UdsSettings | None:
    """--uds PATH enables the socket; the seed's UDS_SOCKET_PATH does so only with ENABLE_UDS=true."""
    if values["uds"].origin != "flag" and not parsed(values, "enable_uds"):
        return None
    path = parsed(values, "uds")
    try:
        check_socket_path(path)  # what a start would refuse, --check-config refuses too
    except UdsError as exc:
        raise ConfigError(f"{values['uds'].source}: {exc}") from None
    return UdsSettings(path, parsed(values, "uds_mode"), parsed(values, "uds_group"))


def attribution_settings(values: Mapping[str, OptionValue]) -> AttributionSettings:
    """One source: the HPC directory, else the pod list file, else the kubelet (-k), else simulated workloads."""
    kubernetes = parsed(values, "kubernetes")
    pod_list, hpc = parsed(values, "pod_list_file"), parsed(values, "hpc_job_mapping_dir")
    if hpc and (kubernetes or pod_list):
        other = values["pod_list_file" if pod_list else "kubernetes"].source
        raise ConfigError(f"{values['hpc_job_mapping_dir'].source} and {other} both set: workload attribution "
                          "takes one source")  # fmt: skip
    id_type = parsed(values, "kubernetes_gpu_id_type")
    kind, path = SIMULATOR, ""
    if hpc:
        kind, path = HPC, hpc
    elif pod_list:
        kind, path = POD_LIST, pod_list
    elif kubernetes:
        kind, path = KUBELET, parsed(values, "pod_resources_socket")
    return AttributionSettings(
        kind=kind,
        path=path,
        id_type=id_type,
        resource_names=parsed(values, "nvidia_resource_names"),
        style=LabelStyle(
            old_names=parsed(values, "use_old_namespace"), pod_uid=parsed(values, "kubernetes_enable_pod_uid")
        ),
        timeout_s=parsed(values, "attribution_timeout"),
        jobstats=parsed(values, "jobstats_series"),
        virtual_gpus=parsed(values, "kubernetes_virtual_gpus"),
        dra_slices=_dra_slices(values, kind),
    )


def _dra_slices(values: Mapping[str, OptionValue], kind: str) -> str | None:
    """--kubernetes-enable-dra: the kubelet's claims resolve through a ResourceSlices file (no API server here)."""
    if not parsed(values, "kubernetes_enable_dra"):
        return None
    enable, slices = values["kubernetes_enable_dra"].source, values["kubernetes_dra_resource_slices"]
    path = parsed(values, "kubernetes_dra_resource_slices")
    if kind != KUBELET:
        raise ConfigError(f"{enable}: DRA claims come from the kubelet (add -k)")
    if not path:
        raise ConfigError(f"{enable} needs {slices.source} FILE (the cluster's ResourceSlices: kubectl get "
                          "resourceslices -o yaml)")  # fmt: skip
    if not Path(path).is_file():
        raise ConfigError(f"{slices.source}={path!r}: no such file")
    return str(path)


def engine_settings(values: Mapping[str, OptionValue]) -> EngineSettings:
    """--engine, -r, --devices, --inject; -r and --inject belong to the DCGM engine. The fleet they must hold is
    checked once the scenario has set it (``config._check_fleet``)."""
    kind, devices, devices_value = parsed(values, "engine"), parsed(values, "devices"), values["devices"]
    inject_value = values["inject"]
    inject = parsed(values, "inject")
    if devices.mode == "i" and (kind == "nvml" or inject):
        raise ConfigError(
            f"{devices_value.source}={devices_value.text!r}: reading MIG GPU instances on their own needs the "
            "embedded engine or --engine dcgm reading a hostengine's GPUs (use f or g[:ids])"
        )
    if inject and kind != "dcgm":
        raise ConfigError(f"{inject_value.source}: injection needs --engine dcgm (the engine is {kind})")
    remote = parsed(values, "remote_hostengine")
    return EngineSettings(kind, remote if kind == "dcgm" else None, devices, inject, replay_settings(values, kind))


def replay_settings(values: Mapping[str, OptionValue], kind: str) -> ReplaySettings | None:
    """--replay-file, --replay-speed, --replay-loop: the capture is read now, so a bad one stops the start."""
    file_value, path = values["replay_file"], parsed(values, "replay_file")
    if kind != "replay":
        if path is not None:
            raise ConfigError(f"{file_value.source}: a capture is served by --engine replay (the engine is {kind})")
        return None
    if path is None:
        raise ConfigError(f"{values['engine'].source}=replay: needs --replay-file (a capture of otel-fakegpu record)")
    if parsed(values, "hosts") != 1:
        raise ConfigError(f"{values['hosts'].source}: a capture is one host's page; replay serves one host")
    try:
        recording = read_recording(path)
    except RecordingError as exc:
        raise ConfigError(str(exc)) from None
    except OSError as exc:
        raise ConfigError(f"{file_value.source}={str(path)!r}: cannot read: {exc.strerror or exc}") from None
    if not recording.pages:
        raise ConfigError(f"{path}: no whole page to replay ({recording.stopped or 'no record'})")
    return ReplaySettings(path, parsed(values, "replay_speed"), parsed(values, "replay_loop"))
