"""--web-config-file: TLS with a generated certificate, client certificates, and basic auth."""

from __future__ import annotations

import asyncio
import base64
import ssl
import urllib.error
import urllib.request
from pathlib import Path

import pytest
import trustme
from aiohttp.test_utils import TestClient, TestServer

from otel_fakegpu.outputs import Format
from otel_fakegpu.serve import HealthReport, LiveWebConfig, WebConfig, WebConfigError, build_app, load_web_config
from tests.conftest import free_port, run_cli, start_exporter, uds_get
from tests.pages import bcrypt_hash

PASSWORD = b"correct horse"


@pytest.fixture(scope="module")
def ca() -> trustme.CA:
    return trustme.CA()


def _write_tls(tmp_path: Path, ca: trustme.CA) -> None:
    server = ca.issue_cert("127.0.0.1", "localhost")
    server.cert_chain_pems[0].write_to_path(str(tmp_path / "server.crt"))
    server.private_key_pem.write_to_path(str(tmp_path / "server.key"))
    ca.cert_pem.write_to_path(str(tmp_path / "ca.crt"))


def _get(url: str, context: ssl.SSLContext, auth: tuple[str, bytes] | None = None) -> tuple[int, dict[str, str]]:
    request = urllib.request.Request(url)
    if auth is not None:
        token = base64.b64encode(auth[0].encode() + b":" + auth[1]).decode()
        request.add_header("Authorization", f"Basic {token}")
    try:
        with urllib.request.urlopen(request, timeout=10, context=context) as resp:
            resp.read()
            return resp.status, dict(resp.headers)
    except urllib.error.HTTPError as err:
        return err.code, dict(err.headers)


def test_tls_and_basic_auth(tmp_path: Path, ca: trustme.CA) -> None:
    _write_tls(tmp_path, ca)
    config = tmp_path / "web.yml"
    config.write_text(
        "tls_server_config:\n  cert_file: server.crt\n  key_file: server.key\n"  # relative to the file
        f"basic_auth_users:\n  prometheus: '{bcrypt_hash(PASSWORD)}'\n"
        "http_server_config:\n  headers:\n    X-Frame-Options: deny\n"
    )
    sock = tmp_path / "m.sock"  # readiness is checked over the socket: TCP needs TLS and a password
    port = free_port()
    exporter = start_exporter(
        ["--web-config-file", str(config), "--uds", str(sock)], address=f"127.0.0.1:{port}", uds=sock
    )
    try:
        client = ssl.create_default_context()
        ca.configure_trust(client)
        url = f"https://127.0.0.1:{port}/metrics"
        status, headers = _get(url, client, ("prometheus", PASSWORD))
        assert status == 200 and headers["X-Frame-Options"] == "deny"
        for auth in (("prometheus", b"wrong"), ("nobody", PASSWORD), None):
            status, headers = _get(url, client, auth)
            assert status == 401
            assert headers["WWW-Authenticate"] == 'Basic realm="otel-fakegpu"'
        assert _get(url, client, ("prometheus", PASSWORD))[0] == 200  # remembered, still right
        with pytest.raises((urllib.error.URLError, ConnectionError)):  # plain HTTP to the TLS port
            urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5)
        untrusting = ssl.create_default_context()
        with pytest.raises(urllib.error.URLError):
            _get(url, untrusting, ("prometheus", PASSWORD))
        assert uds_get(sock, "/metrics")[0] == 200  # the socket relies on file permissions
    finally:
        exporter.stop()


