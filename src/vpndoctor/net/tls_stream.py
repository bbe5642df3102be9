"""An asyncio TLS client over Python's ssl module (OpenSSL: a real TLS stack, as a Windows client has one):
timeouts on every wait, SNI, --ca, an optional client certificate, cipher-string and version control
(e.g. NULL-SHA offered first with @SECLEVEL=0, as Windows 8+ IP-HTTPS clients do), and a report of what
was negotiated: version, suite, the peer's chain, whether the server asked for a client certificate.

Verification is off on purpose: we want the server's certificate whatever it is, and the checks judge it.
"""

from __future__ import annotations

import _ssl
import asyncio
import contextlib
import errno
import socket
import ssl
import time
from dataclasses import dataclass, field
from typing import Any, Literal

from vpndoctor.errors import UsageError

ErrorKind = Literal["timeout", "refused", "unreachable", "reset", "closed", "tls", "alert", "oserror"]

_CERTIFICATE_REQUEST = 13  # TLS HandshakeType certificate_request
_HANDSHAKE = 22
_ENCODING_DER = getattr(_ssl, "ENCODING_DER", 2)
_VERSIONS = {
    "TLSv1.0": ssl.TLSVersion.TLSv1,
    "TLSv1.1": ssl.TLSVersion.TLSv1_1,
    "TLSv1.2": ssl.TLSVersion.TLSv1_2,
    "TLSv1.3": ssl.TLSVersion.TLSv1_3,
}


class TlsStreamError(Exception):
    """A connection-level failure, phrased for one line: `stage` is "connect", "handshake" or "io"."""

    def __init__(
        self, stage: str, kind: ErrorKind, message: str, certificate_requested: bool | None = None
    ) -> None:
        self.stage = stage
        self.kind = kind
        self.certificate_requested = certificate_requested  # seen before a handshake failure
        super().__init__(message)


@dataclass(frozen=True)
class TlsClientConfig:
    server_name: str | None = None  # SNI (not sent for an IP address)
    ciphers: str | None = None  # OpenSSL cipher string for TLS <= 1.2
    min_version: str | None = None  # "TLSv1.0" .. "TLSv1.3"
    max_version: str | None = None
    client_cert: str | None = None  # PEM certificate (chain); key in client_key or in the same file
    client_key: str | None = None


@dataclass(frozen=True)
class TlsSessionInfo:
    version: str | None
    cipher: str | None  # OpenSSL name, e.g. NULL-SHA, ECDHE-RSA-AES128-SHA, TLS_AES_256_GCM_SHA384
    cipher_bits: int | None
    peer_chain_der: tuple[bytes, ...]  # as sent by the server, leaf first
    certificate_requested: bool | None  # the server sent CertificateRequest (None: could not observe)
    connect_s: float
    handshake_s: float


def build_context(config: TlsClientConfig) -> ssl.SSLContext:
    """An SSLContext for `config`; a bad option or unreadable file is the user's error (UsageError)."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    for attr, value in (("minimum_version", config.min_version), ("maximum_version", config.max_version)):
        if value is not None:
            if value not in _VERSIONS:
                raise UsageError(f"unknown TLS version {value} (expected one of {', '.join(_VERSIONS)})")
            setattr(ctx, attr, _VERSIONS[value])
    if config.ciphers:
        try:
            ctx.set_ciphers(config.ciphers)
        except ssl.SSLError:
            raise UsageError(f"cipher string {config.ciphers!r} selects no cipher this OpenSSL has") from None
    if config.client_cert:
        try:
            ctx.load_cert_chain(config.client_cert, config.client_key)
        except FileNotFoundError as exc:
            raise UsageError(f"client certificate: {exc.filename}: no such file") from None
        except (ssl.SSLError, OSError) as exc:
            raise UsageError(f"client certificate {config.client_cert}: cannot load ({exc})") from None
    elif config.client_key:
        raise UsageError("--client-key needs --client-cert")
    return ctx


def _watch_certificate_request(ctx: ssl.SSLContext, seen: list[bool]) -> bool:
    """Note an incoming CertificateRequest through OpenSSL's message callback (CPython's `_msg_callback`,
    which sees TLS 1.3's encrypted handshake too). False when this Python lacks it."""

    def callback(_conn: Any, direction: str, _v: Any, content_type: Any, msg_type: Any, _d: Any) -> None:
        if direction == "read" and content_type == _HANDSHAKE and msg_type == _CERTIFICATE_REQUEST:
            seen.append(True)

    if not hasattr(ctx, "_msg_callback"):
        return False
    ctx._msg_callback = callback
    return True


def _describe(exc: BaseException) -> tuple[ErrorKind, str]:
    if isinstance(exc, TimeoutError):
        return "timeout", "timed out"
    if isinstance(exc, ssl.SSLError):
        reason = getattr(exc, "reason", None) or str(exc)
        kind: ErrorKind = "alert" if "ALERT" in str(reason).upper() else "tls"
        return kind, f"{reason}"
    if isinstance(exc, ConnectionRefusedError):
        return "refused", "connection refused"
    if isinstance(exc, ConnectionResetError):
        return "reset", "connection reset by peer"
    if isinstance(exc, (asyncio.IncompleteReadError, EOFError, BrokenPipeError, ConnectionAbortedError)):
        return "closed", "connection closed by peer"
    if isinstance(exc, OSError):
        if exc.errno in (errno.ENETUNREACH, errno.EHOSTUNREACH):
            return "unreachable", exc.strerror or "unreachable"
        return "oserror", exc.strerror or str(exc)
    return "oserror", str(exc) or type(exc).__name__


