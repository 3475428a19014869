"""The option groups that validate into one stage's settings each: OTLP push, the Unix socket, attribution, the
engine. ``config.build_config`` puts them together with the rest into one Config."""

from __future__ import annotations

import urllib.parse
from collections.abc import Mapping
from pathlib import Path

from otel_fakegpu.attribution import ID_TYPES, LabelStyle
from otel_fakegpu.attribution.settings import HPC, KUBELET, POD_LIST, SIMULATOR, AttributionSettings
from otel_fakegpu.config.errors import ConfigError, OptionValue
from otel_fakegpu.config.values import (
    MAX_INTERVAL_MS,
    parse_bool,
    parse_headers,
    parse_host_port,
    parse_int,
    parse_mode,
    parse_url,
)
from otel_fakegpu.engine.selection import ENGINE_KINDS, EngineSettings, parse_devices
from otel_fakegpu.outputs import NAMINGS, OtlpSettings
from otel_fakegpu.serve import DEFAULT_MODE, DEFAULT_SOCKET_PATH, UdsSettings
from otel_fakegpu.telemetry.tracing import TRACES_EXPORTERS, TRACES_PROTOCOLS, TracingSettings

MAX_TIMEOUT_MS = 600_000  # ten minutes of request timeout
MAX_POINTS = 100_000_000


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
    endpoint = values["otlp_endpoint"]
    if not (endpoint.text or "").strip():
        return None
    protocol = (values["otlp_protocol"].text or "").strip().lower()
    if protocol not in ("grpc", "http/protobuf"):
        raise ConfigError(f"{values['otlp_protocol'].source}={protocol!r}: expected grpc or http/protobuf")
    compression = (values["otlp_compression"].text or "").strip().lower()
    if compression not in ("gzip", "none"):
        raise ConfigError(f"{values['otlp_compression'].source}={compression!r}: expected gzip or none")
    naming = (values["naming"].text or "").strip().lower()
    if naming not in NAMINGS:
        raise ConfigError(f"{values['naming'].source}={naming!r}: expected one of {', '.join(NAMINGS)}")
    interval = values["export_interval"]
    insecure = values["otlp_insecure"]
    return OtlpSettings(
        endpoint=_otlp_endpoint(endpoint, protocol),
        protocol=protocol,
        headers=parse_headers(values["otlp_headers"].text or "", values["otlp_headers"].source),
        compression=compression,
        timeout_s=parse_int(
            values["otlp_timeout"].text or "", values["otlp_timeout"].source, low=1, high=MAX_TIMEOUT_MS
        )
        / 1000.0,
        insecure=parse_bool(insecure.text, insecure.source) if insecure.text is not None else None,
        export_interval_s=parse_int(interval.text, interval.source, low=1, high=MAX_INTERVAL_MS) / 1000.0
        if interval.text
        else None,
        max_points_per_request=parse_int(
            values["otlp_max_points"].text or "", values["otlp_max_points"].source, low=1, high=MAX_POINTS
        ),
        naming=naming,
    )


def tracing_settings(exporter: OptionValue, env: Mapping[str, str]) -> TracingSettings | None:
    name = (exporter.text or "none").strip().lower()
    if name not in TRACES_EXPORTERS:
        raise ConfigError(f"{exporter.source}={name!r}: expected one of {', '.join(TRACES_EXPORTERS)}")
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
    uds, enabled = values["uds"], values["enable_uds"]
    if uds.origin != "flag" and not parse_bool(enabled.text or "", enabled.source):
        return None
    mode = values["uds_mode"]
    group = (values["uds_group"].text or "").strip() or None
    return UdsSettings(
        Path(uds.text or DEFAULT_SOCKET_PATH), parse_mode(mode.text or f"{DEFAULT_MODE:04o}", mode.source), group
    )


def attribution_settings(values: Mapping[str, OptionValue]) -> AttributionSettings:
    """One source: the HPC directory, else the pod list file, else the kubelet (-k), else simulated workloads."""

    def text(dest: str) -> tuple[str, str]:
        return (values[dest].text or "").strip(), values[dest].source

    kubernetes = parse_bool(*text("kubernetes"))
    pod_list, hpc = text("pod_list_file"), text("hpc_job_mapping_dir")
    if hpc[0] and (kubernetes or pod_list[0]):
        other = pod_list[1] if pod_list[0] else text("kubernetes")[1]
        raise ConfigError(f"{hpc[1]} and {other} both set: workload attribution takes one source")
    id_type, id_source = text("kubernetes_gpu_id_type")
    if id_type not in ID_TYPES:
        raise ConfigError(f"{id_source}={id_type!r}: expected {' or '.join(ID_TYPES)}")
    timeout_text, timeout_source = text("attribution_timeout")
    kind, path = SIMULATOR, ""
    if hpc[0]:
        kind, path = HPC, hpc[0]
    elif pod_list[0]:
        kind, path = POD_LIST, pod_list[0]
    elif kubernetes:
        kind, path = KUBELET, text("pod_resources_socket")[0]
    return AttributionSettings(
        kind=kind,
        path=path,
        id_type=id_type,
        resource_names=tuple(n.strip() for n in text("nvidia_resource_names")[0].split(",") if n.strip()),
        style=LabelStyle(
            old_names=parse_bool(*text("use_old_namespace")), pod_uid=parse_bool(*text("kubernetes_enable_pod_uid"))
        ),
        timeout_s=parse_int(timeout_text, timeout_source, low=1, high=MAX_TIMEOUT_MS) / 1000.0
        if timeout_text
        else None,
        jobstats=parse_bool(*text("jobstats_series")),
    )


def engine_settings(values: Mapping[str, OptionValue]) -> EngineSettings:
    """--engine, -r, --devices, --inject; -r and --inject belong to the DCGM engine. The fleet they must hold is
    checked once the scenario has set it (``config._check_fleet``)."""
    kind_value, devices_value = values["engine"], values["devices"]
    kind = (kind_value.text or "").strip().lower()
    if kind not in ENGINE_KINDS:
        raise ConfigError(f"{kind_value.source}={kind_value.text!r}: expected one of {', '.join(ENGINE_KINDS)}")
    try:
        devices = parse_devices(devices_value.text or "f")
    except ValueError as exc:
        raise ConfigError(f"{devices_value.source}={devices_value.text!r}: {exc}") from None
    inject_value, remote_value = values["inject"], values["remote_hostengine"]
    inject = parse_bool(inject_value.text or "", inject_value.source)
    if devices.mode == "i" and (kind == "nvml" or inject):
        raise ConfigError(
            f"{devices_value.source}={devices_value.text!r}: reading MIG GPU instances on their own needs the "
            "embedded engine or --engine dcgm reading a hostengine's GPUs (use f or g[:ids])"
        )
    if inject and kind != "dcgm":
        raise ConfigError(f"{inject_value.source}: injection needs --engine dcgm (the engine is {kind})")
    remote = (remote_value.text or "").strip() or None
    if remote is not None and "/" not in remote:
        try:
            parse_host_port(remote, remote_value.source)
        except ConfigError:
            raise ConfigError(f"{remote_value.source}={remote_value.text!r}: expected HOST:PORT or a Unix socket "
                              "path (a port from 1 to 65535)") from None  # fmt: skip
    return EngineSettings(kind, remote if kind == "dcgm" else None, devices, inject)
