"""`vpndoctor connect`: an EAP-MSCHAPv2 user tunnel dialled the way Windows dials it, all the way to the
CHILD_SA, then ended with a Delete; the events of the IKE initiator become a `ConnectObservation`.

The password goes into the MS-CHAPv2 method, which keeps only its NT hash; nothing this module returns or
raises carries it, the NT hash, the MSK or a key. The IKE SA keys leave only through `keys_out` (a file of
mode 0600 the user asked for).
"""

from __future__ import annotations

import asyncio
import ipaddress
import os
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Literal

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import rsa

from vpndoctor import __version__
from vpndoctor.certs import issued_by_anchor
from vpndoctor.eap.mschapv2 import (
    MsChapV2Failure,
    MsChapV2ServerAuthenticated,
    MsChapV2ServerRejected,
)
from vpndoctor.eap.peer import EapFailed, EapMethodRefused, EapNotification, EapPeer, EapSucceeded
from vpndoctor.errors import UsageError
from vpndoctor.ike import auth as ike_auth
from vpndoctor.ike import initiator as ini
from vpndoctor.ike.constants import (
    AuthMethod,
    CfgAttr,
    DhGroup,
    EapCode,
    EapType,
    EncrId,
    ExchangeType,
    IntegId,
    NotifyType,
    PrfId,
    name_of,
)
from vpndoctor.ike.payloads import TrafficSelector
from vpndoctor.ike.proposals import (
    DEFAULT_PROPOSALS,
    WINDOWS_ESP_PROPOSALS,
    EspProposalSpec,
    ProposalSyntaxError,
    parse_esp_proposal,
    parse_proposal,
)
from vpndoctor.net.polite import Politeness, Slot
from vpndoctor.net.resolve import resolve_one
from vpndoctor.net.udp import UdpEndpoints, drive, open_endpoints
from vpndoctor.observations.connect import (
    STAGES,
    Cause,
    ChildSaInfo,
    ConfigInfo,
    ConnectObservation,
    Stage,
    StageInfo,
)
from vpndoctor.observations.ike import DatagramInfo, ProposalInfo
from vpndoctor.observations.tunnel import TunnelObservation
from vpndoctor.probes.eap_methods import (
    AUTH_NAMES,
    OUR_TYPE,
    ClientCertificate,
    TlsFacts,
    build_peer,
)
from vpndoctor.probes.ike import _load_ders, _proposal_text, _spki_sha1, describe_certificate
from vpndoctor.trust import trust_anchors

DEFAULT_TIMEOUT_S = 30.0
TUNNEL_DELETE_S = 5.0  # after the tunnel probes: the Delete's own budget (the connect deadline may be spent)
# Windows waits long for EAP (its RADIUS server may take seconds); five transmissions of each request,
# 0.5 s apart and doubling, wait 15.5 s for an answer - longer than strongSwan's 14 s RADIUS give-up.
RETRANSMIT_TRIES = 5


@dataclass
class _Seen:
    """The facts gathered from the initiator's events, in order."""

    sa: ini.SaInitDone | None = None
    error: ini.ErrorNotify | None = None
    timeout: ini.Timeout | None = None
    peer_error: str | None = None
    stopped: ini.ConnectStopped | None = None
    established: ini.IkeSaEstablished | None = None
    child: ini.ChildSaResult | None = None
    eap_requests: list[str] = field(default_factory=list)
    eap_nak: list[str] = field(default_factory=list)
    notifications: list[str] = field(default_factory=list)
    server_message: str | None = None
    mschap_failure: MsChapV2Failure | None = None
    mschap_rejected: str | None = None
    eap_failed: str | None = None
    eap_succeeded: bool = False
    times: dict[str, float] = field(default_factory=dict)  # milestone -> t (s since start)
    last_t: float | None = None  # the last datagram's t
    asked_t: float | None = None  # when the request being answered was first sent
    eap_wait_s: float | None = None  # the longest the server took to answer one of our EAP messages
    our_method: str = "MSCHAPV2"  # the EAP type we run (the outer one for PEAP)
    tls: TlsFacts | None = None


