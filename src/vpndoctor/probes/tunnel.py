"""Through the tunnel: once `connect` holds a CHILD_SA, pass real traffic in userspace ESP (esp/) over the IKE
SA's own UDP 4500 flow (net/esp.py) from the address the gateway assigned - ICMP echo (`--ping`), a DNS
query to the assigned DNS server (`--resolve`, dnspython builds and parses it), a TCP handshake (`--tcp`:
SYN, SYN-ACK, our RST), the largest inner packet that crosses (`--mtu`: DF set, a binary search that jumps
to the next-hop MTU an ICMP "fragmentation needed" names) and a rekey (`--rekey`, probes/rekey.py).

Each probe waits a bounded time for its answer and records what came back: the answer, an ICMP error
through the tunnel (quoting our packet), or nothing. Nothing here outlives the probe: the caller ends the
IKE SA (and the CHILD_SA with it) with a Delete afterwards.
"""

from __future__ import annotations

import ipaddress
import os
import struct
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace
from typing import Literal, TypeVar

import dns.exception
import dns.message
import dns.rcode
import dns.rdatatype

from vpndoctor.errors import UsageError
from vpndoctor.esp import packets as pk
from vpndoctor.esp.errors import EspDecodeError, UnsupportedTransform
from vpndoctor.esp.keymat import ChildSaKeys
from vpndoctor.esp.sa import NEXT_IPV4, EspKeys, EspTransform, InboundSa, OutboundSa
from vpndoctor.ike import initiator as ini
from vpndoctor.ike.constants import EncrId
from vpndoctor.ike.proposals import EspSuite
from vpndoctor.net.esp import EspChannel
from vpndoctor.net.udp import UdpEndpoints
from vpndoctor.observations.connect import ConnectObservation
from vpndoctor.observations.tunnel import (
    MtuProbe,
    MtuResult,
    PingResult,
    ResolveResult,
    TcpResult,
    TunnelObservation,
)

T = TypeVar("T")

DEFAULT_PROBE_TIMEOUT_S = 2.0
PING_COUNT = 3
TCP_SYN_TRIES = 3
DNS_TRIES = 2
MTU_LOW_BYTES = 1280
MTU_HIGH_BYTES = 1500
MAX_ESP_ERRORS = 20
IPV4_TCP_HEADERS = 40
OUTER_OVERHEAD = 20 + 8  # the outer IPv4 and UDP headers around ESP-in-UDP


@dataclass(frozen=True)
class TunnelPlan:
    """What to send through the tunnel (the CLI options)."""

    ping: tuple[str, ...] = ()
    resolve: tuple[str, ...] = ()
    tcp: tuple[tuple[str, int], ...] = ()
    mtu: str | None = None  # the host the MTU search pings
    mtu_low_bytes: int = MTU_LOW_BYTES
    mtu_high_bytes: int = MTU_HIGH_BYTES
    rekey: bool = False
    pfs_group: int | None = None  # the DH group of the CHILD_SA rekey (None: no PFS)
    probe_timeout_s: float = DEFAULT_PROBE_TIMEOUT_S
    # `diagnose` with credentials knows no inside host: ping the DNS server the gateway assigns (the one
    # inside host every client needs) and search the MTU towards it.
    ping_dns_server: bool = False

    def asked(self) -> list[str]:
        kinds = [
            ("ping", bool(self.ping or self.ping_dns_server)),
            ("resolve", bool(self.resolve)),
            ("tcp", bool(self.tcp)),
            ("mtu", bool(self.mtu or self.ping_dns_server)),
            ("rekey", self.rekey),
        ]
        return [kind for kind, on in kinds if on]

    def not_run(self, reason: str, natt_port: int = 4500) -> TunnelObservation:
        """The observation of a plan that never ran (no CHILD_SA came up, ...)."""
        return _empty(self, reason, natt_port, None, None)

    @property
    def empty(self) -> bool:
        return not (self.ping or self.resolve or self.tcp or self.mtu or self.rekey or self.ping_dns_server)


def transform_of(suite: EspSuite) -> EspTransform:
    """The esp/ transform of the CHILD_SA the gateway chose; UnsupportedTransform for what esp/ lacks."""
    return EspTransform(suite.encr, suite.encr_key_bits or 0, suite.integ, suite.esn)


