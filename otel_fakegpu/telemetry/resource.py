"""The OpenTelemetry resource every pipeline of a host carries: its service and host names."""

from __future__ import annotations

import functools
import os
import socket
from collections.abc import Mapping

from opentelemetry.sdk.resources import Resource

from otel_fakegpu import __version__


def default_resource(service_name: str, host_name: str | None, extra: Mapping[str, str] | None = None) -> Resource:
    """``service.*`` and ``host.name``, plus ``extra`` (OTEL_RESOURCE_ATTRIBUTES).

    ``service.instance.id`` defaults to the host name rather than the SDK's random per-process id: every
    restart would otherwise start new series in the receiving TSDB.
    """
    host = host_name or socket.gethostname()
    attributes: dict[str, str] = {"service.instance.id": host, **(extra or {})}
    attributes.update({"service.name": service_name, "service.version": __version__, "host.name": host})
    # Resource.create(attributes), with the detectors run once per environment rather than once per host: they
    # start threads, and a fleet builds thousands of resources. ``attributes`` always names the service, so
    # create's unknown_service fallback never applies and the merge on top gives the same resource.
    env = tuple(os.environ.get(name) for name in _RESOURCE_ENV)
    return _detected_resource(env).merge(Resource(attributes))


# What the SDK's resource detection reads from the environment.
_RESOURCE_ENV = ("OTEL_RESOURCE_ATTRIBUTES", "OTEL_SERVICE_NAME", "OTEL_EXPERIMENTAL_RESOURCE_DETECTORS")


@functools.lru_cache(maxsize=4)
def _detected_resource(env: tuple[str | None, ...]) -> Resource:
    """The SDK's detected resource for the environment ``env`` (its values of _RESOURCE_ENV) stands for."""
    return Resource.create({"service.name": "placeholder"})
