"""The JSON Schemas kept in schema/ are exactly what the models generate (run scripts/gen_schemas.py after a
model change), and real command output validates against them."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import jsonschema
import pytest

from scripts.gen_schemas import SCHEMAS, render

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("name", sorted(SCHEMAS))
def test_schema_file_matches_model(name: str) -> None:
    assert (ROOT / "schema" / name).read_text() == render(SCHEMAS[name]), "run scripts/gen_schemas.py"


def _shared() -> Path:
    env = os.environ.get("VPNDOCTOR_SHARED")
    return Path(env) if env else ROOT.parent / "shared"


def test_events_json_validates() -> None:
    sample = _shared() / "evtx" / "Application_no_crc32.evtx"
    if not sample.exists():
        pytest.skip(f"shared samples not found at {sample.parent}")
    proc = subprocess.run(
        [sys.executable, "-m", "vpndoctor", "events", str(sample), "--json"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    jsonschema.validate(json.loads(proc.stdout), json.loads((ROOT / "schema" / "events.json").read_text()))
