"""checks.cert (`vpndoctor cert`): one certificate per defect, made here with `cryptography` under a root and
an issuing CA, judged for its purpose (user, device, server) by the one certificate judge; each test pins
the exact `cert.lint.*` ids and statuses. Then the cross-input check (two Client Authentication
certificates for one subject), the chain builder, and the purpose profile on its own."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID, ObjectIdentifier

from vpndoctor.certs import (
    UPN_OID,
    CertificateFile,
    build_chain,
    issued_by_anchor,
    key_usage_names,
    upn_names,
)
from vpndoctor.checks import ids
from vpndoctor.checks.cert import CertReport, LintedCertificate, end_entities, exit_code, lint
from vpndoctor.checks.certificate import facts_of, infer_purpose, judge_certificate, judge_purpose

NOW = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)
KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)
ROOT_KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)
ISSUING_KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)
CLIENT_AUTH = ExtendedKeyUsageOID.CLIENT_AUTH
SERVER_AUTH = ExtendedKeyUsageOID.SERVER_AUTH
IKE_INTERMEDIATE = ObjectIdentifier("1.3.6.1.5.5.8.2.2")
# Microsoft's VPN gateway request (KeyUsage = 0xA0) and the User / Workstation Authentication templates.
SIGN_AND_ENCIPHER = ("digital_signature", "key_encipherment")
ALL = ids.CERT_LINT_ALL


def _name(cn: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])


def _ca(subject: str, key: Any, issuer: str, issuer_key: Any) -> x509.Certificate:
    return (
        x509.CertificateBuilder()
        .subject_name(_name(subject))
        .issuer_name(_name(issuer))
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(NOW - timedelta(days=800))
        .not_valid_after(NOW + timedelta(days=4000))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(issuer_key, hashes.SHA256())
    )


ROOT = _ca("Lint Root CA", ROOT_KEY, "Lint Root CA", ROOT_KEY)
ISSUING = _ca("Lint Issuing CA", ISSUING_KEY, "Lint Root CA", ROOT_KEY)
OTHER_KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)
OTHER_ROOT = _ca("Someone Else's Root", OTHER_KEY, "Someone Else's Root", OTHER_KEY)


def upn_name(upn: str) -> x509.OtherName:
    raw = upn.encode()
    return x509.OtherName(ObjectIdentifier(UPN_OID), b"\x0c" + bytes([len(raw)]) + raw)


def _key_usage(bits: Sequence[str]) -> x509.KeyUsage:
    names = (
        "digital_signature",
        "content_commitment",
        "key_encipherment",
        "data_encipherment",
        "key_agreement",
        "key_cert_sign",
        "crl_sign",
    )
    return x509.KeyUsage(*(n in bits for n in names), encipher_only=False, decipher_only=False)


def make(
    cn: str = "Alice",
    *,
    dns: Sequence[str] = (),
    upn: str | None = None,
    eku: Sequence[ObjectIdentifier] | None = (CLIENT_AUTH,),
    key_usage: Sequence[str] | None = SIGN_AND_ENCIPHER,
    key: Any = None,
    not_before: datetime = NOW - timedelta(days=10),
    not_after: datetime = NOW + timedelta(days=300),
    issuer: str = "Lint Issuing CA",
    issuer_key: Any = ISSUING_KEY,
) -> x509.Certificate:
    """A leaf issued by the issuing CA; `eku=None` / `key_usage=None`: no such extension."""
    b = (
        x509.CertificateBuilder()
        .subject_name(_name(cn))
        .issuer_name(_name(issuer))
        .public_key((key or KEY).public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before)
        .not_valid_after(not_after)
    )
    if eku is not None:
        b = b.add_extension(x509.ExtendedKeyUsage(list(eku)), critical=False)
    if key_usage is not None:
        b = b.add_extension(_key_usage(key_usage), critical=True)
    names: list[x509.GeneralName] = [x509.DNSName(n) for n in dns]
    if upn is not None:
        names.append(upn_name(upn))
    if names:
        b = b.add_extension(x509.SubjectAlternativeName(names), critical=False)
    return b.sign(issuer_key, hashes.SHA256())


def user(**kw: Any) -> x509.Certificate:
    return make(**{"cn": "Alice", "upn": "alice@corp.example", **kw})


def device(**kw: Any) -> x509.Certificate:
    return make(**{"cn": "pc1.corp.example", "dns": ["pc1.corp.example"], **kw})


def server(**kw: Any) -> x509.Certificate:
    return make(
        **{"cn": "vpn.example.com", "dns": ["vpn.example.com"], "eku": (SERVER_AUTH, IKE_INTERMEDIATE), **kw}
    )


def _der_len(n: int) -> bytes:
    if n < 0x80:
        return bytes([n])
    body = n.to_bytes((n.bit_length() + 7) // 8, "big")
    return bytes([0x80 | len(body)]) + body


def resigned_sha1(cert: x509.Certificate, issuer_key: Any = ISSUING_KEY) -> x509.Certificate:
    """`cert` signed again with SHA-1, which cryptography's builder refuses to make (as
    tests/checks/test_certificate.py does it): sha256WithRSAEncryption in the TBS becomes
    sha1WithRSAEncryption (1.2.840.113549.1.1.5), then the TBS is signed by hand."""
    sha256_rsa = bytes.fromhex("06092a864886f70d01010b")
    sha1_rsa = sha256_rsa[:-1] + b"\x05"
    tbs = cert.tbs_certificate_bytes
    assert tbs.count(sha256_rsa) == 1
    tbs = tbs.replace(sha256_rsa, sha1_rsa)
    signature = issuer_key.sign(tbs, padding.PKCS1v15(), hashes.SHA1())
    algorithm = b"\x30\x0d" + sha1_rsa + b"\x05\x00"
    bits = b"\x03" + _der_len(len(signature) + 1) + b"\x00" + signature
    body = tbs + algorithm + bits
    return x509.load_der_x509_certificate(b"\x30" + _der_len(len(body)) + body)


def pem_file(*certs: x509.Certificate, path: str = "in.pem") -> CertificateFile:
    return CertificateFile(path=path, format="pem", certificates=tuple(certs), private_key=False)


def run(
    *certs: x509.Certificate,
    purpose: Any = None,
    name: str | None = None,
    with_issuing: bool = True,
    anchors: Sequence[x509.Certificate] = (ROOT,),
    now: datetime = NOW,
) -> CertReport:
    """Each certificate in a file of its own, the issuing CA in another (unless told), --ca the root."""
    files = [pem_file(c, path=f"c{i}.pem") for i, c in enumerate(certs, 1)]
    if with_issuing:
        files.append(pem_file(ISSUING, path="issuing.pem"))
    return lint(files, anchors, now, purpose=purpose, name=name, ca_files=["root.pem"] if anchors else [])


def one(cert: x509.Certificate, **kw: Any) -> LintedCertificate:
    report = run(cert, **kw)
    assert len(report.certificates) == 1
    return report.certificates[0]


def statuses(c: LintedCertificate) -> dict[str, str]:
    return {f.id: f.status for f in c.findings}


def found(c: LintedCertificate, fid: str) -> Any:
    return next(f for f in c.findings if f.id == fid)


def expect(base: dict[str, str], **changes: str) -> dict[str, str]:
    """`base` with ids changed: keyword names are the id's last part, '-' written '_'."""
    out = dict(base)
    for short, status in changes.items():
        fid = f"cert.lint.{short.replace('_', '-')}"
        assert fid in out, fid
        out[fid] = status
    return out


