"""Scenario files: YAML with keys seed, time_scale, gpus, workloads, events (and hosts, kept for fleets).

Every mistake is one ``FILE:LINE: reason`` (ScenarioError): unknown keys, wrong types, GPUs out of range,
unknown SKUs, shapes or events.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from otel_fakegpu.config.files import FileReadError, read_config_text
from otel_fakegpu.sim.clock import parse_duration
from otel_fakegpu.sim.events import EventError, parse_event
from otel_fakegpu.sim.host_events import is_host_event, parse_host_event
from otel_fakegpu.sim.mig import MigError, MigLayout, build_layout, parse_mig_spec
from otel_fakegpu.sim.profiles import PROFILE_NAMES
from otel_fakegpu.sim.scenario import GpuGroup, Scenario, ScenarioError, ScheduledEvent
from otel_fakegpu.sim.scenario_yaml import LinedData, Path_, YamlError, load_lined
from otel_fakegpu.sim.sku_presets import find_sku
from otel_fakegpu.sim.skus import GpuSku
from otel_fakegpu.sim.workloads import SHAPE_NAMES, MigRef, Workload, WorkloadError

MAX_GPUS = 65536
MAX_TIME_SCALE = 1_000_000.0
# The YAML is parsed whole before its values are checked, a few seconds per MiB: the bound keeps refusing a
# hostile file (or a start and every SIGHUP) cheap. The shipped scenarios are about 1 KB; ~3,000 events fit.
MAX_SCENARIO_BYTES = 128 << 10
TOP_KEYS = ("seed", "time_scale", "gpus", "workloads", "events", "hosts")
GROUP_KEYS = ("count", "model", "mig", "profile")
WORKLOAD_KEYS = (
    "pod", "namespace", "container", "gpus", "instances", "shape", "start", "stop", "intensity", "fb_mib", "job_id",
    "pod_uid",
)  # fmt: skip


class _Reader:
    """Validates the parsed document, turning each problem into FILE:LINE: reason."""

    def __init__(self, source: str | None, doc: LinedData) -> None:
        self.source = source  # None: a request body, no file to name
        self.doc = doc

    def fail(self, path: Path_, reason: str) -> ScenarioError:
        if self.source is None:
            return ScenarioError(reason)
        return ScenarioError(f"{self.source}:{self.doc.line(path)}: {reason}")

    def mapping(self, value: object, path: Path_, keys: tuple[str, ...]) -> Mapping[str, Any]:
        if not isinstance(value, dict):
            raise self.fail(path, f"{_name(path)}: expected a mapping, got {_kind(value)}")
        for key in value:
            if key not in keys:
                raise self.fail((*path, key), f"unknown key {key!r} in {_name(path)} (known: {', '.join(keys)})")
        return value

    def items(self, value: object, path: Path_) -> list[Any]:
        if not isinstance(value, list):
            raise self.fail(path, f"{_name(path)}: expected a list, got {_kind(value)}")
        return value

    def integer(self, value: object, path: Path_, low: int, high: int) -> int:
        if type(value) is not int or not low <= value <= high:
            raise self.fail(path, f"{_name(path)}: expected a whole number from {low} to {high}, got {value!r}")
        return value

    def number(self, value: object, path: Path_, low: float, high: float) -> float:
        if type(value) not in (int, float) or not low <= value <= high:  # type: ignore[operator]
            raise self.fail(path, f"{_name(path)}: expected a number from {low:g} to {high:g}, got {value!r}")
        return float(value)  # type: ignore[arg-type]

    def text(self, value: object, path: Path_) -> str:
        if not isinstance(value, str) or not value.strip():
            raise self.fail(path, f"{_name(path)}: expected a non-empty string, got {value!r}")
        return value.strip()

    def duration(self, value: object, path: Path_) -> float:
        if type(value) in (int, float):
            value = str(value)
        if not isinstance(value, str):
            raise self.fail(path, f"{_name(path)}: expected a duration such as 90s, 2m or 2h, got {value!r}")
        try:
            return parse_duration(value)
        except ValueError as exc:
            raise self.fail(path, f"{_name(path)}: {exc}") from None

    def check(self, convert: Callable[[], Any], path: Path_) -> Any:
        try:
            return convert()
        except KeyError as exc:
            raise self.fail(path, str(exc.args[0])) from None


def _name(path: Path_) -> str:
    return ".".join(str(p) if isinstance(p, str) else f"[{p}]" for p in path).replace(".[", "[") or "scenario"


def _kind(value: object) -> str:
    return {dict: "a mapping", list: "a list", type(None): "nothing"}.get(type(value), repr(value))


def _groups(r: _Reader, value: object) -> tuple[GpuGroup, ...]:
    groups = []
    for i, item in enumerate(r.items(value, ("gpus",))):
        path: Path_ = ("gpus", i)
        group = r.mapping(item, path, GROUP_KEYS)
        count = r.integer(group.get("count", 1), (*path, "count"), 1, MAX_GPUS)
        model = r.text(group.get("model", "h100-sxm"), (*path, "model"))
        sku = r.check(lambda model=model: find_sku(model), (*path, "model"))  # type: ignore[misc]
        profile = group.get("profile")
        if profile is not None and r.text(profile, (*path, "profile")).lower() not in PROFILE_NAMES:
            raise r.fail((*path, "profile"), f"unknown profile {profile!r} (known: {', '.join(PROFILE_NAMES)})")
        mig = _mig(r, group["mig"], (*path, "mig"), sku) if group.get("mig") is not None else None
        groups.append(GpuGroup(count, sku, profile.lower() if profile else None, mig))
    if sum(g.count for g in groups) > MAX_GPUS:
        raise r.fail(("gpus",), f"more than {MAX_GPUS} GPUs in all")
    return tuple(groups)


def _mig(r: _Reader, value: object, path: Path_, sku: GpuSku) -> MigLayout:
    """Each GPU's instances: ``1g.10gb*7``, ``3g.40gb+3g.40gb`` or a list of profile names."""
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        value = "+".join(value)
    if not isinstance(value, str) or ":" in value:
        raise r.fail(path, f"{_name(path)}: expected MIG profiles such as '1g.10gb*7' or a list, got {value!r}")
    try:
        names = parse_mig_spec(f"all:{value}")[None]
        return build_layout(sku.key, sku.mig_profiles, names)
    except MigError as exc:
        raise r.fail(path, f"{_name(path)}: {exc}") from None


