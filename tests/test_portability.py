"""Probe commands must run on Windows and macOS Pythons too: the Linux-only lab (namespaces, AF_PACKET)
must not sit in the import path of the CLI and the IKE probe."""

from __future__ import annotations

import subprocess
import sys

CHECK = """
import sys
import vpndoctor.cli, vpndoctor.probes.ike, vpndoctor.ike.initiator, vpndoctor.net.udp, vpndoctor.report.ike
bad = sorted(m for m in sys.modules if m.startswith("vpndoctor.lab"))
print(",".join(bad))
"""


def test_probe_import_path_has_no_linux_only_modules() -> None:
    proc = subprocess.run([sys.executable, "-c", CHECK], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "", proc.stdout
