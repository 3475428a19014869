"""Older field names a collectors file may use: go-dcgm's legacy lower-case names and the seed prototype's own.

go-dcgm (NVIDIA/go-dcgm, ``pkg/dcgm/const_fields.go``, map ``legacyDCGMFields``; Apache-2.0) resolves the
lower-case names of dcgm-exporter 1.x, which its ``etc/1.x-compatibility-metrics.csv`` still lists; the table below
is that map's lower-case part. Its upper-case legacy spellings (``DCGM_FI_DEV_PERSISTENCE_MODE``,
``DCGM_FI_DEV_NVSWITCH_TEMPERATURE_CURRENT``, ...) are aliases in the catalog instead. As in dcgm-exporter, a series
carries the name as the file wrote it.
"""

from __future__ import annotations

GO_DCGM_LEGACY_NAMES: dict[str, int] = {
    "dcgm_board_limit_violation": 243,
    "dcgm_dec_utilization": 207,
    "dcgm_ecc_dbe_aggregate_total": 313,
    "dcgm_ecc_dbe_volatile_total": 311,
    "dcgm_ecc_sbe_aggregate_total": 312,
    "dcgm_ecc_sbe_volatile_total": 310,
    "dcgm_enc_utilization": 206,
    "dcgm_fb_free": 251,
    "dcgm_fb_used": 252,
    "dcgm_fi_prof_dram_active": 1005,
    "dcgm_fi_prof_gr_engine_active": 1001,
    "dcgm_fi_prof_pcie_rx_bytes": 1010,
    "dcgm_fi_prof_pcie_tx_bytes": 1009,
    "dcgm_fi_prof_pipe_tensor_active": 1004,
    "dcgm_fi_prof_sm_active": 1002,
    "dcgm_fi_prof_sm_occupancy": 1003,
    "dcgm_gpu_temp": 150,
    "dcgm_gpu_utilization": 203,
    "dcgm_low_util_violation": 244,
    "dcgm_mem_copy_utilization": 204,
    "dcgm_memory_clock": 101,
    "dcgm_memory_temp": 140,
    "dcgm_nvlink_bandwidth_total": 449,
    "dcgm_nvlink_data_crc_error_count_total": 419,
    "dcgm_nvlink_flit_crc_error_count_total": 409,
    "dcgm_nvlink_recovery_error_count_total": 439,
    "dcgm_nvlink_replay_error_count_total": 429,
    "dcgm_pcie_replay_counter": 202,
    "dcgm_pcie_rx_throughput": 201,
    "dcgm_pcie_tx_throughput": 200,
    "dcgm_power_usage": 155,
    "dcgm_power_violation": 240,
    "dcgm_reliability_violation": 245,
    "dcgm_retired_pages_dbe": 391,
    "dcgm_retired_pages_pending": 392,
    "dcgm_retired_pages_sbe": 390,
    "dcgm_sm_clock": 100,
    "dcgm_sync_boost_violation": 242,
    "dcgm_thermal_violation": 241,
    "dcgm_total_energy_consumption": 156,
    "dcgm_xid_errors": 230,
}

# The seed prototype (dcgm-fake-gpu-exporter) printed nine lower-case names; seven are go-dcgm's, these two are its own.
PROTOTYPE_NAMES: dict[str, int] = {
    "dcgm_mem_clock": 101,
    "dcgm_fb_total": 250,
}


def legacy_field_id(name: str) -> int | None:
    """The DCGM field id an older name stands for, or None if it is not one."""
    return GO_DCGM_LEGACY_NAMES.get(name, PROTOTYPE_NAMES.get(name))
