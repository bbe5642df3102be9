"""`vpndoctor connect --machine-cert/--machine-key` (a Windows device tunnel: IKEv2 certificate AUTH, no EAP)
against the lab's RRAS-shaped gateway (`aovpn-device`: auth = pubkey, lab CA), through the real command line
from the client namespace, each run twice; and the lab's own strongSwan client dialling the same device tunnel
with the same certificate as the oracle: both must reach the same stage with the same outcome."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from tests.helpers import scenarios
from tests.lab.test_connect_probe import in_pool, no_sa_left
from vpndoctor.lab import topology as t
from vpndoctor.lab.client import DialResult, LabClient, Tunnel
from vpndoctor.lab.handle import Lab

pytestmark = pytest.mark.lab

ROOT = Path(__file__).resolve().parents[2]
SCHEMA = json.loads((ROOT / "schema" / "connect.json").read_text())

# scenario: (connect's stage, error notify, Windows error), the lab client's (stage, error)
EXPECTED: dict[str, tuple[tuple[str, str | None, int | None], tuple[str, str | None]]] = {
    "eap-radius": (("CHILD_SA", None, None), ("child_sa", None)),
    "client-cert-expired": (
        ("IKE_AUTH", "AUTHENTICATION_FAILED", 13806),
        ("ike_sa_init", "AUTHENTICATION_FAILED"),
    ),
    "client-cert-foreign-ca": (
        ("IKE_AUTH", "AUTHENTICATION_FAILED", 13801),
        ("ike_sa_init", "AUTHENTICATION_FAILED"),
    ),
    "machine-cert-wrong-subject": (("CHILD_SA", None, None), ("child_sa", None)),
}
# The lab client's stages as `connect` names them: it logs IKE_SA_INIT as done when IKE_AUTH fails.
ORACLE_STAGE = {"child_sa": "CHILD_SA", "ike_sa_init": "IKE_AUTH", "authenticated": "CHILD_SA"}


@pytest.fixture
def client(lab: Lab) -> Iterator[LabClient]:
    c = LabClient(lab.prefix, userspace_esp=True).start()
    try:
        yield c
    finally:
        c.hangup()
        c.stop()


def connect_device(lab: Lab) -> tuple[int, Any]:
    info = lab.info
    assert info.machine_cert and info.machine_key
    argv = [
        sys.executable,
        "-m",
        "vpndoctor",
        "connect",
        t.VIP4,
        "--machine-cert",
        info.machine_cert,
        "--machine-key",
        info.machine_key,
        "--device-name",
        t.DEVICE_NAME,
        "--ca",
        info.ca_file,
        "--json",
    ]
    proc = lab.run("client", *argv, timeout_s=90)
    assert "Traceback" not in proc.stderr, proc.stderr
    data = json.loads(proc.stdout)
    jsonschema.validate(data, SCHEMA)
    return proc.returncode, data


def lint_status(data: Any, fid: str) -> str:
    lint = data["machine_certificate_lint"]
    return str(next(f["status"] for f in lint["findings"] if f["id"] == fid))


def oracle(lab: Lab, client: LabClient) -> DialResult:
    info = lab.info
    assert info.machine_cert and info.machine_key
    r = client.dial(Tunnel.device(info.machine_cert, info.machine_key))
    client.hangup(r.name)
    return r


@scenarios(*EXPECTED)
def test_device_tunnel_as_windows_and_as_the_oracle(lab: Lab, client: LabClient) -> None:
    (stage, notify, code), want_oracle = EXPECTED[lab.scenario.name]
    for _ in range(2):
        rc, data = connect_device(lab)
        assert data["auth"] == "machine-certificate" and data["user"] == ""
        assert t.DEVICE_NAME in data["identity"]
        assert data["stage_reached"] == stage, data["failure"]
        assert data["error_notify"] == notify
        assert [s["result"] for s in data["stages"] if s["stage"] == "EAP"] == ["skipped"]
        assert data["eap_requests"] == []
        if stage == "CHILD_SA":
            assert rc == 0 and data["connected"] and data["windows_error"] is None
            assert data["ike_sa_established"] and data["child_sa"] is not None
            cfg = data["config"]
            assert len(cfg["ipv4"]) == 1 and all(in_pool(a.split("/")[0]) for a in cfg["ipv4"] + cfg["ipv6"])
            assert set(cfg["dns"]) == {t.DNS4, t.DNS6} and cfg["dns_suffix"] == [t.DNS_SUFFIX]
        else:
            assert rc == 1 and not data["connected"] and data["cause"] == "error-notify"
            assert data["windows_error"]["code"] == code, data["windows_error"]
            assert data["child_sa"] is None and not data["ike_sa_established"]
        no_sa_left(lab)
        # The oracle: the lab's strongSwan client dials the same device tunnel with the same certificate.
        r = oracle(lab, client)
        assert (r.stage, r.error) == want_oracle, r.log[-3000:]
        assert ORACLE_STAGE[r.stage] == data["stage_reached"]
        assert r.error == data["error_notify"]
        assert r.child_established == data["connected"]
    # What the lint said before the certificate was used.
    if lab.scenario.name == "client-cert-expired":
        assert lint_status(data, "cert.lint.validity") == "fail"
    elif lab.scenario.name == "client-cert-foreign-ca":
        assert lint_status(data, "cert.lint.chain") == "fail"
    elif lab.scenario.name == "machine-cert-wrong-subject":
        assert lint_status(data, "cert.lint.name") in ("warn", "fail")
    else:
        assert data["machine_certificate_lint"]["status"] in ("pass", "warn")
