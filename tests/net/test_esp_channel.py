"""net/esp.py over real localhost UDP sockets: ESP out on the NAT-T flow, IKE (non-ESP marker) handed to
the IKE machine, keepalives counted and sent after the idle interval, our own EMSGSIZE with outer DF taken
back out of the socket's error list."""

from __future__ import annotations

import asyncio
import socket

import pytest

from vpndoctor.net import esp as net_esp
from vpndoctor.net.udp import open_endpoints


def test_esp_ike_and_keepalives(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(net_esp, "KEEPALIVE_INTERVAL_S", 0.05)

    async def scenario() -> None:
        server = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        server.bind(("127.0.0.1", 0))
        server.setblocking(False)
        port = server.getsockname()[1]
        endpoints = await open_endpoints("127.0.0.1", (port,))
        ike: list[bytes] = []
        channel = net_esp.EspChannel(endpoints, port, lambda d, a, now: ike.append(d))
        try:
            assert channel.send(b"\x01\x02\x03\x04" + bytes(20))
            loop = asyncio.get_running_loop()
            data, client = await loop.sock_recvfrom(server, 2048)
            assert data[:4] == b"\x01\x02\x03\x04"
            await loop.sock_sendto(server, b"\xff", client)  # a keepalive: counted, not returned
            await loop.sock_sendto(server, b"\x00\x00\x00\x00" + bytes(28), client)  # IKE
            await loop.sock_sendto(server, b"\x09\x09\x09\x09" + bytes(12), client)  # ESP
            got = await channel.receive(2.0)
            assert got is not None and got[:4] == b"\x09\x09\x09\x09"
            assert channel.keepalives_received == 1 and len(ike) == 1
            await loop.sock_sendto(server, b"\x00\x00\x00\x00" + bytes(28), client)
            assert await channel.receive(2.0, ike_wakes=True) == b""
            assert await channel.receive(0.3) is None  # idle: keepalives go out meanwhile
            assert channel.keepalives_sent >= 1
            seen = [await loop.sock_recvfrom(server, 2048) for _ in range(channel.keepalives_sent)]
            assert all(d == b"\xff" for d, _ in seen)
            assert (channel.sent, channel.received) == (1, 1)
        finally:
            endpoints.close()
            server.close()

    asyncio.run(scenario())


def test_outer_df_refusal_is_ours_not_an_icmp_error() -> None:
    async def scenario() -> None:
        server = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        server.bind(("127.0.0.1", 0))
        port = server.getsockname()[1]
        endpoints = await open_endpoints("127.0.0.1", (port,))
        channel = net_esp.EspChannel(endpoints, port, lambda d, a, now: None)
        try:
            if not channel.outer_df(True):
                pytest.skip("no IP_MTU_DISCOVER here")
            assert not channel.send(bytes(70000 - 28))  # larger than any datagram: EMSGSIZE at once
            assert endpoints.icmp_errors == []
            assert channel.outer_df(False)
        finally:
            endpoints.close()
            server.close()

    asyncio.run(scenario())
