"""`vpndoctor diagnose` with credentials: the options `connect` has (the password read by the same code,
never from the command line), usage errors before any probe, the credentials handed to the probe and
the password in no output - neither --json nor the terminal report."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from tests.checks.test_connect_checks import failed
from tests.checks.test_connect_checks import obs as connect_obs
from tests.checks.test_diagnose import observations
from vpndoctor.checks import ids
from vpndoctor.cli.diagnose import app
from vpndoctor.observations.diagnose import DiagnoseObservations, DiagnoseRequest

PASSWORD = "Sekr1t-diagnose-Passw0rd"
ENV_VAR = "VPNDOCTOR_TEST_PASSWORD"


def vpndoctor(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    environ = {k: v for k, v in os.environ.items() if k != ENV_VAR}
    environ.update(env or {})
    return subprocess.run(
        [sys.executable, "-m", "vpndoctor", "diagnose", "vpn.test", "--address", "192.0.2.1", *args],
        capture_output=True,
        text=True,
        timeout=60,
        stdin=subprocess.DEVNULL,
        env=environ,
    )


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--password-env", ENV_VAR], "a password goes with --user"),
        (["--user", "bob"], "no password: give --password-env VAR or --password-file FILE"),
        (["--user", "bob", "--password-env", "VPNDOCTOR_NO_SUCH_VAR"], "no such environment variable"),
        (["--machine-cert", "m.pem"], "needs both --machine-cert and --machine-key"),
        (["--user", "bob", "--machine-cert", "m.pem", "--machine-key", "k.pem"], "has no EAP user"),
        (["--device-name", "pc.example.com"], "--device-name goes with --machine-cert"),
        (["--user", "bob", "--password-env", ENV_VAR, "--protocols", "sstp"], "needs ikev2"),
    ],
)
def test_credential_usage_errors_exit_2_before_any_probe(args: list[str], message: str) -> None:
    proc = vpndoctor(*args, env={ENV_VAR: PASSWORD})
    assert proc.returncode == 2, proc.stderr
    assert message in proc.stderr and "Traceback" not in proc.stderr
    assert PASSWORD not in proc.stdout + proc.stderr


def test_a_password_file_others_can_read_is_refused(tmp_path: Path) -> None:
    secret = tmp_path / "password"
    secret.write_text(PASSWORD + "\n")
    secret.chmod(0o644)
    proc = vpndoctor("--user", "bob", "--password-file", str(secret))
    assert proc.returncode == 2 and "chmod 600" in proc.stderr
    assert PASSWORD not in proc.stdout + proc.stderr


@pytest.mark.parametrize("as_json", [True, False], ids=["json", "terminal"])
@pytest.mark.parametrize("refused", [False, True], ids=["connected", "refused"])
def test_credentials_reach_the_probe_and_no_output(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, as_json: bool, refused: bool
) -> None:
    seen: dict[str, Any] = {}

    async def fake(
        req: DiagnoseRequest, progress: Any = None, credentials: Any = None
    ) -> DiagnoseObservations:
        seen["credentials"] = credentials
        connect = failed("EAP", "eap-failure", auth_result="failure") if refused else connect_obs()
        return observations(request=req, connect=connect)

    monkeypatch.setattr("vpndoctor.probes.diagnose.run_diagnose", fake)
    secret = tmp_path / "password"
    secret.write_text(PASSWORD + "\n")
    secret.chmod(0o600)
    args = ["vpn.test", "--user", "bob", "--password-file", str(secret), *(["--json"] if as_json else [])]
    result = CliRunner().invoke(app, args)
    assert seen["credentials"].user == "bob" and seen["credentials"].password == PASSWORD
    assert PASSWORD not in repr(seen["credentials"])
    assert PASSWORD not in result.output
    assert result.exit_code == (1 if refused else 0), result.output
    if as_json:
        report = json.loads(result.output)
        assert [f["id"] for f in report["findings"]][-len(ids.CONNECT_ALL) :] == list(ids.CONNECT_ALL)
    else:
        assert ids.AUTH_EAP in result.output
