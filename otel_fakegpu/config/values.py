"""Parsers of one option value each: whole numbers in ASCII, bounded numbers, booleans, octal modes, listen
addresses, URLs, gRPC targets, ``k=v`` lists and headers, shards. Each failure is one ConfigError naming the flag or
variable and the value; none knows a stage of the flow."""

from __future__ import annotations

import math
import re
import urllib.parse
from dataclasses import dataclass

from otel_fakegpu.config.errors import ConfigError, OptionValue

# One day: the longest interval a timer or a sleep is given.
MAX_INTERVAL_MS = 86_400_000
_ASCII_INT = re.compile(r"-?[0-9]+")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_HEADER_NAME = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")


@dataclass(frozen=True)
class ListenAddress:
    host: str | None  # None: every interface
    port: int

    def __str__(self) -> str:
        host = self.host or "0.0.0.0"
        return f"[{host}]:{self.port}" if ":" in host else f"{host}:{self.port}"


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


_BYTE_UNITS = {"": 1, "k": 10**3, "K": 10**3, "M": 10**6, "G": 10**9, "T": 10**12,
               "Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40}  # fmt: skip


def parse_bytes(text: str, source: str, *, low: int) -> int:
    """A size in bytes with Kubernetes' suffixes: ``500M`` (10^6), ``64Mi`` (2^20), ``1G``, ``2Gi``."""
    stripped = text.strip()
    digits = stripped.rstrip("kKMGTi")
    unit = _BYTE_UNITS.get(stripped[len(digits) :])
    if unit is None or not (digits.isascii() and digits.isdigit()):
        raise ConfigError(f"{source}={text!r}: expected a size in bytes, e.g. 500M or 64Mi")
    if int(digits) * unit < low:
        raise ConfigError(f"{source}={text!r}: must be at least {low} bytes")
    return int(digits) * unit


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


MAX_TOKEN_CHARS = 4096


def parse_token(value: OptionValue) -> str | None:
    """A bearer token, or None when the option is not given. An empty token would silently turn the API off and
    one with spaces or control characters could never match a header: both are refused."""
    if value.text is None:
        return None
    if not value.text or len(value.text) > MAX_TOKEN_CHARS or not all("!" <= c <= "~" for c in value.text):
        raise ConfigError(f"{value.source}: the token must be 1 to {MAX_TOKEN_CHARS} visible ASCII characters")
    return value.text


MAX_NAME_CHARS = 253  # a Kubernetes object name (a DNS subdomain); pods, namespaces, containers, nodes, jobs


def name_problem(value: str) -> str | None:
    """Why ``value`` cannot name a pod, namespace, container or node (None when it can): longer than MAX_NAME_CHARS,
    or holding ``/`` (control API paths are ``namespace/pod/container``), spaces or control characters."""
    if len(value) > MAX_NAME_CHARS:
        return f"longer than {MAX_NAME_CHARS} characters"
    if any(c == "/" or c <= " " or c == "\x7f" for c in value):
        return "holds '/', a space or a control character"
    return None


MAX_ERROR_CHARS = 1000  # an error line: a file name, a line number, the reason and a short quote of the input


def clip(text: str, limit: int = 80) -> str:
    """``text`` for an error line: at most ``limit`` characters and a note of how long it was."""
    return text if len(text) <= limit else f"{text[:limit]}... ({len(text)} characters)"


def parse_host_name(text: str, source: str) -> str:
    """A host (node) name: a label on every series and a path segment of /hosts/HOST/metrics."""
    problem = name_problem(text)
    if problem is not None:
        raise ConfigError(f"{source}={clip(text)!r}: {problem}")
    return text
