"""The SDK fast path (otel_fakegpu/telemetry/sdk_fastpath.py): installed on the SDK we declare, and a collection
through it is byte for byte the collection through the SDK's own path (MIG, several jobs per GPU, jobs that change;
the golden pages, with event counts and health series, are rendered through it too); on an SDK it does not fit it
installs nothing, says so once, and the SDK's own path runs."""

from __future__ import annotations

import copy
import pickle
from pathlib import Path

import pytest
from opentelemetry.sdk.metrics._internal import _view_instrument_match as vim
from opentelemetry.sdk.metrics._internal import measurement

from otel_fakegpu.attribution import HpcJobSource
from otel_fakegpu.telemetry import sdk_fastpath
from otel_fakegpu.telemetry.label_sets import FixedAttributes
from otel_fakegpu.telemetry.sdk_fastpath import FrozenAttributes, frozen
from tests.attribution_helpers import attributed_stack


def _stock_sdk(monkeypatch: pytest.MonkeyPatch) -> None:
    """Put the SDK's own functions back for this test (monkeypatch restores the hooks after it)."""
    sdk_fastpath.install()  # once per process: a worker that runs this test first has not installed them yet
    assert sdk_fastpath._hooks.stock_consume is not None
    monkeypatch.setattr(sdk_fastpath._hooks, "quick_keys", sdk_fastpath._hooks.quick_keys)  # back after the test
    monkeypatch.setattr(measurement, "_clean_attribute_value", sdk_fastpath._hooks.stock_clean)
    monkeypatch.setattr(vim._ViewInstrumentMatch, "consume_measurement", sdk_fastpath._hooks.stock_consume)


def test_installed_on_the_declared_sdk() -> None:
    """Fails when an SDK upgrade no longer fits the hooks: every cycle would quietly take the slow path."""
    assert sdk_fastpath.install() is True
    assert sdk_fastpath.status() == "yes"
    assert vars(measurement)["_clean_attribute_value"] is sdk_fastpath._clean


def _bodies(tmp_path: Path) -> list[bytes]:
    """Three cycles' pages, less the exporter's own timings (a cycle's duration differs run to run)."""
    jobs = tmp_path / "jobs"
    jobs.mkdir(parents=True)
    (jobs / "0").write_text("1001\n1002\n")  # two jobs on GPU 0: each of its series twice
    (jobs / "1").write_text("2001\n")
    stack = attributed_stack(HpcJobSource(jobs), count=3, mig="1:3g.40gb*2")
    bodies = [stack.cycle()]
    (jobs / "0").write_text("1003\n")  # a job leaves, another comes: new sets, old ones dropped
    for _ in range(2):
        stack.clock.advance(30)
        stack.simulator.step()
        bodies.append(stack.cycle())
    stack.pipeline.shutdown()
    timed = tuple(
        f"otel_fakegpu_{name} ".encode()
        for name in ("cycle_duration_seconds", "last_cycle_timestamp_seconds", "attribution_age_seconds")
    )
    return [b"\n".join(line for line in body.split(b"\n") if not line.startswith(timed)) for body in bodies]


def test_collections_equal_the_sdks_own_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert sdk_fastpath.install()
    fast = _bodies(tmp_path / "fast")
    with monkeypatch.context() as stock:
        _stock_sdk(stock)
        slow = _bodies(tmp_path / "slow")
        stock.setattr(sdk_fastpath._hooks, "status", "refused for this test")  # what a refused install leaves
        assert type(frozen({"gpu": "0"})) is FixedAttributes
        fell_back = _bodies(tmp_path / "fell-back")
    assert fast == slow == fell_back
    assert b'hpc_job="1001"' in fast[0] and b'hpc_job="1003"' in fast[2] and b'hpc_job="1001"' not in fast[2]
    assert b'GPU_I_PROFILE="3g.40gb"' in fast[0]


def test_frozen_attributes_hash_like_the_sdk_and_never_change() -> None:
    attrs = FrozenAttributes({"gpu": "0", "UUID": "GPU-a"})
    assert attrs == {"gpu": "0", "UUID": "GPU-a"} and list(attrs) == ["gpu", "UUID"]
    assert attrs.key == vim._hash_attributes({"UUID": "GPU-a", "gpu": "0"})
    assert frozen(attrs) is attrs and type(frozen({"gpu": "0"})) is FrozenAttributes
    for change in (lambda: attrs.update(pod="p"), lambda: attrs.__setitem__("pod", "p"), lambda: attrs.pop("gpu")):
        with pytest.raises(TypeError, match="cannot change"):
            change()
    assert {**attrs, "pod": "p"} == {"gpu": "0", "UUID": "GPU-a", "pod": "p"}  # new sets are built from it
    assert pickle.loads(pickle.dumps(attrs)) == attrs and copy.deepcopy(attrs) == attrs


