"""The TCP 443 tracker on hand-made segments: hellos split across segments, out of order, retransmitted,
cut by snaplen, a HelloRetryRequest, an alert, a flow seen from its middle, and the caps."""

from __future__ import annotations

import struct

from vpndoctor.capture.tcp import LOOK_BYTES, TcpTracker
from vpndoctor.tls.hello import HELLO_RETRY_REQUEST_RANDOM, Version, build_client_hello

C, S = bytes([192, 0, 2, 1]), bytes([198, 51, 100, 2])
HELLO = build_client_hello(
    Version.TLS1_3, [0x1301, 0x1302], "vpn.example.test", bytes(32), x25519_public_key=bytes(32),
    extensions=[(43, bytes([6, 0x7A, 0x7A, 3, 4, 3, 3]))],  # GREASE, TLS 1.3, TLS 1.2
)  # fmt: skip


def server_hello(random: bytes = bytes(32), suite: int = 0x1302, tls13: bool = True) -> bytes:
    exts = b"\x00\x2b\x00\x02\x03\x04" if tls13 else b""
    body = b"\x03\x03" + random + b"\x00" + struct.pack("!HB", suite, 0) + struct.pack("!H", len(exts)) + exts
    msg = b"\x02" + len(body).to_bytes(3, "big") + body
    return b"\x16\x03\x03" + struct.pack("!H", len(msg)) + msg


def seg(sport: int, dport: int, seq: int, flags: int, data: bytes = b"") -> bytes:
    return struct.pack("!HHIIBBHHH", sport, dport, seq, 0, 0x50, flags, 1000, 0, 0) + data


class Conn:
    def __init__(self, t: TcpTracker, port: int = 50000) -> None:
        self.t, self.port = t, port
        self.cseq, self.sseq = 100, 9000

    def syn(self) -> None:
        self.t.segment(0.0, 4, C, S, seg(self.port, 443, self.cseq - 1, 0x02), 20)
        self.t.segment(0.0, 4, S, C, seg(443, self.port, self.sseq - 1, 0x12), 20)

    def send(
        self, data: bytes, *, to_server: bool = True, seq: int | None = None, cut: int | None = None
    ) -> None:
        if to_server:
            s = self.cseq if seq is None else seq
            pkt = seg(self.port, 443, s, 0x18, data)
            self.cseq = max(self.cseq, s + len(data))
            src, dst = C, S
        else:
            s = self.sseq if seq is None else seq
            pkt = seg(443, self.port, s, 0x18, data)
            self.sseq = max(self.sseq, s + len(data))
            src, dst = S, C
        self.t.segment(1.0, 4, src, dst, pkt[:cut] if cut else pkt, len(pkt))


def test_hellos_in_pieces_out_of_order_and_retransmitted() -> None:
    t = TcpTracker()
    c = Conn(t)
    c.syn()
    a, d = HELLO[:50], HELLO[120:]
    c.send(d, seq=100 + 120)  # arrives first
    c.send(a, seq=100)
    c.send(a, seq=100)  # retransmission
    c.send(HELLO[40:120], seq=100 + 40)  # overlaps what came before
    sh = server_hello()
    c.send(sh[:10], to_server=False)
    c.send(sh[10:], to_server=False)
    c.send(bytes([23, 3, 3, 0, 5]) + bytes(5), to_server=False)
    (flow,) = t.flows
    assert (flow.sni, flow.offered_versions, flow.version, flow.cipher_suite) == (
        "vpn.example.test", ["TLS 1.3", "TLS 1.2"], "TLS 1.3", "TLS_AES_256_GCM_SHA384",
    )  # fmt: skip
    assert flow.c2s.done and flow.s2c.done and not flow.incomplete
    assert flow.c2s.packets == 1 + 4 and flow.c2s.bytes == len(d) + 2 * len(a) + 80
    assert t.buffered == 0


def test_hello_retry_request_then_server_hello() -> None:
    t = TcpTracker()
    c = Conn(t)
    c.syn()
    c.send(HELLO)
    c.send(server_hello(HELLO_RETRY_REQUEST_RANDOM) + bytes([20, 3, 3, 0, 1, 1]), to_server=False)
    assert not t.flows[0].s2c.done  # the real ServerHello is still to come, in clear
    c.send(server_hello(suite=0x1301), to_server=False)
    flow = t.flows[0]
    assert flow.hello_retry and flow.cipher_suite == "TLS_AES_128_GCM_SHA256" and flow.version == "TLS 1.3"


