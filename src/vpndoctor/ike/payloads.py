"""IKEv2 payload bodies (RFC 7296 section 3; SKF from RFC 7383) as frozen dataclasses with symmetric encode
and decode; every length is checked through `Reader` and decoding raises only MalformedMessage.
Hand-written: no maintained Python IKEv2 codec is sans-I/O with strict bounds (scapy's is GPL, not sans-I/O).
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from typing import ClassVar, NamedTuple, Self, TypeAlias

from vpndoctor import wire
from vpndoctor.ike import vendor_ids
from vpndoctor.ike.constants import (
    CertEncoding,
    EapCode,
    EapType,
    IdType,
    NotifyType,
    PayloadType,
    ProtocolId,
    TransformAttr,
    TsType,
    name_of,
    transform_id_enum,
)
from vpndoctor.ike.errors import MalformedMessage
from vpndoctor.wire import bytes_left

__all__ = [
    "PAYLOAD_CLASSES",
    "AuthPayload",
    "CertPayload",
    "CertReqPayload",
    "CpPayload",
    "DeletePayload",
    "EapPayload",
    "EncryptedFragmentPayload",
    "EncryptedPayload",
    "IdPayload",
    "KePayload",
    "NoncePayload",
    "NotifyPayload",
    "Payload",
    "PayloadBody",
    "Proposal",
    "Reader",
    "SaPayload",
    "TrafficSelector",
    "Transform",
    "TsPayload",
    "UnknownPayload",
    "VendorIdPayload",
]


class Reader(wire.Reader):
    """The IKE codec's `wire.Reader`: it raises `MalformedMessage`."""

    __slots__ = ()
    error = MalformedMessage


def _enter_struct(r: Reader, start: int, length: int, min_len: int, what: str) -> None:
    """Check the 16-bit length at `start + 2` of a substructure whose first 4 bytes were just read."""
    if length < min_len:
        raise MalformedMessage(start + 2, f"{what} length of at least {min_len}", f"found {length}")
    r.require(length - 4, f"{length}-byte {what}", at=start)


# --- construction-time validation (our own misuse: ValueError/TypeError, never on decode) ---------------


def _uint(name: str, value: int, bits: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name} must be an int, not {type(value).__name__}")
    if not 0 <= value < (1 << bits):
        raise ValueError(f"{name}={value} does not fit in {bits} bits")


def _bytes(name: str, value: bytes, max_len: int | None = None, exact: int | None = None) -> None:
    if not isinstance(value, bytes):
        raise TypeError(f"{name} must be bytes, not {type(value).__name__}")
    if exact is not None and len(value) != exact:
        raise ValueError(f"{name} must be {exact} bytes, not {len(value)}")
    if max_len is not None and len(value) > max_len:
        raise ValueError(f"{name} is {len(value)} bytes, at most {max_len} fit")


def _u16(value: int) -> bytes:
    return value.to_bytes(2, "big")


class _Ctx(NamedTuple):
    payload_type: int
    next_payload: int
    critical: bool


class PayloadBody:
    """Common interface of every payload dataclass: `payload_type`, `encode_body()`, `decode_body()`."""

    TYPE: ClassVar[int] = PayloadType.NONE

    @property
    def payload_type(self) -> int:
        return self.TYPE

    @property
    def next_payload_field(self) -> int | None:
        """What the generic header's Next Payload holds for SK/SKF (first inner type); None: the chain's."""
        return None

    def encode_body(self) -> bytes:
        raise NotImplementedError

    @classmethod
    def decode_body(
        cls,
        src: Reader | bytes,
        *,
        payload_type: int | None = None,
        next_payload: int = 0,
        critical: bool = False,
    ) -> Self:
        """Decode a payload body (without its 4-byte generic header) that fills all of `src`.

        `payload_type` tells IDi from IDr and TSi from TSr (default: the class's own type); `next_payload`
        is the generic header's Next Payload, which for SK/SKF is the first inner payload type.
        """
        r = src if isinstance(src, Reader) else Reader(src)
        ctx = _Ctx(cls.TYPE if payload_type is None else payload_type, next_payload, critical)
        body = cls._decode(r, ctx)
        r.expect_end(f"{name_of(PayloadType, ctx.payload_type)} payload")
        return body

    @classmethod
    def _decode(cls, r: Reader, ctx: _Ctx) -> Self:
        raise NotImplementedError


