"""Basic auth and the web config under hostile input: long passwords and bad hashes are refusals, never
500s; refusals take as long for unknown users as for known ones; the web config file is read with bounds
and every bad value is one line naming the file."""

from __future__ import annotations

import asyncio
import http.client
import statistics
import time
from pathlib import Path

import pytest
import trustme
from cryptography.hazmat.primitives import serialization

from otel_fakegpu.serve import WebConfigError, load_web_config
from otel_fakegpu.serve.auth import BasicAuth, HashError
from tests.conftest import free_port, run_cli, start_exporter
from tests.pages import basic_auth, bcrypt_hash

PASSWORD = b"correct horse"


def test_long_password_and_unknown_users_are_401_not_500(tmp_path: Path) -> None:
    config = tmp_path / "web.yml"
    config.write_text(f"basic_auth_users:\n  alice: '{bcrypt_hash(PASSWORD)}'\n")
    port = free_port()
    exporter = start_exporter(
        ["--num-gpus", "1", "--web-config-file", str(config), "--uds", str(tmp_path / "m.sock")],
        address=f"127.0.0.1:{port}",
        uds=tmp_path / "m.sock",
    )
    try:
        for user, password in (("alice", b"x" * 73), ("alice", b"y" * 5000), ("nobody", b"z" * 100)):
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
            conn.request("GET", "/metrics", headers={"Authorization": basic_auth(user, password)})
            assert conn.getresponse().status == 401
            conn.close()
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        conn.request("GET", "/metrics", headers={"Authorization": basic_auth("alice", PASSWORD)})
        assert conn.getresponse().status == 200
        conn.close()
    finally:
        exporter.stop()
    assert "Traceback" not in exporter.stderr_text()


def _median_check_s(auth: BasicAuth, header: str, rounds: int = 5) -> float:
    """The median CPU time of the process (the check's bcrypt runs on an executor thread) for one refused check:
    the work a guesser can time, and unlike wall time not stretched by whatever else shares the machine."""

    async def timed() -> list[float]:
        spans = []
        for _ in range(rounds):
            started = time.process_time()
            assert not await auth.check(header)
            spans.append(time.process_time() - started)
        return spans

    return statistics.median(asyncio.run(timed()))


def test_refusals_take_as_long_for_unknown_users_as_for_known_ones() -> None:
    auth = BasicAuth({"alice": bcrypt_hash(PASSWORD, cost=8).encode()})
    known = _median_check_s(auth, basic_auth("alice", b"wrong"))
    unknown = _median_check_s(auth, basic_auth("mallory", b"wrong"))
    too_long = _median_check_s(auth, basic_auth("alice", b"w" * 100))
    assert known > 0.002  # a real bcrypt check of cost 8
    assert unknown > known / 2 and too_long > known / 2, (known, unknown, too_long)


def test_hashes_are_checked_when_loaded() -> None:
    good = bcrypt_hash(PASSWORD).encode()
    for bad in (b"$2b$04$short", good[:-1] + b"!", b"$2b$31$" + good[7:], b"$2b$03$" + good[7:], b"plain"):
        with pytest.raises(HashError):
            BasicAuth({"alice": bad})


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("basic_auth_users:\n  alice: '$2b$31$" + "a" * 53 + "'\n", "'alice' has bcrypt cost 31, outside 4-16"),
        ("basic_auth_users:\n  alice: '$2b$10$tooshort'\n", "'alice' needs a bcrypt hash"),
        ("basic_auth_users:\n  alice: [1, 2]\n", "'alice' needs a bcrypt hash"),
        ('http_server_config:\n  headers:\n    X-A: "a\\r\\nSet-Cookie: x=1"\n', "without control characters"),
        ("http_server_config:\n  headers:\n    X-A: [1, 2]\n", "without control characters"),
        ("http_server_config:\n  headers:\n    'Bad Name': x\n", "is not a header name"),
        ("tls_server_config:\n  cert_file: [a]\n  key_file: b\n", "needs both cert_file and key_file"),
        ("tls_server_config: {1: a, b: c}\n", "unknown key '1'"),
        ("a: &a [1]\n" + "".join(f"b{i}: &b{i} [*b{i - 1 if i else 0}]\n" for i in range(40)), "aliases|invalid"),
        ("x: " + "[" * 5000 + "]" * 5000 + "\n", "nested deeper than 16"),
        ("tls_server_config: \x01\n", "invalid YAML"),
    ],
)
def test_bad_web_config_values_are_one_line(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "web.yml"
    path.write_text(text)
    with pytest.raises(WebConfigError, match=message) as info:
        load_web_config(path)
    assert str(info.value).startswith(str(path)) and "\n" not in str(info.value)


def test_alias_bomb_under_headers_is_refused_quickly(tmp_path: Path) -> None:
    lines = ["a0: &a0 [x, x, x, x, x, x, x, x, x]"]
    lines += [f"a{i}: &a{i} [*a{i - 1}, *a{i - 1}, *a{i - 1}, *a{i - 1}]" for i in range(1, 20)]
    lines += ["http_server_config:", "  headers:", "    X-Bomb: *a19"]
    path = tmp_path / "web.yml"
    path.write_text("\n".join(lines) + "\n")
    started = time.perf_counter()
    with pytest.raises(WebConfigError):
        load_web_config(path)
    assert time.perf_counter() - started < 5


def test_unreadable_web_configs(tmp_path: Path) -> None:
    with pytest.raises(WebConfigError, match="a character device, not a regular file"):
        load_web_config("/dev/zero")
    binary = tmp_path / "web.yml"
    binary.write_bytes(b"basic_auth_users:\n  alice: \xff\xfe\n")
    with pytest.raises(WebConfigError, match=r"web.yml:2: web config is not UTF-8 text \(byte 0xff\)"):
        load_web_config(binary)
    with pytest.raises(WebConfigError, match="not a regular file"):
        (tmp_path / "dev.yml").write_text("tls_server_config:\n  cert_file: /dev/zero\n  key_file: /dev/zero\n")
        load_web_config(tmp_path / "dev.yml")


def test_encrypted_key_is_refused_without_a_prompt(tmp_path: Path) -> None:
    ca = trustme.CA()
    cert = ca.issue_cert("localhost")
    key = serialization.load_pem_private_key(cert.private_key_pem.bytes(), None)
    encrypted = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.BestAvailableEncryption(b"secret"),
    )
    (tmp_path / "server.key").write_bytes(encrypted)
    cert.cert_chain_pems[0].write_to_path(str(tmp_path / "server.crt"))
    config = tmp_path / "web.yml"
    config.write_text("tls_server_config:\n  cert_file: server.crt\n  key_file: server.key\n")
    result = run_cli("--web-config-file", str(config), timeout=30)  # stdin is not a terminal: a prompt would hang
    assert result.returncode == 2
    assert result.stderr.strip().endswith("key_file server.key is encrypted; give an unencrypted key")
    assert len(result.stderr.strip().splitlines()) == 1
