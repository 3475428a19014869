"""The floors of the flow: a module imports only from lower floors (or its own folder), never from a higher one
or a sibling on its floor. Parsed from the source (every import, those inside functions too), not from sys.modules."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / "otel_fakegpu"

# Each top-level module or folder of the package and its floor. Equal floors are siblings and import neither way:
# sim and attribution both stand on the engine; telemetry reads attribution's labels but never the simulator.
FLOORS = {
    "__init__": 0,  # the version only
    "settings": 0,  # ConfigError and OptionValue, for options and config
    "fileread": 1,  # bounded reads of the files a user names (collectors, web config)
    "option_values": 1,  # parsers of one option value each (numbers, addresses, URLs, headers)
    "fields": 2,
    "engine": 3,
    "sim": 4,
    "attribution": 4,
    "telemetry": 5,
    "outputs": 6,
    "serve": 7,
    "runtime": 8,
    "options": 9,  # the command line's table (its help names presets, profiles, styles of the floors below)
    "config_sections": 9,  # option groups into one stage's settings (OTLP, socket, attribution, engine)
    "config": 10,  # validates the options into a Config of the floors below
    "engines": 11,  # picks an engine from a Config
    "backfill": 11,
    "exporter": 12,  # one host's collection side, built from a Config
    "app": 13,
    "cli": 14,
    "__main__": 15,
}


def _unit(path: Path) -> str:
    """The top-level module or folder ``path`` belongs to."""
    return path.relative_to(PACKAGE).parts[0].removesuffix(".py")


def _imported_units(tree: ast.AST) -> set[str]:
    units: set[str] = set()
    for node in ast.walk(tree):
        names = []
        if isinstance(node, ast.ImportFrom) and node.level > 0:
            units.add("a relative import")  # the package imports absolutely, so the floors stay visible
        elif isinstance(node, ast.ImportFrom) and node.module:
            names = [node.module] if node.module != "otel_fakegpu" else [f"otel_fakegpu.{a.name}" for a in node.names]
        elif isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        for name in names:
            parts = name.split(".")
            if parts[0] == "otel_fakegpu":
                units.add(parts[1] if len(parts) > 1 else "__init__")
    return units


def _violations() -> list[str]:
    found = []
    for path in sorted(PACKAGE.rglob("*.py")):
        unit = _unit(path)
        units = _imported_units(ast.parse(path.read_text(), str(path)))
        if "__version__" in units:  # ``from otel_fakegpu import __version__``
            units = (units - {"__version__"}) | {"__init__"}
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
    source = "def f():\n    from otel_fakegpu.sim import Simulator\nfrom otel_fakegpu import app\n"
    assert _imported_units(ast.parse(source)) == {"sim", "app"}
