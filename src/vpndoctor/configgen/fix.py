"""`vpndoctor diagnose --fix --lb VENDOR`: from a diagnosis to the configuration that fixes its failing
findings on the named load balancer (plus the Windows server settings for fragmentation and IKE policy).
The deployment is built from the diagnosed target (name, addresses) with placeholders, said as such, for
what a diagnosis from the outside cannot know (the servers behind the VIP, certificate files).
"""

from __future__ import annotations

import ipaddress
import re
from typing import Final

from vpndoctor.checks import ids
from vpndoctor.checks.model import DiagnoseReport
from vpndoctor.configgen import generate
from vpndoctor.configgen.model import Deployment, deployment_from_data

LB_VENDORS: Final = ("netscaler", "f5", "kemp", "haproxy", "nginx")

PLACEHOLDER_VIP4 = "203.0.113.10"
PLACEHOLDER_SERVERS: Final = (("vpn1", "192.0.2.11", "2001:db8::11"), ("vpn2", "192.0.2.12", "2001:db8::12"))

# failing finding -> (recipe on the load balancer, protocol it concerns)
_LB_RECIPES: Final = {
    ids.LB_PORT_AFFINITY: ("ikev2-lb", "ikev2"),
    ids.IKE_UDP500_REACHABLE: ("ikev2-lb", "ikev2"),
    ids.IKE_UDP4500_REACHABLE: ("ikev2-lb", "ikev2"),
    ids.TCP443_REACHABLE: ("sstp-lb", "sstp"),
}
# failing findings the VPN server's own settings fix
_WINDOWS: Final = {
    ids.PATH_IP_FRAGMENTS,
    ids.IKE_FRAGMENTATION_SUPPORTED,
    ids.IKE_PROPOSALS_STRENGTH,
    ids.IKE_PROPOSALS_CLIENT_MATCH,
}


# What the TLS front end decides (by the ids' names, so that a renamed id falls back to "no device fix"):
_SSTP_LB: Final = ("sstp.handshake", "sstp.tls", "sstp.http")
_IPHTTPS_OFFLOAD: Final = ("iphttps.tls", "iphttps.null-encryption", "iphttps.client-auth")


def _lb_recipe(fid: str) -> tuple[str, str] | None:
    if fid in _LB_RECIPES:
        return _LB_RECIPES[fid]
    if fid in _IPHTTPS_OFFLOAD:
        return ("iphttps-offload", "iphttps")
    if fid in _SSTP_LB:
        return ("sstp-lb", "sstp")
    return None


def _cert_name(name: str) -> str:
    cleaned = re.sub(r"[^A-Za-z0-9_.-]", "-", name)[:60]
    return cleaned if cleaned[:1].isalpha() else f"cert-{cleaned}"


def deployment_for(report: DiagnoseReport, protocols: list[str]) -> tuple[Deployment, list[str]]:
    """A deployment for the diagnosed target, and the placeholders it had to use."""
    v4 = [a for a in report.target.addresses if ipaddress.ip_address(a).version == 4]
    v6 = [a for a in report.target.addresses if ipaddress.ip_address(a).version == 6]
    notes = [
        "servers behind the VIP are placeholders ("
        + ", ".join(f"{n} {a}" for n, a, _ in PLACEHOLDER_SERVERS)
        + "): put in your servers, or run vpndoctor config TARGET --input FILE (vpndoctor config init)"
    ]
    if v4:
        notes.append(
            f"the VIP is {v4[0]}, the address the diagnosis reached; if a firewall in front translates it,"
            " use the load balancer's own address"
        )
    else:
        notes.append(
            f"no IPv4 address of {report.target.name} was found: the VIP {PLACEHOLDER_VIP4} is a placeholder"
        )
    if "sstp" in protocols and "iphttps" in protocols:
        protocols = [p for p in protocols if p != "sstp"]  # one VIP cannot carry both on TCP 443
    data = {
        "name": report.target.name,
        "vip": v4[0] if v4 else PLACEHOLDER_VIP4,
        "vip6": v6[0] if v6 else None,
        "servers": [{"name": n, "address": a, "address6": a6} for n, a, a6 in PLACEHOLDER_SERVERS],
        "protocols": protocols,
        "certificates": {
            "server": {
                "name": _cert_name(report.target.name),
                "cert_file": f"/etc/vpndoctor/{_cert_name(report.target.name)}.pem",
                "key_file": f"/etc/vpndoctor/{_cert_name(report.target.name)}.key",
            },
            "ca": {"name": "RootCA", "cert_file": "/etc/vpndoctor/ca.pem"},
        },
    }
    notes.append("certificate object names and files are placeholders (RootCA, /etc/vpndoctor/...)")
    return deployment_from_data(data, "the diagnosed target"), notes


def fix_config(report: DiagnoseReport, vendor: str | None) -> str:
    """The configuration (text, '#' comments) that fixes the report's failing findings."""
    failing = [f.id for f in report.findings if f.status == "fail"]
    if not failing:
        return "# vpndoctor diagnose --fix: nothing fails, nothing to configure\n"
    recipes: list[str] = []
    protocols: list[str] = []
    unhandled: list[str] = []
    for fid in failing:
        found = _lb_recipe(fid)
        if found is not None:
            recipe, proto = found
            if recipe not in recipes:
                recipes.append(recipe)
            if proto not in protocols:
                protocols.append(proto)
        elif fid in _WINDOWS:
            if "ikev2" not in protocols:
                protocols.append("ikev2")
        else:
            unhandled.append(fid)
    windows_needed = any(fid in _WINDOWS for fid in failing)
    out = [f"# vpndoctor diagnose --fix for {report.target.name}: failing {', '.join(failing)}"]
    if not protocols:
        out += [f"# {fid}: no device configuration fixes this; see the finding's remedy" for fid in unhandled]
        return "\n".join(out) + "\n"
    d, notes = deployment_for(report, protocols)
    out += [f"# NOTE: {n}" for n in notes]
    out += [f"# {fid}: no device configuration fixes this; see the finding's remedy" for fid in unhandled]
    lb_recipes = [r for r in recipes if d.has({"ikev2-lb": "ikev2", "sstp-lb": "sstp"}.get(r, "iphttps"))]
    if vendor is None and lb_recipes:
        out.append("# name your load balancer (--lb netscaler|f5|kemp|haproxy|nginx) for its configuration")
    elif vendor is not None and lb_recipes:
        if vendor == "haproxy" and "ikev2-lb" in lb_recipes:
            out.append("# HAProxy does not balance UDP: the IKEv2 part is nginx's (vpndoctor config nginx)")
            lb_recipes = [r for r in lb_recipes if r != "ikev2-lb"]
            if "ikev2-lb" in recipes:
                out += ["", generate("nginx", d, ["ikev2-lb"]).rstrip("\n")]
        if lb_recipes:
            out += ["", generate(vendor, d, lb_recipes).rstrip("\n")]
    if windows_needed:
        out += [
            "",
            "# ---- on the Windows VPN server(s) ----",
            generate("windows", d, ["windows-server"]).rstrip("\n"),
        ]
    return "\n".join(out) + "\n"
