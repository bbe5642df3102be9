"""SK/SKF protection (ike/sk.py): `unprotect` and `decrypt_unverified` on a raw message under fixed keys of
every suite, with the ICV as sent or recomputed (so that CBC messages reach decryption and the padding
check), and `protect` -> `unprotect` round trips of fuzzed plaintext. The first byte picks suite and mode.
"""

from __future__ import annotations

import contextlib

from fuzz.harnesses._ike import KEYS, SUITES, with_valid_icv
from fuzz.harnesses._util import Bytes
from vpndoctor.ike.errors import MalformedMessage
from vpndoctor.ike.keys import CipherSuite, DirectionKeys
from vpndoctor.ike.message import Header, decode_payload_chain
from vpndoctor.ike.sk import decrypt_unverified, protect, protect_fragment, unprotect

OURS = (MalformedMessage,)

_SPI_I = bytes.fromhex("0001020304050607")
_SPI_R = bytes.fromhex("c02e7a3031a03188")


def _iv(n: int) -> bytes:
    return bytes(range(n))


def one_input(data: bytes) -> None:
    if not data:
        return
    r = Bytes(data)
    choice = r.u8()
    suite, keys = SUITES[choice % len(SUITES)], KEYS[choice % len(SUITES)]
    mode = (choice >> 4) % 4
    if mode == 3:
        _round_trip(r, suite, keys)
        return
    raw = r.rest()
    if mode == 2:
        raw = with_valid_icv(raw, suite, keys)
    try:
        if mode == 1:
            first, plain = decrypt_unverified(raw, keys, suite)
        else:
            first, plain = unprotect(raw, keys, suite)
    except MalformedMessage:
        return
    with contextlib.suppress(MalformedMessage):
        decode_payload_chain(first, plain)


def _round_trip(r: Bytes, suite: CipherSuite, keys: DirectionKeys) -> None:
    header = Header(spi_i=_SPI_I, spi_r=_SPI_R, exchange=r.u8(), flags=r.u8(), message_id=r.u32())
    first_inner = r.u8()
    fragment = r.u8()
    plaintext = r.rest()[:60000]
    inner = first_inner
    if fragment & 1:
        total = max(1, r.data[-1] if r.data else 1)
        number = 1 + (fragment >> 1) % total
        inner = first_inner if number == 1 else 0
        message = protect_fragment(header, inner, number, total, plaintext, keys, suite, _iv)
    else:
        message = protect(header, inner, plaintext, keys, suite, _iv)
    got_first, got_plain = unprotect(message, keys, suite)
    assert got_plain == plaintext, "unprotect(protect(p)) != p"
    assert got_first == inner, "first inner payload type changed"
