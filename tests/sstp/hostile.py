"""A deliberately broken server on 127.0.0.1 for bad-input tests: each connection runs one named behaviour
(garbage instead of TLS, resets, stalls, HTTP errors, oversized headers, malformed or endless SSTP). It is
the hostile peer under test's opposite, not a stand-in for a real server."""

from __future__ import annotations

import contextlib
import os
import socket
import ssl
import struct
import threading
from collections.abc import Callable
from pathlib import Path

from vpndoctor.sstp.messages import (
    ControlMessage,
    CryptoBindingRequest,
    DataPacket,
    MessageType,
    Status,
    StatusInfo,
    encode_packet,
)

OK_200 = b"HTTP/1.1 200 OK\r\nContent-Length: 18446744073709551615\r\nServer: Hostile/1.0\r\n\r\n"
ACK = encode_packet(ControlMessage(MessageType.CALL_CONNECT_ACK, (CryptoBindingRequest(2, b"\x07" * 32),)))
NAK = encode_packet(
    ControlMessage(MessageType.CALL_CONNECT_NAK, (StatusInfo(1, Status.VALUE_NOT_SUPPORTED, b"\x00\x01"),))
)


def _read_until(conn: socket.socket, marker: bytes, limit: int = 65536) -> bytes:
    data = b""
    while marker not in data and len(data) < limit:
        chunk = conn.recv(4096)
        if not chunk:
            break
        data += chunk
    return data


def _reset(conn: socket.socket) -> None:
    conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    conn.close()


class HostileServer:
    def __init__(self, cert: Path, key: Path, behaviour: str, stop_after_s: float = 20.0) -> None:
        self.behaviour = behaviour
        self.ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self.ctx.load_cert_chain(cert, key)
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.port: int = self.sock.getsockname()[1]
        self._stop = threading.Event()
        self._conns: list[socket.socket] = []
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        self.sock.settimeout(0.2)
        while not self._stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except (TimeoutError, OSError):
                continue
            self._conns.append(conn)
            threading.Thread(target=self._handle, args=(conn,), daemon=True).start()

    def _handle(self, raw: socket.socket) -> None:
        with contextlib.suppress(OSError, ssl.SSLError):
            behaviours[self.behaviour](self, raw)

    def tls(self, raw: socket.socket) -> ssl.SSLSocket:
        raw.settimeout(10)
        conn = self.ctx.wrap_socket(raw, server_side=True)
        self._conns.append(conn)
        return conn

    def stall(self) -> None:
        self._stop.wait(30)

    def stop(self) -> None:
        self._stop.set()
        for c in self._conns:
            with contextlib.suppress(OSError):
                c.close()
        self.sock.close()
        self.thread.join(timeout=5)


def _garbage_tls(s: HostileServer, raw: socket.socket) -> None:
    _read_until(raw, b"\x01", 10)
    raw.sendall(os.urandom(64) + b"\x00" * 16)
    s.stall()


def _oversized_tls_record(s: HostileServer, raw: socket.socket) -> None:
    raw.recv(4096)
    raw.sendall(b"\x16\x03\x03\xff\xff" + b"\x02" * 1024)  # a 65535-byte handshake record (max 16384+2048)
    s.stall()


def _plain_http(s: HostileServer, raw: socket.socket) -> None:
    raw.recv(4096)
    raw.sendall(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n")
    raw.close()


def _reset_at_hello(s: HostileServer, raw: socket.socket) -> None:
    raw.recv(4096)
    _reset(raw)


def _stall_tls(s: HostileServer, raw: socket.socket) -> None:
    s.stall()


def _after_tls(
    reply: Callable[[HostileServer, ssl.SSLSocket], None],
) -> Callable[[HostileServer, socket.socket], None]:
    def run(s: HostileServer, raw: socket.socket) -> None:
        conn = s.tls(raw)
        _read_until(conn, b"\r\n\r\n")
        reply(s, conn)

    return run


def _stall_http(s: HostileServer, c: ssl.SSLSocket) -> None:
    s.stall()


def _status(code: bytes) -> Callable[[HostileServer, ssl.SSLSocket], None]:
    def run(s: HostileServer, c: ssl.SSLSocket) -> None:
        c.sendall(b"HTTP/1.1 " + code + b"\r\nServer: Hostile/1.0\r\nContent-Length: 0\r\n\r\n")
        s.stall()

    return run


def _oversized_header(s: HostileServer, c: ssl.SSLSocket) -> None:
    c.sendall(b"HTTP/1.1 200 OK\r\nX-Big: ")
    for _ in range(64):
        c.sendall(b"a" * 1024)
    s.stall()


def _reset_after_request(s: HostileServer, c: ssl.SSLSocket) -> None:
    _reset(c)


def _then(
    after_200: Callable[[HostileServer, ssl.SSLSocket], None],
) -> Callable[[HostileServer, ssl.SSLSocket], None]:
    def run(s: HostileServer, c: ssl.SSLSocket) -> None:
        c.sendall(OK_200)
        c.recv(4096)  # the Call Connect Request
        after_200(s, c)

    return run


def _garbage_sstp(s: HostileServer, c: ssl.SSLSocket) -> None:
    c.sendall(b"\x10\x01\x00\x08\x00\x63\x00\x00")  # message type 0x63
    s.stall()


def _endless_data(s: HostileServer, c: ssl.SSLSocket) -> None:
    frame = encode_packet(DataPacket(b"\xff" * 4000))
    try:
        while not s._stop.is_set():
            c.sendall(frame)
    except OSError:
        pass


def _nak(s: HostileServer, c: ssl.SSLSocket) -> None:
    c.sendall(NAK)
    s.stall()


def _ack_then_silence(s: HostileServer, c: ssl.SSLSocket) -> None:
    c.sendall(ACK)
    s.stall()


def _sstpd_style_abort(s: HostileServer, c: ssl.SSLSocket) -> None:
    c.sendall(b"\x10\x01\x00\x10\x00\x05\x00\x01\x00\x02\x00\x08\x00\x00\x00\x07")  # Status Info of 8 bytes
    s.stall()


def _close(s: HostileServer, c: ssl.SSLSocket) -> None:
    c.close()


behaviours: dict[str, Callable[[HostileServer, socket.socket], None]] = {
    "garbage-instead-of-tls": _garbage_tls,
    "plain-http": _plain_http,
    "oversized-tls-record": _oversized_tls_record,
    "reset-at-hello": _reset_at_hello,
    "stall-tls": _stall_tls,
    "stall-http": _after_tls(_stall_http),
    "http-404": _after_tls(_status(b"404 Not Found")),
    "http-503": _after_tls(_status(b"503 Service Unavailable")),
    "oversized-header": _after_tls(_oversized_header),
    "reset-after-request": _after_tls(_reset_after_request),
    "close-after-request": _after_tls(_close),
    "garbage-sstp": _after_tls(_then(_garbage_sstp)),
    "endless-data": _after_tls(_then(_endless_data)),
    "stall-sstp": _after_tls(_then(lambda s, c: s.stall())),
    "close-after-200": _after_tls(_then(_close)),
    "nak": _after_tls(_then(_nak)),
    "ack-then-silence": _after_tls(_then(_ack_then_silence)),
    "sstpd-style-abort": _after_tls(_then(_sstpd_style_abort)),
}
