"""The DCGM engine: reads GPUs from an nv-hostengine through pydcgm, or (``--inject``) creates the simulated
GPUs as fake entities inside it and drives them through DCGM's injection API, so every DCGM client on the
host sees the same fake GPUs. Connects as dcgm-exporter does: remote HOST:PORT or Unix socket, else embedded."""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable, Iterable, Sequence
from typing import Any

from otel_fakegpu.engine.base import EngineError
from otel_fakegpu.engine.connected import ConnectedEngine, EngineUnavailable
from otel_fakegpu.engine.dcgm_entities import FakeEntities, gpu_request
from otel_fakegpu.engine.dcgm_loader import DcgmModules
from otel_fakegpu.engine.dcgm_mig import FoundInstance, discover_instances, exported_column
from otel_fakegpu.engine.dcgm_samples import read_samples_since
from otel_fakegpu.engine.dcgm_values import inject_struct, read_value
from otel_fakegpu.engine.embedded import INSTANCE_ENTITY_BASE
from otel_fakegpu.engine.entities import ENTITY_GROUPS
from otel_fakegpu.engine.selection import MAX_INJECTED_GPUS, EngineSettings
from otel_fakegpu.engine.snapshot import GpuInstanceEntity, Snapshot
from otel_fakegpu.fields import Value

log = logging.getLogger(__name__)

CONNECT_TIMEOUT_MS = 5000


