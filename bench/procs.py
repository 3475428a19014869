"""Processes under test: start, wait until ready, read their RSS and CPU time from /proc."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Sequence
from dataclasses import dataclass

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


@dataclass
class Proc:
    popen: subprocess.Popen[bytes]
    started_at: float

    @property
    def pid(self) -> int:
        return self.popen.pid

    def rss_mb(self) -> float:
        with open(f"/proc/{self.pid}/status") as status:
            for line in status:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024.0
        return float("nan")

    def cpu_seconds(self) -> float:
        with open(f"/proc/{self.pid}/stat") as stat:
            fields = stat.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS  # utime + stime

    def stop(self) -> None:
        if self.popen.poll() is None:
            self.popen.send_signal(signal.SIGTERM)
            try:
                self.popen.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                self.popen.wait()


def start(module: str, args: Sequence[str], env: dict[str, str] | None = None) -> Proc:
    full_env = {k: v for k, v in os.environ.items() if not k.startswith(("DCGM_", "OTEL_", "NUM_FAKE", "GPU_"))}
    full_env.update(env or {})
    popen = subprocess.Popen(
        [sys.executable, "-m", module, *args], env=full_env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    return Proc(popen, time.perf_counter())


def get(url: str, timeout: float = 120.0) -> bytes:
    with urllib.request.urlopen(url, timeout=timeout) as resp:
        return bytes(resp.read())


def wait_until(proc: Proc, url: str, needle: bytes, timeout: float = 180.0) -> float:
    """Seconds from the process's start until ``url`` answers with ``needle`` in its body."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.popen.poll() is not None:
            raise RuntimeError(f"{proc.popen.args!r} exited with {proc.popen.returncode}")
        try:
            if needle in get(url, timeout=30):
                return time.perf_counter() - proc.started_at
        except OSError:
            pass
        time.sleep(0.01)
    raise RuntimeError(f"{url} never showed {needle!r}")