def test_alert_instead_of_server_hello() -> None:
    t = TcpTracker()
    c = Conn(t)
    c.syn()
    c.send(HELLO)
    c.send(bytes([21, 3, 3, 0, 2, 2, 40]), to_server=False)
    assert t.flows[0].alert == "fatal handshake_failure" and t.flows[0].version is None


def test_snaplen_cut_hello_is_noted_and_counted_in_full() -> None:
    t = TcpTracker()
    c = Conn(t)
    c.syn()
    c.send(HELLO, cut=96)
    flow = t.flows[0]
    assert flow.c2s.done and flow.sni is None and flow.c2s.bytes == len(HELLO)
    assert any("snaplen" in n for n in flow.incomplete)


def test_flow_seen_from_its_middle() -> None:
    t = TcpTracker()
    t.segment(5.0, 4, S, C, seg(443, 50001, 77, 0x10, bytes([23, 3, 3, 0, 1, 0])), 26)
    (flow,) = t.flows
    assert flow.client == "192.0.2.1:50001" and flow.server == "198.51.100.2:443"
    assert not flow.syn_seen and "flow start (SYN) not captured" in flow.incomplete
    assert flow.s2c.packets == 1 and flow.s2c.done  # an application-data record: nothing to wait for


def test_cleartext_request_line_across_segments() -> None:
    t = TcpTracker()
    c = Conn(t)
    c.syn()
    line = b"SSTP_DUPLEX_POST /sra_{BA195980-CD49-458b-9E23-C84EE0ADCD75}/ HTTP/1.1\r\nHost: x\r\n\r\n"
    c.send(line[:20])
    assert t.flows[0].http_request is None
    c.send(line[20:])
    assert t.flows[0].http_request == line.split(b"\r\n")[0].decode()


def test_direction_stops_after_look_bytes_without_a_message() -> None:
    t = TcpTracker()
    c = Conn(t)
    c.syn()
    record = b"\x16\x03\x03\xff\xff\x01\xff\xff\xff"  # a 64 KiB record, a 16 MiB ClientHello: never complete
    c.send(record + bytes(1400))
    for _ in range(LOOK_BYTES // 1400 + 1):
        c.send(bytes(1400))
    flow = t.flows[0]
    assert flow.c2s.done and any("not complete" in n or "inspected" in n for n in flow.incomplete)
    assert t.buffered == 0


def test_flow_cap_counts_the_rest() -> None:
    t = TcpTracker(max_flows=3)
    for port in range(50000, 50005):
        Conn(t, port).syn()
    assert len(t.flows) == 3 and t.beyond_cap == 4  # SYN and SYN/ACK of the two flows beyond the cap
    assert len(t.dirs) == 6


def test_garbage_segments_never_raise() -> None:
    t = TcpTracker()
    c = Conn(t)
    c.syn()
    for data in (b"", b"\x16", b"\x16\x03\x03\x00\x04\x01\x00\x00\xff"):  # headers cut short by snaplen
        t.segment(0.0, 4, C, S, seg(50000, 443, 100, 0x18, data)[: 14 + len(data)], 20 + len(data))
    assert t.flows[0].c2s.done and "client: payload cut by the capture's snaplen" in t.flows[0].incomplete
    t.segment(0.0, 4, C, S, b"\x00" * 13, 13)  # not even a TCP header: ignored
    t.segment(0.0, 4, C, S, seg(50000, 443, 1, 0x18)[:12] + b"\x10\x18", 14)  # data offset 4 bytes: ignored
    assert t.flows[0].c2s.packets == 4


def test_malformed_client_hello_is_noted() -> None:
    t = TcpTracker()
    c = Conn(t)
    c.syn()
    c.send(b"\x16\x03\x03\x00\x05\x01\x00\x00\x01\x00")  # a ClientHello of one byte
    assert t.flows[0].protocol == "tls" and t.flows[0].c2s.done
    assert any("malformed ClientHello" in n for n in t.flows[0].incomplete)
