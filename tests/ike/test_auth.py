"""Responder AUTH verification: keys and certificates made with `cryptography`, the signed octets signed in
each supported way (RFC 7296 methods 1, 9-11; RFC 7427 method 14 with PKCS#1 v1.5, RSASSA-PSS and ECDSA), then
flipped bits, wrong certificates, unsupported algorithms and malformed AUTH data."""

from __future__ import annotations

import datetime
import hashlib
import hmac
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature
from cryptography.x509.oid import NameOID
from hypothesis import given, settings
from hypothesis import strategies as st

from vpndoctor.ike.auth import AuthPayloadError, AuthResult, responder_signed_octets, verify_responder_auth
from vpndoctor.ike.constants import AuthMethod, PrfId
from vpndoctor.ike.errors import MalformedMessage

SIGNED = b"IKE_SA_INIT response bytes" + b"\x00" * 40 + b"Ni" * 16 + b"prf(SK_pr, IDr')" * 2

# AlgorithmIdentifier DER, written out as RFC 7427 Appendix A lists them.
ALG = {
    "sha1WithRSAEncryption": "300d06092a864886f70d0101050500",
    "sha256WithRSAEncryption": "300d06092a864886f70d01010b0500",
    "sha384WithRSAEncryption": "300d06092a864886f70d01010c0500",
    "sha512WithRSAEncryption": "300d06092a864886f70d01010d0500",
    "ecdsa-with-SHA256": "300a06082a8648ce3d040302",
    "ecdsa-with-SHA384": "300a06082a8648ce3d040303",
    "ecdsa-with-SHA512": "300a06082a8648ce3d040304",
    # RSASSA-PSS, SHA-256, MGF1 with SHA-256, salt length 32
    "pss-sha256": "304106092a864886f70d01010a3034a00f300d06096086480165030402010500a11c301a06092a864886f70d01"
    "0108300d06096086480165030402010500a203020120",
    # RSASSA-PSS with all defaults: SHA-1, MGF1 with SHA-1, salt length 20
    "pss-defaults": "300d06092a864886f70d01010a3000",
}


def _certificate(key: Any, digest: Any = None, **sign: Any) -> bytes:
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "vpn.example.test")])
    start = datetime.datetime(2026, 1, 1, tzinfo=datetime.UTC)
    builder = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(1)
        .not_valid_before(start)
        .not_valid_after(start + datetime.timedelta(days=30))
    )
    algorithm = None if isinstance(key, ed25519.Ed25519PrivateKey) else digest or hashes.SHA256()
    return builder.sign(key, algorithm, **sign).public_bytes(serialization.Encoding.DER)


@pytest.fixture(scope="module")
def rsa_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@pytest.fixture(scope="module")
def rsa_cert(rsa_key: rsa.RSAPrivateKey) -> bytes:
    return _certificate(rsa_key)


@pytest.fixture(scope="module")
def ec_keys() -> dict[str, ec.EllipticCurvePrivateKey]:
    return {
        "p256": ec.generate_private_key(ec.SECP256R1()),
        "p384": ec.generate_private_key(ec.SECP384R1()),
        "p521": ec.generate_private_key(ec.SECP521R1()),
    }


def digital_signature(alg: str, signature: bytes) -> bytes:
    identifier = bytes.fromhex(ALG[alg]) if alg in ALG else bytes.fromhex(alg)
    return bytes([len(identifier)]) + identifier + signature


def raw_ecdsa(key: ec.EllipticCurvePrivateKey, data: bytes, digest: hashes.HashAlgorithm) -> bytes:
    r, s = decode_dss_signature(key.sign(data, ec.ECDSA(digest)))
    size = (key.curve.key_size + 7) // 8
    return r.to_bytes(size, "big") + s.to_bytes(size, "big")


def flip(data: bytes, index: int) -> bytes:
    return data[:index] + bytes([data[index] ^ 0x01]) + data[index + 1 :]


def assert_refused(result: AuthResult, reason_part: str) -> None:
    assert result.verified is False
    assert result.reason is not None and reason_part in result.reason, result.reason


# --- signed octets


def test_responder_signed_octets() -> None:
    response, ni, sk_pr = b"\x01" * 300, b"\x02" * 32, b"\x03" * 32
    idr_body = b"\x02\x00\x00\x00vpn.example.test"  # ID type FQDN, 3 reserved bytes, data
    expected = response + ni + hmac.new(sk_pr, idr_body, hashlib.sha256).digest()
    assert responder_signed_octets(response, ni, sk_pr, idr_body, PrfId.HMAC_SHA2_256) == expected


# --- RSA