def _gpu_list(r: _Reader, value: object, path: Path_, gpu_count: int) -> tuple[int, ...]:
    indices = value if isinstance(value, list) else [value]
    if not indices:
        raise r.fail(path, f"{_name(path)}: no GPU given")
    result = tuple(r.integer(v, path if v is value else (*path, i), 0, gpu_count - 1) for i, v in enumerate(indices))
    if len(set(result)) != len(result):
        raise r.fail(path, f"{_name(path)}: a GPU is listed twice")
    return result


def _instances(r: _Reader, value: object, path: Path_, layouts: Mapping[int, MigLayout]) -> tuple[MigRef, ...]:
    """MIG instances as ``{gpu: 0, instance: 7}`` (instance: the GPU_I_ID), checked against the layouts."""
    refs = []
    for i, item in enumerate(r.items(value, path)):
        ref = r.mapping(item, (*path, i), ("gpu", "instance"))
        if "gpu" not in ref or "instance" not in ref:
            raise r.fail((*path, i), f"{_name((*path, i))}: needs gpu and instance")
        gpu = r.integer(ref["gpu"], (*path, i, "gpu"), 0, MAX_GPUS)
        instance = r.integer(ref["instance"], (*path, i, "instance"), 0, 64)
        layout = layouts.get(gpu)
        if layout is None or instance not in {inst.instance_id for inst in layout.instances}:
            raise r.fail((*path, i), f"{_name((*path, i))}: GPU {gpu} has no MIG instance {instance}")
        refs.append(MigRef(gpu, instance))
    return tuple(refs)


