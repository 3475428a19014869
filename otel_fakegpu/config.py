"""Configuration: every option is a flag with an environment fallback (dcgm-exporter's and the seed
prototype's names), validated into one frozen Config. Errors name the flag or variable and the value."""

from __future__ import annotations

import dataclasses
import math
import os
import re
import socket
import urllib.parse
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from otel_fakegpu.attribution import ID_TYPES, LabelStyle
from otel_fakegpu.attribution.settings import HPC, KUBELET, POD_LIST, SIMULATOR, AttributionSettings
from otel_fakegpu.engine.selection import ENGINE_KINDS, EngineSettings, parse_devices
from otel_fakegpu.fields import (
    CLOCK_EVENTS_COUNT_FIELD,
    XID_COUNT_FIELD,
    CollectorSet,
    collectors_preset_path,
    default_collectors_path,
    load_collectors,
    merge_collectors,
)
from otel_fakegpu.outputs import NAMINGS, OtlpSettings
from otel_fakegpu.serve import DEFAULT_MODE, DEFAULT_SOCKET_PATH, UdsSettings
from otel_fakegpu.settings import ConfigError, OptionValue
from otel_fakegpu.sim import (
    DEFAULT_SKU,
    PROFILE_NAMES,
    GpuSku,
    MigError,
    MigLayout,
    Scenario,
    ScenarioError,
    find_sku,
    load_scenario,
    parse_mig_spec,
    resolve_mig,
)
from otel_fakegpu.telemetry import LABEL_STYLES
from otel_fakegpu.telemetry.tracing import TRACES_EXPORTERS, TRACES_PROTOCOLS, TracingSettings

MAX_GPUS = 65536
MAX_INJECTED_GPUS = 32  # DCGM_MAX_NUM_DEVICES: one hostengine holds at most 32 GPUs, fake ones included
MAX_HOSTS = 100_000
MAX_WORKERS = 1024
# Bounds that keep every value inside what a timer, a sleep or the memory can take: one day of interval,
# seven of window, ten minutes of request timeout.
MAX_INTERVAL_MS = 86_400_000
MAX_WINDOW_MS = 7 * MAX_INTERVAL_MS
MAX_TIMEOUT_MS = 600_000
MAX_POINTS = 100_000_000
_ASCII_INT = re.compile(r"-?[0-9]+")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_HEADER_NAME = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")
# What `--preset NAME` changes; flags and variables still win over it.
PRESETS: dict[str, dict[str, str]] = {
    # digitalocean/do-dcgm-exporter (pkg/main.go): :9401, a 20 s cycle, both window counts over 20 s, push to the
    # in-droplet endpoint. Its field set is not a -f default: it is always on, and -f adds to it (BASE_COLLECTORS).
    "digitalocean": {
        "address": ":9401",
        "push_prometheus_url": "http://169.254.169.254/v1/gpu_metrics",
        "collect_interval": "20000",
        "xid_window": "20000",
        "clock_events_window": "20000",
    },
    # The seed prototype (dcgm-fake-gpu-exporter): its nine lower-case names, labels gpu and device from 1.
    "dcgm-fake-gpu-exporter": {
        "collectors": str(collectors_preset_path("dcgm-fake-gpu-exporter")),
        "label_style": "dcgm-fake-gpu-exporter",
    },
}
# Presets whose field set is always collected, with -f adding to it rather than replacing it.
BASE_COLLECTORS: dict[str, Path] = {"digitalocean": collectors_preset_path("digitalocean")}


@dataclass(frozen=True)
class ListenAddress:
    host: str | None  # None: every interface
    port: int

    def __str__(self) -> str:
        host = self.host or "0.0.0.0"
        return f"[{host}]:{self.port}" if ":" in host else f"{host}:{self.port}"


