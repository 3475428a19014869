"""The two heads of a scrape answered in front of aiohttp (serve/front.py): the request's, recognised only when it is
plainly a scrape, and the response's, byte for byte what aiohttp would send for the same page.

A request head is a scrape here only when it is ``GET /metrics`` or ``GET /hosts/<host>/metrics`` in HTTP/1.1, with a
Host header, no body, no ``Expect``, no ``Upgrade``, no ``Connection`` other than ``keep-alive``, no field twice,
nothing outside printable ASCII and every line well formed. Anything else, however legal, is aiohttp's to answer:
being narrow costs one hand-over, being wrong would serve a request differently than the rest of the server does.
"""

from __future__ import annotations

import re
import time
from collections.abc import Mapping
from dataclasses import dataclass

from aiohttp.http import SERVER_SOFTWARE

from otel_fakegpu.outputs import Variant
from otel_fakegpu.serve.negotiate import BoundedMemo, NegotiationTable
from otel_fakegpu.serve.pages import VARIANT_HEADERS, Body
from otel_fakegpu.serve.uds import closes_after_response

# name ":" OWS value OWS, value visible ASCII with inner spaces (RFC 9110 field-line, ASCII only)
_FIELD_LINE = re.compile(rb"([!#$%&'*+.^_`|~0-9A-Za-z-]+):[ \t]*((?:[\x21-\x7e](?:[\x20-\x7e\t]*[\x21-\x7e])?)?)[ \t]*")
_HOST_PAGE = re.compile(rb"GET /hosts/([A-Za-z0-9_~-][A-Za-z0-9._~-]*)/metrics HTTP/1\.1")
_READ = {b"accept", b"accept-encoding", b"connection", b"host"}
_REFUSE = {b"content-length", b"transfer-encoding", b"expect", b"upgrade"}  # a body, or a protocol switch
MAX_FIELDS = 64  # aiohttp's max_headers as serve/http.py sets it
MAX_LINE = 8190  # its max_line_size and max_field_size


@dataclass(frozen=True)
class Scrape:
    """A request head recognised as a scrape: which page (None: /metrics) and which variant of it."""

    host: str | None
    variant: Variant
    closes_on_socket: bool  # on the Unix socket, answered with Connection: close (serve/uds.py's closes_after_response)


def _page(request_line: bytes) -> str | bool | None:
    """The host of a page's request line (None: /metrics); False when the line is not a page's."""
    if request_line == b"GET /metrics HTTP/1.1":
        return None
    match = _HOST_PAGE.fullmatch(request_line)  # a name aiohttp's router takes as it is: no "%", no dot segment
    return False if match is None else match.group(1).decode("ascii")


def parse_scrape(head: bytes, negotiation: NegotiationTable) -> Scrape | None:
    """``head`` (a request up to, without, its blank line) as a scrape; None: not plainly one."""
    request_line, *lines = head.split(b"\r\n")
    host = _page(request_line)
    if host is False or len(lines) > MAX_FIELDS:  # a stray CR or LF fails its line's match below
        return None
    read: dict[bytes, str] = {}
    seen: set[bytes] = set()
    for line in lines:
        match = _FIELD_LINE.fullmatch(line)
        if match is None or len(line) > MAX_LINE:
            return None
        name = match.group(1).lower()
        if name in _REFUSE or name in seen:  # a repeated field: aiohttp refuses some (Host, User-Agent), not others
            return None
        seen.add(name)
        if name == b"connection" and match.group(2).lower() != b"keep-alive":
            return None
        if name in _READ:
            read[name] = match.group(2).decode("ascii")
    if b"host" not in read:
        return None  # HTTP/1.1 without Host is refused by aiohttp's parser: let it say so
    variant = negotiation.variant(read.get(b"accept"), read.get(b"accept-encoding"))
    closes = closes_after_response((1, 1), [name.decode("ascii") for name in seen], read.get(b"connection"))
    return Scrape(host if isinstance(host, str) else None, variant, closes)


