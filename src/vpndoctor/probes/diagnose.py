"""Plan and run every probe `vpndoctor diagnose` needs, concurrently, and hand back the observations.

Each probe is one independent exchange with its own sockets; they all start at once (a fixed, bounded
number per target), so the critical path is DNS plus the longest single exchange.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from cryptography import x509

from vpndoctor.probes.dns import DnsObservation, resolve_all
from vpndoctor.probes.ike import IkeObservation, run_ike_probe
from vpndoctor.probes.iphttps import IphttpsObservation, run_iphttps_probe
from vpndoctor.probes.sstp import SstpObservation, run_sstp_probe
from vpndoctor.probes.tls import TlsObservation, tls_handshake
from vpndoctor.trust import trust_anchors

# Per-service scheduling splits one attempt with probability 1/2 on two backends: 12 attempts all landing
# together by chance happens once in 2**12 runs.
AFFINITY_ATTEMPTS = 12
NATT_ATTEMPTS = 2
PADDING_BYTES = 2600  # IKE_SA_INIT well beyond a 1500-byte MTU: the kernel must fragment it

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
    ike_affinity: list[IkeObservation] = field(default_factory=list)
    proposals: dict[str, IkeObservation] = field(default_factory=dict)
    profile: IkeObservation | None = None
    anchors: list[x509.Certificate] = field(default_factory=list)
    anchor_source: str = "--ca"
    duration_s: float = 0.0
    round_trips: int = 0


Progress = Callable[[str], None]


async def run_diagnose(req: DiagnoseRequest, progress: Progress | None = None) -> DiagnoseObservations:
    say = progress or (lambda _msg: None)
    t0 = time.monotonic()
    obs = DiagnoseObservations(request=req, started_at=datetime.now(UTC).isoformat())
    obs.anchors, obs.anchor_source = trust_anchors(req.ca_files)
    say("resolving " + req.name)
    obs.dns = await resolve_all(req.name, req.resolvers, timeout_s=min(3.0, req.timeout_s))
    dns_rts = 1
    if req.address:
        obs.address, obs.address_source = req.address, "argument"
    else:
        for answer in obs.dns.answers:
            if answer.addresses:
                v4 = [a for a in answer.addresses if ":" not in a]
                obs.address, obs.address_source = (v4 or list(answer.addresses))[0], "dns"
                break
    if obs.address is None:
        obs.duration_s = time.monotonic() - t0
        obs.round_trips = dns_rts
        return obs

    address = obs.address
    # The whole diagnosis answers within --timeout-s: the exchanges get what DNS left of it.
    # A small margin for judging and cleanup after the last exchange gives up.
    remaining = max(1.0, req.timeout_s - 0.1 - (time.monotonic() - t0))
    deadline_at = time.monotonic() + remaining
    common: dict[str, Any] = {
        "address": address,
        "ca_files": req.ca_files,
        "timeout_s": remaining,
        "deadline_at": deadline_at,
    }
    jobs: list[tuple[str, Coroutine[Any, Any, Any]]] = []
    if "sstp" in req.protocols:
        jobs.append(
            (
                "tls",
                tls_handshake(
                    address, 443, server_name=req.name, timeout_s=remaining, deadline_at=deadline_at
                ),
            )
        )
    if "sstp" in req.protocols:
        jobs.append(
            (
                "sstp",
                run_sstp_probe(
                    req.name,
                    address=address,
                    anchors=obs.anchors,
                    timeout_s=remaining,
                    deadline_at=deadline_at,
                ),
            )
        )
    if "iphttps" in req.protocols:
        jobs.append(
            (
                "iphttps",
                run_iphttps_probe(
                    f"https://{req.name}/IPHTTPS",
                    address=address,
                    anchors=obs.anchors,
                    timeout_s=remaining,
                    deadline_at=deadline_at,
                ),
            )
        )
    if "ikev2" in req.protocols:
        jobs.append(("ike_main", run_ike_probe(req.name, **common)))
        jobs.append(("ike_nofrag", run_ike_probe(req.name, fragmentation=False, stop_after="auth", **common)))
        jobs.append(
            (
                "ike_padded",
                run_ike_probe(req.name, sa_init_padding_bytes=PADDING_BYTES, stop_after="sa-init", **common),
            )
        )
        for i in range(NATT_ATTEMPTS):
            jobs.append(
                (f"ike_natt:{i}", run_ike_probe(req.name, start_on_natt=True, stop_after="sa-init", **common))
            )
        for i in range(AFFINITY_ATTEMPTS):
            jobs.append(
                (
                    f"ike_affinity:{i}",
                    run_ike_probe(req.name, force_nat=True, send_certreq=False, stop_after="auth", **common),
                )
            )
        for label, proposal, _ in PROPOSAL_CATALOGUE:
            jobs.append(
                (
                    f"proposal:{label}",
                    run_ike_probe(req.name, proposals=[proposal], stop_after="sa-init", **common),
                )
            )
        if req.profile_proposal:
            jobs.append(
                (
                    "profile",
                    run_ike_probe(req.name, proposals=[req.profile_proposal], stop_after="sa-init", **common),
                )
            )
    say(f"probing {address}: {len(jobs)} exchanges at once")
    results = await asyncio.gather(*(job for _, job in jobs))
    longest = 0
    for (key, _), result in zip(jobs, results, strict=True):
        longest = max(longest, result.round_trips)
        if key == "tls":
            obs.tls = result
        elif key.startswith("ike_natt:"):
            obs.ike_natt.append(result)
        elif key.startswith("ike_affinity:"):
            obs.ike_affinity.append(result)
        elif key.startswith("proposal:"):
            obs.proposals[key.split(":", 1)[1]] = result
        else:
            setattr(obs, key, result)
    obs.round_trips = dns_rts + longest
    obs.duration_s = time.monotonic() - t0
    return obs
