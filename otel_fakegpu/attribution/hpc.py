"""dcgm-exporter's HPC job mapping directory as a source (``--hpc-job-mapping-dir``): a file per GPU named
by its index (``3``) or MIG instance (``3.1``: GPU 3, GPU instance 1), one job id per line. Each GPU's
series are repeated per job with the label ``hpc_job``. Other names and sub-directories are ignored."""

from __future__ import annotations

import os
import re
from pathlib import Path

from otel_fakegpu.attribution.devices import DeviceRef
from otel_fakegpu.attribution.files import Reloading, stamp_of
from otel_fakegpu.attribution.limits import (
    MAX_JOB_DIR_BYTES,
    MAX_JOB_FILE_BYTES,
    MAX_JOB_FILES,
    check_claims,
    check_name,
)
from otel_fakegpu.attribution.model import Claim, WorkloadIdentity
from otel_fakegpu.attribution.source import Claims, Source
from otel_fakegpu.config.files import read_config_text

_GPU_FILE = re.compile(r"^(\d+)(?:\.(\d+))?$")  # dcgm-exporter's validGPUFile


def _mapping_files(directory: Path) -> list[str]:
    """The GPU files' paths, sorted; ValueError past MAX_JOB_FILES of them (a GPU or MIG instance each)."""
    names = []
    try:
        with os.scandir(directory) as entries:
            for entry in entries:
                if _GPU_FILE.match(entry.name) and entry.is_file():  # a FIFO or device: not a GPU file
                    names.append(entry.name)
                    if len(names) > MAX_JOB_FILES:
                        raise ValueError(f"{directory}: more than {MAX_JOB_FILES} GPU files")
    except OSError as exc:
        raise ValueError(f"{directory}: {exc.strerror or exc}") from None
    return [str(directory / name) for name in sorted(names)]


def parse_job_dir(directory: Path) -> Claims:
    """Claims of every mapping file; blank lines are skipped (dcgm-exporter would label a job ``""``)."""
    claims: list[Claim] = []
    total = 0
    for path in _mapping_files(directory):
        match = _GPU_FILE.match(os.path.basename(path))
        assert match is not None
        gpu, instance = int(match.group(1)), match.group(2)
        ref = DeviceRef(index=gpu, instance=int(instance) if instance is not None else None)
        text = read_config_text(path, MAX_JOB_FILE_BYTES, "job file")  # a ConfigError is a ValueError
        total += len(text)
        if total > MAX_JOB_DIR_BYTES:
            raise ValueError(f"{directory}: job files larger than {MAX_JOB_DIR_BYTES} bytes together")
        jobs = [check_name(job.strip(), f"{path}: job id") for job in text.splitlines() if job.strip()]
        claims.extend(Claim(ref, WorkloadIdentity(hpc_job=job)) for job in jobs)
        check_claims(claims[-len(jobs) :] if jobs else (), path)  # 20,000 jobs on one GPU: refused at its file
    check_claims(claims, str(directory))
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
