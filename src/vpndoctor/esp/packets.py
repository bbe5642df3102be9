"""The inner packets the tunnel probes send and read: IPv4 with ICMP (echo, destination unreachable incl.
fragmentation needed, time exceeded), UDP and TCP (SYN, SYN-ACK, RST) - build and parse, checksums, and a
small bounded reassembler for fragmented answers.

Hand-written, on purpose: the probes need some forty lines of each header, built byte-exact (DF, the
checksum, a TCP MSS option) and parsed with bounds checks that raise our own `EspDecodeError` with an
offset. scapy would do it but costs a second of import time per run and raises its own mixed errors on
hostile input; dpkt is not maintained for Python 3.11's typing and silently truncates; the standard library
has no IP codec. DNS messages are not here: dnspython builds and parses them (`probes.tunnel`).
"""

from __future__ import annotations

import ipaddress
import struct
from dataclasses import dataclass, field

from vpndoctor.esp.errors import EspDecodeError

PROTO_ICMP = 1
PROTO_TCP = 6
PROTO_UDP = 17

ICMP_ECHO_REPLY = 0
ICMP_UNREACHABLE = 3
ICMP_ECHO_REQUEST = 8
ICMP_TIME_EXCEEDED = 11
ICMP_FRAG_NEEDED = 4  # code of ICMP_UNREACHABLE (RFC 1191)

TCP_FIN, TCP_SYN, TCP_RST, TCP_PSH, TCP_ACK = 0x01, 0x02, 0x04, 0x08, 0x10

IPV4_HEADER_BYTES = 20
MAX_REASSEMBLY_BYTES = 65535
MAX_PENDING_DATAGRAMS = 16


def checksum(data: bytes) -> int:
    """The Internet checksum (RFC 1071)."""
    if len(data) % 2:
        data += b"\x00"
    total: int = sum(struct.unpack(f"!{len(data) // 2}H", data))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF


# ---- IPv4 -------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Ipv4:
    src: str
    dst: str
    proto: int
    payload: bytes
    ident: int = 0
    ttl: int = 64
    df: bool = False
    more_fragments: bool = False
    frag_offset: int = 0  # in octets
    header_bytes: int = IPV4_HEADER_BYTES

    @property
    def total_bytes(self) -> int:
        return self.header_bytes + len(self.payload)

    @property
    def fragmented(self) -> bool:
        return self.more_fragments or self.frag_offset > 0

    def encode(self) -> bytes:
        flags = (0x4000 if self.df else 0) | (0x2000 if self.more_fragments else 0) | self.frag_offset // 8
        header = struct.pack(
            "!BBHHHBBH4s4s",
            0x45,
            0,
            IPV4_HEADER_BYTES + len(self.payload),
            self.ident,
            flags,
            self.ttl,
            self.proto,
            0,
            ipaddress.IPv4Address(self.src).packed,
            ipaddress.IPv4Address(self.dst).packed,
        )
        return header[:10] + struct.pack("!H", checksum(header)) + header[12:] + self.payload


def decode_ipv4(data: bytes, *, verify: bool = True, allow_truncated: bool = False) -> Ipv4:
    """One IPv4 packet. `allow_truncated`: the header quoted in an ICMP error, whose payload is cut short."""
    if len(data) < IPV4_HEADER_BYTES:
        raise EspDecodeError(0, "an IPv4 header (20 octets)", f"{len(data)} octets")
    vihl, _tos, total, ident, flags, ttl, proto, _sum = struct.unpack("!BBHHHBBH", data[:12])
    if vihl >> 4 != 4:
        raise EspDecodeError(0, "IP version 4", f"found {vihl >> 4}")
    ihl = (vihl & 0x0F) * 4
    if ihl < IPV4_HEADER_BYTES or ihl > len(data):
        raise EspDecodeError(0, "a header length of 20-60 octets within the packet", f"found {ihl}")
    if total < ihl or (total > len(data) and not allow_truncated):
        raise EspDecodeError(2, f"a total length of {ihl}-{len(data)}", f"found {total}")
    if verify and checksum(data[:ihl]) != 0:
        raise EspDecodeError(10, "a valid IPv4 header checksum", "it does not add up")
    return Ipv4(
        src=str(ipaddress.IPv4Address(data[12:16])),
        dst=str(ipaddress.IPv4Address(data[16:20])),
        proto=proto,
        payload=data[ihl:total],
        ident=ident,
        ttl=ttl,
        df=bool(flags & 0x4000),
        more_fragments=bool(flags & 0x2000),
        frag_offset=(flags & 0x1FFF) * 8,
        header_bytes=ihl,
    )