# --- SA ------------------------------------------------------------------------------------------------

_LAST = 0
_MORE_PROPOSALS = 2
_MORE_TRANSFORMS = 3
_AF_TV = 0x8000


@dataclass(frozen=True)
class Transform:
    """One transform substructure. `attributes` excludes the key length: an int value is sent in TV
    format, bytes in TLV format (IKEv2 defines no TLV attribute, but peers may send one)."""

    type: int
    id: int
    key_length: int | None = None
    attributes: tuple[tuple[int, bytes | int], ...] = ()

    def __post_init__(self) -> None:
        _uint("transform type", self.type, 8)
        _uint("transform id", self.id, 16)
        if self.key_length is not None:
            _uint("key length", self.key_length, 16)
        for attr_type, value in self.attributes:
            _uint("attribute type", attr_type, 15)
            if attr_type == TransformAttr.KEY_LENGTH:
                raise ValueError("put the key length in Transform.key_length, not in attributes")
            if isinstance(value, bytes):
                _bytes("attribute value", value, 0xFFFF)
            else:
                _uint("attribute value", value, 16)

    def encode(self, last: bool) -> bytes:
        attrs = bytearray()
        if self.key_length is not None:
            attrs += _u16(_AF_TV | TransformAttr.KEY_LENGTH) + _u16(self.key_length)
        for attr_type, value in self.attributes:
            if isinstance(value, bytes):
                attrs += _u16(attr_type) + _u16(len(value)) + value
            else:
                attrs += _u16(_AF_TV | attr_type) + _u16(value)
        length = 8 + len(attrs)
        if length > 0xFFFF:
            raise ValueError(f"transform of {length} bytes does not fit its 16-bit length")
        marker = _LAST if last else _MORE_TRANSFORMS
        return bytes([marker, 0]) + _u16(length) + bytes([self.type, 0]) + _u16(self.id) + attrs

    @classmethod
    def decode_from(cls, r: Reader) -> tuple[Transform, bool]:
        """One transform at the reader's position; the bool says whether another follows."""
        start = r.offset
        r.require(8, "8-byte transform substructure")
        marker = r.u8("transform marker")
        if marker not in (_LAST, _MORE_TRANSFORMS):
            raise MalformedMessage(start, "transform marker 0 (last) or 3 (more)", f"found {marker}")
        r.u8("reserved")
        length = r.u16("transform length")
        _enter_struct(r, start, length, 8, "transform")
        with r.restrict_to(length - 4, "transform"):
            ttype = r.u8("transform type")
            r.u8("reserved")
            tid = r.u16("transform id")
            key_length: int | None = None
            attrs: list[tuple[int, bytes | int]] = []
            while r.remaining:
                at = r.offset
                r.require(4, "4-byte transform attribute")
                word = r.u16("attribute type")
                attr_type = word & 0x7FFF
                value: bytes | int
                if word & _AF_TV:
                    value = r.u16("attribute value")
                else:
                    vlen = r.u16("attribute length")
                    value = r.take(vlen, f"{vlen}-byte value of transform attribute {attr_type}")
                if attr_type == TransformAttr.KEY_LENGTH:
                    if isinstance(value, bytes):
                        raise MalformedMessage(at, "key length attribute in TV format", "found TLV format")
                    if key_length is not None:
                        raise MalformedMessage(at, "at most one key length attribute", "found a second")
                    key_length = value
                else:
                    attrs.append((attr_type, value))
        return cls(ttype, tid, key_length, tuple(attrs)), marker == _MORE_TRANSFORMS

    @property
    def name(self) -> str:
        """e.g. "AES_CBC_256", "HMAC_SHA2_256_128", "MODP_2048"."""
        enum_cls = transform_id_enum(self.type)
        base = name_of(enum_cls, self.id) if enum_cls is not None else f"TRANSFORM{self.type}_{self.id}"
        return base if self.key_length is None else f"{base}_{self.key_length}"


