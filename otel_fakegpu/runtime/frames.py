"""The wire between the serving process and a worker: length-prefixed frames over a Unix socketpair.

A frame is ``>II`` (header length, payload length), a JSON header, then the payload: zero or more byte blobs
whose lengths the header lists under ``"blobs"``. Nothing else crosses the boundary: no pickles, no shared
objects. The messages (``"kind"`` in the header):

worker -> server
    ``publish``  {host, cycle, collected_at, variants: [[FORMAT, gzipped], ...], blobs} + one blob per
                 variant: a host's rendered exposition (FORMAT is ``PROMETHEUS`` or ``OPENMETRICS``).
    ``status``   {hosts: {host: facts}, recent_cycle_seconds}: health facts after each cycle.
    ``ready``    {}: every host of the worker has published its first cycle.
    ``fatal``    {error, exit_code}: the worker could not start (e.g. its engine is unavailable) and stops.
    ``reply``    {id, ok, result | error}: the answer to a ``request``.
server -> worker
    ``go``       {}: the serving side reads this worker's frames now; the worker, which built its hosts (and
                 started their simulators) meanwhile, runs their first cycle only then.
    ``demand``   {variants: [[FORMAT, gzipped], ...]}: variants scrapers asked for; built eagerly every cycle.
    ``request``  {id, method, host, args}: call ``method`` with the JSON-able ``args`` dict on ``host``'s
                 collection (``host`` null: the worker's only host, or every host for ``broadcast``), answered
                 by a ``reply`` whose ``result`` is JSON-able. Methods: ``variant`` {format, gzipped} (publish
                 that variant of the current cycle now), ``ping``, and whatever the collection's ``handlers()``
                 offer (control events, reload hooks): a serve-side port becomes a proxy calling
                 ``WorkerPool.call(method, args, host)``, with no change to the code that uses it.
"""

from __future__ import annotations

import json
import socket
import struct
from collections.abc import Sequence
from typing import Any

PREFIX = struct.Struct(">II")
MAX_HEADER_BYTES = 16 << 20
Header = dict[str, Any]
Blob = bytes | bytearray  # a received blob is its receive buffer (FrameReader): bytes-like, never written again


class RemoteError(RuntimeError):
    """A request that the worker answered with an error, or could not answer (it died or stopped)."""


def encode_frame(header: Header, blobs: Sequence[bytes] = ()) -> list[bytes]:
    """The frame as buffers to write in order (blobs are not copied)."""
    head = json.dumps({**header, "blobs": [len(b) for b in blobs]}, separators=(",", ":")).encode()
    return [PREFIX.pack(len(head), sum(len(b) for b in blobs)), head, *blobs]


def write_frame(sock: socket.socket, header: Header, blobs: Sequence[bytes] = ()) -> None:
    """Blocking write of one frame (the worker's side); the caller serialises writers."""
    for buffer in encode_frame(header, blobs):
        sock.sendall(buffer)


def offer_frame(sock: socket.socket, header: Header) -> bool:
    """``write_frame`` to a peer that may have gone (then False): what it sent before going stays to be read."""
    try:
        write_frame(sock, header)
    except OSError:
        return False
    return True


def _recv_exactly(sock: socket.socket, size: int) -> bytes:
    chunks, left = [], size
    while left:
        chunk = sock.recv(min(left, 1 << 20))
        if not chunk:
            raise EOFError("peer closed the connection")
        chunks.append(chunk)
        left -= len(chunk)
    return b"".join(chunks)


def parse_header(head: Blob, payload_len: int) -> tuple[Header, list[int]]:
    header: Header = json.loads(head)
    sizes = [int(size) for size in header.pop("blobs", [])]
    if sum(sizes) != payload_len:
        raise ValueError(f"frame payload of {payload_len} bytes, blobs of {sum(sizes)}")
    return header, sizes


def read_frame(sock: socket.socket) -> tuple[Header, list[bytes]]:
    """Blocking read of one frame; EOFError when the peer has gone."""
    head_len, payload_len = PREFIX.unpack(_recv_exactly(sock, PREFIX.size))
    if head_len > MAX_HEADER_BYTES:
        raise ValueError(f"frame header of {head_len} bytes")
    header, sizes = parse_header(_recv_exactly(sock, head_len), payload_len)
    return header, [_recv_exactly(sock, size) for size in sizes]
