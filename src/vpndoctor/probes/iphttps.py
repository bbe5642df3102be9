"""Probe a DirectAccess IP-HTTPS endpoint ([MS-IPHTTPS]) the way a Windows 8+ client reaches it: TLS 1.2
offering the NULL suites first (@SECLEVEL=0), then `POST /IPHTTPS` with an endless Content-Length, reading
the response header. Once without a client certificate (is preauthentication enforced?) and, when given,
once with one — concurrently, under one deadline. Facts only; `checks.sstp` judges them.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Literal
from urllib.parse import urlsplit

from cryptography import x509

from vpndoctor import __version__
from vpndoctor.errors import UsageError, VpndoctorError
from vpndoctor.hostport import parse_host_port
from vpndoctor.net.resolve import resolve_one
from vpndoctor.net.tls_stream import TlsClientConfig, TlsStream, TlsStreamError, build_context
from vpndoctor.observations.sstp import IphttpsAttempt, IphttpsObservation, Stage, TlsInfo
from vpndoctor.probes.ike import describe_certificate
from vpndoctor.probes.revocation import check_revocation
from vpndoctor.probes.sstp import sni_for
from vpndoctor.sstp.errors import MalformedHttp
from vpndoctor.sstp.http import ResponseReader, iphttps_request

DEFAULT_PATH = "/IPHTTPS"
DEFAULT_PORT = 443
# NULL first, then what Windows offers beside it; TLS 1.3 has no NULL suites, so 1.2 is the ceiling.
WINDOWS_IPHTTPS_CIPHERS = (
    "NULL-SHA256:NULL-SHA:ECDHE-RSA-AES128-GCM-SHA256:ECDHE-RSA-AES256-GCM-SHA384:ECDHE-RSA-AES128-SHA:"
    "ECDHE-RSA-AES256-SHA:AES128-GCM-SHA256:AES256-GCM-SHA384:AES128-SHA:AES256-SHA:@SECLEVEL=0"
)
MAX_TLS_VERSION = "TLSv1.2"


@dataclass(frozen=True)
class IphttpsTarget:
    host: str
    port: int
    path: str


def parse_target(text: str) -> IphttpsTarget:
    """`https://host[:port]/path`, `host[:port]`, `[v6][:port]`; the path defaults to /IPHTTPS. The authority
    goes through `vpndoctor.hostport`, so the host rules are those of every other command."""
    raw = text.strip()
    if not raw:
        raise UsageError("give an IP-HTTPS URL or host")
    if "://" not in raw:
        raw = "https://" + raw
    try:
        parts = urlsplit(raw)
    except ValueError as exc:
        raise UsageError(f"{text}: {exc}") from None
    if parts.scheme.lower() != "https":
        raise UsageError(f"{text}: IP-HTTPS URLs are https://")
    if "@" in parts.netloc:
        raise UsageError(f"{text}: no user@ in an IP-HTTPS URL")
    if not parts.netloc:
        raise UsageError(f"{text}: no host")
    where = parse_host_port(parts.netloc, DEFAULT_PORT)
    path = parts.path or DEFAULT_PATH
    if parts.query:
        path += "?" + parts.query
    try:
        iphttps_request(where.host, path, where.port)
    except ValueError as exc:
        raise UsageError(f"{text}: {exc}") from None
    return IphttpsTarget(where.host, where.port, path)


async def run_iphttps_probe(
    target: str,
    *,
    address: str | None = None,
    sni: str | None = None,
    anchors: list[x509.Certificate] | None = None,
    client_cert: str | None = None,
    client_key: str | None = None,
    ciphers: str = WINDOWS_IPHTTPS_CIPHERS,
    timeout_s: float = 5.0,
    deadline_at: float | None = None,
    revocation: bool = True,
) -> IphttpsObservation:
    """Never raises for the server's faults; bad local options (files, cipher string) are UsageErrors."""
    t0 = time.monotonic()
    started_at = datetime.now(UTC).isoformat()
    deadline = deadline_at if deadline_at is not None else t0 + timeout_s
    where = parse_target(target)
    name = sni or where.host
    base = TlsClientConfig(server_name=sni_for(name), ciphers=ciphers, max_version=MAX_TLS_VERSION)
    configs: list[tuple[Literal["no-client-cert", "client-cert"], TlsClientConfig]] = [
        ("no-client-cert", base)
    ]
    if client_cert:
        with_cert = TlsClientConfig(
            server_name=base.server_name,
            ciphers=ciphers,
            max_version=MAX_TLS_VERSION,
            client_cert=client_cert,
            client_key=client_key,
        )
        configs.append(("client-cert", with_cert))
    elif client_key:
        raise UsageError("--client-key needs --client-cert")
    for _, config in configs:
        build_context(config)  # local mistakes (files, cipher string) fail before any traffic
    error = None
    attempts: list[IphttpsAttempt] = []
    chains: list[tuple[bytes, ...]] = []  # the TLS chains the attempts were sent, for the revocation step
    if address is None:
        try:
            address = await resolve_one(where.host, timeout_s=max(0.1, deadline - time.monotonic()))
        except VpndoctorError as exc:
            error = str(exc)
    if address is not None:
        request = iphttps_request(sni_for(name) or where.host, where.path, where.port)
        attempts = list(
            await asyncio.gather(
                *(
                    _attempt(label, address, where.port, config, request, anchors or [], deadline, chains)
                    for label, config in configs
                )
            )
        )
    return IphttpsObservation(
        tool={"name": "vpndoctor", "version": __version__},
        target=target,
        host=where.host,
        address=address,
        port=where.port,
        path=where.path,
        sni=sni_for(name),
        started_at=started_at,
        duration_s=round(time.monotonic() - t0, 4),
        offered_ciphers=ciphers,
        max_tls_version=MAX_TLS_VERSION,
        error=error,
        round_trips=max((a.round_trips for a in attempts), default=0),
        attempts=attempts,
        revocation=await check_revocation(chains[0], anchors or [], deadline_at=deadline)
        if revocation and chains
        else None,
    )


