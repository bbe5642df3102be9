"""Replays the fuzzing corpora (fuzz/corpus/<harness>/: seeds) and every crash the fuzzers found
(fuzz/crashes/<harness>/: regression inputs) through each harness's `one_input`, without atheris: nothing but
the parser's own errors may escape, and a kept slow input (slow-*) must take less than a second of CPU time.
A crash not fixed yet is listed in fuzz/crashes/OPEN and expected to fail (strictly: once fixed, remove its
line). Fuzzing itself is `make fuzz` (fuzz/README.md)."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from fuzz._crash import describe, run_one, signature
from fuzz.harnesses import HARNESSES, load

FUZZ = Path(__file__).resolve().parents[1] / "fuzz"
SLOW_S = 1.0


def _files(folder: Path) -> list[Path]:
    return (
        sorted(p for p in folder.iterdir() if p.is_file() and not p.name.startswith("."))
        if folder.is_dir()
        else []
    )


def _open_crashes() -> dict[str, str]:
    """'harness/file' -> why it is still open, from fuzz/crashes/OPEN."""
    path = FUZZ / "crashes" / "OPEN"
    out = {}
    for line in path.read_text().splitlines() if path.is_file() else []:
        line = line.strip()
        if line and not line.startswith("#"):
            key, _, why = line.partition(" ")
            out[key] = why.strip()
    return out


OPEN = _open_crashes()
CRASHES = [(h, p) for h in HARNESSES for p in _files(FUZZ / "crashes" / h)]


@pytest.mark.parametrize("harness", HARNESSES)
def test_seed_corpus_replays_cleanly(harness: str) -> None:
    seeds = _files(FUZZ / "corpus" / harness)
    assert seeds, f"fuzz/corpus/{harness} is empty (python -m fuzz.seeds {harness})"
    one_input = load(harness).one_input
    failures = []
    for path in seeds:
        exc = run_one(one_input, path.read_bytes())
        if exc is not None:
            failures.append(f"{path.name}: {signature(exc)}\n{describe(exc)}")
    assert not failures, f"{len(failures)} of {len(seeds)} seeds crash:\n" + "\n".join(failures[:3])


@pytest.mark.parametrize(
    ("harness", "path"),
    [
        pytest.param(
            h,
            p,
            id=f"{h}/{p.name}",
            marks=[pytest.mark.xfail(strict=True, reason=f"open: {OPEN[f'{h}/{p.name}']}")]
            if f"{h}/{p.name}" in OPEN
            else [],
        )
        for h, p in CRASHES
    ],
)
def test_crash_input_stays_fixed(harness: str, path: Path) -> None:
    one_input = load(harness).one_input
    t0 = time.process_time()
    exc = run_one(one_input, path.read_bytes())
    cpu_s = time.process_time() - t0
    assert exc is None, f"{signature(exc)}\n{describe(exc)}"
    if path.name.startswith("slow-"):
        assert cpu_s < SLOW_S, f"{cpu_s:.2f} s of CPU (at most {SLOW_S} s)"


def test_open_list_names_existing_inputs() -> None:
    existing = {f"{h}/{p.name}" for h, p in CRASHES}
    assert set(OPEN) <= existing, f"fuzz/crashes/OPEN lists missing inputs: {sorted(set(OPEN) - existing)}"