def keys_of(transform: EspTransform, machine: ini.Initiator) -> ChildSaKeys:
    child = machine.child_keys
    assert child is not None
    return ChildSaKeys(out=EspKeys(child.encr_i, child.integ_i), into=EspKeys(child.encr_r, child.integ_r))


class Tunnel:
    """One CHILD_SA's two ESP SAs on a channel, and the inner address we send from."""

    def __init__(
        self,
        channel: EspChannel,
        out: OutboundSa,
        into: InboundSa,
        inner: str,
        *,
        clock: Callable[[], float] = time.monotonic,
        rng: Callable[[int], bytes] = os.urandom,
    ) -> None:
        self.channel = channel
        self.out = out
        self.into = into
        self.inner = inner
        self.clock = clock
        self.rng = rng
        self.errors: list[str] = []
        self.errors_dropped = 0
        self.reassembler = pk.Reassembler()
        self._ident = int.from_bytes(rng(2), "big")

    def rekeyed(self, out: OutboundSa, into: InboundSa) -> None:
        self.out, self.into = out, into

    def next_ident(self) -> int:
        self._ident = (self._ident + 1) & 0xFFFF
        return self._ident

    def send(self, packet: pk.Ipv4) -> bool:
        """Protect and send one inner packet; False when our own stack refused it (too big with DF)."""
        wire = self.out.protect(packet.encode(), NEXT_IPV4)
        return self.channel.send(wire)

    def _error(self, text: str) -> None:
        if len(self.errors) < MAX_ESP_ERRORS:
            self.errors.append(text)
        else:
            self.errors_dropped += 1

    async def wait_for(self, match: Callable[[pk.Ipv4], T | None], timeout_s: float) -> T | None:
        """Read ESP until `match` accepts an inner packet or `timeout_s` passes."""
        end = self.clock() + timeout_s
        while (left := end - self.clock()) > 0:
            data = await self.channel.receive(left)
            if data is None:
                return None
            try:
                got = self.into.unprotect(data)
            except EspDecodeError as exc:
                if data[:4] != self.into.spi:
                    self._error(f"ESP for SPI {data[:4].hex()}, not ours ({self.into.spi.hex()})")
                else:
                    self._error(f"ESP packet dropped: {exc}")
                continue
            if got.next_header != NEXT_IPV4:
                if got.next_header != 59:  # dummy packets (RFC 4303 §2.6) are silently ignored
                    self._error(f"ESP next header {got.next_header}, not IPv4")
                continue
            try:
                packet = self.reassembler.add(pk.decode_ipv4(got.payload))
            except EspDecodeError as exc:
                self._error(f"inner packet dropped: {exc}")
                continue
            if packet is None or packet.dst != self.inner:
                continue
            try:
                result = match(packet)
            except EspDecodeError as exc:
                self._error(f"inner packet dropped: {exc}")
                continue
            if result is not None:
                return result
        return None


# ---- ICMP errors quoting our packet -------------------------------------------------------------------


@dataclass(frozen=True)
class IcmpError:
    text: str
    source: str
    next_hop_mtu: int | None


_UNREACH = {
    0: "network unreachable",
    1: "host unreachable",
    2: "protocol unreachable",
    3: "port unreachable",
    4: "fragmentation needed",
    9: "network administratively prohibited",
    10: "host administratively prohibited",
    13: "communication administratively prohibited",
}


def icmp_error_for(
    packet: pk.Ipv4, dst: str, proto: int, key: bytes | Callable[[bytes], bool]
) -> IcmpError | None:
    """An ICMP destination unreachable / time exceeded that quotes a packet of ours to `dst` whose first
    octets after the IP header start with `key` (ports), or that `key` accepts (given the first 8)."""
    if packet.proto != pk.PROTO_ICMP:
        return None
    icmp = pk.decode_icmp(packet.payload, packet.header_bytes)
    if icmp.type not in (pk.ICMP_UNREACHABLE, pk.ICMP_TIME_EXCEEDED):
        return None
    try:
        quoted = pk.decode_ipv4(icmp.data, verify=False, allow_truncated=True)
    except EspDecodeError:
        return None
    if quoted.dst != dst or quoted.proto != proto:
        return None
    if callable(key):
        if not key(icmp.data[quoted.header_bytes : quoted.header_bytes + 8]):
            return None
    elif icmp.data[quoted.header_bytes : quoted.header_bytes + len(key)] != key:
        return None
    if icmp.type == pk.ICMP_TIME_EXCEEDED:
        return IcmpError("time exceeded (a routing loop?)", packet.src, None)
    text = _UNREACH.get(icmp.code, f"destination unreachable code {icmp.code}")
    mtu = icmp.next_hop_mtu if icmp.code == pk.ICMP_FRAG_NEEDED else None
    if mtu is not None:
        text += f" (next-hop MTU {mtu})"
    return IcmpError(text, packet.src, mtu)


