"""Judge `diagnose` observations: pure functions from observations to findings and a verdict.

Every id in `ids.ALL` yields exactly one finding per report (status `skip` with the reason when it could
not be judged). Remedies carry the exact commands of the field guides; error codes are what a Windows
client shows for the fault.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from cryptography import x509

from vpndoctor import __version__
from vpndoctor.checks import ids
from vpndoctor.checks.cert import LintedCertificate
from vpndoctor.checks.certificate import aia_intermediates, aia_note, facts_of, judge_certificate
from vpndoctor.checks.connect import connect_findings, windows_error
from vpndoctor.checks.ids import TITLES
from vpndoctor.checks.model import DiagnoseReport, Finding, Politeness, Target, Verdict, finding
from vpndoctor.checks.revocation import REMEDY_AIA, revocation_finding
from vpndoctor.checks.sstp import check_sstp_handshake, iphttps_findings
from vpndoctor.checks.tunnel import tunnel_findings
from vpndoctor.observations.diagnose import (
    AFFINITY_SAMPLES_NEEDED,
    PROPOSAL_CATALOGUE,
    DiagnoseObservations,
    samples_of,
)
from vpndoctor.observations.ike import IkeObservation

REMEDY_FIREWALL = (
    "Allow the VPN ports through every firewall between clients and the VPN server (edge firewall, load "
    "balancer, Windows Defender Firewall on the server): UDP 500 and UDP 4500 for IKEv2, TCP 443 for SSTP. "
    "On the server:\n"
    "  New-NetFirewallRule -DisplayName 'IKEv2 (UDP 500, 4500)' -Direction Inbound -Protocol UDP "
    "-LocalPort 500,4500 -Action Allow\n"
    "  New-NetFirewallRule -DisplayName 'SSTP (TCP 443)' -Direction Inbound -Protocol TCP -LocalPort 443 "
    "-Action Allow"
)
REMEDY_FRAGMENTATION = (
    "Turn on IKEv2 fragmentation on the VPN server (Windows Server 1803+/2019+):\n"
    "  New-ItemProperty -Path 'HKLM:\\SYSTEM\\CurrentControlSet\\Services\\RemoteAccess\\Parameters\\Ikev2' "
    "-Name EnableServerFragmentation -PropertyType DWORD -Value 1 -Force\n"
    "  Restart-Service RemoteAccess -PassThru\n"
    "(strongSwan: fragmentation = yes in the connection.) Or let IP fragments through the firewalls and "
    "load balancers on the path (allow fragments / disable 'drop IP fragments' on the device "
    "that drops them)."
)
REMEDY_AFFINITY = (
    "Make the load balancer send UDP 500 and UDP 4500 of one client to the same server:\n"
    "  KEMP: enable 'Port Following' between the UDP 500 and UDP 4500 virtual services (source IP "
    "persistence on both).\n"
    "  F5: source-address persistence on both virtual servers with 'Match Across Services' enabled.\n"
    "  NetScaler: bind lb group VPN_GROUP VS_UDP500 VS_UDP4500; set lb group VPN_GROUP -persistenceType "
    "SOURCEIP -timeout 60"
)
REMEDY_CERT = (
    "Issue the VPN server a certificate from a CA the clients trust, with the VPN server's "
    "public name in the "
    "Subject Alternative Name (DNS) and the Server Authentication EKU (1.3.6.1.5.5.7.3.1; add "
    "IP security IKE "
    "intermediate 1.3.6.1.5.5.8.2.2), valid now; bind it on the server:\n"
    "  $cert = Get-ChildItem Cert:\\LocalMachine\\My | Where-Object Subject -Match '<vpn name>'\n"
    "  Set-RemoteAccess -SslCertificate $cert ; Set-VpnAuthProtocol -RootCertificateNameToAccept <root>\n"
    "  Restart-Service RemoteAccess -PassThru"
)
REMEDY_PROPOSALS = (
    "Configure a strong IKEv2 policy on the server and the same CryptographySuite in the client ProfileXML, "
    "e.g. the Always On VPN baseline:\n"
    "  Set-VpnServerConfiguration -CustomPolicy -AuthenticationTransformConstants SHA256128 "
    "-CipherTransformConstants AES128 -DHGroup Group14 -EncryptionMethod AES128 -IntegrityCheckMethod SHA256 "
    "-PfsGroup PFS2048 -SALifeTimeSeconds 28800 -MMSALifeTimeSeconds 86400 "
    "-SADataSizeForRenegotiationKilobytes "
    "1024000\n"
    "  ProfileXML: <CryptographySuite><AuthenticationTransformConstants>SHA256128</AuthenticationTransform"
    "Constants><CipherTransformConstants>AES128</CipherTransformConstants><EncryptionMethod>AES128"
    "</EncryptionMethod><IntegrityCheckMethod>SHA256</IntegrityCheckMethod><DHGroup>Group14</DHGroup>"
    "<PfsGroup>PFS2048</PfsGroup></CryptographySuite>"
)


_f = finding  # the shared builder: title from checks.ids.TITLES


def _skip(fid: str, why: str) -> Finding:
    return _f(fid, "skip", why)


def _answered(o: IkeObservation | None) -> bool:
    """The server answered this probe's IKE_SA_INIT in any way (an SA, an error, a cookie, INVALID_KE)."""
    return o is not None and (
        o.reached != "none"
        or o.error_notify is not None
        or o.stateless_answer is not None
        or o.ke_group_requested is not None
        or o.cookie_rounds > 0
    )