HEALTHY_USER = dict.fromkeys(ALL, "pass") | {ids.CERT_LINT_NAME: "skip"}
HEALTHY_DEVICE = dict.fromkeys(ALL, "pass") | {ids.CERT_LINT_UPN: "skip"}
HEALTHY_SERVER = dict.fromkeys(ALL, "pass") | {
    ids.CERT_LINT_UPN: "skip",
    ids.CERT_LINT_DUPLICATE_CLIENT_AUTH: "skip",
}


# ---- a healthy certificate of each purpose -----------------------------------------------------------


def test_healthy_user() -> None:
    report = run(user(), purpose="user")
    c = report.certificates[0]
    assert statuses(c) == HEALTHY_USER
    assert [f.id for f in c.findings] == list(ALL)  # every id once, in report order
    assert c.upn == ["alice@corp.example"] and c.purpose == "user" and c.purpose_from == "--for"
    assert c.chain == ["CN=Alice", "CN=Lint Issuing CA", "CN=Lint Root CA"] and c.chain_complete is True
    assert c.status == "pass" and report.verdict.status == "healthy" and exit_code(report) == 0
    assert [ca.subject for ca in report.ca_certificates] == ["CN=Lint Issuing CA"]


def test_healthy_device() -> None:
    c = one(device(), purpose="device", name="PC1.corp.example.")  # case and one trailing dot do not matter
    assert statuses(c) == HEALTHY_DEVICE
    assert found(c, ids.CERT_LINT_NAME).detail == "PC1.corp.example. is a DNS SAN."


