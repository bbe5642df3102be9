"""`vpndoctor ike`: run the IKEv2 initiator against a server and return what was observed.

The observation (`IkeObservation`) is a pydantic model: its JSON is the command's `--json` output and its
schema is kept in `schema/ike.json`.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import os
import time
from collections.abc import Callable
from datetime import UTC, datetime

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from vpndoctor import __version__
from vpndoctor.certs import eku_names, issued_by_anchor, san_names
from vpndoctor.errors import UsageError
from vpndoctor.ike import initiator as ini
from vpndoctor.ike.constants import (
    AuthMethod,
    DhGroup,
    EapType,
    EncrId,
    ExchangeType,
    IntegId,
    NotifyType,
    PrfId,
    name_of,
)
from vpndoctor.ike.proposals import DEFAULT_PROPOSALS, ProposalSyntaxError, parse_proposal
from vpndoctor.ike.vendor_ids import describe as describe_vendor_id
from vpndoctor.net.polite import Politeness, Slot
from vpndoctor.net.resolve import resolve_one
from vpndoctor.net.udp import drive, open_endpoints
from vpndoctor.observations.ike import CertificateInfo, DatagramInfo, IkeObservation, ProposalInfo
from vpndoctor.probes.revocation import check_revocation
from vpndoctor.trust import load_trust_anchors, trust_anchors


def _proposal_text(encr: int, bits: int | None, prf: int, integ: int | None, dh: int) -> str:
    encr_names: dict[int, str] = {
        EncrId.AES_CBC: f"aes{bits}",
        EncrId.DES3: "3des",
        EncrId.AES_GCM_16: f"aes{bits}gcm16",
    }
    encr_name = encr_names.get(encr, name_of(EncrId, encr).lower())
    integ_name: dict[int, str] = {
        IntegId.HMAC_SHA1_96: "sha1",
        IntegId.HMAC_SHA2_256_128: "sha256",
        IntegId.HMAC_SHA2_384_192: "sha384",
        IntegId.HMAC_SHA2_512_256: "sha512",
    }
    prf_name: dict[int, str] = {
        PrfId.HMAC_SHA1: "prfsha1",
        PrfId.HMAC_SHA2_256: "prfsha256",
        PrfId.HMAC_SHA2_384: "prfsha384",
        PrfId.HMAC_SHA2_512: "prfsha512",
    }
    dh_name: dict[int, str] = {
        DhGroup.MODP_1024: "modp1024",
        DhGroup.MODP_1536: "modp1536",
        DhGroup.MODP_2048: "modp2048",
        DhGroup.MODP_3072: "modp3072",
        DhGroup.MODP_4096: "modp4096",
        DhGroup.ECP_256: "ecp256",
        DhGroup.ECP_384: "ecp384",
        DhGroup.ECP_521: "ecp521",
        DhGroup.CURVE25519: "x25519",
    }
    parts = [encr_name]
    paired: dict[int, int] = {
        IntegId.HMAC_SHA1_96: PrfId.HMAC_SHA1,
        IntegId.HMAC_SHA2_256_128: PrfId.HMAC_SHA2_256,
        IntegId.HMAC_SHA2_384_192: PrfId.HMAC_SHA2_384,
        IntegId.HMAC_SHA2_512_256: PrfId.HMAC_SHA2_512,
    }
    if integ is not None:
        parts.append(integ_name.get(integ, name_of(IntegId, integ).lower()))
    if integ is None or paired.get(integ) != prf:  # strongSwan's "sha256" already implies prfsha256
        parts.append(prf_name.get(prf, name_of(PrfId, prf).lower()))
    parts.append(dh_name.get(dh, name_of(DhGroup, dh).lower()))
    return "-".join(parts)


def _load_ders(ders: tuple[bytes, ...]) -> list[x509.Certificate]:
    certs = []
    for der in ders:
        try:
            certs.append(x509.load_der_x509_certificate(der))
        except ValueError:
            continue
    return certs


def _spki_sha1(cert: x509.Certificate) -> bytes:
    return hashlib.sha1(
        cert.public_key().public_bytes(Encoding.DER, PublicFormat.SubjectPublicKeyInfo)
    ).digest()


def describe_certificate(chain: tuple[bytes, ...], anchors: list[x509.Certificate]) -> CertificateInfo | None:
    if not chain:
        return None
    try:
        cert = x509.load_der_x509_certificate(chain[0])
    except ValueError:
        return None
    dns, ips = san_names(cert)
    ekus = eku_names(cert)
    key = cert.public_key()
    key_text = (
        f"{type(key).__name__.replace('PublicKey', '').replace('_', '')} {getattr(key, 'key_size', '')}"
    )
    trusted: bool | None = None
    if anchors:
        trusted = issued_by_anchor(cert, _load_ders(chain[1:]), anchors)
    return CertificateInfo(
        subject=cert.subject.rfc4514_string(),
        issuer=cert.issuer.rfc4514_string(),
        san_dns=dns,
        san_ip=ips,
        not_before=cert.not_valid_before_utc.isoformat(),
        not_after=cert.not_valid_after_utc.isoformat(),
        eku=ekus,
        key=key_text.strip(),
        sha256=cert.fingerprint(hashes.SHA256()).hex(),
        trusted=trusted,
        chain_length=len(chain),
    )


async def run_ike_probe(
    target: str,
    *,
    port: int = 500,
    natt_port: int = 4500,
    proposals: list[str] | None = None,
    group: int | None = None,
    force_nat: bool = False,
    fragmentation: bool = True,
    identity: str = "anonymous@vpndoctor.invalid",
    ca_files: list[str] | None = None,
    timeout_s: float = 10.0,
    retransmit_timeout_s: float = 0.5,
    retransmit_tries: int = 4,
    fragment_size_bytes: int = 1280,
    send_certreq: bool = True,
    sa_init_padding_bytes: int = 0,
    start_on_natt: bool = False,
    stop_after: str = "eap",
    address: str | None = None,
    deadline_at: float | None = None,
    stateless: bool = False,
    auth_style: str = "eap",
    fallback_port: int | None = None,
    fresh_natt_flows: bool = False,
    politeness: Politeness | None = None,
    priority: int = 0,
    adaptive_rto: bool = False,
    on_place: Callable[[], None] | None = None,
    revocation: bool = False,
) -> IkeObservation:
    """One exchange. `deadline_at` (time.monotonic()) bounds it absolutely, whatever delays its start.

    With `revocation`, once IKE_AUTH brought the server's certificate, the revocation step
    (probes.revocation) fetches its chain's CRLs and OCSP answers, within the same `deadline_at`, against
    the --ca anchors (else the system store, as diagnose does); nothing is fetched without a certificate.

    With `politeness`, the probe first takes a place in the target's half-open budget (waiting until
    `deadline_at` at most; a stateless probe too, for the moment the responder holds its SA while it
    decides) and every datagram is paced to the budget's rate cap.
    """
    try:
        specs = tuple(parse_proposal(p) for p in (proposals or list(DEFAULT_PROPOSALS)))
    except ProposalSyntaxError as exc:
        raise UsageError(str(exc)) from None
    if group is not None and not any(group in s.dh for s in specs):
        raise UsageError(f"--group {group} is not in any offered proposal")
    anchors = load_trust_anchors(ca_files or [])
    if address is None:
        address = await resolve_one(target, timeout_s=min(timeout_s, 5.0))
    started = datetime.now(UTC)
    t0 = time.monotonic()
    if deadline_at is None:
        deadline_at = t0 + timeout_s
    slot: Slot | None = None
    if politeness is not None:
        slot = await politeness.acquire(address, deadline_at, priority)
        if slot is None:
            return _not_run(target, address, port, natt_port, started, t0)
    if on_place is not None:
        on_place()
    if politeness is not None:
        retransmit_timeout_s = politeness.retransmit_timeout_s(address, retransmit_timeout_s)
    waited = time.monotonic() - t0
    endpoints = await open_endpoints(address, (port, natt_port))
    machine: ini.Initiator | None = None
    try:
        config = ini.InitiatorConfig(
            proposals=specs,
            ke_group=group,
            identity=identity,
            fragmentation=fragmentation,
            force_nat=force_nat,
            natt_port=natt_port,
            trust_anchor_hashes=tuple(_spki_sha1(a) for a in anchors),
            retransmit_timeout_s=retransmit_timeout_s,
            retransmit_tries=retransmit_tries,
            fragment_size_bytes=fragment_size_bytes,
            send_certreq=send_certreq,
            sa_init_padding_bytes=sa_init_padding_bytes,
            start_on_natt=start_on_natt,
            stop_after=stop_after,
            stateless=stateless,
            auth_style=auth_style,
            fallback_port=fallback_port,
            fresh_natt_flows=fresh_natt_flows,
            adaptive_rto=adaptive_rto,
        )
        machine = ini.Initiator(
            config, rng=os.urandom, local=endpoints.local_address(port), remote=(address, port)
        )
        machine.start(time.monotonic())
        budget = max(0.0, deadline_at - time.monotonic())
        pace = None
        if politeness is not None:
            polite = politeness

            async def pace() -> None:
                await polite.pace(address)

        if not await drive(machine, endpoints, deadline_s=budget, pace=pace):
            machine.deadline_reached(time.monotonic())
        icmp = endpoints.icmp_errors
    finally:
        endpoints.close()
        if slot is not None:
            slot.depth_end = slot.depth + (machine.round_trips if machine is not None else 0)
            if machine is not None and machine.server_holds_state:
                slot.leak()
            else:
                slot.release()
    assert machine is not None
    obs = _observe(machine, target, address, port, natt_port, started, t0, anchors, icmp)
    obs.budget_wait_s = round(waited, 3)
    if slot is not None:
        obs.queued_behind_round_trips = slot.depth
    if politeness is not None and obs.cookie_rounds:
        politeness.cookie_demanded(address)
    if politeness is not None and politeness.max_half_open > 1 and _retransmitted_sa_init(obs):
        politeness.lower(address)
    rtt = _first_rtt(obs)
    if politeness is not None and rtt is not None:
        politeness.note_rtt(address, rtt)
    if revocation and machine.auth is not None and machine.auth.certificates:
        revocation_anchors = anchors if ca_files else trust_anchors([])[0]
        obs.revocation = await check_revocation(
            machine.auth.certificates, revocation_anchors, deadline_at=deadline_at
        )
    return obs


def _not_run(
    target: str, address: str, port: int, natt_port: int, started: datetime, t0: float
) -> IkeObservation:
    """The politeness budget had no place for this probe before the deadline: nothing was sent."""
    waited = round(time.monotonic() - t0, 3)
    return IkeObservation(
        tool={"name": "vpndoctor", "version": __version__},
        target=target,
        address=address,
        port=port,
        natt_port=natt_port,
        spi_i="",
        spi_r="",
        started_at=started.isoformat(),
        duration_s=waited,
        reached="none",
        proposal=None,
        ke_group_requested=None,
        cookie_rounds=0,
        notifies=[],
        fragmentation_supported=False,
        signature_hash_algorithms=[],
        nat_detected=False,
        nat_local=False,
        nat_remote=False,
        natt_used=False,
        vendor_ids=[],
        idr=None,
        certificate=None,
        auth_method=None,
        auth_verified=False,
        auth_reason=None,
        eap_type=None,
        error_notify=None,
        timeout_exchange=None,
        peer_error=None,
        request_fragments=0,
        response_fragments=0,
        round_trips=0,
        datagrams=[],
        icmp_errors=[],
        certificate_chain_pem=[],
        budget_wait_s=waited,
        throttled="our half-open budget had no place for this probe before the deadline",
    )


def _observe(
    machine: ini.Initiator,
    target: str,
    address: str,
    port: int,
    natt_port: int,
    started: datetime,
    t0: float,
    anchors: list[x509.Certificate],
    icmp: list[str],
) -> IkeObservation:
    sa: ini.SaInitDone | None = None
    error: str | None = None
    timeout: str | None = None
    peer_error: str | None = None
    ke_requested: str | None = None
    eap_type: int | None = None
    cookie_rounds = 0
    stateless_answer: str | None = None
    fallback: int | None = None
    while (event := machine.next_event()) is not None:
        if isinstance(event, ini.SaInitDone):
            sa = event
        elif isinstance(event, ini.ErrorNotify) and error is None:
            error = name_of(NotifyType, event.notify)
        elif isinstance(event, ini.Timeout):
            timeout = name_of(ExchangeType, event.exchange)
        elif isinstance(event, ini.PeerMisbehaved):
            peer_error = event.reason
        elif isinstance(event, ini.KeGroupRequested):
            ke_requested = name_of(DhGroup, event.requested_group)
        elif isinstance(event, ini.CookieRequested):
            cookie_rounds += 1
        elif isinstance(event, ini.ProposalAccepted):
            stateless_answer = "accepted"
        elif isinstance(event, ini.FellBack):
            fallback = event.port
        elif isinstance(event, ini.EapMethodRequested) and event.eap_type is not None:
            eap_type = event.eap_type
    auth = machine.auth
    if eap_type is None and auth is not None:
        eap_type = auth.eap_type
    proposal = None
    if sa is not None:
        s = sa.suite
        proposal = ProposalInfo(
            encryption=name_of(EncrId, s.encr),
            key_bits=s.encr_key_bits,
            prf=name_of(PrfId, s.prf),
            integrity=name_of(IntegId, s.integ) if s.integ is not None else None,
            dh_group=name_of(DhGroup, s.dh),
            text=_proposal_text(s.encr, s.encr_key_bits, s.prf, s.integ, s.dh),
        )
    datagrams = [
        DatagramInfo(
            t=round(d.t - t0, 6),
            dir="out" if d.direction == "out" else "in",
            port=d.remote[1],
            size=d.size,
            summary=d.summary,
            repeat=d.repeat,
        )
        for d in machine.transcript
    ]
    return IkeObservation(
        tool={"name": "vpndoctor", "version": __version__},
        target=target,
        address=address,
        port=port,
        natt_port=natt_port,
        spi_i=machine.spi_i.hex(),
        spi_r=machine.spi_r.hex(),
        started_at=started.isoformat(),
        duration_s=round(time.monotonic() - t0, 3),
        reached=machine.reached,  # type: ignore[arg-type]
        proposal=proposal,
        ke_group_requested=ke_requested,
        cookie_rounds=cookie_rounds,
        notifies=[name_of(NotifyType, n) for n in sa.notifies] if sa else [],
        fragmentation_supported=bool(sa and sa.fragmentation_supported),
        signature_hash_algorithms=[str(h) for h in sa.signature_hash_algorithms] if sa else [],
        nat_detected=bool(sa and (sa.nat_local or sa.nat_remote)),
        nat_local=bool(sa and sa.nat_local),
        nat_remote=bool(sa and sa.nat_remote),
        natt_used=any(d.port == natt_port for d in datagrams),
        vendor_ids=[describe_vendor_id(v) or v.hex() for v in sa.vendor_ids] if sa else [],
        idr=auth.idr.decode("utf-8", "replace") if auth and auth.idr is not None else None,
        certificate=describe_certificate(auth.certificates, anchors) if auth else None,
        auth_method=name_of(AuthMethod, auth.auth_method) if auth and auth.auth_method is not None else None,
        auth_verified=bool(auth and auth.auth_verified),
        auth_reason=auth.auth_reason if auth else None,
        eap_type=name_of(EapType, eap_type) if eap_type is not None else None,
        error_notify=error,
        timeout_exchange=timeout,
        peer_error=peer_error,
        request_fragments=auth.request_fragments if auth else 0,
        response_fragments=auth.response_fragments if auth else 0,
        certificate_chain_pem=[_pem(der) for der in auth.certificates] if auth else [],
        round_trips=machine.round_trips,
        datagrams=datagrams,
        icmp_errors=icmp,
        stateless_answer=_stateless(machine, stateless_answer, error),  # type: ignore[arg-type]
        natt_flows=machine.natt_flows_used,
        natt_samples=list(machine.natt_samples),  # type: ignore[arg-type]
        fallback_port=fallback,
        fallback_answered=fallback is not None
        and any(d.dir == "in" and d.port == fallback for d in datagrams[1:]),
        left_half_open=machine.server_holds_state,
        throttled=_throttled(cookie_rounds, timeout, datagrams),
        datagrams_dropped=machine.transcript_dropped,
    )


def _first_rtt(obs: IkeObservation) -> float | None:
    """The round trip of an IKE_SA_INIT answered at its first transmission (Karn's rule)."""
    if len(obs.datagrams) >= 2 and obs.datagrams[0].dir == "out" and obs.datagrams[1].dir == "in":
        return max(0.0, obs.datagrams[1].t - obs.datagrams[0].t)
    return None


def _retransmitted_sa_init(obs: IkeObservation) -> bool:
    """The first answer came only after our IKE_SA_INIT was sent again."""
    first_in = next((i for i, d in enumerate(obs.datagrams) if d.dir == "in"), None)
    return first_in is not None and first_in > 1


def _stateless(machine: ini.Initiator, answer: str | None, error: str | None) -> str | None:
    if not machine.config.stateless:
        return None
    if answer is not None:
        return answer
    if error == "NO_PROPOSAL_CHOSEN":
        return "refused"
    if machine.reached != "none":
        return "accepted"  # the server took our KE group after all: the proposal is acceptable
    return None


def _throttled(cookie_rounds: int, timeout: str | None, datagrams: list[DatagramInfo]) -> str | None:
    """A COOKIE answered and then silence: the gateway is shedding our IKE_SA_INITs, not failing."""
    if cookie_rounds and timeout == "IKE_SA_INIT":
        return "the gateway demanded a COOKIE and then stopped answering (it rate-limits this client)"
    return None


def _pem(der: bytes) -> str:
    body = base64.encodebytes(der).decode().replace("\n", "")
    lines = [body[i : i + 64] for i in range(0, len(body), 64)]
    return "-----BEGIN CERTIFICATE-----\n" + "\n".join(lines) + "\n-----END CERTIFICATE-----\n"


def exit_code(obs: IkeObservation) -> int:
    """0: IKE_AUTH answered (or, stateless, the proposals accepted); 1: the server answered with an error
    (or refused them); 3: no answer."""
    if obs.stateless_answer is not None:
        return 0 if obs.stateless_answer == "accepted" else 1
    if obs.reached == "IKE_AUTH" and obs.error_notify is None:
        return 0
    if obs.error_notify is not None or obs.peer_error is not None or obs.reached != "none":
        return 1
    return 3


def probe(target: str, **kwargs: object) -> IkeObservation:
    return asyncio.run(run_ike_probe(target, **kwargs))  # type: ignore[arg-type]