def _ike_probes(obs: DiagnoseObservations) -> list[IkeObservation]:
    found = [obs.ike_main, obs.ike_nofrag, obs.ike_padded, obs.ike_natt_control, obs.profile]
    return (
        [o for o in found if o is not None] + obs.ike_natt + obs.ike_affinity + list(obs.proposals.values())
    )


def throttling(obs: DiagnoseObservations) -> str | None:
    """Why some IKE probes may have gone unanswered for reasons other than a fault, or None.

    Throttling is recognised, never reported as a fault: probes our own budget could not fit before the
    deadline, a COOKIE followed by silence, or IKE_SA_INITs to UDP 500 ignored while others were answered
    (the gateway's per-address half-open limit)."""
    probes = _ike_probes(obs)
    for o in probes:
        if o.throttled:
            return o.throttled
    # The padded IKE_SA_INIT is left out: its silence is what dropped IP fragments look like.
    on_500 = [o for o in probes if o is not obs.ike_padded and o.datagrams and o.datagrams[0].port == 500]
    if any(_answered(o) for o in on_500) and any(not _answered(o) for o in on_500):
        return (
            "the gateway ignored some IKE_SA_INITs on UDP 500 while answering others "
            "(it rate-limits this client)"
        )
    return None


def _throttled_skip(fid: str, why: str, evidence: Mapping[str, object] | None = None) -> Finding:
    return _f(fid, "skip", why, {**(evidence or {}), "throttled": True})


# ---- individual checks -------------------------------------------------------------------------------


def check_dns(obs: DiagnoseObservations) -> Finding:
    req = obs.request
    assert obs.dns is not None
    evidence: dict[str, object] = {
        a.resolver: (list(a.addresses) if a.addresses else a.error) for a in obs.dns.answers
    }
    answered = [a for a in obs.dns.answers if a.addresses]
    failed = [a for a in obs.dns.answers if not a.addresses]
    if failed:
        what = ", ".join(f"{a.resolver}: {a.error}" for a in failed)
        return _f(
            ids.DNS_RESOLUTION,
            "fail",
            f"{req.name} does not resolve ({what}).",
            evidence,
            f"Publish an A (and AAAA) record for {req.name} pointing at the VPN server's public address "
            "on every DNS server clients use.",
            (809, 868),
        )
    sets = {frozenset(a.addresses) for a in answered}
    if len(sets) > 1:
        return _f(
            ids.DNS_RESOLUTION,
            "fail",
            f"Resolvers disagree about {req.name}: "
            + "; ".join(f"{a.resolver} -> {', '.join(a.addresses)}" for a in answered)
            + ".",
            evidence,
            "Make every DNS view (internal and public) answer the same public VPN address.",
            (809,),
        )
    addrs = sorted({x for a in answered for x in a.addresses})
    if req.expect_ips and not set(req.expect_ips) & set(addrs):
        return _f(
            ids.DNS_RESOLUTION,
            "fail",
            f"{req.name} resolves to {', '.join(addrs)}, not to the expected {', '.join(req.expect_ips)}.",
            {**evidence, "expected": req.expect_ips},
            f"Point the {req.name} record at {', '.join(req.expect_ips)}.",
            (809,),
        )
    private = [a for a in addrs if ipaddress.ip_address(a).is_private and not _documentation(a)]
    public_resolvers = [a for a in answered if a.resolver != "system" and not _is_private_ip(a.resolver)]
    if private and public_resolvers:
        return _f(
            ids.DNS_RESOLUTION,
            "warn",
            f"A public resolver answers private addresses "
            f"({', '.join(private)}): clients outside cannot reach them.",
            evidence,
            "Publish the VPN server's public address in public DNS.",
            (809,),
        )
    return _f(ids.DNS_RESOLUTION, "pass", f"{req.name} resolves to {', '.join(addrs)}.", evidence)


def _documentation(addr: str) -> bool:
    ip = ipaddress.ip_address(addr)
    nets = ("192.0.2.0/24", "198.51.100.0/24", "203.0.113.0/24", "2001:db8::/32")
    return any(ip in ipaddress.ip_network(n) for n in nets if ip.version == ipaddress.ip_network(n).version)


def _is_private_ip(addr: str) -> bool:
    try:
        ip = ipaddress.ip_address(addr)
    except ValueError:
        return False
    return ip.is_private and not _documentation(addr)


