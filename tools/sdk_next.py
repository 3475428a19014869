"""The SDK hooks against the OpenTelemetry releases actually installed; run by ``make test-sdk-next``.

``requirements``: the installed project's requirements (runtime and test, from its metadata: install it with
``--no-deps`` first) with the OpenTelemetry family's version specifiers dropped, so that pip installs the newest
releases on the registry instead of the pinned ones.
``report``: the installed versions (and, with ``--newest``, the newest on the registry), then per hook whether it
installed on them or fell back to the stock path, and why: each hook's own check and state, nothing re-derived.
"""

from __future__ import annotations

import argparse
import importlib.metadata
import logging
import re
import subprocess
import sys
from collections.abc import Callable

PROJECT = "otel-fakegpu"
FAMILY_PREFIX = "opentelemetry-"
SHOWN = ("opentelemetry-api", "opentelemetry-sdk", "opentelemetry-exporter-otlp", "opentelemetry-exporter-prometheus")


def requirements(declared: list[str]) -> list[str]:
    """Runtime and test requirements of ``declared`` (Requires-Dist lines); the OpenTelemetry family's by bare
    name (the newest release)."""
    lines = []
    for line in declared:
        requirement, _, marker = line.partition(";")
        if "extra" in marker and '"test"' not in marker:
            continue  # another extra (nvml)
        name = re.match(r"[A-Za-z0-9._-]+", requirement.strip())
        assert name is not None, line
        lines.append(name[0] if name[0].startswith(FAMILY_PREFIX) else requirement.strip())
    return lines


def newest_on_registry(package: str) -> str:
    """The newest release pip sees for ``package`` (pre-releases counted where the package has only those)."""
    found = subprocess.run(
        [sys.executable, "-m", "pip", "index", "versions", "--pre", package],
        check=False,
        capture_output=True,
        text=True,
    )
    match = re.search(rf"^{re.escape(package)} \(([^)]+)\)", found.stdout, re.MULTILINE)
    return match[1] if match else f"unknown ({found.stderr.strip().splitlines()[-1:] or 'no answer'})"


def hook_states() -> list[tuple[str, str, str | None]]:
    """(hook, what it does, its state: "yes" or why it fell back) for every SDK hook, each checked as it checks
    itself when the exporter starts."""
    # Imported here: ``requirements`` runs before the OpenTelemetry packages these import are installed.
    from otel_fakegpu.outputs import otlp_exporters  # noqa: PLC0415
    from otel_fakegpu.telemetry import sdk_aggregation, sdk_collect, sdk_fastpath, sdk_prune, sdk_shared  # noqa: PLC0415

    checks: list[tuple[str, str, Callable[[], object], Callable[[], str | None]]] = [
        ("sdk_fastpath", "attribute sets cleaned and hashed once", sdk_fastpath.install, sdk_fastpath.status),
        (
            "sdk_fastpath quick keys",
            "text label sets keyed without the SDK's recursion",
            sdk_fastpath.install,
            sdk_fastpath.quick_keys_status,
        ),
        ("sdk_prune", "series of gone attribute sets dropped", sdk_prune.install, sdk_prune.status),
        ("sdk_aggregation", "a slim object per series", sdk_aggregation.install, sdk_aggregation.status),
        (
            "sdk_aggregation quick points",
            "points made without the dataclass's __setattr__",
            sdk_aggregation.install,
            sdk_aggregation.quick_points_status,
        ),
        ("sdk_shared", "one provider for alike pipelines", sdk_shared.install, sdk_shared.status),
        ("sdk_collect", "observations straight into their series", sdk_collect.install, sdk_collect.status),
    ]
    for protocol in ("grpc", "http/protobuf"):
        checks.append(
            (
                f"otlp_exporters {protocol}",
                "caching OTLP encoder, held-encoded retries, refusal details",
                lambda protocol=protocol: otlp_exporters.check(protocol),  # type: ignore[misc]
                lambda protocol=protocol: otlp_exporters.status(protocol),  # type: ignore[misc]
            )
        )
    states = []
    for name, does, install, state in checks:
        install()
        states.append((name, does, state()))
    return states


def report(newest: bool) -> int:
    for package in SHOWN:
        try:
            line = f"{package} {importlib.metadata.version(package)}"
        except importlib.metadata.PackageNotFoundError:
            line = f"{package} not installed"
        print(line + (f" (newest on the registry: {newest_on_registry(package)})" if newest else ""))
    for name, does, state in hook_states():
        print(f"{name} ({does}): {'installed' if state == 'yes' else f'fell back ({state})'}")
    return 0  # a hook that fell back is safe; the SDK-facing tests say whether the release is fit to pin


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("requirements", help="requirements with the OpenTelemetry family unpinned")
    reporting = commands.add_parser("report", help="installed versions and each hook's state")
    reporting.add_argument("--newest", action="store_true", help="also ask the registry for its newest releases")
    args = parser.parse_args(argv)
    if args.command == "requirements":
        print("\n".join(requirements(importlib.metadata.requires(PROJECT) or [])))
        return 0
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    return report(args.newest)


if __name__ == "__main__":
    sys.exit(main())