@dataclass
class TlsStream:
    """One TLS connection; every method takes its own timeout and raises only TlsStreamError."""

    reader: asyncio.StreamReader
    writer: asyncio.StreamWriter
    info: TlsSessionInfo
    bytes_in: int = 0
    bytes_out: int = 0
    _closed: bool = field(default=False, repr=False)

    @classmethod
    async def connect(cls, host: str, port: int, config: TlsClientConfig, *, timeout_s: float) -> TlsStream:
        """TCP connect, then the TLS handshake, within `timeout_s` in total."""
        ctx = build_context(config)
        seen: list[bool] = []
        observable = _watch_certificate_request(ctx, seen)
        deadline = time.monotonic() + timeout_s
        t0 = time.monotonic()
        # Connect a socket first, then hand it to open_connection(ssl=...): the connect and handshake times
        # stay apart, and the stream knows it runs over TLS (after StreamWriter.start_tls it does not, and
        # asyncio warns on the peer's EOF). An empty server_hostname sends no SNI.
        try:
            sock = await asyncio.wait_for(_connect(host, port), timeout_s)
        except (OSError, TimeoutError) as exc:
            kind, text = _describe(exc)
            raise TlsStreamError("connect", kind, f"TCP connect to {host} port {port}: {text}") from None
        connect_s = time.monotonic() - t0
        sni = config.server_name if config.server_name and not _is_ip(config.server_name) else None
        try:
            left = max(0.05, deadline - time.monotonic())
            reader, writer = await asyncio.wait_for(
                asyncio.open_connection(
                    sock=sock, ssl=ctx, server_hostname=sni or "", ssl_handshake_timeout=left
                ),
                left,
            )
        except (OSError, TimeoutError, ssl.SSLError, EOFError) as exc:
            sock.close()
            kind, text = _describe(exc)
            requested = bool(seen) if observable else None
            raise TlsStreamError("handshake", kind, f"TLS handshake: {text}", requested) from None
        sslobj = writer.get_extra_info("ssl_object")
        chain: tuple[bytes, ...] = ()
        version = cipher = None
        bits = None
        if sslobj is not None:
            version = sslobj.version()
            c = sslobj.cipher()
            if c:
                cipher, bits = c[0], c[2]
            chain = _peer_chain(sslobj)
        info = TlsSessionInfo(
            version=version,
            cipher=cipher,
            cipher_bits=bits,
            peer_chain_der=chain,
            certificate_requested=bool(seen) if observable else None,
            connect_s=connect_s,
            handshake_s=time.monotonic() - t0 - connect_s,
        )
        return cls(reader, writer, info)

    async def send(self, data: bytes, *, timeout_s: float) -> None:
        try:
            self.writer.write(data)
            await asyncio.wait_for(self.writer.drain(), timeout_s)
        except (OSError, TimeoutError, ssl.SSLError, EOFError) as exc:
            kind, text = _describe(exc)
            raise TlsStreamError("io", kind, f"sending: {text}") from None
        self.bytes_out += len(data)

    async def recv(self, max_bytes: int = 65536, *, timeout_s: float) -> bytes:
        """Up to `max_bytes`; b"" when the peer closed cleanly."""
        try:
            data = await asyncio.wait_for(self.reader.read(max_bytes), timeout_s)
        except (OSError, TimeoutError, ssl.SSLError, EOFError) as exc:
            kind, text = _describe(exc)
            raise TlsStreamError("io", kind, f"receiving: {text}") from None
        self.bytes_in += len(data)
        return data

    async def close(self, timeout_s: float = 1.0) -> None:
        """Send close_notify and wait a little for the peer; a slow or rude peer is cut off."""
        if self._closed:
            return
        self._closed = True
        self.writer.close()
        with contextlib.suppress(OSError, TimeoutError, ssl.SSLError, EOFError):
            await asyncio.wait_for(self.writer.wait_closed(), timeout_s)
        if not self.writer.transport.is_closing():  # pragma: no cover - close() marks it closing
            self.writer.transport.abort()

    def abort(self) -> None:
        self._closed = True
        self.writer.transport.abort()


async def _connect(host: str, port: int) -> socket.socket:
    """A connected non-blocking TCP socket (host is normally an address literal: no DNS)."""
    loop = asyncio.get_running_loop()
    infos = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    last: OSError = OSError(f"no address for {host}")
    for family, type_, proto, _, addr in infos:
        sock = socket.socket(family, type_, proto)
        sock.setblocking(False)
        try:
            await loop.sock_connect(sock, addr)
        except OSError as exc:
            sock.close()
            last = exc
            continue
        except BaseException:
            sock.close()
            raise
        return sock
    raise last


def _peer_chain(sslobj: Any) -> tuple[bytes, ...]:
    """The chain as the server sent it (CPython 3.10+ has it privately, 3.13 publicly); the leaf alone
    otherwise."""
    inner = getattr(sslobj, "_sslobj", sslobj)
    getter = getattr(inner, "get_unverified_chain", None)
    if getter is not None:
        try:
            certs = getter() or []
            ders: list[bytes] = []
            for c in certs:
                der = c.public_bytes(_ENCODING_DER) if hasattr(c, "public_bytes") else None
                if isinstance(der, bytes):
                    ders.append(der)
            if ders:
                return tuple(ders)
        except (ValueError, ssl.SSLError, AttributeError):
            pass
    leaf = sslobj.getpeercert(binary_form=True)
    return (leaf,) if leaf else ()


def _is_ip(name: str) -> bool:
    import ipaddress

    try:
        ipaddress.ip_address(name)
    except ValueError:
        return False
    return True
