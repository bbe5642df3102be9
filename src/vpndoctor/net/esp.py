"""ESP-in-UDP datagrams on the IKE SA's own NAT-T flow (RFC 3948): the socket `connect` already talks IKE on
to the gateway's UDP 4500, so the ESP leaves from the same 4-tuple a NAT or load balancer mapped. This
module only moves bytes: it sends what it is given, hands IKE datagrams (non-ESP marker) to the IKE machine,
counts keepalives, and returns ESP payloads with a timeout. What the bytes mean is `esp/`'s business.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import sys
import time
from collections.abc import Callable

from vpndoctor.net.udp import Address, UdpEndpoints

# <linux/in.h>; Python's socket module does not export them
_IP_MTU_DISCOVER = 10
_IP_PMTUDISC_WANT = 1
_IP_PMTUDISC_PROBE = 3

NON_ESP_MARKER = b"\x00\x00\x00\x00"
NAT_KEEPALIVE = b"\xff"
KEEPALIVE_INTERVAL_S = 20.0  # RFC 3948 §4: after 20 s without sending, a NAT keepalive keeps the mapping


class EspChannel:
    """Send ESP to `port` on `endpoints`; receive ESP from the same queue the IKE machine reads.

    `on_ike(data, addr, now)` gets every IKE datagram that arrives meanwhile (the held IKE SA's answers)."""

    def __init__(
        self,
        endpoints: UdpEndpoints,
        port: int,
        on_ike: Callable[[bytes, Address, float], None],
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.endpoints = endpoints
        self.port = port
        self.on_ike = on_ike
        self.clock = clock
        self.sent = 0
        self.received = 0
        self.bytes_sent = 0
        self.bytes_received = 0
        self.keepalives_sent = 0
        self.keepalives_received = 0
        self.last_sent = clock()

    def send(self, datagram: bytes) -> bool:
        """False when the local stack refused it at once (EMSGSIZE: larger than our interface allows with
        DF on); that error is ours, so it is taken back out of the socket's ICMP error list."""
        transport = self.endpoints.transports.get(self.port)
        inbox = self.endpoints.inboxes.get(self.port)
        if transport is None or inbox is None:
            return False
        before = len(inbox.errors)
        transport.sendto(datagram)
        self.last_sent = self.clock()
        if len(inbox.errors) > before:
            del inbox.errors[before:]
            return False
        self.sent += 1
        self.bytes_sent += len(datagram)
        return True

    def outer_df(self, on: bool) -> bool:
        """DF on the outer packets (IP_PMTUDISC_PROBE: set DF, never fragment locally, ignore the cached path
        MTU) for the MTU search, so that the inner size found crosses the WAN path unfragmented too; off
        restores Linux's default (IP_PMTUDISC_WANT). False where the platform has no such option."""
        transport = self.endpoints.transports.get(self.port)
        sock = transport.get_extra_info("socket") if transport is not None else None
        if sock is None or sys.platform != "linux" or sock.family != socket.AF_INET:
            return False
        with contextlib.suppress(OSError):
            sock.setsockopt(
                socket.IPPROTO_IP, _IP_MTU_DISCOVER, _IP_PMTUDISC_PROBE if on else _IP_PMTUDISC_WANT
            )
            return True
        return False

    def send_ike(self, datagram: bytes, port: int) -> None:
        """An IKE datagram the machine wants sent (already framed with the marker on the NAT-T port)."""
        transport = self.endpoints.transports.get(port)
        if transport is not None:
            transport.sendto(datagram)

    def keepalive(self) -> None:
        transport = self.endpoints.transports.get(self.port)
        if transport is not None:
            transport.sendto(NAT_KEEPALIVE)
            self.keepalives_sent += 1
            self.last_sent = self.clock()

    async def receive(self, timeout_s: float, *, ike_wakes: bool = False) -> bytes | None:
        """The next ESP datagram within `timeout_s`, or None. IKE datagrams go to `on_ike` on the way;
        with `ike_wakes` the first one ends the wait (returning b"")."""
        end = self.clock() + max(0.0, timeout_s)
        while True:
            now = self.clock()
            left = end - now
            if left <= 0:
                return None
            if now - self.last_sent >= KEEPALIVE_INTERVAL_S:
                self.keepalive()
            wake = min(left, self.last_sent + KEEPALIVE_INTERVAL_S - self.clock())
            try:
                data, addr = await asyncio.wait_for(self.endpoints.queue.get(), timeout=max(0.0, wake))
            except TimeoutError:
                continue
            if addr[1] != self.port:
                self.on_ike(data, addr, self.clock())
                if ike_wakes:
                    return b""
                continue
            if data == NAT_KEEPALIVE:
                self.keepalives_received += 1
                continue
            if data[:4] == NON_ESP_MARKER:
                self.on_ike(data, addr, self.clock())
                if ike_wakes:
                    return b""
                continue
            self.received += 1
            self.bytes_received += len(data)
            return data