class ScrapeHeads:
    """Request heads already recognised (a BoundedMemo, like NegotiationTable): a scraper repeats its head byte for
    byte."""

    MAX_ENTRIES = 256
    MAX_HEAD_BYTES = 4096

    def __init__(self, negotiation: NegotiationTable) -> None:
        def recognise(head: bytes) -> Scrape | None:
            return parse_scrape(head, negotiation)

        self._known = BoundedMemo(recognise, self.MAX_ENTRIES, self.MAX_HEAD_BYTES, len)

    def scrape(self, head: bytes) -> Scrape | None:
        return self._known(head)


def http_date(now: int) -> str:
    """aiohttp's Date value (RFC 9110 IMF-fixdate), always in English."""
    year, month, day, hour, minute, second, weekday, _, _ = time.gmtime(now)
    days = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
    months = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
    return f"{days[weekday]}, {day:02d} {months[month - 1]} {year:4d} {hour:02d}:{minute:02d}:{second:02d} GMT"


def _fields(variant: Variant, extra: Mapping[str, str]) -> list[tuple[str, str | None]] | None:
    """The response's fields in aiohttp's order, None standing for the per-response ones (Age, Content-Length,
    Date); None when ``extra`` (the web config's headers) holds something this answer does not copy exactly."""
    fields: list[tuple[str, str | None]] = [
        (name, None if name == "Age" else value) for name, value in VARIANT_HEADERS[variant].items()
    ]
    for name, value in extra.items():  # as CIMultiDict.update does: a known name keeps its place, a new one follows
        if not (name + value).isascii() or name.lower() in ("content-length", "connection", "transfer-encoding"):
            return None
        at = [i for i, (known, _) in enumerate(fields) if known.lower() == name.lower()]
        if at:
            fields[at[0]] = (name, value)  # spelled as the config spells it, as CIMultiDict does
        else:
            fields.append((name, value))
    fields.append(("Content-Length", None))
    names = {name.lower() for name, _ in fields}
    fields += [(name, None if name == "Date" else value) for name, value in (("Date", ""), ("Server", SERVER_SOFTWARE))
               if name.lower() not in names]  # fmt: skip
    return fields


class ResponseHeads:
    """A held page's whole response, made once per variant, page and second: only Age, Content-Length and Date
    change in its head, and a single host's scrapers ask for the same page all cycle long (a fleet's hosts each
    have their own page: made per request, as aiohttp makes it)."""

    def __init__(self) -> None:
        self._extra: Mapping[str, str] | None = None
        # per variant: the head with %s for each per-response field, and those fields' names in order
        self._templates: dict[Variant, tuple[bytes, tuple[str, ...]] | None] = {}
        self._made: dict[Variant, tuple[Body, int, int, bytes]] = {}  # the page, its age, the second, the response

    def _template(self, variant: Variant, extra: Mapping[str, str]) -> tuple[bytes, tuple[str, ...]] | None:
        if extra is not self._extra:  # the web config was replaced (SIGHUP): its headers may have changed
            self._extra, self._templates, self._made = extra, {}, {}
        if variant not in self._templates:
            fields = _fields(variant, extra)
            if fields is None:
                self._templates[variant] = None
            else:
                lines = "".join(f"{name}: {'%s' if value is None else value.replace('%', '%%')}\r\n"
                                for name, value in fields)  # fmt: skip
                slots = tuple(name for name, value in fields if value is None)
                self._templates[variant] = (f"HTTP/1.1 200 OK\r\n{lines}\r\n".encode("ascii"), slots)
        return self._templates[variant]

    def response(self, variant: Variant, page: Body, collected_at: float, extra: Mapping[str, str]) -> bytes | None:
        """Head and ``page`` (collected at ``collected_at``); None when ``extra`` rules the front's answer out."""
        template = self._template(variant, extra)
        if template is None:
            return None
        now = time.time()
        age, second = max(0, int(now - collected_at)), int(now)
        made = self._made.get(variant)
        if made is not None and made[0] is page and made[1] == age and made[2] == second:
            return made[3]
        values = {"Age": str(age), "Content-Length": str(len(page)), "Date": http_date(second)}
        response = template[0] % tuple(values[name].encode("ascii") for name in template[1]) + page
        self._made[variant] = (page, age, second, response)
        return response
