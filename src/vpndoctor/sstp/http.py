"""The HTTPS preamble of SSTP ([MS-SSTP] 4.1) and IP-HTTPS ([MS-IPHTTPS] 3.1.5.1): the request a Windows
client sends and a bounded parser for the server's response.

Hand-written rather than h11/http.client: the "request body" never ends (Content-Length is ULONGLONG_MAX)
and the bytes right after the response header are binary SSTP or IPv6, so we need exactly the header block
and the leftover bytes, with a hard cap on what a hostile server can make us buffer.
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass, field

from vpndoctor.sstp.errors import MalformedHttp

SSTP_METHOD = "SSTP_DUPLEX_POST"
SSTP_PATH = "/sra_{BA195980-CD49-458b-9E23-C84EE0ADCD75}/"
ULONGLONG_MAX = 18446744073709551615
MAX_RESPONSE_HEADER_BYTES = 8192
MAX_HEADER_LINES = 64

_STATUS_LINE = re.compile(rb"^HTTP/(\d)\.(\d) (\d{3})(?: (.*))?$")
_TOKEN = re.compile(rb"^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$")


def _host_header(host: str, port: int) -> str:
    shown = f"[{host}]" if ":" in host else host
    return shown if port == 443 else f"{shown}:{port}"


def sstp_request(host: str, correlation_id: uuid.UUID, port: int = 443) -> bytes:
    """SSTP_DUPLEX_POST as Windows sends it; `correlation_id` is the caller's (no RNG in the codec)."""
    lines = [
        f"{SSTP_METHOD} {SSTP_PATH} HTTP/1.1",
        f"Host: {_host_header(host, port)}",
        f"Content-Length: {ULONGLONG_MAX}",
        "SSTPCORRELATIONID: {" + str(correlation_id).upper() + "}",
    ]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("ascii")


def iphttps_request(host: str, path: str = "/IPHTTPS", port: int = 443) -> bytes:
    """POST with an endless body, as the Windows IP-HTTPS client sends it."""
    if not path.startswith("/") or any(c in path for c in "\r\n ") or not path.isascii():
        raise ValueError(f"bad request path {path!r}")
    lines = [
        f"POST {path} HTTP/1.1",
        f"Host: {_host_header(host, port)}",
        f"Content-Length: {ULONGLONG_MAX}",
    ]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("ascii")


@dataclass(frozen=True)
class HttpResponse:
    version: str  # "1.1"
    status: int
    reason: str
    headers: tuple[tuple[str, str], ...] = field(default=())
    header_bytes: int = 0

    def header(self, name: str) -> str | None:
        low = name.lower()
        return next((v for k, v in self.headers if k.lower() == low), None)


class ResponseReader:
    """Feed bytes until the header block is complete: `feed()` returns the response (and keeps what
    followed it in `rest`) or None when more is needed. More than MAX_RESPONSE_HEADER_BYTES without the
    blank line, or anything that is not HTTP/1.x, is a `MalformedHttp`."""

    def __init__(self, max_bytes: int = MAX_RESPONSE_HEADER_BYTES) -> None:
        self._buf = bytearray()
        self._max = max_bytes
        self.rest = b""
        self.response: HttpResponse | None = None

    def feed(self, data: bytes) -> HttpResponse | None:
        if self.response is not None:
            self.rest += data
            return self.response
        self._buf += data
        if not b"HTTP/".startswith(bytes(self._buf[:5])):
            raise MalformedHttp(0, "an HTTP/1.x status line", f"starts with {bytes(self._buf[:8])!r}")
        end = self._buf.find(b"\r\n\r\n")
        if end < 0:
            if len(self._buf) > self._max:
                raise MalformedHttp(self._max, f"the end of the response header within {self._max} bytes")
            return None
        if end + 4 > self._max:
            raise MalformedHttp(self._max, f"the end of the response header within {self._max} bytes")
        head = bytes(self._buf[:end])
        self.rest = bytes(self._buf[end + 4 :])
        self._buf.clear()
        self.response = parse_response_head(head)
        return self.response


def parse_response_head(head: bytes) -> HttpResponse:
    """The status line and header fields (without the final CRLF CRLF)."""
    lines = head.split(b"\r\n")
    m = _STATUS_LINE.match(lines[0])
    if not m:
        raise MalformedHttp(0, "an HTTP/1.x status line", f"found {lines[0][:60]!r}")
    if m.group(1) != b"1":
        raise MalformedHttp(5, "HTTP major version 1", f"found {m.group(1).decode()}")
    if len(lines) - 1 > MAX_HEADER_LINES:
        raise MalformedHttp(0, f"at most {MAX_HEADER_LINES} header lines", f"{len(lines) - 1}")
    headers: list[tuple[str, str]] = []
    offset = len(lines[0]) + 2
    for line in lines[1:]:
        name, sep, value = line.partition(b":")
        if not sep or not _TOKEN.match(name):
            raise MalformedHttp(offset, "a header field 'name: value'", f"found {line[:60]!r}")
        try:
            text = value.strip(b" \t").decode("latin-1")
        except UnicodeDecodeError:  # pragma: no cover - latin-1 decodes every byte
            raise MalformedHttp(offset, "a latin-1 header value") from None
        if any(ord(c) < 0x20 and c != "\t" for c in text):
            raise MalformedHttp(offset, "a header value without control characters")
        headers.append((name.decode("ascii"), text))
        offset += len(line) + 2
    reason = (m.group(4) or b"").decode("latin-1")
    if any(ord(c) < 0x20 and c != "\t" for c in reason):
        raise MalformedHttp(0, "a reason phrase without control characters")
    return HttpResponse(
        version=f"{m.group(1).decode()}.{m.group(2).decode()}",
        status=int(m.group(3)),
        reason=reason,
        headers=tuple(headers),
        header_bytes=len(head) + 4,
    )
