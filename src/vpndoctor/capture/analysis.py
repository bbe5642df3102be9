"""Capture analysis: frames -> IP packets -> reassembly -> IKEv2 conversations and ESP flows -> findings.

One pass, bounded memory: conversations, messages per conversation, ESP flows and warnings are capped and
the excess counted. The findings are judged afterwards, purely from the collected state.
"""

from __future__ import annotations

import hashlib
import socket
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO, Literal

from vpndoctor.capture.fastpath import KINDS, FastPath, SplitResult
from vpndoctor.capture.ip import PROTO_TCP, PROTO_UDP, Packet, packet_from_frame
from vpndoctor.capture.model import CaptureReport, Conversation, Decrypted, IkeMessageInfo, TcpFlow
from vpndoctor.capture.reader import CaptureReader, open_capture
from vpndoctor.capture.reassembly import FragmentKey, Incomplete, Reassembled, Reassembler
from vpndoctor.capture.tcp import TLS_PORT, FlowKey, TcpFlowState, TcpTracker, flow_key
from vpndoctor.capture.udp import IKE_PORT, NAT_T_PORT, Kind, classify
from vpndoctor.checks.model import Finding, Status, Verdict
from vpndoctor.ike.constants import ExchangeType, NotifyType, PayloadType, name_of
from vpndoctor.ike.errors import MalformedMessage
from vpndoctor.ike.message import Header, decode_message
from vpndoctor.ike.payloads import EncryptedFragmentPayload

if TYPE_CHECKING:
    # --keys only: the decryptor brings in cryptography's X.509, ~0.2 s of start-up for every other run
    from vpndoctor.capture.decrypt import Decryptor, KeyTable

__all__ = [
    "ALL",
    "ERROR_NOTIFY",
    "ESP_ONE_WAY",
    "FRAGMENTATION_NOT_NEGOTIATED",
    "FRAGMENTED_LOST",
    "NATT_NO_4500_ANSWER",
    "NO_RESPONSE",
    "analyse",
]

NO_RESPONSE = "capture.ike.no-response"
FRAGMENTED_LOST = "capture.ike.fragmented-lost"
FRAGMENTATION_NOT_NEGOTIATED = "capture.ike.fragmentation-not-negotiated"
NATT_NO_4500_ANSWER = "capture.natt.no-4500-answer"
ERROR_NOTIFY = "capture.ike.error-notify"
ESP_ONE_WAY = "capture.esp.one-way"
ALL = (
    NO_RESPONSE,
    FRAGMENTED_LOST,
    FRAGMENTATION_NOT_NEGOTIATED,
    NATT_NO_4500_ANSWER,
    ERROR_NOTIFY,
    ESP_ONE_WAY,
)

_ROOT_CAUSE_ORDER = (
    FRAGMENTED_LOST,
    NATT_NO_4500_ANSWER,
    ERROR_NOTIFY,
    FRAGMENTATION_NOT_NEGOTIATED,
    ESP_ONE_WAY,
    NO_RESPONSE,
)

MAX_CONVERSATIONS = 10_000
MAX_MESSAGES = 1000  # per conversation
MAX_ESP_FLOWS = 10_000
MAX_WARNINGS = 100
MAX_PENDING_FIRST_FRAGMENTS = 1024  # as many as the reassembler keeps in flight

# What a Windows client shows for an error notify in an unencrypted message.
_ERROR_CODES: dict[int, int] = {
    NotifyType.NO_PROPOSAL_CHOSEN: 13868,
    NotifyType.AUTHENTICATION_FAILED: 13801,
}

_NOTIFY_BY_NAME = {name_of(NotifyType, n): int(n) for n in NotifyType}

_RequestKey = tuple[int, int, bool]  # exchange, message id, request sent by the original initiator


@dataclass(slots=True)
class _Msg:
    t: float
    exchange: int
    message_id: int
    response: bool
    initiator: bool
    ip_fragmented: bool
    size: int
    payloads: list[str]
    notifies: list[int]
    retransmission: bool
    port: int
    fragment: str | None
    lost: bool  # only the first IP fragment was captured
    decrypted: Decrypted | None = None  # with --keys

    @property
    def request_key(self) -> _RequestKey:
        requester_is_initiator = self.initiator != self.response
        return (self.exchange, self.message_id, requester_is_initiator)


@dataclass(slots=True)
class _Conv:
    initiator: str
    responder: str
    spi_i: bytes
    spi_r: bytes
    messages: list[_Msg] = field(default_factory=list)
    seen: set[bytes] = field(default_factory=set)
    beyond_cap: int = 0


