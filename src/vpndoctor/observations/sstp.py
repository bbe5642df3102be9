"""What the SSTP handshake (`vpndoctor sstp`) and the IP-HTTPS probe (`vpndoctor iphttps`) observed."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict

from vpndoctor.observations.ike import CertificateInfo
from vpndoctor.observations.revocation import RevocationObservation

Stage = Literal["resolve", "connect", "handshake", "http", "sstp"]


Reached = Literal["none", "tcp", "tls", "http", "sstp"]


class ProbeModel(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class MessageInfo(ProbeModel):
    t: float  # seconds since the probe started
    dir: Literal["out", "in"]
    bytes: int
    summary: str


class TlsInfo(ProbeModel):
    version: str | None
    cipher: str | None
    cipher_bits: int | None
    client_certificate_requested: bool | None  # the server sent CertificateRequest
    certificate: CertificateInfo | None
    connect_s: float
    handshake_s: float


class NakStatus(ProbeModel):
    attrib_id: int
    status: str  # e.g. VALUE_NOT_SUPPORTED


class SstpObservation(ProbeModel):
    tool: dict[str, str]
    target: str
    address: str | None
    port: int
    sni: str | None
    started_at: str
    duration_s: float
    reached: Reached  # how far it got: TCP connected, TLS done, HTTP 200, SSTP control answer
    error_stage: Stage | None
    error: str | None  # one line, what went wrong where
    tls: TlsInfo | None
    http_status: int | None
    http_reason: str | None
    server_header: str | None
    call_connect: Literal["ack", "nak"] | None
    crypto_binding_hash_bitmask: int | None
    crypto_binding_hashes: list[str]
    nonce_bytes: int | None
    nak_status: list[NakStatus]
    server_abort_status: str | None  # the server aborted (CALL_ABORT/CALL_DISCONNECT) instead of answering
    teardown: str | None  # how the session was ended
    ppp_frames_received: int
    round_trips: int
    messages: list[MessageInfo]
    notes: list[str]
    revocation: RevocationObservation | None = None  # of the TLS chain (probes.revocation)


class IphttpsAttempt(ProbeModel):
    label: Literal["no-client-cert", "client-cert"]
    reached: Reached  # none | tcp | tls | http
    error_stage: Stage | None
    error_kind: str | None  # timeout, reset, closed, alert, tls, refused, ...
    error: str | None
    tls: TlsInfo | None
    http_status: int | None
    http_reason: str | None
    server_header: str | None
    client_certificate_requested: bool | None  # CertificateRequest seen (also when the handshake failed)
    closed_without_answer: bool  # TLS completed, then the server hung up instead of answering the POST
    round_trips: int  # sequential: TCP, TLS 1.2 (2), HTTP
    duration_s: float


class IphttpsObservation(ProbeModel):
    tool: dict[str, str]
    target: str
    host: str
    address: str | None
    port: int
    path: str
    sni: str | None
    started_at: str
    duration_s: float
    offered_ciphers: str
    max_tls_version: str
    error: str | None  # resolution failed: no attempt was made
    round_trips: int  # the longest attempt (they run concurrently)
    attempts: list[IphttpsAttempt]
    revocation: RevocationObservation | None = None  # of the TLS chain (probes.revocation)
