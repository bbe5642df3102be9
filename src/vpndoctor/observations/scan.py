"""One line of `vpndoctor scan`'s JSON Lines output (schema/scan.json): what one target answered.

`probe: ike` records come from the stateless IKE_SA_INIT (probes/scan.py) and, with `--details`, a full one
that is ended at once; `probe: diagnose` records carry the verdict and finding statuses of a diagnosis.
A field the probe could not learn is null, never a guess.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict

# accepted: INVALID_KE_PAYLOAD naming one of our groups (our proposals are acceptable); refused:
# NO_PROPOSAL_CHOSEN; error: another error notify; answered: a full IKE_SA_INIT answer (--details, or a
# server that took our stateless KE group); no-answer: silence after every retransmission; throttled: a
# COOKIE and then silence (the gateway's DoS protection sheds us: alive, not down); cookie: a COOKIE
# with --cookie-rounds 0 (alive, an IKEv2 responder; nothing more asked); unresolved:
# the name did not resolve; local-error: our own socket failed (no route...); diagnosed: probe diagnose.
ScanResult = Literal[
    "accepted",
    "refused",
    "error",
    "answered",
    "no-answer",
    "throttled",
    "cookie",
    "unresolved",
    "local-error",
    "diagnosed",
]

# The record's fields in CSV column order (lists joined with ";").
CSV_FIELDS = (
    "target",
    "address",
    "port",
    "probe",
    "result",
    "responded",
    "error_notify",
    "ke_group_requested",
    "cookie",
    "proposal",
    "fragmentation_supported",
    "nat_detected",
    "vendor_ids",
    "rtt_ms",
    "datagrams_sent",
    "left_half_open",
    "verdict",
    "failing",
    "error",
    "started_at",
    "duration_s",
)


class ScanFinding(BaseModel):
    model_config = ConfigDict(extra="forbid")

    id: str
    status: str


class ScanRecord(BaseModel):
    model_config = ConfigDict(extra="forbid")

    target: str  # as given (a name, or an address from the command line, a file or a CIDR)
    address: str | None  # what was probed; null when the name did not resolve
    port: int
    probe: Literal["ike", "diagnose"]
    result: ScanResult
    responded: bool  # any IKE answer at all (for diagnose: the IKE_SA_INIT was answered)
    error_notify: str | None = None  # e.g. NO_PROPOSAL_CHOSEN, INVALID_KE_PAYLOAD (a group we never offered)
    ke_group_requested: str | None = (
        None  # the DH group of the proposal the server chose (INVALID_KE_PAYLOAD)
    )
    cookie: bool = False  # the server demanded a COOKIE (RFC 7296 2.6) before answering
    proposal: str | None = None  # the chosen proposal, strongSwan style (a full answer only: --details)
    fragmentation_supported: bool | None = None  # IKEV2_FRAGMENTATION_SUPPORTED (a full answer only)
    nat_detected: bool | None = None  # NAT detection hashes disagree (a full answer only)
    vendor_ids: list[str] = []
    rtt_ms: float | None = None  # the first answer's round trip, when our request went out once (Karn)
    datagrams_sent: int = 0  # by this target's probe, retransmissions included (diagnose: IKE datagrams)
    left_half_open: bool = False  # as far as we can tell the server still holds a half-open SA of ours
    verdict: str | None = None  # probe diagnose: healthy | problems
    failing: list[str] = []  # probe diagnose: failing finding ids, root causes first
    findings: list[ScanFinding] = []  # probe diagnose: every finding's id and status
    error: str | None = None  # unresolved / local-error: why, in one line
    started_at: str
    duration_s: float
