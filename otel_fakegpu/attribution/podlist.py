"""koordinator's pod list file as a source (``--pod-list-file``): a JSON array of
``{"name", "namespace", "container", "gpu_list": [device ids]}``, re-read when it changes."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from otel_fakegpu.attribution.devices import parse_device
from otel_fakegpu.attribution.files import Reloading, stamp_of
from otel_fakegpu.attribution.limits import MAX_POD_LIST_BYTES, check_claims, check_name
from otel_fakegpu.attribution.model import Claim, WorkloadIdentity
from otel_fakegpu.attribution.source import Claims, Source
from otel_fakegpu.config.files import read_config_text

DEFAULT_POD_LIST = "/var/lib/kubelet/pod-resources/podlist.json"
_TEXT_KEYS = ("name", "namespace", "container")


def parse_pod_list(path: Path) -> Claims:
    """Claims of one file; ValueError ``FILE[:LINE]: reason`` for anything malformed or past a bound
    (attribution.limits), SourceError for too many workloads on a device."""
    text = read_config_text(path, MAX_POD_LIST_BYTES, "pod list")  # a ConfigError is a ValueError
    try:
        data: Any = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ValueError(f"{path}:{exc.lineno}: {exc.msg}") from None
    except RecursionError:  # json's parser recurses per level; a pod list nests three deep
        raise ValueError(f"{path}: nested too deeply") from None
    if not isinstance(data, list):
        raise ValueError(f"{path}: expected a JSON array of pods")
    claims: list[Claim] = []
    for number, entry in enumerate(data, 1):
        where = f"{path}: entry {number}"
        if not isinstance(entry, dict):
            raise ValueError(f"{where}: expected an object")
        for key in _TEXT_KEYS:
            if not isinstance(entry.get(key), str):
                raise ValueError(f"{where}: {key!r} must be a string")
            check_name(entry[key], f"{where}: {key}")
        gpus = entry.get("gpu_list")
        if not isinstance(gpus, list) or not all(isinstance(g, str | int) and not isinstance(g, bool) for g in gpus):
            raise ValueError(f"{where}: 'gpu_list' must be a list of device ids")
        for device_id in gpus:
            ref, vgpu = parse_device(check_name(str(device_id), f"{where}: device id"), None)
            if ref is not None:
                claims.append(
                    Claim(ref, WorkloadIdentity(entry["name"], entry["namespace"], entry["container"], vgpu=vgpu))
                )
    check_claims(claims, str(path))
    return tuple(claims)


class PodListSource(Source):
    """Device ids may be GPU UUIDs, ``nvidiaN``, minor numbers, ``MIG-<uuid>``, with ``::N`` replicas."""

    name = "pod-list-file"

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._file = Reloading(lambda: stamp_of([str(self.path)]), lambda: parse_pod_list(self.path))

    def fetch(self, timeout_s: float) -> Claims:
        return self._file.get()