def _workload(r: _Reader, item: object, path: Path_, gpu_count: int, layouts: Mapping[int, MigLayout]) -> Workload:
    spec = r.mapping(item, path, WORKLOAD_KEYS)
    if "pod" not in spec or ("gpus" not in spec and "instances" not in spec):
        raise r.fail(path, f"{_name(path)}: needs at least pod and gpus (or MIG instances)")
    pod = r.text(spec["pod"], (*path, "pod"))
    shape = r.text(spec.get("shape", "constant"), (*path, "shape")).lower()
    if shape not in SHAPE_NAMES:
        raise r.fail((*path, "shape"), f"unknown shape {shape!r} (known: {', '.join(SHAPE_NAMES)})")
    start = r.duration(spec.get("start", 0), (*path, "start"))
    stop = r.duration(spec["stop"], (*path, "stop")) if spec.get("stop") is not None else None
    if stop is not None and stop <= start:
        raise r.fail((*path, "stop"), f"{_name(path)}.stop: must come after start")
    try:
        return Workload(
            pod=pod,
            namespace=r.text(spec.get("namespace", "default"), (*path, "namespace")),
            container=r.text(spec.get("container", pod), (*path, "container")),
            gpus=_gpu_list(r, spec["gpus"], (*path, "gpus"), gpu_count) if "gpus" in spec else (),
            instances=_instances(r, spec["instances"], (*path, "instances"), layouts) if "instances" in spec else (),
            shape=shape,
            start_s=start,
            stop_s=stop,
            fb_mib=r.integer(spec["fb_mib"], (*path, "fb_mib"), 0, 1 << 24) if "fb_mib" in spec else None,
            job_id=r.text(spec["job_id"], (*path, "job_id")) if "job_id" in spec else None,
            pod_uid=r.text(spec["pod_uid"], (*path, "pod_uid")) if "pod_uid" in spec else None,
            intensity=r.number(spec["intensity"], (*path, "intensity"), 0.0, 1.0) if "intensity" in spec else 1.0,
        )
    except WorkloadError as exc:
        raise r.fail(path, str(exc)) from None


def _workloads(r: _Reader, value: object, gpu_count: int, layouts: Mapping[int, MigLayout]) -> tuple[Workload, ...]:
    items = enumerate(r.items(value, ("workloads",)))
    plans = [_workload(r, item, ("workloads", i), gpu_count, layouts) for i, item in items]
    if len({p.key for p in plans}) != len(plans):
        raise r.fail(("workloads",), "two workloads share namespace/pod/container")
    return tuple(plans)


def parse_workload(body: object, gpu_count: int, layouts: Mapping[int, MigLayout]) -> Workload:
    """One workload from a request body (the scenario's keys); raises ScenarioError without FILE:LINE."""
    return _workload(_Reader(None, LinedData(body)), body, ("workload",), gpu_count, layouts)


def _events(r: _Reader, value: object, gpu_count: int) -> tuple[ScheduledEvent, ...]:
    events = []
    for i, item in enumerate(r.items(value, ("events",))):
        path: Path_ = ("events", i)
        if not isinstance(item, dict):
            raise r.fail(path, f"events[{i}]: expected a mapping, got {_kind(item)}")
        if "at" in item and "gpu" not in item and is_host_event(item):
            events.append(_host_event(r, item, path))
            continue
        if "at" not in item or "gpu" not in item:
            raise r.fail(path, f"events[{i}]: needs at, gpu and one event (or at and a host event)")
        at = r.duration(item["at"], (*path, "at"))
        body = {k: v for k, v in item.items() if k not in ("at", "gpu")}
        try:
            event = parse_event(body)
        except EventError as exc:
            key = exc.key.split(".")[0] if exc.key else None
            raise r.fail((*path, key) if key else path, f"events[{i}]: {exc}") from None
        for gpu in _gpu_list(r, item["gpu"], (*path, "gpu"), gpu_count):
            events.append(ScheduledEvent(at, gpu, event, r.doc.line(path)))
    return tuple(events)


