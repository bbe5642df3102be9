"""checks.certificate, the one certificate judge: RFC 6125 names (wildcards, IP targets, the CN only without
DNS/IP SANs), validity edges, EKU (TLS and IKE), trust, key and signature - on certificates made here with
`cryptography`. Then diagnose (cert.*), sstp/iphttps (sstp.certificate, iphttps.tls) and tls
(tls.certificate.*) on the cases where their three private copies used to disagree: one answer now."""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import dsa, ec, padding, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID, ObjectIdentifier

from tests.checks.test_diagnose import ike
from tests.sstp.synthetic import attempt, iphttps_obs, sstp_obs, tls_info
from vpndoctor.certs import eku_names, issued_by_anchor, san_names
from vpndoctor.checks import ids
from vpndoctor.checks import tls as T
from vpndoctor.checks.certificate import (
    IKE_INTERMEDIATE,
    CertificateFacts,
    dns_name_matches,
    facts_of,
    facts_of_info,
    judge_certificate,
    judge_name,
)
from vpndoctor.checks.diagnose import check_certificates
from vpndoctor.checks.sstp import CERT_E_CN_NO_MATCH, iphttps_findings, sstp_findings
from vpndoctor.observations.diagnose import DiagnoseObservations, DiagnoseRequest
from vpndoctor.observations.ike import CertificateInfo

NOW = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)
KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)  # every leaf's key unless told
CA_KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)
CA_NAME = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Judge CA")])
CA = (
    x509.CertificateBuilder()
    .subject_name(CA_NAME)
    .issuer_name(CA_NAME)
    .public_key(CA_KEY.public_key())
    .serial_number(1)
    .not_valid_before(NOW - timedelta(days=400))
    .not_valid_after(NOW + timedelta(days=4000))
    .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
    .sign(CA_KEY, hashes.SHA256())
)
SERVER_AUTH = ExtendedKeyUsageOID.SERVER_AUTH
IKE_EKU = ObjectIdentifier(IKE_INTERMEDIATE)
CN, ORG = NameOID.COMMON_NAME, NameOID.ORGANIZATION_NAME


def no_san(*subject: tuple[ObjectIdentifier, str]) -> dict[str, Any]:
    """make() arguments for a certificate without a SAN extension, with this subject."""
    return {"dns": [], "san": False, "subject": list(subject)}


def only_ip_san(ip: str, cn: str = "vpn.example.com") -> dict[str, Any]:
    return {"dns": [], "ips": [ip], "subject": [(CN, cn)]}


def make(
    *,
    dns: Sequence[str] = ("vpn.example.com",),
    ips: Sequence[str] = (),
    other_san: Sequence[x509.GeneralName] = (),
    san: bool = True,
    subject: Sequence[tuple[ObjectIdentifier, str]] | None = None,
    not_before: datetime = NOW - timedelta(days=10),
    not_after: datetime = NOW + timedelta(days=300),
    eku: Sequence[ObjectIdentifier] | None = (SERVER_AUTH,),
    key: Any = None,
) -> x509.Certificate:
    """A leaf issued by CA. `san=False`: no SAN extension at all; `eku=None`: no EKU extension."""
    attrs = subject if subject is not None else [(NameOID.COMMON_NAME, (list(dns) or ["vpn.example.com"])[0])]
    b = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(oid, value) for oid, value in attrs]))
        .issuer_name(CA_NAME)
        .public_key(key.public_key() if key is not None else KEY.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before)
        .not_valid_after(not_after)
    )
    if eku is not None:
        b = b.add_extension(x509.ExtendedKeyUsage(list(eku)), critical=False)
    names: list[x509.GeneralName] = [x509.DNSName(n) for n in dns]
    names += [x509.IPAddress(ipaddress.ip_address(a)) for a in ips]
    names += list(other_san)
    if san and names:
        b = b.add_extension(x509.SubjectAlternativeName(names), critical=False)
    return b.sign(CA_KEY, hashes.SHA256())


