"""What one IKEv2 exchange observed (`vpndoctor ike --json`, schema/ike.json), and the certificate facts
the IKE, SSTP and IP-HTTPS probes share."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict

from vpndoctor.observations.revocation import RevocationObservation


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ProposalInfo(_Model):
    encryption: str
    key_bits: int | None
    prf: str
    integrity: str | None
    dh_group: str
    text: str  # strongSwan-style, e.g. "aes256-sha256-modp2048"


class CertificateInfo(_Model):
    subject: str
    issuer: str
    san_dns: list[str]
    san_ip: list[str]
    not_before: str
    not_after: str
    eku: list[str]
    key: str
    sha256: str
    trusted: bool | None  # against --ca, None when no CA was given
    chain_length: int


class DatagramInfo(_Model):
    t: float  # seconds since the probe started
    dir: Literal["out", "in"]
    port: int  # the server's port (500 or the NAT-T port)
    size: int  # UDP payload bytes, non-ESP marker included
    summary: str
    repeat: int = 1  # identical incoming datagrams in a row shown as this one row (t: the first one's)


class IkeRevocationVerdict(_Model):
    """`checks.revocation`'s verdict on `IkeObservation.revocation` at the time of the run (the CLI judges it:
    the JSON of the observation leaves out the CRL and OCSP bodies it would need to be judged again)."""

    # good; revoked; offline: cannot be checked (CRYPT_E_REVOCATION_OFFLINE); no-info: the certificate names
    # no CDP and no OCSP responder; not-checked: not tried (--no-revocation, the deadline, the budget).
    status: Literal["good", "revoked", "offline", "no-info", "not-checked"]
    reason: (
        str  # the worst certificate's reason word: good, revoked, unreachable, expired-crl, ldap-only, ...
    )
    subject: str | None  # the worst certificate (the leaf when all are good)
    why: str  # a clause: what the worst certificate's sources said
    detail: str  # the whole verdict in words, what a Windows IKEv2 client does with it included
    revoked_at: str | None = None  # ISO 8601, when revoked
    revocation_reason: str | None = None  # keyCompromise, superseded, ...
    error_codes: list[int] = []
    warnings: list[
        str
    ] = []  # a good chain's caveats (a dead OCSP responder, an intermediate fetched via AIA)


class IkeObservation(_Model):
    tool: dict[str, str]
    target: str
    address: str
    port: int
    natt_port: int
    spi_i: str  # hex, our IKE SPI
    spi_r: str  # hex, the responder's (zeros when it never answered)
    started_at: str
    duration_s: float
    reached: Literal["none", "IKE_SA_INIT", "IKE_AUTH"]
    proposal: ProposalInfo | None
    ke_group_requested: str | None  # INVALID_KE_PAYLOAD: the group the server asked for
    cookie_rounds: int
    notifies: list[str]
    fragmentation_supported: bool
    signature_hash_algorithms: list[str]
    nat_detected: bool
    nat_local: bool
    nat_remote: bool
    natt_used: bool
    vendor_ids: list[str]
    idr: str | None
    certificate: CertificateInfo | None
    auth_method: str | None
    auth_verified: bool
    auth_reason: str | None
    eap_type: str | None
    error_notify: str | None
    timeout_exchange: str | None
    peer_error: str | None
    request_fragments: int
    response_fragments: int
    round_trips: int
    datagrams: list[DatagramInfo]  # the transcript: bounded (see ike.initiator.MAX_TRANSCRIPT)
    icmp_errors: list[str]
    certificate_chain_pem: list[str]  # what the server sent in CERT payloads, end entity first
    # Politeness (see net/polite.py and the README): a stateless probe's answer, the NAT-T flows used,
    # whether the IKE_AUTH went to UDP 500 after 4500 stayed silent, whether the server may still hold a
    # half-open SA of ours, and why the probe was cut short by throttling (ours or the server's).
    stateless_answer: Literal["accepted", "refused"] | None = None
    natt_flows: int = 0
    # Each encrypted request sent on the NAT-T port: "answered" there, "elsewhere" (silent there, then
    # answered on the fallback port: the SA lives on a server the NAT-T flow did not reach), or "lost".
    natt_samples: list[Literal["answered", "elsewhere", "lost"]] = []
    queued_behind_round_trips: int = 0  # round trips of the probes that held our budget's place before
    fallback_port: int | None = None
    fallback_answered: bool = False
    left_half_open: bool = False
    budget_wait_s: float = 0.0
    throttled: str | None = None
    # Datagrams in no row of `datagrams`: past the transcript's bound (a flood, garbage, strays).
    datagrams_dropped: int = 0
    # The revocation of the chain IKE_AUTH brought (probes.revocation): None when no certificate came or
    # with --no-revocation; and its verdict (None when no certificate came; "not-checked" when skipped).
    revocation: RevocationObservation | None = None
    revocation_verdict: IkeRevocationVerdict | None = None
