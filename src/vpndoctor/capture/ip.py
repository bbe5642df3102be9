"""From a captured frame to an IP packet: strip the link layer (Ethernet with VLAN tags, Linux cooked SLL and
SLL2, raw IP, BSD NULL/LOOP), then the IPv4 header or the IPv6 header chain, then the UDP header.

Hand-written rather than scapy/dpkt for speed: precompiled struct reads and slices, one small slotted object
per packet instead of a tree of layer objects, addresses kept packed (text only when asked). A header that
cannot fit gives None, never an exception; a payload cut short by snaplen is returned as far as it goes.
"""

from __future__ import annotations

import socket
import struct
from dataclasses import dataclass

from vpndoctor.capture.reader import Frame

__all__ = [
    "PROTO_ESP",
    "PROTO_TCP",
    "PROTO_UDP",
    "Packet",
    "ip_from_link",
    "packet_from_frame",
    "parse_ip",
    "parse_l4",
]

PROTO_TCP = 6
PROTO_UDP = 17
PROTO_ESP = 50
PROTO_AH = 51
_IPV6_EXT = {0, 43, 60}  # hop-by-hop, routing, destination options: (next, len in 8-octet units - 1)
_IPV6_FRAG = 44
_IPV6_NONE = 59

_ETH_IPV4 = 0x0800
_ETH_IPV6 = 0x86DD
_ETH_VLAN = {0x8100, 0x88A8, 0x9100}

LINK_NULL = 0
LINK_ETHERNET = 1
LINK_RAW_BSD = 12  # DLT_RAW on most BSDs
LINK_RAW_OPENBSD = 14  # DLT_RAW on OpenBSD
LINK_RAW = 101
LINK_LOOP = 108
LINK_SLL = 113
LINK_IPV4 = 228
LINK_IPV6 = 229
LINK_SLL2 = 276

# BSD address-family values for IPv6 differ per platform (NetBSD/OpenBSD 24, FreeBSD 28, Darwin 30).
_AF_INET = 2
_AF_INET6 = {24, 28, 30, 10}

_U16 = struct.Struct("!H")
_UDP = struct.Struct("!HH")


@dataclass(slots=True)
class Packet:
    """One IP packet (or one reassembled datagram). `payload` is the bytes after the IP header chain; for a
    UDP packet (unfragmented, first fragment or reassembled) `sport`/`dport`/`udp_payload` are set."""

    ts: float
    version: int
    src: bytes
    dst: bytes
    proto: int
    payload: bytes
    original_length: int
    ident: int = 0
    frag_offset: int = 0  # bytes
    more_fragments: bool = False
    ip_fragmented: bool = False
    fragments: int = 1
    sport: int | None = None
    dport: int | None = None
    udp_payload: bytes | None = None
    declared_length: int = -1  # what the IP header says `payload` holds (-1: as long as it is)

    @property
    def is_fragment(self) -> bool:
        """A piece of a datagram still to be reassembled."""
        return self.more_fragments or self.frag_offset > 0

    @property
    def src_str(self) -> str:
        return _ntop(self.src)

    @property
    def dst_str(self) -> str:
        return _ntop(self.dst)


def _ntop(addr: bytes) -> str:
    return socket.inet_ntop(socket.AF_INET if len(addr) == 4 else socket.AF_INET6, addr)


def ip_from_link(link_type: int, data: bytes) -> bytes | None:
    """The IP packet inside a link-layer frame, or None if the frame carries something else."""
    if link_type == LINK_ETHERNET:
        if len(data) < 14:
            return None
        ethertype = _U16.unpack_from(data, 12)[0]
        pos = 14
        while ethertype in _ETH_VLAN:
            if len(data) < pos + 4:
                return None
            ethertype = _U16.unpack_from(data, pos + 2)[0]
            pos += 4
        return data[pos:] if ethertype in (_ETH_IPV4, _ETH_IPV6) else None
    if link_type in (LINK_RAW, LINK_RAW_BSD, LINK_RAW_OPENBSD, LINK_IPV4, LINK_IPV6):
        return data
    if link_type == LINK_SLL:
        if len(data) < 16:
            return None
        proto = _U16.unpack_from(data, 14)[0]
        return data[16:] if proto in (_ETH_IPV4, _ETH_IPV6) else None
    if link_type == LINK_SLL2:
        if len(data) < 20:
            return None
        proto = _U16.unpack_from(data, 0)[0]
        return data[20:] if proto in (_ETH_IPV4, _ETH_IPV6) else None
    if link_type in (LINK_NULL, LINK_LOOP):
        if len(data) < 4:
            return None
        if link_type == LINK_LOOP:
            family = struct.unpack_from("!I", data, 0)[0]
        else:
            # Written in the capturing host's byte order, which the file does not record: a family is a
            # small number, so whichever order gives one is right.
            family = struct.unpack_from("<I", data, 0)[0]
            if family > 0xFFFF:
                family = struct.unpack_from(">I", data, 0)[0]
        return data[4:] if family == _AF_INET or family in _AF_INET6 else None
    return None


