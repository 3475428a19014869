"""The bounds on what an attribution source may hand the exporter (docs/security.md lists them).

Each workload on a GPU repeats every one of that GPU's series, so an input with thousands of jobs on one GPU
would turn a few kilobytes into millions of series and gigabytes of memory. A source's answer past a bound is
refused whole, as a failed fetch: the last good map stays in use and /health's ``attribution`` says why.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable

from otel_fakegpu.attribution.model import Claim
from otel_fakegpu.attribution.source import SourceError
from otel_fakegpu.config.values import MAX_NAME_CHARS, clip

MAX_POD_LIST_BYTES = 4 << 20  # about 20,000 pods of koordinator's list; a node runs a few hundred
MAX_JOB_FILE_BYTES = 64 << 10  # one GPU's HPC job ids
MAX_JOB_DIR_BYTES = 4 << 20  # all of them together
MAX_JOB_FILES = 4096  # GPU and MIG instance files read from the HPC directory
MAX_PODS_FILE_BYTES = 4 << 20  # the fake kubelet's pods file
MAX_WORKLOADS_PER_DEVICE = 64  # distinct workloads on one device (time-slicing allows 48 clients)
MAX_CLAIMS = 65_536  # workload-device pairs in one answer


def check_name(value: str, what: str) -> str:
    """``value`` when it is a usable label value: not longer than MAX_NAME_CHARS; ValueError otherwise."""
    if len(value) > MAX_NAME_CHARS:
        raise ValueError(f"{what} {clip(value)!r} is longer than {MAX_NAME_CHARS} characters")
    return value


def check_claims(claims: Iterable[Claim], source: str) -> None:
    """SourceError when the answer holds more than MAX_CLAIMS pairs or more than MAX_WORKLOADS_PER_DEVICE
    distinct workloads on one device."""
    distinct = set(claims)
    if len(distinct) > MAX_CLAIMS:
        raise SourceError(f"{source}: {len(distinct)} workload-device pairs; at most {MAX_CLAIMS} are accepted")
    if not distinct:
        return
    device, count = Counter(claim.device for claim in distinct).most_common(1)[0]
    if count > MAX_WORKLOADS_PER_DEVICE:
        named = next(f"{key} {value}" for key, value in device.__dict__.items() if value is not None)
        raise SourceError(
            f"{source}: {count} workloads on {named}; at most {MAX_WORKLOADS_PER_DEVICE} per device are accepted"
        )
