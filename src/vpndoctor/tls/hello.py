"""ClientHello builder and server first-flight parser (RFC 5246, RFC 8446), sans-I/O.

Hand-written because the auditor must send hellos the local OpenSSL refuses to send (SSLv3, NULL suites,
any suite list in any order), as testssl.sh does in its socket mode. The caller supplies the random, the
session id and the X25519 public key; this module only turns them into bytes and parses what comes back,
up to ServerHelloDone (TLS <= 1.2) or the ServerHello (TLS 1.3, whose later messages are encrypted).
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from enum import Enum, IntEnum

from vpndoctor.tls._reader import Reader
from vpndoctor.tls.dn import name_to_rfc4514
from vpndoctor.tls.errors import TlsDecodeError
from vpndoctor.tls.records import (
    ContentType,
    HandshakeMessage,
    Record,
    RecordBuffer,
    Sslv2ServerHello,
    encode_record,
    parse_sslv2_server_hello,
)


class Version(IntEnum):
    SSLv3 = 0x0300
    TLS1_0 = 0x0301
    TLS1_1 = 0x0302
    TLS1_2 = 0x0303
    TLS1_3 = 0x0304


class HandshakeType(IntEnum):
    CLIENT_HELLO = 1
    SERVER_HELLO = 2
    NEW_SESSION_TICKET = 4
    ENCRYPTED_EXTENSIONS = 8
    CERTIFICATE = 11
    SERVER_KEY_EXCHANGE = 12
    CERTIFICATE_REQUEST = 13
    SERVER_HELLO_DONE = 14
    CERTIFICATE_STATUS = 22


class ExtensionType(IntEnum):
    SERVER_NAME = 0
    STATUS_REQUEST = 5
    SUPPORTED_GROUPS = 10
    EC_POINT_FORMATS = 11
    SIGNATURE_ALGORITHMS = 13
    ALPN = 16
    EXTENDED_MASTER_SECRET = 23
    SESSION_TICKET = 35
    SUPPORTED_VERSIONS = 43
    PSK_KEY_EXCHANGE_MODES = 45
    KEY_SHARE = 51
    RENEGOTIATION_INFO = 0xFF01


GROUP_X25519 = 0x001D
GROUP_SECP256R1 = 0x0017
GROUP_SECP384R1 = 0x0018
GROUP_SECP521R1 = 0x0019
DEFAULT_GROUPS = (GROUP_X25519, GROUP_SECP256R1, GROUP_SECP384R1, GROUP_SECP521R1)
# ecdsa_secp256r1_sha256, ecdsa_secp384r1_sha384, rsa_pss_rsae_sha256/384/512, rsa_pkcs1_sha256/384/512,
# rsa_pkcs1_sha1, ecdsa_sha1: broad enough that old and new servers both find one they sign with.
DEFAULT_SIGNATURE_ALGORITHMS = (
    0x0403, 0x0503, 0x0804, 0x0805, 0x0806, 0x0401, 0x0501, 0x0601, 0x0201, 0x0203,
)  # fmt: skip

# RFC 8446 4.1.3: a HelloRetryRequest is a ServerHello whose random is SHA-256("HelloRetryRequest").
HELLO_RETRY_REQUEST_RANDOM = hashlib.sha256(b"HelloRetryRequest").digest()
# RFC 8446 4.1.3: a TLS 1.3 server negotiating 1.2 or below sets these as the last 8 bytes of its random.
DOWNGRADE_TLS12 = b"DOWNGRD\x01"
DOWNGRADE_TLS11 = b"DOWNGRD\x00"

MAX_SUITES = 32767  # the cipher_suites vector holds at most 2^16-2 bytes


class AlertLevel(IntEnum):
    WARNING = 1
    FATAL = 2


ALERT_DESCRIPTIONS: dict[int, str] = {
    0: "close_notify",
    10: "unexpected_message",
    20: "bad_record_mac",
    21: "decryption_failed",
    22: "record_overflow",
    30: "decompression_failure",
    40: "handshake_failure",
    41: "no_certificate",
    42: "bad_certificate",
    43: "unsupported_certificate",
    44: "certificate_revoked",
    45: "certificate_expired",
    46: "certificate_unknown",
    47: "illegal_parameter",
    48: "unknown_ca",
    49: "access_denied",
    50: "decode_error",
    51: "decrypt_error",
    60: "export_restriction",
    70: "protocol_version",
    71: "insufficient_security",
    80: "internal_error",
    86: "inappropriate_fallback",
    90: "user_canceled",
    100: "no_renegotiation",
    109: "missing_extension",
    110: "unsupported_extension",
    111: "certificate_unobtainable",
    112: "unrecognized_name",
    113: "bad_certificate_status_response",
    114: "bad_certificate_hash_value",
    115: "unknown_psk_identity",
    116: "certificate_required",
    120: "no_application_protocol",
}


# --------------------------------------------------------------------------------------------- encoding


def _vec(length_size: int, data: bytes) -> bytes:
    if len(data) >= 1 << (8 * length_size):
        raise ValueError(f"{len(data)} bytes do not fit a {length_size}-byte length prefix")
    return len(data).to_bytes(length_size, "big") + data


def _u16s(values: Sequence[int]) -> bytes:
    return b"".join(v.to_bytes(2, "big") for v in values)


def _ext(ext_type: int, data: bytes) -> tuple[int, bytes]:
    return (ext_type, data)


def default_extensions(
    version: Version, server_name: str | None, x25519_public_key: bytes | None
) -> list[tuple[int, bytes]]:
    """The extensions `build_client_hello` sends for `version`, in order, as (type, data)."""
    if version == Version.SSLv3:
        return []  # SSLv3 has no extensions; some SSLv3-only stacks reject a hello that carries any
    exts: list[tuple[int, bytes]] = []
    if server_name is not None:
        host = server_name.encode("idna")
        exts.append(_ext(ExtensionType.SERVER_NAME, _vec(2, b"\x00" + _vec(2, host))))
    exts.append(_ext(ExtensionType.SUPPORTED_GROUPS, _vec(2, _u16s(DEFAULT_GROUPS))))
    exts.append(_ext(ExtensionType.EC_POINT_FORMATS, _vec(1, b"\x00")))  # uncompressed
    # RFC 5246 7.4.1.4.1: signature_algorithms is meaningless before TLS 1.2 and must not be offered then.
    if version >= Version.TLS1_2:
        exts.append(_ext(ExtensionType.SIGNATURE_ALGORITHMS, _vec(2, _u16s(DEFAULT_SIGNATURE_ALGORITHMS))))
    exts.append(_ext(ExtensionType.SESSION_TICKET, b""))
    if version == Version.TLS1_3:
        if x25519_public_key is None or len(x25519_public_key) != 32:
            raise ValueError("a TLS 1.3 hello needs a 32-byte X25519 public key")
        exts.append(_ext(ExtensionType.SUPPORTED_VERSIONS, _vec(1, _u16s([Version.TLS1_3]))))
        share = GROUP_X25519.to_bytes(2, "big") + _vec(2, x25519_public_key)
        exts.append(_ext(ExtensionType.KEY_SHARE, _vec(2, share)))
        exts.append(_ext(ExtensionType.PSK_KEY_EXCHANGE_MODES, _vec(1, b"\x01")))  # psk_dhe_ke
    exts.append(_ext(ExtensionType.RENEGOTIATION_INFO, _vec(1, b"")))
    return exts


def build_client_hello(
    version: Version,
    suites: Sequence[int],
    server_name: str | None,
    random: bytes,
    session_id: bytes = b"",
    extensions: Sequence[tuple[int, bytes]] = (),
    x25519_public_key: bytes | None = None,
    compression_methods: bytes = b"\x00",
) -> bytes:
    """One handshake record holding a ClientHello for exactly `version`.

    `extensions` are (type, data) pairs: one whose type matches a default extension replaces it, the others
    are appended. For TLS 1.3 the legacy version is TLS 1.2 and `x25519_public_key` is required. The record
    version is TLS 1.0 (SSLv3 for an SSLv3 hello), as browsers send, since some servers reject higher ones.
    """
    if len(random) != 32:
        raise ValueError("the client random is 32 bytes")
    if len(session_id) > 32:
        raise ValueError("a session id is at most 32 bytes")
    if not suites or len(suites) > MAX_SUITES:
        raise ValueError(f"offer between 1 and {MAX_SUITES} cipher suites")
    if any(not 0 <= s <= 0xFFFF for s in suites):
        raise ValueError("a cipher suite is a 16-bit value")
    if not compression_methods:
        raise ValueError("offer at least one compression method")
    if version == Version.SSLv3 and extensions:
        raise ValueError("SSLv3 hellos carry no extensions")
    exts = default_extensions(version, server_name, x25519_public_key)
    overrides = dict(extensions)
    if len(overrides) != len(extensions):
        raise ValueError("each extension type may appear once")
    exts = [(t, overrides.pop(t, d)) for t, d in exts]
    exts.extend((t, d) for t, d in extensions if t in overrides)
    legacy_version = min(version, Version.TLS1_2)
    body = (
        legacy_version.to_bytes(2, "big")
        + random
        + _vec(1, session_id)
        + _vec(2, _u16s(suites))
        + _vec(1, compression_methods)
    )
    if version != Version.SSLv3:
        body += _vec(2, b"".join(t.to_bytes(2, "big") + _vec(2, d) for t, d in exts))
    message = bytes([HandshakeType.CLIENT_HELLO]) + _vec(3, body)
    record_version = Version.SSLv3 if version == Version.SSLv3 else Version.TLS1_0
    if len(message) <= 2**14:
        return encode_record(ContentType.HANDSHAKE, record_version, message)
    chunks = [message[i : i + 2**14] for i in range(0, len(message), 2**14)]
    return b"".join(encode_record(ContentType.HANDSHAKE, record_version, c) for c in chunks)


# --------------------------------------------------------------------------------------------- decoding


@dataclass(frozen=True)
class Extension:
    ext_type: int
    data: bytes


def _parse_extensions(r: Reader, what: str) -> tuple[Extension, ...]:
    vec = r.vector(2, f"{what} extensions")
    out: list[Extension] = []
    seen: set[int] = set()
    while vec.remaining:
        at = vec.offset
        ext_type = vec.u16("extension type")
        data = vec.take(vec.u16("length of extension data"), "extension data")  # as vector(2, ...).rest()
        if ext_type in seen:
            raise TlsDecodeError(at, "each extension type once", f"found {ext_type} twice")
        seen.add(ext_type)
        out.append(Extension(ext_type, data))
    return tuple(out)


@dataclass(frozen=True)
class ClientHello:
    legacy_version: int
    random: bytes
    session_id: bytes
    cipher_suites: tuple[int, ...]
    compression_methods: bytes
    extensions: tuple[Extension, ...]

    def extension(self, ext_type: int) -> Extension | None:
        return next((e for e in self.extensions if e.ext_type == ext_type), None)


def parse_client_hello(body: bytes, base_offset: int = 0) -> ClientHello:
    """A ClientHello body (after the handshake header): for captures and for checking what we build."""
    r = Reader(body, base_offset)
    legacy_version = r.u16("client version")
    random = r.take(32, "client random")
    sid = r.vector(1, "session id")
    if sid.remaining > 32:
        raise TlsDecodeError(sid.offset - 1, "a session id of at most 32 bytes", f"found {sid.remaining}")
    session_id = sid.rest()
    sv = r.vector(2, "cipher_suites")
    if not sv.remaining or sv.remaining % 2:
        raise TlsDecodeError(sv.offset, "a non-empty, even-length cipher suite list")
    suites = tuple(sv.u16("cipher suite") for _ in range(sv.remaining // 2))
    comp = r.vector(1, "compression_methods")
    if not comp.remaining:
        raise TlsDecodeError(comp.offset, "at least one compression method")
    compression = comp.rest()
    extensions: tuple[Extension, ...] = ()
    if r.remaining:
        extensions = _parse_extensions(r, "ClientHello")
    r.expect_end("ClientHello")
    return ClientHello(legacy_version, random, session_id, suites, compression, extensions)


@dataclass(frozen=True)
class ServerHello:
    legacy_version: int
    version: int  # negotiated: supported_versions if present, else legacy_version
    random: bytes
    session_id: bytes
    cipher_suite: int
    compression_method: int
    extensions: tuple[Extension, ...]
    is_hello_retry_request: bool

    def extension(self, ext_type: int) -> Extension | None:
        return next((e for e in self.extensions if e.ext_type == ext_type), None)

    @property
    def downgrade_sentinel(self) -> int | None:
        """The version a TLS 1.3-capable server says it was downgraded to (RFC 8446 4.1.3), if any."""
        tail = self.random[-8:]
        if tail == DOWNGRADE_TLS12:
            return Version.TLS1_2
        if tail == DOWNGRADE_TLS11:
            return Version.TLS1_1
        return None


def parse_server_hello(body: bytes, base_offset: int = 0) -> ServerHello:
    r = Reader(body, base_offset)
    legacy_version = r.u16("server version")
    random = r.take(32, "server random")
    sid = r.vector(1, "session id")
    if sid.remaining > 32:
        raise TlsDecodeError(sid.offset - 1, "a session id of at most 32 bytes", f"found {sid.remaining}")
    session_id = sid.rest()
    suite = r.u16("cipher suite")
    compression = r.u8("compression method")
    extensions: tuple[Extension, ...] = ()
    if r.remaining:
        extensions = _parse_extensions(r, "ServerHello")
    r.expect_end("ServerHello")
    version = legacy_version
    for ext in extensions:
        if ext.ext_type == ExtensionType.SUPPORTED_VERSIONS:
            if len(ext.data) != 2:
                raise TlsDecodeError(base_offset, "a 2-byte supported_versions in ServerHello")
            version = int.from_bytes(ext.data, "big")
    return ServerHello(
        legacy_version,
        version,
        random,
        session_id,
        suite,
        compression,
        extensions,
        random == HELLO_RETRY_REQUEST_RANDOM,
    )


def parse_certificate(body: bytes, base_offset: int = 0) -> tuple[bytes, ...]:
    """TLS <= 1.2 Certificate: the DER certificates, leaf first, not interpreted here."""
    r = Reader(body, base_offset)
    vec = r.vector(3, "certificate_list")
    r.expect_end("Certificate")
    certs: list[bytes] = []
    while vec.remaining:
        at = vec.offset
        cert = vec.vector(3, "certificate").rest()
        if not cert:
            raise TlsDecodeError(at, "a non-empty certificate")
        certs.append(cert)
    return tuple(certs)


@dataclass(frozen=True)
class CertificateRequest:
    certificate_types: tuple[int, ...]
    signature_algorithms: tuple[int, ...]  # empty before TLS 1.2
    certificate_authorities: tuple[str, ...]  # RFC 4514 text
    certificate_authorities_der: tuple[bytes, ...]


def parse_certificate_request(body: bytes, version: int, base_offset: int = 0) -> CertificateRequest:
    """TLS <= 1.2 CertificateRequest (RFC 5246 7.4.4); `version` is the one the ServerHello chose."""
    r = Reader(body, base_offset)
    types_vec = r.vector(1, "certificate_types")
    if not types_vec.remaining:
        raise TlsDecodeError(types_vec.offset, "at least one certificate type")
    cert_types = tuple(types_vec.rest())
    sig_algs: tuple[int, ...] = ()
    if version >= Version.TLS1_2:
        sv = r.vector(2, "supported_signature_algorithms")
        if not sv.remaining or sv.remaining % 2:
            raise TlsDecodeError(sv.offset, "a non-empty, even-length signature algorithm list")
        sig_algs = tuple(sv.u16("signature algorithm") for _ in range(sv.remaining // 2))
    ca_vec = r.vector(2, "certificate_authorities")
    r.expect_end("CertificateRequest")
    texts: list[str] = []
    ders: list[bytes] = []
    while ca_vec.remaining:
        dn = ca_vec.vector(2, "DistinguishedName")
        at = dn.offset
        der = dn.rest()
        texts.append(name_to_rfc4514(der, at))
        ders.append(der)
    return CertificateRequest(cert_types, sig_algs, tuple(texts), tuple(ders))


@dataclass(frozen=True)
class Alert:
    level: int
    description: int

    @property
    def description_name(self) -> str:
        return ALERT_DESCRIPTIONS.get(self.description, f"unknown({self.description})")

    @property
    def is_fatal(self) -> bool:
        return self.level == AlertLevel.FATAL


def parse_alert(fragment: bytes, base_offset: int = 0) -> Alert:
    r = Reader(fragment, base_offset)
    level = r.u8("alert level")
    description = r.u8("alert description")
    r.expect_end("Alert")
    if level not in (AlertLevel.WARNING, AlertLevel.FATAL):
        raise TlsDecodeError(base_offset, "alert level 1 or 2", f"found {level}")
    return Alert(level, description)


def encode_alert(level: int, description: int, version: int = Version.TLS1_2) -> bytes:
    return encode_record(ContentType.ALERT, version, bytes([level, description]))


class FlightStatus(Enum):
    COMPLETE = "complete"  # TLS <= 1.2, up to and including ServerHelloDone
    ENCRYPTED = "encrypted"  # TLS 1.3 ServerHello; what follows is encrypted
    HELLO_RETRY = "hello_retry"  # TLS 1.3 HelloRetryRequest
    ALERT = "alert"
    SSLV2 = "sslv2"  # the server answered in SSLv2 format
    INCOMPLETE = "incomplete"  # more bytes are needed


@dataclass(frozen=True)
class ServerFlight:
    status: FlightStatus
    server_hello: ServerHello | None = None
    certificates: tuple[bytes, ...] = ()
    certificate_request: CertificateRequest | None = None
    server_key_exchange: bytes | None = None
    alert: Alert | None = None
    handshake_types: tuple[int, ...] = field(default=())  # in wire order, for evidence
    sslv2_server_hello: Sslv2ServerHello | None = None


_ORDER: dict[int, int] = {
    HandshakeType.SERVER_HELLO: 0,
    HandshakeType.CERTIFICATE: 1,
    HandshakeType.CERTIFICATE_STATUS: 2,
    HandshakeType.SERVER_KEY_EXCHANGE: 3,
    HandshakeType.CERTIFICATE_REQUEST: 4,
    HandshakeType.SERVER_HELLO_DONE: 5,
}


def parse_server_flight(data: bytes) -> ServerFlight:
    """What the server sent in answer to one ClientHello, from the first byte it sent.

    Stops at ServerHelloDone, at an alert, or after a TLS 1.3 ServerHello; bytes after that point are
    ignored. Malformed or out-of-order messages raise `TlsDecodeError`; too few bytes give INCOMPLETE.
    """
    if data and data[0] & 0x80:
        # No TLS content type has the high bit set: this can only be an SSLv2-format answer.
        v2 = parse_sslv2_server_hello(data)
        if v2 is None:
            return ServerFlight(FlightStatus.INCOMPLETE)
        return ServerFlight(FlightStatus.SSLV2, sslv2_server_hello=v2)
    buf = RecordBuffer()
    events: list[Record | HandshakeMessage] = []
    try:
        events = buf.feed(data)
    except TlsDecodeError:
        # Bytes after the end of the flight may be anything (e.g. TLS 1.3 records we cannot parse yet);
        # parse only as far as the flight goes and re-raise if it ended inside the damage.
        events = _events_before_error(data)
    hello: ServerHello | None = None
    certs: tuple[bytes, ...] = ()
    request: CertificateRequest | None = None
    ske: bytes | None = None
    types: list[int] = []
    last = -1
    for ev in events:
        if isinstance(ev, Record):
            if ev.content_type == ContentType.ALERT:
                alert = parse_alert(ev.fragment, ev.offset + 5)
                if not alert.is_fatal and alert.description != 0:
                    # A warning such as unrecognized_name (some Java and Apache servers send it for an SNI
                    # they do not know) does not end the handshake: the ServerHello follows.
                    continue
                return ServerFlight(FlightStatus.ALERT, hello, certs, request, ske, alert, tuple(types))
            raise TlsDecodeError(ev.offset, "a handshake or alert record", f"found {ev.content_type.name}")
        types.append(ev.msg_type)
        rank = _ORDER.get(ev.msg_type)
        if rank is None or rank <= last or (rank > 0 and hello is None):
            raise TlsDecodeError(
                ev.offset, "the next message of a server flight", f"found type {ev.msg_type}"
            )
        last = rank
        at = ev.offset + 4
        if ev.msg_type == HandshakeType.SERVER_HELLO:
            hello = parse_server_hello(ev.body, at)
            if hello.is_hello_retry_request:
                return ServerFlight(FlightStatus.HELLO_RETRY, hello, handshake_types=tuple(types))
            if hello.version >= Version.TLS1_3:
                return ServerFlight(FlightStatus.ENCRYPTED, hello, handshake_types=tuple(types))
        elif ev.msg_type == HandshakeType.CERTIFICATE:
            certs = parse_certificate(ev.body, at)
        elif ev.msg_type == HandshakeType.SERVER_KEY_EXCHANGE:
            ske = ev.body
        elif ev.msg_type == HandshakeType.CERTIFICATE_REQUEST:
            assert hello is not None
            request = parse_certificate_request(ev.body, hello.version, at)
        elif ev.msg_type == HandshakeType.SERVER_HELLO_DONE:
            if ev.body:
                raise TlsDecodeError(at, "an empty ServerHelloDone")
            return ServerFlight(FlightStatus.COMPLETE, hello, certs, request, ske, None, tuple(types))
    return ServerFlight(FlightStatus.INCOMPLETE, hello, certs, request, ske, None, tuple(types))


def _events_before_error(data: bytes) -> list[Record | HandshakeMessage]:
    """Events from the longest prefix of whole records that parses; re-raise if that prefix has none."""
    buf = RecordBuffer()
    events: list[Record | HandshakeMessage] = []
    pos = 0
    while pos + 5 <= len(data):
        length = int.from_bytes(data[pos + 3 : pos + 5], "big")
        end = min(pos + 5 + length, len(data))
        try:
            events.extend(buf.feed(data[pos:end]))
        except TlsDecodeError:
            if not _flight_ends_in(events):
                raise
            return events
        pos = end
    return events


def _flight_ends_in(events: list[Record | HandshakeMessage]) -> bool:
    for ev in events:
        if isinstance(ev, Record) and ev.content_type == ContentType.ALERT:
            return True
        if isinstance(ev, HandshakeMessage) and ev.msg_type == HandshakeType.SERVER_HELLO_DONE:
            return True
        if isinstance(ev, HandshakeMessage) and ev.msg_type == HandshakeType.SERVER_HELLO:
            # A TLS 1.3 ServerHello ends the part we can read; peek without failing on bad bytes.
            try:
                hello = parse_server_hello(ev.body)
            except TlsDecodeError:
                return False
            if hello.version >= Version.TLS1_3 or hello.is_hello_retry_request:
                return True
    return False