@dataclass(slots=True)
class _State:
    packets: int = 0
    ike_messages: int = 0
    ikev1_messages: int = 0
    conversations: dict[tuple[bytes, bytes, bytes], _Conv] = field(default_factory=dict)
    conversations_beyond_cap: int = 0
    esp: dict[tuple[str, str, int], int] = field(default_factory=dict)
    esp_beyond_cap: int = 0
    # ESP packets per (source, destination, SPI) as tcp.flow_key builds keys (the fast path counts into it);
    # turned into `esp` at the end
    esp_raw: dict[FlowKey, int] = field(default_factory=dict)
    tcp: TcpTracker = field(default_factory=TcpTracker)
    kinds: dict[str, int] = field(default_factory=lambda: dict.fromkeys(KINDS, 0))
    warnings: list[str] = field(default_factory=list)
    warnings_beyond_cap: int = 0
    first_fragments: OrderedDict[FragmentKey, Packet] = field(default_factory=OrderedDict)
    first_ts: float | None = None  # the capture's first frame: t_rel_s counts from it, like Wireshark
    decryptor: Decryptor | None = None  # with --keys

    def warn(self, text: str) -> None:
        if len(self.warnings) < MAX_WARNINGS:
            self.warnings.append(text)
        else:
            self.warnings_beyond_cap += 1


def analyse(
    path_or_stream: str | Path | BinaryIO, *, name: str, keys: KeyTable | None = None
) -> CaptureReport:
    """Analyse one pcap/pcapng capture (a path, "-" for standard input, or an open binary stream);
    `keys` decrypts the SK/SKF payloads of the IKE SAs it lists.

    Raises CaptureError when the capture cannot be opened or read."""
    if isinstance(path_or_stream, str | Path):
        stream = open_capture(path_or_stream)
        try:
            return _analyse_stream(stream, name, keys)
        finally:
            if str(path_or_stream) != "-":
                stream.close()
    return _analyse_stream(path_or_stream, name, keys)


def _analyse_stream(stream: BinaryIO, name: str, keys: KeyTable | None = None) -> CaptureReport:
    decryptor = None
    if keys is not None:
        from vpndoctor.capture.decrypt import Decryptor

        decryptor = Decryptor(keys)
    st = _State(decryptor=decryptor)
    # The fast path settles most packets inside the reader; the loop below sees the rest as frames.
    reasm = Reassembler()

    def tick(ts: float) -> None:  # a packet a worker settled, while fragments wait
        for event in reasm.expire(ts):
            _on_event(st, event)
        fast.horizon = reasm.horizon()

    fast = FastPath(st.esp_raw, st.tcp.dirs, on_merge=lambda r: _merge(st, r), on_tick=tick)
    reader = CaptureReader(stream, fast)
    for frame in reader.frames():
        st.packets += 1
        if st.first_ts is None:
            st.first_ts = frame.timestamp
        pkt = packet_from_frame(frame)
        if pkt is None:
            st.kinds["non_ip"] += 1
            continue
        st.kinds[_kind(pkt)] += 1
        if pkt.is_fragment and pkt.frag_offset == 0 and _ike_ports(pkt):
            key: FragmentKey = (pkt.version, pkt.src, pkt.dst, pkt.ident, pkt.proto)
            st.first_fragments[key] = pkt
            while len(st.first_fragments) > MAX_PENDING_FIRST_FRAGMENTS:
                st.first_fragments.popitem(last=False)
        for event in reasm.feed(pkt):
            _on_event(st, event)
        fast.horizon = reasm.horizon()
    for incomplete in reasm.flush():
        _on_event(st, incomplete)
    fast.flush()
    st.tcp.finish()
    st.packets += fast.packets
    for kind, n in fast.kinds.items():
        st.kinds[kind] += n
    st.esp = {_esp_flow(k): n for k, n in st.esp_raw.items()}
    report = _report(st, name, reader.warnings)
    return report.model_copy(
        update={
            "tcp_flows": [_tcp_flow(f) for f in st.tcp.flows],
            "tcp_flows_beyond_cap": st.tcp.beyond_cap,
            "packets_by_kind": {k: n for k, n in st.kinds.items() if n},
        }
    )


def _merge(st: _State, result: SplitResult) -> None:
    """Counts of a worker's part of the file, after the packets it deferred went through the exact path
    (which met every key first and so decided whether it is tracked or beyond a cap)."""
    for key, n in result.esp.items():
        if key in st.esp_raw:
            st.esp_raw[key] += n
        else:
            st.esp_beyond_cap += n
    for key, (_seen, packets, nbytes) in result.tcp.items():
        d = st.tcp.dirs.get(key)
        if d is not None:
            d.packets += packets
            d.bytes += nbytes
        else:
            st.tcp.beyond_cap += packets


