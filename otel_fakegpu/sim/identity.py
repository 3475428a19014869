"""Stable GPU identities: the same host and seed always give the same UUIDs, bus ids and serials."""

from __future__ import annotations

import hashlib
import uuid
from dataclasses import dataclass

from otel_fakegpu.sim.skus import GpuSku

DRIVER_VERSION = "550.54.15"
NVML_VERSION = "12.550.54.15"
BRAND = "NVIDIA"
# Bus numbers of the eight GPUs of an HGX H100 board, so small fleets look like a real node.
_HGX_BUSES = (0x18, 0x2A, 0x3A, 0x5D, 0x9A, 0xAB, 0xBA, 0xDB)
_UUID_NAMESPACE = uuid.UUID("6f1c2a52-5b0e-4c8e-9d55-3f0b7d9c4e21")
_NAMESPACE_BYTES = _UUID_NAMESPACE.bytes


@dataclass(frozen=True)
class GpuIdentity:
    index: int
    uuid: str
    pci_bus_id: str
    minor_number: int
    serial: str
    sku: GpuSku

    @property
    def device(self) -> str:
        return f"nvidia{self.minor_number}"


def make_identity(index: int, sku: GpuSku, host: str, seed: int) -> GpuIdentity:
    """The identity of GPU ``index``: a deterministic function of (host, seed, index)."""
    key = f"{host}/{seed}/{index}"
    # Past one board, each further group of eight gets its own PCI domain: addresses stay unique at 4096.
    domain, slot = divmod(index, len(_HGX_BUSES))
    serial_digits = int.from_bytes(hashlib.sha256(key.encode()).digest()[:8], "big") % 10**13
    return GpuIdentity(
        index=index,
        uuid=f"GPU-{uuid5_text(key)}",
        pci_bus_id=f"{domain:08X}:{_HGX_BUSES[slot]:02X}:00.0",
        minor_number=index,
        serial=f"{serial_digits:013d}",
        sku=sku,
    )


def uuid5_text(name: str) -> str:
    """``str(uuid.uuid5(namespace, name))`` without a UUID object (RFC 9562 name-based, SHA-1): a 4096-GPU start makes
    4096 of them, and the UUID constructor's checks cost 16 ms of it against 7 ms for this."""
    digest = bytearray(hashlib.sha1(_NAMESPACE_BYTES + name.encode()).digest()[:16])
    digest[6] = (digest[6] & 0x0F) | 0x50  # version 5
    digest[8] = (digest[8] & 0x3F) | 0x80  # the RFC's variant
    text = digest.hex()
    return f"{text[:8]}-{text[8:12]}-{text[12:16]}-{text[16:20]}-{text[20:]}"
