"""KEMP LoadMaster: the Web UI path of each setting and the same setting through the RESTful API
(`/access/addvs`, `/access/modvs`, `/access/addrs` with the documented parameter names), as a POSIX shell
script: port following between the UDP 500 and UDP 4500 virtual services (`FollowVSID`, both with source-IP
persistence), SSL re-encryption for IP-HTTPS (`SSLAcceleration`, `SSLReencrypt`, client certificates), SSTP
pass-through with SSL-session persistence. Every `kemp_api` call is checked against `data/commands.yaml`.
"""

from __future__ import annotations

from collections.abc import Sequence

from vpndoctor.configgen.common import NULL_SUITES_OPENSSL, WIN7_SUITE_OPENSSL, header
from vpndoctor.configgen.model import Deployment

PRELUDE = """\
# Usage: KEMP=loadmaster.example.com KEMP_USER=bal KEMP_PASSWORD=... sh this-file
set -eu
: "${KEMP:?set KEMP to the LoadMaster address}"
kemp_api() {
  cmd=$1; shift
  query=$(printf '%s&' "$@")
  curl -fsS --insecure -u "${KEMP_USER:-bal}:${KEMP_PASSWORD:?set KEMP_PASSWORD}" \\
    "https://$KEMP/access/$cmd?${query%&}"
}
# the Index (id) of a virtual service, for FollowVSID
kemp_vs_index() {
  kemp_api showvs "vs=$1" "port=$2" "prot=$3" | sed -n 's:.*<Index>\\([0-9]*\\)</Index>.*:\\1:p' | head -n 1
}
"""


def _families(d: Deployment) -> list[tuple[str, bool]]:
    return [(d.vip, False)] + ([(d.vip6, True)] if d.vip6 else [])


def render(d: Deployment, recipes: Sequence[str]) -> str:
    out = ["#!/bin/sh", header("kemp", d, recipes).rstrip("\n"), PRELUDE]
    if "iphttps-offload" in recipes:
        out += _iphttps(d)
    if "ikev2-lb" in recipes:
        out += _ikev2(d)
    if "sstp-lb" in recipes:
        out += _sstp(d)
    return "\n".join(out) + "\n"


def _real_servers(d: Deployment, vip: str, port: int, prot: str, v6: bool) -> list[str]:
    return [
        f"kemp_api addrs vs={vip} port={port} prot={prot} rs={s.address6 if v6 else s.address} rsport={port}"
        for s in d.servers
    ]


def _iphttps(d: Deployment) -> list[str]:
    c, t = d.certificates, d.timeouts
    vip = d.iphttps_vip
    front = NULL_SUITES_OPENSSL + (f":{WIN7_SUITE_OPENSSL}" if d.clients.windows7 else "")
    tls_off = 1 | 4 | 16 | (0 if d.clients.windows7 else 2)
    out = [
        "",
        "# --- iphttps-offload: SSL re-encryption (the LoadMaster terminates TLS and opens a new TLS session",
        "# to each server)",
        f"# UI: Certificates & Security > SSL Certificates > Import Certificate: {c.server.name}",
        f"# UI: Virtual Services > Add New: {vip} port 443 TCP; Modify > SSL Properties: SSL Acceleration",
        "#     Enabled, Reencrypt ticked, Certificates: assign " + c.server.name,
        "# UI: Standard Options > Persistence Options: SSL Session ID, Timeout"
        f" {t.tls_session_s // 60} minutes",
        f"kemp_api addvs vs={vip} port=443 prot=tcp",
        "# a custom cipher set: NULL suites (what Windows 8+ IP-HTTPS clients offer first)"
        + (", and one ECDHE suite while Windows 7 clients remain" if d.clients.windows7 else ""),
        f"kemp_api modifycipherset name=IPHTTPS_NULL value={front}",
        "# TlsType: the mask of protocols turned OFF (SSLv3 1, TLS 1.0 2, TLS 1.1 4, TLS 1.2 8, TLS 1.3 16)",
        f"kemp_api modvs vs={vip} port=443 prot=tcp SSLAcceleration=1 SSLReencrypt=1 CertFile={c.server.name}"
        f" TlsType={tls_off} CipherSet=IPHTTPS_NULL Persist=ssl PersistTimeout={t.tls_session_s}",
    ]
    if d.iphttps.preauth:
        out += [
            f"# UI: Certificates & Security > Intermediate Certs > Import: the CA {c.ca.name}",
            "# UI: Modify > SSL Properties > Client Certificates: Require Client Certificates"
            " (preauthentication)",
            f"kemp_api modvs vs={vip} port=443 prot=tcp ClientCert=1",
        ]
    out += [
        f"kemp_api addrs vs={vip} port=443 prot=tcp rs={s.address} rsport={d.iphttps.backend_port}"
        for s in d.servers
    ]
    return out


def _ikev2(d: Deployment) -> list[str]:
    t = d.timeouts
    out = [
        "",
        "# --- ikev2-lb: port following. Both UDP services use source-IP persistence; the UDP 4500 service",
        "# follows the UDP 500 one, so a client's NAT-T traffic reaches the server that answered on 500.",
        "# UI: Virtual Services > Add New: VIP port 500 UDP, and VIP port 4500 UDP;",
        "#     Modify > Standard Options > Persistence Options: Source IP Address, Timeout"
        f" {t.ike_affinity_s // 60} minutes",
        "# UI: Modify (the UDP 4500 service) > Standard Options > Port Following: the UDP 500 service",
    ]
    for vip, v6 in _families(d):
        for port in (500, 4500):
            out.append(
                f"kemp_api addvs vs={vip} port={port} prot=udp Persist=src PersistTimeout={t.ike_affinity_s}"
                " Schedule=rr Transparent=1"
            )
            out += _real_servers(d, vip, port, "udp", v6)
        out.append(f"kemp_api modvs vs={vip} port=4500 prot=udp FollowVSID=$(kemp_vs_index {vip} 500 udp)")
    return out


def _sstp(d: Deployment) -> list[str]:
    t = d.timeouts
    out = [
        "",
        "# --- sstp-lb: TLS passed through to the servers; SSL session id persistence",
        "# UI: Virtual Services > Add New: VIP port 443 TCP; Standard Options > Persistence Options:"
        " SSL Session ID",
    ]
    for vip, v6 in _families(d):
        out.append(
            f"kemp_api addvs vs={vip} port=443 prot=tcp Persist=ssl PersistTimeout={t.tls_session_s}"
            " Schedule=rr"
        )
        out += _real_servers(d, vip, 443, "tcp", v6)
    return out