def test_healthy_device_by_cn_only() -> None:
    c = one(device(dns=()), purpose="device", name="pc1.corp.example")
    assert statuses(c) == HEALTHY_DEVICE
    assert found(c, ids.CERT_LINT_NAME).detail == "pc1.corp.example is the subject CN."


def test_healthy_server() -> None:
    c = one(server(), purpose="server", name="vpn.example.com")
    assert statuses(c) == HEALTHY_SERVER
    assert "IKE intermediate" in found(c, ids.CERT_LINT_EKU).detail


def test_server_without_ike_intermediate_passes_with_a_note() -> None:
    # An SSTP or IP-HTTPS certificate does not need it; an IKEv2 gateway with several Server Authentication
    # certificates does (Microsoft's VPN Server Authentication template adds it).
    c = one(server(eku=(SERVER_AUTH,)), purpose="server", name="vpn.example.com")
    assert statuses(c) == HEALTHY_SERVER
    assert "no IP security IKE intermediate EKU" in found(c, ids.CERT_LINT_EKU).detail


# ---- validity ------------------------------------------------------------------------------------------


def test_expired() -> None:
    c = one(device(not_before=NOW - timedelta(days=400), not_after=NOW - timedelta(days=1)), purpose="device")
    assert statuses(c) == expect(HEALTHY_DEVICE, validity="fail", name="skip")
    f = found(c, ids.CERT_LINT_VALIDITY)
    assert f.detail.startswith("Expired on 2026-05-31.") and f.error_codes == [13806] and f.remedy


def test_not_yet_valid() -> None:
    c = one(user(not_before=NOW + timedelta(days=2)), purpose="user")
    assert statuses(c) == expect(HEALTHY_USER, validity="fail")
    assert found(c, ids.CERT_LINT_VALIDITY).detail.startswith("Not valid before 2026-06-03.")


def test_expiring_in_ten_days_is_a_warning_only() -> None:
    report = run(user(not_after=NOW + timedelta(days=10)), purpose="user")
    c = report.certificates[0]
    assert statuses(c) == expect(HEALTHY_USER, validity="warn")
    assert "in 10 days" in found(c, ids.CERT_LINT_VALIDITY).detail
    assert report.verdict.status == "healthy" and exit_code(report) == 0 and c.status == "warn"


# ---- EKU -----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("purpose", ["user", "device"])
def test_no_client_auth_for_user_or_device(purpose: str) -> None:
    cert = user(eku=(SERVER_AUTH,)) if purpose == "user" else device(eku=(SERVER_AUTH,))
    c = one(cert, purpose=purpose, name="pc1.corp.example" if purpose == "device" else None)
    base = HEALTHY_USER if purpose == "user" else HEALTHY_DEVICE
    # Not a Client Authentication certificate: the duplicate check does not apply either.
    assert statuses(c) == expect(base, eku="fail", duplicate_client_auth="skip")
    assert (
        "lacks the Client Authentication EKU (1.3.6.1.5.5.7.3.2): it has serverAuth"
        in found(c, ids.CERT_LINT_EKU).detail
    )


def test_no_eku_extension_is_no_client_auth() -> None:
    # Windows offers only certificates with the Client Authentication purpose for VPN/EAP-TLS authentication.
    c = one(user(eku=None), purpose="user")
    assert statuses(c) == expect(HEALTHY_USER, eku="fail", duplicate_client_auth="skip")
    assert "has no EKU extension" in found(c, ids.CERT_LINT_EKU).detail


def test_no_server_auth_for_server() -> None:
    c = one(server(eku=(CLIENT_AUTH,)), purpose="server", name="vpn.example.com")
    assert statuses(c) == expect(HEALTHY_SERVER, eku="fail", duplicate_client_auth="pass")
    f = found(c, ids.CERT_LINT_EKU)
    assert "Server Authentication" in f.detail and f.error_codes == [13801]


# ---- names ---------------------------------------------------------------------------------------------