def test_text_label_sets_take_quick_keys_equal_to_the_sdks(monkeypatch: pytest.MonkeyPatch) -> None:
    """Sets of text labels get their key without the SDK's recursion (checked at install); others take the SDK's."""
    assert sdk_fastpath.install() and sdk_fastpath._hooks.quick_keys
    labels = {"gpu": "7", "UUID": "GPU-b", "pci_bus_id": "00000000:18:00.0", "modelName": "x", "Hostname": "h"}
    assert sdk_fastpath._quick_key(labels) is not None
    assert FrozenAttributes(labels).key == vim._hash_attributes(dict(labels))
    assert sdk_fastpath._quick_key({"gpu": 7}) is None and sdk_fastpath._quick_key({"": "x"}) is None  # type: ignore[dict-item]
    odd = FrozenAttributes({"gpu": 7, "n": ("a", "b")})  # type: ignore[dict-item]
    assert odd.key == vim._hash_attributes({"gpu": 7, "n": ("a", "b")})
    _stock_sdk(monkeypatch)
    monkeypatch.setattr(sdk_fastpath._hooks, "status", None)
    monkeypatch.setattr(sdk_fastpath, "_quick_key", lambda attributes: ("not", "the", "sdk's"))
    assert sdk_fastpath.install() and not sdk_fastpath._hooks.quick_keys  # an SDK that keys sets otherwise
    assert FrozenAttributes(labels).key == vim._hash_attributes(dict(labels))


def test_refuses_an_sdk_it_does_not_fit(monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    _stock_sdk(monkeypatch)
    monkeypatch.setattr(sdk_fastpath._hooks, "status", None)
    monkeypatch.delattr(vim._ViewInstrumentMatch, "_get_or_create_aggregation")
    assert sdk_fastpath.install() is False
    assert "lacks _ViewInstrumentMatch._get_or_create_aggregation" in str(sdk_fastpath.status())
    assert vars(measurement)["_clean_attribute_value"] is sdk_fastpath._hooks.stock_clean
    assert "fast path not installed" in caplog.text
    assert type(frozen({"gpu": "0"})) is FixedAttributes  # a plain fixed set: the SDK's own path copies it


def test_a_self_check_that_differs_leaves_the_sdk_as_it_was(monkeypatch: pytest.MonkeyPatch) -> None:
    _stock_sdk(monkeypatch)
    stock_consume = vim._ViewInstrumentMatch.consume_measurement
    monkeypatch.setattr(sdk_fastpath._hooks, "status", None)
    monkeypatch.setattr(sdk_fastpath, "_points", lambda use_fast: [("g", 1 if use_fast else 2, {})])
    assert sdk_fastpath.install() is False
    assert sdk_fastpath.status() == "a self-check collection differed from the SDK's own"
    assert vars(measurement)["_clean_attribute_value"] is sdk_fastpath._hooks.stock_clean
    assert vim._ViewInstrumentMatch.consume_measurement is stock_consume


def test_an_sdk_without_the_internal_modules_still_imports_and_refuses(monkeypatch: pytest.MonkeyPatch) -> None:
    """SDK 1.44, for one, has no ``opentelemetry.attributes._clean_attribute_value``: the exporter must still start."""
    _stock_sdk(monkeypatch)
    monkeypatch.setattr(sdk_fastpath._hooks, "status", None)

    def look_up_in_an_older_sdk() -> None:
        monkeypatch.setattr(
            sdk_fastpath._hooks, "vim", sdk_fastpath._internal("opentelemetry.sdk.metrics._internal._gone")
        )
        monkeypatch.setattr(sdk_fastpath._hooks, "stock_clean", None)

    monkeypatch.setattr(sdk_fastpath, "_look_up_internals", look_up_in_an_older_sdk)
    assert sdk_fastpath.install() is False
    assert sdk_fastpath._hooks.vim is None
    assert "lacks measurement._clean_attribute_value, _view_instrument_match._hash_attributes" in str(
        sdk_fastpath.status()
    )
    assert type(frozen({"gpu": "0"})) is FixedAttributes