def _ms(seconds: float) -> float:
    return round(seconds * 1000.0, 3)


# ---- ping -----------------------------------------------------------------------------------------------


async def echo(
    tun: Tunnel, target: str, size_bytes: int, *, df: bool, timeout_s: float, seq: int, ident: int
) -> tuple[str, float | None, IcmpError | None]:
    """One ICMP echo of a `size_bytes` inner packet: ("reply", rtt) / ("error", icmp) / ("lost", None) /
    ("local", None): our own interface refused the outer packet (too big with DF)."""
    data_len = max(0, size_bytes - pk.IPV4_HEADER_BYTES - 8)
    payload = (struct.pack("!d", time.time()) + bytes(range(256)) * 6)[:data_len].ljust(data_len, b"\0")
    request = pk.echo_request(ident, seq, payload)

    def match(packet: pk.Ipv4) -> tuple[str, IcmpError | None] | None:
        if packet.proto != pk.PROTO_ICMP:
            return None
        icmp = pk.decode_icmp(packet.payload, packet.header_bytes)
        if icmp.type == pk.ICMP_ECHO_REPLY and (icmp.echo_id, icmp.echo_seq) == (ident, seq):
            return ("reply", None) if packet.src == target else None
        err = _quoted_echo_error(packet, target, ident, seq)
        return ("error", err) if err is not None else None

    start = tun.clock()
    if not tun.send(
        pk.Ipv4(tun.inner, target, pk.PROTO_ICMP, request.encode(), ident=tun.next_ident(), df=df)
    ):
        return "local", None, None
    got = await tun.wait_for(match, timeout_s)
    if got is None:
        return "lost", None, None
    kind, err = got
    return kind, tun.clock() - start, err


def _quoted_echo_error(packet: pk.Ipv4, target: str, ident: int, seq: int) -> IcmpError | None:
    def our_echo(head: bytes) -> bool:  # type, code, checksum, identifier, sequence of the quoted request
        if len(head) != 8 or head[0] != pk.ICMP_ECHO_REQUEST:
            return False
        return struct.unpack("!HH", head[4:]) == (ident, seq)

    return icmp_error_for(packet, target, pk.PROTO_ICMP, our_echo)


async def ping(tun: Tunnel, target: str, *, count: int, timeout_s: float) -> PingResult:
    ident = int.from_bytes(tun.rng(2), "big")
    rtts: list[float] = []
    error: IcmpError | None = None
    sent = 0
    for seq in range(1, count + 1):
        sent += 1
        kind, rtt, err = await echo(tun, target, 84, df=False, timeout_s=timeout_s, seq=seq, ident=ident)
        if kind == "reply" and rtt is not None:
            rtts.append(_ms(rtt))
        elif kind == "error":
            error = err
            break  # the path said no: asking again says no again
    outcome = "reply" if rtts else ("unreachable" if error is not None else "timeout")
    return PingResult(
        target=target,
        sent=sent,
        received=len(rtts),
        rtt_ms=rtts,
        outcome=outcome,  # type: ignore[arg-type]
        icmp_error=error.text if error else None,
        icmp_from=error.source if error else None,
    )


# ---- DNS ------------------------------------------------------------------------------------------------


