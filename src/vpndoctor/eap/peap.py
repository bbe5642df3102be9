"""PEAPv0 as Windows speaks it (draft-kamath-pppext-peapv0, [MS-PEAP]), peer side, for `EapPeer`: phase 1
is a TLS 1.2 handshake (server certificate verified against the given anchors before anything of phase 2 is
sent, what Windows' "Verify the server's identity" does); phase 2 runs an inner EAP method (EAP-MSCHAPv2,
or EAP-TLS with a client certificate) inside the tunnel, then the server's Result TLV (EAP type 33,
"Extensions") - with [MS-PEAP]'s Crypto-Binding TLV when the server sends one (NPS does; FreeRADIUS does not).

PEAPv0 tunnels inner EAP packets without their Code, Identifier and Length (they are those of the outer
packet), except the Extensions packets and - as FreeRADIUS sends it - a complete Identity request; the
header-less form is what we answer with, the full one for Extensions.

Keys: without crypto binding the MSK is the first 64 octets of RFC 5216's key material (the PEAPv0 label is
EAP-TLS's "client EAP encryption"). With it ([MS-PEAP] 3.1.5.5-3.1.5.7, as wpa_supplicant implements it):
TK = that key material[0:60]; ISK = the inner method's MSK[0:32] (zeros when it has none);
IPMK | CMK = PRF+(TK[0:40], "Inner Methods Compound Keys", ISK, 60), PRF+ being HMAC-SHA1 with a one-octet
counter and two zero octets (PEAPv0); Compound MAC = HMAC-SHA1(CMK, Crypto-Binding TLV with a zero MAC ||
25); and the MSK = PRF+(IPMK, "Session Key Generating Function", NUL, 128)[0:64]. Hand-written because no
maintained library implements PEAP; HMAC-SHA1 comes from `cryptography`.
"""

from __future__ import annotations

import hmac as std_hmac
from dataclasses import dataclass

from cryptography.hazmat.primitives import hashes, hmac

from vpndoctor.eap.errors import EapDecodeError, EapError, EapProtocolError
from vpndoctor.eap.method import EapEvent, EapMethod, MethodStep
from vpndoctor.eap.tls import TlsPhase
from vpndoctor.eap.tlslayer import VERSION_MASK, TlsClient, TlsFramer
from vpndoctor.ike.constants import EapCode, EapType, name_of

__all__ = [
    "PeapCryptoBinding",
    "PeapInnerNak",
    "PeapMethod",
    "PeapResult",
    "compound_mac",
    "inner_keys",
    "peap_prf_plus",
    "session_key",
]

EXTENSIONS = 33  # EAP-TLV
TLV_RESULT = 3
TLV_NAK = 4
TLV_CRYPTO_BINDING = 12
RESULT_SUCCESS = 1
RESULT_FAILURE = 2
_CB_BODY = 56  # Reserved, Version, RecvVersion, SubType, Nonce (32), Compound MAC (20)


@dataclass(frozen=True)
class PeapResult(EapEvent):
    """The server's Result TLV and our answer; `crypto_binding`: it came with a Crypto-Binding TLV that we
    verified and answered."""

    server_success: bool
    our_success: bool
    crypto_binding: bool
    reason: str | None


@dataclass(frozen=True)
class PeapCryptoBinding(EapEvent):
    """A Crypto-Binding TLV arrived; `valid`: its Compound MAC matched ours."""

    valid: bool


@dataclass(frozen=True)
class PeapInnerNak(EapEvent):
    """The server proposed an inner method we do not run; we answered with a Nak naming ours."""

    offered_name: str
    proposed_name: str


def _hmac_sha1(key: bytes, *parts: bytes) -> bytes:
    h = hmac.HMAC(key, hashes.SHA1())
    for p in parts:
        h.update(p)
    return h.finalize()