def check_tcp443(obs: DiagnoseObservations) -> Finding:
    tls = obs.tls
    if tls is None:
        return _skip(ids.TCP443_REACHABLE, "SSTP not among --protocols")
    evidence = {
        "address": tls.address,
        "port": tls.port,
        "connected": tls.connected,
        "handshake": tls.handshake,
        "tls_version": tls.version,
        "cipher": tls.cipher,
        "error": tls.error,
    }
    if tls.handshake:
        return _f(
            ids.TCP443_REACHABLE, "pass", f"TLS handshake completed ({tls.version}, {tls.cipher}).", evidence
        )
    return _f(
        ids.TCP443_REACHABLE, "fail", f"{tls.error} on {tls.address}:443.", evidence, REMEDY_FIREWALL, (809,)
    )


def check_udp500(obs: DiagnoseObservations) -> Finding:
    main = obs.ike_main
    if main is None:
        return _skip(ids.IKE_UDP500_REACHABLE, "IKEv2 not among --protocols")
    first = next((d for d in main.datagrams if d.dir == "in"), None)
    on_500 = [o for o in _ike_probes(obs) if o.datagrams and o.datagrams[0].port == 500]
    answered = [o for o in on_500 if _answered(o)]
    sent = sum(1 for o in on_500 for d in o.datagrams if d.dir == "out" and d.port == 500)
    evidence = {
        "reached": main.reached,
        "error_notify": main.error_notify,
        "first_answer": first.summary if first else None,
        "icmp_errors": main.icmp_errors,
        "probes_answered": f"{len(answered)}/{len(on_500)}",
    }
    if answered:
        return _f(
            ids.IKE_UDP500_REACHABLE,
            "pass",
            f"The server answered IKE_SA_INIT on UDP 500 ({len(answered)} of {len(on_500)} probes).",
            evidence,
        )
    why = throttling(obs)
    if why is not None and sent == 0:
        return _throttled_skip(ids.IKE_UDP500_REACHABLE, f"Not probed: {why}.", evidence)
    return _f(
        ids.IKE_UDP500_REACHABLE,
        "fail",
        f"No answer to IKE_SA_INIT on UDP 500 ({sent} requests sent by {len(on_500)} probes). A gateway "
        "that already ignores this client's address (its per-address half-open limit reached by other "
        "clients behind the same address) looks the same: try again in a minute or from another address "
        "before opening ports.",
        evidence,
        REMEDY_FIREWALL,
        (809,),
    )


def check_udp4500(obs: DiagnoseObservations) -> Finding:
    if obs.ike_main is None:
        return _skip(ids.IKE_UDP4500_REACHABLE, "IKEv2 not among --protocols")
    natt_ok = [o for o in obs.ike_natt if _answered(o)]
    samples = samples_of(_with_samples(obs))
    auth_ok = samples.count("answered")
    control = obs.ike_natt_control
    evidence: dict[str, object] = {
        "sa_init_on_4500_answered": f"{len(natt_ok)}/{len(obs.ike_natt)}",
        "ike_auth_on_4500_answered": f"{auth_ok}/{len(samples)}",
        "control_on_500_after": None if control is None else _answered(control),
    }
    if natt_ok or auth_ok:
        return _f(
            ids.IKE_UDP4500_REACHABLE,
            "pass",
            "The server answers on UDP 4500 "
            f"(IKE_SA_INIT on 4500: {len(natt_ok)}/{len(obs.ike_natt)}, IKE_AUTH after floating: "
            f"{auth_ok}/{len(samples)}).",
            evidence,
        )
    if not _answered(obs.ike_main) and not any(_answered(o) for o in _ike_probes(obs)):
        return _skip(ids.IKE_UDP4500_REACHABLE, "the server does not answer IKE on UDP 500 either")
    if control is None or not _answered(control):
        # The gateway stopped answering UDP 500 too: it is ignoring this client, so 4500's silence
        # proves nothing about the port.
        return _throttled_skip(
            ids.IKE_UDP4500_REACHABLE,
            "Nothing was answered on UDP 4500, but the gateway did not answer UDP 500 right after either: "
            "it rate-limits this client, so the port cannot be judged now.",
            evidence,
        )
    return _f(
        ids.IKE_UDP4500_REACHABLE,
        "fail",
        "Nothing is answered on UDP 4500: neither an IKE_SA_INIT sent there "
        f"({len(obs.ike_natt)} attempts) nor an IKE_AUTH after floating ({len(samples)} attempts), "
        "while UDP 500 answered right after - the port is blocked, not the client throttled.",
        evidence,
        REMEDY_FIREWALL,
        (809,),
    )


def _with_samples(obs: DiagnoseObservations) -> list[IkeObservation]:
    found = [o for o in (obs.ike_main, obs.ike_nofrag) if o is not None]
    return found + obs.ike_affinity


