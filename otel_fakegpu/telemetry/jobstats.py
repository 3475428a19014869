"""The job-mapping series of the jobstats GPU exporter, for Slurm tools that find a job's GPUs through them.

Matched against plazonic/nvidia_gpu_prometheus_exporter at commit 73b8cc4 (2026-05-14), the exporter
PrincetonUniversity/jobstats uses: gauge ``nvidia_gpu_jobId`` (value: the job id) with labels ``ordinal`` (GPU
index), ``minor_number``, ``uuid`` (the MIG device's UUID on a MIG instance), ``name`` (NVML's device name,
``<model> MIG <profile>`` on an instance), ``GPU_I_ID`` ("" on a whole GPU), ``jobid`` and ``userid``. A GPU
without a job has none; a job id that is not a number (an array task such as ``12_3``) is skipped. The attribution
map (``hpc_job``) never knows the user's uid, so ``userid`` is "" and ``nvidia_gpu_jobUid``, which that exporter
leaves out while the uid is unknown, is never served."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable

from otel_fakegpu.attribution import Assignment, entities_of
from otel_fakegpu.engine import Snapshot
from otel_fakegpu.telemetry.selfmetrics import Reading, SelfMetric

JOB_ID = "nvidia_gpu_jobId"
_NAME = 50


_NUMBER = re.compile(r"^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$")  # Go's ParseFloat: no "12_3", unlike float()


def _as_number(text: str) -> float | int | None:
    """The exporter's ParseFloat; integral values stay integers so they print as the job id reads."""
    if not _NUMBER.match(text):
        return None
    value = float(text)
    return int(value) if value.is_integer() and abs(value) < 2**53 else value


def job_readings(snapshot: Snapshot, assignment: Assignment | None) -> list[Reading]:
    """(job id as a number, labels) per job on each entity, in snapshot order."""
    if not assignment:
        return []
    readings: list[Reading] = []
    names = snapshot.column(_NAME)
    for i, (entity, sets) in enumerate(zip(entities_of(snapshot), assignment, strict=True)):
        jobs = [dict(pairs).get("hpc_job") for pairs in sets]
        if not any(jobs):
            continue
        instance = snapshot.instances.get(snapshot.entity_ids[i]) if snapshot.instances else None
        name = str(names[i] or "")
        base = {
            "ordinal": str(entity.gpu),
            "minor_number": entity.name.removeprefix("nvidia"),
            "uuid": entity.mig_uuid or entity.uuid,
            "name": f"{name} MIG {instance.profile}" if instance is not None else name,
            "GPU_I_ID": "" if entity.instance is None else str(entity.instance),
        }
        for job in dict.fromkeys(j for j in jobs if j):
            value = _as_number(job)
            if value is not None:
                readings.append((value, {**base, "jobid": job, "userid": ""}))
    return readings


def jobstats_metrics(current: Callable[[], tuple[Snapshot, Assignment | None]]) -> tuple[SelfMetric, ...]:
    """The job-id gauge, read from the cycle's snapshot and attribution map."""

    def job_ids() -> Iterable[Reading]:
        return job_readings(*current())

    return (
        SelfMetric(JOB_ID, False, "", "JobId number of a job currently using this GPU as reported by Slurm", job_ids),
    )