@dataclass(frozen=True)
class Proposal:
    number: int
    protocol: int
    spi: bytes
    transforms: tuple[Transform, ...]

    def __post_init__(self) -> None:
        _uint("proposal number", self.number, 8)
        _uint("protocol id", self.protocol, 8)
        _bytes("spi", self.spi, 0xFF)
        if len(self.transforms) > 0xFF:
            raise ValueError(f"{len(self.transforms)} transforms do not fit the 8-bit count")

    def encode(self, last: bool) -> bytes:
        n = len(self.transforms)
        body = b"".join(t.encode(last=i == n - 1) for i, t in enumerate(self.transforms))
        length = 8 + len(self.spi) + len(body)
        if length > 0xFFFF:
            raise ValueError(f"proposal of {length} bytes does not fit its 16-bit length")
        marker = _LAST if last else _MORE_PROPOSALS
        head = bytes([marker, 0]) + _u16(length)
        return head + bytes([self.number, self.protocol, len(self.spi), n]) + self.spi + body

    @classmethod
    def decode_from(cls, r: Reader) -> tuple[Proposal, bool]:
        start = r.offset
        r.require(8, "8-byte proposal substructure")
        marker = r.u8("proposal marker")
        if marker not in (_LAST, _MORE_PROPOSALS):
            raise MalformedMessage(start, "proposal marker 0 (last) or 2 (more)", f"found {marker}")
        r.u8("reserved")
        length = r.u16("proposal length")
        _enter_struct(r, start, length, 8, "proposal")
        with r.restrict_to(length - 4, "proposal"):
            number = r.u8("proposal number")
            protocol = r.u8("protocol id")
            spi_size = r.u8("spi size")
            count_at = r.offset
            count = r.u8("transform count")
            spi = r.take(spi_size, f"{spi_size}-byte SPI")
            transforms: list[Transform] = []
            more = r.remaining > 0
            while more:
                transform, more = Transform.decode_from(r)
                transforms.append(transform)
        if len(transforms) != count:
            raise MalformedMessage(
                count_at, f"{count} transforms (the proposal's count)", f"found {len(transforms)}"
            )
        return cls(number, protocol, spi, tuple(transforms)), marker == _MORE_PROPOSALS

    @property
    def description(self) -> str:
        """strongSwan-like, e.g. "IKE:AES_CBC_256/HMAC_SHA2_256_128/HMAC_SHA2_256/MODP_2048"."""
        proto = name_of(ProtocolId, self.protocol)
        return f"{proto}:" + "/".join(t.name for t in self.transforms)


@dataclass(frozen=True)
class SaPayload(PayloadBody):
    TYPE: ClassVar[int] = PayloadType.SA
    proposals: tuple[Proposal, ...]

    def encode_body(self) -> bytes:
        n = len(self.proposals)
        return b"".join(p.encode(last=i == n - 1) for i, p in enumerate(self.proposals))

    @classmethod
    def _decode(cls, r: Reader, ctx: _Ctx) -> Self:
        proposals: list[Proposal] = []
        more = r.remaining > 0
        while more:
            proposal, more = Proposal.decode_from(r)
            proposals.append(proposal)
        return cls(tuple(proposals))


# --- simple payloads -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class KePayload(PayloadBody):
    TYPE: ClassVar[int] = PayloadType.KE
    group: int
    data: bytes

    def __post_init__(self) -> None:
        _uint("DH group", self.group, 16)
        _bytes("key exchange data", self.data)

    def encode_body(self) -> bytes:
        return _u16(self.group) + b"\0\0" + self.data

    @classmethod
    def _decode(cls, r: Reader, ctx: _Ctx) -> Self:
        r.require(4, "4-byte KE header (group, reserved)")
        group = r.u16("DH group")
        r.u16("reserved")
        return cls(group, r.rest())


