"""`vpndoctor tls` against the lab's DirectAccess IP-HTTPS ADC (nginx and HAProxy variants), from the client
namespace through the edge, its facts compared with sslscan's on the same endpoint.

sslscan is given the right client certificate (`--certs/--pk`): without one it cannot complete a handshake
with a front end that requires a certificate and then reports no suites and no CA names, while the
CertificateRequest and the ServerHello we read are in the server's first flight either way.
"""

from __future__ import annotations

import json
import sys
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.helpers import need, scenarios
from vpndoctor.lab import topology as t
from vpndoctor.lab.handle import Lab
from vpndoctor.tls import suites as S

pytestmark = pytest.mark.lab

ROOT = Path(__file__).resolve().parents[2]
DA_CA = "CN=vpndoctor DirectAccess CA"


@dataclass(frozen=True)
class Expect:
    client_auth: str  # none | optional | required
    null: bool
    tls10: bool


VARIANTS = {
    "iphttps-adc-nginx": Expect("required", True, False),
    "iphttps-adc-haproxy": Expect("required", True, False),
    "adc-client-auth-optional": Expect("optional", True, False),
    "adc-client-auth-off": Expect("none", True, False),
    "adc-null-missing": Expect("required", False, False),
    "adc-tls10-on": Expect("required", True, True),
}


def pki(lab: Lab, name: str) -> str:
    assert lab.info.da_pki_dir is not None
    return str(Path(lab.info.da_pki_dir) / name)


def audit(lab: Lab, *extra: str) -> tuple[int, dict[str, object]]:
    proc = lab.run(
        "client",
        "env",
        f"PYTHONPATH={ROOT / 'src'}",
        sys.executable,
        "-m",
        "vpndoctor",
        "tls",
        f"{t.DA_VIP4}:{t.DA_PORT}",
        "--sni",
        t.DA_NAME,
        "--ca",
        lab.info.ca_file,
        "--json",
        "--timeout-s",
        "20",
        *extra,
        timeout_s=60,
    )
    assert proc.returncode in (0, 1), proc.stderr
    assert "Traceback" not in proc.stderr
    return proc.returncode, json.loads(proc.stdout)


def sslscan(lab: Lab) -> tuple[dict[str, bool], dict[str, set[str]], list[str]]:
    need("sslscan")
    proc = lab.run(
        "client",
        "sslscan",
        "--show-client-cas",
        "--no-colour",
        f"--sni-name={t.DA_NAME}",
        "--xml=-",
        f"--certs={pki(lab, 'da-client.pem')}",
        f"--pk={pki(lab, 'da-client.key')}",
        f"{t.DA_VIP4}:{t.DA_PORT}",
        timeout_s=120,
    )
    doc = ET.fromstring(proc.stdout[proc.stdout.index("<?xml") :])
    names = {("ssl", "3"): "SSLv3", ("tls", "1.0"): "TLSv1.0", ("tls", "1.1"): "TLSv1.1"}
    names |= {("tls", "1.2"): "TLSv1.2", ("tls", "1.3"): "TLSv1.3"}
    versions = {
        names[(p.get("type", ""), p.get("version", ""))]: p.get("enabled") == "1"
        for p in doc.iter("protocol")
        if (p.get("type"), p.get("version")) in names
    }
    suites: dict[str, set[str]] = {v: set() for v in names.values()}
    for c in doc.iter("cipher"):
        suites[c.get("sslversion", "")].add(S.name_of(int(c.get("id", "0"), 16)))
    cas = []
    for ca in doc.iter("ca"):
        for line in (ca.text or "").splitlines():
            if line.strip().startswith("/"):
                cas.append(",".join(reversed(line.strip()[1:].split("/"))))
    return versions, suites, cas


@scenarios(*VARIANTS)
def test_adc_variant_facts_match_sslscan(lab: Lab) -> None:
    want = VARIANTS[lab.scenario.name]
    code, report = audit(lab)
    versions, suites, cas = sslscan(lab)
    assert report["versions"] == {v: versions.get(v, False) for v in report["versions"]}  # type: ignore[union-attr]
    assert report["versions"]["TLSv1.0"] is want.tls10  # type: ignore[index]
    assert report["versions"]["TLSv1.2"] is True and report["versions"]["SSLv3"] is False  # type: ignore[index]
    for v, names in report["suites"].items():  # type: ignore[union-attr]
        assert set(names) == suites[v], v  # sslscan has the right certificate: its handshakes complete
    null = report["null_suites"]
    assert bool(null) is want.null and (not null or "TLS_RSA_WITH_NULL_SHA" in null)  # type: ignore[operator]
    assert report["client_auth"] == want.client_auth
    if want.client_auth == "none":
        assert report["client_ca_names"] == []
    else:
        assert [n for n in report["client_ca_names"] if DA_CA in n]  # type: ignore[union-attr]
        assert report["client_ca_names"] == cas
    status = {f["id"]: f["status"] for f in report["findings"]}  # type: ignore[union-attr]
    assert status["tls.protocol.sslv3"] == "pass"
    assert status["tls.protocol.tls10"] == ("warn" if want.tls10 else "pass")
    assert status["tls.null-suites"] == ("pass" if want.null else "warn")
    assert (
        status["tls.client-auth"]
        == {"required": "pass", "optional": "warn", "none": "pass"}[want.client_auth]
    )
    assert status["tls.certificate.trust"] == "pass" and status["tls.certificate.name"] == "pass"
    assert code == 0


@scenarios("iphttps-adc-nginx", "iphttps-adc-haproxy")
def test_adc_client_certificates(lab: Lab) -> None:
    _, good = audit(
        lab, "--client-cert", pki(lab, "da-client.pem"), "--client-key", pki(lab, "da-client.key")
    )
    assert good["client_certificate"]["accepted"] is True  # type: ignore[index]
    assert good["resumption"]["session_id"] is not None  # type: ignore[index]
    code, bad = audit(
        lab, "--client-cert", pki(lab, "da-client-wrong.pem"), "--client-key", pki(lab, "da-client-wrong.key")
    )
    assert bad["client_certificate"]["accepted"] is False and code == 1  # type: ignore[index]
    assert bad["foreign_certificate"]["accepted"] is False  # type: ignore[index]