def _der_len(n: int) -> bytes:
    if n < 0x80:
        return bytes([n])
    body = n.to_bytes((n.bit_length() + 7) // 8, "big")
    return bytes([0x80 | len(body)]) + body


def resigned(cert: x509.Certificate, digest: hashes.HashAlgorithm, oid_last: int) -> x509.Certificate:
    """`cert` signed again with SHA-1 or MD5, which cryptography's builder refuses to make today: the
    sha256WithRSAEncryption OID in the TBS becomes 1.2.840.113549.1.1.<oid_last>, then signed by hand."""
    sha256_rsa = bytes.fromhex("06092a864886f70d01010b")
    weak_rsa = sha256_rsa[:-1] + bytes([oid_last])
    tbs = cert.tbs_certificate_bytes
    assert tbs.count(sha256_rsa) == 1
    tbs = tbs.replace(sha256_rsa, weak_rsa)
    signature = CA_KEY.sign(tbs, padding.PKCS1v15(), digest)
    algorithm = b"\x30\x0d" + weak_rsa + b"\x05\x00"
    bits = b"\x03" + _der_len(len(signature) + 1) + b"\x00" + signature
    body = tbs + algorithm + bits
    return x509.load_der_x509_certificate(b"\x30" + _der_len(len(body)) + body)


def info(cert: x509.Certificate, trusted: bool | None = True) -> CertificateInfo:
    """What probes.ike.describe_certificate keeps of a certificate (the IKE, SSTP and IP-HTTPS probes)."""
    dns, ips = san_names(cert)
    key = cert.public_key()
    return CertificateInfo(
        subject=cert.subject.rfc4514_string(),
        issuer=cert.issuer.rfc4514_string(),
        san_dns=dns,
        san_ip=ips,
        not_before=cert.not_valid_before_utc.isoformat(),
        not_after=cert.not_valid_after_utc.isoformat(),
        eku=eku_names(cert),
        key=f"{type(key).__name__.replace('PublicKey', '')} {getattr(key, 'key_size', '')}".strip(),
        sha256="00",
        trusted=trusted,
        chain_length=1,
    )


def judged(cert: x509.Certificate, target: str | None = "vpn.example.com", **kw: Any) -> Any:
    return judge_certificate(facts_of(cert, (), [CA]), target, kw.pop("now", NOW), **kw)


# ---- names -------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("pattern", "host", "matches"),
    [
        ("vpn.example.com", "vpn.example.com", True),
        ("VPN.Example.COM", "vpn.example.com", True),  # case-insensitive
        ("vpn.example.com.", "vpn.example.com", True),  # a trailing dot is ignored, on either side
        ("vpn.example.com", "VPN.EXAMPLE.COM.", True),
        ("vpn.example.com", "vpn.example.com.evil.test", False),
        ("vpn.example.com", "example.com", False),
        ("*.example.com", "a.example.com", True),
        ("*.EXAMPLE.com.", "A.example.COM", True),
        ("*.example.com", "example.com", False),  # the wildcard stands for exactly one label
        ("*.example.com", "a.b.example.com", False),
        ("*.example.com", ".example.com", False),
        ("*.test", "vpn.test", True),  # RFC 6125 sets no minimum depth; all three copies agreed
        ("f*.example.com", "foo.example.com", False),  # no partial wildcards
        ("*o.example.com", "foo.example.com", False),
        ("f*o.example.com", "foo.example.com", False),
        ("xn--*.example.com", "xn--bcher-kva.example.com", False),  # never inside an A-label
        ("*.example.com", "xn--bcher-kva.example.com", True),  # a whole-label wildcard matches one
        ("a.*.example.com", "a.b.example.com", False),  # only the left-most label
        ("*.*.example.com", "a.b.example.com", False),
        ("*", "intranet", False),
        ("*.example.com", "*.example.com", False),  # a target is a name, never a pattern
        ("vpn..example.com", "vpn..example.com", False),
        ("", "vpn.example.com", False),
        ("vpn.example.com", "", False),
    ],
)
def test_dns_name_matching(pattern: str, host: str, matches: bool) -> None:
    assert dns_name_matches(pattern, host) is matches


