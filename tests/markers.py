"""The markers `process`, `peer` and `slow`, applied at collection from what each test uses, so a test written
tomorrow is marked without anyone remembering to.

A test is `process` when its code, its fixtures, or the helpers of tests/ they call (followed through the tests
package, not into the library) start a process; `peer` when they reach a real third-party program or server: the
peers installed by tools/install-peers.sh (Prometheus, promtool, VictoriaMetrics, wrk), gRPC (the kubelet stand-in,
OTLP receivers), the consumer and linting tools of the test extra. `slow` (over 10 s here) is marked by hand,
from ``pytest --durations=0``; a run's summary names the unmarked tests that took longer.

The static reading is checked at run time: a test not marked `process` that starts one fails, naming the mark to add,
so `make test-fast` can never quietly start processes.
"""

from __future__ import annotations

import inspect
import os
import subprocess
import sys
import types
from collections.abc import Callable, Iterator
from typing import Any

import pytest

SLOW_SECONDS = 10.0
# Names whose mere use starts a process: called as functions or reached as attributes (WorkerPool forks the
# exporter's workers).
PROCESS_NAMES = frozenset(
    {"Popen", "fork", "create_subprocess_exec", "create_subprocess_shell", "start_exporter", "WorkerPool"}
)
PROCESS_MODULES = ("subprocess", "multiprocessing", "concurrent.futures.process")
# The peers' folder (tests/conftest.py's PEERS and what is built on it), and modules that are a real peer's client
# or server.
PEER_NAMES = frozenset({"PEERS", "PROMTOOL", "PrometheusServer", "VictoriaMetrics"})
PEER_MODULES = ("grpc", "otel_fakegpu.attribution.fakekubelet", "kempnerpulse", "jobscope", "kubernetes_validate")
# Programs a test runs by name (a string constant in its code).
PEER_PROGRAMS = frozenset(
    {"promtool", "wrk", "hadolint", "kubectl", "kubernetes-validate", "check-jsonschema", "kempnerpulse", "jobscope"}
    | {"buildah"}
)


def _in_tests(obj: object) -> bool:
    module = getattr(obj, "__module__", None) or ""
    return module == "conftest" or module.startswith("tests")


def _codes(code: types.CodeType) -> Iterator[types.CodeType]:
    yield code
    for const in code.co_consts:
        if isinstance(const, types.CodeType):
            yield from _codes(const)


def _module_of(obj: object) -> str:
    if isinstance(obj, types.ModuleType):
        return obj.__name__
    return getattr(obj, "__module__", None) or ""


class Usage:
    """What a test's code reaches, collected once per function or class of tests/."""

    def __init__(self) -> None:
        self.process = False
        self.peer = False
        self._seen: set[int] = set()

    def visit(self, obj: object) -> None:
        if id(obj) in self._seen:
            return
        self._seen.add(id(obj))
        if isinstance(obj, type):
            for member in vars(obj).values():
                target = member.__func__ if isinstance(member, (classmethod, staticmethod)) else member
                if inspect.isfunction(target) or isinstance(target, property):
                    self.visit(target.fget if isinstance(target, property) else target)
            return
        func = inspect.unwrap(obj) if callable(obj) else obj
        if inspect.isfunction(func):
            self._visit_function(func)

    def _visit_function(self, func: types.FunctionType) -> None:
        globals_ = func.__globals__
        for code in _codes(func.__code__):
            # A function-level import (``from tests.receivers import X``) names its module among the code's names.
            imported = [sys.modules[n] for n in code.co_names if n.startswith("tests.") and n in sys.modules]
            for name in code.co_names:
                self.process |= name in PROCESS_NAMES
                self.peer |= name in PEER_NAMES
                if name in globals_:
                    self._resolve(globals_[name])
                for module in imported:
                    if name in vars(module):
                        self._resolve(vars(module)[name])
            for const in code.co_consts:
                if isinstance(const, str) and os.path.basename(const) in PEER_PROGRAMS:
                    self.peer = True

    def _resolve(self, obj: object) -> None:
        module = _module_of(obj)
        self.process |= module.startswith(PROCESS_MODULES)
        self.peer |= module.startswith(PEER_MODULES)
        if _in_tests(obj) and (inspect.isfunction(obj) or isinstance(obj, type)):
            self.visit(obj)


def _fixture_functions(item: pytest.Item) -> Iterator[Callable[..., Any]]:
    info = getattr(item, "_fixtureinfo", None)
    for name in getattr(item, "fixturenames", ()):
        for definition in info.name2fixturedefs.get(name, ()) if info else ():
            yield definition.func


def usage_of(item: pytest.Item) -> Usage:
    usage = Usage()
    usage.visit(getattr(item, "function", None))
    for func in _fixture_functions(item):
        if _in_tests(func) and func.__module__ != __name__:  # not this module's own guard
            usage.visit(func)
    return usage


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        usage = usage_of(item)
        if usage.process:
            item.add_marker(pytest.mark.process)
        if usage.peer:
            item.add_marker(pytest.mark.peer)


@pytest.fixture(autouse=True)
def _processes_only_where_marked(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> None:
    """Fail a test that starts a process without the `process` mark (so `-m "not process"` holds what it says)."""
    if request.node.get_closest_marker("process") is not None:
        return
    message = f"{request.node.nodeid} starts a process: mark it @pytest.mark.process (tests/markers.py says why)"

    def refuse_popen(self: subprocess.Popen[Any], *args: Any, **kwargs: Any) -> None:
        pytest.fail(message, pytrace=False)

    def refuse_fork() -> int:
        pytest.fail(message, pytrace=False)

    monkeypatch.setattr(subprocess.Popen, "__init__", refuse_popen)
    monkeypatch.setattr(os, "fork", refuse_fork)


def pytest_terminal_summary(terminalreporter: Any) -> None:
    """Name the tests that took over SLOW_SECONDS without the `slow` mark (timings move with load: a hint)."""
    unmarked = [
        f"{report.nodeid} ({report.duration:.1f} s)"
        for report in terminalreporter.stats.get("passed", [])
        if report.when == "call" and report.duration > SLOW_SECONDS and "slow" not in report.keywords
    ]
    if unmarked:
        terminalreporter.write_sep("-", f"over {SLOW_SECONDS:g} s without the slow mark")
        for line in unmarked:
            terminalreporter.write_line(line)