def _kind(pkt: Packet) -> str:
    """What one captured packet carries, for `packets_by_kind` (the fast path counts the same way)."""
    if pkt.is_fragment:
        return "ip_fragment"
    if pkt.proto == PROTO_TCP:
        return "tcp_443" if TLS_PORT in (pkt.sport, pkt.dport) else "tcp_other"
    carried = classify(pkt)
    if carried.kind is Kind.ESP:
        return "esp_in_udp" if carried.nat_t else "esp"
    if carried.kind is Kind.IKE:
        return "ike"
    if carried.kind is Kind.NAT_KEEPALIVE:
        return "nat_keepalive"
    return "udp_other" if pkt.proto == PROTO_UDP else "other_ip"


def _esp_flow(key: FlowKey) -> tuple[str, str, int]:
    size, family = (16, socket.AF_INET6) if len(key) == 4 else (4, socket.AF_INET)
    src, dst = (socket.inet_ntop(family, k.to_bytes(size, "little")) for k in key[:2])
    return src, dst, int.from_bytes(key[2].to_bytes(4, "little"), "big")


def _tcp_flow(f: TcpFlowState) -> TcpFlow:
    tunnel: Literal["sstp", "ip-https"] | None = None
    if f.http_request is not None:
        if f.http_request.startswith("SSTP_DUPLEX_POST /sra_"):
            tunnel = "sstp"
        elif f.http_request.upper().startswith("POST /IPHTTPS"):
            tunnel = "ip-https"
    protocol: Literal["tls", "http", "other"] | None = f.protocol  # type: ignore[assignment]
    return TcpFlow(
        client=f.client,
        server=f.server,
        t=f.t,
        packets_to_server=f.c2s.packets,
        packets_to_client=f.s2c.packets,
        bytes_to_server=f.c2s.bytes,
        bytes_to_client=f.s2c.bytes,
        syn_seen=f.syn_seen,
        resets_by_client=f.c2s.resets,
        resets_by_server=f.s2c.resets,
        protocol=protocol,
        sni=f.sni,
        offered_versions=f.offered_versions,
        version=f.version,
        cipher_suite=f.cipher_suite,
        hello_retry=f.hello_retry,
        alert=f.alert,
        http_request=f.http_request,
        http_response=f.http_response,
        tunnel=tunnel,
        notes=f.incomplete,
    )


def _ike_ports(pkt: Packet) -> bool:
    ports = (pkt.sport, pkt.dport)
    return pkt.proto == PROTO_UDP and (IKE_PORT in ports or NAT_T_PORT in ports)


def _on_event(st: _State, event: Packet | Reassembled | Incomplete) -> None:
    if isinstance(event, Incomplete):
        first = st.first_fragments.pop(event.key, None)
        if first is not None and event.first_seen:
            _on_packet(st, first, lost=True)
        return
    if isinstance(event, Reassembled):
        p = event.packet
        st.first_fragments.pop((p.version, p.src, p.dst, p.ident, p.proto), None)
        _on_packet(st, p, lost=False)
        return
    _on_packet(st, event, lost=False)


def _on_packet(st: _State, pkt: Packet, *, lost: bool) -> None:
    if pkt.proto == PROTO_TCP and TLS_PORT in (pkt.sport, pkt.dport) and not lost:
        length = pkt.declared_length if pkt.declared_length >= 0 else len(pkt.payload)
        st.tcp.segment(pkt.ts, pkt.version, pkt.src, pkt.dst, pkt.payload, length)
        return
    carried = classify(pkt)
    if carried.kind is Kind.ESP and carried.spi is not None:
        flow = flow_key(pkt.version, pkt.src, pkt.dst, carried.spi.to_bytes(4, "big"))
        if flow in st.esp_raw or len(st.esp_raw) < MAX_ESP_FLOWS:
            st.esp_raw[flow] = st.esp_raw.get(flow, 0) + 1
        else:
            st.esp_beyond_cap += 1
        return
    if carried.kind is not Kind.IKE or carried.ike is None:
        return
    if carried.ike_major == 1:
        st.ikev1_messages += 1
        return
    if carried.ike_major != 2:
        return
    _on_ike(st, pkt, carried.ike, NAT_T_PORT if carried.nat_t else IKE_PORT, lost=lost)


