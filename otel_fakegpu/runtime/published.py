"""The serving process's copy of what the workers published: bytes per host and variant, nothing else.

A fleet's pages are held gzipped only (in the worker and here): an 8-GPU page is 48 KB of text and 3 KB gzipped,
so holding the text cost a fleet 90 KB per host of its ~450, where a scrape without gzip pays 0.12 ms to unzip it.
A single host keeps its text too: its scrape tail is what a user of one exporter measures.
"""

from __future__ import annotations

import asyncio
import gzip
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass

from otel_fakegpu.outputs import Format, Variant
from otel_fakegpu.outputs.exposition import GZIP_LEVEL
from otel_fakegpu.runtime.frames import Blob
from otel_fakegpu.runtime.spawn import first_variant

UNZIP_INLINE_BELOW = 64 << 10  # a larger gzipped page (over ~1 MB of text) is unzipped off the event loop

VariantBuilder = Callable[[str, Format, bool], Awaitable[None]]
SummaryRenderer = Callable[[Format], bytes]


@dataclass(frozen=True)
class HostExposition:
    cycle: int
    collected_at: float
    variants: Mapping[Variant, Blob]  # a received page is its receive buffer (frames.FrameReader)


class PublishedFleet:
    """Serves /metrics and /hosts/<host>/metrics from published bytes; a missing variant is asked of its worker.

    With one host, /metrics is that host's exposition (dcgm-exporter's page). With more, it is the fleet's own
    summary (``summary``): each host's GPUs are at /hosts/<host>/metrics, listed by /sd.
    """

    def __init__(
        self, hosts: Sequence[str], summary: SummaryRenderer, labels: Mapping[str, Mapping[str, str]] | None = None
    ) -> None:
        self._hosts = tuple(hosts)
        self._labels = labels or {}  # /sd's extra labels of each host's target (its rack)
        self._serving: dict[str, tuple[str, float]] = {}  # hosts in a drill: what their scrapers meet
        self._frozen: dict[str, HostExposition] = {}  # hosts serving a stale page: the page they repeat
        self._latest: dict[str, HostExposition] = {}
        self._summary = summary
        # Variants the workers build and send every cycle: those asked for recently (text at first).
        first = first_variant(len(self._hosts))
        self.gzip_only = first[1]  # a fleet's pages: gzipped only (the same rule), text unzipped per request
        self.demand: set[Variant] = {first}
        self._asked: dict[Variant, float] = {first: time.monotonic()}
        self.on_new_demand: Callable[[], None] = lambda: None
        self.builder: VariantBuilder | None = None
        self._builds: dict[tuple[str, Variant], asyncio.Task[None]] = {}  # one per miss, awaited by every asker
        self._summary_bodies: dict[Variant, bytes] = {}  # rendered since the last status, each variant once
        self._status_at: float | None = None

    def hosts(self) -> Sequence[str]:
        return self._hosts

    def held(self, variant: Variant) -> Variant:
        """The variant kept (and built by the workers) to answer a request for ``variant``."""
        return (variant[0], True) if self.gzip_only else variant

    def host_labels(self, host: str) -> Mapping[str, str]:
        return self._labels.get(host, {})

    def serving(self, host: str | None) -> tuple[str, float]:
        """The drill mode and delay of ``host`` (None: the only host; the fleet's summary is never drilled)."""
        if host is None:
            if len(self._hosts) > 1:
                return ("ok", 0.0)
            host = self._hosts[0]
        return self._serving.get(host, ("ok", 0.0))

    def set_serving(self, host: str, mode: str, delay_s: float) -> None:
        """A worker says what ``host``'s scrapers meet now; "stale" freezes the page held at this moment."""
        if mode == "stale" and host not in self._frozen and host in self._latest:
            self._frozen[host] = self._latest[host]
        elif mode != "stale":
            self._frozen.pop(host, None)
        if mode == "ok":
            self._serving.pop(host, None)
        else:
            self._serving[host] = (mode, delay_s)

    def store(self, host: str, exposition: HostExposition) -> None:
        """A publication; one of the same cycle adds variants to what is already held, one of an older cycle (a
        variant built on request, overtaken by the next cycle) is dropped."""
        current = self._latest.get(host)
        if current is not None:
            if exposition.collected_at < current.collected_at:
                return
            if exposition.collected_at == current.collected_at and exposition.cycle == current.cycle:
                merged = {**current.variants, **exposition.variants}
                exposition = HostExposition(exposition.cycle, exposition.collected_at, merged)
        self._latest[host] = exposition  # one reference swap: readers never see a half-stored publication

    def published(self, host: str) -> HostExposition | None:
        return self._latest.get(host)

    def note_status(self, at: float) -> None:
        """A worker reported its facts (after each cycle, at wall-clock ``at``): the summary is rendered afresh."""
        self._status_at, self._summary_bodies = at, {}

    def _fleet_summary(self, fmt: Format, gzipped: bool) -> tuple[Blob, float] | None:
        if self._status_at is None:
            return None
        body = self._summary_bodies.get((fmt, gzipped))
        if body is None:
            plain = self._summary_bodies.get((fmt, False)) or self._summary(fmt)
            body = gzip.compress(plain, GZIP_LEVEL, mtime=0) if gzipped else plain
            self._summary_bodies |= {(fmt, False): plain, (fmt, gzipped): body}
        return body, self._status_at

    def forget_unasked(self, keep_s: float) -> None:
        """Stop asking the workers for variants nobody asked for in ``keep_s``: a 23 MB text nobody scrapes
        is neither copied across nor held here. A later request builds it on demand again."""
        horizon = time.monotonic() - keep_s
        stale = {v for v in self.demand if self._asked.get(v, 0.0) < horizon}
        if stale:
            self.demand -= stale
            self.on_new_demand()

    async def exposition(self, host: str | None, fmt: Format, gzipped: bool) -> tuple[Blob, float] | None:
        """The bytes to serve and when their cycle started (the summary: when the last status came), None before
        the first cycle; KeyError for a host this process does not serve."""
        if host is None and len(self._hosts) > 1:
            return self._fleet_summary(fmt, gzipped)
        name = self._hosts[0] if host is None else host
        if name not in self._hosts:
            raise KeyError(name)
        frozen = self._frozen.get(name)
        if frozen is not None:  # a stale host repeats its page: the variant asked for, else its text
            return await _variant_of(frozen, fmt, gzipped), frozen.collected_at
        held = self.held((fmt, gzipped))
        self._note_asked(held)
        for _ in range(3):  # a new cycle may land between the build and the lookup; it has the variant too
            latest = self._latest.get(name)
            if latest is None:
                return None
            built = latest.variants.get(held)
            if built is not None:
                return (built if held[1] == gzipped else await _unzip(built)), latest.collected_at
            if self.builder is None:
                return None
            await self._build(name, held)
        return None

    def cached(self, host: str | None, fmt: Format, gzipped: bool) -> tuple[Blob, float] | None:
        """What ``exposition`` would answer when it is held now and served as it is: no drill on the host, no build
        to wait for. None otherwise (before the first cycle, a missing variant, an unknown host): ask ``exposition``.
        The request counts as asked for, as there."""
        if host is None:
            if len(self._hosts) > 1:
                return self._fleet_summary(fmt, gzipped)
            host = self._hosts[0]
        latest = self._latest.get(host)  # an unknown host has none
        if latest is None or host in self._serving:  # a drilled host, "stale" included, takes the long way
            return None
        variant = (fmt, gzipped)
        body = latest.variants.get(variant)
        if body is None:
            return None
        self._note_asked(variant)
        return body, latest.collected_at

    def _note_asked(self, variant: Variant) -> None:
        self._asked[variant] = time.monotonic()
        if variant not in self.demand:
            self.demand.add(variant)
            self.on_new_demand()

    async def _build(self, host: str, variant: Variant) -> None:
        """Ask the worker for a variant once, however many requests miss it at the same time."""
        assert self.builder is not None
        key = (host, variant)
        task = self._builds.get(key)
        if task is None:
            task = asyncio.ensure_future(self.builder(host, *variant))
            self._builds[key] = task
            task.add_done_callback(lambda _: self._builds.pop(key, None))
        await asyncio.shield(task)  # a client that leaves cancels its wait, not the others' build


async def _variant_of(exposition: HostExposition, fmt: Format, gzipped: bool) -> Blob:
    """A variant of a held cycle without asking the worker (which has moved on): built from what is held of the
    format asked for, else of the other, zipped or unzipped as asked."""
    for held_fmt in (fmt, *(f for f in Format if f is not fmt)):
        for held_gzip in (gzipped, not gzipped):
            body = exposition.variants.get((held_fmt, held_gzip))
            if body is None:
                continue
            if held_gzip == gzipped:
                return body
            return gzip.compress(body, GZIP_LEVEL, mtime=0) if gzipped else await _unzip(body)
    return b""


async def _unzip(body: Blob) -> bytes:
    """A gzipped page's text; a large one off the event loop, so other scrapes are not held up."""
    if len(body) < UNZIP_INLINE_BELOW:
        return gzip.decompress(body)
    return await asyncio.to_thread(gzip.decompress, body)
