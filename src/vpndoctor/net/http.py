"""Bounded plain-HTTP GET and POST for what a certificate points at: CRL distribution points and AIA
caIssuers (RFC 5280 4.2.1.13, 4.2.2.1) and OCSP responders (RFC 6960 A.1). These are plain `http://` by
design - a client must be able to fetch them before it trusts any TLS - so nothing here speaks TLS.

Built on the standard library's `http.client` (urllib's engine, maintained with CPython): it parses status
lines, headers, chunked and Content-Length bodies. `urllib.request` itself is not used because it follows
redirects to any host and honours proxy environment variables, and httpx is not a dependency. The
exchange runs in a worker thread (`asyncio.to_thread`) so that the event loop keeps serving the other probes.
What this module adds, since the URLs come from a stranger's certificate: a byte cap (a larger announced
Content-Length is refused unread, a body is read at most cap+1 bytes), one time cap for the whole exchange
(the socket timeout per operation is what is left of it, and a watchdog shuts the socket down at the
deadline, since a server dripping one byte at a time satisfies every per-operation timeout), redirects
followed only to the same host and port (at most `MAX_REDIRECTS`), and a budget of fetches per run
(`FetchBudget`).
Failures are returned, never raised: how a fetch failed is evidence.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import errno
import http.client
import socket
import threading
import time
import urllib.parse
from dataclasses import dataclass
from typing import Literal

from vpndoctor import __version__

__all__ = [
    "CRL_MAX_BYTES",
    "MAX_REDIRECTS",
    "SMALL_MAX_BYTES",
    "FetchBudget",
    "HttpResult",
    "http_get",
    "http_post",
]

CRL_MAX_BYTES = 1024 * 1024  # a CRL of a busy public CA is a few hundred KB; past 1 MiB we stop reading
SMALL_MAX_BYTES = 64 * 1024  # a CA certificate (AIA caIssuers) or an OCSP response
MAX_REDIRECTS = 2
READ_CHUNK_BYTES = 64 * 1024

ErrorKind = Literal[
    "scheme",
    "dns",
    "refused",
    "unreachable",
    "timeout",
    "reset",
    "protocol",
    "too-large",
    "redirect",
    "budget",
    "deadline",
]


@dataclass(frozen=True)
class HttpResult:
    """One fetch: what was asked, what came back (or how it failed), how big and how long."""

    url: str
    final_url: str  # after same-host redirects
    status: int | None  # HTTP status of the last response; None when none was read
    content_type: str | None
    body: bytes | None  # the whole body, only when it was read whole within the caps
    size_bytes: int  # bytes read (or, for "too-large", the Content-Length announced)
    elapsed_s: float
    error: str | None  # one line; None when a response was read whole (whatever its status)
    error_kind: ErrorKind | None
    redirects: int = 0

    @property
    def ok(self) -> bool:
        return self.error is None and self.status == 200 and self.body is not None


class FetchBudget:
    """At most `max_fetches` fetches per run: a certificate could list hundreds of URLs."""

    def __init__(self, max_fetches: int) -> None:
        self.max_fetches = max_fetches
        self.used = 0

    def take(self) -> bool:
        if self.used >= self.max_fetches:
            return False
        self.used += 1
        return True


@dataclass(frozen=True)
class _Target:
    host: str
    port: int
    path: str


def _target(url: str) -> _Target | str:
    """The host, port and request path of a plain-HTTP URL, or why it is not one we fetch."""
    try:
        parts = urllib.parse.urlsplit(url)
        port = parts.port or 80
    except ValueError as exc:
        return f"not a valid URL ({exc})"
    if parts.scheme.lower() != "http":
        return f"{parts.scheme or 'no'} scheme: only plain http:// is fetched"
    if not parts.hostname:
        return "no host in the URL"
    path = parts.path or "/"
    if parts.query:
        path += "?" + parts.query
    return _Target(parts.hostname, port, path)


def _failure(exc: BaseException) -> tuple[ErrorKind, str]:
    if isinstance(exc, socket.gaierror):
        return "dns", f"name does not resolve ({exc.strerror or exc})"
    if isinstance(exc, TimeoutError):
        return "timeout", "no answer in time"
    if isinstance(exc, ConnectionRefusedError):
        return "refused", "connection refused"
    if isinstance(exc, ConnectionResetError):
        return "reset", "connection reset"
    if isinstance(exc, http.client.HTTPException):
        return "protocol", f"not an HTTP answer ({type(exc).__name__})"
    if isinstance(exc, OSError) and exc.errno in (errno.ENETUNREACH, errno.EHOSTUNREACH, errno.EADDRNOTAVAIL):
        return "unreachable", exc.strerror or str(exc)
    if isinstance(exc, OSError):
        return "unreachable", exc.strerror or str(exc)
    return "protocol", str(exc)


def _shut(conn: http.client.HTTPConnection) -> None:
    sock = conn.sock
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.shutdown(socket.SHUT_RDWR)


def _exchange(
    method: str,
    url: str,
    body: bytes | None,
    content_type: str | None,
    max_bytes: int,
    deadline: float,
) -> HttpResult:
    """The blocking exchange (run in a thread): at most MAX_REDIRECTS same-host hops."""
    t0 = time.monotonic()
    current = url
    redirects = 0

    def result(**kw: object) -> HttpResult:
        fields: dict[str, object] = {
            "url": url,
            "final_url": current,
            "status": None,
            "content_type": None,
            "body": None,
            "size_bytes": 0,
            "elapsed_s": round(time.monotonic() - t0, 4),
            "error": None,
            "error_kind": None,
            "redirects": redirects,
        }
        fields.update(kw)
        return HttpResult(**fields)  # type: ignore[arg-type]

    first = _target(url)
    if isinstance(first, str):
        return result(error=first, error_kind="scheme")
    origin = (first.host.lower(), first.port)
    target = first
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            return result(error="no time left for the fetch", error_kind="timeout")
        conn = http.client.HTTPConnection(target.host, target.port, timeout=left)
        # A hard stop: a server dripping a byte at a time keeps every single recv within its timeout, so
        # at the deadline the socket is shut down under the reading thread (which wakes it at once).
        watchdog = threading.Timer(left, _shut, (conn,))
        watchdog.daemon = True
        watchdog.start()
        try:
            headers = {
                "User-Agent": f"vpndoctor/{__version__}",
                "Accept": "*/*",
                "Connection": "close",
            }
            if content_type:
                headers["Content-Type"] = content_type
            conn.request(method, target.path, body=body, headers=headers)
            resp = conn.getresponse()
            status = resp.status
            ctype = resp.getheader("Content-Type")
            if status in (301, 302, 303, 307, 308):
                location = resp.getheader("Location") or ""
                nxt = urllib.parse.urljoin(current, location)
                hop = _target(nxt)
                if (
                    method != "GET"
                    or isinstance(hop, str)
                    or (hop.host.lower(), hop.port) != origin
                    or redirects >= MAX_REDIRECTS
                ):
                    why = (
                        "too many redirects"
                        if redirects >= MAX_REDIRECTS
                        else f"redirect to {nxt} not followed (only same-host GET redirects are)"
                    )
                    return result(status=status, content_type=ctype, error=why, error_kind="redirect")
                redirects += 1
                current, target = nxt, hop
                continue
            announced = resp.getheader("Content-Length")
            if announced is not None and announced.strip().isdigit() and int(announced) > max_bytes:
                return result(
                    status=status,
                    content_type=ctype,
                    size_bytes=int(announced),
                    error=f"body of {int(announced)} bytes announced, more than the {max_bytes}-byte cap",
                    error_kind="too-large",
                )
            data = bytearray()
            while True:
                left = deadline - time.monotonic()
                if left <= 0:
                    return result(
                        status=status,
                        content_type=ctype,
                        size_bytes=len(data),
                        error=f"body not complete in time ({len(data)} bytes read)",
                        error_kind="timeout",
                    )
                if conn.sock is not None:
                    conn.sock.settimeout(left)
                # read1: at most one recv, so that the deadline is looked at between slow bytes too
                chunk = resp.read1(min(READ_CHUNK_BYTES, max_bytes + 1 - len(data)))
                if not chunk:
                    break
                data += chunk
                if len(data) > max_bytes:
                    return result(
                        status=status,
                        content_type=ctype,
                        size_bytes=len(data),
                        error=f"body larger than the {max_bytes}-byte cap",
                        error_kind="too-large",
                    )
            return result(status=status, content_type=ctype, body=bytes(data), size_bytes=len(data))
        except (OSError, http.client.HTTPException, ValueError) as exc:
            if time.monotonic() >= deadline:  # the watchdog's doing, whatever the exception says
                return result(error="no complete answer in time", error_kind="timeout")
            kind, text = _failure(exc)
            return result(error=text, error_kind=kind)
        finally:
            watchdog.cancel()
            conn.close()


async def _fetch(
    method: str,
    url: str,
    body: bytes | None,
    content_type: str | None,
    *,
    max_bytes: int,
    timeout_s: float,
    deadline_at: float | None,
    budget: FetchBudget | None,
) -> HttpResult:
    if budget is not None and not budget.take():
        return HttpResult(
            url=url,
            final_url=url,
            status=None,
            content_type=None,
            body=None,
            size_bytes=0,
            elapsed_s=0.0,
            error=f"not fetched: the run's budget of {budget.max_fetches} fetches is spent",
            error_kind="budget",
        )
    own = time.monotonic() + timeout_s
    deadline = own if deadline_at is None else min(own, deadline_at)
    r = await asyncio.to_thread(_exchange, method, url, body, content_type, max_bytes, deadline)
    if r.error_kind == "timeout" and deadline < own:
        # Cut short by the caller's deadline, not by its own time cap: no verdict on the server.
        return dataclasses.replace(
            r, error_kind="deadline", error=f"{r.error} (the run's deadline came first)"
        )
    return r


async def http_get(
    url: str,
    *,
    max_bytes: int = CRL_MAX_BYTES,
    timeout_s: float = 5.0,
    deadline_at: float | None = None,
    budget: FetchBudget | None = None,
) -> HttpResult:
    """GET a plain-HTTP URL within `timeout_s` (and the monotonic `deadline_at`), reading at most
    `max_bytes` of body; one unit of `budget`."""
    return await _fetch(
        "GET",
        url,
        None,
        None,
        max_bytes=max_bytes,
        timeout_s=timeout_s,
        deadline_at=deadline_at,
        budget=budget,
    )


async def http_post(
    url: str,
    body: bytes,
    content_type: str,
    *,
    max_bytes: int = SMALL_MAX_BYTES,
    timeout_s: float = 5.0,
    deadline_at: float | None = None,
    budget: FetchBudget | None = None,
) -> HttpResult:
    """POST `body` (an OCSP request: application/ocsp-request) to a plain-HTTP URL; redirects are not
    followed. Bounded as `http_get`."""
    return await _fetch(
        "POST",
        url,
        body,
        content_type,
        max_bytes=max_bytes,
        timeout_s=timeout_s,
        deadline_at=deadline_at,
        budget=budget,
    )