async def _attempt(
    label: Literal["no-client-cert", "client-cert"],
    address: str,
    port: int,
    config: TlsClientConfig,
    request: bytes,
    anchors: list[x509.Certificate],
    deadline: float,
    chains: list[tuple[bytes, ...]],
) -> IphttpsAttempt:
    t0 = time.monotonic()
    fields: dict[str, object] = {
        "label": label,
        "reached": "none",
        "error_stage": None,
        "error_kind": None,
        "error": None,
        "tls": None,
        "http_status": None,
        "http_reason": None,
        "server_header": None,
        "client_certificate_requested": None,
        "closed_without_answer": False,
    }

    def done() -> IphttpsAttempt:
        rts = {"none": 1, "tcp": 2, "tls": 4, "http": 4}[str(fields["reached"])]
        return IphttpsAttempt(
            duration_s=round(time.monotonic() - t0, 4),
            round_trips=rts,
            **fields,  # type: ignore[arg-type]
        )

    try:
        stream = await TlsStream.connect(
            address, port, config, timeout_s=max(0.05, deadline - time.monotonic())
        )
    except TlsStreamError as exc:
        stage: Stage = "connect" if exc.stage == "connect" else "handshake"
        fields.update(reached="none" if stage == "connect" else "tcp", error_stage=stage)
        fields.update(
            error_kind=exc.kind, error=str(exc), client_certificate_requested=exc.certificate_requested
        )
        return done()
    info = stream.info
    if info.peer_chain_der:
        chains.append(info.peer_chain_der)
    fields["reached"] = "tls"
    fields["client_certificate_requested"] = info.certificate_requested
    fields["tls"] = TlsInfo(
        version=info.version,
        cipher=info.cipher,
        cipher_bits=info.cipher_bits,
        client_certificate_requested=info.certificate_requested,
        certificate=describe_certificate(info.peer_chain_der, anchors),
        connect_s=round(info.connect_s, 4),
        handshake_s=round(info.handshake_s, 4),
    )
    reader = ResponseReader()
    try:
        await stream.send(request, timeout_s=max(0.05, deadline - time.monotonic()))
        response = None
        while response is None:
            left = deadline - time.monotonic()
            if left <= 0:
                fields.update(error_stage="http", error_kind="timeout", error="no HTTP response: timed out")
                return done()
            data = await stream.recv(timeout_s=left)
            if not data:
                fields.update(error_stage="http", error_kind="closed", closed_without_answer=True)
                fields["error"] = "the server closed the connection without answering the POST"
                return done()
            response = reader.feed(data)
    except TlsStreamError as exc:
        fields.update(error_stage="http", error_kind=exc.kind, error=f"no HTTP response: {exc}")
        fields["closed_without_answer"] = exc.kind in ("reset", "closed", "alert", "tls")
        return done()
    except MalformedHttp as exc:
        fields.update(error_stage="http", error_kind="malformed", error=f"not an HTTP response ({exc})")
        return done()
    finally:
        stream.abort()
    fields.update(reached="http", http_status=response.status, http_reason=response.reason)
    fields["server_header"] = response.header("Server")
    return done()


def probe(target: str, **kwargs: object) -> IphttpsObservation:
    return asyncio.run(run_iphttps_probe(target, **kwargs))  # type: ignore[arg-type]
