"""The IKEv2 initiator as a sans-I/O state machine: it gets as far as a server lets an anonymous client go.

Theory of operation (aioquic/h11 style): the caller feeds `receive_datagram(data, addr, now)` and
`handle_timer(now)`, sends what `datagrams_to_send(now)` returns, sleeps until `get_timer()`, and reads
milestones from `next_event()`. Time, randomness and addresses come in as arguments; nothing here opens a
socket or reads a clock. The exchange is IKE_SA_INIT (answering COOKIE and INVALID_KE_PAYLOAD), a float to
UDP 4500 when NAT is detected (or forced), IKE_AUTH without an AUTH payload (it asks for EAP, as a Windows
user tunnel does), one EAP-Identity answer to learn the EAP method, then a polite INFORMATIONAL Delete.
With `stop_after="child-sa"` and an injected `EapPeer` it goes all the way, as a Windows user tunnel does:
the whole EAP conversation, the MSK-keyed AUTH exchange that closes it (RFC 7296 §2.16), the CHILD_SA the
first IKE_AUTH asked for, and an INFORMATIONAL Delete of the established IKE SA (which ends its CHILD_SA).
With `stop_after="child-sa"`, `auth_style="cert"` and an injected signer it dials as a Windows device tunnel
does instead: no EAP; the first IKE_AUTH carries IDi (the machine certificate's subject DN), CERT, CERTREQ and
an AUTH signed with the machine key, and its answer brings the server's AUTH and the CHILD_SA at once.

A probe is a guest on someone else's gateway, so the machine leaves as little state behind as the protocol
allows: `stateless` asks whether proposals are acceptable with a KE payload of a group none of them names
(the responder's INVALID_KE_PAYLOAD naming one of our groups means "accepted", NO_PROPOSAL_CHOSEN
"refused"; RFC 7296 1.3 and 2.7: neither creates an SA); `auth_style="psk-fail"` sends an IKE_AUTH the
responder must refuse with a small AUTHENTICATION_FAILED (no certificate, and the SA is gone); every SA
that got further is ended with a Delete, also after a lost IKE_AUTH response. `server_holds_state` says
whether, as far as we can tell, the responder still keeps a half-open SA of ours.

States move only forward through `_TRANSITIONS`; a misuse by the caller raises `LocalProtocolError` and
leaves the machine in the sticky FAILED state. What the remote sends never raises: malformed datagrams
are recorded and ignored, and a server that never answers properly ends in a Timeout.
"""

from __future__ import annotations

import hashlib
import ipaddress
import struct
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from enum import Enum

from cryptography import x509

from vpndoctor.eap.auth import initiator_eap_auth, verify_responder_eap_auth
from vpndoctor.eap.errors import EapError
from vpndoctor.eap.method import EapEvent
from vpndoctor.eap.peer import EapPeer
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
    HashAlgorithm,
    IdType,
    IntegId,
    NotifyType,
    PayloadType,
    ProtocolId,
    TransformType,
    TsType,
)
from vpndoctor.ike.dh import KeyExchange, new_key_exchange
from vpndoctor.ike.errors import MalformedMessage
from vpndoctor.ike.fragments import FragmentReassembler, build_fragments
from vpndoctor.ike.keys import (
    ChildKeys,
    CipherSuite,
    IkeKeys,
    UnsupportedSuite,
    derive_child_keys,
    derive_ike_keys,
    esp_key_bytes,
    prf_output_bytes,
    wireshark_key_line,
)
from vpndoctor.ike.message import (
    Header,
    Message,
    decode_message,
    decode_payload_chain,
    encode_payload_chain,
    strip_non_esp_marker,
    summary,
)
from vpndoctor.ike.payloads import (
    AuthPayload,
    CertPayload,
    CertReqPayload,
    CpPayload,
    DeletePayload,
    EapPayload,
    EncryptedFragmentPayload,
    EncryptedPayload,
    IdPayload,
    KePayload,
    NoncePayload,
    NotifyPayload,
    Payload,
    Proposal,
    SaPayload,
    TrafficSelector,
    Transform,
    TsPayload,
    VendorIdPayload,
)
from vpndoctor.ike.proposals import (
    WINDOWS_ESP_PROPOSALS,
    EspProposalSpec,
    EspSuite,
    ProposalSpec,
    esp_offered,
    esp_suite_from_proposal,
    offered,
    parse_esp_proposal,
    suite_from_proposal,
)

Address = tuple[str, int]
Rng = Callable[[int], bytes]

FLAG_INITIATOR = 0x08
FLAG_RESPONSE = 0x20
NON_ESP_MARKER = b"\x00\x00\x00\x00"
PADDING_VENDOR_ID = b"vpndoctor path-fragment probe"
# The transcript is evidence, not a log of everything a hostile peer can send: identical incoming datagrams in
# a row share one row (with a count), at most MAX_TRANSCRIPT rows are kept, and datagrams we ignored
# (garbage, strays, floods) fill at most MAX_IGNORED_ROWS of them, so that the exchange's own datagrams
# (ours, and the answers we took) still have room after a flood. The rest is only counted
# (`transcript_dropped`). The first rows, which checks read (first request, first answer), are always kept.
MAX_TRANSCRIPT = 200
MAX_IGNORED_ROWS = 100
MAX_COOKIE_ROUNDS = 2
# EAP packets from the server in one conversation: MS-CHAPv2 takes 3 (Identity, Challenge, Success request)
# plus EAP-Success; a server that keeps asking (endless Notifications, a method loop) is stopped here.
MAX_EAP_ROUNDS = 32
# Groups a stateless probe's KE payload may use (one none of the offered proposals names); cheap ones first.
_STATELESS_KE_GROUPS = (19, 14, 2, 20, 31, 5, 15, 16)


class LocalProtocolError(Exception):
    """We (the caller) used the machine wrongly."""


class State(Enum):
    IDLE = "idle"
    SA_INIT_SENT = "sa-init-sent"
    AUTH_SENT = "auth-sent"
    EAP_SENT = "eap-sent"
    FINAL_AUTH_SENT = "final-auth-sent"  # our MSK-keyed AUTH, after EAP-Success (stop_after="child-sa")
    DELETE_SENT = "delete-sent"
    DONE = "done"
    FAILED = "failed"


_TRANSITIONS: dict[State, frozenset[State]] = {
    State.IDLE: frozenset({State.SA_INIT_SENT, State.FAILED}),
    State.SA_INIT_SENT: frozenset({State.SA_INIT_SENT, State.AUTH_SENT, State.DONE, State.FAILED}),
    State.AUTH_SENT: frozenset(
        {State.AUTH_SENT, State.EAP_SENT, State.DELETE_SENT, State.DONE, State.FAILED}
    ),
    State.EAP_SENT: frozenset(
        {State.EAP_SENT, State.FINAL_AUTH_SENT, State.DELETE_SENT, State.DONE, State.FAILED}
    ),
    State.FINAL_AUTH_SENT: frozenset({State.DELETE_SENT, State.DONE, State.FAILED}),
    State.DELETE_SENT: frozenset({State.DONE, State.FAILED}),
    State.DONE: frozenset(),
    State.FAILED: frozenset(),
}

# ---- events ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class DatagramEvent:
    """One datagram on the wire, for the transcript (ladder diagram, round-trip counting)."""

    t: float
    direction: str  # "out" | "in"
    remote: Address
    size: int  # UDP payload bytes, non-ESP marker included
    summary: str
    # Identical incoming datagrams (same port, size and summary) that arrived in a row, this one included.
    # The event stream carries a row once, when it opens; `Initiator.transcript` has the final count.
    repeat: int = 1


@dataclass(frozen=True)
class SaInitDone:
    suite: CipherSuite
    notifies: tuple[int, ...]
    vendor_ids: tuple[bytes, ...]
    nat_local: bool  # we are behind NAT (the responder saw another address for us)
    nat_remote: bool  # the responder is behind NAT (it hashed another address than we sent to)
    fragmentation_supported: bool
    signature_hash_algorithms: tuple[int, ...]
    certreq_received: bool
    cookie_rounds: int
    ke_group: int


@dataclass(frozen=True)
class CookieRequested:
    cookie: bytes


@dataclass(frozen=True)
class ProposalAccepted:
    """A stateless probe's answer: INVALID_KE_PAYLOAD naming `group`, one of the offered proposals' groups."""

    group: int


@dataclass(frozen=True)
class FellBack:
    """The IKE_AUTH request got no answer on the NAT-T port and was sent again to `port`."""

    port: int


@dataclass(frozen=True)
class KeGroupRequested:
    requested_group: int
    offered_group: int


@dataclass(frozen=True)
class ErrorNotify:
    exchange: int
    notify: int
    data: bytes


@dataclass(frozen=True)
class AuthDone:
    idr_type: int | None
    idr: bytes | None
    certificates: tuple[bytes, ...]  # DER, in the order the server sent them
    auth_method: int | None
    auth_verified: bool | None  # None when there was nothing to verify
    auth_reason: str | None
    eap_code: int | None
    eap_type: int | None
    notifies: tuple[int, ...]
    response_fragments: int  # 0: not fragmented (SK); n: arrived as n SKF fragments
    request_fragments: int  # 0: our request went as one SK message