@dataclass(frozen=True)
class Config:
    collectors_path: Path | None  # None: the shipped default set
    base_collectors_path: Path | None  # a preset's always-on field set, which -f adds to (None: -f alone)
    label_style: str
    listen: ListenAddress | None  # None: no TCP listener (--address "")
    uds: UdsSettings | None  # None: no Unix socket
    web_config_path: Path | None
    idle_timeout_s: float
    collect_interval_s: float
    count_windows_ms: dict[int, int]  # computed field id (9001, 9002) -> sliding window
    hostname: str | None  # None: no Hostname label (--no-hostname)
    host_identity: str  # the host name used for resource attributes and GPU identities
    num_gpus: int
    profiles: tuple[str, ...]
    skus: tuple[GpuSku, ...]
    update_interval_s: float
    seed: int | None
    hosts: int  # simulated hosts in the whole fleet, each with num_gpus GPUs
    workers: int  # worker processes this process splits its hosts over
    shard: tuple[int, int]  # (I, N): this process simulates the hosts whose index i has i % N == I
    service_name: str
    resource_attributes: dict[str, str]
    otlp: OtlpSettings | None
    push_prometheus_url: str | None
    push_buffer_points: int
    log_level: str
    attribution: AttributionSettings = field(default_factory=lambda: AttributionSettings(SIMULATOR))
    mig: dict[int, MigLayout] = field(default_factory=dict)  # GPU index -> MIG instances (--mig)
    scenario: Scenario | None = None  # its fleet, when it names one, is already in num_gpus/profiles/skus/mig
    control_token: str | None = None  # None: the control API is served on the Unix socket only
    engine: EngineSettings = field(default_factory=EngineSettings)
    check_only: bool = False  # --check-config: validate, then exit
    tracing: TracingSettings | None = None  # None: no traces


def parse_listen(value: str, source: str) -> ListenAddress:
    """dcgm-exporter's ``-a`` syntax: ``:9400``, ``127.0.0.1:9400``, ``[::1]:9400``."""
    host, sep, port_text = value.strip().rpartition(":")
    if not sep:
        raise ConfigError(f"{source}={value!r}: expected [HOST]:PORT, e.g. :9400")
    host = host.strip("[]")
    port = parse_int(port_text, source, low=0, high=65535, shown=value)
    return ListenAddress(host or None, port)


def parse_mode(text: str, source: str) -> int:
    """File permission bits in octal, as chmod takes them (``0660``, ``660``, ``0o660``)."""
    digits = text.strip().lower().removeprefix("0o")
    try:
        mode = int(digits, 8)
    except ValueError:
        raise ConfigError(f"{source}={text!r}: expected octal permission bits such as 0660") from None
    if not 0 <= mode <= 0o777:
        raise ConfigError(f"{source}={text!r}: permission bits must be between 0000 and 0777")
    return mode


def parse_int(text: str, source: str, *, low: int, high: int | None = None, shown: str | None = None) -> int:
    """ASCII digits only: no spaces, no other scripts' digits, no underscores (Python's int() takes all three,
    no other tool reading the same variable would)."""
    if not _ASCII_INT.fullmatch(text):
        raise ConfigError(f"{source}={shown or text!r}: not a whole number")
    try:
        number = int(text)
    except ValueError:  # more digits than Python converts
        raise ConfigError(f"{source}={shown or text!r}: not a whole number") from None
    if number < low or (high is not None and number > high):
        bound = f"between {low} and {high}" if high is not None else f"at least {low}"
        raise ConfigError(f"{source}={shown or text!r}: must be {bound}")
    return number


def parse_float(text: str, source: str, *, minimum: float, maximum: float = MAX_INTERVAL_MS / 1000) -> float:
    try:
        number = float(text.strip())
    except ValueError:
        raise ConfigError(f"{source}={text!r}: not a number") from None
    if not math.isfinite(number) or not minimum <= number <= maximum:  # also rejects NaN and inf
        raise ConfigError(f"{source}={text!r}: must be between {minimum:g} and {maximum:g}")
    return number


def parse_bool(text: str, source: str) -> bool:
    lowered = text.strip().lower()
    if lowered in ("1", "true", "yes", "on"):
        return True
    if lowered in ("0", "false", "no", "off", ""):
        return False
    raise ConfigError(f"{source}={text!r}: expected true or false")


