"""The pure checks of `vpndoctor tls`: certificate defects, protocol and suite verdicts, NULL-suite order,
resumption, each with its stable id and status."""

from __future__ import annotations

import datetime
from dataclasses import replace

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from tests.tls.test_audit_plan import ModelServer
from tests.tls.test_audit_plan import run as run_plan
from vpndoctor.checks import tls as C
from vpndoctor.observations.tls import AuditObservation
from vpndoctor.tls.audit import (
    ErrorReason,
    HelloJob,
    HelloOutcome,
    Job,
    JobResult,
    JobStatus,
    StackJob,
    combine,
)
from vpndoctor.tls.hello import Version

NOW = datetime.datetime(2026, 6, 1, tzinfo=datetime.UTC)
CA_KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)
CA_NAME = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Check CA")])
CA = (
    x509.CertificateBuilder()
    .subject_name(CA_NAME)
    .issuer_name(CA_NAME)
    .public_key(CA_KEY.public_key())
    .serial_number(1)
    .not_valid_before(NOW - datetime.timedelta(days=400))
    .not_valid_after(NOW + datetime.timedelta(days=4000))
    .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
    .sign(CA_KEY, hashes.SHA256())
)


def leaf(
    *,
    key: object | None = None,
    days: tuple[int, int] = (-10, 300),
    eku: list[x509.ObjectIdentifier] | None = None,
    san: list[str] | None = None,
    digest: hashes.HashAlgorithm | None = None,
) -> bytes:
    pub = (
        key
        if key is not None
        else rsa.generate_private_key(public_exponent=65537, key_size=2048).public_key()
    )
    b = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "da.example.com")]))
        .issuer_name(CA_NAME)
        .public_key(pub)  # type: ignore[arg-type]
        .serial_number(2)
        .not_valid_before(NOW + datetime.timedelta(days=days[0]))
        .not_valid_after(NOW + datetime.timedelta(days=days[1]))
        .add_extension(
            x509.ExtendedKeyUsage(eku if eku is not None else [ExtendedKeyUsageOID.SERVER_AUTH]),
            critical=False,
        )
        .add_extension(
            x509.SubjectAlternativeName([x509.DNSName(n) for n in (san or ["da.example.com"])]),
            critical=False,
        )
    )
    return b.sign(CA_KEY, digest or hashes.SHA256()).public_bytes(serialization.Encoding.DER)


def statuses(der: bytes, expected: str | None = "da.example.com", anchors: bool = True) -> dict[str, str]:
    cert = C.describe_certificate((der,), [CA] if anchors else [], "--ca", expected, "TLSv1.2")
    return {f.id: f.status for f in C.check_certificate(cert, True, NOW)}


def test_a_good_certificate_passes_everything() -> None:
    assert set(statuses(leaf()).values()) == {"pass"}


@pytest.mark.parametrize(
    ("kwargs", "fid", "status"),
    [
        ({"days": (-400, -1)}, C.TLS_CERT_VALIDITY, "fail"),
        ({"days": (5, 300)}, C.TLS_CERT_VALIDITY, "fail"),
        ({"days": (-10, 10)}, C.TLS_CERT_VALIDITY, "warn"),
        ({"eku": [ExtendedKeyUsageOID.CLIENT_AUTH]}, C.TLS_CERT_EKU, "fail"),
        ({"san": ["other.example.com"]}, C.TLS_CERT_NAME, "fail"),
        ({"san": ["*.example.com"]}, C.TLS_CERT_NAME, "pass"),
        (
            {"key": rsa.generate_private_key(public_exponent=65537, key_size=1024).public_key()},
            C.TLS_CERT_KEY,
            "fail",
        ),
        ({"key": ec.generate_private_key(ec.SECP256R1()).public_key()}, C.TLS_CERT_KEY, "pass"),
    ],
)
def test_certificate_defects(kwargs: dict[str, object], fid: str, status: str) -> None:
    assert statuses(leaf(**kwargs))[fid] == status  # type: ignore[arg-type]


def test_untrusted_and_unparseable() -> None:
    assert statuses(leaf(), anchors=False)[C.TLS_CERT_TRUST] == "fail"
    assert statuses(leaf(), expected=None)[C.TLS_CERT_NAME] == "skip"
    assert C.describe_certificate((b"\x30\x03junk",), [], "--ca", None, None) is None
    broken = {f.id: f.status for f in C.check_certificate(None, True, NOW)}
    assert set(broken.values()) == {"fail"}
    missing = {f.id: f.status for f in C.check_certificate(None, False, NOW)}
    assert set(missing.values()) == {"skip"}


def test_ip_address_names() -> None:
    der = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "x")]))
        .issuer_name(CA_NAME)
        .public_key(CA_KEY.public_key())
        .serial_number(3)
        .not_valid_before(NOW - datetime.timedelta(days=1))
        .not_valid_after(NOW + datetime.timedelta(days=300))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(__import__("ipaddress").ip_address("192.0.2.7"))]),
            critical=False,
        )
        .sign(CA_KEY, hashes.SHA256())
        .public_bytes(serialization.Encoding.DER)
    )
    assert statuses(der, expected="192.0.2.7")[C.TLS_CERT_NAME] == "pass"
    assert statuses(der, expected="192.0.2.8")[C.TLS_CERT_NAME] == "fail"


ALL_OFF = {"SSLv3": False, "TLSv1.0": False, "TLSv1.1": False, "TLSv1.2": False, "TLSv1.3": False}


