"""``--web-config-file`` in the Prometheus exporter-toolkit format: TLS (optionally with client
certificates) and basic auth with bcrypt hashes, as dcgm-exporter accepts it.

Unknown keys are errors, as in exporter-toolkit; relative paths are relative to the file. The file is read
with a size bound and YAML's safe loader with bounds on nesting and aliases; every value is checked, so a bad
file is one line naming it, never a traceback, a terminal prompt or a response broken by a header.
"""

from __future__ import annotations

import re
import ssl
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from otel_fakegpu.config.errors import ConfigError
from otel_fakegpu.config.files import load_yaml, read_bounded, read_config_text
from otel_fakegpu.serve.auth import BasicAuth, HashError, check_hash

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


MAX_WEB_CONFIG_BYTES = 1 << 20
MAX_PEM_BYTES = 1 << 20
_HEADER_NAME = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")  # an HTTP token (RFC 9110)
_HEADER_VALUE = re.compile(r"[\t\x20-\x7e\x80-\xff]*")  # no CR, LF or other control characters


class WebConfigError(ConfigError):
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
        text = read_config_text(path, MAX_WEB_CONFIG_BYTES, "web config")
    except ConfigError as exc:
        raise WebConfigError(str(exc)) from None
    try:
        document = load_yaml(text, str(path)) or {}
    except ConfigError as exc:
        raise WebConfigError(str(exc)) from None
    if not isinstance(document, dict):
        raise WebConfigError(f"{path}: expected a mapping at the top level")
    _refuse_unknown(document, {"tls_server_config", "basic_auth_users", "http_server_config"}, path, "")
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
    _refuse_unknown(section, _TLS_KEYS, path, "tls_server_config: ")
    cert, key = section.get("cert_file"), section.get("key_file")
    if not cert or not key or not isinstance(cert, str) or not isinstance(key, str):
        raise WebConfigError(f"{path}: tls_server_config needs both cert_file and key_file (paths)")
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = _version(section.get("min_version", "TLS12"), "min_version", path)
    if "max_version" in section:
        context.maximum_version = _version(section["max_version"], "max_version", path)
    try:
        _check_pem(base / cert, "cert_file", path)
        _check_pem(base / key, "key_file", path)
        # A callable, not None: OpenSSL would otherwise ask for an encrypted key's passphrase on the terminal.
        context.load_cert_chain(base / cert, base / key, password=_no_passphrase)
    except _EncryptedKeyError:
        raise WebConfigError(f"{path}: key_file {key} is encrypted; give an unencrypted key") from None
    except (OSError, ssl.SSLError, ValueError) as exc:
        raise WebConfigError(f"{path}: cannot load cert_file/key_file: {exc}") from None
    auth_type = section.get("client_auth_type", "NoClientCert")
    if not isinstance(auth_type, str) or auth_type not in _CLIENT_AUTH:
        raise WebConfigError(f"{path}: client_auth_type {auth_type!r} is not one of {', '.join(_CLIENT_AUTH)}")
    context.verify_mode = _CLIENT_AUTH[auth_type]
    client_ca = section.get("client_ca_file")
    if client_ca:
        try:
            pem = _check_pem(base / str(client_ca), "client_ca_file", path)
            context.load_verify_locations(cadata=pem.decode("ascii"))
        except (OSError, ssl.SSLError, UnicodeDecodeError) as exc:
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
        try:
            check_hash(hashed.encode() if isinstance(hashed, str) else b"")
        except (HashError, UnicodeEncodeError) as exc:
            reason = exc if isinstance(exc, HashError) else "needs a bcrypt hash ($2a$/$2b$/$2y$...)"
            raise WebConfigError(f"{path}: basic_auth_users: {str(user)!r} {reason}") from None
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
    checked = {}
    for name, value in headers.items():
        if not isinstance(name, str) or not _HEADER_NAME.fullmatch(name):
            raise WebConfigError(f"{path}: http_server_config.headers: {str(name)!r} is not a header name")
        if not isinstance(value, (str, int, float)) or not _HEADER_VALUE.fullmatch(str(value)):
            raise WebConfigError(
                f"{path}: http_server_config.headers: {name}: the value must be text without control characters"
            )
        checked[name] = str(value)
    return checked


def _refuse_unknown(section: dict[Any, Any], known: set[str], path: Path, where: str) -> None:
    unknown = sorted(str(key) for key in section if key not in known)
    if unknown:
        raise WebConfigError(f"{path}: {where}unknown key {unknown[0]!r}")


class _EncryptedKeyError(Exception):
    """OpenSSL asked for a passphrase."""


def _no_passphrase() -> bytes:
    raise _EncryptedKeyError


def _check_pem(file: Path, key: str, path: Path) -> bytes:
    """The file's bytes, read by the bounded reader: OpenSSL would read /dev/zero for ever and wait on a FIFO."""
    try:
        return read_bounded(file, MAX_PEM_BYTES, key)
    except ConfigError as exc:
        raise WebConfigError(f"{path}: {exc}") from None


class LiveWebConfig:
    """The web config a running server applies: ``replace`` (on SIGHUP) swaps users and headers, and re-reads the
    certificate and key into the context the TLS listener already holds. Turning TLS on or off needs a restart.
    ``auth`` checks the current users (built with them, so a replaced password is forgotten with its checker)."""

    def __init__(self, config: WebConfig) -> None:
        self.config = config
        self.auth = BasicAuth(config.users)

    def replace(self, new: WebConfig) -> None:
        """Apply ``new``; raises WebConfigError (and keeps the current config) when it cannot be applied live."""
        live_context = self.config.ssl_context
        if (new.ssl_context is None) != (live_context is None):
            raise WebConfigError("turning TLS on or off needs a restart")
        if live_context is not None and new.tls_files is not None:
            try:
                for file in new.tls_files:  # checked in load_web_config; again just before OpenSSL opens them
                    read_bounded(file, MAX_PEM_BYTES, "cert_file/key_file")
                live_context.load_cert_chain(*new.tls_files, password=_no_passphrase)
            except (OSError, ssl.SSLError, _EncryptedKeyError, ConfigError) as exc:
                raise WebConfigError(f"cannot load cert_file/key_file: {exc}") from None
        config = WebConfig(live_context, new.users, new.headers, new.tls_files)
        self.config, self.auth = config, BasicAuth(config.users)
