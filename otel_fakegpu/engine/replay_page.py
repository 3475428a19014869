"""One captured dcgm-exporter page, read back into what an engine holds: GPU and MIG instance entities with their
identities as recorded, and the value of each field the catalog knows, per entity.

A family goes through the pipeline ("mapped") only where the pipeline would print it exactly as captured: a catalog
field read from GPUs, its HELP and TYPE as the renderer writes them, every series labelled in dcgm-exporter's order
(gpu, UUID, pci_bus_id, device, modelName, on a MIG instance GPU_I_PROFILE and GPU_I_ID, then Hostname) with the
same identity wherever the GPU appears, in the page's GPU order, and a value the renderer prints back to the same
text. Every other family (a field no catalog knows, NVSwitch and link series, extra labels, a value written
differently) is kept as captured, text for text: the page cannot lose what the pipeline could not reproduce.
The capturing exporter's own ``otel_fakegpu_*`` series are left out: the replaying exporter reports its own.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field

from otel_fakegpu.engine.snapshot import GpuInstanceEntity
from otel_fakegpu.fields import CATALOG, ENTITY_GPU, MetricKind, ValueType
from otel_fakegpu.fields.catalog import FieldSpec, UnknownFieldError

SELF_PREFIX = "otel_fakegpu_"
# MIG instance entities: apart from GPU ids, one block of ids per parent GPU.
INSTANCE_BASE, INSTANCE_BLOCK = 1_000_000, 1_000
_GPU_LABELS = ("gpu", "UUID", "pci_bus_id", "device", "modelName")
_MIG_LABELS = ("GPU_I_PROFILE", "GPU_I_ID")
_SAMPLE = re.compile(r"([A-Za-z_:][A-Za-z0-9_:]*)(?:\{(.*)\})? (\S+)\n?$")
_LABEL = re.compile(r'([A-Za-z_][A-Za-z0-9_]*)="((?:[^"\\]|\\.)*)",?')
_IDENTITY_FIELDS = frozenset((50, 54, 55, 57))  # printed as modelName, UUID, device, pci_bus_id
_HEADER = re.compile(r"# HELP (\S+) (.*)\n# TYPE (\S+) (counter|gauge)\n$")

Labels = tuple[tuple[str, str], ...]
# UUID, pci_bus_id, minor, modelName, GPU_I_PROFILE, then the label-type fields (driver version ...) as printed
Identity = tuple[str, str, int, str, str | None, Labels]
Entity = tuple[int, Identity, str | None, GpuInstanceEntity | None]  # entity id, identity, Hostname, MIG instance


@dataclass(frozen=True)
class CapturedFamily:
    """One family of the page as captured: its comment lines and sample lines, and whether it is mapped."""

    name: str
    header: str
    samples: str
    series: int
    mapped: bool


@dataclass
class ParsedPage:
    """A page as entities and values (``values[field id][entity id]``) plus its families in page order."""

    families: list[CapturedFamily] = field(default_factory=list)
    entities: dict[int, Identity] = field(default_factory=dict)  # in page order
    instances: dict[int, GpuInstanceEntity] = field(default_factory=dict)
    values: dict[int, dict[int, int | float | str]] = field(default_factory=dict)
    specs: dict[str, tuple[FieldSpec, MetricKind, str]] = field(default_factory=dict)  # mapped: field, type, help
    hostname: str | None = None
    hostnames: set[str | None] = field(default_factory=set)
    label_names: set[tuple[str, ...]] = field(default_factory=set)  # the label-type fields after Hostname
    labels: dict[str, FieldSpec] = field(default_factory=dict)  # those fields, in label order


def split_families(page: str) -> list[tuple[str, str, int]]:
    """The page as (comment lines, sample lines, sample count): a comment after samples starts the next family."""
    families: list[tuple[str, str, int]] = []
    header: list[str] = []
    samples: list[str] = []
    for line in page.splitlines(keepends=True):
        if line.startswith("#") and samples:
            families.append(("".join(header), "".join(samples), len(samples)))
            header, samples = [], []
        (header if line.startswith("#") else samples).append(line)
    if header or samples:
        families.append(("".join(header), "".join(samples), len(samples)))
    return families


def _unescape(text: str) -> str:
    """A HELP text or label value as it was before the exposition format escaped it."""
    return re.sub(r"\\(.)", lambda m: "\n" if m.group(1) == "n" else m.group(1), text)


def _value(text: str, value_type: ValueType) -> int | float | None:
    """The value the renderer prints back as ``text`` (integers verbatim, doubles with six decimals), else None."""
    try:
        if value_type is ValueType.INT:
            number: int | float = int(text)
            return number if str(number) == text else None
        if value_type is ValueType.DOUBLE:
            number = float(text)
            return number if not math.isnan(number) and f"{number:f}" == text else None
    except ValueError:
        return None
    return None


def _entity(labels: Labels) -> Entity | None:
    """(entity id, identity, Hostname, MIG instance) of a series labelled exactly as the pipeline labels a GPU."""
    names = tuple(k for k, _ in labels)
    values = dict(labels)
    mig = names[5:7] == _MIG_LABELS
    rest = names[7:] if mig else names[5:]
    extras = labels[len(names) - len(rest) + (1 if rest[:1] == ("Hostname",) else 0) :]
    if names[:5] != _GPU_LABELS or len(values) != len(names) or not all(_label_field(k) for k, _ in extras):
        return None
    device, gpu = values["device"], values["gpu"]
    if not (gpu.isdigit() and str(int(gpu)) == gpu and device.startswith("nvidia") and device[6:].isdigit()):
        return None
    minor = int(device[6:])
    if str(minor) != device[6:]:
        return None
    instance = None
    entity_id = int(gpu)
    if mig:
        gi = values["GPU_I_ID"]
        if not (gi.isdigit() and str(int(gi)) == gi and int(gi) < INSTANCE_BLOCK):
            return None
        instance = GpuInstanceEntity(int(gpu), int(gi), values["GPU_I_PROFILE"])
        entity_id = INSTANCE_BASE + int(gpu) * INSTANCE_BLOCK + int(gi)
    identity = (values["UUID"], values["pci_bus_id"], minor, values["modelName"], values.get("GPU_I_PROFILE"), extras)
    return entity_id, identity, values.get("Hostname"), instance


def _label_field(name: str) -> FieldSpec | None:
    """The catalog's label-type field of that name (a label such as DCGM_FI_DRIVER_VERSION), else None."""
    try:
        spec = CATALOG.by_name(name)
    except UnknownFieldError:
        return None
    return spec if spec.kind is MetricKind.LABEL and spec.id not in _IDENTITY_FIELDS else None


