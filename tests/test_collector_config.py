"""The shipped Prometheus scrape config is valid for a real promtool."""

from __future__ import annotations

import subprocess
from pathlib import Path

from tests.conftest import PEERS, ROOT

PROMTOOL = PEERS / "prometheus" / "usr" / "bin" / "promtool"


def test_scrape_config_passes_promtool() -> None:
    assert PROMTOOL.exists(), f"{PROMTOOL} missing: run `make peers`"
    config = Path(ROOT / "collector-config" / "prometheus.yml")
    result = subprocess.run(
        [str(PROMTOOL), "check", "config", str(config)], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr
