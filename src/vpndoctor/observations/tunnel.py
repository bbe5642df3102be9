"""What `vpndoctor connect --ping/--resolve/--tcp/--mtu/--rekey` saw through the tunnel: userspace ESP over
the IKE SA's UDP 4500 flow, from the address the gateway assigned. Round-trip times in milliseconds; never a
key (SPIs only)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid")


class PingResult(_Model):
    target: str
    sent: int
    received: int
    rtt_ms: list[float]  # one per reply, in order
    # "reply": an echo reply came back; "timeout": nothing within the timeout; "unreachable": an ICMP error
    # came back through the tunnel instead (its text in `icmp_error`)
    outcome: Literal["reply", "timeout", "unreachable"]
    icmp_error: str | None = None
    icmp_from: str | None = None  # who sent the ICMP error


class ResolveResult(_Model):
    name: str
    server: str  # the DNS server the gateway assigned (CP INTERNAL_IP4_DNS)
    # "answer": NOERROR with addresses; "nxdomain"; "error": another rcode or a reply without addresses;
    # "timeout": no reply; "unreachable": an ICMP error back through the tunnel
    outcome: Literal["answer", "nxdomain", "error", "timeout", "unreachable"]
    rcode: str | None
    addresses: list[str]
    rtt_ms: float | None
    attempts: int
    icmp_error: str | None = None


class TcpResult(_Model):
    host: str
    port: int
    # "open": SYN-ACK (we answered RST); "refused": RST; "timeout"; "unreachable": an ICMP error
    outcome: Literal["open", "refused", "timeout", "unreachable"]
    rtt_ms: float | None
    mss_bytes: int | None  # the MSS option of the SYN-ACK
    attempts: int
    icmp_error: str | None = None


class MtuProbe(_Model):
    size_bytes: int  # the inner IPv4 packet (DF set)
    # "too-big-here": our own interface refused the outer packet (larger than its MTU, DF on): not sent
    result: Literal["crossed", "frag-needed", "lost", "too-big-here"]
    next_hop_mtu: int | None = None  # from an ICMP fragmentation needed, when one came back


class MtuResult(_Model):
    target: str
    low_bytes: int  # the search range
    high_bytes: int
    # The largest inner packet (DF) that crossed, or None when not even `low_bytes` did
    tunnel_mtu_bytes: int | None
    tcp_mss_bytes: int | None  # tunnel MTU - 40 (IPv4 + TCP headers): what a gateway should clamp to
    probes_sent: int
    probes: list[MtuProbe]
    frag_needed_seen: bool  # an ICMP "fragmentation needed" came back through the tunnel
    # The outer ESP-in-UDP packet that carried the largest inner packet (what the WAN path had to pass)
    outer_bytes: int | None
    # The outer packets carried DF too (so the answer crosses the WAN path unfragmented): Linux only
    outer_df: bool = False


class ExchangeResult(_Model):
    """One IKE exchange on the held IKE SA (a DPD, a rekey)."""

    # "ok": answered as asked; "refused": an error notify (in `notify`); "timeout"; "error": an answer we
    # could not use (in `detail`); "skipped": not attempted (in `detail`)
    outcome: Literal["ok", "refused", "timeout", "error", "skipped"]
    notify: str | None = None
    rtt_ms: float | None = None
    detail: str | None = None


class RekeyResult(_Model):
    pfs_group: str | None  # the DH group of the CHILD_SA rekey (the profile's PfsGroup); None: no PFS
    child: ExchangeResult
    ike: ExchangeResult
    dpd: ExchangeResult
    new_spi_i: str | None  # hex: the rekeyed CHILD_SA's SPIs
    new_spi_r: str | None
    traffic_after: PingResult | None  # the first --ping target again, on the new CHILD_SA


class TunnelObservation(_Model):
    inner_address: str | None  # the IPv4 address the gateway assigned (our source inside)
    dns_server: str | None
    esp_proposal: str | None
    spi_i: str | None  # hex: our inbound SPI
    spi_r: str | None
    udp_port: int  # the NAT-T port the ESP went to
    packets_sent: int
    packets_received: int
    bytes_sent: int  # ESP-in-UDP payload bytes
    bytes_received: int
    keepalives_sent: int  # RFC 3948 NAT keepalives (0xFF), after 20 s without sending
    keepalives_received: int = 0
    esp_errors: list[str]  # bounded: packets we dropped (bad ICV, replay, malformed), with why
    esp_errors_dropped: int
    ping: list[PingResult]
    resolve: list[ResolveResult]
    tcp: list[TcpResult]
    mtu: MtuResult | None
    rekey: RekeyResult | None
    duration_s: float
    # Why no probe ran (no CHILD_SA, a transform we do not implement, no IPv4 address...); None when they ran
    skipped: str | None = None
    # What was asked: "ping", "resolve", "tcp", "mtu", "rekey" (each gets a finding, also when skipped)
    asked: list[str] = []