def _on_ike(st: _State, pkt: Packet, data: bytes, port: int, *, lost: bool) -> None:
    try:
        header = Header.decode(data)
    except MalformedMessage as exc:
        st.warn(f"undecodable IKEv2 header at t={pkt.ts:.6f} from {pkt.src_str}: {exc}")
        return
    st.ike_messages += 1
    payloads: list[str] = []
    notifies: list[int] = []
    fragment: str | None = None
    size = header.length if lost else len(data)
    if not lost:
        try:
            msg = decode_message(data)
        except MalformedMessage as exc:
            st.warn(f"malformed IKEv2 message at t={pkt.ts:.6f} from {pkt.src_str}: {exc}")
        else:
            payloads = [name_of(PayloadType, p.payload_type) for p in msg.payloads]
            notifies = [n.type for n in msg.notifies]
            skf = msg.first(EncryptedFragmentPayload)
            if skf is not None:
                fragment = f"{skf.fragment_number}/{skf.total_fragments}"
    src = _endpoint(pkt.src_str, pkt.sport)
    dst = _endpoint(pkt.dst_str, pkt.dport)
    init_ep, resp_ep = (src, dst) if header.is_initiator else (dst, src)
    init_ip, resp_ip = (pkt.src, pkt.dst) if header.is_initiator else (pkt.dst, pkt.src)
    key = (header.spi_i, init_ip, resp_ip)
    conv = st.conversations.get(key)
    if conv is None:
        if len(st.conversations) >= MAX_CONVERSATIONS:
            st.conversations_beyond_cap += 1
            return
        conv = st.conversations[key] = _Conv(init_ep, resp_ep, header.spi_i, header.spi_r)
    if conv.spi_r == bytes(8) and header.spi_r != bytes(8):
        conv.spi_r = header.spi_r
    if len(conv.messages) >= MAX_MESSAGES:
        conv.beyond_cap += 1
        return
    digest = hashlib.blake2b(
        bytes([header.exchange, header.flags & 0x28]) + header.message_id.to_bytes(4, "big") + data,
        digest_size=16,
    ).digest()
    retransmission = digest in conv.seen
    conv.seen.add(digest)
    decrypted = None
    if st.decryptor is not None and not lost and ("SK" in payloads or "SKF" in payloads):
        decrypted = st.decryptor.decrypt(header, data, pkt.ts)
    conv.messages.append(
        _Msg(
            t=pkt.ts,
            exchange=header.exchange,
            message_id=header.message_id,
            response=header.is_response,
            initiator=header.is_initiator,
            ip_fragmented=pkt.ip_fragmented or lost,
            size=size,
            payloads=payloads,
            notifies=notifies,
            retransmission=retransmission,
            port=port,
            fragment=fragment,
            lost=lost,
            decrypted=decrypted,
        )
    )


def _endpoint(ip: str, port: int | None) -> str:
    host = f"[{ip}]" if ":" in ip else ip
    return f"{host}:{port if port is not None else 0}"


# --- judging ------------------------------------------------------------------------------------------------


@dataclass(slots=True)
class _Req:
    conv: _Conv
    key: _RequestKey
    first_t: float
    sends: int = 0
    retransmitted: bool = False
    ip_fragmented: bool = False
    lost: bool = False  # the request, or a response to it, was seen as a first IP fragment only
    ports: set[int] = field(default_factory=set)
    answered: bool = False
    answer_ports: set[int] = field(default_factory=set)
    answer_ip_fragmented: bool = False  # an answer was sent as IP fragments (seen where it was sent)
    resent_after_fragmented_answer: bool = False  # ... and the request came again after it
    stalled: bool = False  # the requester never sent a later message id in this conversation

    @property
    def fragmented_answer_lost(self) -> bool:
        """The 809 signature seen at the gateway: its IP-fragmented answer went out, the request kept coming
        back and the exchange never moved on, so the answer did not arrive."""
        return self.answer_ip_fragmented and self.resent_after_fragmented_answer and self.stalled


def _requests(conv: _Conv) -> list[_Req]:
    reqs: dict[_RequestKey, _Req] = {}
    for m in conv.messages:
        key = m.request_key
        req = reqs.get(key)
        if req is None:
            req = reqs[key] = _Req(conv, key, m.t)
        if m.response:
            if m.lost:
                req.lost = True
            else:
                req.answered = True
                req.answer_ports.add(m.port)
                req.answer_ip_fragmented |= m.ip_fragmented
            continue
        if req.answer_ip_fragmented:
            req.resent_after_fragmented_answer = True
        req.sends += 1
        req.retransmitted |= m.retransmission
        req.ip_fragmented |= m.ip_fragmented
        req.lost |= m.lost
        req.ports.add(m.port)
    last_id: dict[bool, int] = {}
    for _exchange, message_id, by_initiator in reqs:
        last_id[by_initiator] = max(last_id.get(by_initiator, -1), message_id)
    for req in reqs.values():
        req.stalled = req.key[1] >= last_id.get(req.key[2], -1)
    # a request key created by a response alone (request not captured) is answered: not a finding
    return [r for r in reqs.values() if r.sends]


def _describe(req: _Req) -> dict[str, Any]:
    exchange, message_id, by_initiator = req.key
    return {
        "initiator": req.conv.initiator,
        "responder": req.conv.responder,
        "spi_i": req.conv.spi_i.hex(),
        "exchange": name_of(ExchangeType, exchange),
        "message_id": message_id,
        "from": "initiator" if by_initiator else "responder",
        "sends": req.sends,
        "ports": sorted(req.ports),
    }


def _finding(fid: str, status: Status, title: str, detail: str, **kw: Any) -> Finding:
    return Finding(id=fid, status=status, title=title, detail=detail, **kw)


