"""Read a TLS 1.3 server's encrypted first flight (RFC 8446): key schedule, record decryption, messages.

In TLS 1.3 everything after the ServerHello is encrypted, including the CertificateRequest (and the CA
names it lists) and the server's certificate. The audit needs both from a raw hello (so it sees what a
server sends whatever the local OpenSSL would negotiate), and the `ssl` module exposes neither: it never
says whether a CertificateRequest arrived. Only the server's handshake traffic keys are needed, which follow
from our ephemeral key share alone (no PSK, no client secrets), so we derive them here with `cryptography`
(X25519/P-256, HKDF, AES-GCM/CCM, ChaCha20-Poly1305). Sans-I/O: the caller passes its private keys and the
bytes; nothing here draws randomness or touches a socket.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import Enum

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, x25519
from cryptography.hazmat.primitives.ciphers.aead import AESCCM, AESGCM, ChaCha20Poly1305
from cryptography.hazmat.primitives.kdf.hkdf import HKDFExpand

from vpndoctor.tls._reader import Reader
from vpndoctor.tls.dn import name_to_rfc4514
from vpndoctor.tls.errors import TlsDecodeError
from vpndoctor.tls.hello import (
    GROUP_SECP256R1,
    GROUP_X25519,
    Alert,
    CertificateRequest,
    Extension,
    ExtensionType,
    HandshakeType,
    ServerHello,
    Version,
    parse_alert,
    parse_server_hello,
)
from vpndoctor.tls.records import ContentType, HandshakeMessage, Record, RecordBuffer

HANDSHAKE_FINISHED = 20
HANDSHAKE_CERTIFICATE_VERIFY = 15
EXT_CERTIFICATE_AUTHORITIES = 47
MAX_HANDSHAKE_BYTES = 256 * 1024

PrivateKey = x25519.X25519PrivateKey | ec.EllipticCurvePrivateKey


@dataclass(frozen=True)
class _Suite:
    hash_name: str
    key_bytes: int
    aead: str  # "gcm" | "chacha" | "ccm" | "ccm8"


SUITES13: dict[int, _Suite] = {
    0x1301: _Suite("sha256", 16, "gcm"),
    0x1302: _Suite("sha384", 32, "gcm"),
    0x1303: _Suite("sha256", 32, "chacha"),
    0x1304: _Suite("sha256", 16, "ccm"),
    0x1305: _Suite("sha256", 16, "ccm8"),
}


def _hash_algorithm(name: str) -> hashes.HashAlgorithm:
    return hashes.SHA384() if name == "sha384" else hashes.SHA256()


def hkdf_extract(hash_name: str, salt: bytes, ikm: bytes) -> bytes:
    return hmac.new(salt, ikm, hash_name).digest()


def hkdf_expand_label(hash_name: str, secret: bytes, label: str, context: bytes, length: int) -> bytes:
    """RFC 8446 7.1 HKDF-Expand-Label."""
    full = b"tls13 " + label.encode()
    info = length.to_bytes(2, "big") + bytes([len(full)]) + full + bytes([len(context)]) + context
    return HKDFExpand(_hash_algorithm(hash_name), length, info).derive(secret)


def server_handshake_secret(hash_name: str, shared_secret: bytes, transcript_hash: bytes) -> bytes:
    """server_handshake_traffic_secret for a full (non-PSK) handshake, RFC 8446 7.1."""
    size = hashlib.new(hash_name).digest_size
    early = hkdf_extract(hash_name, b"\x00" * size, b"\x00" * size)
    empty_hash = hashlib.new(hash_name, b"").digest()
    derived = hkdf_expand_label(hash_name, early, "derived", empty_hash, size)
    handshake = hkdf_extract(hash_name, derived, shared_secret)
    return hkdf_expand_label(hash_name, handshake, "s hs traffic", transcript_hash, size)


class RecordDecryptor:
    """Decrypts the server's TLS 1.3 handshake records in order (RFC 8446 5.2, 5.3)."""

    def __init__(self, suite: int, traffic_secret: bytes) -> None:
        spec = SUITES13.get(suite)
        if spec is None:
            raise ValueError(f"not a TLS 1.3 suite: 0x{suite:04x}")
        key = hkdf_expand_label(spec.hash_name, traffic_secret, "key", b"", spec.key_bytes)
        self._iv = hkdf_expand_label(spec.hash_name, traffic_secret, "iv", b"", 12)
        self._aead: AESGCM | ChaCha20Poly1305 | AESCCM
        if spec.aead == "gcm":
            self._aead = AESGCM(key)
        elif spec.aead == "chacha":
            self._aead = ChaCha20Poly1305(key)
        else:
            self._aead = AESCCM(key, tag_length=8 if spec.aead == "ccm8" else 16)
        self._seq = 0

    def decrypt(self, record: Record) -> tuple[int, bytes]:
        """(inner content type, plaintext) of one application_data record."""
        nonce = bytes(a ^ b for a, b in zip(self._iv, self._seq.to_bytes(12, "big"), strict=True))
        header = bytes([record.content_type]) + record.version.to_bytes(2, "big")
        header += len(record.fragment).to_bytes(2, "big")
        try:
            inner = self._aead.decrypt(nonce, record.fragment, header)
        except Exception:  # noqa: BLE001 - cryptography raises InvalidTag or ValueError for bad input
            raise TlsDecodeError(record.offset, "a record that decrypts with the handshake keys") from None
        self._seq += 1
        stripped = inner.rstrip(b"\x00")
        if not stripped:
            raise TlsDecodeError(record.offset, "an inner content type in TLSInnerPlaintext")
        return stripped[-1], stripped[:-1]


