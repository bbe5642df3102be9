"""Judge what passed through the tunnel (observations.tunnel): inside hosts reachable, the assigned DNS
server answering, the tunnel MTU against what a Windows client sends, a rekey that keeps the tunnel. Pure
functions; a finding only for a probe that ran."""

from __future__ import annotations

from vpndoctor.checks import ids
from vpndoctor.checks.model import Finding, Status, finding
from vpndoctor.observations.tunnel import TunnelObservation

# Windows gives its IKEv2 VPN interface an MTU of 1400: what a client sends into the tunnel at most.
WINDOWS_IKEV2_MTU_BYTES = 1400

REMEDY_ROUTE = (
    "The tunnel is up but inside hosts never answer: give the internal network a route back to the VPN "
    "client address pool through the VPN server (on RRAS: a static route on the core router, or enable LAN "
    "routing); check that the traffic selectors (split-tunnel routes) include the inside subnet and that the "
    "inside firewall admits the pool."
)
REMEDY_UNREACHABLE = (
    "A router or firewall inside answered with an ICMP error for traffic from the VPN pool: allow the pool "
    "in its rules and route the inside subnet through the VPN server."
)
REMEDY_DNS = (
    "The DNS server the gateway hands out does not answer the VPN pool: allow the pool in the DNS server's "
    "ACL and firewall (Windows DNS: no interface restriction that excludes it), or hand out a DNS server "
    "the pool can reach (RRAS: IPv4 DNS from the internal NIC; Always On VPN ProfileXML DnsServers)."
)
REMEDY_MTU = (
    "Clamp the TCP MSS of tunnel traffic on the gateway to the value measured (e.g. nftables "
    "'tcp flags syn tcp option maxseg size set rt mtu' or a fixed value; Windows RRAS: netsh interface ipv4 "
    "set subinterface ... mtu=), and let ICMP fragmentation needed reach the clients through the tunnel."
)
REMEDY_MTU_BLACKHOLE = (
    "Large packets with DF set vanish inside and no ICMP fragmentation needed comes back: a PMTUD black "
    "hole. Let ICMP type 3 code 4 through the inside firewalls and clamp the TCP MSS on the gateway."
)
REMEDY_PFS = (
    "The gateway demands PFS at rekey and the client offers none (or another group): set PfsGroup in the "
    "profile's CryptographySuite to the gateway's group (ProfileXML <CryptographySuite><PfsGroup>ECP384"
    "</PfsGroup>, or Set-VpnConnectionIPsecConfiguration -PfsGroup ...), or make the gateway's ESP "
    "proposals accept rekeys without a DH group."
)
REMEDY_REKEY = (
    "Rekeying failed: connections will drop when the SA lifetime ends (the 'drops every 8 hours' ticket). "
    "Compare the gateway's rekey proposals with the client's CryptographySuite."
)


def tunnel_findings(t: TunnelObservation | None) -> list[Finding]:
    if t is None:
        return []
    out: list[Finding] = []
    if t.skipped is not None:
        kinds = {
            ids.TUNNEL_REACHABILITY: ("ping", "tcp"),
            ids.TUNNEL_DNS: ("resolve",),
            ids.TUNNEL_MTU: ("mtu",),
            ids.TUNNEL_REKEY: ("rekey",),
        }
        return [
            finding(fid, "skip", f"no traffic through the tunnel: {t.skipped}", {"asked": t.asked})
            for fid, asked in kinds.items()
            if set(asked) & set(t.asked)
        ]
    if t.ping or t.tcp:
        out.append(_reachability(t))
    if t.resolve:
        out.append(_dns(t))
    if t.mtu is not None:
        out.append(_mtu(t))
    if t.rekey is not None:
        out.append(_rekey(t))
    return out


def _reachability(t: TunnelObservation) -> Finding:
    fid = ids.TUNNEL_REACHABILITY
    evidence: dict[str, object] = {
        "from": t.inner_address,
        "ping": [p.model_dump() for p in t.ping],
        "tcp": [c.model_dump() for c in t.tcp],
        "esp_packets_sent": t.packets_sent,
        "esp_packets_received": t.packets_received,
    }
    answered = [f"{p.target} ({p.received}/{p.sent} echo replies)" for p in t.ping if p.outcome == "reply"]
    answered += [f"{c.host}:{c.port} ({c.outcome})" for c in t.tcp if c.outcome in ("open", "refused")]
    errors = [f"{p.target}: {p.icmp_error} from {p.icmp_from}" for p in t.ping if p.outcome == "unreachable"]
    errors += [f"{c.host}:{c.port}: {c.icmp_error}" for c in t.tcp if c.outcome == "unreachable"]
    silent = [f"{p.target} (0/{p.sent} echo replies)" for p in t.ping if p.outcome == "timeout"]
    silent += [
        f"{c.host}:{c.port} (no SYN-ACK to {c.attempts} SYNs)" for c in t.tcp if c.outcome == "timeout"
    ]
    if errors:
        detail = "an ICMP error came back through the tunnel: " + "; ".join(errors)
        return finding(fid, "fail", detail, evidence, REMEDY_UNREACHABLE)
    if silent:
        detail = f"from {t.inner_address}: no answer from " + ", ".join(silent)
        if answered:
            detail += "; answered: " + ", ".join(answered)
        if t.packets_received == 0:
            detail += (
                f"; not one ESP packet came back ({t.packets_sent} sent): the gateway forwards what we send "
                "but nothing returns - the inside has no route back to the pool"
            )
        return finding(fid, "fail", detail, evidence, REMEDY_ROUTE)
    rtts = [r for p in t.ping for r in p.rtt_ms] + [c.rtt_ms for c in t.tcp if c.rtt_ms is not None]
    detail = f"from {t.inner_address}: " + ", ".join(answered)
    if rtts:
        detail += f"; round trip {min(rtts):.1f}-{max(rtts):.1f} ms"
    return finding(fid, "pass", detail, evidence)