async def resolve(tun: Tunnel, name: str, server: str, *, timeout_s: float) -> ResolveResult:
    query = dns.message.make_query(name, dns.rdatatype.A)
    wire = query.to_wire()
    sport = 49152 + int.from_bytes(tun.rng(2), "big") % 16384
    udp = pk.Udp(sport, 53, wire).encode(tun.inner, server)
    key = struct.pack("!HH", sport, 53)

    def match(packet: pk.Ipv4) -> dns.message.Message | IcmpError | None:
        if packet.proto == pk.PROTO_UDP and packet.src == server:
            u = pk.decode_udp(packet)
            if (u.sport, u.dport) != (53, sport):
                return None
            try:
                answer = dns.message.from_wire(u.data)
            except dns.exception.DNSException as exc:
                tun._error(f"DNS answer dropped: {exc}")
                return None
            return answer if answer.id == query.id else None
        return icmp_error_for(packet, server, pk.PROTO_UDP, key) if packet.proto == pk.PROTO_ICMP else None

    attempts = 0
    for _ in range(DNS_TRIES):
        attempts += 1
        start = tun.clock()
        tun.send(pk.Ipv4(tun.inner, server, pk.PROTO_UDP, udp, ident=tun.next_ident()))
        got: dns.message.Message | IcmpError | None = await tun.wait_for(match, timeout_s)
        if got is None:
            continue
        rtt = _ms(tun.clock() - start)
        if isinstance(got, IcmpError):
            return ResolveResult(
                name=name,
                server=server,
                outcome="unreachable",
                rcode=None,
                addresses=[],
                rtt_ms=rtt,
                attempts=attempts,
                icmp_error=f"{got.text} from {got.source}",
            )
        rcode = dns.rcode.to_text(got.rcode())
        addresses = [
            item.to_text() for rrset in got.answer if rrset.rdtype == dns.rdatatype.A for item in rrset
        ]
        outcome: Literal["answer", "nxdomain", "error"]
        if got.rcode() == dns.rcode.NXDOMAIN:
            outcome = "nxdomain"
        elif got.rcode() == dns.rcode.NOERROR and addresses:
            outcome = "answer"
        else:
            outcome = "error"
        return ResolveResult(
            name=name,
            server=server,
            outcome=outcome,
            rcode=rcode,
            addresses=addresses,
            rtt_ms=rtt,
            attempts=attempts,
        )
    return ResolveResult(
        name=name, server=server, outcome="timeout", rcode=None, addresses=[], rtt_ms=None, attempts=attempts
    )


# ---- TCP ------------------------------------------------------------------------------------------------


async def tcp_handshake(tun: Tunnel, host: str, port: int, *, timeout_s: float, mss: int) -> TcpResult:
    sport = 49152 + int.from_bytes(tun.rng(2), "big") % 16384
    isn = int.from_bytes(tun.rng(4), "big")
    syn = pk.Tcp(sport, port, isn, 0, pk.TCP_SYN, mss=mss).encode(tun.inner, host)
    key = struct.pack("!HH", sport, port)

    def match(packet: pk.Ipv4) -> pk.Tcp | IcmpError | None:
        if packet.proto == pk.PROTO_TCP and packet.src == host:
            seg = pk.decode_tcp(packet)
            if (seg.sport, seg.dport) != (port, sport):
                return None
            if seg.flags & pk.TCP_ACK and seg.ack != (isn + 1) & 0xFFFFFFFF:
                return None
            return seg
        return icmp_error_for(packet, host, pk.PROTO_TCP, key) if packet.proto == pk.PROTO_ICMP else None

    attempts = 0
    wait = timeout_s / 2
    for _ in range(TCP_SYN_TRIES):
        attempts += 1
        start = tun.clock()
        tun.send(pk.Ipv4(tun.inner, host, pk.PROTO_TCP, syn, ident=tun.next_ident(), df=True))
        got: pk.Tcp | IcmpError | None = await tun.wait_for(match, wait)
        wait *= 2
        if got is None:
            continue
        rtt = _ms(tun.clock() - start)
        if isinstance(got, IcmpError):
            return TcpResult(
                host=host,
                port=port,
                outcome="unreachable",
                rtt_ms=rtt,
                mss_bytes=None,
                attempts=attempts,
                icmp_error=f"{got.text} from {got.source}",
            )
        if got.flags & pk.TCP_RST:
            return TcpResult(
                host=host, port=port, outcome="refused", rtt_ms=rtt, mss_bytes=None, attempts=attempts
            )
        if got.flags & pk.TCP_SYN and got.flags & pk.TCP_ACK:
            # We never complete the handshake: an RST at the sequence number it acknowledged ends it at once.
            rst = pk.Tcp(sport, port, isn + 1, 0, pk.TCP_RST).encode(tun.inner, host)
            tun.send(pk.Ipv4(tun.inner, host, pk.PROTO_TCP, rst, ident=tun.next_ident(), df=True))
            return TcpResult(
                host=host, port=port, outcome="open", rtt_ms=rtt, mss_bytes=got.mss, attempts=attempts
            )
    return TcpResult(host=host, port=port, outcome="timeout", rtt_ms=None, mss_bytes=None, attempts=attempts)