def test_method_1_rsa_pkcs1_sha1(rsa_key: rsa.RSAPrivateKey, rsa_cert: bytes) -> None:
    signature = rsa_key.sign(SIGNED, padding.PKCS1v15(), hashes.SHA1())
    result = verify_responder_auth(AuthMethod.RSA_SIG, signature, rsa_cert, SIGNED)
    assert result == AuthResult(True, "RSA Digital Signature", "sha1", None)
    assert_refused(verify_responder_auth(1, flip(signature, 100), rsa_cert, SIGNED), "does not verify")
    assert_refused(verify_responder_auth(1, signature, rsa_cert, flip(SIGNED, 0)), "does not verify")
    assert_refused(verify_responder_auth(1, signature[:-1], rsa_cert, SIGNED), "does not verify")
    sha256_signature = rsa_key.sign(SIGNED, padding.PKCS1v15(), hashes.SHA256())
    assert_refused(verify_responder_auth(1, sha256_signature, rsa_cert, SIGNED), "does not verify")


@pytest.mark.parametrize(
    ("alg", "digest"),
    [
        ("sha1WithRSAEncryption", hashes.SHA1()),
        ("sha256WithRSAEncryption", hashes.SHA256()),
        ("sha384WithRSAEncryption", hashes.SHA384()),
        ("sha512WithRSAEncryption", hashes.SHA512()),
    ],
)
def test_method_14_rsa_pkcs1(
    alg: str, digest: hashes.HashAlgorithm, rsa_key: rsa.RSAPrivateKey, rsa_cert: bytes
) -> None:
    auth = digital_signature(alg, rsa_key.sign(SIGNED, padding.PKCS1v15(), digest))
    result = verify_responder_auth(AuthMethod.DIGITAL_SIGNATURE, auth, rsa_cert, SIGNED)
    assert result == AuthResult(True, f"Digital Signature ({alg})", digest.name, None)
    assert_refused(verify_responder_auth(14, flip(auth, len(auth) - 1), rsa_cert, SIGNED), "does not verify")
    assert_refused(verify_responder_auth(14, auth, rsa_cert, SIGNED + b"x"), "does not verify")


def test_method_14_rsa_pkcs1_without_null_parameters(rsa_key: rsa.RSAPrivateKey, rsa_cert: bytes) -> None:
    identifier = "300b06092a864886f70d01010b"  # sha256WithRSAEncryption, parameters absent
    auth = digital_signature(identifier, rsa_key.sign(SIGNED, padding.PKCS1v15(), hashes.SHA256()))
    assert verify_responder_auth(14, auth, rsa_cert, SIGNED).verified


def test_method_14_pss(rsa_key: rsa.RSAPrivateKey, rsa_cert: bytes) -> None:
    signature = rsa_key.sign(
        SIGNED, padding.PSS(mgf=padding.MGF1(hashes.SHA256()), salt_length=32), hashes.SHA256()
    )
    result = verify_responder_auth(14, digital_signature("pss-sha256", signature), rsa_cert, SIGNED)
    assert result == AuthResult(True, "Digital Signature (RSASSA-PSS)", "sha256", None)
    assert_refused(
        verify_responder_auth(14, digital_signature("pss-sha256", flip(signature, 5)), rsa_cert, SIGNED),
        "salt 32 bytes",
    )
    # The same signature announced with another salt length does not verify.
    salt_20 = ALG["pss-sha256"][:-2] + "14"
    assert_refused(
        verify_responder_auth(14, digital_signature(salt_20, signature), rsa_cert, SIGNED), "salt 20"
    )


def test_method_14_pss_defaults(rsa_key: rsa.RSAPrivateKey, rsa_cert: bytes) -> None:
    signature = rsa_key.sign(
        SIGNED, padding.PSS(mgf=padding.MGF1(hashes.SHA1()), salt_length=20), hashes.SHA1()
    )
    result = verify_responder_auth(14, digital_signature("pss-defaults", signature), rsa_cert, SIGNED)
    assert result == AuthResult(True, "Digital Signature (RSASSA-PSS)", "sha1", None)


def test_method_14_pss_with_the_identifier_openssl_writes(rsa_key: rsa.RSAPrivateKey) -> None:
    # A certificate signed with RSASSA-PSS (SHA-384, MGF1 SHA-384, salt 48) carries its AlgorithmIdentifier:
    # take it from there, so the parser meets OpenSSL's encoding and not only ours.
    pss = padding.PSS(mgf=padding.MGF1(hashes.SHA384()), salt_length=48)
    der = _certificate(rsa_key, hashes.SHA384(), rsa_padding=pss)
    certificate = x509.load_der_x509_certificate(der)
    header_bytes = 2 + (der[1] & 0x7F if der[1] & 0x80 else 0)
    start = header_bytes + len(certificate.tbs_certificate_bytes)
    identifier = der[start : start + 2 + der[start + 1]]
    assert identifier.hex().startswith("304106092a864886f70d01010a")
    signature = rsa_key.sign(SIGNED, pss, hashes.SHA384())
    auth = bytes([len(identifier)]) + identifier + signature
    assert verify_responder_auth(14, auth, der, SIGNED) == AuthResult(
        True, "Digital Signature (RSASSA-PSS)", "sha384", None
    )


