"""Verification of the responder's AUTH payload (RFC 7296 §2.15) against the public key of its certificate:
RSA PKCS#1 v1.5 (method 1), ECDSA with fixed curves (methods 9-11, RFC 4754) and Digital Signature (method 14,
RFC 7427). We sign only as a device tunnel does (`rsa_sign_auth`: methods 1 and 14 with an RSA machine key).
Only `cryptography` primitives are used; a small strict DER reader parses RFC 7427's AlgorithmIdentifier,
which `cryptography` exposes no parser for.
"""

from __future__ import annotations

from dataclasses import dataclass

from cryptography import x509
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature

from vpndoctor.ike.errors import MalformedMessage
from vpndoctor.ike.keys import prf as prf_function

__all__ = [
    "AuthPayloadError",
    "AuthResult",
    "initiator_signed_octets",
    "responder_signed_octets",
    "rsa_sign_auth",
    "verify_responder_auth",
]


class AuthPayloadError(MalformedMessage):
    """AUTH data or a certificate that cannot be parsed (as opposed to a signature that does not verify).
    Its offset counts from the first byte of the authentication data (0 for the certificate)."""


@dataclass(frozen=True)
class AuthResult:
    verified: bool
    method_name: str
    hash_name: str | None
    reason: str | None  # why verification failed; None when verified


def responder_signed_octets(
    sa_init_response: bytes, nonce_i: bytes, sk_pr: bytes, idr_body: bytes, prf: int
) -> bytes:
    """ResponderSignedOctets = RealMessage2 | NonceIData | prf(SK_pr, IDr') (RFC 7296 §2.15), where IDr' is
    the IDr payload body: ID Type, three reserved octets and the identification data."""
    return sa_init_response + nonce_i + prf_function(prf, sk_pr, idr_body)


# --- methods and algorithms ---

_RSA_SIGNATURE = 1
_ECDSA_METHODS: dict[int, tuple[type[ec.EllipticCurve], type[hashes.HashAlgorithm], str]] = {
    9: (ec.SECP256R1, hashes.SHA256, "ECDSA with SHA-256 on P-256"),
    10: (ec.SECP384R1, hashes.SHA384, "ECDSA with SHA-384 on P-384"),
    11: (ec.SECP521R1, hashes.SHA512, "ECDSA with SHA-512 on P-521"),
}
_DIGITAL_SIGNATURE = 14
_OTHER_METHODS = {
    2: "Shared Key Message Integrity Code",
    3: "DSS Digital Signature",
    12: "NULL Authentication",
}

_HASHES: dict[str, type[hashes.HashAlgorithm]] = {
    "1.3.14.3.2.26": hashes.SHA1,
    "2.16.840.1.101.3.4.2.1": hashes.SHA256,
    "2.16.840.1.101.3.4.2.2": hashes.SHA384,
    "2.16.840.1.101.3.4.2.3": hashes.SHA512,
}
_RSA_PKCS1: dict[str, tuple[str, type[hashes.HashAlgorithm]]] = {
    "1.2.840.113549.1.1.5": ("sha1WithRSAEncryption", hashes.SHA1),
    "1.2.840.113549.1.1.11": ("sha256WithRSAEncryption", hashes.SHA256),
    "1.2.840.113549.1.1.12": ("sha384WithRSAEncryption", hashes.SHA384),
    "1.2.840.113549.1.1.13": ("sha512WithRSAEncryption", hashes.SHA512),
}
_ECDSA: dict[str, tuple[str, type[hashes.HashAlgorithm]]] = {
    "1.2.840.10045.4.3.2": ("ecdsa-with-SHA256", hashes.SHA256),
    "1.2.840.10045.4.3.3": ("ecdsa-with-SHA384", hashes.SHA384),
    "1.2.840.10045.4.3.4": ("ecdsa-with-SHA512", hashes.SHA512),
}
_RSASSA_PSS = "1.2.840.113549.1.1.10"
_MGF1 = "1.2.840.113549.1.1.8"


def verify_responder_auth(
    method: int, auth_data: bytes, certificate_der: bytes, signed_octets: bytes
) -> AuthResult:
    """Does `auth_data` sign `signed_octets` with the key of `certificate_der`? A signature that does not
    verify, a key of the wrong type and an algorithm we do not know give verified=False with a reason;
    only unparseable input (certificate, RFC 7427 structure, ECDSA r||s length) raises AuthPayloadError.
    The certificate's chain and validity are not checked here."""
    try:
        certificate = x509.load_der_x509_certificate(certificate_der)
        key = certificate.public_key()
    except (ValueError, UnsupportedAlgorithm) as exc:
        raise AuthPayloadError(
            0, "a DER X.509 certificate", f"found one that does not parse ({exc})"
        ) from None
    if method == _RSA_SIGNATURE:
        # RFC 7296 §3.8 leaves the hash to the implementations; in practice it is SHA-1.
        return _verify_rsa_pkcs1(key, auth_data, signed_octets, hashes.SHA1(), "RSA Digital Signature")
    if method in _ECDSA_METHODS:
        return _verify_fixed_ecdsa(method, key, auth_data, signed_octets)
    if method == _DIGITAL_SIGNATURE:
        return _verify_digital_signature(key, auth_data, signed_octets)
    name = _OTHER_METHODS.get(method, f"authentication method {method}")
    return AuthResult(False, name, None, f"{name} cannot be verified with a certificate")