async def run_connect_probe(
    target: str,
    *,
    user: str = "",
    password: str | None = None,
    eap: str = "mschapv2",
    client_certificate: ClientCertificate | None = None,
    eap_server_names: tuple[str, ...] = (),
    eap_ca_files: list[str] | None = None,
    machine_certificates: tuple[bytes, ...] = (),
    machine_key: rsa.RSAPrivateKey | None = None,
    cert_auth_method: int = AuthMethod.RSA_SIG,
    identity: str | None = None,
    port: int = 500,
    natt_port: int = 4500,
    proposals: list[str] | None = None,
    esp_proposals: list[str] | None = None,
    ca_files: list[str] | None = None,
    timeout_s: float = DEFAULT_TIMEOUT_S,
    retransmit_timeout_s: float = 0.5,
    retransmit_tries: int = RETRANSMIT_TRIES,
    fragmentation: bool = True,
    force_nat: bool = False,
    keys_out: str | None = None,
    address: str | None = None,
    politeness: Politeness | None = None,
    rng: Callable[[int], bytes] = os.urandom,
    after_child_sa: Callable[[ini.Initiator, UdpEndpoints], Awaitable[TunnelObservation]] | None = None,
) -> ConnectObservation:
    """One connection attempt, bounded by `timeout_s` (plus a second to end an SA the server holds).

    The server's certificate must chain to `ca_files` (else the system store) before the EAP method answers
    anything: MS-CHAPv2 hands the server what a password can be guessed from, and a Windows client refuses an
    untrusted server just as early.

    With `machine_certificates` (ours first, then intermediates, DER) and `machine_key` it dials a device
    tunnel instead: no EAP, IDi the certificate's subject DN, AUTH signed with the key (`cert_auth_method`
    1 or 14); `user` and `password` are not used.

    `after_child_sa` (the tunnel probes, probes/tunnel.py) runs while the CHILD_SA is held, before the
    Delete; what it returns becomes the observation's `tunnel`."""
    try:
        specs = tuple(parse_proposal(p) for p in (proposals or list(DEFAULT_PROPOSALS)))
        esp_specs = tuple(parse_esp_proposal(p) for p in (esp_proposals or list(WINDOWS_ESP_PROPOSALS)))
    except ProposalSyntaxError as exc:
        raise UsageError(str(exc)) from None
    device = bool(machine_certificates)
    peer: EapPeer | None = None
    signer: Callable[[bytes], bytes] | None = None
    if device:
        key = machine_key
        if key is None:
            raise UsageError("a machine certificate needs its private key (--machine-key)")
        public = x509.load_der_x509_certificate(machine_certificates[0]).public_key()
        if public != key.public_key():
            raise UsageError("--machine-key is not the key of the --machine-cert certificate")
        identity = x509.load_der_x509_certificate(machine_certificates[0]).subject.rfc4514_string()
        user = ""

        def signer(octets: bytes) -> bytes:
            return ike_auth.rsa_sign_auth(key, cert_auth_method, octets)

    anchors, source = trust_anchors(ca_files or [])
    facts = TlsFacts(eap, client_certificate)
    if not device:
        # EAP-TLS and PEAP verify the EAP (RADIUS) server's certificate against the same anchors.
        peer = build_peer(
            eap,
            user,
            password=password,
            certificate=client_certificate,
            anchors=trust_anchors(eap_ca_files)[0] if eap_ca_files else anchors,
            server_names=eap_server_names,
            rng=rng,
        )
        facts.method = peer.method
    del password
    if address is None:
        address = await resolve_one(target, timeout_s=min(timeout_s, 5.0))
    started = datetime.now(UTC)
    t0 = time.monotonic()
    deadline_at = t0 + timeout_s
    slot: Slot | None = None
    if politeness is not None:
        slot = await politeness.acquire(address, deadline_at)
        if slot is None:
            obs = _not_run(
                target, address, port, natt_port, user, identity or user, started, t0, device=device
            )
            if not device:
                obs.auth = AUTH_NAMES[eap]  # type: ignore[assignment]
            return obs
        retransmit_timeout_s = politeness.retransmit_timeout_s(address, retransmit_timeout_s)
    waited = time.monotonic() - t0
    tunnel: TunnelObservation | None = None

    def accept_server(auth: ini.AuthDone) -> str | None:
        certs = _load_ders(auth.certificates)
        if not certs:
            return "the server sent no certificate to check its AUTH and identity with"
        if not anchors:
            return f"no trust anchors to check the server certificate with ({source}): give --ca"
        if not issued_by_anchor(certs[0], certs[1:], anchors):
            leaf = certs[0]
            return (
                f"the server certificate ({leaf.subject.rfc4514_string()}, issued by "
                f"{leaf.issuer.rfc4514_string()}) does not chain to {source}"
            )
        return None

    endpoints = await open_endpoints(address, (port, natt_port))
    machine: ini.Initiator | None = None
    try:
        config = ini.InitiatorConfig(
            proposals=specs,
            identity=identity or user,
            eap_identity=user,
            fragmentation=fragmentation,
            force_nat=force_nat,
            natt_port=natt_port,
            # CERTREQ names the --ca anchors; with the system store it names none (any certificate will do)
            trust_anchor_hashes=tuple(_spki_sha1(a) for a in anchors) if ca_files else (),
            retransmit_timeout_s=retransmit_timeout_s,
            retransmit_tries=retransmit_tries,
            stop_after="child-sa",
            esp_proposals=esp_specs,
            auth_style="cert" if device else "eap",
            certificates=machine_certificates,
            cert_auth_method=cert_auth_method,
            hold_child_sa=after_child_sa is not None,
        )
        machine = ini.Initiator(
            config,
            rng=rng,
            local=endpoints.local_address(port),
            remote=(address, port),
            eap_peer=peer,
            accept_server=accept_server,
            signer=signer,
        )
        machine.start(time.monotonic())
        pace = None
        if politeness is not None:
            polite = politeness

            async def pace() -> None:
                await polite.pace(address)

        budget = max(0.0, deadline_at - time.monotonic())
        if not await drive(machine, endpoints, deadline_s=budget, pace=pace):
            machine.deadline_reached(time.monotonic())
        if after_child_sa is not None and machine.holding:
            try:
                tunnel = await after_child_sa(machine, endpoints)
            finally:  # whatever the tunnel probes did (or raised), the SA ends with its Delete
                machine.release(time.monotonic())
                if not await drive(machine, endpoints, deadline_s=TUNNEL_DELETE_S, pace=pace):
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
    written = _write_keys(keys_out, machine) if keys_out else None
    obs = _observe(
        machine, target, address, port, natt_port, user, started, t0, anchors, icmp, esp_specs, facts
    )
    obs.budget_wait_s = round(waited, 3)
    obs.keys_out = written
    obs.tunnel = tunnel
    if device:
        obs.auth = "machine-certificate"
        obs.machine_auth_method = name_of(AuthMethod, cert_auth_method)
        obs.stages = [
            StageInfo(stage="EAP", result="skipped", t=None) if s.stage == "EAP" else s for s in obs.stages
        ]
    else:
        obs.auth = AUTH_NAMES[eap]  # type: ignore[assignment]
        obs.eap_tls = facts.info()
    return obs


