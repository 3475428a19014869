"""otel-fakegpu: OpenTelemetry-native GPU telemetry with dcgm-exporter-compatible output."""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable, Mapping

__version__ = "0.1.0"


def lazy_exports(package: str, modules: Mapping[str, tuple[str, ...]]) -> Callable[[str], object]:
    """A package's module ``__getattr__`` (PEP 562): a name of its public face imports its module on first use.

    Importing one module of a package runs the package's ``__init__`` first; were that to import every module, the
    option table's use of a stage's constants would load the OpenTelemetry SDK and aiohttp before the exporter
    could even fork its worker (a third of its start-up). ``modules`` maps each module of the package to the
    names it gives the package's face."""
    where = {name: module for module, names in modules.items() for name in names}

    def load(name: str) -> object:
        module = where.get(name)
        if module is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(f"{package}.{module}"), name)
        setattr(sys.modules[package], name, value)  # the next lookup finds it without this function
        return value

    return load
