"""Golden files: the exact configuration each target generates for two deployments (every appliance CLI is
pinned here, and checked line by line by the validator in test_validate.py). Regenerate after a deliberate
change with UPDATE_GOLDEN=1 and review the diff."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from vpndoctor.configgen import TARGETS, generate
from vpndoctor.configgen.model import load_deployment

HERE = Path(__file__).parent
INPUTS = sorted(p.stem for p in (HERE / "inputs").glob("*.yaml"))
CASES = [(i, t) for i in INPUTS for t in TARGETS]


@pytest.mark.parametrize(("name", "target"), CASES)
def test_golden(name: str, target: str) -> None:
    text = generate(target, load_deployment(str(HERE / "inputs" / f"{name}.yaml")))
    golden = HERE / "golden" / f"{name}-{target}.txt"
    if os.environ.get("UPDATE_GOLDEN"):
        golden.write_text(text)
    assert golden.exists(), f"no golden file {golden.name}: run with UPDATE_GOLDEN=1"
    assert text == golden.read_text()


def test_every_golden_file_is_used() -> None:
    expected = {f"{i}-{t}.txt" for i, t in CASES}
    assert {p.name for p in (HERE / "golden").glob("*.txt")} == expected
