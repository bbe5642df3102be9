"""Synthetic SSTP / IP-HTTPS observations for the pure checks (no sockets)."""

from __future__ import annotations

from typing import Any

from vpndoctor.observations.sstp import IphttpsAttempt, IphttpsObservation, SstpObservation, TlsInfo


def tls_info(
    cipher: str = "TLS_AES_256_GCM_SHA384", version: str = "TLSv1.3", requested: bool = False
) -> TlsInfo:
    return TlsInfo(
        version=version,
        cipher=cipher,
        cipher_bits=256,
        client_certificate_requested=requested,
        certificate=None,
        connect_s=0.001,
        handshake_s=0.01,
    )


def sstp_obs(outcome: str = "ack", **kw: Any) -> SstpObservation:
    base: dict[str, Any] = {
        "tool": {"name": "vpndoctor", "version": "t"},
        "target": "vpn.test",
        "address": "203.0.113.10",
        "port": 443,
        "sni": "vpn.test",
        "started_at": "now",
        "duration_s": 0.05,
        "reached": "sstp",
        "error_stage": None,
        "error": None,
        "tls": tls_info(),
        "http_status": 200,
        "http_reason": "OK",
        "server_header": "Microsoft-HTTPAPI/2.0",
        "call_connect": "ack",
        "crypto_binding_hash_bitmask": 3,
        "crypto_binding_hashes": ["SHA1", "SHA256"],
        "nonce_bytes": 32,
        "nak_status": [],
        "server_abort_status": None,
        "teardown": "CALL_ABORT sent; the server answered CALL_ABORT",
        "ppp_frames_received": 0,
        "round_trips": 4,
        "messages": [],
        "notes": [],
    }
    if outcome == "blocked":
        base.update(
            reached="none",
            error_stage="connect",
            error="TCP connect to 203.0.113.10 port 443: timed out",
            tls=None,
            http_status=None,
            http_reason=None,
            server_header=None,
            call_connect=None,
            crypto_binding_hash_bitmask=None,
            crypto_binding_hashes=[],
            nonce_bytes=None,
            teardown=None,
        )
    elif outcome == "http404":
        base.update(
            reached="tls",
            error_stage="http",
            error="the server answered SSTP_DUPLEX_POST with HTTP 404 Not Found",
            http_status=404,
            http_reason="Not Found",
            call_connect=None,
            crypto_binding_hash_bitmask=None,
            crypto_binding_hashes=[],
            nonce_bytes=None,
            teardown=None,
        )
    elif outcome == "nak":
        base.update(
            call_connect="nak",
            crypto_binding_hash_bitmask=None,
            crypto_binding_hashes=[],
            nonce_bytes=None,
            nak_status=[{"attrib_id": 1, "status": "VALUE_NOT_SUPPORTED"}],
        )
    base.update(kw)
    return SstpObservation(**base)


def attempt(label: str = "no-client-cert", **kw: Any) -> IphttpsAttempt:
    base: dict[str, Any] = {
        "label": label,
        "reached": "http",
        "error_stage": None,
        "error_kind": None,
        "error": None,
        "tls": tls_info("NULL-SHA", "TLSv1.2"),
        "http_status": 200,
        "http_reason": "OK",
        "server_header": "Microsoft-HTTPAPI/2.0",
        "client_certificate_requested": False,
        "closed_without_answer": False,
        "round_trips": 4,
        "duration_s": 0.01,
    }
    base.update(kw)
    return IphttpsAttempt(**base)


def refused(
    label: str = "no-client-cert", how: str = "alert", requested: bool | None = True
) -> IphttpsAttempt:
    if how == "alert":
        return attempt(
            label,
            reached="tcp",
            error_stage="handshake",
            error_kind="alert",
            error="TLS handshake: SSLV3_ALERT_HANDSHAKE_FAILURE",
            tls=None,
            http_status=None,
            http_reason=None,
            server_header=None,
            client_certificate_requested=requested,
        )
    return attempt(
        label,
        reached="tls",
        error_stage="http",
        error_kind="closed",
        error="the server closed the connection without answering the POST",
        tls=tls_info("NULL-SHA", "TLSv1.2", requested=bool(requested)),
        http_status=None,
        http_reason=None,
        server_header=None,
        client_certificate_requested=requested,
        closed_without_answer=True,
    )


def iphttps_obs(*attempts: IphttpsAttempt, **kw: Any) -> IphttpsObservation:
    base: dict[str, Any] = {
        "tool": {"name": "vpndoctor", "version": "t"},
        "target": "https://da.test/IPHTTPS",
        "host": "da.test",
        "address": "203.0.113.10",
        "port": 443,
        "path": "/IPHTTPS",
        "sni": "da.test",
        "started_at": "now",
        "duration_s": 0.05,
        "offered_ciphers": "NULL-SHA",
        "max_tls_version": "TLSv1.2",
        "error": None,
        "round_trips": 4,
        "attempts": list(attempts) or [attempt()],
    }
    base.update(kw)
    return IphttpsObservation(**base)