@pytest.mark.parametrize(
    ("cert_kw", "target", "status", "reason"),
    [
        ({}, "vpn.example.com", "ok", "dns-san"),
        ({"dns": ["other.example.com", "*.example.com"]}, "vpn.example.com", "ok", "dns-san"),
        ({"dns": ["other.example.com"]}, "vpn.example.com", "bad", "mismatch"),
        # IPv4 and IPv6 targets match IP SANs only, compared as addresses
        ({"ips": ["192.0.2.7"]}, "192.0.2.7", "ok", "ip-san"),
        ({"ips": ["192.0.2.7"]}, "192.0.2.8", "bad", "mismatch"),
        ({"ips": ["2001:db8::7"]}, "2001:db8::7", "ok", "ip-san"),
        ({"ips": ["2001:db8::7"]}, "2001:0DB8:0:0::7", "ok", "ip-san"),
        ({"ips": ["2001:db8::7"]}, "[2001:db8::7]", "ok", "ip-san"),
        ({"ips": ["2001:db8::7"]}, "192.0.2.7", "bad", "mismatch"),
        ({"ips": ["::ffff:192.0.2.7"]}, "192.0.2.7", "bad", "mismatch"),
        # ... never a DNS SAN or the CN that spells the address
        ({"dns": ["192.0.2.7"]}, "192.0.2.7", "bad", "mismatch"),
        (no_san((CN, "192.0.2.7")), "192.0.2.7", "bad", "mismatch"),
        # the CN only without any DNS or IP SAN
        (no_san((CN, "vpn.example.com")), "vpn.example.com", "ok", "cn"),
        (no_san((CN, "*.example.com")), "vpn.example.com", "ok", "cn"),
        (only_ip_san("192.0.2.7"), "vpn.example.com", "bad", "mismatch"),
        (
            {"dns": ["other.example.com"], "subject": [(CN, "vpn.example.com")]},
            "vpn.example.com",
            "bad",
            "mismatch",
        ),
        # a SAN of other types only (an e-mail address) leaves the CN in force
        (
            {
                "dns": [],
                "other_san": [x509.RFC822Name("ops@example.com")],
                "subject": [(CN, "vpn.example.com")],
            },
            "vpn.example.com",
            "ok",
            "cn",
        ),
        # the CN attribute, wherever it is in the subject and however many there are
        (no_san((ORG, "Example, Inc."), (CN, "vpn.example.com")), "vpn.example.com", "ok", "cn"),
        (no_san((CN, "a.example.com"), (CN, "vpn.example.com")), "vpn.example.com", "ok", "cn"),
        (no_san((ORG, "vpn.example.com")), "vpn.example.com", "bad", "mismatch"),
        ({}, None, "unknown", "no-target"),
    ],
)
def test_name(cert_kw: dict[str, Any], target: str | None, status: str, reason: str) -> None:
    cert = make(**cert_kw)
    for facts in (facts_of(cert), facts_of_info(info(cert))):  # the same answer from what probes keep
        aspect, _ = judge_name(facts, target)
        assert (aspect.status, aspect.reason) == (status, reason), aspect.evidence


def test_name_evidence_lists_what_was_compared() -> None:
    j = judged(make(dns=["a.example.com"], ips=["192.0.2.7"]))
    assert j.presented == ("a.example.com", "192.0.2.7")
    assert j.name.evidence == "names a.example.com, 192.0.2.7, not vpn.example.com"
    j = judged(make(**no_san((CN, "vpn.example.com"))))
    assert j.presented == ("vpn.example.com",) and j.name.evidence.startswith("vpn.example.com matches CN")
    j = judged(make(**no_san((ORG, "Org"))))
    assert j.name.evidence == "names nothing, not vpn.example.com"


# ---- validity, EKU, trust, key, signature ---------------------------------------------------------


NB, NA = NOW - timedelta(days=100), NOW + timedelta(days=100)


@pytest.mark.parametrize(
    ("now", "status", "reason"),
    [
        (NB - timedelta(seconds=1), "bad", "not-yet-valid"),
        (NB, "ok", "valid"),  # both ends are inside the validity period (RFC 5280 4.1.2.5)
        (NA - timedelta(days=30), "ok", "valid"),  # the warning starts under 30 days, as it always did
        (NA - timedelta(days=30) + timedelta(seconds=1), "warn", "expires-soon"),
        (NA, "warn", "expires-soon"),
        (NA + timedelta(seconds=1), "bad", "expired"),
    ],
)
def test_validity_edges(now: datetime, status: str, reason: str) -> None:
    j = judged(make(not_before=NB, not_after=NA), now=now)
    assert (j.validity.status, j.validity.reason) == (status, reason)


def test_validity_evidence() -> None:
    cert = make(not_before=NB, not_after=NA)
    assert judged(cert, now=NA + timedelta(days=1)).validity.evidence == f"expired on {NA:%Y-%m-%d}"
    assert judged(cert, now=NB - timedelta(days=1)).validity.evidence == f"not valid before {NB:%Y-%m-%d}"
    soon = judged(cert, now=NA - timedelta(days=10)).validity
    assert soon.evidence == f"expires on {NA:%Y-%m-%d}, in 10 days"