def _key_name(key: object) -> str:
    if isinstance(key, rsa.RSAPublicKey):
        return f"RSA-{key.key_size}"
    if isinstance(key, ec.EllipticCurvePublicKey):
        return f"ECDSA {key.curve.name}"
    return type(key).__name__.lstrip("_")


def _verify_rsa_pkcs1(
    key: object, signature: bytes, data: bytes, digest: hashes.HashAlgorithm, method_name: str
) -> AuthResult:
    if not isinstance(key, rsa.RSAPublicKey):
        return AuthResult(False, method_name, digest.name, f"certificate key is {_key_name(key)}, not RSA")
    try:
        key.verify(signature, data, padding.PKCS1v15(), digest)
    except InvalidSignature:
        return AuthResult(False, method_name, digest.name, "RSA PKCS#1 v1.5 signature does not verify")
    return AuthResult(True, method_name, digest.name, None)


def _verify_ecdsa(
    key: object, der_signature: bytes, data: bytes, digest: hashes.HashAlgorithm, method_name: str
) -> AuthResult:
    if not isinstance(key, ec.EllipticCurvePublicKey):
        return AuthResult(False, method_name, digest.name, f"certificate key is {_key_name(key)}, not ECDSA")
    try:
        key.verify(der_signature, data, ec.ECDSA(digest))
    except InvalidSignature:
        return AuthResult(False, method_name, digest.name, "ECDSA signature does not verify")
    return AuthResult(True, method_name, digest.name, None)


def _verify_fixed_ecdsa(method: int, key: object, auth_data: bytes, data: bytes) -> AuthResult:
    curve_type, hash_type, name = _ECDSA_METHODS[method]
    curve, digest = curve_type(), hash_type()
    coordinate = (curve.key_size + 7) // 8
    if len(auth_data) != 2 * coordinate:
        raise AuthPayloadError(
            0, f"a {2 * coordinate}-byte r || s for {name} (RFC 4754 §7)", f"found {len(auth_data)} bytes"
        )
    if isinstance(key, ec.EllipticCurvePublicKey) and not isinstance(key.curve, curve_type):
        return AuthResult(
            False,
            name,
            digest.name,
            f"certificate key is on {key.curve.name}, method {method} needs {curve.name}",
        )
    der = encode_dss_signature(
        int.from_bytes(auth_data[:coordinate], "big"), int.from_bytes(auth_data[coordinate:], "big")
    )
    return _verify_ecdsa(key, der, data, digest, name)


def _verify_digital_signature(key: object, auth_data: bytes, data: bytes) -> AuthResult:
    if not auth_data:
        raise AuthPayloadError(
            0, "an ASN.1 length octet, AlgorithmIdentifier and signature (RFC 7427 §3)", "found no data"
        )
    length = auth_data[0]
    if length == 0 or 1 + length > len(auth_data):
        raise AuthPayloadError(
            0, f"an AlgorithmIdentifier length of 1..{len(auth_data) - 1}", f"found {length}"
        )
    oid, params = _parse_algorithm_identifier(_DerReader(auth_data[1 : 1 + length], 1).read_one())
    signature = auth_data[1 + length :]
    if oid in _RSA_PKCS1:
        name, hash_type = _RSA_PKCS1[oid]
        if params is not None and (params.tag != _NULL or params.value):
            raise AuthPayloadError(params.offset, f"NULL or absent parameters for {name}", "found others")
        return _verify_rsa_pkcs1(key, signature, data, hash_type(), f"Digital Signature ({name})")
    if oid in _ECDSA:
        name, hash_type = _ECDSA[oid]
        if params is not None and (params.tag != _NULL or params.value):
            raise AuthPayloadError(params.offset, f"absent parameters for {name} (RFC 5758)", "found some")
        return _verify_ecdsa(key, signature, data, hash_type(), f"Digital Signature ({name})")
    if oid == _RSASSA_PSS:
        return _verify_pss(key, params, signature, data)
    return AuthResult(False, "Digital Signature", None, f"signature algorithm {oid} is not supported")


