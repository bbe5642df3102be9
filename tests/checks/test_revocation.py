"""checks.revocation: CRLs and OCSP responses built here with `cryptography` (good, revoked, expired, badly
signed, from the wrong issuer, OCSP revoked/unknown/unauthorised), judged as a Windows client would."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509 import ocsp
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from tests.sstp.synthetic import attempt, iphttps_obs, sstp_obs, tls_info
from vpndoctor.checks import ids
from vpndoctor.checks.revocation import (
    CRYPT_E_NO_REVOCATION_CHECK,
    CRYPT_E_REVOCATION_OFFLINE,
    CRYPT_E_REVOKED,
    ERROR_IPSEC_IKE_PEER_CRL_FAILED,
    judge_crl,
    judge_ocsp,
    judge_revocation,
    revocation_finding,
)
from vpndoctor.checks.sstp import iphttps_findings, sstp_findings, sstp_report
from vpndoctor.observations.ike import CertificateInfo
from vpndoctor.observations.revocation import CertificateRevocation, RevocationFetch, RevocationObservation

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
CRL_URL = "http://crl.example.test/issuing.crl"
DELTA_URL = "http://crl.example.test/issuing+.crl"
OCSP_URL = "http://ocsp.example.test/"


def _key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def _name(cn: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])


def _cert(
    subject: str,
    key: ec.EllipticCurvePrivateKey,
    issuer: x509.Certificate | None,
    issuer_key: ec.EllipticCurvePrivateKey,
    *,
    ca: bool = False,
    ekus: list[x509.ObjectIdentifier] | None = None,
) -> x509.Certificate:
    b = (
        x509.CertificateBuilder()
        .subject_name(_name(subject))
        .issuer_name(issuer.subject if issuer else _name(subject))
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(NOW - timedelta(days=10))
        .not_valid_after(NOW + timedelta(days=300))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
    )
    if ekus:
        b = b.add_extension(x509.ExtendedKeyUsage(ekus), critical=False)
    return b.sign(issuer_key, hashes.SHA256())


class Pki:
    def __init__(self) -> None:
        self.ca_key = _key()
        self.ca = _cert("Test CA", self.ca_key, None, self.ca_key, ca=True)
        self.leaf_key = _key()
        self.leaf = _cert("vpn.example.test", self.leaf_key, self.ca, self.ca_key)
        self.other_key = _key()
        self.other_ca = _cert("Other CA", self.other_key, None, self.other_key, ca=True)

    def crl(
        self,
        *,
        revoked: list[tuple[int, x509.ReasonFlags | None]] = (),  # type: ignore[assignment]
        this_update: datetime = NOW - timedelta(days=1),
        next_update: datetime = NOW + timedelta(days=6),
        issuer: x509.Certificate | None = None,
        key: ec.EllipticCurvePrivateKey | None = None,
        number: int = 7,
        freshest: str | None = None,
        delta_of: int | None = None,
    ) -> bytes:
        b = (
            x509.CertificateRevocationListBuilder()
            .issuer_name((issuer or self.ca).subject)
            .last_update(this_update)
            .next_update(next_update)
            .add_extension(x509.CRLNumber(number), critical=False)
        )
        if freshest:
            point = x509.DistributionPoint([x509.UniformResourceIdentifier(freshest)], None, None, None)
            b = b.add_extension(x509.FreshestCRL([point]), critical=False)
        if delta_of is not None:
            b = b.add_extension(x509.DeltaCRLIndicator(delta_of), critical=True)
        for serial, reason in revoked:
            entry = (
                x509.RevokedCertificateBuilder()
                .serial_number(serial)
                .revocation_date(NOW - timedelta(days=2))
            )
            if reason is not None:
                entry = entry.add_extension(x509.CRLReason(reason), critical=False)
            b = b.add_revoked_certificate(entry.build())
        crl = b.sign(key or self.ca_key, hashes.SHA256())
        return crl.public_bytes(serialization.Encoding.DER)

    def ocsp(
        self,
        status: ocsp.OCSPCertStatus,
        *,
        responder: x509.Certificate | None = None,
        responder_key: ec.EllipticCurvePrivateKey | None = None,
        next_update: datetime = NOW + timedelta(days=1),
        cert: x509.Certificate | None = None,
    ) -> bytes:
        revoked = status == ocsp.OCSPCertStatus.REVOKED
        b = ocsp.OCSPResponseBuilder().add_response(
            cert=cert or self.leaf,
            issuer=self.ca,
            algorithm=hashes.SHA1(),
            cert_status=status,
            this_update=NOW - timedelta(hours=1),
            next_update=next_update,
            revocation_time=NOW - timedelta(days=2) if revoked else None,
            revocation_reason=x509.ReasonFlags.key_compromise if revoked else None,
        )
        signer = responder or self.ca
        b = b.responder_id(ocsp.OCSPResponderEncoding.HASH, signer)
        if responder is not None:
            b = b.certificates([responder])
        resp = b.sign(responder_key or self.ca_key, hashes.SHA256())
        return resp.public_bytes(serialization.Encoding.DER)


def fetched(purpose: str, url: str, body: bytes, status: int = 200) -> RevocationFetch:
    return RevocationFetch(
        purpose=purpose,  # type: ignore[arg-type]
        url=url,
        outcome="fetched",
        http_status=status,
        size_bytes=len(body),
        body=body,
    )


def failed(purpose: str, url: str, kind: str, error: str) -> RevocationFetch:
    return RevocationFetch(purpose=purpose, url=url, outcome="failed", error=error, error_kind=kind)  # type: ignore[arg-type]


def observation(
    pki: Pki,
    fetches: list[RevocationFetch],
    *,
    crl_urls: tuple[str, ...] = (CRL_URL,),
    ocsp_urls: tuple[str, ...] = (),
    issuer: x509.Certificate | None = None,
    issuer_source: str = "chain",
    from_aia: bool = False,
) -> RevocationObservation:
    der = serialization.Encoding.DER
    leaf = pki.leaf
    return RevocationObservation(
        certificates=[
            CertificateRevocation(
                position=0,
                subject=leaf.subject.rfc4514_string(),
                issuer=leaf.issuer.rfc4514_string(),
                serial=f"{leaf.serial_number:X}",
                sha256="00",
                crl_urls=list(crl_urls),
                freshest_crl_urls=[],
                ocsp_urls=list(ocsp_urls),
                ca_issuer_urls=[],
                issuer_source=issuer_source,  # type: ignore[arg-type]
                issuer_subject="CN=Test CA",
                fetches=fetches,
                certificate_der=leaf.public_bytes(der),
                issuer_der=(issuer or pki.ca).public_bytes(der),
            )
        ],
        chain_sent=2,
        intermediate_from_aia=from_aia,
        max_fetches=12,
        fetches_used=len(fetches),
        duration_s=0.01,
    )


@pytest.fixture(scope="module")
def pki() -> Pki:
    return Pki()


# ---- CRLs -------------------------------------------------------------------------------------------------


def test_a_current_crl_without_the_serial_is_good(pki: Pki) -> None:
    v = judge_crl(
        CRL_URL, fetched("crl", CRL_URL, pki.crl(revoked=[(12345, None)])), pki.leaf, pki.ca, [], NOW
    )
    assert (v.status, v.reason) == ("good", "good")
    assert v.next_update == NOW + timedelta(days=6)


def test_a_listed_serial_is_revoked_with_date_and_reason(pki: Pki) -> None:
    body = pki.crl(revoked=[(pki.leaf.serial_number, x509.ReasonFlags.key_compromise)])
    v = judge_crl(CRL_URL, fetched("crl", CRL_URL, body), pki.leaf, pki.ca, [], NOW)
    assert (v.status, v.revocation_reason) == ("revoked", "keyCompromise")
    assert v.revoked_at == NOW - timedelta(days=2)


def test_an_expired_crl_is_unusable(pki: Pki) -> None:
    body = pki.crl(this_update=NOW - timedelta(days=10), next_update=NOW - timedelta(days=3))
    v = judge_crl(CRL_URL, fetched("crl", CRL_URL, body), pki.leaf, pki.ca, [], NOW)
    assert (v.status, v.reason) == ("unusable", "expired")


def test_a_crl_dated_in_the_future_is_unusable(pki: Pki) -> None:
    body = pki.crl(this_update=NOW + timedelta(days=1), next_update=NOW + timedelta(days=8))
    assert (
        judge_crl(CRL_URL, fetched("crl", CRL_URL, body), pki.leaf, pki.ca, [], NOW).reason == "not-yet-valid"
    )


def test_a_crl_signed_by_another_key_has_a_bad_signature(pki: Pki) -> None:
    body = pki.crl(key=pki.other_key)  # names the right issuer, signed with the wrong key
    v = judge_crl(CRL_URL, fetched("crl", CRL_URL, body), pki.leaf, pki.ca, [], NOW)
    assert (v.status, v.reason) == ("unusable", "bad-signature")


def test_a_crl_of_another_issuer_is_unusable(pki: Pki) -> None:
    body = pki.crl(issuer=pki.other_ca, key=pki.other_key)
    v = judge_crl(CRL_URL, fetched("crl", CRL_URL, body), pki.leaf, pki.ca, [], NOW)
    assert (v.status, v.reason) == ("unusable", "wrong-issuer")


def test_not_a_crl_and_http_errors(pki: Pki) -> None:
    assert (
        judge_crl(CRL_URL, fetched("crl", CRL_URL, b"<html>"), pki.leaf, pki.ca, [], NOW).reason
        == "not-a-crl"
    )
    v = judge_crl(CRL_URL, fetched("crl", CRL_URL, b"nope", 404), pki.leaf, pki.ca, [], NOW)
    assert (v.status, v.reason) == ("unavailable", "http-status")
    v = judge_crl(CRL_URL, failed("crl", CRL_URL, "dns", "name does not resolve"), pki.leaf, pki.ca, [], NOW)
    assert (v.status, v.reason) == ("unavailable", "dns")


def test_a_pem_crl_is_read_too(pki: Pki) -> None:
    pem = x509.load_der_x509_crl(pki.crl()).public_bytes(serialization.Encoding.PEM)
    assert judge_crl(CRL_URL, fetched("crl", CRL_URL, pem), pki.leaf, pki.ca, [], NOW).status == "good"


def test_a_delta_crl_is_needed_and_read(pki: Pki) -> None:
    base = pki.crl(freshest=DELTA_URL, number=7)
    base_fetch = fetched("crl", CRL_URL, base)
    # The base names a delta that was not obtained: Windows reports the check as offline.
    missing = failed("delta-crl", DELTA_URL, "refused", "connection refused")
    v = judge_crl(CRL_URL, base_fetch, pki.leaf, pki.ca, [missing], NOW)
    assert (v.status, v.reason) == ("unusable", "delta-unavailable")
    # A delta that revokes since the base.
    delta = pki.crl(revoked=[(pki.leaf.serial_number, x509.ReasonFlags.superseded)], number=8, delta_of=7)
    v = judge_crl(CRL_URL, base_fetch, pki.leaf, pki.ca, [fetched("delta-crl", DELTA_URL, delta)], NOW)
    assert (v.status, v.revocation_reason) == ("revoked", "superseded")
    # A delta that lists nothing of ours.
    clean = pki.crl(number=8, delta_of=7)
    v = judge_crl(CRL_URL, base_fetch, pki.leaf, pki.ca, [fetched("delta-crl", DELTA_URL, clean)], NOW)
    assert v.status == "good" and "delta" in v.detail
    # A "delta" without the Delta CRL Indicator is refused.
    v = judge_crl(CRL_URL, base_fetch, pki.leaf, pki.ca, [fetched("delta-crl", DELTA_URL, pki.crl())], NOW)
    assert v.reason == "delta-unavailable"


# ---- OCSP -------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "expected"),
    [
        (ocsp.OCSPCertStatus.GOOD, "good"),
        (ocsp.OCSPCertStatus.REVOKED, "revoked"),
        (ocsp.OCSPCertStatus.UNKNOWN, "unknown"),
    ],
)
def test_ocsp_status(pki: Pki, status: ocsp.OCSPCertStatus, expected: str) -> None:
    v = judge_ocsp(OCSP_URL, fetched("ocsp", OCSP_URL, pki.ocsp(status)), pki.leaf, pki.ca, NOW)
    assert v.status == expected
    if expected == "revoked":
        assert v.revocation_reason == "keyCompromise"


def test_ocsp_delegated_responder_needs_the_ocsp_signing_eku(pki: Pki) -> None:
    key = _key()
    good = _cert("OCSP responder", key, pki.ca, pki.ca_key, ekus=[ExtendedKeyUsageOID.OCSP_SIGNING])
    body = pki.ocsp(ocsp.OCSPCertStatus.GOOD, responder=good, responder_key=key)
    assert judge_ocsp(OCSP_URL, fetched("ocsp", OCSP_URL, body), pki.leaf, pki.ca, NOW).status == "good"
    plain = _cert("Not a responder", key, pki.ca, pki.ca_key, ekus=[ExtendedKeyUsageOID.SERVER_AUTH])
    body = pki.ocsp(ocsp.OCSPCertStatus.GOOD, responder=plain, responder_key=key)
    v = judge_ocsp(OCSP_URL, fetched("ocsp", OCSP_URL, body), pki.leaf, pki.ca, NOW)
    assert (v.status, v.reason) == ("unusable", "signer-unknown")


def test_ocsp_bad_signature_stale_and_foreign_answers(pki: Pki) -> None:
    # The CA's answer with one bit of its signature flipped (the signature ends the DER: no certificates).
    body = bytearray(pki.ocsp(ocsp.OCSPCertStatus.GOOD))
    body[-1] ^= 0x01
    v = judge_ocsp(OCSP_URL, fetched("ocsp", OCSP_URL, bytes(body)), pki.leaf, pki.ca, NOW)
    assert v.reason == "bad-signature"
    stale = pki.ocsp(ocsp.OCSPCertStatus.GOOD, next_update=NOW - timedelta(hours=2))
    assert judge_ocsp(OCSP_URL, fetched("ocsp", OCSP_URL, stale), pki.leaf, pki.ca, NOW).reason == "expired"
    other_leaf = _cert("other.example.test", _key(), pki.ca, pki.ca_key)
    body = pki.ocsp(ocsp.OCSPCertStatus.GOOD, cert=other_leaf)
    v = judge_ocsp(OCSP_URL, fetched("ocsp", OCSP_URL, body), pki.leaf, pki.ca, NOW)
    assert v.reason == "no-answer-for-cert"
    unauthorized = ocsp.OCSPResponseBuilder.build_unsuccessful(ocsp.OCSPResponseStatus.UNAUTHORIZED)
    body = unauthorized.public_bytes(serialization.Encoding.DER)
    v = judge_ocsp(OCSP_URL, fetched("ocsp", OCSP_URL, body), pki.leaf, pki.ca, NOW)
    assert (v.status, v.reason) == ("unavailable", "ocsp-unauthorized")
    v = judge_ocsp(OCSP_URL, fetched("ocsp", OCSP_URL, b"\x30\x03junk"), pki.leaf, pki.ca, NOW)
    assert v.reason == "not-ocsp"


# ---- the chain and the findings ---------------------------------------------------------------------------


def test_judgement_and_findings_per_protocol(pki: Pki) -> None:
    good = observation(pki, [fetched("crl", CRL_URL, pki.crl())])
    assert judge_revocation(good, NOW).status == "good"
    f = revocation_finding(ids.TLS_CERT_REVOCATION, good, NOW, "tls")
    assert f.status == "pass" and f.error_codes == []

    revoked = observation(pki, [fetched("crl", CRL_URL, pki.crl(revoked=[(pki.leaf.serial_number, None)]))])
    for protocol in ("ike", "sstp", "tls", "iphttps"):
        f = revocation_finding(ids.CERT_REVOCATION, revoked, NOW, protocol)  # type: ignore[arg-type]
        assert f.status == "fail" and f.error_codes == [CRYPT_E_REVOKED], protocol

    offline = observation(pki, [failed("crl", CRL_URL, "refused", "connection refused")])
    assert judge_revocation(offline, NOW).certificates[0].reason == "unreachable"
    f = revocation_finding(ids.SSTP_CERTIFICATE, offline, NOW, "sstp")
    assert f.status == "fail" and f.error_codes == [CRYPT_E_REVOCATION_OFFLINE]
    assert "publish the crl" in f.remedy.lower()
    f = revocation_finding(ids.IPHTTPS_TLS, offline, NOW, "iphttps")
    assert f.status == "warn" and "2980672" in f.detail
    f = revocation_finding(ids.CERT_REVOCATION, offline, NOW, "ike")
    assert f.status == "warn" and f.error_codes == [ERROR_IPSEC_IKE_PEER_CRL_FAILED]

    expired = observation(pki, [fetched("crl", CRL_URL, pki.crl(next_update=NOW - timedelta(hours=1)))])
    judged = judge_revocation(expired, NOW)
    assert (judged.status, judged.certificates[0].reason) == ("offline", "expired-crl")


def test_ocsp_first_crl_second_as_windows(pki: Pki) -> None:
    # OCSP good, CRL unreachable: good (Windows asks OCSP first).
    obs = observation(
        pki,
        [
            fetched("ocsp", OCSP_URL, pki.ocsp(ocsp.OCSPCertStatus.GOOD)),
            failed("crl", CRL_URL, "timeout", "no answer in time"),
        ],
        ocsp_urls=(OCSP_URL,),
    )
    judged = judge_revocation(obs, NOW)
    assert judged.status == "good" and judged.warnings
    # OCSP down, CRL good: good, with a warning about the dead responder.
    obs = observation(
        pki,
        [failed("ocsp", OCSP_URL, "refused", "connection refused"), fetched("crl", CRL_URL, pki.crl())],
        ocsp_urls=(OCSP_URL,),
    )
    f = revocation_finding(ids.TLS_CERT_REVOCATION, obs, NOW, "tls")
    assert f.status == "warn" and "OCSP responder" in f.detail and "fall back" in f.detail
    # OCSP revoked beats a CRL that does not list it yet.
    obs = observation(
        pki,
        [
            fetched("ocsp", OCSP_URL, pki.ocsp(ocsp.OCSPCertStatus.REVOKED)),
            fetched("crl", CRL_URL, pki.crl()),
        ],
        ocsp_urls=(OCSP_URL,),
    )
    assert judge_revocation(obs, NOW).status == "revoked"
    # OCSP unknown and nothing else: offline.
    obs = observation(
        pki,
        [fetched("ocsp", OCSP_URL, pki.ocsp(ocsp.OCSPCertStatus.UNKNOWN))],
        crl_urls=(),
        ocsp_urls=(OCSP_URL,),
    )
    assert judge_revocation(obs, NOW).status == "offline"


def test_no_cdp_no_aia_ldap_only_and_not_checked(pki: Pki) -> None:
    bare = observation(pki, [], crl_urls=())
    f = revocation_finding(ids.SSTP_CERTIFICATE, bare, NOW, "sstp")
    assert f.status == "warn" and CRYPT_E_NO_REVOCATION_CHECK in f.error_codes
    assert "NoCertRevocationCheck" in f.remedy and "names no CRL distribution point" in f.detail
    assert revocation_finding(ids.CERT_REVOCATION, bare, NOW, "ike").status == "warn"

    ldap = "ldap:///CN=Test%20CA,CN=CDP,CN=Public%20Key%20Services?certificateRevocationList?base"
    ldap_fetch = RevocationFetch(
        purpose="crl",
        url=ldap,
        outcome="not-fetched",
        error="LDAP: unreachable from outside",
        error_kind="ldap",
    )
    obs = observation(pki, [ldap_fetch], crl_urls=(ldap,))
    judged = judge_revocation(obs, NOW)
    assert (judged.status, judged.certificates[0].reason) == ("offline", "ldap-only")
    assert "LDAP only" in revocation_finding(ids.TLS_CERT_REVOCATION, obs, NOW, "tls").detail

    deadline = RevocationFetch(
        purpose="crl", url=CRL_URL, outcome="not-fetched", error="deadline passed", error_kind="deadline"
    )
    f = revocation_finding(ids.TLS_CERT_REVOCATION, observation(pki, [deadline]), NOW, "tls")
    assert f.status == "skip"
    assert revocation_finding(ids.TLS_CERT_REVOCATION, None, NOW, "tls", why_not="no TLS").detail == "no TLS"


def test_an_issuer_that_did_not_sign_is_not_trusted(pki: Pki) -> None:
    obs = observation(pki, [fetched("crl", CRL_URL, pki.crl())], issuer=pki.other_ca)
    judged = judge_revocation(obs, NOW)
    assert (judged.status, judged.certificates[0].reason) == ("offline", "no-issuer")


def test_an_intermediate_fetched_through_aia_is_a_warning(pki: Pki) -> None:
    obs = observation(pki, [fetched("crl", CRL_URL, pki.crl())], issuer_source="aia", from_aia=True)
    f = revocation_finding(ids.SSTP_CERTIFICATE, obs, NOW, "sstp")
    assert f.status == "warn" and "AIA caIssuers" in f.detail and "Intermediate" in f.remedy


def test_bodies_stay_out_of_json(pki: Pki) -> None:
    obs = observation(pki, [fetched("crl", CRL_URL, pki.crl())])
    text = obs.model_dump_json()
    assert "body" not in text and "certificate_der" not in text and CRL_URL in text
    schema = RevocationObservation.model_json_schema()
    assert "body" not in str(schema) and "issuer_der" not in str(schema)


# ---- the revocation part of sstp.certificate and iphttps.tls ----------------------------------------------


def _cert_info(name: str, **kw: object) -> CertificateInfo:
    base: dict[str, object] = {
        "subject": f"CN={name}",
        "issuer": "CN=Test CA",
        "san_dns": [name],
        "san_ip": [],
        "not_before": (NOW - timedelta(days=10)).isoformat(),
        "not_after": (NOW + timedelta(days=300)).isoformat(),
        "eku": ["serverAuth"],
        "key": "EllipticCurve 256",
        "sha256": "00",
        "trusted": True,
        "chain_length": 2,
    }
    base.update(kw)
    return CertificateInfo(**base)  # type: ignore[arg-type]


def test_sstp_certificate_carries_the_revocation_part(pki: Pki) -> None:
    tls = tls_info().model_copy(update={"certificate": _cert_info("vpn.test")})

    def cert_finding(rev: RevocationObservation | None, **kw: object) -> Any:
        t = tls if not kw else tls.model_copy(update={"certificate": _cert_info("vpn.test", **kw)})
        return sstp_findings(sstp_obs(tls=t, revocation=rev), now=NOW)[-1]

    assert cert_finding(None).status == "pass"
    good = observation(pki, [fetched("crl", CRL_URL, pki.crl())])
    f = cert_finding(good)
    assert f.status == "pass" and "Not revoked" in f.detail
    revoked = observation(pki, [fetched("crl", CRL_URL, pki.crl(revoked=[(pki.leaf.serial_number, None)]))])
    f = cert_finding(revoked)
    assert f.status == "fail" and f.error_codes == [CRYPT_E_REVOKED] and "new one" in f.remedy
    offline = observation(pki, [failed("crl", CRL_URL, "dns", "name does not resolve")])
    f = cert_finding(offline, trusted=False)  # both problems, both codes
    assert f.status == "fail" and set(f.error_codes) == {0x800B0109, CRYPT_E_REVOCATION_OFFLINE}
    f = cert_finding(observation(pki, [], crl_urls=()))
    assert f.status == "pass" and "names no CRL distribution point" in f.detail
    ocsp_down = observation(
        pki,
        [failed("ocsp", OCSP_URL, "refused", "connection refused"), fetched("crl", CRL_URL, pki.crl())],
        ocsp_urls=(OCSP_URL,),
    )
    assert cert_finding(ocsp_down).status == "warn"
    report = sstp_report(sstp_obs(tls=tls, revocation=revoked), now=NOW)
    dumped = report.model_dump_json()
    assert '"revocation"' in dumped and '"body"' not in dumped and '"issuer_der"' not in dumped


def test_iphttps_tls_carries_the_revocation_part(pki: Pki) -> None:
    tls = tls_info("NULL-SHA", "TLSv1.2").model_copy(update={"certificate": _cert_info("da.test")})

    def tls_finding(rev: RevocationObservation | None) -> Any:
        obs = iphttps_obs(attempt(tls=tls), revocation=rev)
        return next(f for f in iphttps_findings(obs, now=NOW) if f.id == ids.IPHTTPS_TLS)

    assert tls_finding(None).status == "pass"
    offline = observation(pki, [failed("crl", CRL_URL, "timeout", "no answer in time")])
    f = tls_finding(offline)
    assert f.status == "warn" and f.error_codes == [CRYPT_E_REVOCATION_OFFLINE] and "Windows 7" in f.detail
    revoked = observation(pki, [fetched("crl", CRL_URL, pki.crl(revoked=[(pki.leaf.serial_number, None)]))])
    assert tls_finding(revoked).status == "fail"