def test_client_certificates_required(tmp_path: Path, ca: trustme.CA) -> None:
    _write_tls(tmp_path, ca)
    config = tmp_path / "web.yml"
    config.write_text(
        f"tls_server_config:\n  cert_file: {tmp_path / 'server.crt'}\n  key_file: {tmp_path / 'server.key'}\n"
        f"  client_ca_file: {tmp_path / 'ca.crt'}\n  client_auth_type: RequireAndVerifyClientCert\n"
    )
    port = free_port()
    sock = tmp_path / "ready.sock"
    exporter = start_exporter(
        ["--web-config-file", str(config), "--uds", str(sock)], address=f"127.0.0.1:{port}", uds=sock
    )
    try:
        url = f"https://127.0.0.1:{port}/metrics"
        without = ssl.create_default_context()
        ca.configure_trust(without)
        with pytest.raises((urllib.error.URLError, ssl.SSLError, ConnectionError)):
            _get(url, without)
        with_cert = ssl.create_default_context()
        ca.configure_trust(with_cert)
        ca.issue_cert("scraper@example.org").configure_cert(with_cert)
        assert _get(url, with_cert)[0] == 200
    finally:
        exporter.stop()


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("tls_server_config:\n  cert_file: a.crt\n", "needs both cert_file and key_file"),
        ("tls_server_config:\n  cert_file: none.crt\n  key_file: none.key\n", "cannot load cert_file/key_file"),
        ("tls_server_config:\n  cert_file: a\n  key_file: b\n  ciphers: x\n", "unknown key 'ciphers'"),
        ("basic_auth_users:\n  alice: plaintext\n", "'alice' needs a bcrypt hash"),
        ("basic_auth_user:\n  alice: x\n", "unknown key 'basic_auth_user'"),
        ("tls_server_config: [\n", "invalid YAML"),
        ("- a\n- b\n", "expected a mapping"),
    ],
)
def test_bad_web_config_is_named(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "web.yml"
    path.write_text(text)
    with pytest.raises(WebConfigError, match=message) as info:
        load_web_config(path)
    assert str(info.value).startswith(str(path))


def test_bad_web_config_exits_2(tmp_path: Path) -> None:
    path = tmp_path / "web.yml"
    path.write_text("basic_auth_users:\n  alice: plaintext\n")
    result = run_cli("--web-config-file", str(path))
    assert result.returncode == 2
    assert (
        result.stderr.strip()
        == f"otel-fakegpu: error: {path}: basic_auth_users: 'alice' needs a bcrypt hash ($2a$/$2b$/$2y$...)"
    )
    missing = run_cli("--web-config-file", str(tmp_path / "none.yml"))
    assert missing.returncode == 2 and "cannot read web config" in missing.stderr


class _OneHost:
    def hosts(self) -> list[str]:
        return ["h"]

    def host_labels(self, host: str) -> dict[str, str]:
        return {}

    def serving(self, host: str | None) -> tuple[str, float]:
        return ("ok", 0.0)

    async def exposition(self, host: str | None, fmt: Format, gzipped: bool) -> tuple[bytes, float]:
        return b"x 1\n", 0.0

    def cached(self, host: str | None, fmt: Format, gzipped: bool) -> tuple[bytes, float]:
        return b"x 1\n", 0.0  # held: only the password decides


def test_reloaded_passwords_replace_the_old_ones(tmp_path: Path) -> None:
    """After each reload only the new password works: a checker kept for an old users mapping (once keyed on its
    id(), which CPython reuses once the old mapping is freed) must never accept the replaced password."""
    path = tmp_path / "web.yml"

    seen: list[str] = []

    def load(password: str) -> WebConfig:
        seen.append(password)
        path.write_text(f"basic_auth_users:\n  alice: '{bcrypt_hash(password.encode())}'\n")
        return load_web_config(path)

    def header(password: str) -> dict[str, str]:
        return {"Authorization": "Basic " + base64.b64encode(f"alice:{password}".encode()).decode()}

    async def scenario() -> None:
        live = LiveWebConfig(load("pw0"))
        app = build_app(_OneHost(), lambda: HealthReport(True, {}), live)
        async with TestClient(TestServer(app)) as client:
            assert (await client.get("/metrics", headers=header("pw0"))).status == 200
            for round_ in range(1, 4):  # reloads with no request between them, as a SIGHUP loop would do
                for reload in range(3):
                    live.replace(load(f"pw{round_}.{reload}"))
                statuses = {pw: (await client.get("/metrics", headers=header(pw))).status for pw in seen}
                assert statuses == {**dict.fromkeys(seen, 401), f"pw{round_}.2": 200}, f"round {round_}"

    asyncio.run(scenario())
