"""Drive a sans-I/O datagram machine (the IKEv2 initiator) over asyncio UDP sockets.

Two unprivileged sockets with ephemeral local ports, one per remote port (IKE 500 and NAT-T 4500), so a
probe runs as any user and beside a Windows IKEEXT service that owns UDP 500. A total deadline bounds
every run, whatever the peer does.
"""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Protocol

from vpndoctor.errors import VpndoctorError

Address = tuple[str, int]

MAX_DATAGRAM_BYTES = 65535
WIND_DOWN_GRACE_S = 1.0  # past the deadline, how long an exchange that ends server state may take


class NetworkError(VpndoctorError):
    """A local socket problem (no route, address family unsupported...)."""


class DatagramMachine(Protocol):
    def receive_datagram(self, data: bytes, addr: Address, now: float) -> None: ...
    def handle_timer(self, now: float) -> None: ...
    def datagrams_to_send(self, now: float) -> list[tuple[bytes, Address]]: ...
    def get_timer(self) -> float | None: ...

    @property
    def finished(self) -> bool: ...


class _Inbox(asyncio.DatagramProtocol):
    def __init__(self, queue: asyncio.Queue[tuple[bytes, Address]], remote_port: int) -> None:
        self.queue = queue
        self.remote_port = remote_port
        self.errors: list[str] = []

    def datagram_received(self, data: bytes, addr: tuple[str | int, ...]) -> None:
        if self.queue.qsize() < 1024:  # a flood is dropped, not buffered without bound
            self.queue.put_nowait((data[:MAX_DATAGRAM_BYTES], (str(addr[0]), int(addr[1]))))

    def error_received(self, exc: Exception) -> None:
        # ICMP port unreachable and friends: recorded, the machine's timers decide what it means.
        self.errors.append(str(exc))


@dataclass
class UdpEndpoints:
    remote_ip: str
    ports: tuple[int, ...]
    transports: dict[int, asyncio.DatagramTransport]
    inboxes: dict[int, _Inbox]
    queue: asyncio.Queue[tuple[bytes, Address]]
    retired: list[asyncio.DatagramTransport] = field(default_factory=list)
    flows: dict[int, int] = field(default_factory=dict)  # sockets renewed per remote port

    def local_address(self, port: int) -> Address:
        sockname = self.transports[port].get_extra_info("sockname")
        return str(sockname[0]), int(sockname[1])

    def close(self) -> None:
        for t in self.transports.values():
            t.close()
        for t in self.retired:
            t.close()
        self.retired.clear()

    async def renew(self, port: int) -> None:
        """A new socket (a new ephemeral source port, so a new flow for any middlebox) towards `port`."""
        loop = asyncio.get_running_loop()
        family = socket.AF_INET6 if ":" in self.remote_ip else socket.AF_INET
        inbox = _Inbox(self.queue, port)
        try:
            transport, _ = await loop.create_datagram_endpoint(
                _factory(inbox), remote_addr=(self.remote_ip, port), family=family
            )
        except OSError as exc:
            raise NetworkError(
                f"cannot open a UDP socket towards {self.remote_ip}: {exc.strerror or exc}"
            ) from None
        old = self.transports.get(port)
        if old is not None:
            # Kept open until the end: a late answer to the previous flow is still read (and judged).
            self.retired.append(old)
        self.transports[port] = transport
        self.inboxes[port] = inbox

    @property
    def icmp_errors(self) -> list[str]:
        return [e for inbox in self.inboxes.values() for e in inbox.errors]


def _factory(inbox: _Inbox) -> Callable[[], _Inbox]:
    return lambda: inbox


async def open_endpoints(remote_ip: str, ports: tuple[int, ...]) -> UdpEndpoints:
    """One connected UDP socket per remote port, on an ephemeral local port."""
    loop = asyncio.get_running_loop()
    family = socket.AF_INET6 if ":" in remote_ip else socket.AF_INET
    queue: asyncio.Queue[tuple[bytes, Address]] = asyncio.Queue()
    transports: dict[int, asyncio.DatagramTransport] = {}
    inboxes: dict[int, _Inbox] = {}
    try:
        for port in dict.fromkeys(ports):
            inbox = _Inbox(queue, port)
            transport, _ = await loop.create_datagram_endpoint(
                _factory(inbox), remote_addr=(remote_ip, port), family=family
            )
            transports[port] = transport
            inboxes[port] = inbox
    except OSError as exc:
        for t in transports.values():
            t.close()
        raise NetworkError(f"cannot open a UDP socket towards {remote_ip}: {exc.strerror or exc}") from None
    return UdpEndpoints(remote_ip, tuple(transports), transports, inboxes, queue)


async def drive(
    machine: DatagramMachine,
    endpoints: UdpEndpoints,
    *,
    deadline_s: float,
    clock: Callable[[], float] = time.monotonic,
    pace: Callable[[], Awaitable[None]] | None = None,
) -> bool:
    """Run until the machine finishes or the deadline passes. Returns False on the deadline."""
    end = clock() + deadline_s

    async def flush() -> None:
        for data, (_, port) in machine.datagrams_to_send(clock()):
            flow = getattr(machine, "natt_flow", 0)  # the IKE initiator asks for a new source port
            if port != endpoints.ports[0] and flow != endpoints.flows.get(port, 0):
                await endpoints.renew(port)
                endpoints.flows[port] = flow
            if pace is not None:
                await pace()
            transport = endpoints.transports.get(port)
            if transport is not None:
                transport.sendto(data)

    await flush()
    winding = False
    while not machine.finished:
        now = clock()
        if now >= end:
            # Past the deadline a machine that leaves state on the server may end it, briefly.
            wind_down = getattr(machine, "wind_down", None)
            if winding or wind_down is None or not wind_down(now):
                return False
            winding = True
            end = now + WIND_DOWN_GRACE_S
            await flush()
            continue
        timer = machine.get_timer()
        wait = end - now if timer is None else max(0.0, min(timer, end) - now)
        try:
            data, addr = await asyncio.wait_for(endpoints.queue.get(), timeout=wait)
        except TimeoutError:
            machine.handle_timer(clock())
        else:
            if addr[1] in endpoints.transports:  # retired sockets of earlier flows feed the same queue
                machine.receive_datagram(data, addr, clock())
            machine.handle_timer(clock())
        await flush()
    return True