def _check_no_response(reqs: list[_Req]) -> Finding:
    if not reqs:
        return _finding(NO_RESPONSE, "skip", "IKE requests answered", "no IKEv2 request in the capture")
    bad = [r for r in reqs if r.retransmitted and not r.answered]
    if not bad:
        return _finding(
            NO_RESPONSE,
            "pass",
            "IKE requests answered",
            f"no retransmitted request of {len(reqs)} went unanswered",
        )
    names = sorted({name_of(ExchangeType, r.key[0]) for r in bad})
    return _finding(
        NO_RESPONSE,
        "fail",
        "IKE requests never answered",
        f"{len(bad)} request(s) retransmitted and never answered: {', '.join(names)}",
        evidence={"requests": [_describe(r) for r in bad[:20]]},
        remedy="Check that UDP 500/4500 reach the gateway and its answers come back (firewall, NAT, load "
        "balancer); see which exchange stalls.",
        error_codes=[809],
    )


def _check_fragmented_lost(reqs: list[_Req]) -> Finding:
    relevant = [r for r in reqs if r.ip_fragmented or r.lost or r.answer_ip_fragmented]
    if not relevant:
        return _finding(
            FRAGMENTED_LOST,
            "skip",
            "IP-fragmented IKE messages",
            "no IP-fragmented IKE message in the capture",
        )
    bad = [
        r for r in relevant if (not r.answered and (r.lost or r.retransmitted)) or r.fragmented_answer_lost
    ]
    if bad:
        return _finding(
            FRAGMENTED_LOST,
            "fail",
            "IP-fragmented IKE messages lost",
            f"{len(bad)} IP-fragmented IKE exchange(s) never completed: fragments were lost on the path "
            "(the error 809 signature)",
            evidence={
                "requests": [
                    _describe(r)
                    | {"incomplete_reassembly": r.lost, "fragmented_answer_resent": r.fragmented_answer_lost}
                    for r in bad[:20]
                ]
            },
            remedy="Let IP fragments through (firewall, load balancer) or enable IKEv2 fragmentation (RFC "
            "7383) on both client and gateway.",
            error_codes=[809],
        )
    partial = [r for r in relevant if r.lost]
    if partial:
        return _finding(
            FRAGMENTED_LOST,
            "warn",
            "IP fragments lost",
            f"{len(partial)} exchange(s) lost IP fragments but later completed",
            evidence={"requests": [_describe(r) for r in partial[:20]]},
        )
    return _finding(
        FRAGMENTED_LOST,
        "pass",
        "IP-fragmented IKE messages",
        f"{len(relevant)} exchange(s) with IP-fragmented messages all completed",
    )


def _auth_stalled(conv: _Conv, reqs: list[_Req]) -> bool:
    """An IKE_AUTH request of this conversation was retransmitted and never answered."""
    return any(
        r.conv is conv and r.key[0] == ExchangeType.IKE_AUTH and r.retransmitted and not r.answered
        for r in reqs
    )


def _gateway_without_fragmentation(conv: _Conv) -> bool:
    """The responder's IKE_SA_INIT answer did not offer IKEv2 fragmentation (whatever the initiator did:
    without it on both sides, large messages need IP fragments just the same)."""
    answers = [
        m for m in conv.messages
        if m.exchange == ExchangeType.IKE_SA_INIT and m.response and not m.lost and "SA" in m.payloads
    ]  # fmt: skip
    return bool(answers) and NotifyType.IKEV2_FRAGMENTATION_SUPPORTED not in answers[-1].notifies


