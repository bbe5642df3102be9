"""`vpndoctor tls` against real servers on 127.0.0.1 (nginx, HAProxy, openssl s_server), its facts checked
against sslscan (versions, suites by IANA id, client CA names) and, once, testssl.sh (protocols).

Where the oracles disagree with us the test says which is right and why; the ground truth is always the
server's own configuration, which each test states.
"""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import sys
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import jsonschema
import pytest

from tests.tls.openssl_server import CA_NAME, OpensslServer, make_pki
from tests.tls.servers import AuditPki, Daemon, make_audit_pki, start_haproxy, start_nginx
from vpndoctor.checks.tls import TlsReport, exit_code, judge
from vpndoctor.probes.tls_audit import AuditRequest, audit
from vpndoctor.tls import suites as S

ROOT = Path(__file__).resolve().parents[2]
SCHEMA = json.loads((ROOT / "schema" / "tls.json").read_text())
VERSIONS = ("SSLv3", "TLSv1.0", "TLSv1.1", "TLSv1.2", "TLSv1.3")


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> AuditPki:
    return make_audit_pki(tmp_path_factory.mktemp("audit-pki"))


def run_audit(port: int, pki: AuditPki, **kw: object) -> TlsReport:
    req = AuditRequest(f"127.0.0.1:{port}", sni="da.test", ca_files=[str(pki.server_ca)], timeout_s=20, **kw)  # type: ignore[arg-type]
    return judge(audit(req))


@dataclass(frozen=True)
class Sslscan:
    versions: dict[str, bool]
    suites: dict[str, set[str]]  # IANA names, via the ids sslscan prints
    ca_names: list[str]  # RFC 4514, converted from OpenSSL's "/CN=a/O=b" one-line form


