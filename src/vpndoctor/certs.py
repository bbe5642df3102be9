"""Certificate helpers shared by probes and checks (pure: no I/O)."""

from __future__ import annotations

from cryptography import x509
from cryptography.exceptions import InvalidSignature


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
