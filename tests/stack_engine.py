"""Helpers for the tests that run the image and the compose demo in a real container engine (tests/test_stack_*.py):
podman pointed at the run's own configuration and storage by tools/stack/run.sh (`make stack-test`), which
also builds the images and removes everything afterwards. Those tests are skipped unless that script set
OTEL_FAKEGPU_STACK_RUN; under it, a missing engine is a failure, never a skip."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import pytest

ROOT = Path(__file__).resolve().parent.parent
RUN_DIR = os.environ.get("OTEL_FAKEGPU_STACK_RUN", "")
PREFIX = os.environ.get("OTEL_FAKEGPU_STACK_PREFIX", "ofgstack")
IMAGE = "localhost/otel-fakegpu:0.1.0"  # the name compose.yaml gives the exporter's image
PEERS_IMAGE = "localhost/otel-fakegpu-peers:local"  # deploy/compose/local.yaml's stand-ins
skip_unless_stack = pytest.mark.skipif(not RUN_DIR, reason="run by `make stack-test` (tools/stack/run.sh)")
T = TypeVar("T")


def report(check: str, figure: str) -> None:
    """One line per check with its figure, for the make stack-test log."""
    print(f"\nstack: {check}: {figure}", flush=True)


def podman(*args: str, check: bool = True, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(["podman", *args], capture_output=True, text=True, timeout=timeout, check=False)
    if check and result.returncode != 0:
        raise AssertionError(f"podman {' '.join(args)}: exit {result.returncode}: {result.stderr.strip()[-2000:]}")
    return result


def podman_json(*args: str) -> Any:
    return json.loads(podman(*args).stdout or "null")


def wait_for(what: str, probe: Callable[[], T | None], timeout: float = 120, interval: float = 1.0) -> T:
    """Polls ``probe`` until it returns something other than None or False; fails naming ``what``."""
    deadline = time.monotonic() + timeout
    last_error = ""
    while time.monotonic() < deadline:
        try:
            value = probe()
            if value is not None and value is not False:
                return value
        except (OSError, AssertionError, ValueError, KeyError, subprocess.SubprocessError) as exc:
            last_error = f" (last: {exc})"
        time.sleep(interval)
    raise AssertionError(f"{what}: not within {timeout:g} s{last_error}")


def healthy(container: str) -> bool:
    """Runs the container's own healthcheck once, as podman's timer would (podman 4.3 schedules it with systemd,
    which these machines do not run)."""
    return podman("healthcheck", "run", container, check=False, timeout=30).returncode == 0


def compose_command(project: str, *files: Path) -> list[str]:
    python = os.environ.get("OTEL_FAKEGPU_STACK_PYTHON", sys.executable)
    flags = [arg for path in files for arg in ("-f", str(path))]
    return [python, "-m", "podman_compose", "-p", project, *flags]


def leftovers(label: str, value: str) -> dict[str, list[str]]:
    """Containers, pods, volumes and networks whose ``label`` is ``value`` (what a compose project made)."""
    found = {}
    for kind in ("container", "pod", "volume", "network"):
        listing = ["ps", "-a"] if kind == "container" else [kind, "ls"]
        names = podman(*listing, "--filter", f"label={label}={value}", "--format", "{{.Name}}" if kind != "container"
                       else "{{.Names}}").stdout.split()  # fmt: skip
        found[kind] = names
    return found
