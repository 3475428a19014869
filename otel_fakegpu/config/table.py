"""Every option as one row, the only place an option is declared: its flags, the environment variables that
stand in for it (dcgm-exporter's, the seed prototype's and OpenTelemetry's names), its default, its help, its group
and the parser of its value. cmdline.py resolves the rows into texts, ``parsed`` into typed values, and
tools/gen_config_doc.py writes docs/configuration.md from them."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from otel_fakegpu.attribution import DEFAULT_SOCKET
from otel_fakegpu.config import parsers as P  # noqa: N812 - short: every row names its parser
from otel_fakegpu.config.errors import OptionValue
from otel_fakegpu.config.values import MAX_INTERVAL_MS
from otel_fakegpu.fields import DEFAULT_RELEASE, RELEASES
from otel_fakegpu.serve import DEFAULT_IDLE_TIMEOUT_S, DEFAULT_MODE, DEFAULT_SOCKET_PATH
from otel_fakegpu.sim import PROFILE_NAMES, SKUS
from otel_fakegpu.telemetry import DEFAULT_COUNT_WINDOW_MS


@dataclass(frozen=True)
class Option:
    dest: str
    flags: tuple[str, ...]
    envs: tuple[str, ...]
    default: str | None
    help: str
    metavar: str | None = None
    is_switch: bool = False
    group: str = "exporter"
    parse: P.Parser = P.text  # the resolved text (and where it came from) to the typed value
    required: bool = False


def _o(dest: str, flags: str, envs: str, default: str | None, help_: str, metavar: str | None = None,
       switch: bool = False, group: str = "exporter", parse: P.Parser | None = None,
       required: bool = False) -> Option:  # fmt: skip
    parser = parse or (P.switch if switch else P.text)
    return Option(dest, tuple(flags.split()), tuple(envs.split()), default, help_, metavar, switch, group, parser,
                  required)  # fmt: skip


OPTIONS: tuple[Option, ...] = (
    _o("collectors", "-f --collectors", "DCGM_EXPORTER_COLLECTORS", None,
       "collectors CSV in dcgm-exporter's format (default: the stock 26-field set)", "FILE", parse=P.optional_path),
    _o("address", "-a --address", "DCGM_EXPORTER_LISTEN", ":9400",
       'address to serve /metrics on, [HOST]:PORT; "" for the Unix socket only', "ADDR", parse=P.listen),
    _o("collect_interval", "-c --collect-interval", "DCGM_EXPORTER_INTERVAL", "30000",
       "collection cycle in milliseconds", "MS", parse=P.ms_as_seconds(100, MAX_INTERVAL_MS)),
    _o("xid_window", "-x --xid-count-window-size", "DCGM_EXPORTER_XID_COUNT_WINDOW_SIZE", str(DEFAULT_COUNT_WINDOW_MS),
       "sliding window of DCGM_EXP_XID_ERRORS_COUNT, in milliseconds", "MS", parse=P.whole(1, P.MAX_WINDOW_MS)),
    _o("clock_events_window", "--clock-events-count-window-size", "DCGM_EXPORTER_CLOCK_EVENTS_COUNT_WINDOW_SIZE",
       str(DEFAULT_COUNT_WINDOW_MS), "sliding window of DCGM_EXP_CLOCK_EVENTS_COUNT, in milliseconds", "MS",
       parse=P.whole(1, P.MAX_WINDOW_MS)),
    _o("no_hostname", "-n --no-hostname", "NO_HOSTNAME", "false", "omit the host label", switch=True),
    _o("dcgm_exporter_compat", "--dcgm-exporter-compat", "OTEL_FAKEGPU_DCGM_EXPORTER_COMPAT", DEFAULT_RELEASE.version,
       "serve the output contract of this dcgm-exporter release: "
       + "; ".join(f"{r.version} ({r.tag}): {r.summary}" for r in RELEASES), "RELEASE", parse=P.release),
    _o("preset", "--preset", "OTEL_FAKEGPU_PRESET", None,
       "defaults of another exporter: digitalocean (port 9401, its field set plus -f, 20 s windows, push to "
       "169.254.169.254) or dcgm-fake-gpu-exporter (the seed prototype's nine names and labels)", "NAME",
       parse=P.lowered),
    _o("label_style", "--label-style", "OTEL_FAKEGPU_LABEL_STYLE", "dcgm-exporter",
       "series labels: dcgm-exporter, or dcgm-fake-gpu-exporter (gpu and device only, GPUs numbered from 1)",
       "STYLE", parse=P.label_style),
    _o("service_name", "--service-name", "OTEL_SERVICE_NAME", "otel-fakegpu",
       "OpenTelemetry service.name resource attribute", "NAME", parse=P.text_or("otel-fakegpu")),
    _o("resource_attributes", "--resource-attributes", "OTEL_RESOURCE_ATTRIBUTES", None,
       "extra resource attributes, k=v,k2=v2", "LIST", parse=P.key_values),
    _o("enable_exporter_metrics", "--enable-exporter-metrics", "DCGM_EXPORTER_ENABLE_EXPORTER_METRICS", "false",
       "also serve the collecting process's process_* metrics, as dcgm-exporter 4.8.4 does with this flag",
       switch=True),
    _o("debug", "-d --debug", "DCGM_EXPORTER_DEBUG", "false", "log at debug level", switch=True),
    # Engine
    _o("engine", "--engine", "OTEL_FAKEGPU_ENGINE", "embedded",
       "where values come from: embedded (simulated GPUs), dcgm (a DCGM hostengine via pydcgm), nvml (nvidia-ml-py), "
       "replay (a capture of otel-fakegpu record, --replay-file)", "KIND", group="engine", parse=P.engine_kind),
    _o("replay_file", "--replay-file", "OTEL_FAKEGPU_REPLAY_FILE", None,
       "--engine replay: the capture to serve through the pipeline, its GPUs, identities, Hostname and values as "
       "recorded, fields no catalog knows as captured; one host, pushable (otel-fakegpu record --help)", "FILE",
       group="engine",
       parse=P.optional_path),
    _o("replay_speed", "--replay-speed", "OTEL_FAKEGPU_REPLAY_SPEED", "1",
       "--engine replay: capture seconds per second (2: twice as fast)", "X", group="engine",
       parse=P.number(0.001, 10000.0)),
    _o("replay_loop", "--replay-loop", "OTEL_FAKEGPU_REPLAY_LOOP", "false",
       "--engine replay: start over at the end (default: hold the last page)", switch=True, group="engine"),
    _o("remote_hostengine", "-r --remote-hostengine-info", "DCGM_REMOTE_HOSTENGINE_INFO", None,
       "--engine dcgm: connect to nv-hostengine at HOST:PORT ([::1]:5555) or a Unix socket path "
       "(default: start an embedded hostengine)", "ADDR", group="engine", parse=P.remote_hostengine),
    _o("devices", "--devices", "DCGM_EXPORTER_DEVICES_STR", "f",
       "GPUs to read, dcgm-exporter's form: f (all), g[:0,2-3] (GPUs), i[:ids] (GPU instances)", "SPEC",
       group="engine", parse=P.devices),
    _o("inject", "--inject", "OTEL_FAKEGPU_INJECT", "false",
       "--engine dcgm: create the simulated GPUs as fake entities in the hostengine and inject their values",
       switch=True, group="engine"),
    _o("check_config", "--check-config", "", "false",
       "validate every option, variable and file, then exit (0: would start, 2: one line naming the problem)",
       switch=True),
    # Simulator
    _o("num_gpus", "--num-gpus", "NUM_FAKE_GPUS", "4", "number of simulated GPUs", "N", group="simulator",
       parse=P.whole(1, P.MAX_GPUS)),
    _o("profile", "--profile", "METRIC_PROFILE", "static", f"profile for every GPU: {', '.join(PROFILE_NAMES)}",
       "NAME", group="simulator", parse=P.profiles),
    _o("gpu_profiles", "--gpu-profiles", "GPU_PROFILES", None,
       "comma list of profiles assigned to GPUs round-robin (overrides --profile)", "LIST", group="simulator",
       parse=P.profiles),
    _o("update_interval", "--update-interval", "METRIC_UPDATE_INTERVAL", "30",
       "seconds between simulated value updates", "SECONDS", group="simulator", parse=P.seconds(0.05)),
    _o("gpu_model", "--gpu-model", "GPU_MODEL", "h100-sxm",
       f"GPU model, or comma list assigned round-robin: {', '.join(SKUS)}", "MODEL", group="simulator",
       parse=P.gpu_models),
    _o("seed", "--seed", "FAKEGPU_SEED", None, "seed for reproducible simulated values", "N", group="simulator",
       parse=P.optional_whole(0, 2**64 - 1)),
    _o("scenario", "--scenario", "OTEL_FAKEGPU_SCENARIO", None,
       "YAML scenario: fleet, workloads and scripted events (see scenarios/)", "FILE", group="simulator", parse=P.text),
    # Workload attribution
    _o("kubernetes", "-k --kubernetes", "DCGM_EXPORTER_KUBERNETES", "false",
       "label series with the pod/namespace/container using each GPU, from the kubelet's pod-resources API",
       switch=True, group="attribution"),
    _o("pod_resources_socket", "--pod-resources-kubelet-socket", "DCGM_POD_RESOURCES_KUBELET_SOCKET",
       DEFAULT_SOCKET, "the kubelet's pod-resources Unix socket", "PATH", group="attribution", parse=P.stripped),
    _o("kubernetes_gpu_id_type", "--kubernetes-gpu-id-type", "DCGM_EXPORTER_KUBERNETES_GPU_ID_TYPE", "uid",
       "how the device plugin names whole GPUs: uid (GPU UUID) or device-name (nvidiaN)", "TYPE",
       group="attribution", parse=P.ID_TYPE),
    _o("nvidia_resource_names", "--nvidia-resource-names", "NVIDIA_RESOURCE_NAMES", None,
       "extra resource names that are GPUs, comma list (nvidia.com/gpu and nvidia.com/mig-* always are)", "LIST",
       group="attribution", parse=P.names),
    _o("kubernetes_enable_pod_uid", "--kubernetes-enable-pod-uid", "DCGM_EXPORTER_KUBERNETES_ENABLE_POD_UID",
       "false", "add the pod_uid label", switch=True, group="attribution"),
    _o("kubernetes_virtual_gpus", "--kubernetes-virtual-gpus", "KUBERNETES_VIRTUAL_GPUS", "false",
       "on a GPU several pods share (time-slicing, MPS, several workloads): DCGM_FI_DEV_GPU_UTIL and FB_USED also "
       "once per pod, from its processes, the pods' values adding up to the device's (as dcgm-exporter #594)",
       switch=True, group="attribution"),
    _o("kubernetes_enable_dra", "--kubernetes-enable-dra", "KUBERNETES_ENABLE_DRA", "false",
       "also label GPUs the kubelet lists as DRA claims (driver gpu.nvidia.com) with dcgm-exporter's dra_* labels",
       switch=True, group="attribution"),
    _o("kubernetes_dra_resource_slices", "--kubernetes-dra-resource-slices",
       "OTEL_FAKEGPU_KUBERNETES_DRA_RESOURCE_SLICES", None,
       "the ResourceSlices DRA devices resolve through (kubectl get resourceslices -o yaml), re-read when it changes",
       "FILE", group="attribution", parse=P.stripped),
    _o("use_old_namespace", "-o --use-old-namespace", "DCGM_EXPORTER_USE_OLD_NAMESPACE", "false",
       "dcgm-exporter 1.x label names: uuid, pod_name, pod_namespace, container_name", switch=True,
       group="attribution"),
    _o("pod_list_file", "--pod-list-file", "DCGM_EXPORTER_POD_LIST_FILE", None,
       "koordinator's pod list (JSON array of name/namespace/container/gpu_list), re-read when it changes",
       "FILE", group="attribution", parse=P.stripped),
    _o("hpc_job_mapping_dir", "--hpc-job-mapping-dir", "DCGM_HPC_JOB_MAPPING_DIR", None,
       "HPC job mapping directory: a file per GPU index, one job id per line (label hpc_job)", "DIR",
       group="attribution", parse=P.stripped),
    _o("jobstats_series", "--jobstats-series", "OTEL_FAKEGPU_JOBSTATS_SERIES", "false",
       "also serve the jobstats GPU exporter's nvidia_gpu_jobId for attributed HPC jobs",
       switch=True, group="attribution"),
    _o("attribution_timeout", "--attribution-timeout", "OTEL_FAKEGPU_ATTRIBUTION_TIMEOUT", None,
       "how long a cycle waits for the attribution source, milliseconds, 1-600000 (default a quarter of the "
       "cycle, at most 2000)", "MS", group="attribution", parse=P.ms_as_seconds(1, P.MAX_TIMEOUT_MS, optional=True)),
    _o("mig", "--mig", "OTEL_FAKEGPU_MIG", None,
       "MIG partitions, GPUS:PROFILE*N groups, e.g. 0-3:1g.10gb*7,4:3g.40gb*2 ('+' mixes profiles on a GPU)",
       "SPEC", group="simulator", parse=P.text),
    _o("list_gpu_models", "--list-gpu-models", "", None, "print the GPU models (SKUs) with their figures and exit",
       switch=True, group="simulator"),
    _o("hosts", "--hosts", "OTEL_FAKEGPU_HOSTS", "1",
       "simulated hosts, each with --num-gpus GPUs, its own Hostname (NAME-0, NAME-1, ...) and /hosts/NAME/metrics",
       "N", group="simulator", parse=P.whole(1, P.MAX_HOSTS)),
    _o("racks", "--racks", "OTEL_FAKEGPU_RACKS", "1",
       "racks the hosts stand in, contiguous runs r0, r1, ... (/sd's rack label; rack events of the control API)",
       "N", group="simulator", parse=P.whole(1, P.MAX_HOSTS)),
    _o("workers", "--workers", "OTEL_FAKEGPU_WORKERS", None,
       "worker processes the hosts are split over (default: the number of cores, at most one per host)", "N",
       group="simulator", parse=P.optional_whole(1, P.MAX_WORKERS)),
    _o("shard", "--shard", "OTEL_FAKEGPU_SHARD", "0/1",
       "simulate only shard I of N of the hosts (those whose index i has i %% N == I), e.g. a StatefulSet ordinal",
       "I/N", group="simulator", parse=P.shard),
    # Serving
    _o("uds", "--uds", "UDS_SOCKET_PATH", None,
       f"also serve on this Unix socket (the variable needs ENABLE_UDS=true; default {DEFAULT_SOCKET_PATH})",
       "PATH", group="serving", parse=P.socket_path),
    _o("enable_uds", "--enable-uds", "ENABLE_UDS", "false", "serve on the Unix socket", switch=True,
       group="serving"),
    _o("uds_mode", "--uds-mode", "UDS_SOCKET_MODE", f"{DEFAULT_MODE:04o}", "permission bits of the socket", "MODE",
       group="serving", parse=P.mode),
    _o("uds_group", "--uds-group", "UDS_SOCKET_GROUP", None, "group owning the socket", "GROUP", group="serving",
       parse=P.optional_text),
    _o("web_config", "--web-config-file", "DCGM_EXPORTER_WEB_CONFIG_FILE", None,
       "exporter-toolkit web config: TLS and basic auth for TCP", "FILE", group="serving", parse=P.optional_path),
    _o("control_token", "--control-token", "OTEL_FAKEGPU_CONTROL_TOKEN", None,
       "also serve the control API on TCP, to requests with Authorization: Bearer TOKEN", "TOKEN", group="serving",
       parse=P.token),
    _o("idle_timeout", "--idle-timeout", "OTEL_FAKEGPU_IDLE_TIMEOUT", f"{DEFAULT_IDLE_TIMEOUT_S:g}",
       "seconds before closing a connection that sends no complete request", "SECONDS", group="serving",
       parse=P.seconds(0.1)),
    # Push
    _o("otlp_endpoint", "--otlp-endpoint", "OTEL_EXPORTER_OTLP_METRICS_ENDPOINT OTEL_EXPORTER_OTLP_ENDPOINT", None,
       "push OTLP to this collector (gRPC host:port or URL; HTTP base or /v1/metrics URL)", "URL", group="push",
       parse=P.text),
    _o("otlp_protocol", "--otlp-protocol", "OTEL_EXPORTER_OTLP_METRICS_PROTOCOL OTEL_EXPORTER_OTLP_PROTOCOL",
       "http/protobuf", "grpc or http/protobuf", "PROTO", group="push", parse=P.OTLP_PROTOCOL),
    _o("otlp_headers", "--otlp-headers", "OTEL_EXPORTER_OTLP_METRICS_HEADERS OTEL_EXPORTER_OTLP_HEADERS", None,
       "request headers, k=v,k2=v2 (values URL-encoded)", "LIST", group="push", parse=P.headers),
    _o("otlp_compression", "--otlp-compression",
       "OTEL_EXPORTER_OTLP_METRICS_COMPRESSION OTEL_EXPORTER_OTLP_COMPRESSION", "gzip", "gzip or none", "NAME",
       group="push", parse=P.COMPRESSION),
    _o("otlp_timeout", "--otlp-timeout", "OTEL_EXPORTER_OTLP_METRICS_TIMEOUT OTEL_EXPORTER_OTLP_TIMEOUT", "10000",
       "per-request timeout in milliseconds (the OpenTelemetry specification's unit)", "MS", group="push",
       parse=P.ms_as_seconds(1, P.MAX_TIMEOUT_MS)),
    _o("otlp_insecure", "--otlp-insecure", "OTEL_EXPORTER_OTLP_METRICS_INSECURE OTEL_EXPORTER_OTLP_INSECURE", None,
       "gRPC without TLS (default: from the endpoint's scheme)", switch=True, group="push", parse=P.optional_switch),
    _o("export_interval", "--otlp-export-interval", "OTEL_METRIC_EXPORT_INTERVAL", None,
       "push at most every this many milliseconds (default: every cycle)", "MS", group="push", parse=P.export_interval),
    _o("naming", "--naming", "OTEL_FAKEGPU_NAMING", "dcgm",
       "names pushed over OTLP: dcgm, otel (semantic conventions) or both", "NAMING", group="push", parse=P.NAMING),
    _o("otlp_max_points", "--otlp-max-points", "OTEL_FAKEGPU_OTLP_MAX_POINTS", "8000",
       "data points per OTLP request (keeps requests under a receiver's 4 MiB limit)", "N", group="push",
       parse=P.whole(1, P.MAX_POINTS)),
    _o("push_prometheus_url", "--push-prometheus-url", "OTEL_FAKEGPU_PUSH_PROMETHEUS_URL", None,
       "POST the Prometheus text exposition here every cycle (DigitalOcean-style)", "URL", group="push",
       parse=P.optional_url),
    _o("push_buffer_points", "--push-buffer-points", "OTEL_FAKEGPU_PUSH_BUFFER_POINTS", "2000000",
       "points each push target keeps for retry while its receiver is down", "N", group="push",
       parse=P.whole(1, P.MAX_POINTS)),
    _o("push_queue_dir", "--push-queue-dir", "OTEL_FAKEGPU_PUSH_QUEUE_DIR", None,
       "keep every push request in this directory until delivered, so a restart loses none (docs/push-queue.md; "
       "one exporter per directory)", "DIR", group="push", parse=P.optional_path),
    _o("push_queue_max_bytes", "--push-queue-max-bytes", "OTEL_FAKEGPU_PUSH_QUEUE_MAX_BYTES", None,
       "bound of the queue directory, e.g. 500M or 1Gi; the oldest requests go first (default: 48 bytes per "
       "--push-buffer-points point, per push target)", "SIZE", group="push", parse=P.byte_size(1, optional=True)),
    _o("push_queue_min_free_bytes", "--push-queue-min-free-bytes", "OTEL_FAKEGPU_PUSH_QUEUE_MIN_FREE_BYTES",
       "100M", "free disk space the queue directory leaves; below it the oldest requests go first and /health "
       "says degraded", "SIZE", group="push", parse=P.byte_size(0)),
    _o("traces_exporter", "--traces-exporter", "OTEL_TRACES_EXPORTER", "none",
       "trace each cycle and push request: none, otlp (to OTEL_EXPORTER_OTLP_TRACES_ENDPOINT or "
       "OTEL_EXPORTER_OTLP_ENDPOINT) or console", "NAME", group="push", parse=P.traces_exporter),
)  # fmt: skip

GROUPS = {  # each group: its title in --help and the configuration document
    "exporter": "exporter",
    "engine": "engine: simulated or real GPUs (DCGM, NVML)",
    "simulator": "simulated GPUs (the embedded engine, or DCGM with --inject)",
    "attribution": "workload attribution: kubelet, pod list file, HPC jobs (default: simulated workloads)",
    "serving": "serving: Unix socket, TLS, basic auth",
    "push": "push: OTLP and Prometheus text",
}
BACKFILL_TITLE = "backfill: otel-fakegpu backfill, a scenario's history as OpenMetrics"

# The backfill subcommand's own options (``otel-fakegpu backfill --help``); its span is parsed as a whole.
BACKFILL_OPTIONS: tuple[Option, ...] = (
    _o("scenario", "--scenario", "OTEL_FAKEGPU_SCENARIO", None, "scenario file", "FILE", group="backfill"),
    _o("start", "--start", "", "-1d", "-7d (before now), now, Unix seconds or ISO 8601", group="backfill"),
    _o("end", "--end", "", "now", "same forms as --start", group="backfill"),
    _o("step", "--step", "", "30s", "time between samples, e.g. 30s", group="backfill"),
    _o("out", "--out", "", None, "output file ('-' for standard output)", "FILE", group="backfill", required=True),
    _o("collectors", "-f --collectors", "", None, "collectors CSV (default: the stock set)", "FILE",
       group="backfill"),
    _o("dcgm_exporter_compat", "--dcgm-exporter-compat", "OTEL_FAKEGPU_DCGM_EXPORTER_COMPAT", None,
       f"dcgm-exporter release whose labels to write: {', '.join(r.version for r in RELEASES)} (default "
       f"{DEFAULT_RELEASE.version})", "RELEASE", group="backfill"),
)  # fmt: skip

RECORD_TITLE = "record: otel-fakegpu record, a page sequence captured for --engine replay"

# The record subcommand's own options (``otel-fakegpu record --help``).
RECORD_OPTIONS: tuple[Option, ...] = (
    _o("source", "--from", "", None, "the page to scrape, e.g. http://gpu-node:9400/metrics", "URL", group="record",
       parse=P.page_url, required=True),
    _o("every", "--every", "", "15s", "time between scrapes", "DURATION", group="record", parse=P.duration(0.001)),
    _o("duration", "--duration", "", None, "how long to record, e.g. 1h", "DURATION", group="record",
       parse=P.duration(0.0), required=True),
    _o("out", "--out", "", None, "the capture file to write", "FILE", group="record", parse=P.optional_path,
       required=True),
    _o("max_bytes", "--max-bytes", "", str(256 << 20), "the capture file's size limit in bytes", "N",
       group="record", parse=P.whole(64)),
)  # fmt: skip

OPTIONS_BY_DEST = {option.dest: option for option in OPTIONS}


def parsed(values: Mapping[str, OptionValue], dest: str) -> Any:
    """The typed value of option ``dest``: its row's parser over the resolved text; raises ConfigError."""
    return OPTIONS_BY_DEST[dest].parse(values[dest])
