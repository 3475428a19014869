"""The live control API under /control/v1: inject events into simulated GPUs, start and stop workloads,
read the simulated state.

Served on the Unix socket always (file permissions guard it), and on TCP only when a bearer token is
configured (without one, TCP answers 404 as if the API did not exist). The routes reach the simulator only
through a ``ControlPort``: plain data in and out, awaited on the event loop (the simulator lives in a worker
process).
"""

from __future__ import annotations

import asyncio
import functools
import hmac
import json
import logging
from collections.abc import Awaitable
from typing import Any, Protocol

from aiohttp import HttpVersion11, hdrs, web
from aiohttp.http_exceptions import HttpProcessingError
from aiohttp.typedefs import Handler, Middleware
from aiohttp.web_protocol import RequestPayloadError

from otel_fakegpu.serve.uds import over_unix_socket

log = logging.getLogger(__name__)

PREFIX = "/control/"
MAX_BODY_BYTES = 64 * 1024  # a control request is a small JSON object; also the application's client_max_size
DEFAULT_BODY_DEADLINE_S = 60.0


class ControlUnavailableError(RuntimeError):
    """The simulation cannot answer now (its worker process is restarting): 503, try again."""


class ConflictError(Exception):
    """The request cannot be done in the present state (an event that cannot be undone): 409."""


class ControlPort(Protocol):
    """What the control API may ask of the simulation. ``host``: the fleet host addressed (None: the only one).
    ValueError: bad request (400); LookupError: no such host, GPU, workload or event (404); ConflictError: not
    possible now (409); NotImplementedError: not offered by this engine (501); ControlUnavailableError: the
    simulation cannot be reached now (503)."""

    def hosts(self) -> list[str]: ...

    async def gpu_event(self, gpu: str, body: object, host: str | None = None) -> dict[str, Any]: ...

    async def start_workload(self, body: object, host: str | None = None) -> dict[str, Any]: ...

    async def stop_workload(self, key: str, host: str | None = None) -> dict[str, Any]: ...

    async def state(self, host: str | None = None) -> dict[str, Any]: ...

    async def host_event(self, body: object, host: str | None = None) -> dict[str, Any]: ...

    async def fan_out(self, body: object) -> dict[str, Any]: ...

    async def events(
        self, host: str | None = None, gpu: int | None = None, kind: str | None = None
    ) -> dict[str, Any]: ...

    async def undo(self, record_id: int) -> dict[str, Any]: ...


def _json(status: int, body: object, headers: dict[str, str] | None = None) -> web.Response:
    return web.Response(
        status=status, body=json.dumps(body).encode() + b"\n", content_type="application/json", headers=headers
    )


def _token_matches(header: str | None, token: str) -> bool:
    scheme, _, given = (header or "").partition(" ")
    # compare_digest runs in time independent of where the strings differ; lengths may still show.
    return scheme.lower() == "bearer" and hmac.compare_digest(given.strip().encode(), token.encode())


def _refusal(request: web.Request, token: str | None) -> web.Response | None:
    """Unix socket: always allowed. TCP: 404 without a configured token, 401 without exactly one Authorization
    header holding the right one (two headers could be read differently by a proxy in front)."""
    if over_unix_socket(request):
        return None
    if token is None:
        return _json(404, {"error": "not found"})
    given = request.headers.getall("Authorization", [])
    if len(given) != 1 or not _token_matches(given[0], token):
        return _json(401, {"error": "unauthorized"}, {"WWW-Authenticate": 'Bearer realm="otel-fakegpu control"'})
    return None


def control_guard(token: str | None) -> Middleware:
    """The control API's access rule (``_refusal``) for every request under PREFIX."""

    @web.middleware
    async def guard(request: web.Request, handler: Handler) -> web.StreamResponse:
        if not request.path.startswith(PREFIX):
            return await handler(request)
        return _refusal(request, token) or await handler(request)

    return guard


def _expect_handler(token: str | None) -> Handler:
    """``Expect: 100-continue`` is answered only after the access and size checks: a client must not be invited to
    send a body that is refused unread (aiohttp's default says 100 Continue before any middleware runs)."""

    async def expect(request: web.Request) -> web.StreamResponse | None:
        refusal = _refusal(request, token)
        if refusal is None and request.content_length is not None and request.content_length > MAX_BODY_BYTES:
            refusal = _json(413, {"error": f"body over {MAX_BODY_BYTES} bytes"})
        if refusal is not None:
            refusal.force_close()
            return refusal
        if request.version == HttpVersion11:  # aiohttp's default handler from here on
            if request.headers.get(hdrs.EXPECT, "").lower() != "100-continue":
                raise web.HTTPExpectationFailed(text=f"Unknown Expect: {request.headers.get(hdrs.EXPECT, '')[:80]}")
            await request.writer.write(b"HTTP/1.1 100 Continue\r\n\r\n")
            request.writer.output_size = 0  # the response proper has not started
        return None

    return expect  # type: ignore[return-value]


async def _call(call: Awaitable[dict[str, Any]], status: int = 200) -> web.Response:
    """Await a port call (the worker answers it between its other work); map errors to statuses."""
    try:
        result = await call
    except LookupError as exc:
        return _json(404, {"error": str(exc.args[0]) if exc.args else "not found"})
    except ConflictError as exc:
        return _json(409, {"error": str(exc)})
    except ValueError as exc:
        return _json(400, {"error": str(exc)})
    except NotImplementedError as exc:
        return _json(501, {"error": str(exc) or "not supported"})
    except ControlUnavailableError as exc:
        log.debug("control request refused: %s", exc)  # the pool logs the worker's death and restart
        return _json(503, {"error": str(exc)}, {"Retry-After": "1"})
    except Exception as exc:  # a control request must never take the exporter down
        log.exception("control request failed")
        return _json(500, {"error": f"{type(exc).__name__}: {exc}"})
    return _json(status, result)