def _fragment_directions(obs: DiagnoseObservations) -> dict[str, object]:
    """What the padded IKE_SA_INIT and the unfragmented IKE_AUTH tell about each direction."""
    main, padded, nofrag = obs.ike_main, obs.ike_padded, obs.ike_nofrag
    out: dict[str, object] = {"client_to_server": "unknown", "server_to_client": "unknown"}
    if main is None or main.reached == "none":
        return out
    if padded is not None:
        padded_size = max((d.size for d in padded.datagrams if d.dir == "out"), default=0)
        out["padded_sa_init_bytes"] = padded_size
        # Sent at the same moment as the stateless proposal probes: if those were answered and this one
        # was not, its size is what was different.
        peers = [o for o in obs.proposals.values() if o.datagrams]
        if _answered(padded):
            out["client_to_server"] = "ok"
        elif padded.datagrams and any(_answered(o) for o in peers):
            out["client_to_server"] = "dropped"
    small_4500 = [o for o in _with_samples(obs) if "answered" in o.natt_samples and o is not nofrag] + [
        o for o in obs.ike_natt if _answered(o)
    ]
    if nofrag is not None and nofrag.reached != "none":
        if nofrag.reached == "IKE_AUTH":
            big = max((d.size for d in nofrag.datagrams if d.dir == "in"), default=0)
            out["unfragmented_response_bytes"] = big
            out["server_to_client"] = "ok" if big > 1472 else "ok (response fits one datagram)"
        elif nofrag.timeout_exchange == "IKE_AUTH" and small_4500 and not nofrag.left_half_open:
            # The SA it asked about was alive (the small request that ended it was answered), and small
            # answers come through: only the big, IP-fragmented one is lost.
            # Small messages on 4500 get through, the certificate-bearing response never does.
            out["server_to_client"] = "dropped"
    return out


def check_path_fragments(obs: DiagnoseObservations) -> Finding:
    if obs.ike_main is None:
        return _skip(ids.PATH_IP_FRAGMENTS, "IKEv2 not among --protocols")
    if obs.ike_main.throttled:
        return _throttled_skip(ids.PATH_IP_FRAGMENTS, f"Not probed: {obs.ike_main.throttled}.")
    if obs.ike_main.reached == "none":
        return _skip(ids.PATH_IP_FRAGMENTS, "the server does not answer IKE at all")
    d = _fragment_directions(obs)
    dropped = [k for k in ("client_to_server", "server_to_client") if d[k] == "dropped"]
    frag = obs.ike_main.fragmentation_supported
    d["server_ikev2_fragmentation"] = frag
    if not dropped:
        if d["client_to_server"] == "unknown" and d["server_to_client"] == "unknown":
            return _f(ids.PATH_IP_FRAGMENTS, "skip", "Could not be judged.", d)
        return _f(
            ids.PATH_IP_FRAGMENTS,
            "pass",
            "IP-fragmented IKE messages cross the path in both directions "
            f"(client to server: {d['client_to_server']}; server to client: {d['server_to_client']}).",
            d,
        )
    words = " and ".join(
        {"client_to_server": "client to server", "server_to_client": "server to client"}[k] for k in dropped
    )
    detail = (
        f"IP fragments are dropped between client and server ({words}): an IKE message larger than the "
        "path MTU - such as the certificate-bearing IKE_AUTH - never arrives."
    )
    if frag:
        return _f(
            ids.PATH_IP_FRAGMENTS,
            "warn",
            detail + " IKEv2 fragmentation on the server works around it.",
            d,
            "Let IP fragments through the device that drops them, or keep IKEv2 fragmentation on.",
        )
    return _f(
        ids.PATH_IP_FRAGMENTS,
        "fail",
        detail + " The server does not offer IKEv2 fragmentation, so clients time out (error 809).",
        d,
        REMEDY_FRAGMENTATION,
        (809,),
    )


def check_fragmentation(obs: DiagnoseObservations) -> Finding:
    main = obs.ike_main
    if main is None:
        return _skip(ids.IKE_FRAGMENTATION_SUPPORTED, "IKEv2 not among --protocols")
    if main.throttled:
        return _throttled_skip(ids.IKE_FRAGMENTATION_SUPPORTED, f"Not probed: {main.throttled}.")
    if main.reached == "none":
        return _skip(ids.IKE_FRAGMENTATION_SUPPORTED, "no IKE_SA_INIT response to inspect")
    evidence = {"notifies": main.notifies}
    if main.fragmentation_supported:
        return _f(
            ids.IKE_FRAGMENTATION_SUPPORTED,
            "pass",
            "IKE_SA_INIT response carries IKEV2_FRAGMENTATION_SUPPORTED.",
            evidence,
        )
    dropped = "dropped" in _fragment_directions(obs).values()
    if dropped:
        return _f(
            ids.IKE_FRAGMENTATION_SUPPORTED,
            "fail",
            "The server does not offer IKEv2 fragmentation and "
            "IP fragments are dropped on the path: large IKE messages are lost.",
            evidence,
            REMEDY_FRAGMENTATION,
            (809,),
        )
    return _f(
        ids.IKE_FRAGMENTATION_SUPPORTED,
        "warn",
        "The server does not offer IKEv2 fragmentation; the path "
        "carries IP fragments today, but any firewall that drops them will cause error 809.",
        evidence,
        REMEDY_FRAGMENTATION,
    )