def _render_identity(id_type: int, data: bytes) -> str:
    if id_type == IdType.IPV4_ADDR and len(data) == 4:
        return f"ipv4:{ipaddress.IPv4Address(data)}"
    if id_type == IdType.IPV6_ADDR and len(data) == 16:
        return f"ipv6:{ipaddress.IPv6Address(data)}"
    if id_type in (IdType.FQDN, IdType.RFC822_ADDR):
        label = "fqdn" if id_type == IdType.FQDN else "email"
        return f"{label}:{data.decode('ascii', 'backslashreplace')}"
    return f"{name_of(IdType, id_type).lower()}:{data.hex()}"


@dataclass(frozen=True)
class IdPayload(PayloadBody):
    """IDi (responder=False) or IDr (responder=True)."""

    TYPE: ClassVar[int] = PayloadType.IDi
    id_type: int
    data: bytes
    responder: bool

    def __post_init__(self) -> None:
        _uint("ID type", self.id_type, 8)
        _bytes("identification data", self.data)

    @property
    def payload_type(self) -> int:
        return PayloadType.IDr if self.responder else PayloadType.IDi

    def encode_body(self) -> bytes:
        return bytes([self.id_type, 0, 0, 0]) + self.data

    @classmethod
    def _decode(cls, r: Reader, ctx: _Ctx) -> Self:
        r.require(4, "4-byte ID header (type, reserved)")
        id_type = r.u8("ID type")
        r.take(3, "reserved")
        return cls(id_type, r.rest(), responder=ctx.payload_type == PayloadType.IDr)

    @property
    def display(self) -> str:
        """e.g. "fqdn:vpn.example.com", "ipv4:192.0.2.1", "der_asn1_dn:3082..."."""
        return _render_identity(self.id_type, self.data)


@dataclass(frozen=True)
class CertPayload(PayloadBody):
    TYPE: ClassVar[int] = PayloadType.CERT
    encoding: int
    data: bytes

    def __post_init__(self) -> None:
        _uint("certificate encoding", self.encoding, 8)
        _bytes("certificate data", self.data)

    def encode_body(self) -> bytes:
        return bytes([self.encoding]) + self.data

    @classmethod
    def _decode(cls, r: Reader, ctx: _Ctx) -> Self:
        encoding = r.u8("1-byte certificate encoding")
        return cls(encoding, r.rest())


@dataclass(frozen=True)
class CertReqPayload(PayloadBody):
    """`data` is, for X509_SIGNATURE, the concatenated SHA-1 hashes of trusted CAs' SubjectPublicKeyInfo."""

    TYPE: ClassVar[int] = PayloadType.CERTREQ
    encoding: int
    data: bytes

    def __post_init__(self) -> None:
        _uint("certificate encoding", self.encoding, 8)
        _bytes("certification authority", self.data)

    def encode_body(self) -> bytes:
        return bytes([self.encoding]) + self.data

    @classmethod
    def _decode(cls, r: Reader, ctx: _Ctx) -> Self:
        encoding = r.u8("1-byte certificate encoding")
        return cls(encoding, r.rest())

    @property
    def authority_hashes(self) -> tuple[bytes, ...] | None:
        """The 20-byte CA key hashes, or None if the data is not a whole number of them."""
        if self.encoding != CertEncoding.X509_SIGNATURE or len(self.data) % 20:
            return None
        return tuple(self.data[i : i + 20] for i in range(0, len(self.data), 20))


@dataclass(frozen=True)
class AuthPayload(PayloadBody):
    TYPE: ClassVar[int] = PayloadType.AUTH
    method: int
    data: bytes

    def __post_init__(self) -> None:
        _uint("auth method", self.method, 8)
        _bytes("authentication data", self.data)

    def encode_body(self) -> bytes:
        return bytes([self.method, 0, 0, 0]) + self.data

    @classmethod
    def _decode(cls, r: Reader, ctx: _Ctx) -> Self:
        r.require(4, "4-byte AUTH header (method, reserved)")
        method = r.u8("auth method")
        r.take(3, "reserved")
        return cls(method, r.rest())


