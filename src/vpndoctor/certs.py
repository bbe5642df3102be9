"""Certificate helpers shared by probes and checks (pure: no I/O): SAN names and UPNs, EKU and key usage by
name, the signature chain from a leaf towards a trust anchor, and what a certificate file held
(`CertificateFile`, read by `vpndoctor.certfiles`, judged by `checks.cert`)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from cryptography import x509
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.x509.oid import ExtendedKeyUsageOID

EKU_NAMES = {
    ExtendedKeyUsageOID.SERVER_AUTH.dotted_string: "serverAuth",
    ExtendedKeyUsageOID.CLIENT_AUTH.dotted_string: "clientAuth",
    "1.3.6.1.5.5.8.2.2": "ipsecIKEIntermediate",
    "1.3.6.1.5.5.7.3.17": "ipsecIKE",
}


def san_names(cert: x509.Certificate) -> tuple[list[str], list[str]]:
    """The SAN's DNS names and IP addresses; both empty without a (parsable) SAN."""
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except (x509.ExtensionNotFound, ValueError):
        return [], []
    return (
        [str(n) for n in san.get_values_for_type(x509.DNSName)],
        [str(n) for n in san.get_values_for_type(x509.IPAddress)],
    )


def eku_names(cert: x509.Certificate) -> list[str]:
    """Extended key usages by name (serverAuth, ipsecIKEIntermediate, ...; others as dotted OIDs)."""
    try:
        usages = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    except (x509.ExtensionNotFound, ValueError):
        return []
    return [EKU_NAMES.get(o.dotted_string, o.dotted_string) for o in usages]


# Microsoft's user principal name in a SAN otherName (what Windows EAP-TLS and NPS map to the account).
UPN_OID = "1.3.6.1.4.1.311.20.2.3"

# RFC 5280 4.2.1.3 names, in the extension's bit order.
KEY_USAGE_NAMES = (
    ("digital_signature", "digitalSignature"),
    ("content_commitment", "contentCommitment"),
    ("key_encipherment", "keyEncipherment"),
    ("data_encipherment", "dataEncipherment"),
    ("key_agreement", "keyAgreement"),
    ("key_cert_sign", "keyCertSign"),
    ("crl_sign", "cRLSign"),
)

MAX_CHAIN_LENGTH = 8


def _der_utf8(value: bytes) -> str | None:
    """The text of one DER string (UTF8String, or the PrintableString/IA5String some CAs write), else None."""
    if len(value) < 2 or value[0] not in (0x0C, 0x13, 0x16):
        return None
    length, offset = value[1], 2
    if length & 0x80:
        size = length & 0x7F
        if size == 0 or size > 2 or len(value) < 2 + size:
            return None
        length, offset = int.from_bytes(value[2 : 2 + size], "big"), 2 + size
    if offset + length != len(value):
        return None
    try:
        return value[offset:].decode("utf-8")
    except UnicodeDecodeError:
        return None


def upn_names(cert: x509.Certificate) -> list[str]:
    """The UPNs (SAN otherName 1.3.6.1.4.1.311.20.2.3); one that does not decode as a string is left out."""
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except (x509.ExtensionNotFound, ValueError):
        return []
    out = []
    for other in san.get_values_for_type(x509.OtherName):
        if other.type_id.dotted_string == UPN_OID:
            text = _der_utf8(other.value)
            if text is not None:
                out.append(text)
    return out


def key_usage_names(cert: x509.Certificate) -> list[str] | None:
    """The key usage bits set (digitalSignature, keyEncipherment, ...); None without the extension."""
    try:
        usage = cert.extensions.get_extension_for_class(x509.KeyUsage).value
    except (x509.ExtensionNotFound, ValueError):
        return None
    names = [name for attr, name in KEY_USAGE_NAMES if getattr(usage, attr)]
    if usage.key_agreement:  # encipher_only/decipher_only are defined (and readable) only with keyAgreement
        names += [
            n
            for a, n in (("encipher_only", "encipherOnly"), ("decipher_only", "decipherOnly"))
            if getattr(usage, a)
        ]
    return names


