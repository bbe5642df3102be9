"""Trust anchors for the certificate checks: the user's --ca files, else the system's CA bundle.

One place for every command (ike, diagnose, tls, sstp, iphttps), light to import: it needs only
`cryptography`'s X.509 loader, not the probes.
"""

from __future__ import annotations

import re
import warnings
from pathlib import Path

from cryptography import x509

from vpndoctor.errors import UsageError

__all__ = ["SYSTEM_BUNDLES", "load_trust_anchors", "system_bundle", "trust_anchors"]

SYSTEM_BUNDLES = (
    "/etc/ssl/certs/ca-certificates.crt",
    "/etc/pki/tls/certs/ca-bundle.crt",
    "/etc/ssl/cert.pem",
)


def load_trust_anchors(paths: list[str]) -> list[x509.Certificate]:
    """--ca files, PEM (one or more certificates) or DER; a file that can't be read or parsed is the user's
    error (UsageError: one line, exit 2)."""
    anchors: list[x509.Certificate] = []
    for path in paths:
        try:
            data = Path(path).read_bytes()
        except OSError as exc:
            raise UsageError(f"cannot read CA file {path}: {exc.strerror}") from None
        try:
            certs = (
                x509.load_pem_x509_certificates(data)
                if b"-----BEGIN" in data
                else [x509.load_der_x509_certificate(data)]
            )
        except ValueError:
            raise UsageError(f"{path}: not a PEM or DER certificate") from None
        anchors.extend(certs)
    return anchors


def system_bundle(path: Path) -> list[x509.Certificate]:
    """One certificate at a time: a system store holds a few that `cryptography` warns about today (negative
    serial numbers) and will refuse tomorrow; one bad entry must not cost every anchor."""
    try:
        text = path.read_bytes()
    except OSError:
        return []
    anchors = []
    for block in re.findall(rb"-----BEGIN CERTIFICATE-----.+?-----END CERTIFICATE-----", text, re.S):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            try:
                anchors.append(x509.load_pem_x509_certificate(block))
            except ValueError:
                continue
    return anchors


def trust_anchors(ca_files: list[str]) -> tuple[list[x509.Certificate], str]:
    """--ca files when given, else the system's CA bundle when there is one; and where they came from."""
    if ca_files:
        return load_trust_anchors(ca_files), "--ca"
    for path in SYSTEM_BUNDLES:
        if Path(path).exists():
            return system_bundle(Path(path)), f"the system store ({path})"
    return [], "the system store (none found)"