def _dns(t: TunnelObservation) -> Finding:
    fid = ids.TUNNEL_DNS
    evidence: dict[str, object] = {"server": t.dns_server, "queries": [r.model_dump() for r in t.resolve]}
    bad = [r for r in t.resolve if r.outcome in ("timeout", "unreachable")]
    if bad:
        r = bad[0]
        why = (
            f"no answer to {r.attempts} queries"
            if r.outcome == "timeout"
            else f"an ICMP error came back: {r.icmp_error}"
        )
        reachable = ""
        if t.ping and any(p.outcome == "reply" for p in t.ping):
            reachable = " (while inside hosts answer ping: the DNS server, not the tunnel, drops the pool)"
        detail = f"the assigned DNS server {r.server or '(none)'}: {why} for {r.name}{reachable}"
        return finding(fid, "fail", detail, evidence, REMEDY_DNS)
    if any(r.server == "" for r in t.resolve):
        return finding(fid, "fail", "the gateway assigned no IPv4 DNS server", evidence, REMEDY_DNS)
    answers = [
        f"{r.name} -> {', '.join(r.addresses)} ({r.rtt_ms:.1f} ms)"
        if r.outcome == "answer"
        else f"{r.name}: {r.rcode}"
        for r in t.resolve
    ]
    status: Status = "pass" if all(r.outcome == "answer" for r in t.resolve) else "warn"
    detail = f"DNS {t.dns_server} answers through the tunnel: " + "; ".join(answers)
    if status == "warn":
        detail += " (the server answers; the name does not exist there)"
    return finding(fid, status, detail, evidence)


def _mtu(t: TunnelObservation) -> Finding:
    fid = ids.TUNNEL_MTU
    m = t.mtu
    assert m is not None
    evidence = m.model_dump()
    if m.tunnel_mtu_bytes is None:
        detail = f"not even a {m.low_bytes}-byte packet with DF reached {m.target} ({m.probes_sent} probes)"
        return finding(fid, "fail", detail, evidence, REMEDY_MTU_BLACKHOLE)
    size = m.tunnel_mtu_bytes
    detail = f"tunnel MTU {size} bytes (clamp TCP MSS to {m.tcp_mss_bytes}), {m.probes_sent} probes"
    if m.outer_bytes is not None:
        detail += f"; the outer packet was {m.outer_bytes} bytes"
    if size >= WINDOWS_IKEV2_MTU_BYTES:
        return finding(fid, "pass", detail, evidence)
    if m.frag_needed_seen:
        detail += (
            f": below the {WINDOWS_IKEV2_MTU_BYTES} bytes a Windows client sends; an ICMP fragmentation "
            "needed came back, so PMTUD can work, but full-size TCP segments stall until it does"
        )
        return finding(fid, "warn", detail, evidence, REMEDY_MTU)
    detail += (
        f": below the {WINDOWS_IKEV2_MTU_BYTES} bytes a Windows client sends, and larger packets vanish "
        "without an ICMP fragmentation needed: a PMTUD black hole (large transfers hang)"
    )
    return finding(fid, "fail", detail, evidence, REMEDY_MTU_BLACKHOLE)


def _rekey(t: TunnelObservation) -> Finding:
    fid = ids.TUNNEL_REKEY
    r = t.rekey
    assert r is not None
    evidence = r.model_dump()
    group = r.pfs_group or "none"
    if r.child.outcome == "refused":
        detail = f"the gateway refused the CHILD_SA rekey (PFS group {group}) with {r.child.notify}"
        remedy = (
            REMEDY_PFS if r.child.notify in ("NO_PROPOSAL_CHOSEN", "INVALID_KE_PAYLOAD") else REMEDY_REKEY
        )
        return finding(fid, "fail", detail, evidence, remedy)
    if r.child.outcome != "ok":
        detail = f"CHILD_SA rekey (PFS {group}): {r.child.outcome}" + (
            f" ({r.child.detail})" if r.child.detail else ""
        )
        return finding(fid, "fail", detail, evidence, REMEDY_REKEY)
    if r.ike.outcome not in ("ok", "skipped"):
        detail = f"the CHILD_SA rekeyed (PFS {group}), the IKE SA rekey: {r.ike.outcome}"
        if r.ike.notify:
            detail += f" ({r.ike.notify})"
        return finding(fid, "fail", detail, evidence, REMEDY_REKEY)
    after = r.traffic_after
    if after is not None and after.outcome != "reply":
        detail = f"both SAs rekeyed (PFS {group}), but {after.target} no longer answers on the new CHILD_SA"
        return finding(fid, "fail", detail, evidence, REMEDY_REKEY)
    detail = f"CHILD_SA rekeyed (PFS {group}), IKE SA {r.ike.outcome}, DPD {r.dpd.outcome}"
    if after is not None:
        detail += f"; {after.target} answers on the new CHILD_SA"
    return finding(fid, "pass", detail, evidence)