# ---- MTU ------------------------------------------------------------------------------------------------


async def mtu_search(tun: Tunnel, target: str, *, low: int, high: int, timeout_s: float) -> MtuResult:
    """The largest inner IPv4 packet with DF set that reaches `target` and is answered.

    First the top of the range (a healthy path answers at once), then the next-hop MTU an ICMP
    "fragmentation needed" names (one more probe), else a binary search - which also jumps to a next-hop
    MTU named on the way; a lost probe counts as too big (a black hole looks exactly like that). At most
    2 + ceil(log2(high - low + 1)) probes: 10 for 1280-1500."""
    ident = int.from_bytes(tun.rng(2), "big")
    probes: list[MtuProbe] = []
    seq = 0
    frag_seen = False
    best: int | None = None

    async def probe(size: int) -> str:
        nonlocal seq, frag_seen
        seq += 1
        kind, _rtt, err = await echo(tun, target, size, df=True, timeout_s=timeout_s, seq=seq, ident=ident)
        if kind == "reply":
            probes.append(MtuProbe(size_bytes=size, result="crossed"))
            return "crossed"
        if kind == "error" and err is not None and err.next_hop_mtu is not None:
            frag_seen = True
            probes.append(MtuProbe(size_bytes=size, result="frag-needed", next_hop_mtu=err.next_hop_mtu))
            return "frag-needed"
        probes.append(MtuProbe(size_bytes=size, result="too-big-here" if kind == "local" else "lost"))
        return "lost"

    lo, hi = low, high  # invariant once known: lo crosses (best), everything > hi fails
    result = await probe(high)
    if result == "crossed":
        best = high
    else:
        hi = high - 1
        named = probes[-1].next_hop_mtu
        if named is not None and low <= named < high:
            if await probe(named) == "crossed":
                best = named
                lo = named + 1
                hi = min(hi, named)  # the router said so: nothing larger passes it
            else:
                hi = named - 1
        if best is None:
            if await probe(lo) == "crossed":
                best = lo
                lo += 1
            else:
                hi = -1  # not even the bottom of the range crosses
        named_next: int | None = None
        while best is not None and lo <= hi:
            # A router inside named its MTU: ask for exactly that next (it crosses, and nothing larger will)
            mid = named_next if named_next is not None and lo <= named_next <= hi else (lo + hi + 1) // 2
            named_next = None
            if await probe(mid) == "crossed":
                best, lo = mid, mid + 1
            else:
                hi = mid - 1
                named = probes[-1].next_hop_mtu
                if named is not None and lo <= named <= hi:
                    hi, named_next = named, named
    outer = None
    if best is not None:
        outer = best + tun.out.transform.overhead_bytes(best) + OUTER_OVERHEAD
    return MtuResult(
        target=target,
        low_bytes=low,
        high_bytes=high,
        tunnel_mtu_bytes=best,
        tcp_mss_bytes=best - IPV4_TCP_HEADERS if best is not None else None,
        probes_sent=len(probes),
        probes=probes,
        frag_needed_seen=frag_seen,
        outer_bytes=outer,
    )


# ---- the session ----------------------------------------------------------------------------------------


def _first_ipv4(values: list[str]) -> str | None:
    for v in values:
        try:
            if ipaddress.ip_address(v).version == 4:
                return v
        except ValueError:
            continue
    return None