def _host_event(r: _Reader, item: Mapping[str, Any], path: Path_) -> ScheduledEvent:
    """``{at, reachability|power|fabric|cooling, [delay], [hosts], [rack]}``: for every host, or those named."""
    at = r.duration(item["at"], (*path, "at"))
    hosts = tuple(r.text(h, (*path, "hosts", j)) for j, h in enumerate(r.items(item["hosts"], (*path, "hosts")))) \
        if "hosts" in item else ()  # fmt: skip
    rack = r.text(item["rack"], (*path, "rack")) if "rack" in item else None
    body = {k: v for k, v in item.items() if k not in ("at", "hosts", "rack")}
    try:
        event = parse_host_event(body)
    except EventError as exc:
        key = exc.key if exc.key in body else None
        raise r.fail((*path, key) if key else path, f"{_name(path)}: {exc}") from None
    return ScheduledEvent(at, -1, event, r.doc.line(path), hosts, rack)


def _racks(r: _Reader, value: object) -> tuple[tuple[str, tuple[str, ...]], ...]:
    """``hosts: {racks: {NAME: [host, ...]}}``: the fleet's racks and their hosts, each host in one rack."""
    racks = r.mapping(value, ("hosts",), ("racks",)).get("racks")
    if not isinstance(racks, dict) or not racks:
        raise r.fail(("hosts", "racks"), f"hosts.racks: expected a mapping of rack names to hosts, got {racks!r}")
    result: list[tuple[str, tuple[str, ...]]] = []
    seen: set[str] = set()
    for name in racks:
        path: Path_ = ("hosts", "racks", name)
        members = tuple(r.text(h, (*path, j)) for j, h in enumerate(r.items(racks[name], path)))
        if not members or seen & set(members) or len(set(members)) != len(members):
            raise r.fail(path, f"{_name(path)}: expected host names, each in one rack only")
        seen |= set(members)
        result.append((r.text(name, path), members))
    return tuple(result)


def parse_scenario(text: str, source: str, default_gpu_count: int) -> Scenario:
    """Validate a scenario's text; ``default_gpu_count`` applies when it has no ``gpus`` key."""
    try:
        doc = load_lined(text)
    except YamlError as exc:
        raise ScenarioError(f"{source}:{exc.line or 1}: {exc}") from None
    r = _Reader(source, doc)
    top = r.mapping(doc.data if doc.data is not None else {}, (), TOP_KEYS)
    seed = r.integer(top["seed"], ("seed",), 0, 2**63 - 1) if top.get("seed") is not None else None
    scale = r.number(top.get("time_scale", 1.0), ("time_scale",), 1e-6, MAX_TIME_SCALE)
    groups = _groups(r, top["gpus"]) if top.get("gpus") is not None else ()
    gpu_count = sum(g.count for g in groups) if groups else default_gpu_count
    hosts_value = top.get("hosts")
    racks = _racks(r, hosts_value) if isinstance(hosts_value, dict) else ()
    hosts = tuple(r.items(hosts_value, ("hosts",))) if hosts_value is not None and not racks else ()
    scenario = Scenario(source=source, groups=groups)
    return Scenario(
        source=source,
        seed=seed,
        time_scale=scale,
        groups=groups,
        workloads=_workloads(r, top.get("workloads") or [], gpu_count, scenario.mig_layouts()),
        events=_events(r, top.get("events") or [], gpu_count),
        hosts=hosts,
        racks=racks,
    )


def load_scenario(path: Path, default_gpu_count: int) -> Scenario:
    """Read (at most MAX_SCENARIO_BYTES, UTF-8, a byte-order mark allowed) and validate a scenario file; raises
    ScenarioError."""
    try:
        text = read_config_text(path, MAX_SCENARIO_BYTES, "scenario")
    except FileReadError as exc:
        raise ScenarioError(f"{path}:{exc.line or 1}: {exc.reason}") from None
    return parse_scenario(text, str(path), default_gpu_count)
