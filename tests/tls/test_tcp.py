"""The asyncio TCP client of net/tcp.py against small loopback servers: every way a read can end, and the
errors a connect can raise, each as our own exception or a stated end."""

from __future__ import annotations

import asyncio
import socket
import struct
import time

import pytest

from tests.tls.openssl_server import free_port
from tests.tls.servers import HostileServer
from vpndoctor.net.tcp import ConnectRefused, ConnectTimeout, TcpConnection, Unreachable


async def echo_twice(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    data = await reader.read(100)
    writer.write(data[:3])
    await writer.drain()
    await asyncio.sleep(0.05)
    writer.write(data[3:])
    await writer.drain()
    await asyncio.sleep(1)


async def close_after(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    await reader.read(100)
    writer.write(b"bye")
    await writer.drain()
    writer.close()


async def reset(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    await reader.read(100)
    writer.write(b"partial")
    await writer.drain()
    await asyncio.sleep(0.05)
    writer.get_extra_info("socket").setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    writer.transport.abort()


async def flood(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    await reader.read(100)
    for _ in range(100):
        writer.write(b"x" * 16384)
        await writer.drain()


async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    await asyncio.sleep(30)


def with_server(handler, body):  # type: ignore[no-untyped-def]
    server = HostileServer(handler)
    try:
        return asyncio.run(body(server.port))
    finally:
        server.stop()


def test_read_until_done() -> None:
    async def body(port: int) -> None:
        conn = await TcpConnection.open("127.0.0.1", port, timeout_s=2)
        await conn.send(b"hello world", timeout_s=2)
        got = await conn.read_until(lambda d: d.endswith(b"world"), deadline=time.monotonic() + 2)
        conn.close()
        conn.close()  # idempotent
        assert got.data == b"hello world" and got.end == "done" and conn.connect_s >= 0

    with_server(echo_twice, body)


@pytest.mark.parametrize(
    ("handler", "end", "data"),
    [(close_after, "closed", b"bye"), (reset, "reset", b"partial"), (silent, "timeout", b"")],
)
def test_read_until_ends(handler, end: str, data: bytes) -> None:  # type: ignore[no-untyped-def]
    async def body(port: int) -> None:
        conn = await TcpConnection.open("127.0.0.1", port, timeout_s=2)
        await conn.send(b"hi", timeout_s=2)
        t0 = time.monotonic()
        got = await conn.read_until(lambda d: False, deadline=t0 + 0.5)
        conn.close()
        assert (got.end, got.data) == (end, data)
        assert time.monotonic() - t0 < 1.5

    with_server(handler, body)


def test_byte_cap() -> None:
    async def body(port: int) -> None:
        conn = await TcpConnection.open("127.0.0.1", port, timeout_s=2)
        await conn.send(b"go", timeout_s=2)
        got = await conn.read_until(lambda d: False, deadline=time.monotonic() + 5, max_bytes=50000)
        conn.close()
        assert got.end == "cap" and len(got.data) == 50000

    with_server(flood, body)


def test_connect_refused() -> None:
    port = free_port()

    async def body() -> None:
        with pytest.raises(ConnectRefused, match="refused"):
            await TcpConnection.open("127.0.0.1", port, timeout_s=2)

    asyncio.run(body())


def test_connect_timeout_on_a_full_backlog() -> None:
    # A listener that never accepts, with its backlog filled, leaves new SYNs unanswered: a connect timeout.
    lsock = socket.socket()
    lsock.bind(("127.0.0.1", 0))
    lsock.listen(0)
    port = lsock.getsockname()[1]
    fillers = []
    try:
        for _ in range(4):
            s = socket.socket()
            s.setblocking(False)
            s.connect_ex(("127.0.0.1", port))
            fillers.append(s)

        async def body() -> None:
            t0 = time.monotonic()
            with pytest.raises(ConnectTimeout):
                await TcpConnection.open("127.0.0.1", port, timeout_s=0.3)
            assert time.monotonic() - t0 < 1.5

        asyncio.run(body())
    finally:
        for s in fillers:
            s.close()
        lsock.close()


def test_ipv6_loopback() -> None:
    try:
        server = HostileServer(echo_twice, host="::1")
    except (OSError, RuntimeError):
        pytest.skip("no IPv6 loopback")

    async def body() -> None:
        conn = await TcpConnection.open("::1", server.port, timeout_s=2)
        await conn.send(b"v6 ok", timeout_s=2)
        got = await conn.read_until(lambda d: d == b"v6 ok", deadline=time.monotonic() + 2)
        conn.close()
        assert got.end == "done"

    try:
        asyncio.run(body())
    finally:
        server.stop()


def test_unroutable_family_is_our_error() -> None:
    async def body() -> None:
        # An IPv4-mapped address on an IPv6 socket to a port nothing serves: refused or unreachable, ours.
        with pytest.raises((ConnectRefused, Unreachable, ConnectTimeout)):
            await TcpConnection.open("::ffff:127.0.0.1", free_port(), timeout_s=1)

    asyncio.run(body())