def test_device_cn_is_not_the_name() -> None:
    c = one(device(cn="pc2.corp.example", dns=()), purpose="device", name="pc1.corp.example")
    assert statuses(c) == expect(HEALTHY_DEVICE, name="fail")
    f = found(c, ids.CERT_LINT_NAME)
    assert f.detail == "The certificate names pc2.corp.example, not pc1.corp.example."
    assert f.evidence["cn"] == ["pc2.corp.example"] and f.error_codes == [13806]


def test_device_short_name_is_not_the_fqdn() -> None:
    c = one(device(cn="pc1", dns=()), purpose="device", name="pc1.corp.example")
    assert statuses(c)[ids.CERT_LINT_NAME] == "fail"
    assert "the short host name" in found(c, ids.CERT_LINT_NAME).detail


def test_device_names_are_compared_without_wildcards() -> None:
    c = one(device(cn="x", dns=["*.corp.example"]), purpose="device", name="pc1.corp.example")
    assert statuses(c)[ids.CERT_LINT_NAME] == "fail"


def test_server_name_follows_rfc6125() -> None:
    c = one(server(dns=["*.example.com"]), purpose="server", name="vpn.example.com")
    assert statuses(c) == HEALTHY_SERVER
    c = one(server(), purpose="server", name="other.example.com")
    assert statuses(c) == expect(HEALTHY_SERVER, name="fail")


def test_no_name_given_is_a_skip() -> None:
    assert statuses(one(device(), purpose="device"))[ids.CERT_LINT_NAME] == "skip"
    assert statuses(one(server(), purpose="server"))[ids.CERT_LINT_NAME] == "skip"


def test_user_without_upn() -> None:
    c = one(make(cn="Alice"), purpose="user")
    assert statuses(c) == expect(HEALTHY_USER, upn="fail")
    f = found(c, ids.CERT_LINT_UPN)
    assert "has no UPN (SAN otherName 1.3.6.1.4.1.311.20.2.3)" in f.detail and f.remedy


def test_user_with_a_malformed_upn_is_a_warning() -> None:
    c = one(user(upn="alice"), purpose="user")
    assert statuses(c) == expect(HEALTHY_USER, upn="warn")


# ---- key usage, key, signature -------------------------------------------------------------------------


def test_key_usage_without_digital_signature() -> None:
    c = one(user(key_usage=("key_encipherment",)), purpose="user")
    assert statuses(c) == expect(HEALTHY_USER, key_usage="fail")


def test_rsa_server_without_key_encipherment_is_a_warning() -> None:
    c = one(server(key_usage=("digital_signature",)), purpose="server", name="vpn.example.com")
    assert statuses(c) == expect(HEALTHY_SERVER, key_usage="warn")
    # A client signs only: digitalSignature is enough.
    assert statuses(one(user(key_usage=("digital_signature",)), purpose="user")) == HEALTHY_USER


def test_ecdsa_server_needs_no_key_encipherment() -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    c = one(server(key=key, key_usage=("digital_signature",)), purpose="server", name="vpn.example.com")
    assert statuses(c) == HEALTHY_SERVER
    assert c.key_type == "EC secp256r1" and c.key_bits == 256


def test_no_key_usage_extension_passes() -> None:
    c = one(user(key_usage=None), purpose="user")
    assert statuses(c) == HEALTHY_USER and c.key_usage is None


def test_rsa_1024() -> None:
    short = rsa.generate_private_key(public_exponent=65537, key_size=1024)
    c = one(user(key=short), purpose="user")
    assert statuses(c) == expect(HEALTHY_USER, key="fail")
    assert found(c, ids.CERT_LINT_KEY).detail == "The certificate has a RSA 1024-bit key: too short."


def test_ed25519_key_is_a_warning() -> None:
    c = one(user(key=ed25519.Ed25519PrivateKey.generate()), purpose="user")
    assert statuses(c) == expect(HEALTHY_USER, key="warn")


def test_sha1_signature() -> None:
    c = one(resigned_sha1(user()), purpose="user")
    assert c.signature_algorithm == "sha1WithRSAEncryption"
    assert statuses(c) == expect(HEALTHY_USER, signature="fail")
    f = found(c, ids.CERT_LINT_SIGNATURE)
    assert (
        f.detail.startswith("The certificate is signed with sha1WithRSAEncryption (SHA-1/MD5)") and f.remedy
    )
    # cryptography no longer verifies SHA-1 signatures: the issuer is matched by name, and the chain says so
    # instead of calling the issuing CA missing.
    chain = found(c, ids.CERT_LINT_CHAIN)
    assert chain.evidence["unverified"] == ["CN=Alice"] and "matched by name only" in chain.detail
    assert not issued_by_anchor(resigned_sha1(user()), [ISSUING], [ROOT])  # trust decisions stay strict


