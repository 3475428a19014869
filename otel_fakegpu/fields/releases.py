"""The dcgm-exporter releases whose output contract can be served (``--dcgm-exporter-compat``).

A release fixes what the page looks like where dcgm-exporter changed it between releases; everything not named here
is the same in every release listed. Releases are named by dcgm-exporter's version (``4.8.3``) or its full tag, which
prefixes the DCGM version it was built with (``4.6.0-4.8.3``).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ExporterRelease:
    """One dcgm-exporter release's output contract, as far as it differs from the others."""

    version: str  # dcgm-exporter's own version, 4.8.2
    tag: str  # the release tag, DCGM version first: 4.5.3-4.8.2
    host_label: str  # the label holding NODE_NAME or the host name
    summary: str  # what this release changed that the page shows, for --help and docs


RELEASES: tuple[ExporterRelease, ...] = (
    ExporterRelease("4.8.2", "4.5.3-4.8.2", "Hostname", "the host label is Hostname (every release up to this one)"),
    # NVIDIA/dcgm-exporter #655 (commit d5e5f51, May 2026) renamed it; first released in 4.6.0-4.8.3 (July 2026).
    ExporterRelease("4.8.3", "4.6.0-4.8.3", "hostname", "the host label is hostname (#655)"),
)
DEFAULT_RELEASE = RELEASES[0]


def find_release(text: str) -> ExporterRelease:
    """The release named by its version or its tag; raises KeyError with a message listing the known ones."""
    wanted = text.strip().lower()
    for release in RELEASES:
        if wanted in (release.version, release.tag):
            return release
    known = ", ".join(f"{r.version} ({r.tag})" for r in RELEASES)
    raise KeyError(f"unknown dcgm-exporter release (known: {known})")