def parse_profiles(text: str, source: str) -> tuple[str, ...]:
    names = tuple(name.strip().lower() for name in text.split(",") if name.strip())
    if not names:
        raise ConfigError(f"{source}={text!r}: no profile named (choose from {', '.join(PROFILE_NAMES)})")
    for name in names:
        if name not in PROFILE_NAMES:
            raise ConfigError(f"{source}={text!r}: unknown profile {name!r} (choose from {', '.join(PROFILE_NAMES)})")
    return names


def parse_skus(text: str, source: str) -> tuple[GpuSku, ...]:
    names = [name for name in (part.strip() for part in text.split(",")) if name]
    if not names:
        names = [DEFAULT_SKU]
    try:
        return tuple(find_sku(name) for name in names)
    except KeyError as exc:
        raise ConfigError(f"{source}={text!r}: {exc.args[0]}") from None


def parse_mig(
    text: str, source: str, count: int, skus: tuple[GpuSku, ...], engine_kind: str = "embedded"
) -> dict[int, MigLayout]:
    """``--mig`` checked against each GPU's SKU: a profile it lacks or a layout that does not fit is an error."""
    if not text.strip():
        return {}
    if engine_kind != "embedded":
        raise ConfigError(f"{source}={text!r}: MIG partitions are simulated by the embedded engine only "
                          f"(the engine is {engine_kind})")  # fmt: skip
    try:
        spec = parse_mig_spec(text)
        return resolve_mig(spec, count, lambda i: (skus[i % len(skus)].key, skus[i % len(skus)].mig_profiles))
    except MigError as exc:
        raise ConfigError(f"{source}={text!r}: {exc}") from None


def resolve_hostname(env: Mapping[str, str]) -> str:
    """dcgm-exporter's rule: NODE_NAME when set (Kubernetes downward API), else the host name."""
    return env.get("NODE_NAME", "").strip() or socket.gethostname()


def environ() -> Mapping[str, str]:
    return os.environ


def parse_key_values(text: str, source: str) -> dict[str, str]:
    """OpenTelemetry's ``k=v,k2=v2`` lists (headers, resource attributes); values are URL-decoded."""
    pairs: dict[str, str] = {}
    for item in text.split(","):
        if not item.strip():
            continue
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"{source}={text!r}: expected key=value pairs separated by commas")
        pairs[urllib.parse.unquote(key.strip())] = urllib.parse.unquote(value.strip())
    return pairs


def parse_headers(text: str, source: str) -> dict[str, str]:
    """Request headers: names are HTTP tokens, decoded values hold no CR, LF or other control character
    (``%0d%0a`` would split the request)."""
    headers = parse_key_values(text, source)
    for name, value in headers.items():
        if not _HEADER_NAME.fullmatch(name):
            raise ConfigError(f"{source}: {name!r} is not a header name")
        if _CONTROL.search(value.replace("\t", " ")):
            raise ConfigError(f"{source}: the value of header {name!r} holds a control character")
    return headers


def parse_url(text: str, source: str) -> str:
    """An http(s) URL with a host and, if given, a port in range; nothing Python's parser would choke on later."""
    stripped = text.strip()
    try:
        parsed = urllib.parse.urlsplit(stripped)
        port, host = parsed.port, parsed.hostname
    except ValueError as exc:  # "Invalid IPv6 URL", "Port out of range 0-65535", a port that is not a number
        raise ConfigError(f"{source}={text!r}: not a valid URL ({exc})") from None
    if parsed.scheme not in ("http", "https") or not host or _CONTROL.search(stripped) or " " in stripped:
        raise ConfigError(f"{source}={text!r}: expected an http:// or https:// URL")
    if port == 0:
        raise ConfigError(f"{source}={text!r}: port 0 is not a port to send to")
    return stripped


def parse_host_port(text: str, source: str) -> str:
    """gRPC's ``host:port`` (``[v6]:port``) target, port 1-65535."""
    address = parse_listen(text, source)
    if not address.host or address.port == 0 or _CONTROL.search(text) or " " in text.strip():
        raise ConfigError(f"{source}={text!r}: expected HOST:PORT or a URL")
    return text.strip()


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


def _text(values: Mapping[str, OptionValue], dest: str) -> tuple[str, str]:
    return values[dest].text or "", values[dest].source


