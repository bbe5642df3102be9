"""`vpndoctor diagnose --user` on the lab (scenario eap-radius, a RADIUS user): after the IKE checks it
connects once and adds the `auth.*` and `child_sa.*` findings of `vpndoctor connect`, counting in the
verdict; a wrong password is `auth.eap` fail with 691. The password is in no output (--json or terminal).
Twice each: the first connection leaves nothing behind that changes the second."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from tests.helpers import scenarios
from tests.lab.test_connect_probe import no_sa_left
from vpndoctor.checks import ids
from vpndoctor.lab import topology as t
from vpndoctor.lab.handle import Lab

pytestmark = pytest.mark.lab

SCHEMA = json.loads((Path(__file__).resolve().parents[2] / "schema" / "diagnose.json").read_text())
ROUNDS = pytest.mark.parametrize("round_", [1, 2], ids=["first", "again"])
USER = "bob"


def diagnose(lab: Lab, tmp_path: Path, password: str, *args: str) -> tuple[int, str, str]:
    secret = tmp_path / "password"
    secret.write_text(password + "\n")
    secret.chmod(0o600)
    proc = lab.run(
        "client",
        sys.executable,
        "-m",
        "vpndoctor",
        "diagnose",
        t.SERVER_NAME,
        "--ca",
        lab.info.ca_file,
        "--resolver",
        t.DNS4,
        "--user",
        USER,
        "--password-file",
        str(secret),
        "--timeout-s",
        "30",
        *args,
        timeout_s=120,
    )
    assert "Traceback" not in proc.stderr, proc.stderr
    assert password not in proc.stdout + proc.stderr
    return proc.returncode, proc.stdout, proc.stderr


def diagnose_json(lab: Lab, tmp_path: Path, password: str) -> dict[str, Any]:
    _, stdout, _ = diagnose(lab, tmp_path, password, "--json")
    report: dict[str, Any] = json.loads(stdout)
    jsonschema.validate(report, SCHEMA)
    found = [f["id"] for f in report["findings"]]
    assert found[len(ids.ALL) : len(ids.ALL) + len(ids.CONNECT_ALL)] == list(ids.CONNECT_ALL)
    return report


def by_id(report: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {f["id"]: f for f in report["findings"]}


@scenarios("eap-radius")
@ROUNDS
def test_right_password_adds_passing_auth_and_child_sa(lab: Lab, tmp_path: Path, round_: int) -> None:
    report = diagnose_json(lab, tmp_path, t.RADIUS_USERS[USER])
    found = by_id(report)
    for fid in (ids.AUTH_SERVER, ids.AUTH_EAP, ids.AUTH_IKE_SA, ids.CHILD_SA_ESTABLISHED):
        assert found[fid]["status"] == "pass", found[fid]
    assert not set(ids.CONNECT_ALL) & set(report["verdict"]["root_causes"])
    no_sa_left(lab)


@scenarios("eap-radius")
@ROUNDS
def test_wrong_password_is_auth_eap_fail_691_in_the_verdict(lab: Lab, tmp_path: Path, round_: int) -> None:
    report = diagnose_json(lab, tmp_path, "not-the-password")
    eap = by_id(report)[ids.AUTH_EAP]
    assert eap["status"] == "fail" and 691 in eap["error_codes"], eap
    assert report["verdict"]["status"] == "problems"
    assert ids.AUTH_EAP in report["verdict"]["root_causes"]
    no_sa_left(lab)


@scenarios("eap-radius")
def test_terminal_output_names_the_findings_not_the_password(lab: Lab, tmp_path: Path) -> None:
    for password in (t.RADIUS_USERS[USER], "not-the-password"):
        _, stdout, _ = diagnose(lab, tmp_path, password)
        assert ids.AUTH_EAP in stdout and ids.CHILD_SA_ESTABLISHED in stdout
    no_sa_left(lab)


def diagnose_eap(lab: Lab, *args: str, password: str | None = None) -> dict[str, Any]:
    env = ["env", f"VEA_PW={password}"] if password is not None else []
    proc = lab.run(
        "client",
        *env,
        sys.executable,
        "-m",
        "vpndoctor",
        "diagnose",
        t.SERVER_NAME,
        "--ca",
        lab.info.ca_file,
        "--resolver",
        t.DNS4,
        "--timeout-s",
        "30",
        "--json",
        *args,
        timeout_s=120,
    )
    assert "Traceback" not in proc.stderr, proc.stderr
    if password is not None:
        assert password not in proc.stdout + proc.stderr
    report: dict[str, Any] = json.loads(proc.stdout)
    jsonschema.validate(report, SCHEMA)
    found = [f["id"] for f in report["findings"]]
    # after the diagnosis' own: the connect findings, then the tunnel's (what diagnose asks of the tunnel)
    assert found[len(ids.ALL) : len(ids.ALL) + len(ids.CONNECT_ALL)] == list(ids.CONNECT_ALL)
    assert set(found[len(ids.ALL) + len(ids.CONNECT_ALL) :]) <= set(ids.TUNNEL_ALL)
    return report


@scenarios("eap-radius")
@ROUNDS
def test_eap_tls_and_peap_add_the_auth_findings(lab: Lab, round_: int) -> None:
    """diagnose --eap tls (the lab's user certificate) and --eap peap-mschapv2 (right and wrong password),
    as connect does: auth.eap passes, or fails with 691 for the refused PEAP user."""
    assert lab.info.user_cert and lab.info.user_key
    tls = diagnose_eap(
        lab, "--eap", "tls", "--client-cert", lab.info.user_cert, "--client-key", lab.info.user_key
    )
    peap = diagnose_eap(
        lab, "--eap", "peap-mschapv2", "--user", USER, "--password-env", "VEA_PW",
        password=t.RADIUS_USERS[USER],
    )
    for report in (tls, peap):
        found = by_id(report)
        for fid in (ids.AUTH_SERVER, ids.AUTH_EAP, ids.AUTH_IKE_SA, ids.CHILD_SA_ESTABLISHED):
            assert found[fid]["status"] == "pass", found[fid]
    assert "EAP-TLS" in by_id(tls)[ids.AUTH_EAP]["detail"]
    assert "PEAP" in by_id(peap)[ids.AUTH_EAP]["detail"]
    wrong = diagnose_eap(
        lab, "--eap", "peap-mschapv2", "--user", USER, "--password-env", "VEA_PW", password="not-it"
    )
    eap = by_id(wrong)[ids.AUTH_EAP]
    assert eap["status"] == "fail" and 691 in eap["error_codes"], eap
    assert ids.AUTH_EAP in wrong["verdict"]["root_causes"]
    no_sa_left(lab)
