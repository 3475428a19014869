"""Every option as one row: its flags, the environment variables that stand in for it (dcgm-exporter's,
the seed prototype's and OpenTelemetry's names), and its default. ``resolve`` says, for each, which text
wins and where it came from, so errors can name the flag or variable."""

from __future__ import annotations

import argparse
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import NoReturn

from otel_fakegpu import __version__
from otel_fakegpu.attribution import DEFAULT_SOCKET
from otel_fakegpu.config.errors import ConfigError, OptionValue
from otel_fakegpu.serve import DEFAULT_IDLE_TIMEOUT_S, DEFAULT_MODE, DEFAULT_SOCKET_PATH
from otel_fakegpu.sim import PROFILE_NAMES, SKUS
from otel_fakegpu.telemetry import DEFAULT_COUNT_WINDOW_MS

PROG = "otel-fakegpu"


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


def _o(dest: str, flags: str, envs: str, default: str | None, help_: str, metavar: str | None = None,
       switch: bool = False, group: str = "exporter") -> Option:  # fmt: skip
    return Option(dest, tuple(flags.split()), tuple(envs.split()), default, help_, metavar, switch, group)


OPTIONS: tuple[Option, ...] = (
    _o("collectors", "-f --collectors", "DCGM_EXPORTER_COLLECTORS", None,
       "collectors CSV in dcgm-exporter's format (default: the stock 26-field set)", "FILE"),
    _o("address", "-a --address", "DCGM_EXPORTER_LISTEN", ":9400",
       'address to serve /metrics on, [HOST]:PORT; "" for the Unix socket only', "ADDR"),
    _o("collect_interval", "-c --collect-interval", "DCGM_EXPORTER_INTERVAL", "30000",
       "collection cycle in milliseconds", "MS"),
    _o("xid_window", "-x --xid-count-window-size", "DCGM_EXPORTER_XID_COUNT_WINDOW_SIZE", str(DEFAULT_COUNT_WINDOW_MS),
       "sliding window of DCGM_EXP_XID_ERRORS_COUNT, in milliseconds", "MS"),
    _o("clock_events_window", "--clock-events-count-window-size", "DCGM_EXPORTER_CLOCK_EVENTS_COUNT_WINDOW_SIZE",
       str(DEFAULT_COUNT_WINDOW_MS), "sliding window of DCGM_EXP_CLOCK_EVENTS_COUNT, in milliseconds", "MS"),
    _o("no_hostname", "-n --no-hostname", "NO_HOSTNAME", "false", "omit the Hostname label", switch=True),
    _o("preset", "--preset", "OTEL_FAKEGPU_PRESET", None,
       "defaults of another exporter: digitalocean (port 9401, its field set plus -f, 20 s windows, push to "
       "169.254.169.254) or dcgm-fake-gpu-exporter (the seed prototype's nine names and labels)", "NAME"),
    _o("label_style", "--label-style", "OTEL_FAKEGPU_LABEL_STYLE", "dcgm-exporter",
       "series labels: dcgm-exporter, or dcgm-fake-gpu-exporter (gpu and device only, GPUs numbered from 1)",
       "STYLE"),
    _o("service_name", "--service-name", "OTEL_SERVICE_NAME", "otel-fakegpu",
       "OpenTelemetry service.name resource attribute", "NAME"),
    _o("resource_attributes", "--resource-attributes", "OTEL_RESOURCE_ATTRIBUTES", None,
       "extra resource attributes, k=v,k2=v2", "LIST"),
    _o("debug", "-d --debug", "DCGM_EXPORTER_DEBUG", "false", "log at debug level", switch=True),
    # Engine
    _o("engine", "--engine", "OTEL_FAKEGPU_ENGINE", "embedded",
       "where values come from: embedded (simulated GPUs), dcgm (a DCGM hostengine via pydcgm), nvml (nvidia-ml-py)",
       "KIND", group="engine"),
    _o("remote_hostengine", "-r --remote-hostengine-info", "DCGM_REMOTE_HOSTENGINE_INFO", None,
       "--engine dcgm: connect to nv-hostengine at HOST:PORT ([::1]:5555) or a Unix socket path "
       "(default: start an embedded hostengine)", "ADDR", group="engine"),
    _o("devices", "--devices", "DCGM_EXPORTER_DEVICES_STR", "f",
       "GPUs to read, dcgm-exporter's form: f (all), g[:0,2-3] (GPUs), i[:ids] (GPU instances)", "SPEC",
       group="engine"),
    _o("inject", "--inject", "OTEL_FAKEGPU_INJECT", "false",
       "--engine dcgm: create the simulated GPUs as fake entities in the hostengine and inject their values",
       switch=True, group="engine"),
    _o("check_config", "--check-config", "", "false",
       "validate every option, variable and file, then exit (0: would start, 2: one line naming the problem)",
       switch=True),
    # Simulator
    _o("num_gpus", "--num-gpus", "NUM_FAKE_GPUS", "4", "number of simulated GPUs", "N", group="simulator"),
    _o("profile", "--profile", "METRIC_PROFILE", "static", f"profile for every GPU: {', '.join(PROFILE_NAMES)}",
       "NAME", group="simulator"),
    _o("gpu_profiles", "--gpu-profiles", "GPU_PROFILES", None,
       "comma list of profiles assigned to GPUs round-robin (overrides --profile)", "LIST", group="simulator"),
    _o("update_interval", "--update-interval", "METRIC_UPDATE_INTERVAL", "30",
       "seconds between simulated value updates", "SECONDS", group="simulator"),
    _o("gpu_model", "--gpu-model", "GPU_MODEL", "h100-sxm",
       f"GPU model, or comma list assigned round-robin: {', '.join(SKUS)}", "MODEL", group="simulator"),
    _o("seed", "--seed", "FAKEGPU_SEED", None, "seed for reproducible simulated values", "N", group="simulator"),
    _o("scenario", "--scenario", "OTEL_FAKEGPU_SCENARIO", None,
       "YAML scenario: fleet, workloads and scripted events (see scenarios/)", "FILE", group="simulator"),
    # Workload attribution
    _o("kubernetes", "-k --kubernetes", "DCGM_EXPORTER_KUBERNETES", "false",
       "label series with the pod/namespace/container using each GPU, from the kubelet's pod-resources API",
       switch=True, group="attribution"),
    _o("pod_resources_socket", "--pod-resources-kubelet-socket", "DCGM_POD_RESOURCES_KUBELET_SOCKET",
       DEFAULT_SOCKET, "the kubelet's pod-resources Unix socket", "PATH", group="attribution"),
    _o("kubernetes_gpu_id_type", "--kubernetes-gpu-id-type", "DCGM_EXPORTER_KUBERNETES_GPU_ID_TYPE", "uid",
       "how the device plugin names whole GPUs: uid (GPU UUID) or device-name (nvidiaN)", "TYPE",
       group="attribution"),
    _o("nvidia_resource_names", "--nvidia-resource-names", "NVIDIA_RESOURCE_NAMES", None,
       "extra resource names that are GPUs, comma list (nvidia.com/gpu and nvidia.com/mig-* always are)", "LIST",
       group="attribution"),
    _o("kubernetes_enable_pod_uid", "--kubernetes-enable-pod-uid", "DCGM_EXPORTER_KUBERNETES_ENABLE_POD_UID",
       "false", "add the pod_uid label", switch=True, group="attribution"),
    _o("kubernetes_virtual_gpus", "--kubernetes-virtual-gpus", "KUBERNETES_VIRTUAL_GPUS", "false",
       "accepted for dcgm-exporter compatibility: shared GPUs always get one series per container here",
       switch=True, group="attribution"),
    _o("use_old_namespace", "-o --use-old-namespace", "DCGM_EXPORTER_USE_OLD_NAMESPACE", "false",
       "dcgm-exporter 1.x label names: uuid, pod_name, pod_namespace, container_name", switch=True,
       group="attribution"),
    _o("pod_list_file", "--pod-list-file", "DCGM_EXPORTER_POD_LIST_FILE", None,
       "koordinator's pod list (JSON array of name/namespace/container/gpu_list), re-read when it changes",
       "FILE", group="attribution"),
    _o("hpc_job_mapping_dir", "--hpc-job-mapping-dir", "DCGM_HPC_JOB_MAPPING_DIR", None,
       "HPC job mapping directory: a file per GPU index, one job id per line (label hpc_job)", "DIR",
       group="attribution"),
    _o("jobstats_series", "--jobstats-series", "OTEL_FAKEGPU_JOBSTATS_SERIES", "false",
       "also serve the jobstats GPU exporter's nvidia_gpu_jobId for attributed HPC jobs",
       switch=True, group="attribution"),
    _o("attribution_timeout", "--attribution-timeout", "OTEL_FAKEGPU_ATTRIBUTION_TIMEOUT", None,
       "how long a cycle waits for the attribution source, milliseconds, 1-600000 (default a quarter of the "
       "cycle, at most 2000)", "MS", group="attribution"),
    _o("mig", "--mig", "OTEL_FAKEGPU_MIG", None,
       "MIG partitions, GPUS:PROFILE*N groups, e.g. 0-3:1g.10gb*7,4:3g.40gb*2 ('+' mixes profiles on a GPU)",
       "SPEC", group="simulator"),
    _o("list_gpu_models", "--list-gpu-models", "", None, "print the GPU models (SKUs) with their figures and exit",
       switch=True, group="simulator"),
    _o("hosts", "--hosts", "OTEL_FAKEGPU_HOSTS", "1",
       "simulated hosts, each with --num-gpus GPUs, its own Hostname (NAME-0, NAME-1, ...) and /hosts/NAME/metrics",
       "N", group="simulator"),
    _o("workers", "--workers", "OTEL_FAKEGPU_WORKERS", None,
       "worker processes the hosts are split over (default: the number of cores, at most one per host)", "N",
       group="simulator"),
    _o("shard", "--shard", "OTEL_FAKEGPU_SHARD", "0/1",
       "simulate only shard I of N of the hosts (those whose index i has i %% N == I), e.g. a StatefulSet ordinal",
       "I/N", group="simulator"),
    # Serving
    _o("uds", "--uds", "UDS_SOCKET_PATH", None,
       f"also serve on this Unix socket (the variable needs ENABLE_UDS=true; default {DEFAULT_SOCKET_PATH})",
       "PATH", group="serving"),
    _o("enable_uds", "--enable-uds", "ENABLE_UDS", "false", "serve on the Unix socket", switch=True,
       group="serving"),
    _o("uds_mode", "--uds-mode", "UDS_SOCKET_MODE", f"{DEFAULT_MODE:04o}", "permission bits of the socket", "MODE",
       group="serving"),
    _o("uds_group", "--uds-group", "UDS_SOCKET_GROUP", None, "group owning the socket", "GROUP", group="serving"),
    _o("web_config", "--web-config-file", "DCGM_EXPORTER_WEB_CONFIG_FILE", None,
       "exporter-toolkit web config: TLS and basic auth for TCP", "FILE", group="serving"),
    _o("control_token", "--control-token", "OTEL_FAKEGPU_CONTROL_TOKEN", None,
       "also serve the control API on TCP, to requests with Authorization: Bearer TOKEN", "TOKEN", group="serving"),
    _o("idle_timeout", "--idle-timeout", "OTEL_FAKEGPU_IDLE_TIMEOUT", f"{DEFAULT_IDLE_TIMEOUT_S:g}",
       "seconds before closing a connection that sends no complete request", "SECONDS", group="serving"),
    # Push
    _o("otlp_endpoint", "--otlp-endpoint", "OTEL_EXPORTER_OTLP_METRICS_ENDPOINT OTEL_EXPORTER_OTLP_ENDPOINT", None,
       "push OTLP to this collector (gRPC host:port or URL; HTTP base or /v1/metrics URL)", "URL", group="push"),
    _o("otlp_protocol", "--otlp-protocol", "OTEL_EXPORTER_OTLP_METRICS_PROTOCOL OTEL_EXPORTER_OTLP_PROTOCOL",
       "http/protobuf", "grpc or http/protobuf", "PROTO", group="push"),
    _o("otlp_headers", "--otlp-headers", "OTEL_EXPORTER_OTLP_METRICS_HEADERS OTEL_EXPORTER_OTLP_HEADERS", None,
       "request headers, k=v,k2=v2 (values URL-encoded)", "LIST", group="push"),
    _o("otlp_compression", "--otlp-compression",
       "OTEL_EXPORTER_OTLP_METRICS_COMPRESSION OTEL_EXPORTER_OTLP_COMPRESSION", "gzip", "gzip or none", "NAME",
       group="push"),
    _o("otlp_timeout", "--otlp-timeout", "OTEL_EXPORTER_OTLP_METRICS_TIMEOUT OTEL_EXPORTER_OTLP_TIMEOUT", "10000",
       "per-request timeout in milliseconds (the OpenTelemetry specification's unit)", "MS", group="push"),
    _o("otlp_insecure", "--otlp-insecure", "OTEL_EXPORTER_OTLP_METRICS_INSECURE OTEL_EXPORTER_OTLP_INSECURE", None,
       "gRPC without TLS (default: from the endpoint's scheme)", switch=True, group="push"),
    _o("export_interval", "--otlp-export-interval", "OTEL_METRIC_EXPORT_INTERVAL", None,
       "push at most every this many milliseconds (default: every cycle)", "MS", group="push"),
    _o("naming", "--naming", "OTEL_FAKEGPU_NAMING", "dcgm",
       "names pushed over OTLP: dcgm, otel (semantic conventions) or both", "NAMING", group="push"),
    _o("otlp_max_points", "--otlp-max-points", "OTEL_FAKEGPU_OTLP_MAX_POINTS", "8000",
       "data points per OTLP request (keeps requests under a receiver's 4 MiB limit)", "N", group="push"),
    _o("push_prometheus_url", "--push-prometheus-url", "OTEL_FAKEGPU_PUSH_PROMETHEUS_URL", None,
       "POST the Prometheus text exposition here every cycle (DigitalOcean-style)", "URL", group="push"),
    _o("push_buffer_points", "--push-buffer-points", "OTEL_FAKEGPU_PUSH_BUFFER_POINTS", "2000000",
       "points each push target keeps for retry while its receiver is down", "N", group="push"),
    _o("traces_exporter", "--traces-exporter", "OTEL_TRACES_EXPORTER", "none",
       "trace each cycle and push request: none, otlp (to OTEL_EXPORTER_OTLP_TRACES_ENDPOINT or "
       "OTEL_EXPORTER_OTLP_ENDPOINT) or console", "NAME", group="push"),
)  # fmt: skip