# --- ECDSA


@pytest.mark.parametrize(
    ("method", "curve", "digest"),
    [(9, "p256", hashes.SHA256()), (10, "p384", hashes.SHA384()), (11, "p521", hashes.SHA512())],
)
def test_methods_9_10_11_fixed_curve_ecdsa(
    method: int, curve: str, digest: hashes.HashAlgorithm, ec_keys: dict[str, ec.EllipticCurvePrivateKey]
) -> None:
    key = ec_keys[curve]
    cert = _certificate(key)
    auth = raw_ecdsa(key, SIGNED, digest)
    result = verify_responder_auth(method, auth, cert, SIGNED)
    assert result.verified and result.hash_name == digest.name and result.reason is None
    assert_refused(verify_responder_auth(method, flip(auth, 3), cert, SIGNED), "does not verify")
    assert_refused(verify_responder_auth(method, auth, cert, flip(SIGNED, 10)), "does not verify")
    with pytest.raises(AuthPayloadError):
        verify_responder_auth(method, auth[:-1], cert, SIGNED)


def test_fixed_curve_method_with_a_key_on_another_curve(
    ec_keys: dict[str, ec.EllipticCurvePrivateKey],
) -> None:
    key = ec_keys["p384"]
    auth = raw_ecdsa(key, SIGNED, hashes.SHA256())[:64]
    assert_refused(verify_responder_auth(9, auth, _certificate(key), SIGNED), "needs secp256r1")


@pytest.mark.parametrize(
    ("alg", "curve", "digest"),
    [
        ("ecdsa-with-SHA256", "p256", hashes.SHA256()),
        ("ecdsa-with-SHA384", "p384", hashes.SHA384()),
        ("ecdsa-with-SHA512", "p521", hashes.SHA512()),
        ("ecdsa-with-SHA512", "p256", hashes.SHA512()),  # RFC 7427 lets any hash go with any curve
    ],
)
def test_method_14_ecdsa(
    alg: str, curve: str, digest: hashes.HashAlgorithm, ec_keys: dict[str, ec.EllipticCurvePrivateKey]
) -> None:
    key = ec_keys[curve]
    cert = _certificate(key)
    auth = digital_signature(alg, key.sign(SIGNED, ec.ECDSA(digest)))  # DER Ecdsa-Sig-Value
    assert verify_responder_auth(14, auth, cert, SIGNED) == AuthResult(
        True, f"Digital Signature ({alg})", digest.name, None
    )
    assert_refused(verify_responder_auth(14, flip(auth, len(auth) - 2), cert, SIGNED), "does not verify")


# --- refusals that are not errors


def test_wrong_certificate(
    rsa_key: rsa.RSAPrivateKey, ec_keys: dict[str, ec.EllipticCurvePrivateKey]
) -> None:
    other = _certificate(rsa.generate_private_key(public_exponent=65537, key_size=2048))
    signature = rsa_key.sign(SIGNED, padding.PKCS1v15(), hashes.SHA1())
    assert_refused(verify_responder_auth(1, signature, other, SIGNED), "does not verify")
    ec_cert = _certificate(ec_keys["p256"])
    assert_refused(verify_responder_auth(1, signature, ec_cert, SIGNED), "not RSA")
    auth = digital_signature(
        "sha256WithRSAEncryption", rsa_key.sign(SIGNED, padding.PKCS1v15(), hashes.SHA256())
    )
    assert_refused(verify_responder_auth(14, auth, ec_cert, SIGNED), "not RSA")


def test_ecdsa_signature_against_an_rsa_certificate(
    rsa_cert: bytes, ec_keys: dict[str, ec.EllipticCurvePrivateKey]
) -> None:
    key = ec_keys["p256"]
    assert_refused(
        verify_responder_auth(9, raw_ecdsa(key, SIGNED, hashes.SHA256()), rsa_cert, SIGNED), "not ECDSA"
    )
    auth = digital_signature("ecdsa-with-SHA256", key.sign(SIGNED, ec.ECDSA(hashes.SHA256())))
    assert_refused(verify_responder_auth(14, auth, rsa_cert, SIGNED), "not ECDSA")


