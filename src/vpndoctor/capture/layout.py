"""What the reader, the fast path and its worker share about the bytes of a capture: the largest packet any of
them accepts, the fixed layouts the fast walks read in place (pcap record header, link layer, IPv4/IPv6 and
the first transport bytes), the kinds of packet they count, and giving back the pages of a mapped file
already read. Constants and one helper only: it imports nothing of the package, so that each of the three
can use it without knowing the others.
"""

from __future__ import annotations

import contextlib
import mmap
import struct

__all__ = [
    "ETHERTYPE_AT",
    "IPV6",
    "IPV6_HEADERS_AFTER",
    "KINDS",
    "LAYOUTS",
    "LE_ETHERTYPE_IPV4",
    "LE_ETHERTYPE_IPV6",
    "LE_FRAG_MASK",
    "LE_PORT_443",
    "LE_PORT_500",
    "LE_PORT_4500",
    "LE_SYN_FIN_RST",
    "MAX_PACKET_BYTES",
    "MIN_IP_BYTES",
    "RECORD",
    "RECORD_BY_L2",
    "SETTLED_KINDS",
    "release_mapped",
]

MAX_PACKET_BYTES = 256 * 1024  # captured bytes of one packet: a record claiming more is damage, not data

# Every packet is counted once by what it carries (`packets_by_kind` of the report) ...
KINDS = (
    "esp",
    "esp_in_udp",
    "ike",
    "nat_keepalive",
    "tcp_443",
    "tcp_other",
    "udp_other",
    "other_ip",
    "ip_fragment",
    "non_ip",
)
# ... and these are the kinds the fast walks settle themselves, in the order the C walk returns its counts.
SETTLED_KINDS = ("esp", "esp_in_udp", "tcp_443", "tcp_other", "udp_other", "other_ip")

# Record header, Ethernet header, IPv4 header without options, then the first 14 bytes of the transport:
# sec, frac, caplen, origlen | ethertype | version+IHL, total length (2 bytes), fragment word, protocol,
# source, destination | 4 bytes at the transport start (ports or SPI), the UDP length, the 4 bytes after a
# UDP header (the SPI of ESP-in-UDP) and the TCP data offset + flags. Fields after the record header are
# read as little-endian ints and compared with byte-swapped constants; the transport read may run into the
# next record for a short packet, which is why caplen is checked first.
_IPV4_FIELDS = "BxBB2xHxB2xIIIH2xIH"
_ETH_IPV4 = struct.Struct("<IIII12xH" + _IPV4_FIELDS)
# Per pcap link type: the same read with the protocol field and IPv4 header where that link layer puts them
# (Ethernet; Linux cooked SLL: protocol at 14, IP at 16; SLL2: protocol at 0, IP at 20), and the link
# header's length.
LAYOUTS: dict[int, tuple[struct.Struct, int]] = {
    1: (_ETH_IPV4, 14),
    113: (struct.Struct("<IIII14xH" + _IPV4_FIELDS), 16),
    276: (struct.Struct("<IIIIH18x" + _IPV4_FIELDS), 20),
}
RECORD_BY_L2 = {l2: record for record, l2 in LAYOUTS.values()}
ETHERTYPE_AT = {1: 12, 113: 14, 276: 0}  # where the same layouts put the protocol field, for the C walk
RECORD = struct.Struct("<IIII")
MIN_IP_BYTES = 20 + 20  # the whole TCP/UDP-plus-SPI/ESP header the fields above need

LE_ETHERTYPE_IPV4 = 0x0008
LE_ETHERTYPE_IPV6 = 0xDD86
# IPv6 header, then the same transport fields as for IPv4: version/class/flow, payload length (2 bytes), next
# header, source and destination (two 8-byte halves each, little-endian: as `tcp.flow_key` reads them).
IPV6 = struct.Struct("<IBBBxQQQQIH2xIH")
IPV6_HEADERS_AFTER = frozenset({0, 43, 44, 51, 60})  # hop-by-hop, routing, fragment, AH, destination options
LE_FRAG_MASK = 0xFF3F  # more-fragments bit and fragment offset, byte-swapped
LE_PORT_443 = 0xBB01
LE_PORT_500 = 0xF401
LE_PORT_4500 = 0x9411
LE_SYN_FIN_RST = 0x0700  # in the little-endian word of TCP bytes 12-13


def release_mapped(mapped: mmap.mmap, start: int, end: int) -> None:
    """Drop the mapped pages of [start, end) from this process (they stay in the page cache)."""
    lo = start & ~(mmap.PAGESIZE - 1)
    hi = end & ~(mmap.PAGESIZE - 1)
    if hi > lo and hasattr(mapped, "madvise"):
        with contextlib.suppress(OSError, ValueError):
            mapped.madvise(mmap.MADV_DONTNEED, lo, hi - lo)
