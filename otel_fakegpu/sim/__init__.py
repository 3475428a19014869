"""Floor 2: the GPU simulator (SKUs, identities, profiles, physics) that drives an engine."""

from otel_fakegpu.sim.identity import DRIVER_VERSION, GpuIdentity, make_identity
from otel_fakegpu.sim.physics import GpuPhysics
from otel_fakegpu.sim.profiles import PROFILE_NAMES, Demand, Profile, make_profile
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
    "SimulatedGpu",
    "Simulator",
    "find_sku",
    "make_identity",
    "make_profile",
]
