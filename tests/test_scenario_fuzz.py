"""Seeded, bounded fuzzing of scenario files: whatever the mutation, the command exits 0 or 2, and a 2
comes with exactly one line on stderr (never a traceback)."""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from otel_fakegpu.cli import main
from tests.conftest import ROOT, run_cli

SEEDS = range(6)
MUTATIONS_PER_SEED = 50  # 300 in all
TOKENS = (
    "-1", "0", "1", "99999", "1e309", "nan", ".inf", "~", "[]", "{}", "yes", "2h", "-5m", "1h30m", "0.5",
    "h100-sxm", "z100", "l4", "1g.10gb*7", "3g.40gb*3", "fall_off_bus", "recover", "meteor", "xid", "ecc",
    "&a", "*a", "!!binary", "!!python/object:os.system", "'", '"', "{", "}", "[", "]", ":", "- ", "#",
)  # fmt: skip
CHARS = ":-[]{}&*!#'\" \t\n,|>%@`"


def _mutate(text: str, rng: random.Random) -> str:
    for _ in range(rng.randint(1, 3)):
        lines = text.split("\n")
        op = rng.randrange(7)
        i = rng.randrange(len(lines))
        if op == 0:
            del lines[i]
        elif op == 1:
            lines.insert(i, lines[rng.randrange(len(lines))])
        elif op == 2:
            j = rng.randrange(len(lines))
            lines[i], lines[j] = lines[j], lines[i]
        elif op == 3:
            words = lines[i].split(" ")
            words[rng.randrange(len(words))] = rng.choice(TOKENS)
            lines[i] = " ".join(words)
        elif op == 4 and lines[i]:
            k = rng.randrange(len(lines[i]))
            lines[i] = lines[i][:k] + lines[i][k + 1 :]
        elif op == 5:
            k = rng.randrange(len(lines[i]) + 1)
            lines[i] = lines[i][:k] + rng.choice(CHARS) + lines[i][k:]
        else:
            lines = lines[: i + 1]
        text = "\n".join(lines)
    return text


def _originals() -> list[str]:
    return [p.read_text() for p in sorted((ROOT / "scenarios").glob("*.yaml"))]


def _backfill_args(path: Path, out: Path) -> list[str]:
    return ["backfill", "--scenario", str(path), "--start", "0", "--end", "0", "--out", str(out)]


@pytest.mark.parametrize("seed", SEEDS)
def test_mutated_scenarios_exit_0_or_2_with_one_line(
    seed: int, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rng = random.Random(seed)
    originals = _originals()
    path, out = tmp_path / "fuzz.yaml", tmp_path / "fuzz.om"
    outcomes = {0: 0, 2: 0}
    for _ in range(MUTATIONS_PER_SEED):
        text = _mutate(rng.choice(originals), rng)
        path.write_text(text)
        code = main(_backfill_args(path, out))
        err = capsys.readouterr().err
        assert code in (0, 2), text
        outcomes[code] += 1
        if code == 2:
            assert err.count("\n") == 1 and "Traceback" not in err and err.startswith("otel-fakegpu"), (text, err)
    assert outcomes[2] > 0  # the mutations do reach the error paths


@pytest.mark.slow
def test_mutated_scenarios_in_real_processes(tmp_path: Path) -> None:
    rng = random.Random(99)
    originals = _originals()
    for i in range(8):
        path, out = tmp_path / f"fuzz{i}.yaml", tmp_path / f"fuzz{i}.om"
        path.write_text(_mutate(rng.choice(originals), rng))
        result = run_cli(*_backfill_args(path, out), timeout=120)
        assert result.returncode in (0, 2), result.stderr
        if result.returncode == 2:
            assert result.stderr.count("\n") == 1 and f"{path}:" in result.stderr, result.stderr
        else:
            assert "Traceback" not in result.stderr and out.read_text().endswith("# EOF\n")
