"""Reading an exposition page and making basic-auth credentials: helpers several test modules share."""

from __future__ import annotations

import base64
import re

import bcrypt
from prometheus_client.parser import text_string_to_metric_families


def gpu_value(body: str | bytes, name: str, gpu: int) -> str | None:
    """The text of ``name``'s sample for GPU ``gpu`` on a dcgm-exporter page, or None when it has no series."""
    text = body.decode() if isinstance(body, bytes) else body
    match = re.search(rf'^{name}{{gpu="{gpu}",[^}}]*}} (\S+)$', text, re.M)
    return match.group(1) if match else None


def reloads(body: str) -> dict[str, float]:
    """``otel_fakegpu_reloads_total`` by result (``ok``, ``failed``) on a page."""
    return {
        s.labels["result"]: s.value
        for f in text_string_to_metric_families(body)
        for s in f.samples
        if s.name == "otel_fakegpu_reloads_total"
    }


def push_metrics(body: str | bytes) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every ``otel_fakegpu_push*`` sample on a page, by name and sorted labels."""
    text = body.decode() if isinstance(body, bytes) else body
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for f in text_string_to_metric_families(text)
        for s in f.samples
        if s.name.startswith("otel_fakegpu_push")
    }


def bcrypt_hash(password: bytes, cost: int = 4) -> str:
    """A bcrypt hash for a web config's ``basic_auth_users`` (cost 4: the cheapest bcrypt allows, for speed)."""
    return bcrypt.hashpw(password, bcrypt.gensalt(rounds=cost)).decode()


def basic_auth(user: str, password: bytes) -> str:
    """The ``Authorization`` header's value for HTTP basic auth."""
    return "Basic " + base64.b64encode(user.encode() + b":" + password).decode()