# ---- ICMP -------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Icmp:
    type: int
    code: int
    rest: int  # the 4 octets after the checksum: echo id << 16 | seq, or the next-hop MTU (RFC 1191)
    data: bytes

    @property
    def echo_id(self) -> int:
        return self.rest >> 16

    @property
    def echo_seq(self) -> int:
        return self.rest & 0xFFFF

    @property
    def next_hop_mtu(self) -> int:
        return self.rest & 0xFFFF

    def encode(self) -> bytes:
        head = struct.pack("!BBHI", self.type, self.code, 0, self.rest)
        return head[:2] + struct.pack("!H", checksum(head + self.data)) + head[4:] + self.data


def echo_request(ident: int, seq: int, data: bytes) -> Icmp:
    return Icmp(ICMP_ECHO_REQUEST, 0, (ident & 0xFFFF) << 16 | (seq & 0xFFFF), data)


def decode_icmp(data: bytes, base: int = 0, *, verify: bool = True) -> Icmp:
    if len(data) < 8:
        raise EspDecodeError(base, "an ICMP header (8 octets)", f"{len(data)} octets")
    kind, code, _sum, rest = struct.unpack("!BBHI", data[:8])
    if verify and checksum(data) != 0:
        raise EspDecodeError(base + 2, "a valid ICMP checksum", "it does not add up")
    return Icmp(kind, code, rest, data[8:])


# ---- UDP and TCP ------------------------------------------------------------------------------------


def _pseudo(src: str, dst: str, proto: int, length: int) -> bytes:
    return (
        ipaddress.IPv4Address(src).packed
        + ipaddress.IPv4Address(dst).packed
        + struct.pack("!BBH", 0, proto, length)
    )


@dataclass(frozen=True)
class Udp:
    sport: int
    dport: int
    data: bytes

    def encode(self, src: str, dst: str) -> bytes:
        length = 8 + len(self.data)
        head = struct.pack("!HHHH", self.sport, self.dport, length, 0)
        value = checksum(_pseudo(src, dst, PROTO_UDP, length) + head + self.data) or 0xFFFF
        return head[:6] + struct.pack("!H", value) + self.data


def decode_udp(packet: Ipv4, *, verify: bool = True) -> Udp:
    data = packet.payload
    base = packet.header_bytes
    if len(data) < 8:
        raise EspDecodeError(base, "a UDP header (8 octets)", f"{len(data)} octets")
    sport, dport, length, value = struct.unpack("!HHHH", data[:8])
    if not 8 <= length <= len(data):
        raise EspDecodeError(base + 4, f"a UDP length of 8-{len(data)}", f"found {length}")
    if verify and value and checksum(_pseudo(packet.src, packet.dst, PROTO_UDP, length) + data[:length]):
        raise EspDecodeError(base + 6, "a valid UDP checksum", "it does not add up")
    return Udp(sport, dport, data[8:length])


@dataclass(frozen=True)
class Tcp:
    sport: int
    dport: int
    seq: int
    ack: int
    flags: int
    window: int = 64240
    mss: int | None = None  # the MSS option (SYN, SYN-ACK)
    data: bytes = b""

    def encode(self, src: str, dst: str) -> bytes:
        options = struct.pack("!BBH", 2, 4, self.mss) if self.mss is not None else b""
        offset = (20 + len(options)) // 4
        head = struct.pack(
            "!HHIIBBHHH",
            self.sport,
            self.dport,
            self.seq & 0xFFFFFFFF,
            self.ack & 0xFFFFFFFF,
            offset << 4,
            self.flags,
            self.window,
            0,
            0,
        )
        segment = head + options + self.data
        value = checksum(_pseudo(src, dst, PROTO_TCP, len(segment)) + segment)
        return segment[:16] + struct.pack("!H", value) + segment[18:]

    def flag_names(self) -> str:
        names = [
            n
            for bit, n in ((TCP_SYN, "SYN"), (TCP_ACK, "ACK"), (TCP_RST, "RST"), (TCP_FIN, "FIN"))
            if self.flags & bit
        ]
        return "-".join(names) or "none"