def _write_keys(path: str, machine: ini.Initiator) -> str | None:
    """The IKE SA's keys as a Wireshark `ikev2_decryption_table` (mode 0600); None when there are none."""
    line = machine.wireshark_keys()
    if line is None:
        return None
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="ascii") as fh:
            fh.write(line + "\n")
    except OSError as exc:
        raise UsageError(f"--keys-out {path}: {exc.strerror or exc}") from None
    return path


def _not_run(
    target: str,
    address: str,
    port: int,
    natt_port: int,
    user: str,
    identity: str,
    started: datetime,
    t0: float,
    *,
    device: bool,
) -> ConnectObservation:
    """The politeness budget had no place before the deadline: nothing was sent."""
    waited = round(time.monotonic() - t0, 3)
    return ConnectObservation(
        tool={"name": "vpndoctor", "version": __version__},
        target=target,
        address=address,
        port=port,
        natt_port=natt_port,
        user=user,
        identity=identity,
        spi_i="",
        spi_r="",
        started_at=started.isoformat(),
        duration_s=waited,
        stage_reached="IKE_SA_INIT",
        connected=False,
        cause="throttled",
        failure="our half-open budget had no place for this attempt before the deadline",
        auth="machine-certificate" if device else "eap-mschapv2",
        stages=[StageInfo(stage=s, result="not-reached", t=None) for s in STAGES],
        proposal=None,
        nat_detected=False,
        natt_used=False,
        idr=None,
        certificate=None,
        server_auth_method=None,
        server_auth_verified=False,
        server_auth_reason=None,
        eap_requests=[],
        eap_method=None,
        eap_nak=[],
        eap_notifications=[],
        eap_server_message=None,
        eap_wait_s=None,
        auth_result=None,
        mschapv2_error=None,
        mschapv2_error_name=None,
        ike_sa_established=False,
        responder_auth_verified=None,
        esp_proposals_offered=[],
        child_sa=None,
        config=None,
        error_notify=None,
        timeout_exchange=None,
        peer_error=None,
        keys_out=None,
        round_trips=0,
        request_fragments=0,
        response_fragments=0,
        datagrams=[],
        datagrams_dropped=0,
        icmp_errors=[],
        left_sa_on_server=False,
        budget_wait_s=waited,
        throttled="our half-open budget had no place for this attempt before the deadline",
    )


