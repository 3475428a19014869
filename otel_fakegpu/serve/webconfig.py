"""``--web-config-file`` in the Prometheus exporter-toolkit format: TLS (optionally with client
certificates) and basic auth with bcrypt hashes, as dcgm-exporter accepts it.

Unknown keys are errors, as in exporter-toolkit; relative paths are relative to the file.
"""

from __future__ import annotations

import ssl
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

_TLS_KEYS = {"cert_file", "key_file", "client_ca_file", "client_auth_type", "min_version", "max_version"}
_CLIENT_AUTH = {
    "NoClientCert": ssl.CERT_NONE,
    "RequestClientCert": ssl.CERT_OPTIONAL,
    "RequireAnyClientCert": ssl.CERT_REQUIRED,
    "VerifyClientCertIfGiven": ssl.CERT_OPTIONAL,
    "RequireAndVerifyClientCert": ssl.CERT_REQUIRED,
}
_TLS_VERSIONS = {
    "TLS10": ssl.TLSVersion.TLSv1,
    "TLS11": ssl.TLSVersion.TLSv1_1,
    "TLS12": ssl.TLSVersion.TLSv1_2,
    "TLS13": ssl.TLSVersion.TLSv1_3,
}


class WebConfigError(ValueError):
    """A web config that cannot be used; the message names the file."""


@dataclass(frozen=True)
class WebConfig:
    ssl_context: ssl.SSLContext | None = None
    users: Mapping[str, bytes] = field(default_factory=dict)  # user -> bcrypt hash
    headers: Mapping[str, str] = field(default_factory=dict)
    tls_files: tuple[Path, Path] | None = None  # (cert, key): re-read into the live context on reload


def load_web_config(path: str | Path) -> WebConfig:
    path = Path(path)
    try:
        document = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise WebConfigError(f"{path}: cannot read web config: {exc.strerror or exc}") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{path}:{mark.line + 1}" if mark is not None else str(path)
        raise WebConfigError(f"{where}: invalid YAML: {getattr(exc, 'problem', exc)}") from None
    document = document or {}
    if not isinstance(document, dict):
        raise WebConfigError(f"{path}: expected a mapping at the top level")
    unknown = set(document) - {"tls_server_config", "basic_auth_users", "http_server_config"}
    if unknown:
        raise WebConfigError(f"{path}: unknown key {sorted(unknown)[0]!r}")
    base = path.parent
    tls = document.get("tls_server_config")
    context = _tls(tls, base, path)
    return WebConfig(
        ssl_context=context,
        users=_users(document.get("basic_auth_users"), path),
        headers=_headers(document.get("http_server_config"), path),
        tls_files=(base / str(tls["cert_file"]), base / str(tls["key_file"])) if isinstance(tls, dict) else None,
    )


def _tls(section: Any, base: Path, path: Path) -> ssl.SSLContext | None:
    if section is None:
        return None
    if not isinstance(section, dict):
        raise WebConfigError(f"{path}: tls_server_config must be a mapping")
    unknown = set(section) - _TLS_KEYS
    if unknown:
        raise WebConfigError(f"{path}: tls_server_config: unknown key {sorted(unknown)[0]!r}")
    cert, key = section.get("cert_file"), section.get("key_file")
    if not cert or not key:
        raise WebConfigError(f"{path}: tls_server_config needs both cert_file and key_file")
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = _version(section.get("min_version", "TLS12"), "min_version", path)
    if "max_version" in section:
        context.maximum_version = _version(section["max_version"], "max_version", path)
    try:
        context.load_cert_chain(base / str(cert), base / str(key))
    except (OSError, ssl.SSLError) as exc:
        raise WebConfigError(f"{path}: cannot load cert_file/key_file: {exc}") from None
    auth_type = section.get("client_auth_type", "NoClientCert")
    if auth_type not in _CLIENT_AUTH:
        raise WebConfigError(f"{path}: client_auth_type {auth_type!r} is not one of {', '.join(_CLIENT_AUTH)}")
    context.verify_mode = _CLIENT_AUTH[auth_type]
    client_ca = section.get("client_ca_file")
    if client_ca:
        try:
            context.load_verify_locations(base / str(client_ca))
        except (OSError, ssl.SSLError) as exc:
            raise WebConfigError(f"{path}: cannot load client_ca_file: {exc}") from None
    elif auth_type in ("VerifyClientCertIfGiven", "RequireAndVerifyClientCert"):
        raise WebConfigError(f"{path}: client_auth_type {auth_type} needs client_ca_file")
    return context


def _version(name: Any, key: str, path: Path) -> ssl.TLSVersion:
    try:
        return _TLS_VERSIONS[str(name)]
    except KeyError:
        raise WebConfigError(f"{path}: {key} {name!r} is not one of {', '.join(_TLS_VERSIONS)}") from None


def _users(section: Any, path: Path) -> dict[str, bytes]:
    if section is None:
        return {}
    if not isinstance(section, dict):
        raise WebConfigError(f"{path}: basic_auth_users must map user names to bcrypt hashes")
    users = {}
    for user, hashed in section.items():
        if not isinstance(hashed, str) or not hashed.startswith(("$2a$", "$2b$", "$2y$")):
            raise WebConfigError(f"{path}: basic_auth_users: {user!r} needs a bcrypt hash ($2a$/$2b$/$2y$...)")
        users[str(user)] = hashed.encode()
    return users


def _headers(section: Any, path: Path) -> dict[str, str]:
    if section is None:
        return {}
    if not isinstance(section, dict) or set(section) - {"headers", "http2"}:
        raise WebConfigError(f"{path}: http_server_config supports only 'headers' and 'http2'")
    headers = section.get("headers") or {}
    if not isinstance(headers, dict):
        raise WebConfigError(f"{path}: http_server_config.headers must be a mapping")
    return {str(k): str(v) for k, v in headers.items()}


class LiveWebConfig:
    """The web config a running server applies: ``replace`` (on SIGHUP) swaps users and headers, and re-reads the
    certificate and key into the context the TLS listener already holds. Turning TLS on or off needs a restart."""

    def __init__(self, config: WebConfig) -> None:
        self.config = config

    def replace(self, new: WebConfig) -> None:
        """Apply ``new``; raises WebConfigError (and keeps the current config) when it cannot be applied live."""
        live_context = self.config.ssl_context
        if (new.ssl_context is None) != (live_context is None):
            raise WebConfigError("turning TLS on or off needs a restart")
        if live_context is not None and new.tls_files is not None:
            try:
                live_context.load_cert_chain(*new.tls_files)
            except (OSError, ssl.SSLError) as exc:
                raise WebConfigError(f"cannot load cert_file/key_file: {exc}") from None
        self.config = WebConfig(live_context, new.users, new.headers, new.tls_files)
