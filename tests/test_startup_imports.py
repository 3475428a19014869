"""What a plain start imports: nothing for an option the user did not give (gRPC, the OTLP exporters, PyYAML, the
tracing SDK, the attribution sources but the simulator's, the real engines), and before the fork nothing of aiohttp,
asyncio or ssl, nor of the worker's own stack, which then load in parallel in the two processes (runtime/main.py). A fresh
interpreter, since this test process has imported everything."""

from __future__ import annotations

import ast
import importlib
import json
import subprocess
import sys
from pathlib import Path

import pytest

from otel_fakegpu.config.parsers import OTLP_NAMINGS
from otel_fakegpu.outputs.otlp import NAMINGS

# Both processes' steps in one interpreter, in the order a start runs them: validation and what the serving
# process imports before it forks, then the worker's host and first cycle, then the serving side's modules.
PLAIN_START = """
import json, sys
from otel_fakegpu.cli import validate
from otel_fakegpu.config.model import environ
from otel_fakegpu.runtime import main
from otel_fakegpu.runtime.fleet import fleet_racks, plan_fleet

config, collectors, _ = validate(sys.argv[1:], environ())
at_fork = sorted(sys.modules)
plan = plan_fleet(config.host_identity, config.hosts, config.shard, config.workers, fleet_racks(config))
collection = main.build_in_worker(config, collectors, plan.hosts[0])
collection.start()
assert collection.latest() is not None
collection.stop()
import otel_fakegpu.runtime.serving
print(json.dumps({"at_fork": at_fork, "all": sorted(sys.modules)}))
"""

SCENARIOS = Path(__file__).resolve().parent.parent / "scenarios"
NEVER_UNASKED = ("grpc", "yaml", "google.protobuf", "opentelemetry.exporter", "opentelemetry.sdk.trace", "http.server")


def _modules(*args: str) -> dict[str, list[str]]:
    done = subprocess.run(
        [sys.executable, "-c", PLAIN_START, *args], capture_output=True, text=True, timeout=120, check=True
    )
    modules: dict[str, list[str]] = json.loads(done.stdout)
    return modules


def _loaded(modules: list[str], package: str) -> list[str]:
    return [m for m in modules if m == package or m.startswith(package + ".")]


def test_a_plain_start_imports_nothing_for_options_it_was_not_given() -> None:
    modules = _modules("--num-gpus", "8")
    for package in NEVER_UNASKED:
        assert _loaded(modules["all"], package) == [], package
    unasked_stages = ["outputs.otlp", "outputs.prometheus_push", "attribution.kubelet", "attribution.podlist",
                      "attribution.hpc", "attribution.dra", "engine.dcgm", "engine.nvml"]  # fmt: skip
    assert [m for m in unasked_stages if f"otel_fakegpu.{m}" in modules["all"]] == []
    # Before the fork: no aiohttp, asyncio or ssl (the serving process loads them while the worker starts, which
    # needs none of them: runtime/spawn.py) and no worker stack.
    for package in ("aiohttp", "asyncio", "ssl", "otel_fakegpu.host.collection", "otel_fakegpu.sim.simulator"):
        assert _loaded(modules["at_fork"], package) == [], package
    assert "aiohttp.web" in modules["all"]  # the serving side did load it: the check above is not vacuous


def test_a_scenario_loads_pyyaml() -> None:
    """The other side of the check above: the option that needs PyYAML still gets it."""
    modules = _modules("--num-gpus", "2", "--scenario", str(SCENARIOS / "xid-storm.yaml"))
    assert _loaded(modules["at_fork"], "yaml")


def test_the_option_tables_naming_choices_are_the_otlp_outputs() -> None:
    """--naming is checked without loading the OTLP output (config/parsers.py): the same names, the same order."""
    assert tuple(NAMINGS) == OTLP_NAMINGS


def _lazy_faces() -> dict[str, dict[str, str]]:
    """Each package whose face is lazy: its names, each with the module its ``TYPE_CHECKING`` block imports it from."""
    faces: dict[str, dict[str, str]] = {}
    for init in sorted((Path(__file__).resolve().parent.parent / "otel_fakegpu").glob("*/__init__.py")):
        tree = ast.parse(init.read_text())
        checked = [n for n in tree.body if isinstance(n, ast.If) and ast.unparse(n.test) == "TYPE_CHECKING"]
        if "lazy_exports" in init.read_text() and checked:
            imports = [n for n in checked[0].body if isinstance(n, ast.ImportFrom)]
            faces[f"otel_fakegpu.{init.parent.name}"] = {a.name: str(n.module) for n in imports for a in n.names}
    return faces


def test_every_name_of_a_lazy_face_is_the_one_its_module_defines() -> None:
    """The three lists of a lazy face (the imports mypy reads, ``__all__``, the map ``__getattr__`` loads by) agree."""
    faces = _lazy_faces()
    assert len(faces) >= 7, sorted(faces)
    for package, names in faces.items():
        face = importlib.import_module(package)
        assert sorted(face.__all__) == sorted(names), package
        for name, module in names.items():
            assert getattr(face, name) is getattr(importlib.import_module(module), name), f"{package}.{name}"
        with pytest.raises(AttributeError, match="no attribute 'nothing_here'"):
            face.nothing_here  # noqa: B018