def decode_tcp(packet: Ipv4, *, verify: bool = True) -> Tcp:
    data = packet.payload
    base = packet.header_bytes
    if len(data) < 20:
        raise EspDecodeError(base, "a TCP header (20 octets)", f"{len(data)} octets")
    sport, dport, seq, ack, off, flags, window, _sum, _urg = struct.unpack("!HHIIBBHHH", data[:20])
    hlen = (off >> 4) * 4
    if not 20 <= hlen <= len(data):
        raise EspDecodeError(base + 12, f"a TCP header length of 20-{len(data)}", f"found {hlen}")
    if verify and checksum(_pseudo(packet.src, packet.dst, PROTO_TCP, len(data)) + data):
        raise EspDecodeError(base + 16, "a valid TCP checksum", "it does not add up")
    mss = None
    opts = data[20:hlen]
    i = 0
    while i < len(opts):
        kind = opts[i]
        if kind == 0:
            break
        if kind == 1:
            i += 1
            continue
        if i + 1 >= len(opts) or opts[i + 1] < 2 or i + opts[i + 1] > len(opts):
            raise EspDecodeError(base + 20 + i, "a TCP option within the header", "it overruns")
        if kind == 2 and opts[i + 1] == 4:
            mss = struct.unpack("!H", opts[i + 2 : i + 4])[0]
        i += opts[i + 1]
    return Tcp(sport, dport, seq, ack, flags, window, mss, data[hlen:])


# ---- reassembly -------------------------------------------------------------------------------------


@dataclass
class _Pending:
    parts: dict[int, bytes] = field(default_factory=dict)  # offset -> data
    total: int | None = None
    first: Ipv4 | None = None


@dataclass
class Reassembler:
    """IPv4 reassembly for the answers the probes read (an echo reply larger than a link on the way back
    arrives in fragments). Bounded: at most MAX_PENDING_DATAGRAMS at once, 64 KiB each; overlapping or
    oversized fragments drop the datagram."""

    pending: dict[tuple[str, str, int, int], _Pending] = field(default_factory=dict)
    fragments_seen: int = 0

    def add(self, packet: Ipv4) -> Ipv4 | None:
        """The whole datagram once its last fragment arrived; the packet itself when not fragmented."""
        if not packet.fragmented:
            return packet
        self.fragments_seen += 1
        key = (packet.src, packet.dst, packet.proto, packet.ident)
        if key not in self.pending and len(self.pending) >= MAX_PENDING_DATAGRAMS:
            self.pending.pop(next(iter(self.pending)))
        entry = self.pending.setdefault(key, _Pending())
        end = packet.frag_offset + len(packet.payload)
        if end > MAX_REASSEMBLY_BYTES or (packet.more_fragments and len(packet.payload) % 8):
            self.pending.pop(key, None)
            return None
        entry.parts[packet.frag_offset] = packet.payload
        if packet.frag_offset == 0:
            entry.first = packet
        if not packet.more_fragments:
            entry.total = end
        if entry.total is None or entry.first is None:
            return None
        data = b""
        for offset in sorted(entry.parts):
            if offset > len(data):  # a gap: more fragments to come
                return None
            if offset < len(data):  # overlapping fragments
                self._drop(key)
                return None
            data += entry.parts[offset]
        if len(data) != entry.total:
            self._drop(key)
            return None
        del self.pending[key]
        first = entry.first
        return Ipv4(first.src, first.dst, first.proto, data, first.ident, first.ttl, first.df)

    def _drop(self, key: tuple[str, str, int, int]) -> None:
        self.pending.pop(key, None)
