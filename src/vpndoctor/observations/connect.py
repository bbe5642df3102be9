"""What one `vpndoctor connect` run observed: how far an EAP user got, stage by stage, what the gateway
handed out (CHILD_SA, addresses, DNS), the IKE transcript - and, once judged (`checks.connect`), the Windows
error a client would have shown. SPIs only: never a password, an NT hash, the MSK or a key.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict

from vpndoctor.observations.ike import CertificateInfo, DatagramInfo, ProposalInfo
from vpndoctor.observations.tunnel import TunnelObservation

# Where the attempt ended - the last stage it entered: IKE_SA_INIT (no IKE SA negotiated), IKE_AUTH (the first
# IKE_AUTH: the server's identity), EAP (the user's authentication, and the MSK-keyed AUTH exchange that
# closes it), CHILD_SA (the IKE SA is up; what became of the CHILD_SA). Success is CHILD_SA and `connected`.
Stage = Literal["IKE_SA_INIT", "IKE_AUTH", "EAP", "CHILD_SA"]
STAGES: tuple[Stage, ...] = ("IKE_SA_INIT", "IKE_AUTH", "EAP", "CHILD_SA")

# Why the attempt ended where it did (None: it connected). "no-answer": the server went silent (or never
# answered); "error-notify": it answered with an error notify; "eap-failure": EAP-Failure (with or without an
# MS-CHAPv2 error code); "eap-method": the server wanted an EAP method we do not run (we sent a Nak, it gave
# up); "eap": our EAP peer refused what it was sent; "server-auth": the server's certificate AUTH did not
# verify (or it sent none); "server-untrusted": its certificate does not chain to a trusted CA; "no-eap": the
# server started no EAP; "responder-auth": its AUTH after EAP did not verify; "child-sa": the IKE SA came up
# without a usable CHILD_SA (none made, or one we did not ask for); "protocol": an answer the exchange does
# not allow; "throttled": our politeness budget had no place for the attempt.
Cause = Literal[
    "no-answer",
    "error-notify",
    "eap-failure",
    "eap-method",
    "eap",
    "server-auth",
    "server-untrusted",
    "no-eap",
    "responder-auth",
    "child-sa",
    "protocol",
    "throttled",
]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid")


class StageInfo(_Model):
    stage: Stage
    result: Literal["ok", "failed", "not-reached", "skipped"]  # skipped: EAP, for a device tunnel
    t: float | None  # seconds since the probe started, when the stage ended (its last answer)
    detail: str | None = None


class WindowsErrorInfo(_Model):
    """The error a Windows client would show for this failure, from vpndoctor's error catalogue."""

    code: int
    name: str | None  # e.g. ERROR_AUTHENTICATION_FAILURE
    meaning: str | None  # the catalogue's meaning; None when the catalogue has no entry for the code
    why: str  # why this failure maps to this code


class ChildSaInfo(_Model):
    esp_proposal: str  # strongSwan style, e.g. "aes256gcm16" or "aes256-sha1"
    encryption: str
    key_bits: int | None
    integrity: str | None
    dh_group: str | None  # PFS for rekeying, when the server picked one
    esn: bool
    ts_i: list[str]  # the traffic selectors as narrowed by the server, e.g. "203.0.113.130/32"
    ts_r: list[str]
    spi_i: str  # hex, our inbound SPI (random)
    spi_r: str  # hex, the server's inbound SPI


class ConfigInfo(_Model):
    """The configuration payload (CFG_REPLY) the server sent."""

    ipv4: list[str]
    ipv6: list[str]  # with the prefix length the server gave, e.g. "2001:db8:ff01::1/128"
    dns: list[str]  # IPv4 and IPv6 DNS servers
    dns_suffix: list[str]  # INTERNAL_DNS_DOMAIN (RFC 8598)
    subnets: list[str]  # INTERNAL_IP4_SUBNET / INTERNAL_IP6_SUBNET (split tunnel)
    other: list[str]  # attributes we do not interpret, by name


