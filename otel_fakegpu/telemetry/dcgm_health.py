"""dcgm-exporter's health pseudo-fields, computed from each cycle's snapshot of the GPUs.

``DCGM_EXP_GPU_HEALTH_STATUS`` (9003): per GPU one series per DCGM health watch, labelled ``health_watch`` and
``health_error_code``, valued as DCGM's health results (0 pass, 10 warn, 20 fail). ``DCGM_EXP_P2P_STATUS`` (9004):
per ordered pair of GPUs one series labelled ``link_status`` and ``peer_gpu``, valued as NVML's P2P status (0 OK).

DCGM decides health from its own watches; here the same verdicts are drawn from the fields the cycle reads: the
last XID (79 fallen off the bus, 95 uncontained ECC), volatile double-bit ECC, row-remap failure or pending, hardware
thermal slowdown, and readings the GPU failed to give (temperature, power), so a faulty or fallen GPU is unhealthy.
"""

from __future__ import annotations

from collections.abc import Iterator

from otel_fakegpu.engine import Snapshot

PASS, WARN, FAIL = 0, 10, 20
HEALTH_WATCHES = ("PCIE", "NVLINK", "PMU", "MCU", "MEM", "SM", "INFOROM", "THERMAL", "POWER", "DRIVER", "ALL")
OK_CODE = "DCGM_FR_OK"
P2P_OK, P2P_UNKNOWN = 0, 6
P2P_NAMES = {0: "OK", 1: "ChipsetNotSupported", 2: "GPUNotSupported", 3: "TopologyNotSupported",
             4: "DisabledByRegKey", 5: "NotSupported", 6: "Unknown"}  # fmt: skip
NVLINK_DOMAIN = 8  # P2P peers: the GPUs of one HGX board

# The fields the verdicts read; the catalog's derived_from of 9003 and 9004 is what the cycle reads for them.
_XID, _CLOCK_EVENTS, _TEMP, _POWER, _DBE_VOL, _REMAP_FAILED, _REMAP_PENDING = 230, 112, 150, 155, 311, 395, 396
_VERDICT_FIELDS = (_XID, _DBE_VOL, _REMAP_FAILED, _REMAP_PENDING, _CLOCK_EVENTS, _TEMP, _POWER)  # a row's order
_HW_THERMAL = 0x40
FALLEN_OFF_BUS_XID = 79
_XID_VERDICTS = {
    79: ("ALL", FAIL, "DCGM_FR_FALLEN_OFF_BUS"),
    95: ("ALL", FAIL, "DCGM_FR_UNCONTAINED_ERROR"),
    48: ("MEM", FAIL, "DCGM_FR_VOLATILE_DBE_DETECTED"),
    74: ("NVLINK", WARN, "DCGM_FR_NVLINK_ERROR_CRITICAL"),
}

Pairs = tuple[tuple[str, str], ...]
Point = tuple[int, Pairs, int]  # (row in the snapshot, extra labels in dcgm-exporter's sorted order, value)
Row = tuple[object, ...]  # one GPU's values of _VERDICT_FIELDS, in that order

# A healthy GPU's labels: shared by every passing watch of every cycle rather than built per point.
_PASS_EXTRAS = tuple((("health_error_code", OK_CODE), ("health_watch", watch)) for watch in HEALTH_WATCHES)


def _all_clear(row: Row) -> bool:
    """True when no watch can fail on this row (most GPUs, most cycles); False sends it through ``_verdicts``."""
    xid, dbe, failed, pending, events, temp, power = row
    return (
        not xid and not dbe and failed != 1 and pending != 1 and temp is not None and power is not None
        and not (isinstance(events, int) and events & _HW_THERMAL)
    )  # fmt: skip


def _verdicts(row: Row) -> dict[str, tuple[int, str]]:
    """The failing watches of one GPU: watch -> (result, DCGM failure reason); absent watches pass."""
    xid, dbe, failed, pending, events, temp, power = row
    found: dict[str, tuple[int, str]] = {}

    def worse(watch: str, result: int, code: str) -> None:
        if result > found.get(watch, (PASS, OK_CODE))[0]:
            found[watch] = (result, code)

    if isinstance(xid, int) and xid > 0:
        worse(*_XID_VERDICTS.get(xid, ("ALL", WARN, "DCGM_FR_XID_ERROR")))
    if isinstance(dbe, int) and dbe > 0:
        worse("MEM", FAIL, "DCGM_FR_VOLATILE_DBE_DETECTED")
    if failed == 1:
        worse("MEM", FAIL, "DCGM_FR_ROW_REMAP_FAILURE")
    if pending == 1:
        worse("MEM", WARN, "DCGM_FR_PENDING_ROW_REMAP")
    if isinstance(events, int) and events & _HW_THERMAL:
        worse("THERMAL", WARN, "DCGM_FR_CLOCK_THROTTLE_THERMAL")
    if temp is None:
        worse("THERMAL", WARN, "DCGM_FR_FIELD_QUERY")
    if power is None:
        worse("POWER", WARN, "DCGM_FR_POWER_UNREADABLE")
    return found


def dcgm_health_points(snapshot: Snapshot) -> Iterator[Point]:
    """DCGM_EXP_GPU_HEALTH_STATUS: every watch of every GPU, passing ones as 0 with DCGM_FR_OK."""
    rows = zip(*(snapshot.column(field_id) for field_id in _VERDICT_FIELDS), strict=True)
    for index, row in enumerate(rows):
        if _all_clear(row):
            for extra in _PASS_EXTRAS:
                yield index, extra, PASS
            continue
        found = _verdicts(row)
        for watch, extra in zip(HEALTH_WATCHES, _PASS_EXTRAS, strict=True):
            verdict = found.get(watch)
            if verdict is None:
                yield index, extra, PASS
            else:
                yield index, (("health_error_code", verdict[1]), ("health_watch", watch)), verdict[0]


def p2p_points(snapshot: Snapshot) -> Iterator[Point]:
    """DCGM_EXP_P2P_STATUS: each GPU towards each other GPU of its board; Unknown where either fell off the bus."""
    ids, xids = snapshot.entity_ids, snapshot.column(_XID)
    for row, _ in enumerate(ids):
        board = range(row - row % NVLINK_DOMAIN, min(len(ids), row - row % NVLINK_DOMAIN + NVLINK_DOMAIN))
        for peer in board:
            if peer == row:
                continue
            fallen = FALLEN_OFF_BUS_XID in (xids[row], xids[peer])
            status = P2P_UNKNOWN if fallen else P2P_OK
            yield row, (("link_status", P2P_NAMES[status]), ("peer_gpu", str(ids[peer]))), status
