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

.PHONY: run test lint typecheck unit peers bench bench-fleet bench-tail soak soak-restarts soak-bound stubs clean image-test test-sdk-next \
	docs drills stack-test dcgm-fields

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

# The sources compiled as pip compiles an installed package's: the first start then loads bytecode (an editable
# install leaves it to the first import, never written where PYTHONDONTWRITEBYTECODE is set: 8 GPUs 0.56 -> 0.35 s).
$(RUN_STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e .
	$(BIN)/python -m compileall -q otel_fakegpu
	touch $@

$(TEST_STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e '.[test]'
	$(BIN)/python -m compileall -q otel_fakegpu
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

# Three workers: most tests wait on an exporter's cycles or a peer, so the suite takes about half the time of one
# worker on 2 cores (TEST_JOBS=0 runs it in this process, as plain pytest does).
TEST_JOBS ?= 3
unit: $(TEST_STAMP) $(PEERS_STAMP)
	$(BIN)/pytest -n $(TEST_JOBS)

test: lint typecheck unit

# The in-process loop: no exporter process, no real peer, nothing over 10 s (tests/markers.py applies the marks).
.PHONY: test-fast
test-fast: $(TEST_STAMP)
	$(BIN)/pytest -q -m "not process and not peer and not slow"

# The drills (docs/drills.md): reachability, racks, fan-out, history and undo, ctl, record and replay, their
# alert rules; each judged through a real Prometheus where it can be (about 5 minutes on 2 cores).
drills: $(TEST_STAMP) $(PEERS_STAMP)
	$(BIN)/pytest tests/test_drills_sim.py tests/test_drills_reach.py tests/test_drills_racks.py \
		tests/test_drills_history.py tests/test_drills_alerts.py tests/test_ctl.py tests/test_replay.py \
		tests/test_replay_pipeline.py

# Measures the exporter against prometheus_client, OpenTelemetry's Prometheus reader and a fixed-body floor;
# prints a table and writes bench/results.json (about 9-10 minutes on 2 cores).
bench: $(TEST_STAMP) $(PEERS_STAMP)
	$(BIN)/python -m bench

# The 8-GPU scrape tail against the fixed-body floor alone, the two servers alternating (about a minute):
# python -m bench.tail --help for its options (ARGS).
bench-tail: $(TEST_STAMP) $(PEERS_STAMP)
	$(BIN)/python -m bench.tail $(ARGS)

# 100,000 simulated GPUs (12,500 hosts x 8) at a 30 s cycle, a real VictoriaMetrics scraping a seeded 5 % of the
# hosts through /sd for 5 cycles (about 10 minutes; less hosts, and says why, where the memory is short):
# start time, each worker's cycles, cycles late, PSS of every process, the scraper's p99; writes bench/fleet-run.json.
bench-fleet: $(TEST_STAMP) $(PEERS_STAMP)
	$(BIN)/python -m bench.fleet_run $(ARGS)

# Regenerates docs/configuration.md from the option table (otel_fakegpu/config/table.py); a test fails when stale.
docs: $(RUN_STAMP)
	$(BIN)/python tools/gen_config_doc.py

# Regenerates the kubelet pod-resources stubs (otel_fakegpu/attribution/podresources_v1/) from api.proto.
stubs: $(TEST_STAMP)
	PYTHON=$(BIN)/python bash tools/gen-kubelet-stubs.sh

# Regenerates otel_fakegpu/fields/dcgm-fields.csv from a DCGM source tree (NVIDIA/DCGM, Apache-2.0):
# make dcgm-fields DCGM=../DCGM DCGM_COMMIT=$$(git -C ../DCGM rev-parse HEAD)
dcgm-fields: $(TEST_STAMP)
	@test -n "$(DCGM)" || { echo "usage: make dcgm-fields DCGM=path/to/DCGM [DCGM_COMMIT=sha]"; exit 2; }
	$(BIN)/python tools/gen_dcgm_fields.py $(DCGM)/dcgmlib/dcgm_fields.h --types $(DCGM)/dcgmlib/src/dcgm_fields.cpp \
		--commit $(or $(DCGM_COMMIT),unknown) -o otel_fakegpu/fields/dcgm-fields.csv

# 512 GPUs, 1 s cycles, the OTLP receiver down for 5 minutes then back (about 11 minutes): RSS before, at the
# plateau, after the drain; writes bench/soak.json. Not part of `make bench` or `make test`.
soak: $(TEST_STAMP)
	$(BIN)/python -m bench.soak

# The same outage with a push queue directory and the exporter killed (SIGKILL) three times during it, then
# started again (about 7 minutes): every cycle accounted for at the receiver, the memory and disk high-water
# marks; writes bench/soak-restarts.json. Not part of `make bench` or `make test`.
soak-restarts: $(TEST_STAMP)
	$(BIN)/python -m bench.soak_restarts

# The byte bound through a 10-minute outage (one SIGKILL in it): the queue directory never holds more than
# 100 MB, and what is missing at the receiver is the oldest (about 12 minutes). Writes bench/soak-bound.json.
soak-bound: $(TEST_STAMP)
	$(BIN)/python -m bench.soak_restarts --outage-s 600 --kills 1 --max-bytes 100000000 --out bench/soak-bound.json

# Builds the Dockerfile with buildah (no Docker engine) on a Debian base made by mmdebstrap, then runs the
# image's entrypoint and scrapes it (tools/image-build.sh, tests/test_image.py). About a minute when cached.
IMAGE ?= localhost/otel-fakegpu:test
image-test: $(TEST_STAMP)
	bash tools/image-build.sh $(IMAGE)
	OTEL_FAKEGPU_TEST_IMAGE=$(IMAGE) $(BIN)/pytest -q tests/test_image.py

# The SDK hooks against the newest OpenTelemetry releases on the registry, not the pinned ones (docs/sdk-hooks.md):
# a fresh venv of its own, the versions and per hook "installed" or "fell back (why)", then the SDK-facing tests.
SDK_NEXT := .venv-sdk-next
SDK_TESTS := tests/test_sdk_fastpath.py tests/test_sdk_prune.py tests/test_sdk_sharing.py tests/test_otlp_exporters.py \
	tests/test_sdk_next.py tests/test_fleet_pages.py \
	tests/test_otlp_encode.py tests/test_push_compact.py tests/test_exposition.py tests/test_scenario_golden.py \
	tests/test_event_counts.py tests/test_push.py tests/test_push_refusals.py
test-sdk-next: $(PEERS_STAMP)
	rm -rf $(SDK_NEXT)
	$(PYTHON) -m venv $(SDK_NEXT)
	$(SDK_NEXT)/bin/python -m pip install --quiet --upgrade pip
	$(SDK_NEXT)/bin/python -m pip install --quiet --no-deps -e .
	$(SDK_NEXT)/bin/python tools/sdk_next.py requirements > $(SDK_NEXT)/requirements.txt
	$(SDK_NEXT)/bin/python -m pip install --quiet --upgrade -r $(SDK_NEXT)/requirements.txt
	$(SDK_NEXT)/bin/python tools/sdk_next.py report --newest | tee $(SDK_NEXT)/hooks.txt
	$(SDK_NEXT)/bin/pytest -q $(SDK_TESTS); status=$$?; \
		echo "SDK hooks on the newest releases:"; cat $(SDK_NEXT)/hooks.txt; exit $$status

# Runs the image under the DaemonSet's container spec, the compose demo (compose.yaml + deploy/compose/local.yaml)
# with failure drills, and `podman kube play` of the DaemonSet pod, in podman (tools/stack/run.sh, docs/docker.md).
# Builds its images into a private storage and removes everything it made afterwards. About 6 minutes.
stack-test: $(TEST_STAMP) $(PEERS_STAMP)
	bash tools/install-stack-tools.sh $(BIN)/python
	bash tools/stack/run.sh $(BIN)/python

clean:
	rm -rf $(VENV) $(SDK_NEXT) .peers .mypy_cache .ruff_cache .pytest_cache