class DcgmEngine(ConnectedEngine):
    """One group of the selected GPUs and one field group per field set, watched at the collect interval; one
    ``dcgmEntitiesGetLatestValues`` per read, plus ``dcgmGetValuesSince_v2`` for the event fields the window
    counts need. With injection the seam's entity ids are 0..n-1, mapped to the fake entities' DCGM ids."""

    kind = "dcgm"

    def __init__(
        self,
        modules: DcgmModules,
        settings: EngineSettings,
        update_interval_s: float,
        clock: Callable[[], float] = time.monotonic,
        wall_clock: Callable[[], float] = time.time,
    ) -> None:
        super().__init__((modules.structs.DCGMError,), clock)
        self._m = modules
        self._settings = settings
        self._update_us = max(1, int(update_interval_s * 1e6))
        self._wall = wall_clock
        self._handle: Any = None
        self._group: Any = None
        self._field_groups: dict[tuple[int, ...], Any] = {}
        self._sample_group: Any = None
        self._keep_age_s = 60.0
        self._sample_fields: tuple[int, ...] = ()
        self._gpu_ids: list[int] = []  # DCGM GPU ids exported whole, in the seam's order
        self._instances: list[FoundInstance] = []  # MIG GPU instances exported in their parent's place
        self._exported: list[tuple[bool, int]] = []  # (is a GPU instance, DCGM id), in the seam's order
        self._read_gpus: list[int] = []  # GPUs read: the exported ones and the MIG instances' parents
        self._fakes_wanted = 0
        self._names = 0  # DCGM objects created, for unique names
        self._latest: dict[tuple[int, int], Value | None] = {}  # injection: replayed after a reconnect
        self._entities = FakeEntities()  # the simulator's NVSwitches and links (injection only)
        self._latest_entities: dict[tuple[str, int, int], Value | None] = {}
        if settings.inject and modules.agent_internal is None:
            raise EngineUnavailable("--inject: DCGM's injection modules were not loaded")
        try:
            modules.structs._dcgmInit()
            modules.agent.dcgmInit()
        except modules.structs.DCGMError as exc:
            raise EngineUnavailable(f"--engine dcgm: libdcgm cannot be loaded ({exc}); install DCGM") from None

    # -- connection -------------------------------------------------------------------------------------
    def _connect(self) -> None:
        structs, agent = self._m.structs, self._m.agent
        remote = self._settings.remote
        if remote is None:
            self._handle = agent.dcgmStartEmbedded(structs.DCGM_OPERATION_MODE_AUTO)
        else:
            params = structs.c_dcgmConnectV2Params_v2()
            params.version = structs.c_dcgmConnectV2Params_version2
            params.persistAfterDisconnect = 0  # the hostengine drops our groups and watches when we go
            params.timeoutMs = CONNECT_TIMEOUT_MS
            params.addressIsUnixSocket = 1 if self._settings.remote_is_socket else 0
            self._handle = agent.dcgmConnect_v2(remote, params)
        if self._settings.inject:
            self._ensure_fakes()
        else:
            self._discover()
        self._group = agent.dcgmGroupCreate(self._handle, structs.DCGM_GROUP_EMPTY, f"otel-fakegpu-{os.getpid()}")
        for group in ENTITY_GROUPS:
            self._entities.create_missing(self._m, self._handle, group)
        for gpu_id in self._read_gpus:
            agent.dcgmGroupAddEntity(self._handle, self._group, self._m.fields.DCGM_FE_GPU, gpu_id)
        for instance in self._instances:
            agent.dcgmGroupAddEntity(self._handle, self._group, self._m.fields.DCGM_FE_GPU_I, instance.dcgm_id)
        for group, _, dcgm_id in self._entities.pairs():  # a new connection has a new, empty group
            agent.dcgmGroupAddEntity(self._handle, self._group, self._entity_kind(group), dcgm_id)
        self._field_groups, self._sample_group = {}, None
        # Replay the state, not the events: a replayed XID would count again in the window.
        replay = [(key, value) for key, value in self._latest.items() if key[1] not in self._sample_fields]
        if replay:
            self._push(replay, self._wall())
        if self._latest_entities:
            self._push_entities(list(self._latest_entities.items()), self._wall())

    def _discover(self) -> None:
        """The GPUs and GPU instances ``--devices`` selects; a MIG-enabled GPU is read as its instances."""
        devices = self._settings.devices
        supported = list(self._m.agent.dcgmGetAllSupportedDevices(self._handle))
        found = [i for i in discover_instances(self._m, self._handle, devices) if i.parent in supported]
        exported: list[tuple[bool, int]] = []
        for gpu_id in supported:
            children = [i for i in found if i.parent == gpu_id]
            if children:
                exported.extend((True, i.dcgm_id) for i in children)
            elif devices.wants_gpu(gpu_id):
                exported.append((False, gpu_id))
        self._instances = [i for i in found if (True, i.dcgm_id) in exported]
        self._gpu_ids = [dcgm_id for is_instance, dcgm_id in exported if not is_instance]
        self._exported = exported
        parents = dict.fromkeys(i.parent for i in self._instances)
        self._read_gpus = [g for g in supported if g in parents or (False, g) in exported]

    def _ensure_fakes(self) -> None:
        """Create the fake GPUs, unless the hostengine still holds the ones created before."""
        if self._gpu_ids and set(self._gpu_ids) <= set(self._m.agent.dcgmGetAllDevices(self._handle)):
            return
        self._gpu_ids = self._create_fakes(self._fakes_wanted) if self._fakes_wanted else []
        self._read_gpus, self._exported = list(self._gpu_ids), [(False, g) for g in self._gpu_ids]
        self._entities.forget()  # a new hostengine: its switches and links are to be made again too

    def _create_fakes(self, count: int) -> list[int]:
        assert self._m.agent_internal is not None  # checked in __init__
        request = gpu_request(self._m.fields, self._m.structs_internal, count)
        created = self._m.agent_internal.dcgmCreateFakeEntities(self._handle, request)
        return [created.entityList[i].entity.entityId for i in range(created.numToCreate)]

    def _disconnect(self) -> None:
        handle, self._handle, self._group = self._handle, None, None
        self._field_groups, self._sample_group = {}, None
        if handle is None:
            return
        if self._settings.remote is None:
            self._m.agent.dcgmStopEmbedded(handle)
        else:
            self._m.agent.dcgmDisconnect(handle)

    def _describe(self) -> str:
        where = self._settings.remote or "embedded hostengine"
        fake = " fake (injected)" if self._settings.inject else ""
        mig = f", {len(self._instances)} MIG GPU instances" if self._instances else ""
        return f"{len(self._gpu_ids)}{fake} GPUs{mig} on {where}"

    # -- the seam -------------------------------------------------------------------------------------
    def entity_ids(self) -> tuple[int, ...]:
        if self._settings.inject:
            return tuple(range(self._fakes_wanted))
        return tuple(INSTANCE_ENTITY_BASE + i if is_instance else i for is_instance, i in self._exported)

    def watch_samples(self, field_ids: Sequence[int], max_keep_age_s: float) -> None:
        if max_keep_age_s <= 0:
            raise EngineError(f"cannot keep samples for {max_keep_age_s} s")
        with self._lock:
            self._sample_fields = tuple(dict.fromkeys((*self._sample_fields, *field_ids)))
            self._keep_age_s = max(self._keep_age_s, max_keep_age_s)
            self._field_groups, self._sample_group = {}, None  # watch again with the new keep age

    def _read(self, field_ids: Sequence[int], samples_after: int | None) -> Snapshot:
        agent, gpu_entity, instance_entity = self._m.agent, self._m.fields.DCGM_FE_GPU, self._m.fields.DCGM_FE_GPU_I
        read_ids = tuple(dict.fromkeys(field_ids))
        if read_ids not in self._field_groups:
            self._field_groups[read_ids] = self._watch(read_ids)
        pair, others = self._m.structs.c_dcgmGroupEntityPair_t, self._entities.pairs()
        pairs = [pair(gpu_entity, gpu_id) for gpu_id in self._read_gpus]
        pairs += [pair(instance_entity, instance.dcgm_id) for instance in self._instances]
        pairs += [pair(self._entity_kind(group), dcgm_id) for group, _, dcgm_id in others]
        values = agent.dcgmEntitiesGetLatestValues(self._handle, pairs, list(read_ids), 0) if pairs else []
        read: dict[tuple[int, int, int], Value | None] = {}
        other_values: dict[tuple[int, int, int], Value | None] = {}
        for fv in values:
            key = (int(fv.entityGroupId), int(fv.entityId), int(fv.fieldId))
            (read if key[0] in (gpu_entity, instance_entity) else other_values)[key] = read_value(fv)
        parent_of = {i.dcgm_id: i.parent for i in self._instances}
        kinds = (gpu_entity, instance_entity)
        frozen = {fid: exported_column(read, fid, self._exported, parent_of, kinds) for fid in read_ids}
        # The seam's ids: DCGM's GPU ids, or 0..n-1 for injected GPUs whatever ids DCGM gave them.
        entity_ids = tuple(range(len(self._gpu_ids))) if self._settings.inject else self.entity_ids()
        instances = {INSTANCE_ENTITY_BASE + i.dcgm_id: GpuInstanceEntity(i.parent, i.instance_id, i.profile)
                     for i in self._instances}  # fmt: skip
        groups = self._entities.snapshots(read_ids, other_values, self._entity_kind, self._wall())
        if samples_after is None or not self._sample_fields:
            return Snapshot.build(entity_ids, frozen, self._wall(), instances=instances).with_groups(groups)
        if self._sample_group is None:
            self._sample_group = self._watch(self._sample_fields)
        seam_of = range(len(self._gpu_ids)) if self._settings.inject else self._read_gpus
        entity_of = dict(zip(self._read_gpus, seam_of, strict=True))
        samples, cursor = read_samples_since(
            agent, self._handle, self._group, self._sample_group, samples_after, entity_of, gpu_entity
        )
        every_field = {fid: samples.get(fid, ()) for fid in self._sample_fields}
        snapshot = Snapshot.build(entity_ids, frozen, self._wall(), every_field, cursor, instances)
        return snapshot.with_groups(groups)

    def _watch(self, field_ids: tuple[int, ...]) -> Any:
        agent = self._m.agent
        # Field-group names are unique per hostengine: this process, this connection, this field group.
        self._names += 1
        name = f"otel-fakegpu-{os.getpid()}-{self._names}"
        field_group = agent.dcgmFieldGroupCreate(self._handle, list(field_ids), name)
        agent.dcgmWatchFields(self._handle, self._group, field_group, self._update_us, self._keep_age_s, 0)
        if not self._settings.inject:
            agent.dcgmUpdateAllFields(self._handle, 1)  # the first read already has values
        return field_group

    def create_gpus(self, count: int) -> tuple[int, ...]:
        if not self._settings.inject:
            raise EngineError("the dcgm engine reads real GPUs; --inject creates simulated ones")
        if count < 0 or self._fakes_wanted + count > MAX_INJECTED_GPUS:
            raise EngineError(f"cannot create {count} fake GPUs (a hostengine holds at most {MAX_INJECTED_GPUS})")
        with self._lock:
            first = self._fakes_wanted
            self._fakes_wanted += count
            if self._connected:
                self._call("create fake GPUs", lambda: self._add_fakes(count))
        self.connect()  # a hostengine that is not there yet gets the GPUs when it comes
        return tuple(range(first, first + count))

    def _add_fakes(self, count: int) -> None:
        new_ids = self._create_fakes(count)
        for gpu_id in new_ids:
            self._m.agent.dcgmGroupAddEntity(self._handle, self._group, self._m.fields.DCGM_FE_GPU, gpu_id)
        self._gpu_ids.extend(new_ids)
        self._read_gpus, self._exported = list(self._gpu_ids), [(False, g) for g in self._gpu_ids]

    def inject(self, updates: Iterable[tuple[int, int, Value | None]], timestamp: float) -> None:
        """Inject into the hostengine; while it is away the values are kept and replayed on reconnect."""
        if not self._settings.inject:
            raise EngineError("the dcgm engine injects only with --inject")
        batch = [((entity_id, field_id), value) for entity_id, field_id, value in updates]
        with self._lock:
            for entity_id, _ in (key for key, _ in batch):
                if not 0 <= entity_id < self._fakes_wanted:
                    raise EngineError(f"no GPU entity {entity_id}")
            self._latest.update(batch)
            try:
                self._call("inject", lambda: self._push(batch, timestamp))
            except EngineError as exc:
                log.debug("injection kept for replay: %s", exc)

    def _push(self, batch: Sequence[tuple[tuple[int, int], Value | None]], timestamp: float) -> None:
        internal, structs_internal = self._m.agent_internal, self._m.structs_internal
        assert internal is not None and structs_internal is not None
        ts_us, gpu_entity = int(timestamp * 1e6), self._m.fields.DCGM_FE_GPU
        for (entity_id, field_id), value in batch:
            fv = inject_struct(structs_internal, field_id, value, ts_us)
            internal.dcgmInjectEntityFieldValue(self._handle, gpu_entity, self._gpu_ids[entity_id], fv)

    # -- the simulator's NVSwitches and links (injection only) -------------------------------------------
    def _entity_kind(self, group: str) -> int:
        return int(self._m.fields.DCGM_FE_SWITCH if group == "switch" else self._m.fields.DCGM_FE_LINK)

    def create_entities(self, group: str, entity_ids: Sequence[int]) -> tuple[int, ...]:
        if not self._settings.inject:
            return ()  # real NVSwitches are not read from a hostengine yet
        if group not in ENTITY_GROUPS:
            raise EngineError(f"unknown entity group {group!r}")
        with self._lock:
            self._entities.wanted[group].extend(entity_ids)
            if self._connected:
                self._call(f"create fake {group}es", lambda: self._add_entities(group))
        return tuple(entity_ids)

    def _add_entities(self, group: str) -> None:
        for dcgm_id in self._entities.create_missing(self._m, self._handle, group):
            self._m.agent.dcgmGroupAddEntity(self._handle, self._group, self._entity_kind(group), dcgm_id)
        self._field_groups, self._sample_group = {}, None  # watch again, over the new entities too

    def inject_entities(self, group: str, updates: Iterable[tuple[int, int, Value | None]], timestamp: float) -> None:
        if not self._settings.inject:
            raise EngineError("the dcgm engine injects only with --inject")
        batch = [((group, entity_id, field_id), value) for entity_id, field_id, value in updates]
        with self._lock:
            self._latest_entities.update(batch)
            try:
                self._call("inject", lambda: self._push_entities(batch, timestamp))
            except EngineError as exc:
                log.debug("injection kept for replay: %s", exc)

    def _push_entities(self, batch: Sequence[tuple[tuple[str, int, int], Value | None]], timestamp: float) -> None:
        self._entities.inject(self._m, self._handle, batch, timestamp, self._entity_kind)
