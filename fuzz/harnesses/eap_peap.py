"""EAP-TLS/PEAP Type-Data and PEAP's tunnelled phase 2 (eap/tlslayer.py `TlsFramer.parse`, eap/peap.py
`PeapMethod._phase2`: header-less and full inner packets, the Extensions TLVs with Result and Crypto-Binding,
the inner EAP-MSCHAPv2 decoder): the input, cut in chunks, is fed as one conversation to a fresh framer and
to a PEAP method whose tunnel is taken as established (the TLS records themselves are OpenSSL's)."""

from __future__ import annotations

from functools import cache

from fuzz.harnesses._util import chunks
from vpndoctor.eap.errors import EapError
from vpndoctor.eap.mschapv2 import MsChapV2Method
from vpndoctor.eap.peap import PeapMethod
from vpndoctor.eap.tlslayer import TlsClient, TlsFramer

OURS = (EapError,)
MAX_LEN = 8192


@cache
def _tls() -> TlsClient:
    """One TLS client for every input: phase 2 never touches it (anchors: a throwaway CA)."""
    from datetime import UTC, datetime

    from vpndoctor.lab.pki import make_lab_pki

    ca = make_lab_pki("fuzz.example", now=datetime(2026, 1, 1, tzinfo=UTC), key_bits=2048).ca_cert_pem
    return TlsClient(anchors_pem=ca)


def one_input(data: bytes) -> None:
    pieces = chunks(data)
    framer = TlsFramer()
    for piece in pieces:
        try:
            framer.parse(piece)
        except EapError:
            framer = TlsFramer()
    method = PeapMethod(_tls(), "user", MsChapV2Method("user", "password", rng=lambda n: bytes(n)))
    method._tk, method._base_msk = bytes(60), bytes(64)  # as after the handshake
    for piece in pieces:
        try:
            method._phase2(1, piece)
        except EapError:
            break
