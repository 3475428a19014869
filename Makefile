# The two commands of the README: `make run` and `make test`. Each sets up what it needs first.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
RUN_STAMP := $(VENV)/.run-installed
TEST_STAMP := $(VENV)/.test-installed
PEERS_STAMP := .peers/.installed

# `make run` defaults: 4 GPUs with moving values and a 5 s cycle. Any of them can be overridden from the
# environment or the command line (make run NUM_FAKE_GPUS=64).
NUM_FAKE_GPUS ?= 4
GPU_PROFILES ?= stable,wave,spike,degrading
DCGM_EXPORTER_INTERVAL ?= 5000
METRIC_UPDATE_INTERVAL ?= 5
export NUM_FAKE_GPUS GPU_PROFILES DCGM_EXPORTER_INTERVAL METRIC_UPDATE_INTERVAL

.PHONY: run test test-fast lint typecheck unit peers bench soak stubs clean image-test

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(RUN_STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e .
	touch $@

$(TEST_STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $@ $(RUN_STAMP)

$(PEERS_STAMP): tools/install-peers.sh
	bash tools/install-peers.sh .peers
	touch $@

run: $(RUN_STAMP)
	exec $(BIN)/otel-fakegpu $(ARGS)

peers: $(PEERS_STAMP)

lint: $(TEST_STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: $(TEST_STAMP)
	$(BIN)/mypy

unit: $(TEST_STAMP) $(PEERS_STAMP)
	$(BIN)/pytest

test: lint typecheck unit

# The in-process loop: no exporter process, no real peer, nothing over 10 s (tests/markers.py applies the marks).
test-fast: $(TEST_STAMP)
	$(BIN)/pytest -q -m "not process and not peer and not slow"

# Measures the exporter against prometheus_client, OpenTelemetry's Prometheus reader and a fixed-body floor;
# prints a table and writes bench/results.json (about 13 minutes on 2 cores).
bench: $(TEST_STAMP) $(PEERS_STAMP)
	$(BIN)/python -m bench

# Regenerates the kubelet pod-resources stubs (otel_fakegpu/attribution/podresources_v1/) from api.proto.
stubs: $(TEST_STAMP)
	PYTHON=$(BIN)/python bash tools/gen-kubelet-stubs.sh

# 512 GPUs, 1 s cycles, the OTLP receiver down for 5 minutes then back (about 11 minutes): RSS before, at the
# plateau, after the drain; writes bench/soak.json. Not part of `make bench` or `make test`.
soak: $(TEST_STAMP)
	$(BIN)/python -m bench.soak

# Builds the Dockerfile with buildah (no Docker engine) on a Debian base made by mmdebstrap, then runs the
# image's entrypoint and scrapes it (tools/image-build.sh, tests/test_image.py). About a minute when cached.
IMAGE ?= localhost/otel-fakegpu:test
image-test: $(TEST_STAMP)
	bash tools/image-build.sh $(IMAGE)
	OTEL_FAKEGPU_TEST_IMAGE=$(IMAGE) $(BIN)/pytest -q tests/test_image.py

clean:
	rm -rf $(VENV) .peers .mypy_cache .ruff_cache .pytest_cache
