"""The Unix domain socket listener: created safely, with chosen permissions, and removed on exit.

Never world-writable unless asked; a stale socket from a crashed run is replaced; a live one, or a path
that is not a socket, is never touched.
"""

from __future__ import annotations

import contextlib
import errno
import grp
import os
import socket
import stat
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from otel_fakegpu.serve.accept import PausingListener

if TYPE_CHECKING:  # a type only: validating --web.socket-path must not load aiohttp
    from aiohttp import web

# sun_path holds 108 bytes including the terminating NUL.
MAX_PATH_BYTES = 107
DEFAULT_SOCKET_PATH = "/var/run/dcgm/metrics.sock"
DEFAULT_MODE = 0o660


class UdsError(OSError):
    """The socket cannot be created; the message names the path and why."""


@dataclass(frozen=True)
class UdsSettings:
    path: Path
    mode: int = DEFAULT_MODE
    group: str | None = None


@dataclass(frozen=True)
class BoundSocket:
    sock: socket.socket
    path: Path
    inode: int

    def remove(self) -> None:
        """Unlink the socket file if it is still the one we created."""
        with contextlib.suppress(OSError):
            if os.lstat(self.path).st_ino == self.inode:
                self.path.unlink()


def check_path_length(path: Path) -> None:
    if len(os.fsencode(path)) > MAX_PATH_BYTES:
        raise UdsError(f"{path}: socket path longer than {MAX_PATH_BYTES} bytes")


def check_socket_path(path: Path) -> None:
    """What can be told before binding (``--check-config`` applies it too): a path that fits ``sun_path`` and is
    absent or a socket; UdsError otherwise."""
    check_path_length(path)
    try:
        info = os.lstat(path)
    except OSError:
        return
    if not stat.S_ISSOCK(info.st_mode):
        raise UdsError(f"{path}: exists and is not a socket; refusing to remove it")


def _clear_stale(path: Path) -> None:
    try:
        info = os.lstat(path)
    except FileNotFoundError:
        return
    if not stat.S_ISSOCK(info.st_mode):
        raise UdsError(f"{path}: exists and is not a socket; refusing to remove it")
    probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        probe.settimeout(1.0)
        probe.connect(str(path))
    except OSError as exc:
        if exc.errno not in (errno.ECONNREFUSED, errno.ENOENT):
            raise UdsError(f"{path}: cannot probe existing socket: {exc.strerror}") from None
        path.unlink()  # nobody listens: left behind by a run that crashed
        return
    finally:
        probe.close()
    raise UdsError(f"{path}: another process is serving on this socket")


def _group_id(group: str) -> int:
    if group.isdigit():
        return int(group)
    try:
        return grp.getgrnam(group).gr_gid
    except KeyError:
        raise UdsError(f"unknown group {group!r} for the socket") from None


def bind_unix_socket(settings: UdsSettings) -> BoundSocket:
    """Create, bind and listen on the socket with ``settings.mode`` and group; ready for aiohttp."""
    path = settings.path
    check_path_length(path)
    gid = _group_id(settings.group) if settings.group else None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UdsError(f"{path.parent}: cannot create socket directory: {exc.strerror}") from None
    _clear_stale(path)
    sock = PausingListener(socket.AF_UNIX, socket.SOCK_STREAM)  # out of descriptors, accepting pauses
    # Bind under a strict umask so the socket is never, even briefly, more open than 0600.
    old_umask = os.umask(0o177)
    try:
        sock.bind(str(path))
    except OSError as exc:
        sock.close()
        raise UdsError(f"{path}: cannot bind: {exc.strerror}") from None
    finally:
        os.umask(old_umask)
    inode = os.lstat(path).st_ino
    bound = BoundSocket(sock, path, inode)
    try:
        if gid is not None:
            os.chown(path, -1, gid)
        os.chmod(path, settings.mode)
        sock.listen()  # aiohttp sets the final backlog when it starts serving the socket
    except OSError as exc:
        sock.close()
        bound.remove()
        raise UdsError(f"{path}: cannot set owner/mode: {exc.strerror}") from None
    sock.setblocking(False)
    return bound


def closes_after_response(version: tuple[int, int], header_names: Iterable[str], connection: str | None) -> bool:
    """Whether a request on the socket is answered with ``Connection: close``.

    Besides HTTP's own rules (HTTP/1.0 without keep-alive, ``Connection: close``), a request that carries no header
    but ``Host`` closes: that is what socket-level consumers write by hand (the seed's ``GET /metrics HTTP/1.1`` +
    ``Host``, then read until the server closes), while every HTTP client library sends more (curl, requests, Go's
    net/http and aiohttp send ``User-Agent``; Python's http.client sends ``Accept-Encoding``) and reads by length.
    """
    token = (connection or "").strip().lower()
    if token == "close" or (version < (1, 1) and token != "keep-alive"):
        return True
    return token != "keep-alive" and {name.lower() for name in header_names} <= {"host"}


def over_unix_socket(request: web.Request) -> bool:
    """Whether the request came over the Unix socket (guarded by file permissions, not by passwords or tokens)."""
    sock = request.transport.get_extra_info("socket") if request.transport else None
    return sock is not None and sock.family == socket.AF_UNIX


def request_closes_after_response(request: web.Request) -> bool:
    """Whether ``request`` came over the socket and is answered with ``Connection: close`` (closes_after_response)."""
    return over_unix_socket(request) and closes_after_response(
        (request.version.major, request.version.minor), request.headers.keys(), request.headers.get("Connection")
    )