def peap_prf_plus(key: bytes, label: bytes, seed: bytes, length: int) -> bytes:
    """PEAPv0's PRF+: T(n) = HMAC-SHA1(key, T(n-1) | label | seed | n | 0x00 0x00), n from 1."""
    out = b""
    previous = b""
    counter = 0
    while len(out) < length:
        counter += 1
        previous = _hmac_sha1(key, previous, label, seed, bytes([counter]), b"\x00\x00")
        out += previous
    return out[:length]


def inner_keys(tk: bytes, isk: bytes) -> tuple[bytes, bytes]:
    """(IPMK, CMK) = PRF+(TK[0:40], "Inner Methods Compound Keys", ISK, 60) split 40/20."""
    imck = peap_prf_plus(tk[:40], b"Inner Methods Compound Keys", isk, 60)
    return imck[:40], imck[40:]


def compound_mac(cmk: bytes, tlv_with_zero_mac: bytes) -> bytes:
    return _hmac_sha1(cmk, tlv_with_zero_mac, bytes([EapType.PEAP]))


def session_key(ipmk: bytes) -> bytes:
    """The MSK with crypto binding: CSK = PRF+(IPMK, "Session Key Generating Function", NUL, 128)[0:64]."""
    return peap_prf_plus(ipmk, b"Session Key Generating Function", b"\x00", 128)[:64]


def _binding_tlv(subtype: int, nonce: bytes, mac: bytes) -> bytes:
    return (
        TLV_CRYPTO_BINDING.to_bytes(2, "big")
        + _CB_BODY.to_bytes(2, "big")
        + bytes([0, 0, 0, subtype])
        + nonce
        + mac
    )


# PEAP-TLS: an inner EAP-TLS fragment plus its tunnelled header and the TLS record around it (AES-GCM: 29
# octets) must fit one outer PEAP message, as in wpa_supplicant: servers (FreeRADIUS) match the inner EAP
# session by the Identifier of the outer message that carries the inner response, so an inner response
# split over two outer fragments arrives with an Identifier the inner session does not expect.
INNER_TLS_FRAGMENT_BYTES = 900


