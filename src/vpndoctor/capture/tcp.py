"""TCP 443 flow summaries for capture analysis: packets and payload bytes each way, and what the first bytes
of each direction say (ClientHello SNI and offered versions, ServerHello version and suite, an alert, or the
SSTP / IP-HTTPS HTTP request line when it travels in clear).

Counts only: no TCP reassembly beyond the first `INSPECT_BYTES` of each direction (in-order bytes, a few
out-of-order segments held), and no buffering at all once a direction's first message is read. Bounded: at
most `MAX_FLOWS` flows (packets of further flows are counted, not tracked) and `MAX_BUFFERED_BYTES` held
across all flows. Hand-written because it is a few byte comparisons per segment on the capture fast path;
the TLS messages themselves are decoded by `vpndoctor.tls.hello`.
"""

from __future__ import annotations

import socket
import struct

from vpndoctor.tls.errors import TlsDecodeError
from vpndoctor.tls.hello import (
    ALERT_DESCRIPTIONS,
    HELLO_RETRY_REQUEST_RANDOM,
    ExtensionType,
    HandshakeType,
    parse_client_hello,
    parse_server_hello,
)
from vpndoctor.tls.suites import name_of as suite_name

__all__ = [
    "INSPECT_BYTES",
    "LOOK_BYTES",
    "MAX_FLOWS",
    "TLS_PORT",
    "Direction",
    "TcpFlowState",
    "TcpTracker",
    "flow_key",
]

TLS_PORT = 443
MAX_FLOWS = 10_000
INSPECT_BYTES = 16 * 1024 + 64  # a whole maximal TLS record and its header
# A direction stops being read once this much payload went by, whatever happened to it (retransmissions and
# out-of-order segments included): the capture fast path relies on that bound.
LOOK_BYTES = INSPECT_BYTES
MAX_BUFFERED_BYTES = 8 * 1024 * 1024  # across all flows
MAX_HELD_SEGMENTS = 8  # out-of-order segments kept per direction
MAX_LINE_BYTES = 1024

FIN, SYN, RST, ACK = 0x01, 0x02, 0x04, 0x10

_CT_CCS, _CT_ALERT, _CT_HANDSHAKE = 20, 21, 22
_U16 = struct.Struct("!H")
_SEQ = struct.Struct("!I")

# Key of one direction: little-endian ints of (source address, destination address, the 4 port bytes), plus a
# 6 for IPv6. The capture fast path builds the same key from one struct read, so both paths share the table.
FlowKey = tuple[int, ...]


def flow_key(version: int, src: bytes, dst: bytes, ports: bytes) -> FlowKey:
    key = (int.from_bytes(src, "little"), int.from_bytes(dst, "little"), int.from_bytes(ports, "little"))
    return key if version == 4 else (*key, 6)


def version_name(value: int) -> str:
    names = {0x0300: "SSL 3.0", 0x0301: "TLS 1.0", 0x0302: "TLS 1.1", 0x0303: "TLS 1.2", 0x0304: "TLS 1.3"}
    return names.get(value, f"0x{value:04X}")


def _is_grease(value: int) -> bool:
    return value & 0x0F0F == 0x0A0A and value >> 8 == value & 0xFF


class Direction:
    """One direction of a flow. `done` means its first message was read (or cannot be): from then on only
    counting happens, which the fast path does itself for segments without SYN/FIN/RST."""

    __slots__ = (
        "buf", "bytes", "done", "fins", "flow", "held", "next_seq", "packets", "resets", "seen", "to_server",
    )  # fmt: skip

    def __init__(self, flow: TcpFlowState, to_server: bool) -> None:
        self.flow = flow
        self.to_server = to_server
        self.packets = 0
        self.bytes = 0
        self.resets = 0
        self.fins = 0
        self.done = False
        self.seen = 0  # payload bytes captured while not done
        self.next_seq: int | None = None
        self.buf = bytearray()
        self.held: dict[int, bytes] = {}


