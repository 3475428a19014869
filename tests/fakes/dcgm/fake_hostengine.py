"""The state of a fake nv-hostengine, for tests only: the real one needs DCGM and an NVIDIA GPU, neither of
which this machine has. The fake dcgm_* modules beside this file (same names and call signatures as DCGM's
testing/python3 bindings) all act on this one state and record every call in ``CALLS``.

A subprocess test controls it through files named by environment variables: ``FAKE_DCGM_CONTROL`` (a file
holding ``down`` makes every call fail as a vanished hostengine would; when it goes back up, the
hostengine has "restarted": old handles are invalid and fake entities are gone) and ``FAKE_DCGM_GPUS``
(how many real GPUs to pretend, default 2).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any

CALLS: list[tuple[Any, ...]] = []

# Values of the pretended real GPUs: (DCGM type char, value); {gpu} is replaced by the GPU id.
DEFAULT_VALUES: dict[int, tuple[str, Any]] = {
    1: ("s", "550.54.15"),
    50: ("s", "NVIDIA H100 80GB HBM3"),
    54: ("s", "GPU-fake-{gpu}"),
    55: ("i", "{gpu}"),
    57: ("s", "00000000:1{gpu}:00.0"),
    100: ("i", 1980),
    150: ("i", "4{gpu}"),
    155: ("d", 123.5),
    156: ("i", 5_000_000),
    203: ("i", 42),
    252: ("i", 1024),
}


@dataclass
class HostEngine:
    gpus: list[int] = field(default_factory=lambda: [0, 1])
    fakes: list[int] = field(default_factory=list)
    others: dict[int, list[int]] = field(default_factory=dict)  # fake entities of other groups (switch 3, link 6)
    parents: dict[tuple[int, int], tuple[int, int]] = field(default_factory=dict)  # (group, id) -> parent's
    instances: list[tuple[int, int]] = field(default_factory=list)  # (parent GPU, GPU_I entity id)
    instance_info: dict[int, tuple[int, int]] = field(default_factory=dict)  # GPU_I entity -> (GI id, slices)
    values: dict[tuple[int, int, int], tuple[str, Any, int]] = field(default_factory=dict)  # (group, id, field)
    history: list[tuple[int, int, int, str, Any, int]] = field(default_factory=list)  # every stored sample
    group_entities: dict[int, list[tuple[int, int]]] = field(default_factory=dict)
    field_group_fields: dict[int, tuple[int, ...]] = field(default_factory=dict)
    field_group_names: set[str] = field(default_factory=set)
    epoch: int = 0
    handles: int = 0
    groups: int = 0
    down: bool = False
    was_down: bool = False
    drop_once: bool = False  # the next call fails as a dropped connection would; the hostengine keeps running
    library_missing: bool = False
    undefined_fields: set[int] = field(default_factory=set)  # fields this DCGM does not define (an older release)


STATE = HostEngine()


def reset(gpus: tuple[int, ...] = (0, 1), with_defaults: bool = True) -> HostEngine:
    """A fresh hostengine with ``gpus`` (and the default values on each when ``with_defaults``)."""
    global STATE
    STATE = HostEngine(gpus=list(gpus))
    CALLS.clear()
    if with_defaults:
        for gpu in gpus:
            for field_id, (kind, value) in DEFAULT_VALUES.items():
                text = value.replace("{gpu}", str(gpu)) if isinstance(value, str) else value
                STATE.values[(1, gpu, field_id)] = (kind, int(text) if kind == "i" else text, 1_000_000)
    return STATE


def store(group: int, entity: int, field_id: int, kind: str, value: Any, ts: int) -> None:
    """Set the latest value and keep it as a sample, as the cache manager does for a watched field."""
    STATE.values[(group, entity, field_id)] = (kind, value, ts)
    STATE.history.append((group, entity, field_id, kind, value, ts))


def _from_env() -> None:
    count = int(os.environ.get("FAKE_DCGM_GPUS", "2"))
    reset(tuple(range(count)))


def is_down() -> bool:
    control = os.environ.get("FAKE_DCGM_CONTROL")
    down = STATE.down
    if control and os.path.exists(control):
        with open(control) as f:
            down = f.read().strip() == "down"
    return down


def check(handle: Any = None) -> None:
    """Fail as DCGM does when the hostengine is gone or the handle is from before its restart."""
    import dcgm_structs

    if STATE.drop_once:
        STATE.drop_once = False
        raise dcgm_structs.DCGMError_ConnectionNotValid()
    if is_down():
        STATE.was_down = True
        raise dcgm_structs.DCGMError_ConnectionNotValid()
    if STATE.was_down:  # back up: a restarted hostengine knows nothing of before
        STATE.was_down = False
        STATE.epoch += 1
        STATE.fakes, STATE.others, STATE.parents = [], {}, {}
        STATE.values = {k: v for k, v in STATE.values.items() if k[0] == 1 and k[1] in STATE.gpus}
        STATE.history = [h for h in STATE.history if h[0] == 1 and h[1] in STATE.gpus]
        STATE.group_entities, STATE.field_group_fields, STATE.field_group_names = {}, {}, set()
    if handle is not None and handle.value[0] != STATE.epoch:
        raise dcgm_structs.DCGMError_ConnectionNotValid()


if "FAKE_DCGM_GPUS" in os.environ or "FAKE_DCGM_CONTROL" in os.environ:
    _from_env()