class _BodyRefusedError(Exception):
    """A request body that cannot be taken; ``response`` answers it and closes the connection."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.response = _json(status, {"error": reason})
        self.response.force_close()  # what is left of the body is not read


def _refusals(handler: Handler) -> Handler:
    @functools.wraps(handler)
    async def answer(request: web.Request) -> web.StreamResponse:
        try:
            return await handler(request)
        except _BodyRefusedError as refused:
            return refused.response

    return answer


async def _body(request: web.Request) -> object:
    """The JSON body, read within the connection's idle timeout (a body trickled a byte a second must not hold
    the connection for ever); a body announced too large, undecodable or left unfinished is refused."""
    if request.content_length is not None and request.content_length > MAX_BODY_BYTES:
        raise _BodyRefusedError(413, f"body over {MAX_BODY_BYTES} bytes")  # before reading any of it
    deadline = float(getattr(request.protocol, "keepalive_timeout", 0) or DEFAULT_BODY_DEADLINE_S)
    try:
        raw = await asyncio.wait_for(request.read(), deadline)
    except asyncio.TimeoutError:
        raise _BodyRefusedError(408, f"body not received within {deadline:g} s") from None
    except (RequestPayloadError, HttpProcessingError) as exc:  # corrupt gzip, gzip labelled deflate
        raise _BodyRefusedError(400, f"body cannot be decoded: {' '.join(str(exc).split())[:200]}") from None
    except ConnectionError:  # the client left before sending all it announced: nobody to answer
        log.debug("control request: the client left before its body arrived")
        raise _BodyRefusedError(400, "body incomplete") from None
    try:
        return json.loads(raw)
    except (ValueError, RecursionError) as exc:  # UnicodeDecodeError is a ValueError
        raise web.HTTPBadRequest(
            text=json.dumps({"error": f"body is not JSON: {exc}"}) + "\n", content_type="application/json"
        ) from None


def _host(request: web.Request, port: ControlPort) -> str | None:
    """The host a request addresses; a host-less path of a process serving several hosts is a bad request."""
    host = request.match_info.get("host")
    if host is None and len(hosts := port.hosts()) > 1:
        addressed = request.path.replace("/control/v1/", "/control/v1/hosts/{hostname}/", 1)
        raise web.HTTPBadRequest(
            text=json.dumps({"error": f"this process serves {len(hosts)} hosts: use {addressed}", "hosts": hosts})
            + "\n",
            content_type="application/json",
        )
    return host


def add_control_routes(app: web.Application, port: ControlPort, token: str | None = None) -> None:
    """The routes under /control/v1, each also under /control/v1/hosts/{host}/ (required with several hosts)."""

    @_refusals
    async def gpu_event(request: web.Request) -> web.StreamResponse:
        host = _host(request, port)
        return await _call(port.gpu_event(request.match_info["gpu"], await _body(request), host))

    @_refusals
    async def start_workload(request: web.Request) -> web.StreamResponse:
        host = _host(request, port)
        return await _call(port.start_workload(await _body(request), host), status=201)

    async def stop_workload(request: web.Request) -> web.Response:
        info = request.match_info
        key = f"{info['namespace']}/{info['pod']}/{info['container']}"
        return await _call(port.stop_workload(key, _host(request, port)))

    async def state(request: web.Request) -> web.Response:
        return await _call(port.state(_host(request, port)))

    async def hosts(request: web.Request) -> web.Response:
        return _json(200, {"hosts": port.hosts()})

    @_refusals
    async def host_event(request: web.Request) -> web.StreamResponse:
        return await _call(port.host_event(await _body(request), request.match_info["host"]))

    @_refusals
    async def events_post(request: web.Request) -> web.StreamResponse:
        body = await _body(request)
        if isinstance(body, dict) and "event" not in body:  # a bare event: the only host's
            return await _call(port.host_event(body, _host(request, port)))
        return await _call(port.fan_out(body))

    async def events_get(request: web.Request) -> web.Response:
        query = request.query
        host = request.match_info.get("host", query.get("host"))
        gpu = query.get("gpu")
        if gpu is not None and not gpu.isdigit():
            return _json(400, {"error": f"gpu: expected a GPU index, got {gpu!r}"})
        return await _call(port.events(host, None if gpu is None else int(gpu), query.get("kind")))

    async def undo(request: web.Request) -> web.Response:
        text = request.match_info["id"]
        if not text.isdigit():
            return _json(400, {"error": f"event id: expected a whole number, got {text!r}"})
        return await _call(port.undo(int(text)))

    expect = _expect_handler(token)
    app.router.add_get("/control/v1/hosts", hosts)
    app.router.add_post("/control/v1/events", events_post, expect_handler=expect)
    app.router.add_get("/control/v1/events", events_get)
    app.router.add_delete("/control/v1/events/{id}", undo)
    app.router.add_post("/control/v1/hosts/{host}/events", host_event, expect_handler=expect)
    app.router.add_get("/control/v1/hosts/{host}/events", events_get)
    for prefix in ("/control/v1", "/control/v1/hosts/{host}"):
        app.router.add_post(f"{prefix}/gpus/{{gpu}}/events", gpu_event, expect_handler=expect)
        app.router.add_post(f"{prefix}/workloads", start_workload, expect_handler=expect)
        app.router.add_delete(f"{prefix}/workloads/{{namespace}}/{{pod}}/{{container}}", stop_workload)
        app.router.add_get(f"{prefix}/state", state)
