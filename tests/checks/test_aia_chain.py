"""checks.certificate's trust with intermediates fetched through AIA caIssuers: a server that sends its
certificate without the intermediate is trusted when the revocation step fetched that intermediate (as
Windows' CryptoAPI does), with the note that clients which cannot reach the URL fail; without it, or with a
fetched certificate that is not the issuer, the answer is the one it always was. Then the callers: diagnose
(cert.trust), tls (tls.certificate.trust), sstp (sstp.certificate) and IP-HTTPS (iphttps.tls)."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import AuthorityInformationAccessOID, ExtendedKeyUsageOID, NameOID

from tests.checks.test_diagnose import ike
from tests.sstp.synthetic import attempt, iphttps_obs, sstp_obs, tls_info
from tests.tls.test_audit_plan import ModelServer
from tests.tls.test_audit_plan import run as run_plan
from vpndoctor.certs import eku_names, san_names
from vpndoctor.checks import ids
from vpndoctor.checks import tls as T
from vpndoctor.checks.certificate import (
    AiaIntermediate,
    aia_intermediates,
    facts_of,
    facts_of_info,
    judge_certificate,
)
from vpndoctor.checks.diagnose import check_certificates
from vpndoctor.checks.revocation import REMEDY_AIA
from vpndoctor.checks.sstp import CERT_E_UNTRUSTEDROOT, iphttps_findings, sstp_findings
from vpndoctor.observations.diagnose import DiagnoseObservations, DiagnoseRequest
from vpndoctor.observations.ike import CertificateInfo
from vpndoctor.observations.revocation import CertificateRevocation, RevocationFetch, RevocationObservation
from vpndoctor.observations.tls import AuditObservation
from vpndoctor.tls.audit import combine
from vpndoctor.tls.hello import Version

NOW = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)
NAME = "vpn.example.com"
AIA_URL = "http://crl.example.com/issuing.crt"


def _name(cn: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])


def _key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def _ca(
    subject: x509.Name, key: rsa.RSAPrivateKey, issuer: x509.Name, signer: rsa.RSAPrivateKey
) -> x509.Certificate:
    return (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(NOW - timedelta(days=400))
        .not_valid_after(NOW + timedelta(days=4000))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(signer, hashes.SHA256())
    )


ROOT_KEY, ISSUING_KEY, IMPOSTOR_KEY, LEAF_KEY = _key(), _key(), _key(), _key()
ROOT_NAME, ISSUING_NAME = _name("AIA Root CA"), _name("AIA Issuing CA")
ROOT = _ca(ROOT_NAME, ROOT_KEY, ROOT_NAME, ROOT_KEY)
ISSUING = _ca(ISSUING_NAME, ISSUING_KEY, ROOT_NAME, ROOT_KEY)
# Same name as the issuing CA, another key: what a caIssuers URL serving the wrong certificate hands back.
IMPOSTOR = _ca(ISSUING_NAME, IMPOSTOR_KEY, ROOT_NAME, ROOT_KEY)
LEAF = (
    x509.CertificateBuilder()
    .subject_name(_name(NAME))
    .issuer_name(ISSUING_NAME)
    .public_key(LEAF_KEY.public_key())
    .serial_number(x509.random_serial_number())
    .not_valid_before(NOW - timedelta(days=10))
    .not_valid_after(NOW + timedelta(days=300))
    .add_extension(x509.SubjectAlternativeName([x509.DNSName(NAME)]), critical=False)
    .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
    .add_extension(
        x509.AuthorityInformationAccess(
            [
                x509.AccessDescription(
                    AuthorityInformationAccessOID.CA_ISSUERS, x509.UniformResourceIdentifier(AIA_URL)
                )
            ]
        ),
        critical=False,
    )
    .sign(ISSUING_KEY, hashes.SHA256())
)
NOTE = (
    f"the intermediate {ISSUING.subject.rfc4514_string()} was fetched through AIA caIssuers {AIA_URL}; "
    "clients that cannot reach it fail"
)


def _der(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.DER)


def _sha256(cert: x509.Certificate) -> str:
    return cert.fingerprint(hashes.SHA256()).hex()


def _entry(
    position: int, cert: x509.Certificate, issuer: x509.Certificate, source: str, **kw: Any
) -> CertificateRevocation:
    return CertificateRevocation(
        position=position,
        subject=cert.subject.rfc4514_string(),
        issuer=cert.issuer.rfc4514_string(),
        serial=f"{cert.serial_number:X}",
        sha256=_sha256(cert),
        crl_urls=[],
        freshest_crl_urls=[],
        ocsp_urls=[],
        ca_issuer_urls=kw.pop("ca_issuer_urls", []),
        issuer_source=source,  # type: ignore[arg-type]
        issuer_subject=issuer.subject.rfc4514_string(),
        fetches=kw.pop("fetches", []),
        certificate_der=_der(cert),
        issuer_der=_der(issuer),
    )


def revocation(fetched: x509.Certificate = ISSUING) -> RevocationObservation:
    """What probes.revocation keeps when the server sent the leaf alone: its issuer `fetched` through AIA
    caIssuers (the probe takes only the real issuer; a hand-made observation may say otherwise), then the
    root among the anchors."""
    fetch = RevocationFetch(
        purpose="ca-issuers",
        url=AIA_URL,
        outcome="fetched",
        http_status=200,
        size_bytes=900,
        body=_der(fetched),
    )
    return RevocationObservation(
        certificates=[
            _entry(0, LEAF, fetched, "aia", ca_issuer_urls=[AIA_URL], fetches=[fetch]),
            _entry(1, fetched, ROOT, "anchors"),
        ],
        chain_sent=1,
        intermediate_from_aia=True,
        max_fetches=12,
        fetches_used=1,
        duration_s=0.01,
    )


def info(trusted: bool | None = False) -> CertificateInfo:
    """What probes.ike.describe_certificate keeps of the leaf sent alone (untrusted as sent, with --ca)."""
    dns, ips = san_names(LEAF)
    return CertificateInfo(
        subject=LEAF.subject.rfc4514_string(),
        issuer=LEAF.issuer.rfc4514_string(),
        san_dns=dns,
        san_ip=ips,
        not_before=LEAF.not_valid_before_utc.isoformat(),
        not_after=LEAF.not_valid_after_utc.isoformat(),
        eku=eku_names(LEAF),
        key="RSA 2048",
        sha256=_sha256(LEAF),
        trusted=trusted,
        chain_length=1,
    )


# ---- the judge --------------------------------------------------------------------------------------------


def test_aia_intermediates_reads_the_revocation_observation() -> None:
    (got,) = aia_intermediates(revocation())
    assert got.certificate == ISSUING and got.url == AIA_URL
    assert got.subject == "CN=AIA Issuing CA"
    assert aia_intermediates(None) == ()
    # From JSON the DER is gone (exclude=True): nothing to complete a chain with.
    reloaded = RevocationObservation.model_validate_json(revocation().model_dump_json())
    assert aia_intermediates(reloaded) == ()


def test_incomplete_chain_completed_through_aia_is_trusted_with_the_note() -> None:
    facts = facts_of(LEAF, [], [ROOT], [AiaIntermediate(ISSUING, AIA_URL)])
    assert facts.trusted is True and facts.chain_break is None
    assert [a.certificate for a in facts.via_aia] == [ISSUING]
    trust = judge_certificate(facts, NAME, NOW).trust
    assert (trust.status, trust.reason) == ("warn", "chains-through-aia")
    assert NOTE in trust.evidence


def test_without_the_aia_intermediate_the_chain_is_untrusted_as_before() -> None:
    facts = facts_of(LEAF, [], [ROOT])
    assert facts.trusted is False and facts.via_aia == ()
    assert facts.chain_break == ISSUING.subject.rfc4514_string()
    trust = judge_certificate(facts, NAME, NOW).trust
    assert (trust.status, trust.reason) == ("bad", "untrusted")
    assert facts == facts_of(LEAF, [], [ROOT], [])


def test_a_fetched_certificate_that_is_not_the_issuer_is_ignored() -> None:
    # Same subject as the issuer, another key: its signature does not verify the leaf.
    facts = facts_of(LEAF, [], [ROOT], [AiaIntermediate(IMPOSTOR, AIA_URL)])
    assert facts.trusted is False and facts.via_aia == ()
    assert judge_certificate(facts, NAME, NOW).trust.reason == "untrusted"
    # Nor is one that has nothing to do with the chain.
    facts = facts_of(LEAF, [], [ROOT], [AiaIntermediate(ROOT, AIA_URL)])
    assert facts.trusted is False and facts.via_aia == ()


def test_a_chain_complete_as_sent_needs_no_aia() -> None:
    facts = facts_of(LEAF, [ISSUING], [ROOT], [AiaIntermediate(ISSUING, AIA_URL)])
    assert facts.trusted is True and facts.via_aia == ()
    assert judge_certificate(facts, NAME, NOW).trust.reason == "chains"


def test_aia_does_not_help_without_the_anchor() -> None:
    other = _ca(_name("Other Root"), _key(), _name("Other Root"), ROOT_KEY)
    facts = facts_of(LEAF, [], [other], [AiaIntermediate(ISSUING, AIA_URL)])
    assert facts.trusted is False and facts.via_aia == ()
    assert facts_of(LEAF, [], None, [AiaIntermediate(ISSUING, AIA_URL)]).trusted is None


def test_facts_of_info_completes_through_the_revocation_observation() -> None:
    facts = facts_of_info(info(), revocation())
    assert facts.trusted is True and [a.url for a in facts.via_aia] == [AIA_URL]
    assert NOTE in judge_certificate(facts, NAME, NOW).trust.evidence
    # As before: without the observation, with a fetched certificate that is not the issuer, for another
    # leaf, and when no anchor was given (trusted None: not checked, not completed).
    assert facts_of_info(info()).trusted is False
    assert facts_of_info(info(), revocation(IMPOSTOR)).trusted is False
    assert facts_of_info(info().model_copy(update={"sha256": "00"}), revocation()).trusted is False
    assert facts_of_info(info(None), revocation()).trusted is None
    assert facts_of_info(info(True), revocation()).via_aia == ()


# ---- the callers ------------------------------------------------------------------------------------------


def _diagnose_trust(rev: RevocationObservation | None) -> Any:
    pem = LEAF.public_bytes(serialization.Encoding.PEM).decode()
    obs = DiagnoseObservations(request=DiagnoseRequest(name=NAME), started_at="now", anchors=[ROOT])
    obs.ike_main = ike(certificate_chain_pem=[pem], auth_verified=True)
    obs.revocation = rev
    return next(f for f in check_certificates(obs, NOW) if f.id == ids.CERT_TRUST)


def test_diagnose_cert_trust() -> None:
    f = _diagnose_trust(revocation())
    assert f.status == "warn" and NOTE in f.detail and f.remedy == REMEDY_AIA and not f.error_codes
    assert f.evidence["aia_intermediates"] == [{"subject": "CN=AIA Issuing CA", "url": AIA_URL}]
    for rev in (None, revocation(IMPOSTOR)):
        f = _diagnose_trust(rev)
        assert f.status == "fail" and 13801 in f.error_codes and "aia_intermediates" not in f.evidence


def _tls_report(rev: RevocationObservation | None) -> T.TlsReport:
    planner = run_plan(ModelServer({Version.TLS1_2: [0xC02F, 0xC030]}))
    results = list(planner.results)
    obs = AuditObservation(
        target=NAME,
        host=NAME,
        address="192.0.2.10",
        port=443,
        sni=NAME,
        started_at=NOW.isoformat(),
        duration_s=1.0,
        facts=replace(combine(planner), certificates=(_der(LEAF),)),
        results=results,
        anchors=[ROOT],
        anchor_source="--ca",
        connect_error=None,
        client_cert_given=False,
        connections=len(results),
        max_concurrent=8,
        round_trip_s=0.001,
        revocation=rev,
    )
    return T.judge(obs, now=NOW)


def test_tls_certificate_trust() -> None:
    report = _tls_report(revocation())
    f = next(f for f in report.findings if f.id == ids.TLS_CERT_TRUST)
    assert f.status == "warn" and NOTE in f.detail and f.remedy == REMEDY_AIA
    assert report.certificate is not None and report.certificate.trusted is True
    assert report.certificate.chain == [LEAF.subject.rfc4514_string()]  # the chain as sent
    for rev in (None, revocation(IMPOSTOR)):
        report = _tls_report(rev)
        f = next(f for f in report.findings if f.id == ids.TLS_CERT_TRUST)
        assert f.status == "fail" and report.certificate is not None and report.certificate.trusted is False


def test_tls_describe_and_check_certificate_take_the_aia_intermediates() -> None:
    aia = aia_intermediates(revocation())
    described = T.describe_certificate((_der(LEAF),), [ROOT], "--ca", NAME, "TLSv1.2", aia)
    assert described is not None and described.trusted is True
    found = {f.id: f for f in T.check_certificate(described, True, NOW, aia)}
    assert found[ids.TLS_CERT_TRUST].status == "warn"
    before = T.describe_certificate((_der(LEAF),), [ROOT], "--ca", NAME, "TLSv1.2")
    assert before is not None and before.trusted is False
    assert {f.id: f for f in T.check_certificate(before, True, NOW)}[ids.TLS_CERT_TRUST].status == "fail"


def _sstp(rev: RevocationObservation | None) -> Any:
    tls = tls_info().model_copy(update={"certificate": info()})
    f = sstp_findings(sstp_obs(tls=tls, target=NAME, sni=NAME, revocation=rev), now=NOW)[-1]
    assert f.id == ids.SSTP_CERTIFICATE
    return f


def _iphttps(rev: RevocationObservation | None) -> Any:
    tls = tls_info("NULL-SHA", "TLSv1.2").model_copy(update={"certificate": info()})
    obs = iphttps_obs(attempt(tls=tls), host=NAME, target=f"https://{NAME}/IPHTTPS", sni=NAME, revocation=rev)
    f = iphttps_findings(obs, now=NOW)[0]
    assert f.id == ids.IPHTTPS_TLS
    return f


@pytest.mark.parametrize("judge", [_sstp, _iphttps], ids=["sstp.certificate", "iphttps.tls"])
def test_sstp_and_iphttps(judge: Any) -> None:
    f = judge(revocation())
    assert f.status == "warn" and CERT_E_UNTRUSTEDROOT not in f.error_codes
    assert NOTE in f.detail and REMEDY_AIA in f.remedy and f.remedy.count(REMEDY_AIA) == 1
    assert f.evidence["aia_intermediates"] == [{"subject": "CN=AIA Issuing CA", "url": AIA_URL}]
    for rev in (None, revocation(IMPOSTOR)):
        f = judge(rev)
        assert (
            f.status == "fail"
            and CERT_E_UNTRUSTEDROOT in f.error_codes
            and "AIA caIssuers http" not in f.detail
        )
