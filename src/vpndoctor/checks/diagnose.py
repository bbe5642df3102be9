"""Judge `diagnose` observations: pure functions from observations to findings and a verdict.

Every id in `ids.ALL` yields exactly one finding per report (status `skip` with the reason when it could
not be judged). Remedies carry the exact commands of the field guides; error codes are what a Windows
client shows for the fault.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime, timedelta

from cryptography import x509
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from vpndoctor import __version__
from vpndoctor.certs import issued_by_anchor
from vpndoctor.checks import ids
from vpndoctor.checks.model import DiagnoseReport, Finding, Status, Target, Verdict
from vpndoctor.checks.sstp import TITLES as SSTP_TITLES
from vpndoctor.checks.sstp import check_sstp_handshake, iphttps_findings
from vpndoctor.probes.diagnose import PROPOSAL_CATALOGUE, DiagnoseObservations
from vpndoctor.probes.ike import IkeObservation

IKE_INTERMEDIATE = "1.3.6.1.5.5.8.2.2"
EXPIRY_WARNING = timedelta(days=30)

TITLES = {
    ids.DNS_RESOLUTION: "DNS resolves the VPN name",
    ids.TCP443_REACHABLE: "TCP 443 (SSTP) accepts a TLS handshake",
    ids.IKE_UDP500_REACHABLE: "IKE_SA_INIT is answered on UDP 500",
    ids.IKE_UDP4500_REACHABLE: "IKE is answered on UDP 4500 (NAT-T)",
    ids.IKE_FRAGMENTATION_SUPPORTED: "The server supports IKEv2 fragmentation (RFC 7383)",
    ids.PATH_IP_FRAGMENTS: "IP fragments survive the path in both directions",
    ids.LB_PORT_AFFINITY: "UDP 500 and UDP 4500 of one client reach the same server",
    ids.CERT_NAME: "The server certificate names the VPN server",
    ids.CERT_EKU: "The server certificate has the Server Authentication EKU",
    ids.CERT_VALIDITY: "The server certificate is within its validity period",
    ids.CERT_TRUST: "The server certificate chains to a trusted CA",
    ids.IKE_PROPOSALS_STRENGTH: "The server accepts only strong IKE proposals",
    ids.IKE_PROPOSALS_CLIENT_MATCH: "The server accepts the client profile's CryptographySuite",
}

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


def _f(
    fid: str,
    status: Status,
    detail: str,
    evidence: Mapping[str, object] | None = None,
    remedy: str = "",
    codes: Iterable[int] = (),
) -> Finding:
    return Finding(
        id=fid,
        status=status,
        title=TITLES[fid],
        detail=detail,
        evidence=dict(evidence or {}),
        remedy=remedy,
        error_codes=list(codes),
    )


def _skip(fid: str, why: str) -> Finding:
    return _f(fid, "skip", why)


def _answered(o: IkeObservation | None) -> bool:
    return o is not None and o.reached != "none" or (o is not None and o.error_notify is not None)


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
    evidence = {
        "reached": main.reached,
        "error_notify": main.error_notify,
        "first_answer": first.summary if first else None,
        "icmp_errors": main.icmp_errors,
    }
    if (
        main.reached != "none"
        or main.error_notify is not None
        or main.ke_group_requested
        or main.cookie_rounds
    ):
        return _f(ids.IKE_UDP500_REACHABLE, "pass", "The server answered IKE_SA_INIT on UDP 500.", evidence)
    return _f(
        ids.IKE_UDP500_REACHABLE,
        "fail",
        "No answer to IKE_SA_INIT on UDP 500 "
        f"({sum(1 for d in main.datagrams if d.dir == 'out')} requests sent).",
        evidence,
        REMEDY_FIREWALL,
        (809,),
    )


def check_udp4500(obs: DiagnoseObservations) -> Finding:
    if obs.ike_main is None:
        return _skip(ids.IKE_UDP4500_REACHABLE, "IKEv2 not among --protocols")
    natt_ok = [o for o in obs.ike_natt if o.reached != "none" or o.error_notify is not None]
    auth_ok = [o for o in obs.ike_affinity if o.reached == "IKE_AUTH"]
    evidence = {
        "sa_init_on_4500_answered": f"{len(natt_ok)}/{len(obs.ike_natt)}",
        "ike_auth_on_4500_answered": f"{len(auth_ok)}/{len(obs.ike_affinity)}",
    }
    if natt_ok or auth_ok:
        return _f(
            ids.IKE_UDP4500_REACHABLE,
            "pass",
            "The server answers on UDP 4500 "
            f"(IKE_SA_INIT on 4500: {len(natt_ok)}/{len(obs.ike_natt)}, IKE_AUTH after floating: "
            f"{len(auth_ok)}/{len(obs.ike_affinity)}).",
            evidence,
        )
    return _f(
        ids.IKE_UDP4500_REACHABLE,
        "fail",
        "Nothing is answered on UDP 4500: neither an IKE_SA_INIT sent "
        "there nor an IKE_AUTH after floating, over "
        f"{len(obs.ike_natt) + len(obs.ike_affinity)} attempts.",
        evidence,
        REMEDY_FIREWALL,
        (809,),
    )


def _fragment_directions(obs: DiagnoseObservations) -> dict[str, object]:
    """What the padded IKE_SA_INIT and the unfragmented IKE_AUTH tell about each direction."""
    main, padded, nofrag = obs.ike_main, obs.ike_padded, obs.ike_nofrag
    out: dict[str, object] = {"client_to_server": "unknown", "server_to_client": "unknown"}
    if main is None or main.reached == "none":
        return out
    if padded is not None:
        padded_size = max((d.size for d in padded.datagrams if d.dir == "out"), default=0)
        out["padded_sa_init_bytes"] = padded_size
        out["client_to_server"] = "ok" if padded.reached != "none" else "dropped"
    small_4500 = [o for o in obs.ike_affinity if o.reached == "IKE_AUTH"] + [
        o for o in obs.ike_natt if o.reached != "none"
    ]
    if nofrag is not None and nofrag.reached != "none":
        if nofrag.reached == "IKE_AUTH":
            big = max((d.size for d in nofrag.datagrams if d.dir == "in"), default=0)
            out["unfragmented_response_bytes"] = big
            out["server_to_client"] = "ok" if big > 1472 else "ok (response fits one datagram)"
        elif nofrag.timeout_exchange == "IKE_AUTH" and small_4500:
            # Small messages on 4500 get through, the certificate-bearing response never does.
            out["server_to_client"] = "dropped"
    return out


def check_path_fragments(obs: DiagnoseObservations) -> Finding:
    if obs.ike_main is None:
        return _skip(ids.PATH_IP_FRAGMENTS, "IKEv2 not among --protocols")
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
    started = [o for o in obs.ike_affinity if o.reached != "none"]
    completed = [o for o in started if o.reached == "IKE_AUTH"]
    lost = len(started) - len(completed)
    evidence = {
        "attempts": len(obs.ike_affinity),
        "sa_init_answered": len(started),
        "ike_auth_on_4500_answered": len(completed),
        "outcomes": [o.error_notify or o.timeout_exchange or o.reached for o in obs.ike_affinity],
        "distinct_certificates": len({o.certificate.sha256 for o in obs.ike_affinity if o.certificate}),
    }
    if not started:
        return _skip(
            ids.LB_PORT_AFFINITY, "no IKE_SA_INIT was answered, so the 4500 flows could not be compared"
        )
    if not completed:
        return _f(
            ids.LB_PORT_AFFINITY,
            "skip",
            "No IKE_AUTH on UDP 4500 was answered at all (see "
            "ike.udp4500.reachable): affinity cannot be judged.",
            evidence,
        )
    if lost:
        return _f(
            ids.LB_PORT_AFFINITY,
            "fail",
            f"{lost} of {len(started)} fresh IKE SAs lost their IKE_AUTH on UDP "
            "4500 while the others completed: the load balancer sends a client's UDP 4500 flow to a "
            "different server than its UDP 500 flow, which does not know the SA.",
            evidence,
            REMEDY_AFFINITY,
            (809,),
        )
    return _f(
        ids.LB_PORT_AFFINITY,
        "pass",
        f"All {len(completed)} fresh IKE SAs completed IKE_AUTH on UDP 4500 "
        "with the server that answered on UDP 500.",
        evidence,
    )


def _certificate(obs: DiagnoseObservations) -> tuple[x509.Certificate | None, IkeObservation | None, str]:
    main = obs.ike_main
    if main is None:
        return None, None, "IKEv2 not among --protocols"
    if not main.certificate_chain_pem:
        return None, main, "the server sent no certificate in IKE_AUTH"
    return x509.load_pem_x509_certificate(main.certificate_chain_pem[0].encode()), main, ""


def check_certificates(obs: DiagnoseObservations, now: datetime) -> list[Finding]:
    cert, main, why = _certificate(obs)
    fids = (ids.CERT_NAME, ids.CERT_EKU, ids.CERT_VALIDITY, ids.CERT_TRUST)
    if cert is None or main is None:
        return [_skip(fid, why) for fid in fids]
    name = obs.request.name
    evidence_base = {
        "subject": cert.subject.rfc4514_string(),
        "issuer": cert.issuer.rfc4514_string(),
        "auth_verified": main.auth_verified,
    }
    out: list[Finding] = []
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        dns_names = [str(n) for n in san.get_values_for_type(x509.DNSName)]
    except x509.ExtensionNotFound:
        dns_names = []
    cns = [str(a.value) for a in cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)]
    names = dns_names or cns
    ok = any(_name_matches(n, name) for n in names)
    ev = {**evidence_base, "san_dns": dns_names, "cn": cns, "expected": name}
    if ok:
        out.append(
            _f(
                ids.CERT_NAME,
                "pass",
                f"{name} matches {'SAN' if dns_names else 'CN'} {', '.join(names)}.",
                ev,
            )
        )
    else:
        out.append(
            _f(
                ids.CERT_NAME,
                "fail",
                f"The certificate names {', '.join(names) or 'nothing'}, not {name}.",
                ev,
                REMEDY_CERT,
                (13801,),
            )
        )
    try:
        ekus = [o.dotted_string for o in cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value]
    except x509.ExtensionNotFound:
        ekus = []
    ev = {**evidence_base, "eku": ekus}
    server_auth = ExtendedKeyUsageOID.SERVER_AUTH.dotted_string
    if ekus and server_auth not in ekus:
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
    elif IKE_INTERMEDIATE not in ekus:
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
    nb, na = cert.not_valid_before_utc, cert.not_valid_after_utc
    ev = {**evidence_base, "not_before": nb.isoformat(), "not_after": na.isoformat()}
    if now > na:
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
    elif now < nb:
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
    elif na - now < EXPIRY_WARNING:
        out.append(
            _f(
                ids.CERT_VALIDITY,
                "warn",
                f"The certificate expires on {na:%Y-%m-%d}, in {(na - now).days} days.",
                ev,
                REMEDY_CERT,
            )
        )
    else:
        out.append(_f(ids.CERT_VALIDITY, "pass", f"Valid {nb:%Y-%m-%d} .. {na:%Y-%m-%d}.", ev))
    anchors, source = obs.anchors, obs.anchor_source
    chain = [x509.load_pem_x509_certificate(p.encode()) for p in main.certificate_chain_pem[1:]]
    trusted = bool(anchors) and issued_by_anchor(cert, chain, anchors)
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
    elif trusted:
        out.append(_f(ids.CERT_TRUST, "pass", f"Chains to a CA in {source}.", ev))
    else:
        out.append(
            _f(
                ids.CERT_TRUST,
                "fail",
                f"Issued by {cert.issuer.rfc4514_string()}, which is not in "
                f"{source}: Windows clients report error 13801.",
                ev,
                REMEDY_CERT,
                (13801,),
            )
        )
    return out


def _name_matches(pattern: str, name: str) -> bool:
    p, n = pattern.lower().rstrip("."), name.lower().rstrip(".")
    if p.startswith("*.") and "." in n:
        return n.split(".", 1)[1] == p[2:]
    return p == n


def check_proposals(obs: DiagnoseObservations) -> Finding:
    if obs.ike_main is None:
        return _skip(ids.IKE_PROPOSALS_STRENGTH, "IKEv2 not among --protocols")
    if obs.ike_main.reached == "none" and not obs.ike_main.error_notify:
        return _skip(ids.IKE_PROPOSALS_STRENGTH, "the server does not answer IKE_SA_INIT")
    accepted = {label: o.reached != "none" for label, o in obs.proposals.items()}
    strength = {label: s for label, _, s in PROPOSAL_CATALOGUE}
    weak = [label for label, ok in accepted.items() if ok and strength[label] == "weak"]
    strong = [label for label, ok in accepted.items() if ok and strength[label] == "strong"]
    evidence = {
        "accepted": [k for k, v in accepted.items() if v],
        "refused": [k for k, v in accepted.items() if not v],
    }
    if weak and not strong:
        return _f(
            ids.IKE_PROPOSALS_STRENGTH,
            "fail",
            f"The server accepts only weak proposals ({', '.join(weak)}): "
            "3DES/SHA-1/MODP-1024, Windows' legacy default.",
            evidence,
            REMEDY_PROPOSALS,
            (13868,),
        )
    if weak:
        return _f(
            ids.IKE_PROPOSALS_STRENGTH,
            "warn",
            f"Weak proposals are accepted beside strong ones ({', '.join(weak)}).",
            evidence,
            REMEDY_PROPOSALS,
        )
    if strong:
        return _f(
            ids.IKE_PROPOSALS_STRENGTH,
            "pass",
            f"Only strong proposals are accepted ({', '.join(strong)}).",
            evidence,
        )
    return _f(ids.IKE_PROPOSALS_STRENGTH, "skip", "None of the catalogue's proposals was accepted.", evidence)


def check_client_match(obs: DiagnoseObservations) -> Finding:
    if obs.request.profile_proposal is None:
        return _skip(ids.IKE_PROPOSALS_CLIENT_MATCH, "no --profile given")
    o = obs.profile
    if o is None:
        return _skip(ids.IKE_PROPOSALS_CLIENT_MATCH, "IKEv2 not among --protocols")
    evidence = {"profile_proposal": obs.request.profile_proposal, "answer": o.error_notify or o.reached}
    if o.reached != "none":
        return _f(
            ids.IKE_PROPOSALS_CLIENT_MATCH,
            "pass",
            f"The server accepts the profile's {obs.request.profile_proposal}.",
            evidence,
        )
    if o.error_notify == "NO_PROPOSAL_CHOSEN":
        return _f(
            ids.IKE_PROPOSALS_CLIENT_MATCH,
            "fail",
            f"The server refuses the profile's "
            f"{obs.request.profile_proposal} with NO_PROPOSAL_CHOSEN: clients get error 13868.",
            evidence,
            REMEDY_PROPOSALS,
            (13868,),
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
    ids.IKE_PROPOSALS_CLIENT_MATCH: "the server refuses the client's IKE proposal",
    ids.IKE_PROPOSALS_STRENGTH: "the server accepts only weak IKE proposals",
}


def judge(obs: DiagnoseObservations, *, now: datetime | None = None) -> DiagnoseReport:
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
                    title=TITLES.get(fid) or SSTP_TITLES[fid],
                    detail="no address to probe: the name does not resolve and no --address given",
                )
    else:
        if iphttps:
            found = iphttps_findings(obs.iphttps) if obs.iphttps is not None else []
            for f in found:
                findings[f.id] = f
            for fid in ids.IPHTTPS_ALL:
                if fid not in findings:
                    findings[fid] = Finding(
                        id=fid, status="skip", title=SSTP_TITLES[fid], detail="not probed"
                    )
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
        ):
            findings[f.id] = f
    ordered = [findings[fid] for fid in order]
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
    )


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
