"""The floors of the flow: a module imports only from lower floors (or its own folder), never from a higher one
or a sibling on its floor. Parsed from the source (every import, those inside functions too), not from sys.modules."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / "otel_fakegpu"

# Each top-level module or folder of the package and its floor, the one numbering the package docstrings use. Equal
# floors are siblings and import neither way: sim and attribution both stand on the engine; telemetry reads
# attribution's labels but never the simulator. The config folder's modules stand on two floors: its errors, file
# reads and value parsers under every stage, its option table and typed model above the stages they configure.
FLOORS = {
    "__init__": 0,  # the version, and lazy_exports for the packages' faces
    "config.__init__": 0,  # a docstring: importing config.errors must not load the stages
    "config.errors": 0,  # ConfigError and OptionValue, for every reader of a value or a file
    "config.files": 1,  # bounded reads of the files a user names (collectors, web config, scenarios)
    "config.values": 1,  # parsers of one option value each (numbers, addresses, URLs, headers)
    "fields": 2,
    "engine": 3,
    "sim": 4,
    "attribution": 4,
    "telemetry": 5,
    "outputs": 6,
    "serve": 7,
    "config.parsers": 8,  # each option row's parser: a value to its type (names of profiles, models, engines)
    "config.table": 9,  # the option table, the only place an option is declared
    "config.cmdline": 10,  # the table as argparse (--help) and the resolution of flags, variables and presets
    "config.sections": 10,  # option groups into one stage's settings (OTLP, socket, attribution, engine)
    "config.model": 11,  # validates the options into a Config of the floors below
    "host": 12,  # one host's stack: engine choice, build_host, collection, backfill
    "runtime": 13,  # workers, frames and the serving process's main
    "cli": 14,
    "__main__": 15,
}

ROOT_NAMES = {"__version__", "lazy_exports"}  # names, not modules, that the package's root gives


def _unit(path: Path) -> str:
    """The top-level module or folder ``path`` belongs to (a module of the config folder is its own unit)."""
    parts = path.relative_to(PACKAGE).parts
    if parts[0] == "config" and len(parts) > 1:
        return f"config.{parts[1].removesuffix('.py')}"
    return parts[0].removesuffix(".py")


def _name_unit(parts: list[str]) -> str:
    """The unit a dotted name's parts after ``otel_fakegpu`` belong to."""
    if parts[0] == "config":
        return f"config.{parts[1]}" if len(parts) > 1 else "config.__init__"
    return parts[0]


def _imported_units(tree: ast.AST) -> set[str]:
    units: set[str] = set()
    for node in ast.walk(tree):
        names = []
        if isinstance(node, ast.ImportFrom) and node.level > 0:
            units.add("a relative import")  # the package imports absolutely, so the floors stay visible
        elif isinstance(node, ast.ImportFrom) and node.module:
            modules_of_names = node.module in ("otel_fakegpu", "otel_fakegpu.config")  # the name is a module
            names = [f"{node.module}.{a.name}" for a in node.names] if modules_of_names else [node.module]
        elif isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        for name in names:
            parts = name.split(".")
            if parts[0] == "otel_fakegpu":
                units.add(_name_unit(parts[1:]) if len(parts) > 1 else "__init__")
    return units


def _violations() -> list[str]:
    found = []
    for path in sorted(PACKAGE.rglob("*.py")):
        unit = _unit(path)
        units = _imported_units(ast.parse(path.read_text(), str(path)))
        if units & ROOT_NAMES:  # ``from otel_fakegpu import __version__`` (or lazy_exports): the root's names
            units = (units - ROOT_NAMES) | {"__init__"}
        for imported in sorted(units - {unit}):
            if imported not in FLOORS:
                found.append(f"{path.relative_to(PACKAGE)}: imports {imported}, which has no floor in FLOORS")
            elif FLOORS[imported] >= FLOORS[unit]:
                found.append(
                    f"{path.relative_to(PACKAGE)} (floor {FLOORS[unit]}) imports {imported} (floor {FLOORS[imported]})"
                )
    return found


def test_every_module_has_a_floor() -> None:
    units = {_unit(path) for path in PACKAGE.rglob("*.py")}
    assert units <= FLOORS.keys(), sorted(units - FLOORS.keys())


def test_no_floor_imports_a_higher_one_or_a_sibling() -> None:
    assert _violations() == []


def test_the_check_sees_a_violation(tmp_path: Path) -> None:
    """The parser finds imports inside functions and ``from otel_fakegpu import x`` forms."""
    source = "def f():\n    from otel_fakegpu.sim import Simulator\nfrom otel_fakegpu import cli\n"
    source += "from otel_fakegpu.config import table\nimport otel_fakegpu.config.model\n"
    assert _imported_units(ast.parse(source)) == {"sim", "cli", "config.table", "config.model"}


MAX_MODULE_LINES = 300  # the house rule: a module a reader can hold in mind


def test_no_module_is_over_300_lines() -> None:
    lengths = {path.relative_to(PACKAGE): len(path.read_text().splitlines()) for path in PACKAGE.rglob("*.py")}
    assert {str(path): n for path, n in lengths.items() if n > MAX_MODULE_LINES} == {}
