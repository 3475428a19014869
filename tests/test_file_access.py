"""Every place the package opens a file, listed from the source: a user's file is read only through the one
bounded, non-blocking reader (otel_fakegpu.config.files: O_NONBLOCK, fstat, regular files only, a size cap,
UTF-8). A new ``open(``, ``os.open``, ``Path.open``/``read_text``/``read_bytes`` or a library call that opens a
path itself fails here until it goes through the reader or joins the commented allow-list below."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / "otel_fakegpu"
OPENING_NAMES = {"open"}  # the builtin, io.open, os.open, Path.open, tempfile's and gzip's are all caught by name
OPENING_ATTRIBUTES = {
    "open", "read_text", "read_bytes", "write_text", "write_bytes", "load_cert_chain", "load_verify_locations",
    "fdopen", "TemporaryFile", "NamedTemporaryFile",
}  # fmt: skip

# (file under otel_fakegpu/, the called name): why it may open a file without the reader.
ALLOWED = {
    # The reader itself: os.open with O_NONBLOCK, then fstat and a bounded read.
    ("config/files.py", "open"): "the one bounded, non-blocking reader",
    # Writes: the backfill's output file, created by the exporter itself next to the target (never a user's file
    # read), and its spools in the system's temporary folder.
    ("config/files.py", "fdopen"): "replace_file: the new file mkstemp made (O_EXCL), renamed over a regular file only",
    ("host/backfill.py", "TemporaryFile"): "backfill: per-family spools, anonymous temporary files",
    # The push queue's own files (written by the exporter in its queue directory, never a user's file): the directory
    # and its set-aside folder opened O_DIRECTORY, the lock file created O_NOFOLLOW, records read O_NOFOLLOW |
    # O_NONBLOCK with fstat and a bound, written atomically; /proc/PID/stat of a lock holder.
    ("outputs/disk_queue.py", "open"): "the queue directory and its set-aside folder (O_DIRECTORY)",
    ("outputs/queue_lock.py", "open"): "the queue's lock file (O_NOFOLLOW) and /proc/PID/stat",
    ("outputs/queue_record.py", "open"): "queue records: O_NOFOLLOW | O_NONBLOCK, fstat, bounded; atomic writes",
    # record --out: checked by check_output_path first (absent or a regular file), then written as it records.
    ("runtime/record.py", "open"): "record --out, after check_output_path",
    # OpenSSL opens the certificate and key itself (Python has no in-memory load_cert_chain); the files are first
    # read through the reader (regular, bounded), so a FIFO or /dev/zero is refused before OpenSSL sees it.
    ("serve/webconfig.py", "load_cert_chain"): "TLS cert/key, checked by the reader first",
}


def _calls() -> list[tuple[str, str, int]]:
    """(file, called name, line) of every call that opens a file."""
    found = []
    for path in sorted(PACKAGE.rglob("*.py")):
        relative = path.relative_to(PACKAGE).as_posix()
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if not isinstance(node, ast.Call):
                continue
            func = node.func
            name = func.id if isinstance(func, ast.Name) else func.attr if isinstance(func, ast.Attribute) else ""
            if name == "load_verify_locations" and not node.args and {k.arg for k in node.keywords} == {"cadata"}:
                continue  # the PEM text, already read through the reader: OpenSSL opens nothing
            if (isinstance(func, ast.Name) and name in OPENING_NAMES) or (
                isinstance(func, ast.Attribute) and name in OPENING_ATTRIBUTES
            ):
                found.append((relative, name, node.lineno))
    return found


def test_every_file_open_goes_through_the_reader_or_is_allowed() -> None:
    outside = [f"otel_fakegpu/{file}:{line}: {name}(" for file, name, line in _calls() if (file, name) not in ALLOWED]
    assert not outside, "read a user's file through config.files.read_bounded/read_config_text:\n" + "\n".join(outside)


def test_the_allow_list_has_no_stale_entries() -> None:
    used = {(file, name) for file, name, _ in _calls()}
    assert set(ALLOWED) <= used, set(ALLOWED) - used


def test_the_scan_sees_an_open() -> None:
    """The scan itself: each form it must catch is caught in a sample."""
    sample = "open(p)\nos.open(p, 0)\nPath(p).read_text()\nx.read_bytes()\nctx.load_cert_chain(c)\n"
    names = [
        node.func.id if isinstance(node.func, ast.Name) else node.func.attr  # type: ignore[attr-defined]
        for node in ast.walk(ast.parse(sample))
        if isinstance(node, ast.Call)
    ]
    assert {"open", "read_text", "read_bytes", "load_cert_chain"} <= set(names) & (OPENING_NAMES | OPENING_ATTRIBUTES)
