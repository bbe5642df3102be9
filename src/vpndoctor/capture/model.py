"""The capture report: the JSON contract of `vpndoctor capture --json`; and the IKEv2 conversations as
collected from the capture (`IkeConversation`, `IkeMessage`: numbers and bytes as decoded), which the checks
in `checks.capture` judge and `Conversation` shows.

Data only: nothing here reads a capture, so that the checks depend on these shapes and on nothing that does.
Findings and the verdict reuse the diagnose shapes so that renderers and consumers treat both alike.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from vpndoctor.checks.model import Finding, Verdict

__all__ = [
    "IKE_PORT",
    "NAT_T_PORT",
    "CaptureReport",
    "Conversation",
    "Decrypted",
    "DecryptedPayload",
    "IkeConversation",
    "IkeMessage",
    "IkeMessageInfo",
    "RequestKey",
    "TcpFlow",
]

IKE_PORT = 500
NAT_T_PORT = 4500  # IKE after NAT detection, ESP-in-UDP and NAT keepalives (RFC 3948)


# The JSON shapes are stdlib dataclasses, as the findings are (see checks/model.py): pydantic writes their
# schema (scripts/gen_schemas.py) but is not imported by `vpndoctor capture`, whose start-up it would double.
_FORBID = {"extra": "forbid"}


@dataclass(frozen=True, kw_only=True)
class DecryptedPayload:
    """One payload found inside SK/SKF: its type, a line for people, and the facts worth querying."""

    type: str  # "IDi", "CERT", "AUTH", "NOTIFY", "EAP", "CP", "SA", "TSi", ... (as in `payloads`)
    summary: str  # e.g. "fqdn:vpn.example.com", "CN=vpn.example.com (issuer CN=Lab CA)", "RSA_SIG"
    identity: str | None = None  # IDi/IDr, e.g. "fqdn:vpn.example.com", "ipv4:192.0.2.1"
    subject: str | None = None  # CERT (X.509): RFC 4514 subject
    issuer: str | None = None  # CERT (X.509): RFC 4514 issuer
    auth_method: str | None = None  # AUTH: RSA_SIG, SHARED_KEY, DIGITAL_SIGNATURE, ...
    eap_code: str | None = None  # EAP: REQUEST, RESPONSE, SUCCESS, FAILURE
    eap_type: str | None = None  # EAP: IDENTITY, MSCHAPV2, TLS, ... (none for SUCCESS/FAILURE)
    notify: str | None = None  # NOTIFY: its type

    __pydantic_config__ = _FORBID


Integrity = Literal["verified", "not-verified", "failed"]


@dataclass(frozen=True, kw_only=True)
class Decrypted:
    """The SK/SKF content of one message, decrypted with a key from --keys.

    integrity: "verified" when the ICV (or AES-GCM tag) matched; "not-verified" when it did not match (or
    the key table asked for no check) but the plaintext parsed as a payload chain, as with tcpdump's
    ikev2pI2 capture; "failed" when nothing readable came out (wrong keys, altered message)."""

    integrity: Integrity
    detail: str | None = None  # why not verified, or why it failed
    fragments: int | None = None  # SKF: how many fragments the shown payloads were reassembled from
    payloads: list[str]  # inner payload types, as in `payloads`; empty on an SKF fragment not completing
    notifies: list[str]  # inner notify types
    items: list[DecryptedPayload]

    __pydantic_config__ = _FORBID


@dataclass(frozen=True, kw_only=True)
class IkeMessageInfo:
    t: float  # capture timestamp, seconds since the epoch
    exchange: str
    message_id: int
    response: bool
    initiator: bool  # sent by the original initiator (the I flag)
    ip_fragmented: bool
    size: int  # IKE message bytes (from the header's length field when only part of it was captured)
    payloads: list[str]
    notifies: list[str]
    retransmission: bool  # the same bytes were already seen for this exchange, message id and direction
    port: int  # 500 or 4500
    fragment: str | None = None  # "n/total" for an IKEv2 fragment (SKF, RFC 7383)
    t_rel_s: float = 0.0  # seconds since the capture's first packet (Wireshark's frame.time_relative)
    response_time_ms: float | None = None  # a response: time since the latest send of its request
    ip_fragments_missing: bool = False  # only the first IP fragment was captured (size from the IKE header)
    decrypted: Decrypted | None = None  # with --keys, for an SK/SKF message of an IKE SA in the key table

    __pydantic_config__ = _FORBID


@dataclass(frozen=True, kw_only=True)
class Conversation:
    initiator: str  # "ip:port"
    responder: str
    spi_i: str  # hex
    spi_r: str  # hex; all zeros until the responder answers
    messages: list[IkeMessageInfo]

    __pydantic_config__ = _FORBID


@dataclass(frozen=True, kw_only=True)
class TcpFlow:
    """One TCP connection to port 443: counts each way and what its first bytes say (TLS hellos, or the
    SSTP / IP-HTTPS request line when it is not encrypted)."""

    client: str  # "ip:port"
    server: str
    t: float  # capture timestamp of its first packet
    packets_to_server: int
    packets_to_client: int
    bytes_to_server: int  # TCP payload bytes
    bytes_to_client: int
    syn_seen: bool  # the client's SYN is in the capture (the flow was captured from its start)
    resets_by_client: int
    resets_by_server: int
    protocol: Literal["tls", "http", "other"] | None = None  # what the client sent first; None: no data
    sni: str | None = None  # ClientHello server_name
    # ClientHello supported_versions (else its version), e.g. "TLS 1.3"
    offered_versions: list[str] = field(default_factory=list)
    version: str | None = None  # negotiated, from the ServerHello
    cipher_suite: str | None = None  # negotiated, IANA name
    hello_retry: bool = False  # the server sent a TLS 1.3 HelloRetryRequest first
    alert: str | None = None  # a plaintext alert instead of a ServerHello, e.g. "fatal handshake_failure"
    http_request: str | None = None  # request line in clear, e.g. "SSTP_DUPLEX_POST /sra_{...}/ HTTP/1.1"
    http_response: str | None = None  # status line in clear
    tunnel: Literal["sstp", "ip-https"] | None = None  # what the request line asks for
    # why a hello could not be read (not captured from the start, snaplen, ...)
    notes: list[str] = field(default_factory=list)

    __pydantic_config__ = _FORBID


@dataclass(frozen=True, kw_only=True)
class CaptureReport:
    file: str
    packets: int
    ike_messages: int
    conversations: list[Conversation]
    findings: list[Finding]
    verdict: Verdict
    warnings: list[str]
    tcp_flows: list[TcpFlow] = field(default_factory=list)  # TCP 443, in order of their first packet
    tcp_flows_beyond_cap: int = 0  # packets of TCP 443 flows beyond the flow table's size, not tracked
    # every packet counted once by what it carries: esp, esp_in_udp, ike, nat_keepalive, tcp_443, tcp_other,
    # udp_other, other_ip, ip_fragment (before reassembly), non_ip
    packets_by_kind: dict[str, int] = field(default_factory=dict)


# --- the conversations as collected -------------------------------------------------------------------------

    __pydantic_config__ = _FORBID


RequestKey = tuple[int, int, bool]  # exchange, message id, request sent by the original initiator


@dataclass(slots=True)
class IkeMessage:
    """One IKEv2 message of a conversation, as the capture showed it (`IkeMessageInfo` is its JSON form)."""

    t: float  # capture timestamp
    exchange: int
    message_id: int
    response: bool
    initiator: bool  # sent by the original initiator (the I flag)
    ip_fragmented: bool
    size: int
    payloads: list[str]  # payload type names, in wire order
    notifies: list[int]  # notify types of the unencrypted NOTIFY payloads
    retransmission: bool
    port: int  # IKE_PORT or NAT_T_PORT
    fragment: str | None  # "n/total" for an IKEv2 fragment (SKF)
    lost: bool  # only the first IP fragment was captured
    decrypted: Decrypted | None = None  # with --keys

    @property
    def request_key(self) -> RequestKey:
        requester_is_initiator = self.initiator != self.response
        return (self.exchange, self.message_id, requester_is_initiator)


@dataclass(slots=True)
class IkeConversation:
    """The messages of one IKE SA between two endpoints, in capture time (`Conversation` is its JSON form)."""

    initiator: str  # "ip:port"
    responder: str
    spi_i: bytes
    spi_r: bytes  # all zeros until the responder answers
    messages: list[IkeMessage] = field(default_factory=list)
    beyond_cap: int = 0  # messages past the per-conversation cap, not collected
