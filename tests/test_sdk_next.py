"""The SDK hooks stay fenced and reported (docs/sdk-hooks.md): only the hook modules name the SDK's internal packages,
no module outside telemetry/ imports a telemetry hook module (the layers above see ``FixedAttributes`` only), and
tools/sdk_next.py, behind ``make test-sdk-next``, unpins only the OpenTelemetry family and reports every hook's own
state."""

from __future__ import annotations

import ast
import importlib.metadata
import importlib.util
import re
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import ROOT


def _load_tool() -> Any:
    """tools/ is scripts, not a package: the module is loaded from its file."""
    spec = importlib.util.spec_from_file_location("sdk_next", ROOT / "tools" / "sdk_next.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


sdk_next = _load_tool()

PACKAGE = ROOT / "otel_fakegpu"
TELEMETRY_HOOKS = (
    "otel_fakegpu.telemetry.sdk_fastpath",
    "otel_fakegpu.telemetry.sdk_prune",
    "otel_fakegpu.telemetry.sdk_aggregation",
    "otel_fakegpu.telemetry.sdk_shared",
    "otel_fakegpu.telemetry.sdk_collect",
)
# The modules that may name the SDK's ``_internal`` packages: the hooks themselves.
INTERNAL_USERS = {"telemetry/sdk_fastpath.py", "telemetry/sdk_collect.py"}


def _imports(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
            names.update(f"{node.module}.{alias.name}" for alias in node.names)
        elif isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
    return names


def test_only_the_hooks_import_sdk_internals() -> None:
    """Import statements and module names in strings alike (the fast path imports its modules by name)."""
    internal = re.compile(r"opentelemetry[\w.]*\._internal")
    found = {str(path.relative_to(PACKAGE)) for path in PACKAGE.rglob("*.py") if internal.search(path.read_text())}
    assert found == INTERNAL_USERS


def test_nothing_outside_telemetry_imports_a_hook_module() -> None:
    found = [
        f"{path.relative_to(PACKAGE)} imports {name}"
        for path in PACKAGE.rglob("*.py")
        if path.relative_to(PACKAGE).parts[0] != "telemetry"
        for name in _imports(path)
        if name.startswith(TELEMETRY_HOOKS)
    ]
    assert found == []


def test_only_the_opentelemetry_family_is_unpinned() -> None:
    declared = [
        "opentelemetry-sdk~=1.45.2",
        'opentelemetry-exporter-prometheus<0.67,>=0.66b2; extra == "test"',
        "grpcio>=1.85.1",
        'pytest>=8.0; extra == "test"',
        'nvidia-ml-py>=12.535; extra == "nvml"',
    ]
    assert sdk_next.requirements(declared) == [
        "opentelemetry-sdk",
        "opentelemetry-exporter-prometheus",
        "grpcio>=1.85.1",
        "pytest>=8.0",
    ]


def test_the_installed_project_declares_the_family_pinned() -> None:
    declared = importlib.metadata.requires("otel-fakegpu") or []
    family = [line for line in declared if line.startswith("opentelemetry-")]
    assert len(family) == 4 and all("~=" in line or "<" in line for line in family), family


def test_the_report_names_every_hook_and_its_state(capsys: pytest.CaptureFixture[str]) -> None:
    assert sdk_next.main(["report"]) == 0
    lines = capsys.readouterr().out.splitlines()
    hooks = [line for line in lines if not line.startswith("opentelemetry-")]
    assert [line.split(" (")[0] for line in hooks] == [
        "sdk_fastpath",
        "sdk_fastpath quick keys",
        "sdk_prune",
        "sdk_aggregation",
        "sdk_aggregation quick points",
        "sdk_shared",
        "sdk_collect",
        "otlp_exporters grpc",
        "otlp_exporters http/protobuf",
    ]
    assert all(line.endswith(": installed") for line in hooks), hooks  # the pinned SDK: every hook fits
