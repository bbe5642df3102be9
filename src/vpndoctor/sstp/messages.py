"""SSTP packets ([MS-SSTP] 2.2): the 4-byte packet header, control messages with their attributes, and data
packets carrying PPP frames. `encode_*` and `decode_packet` are symmetric; `PacketReader` cuts packets out
of a byte stream with at most one packet (4095 bytes, the 12-bit length) buffered.

Decoding is strict where the spec says MUST (version 1.0, lengths, attribute sizes, attribute count) and
ignores reserved bits as the spec says, so `decode(encode(m)) == m` for every message we can build.
"""

from __future__ import annotations

import enum
import struct
from dataclasses import dataclass, field

from vpndoctor.sstp.errors import MalformedMessage

VERSION = 0x10  # major 1, minor 0 ([MS-SSTP] 2.2.1)
HEADER_BYTES = 4
MAX_PACKET_BYTES = 0x0FFF  # the 12-bit Length field
NONCE_BYTES = 32
CERT_HASH_BYTES = 32  # the field is 32 bytes; a SHA-1 hash is left-aligned and zero-padded
COMPOUND_MAC_BYTES = 32


class MessageType(enum.IntEnum):
    CALL_CONNECT_REQUEST = 0x0001
    CALL_CONNECT_ACK = 0x0002
    CALL_CONNECT_NAK = 0x0003
    CALL_CONNECTED = 0x0004
    CALL_ABORT = 0x0005
    CALL_DISCONNECT = 0x0006
    CALL_DISCONNECT_ACK = 0x0007
    ECHO_REQUEST = 0x0008
    ECHO_RESPONSE = 0x0009


class AttributeId(enum.IntEnum):
    NO_ERROR = 0x00  # only inside Status Info (AttribID)
    ENCAPSULATED_PROTOCOL_ID = 0x01
    STATUS_INFO = 0x02
    CRYPTO_BINDING = 0x03
    CRYPTO_BINDING_REQ = 0x04


class Status(enum.IntEnum):
    """Status Info's Status field ([MS-SSTP] 2.2.8)."""

    NO_ERROR = 0x00000000
    DUPLICATE_ATTRIBUTE = 0x00000001
    UNRECOGNIZED_ATTRIBUTE = 0x00000002
    INVALID_ATTRIB_VALUE_LENGTH = 0x00000003
    VALUE_NOT_SUPPORTED = 0x00000004
    UNACCEPTED_FRAME_RECEIVED = 0x00000005
    RETRY_COUNT_EXCEEDED = 0x00000006
    INVALID_FRAME_RECEIVED = 0x00000007
    NEGOTIATION_TIMEOUT = 0x00000008
    ATTRIB_NOT_SUPPORTED_IN_MSG = 0x00000009
    REQUIRED_ATTRIBUTE_MISSING = 0x0000000A
    STATUS_INFO_NOT_SUPPORTED_IN_MSG = 0x0000000B


class HashProtocol(enum.IntFlag):
    """Hash Protocol Bitmask of the Crypto Binding (Request) attribute."""

    SHA1 = 0x01
    SHA256 = 0x02


PROTOCOL_PPP = 0x0001


def hash_names(bitmask: int) -> list[str]:
    """["SHA1", "SHA256"] for the bits set (unknown bits are left out)."""
    return [h.name for h in (HashProtocol.SHA1, HashProtocol.SHA256) if bitmask & h and h.name]


def status_name(value: int) -> str:
    try:
        return Status(value).name
    except ValueError:
        return f"0x{value:08x}"


# ---- attributes ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class EncapsulatedProtocolId:
    protocol_id: int = PROTOCOL_PPP


@dataclass(frozen=True)
class StatusInfo:
    attrib_id: int  # the attribute the status is about (0 = SSTP_ATTRIB_NO_ERROR)
    status: int
    attrib_value: bytes = b""

    @property
    def status_name(self) -> str:
        return status_name(self.status)


@dataclass(frozen=True)
class CryptoBindingRequest:
    hash_bitmask: int
    nonce: bytes


@dataclass(frozen=True)
class CryptoBinding:
    hash_protocol: int  # exactly one bit: SHA1 or SHA256
    nonce: bytes
    cert_hash: bytes  # 32 bytes (SHA-1: 20 bytes + 12 zero bytes)
    compound_mac: bytes  # 32 bytes


Attribute = EncapsulatedProtocolId | StatusInfo | CryptoBindingRequest | CryptoBinding

_FIXED_LENGTHS = {
    AttributeId.ENCAPSULATED_PROTOCOL_ID: 6,
    AttributeId.CRYPTO_BINDING_REQ: 40,
    AttributeId.CRYPTO_BINDING: 104,
}
STATUS_INFO_MIN_BYTES = 12


