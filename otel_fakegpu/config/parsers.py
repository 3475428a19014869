"""The parser each option row of the table carries: an option's text (and where it came from) to its typed value.
Built from the one-value parsers of values.py and the names the stages accept (profiles, GPU models, engines,
styles); each failure is one ConfigError naming the flag or variable and the value. Rules that join several options
(a scenario's fleet, MIG layouts on their GPUs, an OTLP endpoint of its protocol) stay in sections.py and model.py."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from otel_fakegpu.attribution import ID_TYPES
from otel_fakegpu.config.errors import ConfigError, OptionValue
from otel_fakegpu.config.values import (
    MAX_INTERVAL_MS,
    ListenAddress,
    parse_bool,
    parse_bytes,
    parse_float,
    parse_headers,
    parse_host_port,
    parse_int,
    parse_key_values,
    parse_listen,
    parse_mode,
    parse_shard,
    parse_token,
    parse_url,
)
from otel_fakegpu.engine.selection import ENGINE_KINDS, DeviceSelection, parse_devices
from otel_fakegpu.fields import ExporterRelease, find_release
from otel_fakegpu.serve import DEFAULT_MODE, DEFAULT_SOCKET_PATH
from otel_fakegpu.sim import PROFILE_NAMES, GpuSku, parse_duration
from otel_fakegpu.sim.sku_presets import DEFAULT_SKU, find_sku
from otel_fakegpu.telemetry import LABEL_STYLES
from otel_fakegpu.telemetry.tracing import TRACES_EXPORTERS

Parser = Callable[[OptionValue], Any]
MAX_GPUS = 65536
MAX_HOSTS = 100_000
MAX_WORKERS = 1024
MAX_TIMEOUT_MS = 600_000  # ten minutes of request timeout
MAX_POINTS = 100_000_000
# Seven days of window: every value stays inside what a timer, a sleep or the memory can take.
MAX_WINDOW_MS = 7 * MAX_INTERVAL_MS


def text(value: OptionValue) -> str:
    """The text as given (a switch's "true"); no value is ""."""
    return value.text or ""


def stripped(value: OptionValue) -> str:
    return (value.text or "").strip()


def optional_text(value: OptionValue) -> str | None:
    """The text, None when there is none or it is blank."""
    return stripped(value) or None


def optional_path(value: OptionValue) -> Path | None:
    return Path(value.text) if value.text else None


def switch(value: OptionValue) -> bool:
    return parse_bool(text(value), value.source)


def whole(low: int, high: int | None = None) -> Parser:
    return lambda value: parse_int(text(value), value.source, low=low, high=high)


def byte_size(low: int, optional: bool = False) -> Parser:
    """A size in bytes (``500M``, ``64Mi``) of at least ``low``; with ``optional``, None when blank."""

    def parse(value: OptionValue) -> int | None:
        if optional and not stripped(value):
            return None
        return parse_bytes(text(value), value.source, low=low)

    return parse


def number(minimum: float, maximum: float) -> Parser:
    return lambda value: parse_float(text(value), value.source, minimum=minimum, maximum=maximum)


def duration(minimum_s: float) -> Parser:
    """``90s``, ``2m``, ``1h30m`` or plain seconds, at least ``minimum_s``."""

    def parse(value: OptionValue) -> float:
        try:
            seconds_ = parse_duration(text(value))
        except ValueError as exc:
            raise ConfigError(f"{value.source}={text(value)!r}: {exc}") from None
        if seconds_ < minimum_s or (minimum_s > 0 and seconds_ == 0):
            raise ConfigError(f"{value.source}={text(value)!r}: must be more than 0")
        return seconds_

    return parse


def page_url(value: OptionValue) -> str:
    """An http:// or https:// URL of a page to scrape."""
    url = stripped(value)
    if not url.startswith(("http://", "https://")) or len(url.split("://", 1)[1]) == 0:
        raise ConfigError(f"{value.source}={text(value)!r}: expected an http:// or https:// URL")
    return url


def seconds(minimum: float) -> Parser:
    return lambda value: parse_float(text(value), value.source, minimum=minimum)


def ms_as_seconds(low: int, high: int, optional: bool = False) -> Parser:
    """Milliseconds in ``low..high`` as seconds; with ``optional``, None when blank."""

    def parse(value: OptionValue) -> float | None:
        if optional and not stripped(value):
            return None
        return parse_int(stripped(value) if optional else text(value), value.source, low=low, high=high) / 1000.0

    return parse


def lowered(value: OptionValue) -> str:
    return stripped(value).lower()


def one_of(names: Sequence[str], expected: str | None = None, lower: bool = True) -> Parser:
    """One of ``names`` (lower-cased unless ``lower`` is False); the error says ``expected`` or lists them."""

    def parse(value: OptionValue) -> str:
        name = lowered(value) if lower else stripped(value)
        if name not in names:
            raise ConfigError(f"{value.source}={name!r}: expected {expected or 'one of ' + ', '.join(names)}")
        return name

    return parse


def label_style(value: OptionValue) -> str:
    if lowered(value) not in LABEL_STYLES:
        raise ConfigError(f"{value.source}={text(value)!r}: expected one of {', '.join(LABEL_STYLES)}")
    return lowered(value)


def engine_kind(value: OptionValue) -> str:
    if lowered(value) not in ENGINE_KINDS:
        raise ConfigError(f"{value.source}={value.text!r}: expected one of {', '.join(ENGINE_KINDS)}")
    return lowered(value)


ID_TYPE = one_of(ID_TYPES, " or ".join(ID_TYPES), lower=False)
# outputs.otlp.NAMINGS's keys (tests/test_config.py holds them equal): the OTLP output loads only when it pushes.
OTLP_NAMINGS = ("dcgm", "otel", "both")
NAMING = one_of(OTLP_NAMINGS)
OTLP_PROTOCOL = one_of(("grpc", "http/protobuf"), "grpc or http/protobuf")
COMPRESSION = one_of(("gzip", "none"), "gzip or none")


def traces_exporter(value: OptionValue) -> str:
    name = (value.text or "none").strip().lower()
    if name not in TRACES_EXPORTERS:
        raise ConfigError(f"{value.source}={name!r}: expected one of {', '.join(TRACES_EXPORTERS)}")
    return name


def text_or(default: str) -> Parser:
    """The text as given, ``default`` when empty."""
    return lambda value: value.text or default


def given_or_none(value: OptionValue) -> str | None:
    """The text as given, None when empty."""
    return value.text or None


def key_values(value: OptionValue) -> dict[str, str]:
    return parse_key_values(text(value), value.source)


def headers(value: OptionValue) -> dict[str, str]:
    return parse_headers(text(value), value.source)


def shard(value: OptionValue) -> tuple[int, int]:
    return parse_shard(text(value), value.source)


def mode(value: OptionValue) -> int:
    return parse_mode(value.text or f"{DEFAULT_MODE:04o}", value.source)


def socket_path(value: OptionValue) -> Path:
    return Path(value.text or DEFAULT_SOCKET_PATH)


def token(value: OptionValue) -> str | None:
    return parse_token(value)


def optional_switch(value: OptionValue) -> bool | None:
    """A switch that is unset (None) unless given."""
    return parse_bool(value.text, value.source) if value.text is not None else None


def export_interval(value: OptionValue) -> float | None:
    """Milliseconds as seconds; None when not given."""
    return parse_int(value.text, value.source, low=1, high=MAX_INTERVAL_MS) / 1000.0 if value.text else None


def devices(value: OptionValue) -> DeviceSelection:
    try:
        return parse_devices(value.text or "f")
    except ValueError as exc:
        raise ConfigError(f"{value.source}={value.text!r}: {exc}") from None


def remote_hostengine(value: OptionValue) -> str | None:
    """HOST:PORT of an nv-hostengine, or the path of its Unix socket."""
    remote = optional_text(value)
    if remote is not None and "/" not in remote:
        try:
            parse_host_port(remote, value.source)
        except ConfigError:
            raise ConfigError(f"{value.source}={value.text!r}: expected HOST:PORT or a Unix socket "
                              "path (a port from 1 to 65535)") from None  # fmt: skip
    return remote


def listen(value: OptionValue) -> ListenAddress | None:
    """``[HOST]:PORT``; None when blank (no TCP listener)."""
    return parse_listen(text(value), value.source) if stripped(value) else None


def optional_url(value: OptionValue) -> str | None:
    return parse_url(text(value), value.source) if stripped(value) else None


def optional_whole(low: int, high: int) -> Parser:
    return lambda value: parse_int(text(value), value.source, low=low, high=high) if stripped(value) else None


def names(value: OptionValue) -> tuple[str, ...]:
    """A comma list, blanks dropped."""
    return tuple(n.strip() for n in stripped(value).split(",") if n.strip())


def profiles(value: OptionValue) -> tuple[str, ...]:
    chosen = tuple(name.strip().lower() for name in text(value).split(",") if name.strip())
    shown = f"{value.source}={text(value)!r}"
    if not chosen:
        raise ConfigError(f"{shown}: no profile named (choose from {', '.join(PROFILE_NAMES)})")
    for name in chosen:
        if name not in PROFILE_NAMES:
            raise ConfigError(f"{shown}: unknown profile {name!r} (choose from {', '.join(PROFILE_NAMES)})")
    return chosen


def gpu_models(value: OptionValue) -> tuple[GpuSku, ...]:
    chosen = [name for name in (part.strip() for part in text(value).split(",")) if name] or [DEFAULT_SKU]
    try:
        return tuple(find_sku(name) for name in chosen)
    except KeyError as exc:
        raise ConfigError(f"{value.source}={text(value)!r}: {exc.args[0]}") from None


def release(value: OptionValue) -> ExporterRelease:
    """``--dcgm-exporter-compat``: a known dcgm-exporter release, by version or tag."""
    try:
        return find_release(text(value))
    except KeyError as exc:
        raise ConfigError(f"{value.source}={value.text!r}: {exc.args[0]}") from None
