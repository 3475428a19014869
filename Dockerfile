# otel-fakegpu: dcgm-exporter-compatible GPU telemetry (simulated GPUs by default) on :9400 and a Unix socket.
#
#   docker build -t otel-fakegpu .
#   docker run --rm -p 9400:9400 -e NUM_FAKE_GPUS=8 otel-fakegpu
#
# Any Python >= 3.10 base works; BASE_IMAGE must provide python3 with the venv module (make image-test builds on
# a Debian bookworm base made by mmdebstrap). The build reaches the package index with the build machine's own
# network settings; nothing about that machine is written into the image.
ARG BASE_IMAGE=python:3.12-slim

FROM ${BASE_IMAGE} AS wheel
WORKDIR /src
COPY pyproject.toml README.md ./
COPY otel_fakegpu ./otel_fakegpu
RUN python3 -m venv /tmp/build-venv \
    && /tmp/build-venv/bin/python -m pip wheel --no-cache-dir --no-deps --wheel-dir /dist .

FROM ${BASE_IMAGE} AS venv
COPY --from=wheel /dist /dist
# The wheel is installed by file name (its version is the one just built); the installer leaves with it.
RUN python3 -m venv /opt/otel-fakegpu \
    && /opt/otel-fakegpu/bin/python -m pip install --no-cache-dir --no-compile /dist/*.whl \
    && /opt/otel-fakegpu/bin/python -m pip uninstall --yes --quiet pip setuptools \
    && /opt/otel-fakegpu/bin/python -m compileall -q /opt/otel-fakegpu/lib

FROM ${BASE_IMAGE}
ARG VERSION=0.1.0
LABEL org.opencontainers.image.title="otel-fakegpu" \
      org.opencontainers.image.description="OpenTelemetry-native GPU telemetry collector with dcgm-exporter's output contract; simulates GPUs when none are present" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.licenses="Apache-2.0" \
      org.opencontainers.image.source="https://github.com/otel-fakegpu/otel-fakegpu" \
      org.opencontainers.image.documentation="https://github.com/otel-fakegpu/otel-fakegpu#readme"
COPY --from=venv /opt/otel-fakegpu /opt/otel-fakegpu
# A fixed numeric user, so Kubernetes' runAsNonRoot can verify it; it owns only the socket directory and the
# push queue directory (push requests kept there until delivered survive a restart: docs/push-queue.md).
RUN mkdir -p /var/run/dcgm /var/lib/otel-fakegpu/queue \
    && chown 10001:10001 /var/run/dcgm /var/lib/otel-fakegpu/queue \
    && chmod 0750 /var/run/dcgm /var/lib/otel-fakegpu/queue
ENV PATH=/opt/otel-fakegpu/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    DCGM_EXPORTER_LISTEN=:9400 \
    DCGM_EXPORTER_INTERVAL=30000 \
    NUM_FAKE_GPUS=4 \
    ENABLE_UDS=true \
    UDS_SOCKET_PATH=/var/run/dcgm/metrics.sock \
    OTEL_FAKEGPU_PUSH_QUEUE_DIR=/var/lib/otel-fakegpu/queue
USER 10001:10001
EXPOSE 9400
VOLUME ["/var/run/dcgm"]
VOLUME ["/var/lib/otel-fakegpu/queue"]
# No curl in the image: the venv's Python asks /health (non-2xx, refused or slow = unhealthy).
HEALTHCHECK --interval=30s --timeout=5s --start-period=60s --retries=3 \
    CMD ["python3", "-c", "import os, urllib.request; port = os.environ.get('DCGM_EXPORTER_LISTEN', ':9400').rsplit(':', 1)[1]; urllib.request.urlopen(f'http://127.0.0.1:{port}/health', timeout=4)"]
ENTRYPOINT ["otel-fakegpu"]
