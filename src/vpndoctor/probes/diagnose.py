"""Plan and run every probe `vpndoctor diagnose` needs, politely, and hand back the observations.

A diagnosis is a guest on the gateway (see net/polite.py): it holds at most `max_half_open` IKE SAs there
at once and ends each one as soon as it has its answer. What can be asked without leaving state is asked
statelessly and all at once (proposal acceptability, UDP 4500, the IP-fragmented IKE_SA_INIT: a KE payload
of another group draws INVALID_KE_PAYLOAD or NO_PROPOSAL_CHOSEN and no SA). What needs an SA (the
certificate, the unfragmented IKE_AUTH, load-balancer affinity samples) queues for a place in the budget.
The critical path is DNS plus the longest chain of probes that waited for each other's places.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from vpndoctor.net.polite import Politeness
from vpndoctor.observations.connect import ConnectObservation
from vpndoctor.observations.diagnose import (
    AFFINITY_SAMPLES_NEEDED,
    PROPOSAL_CATALOGUE,
    DiagnoseObservations,
    DiagnoseRequest,
    samples_of,
)
from vpndoctor.observations.ike import IkeObservation
from vpndoctor.observations.revocation import RevocationObservation
from vpndoctor.probes.connect import run_connect_probe
from vpndoctor.probes.dns import resolve_all
from vpndoctor.probes.eap_methods import ClientCertificate
from vpndoctor.probes.ike import run_ike_probe
from vpndoctor.probes.iphttps import run_iphttps_probe
from vpndoctor.probes.revocation import check_revocation
from vpndoctor.probes.sstp import run_sstp_probe
from vpndoctor.probes.tls import tls_handshake
from vpndoctor.probes.tunnel import TunnelPlan, tunnel_runner
from vpndoctor.trust import trust_anchors

AFFINITY_MAX_SAS = 10  # SAs opened only for sampling (each gives one sample), beyond the main two
PADDING_BYTES = 2600  # IKE_SA_INIT well beyond a 1500-byte MTU: the kernel must fragment it


Progress = Callable[[str], None]


@dataclass(frozen=True)
class Credentials:
    """What `diagnose --user` (an EAP user tunnel) or `--machine-cert` (a device tunnel) authenticates with.
    Never in an observation: the connect probe keeps only the NT hash inside its MS-CHAPv2 method."""

    user: str = ""
    password: str = field(default="", repr=False)
    machine_certificates: tuple[bytes, ...] = field(default=(), repr=False)
    machine_key: rsa.RSAPrivateKey | None = field(default=None, repr=False)
    eap: str = "mschapv2"  # --eap: mschapv2, tls, peap-mschapv2, peap-tls
    client_certificate: ClientCertificate | None = field(default=None, repr=False)
    eap_ca_files: list[str] = field(default_factory=list)
    eap_server_names: tuple[str, ...] = ()


async def run_diagnose(
    req: DiagnoseRequest,
    progress: Progress | None = None,
    credentials: Credentials | None = None,
    politeness: Politeness | None = None,
) -> DiagnoseObservations:
    """`politeness`: a budget shared with other runs (the exporter keeps one for its lifetime); by default
    one for this run, from the request's max_half_open and rate_pps."""
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
    polite = politeness or Politeness(max_half_open=req.max_half_open, rate_pps=req.rate_pps)
    common["politeness"] = polite
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
                    revocation=False,  # the gateway's certificate is checked once, from IKE (cert.revocation)
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
        jobs.append(("ike", _ike_probes(req, obs, common, credentials, say)))
    say(f"probing {address}: {len(jobs)} probe groups at once, at most {req.max_half_open} IKE SAs half-open")
    results = await asyncio.gather(*(job for _, job in jobs))
    longest = 0
    for (key, _), result in zip(jobs, results, strict=True):
        if key == "ike":
            longest = max(longest, result)
            continue
        longest = max(longest, result.round_trips)
        setattr(obs, key, result)
    if "ikev2" in req.protocols:
        obs.politeness = polite.stats(address)
    obs.round_trips = dns_rts + longest
    obs.duration_s = time.monotonic() - t0
    return obs


def _depth(o: IkeObservation) -> int:
    return o.queued_behind_round_trips + o.round_trips


def _answered(o: IkeObservation) -> bool:
    return (
        o.reached != "none"
        or o.stateless_answer is not None
        or o.error_notify is not None
        or o.ke_group_requested is not None
        or o.cookie_rounds > 0
    )


