"""The exporter's HTTP(S) listener: aiohttp's low-level server, one handler, plain request/response data.

net/ is the only layer that opens sockets, so the listener lives here and knows nothing of probes or
metrics: it turns each request into an `HttpRequest`, awaits the handler, and writes its `HttpResponse`.
TLS (cert/key files, minimum version) is set up here; who may ask (basic auth) is the handler's business.
aiohttp is used rather than http.server because the probes are asyncio and must share the loop, and its
parser bounds request lines and headers (8 KiB) for us.
"""

from __future__ import annotations

import ssl
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from aiohttp import web


@dataclass(frozen=True)
class HttpRequest:
    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]  # lowercase names; the last value wins
    remote: str


@dataclass(frozen=True)
class HttpResponse:
    status: int
    body: bytes = b""
    content_type: str = "text/plain; charset=utf-8"
    headers: dict[str, str] = field(default_factory=dict)


Handler = Callable[[HttpRequest], Awaitable[HttpResponse]]


def server_context(cert_file: str, key_file: str, min_version: str = "TLS12") -> ssl.SSLContext:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_3 if min_version == "TLS13" else ssl.TLSVersion.TLSv1_2
    ctx.load_cert_chain(cert_file, key_file)
    return ctx


class HttpServer:
    def __init__(self, handler: Handler) -> None:
        self._handler = handler
        self._runner: web.ServerRunner | None = None
        self.bound: tuple[str, int] | None = None

    async def _serve(self, request: web.BaseRequest) -> web.StreamResponse:
        query: dict[str, list[str]] = {}
        for k, v in request.query.items():
            query.setdefault(k, []).append(v)
        headers = {k.lower(): v for k, v in request.headers.items()}
        peer = request.transport.get_extra_info("peername") if request.transport else None
        req = HttpRequest(request.method, request.path, query, headers, str(peer[0]) if peer else "")
        resp = await self._handler(req)
        return web.Response(
            status=resp.status, body=resp.body, headers={"Content-Type": resp.content_type, **resp.headers}
        )

    async def start(self, host: str, port: int, ssl_context: ssl.SSLContext | None = None) -> None:
        server = web.Server(self._serve, access_log=None)
        self._runner = web.ServerRunner(server, handle_signals=False)
        await self._runner.setup()
        site = web.TCPSite(self._runner, host, port, ssl_context=ssl_context, reuse_address=True)
        await site.start()
        sockets = server_sockets(site)
        self.bound = (host, sockets[0] if sockets else port)

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None


def server_sockets(site: web.TCPSite) -> list[int]:
    srv = site._server  # aiohttp keeps the asyncio server here; the bound port when 0 was asked
    if srv is None or not getattr(srv, "sockets", None):
        return []
    return [int(s.getsockname()[1]) for s in srv.sockets]  # type: ignore[attr-defined]