def _verify_pss(key: object, params: _Tlv | None, signature: bytes, data: bytes) -> AuthResult:
    method_name = "Digital Signature (RSASSA-PSS)"
    pss = _parse_pss_params(params)
    if isinstance(pss, str):
        return AuthResult(False, method_name, None, pss)
    digest, mgf_digest, salt_bytes = pss
    if not isinstance(key, rsa.RSAPublicKey):
        return AuthResult(False, method_name, digest.name, f"certificate key is {_key_name(key)}, not RSA")
    try:
        key.verify(signature, data, padding.PSS(mgf=padding.MGF1(mgf_digest), salt_length=salt_bytes), digest)
    except InvalidSignature:
        return AuthResult(
            False,
            method_name,
            digest.name,
            f"RSASSA-PSS signature does not verify (hash {digest.name}, MGF1 {mgf_digest.name}, "
            f"salt {salt_bytes} bytes)",
        )
    return AuthResult(True, method_name, digest.name, None)


def _parse_pss_params(params: _Tlv | None) -> tuple[hashes.HashAlgorithm, hashes.HashAlgorithm, int] | str:
    """RSASSA-PSS-params (RFC 4055 §3.1); every field has a default. Returns a reason string for parameters
    that are well formed but that we do not support."""
    digest_oid = mgf_digest_oid = "1.3.14.3.2.26"  # the SHA-1 defaults
    salt_bytes = 20
    if params is not None:
        if params.tag != _SEQUENCE:
            raise AuthPayloadError(
                params.offset, "RSASSA-PSS-params, a SEQUENCE", f"found tag 0x{params.tag:02x}"
            )
        fields = params.children()
        last_tag = -1
        for field in fields:
            if field.tag <= last_tag or field.tag not in (0xA0, 0xA1, 0xA2, 0xA3):
                raise AuthPayloadError(
                    field.offset,
                    "[0] hash, [1] MGF, [2] salt length, [3] trailer, in order",
                    f"found tag 0x{field.tag:02x}",
                )
            last_tag = field.tag
            inner = _DerReader(field.value, field.value_offset).read_one()
            if field.tag == 0xA0:
                digest_oid, _ = _parse_algorithm_identifier(inner)
            elif field.tag == 0xA1:
                mgf_oid, mgf_params = _parse_algorithm_identifier(inner)
                if mgf_oid != _MGF1:
                    return f"mask generation function {mgf_oid} is not supported"
                if mgf_params is None:
                    raise AuthPayloadError(
                        inner.offset, "MGF1 with a hash AlgorithmIdentifier", "found no parameters"
                    )
                mgf_digest_oid, _ = _parse_algorithm_identifier(mgf_params)
            elif field.tag == 0xA2:
                salt_bytes = _parse_integer(inner)
            elif _parse_integer(inner) != 1:
                return "RSASSA-PSS trailer field other than 1 (0xBC) is not supported"
    if digest_oid not in _HASHES:
        return f"RSASSA-PSS hash {digest_oid} is not supported"
    if mgf_digest_oid not in _HASHES:
        return f"MGF1 hash {mgf_digest_oid} is not supported"
    return _HASHES[digest_oid](), _HASHES[mgf_digest_oid](), salt_bytes


# --- a strict DER reader for AlgorithmIdentifier ---

_SEQUENCE = 0x30
_OID = 0x06
_INTEGER = 0x02
_NULL = 0x05


@dataclass(frozen=True)
class _Tlv:
    tag: int
    value: bytes
    offset: int  # of the tag, from the start of the authentication data
    value_offset: int

    def children(self) -> list[_Tlv]:
        return _DerReader(self.value, self.value_offset).read_all()


class _DerReader:
    """Definite-length DER with single-byte tags and lengths up to 65535: all an AlgorithmIdentifier needs."""

    def __init__(self, data: bytes, base_offset: int) -> None:
        self._data = data
        self._base = base_offset
        self._offset = 0

    def _fail(self, expected: str, found: str) -> AuthPayloadError:
        return AuthPayloadError(self._base + self._offset, f"DER {expected} (RFC 7427 §3)", found)

    def read(self) -> _Tlv:
        start = self._offset
        data = self._data
        if start + 2 > len(data):
            raise self._fail("tag and length", f"found {len(data) - start} bytes")
        tag, first = data[start], data[start + 1]
        if tag & 0x1F == 0x1F:
            raise self._fail("single-byte tag", f"found multi-byte tag 0x{tag:02x}")
        offset = start + 2
        if first < 0x80:
            length = first
        else:
            count = first & 0x7F
            if count == 0 or count > 2 or offset + count > len(data):
                raise self._fail("definite length of at most 2 octets", f"found length octet 0x{first:02x}")
            length = int.from_bytes(data[offset : offset + count], "big")
            if length < 0x80 or (count == 2 and length < 0x100):
                raise self._fail("minimal length encoding", f"found {count} octets for {length}")
            offset += count
        if offset + length > len(data):
            raise self._fail(f"{length} value bytes", f"found {len(data) - offset}")
        self._offset = offset + length
        return _Tlv(tag, data[offset : offset + length], self._base + start, self._base + offset)

    def read_all(self) -> list[_Tlv]:
        items = []
        while self._offset < len(self._data):
            items.append(self.read())
        return items

    def read_one(self) -> _Tlv:
        item = self.read()
        if self._offset != len(self._data):
            raise self._fail(
                "value and nothing after it", f"found {len(self._data) - self._offset} more bytes"
            )
        return item


