"""Seeded, time-bounded fuzzing of every input read at start: the collectors CSV, the web config and the
environment; and every file the exporter, backfill and the fake kubelet read meeting a FIFO, a device, a directory,
an oversized or deeply nested file. Each case must end in exit 0 or exit 2 with one error line on stderr (never a traceback),
within a time limit and a memory limit. Most cases run in this process through ``cli.check`` (the path
``--check-config`` takes); a sample runs as real ``otel-fakegpu --check-config`` processes to prove the exit
codes. A new input file joins with one line in FILE_TARGETS (a scenario: its seeds and its flag).
"""

from __future__ import annotations

import contextlib
import io
import os
import random
import resource
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import bcrypt
import pytest
import trustme

from otel_fakegpu.attribution import HpcJobSource, PodListSource, Source, SourceError
from otel_fakegpu.attribution.fakekubelet import load_pods
from otel_fakegpu.cli import check
from otel_fakegpu.config.table import OPTIONS
from otel_fakegpu.fields import default_collectors_path
from tests.conftest import ROOT, exporter_env

SEED = 20240611
CASES_PER_TARGET = 500
SUBPROCESS_CASES_PER_TARGET = 4
CASE_LIMIT_S = 5.0  # in process; a subprocess also pays the interpreter start
SUBPROCESS_LIMIT_S = 60.0
MEMORY_GROWTH_LIMIT_MB = 300.0
SUBPROCESS_ADDRESS_SPACE = 2 << 30
FIELDS = Path(ROOT / "otel_fakegpu" / "fields")
TOKENS = [
    b"\xef\xbb\xbf", b"\r\n", b"\r", b"\x00", b"\xff\xfe", b"\xc3", b",", b'"', b"#", b"\t", b"&a ", b"*a",
    b"[" * 200, b"{" * 64, b"- " * 50, b"a" * 5000, b": ", b"\n  ", b"%0d%0a", b"$2b$31$", b"\x1b[2J", b"\\",
    b"\xe2\x80\xae", b"!!python/object:os.system ", b"<<: *a\n", b"9" * 400, b"-", b"inf", b"nan", b"\xd9\xa4",
]  # fmt: skip


def mutate(data: bytes, rng: random.Random) -> bytes:
    """One to four random edits: bit flips, inserted tokens or bytes, deleted or repeated slices, truncation."""
    out = bytearray(data)
    for _ in range(rng.randint(1, 4)):
        at = rng.randint(0, len(out))
        edit = rng.randrange(6)
        if edit == 0 and out:
            out[min(at, len(out) - 1)] ^= 1 << rng.randrange(8)
        elif edit == 1:
            out[at:at] = rng.choice(TOKENS)
        elif edit == 2:
            out[at:at] = bytes(rng.randrange(256) for _ in range(rng.randint(1, 8)))
        elif edit == 3:
            del out[at : at + rng.randint(1, 40)]
        elif edit == 4:
            piece = bytes(out[at : at + rng.randint(1, 80)])
            out[at:at] = piece * rng.randint(1, 50)
        else:
            del out[rng.randint(0, len(out)) :]
    return bytes(out)


@dataclass(frozen=True)
class FileTarget:
    """An input file: valid seeds to mutate, and the flags that hand a file to the exporter."""

    name: str
    seeds: Callable[[Path], list[bytes]]
    argv: Callable[[Path], list[str]]


def _collectors_seeds(folder: Path) -> list[bytes]:
    return [path.read_bytes() for path in sorted(FIELDS.glob("*.csv"))] + [b"\xef\xbb\xbf" + _default_csv()]


def _default_csv() -> bytes:
    return default_collectors_path().read_bytes()


def _web_config_seeds(folder: Path) -> list[bytes]:
    ca = trustme.CA()
    cert = ca.issue_cert("localhost")
    cert.cert_chain_pems[0].write_to_path(str(folder / "server.crt"))
    cert.private_key_pem.write_to_path(str(folder / "server.key"))
    ca.cert_pem.write_to_path(str(folder / "ca.crt"))
    hashed = bcrypt.hashpw(b"pw", bcrypt.gensalt(rounds=4))
    return [
        b"basic_auth_users:\n  alice: '" + hashed + b"'\n  bob: '" + hashed + b"'\n",
        b"tls_server_config:\n  cert_file: server.crt\n  key_file: server.key\n  min_version: TLS12\n"
        b"  client_auth_type: RequireAndVerifyClientCert\n  client_ca_file: ca.crt\n",
        b"http_server_config:\n  headers:\n    X-Frame-Options: deny\n    Content-Security-Policy: default-src 'self'\n"
        b"  http2: false\n",
        b"defaults: &d\n  X-A: a\nhttp_server_config:\n  headers: *d\n",
    ]


