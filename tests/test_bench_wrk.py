"""How make bench reads wrk: its report parsed, and several windows' requests pooled into one percentile from
their quantile grids (bench.wrk.pooled), which the scrape-tail target compares between two servers."""

from __future__ import annotations

import pytest

from bench.wrk import WrkResult, parse, pooled

WRK_REPORT = """Running 3s test @ http://127.0.0.1:9400/metrics
  1 threads and 8 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency   541.48us  243.33us   5.82ms   90.20%
    Req/Sec    15.06k     3.96k   20.37k    56.67%
  Latency Distribution
     50%  460.00us
     75%  640.00us
     90%  778.00us
     99%    1.16ms
  44870 requests in 3.00s, 2.06GB read
Requests/sec:  14955.04
"""


def _window(requests: int, latency_ms: dict[float, float]) -> WrkResult:
    """A window whose quantile grid is ``latency_ms`` (percent -> ms), filled between its points as wrk's would be:
    each percent reads the latency of the next point at or above it."""
    points = sorted(latency_ms.items())
    grid = [i / 10 for i in range(950)] + [i / 100 for i in range(9500, 10001)]
    quantiles = tuple((p, next(ms for at, ms in points if at >= p)) for p in grid)
    return WrkResult(quantiles[500][1], quantiles[-11][1], quantiles[-1][1], requests, 0, 3.0, quantiles)


def test_parse_reads_wrk_report() -> None:
    result = parse(WRK_REPORT)
    assert (result.p50_ms, result.p99_ms, result.max_ms, result.requests, result.errors) == (0.46, 1.16, 5.82, 44870, 0)
    assert result.seconds == 3.0 and result.quantiles == ()


def test_parse_reads_latencies_past_a_second() -> None:
    """wrk pads a one-letter unit with a trailing space; a slow window's p99 passes 1 s (one make bench run hit it)."""
    slow = WRK_REPORT.replace("     99%    1.16ms\n", "     99%    1.07s \n").replace("   5.82ms   ", "   1.20s    ")
    result = parse(slow)
    assert (result.p99_ms, result.max_ms) == (1070.0, 1200.0)


def test_one_window_pooled_is_its_own_percentiles() -> None:
    window = _window(10_000, {50.0: 0.4, 99.0: 1.0, 100.0: 5.0})
    assert pooled([window], 50.0) == 0.4
    assert pooled([window], 99.0) == 1.0
    assert pooled([window], 100.0) == 5.0


def test_pooled_weighs_each_window_by_its_requests() -> None:
    """One slow window among fast ones: its share of all the requests, not its own p99, decides the pooled p99."""
    fast = _window(99_000, {100.0: 0.5})
    slow_small = _window(500, {100.0: 9.0})  # 0.5 % of all requests: under the 1 % a p99 leaves out
    assert pooled([fast, slow_small], 99.0) == 0.5
    slow_big = _window(2_000, {100.0: 9.0})  # 2 % of them: the pooled p99 is the slow window's
    assert pooled([fast, slow_big], 99.0) == 9.0
    assert pooled([fast, slow_big], 50.0) == 0.5


def test_pooled_never_reads_lower_than_the_requests_allow() -> None:
    """Two windows of equal size, one at 1 ms, one at 3 ms for every request: half of all requests took 3 ms, so any
    percentile above 50 is 3 ms, whatever each window's median says."""
    windows = [_window(1000, {100.0: 1.0}), _window(1000, {100.0: 3.0})]
    assert pooled(windows, 50.0) == 1.0
    assert pooled(windows, 50.1) == 3.0
    assert pooled(windows, 99.0) == 3.0


def test_pooled_refuses_windows_without_a_grid() -> None:
    with pytest.raises(ValueError, match="quantile grid"):
        pooled([parse(WRK_REPORT)], 99.0)