def check_affinity(obs: DiagnoseObservations) -> Finding:
    if obs.ike_main is None:
        return _skip(ids.LB_PORT_AFFINITY, "IKEv2 not among --protocols")
    probes = _with_samples(obs)
    samples = samples_of(probes)
    answered = samples.count("answered")
    evidence: dict[str, object] = {
        "samples": len(samples),
        "samples_answered_on_4500": answered,
        "samples_elsewhere": samples.count("elsewhere"),
        "samples_lost": samples.count("lost"),
        "samples_needed": AFFINITY_SAMPLES_NEEDED,
        "sas": len(probes),
    }
    why = throttling(obs)
    if not any(_answered(o) for o in probes):
        text = "no IKE_SA_INIT was answered, so the 4500 flows could not be compared"
        if why is not None:
            return _throttled_skip(ids.LB_PORT_AFFINITY, f"{text}: {why}.", evidence)
        return _skip(ids.LB_PORT_AFFINITY, text)
    # A request answered on 500 after silence on 4500 says "elsewhere" only if 4500 answers at all;
    # otherwise it is what a blocked port looks like (ike.udp4500.reachable).
    natt_works = answered > 0 or any(_answered(o) for o in obs.ike_natt)
    for o in probes if natt_works else ():
        if "elsewhere" in o.natt_samples:
            at = o.natt_samples.index("elsewhere")
            evidence["first_elsewhere"] = {
                "spi_i": o.spi_i,
                "request": at + 1,
                "answered_on_4500": o.natt_samples[:at].count("answered"),
                "ladder": [f"{d.dir} {d.port} {d.summary}" for d in o.datagrams][:12],
            }
            return _f(
                ids.LB_PORT_AFFINITY,
                "fail",
                "An IKE_AUTH sent to UDP 4500 from a new source port went unanswered, and the same request "
                "sent to UDP 500 was answered by the server holding the SA: the load balancer sent the "
                "client's UDP 4500 flow to a different server than its UDP 500 flow "
                f"({answered} of {len(samples)} samples had agreed before).",
                evidence,
                REMEDY_AFFINITY,
                (809,),
            )
    if answered >= AFFINITY_SAMPLES_NEEDED:
        return _f(
            ids.LB_PORT_AFFINITY,
            "pass",
            f"{answered} of {len(samples)} IKE requests sent to UDP 4500 from new source ports reached the "
            f"server that set the SA up on UDP 500 (at least {AFFINITY_SAMPLES_NEEDED} needed; all agreeing "
            f"by chance under per-port scheduling: 1 in {2**answered}).",
            evidence,
        )
    if answered == 0 and not any(_answered(o) for o in obs.ike_natt):
        text = (
            "Nothing was answered on UDP 4500 at all (see ike.udp4500.reachable): affinity cannot be judged"
        )
        if why is not None:
            return _throttled_skip(ids.LB_PORT_AFFINITY, f"{text}; {why}.", evidence)
        return _skip(ids.LB_PORT_AFFINITY, text + ".")
    text = f"Inconclusive ({answered} samples, {AFFINITY_SAMPLES_NEEDED} needed)"
    if why is not None:
        return _throttled_skip(ids.LB_PORT_AFFINITY, f"{text}: {why}.", evidence)
    return _f(ids.LB_PORT_AFFINITY, "skip", text + ".", evidence)


def _certificate(obs: DiagnoseObservations) -> tuple[x509.Certificate | None, IkeObservation | None, str]:
    main = obs.ike_main
    if main is None:
        return None, None, "IKEv2 not among --protocols"
    if main.throttled:
        return None, main, f"not probed: {main.throttled}"
    if not main.certificate_chain_pem:
        return None, main, "the server sent no certificate in IKE_AUTH"
    return x509.load_pem_x509_certificate(main.certificate_chain_pem[0].encode()), main, ""


