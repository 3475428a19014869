"""``--engine replay`` on the host side: the collectors a capture's fields call for, and the page put back in order.

The replay engine (engine/replay.py) answers reads with the recorded GPUs and values, so the pipeline collects,
renders, pushes and counts them like any engine's. What the pipeline cannot reproduce (fields no catalog knows,
NVSwitch series, extra labels) the engine keeps as captured text; ``ReplayPage`` puts each family back where the
capture had it, the pipeline's rendering for the mapped ones and the captured text for the rest, then the
replaying exporter's own ``otel_fakegpu_*`` series.
"""

from __future__ import annotations

import re

from otel_fakegpu.engine.replay import ReplayEngine
from otel_fakegpu.engine.replay_page import SELF_PREFIX, CapturedFamily, split_families
from otel_fakegpu.fields import Collector, CollectorSet, MetricKind
from otel_fakegpu.outputs.prometheus_text import FamilyText

_TYPE = re.compile(r"# TYPE (\S+) (\S+)")
_NAME = re.compile(r"# (?:HELP|TYPE) (\S+)")


def captured_family(header: str, samples: str, series: int) -> FamilyText:
    """A family as captured; its OpenMetrics header declares a counter without ``_total`` unknown, as the
    renderer does."""
    match = _TYPE.search(header)
    om = header
    if match and match.group(2) == "counter" and not match.group(1).endswith("_total"):
        om = header.replace(match.group(0), f"# TYPE {match.group(1)} unknown")
    return FamilyText(header, om, samples, series)


def page_families(page: str) -> list[FamilyText]:
    """The page as families, each kept as captured: joined back, they are the page."""
    return [captured_family(header, samples, count) for header, samples, count in split_families(page)]


def replay_collectors(engine: ReplayEngine) -> CollectorSet:
    """The mapped fields of the capture's first page, each with the name, type and HELP the capture gave it, and
    its label-type fields (the driver version ...) in the order its series print them."""
    metrics = tuple(
        Collector(spec, name, kind, help_text) for name, (spec, kind, help_text) in engine.current.specs.items()
    )
    labels = tuple(Collector(spec, name, MetricKind.LABEL, spec.help) for name, spec in engine.current.labels.items())
    return CollectorSet(f"{engine.recording.header.get('source', 'capture')} (replayed)", metrics, labels)


class ReplayPage:
    """The renderer's arrangement hook: the captured page's families in their order, the replay's own last."""

    def __init__(self, engine: ReplayEngine) -> None:
        self._engine = engine
        self._kept: dict[int, FamilyText] = {}  # captured texts of the current page, by family
        self._page: object = None

    def _kept_text(self, family: CapturedFamily) -> FamilyText:
        text = self._kept.get(id(family))
        if text is None:
            text = self._kept[id(family)] = captured_family(family.header, family.samples, family.series)
        return text

    def __call__(self, rendered: list[FamilyText]) -> list[FamilyText]:
        page = self._engine.current  # the page this cycle's read served (reads and renders share the cycle lock)
        if page is not self._page:
            self._page, self._kept = page, {}
        by_name: dict[str, FamilyText] = {}
        for text in rendered:
            match = _NAME.match(text.prometheus_header)
            if match:
                by_name[match.group(1)] = text
        arranged = []
        for family in page.families:
            mine = by_name.get(family.name) if family.mapped else None
            arranged.append(mine if mine is not None else self._kept_text(family))
        arranged.extend(f for name, f in by_name.items() if name.startswith(SELF_PREFIX))
        return arranged
