"""TCP connect and a TLS handshake on the SSTP port, with the system's TLS stack (ssl): reachability and
the certificate served. The raw-hello TLS audit is `vpndoctor tls` (its own issue); this is the minimum
`diagnose` needs."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import ssl
import time

from vpndoctor.observations.tls import TlsObservation


async def _handshake(
    address: str, port: int = 443, *, server_name: str | None = None, timeout_s: float = 5.0
) -> TlsObservation:
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE  # we want the certificate whatever it is; checks judge it
    t0 = time.monotonic()
    try:
        reader, writer = await asyncio.wait_for(asyncio.open_connection(address, port), timeout_s)
    except TimeoutError:
        return TlsObservation(
            address, port, connected=False, handshake=False, error="TCP connect timed out", round_trips=1
        )
    except OSError as exc:
        return TlsObservation(
            address,
            port,
            connected=False,
            handshake=False,
            error=f"TCP connect failed: {exc.strerror or exc}",
            round_trips=1,
        )
    connect_s = time.monotonic() - t0
    try:
        await asyncio.wait_for(writer.start_tls(ctx, server_hostname=server_name), timeout_s)
    except (TimeoutError, ssl.SSLError, OSError, ConnectionError) as exc:
        writer.close()
        return TlsObservation(
            address,
            port,
            connected=True,
            handshake=False,
            connect_s=connect_s,
            error=f"TLS handshake failed: {exc or type(exc).__name__}",
            round_trips=2,
        )
    sslobj = writer.get_extra_info("ssl_object")
    version = sslobj.version() if sslobj else None
    cipher = sslobj.cipher()[0] if sslobj and sslobj.cipher() else None
    der = sslobj.getpeercert(binary_form=True) if sslobj else None
    writer.close()
    with contextlib.suppress(TimeoutError, OSError, ssl.SSLError):
        await asyncio.wait_for(writer.wait_closed(), 1.0)
    _ = reader
    return TlsObservation(
        address,
        port,
        connected=True,
        handshake=True,
        version=version,
        cipher=cipher,
        certificate_der=der,
        connect_s=connect_s,
        round_trips=1 + (1 if version == "TLSv1.3" else 2),
    )


async def tls_handshake(
    address: str,
    port: int = 443,
    *,
    server_name: str | None = None,
    timeout_s: float = 5.0,
    deadline_at: float | None = None,
) -> TlsObservation:
    t0 = time.monotonic()
    budget = timeout_s if deadline_at is None else max(0.1, deadline_at - t0)
    try:
        obs = await asyncio.wait_for(
            _handshake(address, port, server_name=server_name, timeout_s=budget), budget
        )
    except TimeoutError:
        obs = TlsObservation(
            address, port, connected=False, handshake=False, error="timed out", round_trips=1
        )
    return dataclasses.replace(obs, duration_s=time.monotonic() - t0)