FILE_TARGETS = [
    FileTarget("collectors", _collectors_seeds, lambda path: ["-f", str(path)]),
    FileTarget("web_config", _web_config_seeds, lambda path: ["--web-config-file", str(path)]),
]
ENV_NAMES = sorted({name for option in OPTIONS for name in option.envs})
ENV_VALUES = [
    "4", "30000", "0.5", "http://127.0.0.1:4318", "grpc", "http/protobuf", "gzip", "h100-sxm,a100-80gb", "stable",
    "k=v,k2=v%20x", "true", ":9400", "[::1]:9400", "0660", "digitalocean", "both", "127.0.0.1:4317", "",
]  # fmt: skip


def env_case(rng: random.Random) -> dict[str, str]:
    """Two to five variables from the options table, each a known-good value mutated (or left alone)."""
    env = {}
    for name in rng.sample(ENV_NAMES, rng.randint(2, 5)):
        value = rng.choice(ENV_VALUES).encode()
        if rng.random() < 0.8:
            value = mutate(value, rng)[:300]
        env[name] = value.replace(b"\x00", b"").decode("utf-8", errors="surrogateescape")
    return env


@dataclass(frozen=True)
class Case:
    label: str
    argv: list[str]
    env: dict[str, str]


def cases(folder: Path) -> Iterator[Case]:
    rng = random.Random(SEED)
    base = ["-a", "127.0.0.1:0"]
    for target in FILE_TARGETS:
        seeds = target.seeds(folder)
        for number in range(CASES_PER_TARGET):
            path = folder / f"{target.name}-{number}"
            path.write_bytes(mutate(rng.choice(seeds), rng) if number else seeds[0])
            yield Case(f"{target.name} #{number}", [*base, *target.argv(path)], {})
    for number in range(CASES_PER_TARGET):
        yield Case(f"env #{number}", base, env_case(rng))


def _error_lines(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if line.startswith("otel-fakegpu: error:")]


def assert_verdict(case: Case, code: int, stderr: str) -> None:
    assert "Traceback" not in stderr, f"{case.label}: {stderr[-2000:]}"
    assert code in (0, 2), f"{case.label}: exit {code}: {stderr[-2000:]}"
    if code == 2:
        lines = _error_lines(stderr)
        assert len(lines) == 1 and stderr.rstrip().endswith(lines[0]), f"{case.label}: {stderr[-2000:]}"
    else:
        assert not _error_lines(stderr), f"{case.label}: {stderr[-2000:]}"


def _rss_peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


@pytest.mark.timeout(120)
def test_fuzzed_inputs_end_in_exit_0_or_2_with_one_line(tmp_path: Path) -> None:
    all_cases = list(cases(tmp_path))
    peak_before = _rss_peak_mb()
    verdicts = {0: 0, 2: 0}
    for case in all_cases:
        stderr = io.StringIO()
        started = time.perf_counter()
        with contextlib.redirect_stderr(stderr):
            code = check(case.argv, case.env)
        assert time.perf_counter() - started < CASE_LIMIT_S, f"{case.label} took too long"
        assert_verdict(case, code, stderr.getvalue())
        verdicts[code] += 1
    assert _rss_peak_mb() - peak_before < MEMORY_GROWTH_LIMIT_MB
    assert verdicts[0] > 30 and verdicts[2] > 300, verdicts  # the mutations reach both verdicts


def _limit_memory() -> None:
    resource.setrlimit(resource.RLIMIT_AS, (SUBPROCESS_ADDRESS_SPACE, SUBPROCESS_ADDRESS_SPACE))


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_fuzzed_inputs_as_real_processes(tmp_path: Path) -> None:
    all_cases = list(cases(tmp_path))
    rng = random.Random(SEED + 1)
    groups = [all_cases[i : i + CASES_PER_TARGET] for i in range(0, len(all_cases), CASES_PER_TARGET)]
    sample = [case for group in groups for case in rng.sample(group, SUBPROCESS_CASES_PER_TARGET)]
    for case in sample:
        result = subprocess.run(
            [sys.executable, "-m", "otel_fakegpu", "--check-config", *case.argv],
            env=exporter_env(case.env),
            capture_output=True,
            timeout=SUBPROCESS_LIMIT_S,
            preexec_fn=_limit_memory,
            check=False,
        )
        in_process = io.StringIO()
        with contextlib.redirect_stderr(in_process):
            expected = check(case.argv, case.env)
        assert_verdict(case, result.returncode, result.stderr.decode(errors="replace"))
        assert result.returncode == expected, f"{case.label}: {result.stderr.decode(errors='replace')}"


# Files that are not what they claim: every file the exporter, backfill and the fake kubelet read meets a FIFO (no
# writer: a blocking open would hang for ever), a character device behind a symlink (/dev/zero: endless), a
# directory, a file over its size bound and one nested past any sane depth. Each must end in one short error line,
# at once, without reading more than the bound.
SPECIAL_LIMIT_S = 10.0
OVERSIZED_BYTES = 5 << 20  # over every bound (1 MiB configs, 4 MiB pod lists and pods files, 64 KiB job files)


