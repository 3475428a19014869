"""Configuration: every option is a flag with an environment fallback (dcgm-exporter's and the seed
prototype's names), validated into one frozen Config. Errors name the flag or variable and the value."""

from __future__ import annotations

import dataclasses
import os
import socket
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from otel_fakegpu.attribution.settings import SIMULATOR, AttributionSettings
from otel_fakegpu.config.cmdline import resolve
from otel_fakegpu.config.errors import ConfigError, OptionValue
from otel_fakegpu.config.sections import (
    attribution_settings,
    engine_settings,
    otlp_settings,
    push_queue_settings,
    tracing_settings,
    uds_settings,
)
from otel_fakegpu.config.table import parsed
from otel_fakegpu.config.values import (
    ListenAddress,
    parse_host_name,
)
from otel_fakegpu.engine.selection import MAX_INJECTED_GPUS, EngineSettings
from otel_fakegpu.fields import (
    CLOCK_EVENTS_COUNT_FIELD,
    DEFAULT_RELEASE,
    XID_COUNT_FIELD,
    CollectorSet,
    ExporterRelease,
    collectors_preset_path,
    default_collectors_path,
    load_collectors,
    merge_collectors,
)
from otel_fakegpu.outputs import PushQueueSettings
from otel_fakegpu.serve import UdsSettings
from otel_fakegpu.sim import (
    GpuSku,
    MigError,
    MigLayout,
    Scenario,
    ScenarioError,
    parse_mig_spec,
    resolve_mig,
)
from otel_fakegpu.telemetry.tracing import TracingSettings

if TYPE_CHECKING:  # a type here: the OTLP output loads in the worker, and only when it pushes
    from otel_fakegpu.outputs.otlp import OtlpSettings

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
    racks: int  # the fleet's hosts stand in this many racks (contiguous runs)
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
    exporter_metrics: bool = False  # --enable-exporter-metrics: dcgm-exporter 4.8.4's process_* family
    exporter_release: ExporterRelease = DEFAULT_RELEASE  # --dcgm-exporter-compat: the contract served
    tracing: TracingSettings | None = None  # None: no traces
    push_queue: PushQueueSettings | None = None  # None: push requests wait in memory only


def parse_mig(text: str, source: str, count: int, skus: tuple[GpuSku, ...]) -> dict[int, MigLayout]:
    """``--mig`` checked against each GPU's SKU: a profile it lacks or a layout that does not fit is an error."""
    if not text.strip():
        return {}
    try:
        spec = parse_mig_spec(text)
        return resolve_mig(spec, count, lambda i: (skus[i % len(skus)].key, skus[i % len(skus)].mig_profiles))
    except MigError as exc:
        raise ConfigError(f"{source}={text!r}: {exc}") from None


def resolve_hostname(env: Mapping[str, str]) -> str:
    """dcgm-exporter's rule: NODE_NAME when set (Kubernetes downward API), else the host name."""
    return parse_host_name(env.get("NODE_NAME", "").strip(), "NODE_NAME") or socket.gethostname()


def environ() -> Mapping[str, str]:
    return os.environ


def _load_scenario(value: OptionValue, num_gpus: int) -> Scenario | None:
    text = (value.text or "").strip()
    if not text:
        return None
    from otel_fakegpu.sim.scenario_file import load_scenario  # noqa: PLC0415 - PyYAML loads with a scenario only

    try:
        return load_scenario(Path(text), num_gpus)
    except ScenarioError as exc:
        raise ConfigError(str(exc)) from None


def with_scenario(config: Config, scenario: Scenario | None, seed_given: bool) -> Config:
    """``config`` running ``scenario``: its fleet replaces --num-gpus/--gpu-model/--mig; its seed applies unless
    --seed is given. The one place a scenario's fleet is worked out: every host is built from the result."""
    if scenario is None:
        return config
    changes: dict[str, object] = {"scenario": scenario}
    if scenario.gpu_count is not None:
        skus, profiles = scenario.per_gpu(config.profiles)
        changes.update(num_gpus=scenario.gpu_count, skus=skus, profiles=profiles, mig=scenario.mig_layouts())
    if scenario.seed is not None and not seed_given:
        changes["seed"] = scenario.seed
    return dataclasses.replace(config, **changes)  # type: ignore[arg-type]