def _gather(machine: ini.Initiator, t0: float, facts: TlsFacts | None = None) -> _Seen:
    seen = _Seen(tls=facts)
    if facts is not None:
        seen.our_method = name_of(EapType, OUR_TYPE.get(facts.kind, EapType.MSCHAPV2))
    last_t = 0.0
    while (event := machine.next_event()) is not None:
        if isinstance(event, ini.DatagramEvent):
            last_t = round(event.t - t0, 6)
            seen.last_t = last_t
            if event.direction == "out" and not event.summary.startswith(("retransmit", "fallback")):
                seen.asked_t = last_t
        elif isinstance(event, ini.SaInitDone):
            seen.sa = event
            seen.times["IKE_SA_INIT"] = last_t
        elif isinstance(event, ini.AuthDone):
            seen.times["IKE_AUTH"] = last_t
        elif isinstance(event, ini.ErrorNotify) and seen.error is None:
            seen.error = event
        elif isinstance(event, ini.Timeout):
            seen.timeout = event
        elif isinstance(event, ini.PeerMisbehaved):
            seen.peer_error = event.reason
        elif isinstance(event, ini.ConnectStopped) and seen.stopped is None:
            seen.stopped = event
        elif isinstance(event, ini.IkeSaEstablished):
            seen.established = event
            seen.times["EAP"] = last_t
        elif isinstance(event, ini.ChildSaResult):
            seen.child = event
            seen.times["CHILD_SA"] = last_t
        elif isinstance(event, ini.EapRound):
            if seen.eap_requests and seen.asked_t is not None:  # an answer to one of our EAP messages
                wait = round(last_t - seen.asked_t, 3)
                seen.eap_wait_s = max(wait, seen.eap_wait_s or 0.0)
            _eap_round(seen, event)
    return seen


