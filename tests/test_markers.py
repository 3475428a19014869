"""tests/markers.py reads what a test uses, through the helpers of tests/ it calls, and checks at run time that a
test without the `process` mark starts no process.

The probes below are read, never run. The tests reach them through a dict, which the reading does not follow, so
these tests stay unmarked and in `make test-fast`.
"""

from __future__ import annotations

import importlib
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.conftest import free_port, run_cli, start_exporter
from tests.markers import Usage, usage_of
from tests.prometheus_server import PROMTOOL
from tests.receivers import VictoriaMetrics


def _starts_the_exporter() -> None:
    start_exporter(["--num-gpus", "1"])


def _through_a_helper() -> None:
    _starts_the_exporter()


def _runs_python() -> None:
    subprocess.run([sys.executable, "-c", "pass"], check=True)


def _runs_the_cli() -> None:
    run_cli("--version")


def _runs_promtool() -> None:
    subprocess.run([str(PROMTOOL), "--version"], check=True)


def _starts_victoria(folder: Path) -> None:
    VictoriaMetrics(folder).stop()


def _imports_inside(folder: Path) -> None:
    from tests.receivers import VictoriaMetrics as Victoria  # as conftest's fixtures import what imports them

    Victoria(folder).stop()


def _runs_hadolint() -> None:
    subprocess.run(["hadolint", "Dockerfile"], check=True)


def _in_process() -> int:
    return free_port() + len(sys.argv)


PROBES: dict[str, Callable[..., object]] = {
    f.__name__: f
    for f in (
        _through_a_helper,
        _runs_python,
        _runs_the_cli,
        _runs_promtool,
        _starts_victoria,
        _imports_inside,
        _runs_hadolint,
        _in_process,
    )
}


def _uses(name: str) -> tuple[bool, bool]:
    usage = Usage()
    usage.visit(PROBES[name])
    return usage.process, usage.peer


def test_a_process_is_seen_through_helpers_and_the_subprocess_module() -> None:
    assert _uses("_through_a_helper") == (True, False)
    assert _uses("_runs_python") == (True, False)
    assert _uses("_runs_the_cli") == (True, False)


def test_peers_are_seen_by_their_folder_their_class_and_their_program() -> None:
    assert _uses("_runs_promtool") == (True, True)
    assert _uses("_starts_victoria") == (True, True)
    assert _uses("_imports_inside") == (True, True)  # a function-level import is followed into its module
    assert _uses("_runs_hadolint") == (True, True)


def test_in_process_code_is_neither(request: pytest.FixtureRequest) -> None:
    assert _uses("_in_process") == (False, False)
    assert (usage_of(request.node).process, usage_of(request.node).peer) == (False, False)
    assert request.node.get_closest_marker("process") is None


def test_a_process_the_reading_cannot_see_fails_the_unmarked_test() -> None:
    hidden = getattr(importlib.import_module("subprocess"), "Po" + "pen")  # no name the reading knows
    with pytest.raises(pytest.fail.Exception, match="starts a process: mark it"):
        hidden([sys.executable, "-c", "pass"])