def _check_fleet(config: Config, values: Mapping[str, OptionValue]) -> None:
    """The final fleet (the scenario's when it names one) against the engine: injection fits one hostengine, and
    only the embedded engine simulates MIG partitions."""
    scenario = values["scenario"] if config.scenario is not None and config.scenario.gpu_count is not None else None
    fleet = f"{scenario.source}={scenario.text!r}" if scenario is not None else None
    engine = config.engine
    if engine.inject and config.num_gpus > MAX_INJECTED_GPUS:
        asked = f"{fleet} asks for {config.num_gpus}" if fleet else f"asked for {config.num_gpus}"
        raise ConfigError(f"{values['inject'].source}: a DCGM hostengine holds at most {MAX_INJECTED_GPUS} GPUs "
                          f"({asked})")  # fmt: skip
    if config.mig and engine.kind != "embedded":
        mig = values["mig"]
        raise ConfigError(f"{fleet or f'{mig.source}={mig.text!r}'}: MIG partitions are simulated by the embedded "
                          f"engine only (the engine is {engine.kind})")  # fmt: skip


def build_config(values: Mapping[str, OptionValue], env: Mapping[str, str]) -> Config:
    """Validate every option's text into a Config (each with its row's parser); raises ConfigError naming the
    flag or variable."""

    def value(dest: str) -> Any:
        return parsed(values, dest)

    profiles_dest = "gpu_profiles" if values["gpu_profiles"].text else "profile"
    host_identity = resolve_hostname(env)
    listen, uds = value("address"), uds_settings(values)
    if listen is None and uds is None:
        raise ConfigError(f"{values['address'].source} is empty and no Unix socket is enabled: nothing to serve")
    num_gpus, skus, engine, label_style = (
        value("num_gpus"),
        value("gpu_model"),
        engine_settings(values),
        value("label_style"),
    )
    hosts, shard = value("hosts"), value("shard")
    if shard[0] >= hosts:
        raise ConfigError(f"{values['shard'].source}={values['shard'].text or ''!r}: shard {shard[0]} of {hosts} "
                          "hosts has no host")  # fmt: skip
    racks = value("racks")
    if racks > hosts:
        raise ConfigError(f"{values['racks'].source}={values['racks'].text!r}: more racks than the {hosts} hosts")
    workers = value("workers")
    config = Config(
        collectors_path=value("collectors"),
        base_collectors_path=BASE_COLLECTORS.get(value("preset")),
        label_style=label_style,
        listen=listen,
        uds=uds,
        web_config_path=value("web_config"),
        idle_timeout_s=value("idle_timeout"),
        collect_interval_s=value("collect_interval"),
        count_windows_ms={XID_COUNT_FIELD: value("xid_window"), CLOCK_EVENTS_COUNT_FIELD: value("clock_events_window")},
        hostname=None if value("no_hostname") else host_identity,
        host_identity=host_identity,
        num_gpus=num_gpus,
        profiles=value(profiles_dest),
        skus=skus,
        update_interval_s=value("update_interval"),
        seed=value("seed"),
        hosts=hosts,
        workers=workers or os.cpu_count() or 1,
        shard=shard,
        racks=racks,
        service_name=value("service_name"),
        resource_attributes=value("resource_attributes"),
        otlp=otlp_settings(values),
        tracing=tracing_settings(values["traces_exporter"], env),
        push_prometheus_url=value("push_prometheus_url"),
        push_buffer_points=value("push_buffer_points"),
        push_queue=push_queue_settings(values),
        log_level="DEBUG" if value("debug") else "INFO",
        attribution=attribution_settings(values),
        mig=parse_mig(values["mig"].text or "", values["mig"].source, num_gpus, skus),
        engine=engine,
        scenario=_load_scenario(values["scenario"], num_gpus),
        control_token=value("control_token"),
        check_only=value("check_config"),
        exporter_metrics=value("enable_exporter_metrics"),
        exporter_release=value("dcgm_exporter_compat"),
    )
    if config.scenario is not None and not config.engine.simulated:
        raise ConfigError(
            f"{values['scenario'].source}: a scenario needs simulated GPUs (--engine embedded, or dcgm with --inject)"
        )
    config = with_scenario(config, config.scenario, bool((values["seed"].text or "").strip()))
    _check_fleet(config, values)
    return config


def config_from(argv: Sequence[str], env: Mapping[str, str]) -> Config:
    """The Config of these flags and variables alone, as the command line would build it (the backfill command's
    simulated host and the tests' in-process one); raises ConfigError naming the flag or variable."""
    return build_config(resolve(argv, env, PRESETS), env)


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