def _check_fragmentation_negotiated(convs: list[_Conv], reqs: list[_Req], fragmented_lost: bool) -> Finding:
    judged = 0
    mismatches: list[dict[str, Any]] = []
    # Seen from the client: IKE_AUTH never answered by a gateway that does not fragment is error 809's
    # classic cause (its certificate-bearing answer needs IP fragments, which the path drops).
    stalled = [c for c in convs if _gateway_without_fragmentation(c) and _auth_stalled(c, reqs)]
    fragmented_lost = fragmented_lost or bool(stalled)
    frag_sup = NotifyType.IKEV2_FRAGMENTATION_SUPPORTED
    for conv in convs:
        init_reqs = [
            m for m in conv.messages
            if m.exchange == ExchangeType.IKE_SA_INIT and not m.response and m.initiator and not m.lost
        ]  # fmt: skip
        answers = [
            m for m in conv.messages
            if m.exchange == ExchangeType.IKE_SA_INIT and m.response and not m.lost and "SA" in m.payloads
        ]  # fmt: skip
        if not init_reqs or not answers:
            continue
        judged += 1
        offered = any(frag_sup in m.notifies for m in init_reqs)
        answered = frag_sup in answers[-1].notifies
        if offered != answered:
            mismatches.append(
                {
                    "initiator": conv.initiator,
                    "responder": conv.responder,
                    "spi_i": conv.spi_i.hex(),
                    "initiator_offers": offered,
                    "responder_offers": answered,
                }
            )
    if not judged:
        return _finding(
            FRAGMENTATION_NOT_NEGOTIATED,
            "skip",
            "IKEv2 fragmentation negotiated",
            "no complete IKE_SA_INIT exchange in the capture",
        )
    if not mismatches and not stalled:
        return _finding(
            FRAGMENTATION_NOT_NEGOTIATED,
            "pass",
            "IKEv2 fragmentation negotiated",
            f"both sides agree on IKEV2_FRAGMENTATION_SUPPORTED in {judged} IKE_SA_INIT exchange(s)",
        )
    if not mismatches:  # neither side offers it, and IKE_AUTH went unanswered
        return _finding(
            FRAGMENTATION_NOT_NEGOTIATED,
            "fail",
            "IKEv2 fragmentation not negotiated",
            f"neither side offered IKEV2_FRAGMENTATION_SUPPORTED and IKE_AUTH was never answered in "
            f"{len(stalled)} conversation(s): the gateway's certificate-bearing answer needs IP fragments, "
            "which were most likely dropped on the path",
            evidence={
                "conversations": [
                    {"initiator": c.initiator, "responder": c.responder, "spi_i": c.spi_i.hex()}
                    for c in stalled[:20]
                ]
            },
            remedy="Enable IKEv2 fragmentation (RFC 7383) on both the gateway and the client (Windows: "
            "EnableIKEv2Fragmentation / the VPN profile), or let IP fragments through.",
            error_codes=[809],
        )
    return _finding(
        FRAGMENTATION_NOT_NEGOTIATED,
        "fail" if fragmented_lost else "warn",
        "IKEv2 fragmentation not negotiated",
        f"IKEV2_FRAGMENTATION_SUPPORTED offered by only one side in {len(mismatches)} IKE_SA_INIT exchange(s)"
        + (
            "; large IKE_AUTH messages then rely on IP fragments, which were lost"
            if fragmented_lost and not stalled
            else "; IKE_AUTH was never answered: the gateway's certificate-bearing answer needs IP "
            "fragments, which were most likely dropped on the path"
            if stalled
            else ""
        ),
        evidence={"conversations": mismatches[:20]},
        remedy="Enable IKEv2 fragmentation (RFC 7383) on the gateway (and on Windows, "
        "EnableIKEv2Fragmentation / the VPN profile).",
        error_codes=[809] if fragmented_lost else [],
    )


def _check_natt(convs: list[_Conv], reqs: list[_Req]) -> Finding:
    bad: list[dict[str, Any]] = []
    applicable = 0
    for conv in convs:
        mine = [r for r in reqs if r.conv is conv]
        on_4500 = [r for r in mine if NAT_T_PORT in r.ports]
        if not on_4500:
            continue
        applicable += 1
        answered_500 = any(IKE_PORT in r.answer_ports for r in mine)
        answered_4500 = any(NAT_T_PORT in r.answer_ports for r in mine)
        if answered_500 and not answered_4500:
            bad.append(
                {
                    "initiator": conv.initiator,
                    "responder": conv.responder,
                    "spi_i": conv.spi_i.hex(),
                    "unanswered_on_4500": sorted({name_of(ExchangeType, r.key[0]) for r in on_4500}),
                    # the same silence if the gateway's IP-fragmented IKE_AUTH answer was dropped instead
                    "ambiguous_with_lost_fragments": _gateway_without_fragmentation(conv),
                }
            )
    if not applicable:
        return _finding(NATT_NO_4500_ANSWER, "skip", "UDP 4500 answered", "no IKE request on UDP 4500")
    if not bad:
        return _finding(
            NATT_NO_4500_ANSWER,
            "pass",
            "UDP 4500 answered",
            f"{applicable} conversation(s) answered on UDP 4500",
        )
    if all(c["ambiguous_with_lost_fragments"] for c in bad):
        # Only IKE_AUTH went unanswered, and the gateway does not fragment: its answer may simply have been
        # dropped as IP fragments. fragmentation-not-negotiated carries that verdict; this stays a warning.
        return _finding(
            NATT_NO_4500_ANSWER,
            "warn",
            "UDP 4500 never answered (or its answer was lost)",
            f"{len(bad)} conversation(s) answered on UDP 500 but never on UDP 4500; the gateway did not "
            "offer IKEv2 fragmentation, so its IKE_AUTH answer may have been dropped as IP fragments",
            evidence={"conversations": bad[:20]},
            remedy="Check that UDP 4500 reaches the gateway (firewall, load balancer affinity); if it does, "
            "the IP fragments of its answer are being dropped.",
            error_codes=[809],
        )
    return _finding(
        NATT_NO_4500_ANSWER,
        "fail",
        "UDP 4500 never answered",
        f"{len(bad)} conversation(s) answered on UDP 500 but never on UDP 4500",
        evidence={"conversations": bad[:20]},
        remedy="Open UDP 4500 to the gateway and make the load balancer send 500 and 4500 from one client to "
        "the same backend (source-IP affinity).",
        error_codes=[809],
    )