# Which catalogue questions also carry a path question (see _ike_probes).
PADDED_LABEL = "aovpn-baseline-aes128-sha256-dh14"
NATT_LABELS = ("aes256-sha256-dh14", "gcm128-ecp256")
PRIORITY_MAIN, PRIORITY_STATELESS, PRIORITY_SAMPLES = 0, 1, 2


async def _ike_probes(
    req: DiagnoseRequest,
    obs: DiagnoseObservations,
    common: dict[str, Any],
    credentials: Credentials | None = None,
    say: Progress = lambda _msg: None,
) -> int:
    """Every IKE probe, within the politeness budget; fills `obs`, returns the critical path's round trips.

    Two SAs go as far as the server lets an anonymous EAP client (the certificate, EAP, and three affinity
    samples each: every encrypted request leaves from a new UDP 4500 source port); one of them without
    IKEv2 fragmentation. The proposal catalogue is asked statelessly, and three of its questions also
    carry a path question: one is padded so that the kernel must IP-fragment it, two go straight to
    UDP 4500. What the path hides is asked again plainly on UDP 500, which doubles as the control that
    tells a blocked port from a gateway that ignores us. Then as many one-sample SAs as still needed.
    With `credentials`, once all that is done and only if IKE_SA_INIT worked: one connect attempt (all the
    way to the CHILD_SA, then a Delete) within the same budget.
    """
    lb: dict[str, Any] = {
        "force_nat": True,
        "fresh_natt_flows": True,
        "fallback_port": 500,
        "retransmit_tries": 2,
        "adaptive_rto": True,
    }
    stateful = {
        "ike_main": run_ike_probe(req.name, stop_after="eap", priority=PRIORITY_MAIN, **lb, **common),
        # Without IKEv2 fragmentation the certificate-bearing answer is one big, IP-fragmented datagram.
        "ike_nofrag": run_ike_probe(
            req.name, fragmentation=False, stop_after="eap", priority=PRIORITY_MAIN, **lb, **common
        ),
    }
    main_tasks = {key: asyncio.ensure_future(coro) for key, coro in stateful.items()}
    # The certificate's CRLs and OCSP answers are fetched as soon as it is known, beside the other probes.
    revocation = asyncio.ensure_future(_revocation_of(main_tasks["ike_main"], obs, common["deadline_at"]))

    def ask(proposal: str, **extra: Any) -> Coroutine[Any, Any, IkeObservation]:
        return run_ike_probe(
            req.name,
            proposals=[proposal],
            stateless=True,
            priority=PRIORITY_STATELESS,
            retransmit_tries=3,
            **extra,
            **common,
        )

    catalogue = {label: proposal for label, proposal, _ in PROPOSAL_CATALOGUE}
    questions: dict[str, Coroutine[Any, Any, IkeObservation]] = {}
    for label, proposal in catalogue.items():
        if label == PADDED_LABEL:
            questions[label] = ask(proposal, sa_init_padding_bytes=PADDING_BYTES)
        elif label in NATT_LABELS:
            questions[label] = ask(proposal, start_on_natt=True)
        else:
            questions[label] = ask(proposal)
    if req.profile_proposal:
        questions["profile"] = ask(req.profile_proposal)
    sampler = asyncio.ensure_future(_affinity_samples(req, common, list(main_tasks.values())))
    labels = list(questions)
    first = dict(zip(labels, await asyncio.gather(*questions.values()), strict=True))
    again: dict[str, Coroutine[Any, Any, IkeObservation]] = {}
    padded = first[PADDED_LABEL]
    if not _answered(padded):
        again[PADDED_LABEL] = ask(catalogue[PADDED_LABEL])
    natt = [first[label] for label in NATT_LABELS]
    for label in NATT_LABELS:
        if not _answered(first[label]):
            again[label] = ask(catalogue[label])
    second = dict(zip(again, await asyncio.gather(*again.values()), strict=True))
    longest = max(_depth(o) for o in [*first.values(), *second.values()])
    obs.ike_padded, obs.ike_natt = padded, natt
    if not any(_answered(o) for o in natt):
        obs.ike_natt_control = second.get(NATT_LABELS[0])
    for label in catalogue:
        obs.proposals[label] = second.get(label, first[label])
    if req.profile_proposal:
        obs.profile = first["profile"]

    obs.ike_affinity = await sampler
    for key, task in main_tasks.items():
        result: IkeObservation = await task
        setattr(obs, key, result)
        longest = max(longest, _depth(result))
    obs.revocation = await revocation
    longest = max([longest, *(_depth(o) for o in obs.ike_affinity)])
    main = obs.ike_main
    if credentials is not None and main is not None and main.reached != "none":
        say(f"connecting to {common['address']} with the credentials given")
        obs.connect = await _connect(req, common, credentials)
        longest += obs.connect.round_trips
    return longest