class TcpFlowState:
    __slots__ = (
        "alert",
        "c2s",
        "cipher_suite",
        "client",
        "hello_retry",
        "http_request",
        "http_response",
        "incomplete",
        "offered_versions",
        "protocol",
        "s2c",
        "server",
        "sni",
        "syn_seen",
        "t",
        "version",
    )

    def __init__(self, t: float, client: str, server: str) -> None:
        self.t = t
        self.client = client
        self.server = server
        self.c2s = Direction(self, True)
        self.s2c = Direction(self, False)
        self.syn_seen = False
        self.protocol: str | None = None  # what the client sent first: "tls", "http", "other"
        self.sni: str | None = None
        self.offered_versions: list[str] = []
        self.version: str | None = None
        self.cipher_suite: str | None = None
        self.hello_retry = False
        self.alert: str | None = None
        self.http_request: str | None = None
        self.http_response: str | None = None
        self.incomplete: list[str] = []


def _endpoint(addr: bytes, port: int) -> str:
    text = socket.inet_ntop(socket.AF_INET if len(addr) == 4 else socket.AF_INET6, addr)
    return f"[{text}]:{port}" if len(addr) == 16 else f"{text}:{port}"


class TcpTracker:
    """Feed every TCP segment to or from port 443 with `segment`; read `flows` at the end."""

    def __init__(self, *, max_flows: int = MAX_FLOWS, inspect_bytes: int = INSPECT_BYTES) -> None:
        self.dirs: dict[FlowKey, Direction] = {}
        self.flows: list[TcpFlowState] = []
        self.beyond_cap = 0  # packets of flows not tracked
        self.buffered = 0
        self._max_flows = max_flows
        self._inspect = inspect_bytes

    def segment(
        self, ts: float, version: int, src: bytes, dst: bytes, seg: bytes, declared_length: int
    ) -> None:
        """One TCP segment: `seg` is what was captured of it (header first), `declared_length` what the IP
        header says it holds."""
        if len(seg) < 14:
            return
        doff = (seg[12] >> 4) * 4
        if doff < 20:
            return
        flags = seg[13]
        key = flow_key(version, src, dst, seg[:4])
        d = self.dirs.get(key)
        if d is None:
            d = self._new_flow(ts, version, src, dst, seg, flags, key)
            if d is None:
                return
        d.packets += 1
        payload_len = declared_length - doff
        if payload_len > 0:
            d.bytes += payload_len
        if flags & RST:
            d.resets += 1
        if flags & FIN:
            d.fins += 1
        if d.done:
            return
        seq = _SEQ.unpack_from(seg, 4)[0]
        if flags & SYN:
            if d.to_server and not flags & ACK:
                d.flow.syn_seen = True
            if d.next_seq is None:
                d.next_seq = (seq + 1) & 0xFFFFFFFF
            seq = (seq + 1) & 0xFFFFFFFF
        if payload_len <= 0:
            return
        data = seg[doff : doff + payload_len]
        d.seen += len(data)
        self._feed(d, seq, data)
        if d.seen >= LOOK_BYTES and not d.done:
            self._settle(d, final=True)
            if not d.done:
                self._finish(d, f"first message not found in the first {LOOK_BYTES} bytes")
        if len(data) < payload_len and not d.done:
            # The rest of this segment was not captured (snaplen): the stream has a hole from here on.
            self._finish(d, "payload cut by the capture's snaplen")

    def _new_flow(
        self, ts: float, version: int, src: bytes, dst: bytes, seg: bytes, flags: int, key: FlowKey
    ) -> Direction | None:
        if len(self.flows) >= self._max_flows:
            self.beyond_cap += 1
            return None
        sport, dport = _U16.unpack_from(seg, 0)[0], _U16.unpack_from(seg, 2)[0]
        if flags & SYN:
            sender_is_client = not flags & ACK
        else:
            sender_is_client = dport == TLS_PORT and sport != TLS_PORT or dport == TLS_PORT == sport
        rkey = flow_key(version, dst, src, seg[2:4] + seg[0:2])
        if sender_is_client:
            flow = TcpFlowState(ts, _endpoint(src, sport), _endpoint(dst, dport))
            self.dirs[key], self.dirs[rkey] = flow.c2s, flow.s2c
        else:
            flow = TcpFlowState(ts, _endpoint(dst, dport), _endpoint(src, sport))
            self.dirs[key], self.dirs[rkey] = flow.s2c, flow.c2s
        if not flags & SYN:
            flow.incomplete.append("flow start (SYN) not captured")
        self.flows.append(flow)
        return self.dirs[key]

    # -- the first bytes of a direction -------------------------------------------------------------------

    def _feed(self, d: Direction, seq: int, data: bytes) -> None:
        if d.next_seq is None:
            d.next_seq = seq
        delta = (seq - d.next_seq + 0x80000000) % 0x100000000 - 0x80000000
        if delta > 0:
            if len(d.held) < MAX_HELD_SEGMENTS and delta < self._inspect and seq not in d.held:
                d.held[seq] = data[: self._inspect]
                self.buffered += len(d.held[seq])
            return
        self._append(d, data[-delta:])
        while d.held and not d.done:
            for hseq in list(d.held):
                hdelta = (hseq - d.next_seq + 0x80000000) % 0x100000000 - 0x80000000
                if hdelta <= 0:
                    chunk = d.held.pop(hseq)
                    self.buffered -= len(chunk)
                    self._append(d, chunk[-hdelta:])
                    break
            else:
                break
        self._settle(d, final=False)

    def _append(self, d: Direction, data: bytes) -> None:
        if not data or d.done:
            return
        assert d.next_seq is not None
        d.next_seq = (d.next_seq + len(data)) & 0xFFFFFFFF
        room = self._inspect - len(d.buf)
        if self.buffered + min(room, len(data)) > MAX_BUFFERED_BYTES:
            self._finish(d, "too many flows opening at once: not inspected")
            return
        take = data[:room]
        d.buf += take
        self.buffered += len(take)

    def _settle(self, d: Direction, *, final: bool) -> None:
        """Read the first message if it is all there; give up when it never can be."""
        if d.done or not d.buf:
            return
        full = final or len(d.buf) >= self._inspect
        verdict = (
            _read_client(d.flow, bytes(d.buf), full)
            if d.to_server
            else _read_server(d.flow, bytes(d.buf), full)
        )
        if verdict is not None:
            self._finish(d, verdict or None)
        elif full:
            self._finish(d, "first message longer than the bytes inspected")

    def _finish(self, d: Direction, note: str | None) -> None:
        d.done = True
        self.buffered -= len(d.buf) + sum(len(v) for v in d.held.values())
        d.buf = bytearray()
        d.held = {}
        if note:
            d.flow.incomplete.append(("client: " if d.to_server else "server: ") + note)

    def finish(self) -> None:
        """End of capture: read what was gathered of directions still waiting for more bytes."""
        for flow in self.flows:
            for d in (flow.c2s, flow.s2c):
                if not d.done and d.buf:
                    self._settle(d, final=True)
                    if not d.done:
                        self._finish(d, "first message not complete in the capture")