@dataclass(frozen=True)
class NoncePayload(PayloadBody):
    TYPE: ClassVar[int] = PayloadType.NONCE
    data: bytes

    def __post_init__(self) -> None:
        _bytes("nonce", self.data)

    def encode_body(self) -> bytes:
        return self.data

    @classmethod
    def _decode(cls, r: Reader, ctx: _Ctx) -> Self:
        return cls(r.rest())


@dataclass(frozen=True)
class NotifyPayload(PayloadBody):
    TYPE: ClassVar[int] = PayloadType.NOTIFY
    type: int
    protocol: int = 0
    spi: bytes = b""
    data: bytes = b""

    def __post_init__(self) -> None:
        _uint("notify type", self.type, 16)
        _uint("protocol id", self.protocol, 8)
        _bytes("spi", self.spi, 0xFF)
        _bytes("notification data", self.data)

    def encode_body(self) -> bytes:
        return bytes([self.protocol, len(self.spi)]) + _u16(self.type) + self.spi + self.data

    @classmethod
    def _decode(cls, r: Reader, ctx: _Ctx) -> Self:
        r.require(4, "4-byte Notify header (protocol, SPI size, type)")
        protocol = r.u8("protocol id")
        spi_size = r.u8("spi size")
        ntype = r.u16("notify type")
        spi = r.take(spi_size, f"{spi_size}-byte SPI")
        return cls(ntype, protocol, spi, r.rest())

    @property
    def is_error(self) -> bool:
        """Types below 16384 report errors (RFC 7296 section 3.10.1)."""
        return self.type < 16384

    @property
    def name(self) -> str:
        return name_of(NotifyType, self.type)

    @property
    def invalid_ke_group(self) -> int | None:
        """For INVALID_KE_PAYLOAD the DH group the responder wants; None otherwise or if not 2 bytes."""
        if self.type != NotifyType.INVALID_KE_PAYLOAD or len(self.data) != 2:
            return None
        return int.from_bytes(self.data, "big")

    @property
    def signature_hash_algorithms(self) -> tuple[int, ...] | None:
        """For SIGNATURE_HASH_ALGORITHMS (RFC 7427) the announced hash ids; None otherwise or if odd-sized."""
        if self.type != NotifyType.SIGNATURE_HASH_ALGORITHMS or len(self.data) % 2:
            return None
        return tuple(int.from_bytes(self.data[i : i + 2], "big") for i in range(0, len(self.data), 2))

    @classmethod
    def invalid_ke(cls, group: int) -> NotifyPayload:
        return cls(NotifyType.INVALID_KE_PAYLOAD, data=_u16(group))


@dataclass(frozen=True)
class DeletePayload(PayloadBody):
    TYPE: ClassVar[int] = PayloadType.DELETE
    protocol: int
    spi_size: int
    spis: tuple[bytes, ...]

    def __post_init__(self) -> None:
        _uint("protocol id", self.protocol, 8)
        _uint("spi size", self.spi_size, 8)
        if len(self.spis) > 0xFFFF:
            raise ValueError(f"{len(self.spis)} SPIs do not fit the 16-bit count")
        if self.spis and not self.spi_size:
            raise ValueError("SPIs of 0 bytes cannot be listed (RFC 7296 3.11: an IKE SA delete lists none)")
        for spi in self.spis:
            _bytes("spi", spi, exact=self.spi_size)

    def encode_body(self) -> bytes:
        return bytes([self.protocol, self.spi_size]) + _u16(len(self.spis)) + b"".join(self.spis)

    @classmethod
    def _decode(cls, r: Reader, ctx: _Ctx) -> Self:
        r.require(4, "4-byte Delete header (protocol, SPI size, count)")
        protocol = r.u8("protocol id")
        spi_size = r.u8("spi size")
        count = r.u16("SPI count")
        if count and not spi_size:
            # 4 bytes would otherwise stand for 65535 empty SPIs: an amplification, and meaningless
            raise MalformedMessage(
                r.offset - 2, "no SPIs when the SPI size is 0 (RFC 7296 3.11)", f"found {count}"
            )
        needed = spi_size * count
        if needed != r.remaining:
            raise MalformedMessage(
                r.offset, f"{count} SPIs of {spi_size} bytes ({needed} bytes)", bytes_left(r.remaining)
            )
        spis = tuple(r.take(spi_size, "SPI") for _ in range(count))
        return cls(protocol, spi_size, spis)