@dataclass(frozen=True)
class ControlMessage:
    msg_type: MessageType
    attributes: tuple[Attribute, ...] = ()

    def first(self, kind: type[Attribute]) -> Attribute | None:
        return next((a for a in self.attributes if isinstance(a, kind)), None)

    @property
    def crypto_binding_request(self) -> CryptoBindingRequest | None:
        found = self.first(CryptoBindingRequest)
        return found if isinstance(found, CryptoBindingRequest) else None

    @property
    def status_infos(self) -> list[StatusInfo]:
        return [a for a in self.attributes if isinstance(a, StatusInfo)]

    def summary(self) -> str:
        parts = []
        for a in self.attributes:
            if isinstance(a, EncapsulatedProtocolId):
                parts.append(f"protocol={'PPP' if a.protocol_id == PROTOCOL_PPP else hex(a.protocol_id)}")
            elif isinstance(a, StatusInfo):
                parts.append(f"status={a.status_name}")
            elif isinstance(a, CryptoBindingRequest):
                parts.append(f"hashes={'+'.join(hash_names(a.hash_bitmask)) or hex(a.hash_bitmask)}")
            else:
                parts.append(f"binding={'+'.join(hash_names(a.hash_protocol)) or hex(a.hash_protocol)}")
        return self.msg_type.name + (f" [{' '.join(parts)}]" if parts else "")


@dataclass(frozen=True)
class DataPacket:
    payload: bytes = field(default=b"")  # one PPP frame (HDLC-less: address/control omitted or not)

    def summary(self) -> str:
        return f"DATA {len(self.payload)} bytes"


Packet = ControlMessage | DataPacket


# ---- encoding -----------------------------------------------------------------------------------------


def _lengthpacket(n: int, what: str) -> bytes:
    if not 0 <= n <= MAX_PACKET_BYTES:
        raise ValueError(f"{what} length {n} does not fit 12 bits")
    return struct.pack("!H", n)


def encode_attribute(attr: Attribute) -> bytes:
    if isinstance(attr, EncapsulatedProtocolId):
        aid, value = AttributeId.ENCAPSULATED_PROTOCOL_ID, struct.pack("!H", attr.protocol_id)
    elif isinstance(attr, StatusInfo):
        aid = AttributeId.STATUS_INFO
        value = b"\x00\x00\x00" + bytes([attr.attrib_id]) + struct.pack("!I", attr.status) + attr.attrib_value
    elif isinstance(attr, CryptoBindingRequest):
        if len(attr.nonce) != NONCE_BYTES:
            raise ValueError("nonce must be 32 bytes")
        aid, value = AttributeId.CRYPTO_BINDING_REQ, b"\x00\x00\x00" + bytes([attr.hash_bitmask]) + attr.nonce
    else:
        if (len(attr.nonce), len(attr.cert_hash), len(attr.compound_mac)) != (32, 32, 32):
            raise ValueError("nonce, cert hash and compound MAC are 32 bytes each")
        aid = AttributeId.CRYPTO_BINDING
        value = (
            b"\x00\x00\x00" + bytes([attr.hash_protocol]) + attr.nonce + attr.cert_hash + attr.compound_mac
        )
    return b"\x00" + bytes([aid]) + _lengthpacket(4 + len(value), "attribute") + value


def encode_control(msg: ControlMessage) -> bytes:
    body = struct.pack("!HH", msg.msg_type, len(msg.attributes)) + b"".join(
        encode_attribute(a) for a in msg.attributes
    )
    return bytes([VERSION, 0x01]) + _lengthpacket(HEADER_BYTES + len(body), "packet") + body


def encode_data(packet: DataPacket) -> bytes:
    return (
        bytes([VERSION, 0x00]) + _lengthpacket(HEADER_BYTES + len(packet.payload), "packet") + packet.payload
    )


def encode_packet(packet: Packet) -> bytes:
    return encode_control(packet) if isinstance(packet, ControlMessage) else encode_data(packet)


def call_connect_request(protocol_id: int = PROTOCOL_PPP) -> bytes:
    return encode_control(
        ControlMessage(MessageType.CALL_CONNECT_REQUEST, (EncapsulatedProtocolId(protocol_id),))
    )


def call_abort(status: int | None = None) -> bytes:
    attrs: tuple[Attribute, ...] = () if status is None else (StatusInfo(AttributeId.NO_ERROR, status),)
    return encode_control(ControlMessage(MessageType.CALL_ABORT, attrs))


def call_disconnect(status: int | None = Status.NO_ERROR) -> bytes:
    attrs: tuple[Attribute, ...] = () if status is None else (StatusInfo(AttributeId.NO_ERROR, status),)
    return encode_control(ControlMessage(MessageType.CALL_DISCONNECT, attrs))


# ---- decoding -----------------------------------------------------------------------------------------


def _u16(data: bytes, pos: int, base: int, what: str) -> int:
    if pos + 2 > len(data):
        raise MalformedMessage(base + pos, f"2 bytes of {what}", f"{len(data) - pos} left")
    value: int = struct.unpack_from("!H", data, pos)[0]
    return value