def _empty(
    plan: TunnelPlan, reason: str, port: int, inner: str | None, dns_server: str | None
) -> TunnelObservation:
    return TunnelObservation(
        asked=plan.asked(),
        inner_address=inner,
        dns_server=dns_server,
        esp_proposal=None,
        spi_i=None,
        spi_r=None,
        udp_port=port,
        packets_sent=0,
        packets_received=0,
        bytes_sent=0,
        bytes_received=0,
        keepalives_sent=0,
        esp_errors=[],
        esp_errors_dropped=0,
        ping=[],
        resolve=[],
        tcp=[],
        mtu=None,
        rekey=None,
        duration_s=0.0,
        skipped=reason,
    )


async def run_tunnel(
    plan: TunnelPlan,
    machine: ini.Initiator,
    endpoints: UdpEndpoints,
    *,
    rng: Callable[[int], bytes] = os.urandom,
    clock: Callable[[], float] = time.monotonic,
    esp_keys_out: str | None = None,
) -> TunnelObservation:
    """Run `plan` over the CHILD_SA `machine` holds. Never raises for what the network does."""
    from vpndoctor.probes.connect import _config_info  # the one reader of CFG_REPLY attributes

    t0 = clock()
    natt_port = machine.config.natt_port
    child = machine.child_result
    cfg = _config_info(child.config) if child is not None and child.config else None
    inner = _first_ipv4(cfg.ipv4) if cfg else None
    dns_server = _first_ipv4(cfg.dns) if cfg else None
    if not machine.on_natt:
        return _empty(
            plan,
            "the IKE SA stayed on UDP 500: ESP would be IP protocol 50, which needs raw sockets",
            natt_port,
            inner,
            dns_server,
        )
    if machine.child_suite is None or machine.child_keys is None or machine.child_spi_r is None:
        return _empty(plan, "no CHILD_SA keys", natt_port, inner, dns_server)
    if inner is None:
        return _empty(plan, "the gateway assigned no IPv4 address to send from", natt_port, inner, dns_server)
    try:
        transform = transform_of(machine.child_suite)
    except UnsupportedTransform as exc:
        return _empty(
            plan, f"userspace ESP does not implement this CHILD_SA: {exc}", natt_port, inner, dns_server
        )
    keys = keys_of(transform, machine)
    spi_in = machine.child_spi_i or b""
    if plan.ping_dns_server and dns_server is not None:
        plan = replace(plan, ping=(dns_server, *plan.ping), mtu=plan.mtu or dns_server)
    if esp_keys_out:
        try:
            write_esp_keys(esp_keys_out, esp_sa_lines(transform, keys, spi_in, machine.child_spi_r))
        except OSError as exc:
            raise UsageError(f"--esp-keys-out {esp_keys_out}: {exc.strerror or exc}") from None

    def on_ike(data: bytes, addr: tuple[str, int], now: float) -> None:
        machine.receive_datagram(data, addr, now)

    channel = EspChannel(endpoints, natt_port, on_ike, clock)
    out = OutboundSa(spi=machine.child_spi_r, transform=transform, keys=keys.out, rng=rng)
    into = InboundSa(spi=spi_in, transform=transform, keys=keys.into)
    tun = Tunnel(channel, out, into, inner, clock=clock, rng=rng)
    timeout = plan.probe_timeout_s
    pings = [await ping(tun, target, count=PING_COUNT, timeout_s=timeout) for target in plan.ping]
    resolves: list[ResolveResult] = []
    for name in plan.resolve:
        if dns_server is None:
            resolves.append(
                ResolveResult(
                    name=name,
                    server="",
                    outcome="error",
                    rcode=None,
                    addresses=[],
                    rtt_ms=None,
                    attempts=0,
                    icmp_error="the gateway assigned no IPv4 DNS server",
                )
            )
            continue
        resolves.append(await resolve(tun, name, dns_server, timeout_s=timeout))
    tcps = [await tcp_handshake(tun, host, port, timeout_s=timeout, mss=1360) for host, port in plan.tcp]
    mtu = None
    if plan.ping_dns_server and not any(p.outcome == "reply" for p in pings):
        plan = replace(plan, mtu=None)  # diagnose: no MTU search towards a host that does not answer
    if plan.mtu is not None:
        rtts = [r for p in pings for r in p.rtt_ms]
        # Three round trips, no less than 0.5 s: the search waits on every lost (too big) probe.
        wait = min(timeout, max(0.5, 3 * max(rtts) / 1000.0)) if rtts else timeout
        outer_df = channel.outer_df(True)
        try:
            mtu = await mtu_search(
                tun, plan.mtu, low=plan.mtu_low_bytes, high=plan.mtu_high_bytes, timeout_s=wait
            )
        finally:
            channel.outer_df(False)
        mtu.outer_df = outer_df
    rekey = None
    if plan.rekey:
        from vpndoctor.probes.rekey import run_rekey

        rekey = await run_rekey(
            plan, machine, tun, transform, rng=rng, clock=clock, esp_keys_out=esp_keys_out
        )
    return TunnelObservation(
        asked=plan.asked(),
        inner_address=inner,
        dns_server=dns_server,
        esp_proposal=machine.child_suite.text,
        spi_i=spi_in.hex(),
        spi_r=machine.child_spi_r.hex(),
        udp_port=natt_port,
        packets_sent=channel.sent,
        packets_received=channel.received,
        bytes_sent=channel.bytes_sent,
        bytes_received=channel.bytes_received,
        keepalives_sent=channel.keepalives_sent,
        keepalives_received=channel.keepalives_received,
        esp_errors=tun.errors,
        esp_errors_dropped=tun.errors_dropped,
        ping=pings,
        resolve=resolves,
        tcp=tcps,
        mtu=mtu,
        rekey=rekey,
        duration_s=round(clock() - t0, 3),
    )