@pytest.mark.parametrize(
    ("eku", "ike", "status", "reason"),
    [
        ([SERVER_AUTH], False, "ok", "server-auth"),
        (None, False, "ok", "no-eku"),  # no EKU extension: any use
        ([ExtendedKeyUsageOID.CLIENT_AUTH], False, "bad", "no-server-auth"),
        ([SERVER_AUTH, IKE_EKU], True, "ok", "server-auth+ike-intermediate"),
        ([SERVER_AUTH], True, "warn", "no-ike-intermediate"),  # what diagnose always said
        (None, True, "warn", "no-ike-intermediate"),
        ([ExtendedKeyUsageOID.CLIENT_AUTH, IKE_EKU], True, "bad", "no-server-auth"),
    ],
)
def test_eku(eku: list[ObjectIdentifier] | None, ike: bool, status: str, reason: str) -> None:
    cert = make(eku=eku)
    for facts in (facts_of(cert), facts_of_info(info(cert))):
        j = judge_certificate(facts, "vpn.example.com", NOW, ike=ike)
        assert (j.eku.status, j.eku.reason) == (status, reason)


def test_trust() -> None:
    cert = make()
    assert judge_certificate(facts_of(cert, (), [CA]), None, NOW).trust.status == "ok"
    assert judge_certificate(facts_of(cert, (), []), None, NOW).trust.status == "unknown"
    other_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    other = (
        x509.CertificateBuilder()
        .subject_name(CA_NAME)  # same name, another key: the signature decides
        .issuer_name(CA_NAME)
        .public_key(other_key.public_key())
        .serial_number(9)
        .not_valid_before(NOW - timedelta(days=1))
        .not_valid_after(NOW + timedelta(days=10))
        .sign(other_key, hashes.SHA256())
    )
    bad = judge_certificate(facts_of(cert, (), [other]), None, NOW).trust
    assert bad.status == "bad" and bad.evidence == "issued by CN=Judge CA, which is not a trusted CA"
    assert issued_by_anchor(cert, [], [CA])  # the probes' verdict (CertificateInfo.trusted) is the same


@pytest.mark.filterwarnings("ignore:DSA is deprecated")
@pytest.mark.parametrize(
    ("new_key", "status"),
    [
        (lambda: rsa.generate_private_key(public_exponent=65537, key_size=1024), "bad"),
        (lambda: KEY, "ok"),
        (lambda: ec.generate_private_key(ec.SECP256R1()), "ok"),
        (lambda: dsa.generate_private_key(key_size=1024), "bad"),
    ],
    ids=["rsa-1024", "rsa-2048", "ec-p256", "dsa-1024"],
)
def test_small_key(new_key: Any, status: str) -> None:
    j = judged(make(key=new_key()))
    assert j.key.status == status, j.key.evidence


def test_weak_signature() -> None:
    good = make()
    assert judged(good).signature.status == "ok"
    weak_ones: list[tuple[hashes.HashAlgorithm, int, str]] = [
        (hashes.SHA1(), 5, "sha1WithRSAEncryption"),
        (hashes.MD5(), 4, "md5WithRSAEncryption"),
    ]
    for digest, last, name in weak_ones:
        weak = resigned(good, digest, last)
        assert weak.signature_algorithm_oid._name == name
        j = judged(weak)
        assert (j.signature.status, j.signature.reason) == ("bad", "weak"), j.signature.evidence
        assert j.name.status == "ok" and j.key.status == "ok"  # the rest of it is unchanged
    # What an observation kept has no signature algorithm: not judged, rather than passed.
    assert judge_certificate(facts_of_info(info(good)), None, NOW).signature.status == "unknown"


def test_the_judgement_is_frozen() -> None:
    j = judged(make())
    with pytest.raises(AttributeError):
        j.name = j.trust  # type: ignore[misc]
    assert isinstance(j.facts, CertificateFacts)


# ---- one answer from diagnose, sstp/iphttps and tls --------------------------------------------------


def diagnose_findings(
    cert: x509.Certificate, target: str = "vpn.example.com", anchors: Sequence[x509.Certificate] = (CA,)
) -> dict[str, Any]:
    """diagnose's cert.* findings for an IKE_AUTH that carried `cert` (its AUTH verified)."""
    pem = cert.public_bytes(serialization.Encoding.PEM).decode()
    obs = DiagnoseObservations(request=DiagnoseRequest(name=target), started_at="now", anchors=list(anchors))
    obs.ike_main = ike(certificate_chain_pem=[pem], auth_verified=True)
    return {f.id: f for f in check_certificates(obs, NOW)}


