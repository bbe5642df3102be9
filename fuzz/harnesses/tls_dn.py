"""DER distinguished names (tls/dn.py), as CertificateRequests list them: parsed, rendered per RFC 4514."""

from __future__ import annotations

from vpndoctor.tls.dn import name_to_rfc4514, parse_name, render_rfc4514
from vpndoctor.tls.errors import TlsDecodeError

OURS = (TlsDecodeError,)


def one_input(data: bytes) -> None:
    try:
        rdns = parse_name(data, 7)
    except TlsDecodeError:
        return
    text = render_rfc4514(rdns)
    assert name_to_rfc4514(data) == text
