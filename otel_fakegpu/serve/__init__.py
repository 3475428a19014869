"""Floor 7: serving the outputs over HTTP: TCP :9400 (TLS, basic auth) and a Unix domain socket."""

from otel_fakegpu.serve.control import ControlPort
from otel_fakegpu.serve.health import HealthReport, evaluate
from otel_fakegpu.serve.http import DEFAULT_IDLE_TIMEOUT_S, Listeners, build_app, start
from otel_fakegpu.serve.pages import MetricsSource
from otel_fakegpu.serve.reload import reload_on_sighup
from otel_fakegpu.serve.uds import (
    DEFAULT_MODE,
    DEFAULT_SOCKET_PATH,
    BoundSocket,
    UdsError,
    UdsSettings,
    bind_unix_socket,
    check_socket_path,
)
from otel_fakegpu.serve.webconfig import LiveWebConfig, WebConfig, WebConfigError, load_web_config

__all__ = [
    "DEFAULT_IDLE_TIMEOUT_S",
    "DEFAULT_MODE",
    "DEFAULT_SOCKET_PATH",
    "BoundSocket",
    "ControlPort",
    "HealthReport",
    "Listeners",
    "LiveWebConfig",
    "MetricsSource",
    "UdsError",
    "UdsSettings",
    "WebConfig",
    "WebConfigError",
    "bind_unix_socket",
    "build_app",
    "check_socket_path",
    "evaluate",
    "load_web_config",
    "reload_on_sighup",
    "start",
]