class PeapMethod:
    """PEAPv0 around `inner` (an EapMethod: MsChapV2Method, or EapTlsMethod for PEAP-TLS). `identity`
    answers the tunnelled Identity request (Windows sends the user name there, the outer identity being
    the same unless an anonymous one is configured)."""

    eap_type: int = EapType.PEAP

    def __init__(self, tls: TlsClient, identity: str, inner: EapMethod) -> None:
        self._phase = TlsPhase(tls, TlsFramer(version_bits=0), "PEAP")
        self._identity = identity.encode("utf-8")
        self.inner = inner
        self._tk: bytes | None = None
        self._base_msk: bytes | None = None
        self._msk: bytes | None = None
        self._failure: str | None = None
        self._done = False
        self._inner_started = False
        self.crypto_binding = False

    def __repr__(self) -> str:
        return f"PeapMethod(inner={self.inner!r}, done={self._done}, failed={self._failure is not None})"

    @property
    def tls(self) -> TlsClient:
        return self._phase.tls

    @property
    def succeeded(self) -> bool:
        return self._done and self._msk is not None

    @property
    def failure_reason(self) -> str | None:
        return self._failure or (self.inner.failure_reason if self._inner_started else None)

    def msk(self) -> bytes | None:
        return self._msk if self.succeeded else None

    def process(self, identifier: int, type_data: bytes) -> MethodStep:
        try:
            return self._process(identifier, type_data)
        except EapError as exc:
            self._failure = self._failure or f"PEAP: {exc}"
            raise

    def _process(self, identifier: int, type_data: bytes) -> MethodStep:
        framer = self._phase.framer
        if self._failure is not None and not framer.sending:
            return MethodStep(framer.ack())
        if type_data and type_data[0] & VERSION_MASK and not self._phase.started:
            pass  # the server offers a later PEAP version; we answer with version 0 bits, as Windows does
        flags, message = framer.parse(type_data)
        if not self.tls.established:
            reply, complete = self._phase.handshake(flags, message)
            if self._phase.failure is not None:
                self._failure = self._phase.failure
            events = self._phase.events()
            if complete:
                material = self.tls.key_material()
                if material is None:
                    self._failure = self.tls.failed or "PEAP: no key material from the handshake"
                else:
                    self._tk, self._base_msk = material[:60], material[:64]
                    events.append(self.tls.handshake_event())
            return MethodStep(reply, tuple(events))
        # Phase 2: the tunnel is up.
        if message is None:
            return MethodStep(framer.ack())
        if message == b"":
            if framer.sending:
                return MethodStep(framer.next_fragment())
            return MethodStep(framer.ack())
        plain = self.tls.decrypt(message)
        if not plain:
            return MethodStep(framer.ack())
        inner_reply, events = self._phase2(identifier, plain)
        if inner_reply is None:
            return MethodStep(framer.ack(), tuple(events))
        return MethodStep(framer.send(self.tls.encrypt(inner_reply)), tuple(events))

    # -- phase 2 ------------------------------------------------------------------------------------------
    def _phase2(self, identifier: int, plain: bytes) -> tuple[bytes | None, list[EapEvent]]:
        if not plain:
            raise EapDecodeError(5, "a tunnelled EAP packet", "no octets")
        full = len(plain) >= 5 and plain[0] in (EapCode.REQUEST, EapCode.SUCCESS, EapCode.FAILURE) and (
            (len(plain) == 5 and plain[4] == EapType.IDENTITY and int.from_bytes(plain[2:4], "big") == 5)
            or plain[4] == EXTENSIONS
        )
        if full:
            length = int.from_bytes(plain[2:4], "big")
            if length != len(plain):
                raise EapDecodeError(2, f"a tunnelled EAP Length of {len(plain)}", str(length))
            code, inner_id, eap_type, data = plain[0], plain[1], plain[4], plain[5:]
        else:
            code, inner_id, eap_type, data = EapCode.REQUEST, identifier, plain[0], plain[1:]
        if code != EapCode.REQUEST:
            raise EapProtocolError(f"PEAP: a tunnelled EAP {name_of(EapCode, code)}, PEAPv0 uses Result TLVs")
        if eap_type == EapType.IDENTITY:
            return self._short(EapType.IDENTITY, self._identity), []
        if eap_type == EXTENSIONS:
            return self._extensions(inner_id, data)
        if eap_type == self.inner.eap_type:
            self._inner_started = True
            step = self.inner.process(inner_id, data)
            events = list(step.events)
            if step.reply is None:
                self._failure = self.inner.failure_reason or "PEAP: the inner method had nothing to answer"
                return None, events
            return self._short(eap_type, step.reply), events
        if self._inner_started:
            raise EapProtocolError(
                f"PEAP: inner EAP {name_of(EapType, eap_type)} in the middle of "
                f"{name_of(EapType, self.inner.eap_type)}"
            )
        event = PeapInnerNak(name_of(EapType, eap_type), name_of(EapType, self.inner.eap_type))
        return self._short(EapType.NAK, bytes([self.inner.eap_type])), [event]

    @staticmethod
    def _short(eap_type: int, data: bytes) -> bytes:
        """A PEAPv0 tunnelled response: Type and Type-Data, no header."""
        return bytes([eap_type]) + data

    def _extensions(self, inner_id: int, data: bytes) -> tuple[bytes | None, list[EapEvent]]:
        result: int | None = None
        binding: bytes | None = None
        pos = 0
        while pos < len(data):
            if pos + 4 > len(data):
                raise EapDecodeError(5 + pos, "a 4-octet TLV header", f"{len(data) - pos} octets")
            kind = int.from_bytes(data[pos : pos + 2], "big")
            mandatory, kind = bool(kind & 0x8000), kind & 0x3FFF
            length = int.from_bytes(data[pos + 2 : pos + 4], "big")
            value = data[pos + 4 : pos + 4 + length]
            if len(value) != length:
                raise EapDecodeError(7 + pos, f"{length} octets of TLV value", f"{len(value)}")
            if kind == TLV_RESULT:
                if length < 2:
                    raise EapDecodeError(9 + pos, "a 2-octet Result status", f"{length} octets")
                result = int.from_bytes(value[:2], "big")
            elif kind == TLV_CRYPTO_BINDING:
                binding = data[pos : pos + 4 + length]
            elif mandatory:
                nak = (0x8000 | TLV_NAK).to_bytes(2, "big") + (6).to_bytes(2, "big")
                nak += bytes(4) + kind.to_bytes(2, "big")
                return self._full(inner_id, nak), []
            pos += 4 + length
        if result is None:
            raise EapProtocolError("PEAP: an Extensions request without a Result TLV")
        events: list[EapEvent] = []
        reason: str | None = None
        our = result == RESULT_SUCCESS
        if our and not self.inner.succeeded:
            our, reason = False, "the server reported success before the inner method completed"
        answer_binding = b""
        if binding is not None:
            valid, answer_binding, why = self._binding(binding)
            events.append(PeapCryptoBinding(valid))
            if not valid:
                our, reason, answer_binding = False, why, b""
        if result != RESULT_SUCCESS:
            inner = name_of(EapType, self.inner.eap_type)
            reason = self.inner.failure_reason or (
                f"the RADIUS server refused the inner EAP-{inner} (its Result TLV says failure)"
                if self._inner_started
                else "the RADIUS server's Result TLV says failure before any inner method ran"
            )
        status = RESULT_SUCCESS if our else RESULT_FAILURE
        tlv = (0x8000 | TLV_RESULT).to_bytes(2, "big") + (2).to_bytes(2, "big") + status.to_bytes(2, "big")
        events.append(PeapResult(result == RESULT_SUCCESS, our, bool(answer_binding), reason))
        if our:
            assert self._base_msk is not None
            self._msk = self._msk or self._base_msk
            self._done = True
        else:
            self._failure = self._failure or f"PEAP: {reason}"
        return self._full(inner_id, tlv + answer_binding), events

    @staticmethod
    def _full(inner_id: int, tlvs: bytes) -> bytes:
        """An Extensions response keeps its whole EAP header in PEAPv0."""
        return bytes([EapCode.RESPONSE, inner_id]) + (5 + len(tlvs)).to_bytes(2, "big") + bytes(
            [EXTENSIONS]
        ) + tlvs

    def _binding(self, tlv: bytes) -> tuple[bool, bytes, str | None]:
        """Check the server's Crypto-Binding TLV; (valid, our answering TLV, why not)."""
        if len(tlv) != 4 + _CB_BODY:
            return False, b"", f"a Crypto-Binding TLV of {len(tlv)} octets, not 60"
        version, subtype = tlv[5], tlv[7]
        if version != 0 or subtype != 0:
            return False, b"", f"a Crypto-Binding TLV of version {version}, subtype {subtype} (want 0, 0)"
        assert self._tk is not None
        inner = self.inner.msk() if self.inner.succeeded else None
        isk = (inner or b"")[:32].ljust(32, b"\x00")
        ipmk, cmk = inner_keys(self._tk, isk)
        nonce, mac = tlv[8:40], tlv[40:60]
        expected = compound_mac(cmk, tlv[:40] + bytes(20))
        if not std_hmac.compare_digest(expected, mac):
            return False, b"", (
                "the server's Crypto-Binding MAC does not match the tunnel and inner keys (a man in the "
                "middle between the tunnel and the inner method, or a different inner key)"
            )
        answer = _binding_tlv(1, nonce, bytes(20))
        answer = _binding_tlv(1, nonce, compound_mac(cmk, answer))
        self.crypto_binding = True
        self._msk = session_key(ipmk)
        return True, answer, None
