"""What a TLS handshake (diagnose's TCP 443 check) and the raw-hello TLS audit (`vpndoctor tls`) observed."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from cryptography import x509

from vpndoctor.observations.revocation import RevocationObservation
from vpndoctor.tls.audit import AuditFacts, JobResult


@dataclass(frozen=True)
class TlsObservation:
    address: str
    port: int
    connected: bool
    handshake: bool
    version: str | None = None
    cipher: str | None = None
    certificate_der: bytes | None = None
    error: str | None = None
    connect_s: float | None = None
    round_trips: int = 0
    duration_s: float = 0.0


# A first flight with a long chain is ~10 KB. Past this cap a hello's answer is not read further: the job
# ends OVERSIZED (or, TLS 1.3, undecrypted) and the audit is incomplete (`AuditObservation.oversized`).
MAX_ANSWER_BYTES = 128 * 1024


@dataclass(frozen=True)
class OversizedAnswer:
    """One connection whose answer was too large to read whole: what it would have told is missing."""

    job_id: int
    version: str  # the version the job asked for (the highest one offered, for a TLS stack job)
    limited_by: Literal["cap", "ssl"]  # our MAX_ANSWER_BYTES, or the ssl module's (OpenSSL's) own limit
    limit_bytes: int | None  # None: the ssl module does not say
    bytes_read: int
    message: str | None = None  # the handshake message cut short, e.g. "certificate" (TLS <= 1.2 only)
    announced_bytes: int | None = None  # the length that message announced


@dataclass
class AuditObservation:
    target: str
    host: str
    address: str
    port: int
    sni: str | None
    started_at: str
    duration_s: float
    # Not in repr: asyncio formats the repr of the task's result when asyncio.run() ends (Python 3.11), and
    # a full repr of hundreds of results with certificates in them cost more memory than the audit itself.
    facts: AuditFacts = field(repr=False)
    results: list[JobResult] = field(repr=False)
    anchors: list[x509.Certificate] = field(repr=False)
    anchor_source: str
    connect_error: str | None  # set when TCP could not connect at all (the endpoint is unreachable)
    client_cert_given: bool
    connections: int
    max_concurrent: int
    round_trip_s: float | None  # smallest TCP connect time seen
    oversized: list[OversizedAnswer] = field(default_factory=list)
    answer_cap_bytes: int = MAX_ANSWER_BYTES
    revocation: RevocationObservation | None = None  # of the chain the audit obtained (probes.revocation)
