"""Scrapes measured with wrk (Debian's C HTTP client, unpacked by tools/install-peers.sh): keep-alive
connections for a fixed window, latency percentiles as wrk reports them."""

from __future__ import annotations

import os
import re
import subprocess
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

PEERS = Path(__file__).resolve().parent.parent / ".peers"
WRK = PEERS / "wrk" / "usr" / "bin" / "wrk"
_UNITS = {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60_000.0}


@dataclass(frozen=True)
class WrkResult:
    p50_ms: float
    p99_ms: float
    max_ms: float
    requests: int
    errors: int  # socket errors and non-2xx answers
    seconds: float


def _ms(text: str) -> float:
    match = re.fullmatch(r"([\d.]+)(us|ms|s|m)", text)
    if match is None:
        raise ValueError(f"wrk latency {text!r}")
    return float(match[1]) * _UNITS[match[2]]


def parse(output: str) -> WrkResult:
    percentiles = dict(re.findall(r"^\s+(50|99)%\s+(\S+)$", output, re.M))
    latency = re.search(r"^\s+Latency\s+\S+\s+\S+\s+(\S+)", output, re.M)
    done = re.search(r"^\s+(\d+) requests in ([\d.]+)(\w+),", output, re.M)
    if not percentiles or latency is None or done is None:
        raise ValueError(f"unexpected wrk output:\n{output}")
    errors = sum(int(n) for n in re.findall(r"(?:connect|read|write|timeout) (\d+)", output))
    errors += sum(int(n) for n in re.findall(r"Non-2xx or 3xx responses: (\d+)", output))
    return WrkResult(
        _ms(percentiles["50"]),
        _ms(percentiles["99"]),
        _ms(latency[1]),
        int(done[1]),
        errors,
        _ms(done[2] + done[3]) / 1000.0,
    )


def run_wrk(
    url: str,
    clients: int,
    seconds: float,
    gzip: bool,
    paths: list[str] | None = None,
    threads: int = 1,
    headers: Sequence[str] = (),
) -> WrkResult:
    """``clients`` keep-alive connections for ``seconds``; with ``paths``, requests rotate over them; ``headers``
    ("Name: value") are sent with every request."""
    # One client thread by default: on a small machine a second one takes the core the exporter's worker needs.
    args = [str(WRK), "-t", str(threads), "-c", str(clients), "-d", f"{seconds:g}s", "--latency"]
    args += ["--timeout", "30s"]
    for header in [*headers, *(["Accept-Encoding: gzip"] if gzip else [])]:
        args += ["-H", header]
    env = {**os.environ, "LD_LIBRARY_PATH": str(PEERS / "wrk" / "lib")}
    with tempfile.NamedTemporaryFile("w", suffix=".lua") as script:
        if paths:
            quoted = ",".join(f'"{p}"' for p in paths)
            script.write(
                f"local paths = {{{quoted}}}\nlocal i = 0\n"
                "request = function()\n  i = i + 1\n  return wrk.format('GET', paths[(i % #paths) + 1])\nend\n"
            )
            script.flush()
            args += ["-s", script.name]
        done = subprocess.run([*args, url], capture_output=True, text=True, timeout=seconds + 120, env=env, check=True)
    return parse(done.stdout)
