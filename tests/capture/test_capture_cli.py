"""`vpndoctor capture` through the real command line: JSON valid against schema/capture.json, exit codes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import jsonschema
import pytest

ROOT = Path(__file__).resolve().parents[2]
PUBLIC = Path(os.environ.get("VPNDOCTOR_SHARED", ROOT.parent / "shared")) / "captures" / "public"


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "vpndoctor", "capture", *args],
        capture_output=True,
        text=True,
        timeout=120,
        stdin=subprocess.DEVNULL,
    )


@pytest.mark.parametrize("name", ["ikev2four.pcap", "ikev2_nat_t.pcapng", "espudp1.pcap"])
def test_json_matches_schema(name: str) -> None:
    path = PUBLIC / name
    if not path.exists():
        pytest.skip(f"shared captures not found at {PUBLIC}")
    proc = run(str(path), "--json")
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout)
    jsonschema.validate(report, json.loads((ROOT / "schema" / "capture.json").read_text()))
    assert report["packets"] > 0


def test_terminal_output() -> None:
    path = PUBLIC / "ikev2four.pcap"
    if not path.exists():
        pytest.skip(f"shared captures not found at {PUBLIC}")
    proc = run(str(path))
    assert proc.returncode == 0 and "IKE_SA_INIT request 0" in proc.stdout and "verdict" in proc.stdout


def test_unreadable_file_is_one_line_exit_2(tmp_path: Path) -> None:
    bad = tmp_path / "bad.pcap"
    bad.write_bytes(b"\x00" * 100)
    for args in ([str(bad)], [str(tmp_path / "missing.pcap")]):
        proc = run(*args)
        assert proc.returncode == 2, proc.stderr
        assert "Traceback" not in proc.stderr and len(proc.stderr.strip().splitlines()) == 1
