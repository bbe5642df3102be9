"""F5 BIG-IP tmsh: client-ssl/server-ssl profiles for the IP-HTTPS offload (NULL suites to the servers,
`peer-cert-mode require` with the CA, no SSLv3), pools and virtual servers with `ssl` persistence for TLS,
and two UDP virtuals for IKEv2 sharing one source-address persistence profile with match-across-services,
SNAT none. Every command is checked against `data/commands.yaml` by the validator.
"""

from __future__ import annotations

from collections.abc import Sequence

from vpndoctor.configgen.common import cert_file, header, key_file
from vpndoctor.configgen.model import Deployment

# F5 cipher names (F5 writes ECDHE-RSA-AES128-CBC-SHA where OpenSSL writes ECDHE-RSA-AES128-SHA).
NULL_SUITE = "NULL-SHA"
WIN7_SUITE = "ECDHE-RSA-AES128-CBC-SHA"


def _dest(vip: str, port: int) -> str:
    # tmsh separates an IPv6 address from its port with a dot.
    return f"{vip}.{port}" if ":" in vip else f"{vip}:{port}"


def _families(d: Deployment) -> list[tuple[str, str, bool]]:
    out = [("", d.vip, False)]
    if d.vip6:
        out.append(("_v6", d.vip6, True))
    return out


def _members(d: Deployment, port: int, v6: bool) -> str:
    names = [f"{s.name}_v6:{port}" if v6 else f"{s.name}:{port}" for s in d.servers]
    return "{ " + " ".join(names) + " }"


def render(d: Deployment, recipes: Sequence[str]) -> str:
    out = [header("f5", d, recipes), "# nodes"]
    for s in d.servers:
        out.append(f"create ltm node {s.name} address {s.address}")
        if d.vip6 and s.address6:
            out.append(f"create ltm node {s.name}_v6 address {s.address6}")
    if "iphttps-offload" in recipes:
        out += _iphttps(d)
    if "ikev2-lb" in recipes:
        out += _ikev2(d)
    if "sstp-lb" in recipes:
        out += _sstp(d)
    out.append("save sys config")
    return "\n".join(out) + "\n"


def _iphttps(d: Deployment) -> list[str]:
    c = d.certificates
    win7 = d.clients.windows7
    front = NULL_SUITE + (f":{WIN7_SUITE}" if win7 else "")
    opts = "no-sslv3 " + ("" if win7 else "no-tlsv1 ") + "no-tlsv1.1 no-tlsv1.3"
    out = [
        "",
        "# --- iphttps-offload: clients terminate TLS here; the DirectAccess servers get NULL encryption",
        "create ltm pool pool_iphttps members replace-all-with"
        f" {_members(d, d.iphttps.backend_port, False)} monitor tcp",
        f"create ltm profile client-ssl cssl_iphttps defaults-from clientssl cert-key-chain replace-all-with"
        f" {{ {c.server.name} {{ cert {cert_file(c.server, '.crt')} key {key_file(c.server)} }} }}"
        f" ciphers {front} options {{ {opts} }}"
        + (
            f" peer-cert-mode require ca-file {cert_file(c.ca, '.crt')} client-cert-ca"
            f" {cert_file(c.ca, '.crt')}"
            " authenticate-depth 3"
            if d.iphttps.preauth
            else ""
        ),
        f"create ltm profile server-ssl sssl_iphttps defaults-from serverssl ciphers {NULL_SUITE}"
        " options { no-sslv3 no-tlsv1.3 } server-name " + d.name,
        f"create ltm persistence ssl persist_iphttps defaults-from ssl timeout {d.timeouts.tls_session_s}",
        f"create ltm virtual vs_iphttps destination {_dest(d.iphttps_vip, 443)} ip-protocol tcp pool"
        " pool_iphttps"
        " profiles replace-all-with"
        " { tcp { } cssl_iphttps { context clientside } sssl_iphttps { context serverside } }"
        " persist replace-all-with { persist_iphttps { default yes } } fallback-persistence source_addr"
        " source-address-translation { type automap }",
    ]
    return out


def _ikev2(d: Deployment) -> list[str]:
    out = [
        "",
        "# --- ikev2-lb: one source-address persistence profile with match-across-services on both UDP",
        "# virtuals, so UDP 4500 of a client follows its UDP 500; no SNAT (Windows IKEEXT throttles"
        " one source)",
        "create ltm persistence source-addr persist_ikev2 defaults-from source_addr"
        " match-across-services enabled"
        f" timeout {d.timeouts.ike_affinity_s}",
    ]
    for suffix, vip, v6 in _families(d):
        for port in (500, 4500):
            pool = f"pool_ike{port}{suffix}"
            out.append(
                f"create ltm pool {pool} members replace-all-with {_members(d, port, v6)} monitor"
                " gateway_icmp"
            )
            out.append(
                f"create ltm virtual vs_ike{port}{suffix} destination {_dest(vip, port)} ip-protocol"
                f" udp pool {pool}"
                " profiles replace-all-with { udp { } } persist replace-all-with"
                " { persist_ikev2 { default yes } }"
                " source-address-translation { type none }"
            )
    return out


def _sstp(d: Deployment) -> list[str]:
    out = [
        "",
        "# --- sstp-lb: TLS passed through to the servers, SSL session id persistence, source address"
        " fallback",
        f"create ltm persistence ssl persist_sstp defaults-from ssl timeout {d.timeouts.tls_session_s}",
    ]
    for suffix, vip, v6 in _families(d):
        pool = f"pool_sstp{suffix}"
        out.append(f"create ltm pool {pool} members replace-all-with {_members(d, 443, v6)} monitor tcp")
        out.append(
            f"create ltm virtual vs_sstp{suffix} destination {_dest(vip, 443)} ip-protocol tcp pool {pool}"
            " profiles replace-all-with { tcp { } } persist replace-all-with { persist_sstp { default yes } }"
            " fallback-persistence source_addr source-address-translation { type automap }"
        )
    return out