def tls_findings(
    cert: x509.Certificate, target: str = "vpn.example.com", anchors: Sequence[x509.Certificate] = (CA,)
) -> dict[str, Any]:
    der = cert.public_bytes(serialization.Encoding.DER)
    described = T.describe_certificate((der,), list(anchors), "--ca", target, "TLSv1.2")
    assert described is not None
    return {f.id: f for f in T.check_certificate(described, True, NOW)}


def diagnose_name(cert: x509.Certificate, target: str) -> str:
    return str(diagnose_findings(cert, target)[ids.CERT_NAME].status)


def sstp_name(cert: x509.Certificate, target: str) -> str:
    """sstp.certificate as far as the name goes; as the probe reports it: no SNI for an address."""
    sni = None if _is_ip(target) else target
    tls = tls_info().model_copy(update={"certificate": info(cert)})
    f = sstp_findings(sstp_obs(tls=tls, target=target.strip("[]"), sni=sni), now=NOW)[-1]
    assert f.id == ids.SSTP_CERTIFICATE
    return "fail" if CERT_E_CN_NO_MATCH in f.error_codes else "pass"


def iphttps_name(cert: x509.Certificate, target: str) -> str:
    sni = None if _is_ip(target) else target
    tls = tls_info("NULL-SHA", "TLSv1.2").model_copy(update={"certificate": info(cert)})
    obs = iphttps_obs(attempt(tls=tls), host=target.strip("[]"), target=f"https://{target}/IPHTTPS", sni=sni)
    f = iphttps_findings(obs, now=NOW)[0]
    assert f.id == ids.IPHTTPS_TLS
    return "fail" if CERT_E_CN_NO_MATCH in f.error_codes else "pass"


def tls_name(cert: x509.Certificate, target: str) -> str:
    der = cert.public_bytes(serialization.Encoding.DER)
    described = T.describe_certificate((der,), [CA], "--ca", target, "TLSv1.2")
    assert described is not None
    # the report's `name_matches` and the finding say the same
    status = str(tls_findings(cert, target)[ids.TLS_CERT_NAME].status)
    assert described.name_matches is (status == "pass")
    return status


def _is_ip(text: str) -> bool:
    try:
        ipaddress.ip_address(text.strip("[]"))
    except ValueError:
        return False
    return True


# Each case: before the judge, the copies said (diagnose, sstp/iphttps, tls); now all say `expected`.
DISAGREEMENTS = [
    # only IP SANs: diagnose, sstp and tls fell back to the CN for a DNS name; RFC 6125 6.4.4 does not
    pytest.param(only_ip_san("192.0.2.7"), "vpn.example.com", "fail", id="ip-san-only-no-cn-fallback"),
    pytest.param(only_ip_san("2001:db8::7"), "vpn.example.com", "fail", id="ipv6-san-only-no-cn-fallback"),
    # an address target: tls compared IP SANs; diagnose compared the text with DNS SANs/CN; sstp and iphttps
    # did not compare at all (no SNI for an address)
    pytest.param(
        {"dns": ["vpn.example.com"], "ips": ["192.0.2.7"]}, "192.0.2.7", "pass", id="ipv4-in-ip-san"
    ),
    pytest.param(
        {"dns": ["vpn.example.com"], "ips": ["2001:db8::7"]}, "2001:db8::7", "pass", id="ipv6-in-ip-san"
    ),
    pytest.param({"dns": ["192.0.2.7"]}, "192.0.2.7", "fail", id="ipv4-only-as-dns-san"),
    pytest.param(no_san((CN, "192.0.2.7")), "192.0.2.7", "fail", id="ipv4-only-as-cn"),
    pytest.param({"dns": ["vpn.example.com"]}, "192.0.2.7", "fail", id="ipv4-not-named"),
    pytest.param({"dns": ["vpn.example.com"]}, "2001:db8::7", "fail", id="ipv6-not-named"),
    # no SAN, the CN beside other attributes: sstp compared "vpn.example.com,O=..." (the subject minus "CN=")
    pytest.param(
        no_san((CN, "vpn.example.com"), (ORG, "Example")), "vpn.example.com", "pass", id="cn-then-org"
    ),
    pytest.param(
        no_san((ORG, "Example"), (CN, "vpn.example.com")), "vpn.example.com", "pass", id="org-then-cn"
    ),
    # where they agreed already, they still do
    pytest.param({"dns": ["*.example.com"]}, "vpn.example.com", "pass", id="wildcard"),
    pytest.param({"dns": ["*.example.com"]}, "a.vpn.example.com", "fail", id="wildcard-depth"),
    pytest.param({"dns": ["*.example.com"]}, "example.com", "fail", id="wildcard-apex"),
    pytest.param({"dns": ["v*.example.com"]}, "vpn.example.com", "fail", id="partial-wildcard"),
    pytest.param(no_san((CN, "vpn.example.com")), "vpn.example.com", "pass", id="cn-without-san"),
]