# ---- the chain -----------------------------------------------------------------------------------------


def test_missing_intermediate_against_ca() -> None:
    report = run(user(), purpose="user", with_issuing=False)
    c = report.certificates[0]
    assert statuses(c) == expect(HEALTHY_USER, chain="fail")
    f = found(c, ids.CERT_LINT_CHAIN)
    assert f.evidence == {"chain": ["CN=Alice"], "missing_issuer": "CN=Lint Issuing CA", "unverified": []}
    assert f.detail.startswith("The certificate of the issuer CN=Lint Issuing CA is missing")
    assert c.chain_complete is False and report.verdict.root_causes == [ids.CERT_LINT_CHAIN]


def test_intermediate_in_the_same_file_completes_the_chain() -> None:
    report = lint([pem_file(user(), ISSUING)], [ROOT], NOW, purpose="user")
    assert [c.source for c in report.certificates] == ["in.pem#1"]
    assert statuses(report.certificates[0]) == HEALTHY_USER


def test_untrusted_root() -> None:
    c = one(user(), purpose="user", anchors=(OTHER_ROOT,))
    assert statuses(c) == expect(HEALTHY_USER, chain="fail")
    # The issuing CA is there; its root is not: the chain ends at the issuing CA, not anchored.
    assert found(c, ids.CERT_LINT_CHAIN).evidence["missing_issuer"] == "CN=Lint Root CA"


def test_root_among_the_inputs_but_not_in_ca() -> None:
    report = lint([pem_file(user(), ISSUING, ROOT)], [OTHER_ROOT], NOW, purpose="user")
    c = report.certificates[0]
    assert statuses(c)[ids.CERT_LINT_CHAIN] == "fail"
    f = found(c, ids.CERT_LINT_CHAIN)
    assert "ends at CN=Lint Root CA, which is not among the --ca anchors" in f.detail


def test_without_ca_the_chain_is_not_judged() -> None:
    report = run(user(), purpose="user", anchors=())
    c = report.certificates[0]
    assert statuses(c) == expect(HEALTHY_USER, chain="skip")
    assert c.chain_complete is None and c.chain == ["CN=Alice", "CN=Lint Issuing CA"]
    assert "give the root CA with --ca" in found(c, ids.CERT_LINT_CHAIN).detail


# ---- across the inputs ---------------------------------------------------------------------------------


def test_two_client_auth_certificates_for_one_subject() -> None:
    older, newer = user(not_after=NOW + timedelta(days=20)), user()
    report = run(older, newer, make(cn="Bob", upn="bob@corp.example"), purpose="user")
    first, second, bob = report.certificates
    assert statuses(first) == expect(HEALTHY_USER, validity="warn", duplicate_client_auth="warn")
    assert statuses(second) == expect(HEALTHY_USER, duplicate_client_auth="warn")
    assert statuses(bob) == HEALTHY_USER
    f = found(first, ids.CERT_LINT_DUPLICATE_CLIENT_AUTH)
    assert f.evidence == {"shared": ["CN=Alice", "alice@corp.example"], "others": ["c2.pem"]}
    assert "Windows may pick the wrong one" in f.detail and f.remedy
    assert report.verdict.status == "healthy"  # a warning: Windows may still pick the right one


def test_same_upn_under_another_subject_is_a_duplicate_too() -> None:
    report = run(user(), make(cn="Alice Smith", upn="ALICE@corp.example"), purpose="user")
    assert [statuses(c)[ids.CERT_LINT_DUPLICATE_CLIENT_AUTH] for c in report.certificates] == ["warn", "warn"]


def test_the_same_certificate_twice_is_judged_once() -> None:
    cert = user()
    files = [pem_file(cert, path="a.pem"), pem_file(cert, ISSUING, path="b.pem")]
    report = lint(files, [ROOT], NOW, purpose="user")
    (c,) = report.certificates
    assert c.source == "a.pem" and c.also_in == ["b.pem#1"]
    assert statuses(c) == HEALTHY_USER


