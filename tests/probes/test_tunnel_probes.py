"""The tunnel probes against an in-memory gateway on a fake clock (two peers, as aioquic tests loss): the
gateway holds the other end of the ESP SAs, decrypts what we send and answers as a network would - echo
replies up to an inner MTU, ICMP fragmentation needed or silence beyond it, SYN-ACK/RST, DNS answers made
with dnspython. No sockets, no sleeping."""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Callable

import dns.message
import dns.rrset
import pytest

from vpndoctor.esp import packets as pk
from vpndoctor.esp.keymat import split_keymat
from vpndoctor.esp.sa import EspTransform, InboundSa, OutboundSa
from vpndoctor.ike.constants import EncrId
from vpndoctor.probes import tunnel as tn

T = EspTransform(EncrId.AES_GCM_16, 128)
INNER = "203.0.113.130"
HOST = "192.0.2.100"


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


class Gateway:
    """The far end: our outbound SA's peer, an inside network with `mtu`, and a reply policy."""

    def __init__(
        self, clock: Clock, *, mtu: int = 1500, icmp: bool = True, outer_mtu: int | None = None
    ) -> None:
        keys = split_keymat(T, bytes(range(40)))
        self.clock = clock
        self.ours = (
            OutboundSa(b"\x00\x00\x00\x02", T, keys.out, lambda n: bytes(n)),
            InboundSa(b"\x00\x00\x00\x01", T, keys.into),
        )
        self.into = InboundSa(b"\x00\x00\x00\x02", T, keys.out)
        self.out = OutboundSa(b"\x00\x00\x00\x01", T, keys.into, lambda n: bytes(n))
        self.mtu = mtu
        self.icmp = icmp
        self.outer_mtu = outer_mtu
        self.queue: deque[bytes] = deque()
        self.sent = 0
        self.rtt = 0.010

    def handle(self, datagram: bytes) -> bool:
        if self.outer_mtu is not None and len(datagram) + 28 > self.outer_mtu:
            return False  # our own stack refuses it (EMSGSIZE)
        self.sent += 1
        inner = pk.decode_ipv4(self.into.unprotect(datagram).payload)
        if inner.total_bytes > self.mtu:
            if inner.df and self.icmp:
                err = pk.Icmp(pk.ICMP_UNREACHABLE, pk.ICMP_FRAG_NEEDED, self.mtu, inner.encode()[:28])
                self.reply(pk.Ipv4("192.0.2.65", INNER, pk.PROTO_ICMP, err.encode()))
            return True
        if inner.proto == pk.PROTO_ICMP:
            icmp = pk.decode_icmp(inner.payload)
            answer = pk.Icmp(pk.ICMP_ECHO_REPLY, 0, icmp.rest, icmp.data)
            self.reply(pk.Ipv4(HOST, INNER, pk.PROTO_ICMP, answer.encode()))
        elif inner.proto == pk.PROTO_UDP:
            udp = pk.decode_udp(inner)
            query = dns.message.from_wire(udp.data)
            response = dns.message.make_response(query)
            response.answer.append(dns.rrset.from_text(query.question[0].name, 60, "IN", "A", HOST))
            data = pk.Udp(53, udp.sport, response.to_wire()).encode(HOST, INNER)
            self.reply(pk.Ipv4(HOST, INNER, pk.PROTO_UDP, data))
        elif inner.proto == pk.PROTO_TCP:
            seg = pk.decode_tcp(inner)
            if seg.flags & pk.TCP_SYN:
                flags = pk.TCP_SYN | pk.TCP_ACK if seg.dport == 53 else pk.TCP_RST | pk.TCP_ACK
                mss = 1460 if seg.dport == 53 else None
                ans = pk.Tcp(seg.dport, seg.sport, 7000, seg.seq + 1, flags, mss=mss).encode(HOST, INNER)
                self.reply(pk.Ipv4(HOST, INNER, pk.PROTO_TCP, ans))
        return True

    def reply(self, packet: pk.Ipv4) -> None:
        self.queue.append(self.out.protect(packet.encode()))


class FakeChannel:
    def __init__(self, gw: Gateway) -> None:
        self.gw = gw
        self.sent = 0

    def send(self, datagram: bytes) -> bool:
        ok = self.gw.handle(datagram)
        self.sent += ok
        return ok

    async def receive(self, timeout_s: float, *, ike_wakes: bool = False) -> bytes | None:
        if self.gw.queue:
            self.gw.clock.now += self.gw.rtt
            return self.gw.queue.popleft()
        self.gw.clock.now += timeout_s
        return None


def tunnel(gw: Gateway) -> tn.Tunnel:
    out, into = gw.ours
    return tn.Tunnel(FakeChannel(gw), out, into, INNER, clock=gw.clock, rng=lambda n: b"\x07" * n)  # type: ignore[arg-type]


def run(coro_factory: Callable[[], object]) -> object:
    return asyncio.run(coro_factory())  # type: ignore[arg-type]


def test_ping_resolve_tcp_round_trips() -> None:
    gw = Gateway(Clock())
    tun = tunnel(gw)
    ping = asyncio.run(tn.ping(tun, HOST, count=3, timeout_s=1.0))
    assert (ping.outcome, ping.received, ping.rtt_ms) == ("reply", 3, [10.0, 10.0, 10.0])
    answer = asyncio.run(tn.resolve(tun, "intranet.lab.test", HOST, timeout_s=1.0))
    assert (answer.outcome, answer.addresses, answer.attempts) == ("answer", [HOST], 1)
    opened = asyncio.run(tn.tcp_handshake(tun, HOST, 53, timeout_s=1.0, mss=1360))
    refused = asyncio.run(tn.tcp_handshake(tun, HOST, 81, timeout_s=1.0, mss=1360))
    assert (opened.outcome, opened.mss_bytes, refused.outcome) == ("open", 1460, "refused")
    assert tun.errors == []


