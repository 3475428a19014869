"""The SDK hooks stay fenced (docs/sdk-hooks.md): only the hook modules import the SDK's internal packages, and no
module outside telemetry/ imports a telemetry hook module (the layers above see ``FixedAttributes`` only)."""

from __future__ import annotations

import ast
import re
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / "otel_fakegpu"
TELEMETRY_HOOKS = ("otel_fakegpu.telemetry.sdk_fastpath", "otel_fakegpu.telemetry.sdk_prune")
# The modules that may name the SDK's ``_internal`` packages: the hooks themselves.
INTERNAL_USERS = {"telemetry/sdk_fastpath.py"}


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