def sslscan(port: int) -> Sslscan:
    if shutil.which("sslscan") is None:
        pytest.skip("sslscan not installed")
    proc = subprocess.run(
        ["sslscan", "--show-client-cas", "--no-colour", "--sni-name=da.test", "--xml=-", f"127.0.0.1:{port}"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    doc = ET.fromstring(proc.stdout[proc.stdout.index("<?xml") :])
    test = doc.find("ssltest")
    assert test is not None, proc.stdout
    names = {("ssl", "3"): "SSLv3", ("tls", "1.0"): "TLSv1.0", ("tls", "1.1"): "TLSv1.1"}
    names |= {("tls", "1.2"): "TLSv1.2", ("tls", "1.3"): "TLSv1.3"}
    versions = {
        names[(p.get("type", ""), p.get("version", ""))]: p.get("enabled") == "1"
        for p in test.findall("protocol")
        if (p.get("type"), p.get("version")) in names
    }
    suites: dict[str, set[str]] = {v: set() for v in VERSIONS}
    for c in test.findall("cipher"):
        suites[c.get("sslversion", "")].add(S.name_of(int(c.get("id", "0"), 16)))
    cas = []
    ca = test.find("ca")
    for line in (ca.text or "").splitlines() if ca is not None else []:
        line = line.strip()
        if line.startswith("/"):
            cas.append(",".join(reversed(line[1:].split("/"))))
    return Sslscan(versions, suites, cas)


def daemon(factory: object, *args: object, **kw: object) -> Iterator[Daemon]:
    try:
        d = factory(*args, **kw)  # type: ignore[operator]
    except RuntimeError as exc:
        pytest.fail(f"daemon helper: {exc}")
    try:
        yield d
    finally:
        d.stop()


# ------------------------------------------------------------------------------------------- nginx


@pytest.fixture(scope="module")
def nginx_plain(pki: AuditPki, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Daemon]:
    yield from daemon(start_nginx, tmp_path_factory.mktemp("ng-plain"), pki)


def test_nginx_defaults_match_sslscan(nginx_plain: Daemon, pki: AuditPki) -> None:
    # nginx: TLSv1.2 TLSv1.3, "HIGH:!aNULL", no client certificates, session cache and tickets on.
    report = run_audit(nginx_plain.port, pki)
    scan = sslscan(nginx_plain.port)
    assert report.versions == {v: scan.versions[v] for v in VERSIONS}
    assert report.versions == {
        "SSLv3": False,
        "TLSv1.0": False,
        "TLSv1.1": False,
        "TLSv1.2": True,
        "TLSv1.3": True,
    }
    for v in VERSIONS:
        assert set(report.suites[v]) == scan.suites[v], v
    assert report.null_suites == [] and report.client_auth == "none" and report.client_ca_names == []
    assert report.resumption.session_id is True and report.resumption.ticket is True
    assert report.certificate is not None and report.certificate.trusted and report.certificate.name_matches
    assert report.server_preference["TLSv1.2"] is False  # ssl_prefer_server_ciphers off
    status = {f.id: f.status for f in report.findings}
    assert status["tls.null-suites"] == "warn" and status["tls.client-auth"] == "pass"
    assert report.verdict.status == "healthy" and exit_code(report) == 0
    assert report.jobs.max_concurrent <= 8 and report.jobs.error == 0


def test_cli_json_validates_against_the_schema(nginx_plain: Daemon, pki: AuditPki) -> None:
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "vpndoctor",
            "tls",
            f"127.0.0.1:{nginx_plain.port}",
            "--sni",
            "da.test",
            "--ca",
            str(pki.server_ca),
            "--json",
            "--concurrency",
            "3",
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    jsonschema.validate(out, SCHEMA)
    assert out["target"] == f"127.0.0.1:{nginx_plain.port}" and out["jobs"]["max_concurrent"] <= 3
    assert set(out["versions"]) == set(VERSIONS)
    ids = [f["id"] for f in out["findings"]]
    assert len(ids) == len(set(ids)) and ids[0] == "tls.reachable"


def test_wrong_trust_anchor_and_name(nginx_plain: Daemon, pki: AuditPki) -> None:
    req = AuditRequest(
        f"127.0.0.1:{nginx_plain.port}", sni="other.test", ca_files=[str(pki.client_ca)], timeout_s=20
    )
    report = judge(audit(req))
    status = {f.id: f.status for f in report.findings}
    assert status["tls.certificate.trust"] == "fail" and status["tls.certificate.name"] == "fail"
    assert report.verdict.root_causes == ["tls.certificate.trust", "tls.certificate.name"]
    assert exit_code(report) == 1


@pytest.fixture(scope="module")
def nginx_no_resumption(pki: AuditPki, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Daemon]:
    yield from daemon(
        start_nginx, tmp_path_factory.mktemp("ng-nores"), pki, session_cache=False, tickets=False
    )


def test_nginx_without_resumption(nginx_no_resumption: Daemon, pki: AuditPki) -> None:
    report = run_audit(nginx_no_resumption.port, pki)
    assert report.resumption.session_id is False and report.resumption.ticket is False
    assert next(f for f in report.findings if f.id == "tls.resumption").status == "warn"


@pytest.fixture(scope="module")
def nginx_verify_on(pki: AuditPki, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Daemon]:
    yield from daemon(start_nginx, tmp_path_factory.mktemp("ng-on"), pki, verify_client="on")


def test_nginx_verify_on_is_required_at_the_http_layer(nginx_verify_on: Daemon, pki: AuditPki) -> None:
    # nginx `ssl_verify_client on` completes the TLS handshake without a certificate and refuses the request
    # (400 "No required SSL certificate was sent"): required, enforced by HTTP. sslscan lists the CA names
    # from the same CertificateRequest.
    report = run_audit(nginx_verify_on.port, pki)
    scan = sslscan(nginx_verify_on.port)
    assert report.client_auth == "required" and report.client_auth_enforced_by == "http"
    assert report.client_ca_names == scan.ca_names == [pki.client_ca_name]
    for v in VERSIONS:
        assert set(report.suites[v]) == scan.suites[v], v
    assert report.foreign_certificate is not None and not report.foreign_certificate.accepted


def test_client_certificate_from_the_right_ca_gets_through(nginx_verify_on: Daemon, pki: AuditPki) -> None:
    good = run_audit(
        nginx_verify_on.port, pki, client_cert=str(pki.client_cert), client_key=str(pki.client_key)
    )
    assert good.client_certificate is not None and good.client_certificate.accepted
    assert good.resumption.session_id is True  # with a certificate the handshakes complete
    bad = run_audit(
        nginx_verify_on.port,
        pki,
        client_cert=str(pki.other_client_cert),
        client_key=str(pki.other_client_key),
    )
    assert bad.client_certificate is not None and not bad.client_certificate.accepted
    assert bad.client_certificate.refused_by == "http"
    assert "tls.client-auth.client-cert" in bad.verdict.root_causes and exit_code(bad) == 1


@pytest.fixture(scope="module")
def nginx_verify_optional(pki: AuditPki, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Daemon]:
    yield from daemon(start_nginx, tmp_path_factory.mktemp("ng-opt"), pki, verify_client="optional")


def test_nginx_verify_optional(nginx_verify_optional: Daemon, pki: AuditPki) -> None:
    report = run_audit(nginx_verify_optional.port, pki)
    assert report.client_auth == "optional" and report.client_ca_names == [pki.client_ca_name]
    assert next(f for f in report.findings if f.id == "tls.client-auth").status == "warn"


@pytest.fixture(scope="module")
def nginx_null_only(pki: AuditPki, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Daemon]:
    yield from daemon(
        start_nginx,
        tmp_path_factory.mktemp("ng-null"),
        pki,
        protocols="TLSv1 TLSv1.1 TLSv1.2",
        ciphers="NULL-SHA:NULL-SHA256:NULL-MD5:@SECLEVEL=0",
    )


def test_null_only_server_matches_sslscan(nginx_null_only: Daemon, pki: AuditPki) -> None:
    # The DirectAccess-server stand-in shape: NULL suites only, TLS 1.0-1.2.
    report = run_audit(nginx_null_only.port, pki)
    scan = sslscan(nginx_null_only.port)
    assert report.versions == {v: scan.versions[v] for v in VERSIONS}
    assert report.versions["TLSv1.0"] and report.versions["TLSv1.2"] and not report.versions["TLSv1.3"]
    for v in VERSIONS:
        assert set(report.suites[v]) == scan.suites[v], v
    assert set(report.suites["TLSv1.2"]) == {
        "TLS_RSA_WITH_NULL_SHA",
        "TLS_RSA_WITH_NULL_SHA256",
        "TLS_RSA_WITH_NULL_MD5",
    }
    assert report.null_suites == [
        "TLS_RSA_WITH_NULL_MD5",
        "TLS_RSA_WITH_NULL_SHA",
        "TLS_RSA_WITH_NULL_SHA256",
    ]
    status = {f.id: f.status for f in report.findings}
    assert status["tls.null-suites"] == "pass" and status["tls.protocol.tls10"] == "warn"


def test_null_only_server_against_testssl(nginx_null_only: Daemon, pki: AuditPki, tmp_path: Path) -> None:
    """testssl.sh -p (protocols only; its full run takes about a minute) on the NULL-only server.

    testssl says TLS 1.0 and 1.1 are "not offered"; sslscan and we say they are accepted. We are right: the
    server is configured `ssl_protocols TLSv1 TLSv1.1 TLSv1.2` and answers a TLS 1.0 ClientHello that offers
    NULL-SHA with a TLS 1.0 ServerHello choosing NULL-SHA (sslscan shows the same). testssl's protocol probe
    offers its usual suite list, which holds no NULL suite, so a NULL-only server refuses that hello for want
    of a common suite, not of a common version. It agrees on SSLv3 (off), TLS 1.2 (on) and TLS 1.3 (off).
    """
    testssl = shutil.which("testssl") or shutil.which("testssl.sh")
    if testssl is None:
        pytest.skip("testssl.sh not installed")
    out = tmp_path / "testssl.json"
    subprocess.run(
        [
            testssl,
            "-p",
            "--quiet",
            "--warnings",
            "off",
            "--color",
            "0",
            "--jsonfile",
            str(out),
            f"127.0.0.1:{nginx_null_only.port}",
        ],
        capture_output=True,
        text=True,
        timeout=240,
    )
    found = {item["id"]: item["finding"] for item in json.loads(out.read_text())}
    report = run_audit(nginx_null_only.port, pki)
    offered = {
        k: v.startswith("offered")
        for k, v in found.items()
        if k in ("SSLv3", "TLS1", "TLS1_1", "TLS1_2", "TLS1_3")
    }
    assert offered["SSLv3"] is report.versions["SSLv3"] is False
    assert offered["TLS1_2"] is report.versions["TLSv1.2"] is True
    assert offered["TLS1_3"] is report.versions["TLSv1.3"] is False
    # The disagreement explained in the docstring: NULL-only TLS 1.0/1.1.
    assert report.versions["TLSv1.0"] and report.versions["TLSv1.1"]
    assert not offered["TLS1"] and not offered["TLS1_1"]


@pytest.fixture(scope="module")
def nginx_server_order(pki: AuditPki, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Daemon]:
    yield from daemon(
        start_nginx,
        tmp_path_factory.mktemp("ng-order"),
        pki,
        protocols="TLSv1.2",
        ciphers="ECDHE-RSA-AES128-SHA:AES256-SHA:ECDHE-RSA-AES256-GCM-SHA384:NULL-SHA:@SECLEVEL=0",
        prefer_server=True,
    )


def test_server_preference_order(nginx_server_order: Daemon, pki: AuditPki) -> None:
    report = run_audit(nginx_server_order.port, pki)
    assert report.server_preference["TLSv1.2"] is True
    assert report.suites["TLSv1.2"] == [
        "TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA",
        "TLS_RSA_WITH_AES_256_CBC_SHA",
        "TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384",
        "TLS_RSA_WITH_NULL_SHA",
    ]
    # NULL accepted but never chosen for a NULL-first Windows 8+ client: a warning, not a pass.
    null = next(f for f in report.findings if f.id == "tls.null-suites")
    assert null.status == "warn" and "prefers an encrypting suite" in null.detail


# ----------------------------------------------------------------------------------------- HAProxy


@pytest.fixture(scope="module")
def haproxy_required(pki: AuditPki, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Daemon]:
    yield from daemon(start_haproxy, tmp_path_factory.mktemp("hap"), pki)


def test_haproxy_adc_front_end(haproxy_required: Daemon, pki: AuditPki) -> None:
    """The field-guide ADC: ECDHE-RSA-AES128-SHA + NULL-SHA, TLS 1.2 only, client certificate required.

    sslscan may list fewer suites than we do here (none, in our runs): it counts a suite only when OpenSSL
    completes the handshake, and HAProxy `verify required` ends every handshake without a certificate with
    a handshake_failure alert after its ServerHello. The ServerHello already shows the suite is accepted, so
    ours is the configured list; sslscan's is never more than ours. Versions agree.
    """
    report = run_audit(haproxy_required.port, pki)
    scan = sslscan(haproxy_required.port)
    assert report.versions == {v: scan.versions[v] for v in VERSIONS}
    for v in VERSIONS:
        assert scan.suites[v] <= set(report.suites[v]), v
    assert report.suites["TLSv1.2"] == ["TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA", "TLS_RSA_WITH_NULL_SHA"]
    assert report.client_auth == "required" and report.client_auth_enforced_by == "tls"
    # sslscan prints the CA list of a handshake it completes; here it completes none, so it may show none.
    assert report.client_ca_names == [pki.client_ca_name] and scan.ca_names in ([], [pki.client_ca_name])
    assert report.foreign_certificate is not None and report.foreign_certificate.refused_by == "tls"
    assert report.resumption.session_id is None  # cannot complete a handshake without a certificate


# -------------------------------------------------------------------------------------- s_server


@pytest.fixture(scope="module")
def s_server_required(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[OpensslServer, Path]]:
    pki = make_pki(tmp_path_factory.mktemp("ssrv"))
    try:
        server = OpensslServer(pki, "ALL:@SECLEVEL=0", ["-Verify", "1", "-CAfile", str(pki.ca_pem)])
    except RuntimeError as exc:
        pytest.fail(f"daemon helper: {exc}")
    try:
        yield server, pki.ca_pem
    finally:
        server.stop()


def test_s_server_requiring_certificates_vs_sslscan(s_server_required: tuple[OpensslServer, Path]) -> None:
    """`openssl s_server -Verify 1`: TLS 1.0-1.3, every OpenSSL suite at security level 0, certificate
    required (and any certificate accepted: s_server does not fail on verify errors without
    -verify_return_error).

    sslscan lists only the TLS 1.3 suites here: it counts a suite when OpenSSL completes a handshake, and
    without a client certificate the TLS <= 1.2 handshakes fail at the server's alert, while in TLS 1.3 the
    client's side completes before the server checks. We count a suite when the server's ServerHello chooses
    it, which does not depend on the client certificate: the TLS <= 1.2 lists are right. Versions and CA
    names agree.
    """
    server, ca = s_server_required
    report = judge(audit(AuditRequest(f"127.0.0.1:{server.port}", ca_files=[str(ca)], timeout_s=20)))
    scan = sslscan(server.port)
    assert report.versions == {v: scan.versions[v] for v in VERSIONS}
    assert set(report.suites["TLSv1.3"]) == scan.suites["TLSv1.3"]
    assert not scan.suites["TLSv1.2"] and len(report.suites["TLSv1.2"]) > 20
    assert "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256" in report.suites["TLSv1.2"]
    assert report.client_auth == "required" and report.client_auth_enforced_by == "tls"
    assert report.client_ca_names == scan.ca_names == [CA_NAME.rfc4514_string()]
    assert report.foreign_certificate is not None and report.foreign_certificate.accepted
    foreign = next(f for f in report.findings if f.id == "tls.client-auth.foreign-cert")
    assert foreign.status == "fail"


def test_ipv6_endpoint(pki: AuditPki, tmp_path: Path) -> None:
    try:
        with socket.socket(socket.AF_INET6) as s:
            s.bind(("::1", 0))
    except OSError:
        pytest.skip("no IPv6 loopback")
    for d in daemon(start_nginx, tmp_path / "ng6", pki, host="::1"):
        req = AuditRequest(f"[::1]:{d.port}", sni="da.test", ca_files=[str(pki.server_ca)], timeout_s=20)
        report = judge(audit(req))
        assert report.address == "::1" and report.error is None
        assert report.versions["TLSv1.2"] and report.versions["TLSv1.3"]
        assert report.certificate is not None and report.certificate.name_matches


@pytest.fixture(scope="module")
def nginx_tls13_only(pki: AuditPki, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Daemon]:
    yield from daemon(
        start_nginx, tmp_path_factory.mktemp("ng13"), pki, protocols="TLSv1.3", verify_client="optional"
    )


def test_tls13_only_server(nginx_tls13_only: Daemon, pki: AuditPki) -> None:
    # TLS 1.3 only, client certificate optional: the CertificateRequest and its CA names are encrypted and
    # come from our decryption of the server's flight; resumption is by ticket only (no session ids in 1.3).
    report = run_audit(nginx_tls13_only.port, pki)
    scan = sslscan(nginx_tls13_only.port)
    assert report.versions == {v: scan.versions[v] for v in VERSIONS}
    assert set(report.suites["TLSv1.3"]) == scan.suites["TLSv1.3"]
    assert report.client_auth == "optional" and report.client_ca_names == [pki.client_ca_name]
    assert report.certificate is not None and report.certificate.seen_in == "TLSv1.3"
    assert report.resumption.session_id is None and report.resumption.ticket is True
    status = {f.id: f.status for f in report.findings}
    assert status["tls.protocol.tls12"] == "fail" and status["tls.resumption"] == "pass"