def _eap_round(seen: _Seen, event: ini.EapRound) -> None:
    if event.code == EapCode.REQUEST and event.eap_type is not None:
        seen.eap_requests.append(name_of(EapType, event.eap_type))
    for e in event.events:
        if seen.tls is not None:
            seen.tls.see(e)
        if isinstance(e, EapMethodRefused):
            seen.eap_nak.append(e.offered_name)
        elif isinstance(e, EapNotification):
            seen.notifications.append(e.text)
        elif isinstance(e, MsChapV2ServerAuthenticated):
            seen.server_message = e.message or seen.server_message
        elif isinstance(e, MsChapV2Failure):
            seen.mschap_failure = e
            seen.server_message = e.message or seen.server_message
        elif isinstance(e, MsChapV2ServerRejected):
            seen.mschap_rejected = e.reason
        elif isinstance(e, EapFailed):
            seen.eap_failed = e.reason
        elif isinstance(e, EapSucceeded):
            seen.eap_succeeded = True


def _stage(machine: ini.Initiator) -> Stage:
    """The stage the attempt ended in: the one after the last milestone, or the last one entered."""
    return {
        "none": "IKE_SA_INIT",
        "IKE_SA_INIT": "IKE_AUTH",
        "IKE_AUTH": "IKE_AUTH",
        "EAP": "EAP",
        "CHILD_SA": "CHILD_SA",
    }[machine.reached]  # type: ignore[return-value]


_STOP_CAUSES: dict[str, Cause] = {
    "server-auth": "server-auth",
    "server-refused": "server-untrusted",
    "no-eap": "no-eap",
    "eap": "eap",
    "responder-auth": "responder-auth",
    "protocol": "protocol",
}


def _cause(seen: _Seen, connected: bool, stage: Stage) -> tuple[Cause | None, str | None]:
    if connected:
        return None, None
    if seen.stopped is not None:
        return _STOP_CAUSES.get(seen.stopped.cause, "protocol"), seen.stopped.reason
    if seen.peer_error is not None:
        return "protocol", seen.peer_error
    if seen.error is not None:
        notify = name_of(NotifyType, seen.error.notify)
        where = "the CHILD_SA" if stage == "CHILD_SA" else name_of(ExchangeType, seen.error.exchange)
        return "error-notify", f"the server refused {where}: {notify}"
    if seen.eap_failed is not None:
        ours = seen.our_method
        if seen.eap_nak and seen.mschap_failure is None and ours not in seen.eap_requests:
            methods = ", ".join(seen.eap_nak)
            return (
                "eap-method",
                f"the server asks for EAP {methods}, we run {ours} (--eap); it gave up (EAP-Failure)",
            )
        return "eap-failure", f"EAP-Failure: {seen.eap_failed}"
    if stage == "CHILD_SA" and seen.child is not None:
        return "child-sa", seen.child.reason or "no CHILD_SA"
    if seen.timeout is not None:
        exchange = name_of(ExchangeType, seen.timeout.exchange)
        return "no-answer", (
            f"no answer to {exchange} request {seen.timeout.message_id} after "
            f"{seen.timeout.attempts} transmission{'s' if seen.timeout.attempts != 1 else ''}"
        )
    return "no-answer", "the deadline passed before the server answered"