async def _connect(
    req: DiagnoseRequest, common: dict[str, Any], credentials: Credentials
) -> ConnectObservation:
    """The connect probe (probes.connect) once, to the address of the other probes, in what is left of the
    deadline, holding one place of the politeness budget like every SA of the diagnosis."""
    deadline_at: float = common["deadline_at"]
    hook = tunnel_runner(
        TunnelPlan(resolve=(req.name,), rekey=True, ping_dns_server=True, probe_timeout_s=1.0)
    )
    obs = await run_connect_probe(
        req.name,
        user=credentials.user,
        password=credentials.password,
        machine_certificates=credentials.machine_certificates,
        machine_key=credentials.machine_key,
        eap=credentials.eap,
        client_certificate=credentials.client_certificate,
        eap_ca_files=credentials.eap_ca_files or None,
        eap_server_names=credentials.eap_server_names,
        ca_files=req.ca_files,
        address=common["address"],
        timeout_s=max(1.0, deadline_at - time.monotonic()),
        politeness=common["politeness"],
        # the tunnel.* findings: ping and MTU towards the assigned DNS server, the server's own name through
        # it, a rekey as the profile would (no PFS); UDP 4500 forced, as userspace ESP needs
        force_nat=True,
        after_child_sa=hook,
    )
    return hook.fill(obs)


async def _revocation_of(
    main: asyncio.Future[IkeObservation], obs: DiagnoseObservations, deadline_at: float
) -> RevocationObservation | None:
    """The revocation step (probes.revocation) for the chain the main IKE probe was sent."""
    try:
        pems = (await main).certificate_chain_pem
    except Exception:  # noqa: BLE001 - the main probe's own failure is reported where it is awaited
        return None
    ders = []
    for pem in pems:
        try:
            cert = x509.load_pem_x509_certificate(pem.encode())
        except ValueError:
            break
        ders.append(cert.public_bytes(serialization.Encoding.DER))
    return await check_revocation(ders, obs.anchors, deadline_at=deadline_at) if ders else None


async def _affinity_samples(
    req: DiagnoseRequest, common: dict[str, Any], main_tasks: list[asyncio.Future[IkeObservation]]
) -> list[IkeObservation]:
    """SAs set up on UDP 500 whose one IKE_AUTH goes to UDP 4500 from a new source port: one small answer
    each (AUTHENTICATION_FAILED: no certificate, so IP fragments cannot hide it), which also ends the SA.
    Stops at the first sample that lands elsewhere, or once enough samples agree."""
    done: list[IkeObservation] = []
    running: set[asyncio.Future[IkeObservation]] = set()
    under_way: dict[asyncio.Future[IkeObservation], asyncio.Event] = {}
    launched = 0
    deadline_at: float = common["deadline_at"]

    def tally() -> tuple[int, bool, int]:
        finished = [t.result() for t in main_tasks if t.done()] + done
        samples = samples_of(finished)
        pending_main = sum(3 for t in main_tasks if not t.done())
        return samples.count("answered"), "elsewhere" in samples, pending_main

    while True:
        answered, elsewhere, pending_main = tally()
        if elsewhere or answered >= AFFINITY_SAMPLES_NEEDED or time.monotonic() >= deadline_at:
            break
        want = AFFINITY_SAMPLES_NEEDED - answered - pending_main - len(running)
        while want > 0 and launched < AFFINITY_MAX_SAS:
            started = asyncio.Event()
            task: asyncio.Future[IkeObservation] = asyncio.ensure_future(
                run_ike_probe(
                    req.name,
                    stop_after="auth",
                    auth_style="psk-fail",
                    send_certreq=False,
                    force_nat=True,
                    fresh_natt_flows=True,
                    fallback_port=500,
                    retransmit_tries=3,
                    adaptive_rto=True,
                    priority=PRIORITY_SAMPLES,
                    on_place=started.set,
                    **common,
                )
            )
            running.add(task)
            under_way[task] = started
            launched += 1
            want -= 1
        waiting = running | {t for t in main_tasks if not t.done()}
        if not waiting:
            break
        finished, _ = await asyncio.wait(waiting, return_when=asyncio.FIRST_COMPLETED)
        for task in finished & running:
            running.discard(task)
            done.append(task.result())
    # Probes still queued for a place would only add samples we no longer need: they are called off;
    # those already under way finish their (short) exchange, which ends their SA.
    for task in running:
        if not under_way[task].is_set():
            task.cancel()
    for task in running:
        with contextlib.suppress(asyncio.CancelledError):
            done.append(await task)
    return done
