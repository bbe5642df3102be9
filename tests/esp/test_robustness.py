"""A hostile gateway (or path): whatever bytes it sends as ESP on the NAT-T port, as the inner packet of an
authentic ESP packet, or as an inner header, decoding raises only EspDecodeError - never IndexError,
struct.error, ValueError or cryptography's InvalidTag - and never accepts a forgery."""

from __future__ import annotations

import contextlib

from hypothesis import given, settings
from hypothesis import strategies as st

from vpndoctor.esp import packets as p
from vpndoctor.esp.errors import EspDecodeError
from vpndoctor.esp.sa import EspKeys, EspTransform, InboundSa, OutboundSa
from vpndoctor.esp.udpencap import classify
from vpndoctor.ike.constants import EncrId, IntegId

TRANSFORMS = [
    EspTransform(EncrId.AES_GCM_16, 256),
    EspTransform(EncrId.AES_CBC, 128, IntegId.HMAC_SHA1_96),
    EspTransform(EncrId.AES_CBC, 256, IntegId.HMAC_SHA2_256_128),
]
SPI = b"\x11\x22\x33\x44"


def sa(t: EspTransform) -> tuple[OutboundSa, InboundSa]:
    keys = EspKeys(b"\x01" * t.encr_key_bytes, b"\x02" * t.integ_key_bytes)
    return OutboundSa(SPI, t, keys, lambda n: b"\x03" * n), InboundSa(SPI, t, keys)


@settings(max_examples=300, deadline=None)
@given(st.sampled_from(TRANSFORMS), st.binary(max_size=200))
def test_random_esp_is_refused_cleanly(t: EspTransform, tail: bytes) -> None:
    _, into = sa(t)
    for data in (tail, SPI + tail):
        try:
            into.unprotect(data)
        except EspDecodeError:
            pass
        else:  # pragma: no cover - a forgery accepted
            raise AssertionError("random bytes passed the ICV")


@settings(max_examples=300, deadline=None)
@given(st.sampled_from(TRANSFORMS), st.binary(min_size=0, max_size=64), st.data())
def test_truncated_and_flipped_packets(t: EspTransform, inner: bytes, data: st.DataObject) -> None:
    out, into = sa(t)
    packet = out.protect(inner)
    cut = data.draw(st.integers(0, len(packet) - 1))
    flip = data.draw(st.integers(0, len(packet) - 1))
    for bad in (packet[:cut], packet[:flip] + bytes([packet[flip] ^ 0x80]) + packet[flip + 1 :]):
        try:
            into.unprotect(bad)
        except EspDecodeError:
            continue
        raise AssertionError("a damaged packet was accepted")  # pragma: no cover
    assert into.unprotect(packet).payload == inner


@settings(max_examples=500, deadline=None)
@given(st.binary(max_size=120))
def test_inner_decoders_raise_only_our_error(data: bytes) -> None:
    for decode in (
        lambda: p.decode_ipv4(data),
        lambda: p.decode_ipv4(data, verify=False, allow_truncated=True),
        lambda: p.decode_icmp(data),
        lambda: p.decode_udp(p.decode_ipv4(data, verify=False)),
        lambda: p.decode_tcp(p.decode_ipv4(data, verify=False), verify=False),
        lambda: classify(data),
    ):
        with contextlib.suppress(EspDecodeError):
            decode()


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 8191), st.booleans(), st.binary(max_size=64)), max_size=20))
def test_reassembler_survives_any_fragment_soup(frags: list[tuple[int, bool, bytes]]) -> None:
    r = p.Reassembler()
    for offset, more, payload in frags:
        r.add(
            p.Ipv4("192.0.2.1", "192.0.2.2", 1, payload, ident=1, more_fragments=more, frag_offset=offset * 8)
        )
    assert len(r.pending) <= p.MAX_PENDING_DATAGRAMS
