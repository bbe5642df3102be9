"""Everything one `vpndoctor diagnose` run observed, and the constants its checks share with its plan."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from cryptography import x509

from vpndoctor.observations.connect import ConnectObservation
from vpndoctor.observations.dns import DnsObservation
from vpndoctor.observations.ike import IkeObservation
from vpndoctor.observations.revocation import RevocationObservation
from vpndoctor.observations.sstp import IphttpsObservation, SstpObservation
from vpndoctor.observations.tls import TlsObservation

# Per-service scheduling sends each new flow to either of two backends with probability 1/2: 8 samples that
# all agree by chance happen once in 2**8 runs. Fewer answered samples are no verdict.
AFFINITY_SAMPLES_NEEDED = 8


# (label, proposal, strength) — what `ike.proposals.strength` asks the server about.
PROPOSAL_CATALOGUE = (
    ("windows-legacy-3des-sha1-dh2", "3des-sha1-modp1024", "weak"),
    ("aes256-sha1-dh2", "aes256-sha1-modp1024", "weak"),
    ("aovpn-baseline-aes128-sha256-dh14", "aes128-sha256-modp2048", "strong"),
    ("aes256-sha256-dh14", "aes256-sha256-modp2048", "strong"),
    ("gcm128-ecp256", "aes128gcm16-prfsha256-ecp256", "strong"),
    ("gcm256-ecp384", "aes256gcm16-prfsha384-ecp384", "strong"),
)


@dataclass
class DiagnoseRequest:
    name: str
    address: str | None = None
    resolvers: list[str] = field(default_factory=list)
    expect_ips: list[str] = field(default_factory=list)
    ca_files: list[str] = field(default_factory=list)
    protocols: tuple[str, ...] = ("ikev2", "sstp")
    profile_proposal: str | None = None
    timeout_s: float = 5.0
    max_half_open: int = 2  # the politeness budget (net/polite.py): our IKE SAs on the gateway at once
    rate_pps: float = 100.0  # and IKE datagrams per second


@dataclass
class DiagnoseObservations:
    request: DiagnoseRequest
    started_at: str
    dns: DnsObservation | None = None
    address: str | None = None
    address_source: str | None = None  # "argument" | "dns"
    tls: TlsObservation | None = None
    sstp: SstpObservation | None = None
    iphttps: IphttpsObservation | None = None
    ike_main: IkeObservation | None = None
    ike_nofrag: IkeObservation | None = None
    ike_padded: IkeObservation | None = None
    ike_natt: list[IkeObservation] = field(default_factory=list)
    ike_natt_control: IkeObservation | None = None  # a stateless IKE_SA_INIT on 500 after 4500 was silent
    ike_affinity: list[IkeObservation] = field(default_factory=list)
    politeness: dict[str, Any] = field(default_factory=dict)
    proposals: dict[str, IkeObservation] = field(default_factory=dict)
    profile: IkeObservation | None = None
    anchors: list[x509.Certificate] = field(default_factory=list)
    # The revocation of the IKE certificate chain (probes.revocation); None when it was not checked.
    revocation: RevocationObservation | None = None
    anchor_source: str = "--ca"
    # With credentials (diagnose --user or --machine-cert): one `connect` attempt after the IKE checks, to the
    # CHILD_SA (probes.connect); None without credentials, or when IKE_SA_INIT did not work.
    connect: ConnectObservation | None = None
    duration_s: float = 0.0
    round_trips: int = 0


def samples_of(observations: list[IkeObservation]) -> list[str]:
    return [s for o in observations for s in o.natt_samples]