def _otlp_settings(values: Mapping[str, OptionValue]) -> OtlpSettings | None:
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
        buffer_points=parse_int(
            values["push_buffer_points"].text or "", values["push_buffer_points"].source, low=1, high=MAX_POINTS
        ),
        naming=naming,
    )


def _tracing_settings(exporter: OptionValue, env: Mapping[str, str]) -> TracingSettings | None:
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


def _uds_settings(values: Mapping[str, OptionValue]) -> UdsSettings | None:
    """--uds PATH enables the socket; the seed's UDS_SOCKET_PATH does so only with ENABLE_UDS=true."""
    uds, enabled = values["uds"], values["enable_uds"]
    if uds.origin != "flag" and not parse_bool(enabled.text or "", enabled.source):
        return None
    mode = values["uds_mode"]
    group = (values["uds_group"].text or "").strip() or None
    return UdsSettings(
        Path(uds.text or DEFAULT_SOCKET_PATH), parse_mode(mode.text or f"{DEFAULT_MODE:04o}", mode.source), group
    )


def _attribution_settings(values: Mapping[str, OptionValue]) -> AttributionSettings:
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
        timeout_s=parse_int(timeout_text, timeout_source, low=1) / 1000.0 if timeout_text else None,
        jobstats=parse_bool(*text("jobstats_series")),
    )


def _load_scenario(value: OptionValue, num_gpus: int) -> Scenario | None:
    text = (value.text or "").strip()
    if not text:
        return None
    try:
        return load_scenario(Path(text), num_gpus)
    except ScenarioError as exc:
        raise ConfigError(str(exc)) from None


def _with_scenario(config: Config, seed_given: bool) -> Config:
    """The scenario's fleet replaces --num-gpus/--gpu-model/--mig; its seed applies unless --seed is given."""
    scenario = config.scenario
    if scenario is None:
        return config
    changes: dict[str, object] = {}
    if scenario.gpu_count is not None:
        skus, profiles = scenario.per_gpu(config.profiles)
        changes.update(num_gpus=scenario.gpu_count, skus=skus, profiles=profiles, mig=scenario.mig_layouts())
    if scenario.seed is not None and not seed_given:
        changes["seed"] = scenario.seed
    return dataclasses.replace(config, **changes)  # type: ignore[arg-type]


def _engine_settings(values: Mapping[str, OptionValue], num_gpus: int) -> EngineSettings:
    """--engine, -r, --devices, --inject; -r and --inject belong to the DCGM engine."""
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
    if inject and num_gpus > MAX_INJECTED_GPUS:
        raise ConfigError(f"{inject_value.source}: a DCGM hostengine holds at most {MAX_INJECTED_GPUS} GPUs "
                          f"(asked for {num_gpus})")  # fmt: skip
    remote = (remote_value.text or "").strip() or None
    if remote is not None and "/" not in remote and not remote.rpartition(":")[2].isdigit():
        raise ConfigError(f"{remote_value.source}={remote_value.text!r}: expected HOST:PORT or a Unix socket path")
    return EngineSettings(kind, remote if kind == "dcgm" else None, devices, inject)


def parse_shard(text: str, source: str) -> tuple[int, int]:
    """``I/N`` with 0 <= I < N (a StatefulSet ordinal and its replica count)."""
    index_text, sep, count_text = text.strip().partition("/")
    try:
        index, count = int(index_text), int(count_text)
    except ValueError:
        index, count = -1, 0
    if not sep or count < 1 or not 0 <= index < count:
        raise ConfigError(f"{source}={text!r}: expected I/N with 0 <= I < N, e.g. 0/2")
    return index, count