def test_certificate_with_an_unsupported_key_type() -> None:
    key = ed25519.Ed25519PrivateKey.generate()
    cert = _certificate(key)
    assert_refused(verify_responder_auth(1, b"\x00" * 256, cert, SIGNED), "Ed25519")


def test_methods_that_cannot_be_verified(rsa_cert: bytes) -> None:
    for method in (AuthMethod.SHARED_KEY, AuthMethod.DSS, AuthMethod.NULL, 201):
        result = verify_responder_auth(method, b"\x01" * 20, rsa_cert, SIGNED)
        assert result.verified is False and result.reason and result.hash_name is None


def test_unsupported_signature_algorithms(rsa_cert: bytes) -> None:
    ed25519_oid = "300506032b6570"  # id-Ed25519
    assert_refused(
        verify_responder_auth(14, digital_signature(ed25519_oid, b"\x00" * 64), rsa_cert, SIGNED),
        "1.3.101.112",
    )
    # RSASSA-PSS whose mask generation function is not MGF1
    other_mgf = "302206092a864886f70d01010a3015a10e300c06082a864886f70d01093000a203020120"
    assert_refused(
        verify_responder_auth(14, digital_signature(other_mgf, b"\x00" * 256), rsa_cert, SIGNED), "mask"
    )
    # RSASSA-PSS with a hash we do not offer (SHA-224)
    sha224 = "301c06092a864886f70d01010a300fa00d300b0609608648016503040204"
    assert_refused(
        verify_responder_auth(14, digital_signature(sha224, b"\x00" * 256), rsa_cert, SIGNED), "hash"
    )


# --- malformed input


@pytest.mark.parametrize(
    "auth_hex",
    [
        "",  # nothing
        "00",  # zero-length AlgorithmIdentifier
        "ff300d06092a864886f70d01010b0500",  # length byte beyond the data
        "0d040b06092a864886f70d01010b0500",  # not a SEQUENCE
        "0f300e06092a864886f70d01010b0500ff",  # inner length runs past the end
        "0f300c06092a864886f70d01010b05000000",  # trailing bytes inside the identifier
        "0f3080" + "06092a864886f70d01010b0500",  # indefinite length
        "0f30810d06092a864886f70d01010b0500",  # non-minimal length
        "04300205" + "00",  # no OID first
        "0f300d0609" + "2a864886f70d0101" + "8b0500",  # OID ending inside an arc
        "0f300d06092a864886f70d01010b0501",  # NULL with content for PKCS#1
        "13301106082a8648ce3d04030206052b81040022",  # ECDSA with parameters (a curve OID)
        "11300f06092a864886f70d01010a0202",  # PSS parameters not a SEQUENCE
        "16301406092a864886f70d01010a3007a203020120a000",  # PSS fields out of order
        "13301106092a864886f70d01010a3004a1023000",  # MGF1 AlgorithmIdentifier without OID
    ],
)
def test_malformed_digital_signature_data_raises(auth_hex: str, rsa_cert: bytes) -> None:
    with pytest.raises(AuthPayloadError) as info:
        verify_responder_auth(14, bytes.fromhex(auth_hex) + b"\x00" * 8, rsa_cert, SIGNED)
    assert isinstance(info.value, MalformedMessage)


def test_unparseable_certificate() -> None:
    with pytest.raises(AuthPayloadError):
        verify_responder_auth(1, b"\x00" * 256, b"\x30\x03\x02\x01\x01", SIGNED)
    with pytest.raises(AuthPayloadError):
        verify_responder_auth(1, b"\x00" * 256, b"", SIGNED)


_FUZZ_CERTS: dict[str, bytes] = {}


def _fuzz_certificate(kind: str) -> bytes:
    if kind not in _FUZZ_CERTS:
        key: Any = (
            rsa.generate_private_key(public_exponent=65537, key_size=2048)
            if kind == "rsa"
            else ec.generate_private_key(ec.SECP256R1())
        )
        _FUZZ_CERTS[kind] = _certificate(key)
    return _FUZZ_CERTS[kind]


@settings(max_examples=400, deadline=None)
@given(
    st.sampled_from(["rsa", "ec"]),
    st.binary(max_size=300),
    st.sampled_from(sorted(ALG)),
    st.integers(0, 200),
    st.integers(0, 255),
)
def test_fuzzed_auth_data_raises_only_our_errors(
    kind: str, tail: bytes, alg: str, position: int, value: int
) -> None:
    data = bytearray(digital_signature(alg, tail))
    if position < len(data):
        data[position] = value
    try:
        result = verify_responder_auth(14, bytes(data), _fuzz_certificate(kind), SIGNED)
    except AuthPayloadError:
        return
    assert result.verified is False
