"""Revocation in the real lab: the lab CA's intermediate issues the gateway certificate with CDP/AIA URLs,
the `crl` host publishes the CRLs with nginx and answers OCSP with `openssl ocsp`. For each `revocation`
scenario, `vpndoctor diagnose` (the IKE certificate: cert.revocation), `vpndoctor tls`
(tls.certificate.revocation) and `vpndoctor sstp` (the revocation part of sstp.certificate) give the expected
verdict, twice; `vpndoctor ike` gives the verdict on the certificate IKE_AUTH brought (revocation-ok,
revocation-revoked); and OpenSSL, fed the CRLs curl fetched, agrees with our status for each lab
certificate."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509

from tests.helpers import need, scenarios
from vpndoctor.checks import ids
from vpndoctor.checks.revocation import (
    CRYPT_E_REVOCATION_OFFLINE,
    CRYPT_E_REVOKED,
    ERROR_IPSEC_IKE_PEER_CRL_FAILED,
)
from vpndoctor.checks.sstp import CERT_E_UNTRUSTEDROOT
from vpndoctor.lab import topology as t
from vpndoctor.lab.handle import Lab
from vpndoctor.probes.revocation import urls_of

pytestmark = pytest.mark.lab

ALL = (
    "revocation-ok",
    "revocation-cdp-unreachable",
    "revocation-crl-expired",
    "revocation-revoked",
    "revocation-ocsp-down",
    "revocation-aia-intermediate",
)

# scenario -> (cert.revocation over IKE, tls.certificate.revocation, sstp.certificate), and the chain status
EXPECTED: dict[str, tuple[str, str, str, str]] = {
    "revocation-ok": ("pass", "pass", "pass", "good"),
    "revocation-cdp-unreachable": ("warn", "fail", "fail", "offline"),
    "revocation-crl-expired": ("warn", "fail", "fail", "offline"),
    "revocation-revoked": ("fail", "fail", "fail", "revoked"),
    "revocation-ocsp-down": ("warn", "warn", "warn", "good"),
    # The server sends no intermediate: the chain as sent does not reach the anchor, but with the intermediate
    # the revocation step fetched through AIA caIssuers it does, as Windows builds it: trusted with a warning
    # (checks.certificate), and the revocation part says the intermediate came through AIA.
    "revocation-aia-intermediate": ("warn", "warn", "warn", "good"),
}
CODES = {
    "revocation-cdp-unreachable": (ERROR_IPSEC_IKE_PEER_CRL_FAILED, CRYPT_E_REVOCATION_OFFLINE),
    "revocation-crl-expired": (ERROR_IPSEC_IKE_PEER_CRL_FAILED, CRYPT_E_REVOCATION_OFFLINE),
    "revocation-revoked": (CRYPT_E_REVOKED, CRYPT_E_REVOKED),
}


def vpndoctor(lab: Lab, *args: str) -> tuple[int, dict[str, Any]]:
    proc = lab.run("client", sys.executable, "-m", "vpndoctor", *args, "--json", timeout_s=120)
    assert "Traceback" not in proc.stderr, proc.stderr
    return proc.returncode, json.loads(proc.stdout)


def finding(report: dict[str, Any], fid: str) -> dict[str, Any]:
    return next(f for f in report["findings"] if f["id"] == fid)


def run_all(lab: Lab) -> dict[str, dict[str, Any]]:
    ca = lab.info.ca_file
    _, diag = vpndoctor(lab, "diagnose", t.SERVER_NAME, "--ca", ca, "--protocols", "ikev2")
    _, tls = vpndoctor(lab, "tls", t.SERVER_NAME, "--ca", ca)
    _, sstp = vpndoctor(lab, "sstp", t.SERVER_NAME, "--ca", ca)
    return {
        "ike": finding(diag, ids.CERT_REVOCATION),
        "tls": finding(tls, ids.TLS_CERT_REVOCATION),
        "sstp": finding(sstp, ids.SSTP_CERTIFICATE),
        "sstp_report": sstp,
        "tls_trust": finding(tls, ids.TLS_CERT_TRUST),
        "ike_trust": finding(diag, ids.CERT_TRUST),
    }


@pytest.mark.parametrize("lab", ALL, indirect=True, ids=list(ALL))
def test_findings_per_protocol_twice(lab: Lab) -> None:
    name = lab.scenario.name
    ike_status, tls_status, sstp_status, chain = EXPECTED[name]
    runs = [run_all(lab), run_all(lab)]
    for got in runs:
        ike, tls, sstp = got["ike"], got["tls"], got["sstp"]
        why = {k: (got[k]["status"], got[k]["detail"]) for k in ("ike", "tls", "sstp")}
        assert (ike["status"], tls["status"], sstp["status"]) == (ike_status, tls_status, sstp_status), why
        for f in (ike, tls):
            assert f["evidence"]["status"] == chain, f
        if name in CODES:
            ike_code, tls_code = CODES[name]
            assert ike["error_codes"] == [ike_code] and tls["error_codes"] == [tls_code]
            assert tls_code in sstp["error_codes"]
        revocation = got["sstp_report"]["revocation"]  # the observation, in the sstp JSON
        assert revocation["certificates"][0]["subject"] == f"CN={t.SERVER_NAME}"
        assert all("body" not in fetch for c in revocation["certificates"] for fetch in c["fetches"])
    # The same verdict and the same sources both times (the fetches' times differ).
    for key in ("ike", "tls", "sstp"):
        first, second = runs[0][key], runs[1][key]
        assert (first["status"], first["error_codes"]) == (second["status"], second["error_codes"])
        sources = [[s["status"] for s in c["sources"]] for c in first["evidence"].get("certificates", [])]
        again = [[s["status"] for s in c["sources"]] for c in second["evidence"].get("certificates", [])]
        assert sources == again

    tls = runs[0]["tls"]
    leaf = tls["evidence"]["certificates"][0]
    reasons = {s["kind"]: s["reason"] for s in leaf["sources"]}
    if name == "revocation-ok":
        assert reasons == {"ocsp": "good", "crl": "good"}
        assert [c["issuer_source"] for c in tls["evidence"]["certificates"]] == ["chain", "anchors"]
    elif name == "revocation-cdp-unreachable":
        fetches = {f["url"].split(":", 1)[0]: f for f in leaf["fetches"] if f["purpose"] == "crl"}
        assert "unreachable from outside" in fetches["ldap"]["error"]
        assert t.INTERNAL_PKI_NAME in fetches["http"]["url"] and fetches["http"]["outcome"] == "failed"
        assert "LDAP" in tls["detail"] and "0x80092013" in tls["detail"]
    elif name == "revocation-crl-expired":
        assert leaf["reason"] == "expired-crl" and "expired" in tls["detail"]
        assert "publish" in tls["remedy"].lower()
    elif name == "revocation-revoked":
        assert reasons == {"ocsp": "revoked", "crl": "revoked"}
        assert "keyCompromise" in tls["detail"] and "0x80092010" in tls["detail"]
    elif name == "revocation-ocsp-down":
        ocsp = next(f for f in leaf["fetches"] if f["purpose"] == "ocsp")
        assert ocsp["outcome"] == "failed" and "refused" in ocsp["error"]
        assert reasons == {"ocsp": "refused", "crl": "good"} and "fall back" in tls["detail"]
    elif name == "revocation-aia-intermediate":
        assert tls["evidence"]["intermediate_from_aia"] is True and tls["evidence"]["chain_sent"] == 1
        assert leaf["issuer_source"] == "aia" and "AIA caIssuers" in tls["detail"]
        assert any(f["purpose"] == "ca-issuers" and f["outcome"] == "fetched" for f in leaf["fetches"])
        # Trusted through the intermediate fetched via AIA, with the warning, over IKE, TLS and SSTP.
        issuing = tls["evidence"]["certificates"][1]["subject"]  # the intermediate, as the walk found it
        note = f"the intermediate {issuing} was fetched through AIA caIssuers http://"
        for got in runs:
            for trust in (got["ike_trust"], got["tls_trust"]):
                assert trust["status"] == "warn" and note in trust["detail"], trust
                assert [a["subject"] for a in trust["evidence"]["aia_intermediates"]] == [issuing]
            sstp = got["sstp"]
            assert note in sstp["detail"] and "clients that cannot reach it fail" in sstp["detail"], sstp
            assert CERT_E_UNTRUSTEDROOT not in sstp["error_codes"]
            assert [a["subject"] for a in sstp["evidence"]["aia_intermediates"]] == [issuing]
    # What the crl host's nginx logged: our fetches, from the client.
    access = lab.log("crl-access.log")
    assert t.CLIENT4 in access or t.CLIENT6 in access


# ---- `vpndoctor ike`: the certificate IKE_AUTH brought is checked too (#17) --------------------------------

IKE_EXPECTED = {"revocation-revoked": "revoked", "revocation-ok": "good"}


@pytest.mark.parametrize("lab", list(IKE_EXPECTED), indirect=True, ids=list(IKE_EXPECTED))
def test_ike_command_checks_the_gateway_certificate_twice(lab: Lab) -> None:
    expected = IKE_EXPECTED[lab.scenario.name]
    for _ in range(2):
        code, obs = vpndoctor(lab, "ike", t.SERVER_NAME, "--ca", lab.info.ca_file)
        assert code == 0 and obs["reached"] == "IKE_AUTH", obs
        verdict, revocation = obs["revocation_verdict"], obs["revocation"]
        assert verdict["status"] == expected, verdict
        assert revocation["certificates"][0]["subject"] == f"CN={t.SERVER_NAME}"
        assert all(f["outcome"] == "fetched" for c in revocation["certificates"] for f in c["fetches"])
        if expected == "revoked":
            assert verdict["revocation_reason"] == "keyCompromise" and verdict["revoked_at"]
            assert verdict["error_codes"] == [CRYPT_E_REVOKED] and "0x80092010" in verdict["detail"]
        else:
            assert verdict["error_codes"] == [] and not verdict["warnings"]
    code, obs = vpndoctor(lab, "ike", t.SERVER_NAME, "--ca", lab.info.ca_file, "--no-revocation")
    assert code == 0 and obs["revocation"] is None
    assert (obs["revocation_verdict"]["status"], obs["revocation_verdict"]["reason"]) == (
        "not-checked",
        "skipped",
    )


# ---- the oracle: OpenSSL, fed the CRLs curl fetched -------------------------------------------------------


def _curl(lab: Lab, url: str, out: Path) -> bool:
    proc = lab.run("client", need("curl"), "-sf", "--max-time", "5", "-o", str(out), url, timeout_s=15)
    return proc.returncode == 0 and out.exists() and out.stat().st_size > 0


def _openssl_crl_status(lab: Lab, cert: Path, untrusted: Path | None, tmp: Path) -> str:
    """good / revoked / offline as `openssl verify -crl_check` sees `cert` with the CRLs its CDP names."""
    parsed = x509.load_pem_x509_certificate(cert.read_bytes())
    tmp.mkdir(parents=True, exist_ok=True)
    crls = []
    for i, url in enumerate(u for u in urls_of(parsed)["crl"] if u.startswith("http://")):
        path = tmp / f"crl{i}.der"
        if _curl(lab, url, path):
            pem = tmp / f"crl{i}.pem"
            subprocess.run(
                ["openssl", "crl", "-inform", "DER", "-in", str(path), "-out", str(pem)],
                check=True,
                timeout=30,
            )
            crls += ["-CRLfile", str(pem)]
    argv = ["openssl", "verify", "-crl_check", "-CAfile", lab.info.ca_file]
    if untrusted is not None:
        argv += ["-untrusted", str(untrusted)]
    proc = subprocess.run([*argv, *crls, str(cert)], capture_output=True, text=True, timeout=30)
    out = proc.stdout + proc.stderr
    if proc.returncode == 0:
        return "good"
    if "certificate revoked" in out:
        return "revoked"
    assert re.search(r"unable to get certificate CRL|CRL has expired", out), out
    return "offline"


def _openssl_ocsp_status(lab: Lab, cert: Path, issuer: Path) -> str | None:
    """good / revoked / offline from `openssl ocsp` against the AIA OCSP URL; None without one."""
    urls = urls_of(x509.load_pem_x509_certificate(cert.read_bytes()))["ocsp"]
    if not urls:
        return None
    argv = ["openssl", "ocsp", "-issuer", str(issuer), "-cert", str(cert), "-url", urls[0]]
    argv += ["-CAfile", lab.info.ca_file, "-verify_other", str(issuer), "-timeout", "5"]
    proc = lab.run("client", *argv, timeout_s=30)
    out = proc.stdout + proc.stderr
    if proc.returncode != 0:
        return "offline"
    assert "Response verify OK" in out, out
    found = re.search(r": (good|revoked|unknown)", out)
    assert found, out
    return found.group(1)


@pytest.mark.parametrize("lab", ALL, indirect=True, ids=list(ALL))
def test_openssl_agrees(lab: Lab) -> None:
    assert lab.info.issuing_ca_file and lab.info.server_cert_file and lab.info.crl_www
    _, tls = vpndoctor(lab, "tls", t.SERVER_NAME, "--ca", lab.info.ca_file)
    ours = finding(tls, ids.TLS_CERT_REVOCATION)["evidence"]["certificates"]
    leaf, issuing = Path(lab.info.server_cert_file), Path(lab.info.issuing_ca_file)
    with tempfile.TemporaryDirectory() as tmp:
        for position, (cert, untrusted) in enumerate(((leaf, issuing), (issuing, None))):
            mine = ours[position]
            assert (
                mine["subject"] == x509.load_pem_x509_certificate(cert.read_bytes()).subject.rfc4514_string()
            )
            crl_status = _openssl_crl_status(lab, cert, untrusted, Path(tmp) / str(position))
            crl_sources = [s for s in mine["sources"] if s["kind"] == "crl"]
            crl_verdict = (
                "revoked"
                if any(s["status"] == "revoked" for s in crl_sources)
                else "good"
                if any(s["status"] == "good" for s in crl_sources)
                else "offline"
            )
            assert crl_verdict == crl_status, (position, mine["sources"])
            issuer = issuing if position == 0 else Path(lab.info.ca_file)
            ocsp_status = _openssl_ocsp_status(lab, cert, issuer)
            ocsp_sources = [s for s in mine["sources"] if s["kind"] == "ocsp"]
            if ocsp_status is None:
                assert not ocsp_sources
                continue
            ocsp_verdict = ocsp_sources[0]["status"]
            assert {"unavailable": "offline"}.get(ocsp_verdict, ocsp_verdict) == ocsp_status, mine["sources"]


@scenarios("revocation-ok")
def test_crl_host_serves_the_client_and_the_servers(lab: Lab) -> None:
    for role in ("vpn1", "client"):
        proc = lab.run(role, need("curl"), "-sf", "-o", "/dev/null", "-w", "%{http_code}",
                       f"http://{t.CRL4}/root.crl", timeout_s=15)  # fmt: skip
        assert proc.stdout == "200", (role, proc.stderr)
    running = {p.name: p.role for p in lab.state.processes}
    assert running["crl-nginx"] == running["ocsp"] == t.CRL_HOST
