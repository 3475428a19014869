"""``otel-fakegpu record``: scrape a dcgm-exporter-compatible endpoint on a fixed pace into a capture file
(engine/recording.py) that ``--engine replay`` serves back.

Stops after ``--duration``, at ``--max-bytes`` (the file never grows past it), or on Ctrl-C / SIGTERM, keeping
every record written. A scrape that fails is logged and skipped: the capture shows the gap.
"""

from __future__ import annotations

import argparse
import gzip
import logging
import signal
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import NoReturn

from otel_fakegpu.engine.recording import RecordingWriter
from otel_fakegpu.sim.clock import parse_duration

log = logging.getLogger(__name__)
PROG = "otel-fakegpu record"
DEFAULT_MAX_BYTES = 256 << 20
SCRAPE_TIMEOUT_S = 10.0
ACCEPT = "text/plain;version=0.0.4;q=1,*/*;q=0.1"  # the page as dcgm-exporter writes it


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        print(f"{self.prog}: error: {message}", file=sys.stderr)
        raise SystemExit(2)


def _duration(text: str) -> float:
    try:
        return parse_duration(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _positive_int(text: str) -> int:
    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"expected a whole number of bytes above 0, got {text!r}")
    return int(text)


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog=PROG, description="Scrape a dcgm-exporter-compatible endpoint into a capture file.")
    parser.add_argument(
        "--from", dest="source", required=True, help="the page to scrape, e.g. http://gpu-node:9400/metrics"
    )
    parser.add_argument("--every", type=_duration, default=15.0, help="time between scrapes (default 15s)")
    parser.add_argument("--duration", type=_duration, required=True, help="how long to record, e.g. 1h")
    parser.add_argument("--out", type=Path, required=True, help="the capture file to write")
    parser.add_argument("--max-bytes", type=_positive_int, default=DEFAULT_MAX_BYTES, help="the file's size limit")
    return parser


def _scrape(url: str) -> bytes:
    request = urllib.request.Request(url, headers={"Accept": ACCEPT, "Accept-Encoding": "gzip"})
    with urllib.request.urlopen(request, timeout=SCRAPE_TIMEOUT_S) as response:
        body: bytes = response.read()
        return gzip.decompress(body) if response.headers.get("Content-Encoding") == "gzip" else body


def record(
    source: str, every_s: float, duration_s: float, out: Path, max_bytes: int, stop: threading.Event
) -> tuple[int, str]:
    """Record until done; returns the pages written and the line that says what was written and why it ended."""
    started = time.time()
    with out.open("wb") as file:
        writer = RecordingWriter(file, {"source": source, "every_s": every_s, "started_at": started}, max_bytes)
        next_at, why = time.monotonic(), "duration reached"
        end = next_at + duration_s
        while next_at <= end:
            if stop.wait(max(0.0, next_at - time.monotonic())):
                why = "stopped"
                break
            at = time.time()
            try:
                page = _scrape(source)
            except (OSError, urllib.error.URLError, EOFError, gzip.BadGzipFile) as exc:
                log.warning("scrape of %s failed, skipped: %s", source, exc)
            else:
                if not writer.append(at, page):
                    why = f"--max-bytes {max_bytes} reached"
                    break
            next_at += every_s
    summary = f"{out}: {writer.records} pages, {writer.written} bytes in {time.time() - started:.1f} s ({why})"
    return writer.records, summary


def run_record(argv: Sequence[str], env: Mapping[str, str]) -> int:
    args = build_parser().parse_args(argv)
    if not args.source.startswith(("http://", "https://")):
        print(f"{PROG}: error: --from: expected an http:// or https:// URL, got {args.source!r}", file=sys.stderr)
        return 2
    if args.every <= 0:
        print(f"{PROG}: error: --every: must be more than 0", file=sys.stderr)
        return 2
    logging.basicConfig(level="INFO", format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda signum, frame: stop.set())
    try:
        pages, summary = record(args.source, args.every, args.duration, args.out, args.max_bytes, stop)
    except (OSError, ValueError) as exc:
        print(f"{PROG}: error: {exc}", file=sys.stderr)
        return 2
    if pages == 0:  # every scrape failed (each logged): a capture with nothing in it is not a success
        print(f"{PROG}: error: no page recorded from {args.source}: {summary}", file=sys.stderr)
        return 1
    print(summary)
    return 0
