"""What the revocation step (`probes.revocation`) observed of a server certificate chain: per certificate the
CRL distribution points, AIA (OCSP, CA issuers) and Freshest CRL URLs it names, the issuer that was used
(sent in the chain, fetched through AIA caIssuers, or a trust anchor), and per URL what was fetched: HTTP
status, size, time, error. `checks.revocation` verifies the bodies (CRL and OCSP signatures, dates, serials).

The bodies (CRLs up to 1 MiB) and certificates travel with the observation for the checks but are left out
of JSON (`exclude=True`, and out of the schemas): the JSON says what was fetched, not the bytes.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field
from pydantic.json_schema import SkipJsonSchema

__all__ = [
    "CertificateRevocation",
    "FetchOutcome",
    "FetchPurpose",
    "IssuerSource",
    "RevocationFetch",
    "RevocationObservation",
]

FetchPurpose = Literal["crl", "delta-crl", "ca-issuers", "ocsp"]
# fetched: a response was read whole (any HTTP status, see http_status); failed: the fetch was tried and
# failed (DNS, refused, timeout, too large, ...); not-fetched: never tried (LDAP or another scheme, the
# run's budget or deadline, no issuer to build an OCSP request from).
FetchOutcome = Literal["fetched", "failed", "not-fetched"]
# Where the issuer of a certificate came from: the chain the server sent, an AIA caIssuers fetch, the trust
# anchors; none: not found anywhere.
IssuerSource = Literal["chain", "aia", "anchors", "none"]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class RevocationFetch(_Model):
    purpose: FetchPurpose
    url: str
    outcome: FetchOutcome
    http_status: int | None = None
    content_type: str | None = None
    size_bytes: int = 0
    elapsed_s: float = 0.0
    error: str | None = None  # one line, for "failed" and "not-fetched"
    # dns, refused, unreachable, timeout, reset, protocol, too-large, redirect, budget, deadline, scheme,
    # ldap, no-issuer
    error_kind: str | None = None
    redirects: int = 0
    # For a delta CRL: the base CRL URL that named it (None: named by the certificate itself).
    base_url: str | None = None
    body: SkipJsonSchema[bytes | None] = Field(default=None, exclude=True, repr=False)


class CertificateRevocation(_Model):
    """One certificate of the chain whose revocation a client checks (the leaf, then each CA up to, not
    including, the root or trust anchor)."""

    position: int  # 0: the server's own certificate, 1: its issuer, ...
    subject: str  # RFC 4514
    issuer: str
    serial: str  # hex
    sha256: str
    crl_urls: list[str]  # CRL distribution point URIs, every scheme (http, ldap, ...)
    freshest_crl_urls: list[str]  # the certificate's Freshest CRL (delta CRL) URIs
    ocsp_urls: list[str]  # AIA OCSP
    ca_issuer_urls: list[str]  # AIA caIssuers
    issuer_source: IssuerSource
    issuer_subject: str | None
    fetches: list[RevocationFetch]
    certificate_der: SkipJsonSchema[bytes | None] = Field(default=None, exclude=True, repr=False)
    issuer_der: SkipJsonSchema[bytes | None] = Field(default=None, exclude=True, repr=False)


class RevocationObservation(_Model):
    certificates: list[CertificateRevocation]  # leaf first
    chain_sent: int  # certificates the server sent (leaf included)
    # A CA certificate the server did not send was fetched through AIA caIssuers to go on.
    intermediate_from_aia: bool
    max_fetches: int  # the run's budget of fetches
    fetches_used: int
    duration_s: float
    notes: list[str] = []