@pytest.mark.parametrize(("cert_kw", "target", "expected"), DISAGREEMENTS)
def test_diagnose_sstp_iphttps_and_tls_agree(cert_kw: dict[str, Any], target: str, expected: str) -> None:
    cert = make(**cert_kw)
    got = {
        "diagnose": diagnose_name(cert, target),
        "sstp": sstp_name(cert, target),
        "iphttps": iphttps_name(cert, target),
        "tls": tls_name(cert, target),
    }
    assert set(got.values()) == {expected}, got


def test_sstp_judges_the_address_it_dialled() -> None:
    """`vpndoctor sstp 192.0.2.7` sends no SNI; the name used to go unjudged, as if it matched."""
    cert = make(dns=["vpn.example.com"])
    tls = tls_info().model_copy(update={"certificate": info(cert)})
    f = sstp_findings(sstp_obs(tls=tls, target="192.0.2.7", sni=None), now=NOW)[-1]
    assert f.status == "fail" and f.detail == "The certificate names vpn.example.com, not 192.0.2.7."
    # --sni NAME still wins over the address
    f = sstp_findings(sstp_obs(tls=tls, target="192.0.2.7", sni="vpn.example.com"), now=NOW)[-1]
    assert f.status == "pass"


def test_the_other_aspects_agree_too() -> None:
    """Expired, not yet valid, no serverAuth, untrusted: each caller fails it, under its own id."""
    expired = make(not_before=NOW - timedelta(days=20), not_after=NOW - timedelta(days=1))
    cases = [
        (expired, ids.CERT_VALIDITY, T.TLS_CERT_VALIDITY),
        (make(not_before=NOW + timedelta(days=1)), ids.CERT_VALIDITY, T.TLS_CERT_VALIDITY),
        (make(eku=[ExtendedKeyUsageOID.CLIENT_AUTH]), ids.CERT_EKU, T.TLS_CERT_EKU),
    ]
    for cert, diagnose_id, tls_id in cases:
        assert diagnose_findings(cert)[diagnose_id].status == "fail"
        tls = tls_info().model_copy(update={"certificate": info(cert)})
        assert sstp_findings(sstp_obs(tls=tls, sni="vpn.example.com"), now=NOW)[-1].status == "fail"
        assert tls_findings(cert)[tls_id].status == "fail"
    # untrusted: the anchor given did not issue it
    cert, stranger = make(), make(dns=["ca.example.com"])
    assert diagnose_findings(cert, anchors=[stranger])[ids.CERT_TRUST].status == "fail"
    tls = tls_info().model_copy(update={"certificate": info(cert, trusted=False)})
    assert sstp_findings(sstp_obs(tls=tls, sni="vpn.example.com"), now=NOW)[-1].status == "fail"
    assert tls_findings(cert, anchors=[stranger])[T.TLS_CERT_TRUST].status == "fail"


def test_diagnose_texts_name_what_was_compared() -> None:
    f = diagnose_findings(make(**only_ip_san("192.0.2.7")))[ids.CERT_NAME]
    assert f.detail == "The certificate names 192.0.2.7, not vpn.example.com."
    assert f.evidence["san_ip"] == ["192.0.2.7"] and f.evidence["cn"] == ["vpn.example.com"]
    assert 13801 in f.error_codes
    f = diagnose_findings(make(dns=["*.example.com"]))[ids.CERT_NAME]
    assert f.status == "pass" and f.detail == "vpn.example.com matches SAN *.example.com."
    f = diagnose_findings(make(**no_san((CN, "vpn.example.com"))))[ids.CERT_NAME]
    assert f.status == "pass" and f.detail == "vpn.example.com matches CN vpn.example.com."