# Each reader returns None while more bytes could complete the message, "" when done, or a note saying why
# the message could not be read.


def _handshake_bytes(data: bytes) -> tuple[bytes, list[tuple[int, bytes]], bool]:
    """The handshake-layer bytes of the plaintext records at the start of a TLS stream (change cipher spec
    records skipped), the other records seen before the first application-level one, and whether the stream
    was cut inside a record."""
    pos = 0
    hs = bytearray()
    others: list[tuple[int, bytes]] = []
    while pos + 5 <= len(data):
        ctype = data[pos]
        length = _U16.unpack_from(data, pos + 3)[0]
        fragment = data[pos + 5 : pos + 5 + length]
        if ctype == _CT_HANDSHAKE:
            hs += fragment
        elif ctype == _CT_CCS:
            pass
        else:
            others.append((ctype, fragment))
            return bytes(hs), others, False
        if len(fragment) < length:
            return bytes(hs), others, True
        pos += 5 + length
    return bytes(hs), others, pos < len(data)


def _messages(hs: bytes) -> list[tuple[int, bytes]]:
    out = []
    pos = 0
    while pos + 4 <= len(hs):
        length = int.from_bytes(hs[pos + 1 : pos + 4], "big")
        if pos + 4 + length > len(hs):
            break
        out.append((hs[pos], hs[pos + 4 : pos + 4 + length]))
        pos += 4 + length
    return out