def _special(folder: Path, kind: str, name: str) -> Path:
    path = folder / name
    if kind == "fifo":
        os.mkfifo(path)
    elif kind == "dev-zero":
        path.symlink_to("/dev/zero")
    elif kind == "directory":
        path.mkdir()
    elif kind == "oversized":
        path.write_bytes(b"#" * OVERSIZED_BYTES)
    else:
        path.write_text("[" * 100_000 + "]" * 100_000)
    return path


def _exporter_check(*flags: str) -> Callable[[Path, Path], str]:
    def run(path: Path, folder: Path) -> str:
        stderr = io.StringIO()
        with contextlib.redirect_stderr(stderr):
            code = check(["-a", "127.0.0.1:0", *flags, str(path)], {})
        assert code == 2, stderr.getvalue()
        return stderr.getvalue()

    return run


def _tls_file(key: str) -> Callable[[Path, Path], str]:
    def run(path: Path, folder: Path) -> str:
        seeds = _web_config_seeds(folder)  # writes server.crt, server.key, ca.crt
        web = folder / "web.yml"
        web.write_bytes(seeds[1].replace(f"{key}: {_TLS_NAMES[key]}".encode(), f"{key}: {path}".encode()))
        return _exporter_check("--web-config-file")(web, folder)

    return run


_TLS_NAMES = {"cert_file": "server.crt", "key_file": "server.key", "client_ca_file": "ca.crt"}


def _backfill(flag: str) -> Callable[[Path, Path], str]:
    def run(path: Path, folder: Path) -> str:
        scenario = folder / "good.yaml"
        scenario.write_text("seed: 1\n")
        args = ["--scenario", str(path)] if flag == "--scenario" else ["--scenario", str(scenario), flag, str(path)]
        result = subprocess.run(
            [sys.executable, "-m", "otel_fakegpu", "backfill", "--start", "-1m", "--out", "-", *args],
            env=exporter_env(), capture_output=True, text=True, timeout=SPECIAL_LIMIT_S * 3, check=False,
        )  # fmt: skip
        assert result.returncode == 2, result.stderr
        return result.stderr

    return run


def _source(make: Callable[[Path], Source]) -> Callable[[Path, Path], str]:
    def run(path: Path, folder: Path) -> str:
        source = make(path)
        with pytest.raises(SourceError) as info:
            source.fetch(1.0)
        return str(info.value) + "\n"

    return run


def _job_dir(path: Path) -> Source:
    directory = path.parent / "jobs"
    directory.mkdir()
    path.rename(directory / "0")  # a GPU's job file
    (directory / "1").write_bytes(b"7\n")
    return HpcJobSource(directory)


def _kubelet_pods(path: Path, folder: Path) -> str:
    with pytest.raises(ValueError) as info:
        load_pods(path)
    return str(info.value) + "\n"


READERS: dict[str, Callable[[Path, Path], str]] = {
    "collectors": _exporter_check("-f"),
    "web-config": _exporter_check("--web-config-file"),
    "scenario": _exporter_check("--scenario"),
    "replay-capture": _exporter_check("--engine", "replay", "--replay-file"),
    **{f"tls-{key}": _tls_file(key) for key in _TLS_NAMES},
    "backfill-scenario": _backfill("--scenario"),
    "backfill-collectors": _backfill("-f"),
    "pod-list": _source(PodListSource),
    "fake-kubelet-pods": _kubelet_pods,
}
KINDS = ["fifo", "dev-zero", "directory", "oversized", "nested"]


@pytest.mark.timeout(120)
@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize(
    "reader",
    # the backfill readers run the command as a process; the reading of tests/markers.py cannot see into READERS
    [pytest.param(r, marks=pytest.mark.process) if r.startswith("backfill") else r for r in sorted(READERS)],
)
def test_special_files_are_one_line_errors_at_once(tmp_path: Path, reader: str, kind: str) -> None:
    path = _special(tmp_path, kind, "input")
    started = time.monotonic()
    stderr = READERS[reader](path, tmp_path)
    assert time.monotonic() - started < SPECIAL_LIMIT_S * (3 if reader.startswith("backfill") else 1)
    lines = [line for line in stderr.splitlines() if "INFO" not in line]
    assert len(lines) == 1 and "Traceback" not in stderr and len(lines[0]) < 1000, stderr[-2000:]


@pytest.mark.parametrize("kind", ["oversized", "nested"])
def test_hpc_job_files_past_their_bounds_fail_the_fetch(tmp_path: Path, kind: str) -> None:
    """A job file that is a FIFO, device or directory is no GPU file at all (as in dcgm-exporter); too large or
    holding too many jobs, it fails the fetch with one line."""
    path = _special(tmp_path, "oversized", "input") if kind == "oversized" else tmp_path / "input"
    if kind == "nested":
        path.write_text("".join(f"{i}\n" for i in range(20_000)))
    assert len(_source(_job_dir)(path, tmp_path).splitlines()) == 1
