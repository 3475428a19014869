"""dcgm-exporter's HPC job mapping directory as a source (``--hpc-job-mapping-dir``): a file per GPU named
by its index (``3``) or MIG instance (``3.1``: GPU 3, GPU instance 1), one job id per line. Each GPU's
series are repeated per job with the label ``hpc_job``. Other names and sub-directories are ignored."""

from __future__ import annotations

import os
import re
from pathlib import Path

from otel_fakegpu.attribution.devices import DeviceRef
from otel_fakegpu.attribution.files import Reloading, stamp_of
from otel_fakegpu.attribution.model import Claim, WorkloadIdentity
from otel_fakegpu.attribution.source import Claims, Source

_GPU_FILE = re.compile(r"^(\d+)(?:\.(\d+))?$")  # dcgm-exporter's validGPUFile


def _mapping_files(directory: Path) -> list[str]:
    try:
        names = sorted(os.listdir(directory))
    except OSError as exc:
        raise ValueError(f"{directory}: {exc.strerror or exc}") from None
    return [str(directory / n) for n in names if _GPU_FILE.match(n) and os.path.isfile(directory / n)]


def parse_job_dir(directory: Path) -> Claims:
    """Claims of every mapping file; blank lines are skipped (dcgm-exporter would label a job ``""``)."""
    claims: list[Claim] = []
    for path in _mapping_files(directory):
        match = _GPU_FILE.match(os.path.basename(path))
        assert match is not None
        gpu, instance = int(match.group(1)), match.group(2)
        ref = DeviceRef(index=gpu, instance=int(instance) if instance is not None else None)
        try:
            lines = Path(path).read_text().splitlines()
        except (OSError, UnicodeDecodeError) as exc:
            raise ValueError(f"{path}: {exc}") from None
        claims.extend(Claim(ref, WorkloadIdentity(hpc_job=job.strip())) for job in lines if job.strip())
    return tuple(claims)


class HpcJobSource(Source):
    name = "hpc-job-mapping-dir"

    def __init__(self, directory: str | Path) -> None:
        self.directory = Path(directory)
        self._dir = Reloading(self._stamp, lambda: parse_job_dir(self.directory))

    def _stamp(self) -> tuple[tuple[str, int, int], ...]:
        try:
            files = _mapping_files(self.directory)
        except ValueError:
            return ()
        return (("", len(files), 0), *stamp_of(files))

    def fetch(self, timeout_s: float) -> Claims:
        return self._dir.get()
