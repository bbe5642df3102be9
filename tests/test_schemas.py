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

ROOT = Path(__file__).resolve().parents[1]


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


def test_config_input_example_validates() -> None:
    """`vpndoctor config init` writes an example that the published input schema accepts."""
    import yaml

    from vpndoctor.configgen.example import EXAMPLE

    schema = json.loads((ROOT / "schema" / "config-input.json").read_text())
    jsonschema.validate(yaml.safe_load(EXAMPLE), schema)
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate({**yaml.safe_load(EXAMPLE), "vipp": "203.0.113.1"}, schema)


@pytest.mark.parametrize("command", ["sstp", "iphttps", "tls"])
def test_sstp_and_iphttps_json_validate(command: str) -> None:
    """Even an unreachable endpoint (a closed loopback port) yields a full report, exit 3."""
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.run(
        [sys.executable, "-m", "vpndoctor", command, f"127.0.0.1:{port}", "--json", "--timeout-s", "2"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 3, proc.stderr
    schema = json.loads((ROOT / "schema" / f"{command}.json").read_text())
    jsonschema.validate(json.loads(proc.stdout), schema)