@dataclass(frozen=True)
class VendorIdPayload(PayloadBody):
    TYPE: ClassVar[int] = PayloadType.VENDOR_ID
    data: bytes

    def __post_init__(self) -> None:
        _bytes("vendor id", self.data)

    def encode_body(self) -> bytes:
        return self.data

    @classmethod
    def _decode(cls, r: Reader, ctx: _Ctx) -> Self:
        return cls(r.rest())

    @property
    def name(self) -> str | None:
        return vendor_ids.describe(self.data)


# --- traffic selectors ----------------------------------------------------------------------------------

_TS_ADDR_LEN: dict[int, int] = {TsType.IPV4_ADDR_RANGE: 4, TsType.IPV6_ADDR_RANGE: 16}


@dataclass(frozen=True)
class TrafficSelector:
    """One selector. For types other than IPv4/IPv6 ranges the address fields are the two halves of the
    selector's remaining bytes (RFC 4595 FC ranges fit; unknown types round-trip unchanged)."""

    ts_type: int
    ip_protocol: int
    start_port: int
    end_port: int
    start_addr: bytes
    end_addr: bytes

    def __post_init__(self) -> None:
        _uint("TS type", self.ts_type, 8)
        _uint("IP protocol", self.ip_protocol, 8)
        _uint("start port", self.start_port, 16)
        _uint("end port", self.end_port, 16)
        _bytes("start address", self.start_addr, exact=_TS_ADDR_LEN.get(self.ts_type))
        _bytes("end address", self.end_addr, exact=len(self.start_addr))
        if 8 + 2 * len(self.start_addr) > 0xFFFF:
            raise ValueError("traffic selector does not fit its 16-bit length")

    def encode(self) -> bytes:
        length = 8 + len(self.start_addr) + len(self.end_addr)
        head = bytes([self.ts_type, self.ip_protocol]) + _u16(length)
        return head + _u16(self.start_port) + _u16(self.end_port) + self.start_addr + self.end_addr

    @classmethod
    def decode_from(cls, r: Reader) -> TrafficSelector:
        start = r.offset
        r.require(8, "8-byte traffic selector header")
        ts_type = r.u8("TS type")
        proto = r.u8("IP protocol")
        length = r.u16("selector length")
        _enter_struct(r, start, length, 8, "traffic selector")
        with r.restrict_to(length - 4, "traffic selector"):
            start_port = r.u16("start port")
            end_port = r.u16("end port")
            addr_len = _TS_ADDR_LEN.get(ts_type)
            if addr_len is None:
                if r.remaining % 2:
                    raise MalformedMessage(
                        start + 2, "even-sized address part of traffic selector", f"found {r.remaining} bytes"
                    )
                addr_len = r.remaining // 2
            elif length != 8 + 2 * addr_len:
                raise MalformedMessage(
                    start + 2,
                    f"selector length {8 + 2 * addr_len} for {name_of(TsType, ts_type)}",
                    f"found {length}",
                )
            start_addr = r.take(addr_len, "start address")
            end_addr = r.take(addr_len, "end address")
        return cls(ts_type, proto, start_port, end_port, start_addr, end_addr)

    @property
    def start_ip(self) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
        return ipaddress.ip_address(self.start_addr) if self.ts_type in _TS_ADDR_LEN else None

    @property
    def end_ip(self) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
        return ipaddress.ip_address(self.end_addr) if self.ts_type in _TS_ADDR_LEN else None


