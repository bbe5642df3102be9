"""A small scripted IKEv2 responder for tests: it answers IKE_SA_INIT for real (DH, nonce, keys) and
IKE_AUTH with certificate, AUTH (RSA, method 1) and EAP, or misbehaves on purpose (hostile server).

It is test code, built on vpndoctor's codec and crypto: interoperability with an independent
implementation is proven against strongSwan in the lab; this responder exists to script faults that
strongSwan will not produce (truncation, bad lengths, wrong SPIs, endless fragments, floods)."""

from __future__ import annotations

import os
import socket
import struct
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.x509.oid import NameOID

from vpndoctor.ike import auth as ike_auth
from vpndoctor.ike import sk
from vpndoctor.ike.constants import (
    AuthMethod,
    CertEncoding,
    EapCode,
    EapType,
    ExchangeType,
    IdType,
    NotifyType,
    PayloadType,
)
from vpndoctor.ike.dh import new_key_exchange
from vpndoctor.ike.keys import CipherSuite, IkeKeys, derive_ike_keys
from vpndoctor.ike.message import Header, Message, decode_message, decode_payload_chain, encode_payload_chain
from vpndoctor.ike.payloads import (
    AuthPayload,
    CertPayload,
    EapPayload,
    EncryptedFragmentPayload,
    IdPayload,
    KePayload,
    NoncePayload,
    NotifyPayload,
    Payload,
    SaPayload,
)
from vpndoctor.ike.proposals import suite_from_proposal

RESPONSE = 0x20
SERVER_NAME = "hostile.test"


def make_cert() -> tuple[rsa.RSAPrivateKey, bytes]:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, SERVER_NAME)])
    now = datetime.now(UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(1)
        .not_valid_before(now - timedelta(days=1))
        .not_valid_after(now + timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(SERVER_NAME)]), critical=False)
        .sign(key, hashes.SHA256())
    )
    return key, cert.public_bytes(serialization.Encoding.DER)


_CERT: tuple[rsa.RSAPrivateKey, bytes] | None = None


def cert() -> tuple[rsa.RSAPrivateKey, bytes]:
    global _CERT
    if _CERT is None:
        _CERT = make_cert()
    return _CERT