def check_certificates(obs: DiagnoseObservations, now: datetime) -> list[Finding]:
    """cert.name, cert.eku, cert.validity, cert.trust: the IKE gateway certificate as `checks.certificate`
    judges it for the VPN name, with the IKE EKUs (serverAuth, and the IKE intermediate recommended)."""
    cert, main, why = _certificate(obs)
    fids = (ids.CERT_NAME, ids.CERT_EKU, ids.CERT_VALIDITY, ids.CERT_TRUST)
    if cert is None or main is None:
        if main is not None and main.throttled:
            return [_throttled_skip(fid, why) for fid in fids]
        return [_skip(fid, why) for fid in fids]
    name = obs.request.name
    anchors, source = obs.anchors, obs.anchor_source
    chain = [x509.load_pem_x509_certificate(p.encode()) for p in main.certificate_chain_pem[1:]]
    # The chain as sent, completed (as Windows does) by an intermediate the revocation step fetched via AIA.
    facts = facts_of(cert, chain, anchors, aia_intermediates(obs.revocation))
    judged = judge_certificate(facts, name, now, ike=True)
    evidence_base = {
        "subject": facts.subject,
        "issuer": facts.issuer,
        "auth_verified": main.auth_verified,
    }
    out: list[Finding] = []
    names = ", ".join(judged.presented)
    ev = {
        **evidence_base,
        "san_dns": list(facts.san_dns),
        "san_ip": list(facts.san_ip),
        "cn": list(facts.common_names),
        "expected": name,
    }
    if judged.name.status == "ok":
        where = "CN" if judged.name.reason == "cn" else "SAN"
        out.append(_f(ids.CERT_NAME, "pass", f"{name} matches {where} {names}.", ev))
    else:
        out.append(
            _f(
                ids.CERT_NAME,
                "fail",
                f"The certificate names {names or 'nothing'}, not {name}.",
                ev,
                REMEDY_CERT,
                (13801,),
            )
        )
    ev = {**evidence_base, "eku": list(facts.eku)}
    if judged.eku.status == "bad":
        out.append(
            _f(
                ids.CERT_EKU,
                "fail",
                "The certificate lacks the Server Authentication EKU "
                "(1.3.6.1.5.5.7.3.1); Windows clients refuse it.",
                ev,
                REMEDY_CERT,
                (13801,),
            )
        )
    elif judged.eku.status == "warn":
        out.append(
            _f(
                ids.CERT_EKU,
                "warn",
                "Server Authentication is present but the IP security IKE intermediate "
                "EKU (1.3.6.1.5.5.8.2.2) is missing (recommended for IKEv2).",
                ev,
                REMEDY_CERT,
            )
        )
    else:
        out.append(
            _f(
                ids.CERT_EKU,
                "pass",
                "Server Authentication and IP security IKE intermediate EKUs present.",
                ev,
            )
        )
    nb, na = facts.not_before, facts.not_after
    ev = {**evidence_base, "not_before": nb.isoformat(), "not_after": na.isoformat()}
    validity = judged.validity
    if validity.reason == "expired":
        out.append(
            _f(
                ids.CERT_VALIDITY,
                "fail",
                f"The certificate expired on {na:%Y-%m-%d}.",
                ev,
                REMEDY_CERT,
                (13801,),
            )
        )
    elif validity.reason == "not-yet-valid":
        out.append(
            _f(
                ids.CERT_VALIDITY,
                "fail",
                f"The certificate is not valid before {nb:%Y-%m-%d}.",
                ev,
                REMEDY_CERT,
                (13801,),
            )
        )
    elif validity.reason == "expires-soon":
        out.append(
            _f(
                ids.CERT_VALIDITY,
                "warn",
                f"The certificate {validity.evidence}.",
                ev,
                REMEDY_CERT,
            )
        )
    else:
        out.append(_f(ids.CERT_VALIDITY, "pass", f"Valid {nb:%Y-%m-%d} .. {na:%Y-%m-%d}.", ev))
    ev = {**evidence_base, "anchors": source, "anchor_count": len(anchors)}
    if not main.auth_verified:
        out.append(
            _f(
                ids.CERT_TRUST,
                "fail",
                "The server's AUTH payload does not verify with the certificate it "
                f"sent ({main.auth_reason}).",
                ev,
                REMEDY_CERT,
                (13801,),
            )
        )
    elif judged.trust.status == "ok":
        out.append(_f(ids.CERT_TRUST, "pass", f"Chains to a CA in {source}.", ev))
    elif judged.trust.reason == "chains-through-aia":
        ev["aia_intermediates"] = [{"subject": a.subject, "url": a.url} for a in facts.via_aia]
        out.append(
            _f(
                ids.CERT_TRUST,
                "warn",
                f"Chains to a CA in {source} only through AIA: {aia_note(facts.via_aia)}.",
                ev,
                REMEDY_AIA,
            )
        )
    else:  # untrusted, or no anchors at all (an empty system store): nothing vouches for it
        out.append(
            _f(
                ids.CERT_TRUST,
                "fail",
                f"Issued by {facts.issuer}, which is not in {source}: Windows clients report error 13801.",
                ev,
                REMEDY_CERT,
                (13801,),
            )
        )
    return out


def check_revocation(obs: DiagnoseObservations, now: datetime) -> Finding:
    """cert.revocation: the CRLs and OCSP answers of the IKE certificate chain (checks.revocation)."""
    cert, main, why = _certificate(obs)
    if cert is None or main is None:
        if main is not None and main.throttled:
            return _throttled_skip(ids.CERT_REVOCATION, why)
        return _skip(ids.CERT_REVOCATION, why)
    return revocation_finding(
        ids.CERT_REVOCATION, obs.revocation, now, "ike", why_not="the revocation step did not run"
    )