def _spec(header: str) -> tuple[FieldSpec, MetricKind, str] | None:
    """The catalog field a family's header names, if the renderer would write that header back unchanged."""
    match = _HEADER.match(header)
    if match is None or match.group(1) != match.group(3):
        return None
    try:
        spec = CATALOG.by_name(match.group(1))
    except UnknownFieldError:
        return None
    if spec.kind is MetricKind.LABEL or spec.is_computed or spec.entity != ENTITY_GPU:
        return None
    return spec, MetricKind(match.group(4)), _unescape(match.group(2))


def _map_family(page: ParsedPage, name: str, header: str, samples: str, seen: dict[str, Entity | None]) -> bool:
    """Adds a family's values to the page's entities; False (and nothing added) when it must be kept as captured."""
    found = _spec(header)
    if found is None or found[1].value != header.rsplit(" ", 1)[1].strip():
        return False
    spec = found[0]
    escaped_help = found[2].replace("\\", "\\\\").replace("\n", "\\n")
    if header != f"# HELP {name} {escaped_help}\n# TYPE {name} {found[1].value}\n":
        return False
    column: dict[int, int | float | str] = {}
    entities, instances, hostnames = dict(page.entities), dict(page.instances), set(page.hostnames)
    label_names = set(page.label_names)
    for line in samples.splitlines():
        match = _SAMPLE.match(line)
        if match is None or match.group(1) != name:
            return False
        label_text = match.group(2) or ""
        if label_text in seen:  # every family repeats each GPU's labels: read them once per page
            entity = seen[label_text]
        else:
            labels = tuple((k, v) for k, v in _LABEL.findall(label_text))
            whole = ",".join(f'{k}="{v}"' for k, v in labels) == label_text  # nothing the pattern skipped
            unescaped = tuple((k, _unescape(v)) for k, v in labels)  # the renderer escapes them again
            entity = seen[label_text] = _entity(unescaped) if whole else None
        value = _value(match.group(3), spec.value_type)
        if entity is None or value is None:
            return False
        entity_id, identity, hostname, instance = entity
        if entities.setdefault(entity_id, identity) != identity or entity_id in column:
            return False
        if instance is not None:
            instances[entity_id] = instance
        hostnames.add(hostname)
        label_names.add(tuple(k for k, _ in identity[5]))
        column[entity_id] = value
    order = [eid for eid in entities if eid in column]
    # The pipeline prints GPUs in one order, one Hostname, the same label-type fields on every series.
    if order != list(column) or len(hostnames) > 1 or len(label_names) > 1:
        return False
    page.entities, page.instances, page.hostnames, page.label_names = entities, instances, hostnames, label_names
    page.values[spec.id] = column
    page.specs[name] = found
    return True


def parse_page(text: str) -> ParsedPage:
    """The page read back; mapped families fill the entities and values, the others are kept as text."""
    page = ParsedPage()
    seen: dict[str, Entity | None] = {}
    for header, samples, count in split_families(text):
        head = _HEADER.match(header)
        if head is not None:
            name = head.group(1)
        else:
            match = _SAMPLE.match(samples.split("\n", 1)[0]) if samples else None
            name = match.group(1) if match else ""
        if name.startswith(SELF_PREFIX):
            continue
        mapped = name not in page.specs and _map_family(page, name, header, samples, seen)
        page.families.append(CapturedFamily(name, header, samples, count, mapped))
    page.hostname = next(iter(page.hostnames)) if page.hostnames else None
    for name in next(iter(page.label_names), ()):
        spec = _label_field(name)
        if spec is None:  # never: _entity took only label-type fields
            continue
        page.labels[name] = spec
        page.values[spec.id] = {eid: dict(identity[5])[name] for eid, identity in page.entities.items()}
    return page
