"""``backfill --out`` never replaces what is not its own: a device, FIFO, directory or symlink is refused before any
work, a failed write (full disk, file size limit, closed pipe) is one line and exit 1, and no partial file is
left behind by a failure or a SIGTERM. The work itself is bounded (steps x GPUs) and the span is in the past."""

from __future__ import annotations

import os
import resource
import signal
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import exporter_env, run_cli
from tests.polling import wait_until

SCENARIO = "gpus:\n  - {count: 2, model: h100-sxm, profile: static}\n"
SHORT = ("--start", "-10m", "--step", "30s")


def _scenario(tmp_path: Path) -> Path:
    path = tmp_path / "s.yaml"
    path.write_text(SCENARIO)
    return path


def _one_line(stderr: str) -> str:
    lines = stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in stderr, stderr[-2000:]
    return lines[0]


def _make_fifo(path: Path) -> None:
    os.mkfifo(path)


def _make_symlink_to_dev_null(path: Path) -> None:
    path.symlink_to("/dev/null")


def _make_directory(path: Path) -> None:
    path.mkdir()


def _make_char_device(path: Path) -> None:
    if os.geteuid() != 0:
        pytest.skip("mknod needs root")
    os.mknod(path, 0o666 | stat.S_IFCHR, os.makedev(1, 7))  # what /dev/full is


@pytest.mark.parametrize(
    "make", [_make_fifo, _make_symlink_to_dev_null, _make_directory, _make_char_device],
    ids=["fifo", "symlink", "directory", "char-device"],
)  # fmt: skip
def test_out_that_is_not_a_regular_file_is_refused_up_front(tmp_path: Path, make: object) -> None:
    out = tmp_path / "out"
    make(out)  # type: ignore[operator]
    before = os.lstat(out)
    result = run_cli("backfill", "--scenario", str(_scenario(tmp_path)), *SHORT, "--out", str(out), timeout=60)
    assert result.returncode == 2 and "--out=" in _one_line(result.stderr)
    after = os.lstat(out)
    assert (after.st_mode, after.st_ino) == (before.st_mode, before.st_ino)  # untouched
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out", "s.yaml"]  # no partial file


def test_empty_out_is_one_line_exit_2(tmp_path: Path) -> None:
    result = run_cli("backfill", "--scenario", str(_scenario(tmp_path)), *SHORT, "--out", "", timeout=60)
    assert result.returncode == 2 and "--out" in _one_line(result.stderr)


def test_full_standard_output_is_one_line_exit_1(tmp_path: Path) -> None:
    with open("/dev/full", "wb") as full:
        result = subprocess.run(
            [sys.executable, "-m", "otel_fakegpu", "backfill", "--scenario", str(_scenario(tmp_path)), *SHORT,
             "--out", "-"],
            stdout=full, stderr=subprocess.PIPE, text=True, timeout=60, env=exporter_env(), check=False,
        )  # fmt: skip
    assert result.returncode == 1, result.stderr
    assert "No space left on device" in _one_line(
        "\n".join(line for line in result.stderr.splitlines() if "INFO" not in line)
    )


def _small_file_limit() -> None:
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a write past the limit fails (EFBIG) instead of killing
    resource.setrlimit(resource.RLIMIT_FSIZE, (20_000, 20_000))


def test_a_failed_write_is_one_line_exit_1_and_leaves_no_partial_file(tmp_path: Path) -> None:
    out = tmp_path / "out.om"
    out.write_text("the previous output\n")
    result = subprocess.run(
        [sys.executable, "-m", "otel_fakegpu", "backfill", "--scenario", str(_scenario(tmp_path)), *SHORT,
         "--out", str(out)],
        capture_output=True, text=True, timeout=60, env=exporter_env(), preexec_fn=_small_file_limit, check=False,
    )  # fmt: skip
    assert result.returncode == 1, result.stderr
    errors = [line for line in result.stderr.splitlines() if "error:" in line]
    assert len(errors) == 1 and "cannot write" in errors[0] and "Traceback" not in result.stderr, result.stderr
    assert out.read_text() == "the previous output\n"  # the old output stays whole
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.om", "s.yaml"]


def test_sigterm_leaves_no_partial_file(tmp_path: Path) -> None:
    out = tmp_path / "out.om"
    proc = subprocess.Popen(
        [sys.executable, "-m", "otel_fakegpu", "backfill", "--scenario", str(_scenario(tmp_path)),
         "--start", "-6d", "--step", "1s", "--end", "-1d", "--out", str(out)],
        stderr=subprocess.PIPE, env=exporter_env(),
    )  # fmt: skip

    def writing() -> bool:
        assert proc.poll() is None, proc.stderr.read() if proc.stderr else ""
        return any(p.name.endswith(".partial") for p in tmp_path.iterdir())

    wait_until(writing, 60, "the backfill writing its .partial file", interval=0.05)
    proc.send_signal(signal.SIGTERM)
    proc.wait(timeout=30)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["s.yaml"]


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (("--start", "-1h", "--end", "2100-01-01T00:00:00Z"), "in the future"),
        (("--start", "-7d", "--step", "1s"), "GPU-cycles"),
    ],
)
def test_backfill_work_is_bounded(tmp_path: Path, args: tuple[str, ...], needle: str) -> None:
    started = time.monotonic()
    result = run_cli("backfill", "--scenario", str(_scenario(tmp_path)), *args, "--out", str(tmp_path / "o"))
    assert result.returncode == 2 and needle in _one_line(result.stderr)
    assert time.monotonic() - started < 30


@pytest.mark.parametrize(
    "make", [_make_fifo, _make_symlink_to_dev_null, _make_directory], ids=["fifo", "symlink", "directory"]
)
def test_record_out_that_is_not_a_regular_file_is_refused(tmp_path: Path, make: object) -> None:
    out = tmp_path / "capture"
    make(out)  # type: ignore[operator]
    before = os.lstat(out)
    result = run_cli(
        "record", "--from", "http://127.0.0.1:9/metrics", "--duration", "1s", "--out", str(out), timeout=30
    )
    assert result.returncode == 2 and "--out=" in _one_line(result.stderr)
    assert (os.lstat(out).st_mode, os.lstat(out).st_ino) == (before.st_mode, before.st_ino)
