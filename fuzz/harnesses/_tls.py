"""TLS fixtures: the hellos the audit sends (fixed keys and random), and the server side of a TLS 1.3
handshake, so that a harness can encrypt the fuzzer's bytes as the server's first flight."""

from __future__ import annotations

import hashlib

from cryptography.hazmat.primitives.asymmetric import ec, x25519
from cryptography.hazmat.primitives.ciphers.aead import AESCCM, AESGCM, ChaCha20Poly1305

from vpndoctor.tls.audit import HelloJob, PreparedHello, prepare_hello
from vpndoctor.tls.hello import GROUP_X25519, ExtensionType, HandshakeType, Version
from vpndoctor.tls.records import ContentType, encode_record
from vpndoctor.tls.tls13 import SUITES13, hkdf_expand_label, server_handshake_secret

X_KEY = x25519.X25519PrivateKey.from_private_bytes(bytes(range(1, 33)))
P_KEY = ec.derive_private_key(0x1234567890ABCDEF, ec.SECP256R1())
SERVER_KEY = x25519.X25519PrivateKey.from_private_bytes(bytes(range(33, 65)))
RANDOM = bytes(range(100, 132))


def hello(version: Version, suites: tuple[int, ...]) -> PreparedHello:
    return prepare_hello(HelloJob(0, "version", version, suites), "vpn.test", RANDOM, X_KEY, P_KEY)


HELLOS = (
    hello(Version.TLS1_2, (0xC02F, 0x002F, 0x0035, 0x00FF)),
    hello(Version.TLS1_3, tuple(SUITES13)),
    hello(Version.SSLv3, (0x0004, 0x000A)),
    hello(Version.TLS1_0, (0x002F, 0x0001)),
)
TLS13 = HELLOS[1]
SUITES = tuple(SUITES13)


def _vec(n: int, data: bytes) -> bytes:
    return len(data).to_bytes(n, "big") + data


def server_hello(suite: int, session_id: bytes = b"") -> bytes:
    """A TLS 1.3 ServerHello handshake message (header included) with our X25519 share."""
    share = SERVER_KEY.public_key().public_bytes_raw()
    exts = (
        ExtensionType.SUPPORTED_VERSIONS.to_bytes(2, "big") + _vec(2, Version.TLS1_3.to_bytes(2, "big"))
    ) + (
        ExtensionType.KEY_SHARE.to_bytes(2, "big") + _vec(2, GROUP_X25519.to_bytes(2, "big") + _vec(2, share))
    )
    body = (
        Version.TLS1_2.to_bytes(2, "big")
        + bytes(range(200, 232))
        + _vec(1, session_id)
        + suite.to_bytes(2, "big")
        + b"\x00"
        + _vec(2, exts)
    )
    return bytes([HandshakeType.SERVER_HELLO]) + _vec(3, body)


_Aead = AESGCM | ChaCha20Poly1305 | AESCCM
_keys: dict[tuple[int, bytes], tuple[_Aead, bytes]] = {}


def _server_keys(suite: int, raw_server_hello: bytes) -> tuple[_Aead, bytes]:
    """The server's handshake AEAD and IV after this ServerHello (derived once: the keys are fixed)."""
    cached = _keys.get((suite, raw_server_hello))
    if cached is not None:
        return cached
    spec = SUITES13[suite]
    shared = SERVER_KEY.exchange(X_KEY.public_key())
    th = hashlib.new(spec.hash_name, TLS13.client_hello_message + raw_server_hello).digest()
    secret = server_handshake_secret(spec.hash_name, shared, th)
    key = hkdf_expand_label(spec.hash_name, secret, "key", b"", spec.key_bytes)
    iv = hkdf_expand_label(spec.hash_name, secret, "iv", b"", 12)
    aead: _Aead
    if spec.aead == "gcm":
        aead = AESGCM(key)
    elif spec.aead == "chacha":
        aead = ChaCha20Poly1305(key)
    else:
        aead = AESCCM(key, tag_length=8 if spec.aead == "ccm8" else 16)
    _keys[(suite, raw_server_hello)] = aead, iv
    return aead, iv


class ServerFlight13:
    """Encrypts TLSInnerPlaintext records as the server would after `server_hello(suite)`."""

    def __init__(self, suite: int, raw_server_hello: bytes) -> None:
        self._aead, self._iv = _server_keys(suite, raw_server_hello)
        self._tag = 8 if SUITES13[suite].aead == "ccm8" else 16
        self._seq = 0

    def record(self, inner_plaintext: bytes) -> bytes:
        """One application_data record carrying `inner_plaintext` (content, type byte, zero padding)."""
        nonce = bytes(a ^ b for a, b in zip(self._iv, self._seq.to_bytes(12, "big"), strict=True))
        self._seq += 1
        length = len(inner_plaintext) + self._tag
        header = (
            bytes([ContentType.APPLICATION_DATA])
            + Version.TLS1_2.to_bytes(2, "big")
            + length.to_bytes(2, "big")
        )
        return header + self._aead.encrypt(nonce, inner_plaintext, header)


def tls13_flight(suite: int, inner_plaintexts: list[bytes], ccs: bool = True) -> bytes:
    """The bytes a TLS 1.3 server sends: ServerHello, maybe a ChangeCipherSpec, then encrypted records."""
    sh = server_hello(suite, TLS13_SESSION_ID)
    out = encode_record(ContentType.HANDSHAKE, Version.TLS1_2, sh)
    if ccs:
        out += encode_record(ContentType.CHANGE_CIPHER_SPEC, Version.TLS1_2, b"\x01")
    enc = ServerFlight13(suite, sh)
    return out + b"".join(enc.record(p) for p in inner_plaintexts)


def _session_id(wire: bytes) -> bytes:
    at = 5 + 4 + 2 + 32
    return wire[at + 1 : at + 1 + wire[at]]


TLS13_SESSION_ID = _session_id(TLS13.wire)