@dataclass(frozen=True)
class EapMethodRequested:
    eap_type: int | None
    eap_code: int


@dataclass(frozen=True)
class EapRound:
    """One EAP packet from the server (stop_after="child-sa"), handed to the EAP peer: its Code and Type and
    what the peer made of it (identity asked, method refused with a Nak, MS-CHAPv2 failure, success...)."""

    code: int
    eap_type: int | None
    events: tuple[EapEvent, ...]


@dataclass(frozen=True)
class ConnectStopped:
    """We ended a connection ourselves at `stage` ("IKE_AUTH", "EAP", "CHILD_SA"). `cause`: "server-auth"
    (its certificate AUTH did not verify, or it sent none), "server-refused" (the caller's `accept_server`
    said no, e.g. an untrusted certificate), "no-eap" (it started no EAP conversation), "eap" (the EAP peer
    refused a packet or had nothing to answer), "responder-auth" (its MSK-keyed AUTH after EAP did not
    verify), "protocol" (an answer the exchange does not allow)."""

    stage: str
    cause: str
    reason: str


@dataclass(frozen=True)
class IkeSaEstablished:
    """The answer to our MSK-keyed AUTH carried the responder's AUTH: the IKE SA is up on its side.
    `verified`: that AUTH is the MIC over its signed octets keyed with our MSK."""

    verified: bool
    reason: str | None
    auth_method: int


@dataclass(frozen=True)
class ChildSaResult:
    """What the last IKE_AUTH answer said about the CHILD_SA the first IKE_AUTH asked for. `spi_i` is our
    inbound SPI, `spi_r` the responder's; `config` the CFG_REPLY attributes (they may come even when the
    CHILD_SA fails); `error` an error notify (the IKE SA stays up: RFC 7296 §1.2); `reason` why an answer
    without an error notify still made no usable CHILD_SA."""

    established: bool
    suite: EspSuite | None
    spi_i: bytes
    spi_r: bytes | None
    ts_i: tuple[TrafficSelector, ...]
    ts_r: tuple[TrafficSelector, ...]
    config: tuple[tuple[int, bytes], ...]
    error: int | None
    notifies: tuple[int, ...]
    reason: str | None = None


@dataclass(frozen=True)
class HeldResponse:
    """While the CHILD_SA is held (`hold_child_sa`): the decrypted answer to a request the caller sent with
    `send_request` (a DPD, a CREATE_CHILD_SA)."""

    exchange: int
    message_id: int
    payloads: tuple[Payload, ...]


@dataclass(frozen=True)
class Timeout:
    exchange: int
    message_id: int
    attempts: int


@dataclass(frozen=True)
class PeerMisbehaved:
    reason: str


@dataclass(frozen=True)
class Finished:
    reached: str  # "none" | "IKE_SA_INIT" | "IKE_AUTH", and with stop_after="child-sa" "EAP" | "CHILD_SA"


Event = (
    DatagramEvent
    | SaInitDone
    | CookieRequested
    | KeGroupRequested
    | ProposalAccepted
    | FellBack
    | ErrorNotify
    | AuthDone
    | EapMethodRequested
    | EapRound
    | ConnectStopped
    | IkeSaEstablished
    | ChildSaResult
    | HeldResponse
    | Timeout
    | PeerMisbehaved
    | Finished
)

# ---- configuration ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class InitiatorConfig:
    proposals: tuple[ProposalSpec, ...]
    ke_group: int | None = None  # None: the first group of the first proposal
    identity: str = "anonymous@vpndoctor.invalid"
    eap_identity: str = "anonymous"
    fragmentation: bool = True  # offer IKEV2_FRAGMENTATION_SUPPORTED
    signature_hash_algorithms: bool = True  # offer SIGNATURE_HASH_ALGORITHMS (RFC 7427)
    force_nat: bool = False  # forge NAT_DETECTION_SOURCE_IP so the responder floats to 4500
    float_to_natt: bool = True  # move to the NAT-T port when NAT is detected (as Windows does)
    natt_port: int = 4500
    trust_anchor_hashes: tuple[bytes, ...] = ()  # SHA-1 of each trust anchor's SubjectPublicKeyInfo
    retransmit_timeout_s: float = 0.5
    retransmit_backoff: float = 2.0
    retransmit_tries: int = 4  # transmissions of one request, the first included
    fragment_size_bytes: int = 1280  # our own IKE_AUTH is sent as SKF when larger (and the peer agrees)
    ask_eap_method: bool = True
    send_delete: bool = True
    send_certreq: bool = True  # without a CERTREQ a send_cert=ifasked server keeps its certificate
    sa_init_padding_bytes: int = 0  # a Vendor ID of this size makes IKE_SA_INIT IP-fragment on purpose
    start_on_natt: bool = False  # send IKE_SA_INIT to the NAT-T port (non-ESP marker) from the start
    # "sa-init" | "auth" | "eap": how far to go before the Delete; "child-sa": all the way, with an EapPeer.
    stop_after: str = "eap"
    # ESP proposals of the CHILD_SA requested in the first IKE_AUTH. Empty: the probe's fixed list, or with
    # stop_after="child-sa" what a Windows client offers (`proposals.WINDOWS_ESP_PROPOSALS`).
    esp_proposals: tuple[EspProposalSpec, ...] = ()
    # IKE_SA_INIT with a KE payload of a group outside the proposals: the answer says accepted or refused
    # and the responder keeps nothing (see the module docstring).
    stateless: bool = False
    # "eap": IKE_AUTH without AUTH (a Windows user tunnel asking for EAP); "psk-fail": with a shared-key
    # AUTH payload the responder must refuse - a small AUTHENTICATION_FAILED answer that ends the SA;
    # "cert" (stop_after="child-sa", a signer): a device tunnel's certificate AUTH, see `certificates`.
    auth_style: str = "eap"
    # auth_style="cert": our certificate first, then intermediates (DER), each sent in a CERT payload; IDi
    # is the first one's subject as ID_DER_ASN1_DN. `cert_auth_method`: 1 (RSA, SHA-1) or 14 (RFC 7427).
    certificates: tuple[bytes, ...] = ()
    cert_auth_method: int = AuthMethod.RSA_SIG
    # After an IKE_AUTH on the NAT-T port went unanswered, send it once more to this port (e.g. 500).
    fallback_port: int | None = None
    # Send each encrypted request on the NAT-T port from a new source port (`natt_flow` counts them): for a
    # load balancer every such request is a new flow, so each answer is one more affinity sample.
    fresh_natt_flows: bool = False
    # After IKE_SA_INIT, wait 4 round trips (at least `min_retransmit_timeout_s`, at most
    # `retransmit_timeout_s`) before a retransmission: a lost answer costs a fraction of a second.
    adaptive_rto: bool = False
    min_retransmit_timeout_s: float = 0.25
    # Once the CHILD_SA is up, hold it (`finished` turns true, no Delete) until the caller `release`s it:
    # the tunnel probes pass traffic, a DPD or a rekey (`send_request`) in between.
    hold_child_sa: bool = False

    def first_group(self) -> int:
        if self.ke_group is not None:
            return self.ke_group
        if self.stateless:
            return stateless_ke_group(self.proposals)
        return self.proposals[0].dh[0]


def stateless_ke_group(proposals: tuple[ProposalSpec, ...]) -> int:
    """The KE group of a stateless probe: the first of `_STATELESS_KE_GROUPS` no offered proposal names."""
    named = {g for p in proposals for g in p.dh}
    free = [g for g in _STATELESS_KE_GROUPS if g not in named]
    if not free:
        raise LocalProtocolError("a stateless probe needs a KE group that no offered proposal names")
    return free[0]


@dataclass
class _Outstanding:
    exchange: int
    message_id: int
    datagrams: list[bytes]
    remote: Address
    sent_at: float
    attempts: int
    next_at: float
    sample: int | None = None  # index into natt_samples when this request went out on the NAT-T port
    fell_back: bool = False
    also_message_id: int | None = None  # an ending request may be answered at either message ID
    also_exchange: int | None = None  # ... in this exchange (None: the same as `exchange`)


@dataclass
class _SaInitContext:
    nonce_i: bytes
    ke: KeyExchange
    request: bytes = b""
    response: bytes = b""
    nonce_r: bytes = b""
    cookie: bytes | None = None
    cookie_rounds: int = 0
    ke_retried: bool = False


# ---- the machine -----------------------------------------------------------------------------------


