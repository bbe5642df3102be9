"""checks.sstp is pure: synthetic SSTP / IP-HTTPS observations in, findings and verdict facts out."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from tests.sstp.synthetic import attempt, iphttps_obs, refused, sstp_obs, tls_info
from vpndoctor.checks import ids
from vpndoctor.checks.sstp import (
    check_sstp_handshake,
    client_auth,
    exit_code,
    iphttps_findings,
    iphttps_report,
    sstp_findings,
    sstp_report,
)
from vpndoctor.observations.ike import CertificateInfo


def statuses(findings: list) -> dict[str, str]:  # type: ignore[type-arg]
    return {f.id: f.status for f in findings}


def test_handshake_finding() -> None:
    assert check_sstp_handshake(sstp_obs()).status == "pass"
    assert "SHA1+SHA256" in check_sstp_handshake(sstp_obs()).detail
    blocked = check_sstp_handshake(sstp_obs("blocked"))
    assert blocked.status == "fail" and 809 in blocked.error_codes and "New-NetFirewallRule" in blocked.remedy
    assert check_sstp_handshake(sstp_obs("http404")).status == "fail"
    assert "VALUE_NOT_SUPPORTED" in check_sstp_handshake(sstp_obs("nak")).detail
    assert check_sstp_handshake(None, asked=False).detail == "SSTP not among --protocols"
    assert check_sstp_handshake(None).status == "skip"


def test_sstp_findings_in_order_and_skips() -> None:
    ok = sstp_findings(sstp_obs())
    assert [f.id for f in ok] == list(ids.SSTP_ALL)
    assert statuses(ok) == {
        ids.SSTP_TLS: "pass",
        ids.SSTP_HTTP: "pass",
        ids.SSTP_CALL_CONNECT: "pass",
        ids.SSTP_CRYPTO_BINDING: "pass",
        ids.SSTP_CERTIFICATE: "skip",
    }
    s = statuses(sstp_findings(sstp_obs("blocked")))
    assert s[ids.SSTP_TLS] == "fail" and s[ids.SSTP_HTTP] == s[ids.SSTP_CALL_CONNECT] == "skip"
    s = statuses(sstp_findings(sstp_obs("http404")))
    assert s[ids.SSTP_HTTP] == "fail" and s[ids.SSTP_CALL_CONNECT] == "skip"
    s = statuses(sstp_findings(sstp_obs("nak")))
    assert s[ids.SSTP_CALL_CONNECT] == "fail" and s[ids.SSTP_CRYPTO_BINDING] == "skip"


def test_crypto_binding_sha1_only_warns() -> None:
    s = statuses(sstp_findings(sstp_obs(crypto_binding_hash_bitmask=1, crypto_binding_hashes=["SHA1"])))
    assert s[ids.SSTP_CRYPTO_BINDING] == "warn"
    s = statuses(sstp_findings(sstp_obs(crypto_binding_hash_bitmask=0x80, crypto_binding_hashes=[])))
    assert s[ids.SSTP_CRYPTO_BINDING] == "fail"


def _cert(**kw: object) -> CertificateInfo:
    base: dict[str, object] = {
        "subject": "CN=vpn.test",
        "issuer": "CN=CA",
        "san_dns": ["vpn.test"],
        "san_ip": [],
        "not_before": "2026-01-01T00:00:00+00:00",
        "not_after": "2027-01-01T00:00:00+00:00",
        "eku": ["serverAuth"],
        "key": "RSA 2048",
        "sha256": "00",
        "trusted": True,
        "chain_length": 1,
    }
    base.update(kw)
    return CertificateInfo(**base)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("cert", "status", "code"),
    [
        (_cert(), "pass", None),
        (_cert(trusted=False), "fail", 0x800B0109),
        (_cert(not_after="2026-06-01T00:00:00+00:00"), "fail", 0x800B0101),
        (_cert(san_dns=["other.test"]), "fail", 0x800B010F),
        (_cert(san_dns=["*.test"]), "pass", None),
        (_cert(eku=["clientAuth"]), "fail", 0x800B0110),
    ],
)
def test_certificate(cert: CertificateInfo, status: str, code: int | None) -> None:
    tls = tls_info().model_copy(update={"certificate": cert})
    f = sstp_findings(sstp_obs(tls=tls), now=datetime(2026, 11, 1, tzinfo=UTC))[-1]
    assert f.id == ids.SSTP_CERTIFICATE and f.status == status, f.detail
    if code:
        assert code in f.error_codes


def test_sstp_report_contract_and_exit() -> None:
    report = sstp_report(sstp_obs())
    data = report.model_dump()
    assert data["call_connect"] == "ack" and data["crypto_binding_hashes"] == ["SHA1", "SHA256"]
    assert data["http_status"] == 200 and data["server_header"] == "Microsoft-HTTPAPI/2.0"
    assert exit_code(report.findings, unreachable=False) == 0
    assert exit_code(sstp_report(sstp_obs("nak")).findings, unreachable=False) == 1
    assert exit_code([], unreachable=True) == 3


# ---- IP-HTTPS ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("attempts", "expected"),
    [
        ((attempt(),), "none"),
        ((attempt(client_certificate_requested=True),), "optional"),
        ((refused(how="alert"),), "required"),
        ((refused(how="closed"),), "required"),
        ((refused(how="alert", requested=None), attempt("client-cert")), "required"),
        ((refused(how="alert", requested=False),), "unknown"),
        (
            (
                attempt(http_status=400, client_certificate_requested=True),
                attempt("client-cert", client_certificate_requested=True),
            ),
            "required",
        ),
        ((attempt(http_status=400, client_certificate_requested=True),), "unknown"),
        ((attempt(reached="none", tls=None, http_status=None),), "unknown"),
    ],
)
def test_client_auth(attempts: tuple, expected: str) -> None:  # type: ignore[type-arg]
    assert client_auth(iphttps_obs(*attempts)) == expected


def test_iphttps_enforced_with_good_cert() -> None:
    obs = iphttps_obs(refused(how="closed"), attempt("client-cert", client_certificate_requested=True))
    s = statuses(iphttps_findings(obs))
    assert s == {
        ids.IPHTTPS_TLS: "pass",
        ids.IPHTTPS_HTTP: "pass",
        ids.IPHTTPS_CLIENT_AUTH: "pass",
        ids.IPHTTPS_NULL_ENCRYPTION: "pass",
    }
    report = iphttps_report(obs)
    assert report.client_auth == "required" and report.null_encryption and report.http_status == 200


def test_iphttps_enforced_without_cert_skips_http() -> None:
    s = statuses(iphttps_findings(iphttps_obs(refused(how="alert"))))
    assert s[ids.IPHTTPS_TLS] == "pass" and s[ids.IPHTTPS_HTTP] == "skip"
    assert s[ids.IPHTTPS_CLIENT_AUTH] == "pass" and s[ids.IPHTTPS_NULL_ENCRYPTION] == "skip"


def test_iphttps_wrong_cert_fails() -> None:
    obs = iphttps_obs(refused(how="alert"), refused("client-cert", how="alert"))
    s = statuses(iphttps_findings(obs))
    assert s[ids.IPHTTPS_CLIENT_AUTH] == "fail"


def test_iphttps_open_and_encrypting() -> None:
    obs = iphttps_obs(attempt(tls=tls_info("ECDHE-RSA-AES128-SHA", "TLSv1.2")))
    s = statuses(iphttps_findings(obs))
    assert s[ids.IPHTTPS_CLIENT_AUTH] == "warn" and s[ids.IPHTTPS_NULL_ENCRYPTION] == "warn"
    assert not iphttps_report(obs).null_encryption


def test_iphttps_nginx_400_explained() -> None:
    obs = iphttps_obs(attempt(http_status=400, http_reason="Bad Request", server_header="nginx/1.22.1"))
    f = next(f for f in iphttps_findings(obs) if f.id == ids.IPHTTPS_HTTP)
    assert f.status == "fail" and "18446744073709551615" in f.detail


def test_iphttps_unreachable() -> None:
    obs = iphttps_obs(
        attempt(
            reached="none", tls=None, http_status=None, error_stage="connect", error="TCP connect: refused"
        )
    )
    s = statuses(iphttps_findings(obs))
    assert s[ids.IPHTTPS_TLS] == "fail" and s[ids.IPHTTPS_HTTP] == "skip"
    obs = iphttps_obs(error="cannot resolve da.test: Name or service not known", attempts=[])
    assert statuses(iphttps_findings(obs))[ids.IPHTTPS_TLS] == "fail"


def test_iphttps_certificate_judged() -> None:
    bad = tls_info("NULL-SHA", "TLSv1.2").model_copy(
        update={"certificate": _cert(trusted=False, san_dns=["x.test"])}
    )
    f = iphttps_findings(iphttps_obs(attempt(tls=bad)), now=datetime(2026, 11, 1, tzinfo=UTC))[0]
    assert f.id == ids.IPHTTPS_TLS and f.status == "fail" and "not a trusted CA" in f.detail
    assert set(f.error_codes) == {0x800B0109, 0x800B010F}
    good = tls_info("NULL-SHA", "TLSv1.2").model_copy(update={"certificate": _cert(san_dns=["da.test"])})
    f = iphttps_findings(iphttps_obs(attempt(tls=good)), now=datetime(2026, 11, 1, tzinfo=UTC))[0]
    assert f.status == "pass" and "certificate trusted" in f.detail