def _observe(
    machine: ini.Initiator,
    target: str,
    address: str,
    port: int,
    natt_port: int,
    user: str,
    started: datetime,
    t0: float,
    anchors: list[x509.Certificate],
    icmp: list[str],
    esp_specs: tuple[EspProposalSpec, ...],
    facts: TlsFacts | None = None,
) -> ConnectObservation:
    seen = _gather(machine, t0, facts)
    auth = machine.auth
    child = seen.child
    connected = bool(child is not None and child.established)
    stage = _stage(machine)
    cause, failure = _cause(seen, connected, stage)
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
    proposal = None
    if seen.sa is not None:
        s = seen.sa.suite
        proposal = ProposalInfo(
            encryption=name_of(EncrId, s.encr),
            key_bits=s.encr_key_bits,
            prf=name_of(PrfId, s.prf),
            integrity=name_of(IntegId, s.integ) if s.integ is not None else None,
            dh_group=name_of(DhGroup, s.dh),
            text=_proposal_text(s.encr, s.encr_key_bits, s.prf, s.integ, s.dh),
        )
    methods = [r for r in seen.eap_requests if r not in ("IDENTITY", "NOTIFICATION")]
    auth_result: Literal["success", "failure"] | None = None
    if seen.eap_succeeded:
        auth_result = "success"
    elif seen.eap_failed is not None:
        auth_result = "failure"
    return ConnectObservation(
        tool={"name": "vpndoctor", "version": __version__},
        target=target,
        address=address,
        port=port,
        natt_port=natt_port,
        user=user,
        identity=machine.config.identity,
        spi_i=machine.spi_i.hex(),
        spi_r=machine.spi_r.hex(),
        started_at=started.isoformat(),
        duration_s=round(time.monotonic() - t0, 3),
        stage_reached=stage,
        connected=connected,
        cause=cause,
        failure=failure,
        stages=_stages(seen, stage, connected, failure),
        proposal=proposal,
        nat_detected=bool(seen.sa and (seen.sa.nat_local or seen.sa.nat_remote)),
        natt_used=any(d.port == natt_port for d in datagrams),
        idr=_idr_text(auth) if auth is not None else None,
        certificate=describe_certificate(auth.certificates, anchors) if auth else None,
        server_auth_method=(
            name_of(AuthMethod, auth.auth_method) if auth and auth.auth_method is not None else None
        ),
        server_auth_verified=bool(auth and auth.auth_verified),
        server_auth_reason=auth.auth_reason if auth else None,
        eap_requests=seen.eap_requests,
        eap_method=seen.our_method if seen.our_method in methods else (methods[0] if methods else None),
        eap_nak=seen.eap_nak,
        eap_notifications=seen.notifications,
        eap_server_message=seen.server_message,
        eap_wait_s=seen.eap_wait_s,
        auth_result=auth_result,
        mschapv2_error=seen.mschap_failure.error if seen.mschap_failure else None,
        mschapv2_error_name=seen.mschap_failure.error_name if seen.mschap_failure else None,
        ike_sa_established=seen.established is not None,
        responder_auth_verified=seen.established.verified if seen.established else None,
        esp_proposals_offered=[spec.text for spec in esp_specs],
        child_sa=_child_info(child) if connected and child is not None else None,
        config=_config_info(child.config) if child is not None and child.config else None,
        error_notify=name_of(NotifyType, seen.error.notify) if seen.error else None,
        timeout_exchange=name_of(ExchangeType, seen.timeout.exchange) if seen.timeout else None,
        peer_error=seen.peer_error,
        keys_out=None,
        round_trips=machine.round_trips,
        request_fragments=auth.request_fragments if auth else 0,
        response_fragments=auth.response_fragments if auth else 0,
        datagrams=datagrams,
        datagrams_dropped=machine.transcript_dropped,
        icmp_errors=icmp,
        left_sa_on_server=machine.server_holds_state,
    )


def _stages(seen: _Seen, stage: Stage, connected: bool, failure: str | None) -> list[StageInfo]:
    out = []
    end = STAGES.index(stage)
    for i, name in enumerate(STAGES):
        if i < end or (name == "CHILD_SA" and connected):
            out.append(StageInfo(stage=name, result="ok", t=seen.times.get(name)))
        elif i == end:
            t = seen.times.get(name, seen.last_t)
            out.append(StageInfo(stage=name, result="failed", t=t, detail=failure))
        else:
            out.append(StageInfo(stage=name, result="not-reached", t=None))
    return out


def _idr_text(auth: ini.AuthDone) -> str | None:
    if auth.idr is None:
        return None
    if auth.idr_type in (1, 5) and len(auth.idr) in (4, 16):  # ID_IPV4_ADDR, ID_IPV6_ADDR
        return str(ipaddress.ip_address(auth.idr))
    return auth.idr.decode("utf-8", "replace")


