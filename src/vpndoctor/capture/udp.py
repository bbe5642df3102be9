"""What a UDP datagram or IP packet carries for VPN analysis: IKE on 500, IKE / ESP-in-UDP / NAT-keepalive
on 4500 (RFC 3948), plain ESP as IP protocol 50. Hand-written, a few byte comparisons per packet."""

from __future__ import annotations

import enum
import struct
from dataclasses import dataclass

from vpndoctor.capture.ip import PROTO_ESP, PROTO_UDP, Packet
from vpndoctor.capture.model import IKE_PORT, NAT_T_PORT
from vpndoctor.ike.errors import MalformedMessage
from vpndoctor.ike.message import peek_version

__all__ = ["Carried", "Kind", "classify"]


class Kind(enum.Enum):
    IKE = "ike"
    ESP = "esp"
    NAT_KEEPALIVE = "nat_keepalive"
    OTHER = "other"


@dataclass(frozen=True, slots=True)
class Carried:
    kind: Kind
    ike: bytes | None = None  # the IKE message (non-ESP marker removed)
    ike_major: int | None = None  # 1 for ISAKMP/IKEv1, 2 for IKEv2; None if too short to tell
    spi: int | None = None
    seq: int | None = None
    nat_t: bool = False


def _ike(data: bytes, nat_t: bool) -> Carried:
    try:
        major: int | None = peek_version(data)[0]
    except MalformedMessage:
        major = None
    return Carried(Kind.IKE, ike=data, ike_major=major, nat_t=nat_t)


def _esp(data: bytes, nat_t: bool) -> Carried:
    if len(data) < 8:
        return Carried(Kind.OTHER, nat_t=nat_t)
    spi, seq = struct.unpack_from("!II", data, 0)
    return Carried(Kind.ESP, spi=spi, seq=seq, nat_t=nat_t)


def classify(pkt: Packet) -> Carried:
    """Classify an unfragmented or reassembled packet (fragments without a UDP header are OTHER)."""
    if pkt.proto == PROTO_ESP and not pkt.frag_offset:
        return _esp(pkt.payload, False)
    if pkt.proto != PROTO_UDP or pkt.udp_payload is None:
        return Carried(Kind.OTHER)
    data = pkt.udp_payload
    if IKE_PORT in (pkt.sport, pkt.dport):
        return _ike(data, False)
    if NAT_T_PORT in (pkt.sport, pkt.dport):
        if data == b"\xff":
            return Carried(Kind.NAT_KEEPALIVE, nat_t=True)
        if data[:4] == b"\0\0\0\0":
            return _ike(data[4:], True)
        return _esp(data, True)
    return Carried(Kind.OTHER)
