"""Certificate helpers shared by probes and checks (pure: no I/O)."""

from __future__ import annotations

from cryptography import x509
from cryptography.exceptions import InvalidSignature
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


def issued_by_anchor(
    cert: x509.Certificate, intermediates: list[x509.Certificate], anchors: list[x509.Certificate]
) -> bool:
    """Signature chain up to one of the anchors (names and signatures; validity is reported separately)."""
    pool = [*anchors, *intermediates]
    current = cert
    for _ in range(8):
        for issuer in pool:
            if issuer.subject != current.issuer:
                continue
            try:
                current.verify_directly_issued_by(issuer)
            except (ValueError, TypeError, InvalidSignature):
                continue
            if issuer in anchors:
                return True
            current = issuer
            break
        else:
            return False
    return False
