"""An exposition keeps one copy of its text, or only its gzip form once that is built (a fleet's worker holds one
per host): every variant it gives back is byte-identical to the one rendered straight from the families."""

from __future__ import annotations

import gzip

from otel_fakegpu.outputs import Exposition, FamilyText, Format
from otel_fakegpu.outputs.exposition import taken
from otel_fakegpu.outputs.prometheus_text import join_openmetrics, join_prometheus
from tests.conftest import build_stack


def _families() -> list[FamilyText]:
    stack = build_stack(4, ("stable", "wave", "spike", "degrading"))
    return stack.renderer.render_families(stack.pipeline.collect(stack.pipeline.read(stack.engine)))


def test_every_variant_matches_the_families_text_before_and_after_compacting() -> None:
    families = _families()
    expected = {Format.PROMETHEUS: join_prometheus(families), Format.OPENMETRICS: join_openmetrics(families)}
    exposition = Exposition(1, 0.0, families)
    assert exposition.body == expected[Format.PROMETHEUS]
    assert exposition.variant(Format.OPENMETRICS, False) == expected[Format.OPENMETRICS]
    for fmt in Format:
        assert gzip.decompress(exposition.variant(fmt, True)) == expected[fmt]
    exposition.compact()
    assert set(exposition._variants) == {(Format.PROMETHEUS, True), (Format.OPENMETRICS, True)}
    for fmt in Format:
        assert exposition.variant(fmt, False) == expected[fmt]


def test_openmetrics_from_the_gzip_form_alone() -> None:
    families = _families()
    exposition = Exposition(1, 0.0, families)
    exposition.variant(Format.PROMETHEUS, True)
    exposition.compact()
    assert (Format.PROMETHEUS, False) not in exposition._variants
    assert exposition.variant(Format.OPENMETRICS, True) == gzip.compress(join_openmetrics(families), 1, mtime=0)
    assert exposition.body == join_prometheus(families)


def test_taken_families_give_the_same_text_and_leave_the_list_empty() -> None:
    """What PrometheusOutput does (each family freed once encoded), with text beyond ASCII: the OpenMetrics form cuts
    the Prometheus bytes at byte offsets, so a multi-byte character before a family moves nothing."""
    families = _families()
    first = families[0]
    families[0] = FamilyText(first.prometheus_header, first.openmetrics_header,
                             first.samples.replace('Hostname="', 'Hostname="h\u00f4te-\u6e2c-'), first.series)  # fmt: skip
    assert "\u00f4" in families[0].samples
    expected = {fmt: join(families) for fmt, join in ((Format.PROMETHEUS, join_prometheus),
                                                      (Format.OPENMETRICS, join_openmetrics))}  # fmt: skip
    owned = list(families)
    exposition = Exposition(1, 0.0, taken(owned))
    assert owned == []
    assert exposition.series == sum(f.series for f in families)
    for fmt in Format:
        assert exposition.variant(fmt, False) == expected[fmt]
        assert gzip.decompress(exposition.variant(fmt, True)) == expected[fmt]