def packet_from_frame(frame: Frame) -> Packet | None:
    """The IP packet in `frame`, or None for non-IP frames and headers that cannot be parsed."""
    ip = ip_from_link(frame.link_type, frame.data)
    if ip is None:
        return None
    return parse_ip(ip, frame.timestamp, frame.original_length)


def parse_ip(data: bytes, ts: float = 0.0, original_length: int | None = None) -> Packet | None:
    """Parse an IPv4 or IPv6 packet (possibly cut short by snaplen) into a `Packet`."""
    if not data:
        return None
    orig = len(data) if original_length is None else original_length
    version = data[0] >> 4
    if version == 4:
        if len(data) < 20:
            return None
        ihl = (data[0] & 0x0F) * 4
        if ihl < 20 or len(data) < ihl:
            return None
        total, ident, frag = struct.unpack_from("!HHH", data, 2)
        if total < ihl:
            return None
        proto = data[9]
        # Trailing Ethernet padding beyond total length is not payload; a shortfall is snaplen.
        payload = data[ihl:total]
        pkt = Packet(
            ts, 4, data[12:16], data[16:20], proto, payload, orig,
            ident=ident, frag_offset=(frag & 0x1FFF) * 8, more_fragments=bool(frag & 0x2000),
            declared_length=total - ihl,
        )  # fmt: skip
    elif version == 6:
        if len(data) < 40:
            return None
        plen = _U16.unpack_from(data, 4)[0]
        # A jumbogram (payload length 0 with hop-by-hop jumbo option) is taken to run to the end.
        body = data[40 : 40 + plen] if plen else data[40:]
        pkt = Packet(ts, 6, data[8:24], data[24:40], data[6], body, orig, declared_length=plen or len(body))
        if not _walk_ipv6(pkt, allow_fragment=True):
            return None
    else:
        return None
    pkt.ip_fragmented = pkt.is_fragment
    if pkt.frag_offset == 0:
        parse_l4(pkt)
    return pkt


def _walk_ipv6(pkt: Packet, *, allow_fragment: bool) -> bool:
    """Advance `pkt.proto`/`pkt.payload` past IPv6 extension headers; False if one does not fit."""
    nxt = pkt.proto
    body = pkt.payload
    pos = 0
    for _ in range(32):  # a chain longer than this is hostile, not real
        if nxt in _IPV6_EXT:
            if len(body) < pos + 2:
                return False
            nxt, hlen = body[pos], (body[pos + 1] + 1) * 8
        elif nxt == PROTO_AH:
            if len(body) < pos + 2:
                return False
            nxt, hlen = body[pos], (body[pos + 1] + 2) * 4
        elif nxt == _IPV6_FRAG and allow_fragment:
            if len(body) < pos + 8:
                return False
            frag, ident = struct.unpack_from("!HI", body, pos + 2)
            nxt, hlen = body[pos], 8
            pkt.frag_offset = frag & 0xFFF8
            pkt.more_fragments = bool(frag & 1)
            pkt.ident = ident
            if pkt.frag_offset or pkt.more_fragments:
                # What follows is fragment data (headers of the fragmentable part included): the datagram is
                # keyed by this next-header value and walked again once reassembled.
                pkt.proto = nxt
                pkt.payload = body[pos + hlen :]
                pkt.declared_length -= pos + hlen
                return True
        else:
            pkt.proto = nxt
            pkt.payload = body[pos:]
            pkt.declared_length -= pos
            return True
        if len(body) < pos + hlen:
            return False
        pos += hlen
    return False


def parse_l4(pkt: Packet) -> None:
    """Fill in the UDP fields of an unfragmented, first-fragment or reassembled packet."""
    if pkt.proto == PROTO_UDP and len(pkt.payload) >= 8:
        pkt.sport, pkt.dport = _UDP.unpack_from(pkt.payload, 0)
        ulen = _U16.unpack_from(pkt.payload, 4)[0]
        # UDP length bounds the payload when it is sane; a first fragment has less than it claims.
        end = ulen if 8 <= ulen <= len(pkt.payload) else len(pkt.payload)
        pkt.udp_payload = pkt.payload[8:end]
    elif pkt.proto == PROTO_TCP and len(pkt.payload) >= 4:
        pkt.sport, pkt.dport = _UDP.unpack_from(pkt.payload, 0)


def reparse_after_reassembly(pkt: Packet) -> Packet:
    """After reassembly an IPv6 datagram may begin with further extension headers (destination options)."""
    if pkt.version == 6:
        _walk_ipv6(pkt, allow_fragment=False)
    parse_l4(pkt)
    return pkt