def ts_text(ts: TrafficSelector) -> str:
    """ "203.0.113.130/32", "0.0.0.0/0"; a range that is no prefix as "a-b"; ports and protocol in brackets
    when they are not all of them (strongSwan's notation)."""
    start, end = ts.start_ip, ts.end_ip
    if start is None or end is None:
        return f"TS type {ts.ts_type}"
    try:
        nets = list(ipaddress.summarize_address_range(start, end))
    except (TypeError, ValueError):
        nets = []
    text = str(nets[0]) if len(nets) == 1 else f"{start}-{end}"
    if ts.ip_protocol or (ts.start_port, ts.end_port) != (0, 65535):
        ports = str(ts.start_port) if ts.start_port == ts.end_port else f"{ts.start_port}-{ts.end_port}"
        text += f"[{ts.ip_protocol}/{ports}]"
    return text


def _child_info(child: ini.ChildSaResult) -> ChildSaInfo | None:
    suite = child.suite
    if suite is None:
        return None
    return ChildSaInfo(
        esp_proposal=suite.text,
        encryption=name_of(EncrId, suite.encr),
        key_bits=suite.encr_key_bits,
        integrity=name_of(IntegId, suite.integ) if suite.integ is not None else None,
        dh_group=name_of(DhGroup, suite.dh) if suite.dh is not None else None,
        esn=suite.esn,
        ts_i=[ts_text(t) for t in child.ts_i],
        ts_r=[ts_text(t) for t in child.ts_r],
        spi_i=child.spi_i.hex(),
        spi_r=(child.spi_r or b"").hex(),
    )


def _config_info(attributes: tuple[tuple[int, bytes], ...]) -> ConfigInfo:
    info = ConfigInfo(ipv4=[], ipv6=[], dns=[], dns_suffix=[], subnets=[], other=[])
    for kind, value in attributes:
        if kind == CfgAttr.INTERNAL_IP4_ADDRESS and len(value) == 4:
            info.ipv4.append(str(ipaddress.IPv4Address(value)))
        elif kind == CfgAttr.INTERNAL_IP6_ADDRESS and len(value) == 17:
            info.ipv6.append(f"{ipaddress.IPv6Address(value[:16])}/{value[16]}")
        elif kind in (CfgAttr.INTERNAL_IP4_DNS, CfgAttr.INTERNAL_IP6_DNS) and len(value) in (4, 16):
            info.dns.append(str(ipaddress.ip_address(value)))
        elif kind == CfgAttr.INTERNAL_DNS_DOMAIN and value:
            info.dns_suffix.append(value.decode("ascii", "replace"))
        elif kind == CfgAttr.INTERNAL_IP4_SUBNET and len(value) == 8:
            address, mask = ipaddress.IPv4Address(value[:4]), ipaddress.IPv4Address(value[4:])
            try:
                info.subnets.append(str(ipaddress.IPv4Network(f"{address}/{mask}", strict=False)))
            except ValueError:  # a mask that is no prefix
                info.subnets.append(f"{address}/{mask}")
        elif kind == CfgAttr.INTERNAL_IP6_SUBNET and len(value) == 17 and value[16] <= 128:
            info.subnets.append(str(ipaddress.IPv6Network((value[:16], value[16]), strict=False)))
        elif value or kind not in (CfgAttr.INTERNAL_IP4_ADDRESS, CfgAttr.INTERNAL_IP6_ADDRESS):
            info.other.append(name_of(CfgAttr, kind))
    return info


def exit_code(obs: ConnectObservation) -> int:
    """0: the CHILD_SA was established; 1: the server answered but said no (or stopped answering later);
    3: no answer at all (or the attempt was never sent)."""
    if obs.connected:
        return 0
    if obs.cause in ("no-answer", "throttled") and obs.stage_reached == "IKE_SA_INIT":
        return 3
    return 1


def probe(target: str, **kwargs: object) -> ConnectObservation:
    return asyncio.run(run_connect_probe(target, **kwargs))  # type: ignore[arg-type]