def build_config(values: Mapping[str, OptionValue], env: Mapping[str, str]) -> Config:
    """Validate every option's text into a Config; raises ConfigError naming the flag or variable."""

    def text(dest: str) -> tuple[str, str]:
        return values[dest].text or "", values[dest].source

    profiles_dest = "gpu_profiles" if values["gpu_profiles"].text else "profile"
    seed_text, seed_source = text("seed")
    host_identity = resolve_hostname(env)
    address_text, address_source = text("address")
    listen = parse_listen(address_text, address_source) if address_text.strip() else None
    uds = _uds_settings(values)
    if listen is None and uds is None:
        raise ConfigError(f"{address_source} is empty and no Unix socket is enabled: nothing to serve")
    collectors_text = text("collectors")[0]
    web_config_text = text("web_config")[0]
    push_url_text, push_url_source = text("push_prometheus_url")
    num_gpus = parse_int(*text("num_gpus"), low=1, high=MAX_GPUS)
    skus = parse_skus(*text("gpu_model"))
    engine = _engine_settings(values, num_gpus)
    label_style, label_source = text("label_style")
    if label_style.strip().lower() not in LABEL_STYLES:
        raise ConfigError(f"{label_source}={label_style!r}: expected one of {', '.join(LABEL_STYLES)}")
    preset = (values["preset"].text or "").strip().lower()
    hosts = parse_int(*text("hosts"), low=1, high=MAX_HOSTS)
    shard = parse_shard(*text("shard"))
    if shard[0] >= hosts:
        raise ConfigError(f"{text('shard')[1]}={text('shard')[0]!r}: shard {shard[0]} of {hosts} hosts has no host")
    workers_text, workers_source = text("workers")
    workers = parse_int(workers_text, workers_source, low=1, high=MAX_WORKERS) if workers_text.strip() else None
    config = Config(
        collectors_path=Path(collectors_text) if collectors_text else None,
        base_collectors_path=BASE_COLLECTORS.get(preset),
        label_style=label_style.strip().lower(),
        listen=listen,
        uds=uds,
        web_config_path=Path(web_config_text) if web_config_text else None,
        idle_timeout_s=parse_float(*text("idle_timeout"), minimum=0.1),
        collect_interval_s=parse_int(*text("collect_interval"), low=100, high=MAX_INTERVAL_MS) / 1000.0,
        count_windows_ms={
            XID_COUNT_FIELD: parse_int(*text("xid_window"), low=1, high=MAX_WINDOW_MS),
            CLOCK_EVENTS_COUNT_FIELD: parse_int(*text("clock_events_window"), low=1, high=MAX_WINDOW_MS),
        },
        hostname=None if parse_bool(*text("no_hostname")) else host_identity,
        host_identity=host_identity,
        num_gpus=num_gpus,
        profiles=parse_profiles(*text(profiles_dest)),
        skus=skus,
        update_interval_s=parse_float(*text("update_interval"), minimum=0.05),
        seed=parse_int(seed_text, seed_source, low=0, high=2**64 - 1) if seed_text.strip() else None,
        hosts=hosts,
        workers=workers or os.cpu_count() or 1,
        shard=shard,
        service_name=text("service_name")[0] or "otel-fakegpu",
        resource_attributes=parse_key_values(*text("resource_attributes")),
        otlp=_otlp_settings(values),
        tracing=_tracing_settings(values["traces_exporter"], env),
        push_prometheus_url=parse_url(push_url_text, push_url_source) if push_url_text.strip() else None,
        push_buffer_points=parse_int(*text("push_buffer_points"), low=1, high=MAX_POINTS),
        log_level="DEBUG" if parse_bool(*text("debug")) else "INFO",
        attribution=_attribution_settings(values),
        mig=parse_mig(*text("mig"), num_gpus, skus, engine.kind),
        engine=engine,
        scenario=_load_scenario(values["scenario"], num_gpus),
        control_token=text("control_token")[0] or None,
        check_only=parse_bool(*text("check_config")),
    )
    if config.scenario is not None and not config.engine.simulated:
        raise ConfigError(
            f"{values['scenario'].source}: a scenario needs simulated GPUs (--engine embedded, or dcgm with --inject)"
        )
    return _with_scenario(config, bool(seed_text.strip()))


def load_field_set(config: Config) -> CollectorSet:
    """The fields to export: ``-f`` (or the stock set), added to the preset's always-on set where it has one.

    Raises CollectorsError naming the file and line; used at start and on every reload.
    """
    if config.base_collectors_path is None:
        return load_collectors(config.collectors_path or default_collectors_path())
    base = load_collectors(config.base_collectors_path)
    if config.collectors_path is None:
        return base
    return merge_collectors(base, load_collectors(config.collectors_path))
