"""Frames -> IKEv2 conversations, ESP and TCP 443 flows, packet counts and warnings: everything a capture
shows, collected in one pass for `checks.capture` to judge and the report to show.

The fast path settles most packets inside the reader, counting into the tables here; the frames it leaves go
through the exact path below: IP, reassembly, UDP classification, the TCP tracker and IKE decoding. Bounded
memory: conversations, messages per conversation, ESP flows and warnings are capped and the excess counted.
"""

from __future__ import annotations

import hashlib
import socket
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, BinaryIO, Literal

from vpndoctor.capture.fastpath import FastPath
from vpndoctor.capture.ip import PROTO_TCP, PROTO_UDP, Packet, packet_from_frame
from vpndoctor.capture.layout import KINDS
from vpndoctor.capture.model import (
    IKE_PORT,
    NAT_T_PORT,
    Conversation,
    IkeConversation,
    IkeMessage,
    IkeMessageInfo,
    RequestKey,
    TcpFlow,
)
from vpndoctor.capture.reader import CaptureReader
from vpndoctor.capture.reassembly import FragmentKey, Incomplete, Reassembled, Reassembler
from vpndoctor.capture.tcp import TLS_PORT, FlowKey, TcpFlowState, TcpTracker, flow_key
from vpndoctor.capture.udp import Kind, classify
from vpndoctor.ike.constants import ExchangeType, NotifyType, PayloadType, name_of
from vpndoctor.ike.errors import MalformedMessage
from vpndoctor.ike.message import Header, decode_message
from vpndoctor.ike.payloads import EncryptedFragmentPayload

if TYPE_CHECKING:
    # --keys only: the decryptor brings in cryptography's X.509, ~0.2 s of start-up for every other run
    from vpndoctor.capture.decrypt import Decryptor
    from vpndoctor.capture.worker import SplitResult

__all__ = [
    "MAX_CONVERSATIONS",
    "MAX_ESP_FLOWS",
    "MAX_MESSAGES",
    "Collected",
    "collect",
    "conversation_report",
]

MAX_CONVERSATIONS = 10_000
MAX_MESSAGES = 1000  # per conversation
MAX_ESP_FLOWS = 10_000
MAX_WARNINGS = 100
MAX_PENDING_FIRST_FRAGMENTS = 1024  # as many as the reassembler keeps in flight


@dataclass(slots=True)
class Collected:
    """What one capture showed: the input of the checks (conversations, ESP flows) and the rest of the
    report."""

    packets: int
    ike_messages: int
    conversations: list[IkeConversation]  # each one's messages in capture time
    esp: dict[tuple[str, str, int], int]  # ESP packets per (source, destination, SPI)
    tcp_flows: list[TcpFlow]
    tcp_flows_beyond_cap: int
    packets_by_kind: dict[str, int]  # the kinds seen
    first_ts: float | None  # the capture's first frame
    warnings: list[str]


@dataclass(slots=True)
class _State:
    packets: int = 0
    ike_messages: int = 0
    ikev1_messages: int = 0
    conversations: dict[tuple[bytes, bytes, bytes], IkeConversation] = field(default_factory=dict)
    # per conversation, digests of its messages so far: a message seen again is a retransmission
    seen: dict[tuple[bytes, bytes, bytes], set[bytes]] = field(default_factory=dict)
    conversations_beyond_cap: int = 0
    esp_beyond_cap: int = 0
    # ESP packets per (source, destination, SPI) as tcp.flow_key builds keys (the fast path counts into it)
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


def collect(stream: BinaryIO, decryptor: Decryptor | None = None) -> Collected:
    """Read one pcap/pcapng stream; `decryptor` (with --keys) decrypts the SK/SKF payloads of the IKE SAs it
    knows.

    Raises CaptureError when the capture cannot be read."""
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
    convs = list(st.conversations.values())
    for conv in convs:  # messages held back for reassembly arrive late: judge and show them in capture time
        conv.messages.sort(key=lambda m: m.t)
    return Collected(
        packets=st.packets,
        ike_messages=st.ike_messages,
        conversations=convs,
        esp={_esp_flow(k): n for k, n in st.esp_raw.items()},
        tcp_flows=[_tcp_flow(f) for f in st.tcp.flows],
        tcp_flows_beyond_cap=st.tcp.beyond_cap,
        packets_by_kind={k: n for k, n in st.kinds.items() if n},
        first_ts=st.first_ts,
        warnings=_warnings(st, convs, reader.warnings),
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
        conv = st.conversations[key] = IkeConversation(init_ep, resp_ep, header.spi_i, header.spi_r)
        st.seen[key] = set()
    if conv.spi_r == bytes(8) and header.spi_r != bytes(8):
        conv.spi_r = header.spi_r
    if len(conv.messages) >= MAX_MESSAGES:
        conv.beyond_cap += 1
        return
    digest = hashlib.blake2b(
        bytes([header.exchange, header.flags & 0x28]) + header.message_id.to_bytes(4, "big") + data,
        digest_size=16,
    ).digest()
    seen = st.seen[key]
    retransmission = digest in seen
    seen.add(digest)
    decrypted = None
    if st.decryptor is not None and not lost and ("SK" in payloads or "SKF" in payloads):
        decrypted = st.decryptor.decrypt(header, data, pkt.ts)
    conv.messages.append(
        IkeMessage(
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


def _warnings(st: _State, convs: list[IkeConversation], reader_warnings: list[str]) -> list[str]:
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
    return warnings


# --- the report's view of a conversation ------------------------------------------------------------------


def _response_times_ms(conv: IkeConversation) -> list[float | None]:
    """Per message: for a response, milliseconds since the latest send of its request before it."""
    last_sent: dict[RequestKey, float] = {}
    out: list[float | None] = []
    for m in conv.messages:
        if not m.response:
            last_sent[m.request_key] = m.t
            out.append(None)
            continue
        sent = last_sent.get(m.request_key)
        out.append(round((m.t - sent) * 1000, 3) if sent is not None and m.t >= sent else None)
    return out


def conversation_report(conv: IkeConversation, first_ts: float | None) -> Conversation:
    """The JSON form of one conversation: types by name, times since the capture's first frame
    (`first_ts`), and each response's time since its request."""
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
