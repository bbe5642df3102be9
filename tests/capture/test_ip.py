"""Link layers, IPv4/IPv6 header chains and UDP classification, on synthetic frames read back through the
reader (so the writer, reader and IP layer agree end to end)."""

from __future__ import annotations

import io
import struct

import pytest

from tests.capture import writer as w
from vpndoctor.capture.ip import Packet, packet_from_frame, parse_ip
from vpndoctor.capture.reader import CaptureReader, Frame
from vpndoctor.capture.udp import Kind, classify

IKE_V2 = bytes(8) + bytes(8) + bytes([33, 0x20, 34, 0x08]) + bytes(8)
IKE_V1 = bytes(8) + bytes(8) + bytes([1, 0x10, 2, 0]) + bytes(8)
V4 = w.ipv4(w.udp(500, 500, IKE_V2))
V6 = w.ipv6(w.udp(4500, 4500, b"\0\0\0\0" + IKE_V2))


def one(link_type: int, data: bytes) -> Packet:
    pkt = packet_from_frame(Frame(1.5, link_type, data, len(data)))
    assert pkt is not None
    return pkt


@pytest.mark.parametrize(
    ("link_type", "frame"),
    [
        (1, w.ether(V4)),
        (1, w.ether(V4, vlans=(10,))),
        (1, w.ether(V4, vlans=(10, 20))),  # 802.1ad outer + 802.1Q inner
        (113, w.sll(V4)),
        (276, w.sll2(V4)),
        (101, V4),
        (12, V4),
        (14, V4),
        (228, V4),
        (0, w.null(V4, 2, "<")),
        (0, w.null(V4, 2, ">")),
        (108, w.null(V4, 2, ">")),
    ],
    ids=[
        "eth",
        "vlan",
        "qinq",
        "sll",
        "sll2",
        "raw101",
        "raw12",
        "raw14",
        "ipv4",
        "null-le",
        "null-be",
        "loop",
    ],
)
def test_link_layers_ipv4(link_type: int, frame: bytes) -> None:
    pkt = one(link_type, frame)
    assert (pkt.version, pkt.src_str, pkt.dst_str, pkt.proto) == (4, "10.0.0.1", "10.0.0.2", 17)
    assert (pkt.sport, pkt.dport, pkt.udp_payload) == (500, 500, IKE_V2)
    assert pkt.ts == 1.5 and not pkt.ip_fragmented and pkt.fragments == 1


@pytest.mark.parametrize(
    ("link_type", "frame"),
    [(1, w.ether(V6, vlans=(7,))), (113, w.sll(V6)), (276, w.sll2(V6)), (229, V6), (101, V6)]
    + [(0, w.null(V6, fam)) for fam in (24, 28, 30)]
    + [(108, w.null(V6, 30, ">"))],
)
def test_link_layers_ipv6(link_type: int, frame: bytes) -> None:
    pkt = one(link_type, frame)
    assert (pkt.version, pkt.src_str, pkt.dst_str) == (6, "::1", "::2")
    assert (pkt.sport, pkt.dport) == (4500, 4500)


def test_non_ip_frames_are_none() -> None:
    arp = b"\xff" * 6 + b"\x02" * 6 + b"\x08\x06" + bytes(28)
    assert packet_from_frame(Frame(0, 1, arp, len(arp))) is None
    assert packet_from_frame(Frame(0, 0, w.null(V4, 7), 50)) is None
    assert packet_from_frame(Frame(0, 147, V4, len(V4))) is None


def test_ipv4_options_padding_and_snaplen() -> None:
    data = w.ipv4(w.udp(1, 2, b"hello"), options=b"\x01\x01\x01\x00")
    pkt = parse_ip(data + b"\0" * 6)  # Ethernet padding is not payload
    assert pkt is not None and pkt.udp_payload == b"hello"
    cut = parse_ip(data[:32])  # snapped: what is there is returned
    assert cut is not None and cut.sport == 1 and cut.udp_payload == b""