class EapTlsInfo(_Model):
    """EAP-TLS or PEAP: the TLS handshake with the EAP server (the RADIUS server behind the gateway)."""

    server_certificate: str | None  # its subject
    server_issuer: str | None
    server_not_after: str | None
    server_verified: bool | None  # chained to --ca (and named as --eap-server-name asks); None: never seen
    server_reason: str | None  # why we refused it
    server_expired: bool = False
    client_certificate: str | None  # the subject of ours (EAP-TLS, PEAP-TLS)
    tls_version: str | None
    cipher: str | None
    alert_sent: str | None  # the TLS alert we ended the handshake with (we refused the server)
    alert_received: str | None  # the alert the server ended it with (it refused us, e.g. unknown_ca)
    # EAP-TLS: the server ended the handshake right after our certificate (alert, or EAP-Failure where its
    # Finished was due): it refused the certificate.
    client_certificate_refused: bool = False
    peap_inner: str | None = None  # PEAP's inner method (MSCHAPV2, TLS)
    peap_result: Literal["success", "failure"] | None = None  # the server's Result TLV
    # PEAP's [MS-PEAP] Crypto-Binding TLV: "verified" (sent by the server, its MAC matched, ours answered),
    # "failed" (its MAC did not match), "not-requested" (a Result TLV without one: FreeRADIUS); None: none
    crypto_binding: Literal["verified", "failed", "not-requested"] | None = None


class ConnectObservation(_Model):
    tool: dict[str, str]
    target: str
    address: str
    port: int
    natt_port: int
    user: str  # the EAP identity and MS-CHAPv2 user name (never the password)
    identity: str  # IDi
    spi_i: str
    spi_r: str
    started_at: str
    duration_s: float
    stage_reached: Stage
    connected: bool  # the CHILD_SA was established
    cause: Cause | None  # why it ended at `stage_reached` (None when connected)
    failure: str | None  # the same in words, one line
    stages: list[StageInfo]
    proposal: ProposalInfo | None  # the IKE SA's
    nat_detected: bool
    natt_used: bool
    idr: str | None
    certificate: CertificateInfo | None
    server_auth_method: str | None
    server_auth_verified: bool  # the server's certificate AUTH in the first IKE_AUTH answer
    server_auth_reason: str | None
    eap_requests: list[str]  # the EAP Request types the server sent, in order (IDENTITY, MSCHAPV2, ...)
    eap_method: str | None  # the authentication method the server asked for
    eap_nak: list[str]  # methods we refused (Legacy Nak naming MSCHAPV2)
    eap_notifications: list[str]
    eap_server_message: str | None  # MS-CHAPv2 Success/Failure M= text
    # The longest the server took to answer one of our EAP messages (s): a gateway waiting for its RADIUS
    # server answers late (strongSwan gives up after about 14 s) or never.
    eap_wait_s: float | None
    auth_result: Literal["success", "failure"] | None  # of EAP; None: EAP never finished
    mschapv2_error: int | None  # the E= of an MS-CHAPv2 Failure request
    mschapv2_error_name: str | None
    ike_sa_established: bool  # the server sent its AUTH after EAP
    responder_auth_verified: bool | None  # that AUTH, keyed with our MSK; None: never received
    esp_proposals_offered: list[str]
    child_sa: ChildSaInfo | None
    config: ConfigInfo | None
    error_notify: str | None
    timeout_exchange: str | None
    peer_error: str | None
    keys_out: str | None  # where the IKE SA keys were written (--keys-out), when they were
    round_trips: int
    request_fragments: int
    response_fragments: int
    datagrams: list[DatagramInfo]  # the transcript: bounded (see ike.initiator.MAX_TRANSCRIPT)
    datagrams_dropped: int
    icmp_errors: list[str]
    left_sa_on_server: bool  # the server may still hold an SA of ours (its end was never confirmed)
    budget_wait_s: float = 0.0
    throttled: str | None = None
    # "machine-certificate": a device tunnel (--machine-cert): IKE certificate AUTH, no EAP; `user` is empty,
    # `identity` the certificate's subject (sent as ID_DER_ASN1_DN).
    # "eap-tls", "peap-mschapv2", "peap-tls": the user tunnel's EAP method (--eap); `eap_tls` tells its TLS.
    auth: Literal["eap-mschapv2", "eap-tls", "peap-mschapv2", "peap-tls", "machine-certificate"] = (
        "eap-mschapv2"
    )
    eap_tls: EapTlsInfo | None = None
    machine_auth_method: str | None = None  # the AUTH method we signed with (RSA_SIG, DIGITAL_SIGNATURE)
    # The judgement (checks.connect.connect_report): None in a raw observation.
    windows_error: WindowsErrorInfo | None = None
    # Traffic through the held CHILD_SA (--ping, --resolve, --tcp, --mtu, --rekey); None when none was asked.
    tunnel: TunnelObservation | None = None
