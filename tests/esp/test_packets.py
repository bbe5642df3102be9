"""Inner IPv4/ICMP/UDP/TCP build and parse: checksums (RFC 1071 example), DF, an ICMP "fragmentation
needed" with its next-hop MTU (RFC 1191), TCP's MSS option, reassembly of a fragmented answer, and the
RFC 3948 classification of what arrives on the NAT-T port."""

from __future__ import annotations

import pytest

from vpndoctor.esp import packets as p
from vpndoctor.esp.errors import EspDecodeError
from vpndoctor.esp.udpencap import NAT_KEEPALIVE, classify


def test_rfc1071_checksum_example() -> None:
    # RFC 1071 §3: the sum of 0001 f203 f4f5 f6f7 is ddf2, so the checksum is its complement 220d
    assert p.checksum(bytes.fromhex("0001f203f4f5f6f7")) == 0x220D


def test_ipv4_icmp_echo_round_trip_with_df() -> None:
    icmp = p.echo_request(0x1234, 7, b"abc" * 10)
    packet = p.Ipv4("203.0.113.130", "192.0.2.100", p.PROTO_ICMP, icmp.encode(), ident=9, df=True).encode()
    assert packet[6] & 0x40  # DF
    ip = p.decode_ipv4(packet)
    assert (ip.src, ip.dst, ip.df, ip.ident, ip.total_bytes) == ("203.0.113.130", "192.0.2.100", True, 9, 58)
    got = p.decode_icmp(ip.payload)
    assert (got.type, got.echo_id, got.echo_seq, got.data) == (8, 0x1234, 7, b"abc" * 10)


def test_frag_needed_carries_the_next_hop_mtu() -> None:
    quoted = p.Ipv4("203.0.113.130", "192.0.2.100", p.PROTO_ICMP, bytes(1480), df=True).encode()[:28]
    err = p.Icmp(p.ICMP_UNREACHABLE, p.ICMP_FRAG_NEEDED, 1400, quoted).encode()
    got = p.decode_icmp(err)
    assert got.next_hop_mtu == 1400
    inner = p.decode_ipv4(got.data, verify=True, allow_truncated=True)
    assert inner.dst == "192.0.2.100" and inner.df


def test_udp_and_tcp_checksums_verify() -> None:
    udp = p.Udp(5353, 53, b"query").encode("10.0.0.1", "10.0.0.2")
    ip = p.decode_ipv4(p.Ipv4("10.0.0.1", "10.0.0.2", p.PROTO_UDP, udp).encode())
    assert p.decode_udp(ip).data == b"query"
    syn = p.Tcp(40000, 443, 1000, 0, p.TCP_SYN, mss=1360).encode("10.0.0.1", "10.0.0.2")
    ip = p.decode_ipv4(p.Ipv4("10.0.0.1", "10.0.0.2", p.PROTO_TCP, syn).encode())
    tcp = p.decode_tcp(ip)
    assert (tcp.flags, tcp.mss, tcp.seq, tcp.flag_names()) == (p.TCP_SYN, 1360, 1000, "SYN")
    bad = bytearray(ip.payload)
    bad[4] ^= 0xFF
    with pytest.raises(EspDecodeError, match="TCP checksum"):
        p.decode_tcp(p.Ipv4("10.0.0.1", "10.0.0.2", p.PROTO_TCP, bytes(bad)))


def test_reassembly_of_a_fragmented_reply() -> None:
    payload = bytes(range(256)) * 6
    frags = [
        p.Ipv4("192.0.2.100", "203.0.113.130", p.PROTO_ICMP, payload[:800], ident=5, more_fragments=True),
        p.Ipv4("192.0.2.100", "203.0.113.130", p.PROTO_ICMP, payload[800:], ident=5, frag_offset=800),
    ]
    r = p.Reassembler()
    assert r.add(frags[1]) is None
    whole = r.add(frags[0])
    assert whole is not None and whole.payload == payload and not r.pending
    # overlapping fragments drop the datagram
    r.add(p.Ipv4("a" and "192.0.2.1", "192.0.2.2", 1, bytes(16), ident=6, more_fragments=True))
    assert r.add(p.Ipv4("192.0.2.1", "192.0.2.2", 1, bytes(16), ident=6, frag_offset=8)) is None
    assert not r.pending


def test_reassembly_is_bounded() -> None:
    r = p.Reassembler()
    for i in range(100):
        r.add(p.Ipv4("192.0.2.1", "192.0.2.2", 1, bytes(8), ident=i, more_fragments=True))
    assert len(r.pending) <= p.MAX_PENDING_DATAGRAMS


def test_natt_classification_rfc3948() -> None:
    assert classify(NAT_KEEPALIVE) == "keepalive"
    assert classify(b"\x00\x00\x00\x00" + bytes(28)) == "ike"
    assert classify(b"\x01\x02\x03\x04" + bytes(20)) == "esp"
    for bad in (b"", b"\x01\x02", b"\x00\x00\x00\x00\x01"):
        with pytest.raises(EspDecodeError):
            classify(bad)


@pytest.mark.parametrize(
    "data",
    [b"", b"\x45" + bytes(10), b"\x65" + bytes(19), b"\x4f" + bytes(19), b"\x45\x00\xff\xff" + bytes(16)],
)
def test_bad_ipv4_headers(data: bytes) -> None:
    with pytest.raises(EspDecodeError):
        p.decode_ipv4(data)
