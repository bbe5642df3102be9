"""The IKEv2 message: the 28-byte header (RFC 7296 3.1) and the generic-payload-header chain (3.2); encoding
computes every Next Payload and length, decoding checks them all and raises only MalformedMessage.
Hand-written: no maintained Python IKEv2 codec is sans-I/O with strict bounds (scapy's is GPL, not sans-I/O).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import TypeVar

from vpndoctor.ike.constants import (
    CfgAttr,
    CfgType,
    EapCode,
    EapType,
    ExchangeType,
    HeaderFlag,
    NotifyType,
    PayloadType,
    name_of,
)
from vpndoctor.ike.errors import MalformedMessage, NotIKEv2, UnsupportedCriticalPayload
from vpndoctor.ike.payloads import (
    PAYLOAD_CLASSES,
    CpPayload,
    EapPayload,
    EncryptedFragmentPayload,
    EncryptedPayload,
    NotifyPayload,
    Payload,
    Reader,
    UnknownPayload,
)
from vpndoctor.wire import bytes_left

__all__ = [
    "HEADER_BYTES",
    "INITIATOR",
    "RESPONSE",
    "VERSION",
    "Header",
    "Message",
    "decode_message",
    "decode_payload_chain",
    "encode_payload_chain",
    "peek_version",
    "sk_payload_offset",
    "strip_non_esp_marker",
    "summary",
]

HEADER_BYTES = 28
GENERIC_HEADER_BYTES = 4
_CRITICAL = 0x80
_ENCRYPTED = (PayloadType.SK, PayloadType.SKF)

INITIATOR = HeaderFlag.INITIATOR
VERSION = HeaderFlag.VERSION
RESPONSE = HeaderFlag.RESPONSE


@dataclass(frozen=True, kw_only=True)
class Header:
    """The IKE header. `next_payload` and `length` are filled in by decoding and recomputed by
    `Message.encode`, so they take no part in equality."""

    spi_i: bytes
    spi_r: bytes
    next_payload: int = field(default=PayloadType.NONE, compare=False)
    major: int = 2
    minor: int = 0
    exchange: int
    flags: int
    message_id: int
    length: int = field(default=0, compare=False)

    def __post_init__(self) -> None:
        for name in ("spi_i", "spi_r"):
            value = getattr(self, name)
            if not isinstance(value, bytes) or len(value) != 8:
                raise ValueError(f"{name} must be 8 bytes")
        for name, bits in (
            ("next_payload", 8),
            ("major", 4),
            ("minor", 4),
            ("exchange", 8),
            ("flags", 8),
            ("message_id", 32),
            ("length", 32),
        ):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value < (1 << bits):
                raise ValueError(f"header {name}={value!r} does not fit in {bits} bits")

    @property
    def is_initiator(self) -> bool:
        """Sent by the original initiator of the IKE SA (the I flag)."""
        return bool(self.flags & INITIATOR)

    @property
    def is_response(self) -> bool:
        return bool(self.flags & RESPONSE)

    @property
    def exchange_name(self) -> str:
        return name_of(ExchangeType, self.exchange)

    def encode(self, total_length: int) -> bytes:
        """The 28 header bytes for a message of `total_length` bytes (header included)."""
        if not HEADER_BYTES <= total_length < (1 << 32):
            raise ValueError(f"message length {total_length} out of range")
        return (
            self.spi_i
            + self.spi_r
            + bytes([self.next_payload, (self.major << 4) | self.minor, self.exchange, self.flags])
            + self.message_id.to_bytes(4, "big")
            + total_length.to_bytes(4, "big")
        )

    @classmethod
    def decode(cls, data: bytes) -> Header:
        """The header at the start of `data`; NotIKEv2 for another major version. The length field is
        returned as read (decode_message checks it against the datagram)."""
        if len(data) < HEADER_BYTES:
            raise MalformedMessage(0, f"{HEADER_BYTES}-byte IKE header", f"{len(data)} bytes received")
        major, minor = data[17] >> 4, data[17] & 0x0F
        if major != 2:
            raise NotIKEv2(17, major, minor)
        length = int.from_bytes(data[24:28], "big")
        return cls(
            spi_i=bytes(data[0:8]),
            spi_r=bytes(data[8:16]),
            next_payload=data[16],
            major=major,
            minor=minor,
            exchange=data[18],
            flags=data[19],
            message_id=int.from_bytes(data[20:24], "big"),
            length=length,
        )


P = TypeVar("P", bound=Payload)


@dataclass(frozen=True)
class Message:
    header: Header
    payloads: tuple[Payload, ...]

    def encode(self) -> bytes:
        first, body = encode_payload_chain(self.payloads)
        header = dataclasses.replace(self.header, next_payload=first)
        return header.encode(HEADER_BYTES + len(body)) + body

    def payload(self, payload_type: int) -> Payload | None:
        """The first payload of `payload_type` (a PayloadType), or None."""
        return next((p for p in self.payloads if p.payload_type == payload_type), None)

    def payloads_of(self, payload_type: int) -> tuple[Payload, ...]:
        return tuple(p for p in self.payloads if p.payload_type == payload_type)

    def first(self, cls: type[P]) -> P | None:
        """The first payload that is an instance of `cls`, or None."""
        return next((p for p in self.payloads if isinstance(p, cls)), None)

    @property
    def notifies(self) -> tuple[NotifyPayload, ...]:
        return tuple(p for p in self.payloads if isinstance(p, NotifyPayload))

    def notify(self, notify_type: int) -> NotifyPayload | None:
        """The first Notify of `notify_type` (a NotifyType), or None."""
        return next((n for n in self.notifies if n.type == notify_type), None)


# --- chain -----------------------------------------------------------------------------------------------


def encode_payload_chain(payloads: Iterable[Payload]) -> tuple[int, bytes]:
    """(type of the first payload, the chained payloads) with every Next Payload and length computed.

    An SK or SKF payload must come last; its Next Payload field carries its `first_inner` instead.
    """
    items = tuple(payloads)
    out = bytearray()
    for i, p in enumerate(items):
        last = i == len(items) - 1
        own = p.next_payload_field
        if own is not None and not last:
            raise ValueError(f"{name_of(PayloadType, p.payload_type)} payload must be the last payload")
        nxt = own if own is not None else (PayloadType.NONE if last else items[i + 1].payload_type)
        body = p.encode_body()
        length = GENERIC_HEADER_BYTES + len(body)
        if length > 0xFFFF:
            raise ValueError(f"{name_of(PayloadType, p.payload_type)} payload of {length} bytes is too long")
        flags = _CRITICAL if isinstance(p, UnknownPayload) and p.critical else 0
        out += bytes([nxt, flags]) + length.to_bytes(2, "big") + body
    first = items[0].payload_type if items else PayloadType.NONE
    return first, bytes(out)


def _decode_chain(r: Reader, first_type: int) -> tuple[Payload, ...]:
    payloads: list[Payload] = []
    ptype = first_type
    while ptype != PayloadType.NONE:
        start = r.offset
        name = name_of(PayloadType, ptype)
        r.require(GENERIC_HEADER_BYTES, f"{GENERIC_HEADER_BYTES}-byte generic header of {name} payload")
        nxt = r.u8("next payload")
        critical = bool(r.u8("critical flag") & _CRITICAL)  # the 7 reserved bits are ignored (RFC 7296 3.2)
        length = r.u16("payload length")
        if length < GENERIC_HEADER_BYTES:
            raise MalformedMessage(start + 2, f"{name} payload length of at least 4", f"found {length}")
        r.require(length - GENERIC_HEADER_BYTES, f"{length}-byte {name} payload", at=start)
        cls = PAYLOAD_CLASSES.get(ptype)
        if cls is None and critical:
            raise UnsupportedCriticalPayload(start, ptype)
        decoder = UnknownPayload if cls is None else cls
        with r.restrict_to(length - GENERIC_HEADER_BYTES, f"{name} payload"):
            payloads.append(decoder.decode_body(r, payload_type=ptype, next_payload=nxt, critical=critical))
        if ptype in _ENCRYPTED:
            # Its Next Payload names the first inner payload; nothing may follow it (RFC 7296 3.14).
            r.expect_end(f"message after the {name} payload (it must be last)")
            break
        ptype = nxt
    r.expect_end("payload chain (the last payload has Next Payload 0)")
    return tuple(payloads)


def decode_payload_chain(first_type: int, data: bytes, *, base_offset: int = 0) -> tuple[Payload, ...]:
    """Decode a chain that fills `data` exactly, e.g. decrypted SK contents; error offsets are
    `base_offset` + the position in `data`."""
    return _decode_chain(Reader(data, base_offset=base_offset), first_type)


def decode_message(data: bytes) -> Message:
    """Decode one IKEv2 message that fills `data` exactly (after any non-ESP marker was stripped)."""
    header = Header.decode(data)
    if header.length < HEADER_BYTES:
        raise MalformedMessage(24, f"IKE message length of at least {HEADER_BYTES}", f"found {header.length}")
    if header.length > len(data):
        raise MalformedMessage(
            24, f"{header.length}-byte IKE message (header length field)", f"{len(data)} bytes received"
        )
    if header.length < len(data):
        raise MalformedMessage(
            header.length, "end of message (header length field)", bytes_left(len(data) - header.length)
        )
    payloads = _decode_chain(Reader(data[HEADER_BYTES:], base_offset=HEADER_BYTES), header.next_payload)
    return Message(header=header, payloads=payloads)


def peek_version(data: bytes) -> tuple[int, int]:
    """(major, minor) version of the ISAKMP/IKE header at the start of `data`, without decoding further."""
    if len(data) < 18:
        raise MalformedMessage(len(data), "the version octet at offset 17", f"{len(data)} bytes received")
    return data[17] >> 4, data[17] & 0x0F


def strip_non_esp_marker(data: bytes) -> bytes | None:
    """For a UDP 4500 datagram (RFC 3948): the IKE message after the 4-byte zero non-ESP marker, or None
    for ESP (a non-zero SPI), a one-byte 0xFF NAT-keepalive, or anything too short to be either."""
    if len(data) >= 4 and data[:4] == b"\0\0\0\0":
        return bytes(data[4:])
    return None


def sk_payload_offset(data: bytes) -> int:
    """Offset of the SK or SKF payload's generic header in the raw message `data` (for integrity and AEAD
    associated data); MalformedMessage if the chain is broken or has no encrypted payload."""
    header = Header.decode(data)
    offset = HEADER_BYTES
    ptype = header.next_payload
    while ptype != PayloadType.NONE:
        if len(data) - offset < GENERIC_HEADER_BYTES:
            name = name_of(PayloadType, ptype)
            raise MalformedMessage(
                offset,
                f"{GENERIC_HEADER_BYTES}-byte generic header of {name} payload",
                bytes_left(max(len(data) - offset, 0)),
            )
        if ptype in _ENCRYPTED:
            return offset
        length = int.from_bytes(data[offset + 2 : offset + 4], "big")
        if length < GENERIC_HEADER_BYTES:
            raise MalformedMessage(offset + 2, "payload length of at least 4", f"found {length}")
        ptype = data[offset]
        offset += length
    raise MalformedMessage(min(offset, len(data)), "an SK or SKF payload", "found the end of the chain")


# --- one-line summary -------------------------------------------------------------------------------------

_SHORT_PAYLOAD: dict[int, str] = {
    PayloadType.SA: "SA",
    PayloadType.KE: "KE",
    PayloadType.IDi: "IDi",
    PayloadType.IDr: "IDr",
    PayloadType.CERT: "CERT",
    PayloadType.CERTREQ: "CERTREQ",
    PayloadType.AUTH: "AUTH",
    PayloadType.NONCE: "No",
    PayloadType.DELETE: "D",
    PayloadType.VENDOR_ID: "V",
    PayloadType.TSi: "TSi",
    PayloadType.TSr: "TSr",
    PayloadType.SK: "SK",
}

# strongSwan's abbreviations, so our lines read like charon's log lines.
_SHORT_NOTIFY: dict[int, str] = {
    NotifyType.UNSUPPORTED_CRITICAL_PAYLOAD: "CRIT",
    NotifyType.INVALID_IKE_SPI: "INVAL_IKE_SPI",
    NotifyType.INVALID_MAJOR_VERSION: "INVAL_MAJOR",
    NotifyType.INVALID_SYNTAX: "INVAL_SYN",
    NotifyType.INVALID_MESSAGE_ID: "INVAL_MID",
    NotifyType.INVALID_SPI: "INVAL_SPI",
    NotifyType.NO_PROPOSAL_CHOSEN: "NO_PROP",
    NotifyType.INVALID_KE_PAYLOAD: "INVAL_KE",
    NotifyType.AUTHENTICATION_FAILED: "AUTH_FAILED",
    NotifyType.SINGLE_PAIR_REQUIRED: "SINGLE_PAIR",
    NotifyType.NO_ADDITIONAL_SAS: "NO_ADD_SAS",
    NotifyType.INTERNAL_ADDRESS_FAILURE: "INT_ADDR_FAIL",
    NotifyType.FAILED_CP_REQUIRED: "FAIL_CP_REQ",
    NotifyType.TS_UNACCEPTABLE: "TS_UNACCEPT",
    NotifyType.INVALID_SELECTORS: "INVAL_SEL",
    NotifyType.TEMPORARY_FAILURE: "TEMP_FAIL",
    NotifyType.CHILD_SA_NOT_FOUND: "NO_CHILD_SA",
    NotifyType.INITIAL_CONTACT: "INIT_CONTACT",
    NotifyType.SET_WINDOW_SIZE: "SET_WINSIZE",
    NotifyType.ADDITIONAL_TS_POSSIBLE: "ADD_TS_POSS",
    NotifyType.IPCOMP_SUPPORTED: "IPCOMP_SUPP",
    NotifyType.NAT_DETECTION_SOURCE_IP: "NATD_S_IP",
    NotifyType.NAT_DETECTION_DESTINATION_IP: "NATD_D_IP",
    NotifyType.COOKIE: "COOKIE",
    NotifyType.USE_TRANSPORT_MODE: "USE_TRANSP",
    NotifyType.HTTP_CERT_LOOKUP_SUPPORTED: "HTTP_CERT_LOOK",
    NotifyType.REKEY_SA: "REKEY_SA",
    NotifyType.ESP_TFC_PADDING_NOT_SUPPORTED: "ESP_TFC_PAD_N",
    NotifyType.NON_FIRST_FRAGMENTS_ALSO: "NON_FIRST_FRAG",
    NotifyType.MOBIKE_SUPPORTED: "MOBIKE_SUP",
    NotifyType.ADDITIONAL_IP4_ADDRESS: "ADD_4_ADDR",
    NotifyType.ADDITIONAL_IP6_ADDRESS: "ADD_6_ADDR",
    NotifyType.NO_ADDITIONAL_ADDRESSES: "NO_ADD_ADDR",
    NotifyType.UPDATE_SA_ADDRESSES: "UPD_SA_ADDR",
    NotifyType.COOKIE2: "COOKIE2",
    NotifyType.NO_NATS_ALLOWED: "NO_NATS",
    NotifyType.AUTH_LIFETIME: "AUTH_LFT",
    NotifyType.MULTIPLE_AUTH_SUPPORTED: "MULT_AUTH",
    NotifyType.ANOTHER_AUTH_FOLLOWS: "AUTH_FOLLOWS",
    NotifyType.REDIRECT_SUPPORTED: "REDIR_SUP",
    NotifyType.REDIRECT: "REDIR",
    NotifyType.REDIRECTED_FROM: "REDIR_FROM",
    NotifyType.EAP_ONLY_AUTHENTICATION: "EAP_ONLY",
    NotifyType.CHILDLESS_IKEV2_SUPPORTED: "CHDLESS_SUP",
    NotifyType.IKEV2_MESSAGE_ID_SYNC_SUPPORTED: "MSG_ID_SYN_SUP",
    NotifyType.IKEV2_FRAGMENTATION_SUPPORTED: "FRAG_SUP",
    NotifyType.SIGNATURE_HASH_ALGORITHMS: "HASH_ALG",
    NotifyType.USE_PPK: "USE_PPK",
    NotifyType.INTERMEDIATE_EXCHANGE_SUPPORTED: "IKE_INT_SUP",
}

_SHORT_CFG_TYPE: dict[int, str] = {
    CfgType.REQUEST: "CPRQ",
    CfgType.REPLY: "CPRP",
    CfgType.SET: "CPS",
    CfgType.ACK: "CPA",
}
_SHORT_CFG_ATTR: dict[int, str] = {
    CfgAttr.INTERNAL_IP4_ADDRESS: "ADDR",
    CfgAttr.INTERNAL_IP4_NETMASK: "MASK",
    CfgAttr.INTERNAL_IP4_DNS: "DNS",
    CfgAttr.INTERNAL_IP4_NBNS: "NBNS",
    CfgAttr.INTERNAL_IP4_DHCP: "DHCP",
    CfgAttr.APPLICATION_VERSION: "VER",
    CfgAttr.INTERNAL_IP6_ADDRESS: "ADDR6",
    CfgAttr.INTERNAL_IP6_DNS: "DNS6",
    CfgAttr.INTERNAL_IP6_NBNS: "NBNS6",
    CfgAttr.INTERNAL_IP6_DHCP: "DHCP6",
    CfgAttr.INTERNAL_IP4_SUBNET: "SUBNET",
    CfgAttr.SUPPORTED_ATTRIBUTES: "SUP",
    CfgAttr.INTERNAL_IP6_SUBNET: "SUBNET6",
    CfgAttr.INTERNAL_DNS_DOMAIN: "DOMAIN",
}
_SHORT_EAP_CODE: dict[int, str] = {
    EapCode.REQUEST: "REQ",
    EapCode.RESPONSE: "RES",
    EapCode.SUCCESS: "SUCC",
    EapCode.FAILURE: "FAIL",
}
_SHORT_EAP_TYPE: dict[int, str] = {EapType.IDENTITY: "ID", EapType.NOTIFICATION: "NOTIF"}


def _short_notify(notify_type: int) -> str:
    short = _SHORT_NOTIFY.get(notify_type)
    if short is not None:
        return short
    try:
        return NotifyType(notify_type).name
    except ValueError:
        return str(notify_type)


def _short(p: Payload) -> str:
    if isinstance(p, NotifyPayload):
        return f"N({_short_notify(p.type)})"
    if isinstance(p, EncryptedFragmentPayload):
        return f"SKF({p.fragment_number}/{p.total_fragments})"
    if isinstance(p, CpPayload):
        kind = _SHORT_CFG_TYPE.get(p.cfg_type, f"CP{p.cfg_type}")
        attrs = " ".join(_SHORT_CFG_ATTR.get(t, str(t)) for t, _ in p.attributes)
        return f"{kind}({attrs})"
    if isinstance(p, EapPayload):
        parts = ["EAP", _SHORT_EAP_CODE.get(p.code, str(p.code))]
        if p.eap_type is not None:
            parts.append(_SHORT_EAP_TYPE.get(p.eap_type, p.type_name or str(p.eap_type)))
        return "/".join(parts)
    if isinstance(p, UnknownPayload):
        return f"{name_of(PayloadType, p.type)}{'!' if p.critical else ''}"
    if isinstance(p, EncryptedPayload):
        return "SK"
    return _SHORT_PAYLOAD[p.payload_type]


def summary(msg: Message) -> str:
    """One line like tcpdump/strongSwan: "IKE_SA_INIT request 0 [ SA KE No N(NATD_S_IP) N(FRAG_SUP) ]"."""
    kind = "response" if msg.header.is_response else "request"
    inner = " ".join(_short(p) for p in msg.payloads)
    return f"{msg.header.exchange_name} {kind} {msg.header.message_id} [ {inner} ]".replace("[  ]", "[ ]")