def _parse_algorithm_identifier(outer: _Tlv) -> tuple[str, _Tlv | None]:
    """AlgorithmIdentifier ::= SEQUENCE { algorithm OBJECT IDENTIFIER, parameters ANY OPTIONAL }."""
    if outer.tag != _SEQUENCE:
        raise AuthPayloadError(
            outer.offset, "an AlgorithmIdentifier SEQUENCE", f"found tag 0x{outer.tag:02x}"
        )
    fields = outer.children()
    if not 1 <= len(fields) <= 2 or fields[0].tag != _OID:
        raise AuthPayloadError(
            outer.offset,
            "SEQUENCE { OID, parameters OPTIONAL }",
            f"found {len(fields)} fields, the first with tag 0x{fields[0].tag if fields else 0:02x}",
        )
    return _oid_text(fields[0]), fields[1] if len(fields) == 2 else None


def _oid_text(oid: _Tlv) -> str:
    value = oid.value
    if not value or value[-1] & 0x80:
        raise AuthPayloadError(oid.offset, "a complete OBJECT IDENTIFIER", "found a truncated one")
    arcs: list[int] = []
    current = 0
    for i, byte in enumerate(value):
        if current == 0 and byte == 0x80:
            raise AuthPayloadError(
                oid.value_offset + i, "minimal base-128 OID arcs", "found a 0x80 lead byte"
            )
        current = (current << 7) | (byte & 0x7F)
        if not byte & 0x80:
            arcs.append(current)
            current = 0
    first = min(arcs[0] // 40, 2)
    return ".".join(str(a) for a in (first, arcs[0] - 40 * first, *arcs[1:]))


def _parse_integer(tlv: _Tlv) -> int:
    if tlv.tag != _INTEGER or not tlv.value or len(tlv.value) > 4 or tlv.value[0] & 0x80:
        raise AuthPayloadError(
            tlv.offset, "a small non-negative INTEGER", f"found tag 0x{tlv.tag:02x}, {len(tlv.value)} bytes"
        )
    return int.from_bytes(tlv.value, "big")


# --- our own signature: a device tunnel's machine certificate (RFC 7296 §2.15, RFC 7427) ---

# sha256WithRSAEncryption's AlgorithmIdentifier with NULL parameters, as RFC 7427 Appendix A.1 lists it.
_SHA256_RSA_ALGORITHM_IDENTIFIER = bytes.fromhex("300d06092a864886f70d01010b0500")


def initiator_signed_octets(
    sa_init_request: bytes, nonce_r: bytes, sk_pi: bytes, idi_body: bytes, prf: int
) -> bytes:
    """InitiatorSignedOctets = RealMessage1 | NonceRData | prf(SK_pi, IDi') (RFC 7296 §2.15), where IDi' is
    the IDi payload body: ID Type, three reserved octets and the identification data."""
    return sa_init_request + nonce_r + prf_function(prf, sk_pi, idi_body)


def rsa_sign_auth(key: rsa.RSAPrivateKey, method: int, signed_octets: bytes) -> bytes:
    """The AUTH payload's data for `signed_octets`: method 1 (RSA Digital Signature) is PKCS#1 v1.5 with
    SHA-1, the hash every implementation assumes for it; method 14 (RFC 7427) is the ASN.1 length octet, the
    sha256WithRSAEncryption AlgorithmIdentifier and a PKCS#1 v1.5 SHA-256 signature."""
    if method == _RSA_SIGNATURE:
        return key.sign(signed_octets, padding.PKCS1v15(), hashes.SHA1())  # noqa: S303 - RFC 7296 method 1
    if method == _DIGITAL_SIGNATURE:
        signature = key.sign(signed_octets, padding.PKCS1v15(), hashes.SHA256())
        algorithm = _SHA256_RSA_ALGORITHM_IDENTIFIER
        return bytes([len(algorithm)]) + algorithm + signature
    raise ValueError(f"authentication method {method}: we sign with method 1 or 14 only")