def is_ca(cert: x509.Certificate) -> bool:
    """basicConstraints cA=TRUE: a CA certificate (chain material), not an end entity."""
    try:
        return bool(cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca)
    except (x509.ExtensionNotFound, ValueError):
        return False


@dataclass(frozen=True)
class Chain:
    """The signature chain from a leaf towards the anchors. `path` is leaf first, up to the last certificate
    found (the anchor when `anchored`). Otherwise it broke: `missing_issuer` names the issuer (RFC 4514)
    whose certificate is not in the pool, or it is None because the path ended in a self-signed root that is
    not an anchor (or went on past MAX_CHAIN_LENGTH). `unverified`: the subjects whose issuer was matched by
    name only, their signature algorithm being one `cryptography` does not verify (SHA-1, MD5)."""

    path: tuple[x509.Certificate, ...]
    anchored: bool
    missing_issuer: str | None
    unverified: tuple[str, ...] = ()


def _signed_by(cert: x509.Certificate, issuer: x509.Certificate) -> bool | None:
    """True: `issuer`'s key verifies the signature; False: it does not; None: it cannot be checked (an
    algorithm cryptography refuses to verify, such as sha1WithRSAEncryption)."""
    try:
        cert.verify_directly_issued_by(issuer)
    except InvalidSignature:
        return False
    except TypeError:  # a key type that cannot have signed it
        return False
    except (ValueError, UnsupportedAlgorithm):
        return None
    return True


def build_chain(
    cert: x509.Certificate,
    intermediates: list[x509.Certificate],
    anchors: list[x509.Certificate],
    *,
    by_name_when_unverifiable: bool = False,
) -> Chain:
    """Names and signatures up from `cert` through `intermediates` to one of the `anchors` (validity is
    judged separately). An anchor may be a root or an intermediate the user trusts. With
    `by_name_when_unverifiable`, an issuer whose signature cannot be checked at all is taken by its name
    (and listed in `unverified`); otherwise, as for trust decisions, it is not an issuer."""
    pool = [*anchors, *intermediates]
    path = [cert]
    unverified: list[str] = []
    current = cert
    for _ in range(MAX_CHAIN_LENGTH):
        named = [c for c in pool if c.subject == current.issuer]
        checks = [(c, _signed_by(current, c)) for c in named]
        issuer = next((c for c, ok in checks if ok), None)
        if issuer is None and by_name_when_unverifiable:
            issuer = next((c for c, ok in checks if ok is None), None)
            if issuer is not None:
                unverified.append(current.subject.rfc4514_string())
        if issuer is None:
            self_signed = current.subject == current.issuer and _signed_by(current, current) is not False
            missing = None if self_signed else current.issuer.rfc4514_string()
            return Chain(tuple(path), False, missing, tuple(unverified))
        if issuer in anchors:
            chain = tuple(path) if issuer == current else (*path, issuer)
            return Chain(chain, True, None, tuple(unverified))
        if issuer in path:  # a self-signed root that is no anchor, or a loop of cross-signatures
            return Chain(tuple(path), False, None, tuple(unverified))
        path.append(issuer)
        current = issuer
    return Chain(tuple(path), False, None, tuple(unverified))


def issued_by_anchor(
    cert: x509.Certificate, intermediates: list[x509.Certificate], anchors: list[x509.Certificate]
) -> bool:
    """Signature chain up to one of the anchors (names and signatures; validity is reported separately)."""
    return build_chain(cert, intermediates, anchors).anchored


CertificateFormat = Literal["pem", "der", "pkcs12", "pkcs7"]


@dataclass(frozen=True)
class CertificateFile:
    """What one certificate file held: its certificates in file order, and whether a private key came with
    them (PEM key block, or the PKCS#12 key bag). The key itself is never kept."""

    path: str
    format: CertificateFormat
    certificates: tuple[x509.Certificate, ...]
    private_key: bool
