"""Citrix NetScaler (ADC) CLI: the IP-HTTPS SSL offload + preauthentication recipe, IKEv2 UDP 500/4500
virtual servers joined in an lb group with SOURCEIP persistence, and SSTP as SSL_BRIDGE with SSLSESSION
persistence and SOURCEIP backup. Every command is checked against `data/commands.yaml` by the validator.
"""

from __future__ import annotations

from collections.abc import Sequence

from vpndoctor.configgen.common import cert_file, header, key_file, minutes
from vpndoctor.configgen.model import Deployment


def _families(d: Deployment) -> list[tuple[str, str, bool]]:
    """(suffix, VIP, ipv6) for each address family the deployment publishes."""
    out = [("", d.vip, False)]
    if d.vip6:
        out.append(("_v6", d.vip6, True))
    return out


def _server(d: Deployment, name: str, v6: bool) -> str:
    return f"{name}_v6" if v6 else name


def render(d: Deployment, recipes: Sequence[str]) -> str:
    out = [header("netscaler", d, recipes)]
    ike_min = minutes(d.timeouts.ike_affinity_s)
    tls_min = minutes(d.timeouts.tls_session_s)
    out.append("enable ns feature LB SSL")
    out.append("# back-end servers")
    for s in d.servers:
        out.append(f"add server {s.name} {s.address}")
        if d.vip6 and s.address6:
            out.append(f"add server {s.name}_v6 {s.address6}")
    if "iphttps-offload" in recipes:
        out += _iphttps(d, tls_min)
    if "ikev2-lb" in recipes:
        out += _ikev2(d, ike_min)
    if "sstp-lb" in recipes:
        out += _sstp(d, tls_min)
    out.append("save ns config")
    return "\n".join(out) + "\n"


def _iphttps(d: Deployment, tls_min: int) -> list[str]:
    c = d.certificates
    win7 = d.clients.windows7
    out = [
        "",
        "# --- iphttps-offload: clients terminate TLS here; the DirectAccess servers get NULL encryption",
        f"add ssl certKey {c.server.name} -cert {cert_file(c.server)} -key {key_file(c.server)}",
    ]
    if d.iphttps.preauth:
        out.append(f"add ssl certKey {c.ca.name} -cert {cert_file(c.ca)}")
    vs = "vs_iphttps"
    for s in d.servers:
        svc = f"svc_iphttps_{s.name}"
        out += [
            f"add service {svc} {s.name} SSL {d.iphttps.backend_port}",
            f"set ssl service {svc} -ssl3 DISABLED",
            f"unbind ssl service {svc} -cipherName ALL",
            f"bind ssl service {svc} -cipherName SSL3-NULL-SHA",
        ]
    out.append(f"add lb vserver {vs} SSL {d.iphttps_vip} 443 -persistenceType SSLSESSION -timeout {tls_min}")
    out += [f"bind lb vserver {vs} svc_iphttps_{s.name}" for s in d.servers]
    out.append(f"bind ssl vserver {vs} -certkeyName {c.server.name}")
    out.append(f"unbind ssl vserver {vs} -cipherName DEFAULT")
    if win7:
        out.append(
            "# Windows 7 clients cannot use NULL encryption: one ECDHE suite, TLS 1.0, until they are gone"
        )
        out.append(f"bind ssl vserver {vs} -cipherName TLS1-ECDHE-RSA-AES128-SHA")
    out.append(f"bind ssl vserver {vs} -cipherName SSL3-NULL-SHA")
    tls1 = "ENABLED" if win7 else "DISABLED"
    out.append(
        f"set ssl vserver {vs} -ssl3 DISABLED -tls1 {tls1} -tls11 DISABLED -tls12 ENABLED -tls13 DISABLED"
    )
    if d.iphttps.preauth:
        out.append("# preauthentication: only clients with a certificate from the CA reach the servers")
        out.append(f"bind ssl vserver {vs} -certkeyName {c.ca.name} -CA -crlCheck Optional")
        out.append(f"set ssl vserver {vs} -clientAuth ENABLED -clientCert Mandatory")
    return out


def _ikev2(d: Deployment, ike_min: int) -> list[str]:
    out = [
        "",
        "# --- ikev2-lb: UDP 500 and 4500 vservers in one lb group, SOURCEIP persistence across both",
        "# -usip YES keeps client addresses (no full NAT): behind one SNAT address Windows IKEEXT throttles",
    ]
    group = "lbg_ikev2"
    members: list[str] = []
    for suffix, vip, v6 in _families(d):
        for port in (500, 4500):
            vs = f"vs_ike{port}{suffix}"
            members.append(vs)
            for s in d.servers:
                out.append(
                    f"add service svc_ike{port}_{s.name}{suffix} {_server(d, s.name, v6)} UDP {port}"
                    " -usip YES"
                )
            out.append(f"add lb vserver {vs} UDP {vip} {port}")
            out += [f"bind lb vserver {vs} svc_ike{port}_{s.name}{suffix}" for s in d.servers]
    out.append(f"add lb group {group}")
    out += [f"bind lb group {group} {vs}" for vs in members]
    out.append(f"set lb group {group} -persistenceType SOURCEIP -timeout {ike_min}")
    return out


def _sstp(d: Deployment, tls_min: int) -> list[str]:
    out = [
        "",
        "# --- sstp-lb: TLS passed through (SSL_BRIDGE) to the servers, SSL session id persistence,",
        "# source IP as backup when the session id changes (renegotiation, new session)",
    ]
    for suffix, vip, v6 in _families(d):
        vs = f"vs_sstp{suffix}"
        for s in d.servers:
            out.append(f"add service svc_sstp_{s.name}{suffix} {_server(d, s.name, v6)} SSL_BRIDGE 443")
        out.append(
            f"add lb vserver {vs} SSL_BRIDGE {vip} 443 -persistenceType SSLSESSION -timeout {tls_min}"
            f" -persistenceBackup SOURCEIP -backupPersistenceTimeout {tls_min}"
        )
        out += [f"bind lb vserver {vs} svc_sstp_{s.name}{suffix}" for s in d.servers]
    return out
