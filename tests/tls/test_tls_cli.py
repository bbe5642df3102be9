"""`vpndoctor tls` command-line contract: usage errors are one line and exit 2, never a traceback."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.tls.openssl_server import free_port


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "vpndoctor", "tls", *args], capture_output=True, text=True, timeout=60
    )


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (["127.0.0.1:0"], "port must be a number from 1 to 65535"),
        (["127.0.0.1:99999"], "port must be a number"),
        (["[::1"], "unbalanced"),
        ([""], "give a server name"),
        (["127.0.0.1", "--timeout-s", "0"], "--timeout-s"),
        (["127.0.0.1", "--timeout-s", "-1"], "--timeout-s"),
        (["127.0.0.1", "--sni", "a b"], "--sni"),
        (["127.0.0.1", "--client-cert", "/nonexistent.pem"], "go together"),
        (
            ["127.0.0.1", "--client-cert", "/nonexistent.pem", "--client-key", "/nonexistent.key"],
            "cannot read",
        ),
        (["127.0.0.1", "--ca", "/nonexistent-ca.pem"], "cannot read CA file"),
    ],
)
def test_usage_errors(args: list[str], words: str) -> None:
    proc = run(*args)
    assert proc.returncode == 2, (proc.stdout, proc.stderr)
    assert "Traceback" not in proc.stderr and words in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1


def test_bad_files(tmp_path: Path) -> None:
    junk = tmp_path / "junk.pem"
    junk.write_text("not a certificate")
    proc = run(f"127.0.0.1:{free_port()}", "--ca", str(junk))
    assert proc.returncode == 2 and "not a PEM or DER certificate" in proc.stderr
    proc = run(f"127.0.0.1:{free_port()}", "--client-cert", str(junk), "--client-key", str(junk))
    assert proc.returncode == 2 and "cannot load them" in proc.stderr and "Traceback" not in proc.stderr


def test_concurrency_bounds() -> None:
    proc = run("127.0.0.1", "--concurrency", "0")
    assert proc.returncode == 2 and "Traceback" not in proc.stderr


def test_help_names_the_options() -> None:
    proc = run("--help")
    assert proc.returncode == 0
    for opt in ("--sni", "--ca", "--timeout-s", "--json", "--concurrency", "--client-cert", "--client-key"):
        assert opt in proc.stdout