def test_silence_is_a_timeout_after_the_tries() -> None:
    gw = Gateway(Clock(), mtu=0, icmp=False)  # everything vanishes
    tun = tunnel(gw)
    ping = asyncio.run(tn.ping(tun, HOST, count=3, timeout_s=1.0))
    assert (ping.outcome, ping.sent, ping.received) == ("timeout", 3, 0)
    answer = asyncio.run(tn.resolve(tun, "x.lab.test", HOST, timeout_s=1.0))
    assert (answer.outcome, answer.attempts) == ("timeout", tn.DNS_TRIES)


@pytest.mark.parametrize("mtu", [1280, 1281, 1300, 1399, 1400, 1437, 1499, 1500])
@pytest.mark.parametrize("icmp", [True, False])
def test_mtu_search_finds_the_exact_size_within_12_probes(mtu: int, icmp: bool) -> None:
    gw = Gateway(Clock(), mtu=mtu, icmp=icmp)
    result = asyncio.run(tn.mtu_search(tunnel(gw), HOST, low=1280, high=1500, timeout_s=0.5))
    assert result.tunnel_mtu_bytes == mtu and result.tcp_mss_bytes == mtu - 40
    assert result.probes_sent <= 12, [p.size_bytes for p in result.probes]
    if icmp and mtu < 1500:
        assert result.frag_needed_seen and result.probes_sent == 2  # top, then the size the router named


def test_mtu_search_when_our_own_interface_is_the_limit() -> None:
    gw = Gateway(Clock(), outer_mtu=1500)
    result = asyncio.run(tn.mtu_search(tunnel(gw), HOST, low=1280, high=1500, timeout_s=0.5))
    size = result.tunnel_mtu_bytes
    assert (
        size is not None
        and size + T.overhead_bytes(size) + 28 <= 1500 < size + 1 + T.overhead_bytes(size + 1) + 28
    )
    assert any(p.result == "too-big-here" for p in result.probes)
    assert gw.clock.now < 1.0  # a refusal of our own stack costs no waiting


def test_mtu_search_below_the_range() -> None:
    gw = Gateway(Clock(), mtu=1000, icmp=False)
    result = asyncio.run(tn.mtu_search(tunnel(gw), HOST, low=1280, high=1500, timeout_s=0.5))
    assert result.tunnel_mtu_bytes is None and result.probes_sent == 2


def test_foreign_and_forged_esp_is_recorded_not_trusted() -> None:
    gw = Gateway(Clock())
    tun = tunnel(gw)
    gw.queue.append(b"\x00\x00\x00\x09" + bytes(60))  # another SPI
    forged = bytearray(gw.out.protect(pk.Ipv4(HOST, INNER, 1, bytes(8)).encode()))
    forged[-1] ^= 1
    gw.queue.append(bytes(forged))
    ping = asyncio.run(tn.ping(tun, HOST, count=1, timeout_s=1.0))
    assert ping.outcome == "reply"
    assert len(tun.errors) == 2 and "not ours" in tun.errors[0] and "verif" in tun.errors[1]


def test_hostile_gateway_inner_packets_are_dropped_cleanly() -> None:
    """Authentic ESP (right keys) carrying anything: the probes record it and go on, never raise."""
    from hypothesis import given, settings
    from hypothesis import strategies as st

    @settings(max_examples=200, deadline=None)
    @given(st.binary(max_size=120), st.integers(0, 255))
    def one(inner: bytes, next_header: int) -> None:
        gw = Gateway(Clock(), mtu=0, icmp=False)
        tun = tunnel(gw)
        gw.queue.append(gw.out.protect(inner, next_header))
        gw.queue.append(gw.out.protect(pk.Ipv4(HOST, INNER, pk.PROTO_ICMP, inner).encode()))
        gw.queue.append(gw.out.protect(pk.Ipv4(HOST, INNER, pk.PROTO_UDP, inner).encode()))
        gw.queue.append(gw.out.protect(pk.Ipv4(HOST, INNER, pk.PROTO_TCP, inner).encode()))
        result = asyncio.run(tn.ping(tun, HOST, count=1, timeout_s=0.5))
        assert result.outcome in ("timeout", "reply", "unreachable")
        asyncio.run(tn.resolve(tun, "a.lab.test", HOST, timeout_s=0.5))
        asyncio.run(tn.tcp_handshake(tun, HOST, 53, timeout_s=0.5, mss=1360))
        assert len(tun.errors) <= tn.MAX_ESP_ERRORS

    one()


def test_mtu_search_jumps_to_a_next_hop_mtu_named_mid_search() -> None:
    """Our own interface refuses the top (too big with outer DF), so the frag-needed comes mid-search: the
    size it names is the next probe, and the last."""
    gw = Gateway(Clock(), mtu=1300, outer_mtu=1500)
    result = asyncio.run(tn.mtu_search(tunnel(gw), HOST, low=1280, high=1500, timeout_s=0.5))
    assert result.tunnel_mtu_bytes == 1300
    assert [p.result for p in result.probes] == ["too-big-here", "crossed", "frag-needed", "crossed"]
