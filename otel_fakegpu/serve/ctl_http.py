"""The ``ctl`` client's side of the wire: one JSON request to the control API over the Unix socket or TCP.

A server that answers with an error status raises ``ServerError`` (its one-line message); one that is not there
(no socket, connection refused, timeout) raises ``NoServerError``.
"""

from __future__ import annotations

import http.client
import json
import socket
import urllib.parse
from dataclasses import dataclass
from typing import Any

TIMEOUT_S = 30.0


class ServerError(Exception):
    """The server answered with an error: ``status`` and its one-line message."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


class NoServerError(Exception):
    """Nothing answers where the client looked."""


class _UnixConnection(http.client.HTTPConnection):
    def __init__(self, path: str, timeout: float) -> None:
        super().__init__("localhost", timeout=timeout)
        self._path = path

    def connect(self) -> None:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(self.timeout)
        try:
            sock.connect(self._path)
        except OSError:
            sock.close()
            raise
        self.sock = sock


@dataclass(frozen=True)
class Endpoint:
    """Where the control API is: a Unix socket path, or a base URL with an optional bearer token."""

    socket_path: str | None = None
    url: str | None = None
    token: str | None = None

    def describe(self) -> str:
        return self.url if self.url else f"unix socket {self.socket_path}"

    def _connection(self) -> http.client.HTTPConnection:
        if self.url is None:
            return _UnixConnection(str(self.socket_path), TIMEOUT_S)
        parts = urllib.parse.urlsplit(self.url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"--url: expected http://HOST:PORT or https://HOST:PORT, got {self.url!r}")
        kind = http.client.HTTPSConnection if parts.scheme == "https" else http.client.HTTPConnection
        return kind(parts.hostname, parts.port, timeout=TIMEOUT_S)

    def _path(self, path: str) -> str:
        base = urllib.parse.urlsplit(self.url).path.rstrip("/") if self.url else ""
        return base + path

    def request(self, method: str, path: str, body: object = None) -> Any:
        """Send one request and return its JSON answer; ServerError, NoServerError."""
        connection = self._connection()
        headers = {"Content-Type": "application/json", "User-Agent": "otel-fakegpu-ctl"}
        if self.token:
            headers["Authorization"] = f"Bearer {self.token}"
        data = None if body is None else json.dumps(body).encode()
        try:
            connection.request(method, self._path(path), body=data, headers=headers)
            response = connection.getresponse()
            raw = response.read()
        except (OSError, http.client.HTTPException) as exc:
            why = getattr(exc, "strerror", None) or exc
            raise NoServerError(f"no control API at {self.describe()}: {why}") from None
        finally:
            connection.close()
        try:
            answer = json.loads(raw) if raw else {}
        except ValueError:
            answer = {"error": raw.decode(errors="replace").strip() or response.reason}
        if response.status >= 400:
            message = answer.get("error", response.reason) if isinstance(answer, dict) else response.reason
            raise ServerError(response.status, " ".join(str(message).split()))
        return answer