# Wireshark's names in its esp_sa table (packet-ipsec.c value strings, Wireshark 4.0)
_WS_ENCR: dict[int, str] = {
    EncrId.AES_CBC: "AES-CBC [RFC3602]",
    EncrId.AES_GCM_16: "AES-GCM with 16 octet ICV [RFC4106]",
}
_WS_INTEG = {
    None: "NULL",
    2: "HMAC-SHA-1-96 [RFC2404]",
    12: "HMAC-SHA-256-128 [RFC4868]",
    13: "HMAC-SHA-384-192 [RFC4868]",
    14: "HMAC-SHA-512-256 [RFC4868]",
}


def esp_sa_lines(transform: EspTransform, keys: ChildSaKeys, spi_in: bytes, spi_out: bytes) -> list[str]:
    """Two rows of Wireshark's `esp_sa` UAT (any source and destination, the SPI decides)."""

    def row(spi: bytes, k: EspKeys) -> str:
        integ = None if transform.aead else transform.integ
        fields = [
            "IPv4",
            "*",
            "*",
            f"0x{spi.hex()}",
            _WS_ENCR[transform.encr],
            f"0x{k.encr.hex()}",
            _WS_INTEG[integ],
            f"0x{k.integ.hex()}" if k.integ else "",
        ]
        return ",".join(f'"{f}"' for f in fields)

    return [row(spi_out, keys.out), row(spi_in, keys.into)]


def write_esp_keys(path: str, lines: list[str], *, append: bool = False) -> None:
    """The esp_sa rows to `path` (mode 0600); `append`: a rekeyed CHILD_SA's rows after the first ones."""
    mode = os.O_APPEND if append else os.O_TRUNC
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | mode, 0o600)
    with os.fdopen(fd, "w", encoding="ascii") as fh:
        fh.write("".join(line + "\n" for line in lines))


@dataclass(frozen=True)
class TunnelHook:
    """The `after_child_sa` hook of `probes.connect.run_connect_probe` for `plan`; `fill` gives an
    observation without a held CHILD_SA (the connect failed) the skipped tunnel its findings need."""

    plan: TunnelPlan
    esp_keys_out: str | None = None

    def __call__(self, machine: ini.Initiator, endpoints: UdpEndpoints) -> Awaitable[TunnelObservation]:
        return run_tunnel(self.plan, machine, endpoints, esp_keys_out=self.esp_keys_out)

    def fill(self, obs: ConnectObservation) -> ConnectObservation:
        if obs.tunnel is None:
            why = obs.failure or "the CHILD_SA did not come up"
            obs.tunnel = self.plan.not_run(f"no CHILD_SA ({obs.stage_reached}: {why})", obs.natt_port)
        return obs


def tunnel_runner(plan: TunnelPlan, esp_keys_out: str | None = None) -> TunnelHook:
    return TunnelHook(plan, esp_keys_out)