@dataclass(frozen=True)
class TsPayload(PayloadBody):
    """TSi (responder=False) or TSr (responder=True)."""

    TYPE: ClassVar[int] = PayloadType.TSi
    selectors: tuple[TrafficSelector, ...]
    responder: bool

    def __post_init__(self) -> None:
        if len(self.selectors) > 0xFF:
            raise ValueError(f"{len(self.selectors)} selectors do not fit the 8-bit count")

    @property
    def payload_type(self) -> int:
        return PayloadType.TSr if self.responder else PayloadType.TSi

    def encode_body(self) -> bytes:
        return bytes([len(self.selectors), 0, 0, 0]) + b"".join(s.encode() for s in self.selectors)

    @classmethod
    def _decode(cls, r: Reader, ctx: _Ctx) -> Self:
        r.require(4, "4-byte TS header (count, reserved)")
        count = r.u8("number of TSs")
        r.take(3, "reserved")
        selectors = tuple(TrafficSelector.decode_from(r) for _ in range(count))
        return cls(selectors, responder=ctx.payload_type == PayloadType.TSr)


# --- configuration, EAP --------------------------------------------------------------------------------


@dataclass(frozen=True)
class CpPayload(PayloadBody):
    TYPE: ClassVar[int] = PayloadType.CP
    cfg_type: int
    attributes: tuple[tuple[int, bytes], ...]

    def __post_init__(self) -> None:
        _uint("CFG type", self.cfg_type, 8)
        for attr_type, value in self.attributes:
            _uint("attribute type", attr_type, 15)
            _bytes("attribute value", value, 0xFFFF)

    def encode_body(self) -> bytes:
        out = bytearray([self.cfg_type, 0, 0, 0])
        for attr_type, value in self.attributes:
            out += _u16(attr_type) + _u16(len(value)) + value
        return bytes(out)

    @classmethod
    def _decode(cls, r: Reader, ctx: _Ctx) -> Self:
        r.require(4, "4-byte CP header (type, reserved)")
        cfg_type = r.u8("CFG type")
        r.take(3, "reserved")
        attrs: list[tuple[int, bytes]] = []
        while r.remaining:
            r.require(4, "4-byte configuration attribute header")
            attr_type = r.u16("attribute type") & 0x7FFF  # the top bit is reserved
            length = r.u16("attribute length")
            attrs.append((attr_type, r.take(length, f"{length}-byte value of configuration attribute")))
        return cls(cfg_type, tuple(attrs))


_EAP_NO_TYPE = (EapCode.SUCCESS, EapCode.FAILURE)


@dataclass(frozen=True)
class EapPayload(PayloadBody):
    """An EAP packet (RFC 3748): Success/Failure carry no type (`eap_type` None); everything else has one."""

    TYPE: ClassVar[int] = PayloadType.EAP
    code: int
    identifier: int
    eap_type: int | None
    data: bytes

    def __post_init__(self) -> None:
        _uint("EAP code", self.code, 8)
        _uint("EAP identifier", self.identifier, 8)
        if self.code in _EAP_NO_TYPE:
            if self.eap_type is not None:
                raise ValueError(f"EAP {name_of(EapCode, self.code)} has no type")
        elif self.eap_type is None:
            raise ValueError(f"EAP {name_of(EapCode, self.code)} needs a type")
        else:
            _uint("EAP type", self.eap_type, 8)
        _bytes("EAP data", self.data, 0xFFFF - 5)

    def encode_body(self) -> bytes:
        typed = b"" if self.eap_type is None else bytes([self.eap_type])
        length = 4 + len(typed) + len(self.data)
        return bytes([self.code, self.identifier]) + _u16(length) + typed + self.data

    @classmethod
    def _decode(cls, r: Reader, ctx: _Ctx) -> Self:
        start = r.offset
        available = r.remaining
        r.require(4, "4-byte EAP header")
        code = r.u8("EAP code")
        identifier = r.u8("EAP identifier")
        length = r.u16("EAP length")
        if length != available:
            raise MalformedMessage(start + 2, f"EAP length {available} (the payload's)", f"found {length}")
        eap_type = None if code in _EAP_NO_TYPE else r.u8(f"EAP type for code {name_of(EapCode, code)}")
        return cls(code, identifier, eap_type, r.rest())

    @property
    def type_name(self) -> str | None:
        return None if self.eap_type is None else name_of(EapType, self.eap_type)


