"""docs/configuration.md is generated from the option table (tools/gen_config_doc.py): it must match what the
generator writes now, so an option added, renamed or reworded in the table cannot leave the document behind."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType

from otel_fakegpu.config.table import BACKFILL_OPTIONS, OPTIONS

ROOT = Path(__file__).resolve().parent.parent


def _generator() -> ModuleType:
    spec = importlib.util.spec_from_file_location("gen_config_doc", ROOT / "tools" / "gen_config_doc.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_configuration_document_is_current() -> None:
    generator = _generator()
    on_disk = (ROOT / "docs" / "configuration.md").read_text(encoding="utf-8")
    assert on_disk == generator.render(), f"docs/configuration.md is stale: run `{generator.REGENERATE}`"


def test_every_flag_and_variable_of_the_table_is_documented() -> None:
    document = _generator().render()
    for option in (*OPTIONS, *BACKFILL_OPTIONS):
        for name in (*option.flags, *option.envs):
            assert f"`{name}" in document, name