def test_ipv6_extension_headers_are_walked() -> None:
    body = w.ext(60, 1) + w.ext(43) + w.ext(51) + bytes([17, 1]) + bytes(10) + w.udp(5, 6, b"x")
    # hop-by-hop (16 bytes) -> destination options (8) -> routing (8) -> AH (12: 4-octet units) -> UDP
    data = w.ipv6(body, next_header=0)
    pkt = parse_ip(data)
    assert pkt is not None and (pkt.proto, pkt.sport, pkt.dport, pkt.udp_payload) == (17, 5, 6, b"x")


def test_ipv6_fragment_header() -> None:
    first = w.ipv6(w.frag6(17, 0, True, 0xABCDEF) + w.udp(500, 500, b"A" * 40)[:24], next_header=44)
    later = w.ipv6(w.frag6(17, 24, False, 0xABCDEF) + b"B" * 24, next_header=44)
    p1, p2 = parse_ip(first), parse_ip(later)
    assert p1 is not None and p2 is not None
    assert (p1.ip_fragmented, p1.more_fragments, p1.frag_offset, p1.ident, p1.sport) == (
        True,
        True,
        0,
        0xABCDEF,
        500,
    )
    assert (p2.ip_fragmented, p2.more_fragments, p2.frag_offset, p2.sport, p2.payload) == (
        True, False, 24, None, b"B" * 24,
    )  # fmt: skip


@pytest.mark.parametrize("cut", range(0, 60))
def test_short_headers_never_raise(cut: int) -> None:
    for data in (
        w.ipv4(w.udp(1, 2, b"abc"), options=bytes(8)),
        w.ipv6(w.ext(17) + w.udp(1, 2, b"abc"), next_header=0),
    ):
        parse_ip(data[:cut])
        for link in (0, 1, 108, 113, 276):
            packet_from_frame(Frame(0, link, w.sll(data)[:cut], cut))


def test_ipv4_bad_ihl_and_total_length() -> None:
    assert parse_ip(b"\x44" + V4[1:]) is None  # IHL 16 bytes
    assert parse_ip(V4[:2] + struct.pack("!H", 10) + V4[4:]) is None  # total < IHL


def test_pcapng_with_mixed_link_types_end_to_end() -> None:
    data = (
        w.shb() + w.idb(113) + w.idb(276, tsresol=9) + w.idb(0)
        + w.epb(0, 1, w.sll(V4)) + w.epb(1, 2, w.sll2(V6)) + w.epb(2, 3, w.null(V4, 2))
    )  # fmt: skip
    pkts = [packet_from_frame(f) for f in CaptureReader(io.BytesIO(data)).frames()]
    assert [(p.version, p.dport) for p in pkts if p] == [(4, 500), (6, 4500), (4, 500)]


# -- UDP classification -------------------------------------------------------------------------------------


def _classify(payload: bytes, port: int = 4500, proto: int = 17) -> tuple[Kind, int | None, int | None]:
    pkt = parse_ip(w.ipv4(payload, proto=50)) if proto == 50 else parse_ip(w.ipv4(w.udp(port, port, payload)))
    assert pkt is not None
    c = classify(pkt)
    return c.kind, c.ike_major, c.spi


def test_classify() -> None:
    assert _classify(IKE_V2, 500) == (Kind.IKE, 2, None)
    assert _classify(IKE_V1, 500) == (Kind.IKE, 1, None)
    assert _classify(b"\0\0\0\0" + IKE_V2) == (Kind.IKE, 2, None)
    assert _classify(b"\xff") == (Kind.NAT_KEEPALIVE, None, None)
    assert _classify(struct.pack("!II", 0x1234, 7) + bytes(20)) == (Kind.ESP, None, 0x1234)
    assert _classify(struct.pack("!II", 0x99, 1) + bytes(20), proto=50) == (Kind.ESP, None, 0x99)
    assert _classify(b"dns?", 53) == (Kind.OTHER, None, None)
    assert _classify(b"\1\2", 4500) == (Kind.OTHER, None, None)
    assert _classify(b"short", 500) == (Kind.IKE, None, None)