def decode_attribute(data: bytes, pos: int, base: int = 0) -> tuple[Attribute, int]:
    """One attribute at `data[pos:]`; returns it and the position after it."""
    if pos + 4 > len(data):
        raise MalformedMessage(base + pos, "a 4-byte attribute header", f"{len(data) - pos} bytes left")
    raw_id = data[pos + 1]
    length = _u16(data, pos + 2, base, "attribute length") & 0x0FFF
    try:
        aid = AttributeId(raw_id)
    except ValueError:
        raise MalformedMessage(base + pos + 1, "attribute id 1-4", f"found 0x{raw_id:02x}") from None
    if aid == AttributeId.NO_ERROR:
        raise MalformedMessage(base + pos + 1, "attribute id 1-4", "found 0x00")
    fixed = _FIXED_LENGTHS.get(aid)
    if fixed is not None and length != fixed:
        raise MalformedMessage(base + pos + 2, f"length {fixed} for {aid.name}", f"found {length}")
    if aid == AttributeId.STATUS_INFO and length < STATUS_INFO_MIN_BYTES:
        raise MalformedMessage(
            base + pos + 2, f"length >= {STATUS_INFO_MIN_BYTES} for STATUS_INFO", f"found {length}"
        )
    if pos + length > len(data):
        raise MalformedMessage(base + pos, f"{length} bytes of {aid.name}", f"{len(data) - pos} left")
    v = data[pos + 4 : pos + length]
    attr: Attribute
    if aid == AttributeId.ENCAPSULATED_PROTOCOL_ID:
        attr = EncapsulatedProtocolId(struct.unpack("!H", v)[0])
    elif aid == AttributeId.STATUS_INFO:
        attr = StatusInfo(v[3], struct.unpack_from("!I", v, 4)[0], bytes(v[8:]))
    elif aid == AttributeId.CRYPTO_BINDING_REQ:
        attr = CryptoBindingRequest(v[3], bytes(v[4:36]))
    else:
        attr = CryptoBinding(v[3], bytes(v[4:36]), bytes(v[36:68]), bytes(v[68:100]))
    return attr, pos + length


def decode_packet(data: bytes, base: int = 0) -> Packet:
    """Exactly one SSTP packet: `data` must hold the whole packet and nothing else."""
    if len(data) < HEADER_BYTES:
        raise MalformedMessage(base, "a 4-byte SSTP header", f"{len(data)} bytes")
    if data[0] != VERSION:
        raise MalformedMessage(base, "SSTP version 0x10", f"found 0x{data[0]:02x}")
    length = _u16(data, 2, base, "packet length") & 0x0FFF
    if length != len(data):
        raise MalformedMessage(base + 2, f"packet length {len(data)}", f"header says {length}")
    if not data[1] & 0x01:
        return DataPacket(bytes(data[4:]))
    if length < 8:
        raise MalformedMessage(base + 2, "a control packet of at least 8 bytes", f"length {length}")
    raw_type = _u16(data, 4, base, "message type")
    try:
        mtype = MessageType(raw_type)
    except ValueError:
        raise MalformedMessage(base + 4, "message type 1-9", f"found 0x{raw_type:04x}") from None
    count = _u16(data, 6, base, "attribute count")
    attrs: list[Attribute] = []
    pos = 8
    for _ in range(count):
        attr, pos = decode_attribute(data, pos, base)
        attrs.append(attr)
    if pos != len(data):
        raise MalformedMessage(
            base + pos, f"end of packet after {count} attributes", f"{len(data) - pos} extra bytes"
        )
    return ControlMessage(mtype, tuple(attrs))


class PacketReader:
    """Cut SSTP packets out of a byte stream. Holds at most one incomplete packet (<= 4095 bytes); a bad
    header fails at once with the stream offset, so garbage costs no memory and no waiting."""

    def __init__(self, base_offset: int = 0) -> None:
        self._buf = bytearray()
        self._consumed = base_offset
        # A malformed packet after good ones in the same read: the good ones are returned first (a server's
        # CALL_CONNECT_ACK must not be lost to whatever follows it), the error on the next feed().
        self._error: MalformedMessage | None = None

    @property
    def buffered(self) -> int:
        return len(self._buf)

    def feed(self, data: bytes) -> list[Packet]:
        if self._error is not None:
            raise self._error
        self._buf += data
        out: list[Packet] = []
        try:
            while len(self._buf) >= HEADER_BYTES:
                if self._buf[0] != VERSION:
                    raise MalformedMessage(self._consumed, "SSTP version 0x10", f"found 0x{self._buf[0]:02x}")
                length = ((self._buf[2] & 0x0F) << 8) | self._buf[3]
                if length < HEADER_BYTES:
                    raise MalformedMessage(self._consumed + 2, "packet length >= 4", f"found {length}")
                if len(self._buf) < length:
                    break
                chunk = bytes(self._buf[:length])
                out.append(decode_packet(chunk, self._consumed))
                del self._buf[:length]
                self._consumed += length
        except MalformedMessage as exc:
            if not out:
                raise
            self._error = exc
            self._buf.clear()
        return out
