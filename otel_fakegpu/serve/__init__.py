"""Floor 7: serving the outputs over HTTP: TCP :9400 (TLS, basic auth) and a Unix domain socket."""

from typing import TYPE_CHECKING

from otel_fakegpu import lazy_exports

if TYPE_CHECKING:  # the names load with their module, on first use (lazy_exports)
    from otel_fakegpu.serve.accept import DEFAULT_IDLE_TIMEOUT_S
    from otel_fakegpu.serve.control import ControlPort
    from otel_fakegpu.serve.health import HealthReport, evaluate
    from otel_fakegpu.serve.http import Listeners, build_app, start
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

if not TYPE_CHECKING:  # mypy sees the imports above, and no __getattr__ that would accept any name
    __getattr__ = lazy_exports(
        __name__,
        {
            "control": ("ControlPort",),
            "health": ("HealthReport", "evaluate"),
            "accept": ("DEFAULT_IDLE_TIMEOUT_S",),
            "http": ("Listeners", "build_app", "start"),
            "pages": ("MetricsSource",),
            "reload": ("reload_on_sighup",),
            "uds": (
                "DEFAULT_MODE",
                "DEFAULT_SOCKET_PATH",
                "BoundSocket",
                "UdsError",
                "UdsSettings",
                "bind_unix_socket",
                "check_socket_path",
            ),
            "webconfig": ("LiveWebConfig", "WebConfig", "WebConfigError", "load_web_config"),
        },
    )