def _check_error_notify(convs: list[_Conv]) -> Finding:
    if not any(conv.messages for conv in convs):
        return _finding(ERROR_NOTIFY, "skip", "IKE error notifies", "no IKEv2 message in the capture")
    unhandled: list[dict[str, Any]] = []
    handled: list[dict[str, Any]] = []
    codes: set[int] = set()
    for conv in convs:
        for m in conv.messages:
            notifies = m.notifies
            if "SK" in m.payloads or "SKF" in m.payloads:
                # inside SK only what --keys decrypted counts (its notifies are names, typed back here)
                if m.decrypted is None or m.decrypted.integrity == "failed":
                    continue
                notifies = [_NOTIFY_BY_NAME[n] for n in m.decrypted.notifies if n in _NOTIFY_BY_NAME]
            for ntype in notifies:
                if ntype >= 16384:
                    continue
                item = {
                    "initiator": conv.initiator,
                    "responder": conv.responder,
                    "exchange": name_of(ExchangeType, m.exchange),
                    "message_id": m.message_id,
                    "notify": name_of(NotifyType, ntype),
                    "t": m.t,
                }
                if ntype == NotifyType.INVALID_KE_PAYLOAD and _succeeded_after(convs, conv, m):
                    handled.append(item)
                    continue
                unhandled.append(item)
                if ntype in _ERROR_CODES:
                    codes.add(_ERROR_CODES[ntype])
    if unhandled:
        names = sorted({str(i["notify"]) for i in unhandled})
        return _finding(
            ERROR_NOTIFY,
            "fail",
            "IKE error notify",
            f"the peers reported: {', '.join(names)}",
            evidence={"notifies": unhandled[:20], "handled": handled[:20]},
            remedy="NO_PROPOSAL_CHOSEN: align the crypto proposals of client and gateway; "
            "AUTHENTICATION_FAILED: check certificates, EAP credentials and the gateway's authentication "
            "policy.",
            error_codes=sorted(codes),
        )
    detail = "no error notify in unencrypted messages"
    if handled:
        detail = f"{len(handled)} INVALID_KE_PAYLOAD handled: the initiator retried with the requested group"
    return _finding(ERROR_NOTIFY, "pass", "IKE error notifies", detail, evidence={"handled": handled[:20]})


def _succeeded_after(convs: list[_Conv], conv: _Conv, m: _Msg) -> bool:
    """An IKE_SA_INIT between the same endpoints got a proper answer (with SA) after `m`."""
    hosts = (conv.initiator.rsplit(":", 1)[0], conv.responder.rsplit(":", 1)[0])
    for other in convs:
        if (other.initiator.rsplit(":", 1)[0], other.responder.rsplit(":", 1)[0]) != hosts:
            continue
        for later in other.messages:
            if (
                later.t >= m.t
                and later is not m
                and later.exchange == ExchangeType.IKE_SA_INIT
                and later.response
                and "SA" in later.payloads
            ):
                return True
    return False


def _check_esp(esp: dict[tuple[str, str, int], int]) -> Finding:
    flows = [{"src": s, "dst": d, "spi": f"{spi:08x}", "packets": n} for (s, d, spi), n in esp.items()]
    if not esp:
        return _finding(ESP_ONE_WAY, "skip", "ESP in both directions", "no ESP in the capture")
    directions = {(s, d) for s, d, _ in esp}
    one_way = [f for f in flows if (f["dst"], f["src"]) not in directions]
    evidence = {"esp_flows": flows[:100], "esp_packets": sum(esp.values())}
    if one_way:
        return _finding(
            ESP_ONE_WAY,
            "warn",
            "ESP seen in one direction only",
            f"{len(one_way)} ESP SPI(s) with no ESP in the opposite direction",
            evidence=evidence | {"one_way": one_way[:100]},
            remedy="Check that ESP (or UDP 4500) is allowed back, and that the capture point sees both "
            "directions.",
        )
    return _finding(
        ESP_ONE_WAY,
        "pass",
        "ESP in both directions",
        f"{len(esp)} ESP SPI(s), traffic both ways",
        evidence=evidence,
    )