@dataclass
class ScriptedResponder:
    """`behaviour` names the fault: normal, cookie, invalid-ke, no-proposal, truncated, oversized,
    bad-lengths, wrong-spi, garbage, endless-fragments, fragmented, auth-failed, silent-auth, flood (each
    datagram answered with `flood_datagrams` different garbage datagrams), flood-same (the same garbage
    datagram, `flood_datagrams` times)."""

    behaviour: str = "normal"
    rng: Callable[[int], bytes] = os.urandom
    spi_r: bytes = field(default_factory=lambda: os.urandom(8))
    fragment_bytes: int = 300
    flood_datagrams: int = 2000
    _keys: IkeKeys | None = None
    _suite: CipherSuite | None = None
    _init_response: bytes = b""
    _nonce_i: bytes = b""
    _cookie: bytes = b"\x42" * 16
    sent_fragments: int = 0
    _answered: dict[bytes, list[bytes]] = field(default_factory=dict)
    # Like strongSwan: an SA exists from the IKE_SA_INIT answer until an IKE_AUTH it refuses; requests
    # other than the expected message ID (or a retransmission of the last one) are ignored.
    half_open: bool = False
    _expected_id: int = 1
    _last: tuple[int, list[bytes]] | None = None
    processed: list[int] = field(default_factory=list)  # message IDs of encrypted requests handled

    def handle(self, data: bytes, natt: bool) -> list[bytes]:
        if natt:
            if data[:4] != b"\x00\x00\x00\x00":
                return []
            data = data[4:]
        if self.behaviour == "garbage":
            return [os.urandom(200)]
        if self.behaviour == "oversized":
            return [b"\x00" * 60000]
        if self.behaviour == "flood":
            return [os.urandom(200) for _ in range(self.flood_datagrams)]
        if self.behaviour == "flood-same":
            return [b"\x00" * 200] * self.flood_datagrams
        msg = decode_message(data)
        h = msg.header
        if h.exchange == ExchangeType.IKE_SA_INIT:
            return self._sa_init(msg)
        assert self._keys is not None and self._suite is not None
        if not self.half_open:
            return []  # an SA we dropped: its SPI is unknown now
        if self._last is not None and h.message_id == self._last[0]:
            return self._last[1]  # a retransmission gets the same answer
        if h.message_id != self._expected_id:
            return []
        first, plain = sk.unprotect(data, self._keys.initiator(), self._suite)
        inner = decode_payload_chain(first, plain)
        self.processed.append(h.message_id)
        self._expected_id += 1
        if h.exchange == ExchangeType.IKE_AUTH and any(isinstance(p, AuthPayload) for p in inner):
            # An AUTH we cannot verify (no shared key): refused, and the SA is gone.
            self.half_open = False
            replies = self._protect(h, [NotifyPayload(type=NotifyType.AUTHENTICATION_FAILED)])
        elif h.exchange == ExchangeType.IKE_AUTH and h.message_id == 1:
            replies = self._auth(h, inner)
        elif h.exchange == ExchangeType.IKE_AUTH:
            replies = self._protect(h, [EapPayload(EapCode.REQUEST, 2, EapType.MSCHAPV2, b"\x01" * 20)])
        else:
            replies = self._protect(h, [])  # an INFORMATIONAL is answered; a half-open SA stays
        if replies:  # a request the responder stayed silent to was, for it, never there
            self._last = (h.message_id, replies)
        return replies

    def _reply_header(self, h: Header, spi_r: bytes, next_payload: int = 0) -> Header:
        return Header(
            spi_i=h.spi_i,
            spi_r=spi_r,
            next_payload=next_payload,
            exchange=h.exchange,
            flags=RESPONSE,
            message_id=h.message_id,
        )

    def _sa_init(self, msg: Message) -> list[bytes]:
        # A retransmitted request gets the same answer (RFC 7296 §2.1), not a new key exchange.
        key = msg.encode()
        if key in self._answered:
            return self._answered[key]
        replies = self._sa_init_new(msg)
        self._answered[key] = replies
        return replies

    def _sa_init_new(self, msg: Message) -> list[bytes]:
        h = msg.header
        payloads = msg.payloads
        if self.behaviour == "cookie" and not any(
            isinstance(p, NotifyPayload) and p.type == NotifyType.COOKIE for p in payloads
        ):
            return [
                Message(
                    self._reply_header(h, b"\x00" * 8),
                    (NotifyPayload(type=NotifyType.COOKIE, data=self._cookie),),
                ).encode()
            ]
        if self.behaviour == "no-proposal":
            return [
                Message(
                    self._reply_header(h, b"\x00" * 8), (NotifyPayload(type=NotifyType.NO_PROPOSAL_CHOSEN),)
                ).encode()
            ]
        sa = next(p for p in payloads if isinstance(p, SaPayload))
        ke = next(p for p in payloads if isinstance(p, KePayload))
        nonce = next(p for p in payloads if isinstance(p, NoncePayload))
        # The proposal is chosen first, then the KE payload is checked against its group (RFC 7296 1.3).
        groups = [t.id for p in sa.proposals for t in p.transforms if t.type == 4]
        wanted = 19 if self.behaviour == "invalid-ke" else (ke.group if ke.group in groups else groups[0])
        if ke.group != wanted:
            return [
                Message(
                    self._reply_header(h, b"\x00" * 8),
                    (NotifyPayload(type=NotifyType.INVALID_KE_PAYLOAD, data=struct.pack("!H", wanted)),),
                ).encode()
            ]
        proposal = next(p for p in sa.proposals if any(t.type == 4 and t.id == wanted for t in p.transforms))
        chosen = type(proposal)(
            number=proposal.number,
            protocol=proposal.protocol,
            spi=b"",
            transforms=tuple(
                next(t for t in proposal.transforms if t.type == tt and (tt != 4 or t.id == wanted))
                for tt in (1, 2, 3, 4)
                if any(t.type == tt for t in proposal.transforms)
            ),
        )
        suite = suite_from_proposal(chosen)
        mine = new_key_exchange(ke.group, self.rng)
        nonce_r = self.rng(32)
        spi_r = self.spi_r
        reply = [
            SaPayload((chosen,)),
            KePayload(ke.group, mine.public_bytes()),
            NoncePayload(nonce_r),
            NotifyPayload(type=NotifyType.IKEV2_FRAGMENTATION_SUPPORTED),
        ]
        raw = Message(self._reply_header(h, spi_r), tuple(reply)).encode()
        self._keys = derive_ike_keys(suite, mine.shared_secret(ke.data), nonce.data, nonce_r, h.spi_i, spi_r)
        self.half_open = True
        self._expected_id, self._last = 1, None
        self._suite = suite
        self._init_response = raw
        self._nonce_i = nonce.data
        if self.behaviour == "truncated":
            return [raw[: len(raw) // 2]]
        if self.behaviour == "bad-lengths":
            broken = bytearray(raw)
            broken[28 + 2 : 28 + 4] = struct.pack("!H", 0xFFF0)  # first payload claims 65520 bytes
            return [bytes(broken)]
        if self.behaviour == "wrong-spi":
            return [os.urandom(8) + raw[8:]]
        return [raw]

    def _auth(self, h: Header, inner: tuple[Payload, ...]) -> list[bytes]:
        assert self._keys is not None and self._suite is not None
        if self.behaviour == "silent-auth":
            self._expected_id -= 1  # as if the request never arrived
            self.processed.pop()
            return []
        if self.behaviour == "auth-failed":
            self.half_open = False
            return self._protect(h, [NotifyPayload(type=NotifyType.AUTHENTICATION_FAILED)])
        key, der = cert()
        idr = IdPayload(id_type=IdType.FQDN, data=SERVER_NAME.encode(), responder=True)
        signed = ike_auth.responder_signed_octets(
            self._init_response, self._nonce_i, self._keys.sk_pr, idr.encode_body(), self._suite.prf
        )
        signature = key.sign(signed, padding.PKCS1v15(), hashes.SHA1())
        payloads: list[Payload] = [
            idr,
            CertPayload(CertEncoding.X509_SIGNATURE, der),
            AuthPayload(AuthMethod.RSA_SIG, signature),
            EapPayload(EapCode.REQUEST, 1, EapType.IDENTITY, b""),
        ]
        if self.behaviour in ("fragmented", "endless-fragments"):
            return self._fragments(h, payloads)
        return self._protect(h, payloads)

    def _protect(self, h: Header, payloads: list[Payload]) -> list[bytes]:
        assert self._keys is not None and self._suite is not None
        first, plain = encode_payload_chain(tuple(payloads))
        header = self._reply_header(h, self.spi_r, PayloadType.SK)
        return [sk.protect(header, first, plain, self._keys.responder(), self._suite, self.rng)]

    def _fragments(self, h: Header, payloads: list[Payload]) -> list[bytes]:
        assert self._keys is not None and self._suite is not None
        first, plain = encode_payload_chain(tuple(payloads))
        header = self._reply_header(h, self.spi_r, PayloadType.SKF)
        size = self.fragment_bytes
        parts = [plain[i : i + size] for i in range(0, len(plain), size)]
        if self.behaviour == "endless-fragments":
            # Claims 60000 fragments and only ever sends the first ones: never completes.
            total = 60000
            parts = parts * 40
        else:
            total = len(parts)
        out = []
        for i, part in enumerate(parts):
            number = i + 1 if self.behaviour != "endless-fragments" else (i % 50) + 1
            out.append(
                sk.protect_fragment(
                    header,
                    first if number == 1 else 0,
                    number,
                    total,
                    part,
                    self._keys.responder(),
                    self._suite,
                    self.rng,
                )
            )
        out.reverse()  # out of order on purpose
        self.sent_fragments += len(out)
        return out


_ = EncryptedFragmentPayload  # imported for readers of this module: what _fragments builds


class UdpResponderThread:
    """Serve a ScriptedResponder on two loopback UDP ports (IKE and NAT-T) in a thread."""

    def __init__(self, behaviour: str, host: str = "127.0.0.1") -> None:
        self.responder = ScriptedResponder(behaviour=behaviour)
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        self.socks = [socket.socket(family, socket.SOCK_DGRAM) for _ in range(2)]
        for s in self.socks:
            s.bind((host, 0))
            s.settimeout(0.1)
        self.port, self.natt_port = (s.getsockname()[1] for s in self.socks)
        self._stop = threading.Event()
        self.received = 0
        self.errors: list[str] = []
        self.thread = threading.Thread(target=self._serve, daemon=True)

    def __enter__(self) -> UdpResponderThread:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self.thread.join(timeout=5)
        for s in self.socks:
            s.close()

    def _serve(self) -> None:
        while not self._stop.is_set():
            for i, s in enumerate(self.socks):
                try:
                    data, addr = s.recvfrom(65535)
                except (TimeoutError, OSError):
                    continue
                self.received += 1
                try:
                    replies = self.responder.handle(data, natt=i == 1)
                except Exception as exc:  # noqa: BLE001 - a test responder logs what it cannot handle
                    self.errors.append(repr(exc))
                    continue
                for r in replies:
                    try:
                        s.sendto(b"\x00\x00\x00\x00" + r if i == 1 else r, addr)
                    except OSError as exc:
                        self.errors.append(repr(exc))
