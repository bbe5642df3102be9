"""The layout's arrows as contracts (pyproject.toml, [tool.importlinter]): observations, checks and
renderers never import probes/ or net/; codecs are sans-I/O; net/ knows nothing above it; checks do not
render; windows/ imports none of probes/, net/, checks/, report/, capture/ or cli/, and windows/events/ is
layered. A wrong import fails here, not in a review."""

from __future__ import annotations

import subprocess
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_import_contracts_are_kept() -> None:
    lint = Path(sys.executable).with_name("lint-imports")
    proc = subprocess.run(
        [str(lint), "--config", str(ROOT / "pyproject.toml"), "--no-cache"],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-2000:]
    contracts = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["importlinter"]["contracts"]
    assert f"{len(contracts)} kept, 0 broken" in proc.stdout


def test_a_check_imports_no_socket_code() -> None:
    """Importing the diagnose checks loads neither our net/ layer nor any
    probe (the point of observations/)."""
    code = (
        "import sys; import vpndoctor.checks.diagnose, vpndoctor.checks.sstp, vpndoctor.checks.tls;"
        "bad = [m for m in sys.modules if m.startswith(('vpndoctor.probes', 'vpndoctor.net'))];"
        "print(','.join(bad))"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == ""
