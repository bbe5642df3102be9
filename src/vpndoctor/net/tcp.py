"""An asyncio TCP client for probes that drive sans-I/O parsers (raw TLS hellos, the ssl module's MemoryBIO).

Connect with a timeout, send, and read until the caller's parser says it has enough, a byte cap is reached
or a deadline passes. IPv4 and IPv6. Socket failures become our own `TcpError` subclasses; how a read ended
(done, closed, reset, byte cap, deadline) is returned with the bytes, since partial answers are evidence.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

from vpndoctor.errors import VpndoctorError

READ_CHUNK_BYTES = 65536
DEFAULT_CAP_BYTES = 256 * 1024

ReadEnd = Literal["done", "closed", "reset", "cap", "timeout"]


class TcpError(VpndoctorError):
    """A TCP-level failure towards the peer; `kind` is a stable word for JSON and tests."""

    kind = "error"


class ConnectRefused(TcpError):
    kind = "refused"


class ConnectTimeout(TcpError):
    kind = "timeout"


class Unreachable(TcpError):
    kind = "unreachable"


class ConnectionResetByPeer(TcpError):
    kind = "reset"


class ConnectionClosedByPeer(TcpError):
    kind = "closed"


@dataclass(frozen=True)
class ReadResult:
    data: bytes
    end: ReadEnd


def _connect_error(address: str, port: int, exc: OSError) -> TcpError:
    where = f"[{address}]:{port}" if ":" in address else f"{address}:{port}"
    if isinstance(exc, ConnectionRefusedError) or exc.errno == errno.ECONNREFUSED:
        return ConnectRefused(f"{where}: connection refused")
    if exc.errno in (errno.ENETUNREACH, errno.EHOSTUNREACH, errno.EADDRNOTAVAIL, errno.EAFNOSUPPORT):
        return Unreachable(f"{where}: {exc.strerror or exc}")
    if exc.errno == errno.ETIMEDOUT:
        return ConnectTimeout(f"{where}: TCP connect timed out")
    return TcpError(f"{where}: {exc.strerror or exc}")


class TcpConnection:
    """One TCP connection. Use `await TcpConnection.open(...)`; always `close()` it (idempotent)."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, connect_s: float) -> None:
        self._reader = reader
        self._writer = writer
        self.connect_s = connect_s  # SYN to established: about one round trip

    @classmethod
    async def open(cls, address: str, port: int, *, timeout_s: float) -> TcpConnection:
        family = socket.AF_INET6 if ":" in address else socket.AF_INET
        t0 = time.monotonic()
        try:
            reader, writer = await asyncio.wait_for(
                asyncio.open_connection(address, port, family=family, limit=READ_CHUNK_BYTES), timeout_s
            )
        except TimeoutError:
            where = f"[{address}]:{port}" if ":" in address else f"{address}:{port}"
            raise ConnectTimeout(f"{where}: no TCP answer within {timeout_s:.3g} s") from None
        except OSError as exc:
            raise _connect_error(address, port, exc) from None
        sock = writer.get_extra_info("socket")
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return cls(reader, writer, time.monotonic() - t0)

    async def send(self, data: bytes, *, timeout_s: float) -> None:
        try:
            self._writer.write(data)
            await asyncio.wait_for(self._writer.drain(), timeout_s)
        except TimeoutError:
            raise ConnectTimeout(f"sending {len(data)} bytes took longer than {timeout_s:.3g} s") from None
        except ConnectionResetError:
            raise ConnectionResetByPeer("connection reset by the peer while sending") from None
        except (BrokenPipeError, ConnectionAbortedError):
            raise ConnectionClosedByPeer("the peer closed the connection while we were sending") from None
        except OSError as exc:
            raise TcpError(f"send failed: {exc.strerror or exc}") from None

    async def receive(self, *, timeout_s: float) -> bytes:
        """One chunk of bytes (b"" when the peer closed); raises on reset or timeout."""
        try:
            return await asyncio.wait_for(self._reader.read(READ_CHUNK_BYTES), max(0.0, timeout_s))
        except TimeoutError:
            raise ConnectTimeout(f"no data within {timeout_s:.3g} s") from None
        except ConnectionResetError:
            raise ConnectionResetByPeer("connection reset by the peer") from None
        except OSError as exc:
            raise TcpError(f"receive failed: {exc.strerror or exc}") from None

    async def read_until(
        self,
        done: Callable[[bytes], bool],
        *,
        deadline: float,
        max_bytes: int = DEFAULT_CAP_BYTES,
        initial: bytes = b"",
        clock: Callable[[], float] = time.monotonic,
    ) -> ReadResult:
        """Read until `done(all bytes so far)` is true, the peer closes or resets, `max_bytes` is exceeded,
        or the monotonic `deadline` passes. Never raises for these: the end is in the result."""
        data = bytearray(initial)
        if data and done(bytes(data)):
            return ReadResult(bytes(data), "done")
        while True:
            left = deadline - clock()
            if left <= 0:
                return ReadResult(bytes(data), "timeout")
            try:
                chunk = await self.receive(timeout_s=left)
            except ConnectTimeout:
                return ReadResult(bytes(data), "timeout")
            except ConnectionResetByPeer:
                return ReadResult(bytes(data), "reset")
            except TcpError:
                return ReadResult(bytes(data), "reset")
            if not chunk:
                return ReadResult(bytes(data), "closed")
            data += chunk
            if len(data) > max_bytes:
                return ReadResult(bytes(data[:max_bytes]), "cap")
            if done(bytes(data)):
                return ReadResult(bytes(data), "done")

    def close(self) -> None:
        """Close without waiting for the peer (a probe never needs a graceful shutdown)."""
        transport = self._writer.transport
        if not transport.is_closing():
            transport.abort()


async def open_tcp(address: str, port: int, *, timeout_s: float) -> TcpConnection:
    return await TcpConnection.open(address, port, timeout_s=timeout_s)
