"""ESP and what it carries (esp/): `InboundSa.unprotect` under fixed keys of each transform, on the bytes as
sent or with a recomputed ICV/tag (so that hostile payloads reach the padding and trailer checks), then the
inner IPv4/ICMP/UDP/TCP decoders and the reassembler on whatever decrypted, and RFC 3948 classification of
the raw datagram. The first byte picks the transform and the mode; mode 3 is a protect -> unprotect round
trip of the fuzzed inner packet (it must come back unchanged)."""

from __future__ import annotations

import contextlib
import hmac
import struct

from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from fuzz.harnesses._util import Bytes
from vpndoctor.esp import packets as pk
from vpndoctor.esp.errors import EspDecodeError
from vpndoctor.esp.sa import EspKeys, EspTransform, InboundSa, OutboundSa
from vpndoctor.esp.udpencap import classify
from vpndoctor.ike.constants import EncrId, IntegId

OURS = (EspDecodeError,)
MAX_LEN = 4096

SPI = b"\x11\x22\x33\x44"
TRANSFORMS = (
    EspTransform(EncrId.AES_GCM_16, 128),
    EspTransform(EncrId.AES_GCM_16, 256),
    EspTransform(EncrId.AES_CBC, 128, IntegId.HMAC_SHA1_96),
    EspTransform(EncrId.AES_CBC, 256, IntegId.HMAC_SHA2_256_128),
)
KEYS = tuple(
    EspKeys(bytes(range(1, 1 + t.encr_key_bytes)), bytes(range(9, 9 + t.integ_key_bytes))) for t in TRANSFORMS
)
_HASH = {IntegId.HMAC_SHA1_96: ("sha1", 12), IntegId.HMAC_SHA2_256_128: ("sha256", 16)}


def _resealed(raw: bytes, t: EspTransform, keys: EspKeys) -> bytes:
    """`raw` with SPI | seq | IV kept and the rest made authentic: a valid tag over it (GCM encrypts the
    rest as the plaintext) or a recomputed ICV (CBC)."""
    head = SPI + (raw[4:8].ljust(4, b"\0") if len(raw) >= 8 else b"\0\0\0\1")
    if t.aead:
        iv = raw[8:16].ljust(8, b"\0")
        return head + iv + AESGCM(keys.encr[:-4]).encrypt(keys.encr[-4:] + iv, raw[16:], head)
    name, size = _HASH[t.integ or 0]
    body = head + raw[8:]
    return body + hmac.new(keys.integ, body, name).digest()[:size]


def _inner(data: bytes) -> None:
    with contextlib.suppress(EspDecodeError):
        packet = pk.Reassembler().add(pk.decode_ipv4(data))
        if packet is None:
            return
        if packet.proto == pk.PROTO_ICMP:
            icmp = pk.decode_icmp(packet.payload, packet.header_bytes)
            pk.decode_ipv4(icmp.data, verify=False, allow_truncated=True)
        elif packet.proto == pk.PROTO_UDP:
            pk.decode_udp(packet)
        elif packet.proto == pk.PROTO_TCP:
            pk.decode_tcp(packet)


def one_input(data: bytes) -> None:
    if not data:
        return
    r = Bytes(data)
    choice = r.u8()
    t, keys = TRANSFORMS[choice % len(TRANSFORMS)], KEYS[choice % len(TRANSFORMS)]
    mode = (choice >> 4) % 4
    raw = r.rest()
    if mode == 3:
        out = OutboundSa(SPI, t, keys, lambda n: bytes(n))
        got = InboundSa(SPI, t, keys).unprotect(out.protect(raw, 4))
        assert (got.payload, got.next_header) == (raw, 4)
        return
    with contextlib.suppress(EspDecodeError):
        classify(raw)
    if mode == 2:
        raw = _resealed(raw, t, keys)
    sa = InboundSa(SPI, t, keys)
    try:
        got = sa.unprotect(raw)
    except EspDecodeError:
        _inner(raw)
        return
    _inner(got.payload)
    with contextlib.suppress(EspDecodeError):
        sa.unprotect(raw)  # the same packet again is a replay
        raise AssertionError("a replayed packet was accepted")
    struct.pack("!I", got.seq)