def _looks_tls(data: bytes) -> bool:
    return len(data) >= 3 and data[0] in (_CT_HANDSHAKE, _CT_ALERT) and data[1] == 3


def _line(data: bytes, full: bool) -> str | None:
    end = data.find(b"\r\n", 0, MAX_LINE_BYTES)
    if end < 0:
        end = data.find(b"\n", 0, MAX_LINE_BYTES)
    if end < 0:
        if len(data) < MAX_LINE_BYTES and not full:
            return None
        end = min(len(data), MAX_LINE_BYTES)
    return data[:end].decode("latin-1")


def _read_client(flow: TcpFlowState, data: bytes, full: bool) -> str | None:
    if _looks_tls(data):
        flow.protocol = "tls"
        hs, others, _cut = _handshake_bytes(data)
        msgs = _messages(hs)
        if not msgs and others:
            return "no ClientHello before other records"
        if not msgs:
            return None if not full else "ClientHello not complete"
        msg_type, body = msgs[0]
        if msg_type != HandshakeType.CLIENT_HELLO:
            return f"first handshake message is type {msg_type}, not a ClientHello"
        try:
            hello = parse_client_hello(body)
        except TlsDecodeError as exc:
            return f"malformed ClientHello: {exc}"
        sni = hello.extension(ExtensionType.SERVER_NAME)
        if sni is not None:
            flow.sni = _server_name(sni.data)
        versions = hello.extension(ExtensionType.SUPPORTED_VERSIONS)
        offered: list[int] = []
        if versions is not None and versions.data:
            raw = versions.data[1 : 1 + versions.data[0]]
            offered = [_U16.unpack_from(raw, i)[0] for i in range(0, len(raw) - 1, 2)]
        offered = [v for v in offered if not _is_grease(v)] or [hello.legacy_version]
        flow.offered_versions = [version_name(v) for v in offered]
        return ""
    if data[:1].isalpha() and data[:1].isupper():
        line = _line(data, full)
        if line is None:
            return None
        flow.protocol = "http"
        flow.http_request = line
        return ""
    flow.protocol = "other"
    return ""


def _read_server(flow: TcpFlowState, data: bytes, full: bool) -> str | None:
    if _looks_tls(data):
        hs, others, _cut = _handshake_bytes(data)
        for msg_type, body in _messages(hs):
            if msg_type != HandshakeType.SERVER_HELLO:
                return f"first handshake message is type {msg_type}, not a ServerHello"
            try:
                hello = parse_server_hello(body)
            except TlsDecodeError as exc:
                return f"malformed ServerHello: {exc}"
            if hello.random == HELLO_RETRY_REQUEST_RANDOM:
                flow.hello_retry = True  # the real ServerHello follows in clear
                continue
            flow.version = version_name(hello.version)
            flow.cipher_suite = suite_name(hello.cipher_suite)
            return ""
        if others and others[0][0] == _CT_ALERT and len(others[0][1]) >= 2:
            level, desc = others[0][1][0], others[0][1][1]
            name = ALERT_DESCRIPTIONS.get(desc, f"unknown({desc})")
            flow.alert = f"{'fatal' if level == 2 else 'warning'} {name}"
            return ""
        if others:
            return "no ServerHello before encrypted records"
        return None if not full else "ServerHello not complete"
    if data.startswith(b"HTTP/"):
        line = _line(data, full)
        if line is None:
            return None
        flow.http_response = line
        return ""
    return ""


def _server_name(data: bytes) -> str | None:
    pos = 2
    while pos + 3 <= len(data):
        name_type = data[pos]
        length = _U16.unpack_from(data, pos + 1)[0]
        name = data[pos + 3 : pos + 3 + length]
        if name_type == 0:
            return name.decode("ascii", "replace")
        pos += 3 + length
    return None
