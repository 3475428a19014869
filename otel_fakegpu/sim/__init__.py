"""Floor 2: the GPU simulator (SKUs, identities, profiles, physics) that drives an engine."""

from otel_fakegpu.sim.clock import ScenarioClock, parse_duration
from otel_fakegpu.sim.control import SimulatorControl
from otel_fakegpu.sim.identity import DRIVER_VERSION, GpuIdentity, make_identity
from otel_fakegpu.sim.physics import GpuPhysics
from otel_fakegpu.sim.profiles import PROFILE_NAMES, Demand, Profile, make_profile
from otel_fakegpu.sim.scenario import Scenario, ScenarioError, ScheduledEvent
from otel_fakegpu.sim.scenario_file import load_scenario
from otel_fakegpu.sim.simulator import FleetSpec, SimulatedGpu, Simulator
from otel_fakegpu.sim.skus import DEFAULT_SKU, SKUS, GpuSku, find_sku

__all__ = [
    "DEFAULT_SKU",
    "DRIVER_VERSION",
    "PROFILE_NAMES",
    "SKUS",
    "Demand",
    "FleetSpec",
    "GpuIdentity",
    "GpuPhysics",
    "GpuSku",
    "Profile",
    "Scenario",
    "ScenarioClock",
    "ScenarioError",
    "ScheduledEvent",
    "SimulatedGpu",
    "Simulator",
    "SimulatorControl",
    "find_sku",
    "load_scenario",
    "make_identity",
    "make_profile",
    "parse_duration",
]