def test_only_ca_certificates_leave_nothing_to_lint() -> None:
    assert end_entities([pem_file(ROOT, ISSUING)]) == []
    assert lint([pem_file(ROOT, ISSUING)], [], NOW).certificates == []


# ---- the purpose each certificate declares -------------------------------------------------------------


def test_purposes_are_read_from_eku_and_upn_without_for() -> None:
    report = run(user(), device(), server(), make(cn="Code", eku=(ExtendedKeyUsageOID.CODE_SIGNING,)))
    got = [(c.purpose, c.purpose_from) for c in report.certificates]
    assert got == [("user", "eku"), ("device", "eku"), ("server", "eku"), (None, "none")]
    unknown = report.certificates[3]
    assert statuses(unknown)[ids.CERT_LINT_EKU] == "fail"
    assert (
        "neither the Client Authentication nor the Server Authentication EKU"
        in found(unknown, ids.CERT_LINT_EKU).detail
    )
    assert report.verdict.root_causes == [ids.CERT_LINT_EKU] and exit_code(report) == 1


def test_no_eku_and_no_for_is_a_warning() -> None:
    c = one(make(cn="Anything", eku=None))
    assert c.purpose is None and statuses(c)[ids.CERT_LINT_EKU] == "warn"


def test_verdict_lists_failing_ids_in_report_order() -> None:
    bad = resigned_sha1(user(not_after=NOW - timedelta(days=1), eku=(SERVER_AUTH,)))
    report = run(bad, purpose="user")
    assert report.verdict.root_causes == [ids.CERT_LINT_VALIDITY, ids.CERT_LINT_EKU, ids.CERT_LINT_SIGNATURE]
    assert report.verdict.summary.startswith("1 of 1 certificate(s) fail: c1.pem: cert.lint.validity")


# ---- the pieces in certs.py and checks/certificate.py --------------------------------------------------


def test_upn_and_key_usage_helpers() -> None:
    cert = user()
    assert upn_names(cert) == ["alice@corp.example"]
    assert key_usage_names(cert) == ["digitalSignature", "keyEncipherment"]
    assert key_usage_names(user(key_usage=None)) is None
    # An otherName UPN that is not a DER string is left out, never a crash.
    odd = make(eku=(CLIENT_AUTH,))
    san = x509.SubjectAlternativeName([x509.OtherName(ObjectIdentifier(UPN_OID), b"\x04\x01x")])
    b = (
        x509.CertificateBuilder()
        .subject_name(odd.subject)
        .issuer_name(odd.issuer)
        .public_key(KEY.public_key())
        .serial_number(7)
        .not_valid_before(NOW)
        .not_valid_after(NOW + timedelta(days=1))
        .add_extension(san, critical=False)
    )
    assert upn_names(b.sign(ISSUING_KEY, hashes.SHA256())) == []


def test_build_chain_and_issued_by_anchor_agree() -> None:
    leaf = user()
    chain = build_chain(leaf, [ISSUING], [ROOT])
    assert chain.anchored and [c.subject for c in chain.path] == [leaf.subject, ISSUING.subject, ROOT.subject]
    assert issued_by_anchor(leaf, [ISSUING], [ROOT])
    # A self-signed root that is no anchor ends the walk (once, not eight times).
    chain = build_chain(leaf, [ISSUING, ROOT], [OTHER_ROOT])
    assert not chain.anchored and chain.missing_issuer is None and len(chain.path) == 3
    assert not issued_by_anchor(leaf, [ISSUING, ROOT], [OTHER_ROOT])
    # The issuing CA itself may be the anchor.
    assert build_chain(leaf, [], [ISSUING]).anchored


def test_purpose_profile_leaves_the_other_commands_answers_alone() -> None:
    cert = server(eku=(SERVER_AUTH,))
    facts = facts_of(cert, [ISSUING], [ROOT])
    assert infer_purpose(facts) == "server"
    judged = judge_purpose(facts, "server", "vpn.example.com", NOW)
    plain = judge_certificate(facts, "vpn.example.com", NOW)
    assert judged.base == plain  # validity, name, key, signature: the same judge, the same answers
    assert plain.eku.reason == "server-auth" and judged.eku.reason == "server-auth"
    # Without anchors, trust is not asked, as before.
    assert facts_of(cert).trusted is None and facts_of(cert).chain_break is None