def test_protocol_verdicts() -> None:
    got = {f.id: f.status for f in C.check_protocols({**ALL_OFF, "SSLv3": True, "TLSv1.0": True}, [])}
    assert got == {
        C.TLS_PROTOCOL_SSLV3: "fail",
        C.TLS_PROTOCOL_TLS10: "warn",
        C.TLS_PROTOCOL_TLS11: "pass",
        C.TLS_PROTOCOL_TLS12: "fail",
        C.TLS_PROTOCOL_TLS13: "pass",
    }
    unknown = {f.id: f.status for f in C.check_protocols({**ALL_OFF, "TLSv1.2": True}, ["SSLv3"])}
    assert unknown[C.TLS_PROTOCOL_SSLV3] == "skip" and unknown[C.TLS_PROTOCOL_TLS12] == "pass"


def test_weak_suites() -> None:
    assert C.check_weak_suites({"TLSv1.2": [0xC02F, 0x0002]}).status == "pass"  # NULL is judged elsewhere
    assert C.check_weak_suites({"TLSv1.2": [0xC02F, 0x000A]}).status == "warn"  # 3DES
    broken = C.check_weak_suites({"TLSv1.0": [0x0004, 0x0003], "TLSv1.2": [0x0034]})
    assert broken.status == "fail" and "RC4" in broken.detail and "anonymous" in broken.detail


def test_null_suites_and_server_order() -> None:
    on = {**ALL_OFF, "TLSv1.2": True}
    assert C.check_null([0x0002], on, {"TLSv1.2": [0x0002, 0xC013]}, {"TLSv1.2": False}).status == "pass"
    assert C.check_null([0x0002], on, {"TLSv1.2": [0x0002, 0xC013]}, {"TLSv1.2": True}).status == "pass"
    overruled = C.check_null([0x0002], on, {"TLSv1.2": [0xC013, 0x0002]}, {"TLSv1.2": True})
    assert overruled.status == "warn" and overruled.remedy
    assert C.check_null([], on).status == "warn"
    assert C.check_null([], ALL_OFF).status == "skip"


@pytest.mark.parametrize(
    ("session_id", "ticket", "status"),
    [
        (True, True, "pass"),
        (None, True, "pass"),
        (False, True, "warn"),
        (False, False, "warn"),
        (None, None, "skip"),
    ],
)
def test_resumption(session_id: bool | None, ticket: bool | None, status: str) -> None:
    assert C.check_resumption(session_id, ticket, "").status == status


def test_every_id_has_a_title_and_is_unique() -> None:
    from vpndoctor.checks.ids import TITLES

    assert len(set(C.ALL)) == len(C.ALL) and set(C.ALL) <= set(TITLES)
    assert all(fid.startswith("tls.") for fid in C.ALL)


def test_sha1_signature_fails() -> None:
    # This OpenSSL refuses to make SHA-1 signatures, so the (pure) check gets the parsed facts directly.
    cert = C.describe_certificate((leaf(),), [CA], "--ca", "da.example.com", "TLSv1.2")
    assert cert is not None
    sha1 = cert.model_copy(update={"signature_algorithm": "sha1WithRSAEncryption"})
    got = {f.id: f.status for f in C.check_certificate(sha1, True, NOW)}
    assert got[C.TLS_CERT_SIGNATURE] == "fail"


class _LeafServer(ModelServer):
    """The model server of the planner tests, presenting a real certificate."""

    der: bytes = b""

    def answer(self, job: Job) -> JobResult:
        result = super().answer(job)
        if isinstance(result.outcome, HelloOutcome) and result.outcome.certificates:
            return replace(result, outcome=replace(result.outcome, certificates=(self.der,)))
        return result


def _judge_run(extra: list[JobResult]) -> C.TlsReport:
    server = _LeafServer({Version.TLS1_2: [0xC02F, 0xC030], Version.TLS1_3: [0x1301]})
    server.der = leaf()
    planner = run_plan(server)
    results = list(planner.results) + extra
    obs = AuditObservation(
        target="da.example.com",
        host="da.example.com",
        address="192.0.2.10",
        port=443,
        sni="da.example.com",
        started_at=NOW.isoformat(),
        duration_s=1.0,
        facts=combine(planner),
        results=results,
        anchors=[CA],
        anchor_source="--ca",
        connect_error=None,
        client_cert_given=False,
        connections=len(results),
        max_concurrent=8,
        round_trip_s=0.001,
    )
    return C.judge(obs, now=NOW)


@pytest.mark.parametrize(
    "extra",
    [
        JobResult(StackJob(900, "resume-ticket", Version.TLS1_3), JobStatus.NOT_SCHEDULED, detail="deadline"),
        JobResult(
            HelloJob(901, "enumerate", Version.TLS1_2, (0xC030,)),
            JobStatus.ERROR,
            reason=ErrorReason.TIMEOUT,
            detail="total deadline reached",
        ),
    ],
)
def test_an_incomplete_audit_is_never_healthy(extra: JobResult) -> None:
    # Nothing fails in what was seen, but one connection timed out or was never started: that used to be
    # "healthy", exit 0, with only `complete: false` to tell.
    complete = _judge_run([])
    assert complete.verdict.status == "healthy" and complete.complete and C.exit_code(complete) == 0
    incomplete = _judge_run([extra])
    assert not incomplete.complete
    assert incomplete.verdict.status == "problems" and C.exit_code(incomplete) == 1
    assert incomplete.verdict.root_causes == ["tls.audit.complete"]
    assert "Incomplete audit" in incomplete.verdict.summary
    assert {f.id: f.status for f in complete.findings}["tls.audit.complete"] == "pass"
    assert {f.id: f.status for f in incomplete.findings}["tls.audit.complete"] == "error"