def _handshake_messages(stream: bytes) -> tuple[list[tuple[int, bytes, bytes]], int]:
    """Whole handshake messages (type, body, raw) at the start of `stream`, and the bytes they used."""
    out: list[tuple[int, bytes, bytes]] = []
    pos = 0
    while len(stream) - pos >= 4:
        length = int.from_bytes(stream[pos + 1 : pos + 4], "big")
        if length > MAX_HANDSHAKE_BYTES:
            raise TlsDecodeError(pos + 1, f"a handshake message of at most {MAX_HANDSHAKE_BYTES} bytes")
        if len(stream) - pos < 4 + length:
            break
        raw = stream[pos : pos + 4 + length]
        out.append((stream[pos], raw[4:], raw))
        pos += 4 + length
    return out, pos


def parse_certificate13(body: bytes) -> tuple[bytes, ...]:
    """TLS 1.3 Certificate (RFC 8446 4.4.2): the DER certificates, leaf first."""
    r = Reader(body)
    r.vector(1, "certificate_request_context")
    entries = r.vector(3, "certificate_list")
    r.expect_end("Certificate")
    certs: list[bytes] = []
    while entries.remaining:
        at = entries.offset
        cert = entries.vector(3, "cert_data").rest()
        if not cert:
            raise TlsDecodeError(at, "a non-empty certificate")
        entries.vector(2, "CertificateEntry extensions")
        certs.append(cert)
    return tuple(certs)


def parse_certificate_request13(body: bytes) -> CertificateRequest:
    """TLS 1.3 CertificateRequest (RFC 8446 4.3.2): CA names come from certificate_authorities (4.2.4)."""
    r = Reader(body)
    r.vector(1, "certificate_request_context")
    exts = r.vector(2, "CertificateRequest extensions")
    r.expect_end("CertificateRequest")
    sig_algs: tuple[int, ...] = ()
    texts: list[str] = []
    ders: list[bytes] = []
    seen: set[int] = set()
    while exts.remaining:
        at = exts.offset
        ext_type = exts.u16("extension type")
        data = exts.vector(2, "extension data")
        if ext_type in seen:
            raise TlsDecodeError(at, "each extension type once", f"found {ext_type} twice")
        seen.add(ext_type)
        if ext_type == ExtensionType.SIGNATURE_ALGORITHMS:
            sv = data.vector(2, "supported_signature_algorithms")
            if not sv.remaining or sv.remaining % 2:
                raise TlsDecodeError(sv.offset, "a non-empty, even-length signature algorithm list")
            sig_algs = tuple(sv.u16("signature algorithm") for _ in range(sv.remaining // 2))
            data.expect_end("signature_algorithms")
        elif ext_type == EXT_CERTIFICATE_AUTHORITIES:
            names = data.vector(2, "authorities")
            data.expect_end("certificate_authorities")
            while names.remaining:
                dn = names.vector(2, "DistinguishedName")
                where = dn.offset
                der = dn.rest()
                texts.append(name_to_rfc4514(der, where))
                ders.append(der)
        else:
            data.rest()
    return CertificateRequest((), sig_algs, tuple(texts), tuple(ders))


class Tls13Status(Enum):
    INCOMPLETE = "incomplete"
    COMPLETE = "complete"  # through the server's Finished
    ALERT = "alert"
    UNDECRYPTABLE = "undecryptable"  # no key share of ours matches (e.g. a HelloRetryRequest)


@dataclass(frozen=True)
class Tls13Flight:
    status: Tls13Status
    server_hello: ServerHello | None = None
    encrypted_extensions: tuple[Extension, ...] = ()
    certificate_request: CertificateRequest | None = None
    certificates: tuple[bytes, ...] = ()
    alert: Alert | None = None
    handshake_types: tuple[int, ...] = field(default=())
    reason: str = ""


def _shared_secret(hello: ServerHello, private_keys: Mapping[int, PrivateKey]) -> bytes | None:
    ext = hello.extension(ExtensionType.KEY_SHARE)
    if ext is None:
        return None
    r = Reader(ext.data)
    group = r.u16("key share group")
    peer = r.vector(2, "key_exchange").rest()
    r.expect_end("key_share")
    key = private_keys.get(group)
    if key is None:
        return None
    try:
        if group == GROUP_X25519 and isinstance(key, x25519.X25519PrivateKey):
            return key.exchange(x25519.X25519PublicKey.from_public_bytes(peer))
        if group == GROUP_SECP256R1 and isinstance(key, ec.EllipticCurvePrivateKey):
            pub = ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), peer)
            return key.exchange(ec.ECDH(), pub)
    except ValueError:
        raise TlsDecodeError(0, f"a valid public key for group 0x{group:04x}") from None
    return None


