"""A TLS 1.3 server's encrypted first flight (tls/tls13.py `read_tls13_flight`, through tls/audit.py
`interpret_answer`): the fuzzer's bytes are the TLSInnerPlaintexts (EncryptedExtensions, CertificateRequest
with its CA names, Certificate, CertificateVerify, Finished, alerts, padding), encrypted with the keys the
handshake derives, so that decryption succeeds and the parsers behind it see them. The first byte picks the
suite and whether a ChangeCipherSpec comes first; then length-prefixed plaintexts."""

from __future__ import annotations

from fuzz.harnesses._tls import SUITES, TLS13, tls13_flight
from fuzz.harnesses._util import frames
from vpndoctor.tls.audit import answer_complete, interpret_answer
from vpndoctor.tls.errors import TlsDecodeError

OURS = (TlsDecodeError,)
MAX_LEN = 20000


def one_input(data: bytes) -> None:
    if not data:
        return
    suite = SUITES[data[0] % len(SUITES)]
    plaintexts = [p[: 2**14 + 256] for p in frames(data[1:])]
    flight = tls13_flight(suite, plaintexts, ccs=bool(data[0] & 0x80))
    outcome, reason, _detail = interpret_answer(TLS13, flight, "closed")
    assert outcome is not None and reason is None, f"{reason}: {_detail}"
    answer_complete(TLS13, flight)