class Initiator:
    def __init__(
        self,
        config: InitiatorConfig,
        *,
        rng: Rng,
        local: Address,
        remote: Address,
        eap_peer: EapPeer | None = None,
        accept_server: Callable[[AuthDone], str | None] | None = None,
        signer: Callable[[bytes], bytes] | None = None,
    ) -> None:
        """`eap_peer` runs the EAP conversation when `config.stop_after == "child-sa"`; `accept_server` is
        asked, once the server's certificate AUTH verified, whether to go on (None) or why not (a reason):
        MS-CHAPv2 hands the server material to guess the password from, so a caller that can judge the
        certificate should. `signer` (auth_style="cert") signs the InitiatorSignedOctets with the machine
        key and returns the AUTH data for `config.cert_auth_method`."""
        if not config.proposals:
            raise LocalProtocolError("at least one IKE proposal is needed")
        cert_mode = config.auth_style == "cert"
        if cert_mode and (
            signer is None
            or eap_peer is not None
            or config.stop_after != "child-sa"
            or not config.certificates
        ):
            raise LocalProtocolError(
                'auth_style="cert" needs stop_after="child-sa", a signer, certificates and no EAP peer'
            )
        if not cert_mode and (config.stop_after == "child-sa") != (eap_peer is not None):
            raise LocalProtocolError('stop_after="child-sa" and an EAP peer go together')
        self._eap_peer = eap_peer
        self._accept_server = accept_server
        self._signer = signer
        self._cert_mode = cert_mode
        self._connect = eap_peer is not None or cert_mode
        self._esp_specs = config.esp_proposals
        if self._connect and not self._esp_specs:
            self._esp_specs = tuple(parse_esp_proposal(p) for p in WINDOWS_ESP_PROPOSALS)
        self.child_spi_i: bytes | None = None  # our inbound ESP SPI, once the CHILD_SA was requested
        self._idi_body = b""
        self._idr_body = b""
        self._eap_rounds = 0
        self._child_keys: ChildKeys | None = None
        self.child_suite: EspSuite | None = None  # the established CHILD_SA's ESP transforms
        self.child_spi_r: bytes | None = None  # the responder's inbound ESP SPI
        self.holding = False  # the CHILD_SA is up and held (config.hold_child_sa) until release()
        self.child_result: ChildSaResult | None = None
        # While held: the answer (or the Timeout) of each request sent with send_request, by message ID
        self.held_answers: dict[int, HeldResponse | Timeout] = {}
        self.ike_established = False  # the responder sent its AUTH after EAP: the IKE SA is up there
        self.config = config
        self._rng = rng
        self.local = local  # address and port of the socket that sends to port 500 (for NAT detection)
        self.remote = remote  # server address and IKE port (500)
        self.state = State.IDLE
        self.spi_i = rng(8)
        self.spi_r = b"\x00" * 8
        self._events: deque[Event] = deque()
        self._out: deque[tuple[bytes, Address]] = deque()
        self._outstanding: _Outstanding | None = None
        self._next_message_id = 0
        self._ctx: _SaInitContext | None = None
        self._suite: CipherSuite | None = None
        self._keys: IkeKeys | None = None
        self._natt = False
        self._peer_fragmentation = False
        self._reassembler: FragmentReassembler | None = None
        self._request_fragments = 0
        self.reached = "none"
        self.transcript: list[DatagramEvent] = []
        self.transcript_dropped = 0  # datagrams in no row of the transcript (see MAX_TRANSCRIPT)
        self._ignored_rows = 0
        self._row_open = False  # the last datagram logged went into transcript[-1]: a repeat may join it
        self.round_trips = 0
        self._auth: AuthDone | None = None
        self._sa_up = False  # IKE_SA_INIT completed: the responder holds a half-open SA of ours
        self._sa_ended = False  # ... which it has since dropped (error notify, Delete answered)
        self._fell_back = False
        self._rto = config.retransmit_timeout_s
        self.natt_flow = 0  # which NAT-T source port the driver should send from (see fresh_natt_flows)
        self.natt_flows_used = 0  # distinct NAT-T flows that carried a request
        # One entry per encrypted request sent on the NAT-T port: was it answered (on that port)?
        # "answered" there, "elsewhere" (silent there, answered on the fallback port), or "lost".
        self.natt_samples: list[str] = []

    # -- public API ----------------------------------------------------------------------------------

    def start(self, now: float) -> None:
        if self.state is not State.IDLE:
            self._fail_local("start() called twice")
        group = self.config.first_group()
        if not self.config.stateless and not any(group in p.dh for p in self.config.proposals):
            self._fail_local(f"KE group {group} is not in any offered proposal")
        self._ctx = _SaInitContext(nonce_i=self._rng(32), ke=new_key_exchange(group, self._rng))
        self._natt = self.config.start_on_natt
        self._send_sa_init(now)

    def receive_datagram(self, data: bytes, addr: Address, now: float) -> None:
        if self.state in (State.IDLE, State.DONE, State.FAILED):
            return
        raw = data
        if addr[1] == self.config.natt_port:
            stripped = strip_non_esp_marker(data)
            if stripped is None:  # ESP or a NAT keepalive: not for us
                self._log(
                    "in", addr, len(data), now, "non-IKE datagram on the NAT-T port (ignored)", ignored=True
                )
                return
            raw = stripped
        try:
            self._receive_ike(raw, len(data), addr, now)
        except MalformedMessage as exc:
            self._log("in", addr, len(data), now, f"malformed ({exc}) - ignored", ignored=True)

    def handle_timer(self, now: float) -> None:
        out = self._outstanding
        if out is None or now < out.next_at:
            return
        if self._reassembler is not None and self._reassembler.expired(now):
            self._reassembler = None
        if out.attempts >= self.config.retransmit_tries:
            self._outstanding = None
            fallback = self.config.fallback_port
            if (
                fallback is not None
                and out.exchange != ExchangeType.IKE_SA_INIT
                and not out.fell_back
                and out.remote[1] == self.config.natt_port
                and out.remote[1] != fallback
            ):
                # Silence on the NAT-T port: ask the same question on `fallback` (the port whose flow
                # created the SA). An answer there means the SA is alive but the NAT-T flow went elsewhere.
                self._fell_back = True
                self._events.append(FellBack(fallback))
                remote = (self.remote[0], fallback)
                self._outstanding = _Outstanding(
                    exchange=out.exchange,
                    message_id=out.message_id,
                    datagrams=out.datagrams,
                    remote=remote,
                    sent_at=now,
                    attempts=1,
                    next_at=now + self._rto,
                    sample=out.sample,
                    fell_back=True,
                )
                self._natt = False
                self.round_trips += 1
                for dgram in out.datagrams:
                    self._emit(dgram, remote, now, text="fallback " + self._describe_outgoing(dgram))
                return
            if self.holding:  # a held request went unanswered: the caller decides what that means
                lost = Timeout(out.exchange, out.message_id, out.attempts)
                self.held_answers[out.message_id] = lost
                self._events.append(lost)
                return
            if self.state is State.DELETE_SENT:
                self._finish()  # an unanswered end is no failure of the probe (server_holds_state says so)
                return
            self._events.append(Timeout(out.exchange, out.message_id, out.attempts))
            if self.server_holds_state and self.state in (
                State.AUTH_SENT,
                State.EAP_SENT,
                State.FINAL_AUTH_SENT,
            ):
                # Lost: the answer, or the request itself. End the SA the responder may hold either way.
                self._send_delete(now, unanswered=out.message_id)
                return
            self._finish()
            return
        out.attempts += 1
        wait = self._rto * self.config.retransmit_backoff ** (out.attempts - 1)
        out.next_at = now + wait
        for dgram in out.datagrams:
            self._emit(dgram, out.remote, now, retransmit=True)

    def wind_down(self, now: float) -> bool:
        """The caller's deadline passed while the responder may hold our SA: send the request that ends it
        (on the fallback port when there is one: the flow that created the SA). True when the caller should
        give that exchange a short grace period before `deadline_reached`."""
        if self.holding:
            self.release(now)
            return True
        if (
            self.finished
            or not self.server_holds_state
            or self.state not in (State.AUTH_SENT, State.EAP_SENT, State.FINAL_AUTH_SENT)
        ):
            return False
        out = self._outstanding
        if out is not None:
            self._events.append(Timeout(out.exchange, out.message_id, out.attempts))
        if self.config.fallback_port is not None:
            self._natt = self.config.fallback_port == self.config.natt_port
        self._send_delete(now, unanswered=out.message_id if out is not None else None)
        return True

    def deadline_reached(self, now: float) -> None:
        """The caller's total deadline passed: whatever is outstanding timed out."""
        if self.finished:
            return
        out = self._outstanding
        self._outstanding = None
        if out is not None and self.state is not State.DELETE_SENT:
            self._events.append(Timeout(out.exchange, out.message_id, out.attempts))
        self._finish()

    def datagrams_to_send(self, now: float) -> list[tuple[bytes, Address]]:
        sent = list(self._out)
        self._out.clear()
        return sent

    def get_timer(self) -> float | None:
        return self._outstanding.next_at if self._outstanding is not None else None

    def next_event(self) -> Event | None:
        return self._events.popleft() if self._events else None

    @property
    def finished(self) -> bool:
        return self.state in (State.DONE, State.FAILED) or (self.holding and self._outstanding is None)

    # -- a held CHILD_SA (config.hold_child_sa) -------------------------------------------------------

    @property
    def on_natt(self) -> bool:
        """The IKE SA talks on the NAT-T port (so its ESP is UDP-encapsulated, RFC 3948)."""
        return self._natt

    @property
    def child_keys(self) -> ChildKeys | None:
        """The CHILD_SA's KEYMAT, cut per RFC 7296 §2.17: for the caller's userspace ESP. Never logged."""
        return self._child_keys

    def ike_sa_material(self) -> tuple[CipherSuite, IkeKeys, bytes, bytes] | None:
        """(suite, keys, Ni, Nr) of the IKE SA, for a CREATE_CHILD_SA the caller builds (a rekey)."""
        if self._suite is None or self._keys is None or self._ctx is None:
            return None
        return self._suite, self._keys, self._ctx.nonce_i, self._ctx.nonce_r

    def send_request(self, exchange: int, payloads: list[Payload], now: float) -> int:
        """While held: one protected request (INFORMATIONAL, CREATE_CHILD_SA) on the IKE SA, retransmitted
        as any other; its answer comes back as `HeldResponse`, its loss as `Timeout`. Returns its ID."""
        if not self.holding or self._outstanding is not None:
            raise LocalProtocolError("send_request needs a held CHILD_SA and no request outstanding")
        self._next_message_id += 1
        self._request(
            exchange,
            self._protect(exchange, payloads),
            now,
            text=self._text(exchange, self._next_message_id, payloads),
        )
        return self._next_message_id

    def adopt_ike_sa(self, spi_i: bytes, spi_r: bytes, suite: CipherSuite, keys: IkeKeys) -> None:
        """After a rekey of the IKE SA (and the Delete of the old one): go on on the new SA, message IDs
        from 0 (RFC 7296 §2.18)."""
        if not self.holding or self._outstanding is not None:
            raise LocalProtocolError("adopt_ike_sa needs a held CHILD_SA and no request outstanding")
        self.spi_i, self.spi_r, self._suite, self._keys = spi_i, spi_r, suite, keys
        self._next_message_id = -1  # the next request is message 0

    def release(self, now: float) -> None:
        """End the held SA: the INFORMATIONAL Delete it would have sent at once."""
        if not self.holding:
            return
        self.holding = False
        self._outstanding = None
        self._send_info_delete(now)

    def _child_up(self, now: float, result: ChildSaResult) -> None:
        """After the CHILD_SA result: hold it for the caller, or end the SA as before."""
        self.child_result = result
        if self.config.hold_child_sa and result.established:
            self.holding = True
            return
        self._send_info_delete(now)

    @property
    def auth(self) -> AuthDone | None:
        return self._auth

    def wireshark_keys(self) -> str | None:
        """The IKE SA's keys as one Wireshark `ikev2_decryption_table` row (what `vpndoctor capture --keys`
        reads), once IKE_SA_INIT completed; None before. The caller decides where such a secret may go."""
        if self._keys is None or self._suite is None:
            return None
        return wireshark_key_line(self._suite, self._keys, self.spi_i, self.spi_r)

    @property
    def child_keys_derived(self) -> bool:
        """KEYMAT for the CHILD_SA was derived (the keys themselves never leave the machine)."""
        return self._child_keys is not None

    @property
    def server_holds_state(self) -> bool:
        """The responder (as far as we can tell) still keeps a half-open SA of ours.

        An IKE_SA_INIT that was never answered is taken to have left nothing: a responder that got it
        would have answered its retransmissions from the same SA.
        """
        return self._sa_up and not self._sa_ended

    # -- state plumbing ------------------------------------------------------------------------------

    def _set_state(self, new: State) -> None:
        if new not in _TRANSITIONS[self.state]:
            self._fail_local(f"invalid transition {self.state.value} -> {new.value}")
        self.state = new

    def _fail_local(self, reason: str) -> None:
        self.state = State.FAILED
        raise LocalProtocolError(reason)

    def _finish(self) -> None:
        self._outstanding = None
        if self.state not in (State.DONE, State.FAILED):
            self._set_state(State.DONE)
        self._events.append(Finished(self.reached))

    def _log(
        self, direction: str, remote: Address, size: int, now: float, text: str, *, ignored: bool = False
    ) -> None:
        """One datagram into the transcript; `ignored`: an incoming one we did not act on."""
        last = self.transcript[-1] if self.transcript else None
        if (
            self._row_open
            and last is not None
            and direction == "in" == last.direction
            and (remote, size, text) == (last.remote, last.size, last.summary)
        ):
            self.transcript[-1] = replace(last, repeat=last.repeat + 1)
            return
        if len(self.transcript) >= MAX_TRANSCRIPT or (ignored and self._ignored_rows >= MAX_IGNORED_ROWS):
            self.transcript_dropped += 1
            self._row_open = False
            return
        if ignored:
            self._ignored_rows += 1
        event = DatagramEvent(t=now, direction=direction, remote=remote, size=size, summary=text)
        self.transcript.append(event)
        self._events.append(event)
        self._row_open = True

    def _emit(
        self, dgram: bytes, remote: Address, now: float, *, retransmit: bool = False, text: str | None = None
    ) -> None:
        wire = NON_ESP_MARKER + dgram if remote[1] == self.config.natt_port else dgram
        self._out.append((wire, remote))
        if text is None:
            text = self._describe_outgoing(dgram)
        self._log("out", remote, len(wire), now, ("retransmit " if retransmit else "") + text)

    def _describe_outgoing(self, dgram: bytes) -> str:
        try:
            return summary(decode_message(dgram))
        except MalformedMessage:
            return f"{len(dgram)} bytes"

    def _request(self, exchange: int, datagrams: list[bytes], now: float, text: str | None = None) -> None:
        remote = (self.remote[0], self.config.natt_port) if self._natt else self.remote
        if self._natt and exchange != ExchangeType.IKE_SA_INIT:
            if self.natt_flows_used and self.config.fresh_natt_flows:
                self.natt_flow += 1
            if self.natt_flows_used == 0 or self.config.fresh_natt_flows:
                self.natt_flows_used += 1
            self.natt_samples.append("lost")
        message_id = self._next_message_id
        self._outstanding = _Outstanding(
            exchange=exchange,
            message_id=message_id,
            datagrams=datagrams,
            remote=remote,
            sent_at=now,
            attempts=1,
            next_at=now + self._rto,
            sample=len(self.natt_samples) - 1
            if self._natt and exchange != ExchangeType.IKE_SA_INIT
            else None,
        )
        self.round_trips += 1
        for i, dgram in enumerate(datagrams):
            if text is not None and " + " in text:  # two requests in one flight, not fragments
                self._emit(dgram, remote, now, text=text.split(" + ")[i] if i < 2 else None)
                continue
            part = f" (fragment {i + 1}/{len(datagrams)})" if len(datagrams) > 1 else ""
            self._emit(dgram, remote, now, text=None if text is None else text + part)

    # -- IKE_SA_INIT ---------------------------------------------------------------------------------

    def _nat_hash(self, spi_r: bytes, address: Address) -> bytes:
        ip = ipaddress.ip_address(address[0]).packed
        return hashlib.sha1(self.spi_i + spi_r + ip + struct.pack("!H", address[1])).digest()

    def _sa_init_payloads(self) -> list[Payload]:
        assert self._ctx is not None
        ctx = self._ctx
        cfg = self.config
        payloads: list[Payload] = []
        if ctx.cookie is not None:
            payloads.append(NotifyPayload(type=NotifyType.COOKIE, data=ctx.cookie))
        proposals = tuple(spec.to_proposal(i + 1) for i, spec in enumerate(cfg.proposals))
        payloads.append(SaPayload(proposals=proposals))
        payloads.append(KePayload(group=ctx.ke.group, data=ctx.ke.public_bytes()))
        payloads.append(NoncePayload(data=ctx.nonce_i))
        source = self._nat_hash(b"\x00" * 8, self.local)
        if cfg.force_nat:
            source = hashlib.sha1(b"vpndoctor: force NAT-T" + self.spi_i).digest()
        payloads.append(NotifyPayload(type=NotifyType.NAT_DETECTION_SOURCE_IP, data=source))
        payloads.append(
            NotifyPayload(
                type=NotifyType.NAT_DETECTION_DESTINATION_IP, data=self._nat_hash(b"\x00" * 8, self.remote)
            )
        )
        if cfg.fragmentation:
            payloads.append(NotifyPayload(type=NotifyType.IKEV2_FRAGMENTATION_SUPPORTED))
        if cfg.sa_init_padding_bytes > 0:
            payloads.append(VendorIdPayload(data=PADDING_VENDOR_ID + b"\x00" * cfg.sa_init_padding_bytes))
        if cfg.signature_hash_algorithms:
            hashes = (
                HashAlgorithm.SHA2_256,
                HashAlgorithm.SHA2_384,
                HashAlgorithm.SHA2_512,
                HashAlgorithm.SHA1,
            )
            payloads.append(
                NotifyPayload(
                    type=NotifyType.SIGNATURE_HASH_ALGORITHMS,
                    data=b"".join(struct.pack("!H", h) for h in hashes),
                )
            )
        return payloads

    def _send_sa_init(self, now: float) -> None:
        assert self._ctx is not None
        header = Header(
            spi_i=self.spi_i,
            spi_r=b"\x00" * 8,
            next_payload=0,
            exchange=ExchangeType.IKE_SA_INIT,
            flags=FLAG_INITIATOR,
            message_id=0,
        )
        request = Message(header=header, payloads=tuple(self._sa_init_payloads())).encode()
        self._ctx.request = request
        if self.state is not State.SA_INIT_SENT:
            self._set_state(State.SA_INIT_SENT)
        self._next_message_id = 0
        self._request(ExchangeType.IKE_SA_INIT, [request], now)

    def _receive_ike(self, raw: bytes, wire_size: int, addr: Address, now: float) -> None:
        msg = decode_message(raw)
        h = msg.header
        out = self._outstanding
        if h.spi_i != self.spi_i:
            self._log("in", addr, wire_size, now, f"{summary(msg)} - not our SPI, ignored", ignored=True)
            return
        if not h.flags & FLAG_RESPONSE:
            # A request from the responder (e.g. a DPD or its own Delete): nothing we need to answer.
            text = f"{summary(msg)} - request from responder, ignored"
            self._log("in", addr, wire_size, now, text, ignored=True)
            return
        if out is None or not (
            (h.exchange == out.exchange and h.message_id == out.message_id)
            or (
                h.message_id == out.also_message_id
                and h.exchange == (out.exchange if out.also_exchange is None else out.also_exchange)
            )
        ):
            self._log("in", addr, wire_size, now, f"{summary(msg)} - unexpected, ignored", ignored=True)
            return
        if h.exchange == ExchangeType.IKE_SA_INIT:
            self._log("in", addr, wire_size, now, summary(msg))
            self._on_sa_init_response(msg, raw, addr, now)
        else:
            self._on_encrypted_response(msg, raw, wire_size, addr, now)

    def _on_sa_init_response(self, msg: Message, raw: bytes, addr: Address, now: float) -> None:
        assert self._ctx is not None
        ctx = self._ctx
        notifies = [p for p in msg.payloads if isinstance(p, NotifyPayload)]
        types = [n.type for n in notifies]
        cookie = next((n for n in notifies if n.type == NotifyType.COOKIE), None)
        if cookie is not None and not any(isinstance(p, SaPayload) for p in msg.payloads):
            if cookie.data == ctx.cookie:
                # A late answer to a transmission sent before we had the cookie (our retransmission crossed
                # the server's first COOKIE): we already echo this one, so it demands nothing new.
                return
            self._events.append(CookieRequested(cookie.data))
            if ctx.cookie_rounds >= MAX_COOKIE_ROUNDS:
                self._peer_error("responder keeps demanding a new COOKIE")
                return
            ctx.cookie, ctx.cookie_rounds = cookie.data, ctx.cookie_rounds + 1
            self._send_sa_init(now)
            return
        invalid_ke = next((n for n in notifies if n.type == NotifyType.INVALID_KE_PAYLOAD), None)
        if invalid_ke is not None:
            group = struct.unpack("!H", invalid_ke.data[:2])[0] if len(invalid_ke.data) >= 2 else 0
            self._events.append(KeGroupRequested(group, ctx.ke.group))
            if self.config.stateless and any(group in p.dh for p in self.config.proposals):
                self._events.append(ProposalAccepted(group))
                self._finish()
                return
            if ctx.ke_retried or not any(group in p.dh for p in self.config.proposals):
                self._events.append(
                    ErrorNotify(ExchangeType.IKE_SA_INIT, NotifyType.INVALID_KE_PAYLOAD, invalid_ke.data)
                )
                self._finish()
                return
            ctx.ke_retried = True
            ctx.ke = new_key_exchange(group, self._rng)
            self._send_sa_init(now)
            return
        errors = [n for n in notifies if n.type < 16384]
        if errors:
            self._events.append(ErrorNotify(ExchangeType.IKE_SA_INIT, errors[0].type, errors[0].data))
            self._finish()
            return
        sa = next((p for p in msg.payloads if isinstance(p, SaPayload)), None)
        ke = next((p for p in msg.payloads if isinstance(p, KePayload)), None)
        nonce = next((p for p in msg.payloads if isinstance(p, NoncePayload)), None)
        if sa is None or ke is None or nonce is None:
            self._peer_error("IKE_SA_INIT response lacks SA, KE or Nonce")
            return
        if len(sa.proposals) != 1 or not offered(self.config.proposals, sa.proposals[0]):
            self._peer_error("responder chose a proposal we did not offer")
            return
        try:
            suite = suite_from_proposal(sa.proposals[0])
        except (MalformedMessage, ValueError) as exc:
            self._peer_error(f"unusable proposal: {exc}")
            return
        if ke.group != ctx.ke.group or suite.dh != ctx.ke.group:
            self._peer_error(f"responder's KE group {ke.group} is not the one we sent ({ctx.ke.group})")
            return
        if not 16 <= len(nonce.data) <= 256:
            self._peer_error(f"responder nonce of {len(nonce.data)} bytes (RFC 7296: 16-256)")
            return
        ctx.nonce_r = nonce.data
        try:
            shared = ctx.ke.shared_secret(ke.data)
        except MalformedMessage as exc:
            self._peer_error(f"invalid KE public value: {exc}")
            return
        self.spi_r = msg.header.spi_r
        if self.spi_r == b"\x00" * 8:
            self._peer_error("responder SPI is zero")
            return
        self._sa_up = True
        out_sa = self._outstanding
        if self.config.adaptive_rto and out_sa is not None and out_sa.attempts == 1:  # Karn: no retransmits
            rtt = max(0.0, now - out_sa.sent_at)
            self._rto = min(
                self.config.retransmit_timeout_s, max(self.config.min_retransmit_timeout_s, 4 * rtt)
            )
        try:
            self._keys = derive_ike_keys(suite, shared, ctx.nonce_i, nonce.data, self.spi_i, self.spi_r)
        except ValueError as exc:
            self._peer_error(f"cannot derive keys: {exc}")
            return
        self._suite = suite
        ctx.response = raw
        nat_s = [n.data for n in notifies if n.type == NotifyType.NAT_DETECTION_SOURCE_IP]
        nat_d = [n.data for n in notifies if n.type == NotifyType.NAT_DETECTION_DESTINATION_IP]
        nat_remote = bool(nat_s) and self._nat_hash(self.spi_r, addr) not in nat_s
        nat_local = bool(nat_d) and self._nat_hash(self.spi_r, self.local) not in nat_d
        self._peer_fragmentation = NotifyType.IKEV2_FRAGMENTATION_SUPPORTED in types
        sig_hashes: tuple[int, ...] = ()
        for n in notifies:
            if n.type == NotifyType.SIGNATURE_HASH_ALGORITHMS:
                sig_hashes = tuple(struct.unpack(f"!{len(n.data) // 2}H", n.data[: len(n.data) // 2 * 2]))
        self.reached = "IKE_SA_INIT"
        self._events.append(
            SaInitDone(
                suite=suite,
                notifies=tuple(types),
                vendor_ids=tuple(p.data for p in msg.payloads if isinstance(p, VendorIdPayload)),
                nat_local=nat_local,
                nat_remote=nat_remote,
                fragmentation_supported=self._peer_fragmentation,
                signature_hash_algorithms=sig_hashes,
                certreq_received=any(isinstance(p, CertReqPayload) for p in msg.payloads),
                cookie_rounds=ctx.cookie_rounds,
                ke_group=ctx.ke.group,
            )
        )
        if self.config.force_nat or (self.config.float_to_natt and (nat_local or nat_remote)):
            self._natt = True
        self._outstanding = None
        if self.config.stop_after == "sa-init" or self.config.stateless:
            # Nothing more to learn, but the responder holds a half-open SA: an IKE_AUTH it must refuse
            # (small, certificate-free) ends it one round trip later instead of its half-open timeout.
            if not self.config.send_delete:
                self._finish()  # told to leave it (tests use this to fill a gateway's half-open table)
                return
            self._send_ike_auth(now, style="psk-fail")
            return
        self._send_ike_auth(now)

    # -- encrypted exchanges -------------------------------------------------------------------------

    def _header(self, exchange: int, message_id: int, next_payload: int) -> Header:
        return Header(
            spi_i=self.spi_i,
            spi_r=self.spi_r,
            next_payload=next_payload,
            exchange=exchange,
            flags=FLAG_INITIATOR,
            message_id=message_id,
        )

    def _protect(self, exchange: int, payloads: list[Payload]) -> list[bytes]:
        assert self._keys is not None and self._suite is not None
        message_id = self._next_message_id
        first, plain = encode_payload_chain(tuple(payloads))
        header = self._header(exchange, message_id, PayloadType.SK)
        whole = sk.protect(header, first, plain, self._keys.initiator(), self._suite, self._rng)
        overhead = 8 + (4 if self._natt else 0) + (40 if ":" in self.remote[0] else 20)
        if (
            self._peer_fragmentation
            and self.config.fragmentation
            and len(whole) + overhead > self.config.fragment_size_bytes
        ):
            frags = build_fragments(
                self._header(exchange, message_id, PayloadType.SKF),
                first,
                plain,
                self._keys.initiator(),
                self._suite,
                self._rng,
                self.config.fragment_size_bytes,
                ip_version=6 if ":" in self.remote[0] else 4,
                natt=self._natt,
            )
            self._request_fragments = len(frags)
            return frags
        self._request_fragments = 0
        return [whole]

    def _child_sa(self) -> SaPayload:
        esp_spi = self._rng(4)
        self.child_spi_i = esp_spi
        if self._esp_specs:
            return SaPayload(
                proposals=tuple(spec.to_proposal(i + 1, esp_spi) for i, spec in enumerate(self._esp_specs))
            )
        suites = (
            (EncrId.AES_CBC, 256, IntegId.HMAC_SHA2_256_128),
            (EncrId.AES_GCM_16, 256, None),
            (EncrId.AES_CBC, 128, IntegId.HMAC_SHA1_96),
            (EncrId.DES3, None, IntegId.HMAC_SHA1_96),
        )
        proposals = []
        for i, (encr, bits, integ) in enumerate(suites):
            transforms = [Transform(TransformType.ENCR, encr, bits)]
            if integ is not None:
                transforms.append(Transform(TransformType.INTEG, integ))
            transforms.append(Transform(TransformType.ESN, 0))
            proposals.append(
                Proposal(number=i + 1, protocol=ProtocolId.ESP, spi=esp_spi, transforms=tuple(transforms))
            )
        return SaPayload(proposals=tuple(proposals))

    def _send_ike_auth(self, now: float, style: str | None = None) -> None:
        assert self._suite is not None
        self._set_state(State.AUTH_SENT)
        self._next_message_id = 1
        all4 = TrafficSelector(TsType.IPV4_ADDR_RANGE, 0, 0, 65535, b"\x00" * 4, b"\xff" * 4)
        all6 = TrafficSelector(TsType.IPV6_ADDR_RANGE, 0, 0, 65535, b"\x00" * 16, b"\xff" * 16)
        idi = self._idi()
        self._idi_body = idi.encode_body()
        middle: list[Payload]
        if style is None and self._cert_mode:
            middle = self._cert_auth_payloads()
        elif (style or self.config.auth_style) == "psk-fail":
            # A shared-key AUTH no responder can verify (random bytes of the PRF's length, no key behind
            # them): it answers AUTHENTICATION_FAILED - no certificate - and drops the SA.
            middle = [
                AuthPayload(method=AuthMethod.SHARED_KEY, data=self._rng(prf_output_bytes(self._suite.prf)))
            ]
        else:
            certreq = CertReqPayload(
                encoding=CertEncoding.X509_SIGNATURE, data=b"".join(self.config.trust_anchor_hashes)
            )
            middle = [
                *([certreq] if self.config.send_certreq else []),
                CpPayload(
                    cfg_type=CfgType.REQUEST,
                    attributes=(
                        (CfgAttr.INTERNAL_IP4_ADDRESS, b""),
                        (CfgAttr.INTERNAL_IP4_DNS, b""),
                        (CfgAttr.INTERNAL_IP6_ADDRESS, b""),
                        (CfgAttr.INTERNAL_IP6_DNS, b""),
                        # RFC 8598: the DNS suffix an RRAS-shaped gateway hands out (asked only when
                        # connecting, so that the other probes' requests stay as they were).
                        *([(CfgAttr.INTERNAL_DNS_DOMAIN, b"")] if self._connect else []),
                    ),
                ),
            ]
        payloads: list[Payload] = [
            idi,
            *middle,
            self._child_sa(),
            TsPayload(selectors=(all4, all6), responder=False),
            TsPayload(selectors=(all4, all6), responder=True),
        ]
        self._reassembler = None
        self._request(
            ExchangeType.IKE_AUTH,
            self._protect(ExchangeType.IKE_AUTH, payloads),
            now,
            text=self._text(ExchangeType.IKE_AUTH, 1, payloads),
        )

    def _cp_request(self) -> CpPayload:
        return CpPayload(
            cfg_type=CfgType.REQUEST,
            attributes=(
                (CfgAttr.INTERNAL_IP4_ADDRESS, b""),
                (CfgAttr.INTERNAL_IP4_DNS, b""),
                (CfgAttr.INTERNAL_IP6_ADDRESS, b""),
                (CfgAttr.INTERNAL_IP6_DNS, b""),
                (CfgAttr.INTERNAL_DNS_DOMAIN, b""),
            ),
        )

    def _cert_auth_payloads(self) -> list[Payload]:
        """CERT (ours, then the intermediates), CERTREQ, AUTH signed with the machine key, CP - the middle of
        a device tunnel's first IKE_AUTH (RFC 7296 §1.2 order)."""
        assert self._ctx is not None and self._keys is not None and self._suite is not None
        assert self._signer is not None
        signed = ike_auth.initiator_signed_octets(
            self._ctx.request, self._ctx.nonce_r, self._keys.sk_pi, self._idi_body, self._suite.prf
        )
        method = self.config.cert_auth_method
        certs: list[Payload] = [
            CertPayload(encoding=CertEncoding.X509_SIGNATURE, data=der) for der in self.config.certificates
        ]
        certreq = CertReqPayload(
            encoding=CertEncoding.X509_SIGNATURE, data=b"".join(self.config.trust_anchor_hashes)
        )
        return [
            *certs,
            *([certreq] if self.config.send_certreq else []),
            AuthPayload(method=method, data=self._signer(signed)),
            self._cp_request(),
        ]

    def _idi(self) -> IdPayload:
        """IDi: an RFC 822 name when it has an @, else an FQDN; when connecting, an address is sent as one
        (a Windows client's IDi is its own address); with a machine certificate, its subject DN (DER)."""
        if self._cert_mode:
            subject = x509.load_der_x509_certificate(self.config.certificates[0]).subject
            return IdPayload(id_type=IdType.DER_ASN1_DN, data=subject.public_bytes(), responder=False)
        identity = self.config.identity
        if self._connect:
            try:
                ip = ipaddress.ip_address(identity)
            except ValueError:
                pass
            else:
                kind = IdType.IPV4_ADDR if ip.version == 4 else IdType.IPV6_ADDR
                return IdPayload(id_type=kind, data=ip.packed, responder=False)
        return IdPayload(
            id_type=IdType.RFC822_ADDR if "@" in identity else IdType.FQDN,
            data=identity.encode(),
            responder=False,
        )

    def _text(self, exchange: int, message_id: int, payloads: list[Payload]) -> str:
        header = self._header(exchange, message_id, PayloadType.SK)
        return summary(Message(header=header, payloads=tuple(payloads)))

    def _on_encrypted_response(
        self, msg: Message, raw: bytes, wire_size: int, addr: Address, now: float
    ) -> None:
        assert self._keys is not None and self._suite is not None
        out = self._outstanding
        if self._reassembler is None:
            self._reassembler = FragmentReassembler(timeout_s=30.0)
        enc = msg.payloads[-1] if msg.payloads else None
        fragment_note = ""
        if isinstance(enc, EncryptedFragmentPayload):
            note = f"{summary(msg)} fragment {enc.fragment_number}/{enc.total_fragments}"
            try:
                first, part = sk.unprotect(raw, self._keys.responder(), self._suite)
            except MalformedMessage as exc:
                text = f"{note} failed protection check ({exc})"
                self._log("in", addr, wire_size, now, text, ignored=True)
                return
            try:
                done = self._reassembler.add(enc.fragment_number, enc.total_fragments, first, part, now)
            except MalformedMessage as exc:
                self._log("in", addr, wire_size, now, note)
                self._peer_error(f"fragment reassembly: {exc}")
                return
            if done is None:
                self._log("in", addr, wire_size, now, note)
                return
            first, plain = done
            fragments = enc.total_fragments
            fragment_note = f"fragment {enc.fragment_number}/{enc.total_fragments}, reassembled: "
        elif isinstance(enc, EncryptedPayload):
            try:
                first, plain = sk.unprotect(raw, self._keys.responder(), self._suite)
            except MalformedMessage as exc:
                text = f"{summary(msg)} failed protection check ({exc})"
                self._log("in", addr, wire_size, now, text, ignored=True)
                return
            fragments = 0
        else:
            text = f"{summary(msg)} - unprotected response, ignored"
            self._log("in", addr, wire_size, now, text, ignored=True)
            return
        try:
            inner = decode_payload_chain(first, plain)
        except MalformedMessage as exc:
            self._log("in", addr, wire_size, now, fragment_note + "undecodable")
            self._peer_error(f"decrypted payloads are malformed: {exc}")
            return
        self._log(
            "in", addr, wire_size, now, fragment_note + summary(Message(header=msg.header, payloads=inner))
        )
        if out is not None and out.sample is not None and out.sample < len(self.natt_samples):
            if addr[1] == self.config.natt_port and not out.fell_back:
                self.natt_samples[out.sample] = "answered"
            elif out.fell_back and addr[1] == out.remote[1]:
                self.natt_samples[out.sample] = "elsewhere"
        self._outstanding = None
        exchange = msg.header.exchange
        if exchange == ExchangeType.IKE_AUTH and self.state is State.AUTH_SENT:
            self._on_auth_response(inner, fragments, now)
        elif exchange == ExchangeType.IKE_AUTH and self.state is State.EAP_SENT:
            self._on_eap_response(inner, now)
        elif exchange == ExchangeType.IKE_AUTH and self.state is State.FINAL_AUTH_SENT:
            self._on_final_auth_response(inner, now)
        elif self.holding:
            held = HeldResponse(exchange, msg.header.message_id, inner)
            self.held_answers[held.message_id] = held
            self._events.append(held)
        elif self.state is State.DELETE_SENT:
            # Any answer to the ending request: AUTHENTICATION_FAILED (or a Delete response) ends the SA.
            self._sa_ended = True
            self._finish()

    def _on_auth_response(self, inner: tuple[Payload, ...], fragments: int, now: float) -> None:
        assert self._ctx is not None and self._keys is not None and self._suite is not None
        notifies = tuple(p.type for p in inner if isinstance(p, NotifyPayload))
        errors = [p for p in inner if isinstance(p, NotifyPayload) and p.type < 16384]
        idr = next((p for p in inner if isinstance(p, IdPayload)), None)
        certs = tuple(
            p.data for p in inner if isinstance(p, CertPayload) and p.encoding == CertEncoding.X509_SIGNATURE
        )
        auth = next((p for p in inner if isinstance(p, AuthPayload)), None)
        eap = next((p for p in inner if isinstance(p, EapPayload)), None)
        verified: bool | None = None
        reason: str | None = None
        if auth is not None and idr is not None:
            if not certs:
                verified, reason = False, "no certificate to verify the AUTH payload with"
            else:
                signed = ike_auth.responder_signed_octets(
                    self._ctx.response,
                    self._ctx.nonce_i,
                    self._keys.sk_pr,
                    idr.encode_body(),
                    self._suite.prf,
                )
                result = ike_auth.verify_responder_auth(auth.method, auth.data, certs[0], signed)
                verified, reason = result.verified, result.reason
        elif auth is not None:
            verified, reason = False, "AUTH payload without IDr"
        self._auth = AuthDone(
            idr_type=idr.id_type if idr else None,
            idr=idr.data if idr else None,
            certificates=certs,
            auth_method=auth.method if auth else None,
            auth_verified=verified,
            auth_reason=reason,
            eap_code=eap.code if eap else None,
            eap_type=eap.eap_type if eap else None,
            notifies=notifies,
            response_fragments=fragments,
            request_fragments=self._request_fragments,
        )
        self._events.append(self._auth)
        if self._cert_mode:
            self._cert_auth_answer(inner, idr, auth, errors, now)
            return
        if errors:
            self._events.append(ErrorNotify(ExchangeType.IKE_AUTH, errors[0].type, errors[0].data))
            self._sa_ended = True
            self._finish()  # the responder has already dropped the SA
            return
        self.reached = "IKE_AUTH"
        if self._connect:
            self._connect_after_first_auth(idr, auth, eap, now)
            return
        if (
            eap is not None
            and eap.code == EapCode.REQUEST
            and eap.eap_type == EapType.IDENTITY
            and self.config.ask_eap_method
            and self.config.stop_after == "eap"
        ):
            self._set_state(State.EAP_SENT)
            self._next_message_id = 2
            answer = EapPayload(
                code=EapCode.RESPONSE,
                identifier=eap.identifier,
                eap_type=EapType.IDENTITY,
                data=self.config.eap_identity.encode(),
            )
            self._request(
                ExchangeType.IKE_AUTH,
                self._protect(ExchangeType.IKE_AUTH, [answer]),
                now,
                text=self._text(ExchangeType.IKE_AUTH, 2, [answer]),
            )
            return
        if eap is not None:
            self._events.append(EapMethodRequested(eap.eap_type, eap.code))
        self._send_delete(now)

    def _on_eap_response(self, inner: tuple[Payload, ...], now: float) -> None:
        eap = next((p for p in inner if isinstance(p, EapPayload)), None)
        errors = [p for p in inner if isinstance(p, NotifyPayload) and p.type < 16384]
        if self._connect:
            if errors:  # e.g. AUTHENTICATION_FAILED in the middle of EAP: the responder drops the SA
                self._events.append(ErrorNotify(ExchangeType.IKE_AUTH, errors[0].type, errors[0].data))
                self._sa_ended = True
                self._finish()
            elif eap is None:
                self._stop(
                    now, "EAP", "protocol", "an IKE_AUTH answer in the middle of EAP without an EAP payload"
                )
            else:
                self._eap_packet(eap, now)
            return
        if eap is not None:
            self._events.append(EapMethodRequested(eap.eap_type, eap.code))
        if errors:
            self._events.append(ErrorNotify(ExchangeType.IKE_AUTH, errors[0].type, errors[0].data))
            self._sa_ended = True
            self._finish()
            return
        self._send_delete(now)

    # -- connecting: EAP, the closing AUTH exchange, the CHILD_SA ------------------------------------------

    def _connect_after_first_auth(
        self, idr: IdPayload | None, auth: AuthPayload | None, eap: EapPayload | None, now: float
    ) -> None:
        """The first IKE_AUTH answer, when connecting: the server must have proved its identity (IDr, AUTH
        verified against its certificate) before the EAP method hands it anything."""
        assert self._auth is not None
        if idr is not None:
            self._idr_body = idr.encode_body()  # the responder's AUTH after EAP covers this IDr
        if auth is None or idr is None:
            self._stop(
                now, "IKE_AUTH", "server-auth", "the server did not authenticate itself (no IDr and AUTH)"
            )
        elif not self._auth.auth_verified:
            why = self._auth.auth_reason or "it does not verify"
            self._stop(now, "IKE_AUTH", "server-auth", f"the server's AUTH payload is not valid: {why}")
        elif (refusal := self._accept_server(self._auth) if self._accept_server else None) is not None:
            self._stop(now, "IKE_AUTH", "server-refused", refusal)
        elif eap is None:
            self._stop(
                now,
                "IKE_AUTH",
                "no-eap",
                "the server started no EAP conversation (it expects another authentication, e.g. a "
                "certificate or a pre-shared key)",
            )
        else:
            self._eap_packet(eap, now)

    def _cert_auth_answer(
        self,
        inner: tuple[Payload, ...],
        idr: IdPayload | None,
        auth: AuthPayload | None,
        errors: list[NotifyPayload],
        now: float,
    ) -> None:
        """The answer to a device tunnel's IKE_AUTH: an error notify without AUTH (AUTHENTICATION_FAILED to
        our certificate: no IKE SA, the responder has dropped it), or the server's AUTH - the IKE SA is up
        - and with it what became of the CHILD_SA (an error notify beside AUTH is the CHILD_SA's)."""
        assert self._auth is not None
        if auth is None:
            if errors:
                self._events.append(ErrorNotify(ExchangeType.IKE_AUTH, errors[0].type, errors[0].data))
                self._sa_ended = True
                self._finish()
            else:
                self._stop(
                    now, "IKE_AUTH", "protocol", "the answer to our AUTH carries neither AUTH nor an error"
                )
            return
        self.reached = "IKE_AUTH"
        self.ike_established = True  # the responder sent its AUTH: it holds an IKE SA of ours
        if idr is not None:
            self._idr_body = idr.encode_body()
        if idr is None or not self._auth.auth_verified:
            why = self._auth.auth_reason or "it does not verify"
            self._stop(now, "IKE_AUTH", "server-auth", f"the server's AUTH payload is not valid: {why}")
            return
        if (refusal := self._accept_server(self._auth) if self._accept_server else None) is not None:
            self._stop(now, "IKE_AUTH", "server-refused", refusal)
            return
        self._events.append(IkeSaEstablished(True, None, auth.method))
        self.reached = "CHILD_SA"
        if errors:
            self._events.append(ErrorNotify(ExchangeType.IKE_AUTH, errors[0].type, errors[0].data))
        child = self._child_result(inner, errors)
        self._events.append(child)
        self._child_up(now, child)

    def _stop(self, now: float, stage: str, cause: str, reason: str) -> None:
        """We end the connection ourselves: the event, then the request that ends what the server holds."""
        self._events.append(ConnectStopped(stage, cause, reason))
        if self.ike_established:
            self._send_info_delete(now)
        else:
            self._send_delete(now)

    def _eap_packet(self, eap: EapPayload, now: float) -> None:
        assert self._eap_peer is not None
        self.reached = "EAP"
        self._eap_rounds += 1
        if self._eap_rounds > MAX_EAP_ROUNDS:
            self._stop(now, "EAP", "protocol", f"more than {MAX_EAP_ROUNDS} EAP packets from the server")
            return
        try:
            step = self._eap_peer.receive(eap.encode_body())
        except EapError as exc:
            self._events.append(EapRound(eap.code, eap.eap_type, ()))
            self._stop(now, "EAP", "eap", f"EAP: {exc}")
            return
        self._events.append(EapRound(eap.code, eap.eap_type, step.events))
        if eap.code == EapCode.SUCCESS:
            self._send_final_auth(now)
            return
        if eap.code == EapCode.FAILURE:
            # The server ended the conversation, and an SA whose authentication failed goes with the
            # answer that says so (strongSwan destroys it once that answer is sent; vici shows none).
            self._sa_ended = True
            self._finish()
            return
        reply = step.reply_payload()
        if reply is None:
            self._stop(
                now, "EAP", "eap", self._eap_peer.failure_reason or "the EAP peer had nothing to answer"
            )
            return
        self._set_state(State.EAP_SENT)
        self._next_message_id += 1
        self._request(
            ExchangeType.IKE_AUTH,
            self._protect(ExchangeType.IKE_AUTH, [reply]),
            now,
            text=self._text(ExchangeType.IKE_AUTH, self._next_message_id, [reply]),
        )

    def _send_final_auth(self, now: float) -> None:
        """After EAP-Success: our AUTH keyed with the MSK (RFC 7296 §2.16)."""
        assert self._ctx is not None and self._keys is not None and self._suite is not None
        assert self._eap_peer is not None
        auth = initiator_eap_auth(
            self._suite.prf,
            self._eap_peer.msk,
            sk_pi=self._keys.sk_pi,
            sa_init_request=self._ctx.request,
            nonce_r=self._ctx.nonce_r,
            idi_body=self._idi_body,
        )
        self._set_state(State.FINAL_AUTH_SENT)
        self._next_message_id += 1
        self._request(
            ExchangeType.IKE_AUTH,
            self._protect(ExchangeType.IKE_AUTH, [auth]),
            now,
            text=self._text(ExchangeType.IKE_AUTH, self._next_message_id, [auth]),
        )

    def _on_final_auth_response(self, inner: tuple[Payload, ...], now: float) -> None:
        assert self._ctx is not None and self._keys is not None and self._suite is not None
        assert self._eap_peer is not None
        errors = [p for p in inner if isinstance(p, NotifyPayload) and p.type < 16384]
        auth = next((p for p in inner if isinstance(p, AuthPayload)), None)
        if auth is None:
            if errors:  # AUTHENTICATION_FAILED: no IKE SA, and the responder has dropped it
                self._events.append(ErrorNotify(ExchangeType.IKE_AUTH, errors[0].type, errors[0].data))
                self._sa_ended = True
                self._finish()
            else:
                self._stop(
                    now, "EAP", "protocol", "the answer to our AUTH carries neither AUTH nor an error notify"
                )
            return
        self.ike_established = True
        result = verify_responder_eap_auth(
            auth.method,
            auth.data,
            self._suite.prf,
            self._eap_peer.msk,
            sk_pr=self._keys.sk_pr,
            sa_init_response=self._ctx.response,
            nonce_i=self._ctx.nonce_i,
            idr_body=self._idr_body,
        )
        self._events.append(IkeSaEstablished(result.verified, result.reason, auth.method))
        if not result.verified:
            self._stop(
                now, "EAP", "responder-auth", f"the server's AUTH after EAP is not valid: {result.reason}"
            )
            return
        self.reached = "CHILD_SA"
        if errors:
            self._events.append(ErrorNotify(ExchangeType.IKE_AUTH, errors[0].type, errors[0].data))
        child = self._child_result(inner, errors)
        self._events.append(child)
        self._child_up(now, child)

    def _child_result(self, inner: tuple[Payload, ...], errors: list[NotifyPayload]) -> ChildSaResult:
        assert self._ctx is not None and self._keys is not None and self._suite is not None
        sa = next((p for p in inner if isinstance(p, SaPayload)), None)
        ts_i = next((p for p in inner if isinstance(p, TsPayload) and not p.responder), None)
        ts_r = next((p for p in inner if isinstance(p, TsPayload) and p.responder), None)
        cp = next((p for p in inner if isinstance(p, CpPayload) and p.cfg_type == CfgType.REPLY), None)
        notifies = tuple(p.type for p in inner if isinstance(p, NotifyPayload))

        def result(reason: str | None = None, suite: EspSuite | None = None) -> ChildSaResult:
            return ChildSaResult(
                established=reason is None and not errors and suite is not None,
                suite=suite,
                spi_i=self.child_spi_i or b"",
                spi_r=sa.proposals[0].spi if sa is not None and len(sa.proposals) == 1 else None,
                ts_i=ts_i.selectors if ts_i is not None else (),
                ts_r=ts_r.selectors if ts_r is not None else (),
                config=cp.attributes if cp is not None else (),
                error=errors[0].type if errors else None,
                notifies=notifies,
                reason=reason,
            )

        if errors:
            return result()
        if sa is None or ts_i is None or ts_r is None:
            return result("the answer carries no SA, TSi and TSr: the server made no CHILD_SA")
        if len(sa.proposals) != 1:
            return result(f"the server chose {len(sa.proposals)} ESP proposals, not one")
        try:
            suite = esp_suite_from_proposal(sa.proposals[0])
        except MalformedMessage as exc:
            return result(f"unusable ESP proposal: {exc}")
        if not esp_offered(self._esp_specs, suite):
            return result(f"the server chose an ESP proposal we did not offer ({suite.text})", suite)
        for ts in (*ts_i.selectors, *ts_r.selectors):
            start, end = ts.start_ip, ts.end_ip
            if start is None or end is None or int(start) > int(end) or ts.start_port > ts.end_port:
                return result("a traffic selector that is not an address range we asked for", suite)
        try:
            encr_bytes, integ_bytes = esp_key_bytes(suite.encr, suite.encr_key_bits, suite.integ)
        except UnsupportedSuite:
            pass  # the keys are not ours to use; the SA itself is fine
        else:
            self.child_suite = suite
            self.child_spi_r = sa.proposals[0].spi
            self._child_keys = derive_child_keys(
                self._suite.prf,
                self._keys.sk_d,
                self._ctx.nonce_i,
                self._ctx.nonce_r,
                encr_bytes,
                integ_bytes,
            )
        return result(None, suite)

    def _send_info_delete(self, now: float) -> None:
        """End an established IKE SA (and with it its CHILD_SA, RFC 7296 §1.4.1): INFORMATIONAL [D]."""
        if not self.config.send_delete:
            self._finish()
            return
        self._set_state(State.DELETE_SENT)
        self._next_message_id += 1
        delete: list[Payload] = [DeletePayload(protocol=ProtocolId.IKE, spi_size=0, spis=())]
        self._request(
            ExchangeType.INFORMATIONAL,
            self._protect(ExchangeType.INFORMATIONAL, delete),
            now,
            text=self._text(ExchangeType.INFORMATIONAL, self._next_message_id, delete),
        )

    def _send_delete(self, now: float, unanswered: int | None = None) -> None:
        """End the SA. Ours never complete authentication, and a responder ignores a Delete for an SA that is
        still half-open (strongSwan answers the INFORMATIONAL and keeps the SA until its half-open timeout):
        what ends it is an IKE_AUTH with a shared-key AUTH it must refuse, answered by a small
        AUTHENTICATION_FAILED, at the next message ID.

        When request `unanswered` got no answer we cannot know whether the responder saw it: the refusal
        goes at that message ID too (in the same flight), so whichever one the responder expects ends it.
        """
        if not self.config.send_delete or self._suite is None:
            self._finish()
            return
        # Our AUTH after EAP went unanswered: the responder may have established the SA (and only a Delete
        # ends that) or never seen the request (and only a refused AUTH at its message ID ends that).
        established_maybe = self.state is State.FINAL_AUTH_SENT
        self._set_state(State.DELETE_SENT)
        self._next_message_id += 1
        refused: list[Payload] = [
            AuthPayload(method=AuthMethod.SHARED_KEY, data=self._rng(prf_output_bytes(self._suite.prf)))
        ]
        ending_exchange: int = ExchangeType.IKE_AUTH
        if established_maybe:
            ending_exchange = ExchangeType.INFORMATIONAL
            ending: list[Payload] = [DeletePayload(protocol=ProtocolId.IKE, spi_size=0, spis=())]
            datagrams = self._protect(ending_exchange, ending)
            text = self._text(ending_exchange, self._next_message_id, ending)
        else:
            datagrams = self._protect(ExchangeType.IKE_AUTH, refused)
            text = self._text(ExchangeType.IKE_AUTH, self._next_message_id, refused)
        if unanswered is not None and unanswered < self._next_message_id:
            ending_id = self._next_message_id
            self._next_message_id = unanswered
            if unanswered == 1:
                # The first IKE_AUTH needs its IDi to be judged at all.
                first: list[Payload] = [self._idi(), *refused]
            else:
                first = refused
            datagrams = self._protect(ExchangeType.IKE_AUTH, first) + datagrams
            text = self._text(ExchangeType.IKE_AUTH, unanswered, first) + " + " + text
            self._next_message_id = ending_id
        self._request(ending_exchange, datagrams, now, text=text)
        if self._outstanding is not None and unanswered is not None and unanswered < self._next_message_id:
            self._outstanding.also_message_id = unanswered
            self._outstanding.also_exchange = ExchangeType.IKE_AUTH

    def _peer_error(self, reason: str) -> None:
        self._events.append(PeerMisbehaved(reason))
        self._outstanding = None
        if self.state not in (State.DONE, State.FAILED):
            self._set_state(State.DONE)
        self._events.append(Finished(self.reached))


_UNUSED = (AuthMethod, field)  # re-exported names used by callers' type hints
