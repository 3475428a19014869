"""Floor 4 (beside attribution): the GPU simulator (SKUs, identities, profiles, workloads, MIG, physics) that
drives an engine."""

from typing import TYPE_CHECKING

from otel_fakegpu import lazy_exports

if TYPE_CHECKING:  # the names load with their module, on first use (lazy_exports)
    from otel_fakegpu.sim.clock import ScenarioClock, parse_duration
    from otel_fakegpu.sim.control import SimulatorControl
    from otel_fakegpu.sim.gpus import SimulatedGpu
    from otel_fakegpu.sim.identity import DRIVER_VERSION, GpuIdentity, make_identity
    from otel_fakegpu.sim.load import EngineLoad
    from otel_fakegpu.sim.mig import MigError, MigInstance, MigLayout, MigProfile, parse_mig_spec, resolve_mig
    from otel_fakegpu.sim.physics import GpuConditions, GpuPhysics
    from otel_fakegpu.sim.profiles import PROFILE_NAMES, Demand, Profile, make_profile
    from otel_fakegpu.sim.scenario import Scenario, ScenarioError, ScheduledEvent
    from otel_fakegpu.sim.scenario_file import load_scenario
    from otel_fakegpu.sim.scenario_reload import ScenarioReloader
    from otel_fakegpu.sim.simulator import FleetSpec, Simulator
    from otel_fakegpu.sim.sku_presets import DEFAULT_SKU, SKUS, find_sku
    from otel_fakegpu.sim.sku_table import format_gpu_models
    from otel_fakegpu.sim.skus import FanCurve, GpuSku
    from otel_fakegpu.sim.workloads import SHAPE_NAMES, SHAPES, MigRef, Workload, WorkloadError, make_shape

__all__ = [
    "DEFAULT_SKU",
    "DRIVER_VERSION",
    "PROFILE_NAMES",
    "SHAPES",
    "SHAPE_NAMES",
    "SKUS",
    "Demand",
    "EngineLoad",
    "FanCurve",
    "FleetSpec",
    "GpuConditions",
    "GpuIdentity",
    "GpuPhysics",
    "GpuSku",
    "MigError",
    "MigInstance",
    "MigLayout",
    "MigProfile",
    "MigRef",
    "Profile",
    "Scenario",
    "ScenarioClock",
    "ScenarioError",
    "ScenarioReloader",
    "ScheduledEvent",
    "SimulatedGpu",
    "Simulator",
    "SimulatorControl",
    "Workload",
    "WorkloadError",
    "find_sku",
    "format_gpu_models",
    "load_scenario",
    "make_identity",
    "make_profile",
    "make_shape",
    "parse_duration",
    "parse_mig_spec",
    "resolve_mig",
]

if not TYPE_CHECKING:  # mypy sees the imports above, and no __getattr__ that would accept any name
    __getattr__ = lazy_exports(
        __name__,
        {
            "clock": ("ScenarioClock", "parse_duration"),
            "control": ("SimulatorControl",),
            "gpus": ("SimulatedGpu",),
            "identity": ("DRIVER_VERSION", "GpuIdentity", "make_identity"),
            "load": ("EngineLoad",),
            "mig": ("MigError", "MigInstance", "MigLayout", "MigProfile", "parse_mig_spec", "resolve_mig"),
            "physics": ("GpuConditions", "GpuPhysics"),
            "profiles": ("PROFILE_NAMES", "Demand", "Profile", "make_profile"),
            "scenario": ("Scenario", "ScenarioError", "ScheduledEvent"),
            "scenario_file": ("load_scenario",),
            "scenario_reload": ("ScenarioReloader",),
            "simulator": ("FleetSpec", "Simulator"),
            "sku_presets": ("DEFAULT_SKU", "SKUS", "find_sku"),
            "sku_table": ("format_gpu_models",),
            "skus": ("FanCurve", "GpuSku"),
            "workloads": ("SHAPE_NAMES", "SHAPES", "MigRef", "Workload", "WorkloadError", "make_shape"),
        },
    )
