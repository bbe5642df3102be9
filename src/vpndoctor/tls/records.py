"""TLS record layer (RFC 5246 section 6.2, RFC 8446 section 5.1) and handshake reassembly, sans-I/O.

Hand-written because the auditor must read whatever a server answers to hellos the local OpenSSL refuses to
send (SSLv3, NULL suites). `RecordBuffer` takes bytes as they arrive and hands back complete records and
whole handshake messages (which may span records); it is strict and bounded, and any decoding failure is a
sticky `TlsDecodeError`.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum

from vpndoctor.tls._reader import Reader
from vpndoctor.tls.errors import TlsDecodeError

RECORD_HEADER_BYTES = 5
# RFC 5246 6.2.3: a TLSCiphertext fragment may exceed 2^14 by up to 2048 bytes; plaintext ones may not, but
# we cannot tell them apart before decryption, so the looser bound applies to all.
MAX_FRAGMENT_BYTES = 2**14 + 2048
MAX_BUFFERED_BYTES = 256 * 1024
HANDSHAKE_HEADER_BYTES = 4


class ContentType(IntEnum):
    CHANGE_CIPHER_SPEC = 20
    ALERT = 21
    HANDSHAKE = 22
    APPLICATION_DATA = 23
    HEARTBEAT = 24


@dataclass(frozen=True)
class Record:
    content_type: ContentType
    version: int
    fragment: bytes
    offset: int  # of the record header, from the first byte fed


@dataclass(frozen=True)
class HandshakeMessage:
    msg_type: int
    body: bytes
    offset: int  # of the handshake header within the reassembled handshake stream


def encode_record(content_type: int, version: int, fragment: bytes) -> bytes:
    """One record; the caller splits anything longer than 2^14 bytes."""
    if len(fragment) > 2**14:
        raise ValueError("a plaintext record fragment holds at most 2^14 bytes")
    return bytes([content_type]) + version.to_bytes(2, "big") + len(fragment).to_bytes(2, "big") + fragment


def parse_record_header(header: bytes, offset: int = 0) -> tuple[ContentType, int, int]:
    """(content type, version, fragment length) of a 5-byte record header; strict."""
    r = Reader(header, offset)
    ctype = r.u8("content type")
    try:
        content_type = ContentType(ctype)
    except ValueError:
        raise TlsDecodeError(offset, "a TLS content type (20-24)", f"found {ctype}") from None
    version = r.u16("record version")
    if version >> 8 != 3 or version & 0xFF > 4:
        raise TlsDecodeError(offset + 1, "record version 0x0300-0x0304", f"found 0x{version:04x}")
    length = r.u16("record length")
    if length > MAX_FRAGMENT_BYTES:
        raise TlsDecodeError(offset + 3, f"record length <= {MAX_FRAGMENT_BYTES}", f"found {length}")
    if length == 0 and content_type != ContentType.APPLICATION_DATA:
        # RFC 5246 6.2.1: zero-length fragments are allowed only for application data.
        raise TlsDecodeError(offset + 3, f"a non-empty {content_type.name} record", "found length 0")
    return content_type, version, length


def looks_like_sslv2(data: bytes) -> bool:
    """True if `data` starts like an SSLv2 SERVER-HELLO (2-byte header with the high bit set, type 4).

    Servers that still speak SSLv2 may answer in that format; the record parser would reject it.
    """
    if len(data) < 3 or not data[0] & 0x80:
        return False
    length = ((data[0] & 0x7F) << 8) | data[1]
    return length >= 11 and data[2] == 4


@dataclass(frozen=True)
class Sslv2ServerHello:
    version: int
    certificate: bytes
    cipher_specs: tuple[int, ...]  # 3-byte SSLv2 cipher kinds
    connection_id: bytes


def parse_sslv2_server_hello(data: bytes) -> Sslv2ServerHello | None:
    """An SSLv2 SERVER-HELLO at the start of `data`, or None if more bytes are needed."""
    if len(data) < 2:
        return None
    if not data[0] & 0x80:
        raise TlsDecodeError(0, "an SSLv2 2-byte record header")
    length = ((data[0] & 0x7F) << 8) | data[1]
    if len(data) < 2 + length:
        return None
    r = Reader(data[2 : 2 + length], 2)
    if (mt := r.u8("message type")) != 4:
        raise TlsDecodeError(2, "SSLv2 SERVER-HELLO (4)", f"found {mt}")
    r.u8("session id hit")
    r.u8("certificate type")
    version = r.u16("server version")
    cert_len = r.u16("certificate length")
    specs_len = r.u16("cipher specs length")
    conn_len = r.u16("connection id length")
    if specs_len % 3:
        raise TlsDecodeError(r.offset - 4, "cipher specs length a multiple of 3", f"found {specs_len}")
    certificate = r.take(cert_len, "certificate")
    specs = r.take(specs_len, "cipher specs")
    connection_id = r.take(conn_len, "connection id")
    r.expect_end("SSLv2 SERVER-HELLO")
    kinds = tuple(int.from_bytes(specs[i : i + 3], "big") for i in range(0, len(specs), 3))
    return Sslv2ServerHello(version, certificate, kinds, connection_id)


class RecordBuffer:
    """Incremental record parser and handshake reassembler.

    `feed(data)` returns, in wire order, every complete non-handshake `Record` and every complete
    `HandshakeMessage`. Bytes fed in total are capped at `max_bytes`; a handshake message may not be
    interrupted by another content type (RFC 8446 5.1). After an error every call raises the same error.
    """

    def __init__(self, max_bytes: int = MAX_BUFFERED_BYTES) -> None:
        self._max_bytes = max_bytes
        self._buf = bytearray()
        self._consumed = 0  # bytes of the stream before _buf[0]
        self._total = 0
        self._hs = bytearray()
        self._hs_consumed = 0
        self._error: TlsDecodeError | None = None
        self.records: list[Record] = []  # every record seen, handshake ones included

    @property
    def pending_bytes(self) -> int:
        """Bytes received that do not yet form a complete record or handshake message."""
        return len(self._buf) + len(self._hs)

    @property
    def pending_handshake(self) -> tuple[int, int] | None:
        """(type, announced body length) of the handshake message begun but not complete, if any: what a
        peer said it was sending when a size cap stopped us (e.g. a 200 KB Certificate)."""
        if len(self._hs) < HANDSHAKE_HEADER_BYTES:
            return None
        return self._hs[0], int.from_bytes(self._hs[1:4], "big")

    def feed(self, data: bytes) -> list[Record | HandshakeMessage]:
        if self._error is not None:
            raise self._error
        try:
            return self._feed(data)
        except TlsDecodeError as exc:
            self._error = exc
            raise

    def _feed(self, data: bytes) -> list[Record | HandshakeMessage]:
        self._total += len(data)
        if self._total > self._max_bytes:
            raise TlsDecodeError(self._max_bytes, f"at most {self._max_bytes} bytes from the server")
        self._buf += data
        out: list[Record | HandshakeMessage] = []
        while len(self._buf) >= RECORD_HEADER_BYTES:
            offset = self._consumed
            ctype, version, length = parse_record_header(bytes(self._buf[:RECORD_HEADER_BYTES]), offset)
            if len(self._buf) < RECORD_HEADER_BYTES + length:
                break
            fragment = bytes(self._buf[RECORD_HEADER_BYTES : RECORD_HEADER_BYTES + length])
            del self._buf[: RECORD_HEADER_BYTES + length]
            self._consumed += RECORD_HEADER_BYTES + length
            record = Record(ctype, version, fragment, offset)
            self.records.append(record)
            if ctype == ContentType.HANDSHAKE:
                self._hs += fragment
                out.extend(self._drain_handshake())
            else:
                if self._hs:
                    raise TlsDecodeError(offset, "the rest of a handshake message", f"found {ctype.name}")
                out.append(record)
        return out

    def _drain_handshake(self) -> list[HandshakeMessage]:
        out: list[HandshakeMessage] = []
        while len(self._hs) >= HANDSHAKE_HEADER_BYTES:
            msg_type = self._hs[0]
            length = int.from_bytes(self._hs[1:4], "big")
            if length > self._max_bytes:
                raise TlsDecodeError(self._hs_consumed + 1, f"handshake length <= {self._max_bytes}")
            end = HANDSHAKE_HEADER_BYTES + length
            if len(self._hs) < end:
                break
            out.append(
                HandshakeMessage(msg_type, bytes(self._hs[HANDSHAKE_HEADER_BYTES:end]), self._hs_consumed)
            )
            del self._hs[:end]
            self._hs_consumed += end
        return out
