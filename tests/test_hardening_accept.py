"""Out of file descriptors: the exporter pauses accepting (one warning per episode, counted on /health) instead of
spinning on EMFILE with a traceback per try, and connections already open keep being served."""

from __future__ import annotations

import http.client
import json
import resource
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from tests.conftest import exporter_env, free_port
from tests.polling import wait_until

DESCRIPTORS = 160  # the serving process needs about 40 at idle (workers, listeners, pipes)
IDLE_CONNECTIONS = 300
WATCH_S = 4.0


def _cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / 100.0  # utime + stime, in clock ticks


def _get(conn: http.client.HTTPConnection, path: str) -> tuple[int, bytes]:
    conn.request("GET", path)
    response = conn.getresponse()
    return response.status, response.read()


def test_running_out_of_descriptors_pauses_accepting_and_serves_open_connections(tmp_path: Path) -> None:
    port = free_port()
    log = tempfile.TemporaryFile()  # noqa: SIM115 - closed below
    proc = subprocess.Popen(
        [sys.executable, "-m", "otel_fakegpu", "-a", f"127.0.0.1:{port}", "--num-gpus", "2", "--workers", "1"],
        env=exporter_env(), stdout=subprocess.DEVNULL, stderr=log,
    )  # fmt: skip
    resource.prlimit(proc.pid, resource.RLIMIT_NOFILE, (DESCRIPTORS, DESCRIPTORS))  # as prlimit(1) would
    idle: list[socket.socket] = []
    try:

        def serving() -> http.client.HTTPConnection | None:
            assert proc.poll() is None, "the exporter exited"
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
            return conn if _get(conn, "/metrics")[0] == 200 else None

        kept = wait_until(serving, 60, "the exporter serving /metrics", ignore=(OSError,))
        for _ in range(IDLE_CONNECTIONS):  # more than the exporter can hold: the backlog keeps the rest
            idle.append(socket.create_connection(("127.0.0.1", port), timeout=5))
        cpu_before = _cpu_seconds(proc.pid)
        started = time.monotonic()
        slowest = 0.0
        while time.monotonic() - started < WATCH_S:  # the open connection is answered all along
            asked = time.monotonic()
            assert _get(kept, "/metrics")[0] == 200
            slowest = max(slowest, time.monotonic() - asked)
            time.sleep(0.2)  # pacing a scraper: the watch lasts WATCH_S whatever happens
        cpu = _cpu_seconds(proc.pid) - cpu_before
        assert slowest < 1.0, slowest  # before: 1.6-2.0 s per scrape while the loop spun
        assert cpu < WATCH_S * 0.5, cpu  # before: a core spinning on accept
        pauses = json.loads(_get(kept, "/health")[1])["accept_pauses"]
        assert pauses["episodes_total"] == 1 and pauses["paused"] and pauses["pauses_total"] >= 2, pauses
        for sock in idle:
            sock.close()
        idle.clear()

        def fresh_answered() -> bool:  # the paused listener tries again after a second: new connections are accepted
            fresh = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
            try:
                return _get(fresh, "/metrics")[0] == 200
            finally:
                fresh.close()

        wait_until(fresh_answered, 30, "a new connection answered once the descriptors are free", ignore=(OSError,))
        kept.close()
    finally:
        for sock in idle:
            sock.close()
        proc.terminate()
        proc.wait(timeout=30)
        log.seek(0)
        stderr = log.read().decode(errors="replace")
        log.close()
    assert "Traceback" not in stderr and "out of system resource" not in stderr, stderr[-3000:]
    warnings = [line for line in stderr.splitlines() if "cannot accept connections" in line]
    assert len(warnings) == 1, warnings  # one per episode
    assert "accepting connections again" in stderr
