"""Scrapes measured with wrk (Debian's C HTTP client, unpacked by tools/install-peers.sh): keep-alive
connections for a fixed window, latency percentiles as wrk reports them, and its whole latency distribution on a
grid of quantiles, so that several windows' requests can be pooled into one p99 (``pooled``)."""

from __future__ import annotations

import bisect
import os
import re
import subprocess
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path

PEERS = Path(__file__).resolve().parent.parent / ".peers"
WRK = PEERS / "wrk" / "usr" / "bin" / "wrk"
_UNITS = {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60_000.0}
# wrk's Lua API reads a latency quantile, not its histogram's counts (Debian's 4.1 answers an index with the index):
# every 0.1 % up to 95 %, every 0.01 % above, then the maximum, written as "percent microseconds" lines.
_DONE = """
done = function(summary, latency, requests)
  local out = assert(io.open("{path}", "w"))
  for i = 0, 949 do out:write(i / 10, " ", latency:percentile(i / 10), "\\n") end
  for i = 9500, 9999 do out:write(i / 100, " ", latency:percentile(i / 100), "\\n") end
  out:write("100 ", latency.max, "\\n")
  out:close()
end
"""


@dataclass(frozen=True)
class WrkResult:
    p50_ms: float
    p99_ms: float
    max_ms: float
    requests: int
    errors: int  # socket errors and non-2xx answers
    seconds: float
    # (percent, ms) on _DONE's grid, ascending: at most this latency for at least that share of the requests
    quantiles: tuple[tuple[float, float], ...] = ()


def _ms(text: str) -> float:
    match = re.fullmatch(r"([\d.]+)(us|ms|s|m)", text)
    if match is None:
        raise ValueError(f"wrk latency {text!r}")
    return float(match[1]) * _UNITS[match[2]]


def parse(output: str) -> WrkResult:
    # wrk pads a one-letter unit with a space ("  99%    1.07s "): a 4096-GPU plain round's p99 can pass 1 s.
    percentiles = dict(re.findall(r"^\s+(50|99)%\s+(\S+)\s*$", output, re.M))
    latency = re.search(r"^\s+Latency\s+\S+\s+\S+\s+(\S+)", output, re.M)
    done = re.search(r"^\s+(\d+) requests in ([\d.]+)(\w+),", output, re.M)
    if set(percentiles) != {"50", "99"} or latency is None or done is None:
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
    with tempfile.TemporaryDirectory() as folder:
        script, grid = Path(folder) / "run.lua", Path(folder) / "quantiles.txt"
        lua = _DONE.replace("{path}", str(grid))
        if paths:
            quoted = ",".join(f'"{p}"' for p in paths)
            lua += (
                f"local paths = {{{quoted}}}\nlocal i = 0\n"
                "request = function()\n  i = i + 1\n  return wrk.format('GET', paths[(i % #paths) + 1])\nend\n"
            )
        script.write_text(lua)
        args += ["-s", str(script)]
        timeout = seconds + 120
        done = subprocess.run([*args, url], capture_output=True, text=True, timeout=timeout, env=env, check=False)
        if done.returncode != 0:
            raise RuntimeError(f"wrk {' '.join(args[1:])} {url}: exit {done.returncode}: {done.stderr.strip()}")
        return replace(parse(done.stdout), quantiles=_quantiles(grid.read_text()))


def _quantiles(text: str) -> tuple[tuple[float, float], ...]:
    rows = (line.split() for line in text.splitlines())
    return tuple((float(percent), int(float(us)) / 1000.0) for percent, us in rows)


def pooled(results: Sequence[WrkResult], percent: float) -> float:
    """The ``percent`` latency quantile (ms) of every request of ``results`` together, from their quantile grids:
    the least latency at or under which, by each window's grid, ``percent`` of all the requests fell. A grid reads a
    window's share at or under a latency low by at most one step (0.01 % above 95 %), so this errs high, never low."""
    total = sum(r.requests for r in results)
    if total == 0 or any(not r.quantiles for r in results):
        raise ValueError("pooled: every window needs requests and its quantile grid")
    grids = [([ms for _, ms in r.quantiles], [p for p, _ in r.quantiles], r.requests) for r in results]

    def share_at_or_under(latency_ms: float) -> float:
        requests = 0.0
        for latencies, percents, count in grids:
            at = bisect.bisect_right(latencies, latency_ms)
            requests += count * (percents[at - 1] / 100.0 if at else 0.0)
        return requests / total

    candidates = sorted({ms for latencies, _, _ in grids for ms in latencies})
    # The share grows with the latency, and the grids' last point (100 %: the maximum) reaches any percent.
    return candidates[bisect.bisect_left(candidates, percent / 100.0, key=share_at_or_under)]