def check_proposals(obs: DiagnoseObservations) -> Finding:
    if obs.ike_main is None:
        return _skip(ids.IKE_PROPOSALS_STRENGTH, "IKEv2 not among --protocols")
    if not any(_answered(o) for o in _ike_probes(obs)):
        return _skip(ids.IKE_PROPOSALS_STRENGTH, "the server does not answer IKE_SA_INIT")
    answers = {label: o.stateless_answer for label, o in obs.proposals.items()}
    strength = {label: s for label, _, s in PROPOSAL_CATALOGUE}
    weak = [k for k, v in answers.items() if v == "accepted" and strength[k] == "weak"]
    strong = [k for k, v in answers.items() if v == "accepted" and strength[k] == "strong"]
    unanswered = [k for k, v in answers.items() if v is None]
    evidence: dict[str, object] = {
        "accepted": [k for k, v in answers.items() if v == "accepted"],
        "refused": [k for k, v in answers.items() if v == "refused"],
        "unanswered": unanswered,
        "method": "stateless: a KE payload of another group; INVALID_KE_PAYLOAD = accepted, "
        "NO_PROPOSAL_CHOSEN = refused (RFC 7296 1.3, 2.7)",
    }
    strong_unknown = [k for k in unanswered if strength[k] == "strong"]
    weak_unknown = [k for k in unanswered if strength[k] == "weak"]
    if weak and not strong and not strong_unknown:
        return _f(
            ids.IKE_PROPOSALS_STRENGTH,
            "fail",
            f"The server accepts only weak proposals ({', '.join(weak)}): "
            "3DES/SHA-1/MODP-1024, Windows' legacy default.",
            evidence,
            REMEDY_PROPOSALS,
            (13868,),
        )
    if weak and strong:
        return _f(
            ids.IKE_PROPOSALS_STRENGTH,
            "warn",
            f"Weak proposals are accepted beside strong ones ({', '.join(weak)}).",
            evidence,
            REMEDY_PROPOSALS,
        )
    if strong and not weak_unknown:
        return _f(
            ids.IKE_PROPOSALS_STRENGTH,
            "pass",
            f"Only strong proposals are accepted ({', '.join(strong)}).",
            evidence,
        )
    if unanswered:
        why = throttling(obs) or "no answer"
        return _throttled_skip(
            ids.IKE_PROPOSALS_STRENGTH,
            f"{len(unanswered)} of {len(answers)} proposal probes went unanswered ({why}).",
            evidence,
        )
    return _f(ids.IKE_PROPOSALS_STRENGTH, "skip", "None of the catalogue's proposals was accepted.", evidence)


def check_client_match(obs: DiagnoseObservations) -> Finding:
    if obs.request.profile_proposal is None:
        return _skip(ids.IKE_PROPOSALS_CLIENT_MATCH, "no --profile given")
    o = obs.profile
    if o is None:
        return _skip(ids.IKE_PROPOSALS_CLIENT_MATCH, "IKEv2 not among --protocols")
    evidence = {
        "profile_proposal": obs.request.profile_proposal,
        "answer": o.stateless_answer or o.error_notify or "none",
    }
    if o.stateless_answer == "accepted":
        return _f(
            ids.IKE_PROPOSALS_CLIENT_MATCH,
            "pass",
            f"The server accepts the profile's {obs.request.profile_proposal}.",
            evidence,
        )
    if o.stateless_answer == "refused":
        return _f(
            ids.IKE_PROPOSALS_CLIENT_MATCH,
            "fail",
            f"The server refuses the profile's "
            f"{obs.request.profile_proposal} with NO_PROPOSAL_CHOSEN: clients get error 13868.",
            evidence,
            REMEDY_PROPOSALS,
            (13868,),
        )
    why = throttling(obs)
    if why is not None:
        return _throttled_skip(
            ids.IKE_PROPOSALS_CLIENT_MATCH, f"The profile's proposal went unanswered: {why}.", evidence
        )
    return _f(
        ids.IKE_PROPOSALS_CLIENT_MATCH, "skip", "The server did not answer the profile's proposal.", evidence
    )


# ---- report --------------------------------------------------------------------------------------------

CAUSE_TEXT = {
    ids.DNS_RESOLUTION: "the VPN name does not resolve to the VPN server",
    ids.IKE_UDP500_REACHABLE: "UDP 500 is blocked on the way to the server",
    ids.IKE_UDP4500_REACHABLE: "UDP 4500 is blocked on the way to the server",
    ids.TCP443_REACHABLE: "TCP 443 is blocked, so SSTP cannot connect",
    ids.SSTP_HANDSHAKE: "the SSTP handshake does not complete, so SSTP clients cannot connect",
    ids.IPHTTPS_TLS: "the IP-HTTPS endpoint does not complete a TLS handshake",
    ids.IPHTTPS_HTTP: "the IP-HTTPS endpoint does not answer POST /IPHTTPS with 200",
    ids.IPHTTPS_CLIENT_AUTH: "the IP-HTTPS client certificate is refused",
    ids.IPHTTPS_NULL_ENCRYPTION: "the IP-HTTPS endpoint refuses NULL encryption",
    ids.PATH_IP_FRAGMENTS: "IP fragments are dropped between client and server, so the "
    "large IKE_AUTH message "
    "carrying the server certificate never arrives",
    ids.IKE_FRAGMENTATION_SUPPORTED: "the server does not offer IKEv2 fragmentation, which would avoid IP "
    "fragments",
    ids.LB_PORT_AFFINITY: "the load balancer sends UDP 500 and UDP 4500 of one client to different servers",
    ids.CERT_TRUST: "the server certificate is not trusted",
    ids.CERT_VALIDITY: "the server certificate is outside its validity period",
    ids.CERT_NAME: "the server certificate does not name the VPN server",
    ids.CERT_EKU: "the server certificate lacks the Server Authentication EKU",
    ids.CERT_REVOCATION: "the server certificate is revoked",
    ids.IKE_PROPOSALS_CLIENT_MATCH: "the server refuses the client's IKE proposal",
    ids.IKE_PROPOSALS_STRENGTH: "the server accepts only weak IKE proposals",
    # with credentials only (diagnose --user / --machine-cert): the connect attempt (checks.connect)
    ids.AUTH_SERVER: "the server's IKE authentication is not acceptable",
    ids.AUTH_EAP: "the user's EAP authentication fails",
    ids.AUTH_IKE_SA: "the IKE SA is not established after authentication",
    ids.CHILD_SA_ESTABLISHED: "the tunnel (CHILD_SA) is not established",
    ids.CHILD_SA_PROPOSAL: "the server chooses a broken ESP proposal",
    ids.CHILD_SA_CONFIG: "the server hands out no address",
    # ... and what then passed through the tunnel (checks.tunnel)
    ids.TUNNEL_REACHABILITY: "inside hosts do not answer through the tunnel",
    ids.TUNNEL_DNS: "the DNS server handed out does not answer through the tunnel",
    ids.TUNNEL_MTU: "large packets do not cross the tunnel",
    ids.TUNNEL_REKEY: "the tunnel does not survive a rekey",
}