def _report(st: _State, name: str, reader_warnings: list[str]) -> CaptureReport:
    convs = list(st.conversations.values())
    for conv in convs:  # messages held back for reassembly arrive late: judge and show them in capture time
        conv.messages.sort(key=lambda m: m.t)
    reqs = [r for conv in convs for r in _requests(conv)]
    findings: dict[str, Finding] = {}
    findings[NO_RESPONSE] = _check_no_response(reqs)
    findings[FRAGMENTED_LOST] = _check_fragmented_lost(reqs)
    findings[FRAGMENTATION_NOT_NEGOTIATED] = _check_fragmentation_negotiated(
        convs, reqs, findings[FRAGMENTED_LOST].status == "fail"
    )
    findings[NATT_NO_4500_ANSWER] = _check_natt(convs, reqs)
    findings[ERROR_NOTIFY] = _check_error_notify(convs)
    findings[ESP_ONE_WAY] = _check_esp(st.esp)
    ordered = [findings[fid] for fid in ALL]
    # Root causes before symptoms: "never answered" is what the specific findings explain.
    failing = sorted((f for f in ordered if f.status == "fail"), key=lambda f: _ROOT_CAUSE_ORDER.index(f.id))
    if failing:
        codes = sorted({c for f in failing for c in f.error_codes})
        summary = "Problems found: " + "; ".join(f.title for f in failing) + "."
        if codes:
            summary += " A Windows client would report error " + ", ".join(map(str, codes)) + "."
    else:
        summary = (
            f"No problem found in {st.ike_messages} IKEv2 message(s) across {len(convs)} conversation(s)."
        )
    warnings = list(reader_warnings) + st.warnings
    if st.warnings_beyond_cap:
        warnings.append(f"{st.warnings_beyond_cap} more warnings not shown")
    if st.ikev1_messages:
        warnings.append(f"IKEv1 traffic: not analysed ({st.ikev1_messages} messages)")
    if st.conversations_beyond_cap:
        warnings.append(
            f"{st.conversations_beyond_cap} IKE messages beyond {MAX_CONVERSATIONS} conversations "
            "not analysed"
        )
    for conv in convs:
        if conv.beyond_cap:
            warnings.append(
                f"conversation {conv.initiator} -> {conv.responder} SPIi {conv.spi_i.hex()}: "
                f"{conv.beyond_cap} messages beyond {MAX_MESSAGES} not analysed"
            )
    if st.esp_beyond_cap:
        warnings.append(f"{st.esp_beyond_cap} ESP packets beyond {MAX_ESP_FLOWS} flows not counted")
    if st.decryptor is not None:
        warnings.extend(st.decryptor.table.warnings)
        if st.decryptor.not_verified:
            warnings.append(
                f"{st.decryptor.not_verified} message(s) decrypted although their integrity check value did "
                "not verify: their content is shown but not authenticated"
            )
        if st.decryptor.failed:
            warnings.append(f"{st.decryptor.failed} message(s) could not be decrypted with the given keys")
        matched = {(c.spi_i, c.spi_r) for c in convs if st.decryptor.table.has_sa(c.spi_i, c.spi_r)}
        if not matched:
            warnings.append("--keys: no IKE SA of the capture is in the key file")
    return CaptureReport(
        file=name,
        packets=st.packets,
        ike_messages=st.ike_messages,
        conversations=[_conversation(c, st.first_ts) for c in convs],
        findings=ordered,
        verdict=Verdict(
            status="problems" if failing else "healthy",
            root_causes=[f.id for f in failing],
            summary=summary,
        ),
        warnings=warnings,
    )


def _response_times_ms(conv: _Conv) -> list[float | None]:
    """Per message: for a response, milliseconds since the latest send of its request before it."""
    last_sent: dict[_RequestKey, float] = {}
    out: list[float | None] = []
    for m in conv.messages:
        if not m.response:
            last_sent[m.request_key] = m.t
            out.append(None)
            continue
        sent = last_sent.get(m.request_key)
        out.append(round((m.t - sent) * 1000, 3) if sent is not None and m.t >= sent else None)
    return out


def _conversation(conv: _Conv, first_ts: float | None) -> Conversation:
    start = first_ts if first_ts is not None else min((m.t for m in conv.messages), default=0.0)
    response_ms = _response_times_ms(conv)
    return Conversation(
        initiator=conv.initiator,
        responder=conv.responder,
        spi_i=conv.spi_i.hex(),
        spi_r=conv.spi_r.hex(),
        messages=[
            IkeMessageInfo(
                t=m.t,
                exchange=name_of(ExchangeType, m.exchange),
                message_id=m.message_id,
                response=m.response,
                initiator=m.initiator,
                ip_fragmented=m.ip_fragmented,
                size=m.size,
                payloads=m.payloads,
                notifies=[name_of(NotifyType, n) for n in m.notifies],
                retransmission=m.retransmission,
                port=m.port,
                fragment=m.fragment,
                t_rel_s=round(m.t - start, 9),
                response_time_ms=rt,
                ip_fragments_missing=m.lost,
                decrypted=m.decrypted,
            )
            for m, rt in zip(conv.messages, response_ms, strict=True)
        ],
    )