def read_tls13_flight(
    data: bytes, client_hello_message: bytes, private_keys: Mapping[int, PrivateKey]
) -> Tls13Flight:
    """Parse everything the server sent for one TLS 1.3 ClientHello (whose handshake message, header
    included, is `client_hello_message`), decrypting up to the server's Finished.

    Re-parses from the first byte each call (flights are small), so it can serve as the "enough?" test of a
    read loop. Malformed or undecryptable bytes raise `TlsDecodeError`.
    """
    buf = RecordBuffer()
    events: list[Record | HandshakeMessage] = buf.feed(data)
    hello: ServerHello | None = None
    decryptor: RecordDecryptor | None = None
    stream = b""
    types: list[int] = []
    ee: tuple[Extension, ...] = ()
    request: CertificateRequest | None = None
    certs: tuple[bytes, ...] = ()
    for ev in events:
        if isinstance(ev, HandshakeMessage):
            if hello is not None or ev.msg_type != HandshakeType.SERVER_HELLO:
                raise TlsDecodeError(ev.offset, "a ServerHello, then encrypted records")
            hello = parse_server_hello(ev.body, ev.offset + 4)
            types.append(ev.msg_type)
            if hello.is_hello_retry_request or hello.version != Version.TLS1_3:
                return Tls13Flight(
                    Tls13Status.UNDECRYPTABLE,
                    hello,
                    handshake_types=tuple(types),
                    reason="not a TLS 1.3 ServerHello",
                )
            shared = _shared_secret(hello, private_keys)
            spec = SUITES13.get(hello.cipher_suite)
            if shared is None or spec is None:
                return Tls13Flight(
                    Tls13Status.UNDECRYPTABLE,
                    hello,
                    handshake_types=tuple(types),
                    reason="the server chose a key share or suite we cannot use",
                )
            raw_sh = bytes([ev.msg_type]) + len(ev.body).to_bytes(3, "big") + ev.body
            th = hashlib.new(spec.hash_name, client_hello_message + raw_sh).digest()
            decryptor = RecordDecryptor(
                hello.cipher_suite, server_handshake_secret(spec.hash_name, shared, th)
            )
            continue
        if ev.content_type == ContentType.ALERT:
            alert = parse_alert(ev.fragment, ev.offset + 5)
            if hello is None and not alert.is_fatal and alert.description != 0:
                # A warning before the ServerHello (unrecognized_name, from some Java and Apache servers)
                # does not end the handshake, as parse_server_flight also reads it. Found by fuzzing.
                continue
            return Tls13Flight(Tls13Status.ALERT, hello, ee, request, certs, alert, tuple(types))
        if ev.content_type == ContentType.CHANGE_CIPHER_SPEC:
            continue  # RFC 8446 D.4 middlebox compatibility: ignored
        if ev.content_type != ContentType.APPLICATION_DATA or decryptor is None:
            raise TlsDecodeError(ev.offset, "an encrypted record after the ServerHello")
        inner_type, plaintext = decryptor.decrypt(ev)
        if inner_type == ContentType.ALERT:
            alert = parse_alert(plaintext, ev.offset + 5)
            return Tls13Flight(Tls13Status.ALERT, hello, ee, request, certs, alert, tuple(types))
        if inner_type != ContentType.HANDSHAKE:
            raise TlsDecodeError(ev.offset, "an encrypted handshake record", f"found type {inner_type}")
        stream += plaintext
        messages, used = _handshake_messages(stream)
        stream = stream[used:]
        for msg_type, body, _raw in messages:
            types.append(msg_type)
            if msg_type == HandshakeType.ENCRYPTED_EXTENSIONS:
                r = Reader(body)
                exts = r.vector(2, "EncryptedExtensions")
                r.expect_end("EncryptedExtensions")
                items = []
                while exts.remaining:
                    t = exts.u16("extension type")
                    items.append(Extension(t, exts.vector(2, "extension data").rest()))
                ee = tuple(items)
            elif msg_type == HandshakeType.CERTIFICATE_REQUEST:
                request = parse_certificate_request13(body)
            elif msg_type == HandshakeType.CERTIFICATE:
                certs = parse_certificate13(body)
            elif msg_type == HANDSHAKE_FINISHED:
                return Tls13Flight(Tls13Status.COMPLETE, hello, ee, request, certs, None, tuple(types))
            elif msg_type != HANDSHAKE_CERTIFICATE_VERIFY:
                raise TlsDecodeError(ev.offset, "a server handshake message", f"found type {msg_type}")
    return Tls13Flight(Tls13Status.INCOMPLETE, hello, ee, request, certs, None, tuple(types))
