"""Configuration: every option is a flag with an environment fallback (dcgm-exporter's and the seed
prototype's names), validated into one frozen Config. Errors name the flag or variable and the value."""

from __future__ import annotations

import dataclasses
import os
import socket
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from otel_fakegpu.attribution.settings import SIMULATOR, AttributionSettings
from otel_fakegpu.config.errors import ConfigError, OptionValue
from otel_fakegpu.config.sections import (
    MAX_POINTS,
    attribution_settings,
    engine_settings,
    otlp_settings,
    tracing_settings,
    uds_settings,
)
from otel_fakegpu.config.table import resolve
from otel_fakegpu.config.values import (
    MAX_INTERVAL_MS,
    ListenAddress,
    parse_bool,
    parse_float,
    parse_int,
    parse_key_values,
    parse_listen,
    parse_shard,
    parse_url,
)
from otel_fakegpu.engine.selection import MAX_INJECTED_GPUS, EngineSettings
from otel_fakegpu.fields import (
    CLOCK_EVENTS_COUNT_FIELD,
    XID_COUNT_FIELD,
    CollectorSet,
    collectors_preset_path,
    default_collectors_path,
    load_collectors,
    merge_collectors,
)
from otel_fakegpu.outputs import OtlpSettings
from otel_fakegpu.serve import UdsSettings
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
from otel_fakegpu.telemetry.tracing import TracingSettings

MAX_GPUS = 65536
MAX_HOSTS = 100_000
MAX_WORKERS = 1024
# Bounds that keep every value inside what a timer, a sleep or the memory can take: seven days of window (one of
# interval: option_values.MAX_INTERVAL_MS; request timeouts and points: config_sections).
MAX_WINDOW_MS = 7 * MAX_INTERVAL_MS
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
    return env.get("NODE_NAME", "").strip() or socket.gethostname()


def environ() -> Mapping[str, str]:
    return os.environ


def _load_scenario(value: OptionValue, num_gpus: int) -> Scenario | None:
    text = (value.text or "").strip()
    if not text:
        return None
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
    """Validate every option's text into a Config; raises ConfigError naming the flag or variable."""

    def text(dest: str) -> tuple[str, str]:
        return values[dest].text or "", values[dest].source

    profiles_dest = "gpu_profiles" if values["gpu_profiles"].text else "profile"
    seed_text, seed_source = text("seed")
    host_identity = resolve_hostname(env)
    address_text, address_source = text("address")
    listen = parse_listen(address_text, address_source) if address_text.strip() else None
    uds = uds_settings(values)
    if listen is None and uds is None:
        raise ConfigError(f"{address_source} is empty and no Unix socket is enabled: nothing to serve")
    collectors_text = text("collectors")[0]
    web_config_text = text("web_config")[0]
    push_url_text, push_url_source = text("push_prometheus_url")
    num_gpus = parse_int(*text("num_gpus"), low=1, high=MAX_GPUS)
    skus = parse_skus(*text("gpu_model"))
    engine = engine_settings(values)
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
        otlp=otlp_settings(values),
        tracing=tracing_settings(values["traces_exporter"], env),
        push_prometheus_url=parse_url(push_url_text, push_url_source) if push_url_text.strip() else None,
        push_buffer_points=parse_int(*text("push_buffer_points"), low=1, high=MAX_POINTS),
        log_level="DEBUG" if parse_bool(*text("debug")) else "INFO",
        attribution=attribution_settings(values),
        mig=parse_mig(*text("mig"), num_gpus, skus),
        engine=engine,
        scenario=_load_scenario(values["scenario"], num_gpus),
        control_token=text("control_token")[0] or None,
        check_only=parse_bool(*text("check_config")),
    )
    if config.scenario is not None and not config.engine.simulated:
        raise ConfigError(
            f"{values['scenario'].source}: a scenario needs simulated GPUs (--engine embedded, or dcgm with --inject)"
        )
    config = with_scenario(config, config.scenario, bool(seed_text.strip()))
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
