"""Finding pydcgm, DCGM's Python bindings: not on any package registry, they ship with DCGM itself.

Searched in order: the folders in ``DCGM_PYTHON_BINDINGS`` (os.pathsep-separated), then the standard
install locations. The injection modules (``dcgm_agent_internal``, ``dcgm_structs_internal``) ship only in
DCGM's source tree (``testing/python3``), so ``--inject`` needs ``DCGM_PYTHON_BINDINGS`` pointed there.
"""

from __future__ import annotations

import importlib
import logging
import os
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType

from otel_fakegpu.engine.connected import EngineUnavailable

log = logging.getLogger(__name__)

BINDINGS_ENV = "DCGM_PYTHON_BINDINGS"
STANDARD_LOCATIONS = (
    "/usr/share/datacenter-gpu-manager-4/bindings/python3",  # DCGM 4 packages
    "/usr/local/dcgm/bindings/python3",  # DCGM 3
    "/usr/local/dcgm/bindings",  # DCGM 2
)
INJECTION_MODULES = ("dcgm_agent_internal", "dcgm_structs_internal")


@dataclass(frozen=True)
class DcgmModules:
    """The imported bindings; ``agent_internal``/``structs_internal`` only when injection was asked for."""

    structs: ModuleType
    agent: ModuleType
    fields: ModuleType
    agent_internal: ModuleType | None = None
    structs_internal: ModuleType | None = None


def candidate_folders(env: Mapping[str, str]) -> list[Path]:
    given = [Path(p) for p in env.get(BINDINGS_ENV, "").split(os.pathsep) if p.strip()]
    return [*given, *(Path(p) for p in STANDARD_LOCATIONS)]


def _holding(folders: list[Path], module: str) -> Path | None:
    return next((f for f in folders if (f / f"{module}.py").is_file()), None)


def load_dcgm(env: Mapping[str, str], inject: bool) -> DcgmModules:
    """Import the bindings (and the injection modules when ``inject``); EngineUnavailable says what is missing."""
    folders = candidate_folders(env)
    searched = ", ".join(str(f) for f in folders)
    folder = _holding(folders, "dcgm_agent")
    if folder is None:
        raise EngineUnavailable(
            f"--engine dcgm: pydcgm (DCGM's Python bindings, dcgm_agent.py) not found in {searched}; "
            f"install DCGM (datacenter-gpu-manager) or set {BINDINGS_ENV} to its bindings/python3 folder"
        )
    internal = _holding(folders, INJECTION_MODULES[0]) if inject else None
    if inject and internal is None:
        raise EngineUnavailable(
            f"--inject: {' and '.join(INJECTION_MODULES)} not found in {searched}; they ship in DCGM's source tree, "
            f"not the installed bindings: set {BINDINGS_ENV}=<DCGM source>/testing/python3"
        )
    for path in dict.fromkeys(str(p) for p in (folder, internal) if p is not None):
        if path not in sys.path:
            sys.path.insert(0, path)  # the bindings import each other by bare module name
    try:
        modules = DcgmModules(
            structs=importlib.import_module("dcgm_structs"),
            agent=importlib.import_module("dcgm_agent"),
            fields=importlib.import_module("dcgm_fields"),
            agent_internal=importlib.import_module(INJECTION_MODULES[0]) if inject else None,
            structs_internal=importlib.import_module(INJECTION_MODULES[1]) if inject else None,
        )
    except ImportError as exc:
        raise EngineUnavailable(f"--engine dcgm: cannot import DCGM's bindings from {folder}: {exc}") from None
    wanted = ("dcgmEntitiesGetLatestValues", "dcgmConnect_v2", "dcgmFieldGroupCreate", "dcgmGetValuesSince_v2")
    for name in wanted:
        if not hasattr(modules.agent, name):
            raise EngineUnavailable(f"--engine dcgm: the bindings in {folder} are too old (no dcgm_agent.{name})")
    log.info("DCGM bindings from %s", folder)
    return modules