_GROUPS = {
    "exporter": "exporter",
    "engine": "engine: simulated or real GPUs (DCGM, NVML)",
    "simulator": "simulated GPUs (the embedded engine, or DCGM with --inject)",
    "attribution": "workload attribution: kubelet, pod list file, HPC jobs (default: simulated workloads)",
    "serving": "serving: Unix socket, TLS, basic auth",
    "push": "push: OTLP and Prometheus text",
}


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        raise ConfigError(message)


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog=PROG,
        description="dcgm-exporter-compatible GPU metrics from simulated (default) or real GPUs, "
        "through OpenTelemetry. Every option falls back to the environment variable shown. "
        "Subcommand: otel-fakegpu backfill --help (a scenario's history as OpenMetrics).",
    )
    groups = {key: parser.add_argument_group(title) for key, title in _GROUPS.items()}
    for opt in OPTIONS:
        env_note = f" [env {', '.join(opt.envs)}]" if opt.envs else ""
        default_note = f" (default {opt.default})" if opt.default and not opt.is_switch else ""
        group = groups[opt.group]
        if opt.is_switch:
            group.add_argument(
                *opt.flags, dest=opt.dest, action="store_const", const="true", default=None, help=opt.help + env_note
            )
        else:
            group.add_argument(
                *opt.flags, dest=opt.dest, default=None, metavar=opt.metavar, help=opt.help + default_note + env_note
            )
    parser.add_argument("--version", action="version", version=f"{PROG} {__version__}")
    return parser


def resolve(
    argv: Sequence[str], env: Mapping[str, str], presets: Mapping[str, Mapping[str, str]]
) -> dict[str, OptionValue]:
    """Flag, else the first variable set, else the preset's default, else the built-in default."""
    ns = build_parser().parse_args(list(argv))
    values: dict[str, OptionValue] = {}
    for opt in OPTIONS:
        given = getattr(ns, opt.dest)
        env_name = next((name for name in opt.envs if name in env), None)
        if given is not None:
            values[opt.dest] = OptionValue(given, opt.flags[-1], "flag")
        elif env_name is not None:
            values[opt.dest] = OptionValue(env[env_name], env_name, "env")
        else:
            values[opt.dest] = OptionValue(opt.default, opt.flags[-1], "default")
    preset = (values["preset"].text or "").strip().lower()
    if preset:
        if preset not in presets:
            raise ConfigError(f"{values['preset'].source}={preset!r}: unknown preset (known: {', '.join(presets)})")
        for dest, text in presets[preset].items():
            if not values[dest].given:
                values[dest] = OptionValue(text, f"--preset {preset}", "preset")
    return values