def judge(
    obs: DiagnoseObservations,
    *,
    now: datetime | None = None,
    machine_lint: LintedCertificate | None = None,
) -> DiagnoseReport:
    """The report; the `auth.*` / `child_sa.*` findings only when a connect attempt was made (credentials
    given and IKE_SA_INIT worked), after the others, counting in the verdict. `machine_lint`: a device
    tunnel's certificate linted for a device (as `vpndoctor connect` does)."""
    now = now or datetime.now(UTC)
    findings: dict[str, Finding] = {}
    findings[ids.DNS_RESOLUTION] = check_dns(obs)
    iphttps = "iphttps" in obs.request.protocols
    order = ids.ALL + (ids.IPHTTPS_ALL if iphttps else ())
    if obs.address is None:
        for fid in order:
            if fid != ids.DNS_RESOLUTION:
                findings[fid] = Finding(
                    id=fid,
                    status="skip",
                    title=TITLES[fid],
                    detail="no address to probe: the name does not resolve and no --address given",
                )
    else:
        if iphttps:
            found = iphttps_findings(obs.iphttps) if obs.iphttps is not None else []
            for f in found:
                findings[f.id] = f
            for fid in ids.IPHTTPS_ALL:
                if fid not in findings:
                    findings[fid] = Finding(id=fid, status="skip", title=TITLES[fid], detail="not probed")
        for f in (
            check_tcp443(obs),
            check_sstp_handshake(obs.sstp, asked="sstp" in obs.request.protocols),
            check_udp500(obs),
            check_udp4500(obs),
            check_fragmentation(obs),
            check_path_fragments(obs),
            check_affinity(obs),
            check_proposals(obs),
            check_client_match(obs),
            *check_certificates(obs, now),
            check_revocation(obs, now),
        ):
            findings[f.id] = f
    ordered = [findings[fid] for fid in order]
    if obs.connect is not None:
        ordered += connect_findings(obs.connect, windows_error(obs.connect, machine_lint))
        ordered += tunnel_findings(obs.connect.tunnel)
    failing = [f.id for f in ordered if f.status == "fail"]
    verdict = Verdict(
        status="problems" if failing else "healthy",
        root_causes=failing,
        summary=_summary(obs, ordered, failing),
    )
    addresses = sorted({a for ans in (obs.dns.answers if obs.dns else ()) for a in ans.addresses})
    if obs.address and obs.address not in addresses:
        addresses.insert(0, obs.address)
    return DiagnoseReport(
        tool={"name": "vpndoctor", "version": __version__},
        target=Target(name=obs.request.name, addresses=addresses),
        started_at=obs.started_at,
        duration_s=round(obs.duration_s, 3),
        round_trips=obs.round_trips,
        verdict=verdict,
        findings=ordered,
        politeness=_politeness(obs.politeness),
    )


def _politeness(stats: dict[str, Any]) -> Politeness | None:
    if not stats:
        return None
    return Politeness(**{**stats, "rate_cap_pps": float(stats["rate_cap_pps"])})


def _summary(obs: DiagnoseObservations, findings: list[Finding], failing: list[str]) -> str:
    name = obs.request.name
    warns = [f for f in findings if f.status == "warn"]
    notes = "".join(
        f" Worth a look - {f.id}: {f.detail}" + (f" {f.remedy.splitlines()[0]}" if f.remedy else "")
        for f in warns
    )
    if not failing:
        return f"{name}: no problem found that would stop an Always On VPN client from connecting.{notes}"
    codes = sorted({c for f in findings if f.status == "fail" for c in f.error_codes})
    causes = "; ".join(CAUSE_TEXT[fid] for fid in failing)
    first = next(f for f in findings if f.id == failing[0])
    fix = " ".join(line.strip() for line in first.remedy.splitlines()) if first.remedy else ""
    code_text = f" Clients would report error {', '.join(str(c) for c in codes)}." if codes else ""
    return f"{name}: {causes}.{code_text} First fix: {fix}{notes}"
