"""A scripted responder that lets a client all the way in: the `ScriptedResponder`'s IKE_SA_INIT and
certificate AUTH, then an EAP-MSCHAPv2 conversation (tests/eap's authenticator), the MSK-keyed AUTH exchange,
a CHILD_SA with narrowed traffic selectors and a CFG_REPLY, and an INFORMATIONAL Delete - or one fault at a
time, named by `behaviour`.

Test code built on vpndoctor's own codec and crypto: interoperability rests on strongSwan in the lab
(tests/lab/test_connect_probe.py); this one scripts what strongSwan will not do on demand (a wrong AUTH after
EAP, a lost last answer, a CHILD_SA refused in every way RFC 7296 allows).
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding

from tests.eap.authenticator import Authenticator
from tests.ike.responder import SERVER_NAME, ScriptedResponder, cert
from vpndoctor.eap.auth import initiator_signed_octets, shared_key_auth
from vpndoctor.eap.packets import decode_eap, encode_failure, encode_request
from vpndoctor.ike import auth as ike_auth
from vpndoctor.ike import sk
from vpndoctor.ike.constants import (
    AuthMethod,
    CertEncoding,
    CfgAttr,
    CfgType,
    EapCode,
    EapType,
    EncrId,
    ExchangeType,
    IdType,
    NotifyType,
    ProtocolId,
    TransformType,
    TsType,
)
from vpndoctor.ike.keys import ChildKeys, derive_child_keys, esp_key_bytes
from vpndoctor.ike.message import Header, decode_message, decode_payload_chain
from vpndoctor.ike.payloads import (
    AuthPayload,
    CertPayload,
    CpPayload,
    DeletePayload,
    EapPayload,
    IdPayload,
    NoncePayload,
    NotifyPayload,
    Payload,
    Proposal,
    SaPayload,
    TrafficSelector,
    TsPayload,
)
from vpndoctor.ike.proposals import esp_suite_from_proposal

USER = "alice"
PASSWORD = "Corp-Passw0rd!"
VIRTUAL_IP4 = "10.9.0.2"
VIRTUAL_IP6 = "2001:db8:99::2"
DNS4 = "10.9.0.53"
DNS6 = "2001:db8:99::53"
DNS_SUFFIX = "corp.example"
# The server's preference among what a client offers (as strongSwan picks its configured order first).
PREFERENCE = ((EncrId.AES_GCM_16, 256), (EncrId.AES_CBC, 256), (EncrId.AES_CBC, 128), (EncrId.DES3, None))
CHILD_ERRORS = {
    "child-no-proposal": NotifyType.NO_PROPOSAL_CHOSEN,
    "ts-unacceptable": NotifyType.TS_UNACCEPTABLE,
    "internal-address-failure": NotifyType.INTERNAL_ADDRESS_FAILURE,
    "failed-cp-required": NotifyType.FAILED_CP_REQUIRED,
    "single-pair-required": NotifyType.SINGLE_PAIR_REQUIRED,
}


def _range(cidr: str) -> TrafficSelector:
    net = ipaddress.ip_network(cidr)
    kind = TsType.IPV4_ADDR_RANGE if net.version == 4 else TsType.IPV6_ADDR_RANGE
    return TrafficSelector(kind, 0, 0, 65535, net.network_address.packed, net.broadcast_address.packed)


@dataclass
class ConnectResponder(ScriptedResponder):
    """`behaviour`: normal, wrong-password (the user's password here differs), peap-only (it proposes PEAP,
    refuses the Nak), eap-silent (no answer once the EAP method started: RADIUS down), no-eap (IKE_AUTH
    answered without EAP), bad-server-auth (a certificate AUTH that does not verify), auth-failed-final
    (AUTHENTICATION_FAILED for our AUTH after EAP), bad-responder-auth (its AUTH after EAP is wrong), a key of
    CHILD_ERRORS (the CHILD_SA refused with that notify, the IKE SA up), childless (no SA/TS in the last
    answer), no-ipv6 (CFG_REPLY without
    IPv6). `esp_only`: the ESP encryption ids it accepts (default: all of PREFERENCE);
    `lose_final_answers`: how many transmissions of the answer to our AUTH after EAP are lost."""

    behaviour: str = "normal"
    password: str = PASSWORD
    esp_only: tuple[int, ...] = ()
    eap: Authenticator | None = None
    sa_init_request: bytes = b""
    nonce_r: bytes = b""
    idi_body: bytes = b""
    child_request: tuple[Payload, ...] = ()
    child_keys: ChildKeys | None = None
    established: bool = False
    deleted: bool = False
    lose_final_answers: int = 0  # transmissions of the answer to our AUTH after EAP to lose
    final_id: int | None = None
    received: list[str] = field(default_factory=list)  # what each encrypted request carried

    def __post_init__(self) -> None:
        users = {USER: "not " + self.password if self.behaviour == "wrong-password" else self.password}
        self.eap = Authenticator(users, nul_terminated=True)

    def handle(self, data: bytes, natt: bool) -> list[bytes]:
        raw = data[4:] if natt and data[:4] == b"\x00\x00\x00\x00" else data
        if natt and data[:4] != b"\x00\x00\x00\x00":
            return []
        msg = decode_message(raw)
        if msg.header.exchange == ExchangeType.IKE_SA_INIT:
            replies = super().handle(data, natt)
            self.sa_init_request = raw
            if replies and self._init_response:
                init = decode_message(self._init_response)
                self.nonce_r = next(p.data for p in init.payloads if isinstance(p, NoncePayload))
            return replies
        assert self._keys is not None and self._suite is not None
        h = msg.header
        if not self.half_open and not self.established:
            return []
        if self._last is not None and h.message_id == self._last[0]:
            return self._lose(h.message_id, self._last[1])
        if h.message_id != self._expected_id:
            return []
        first, plain = sk.unprotect(raw, self._keys.initiator(), self._suite)
        inner = decode_payload_chain(first, plain)
        self.processed.append(h.message_id)
        self.received.append(" ".join(type(p).__name__.removesuffix("Payload") for p in inner))
        answer = self._answer(h, inner)
        if answer is None:  # silent: as if never received
            self.processed.pop()
            self.received.pop()
            return []
        self._expected_id += 1
        self._last = (h.message_id, answer)
        return self._lose(h.message_id, answer)

    def _lose(self, message_id: int, replies: list[bytes]) -> list[bytes]:
        if message_id == self.final_id and self.lose_final_answers > 0:
            self.lose_final_answers -= 1
            return []
        return replies

    def _answer(self, h: Header, inner: tuple[Payload, ...]) -> list[bytes] | None:
        assert self._keys is not None and self._suite is not None and self.eap is not None
        if h.exchange == ExchangeType.INFORMATIONAL:
            if any(isinstance(p, DeletePayload) and p.protocol == ProtocolId.IKE for p in inner):
                self.deleted, self.established, self.half_open = True, False, False
            return self._protect(h, [])
        if h.message_id == 1:
            return self._first_auth(h, inner)
        auth = next((p for p in inner if isinstance(p, AuthPayload)), None)
        if auth is not None and self.eap.msk is None:
            # An AUTH before EAP ended (the refusal that ends a half-open SA): refused, and the SA is gone.
            self.half_open = False
            return self._protect(h, [NotifyPayload(type=NotifyType.AUTHENTICATION_FAILED)])
        if auth is not None:
            self.final_id = h.message_id
            return self._final_auth(h, auth)
        eap = next(p for p in inner if isinstance(p, EapPayload))
        if self.behaviour == "eap-silent" and eap.eap_type != EapType.IDENTITY:
            return None
        if self.behaviour == "peap-only":
            return self._peap_only(h, eap)
        answer = decode_eap(self.eap.handle(eap.encode_body()))
        if answer.code == EapCode.FAILURE:
            self.half_open = False  # as strongSwan: the SA goes with the answer that ends EAP
        return self._protect(h, [answer])

    def _peap_only(self, h: Header, eap: EapPayload) -> list[bytes]:
        assert self.eap is not None
        self.eap.identifier = (self.eap.identifier + 1) % 256
        if eap.eap_type == EapType.IDENTITY:
            start = encode_request(self.eap.identifier, EapType.PEAP, b"\x20")  # PEAP Start flag
            return self._protect(h, [decode_eap(start)])
        self.half_open = False
        return self._protect(h, [decode_eap(encode_failure(self.eap.identifier))])

    def _first_auth(self, h: Header, inner: tuple[Payload, ...]) -> list[bytes]:
        assert self._keys is not None and self._suite is not None and self.eap is not None
        idi = next(p for p in inner if isinstance(p, IdPayload))
        self.idi_body = idi.encode_body()
        self.child_request = tuple(p for p in inner if isinstance(p, SaPayload | TsPayload | CpPayload))
        key, der = cert()
        idr = IdPayload(id_type=IdType.FQDN, data=SERVER_NAME.encode(), responder=True)
        signed = ike_auth.responder_signed_octets(
            self._init_response, self._nonce_i, self._keys.sk_pr, idr.encode_body(), self._suite.prf
        )
        signature = key.sign(signed, padding.PKCS1v15(), hashes.SHA1())
        if self.behaviour == "bad-server-auth":
            signature = bytes([signature[0] ^ 1]) + signature[1:]
        payloads: list[Payload] = [
            idr,
            CertPayload(CertEncoding.X509_SIGNATURE, der),
            AuthPayload(AuthMethod.RSA_SIG, signature),
        ]
        if self.behaviour != "no-eap":
            payloads.append(decode_eap(self.eap.identity_request()))
        return self._protect(h, payloads)

    def _final_auth(self, h: Header, auth: AuthPayload) -> list[bytes]:
        assert self._keys is not None and self._suite is not None and self.eap is not None
        prf = self._suite.prf
        msk = self.eap.msk
        signed_i = initiator_signed_octets(
            self.sa_init_request, self.nonce_r, self._keys.sk_pi, self.idi_body, prf
        )
        if self.behaviour == "auth-failed-final" or auth.data != shared_key_auth(prf, msk or b"", signed_i):
            self.half_open = False
            return self._protect(h, [NotifyPayload(type=NotifyType.AUTHENTICATION_FAILED)])
        self.half_open, self.established = False, True
        idr = IdPayload(id_type=IdType.FQDN, data=SERVER_NAME.encode(), responder=True)
        signed_r = ike_auth.responder_signed_octets(
            self._init_response, self._nonce_i, self._keys.sk_pr, idr.encode_body(), prf
        )
        mine = shared_key_auth(prf, msk or b"", signed_r)
        if self.behaviour == "bad-responder-auth":
            mine = bytes([mine[0] ^ 1]) + mine[1:]
        payloads: list[Payload] = [AuthPayload(AuthMethod.SHARED_KEY, mine)]
        payloads += self._child()
        return self._protect(h, payloads)

    def _child(self) -> list[Payload]:
        assert self._keys is not None and self._suite is not None
        ip6 = ipaddress.ip_address(VIRTUAL_IP6).packed + b"\x80"  # address and prefix length (/128)
        cp: list[Payload] = [
            CpPayload(
                CfgType.REPLY,
                (
                    (CfgAttr.INTERNAL_IP4_ADDRESS, ipaddress.ip_address(VIRTUAL_IP4).packed),
                    (CfgAttr.INTERNAL_IP4_DNS, ipaddress.ip_address(DNS4).packed),
                    *(
                        []
                        if self.behaviour == "no-ipv6"
                        else [
                            (CfgAttr.INTERNAL_IP6_ADDRESS, ip6),
                            (CfgAttr.INTERNAL_IP6_DNS, ipaddress.ip_address(DNS6).packed),
                        ]
                    ),
                    (CfgAttr.INTERNAL_DNS_DOMAIN, DNS_SUFFIX.encode()),
                ),
            )
        ]
        if self.behaviour in CHILD_ERRORS:
            return [*cp, NotifyPayload(type=CHILD_ERRORS[self.behaviour])]
        if self.behaviour == "childless":
            return cp
        sa = next(p for p in self.child_request if isinstance(p, SaPayload))
        chosen: Proposal | None = None
        wanted = [e for e in PREFERENCE if not self.esp_only or e[0] in self.esp_only]
        for encr in wanted:
            for p in sa.proposals:
                if any(t.type == TransformType.ENCR and (t.id, t.key_length) == encr for t in p.transforms):
                    chosen = p
                    break
            if chosen is not None:
                break
        if chosen is None:
            return [*cp, NotifyPayload(type=NotifyType.NO_PROPOSAL_CHOSEN)]
        spi_r = self.rng(4)
        picked = tuple(
            next(t for t in chosen.transforms if t.type == tt)
            for tt in (TransformType.ENCR, TransformType.INTEG, TransformType.ESN)
            if any(t.type == tt for t in chosen.transforms)
        )
        reply = Proposal(chosen.number, ProtocolId.ESP, spi_r, picked)
        suite = esp_suite_from_proposal(reply)
        encr_bytes, integ_bytes = esp_key_bytes(suite.encr, suite.encr_key_bits, suite.integ)
        self.child_keys = derive_child_keys(
            self._suite.prf, self._keys.sk_d, self._nonce_i, self.nonce_r, encr_bytes, integ_bytes
        )
        return [
            *cp,
            SaPayload((reply,)),
            TsPayload((_range(f"{VIRTUAL_IP4}/32"), _range(f"{VIRTUAL_IP6}/128")), responder=False),
            TsPayload((_range("0.0.0.0/0"), _range("::/0")), responder=True),
        ]
