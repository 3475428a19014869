"""Configuration: every option is a flag with an environment fallback (dcgm-exporter's and the seed
prototype's names), validated into one frozen Config. Errors name the flag or variable and the value."""

from __future__ import annotations

import os
import socket
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from otel_fakegpu.serve import UdsSettings
from otel_fakegpu.sim import DEFAULT_SKU, PROFILE_NAMES, GpuSku, find_sku

MAX_GPUS = 65536


class ConfigError(ValueError):
    """A bad flag or environment value; the message is the one line the user sees."""


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
    listen: ListenAddress | None  # None: no TCP listener (--address "")
    uds: UdsSettings | None  # None: no Unix socket
    web_config_path: Path | None
    idle_timeout_s: float
    collect_interval_s: float
    hostname: str | None  # None: no Hostname label (--no-hostname)
    host_identity: str  # the host name used for resource attributes and GPU identities
    num_gpus: int
    profiles: tuple[str, ...]
    skus: tuple[GpuSku, ...]
    update_interval_s: float
    seed: int | None
    service_name: str
    log_level: str


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
    try:
        number = int(text.strip())
    except ValueError:
        raise ConfigError(f"{source}={shown or text!r}: not a whole number") from None
    if number < low or (high is not None and number > high):
        bound = f"between {low} and {high}" if high is not None else f"at least {low}"
        raise ConfigError(f"{source}={shown or text!r}: must be {bound}")
    return number


def parse_float(text: str, source: str, *, minimum: float) -> float:
    try:
        number = float(text.strip())
    except ValueError:
        raise ConfigError(f"{source}={text!r}: not a number") from None
    if not number >= minimum:  # also rejects NaN
        raise ConfigError(f"{source}={text!r}: must be at least {minimum:g}")
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


def resolve_hostname(env: Mapping[str, str]) -> str:
    """dcgm-exporter's rule: NODE_NAME when set (Kubernetes downward API), else the host name."""
    return env.get("NODE_NAME", "").strip() or socket.gethostname()


def env_default(env: Mapping[str, str], *names: str) -> str | None:
    """The first of ``names`` set in ``env``."""
    for name in names:
        if name in env:
            return env[name]
    return None


def environ() -> Mapping[str, str]:
    return os.environ
