"""tools/sdk_next.py, behind ``make test-sdk-next``: the requirements it installs leave only the OpenTelemetry
family unpinned, and its report gives every hook's own state."""

from __future__ import annotations

import importlib.metadata
import importlib.util
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
        "sdk_prune",
        "otlp_exporters grpc",
        "otlp_exporters http/protobuf",
    ]
    assert all(line.endswith(": installed") for line in hooks), hooks  # the pinned SDK: every hook fits