# --- encrypted ------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class EncryptedPayload(PayloadBody):
    """SK: `body` is IV || ciphertext || ICV, opaque here; `first_inner` is the generic header's Next
    Payload, i.e. the type of the first payload inside."""

    TYPE: ClassVar[int] = PayloadType.SK
    first_inner: int
    body: bytes

    def __post_init__(self) -> None:
        _uint("first inner payload", self.first_inner, 8)
        _bytes("SK body", self.body)

    @property
    def next_payload_field(self) -> int | None:
        return self.first_inner

    def encode_body(self) -> bytes:
        return self.body

    @classmethod
    def _decode(cls, r: Reader, ctx: _Ctx) -> Self:
        return cls(ctx.next_payload, r.rest())


@dataclass(frozen=True)
class EncryptedFragmentPayload(PayloadBody):
    """SKF (RFC 7383 section 2.5): one fragment; `first_inner` is meaningful in fragment 1 only (else 0)."""

    TYPE: ClassVar[int] = PayloadType.SKF
    first_inner: int
    fragment_number: int
    total_fragments: int
    body: bytes

    def __post_init__(self) -> None:
        _uint("first inner payload", self.first_inner, 8)
        _uint("fragment number", self.fragment_number, 16)
        _uint("total fragments", self.total_fragments, 16)
        _bytes("SKF body", self.body)

    @property
    def next_payload_field(self) -> int | None:
        return self.first_inner

    def encode_body(self) -> bytes:
        return _u16(self.fragment_number) + _u16(self.total_fragments) + self.body

    @classmethod
    def _decode(cls, r: Reader, ctx: _Ctx) -> Self:
        r.require(4, "4-byte SKF header (fragment number, total)")
        number = r.u16("fragment number")
        total = r.u16("total fragments")
        return cls(ctx.next_payload, number, total, r.rest())


@dataclass(frozen=True)
class UnknownPayload(PayloadBody):
    """A payload type we do not implement (or IKEv1's), kept raw so a report can show it."""

    type: int
    critical: bool
    body: bytes

    def __post_init__(self) -> None:
        _uint("payload type", self.type, 8)
        if self.type == PayloadType.NONE or self.type in PAYLOAD_CLASSES:
            raise ValueError(f"payload type {self.type} has its own class")
        _bytes("payload body", self.body)

    @property
    def payload_type(self) -> int:
        return self.type

    def encode_body(self) -> bytes:
        return self.body

    @classmethod
    def _decode(cls, r: Reader, ctx: _Ctx) -> Self:
        return cls(ctx.payload_type, ctx.critical, r.rest())


Payload: TypeAlias = (
    SaPayload
    | KePayload
    | IdPayload
    | CertPayload
    | CertReqPayload
    | AuthPayload
    | NoncePayload
    | NotifyPayload
    | DeletePayload
    | VendorIdPayload
    | TsPayload
    | CpPayload
    | EapPayload
    | EncryptedPayload
    | EncryptedFragmentPayload
    | UnknownPayload
)

PAYLOAD_CLASSES: dict[int, type[Payload]] = {
    PayloadType.SA: SaPayload,
    PayloadType.KE: KePayload,
    PayloadType.IDi: IdPayload,
    PayloadType.IDr: IdPayload,
    PayloadType.CERT: CertPayload,
    PayloadType.CERTREQ: CertReqPayload,
    PayloadType.AUTH: AuthPayload,
    PayloadType.NONCE: NoncePayload,
    PayloadType.NOTIFY: NotifyPayload,
    PayloadType.DELETE: DeletePayload,
    PayloadType.VENDOR_ID: VendorIdPayload,
    PayloadType.TSi: TsPayload,
    PayloadType.TSr: TsPayload,
    PayloadType.CP: CpPayload,
    PayloadType.EAP: EapPayload,
    PayloadType.SK: EncryptedPayload,
    PayloadType.SKF: EncryptedFragmentPayload,
}
