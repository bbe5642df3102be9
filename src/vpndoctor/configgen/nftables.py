"""nftables: the edge firewall (TCP 443, UDP 500/4500 and ESP to the VIP, DNAT of a public address, IP
fragments never dropped - only counted - because the certificate-bearing IKE_AUTH is fragmented) and a
load balancer with source-address affinity: `jhash ... seed` with a fixed seed, so that the UDP 500 and
UDP 4500 rules hash one client to the same server (without a seed the kernel draws one per rule).
Whole tables, loadable with `nft -f`, checked by `nft -c -f`.
"""

from __future__ import annotations

from collections.abc import Sequence

from vpndoctor.configgen.common import header
from vpndoctor.configgen.model import Deployment


def render(d: Deployment, recipes: Sequence[str]) -> str:
    out = [header("nftables", d, recipes).rstrip("\n")]
    if "edge-firewall" in recipes:
        out.append("\n# ===== on the edge firewall =====")
        out.append(edge_ruleset(d))
    lb = [r for r in recipes if r in ("ikev2-lb", "sstp-lb")]
    if lb:
        out.append("\n# ===== on the load balancer (it owns the VIP) =====")
        out.append(lb_ruleset(d, lb))
    return "\n".join(out).rstrip("\n") + "\n"


def _services(d: Deployment) -> list[tuple[str, int | None, str]]:
    """(l4 protocol, port, VIP) the VPN publishes."""
    out: list[tuple[str, int | None, str]] = []
    if d.has("ikev2"):
        out += [("udp", 500, d.vip), ("udp", 4500, d.vip), ("esp", None, d.vip)]
    if d.has("sstp"):
        out.append(("tcp", 443, d.vip))
    if d.has("iphttps"):
        out.append(("tcp", 443, d.iphttps_vip))
    return out


def _table(name: str, counters: list[str], chains: list[tuple[str, str, list[str]]]) -> str:
    lines = [f"table inet {name}", f"delete table inet {name}", f"table inet {name} {{"]
    lines += [f"  counter {c} {{ }}" for c in counters]
    for chain, hook, rules in chains:
        lines += [f"  chain {chain} {{", f"    {hook}"] + [f"    {r}" for r in rules] + ["  }"]
    lines.append("}")
    return "\n".join(lines) + "\n"


def _match(proto: str, port: int | None) -> str:
    return "meta l4proto esp" if port is None else f"{proto} dport {port}"


def edge_ruleset(d: Deployment) -> str:
    wan = d.edge.wan_interface
    vips4 = sorted({v for _, _, v in _services(d)})
    vip4_set = "{ " + ", ".join(vips4) + " }"
    raw = [
        "# IP fragments to the VPN are counted, never dropped: IKE_AUTH with a certificate is fragmented",
        f"ip daddr {vip4_set} ip frag-off & 0x3fff != 0 counter name frag4_to_vpn",
    ]
    if d.vip6:
        raw.append(f"ip6 daddr {d.vip6} exthdr frag exists counter name frag6_to_vpn")
    if d.public_vip:
        raw.append(f"ip daddr {d.public_vip} ip frag-off & 0x3fff != 0 counter name frag4_to_vpn")
    if d.public_vip6:
        raw.append(f"ip6 daddr {d.public_vip6} exthdr frag exists counter name frag6_to_vpn")
    dnat = []
    if d.public_vip:
        dnat.append(f'iifname "{wan}" ip daddr {d.public_vip} dnat ip to {d.vip}')
    if d.public_vip6 and d.vip6:
        dnat.append(f'iifname "{wan}" ip6 daddr {d.public_vip6} dnat ip6 to {d.vip6}')
    forward = [
        "ct state established,related accept",
        f'iifname != "{wan}" accept',
        "# path MTU discovery and errors must pass (packet-too-big above all)",
        "icmp type { destination-unreachable, time-exceeded, echo-request } accept",
        "icmpv6 type"
        " { destination-unreachable, packet-too-big, time-exceeded, parameter-problem, echo-request }"
        " accept",
    ]
    counters = ["frag4_to_vpn", "frag6_to_vpn"]
    for proto, port, vip in _services(d):
        name = f"vpn_{proto}{port or ''}"
        if name not in counters:
            counters.append(name)
        forward.append(f"ip daddr {vip} {_match(proto, port)} counter name {name} accept")
        if d.vip6 and vip == d.vip:
            forward.append(f"ip6 daddr {d.vip6} {_match(proto, port)} counter name {name} accept")
    for a in d.edge.allow:
        family = "ip6" if ":" in a.address else "ip"
        forward.append(f"{family} daddr {a.address} {a.proto} dport {a.port} accept")
    forward.append("counter name dropped_from_wan drop")
    counters.append("dropped_from_wan")
    chains = [
        ("raw_prerouting", "type filter hook prerouting priority -450; policy accept;", raw),
        ("nat_prerouting", "type nat hook prerouting priority dstnat; policy accept;", dnat),
        ("forward", "type filter hook forward priority filter; policy drop;", forward),
    ]
    return _table(d.edge.table, counters, chains)


def lb_ruleset(d: Deployment, recipes: Sequence[str]) -> str:
    lb = d.load_balancer
    services: list[tuple[str, int | None]] = []
    if "ikev2-lb" in recipes:
        services += [("udp", 500), ("udp", 4500), ("esp", None)]
    if "sstp-lb" in recipes:
        services.append(("tcp", 443))
    n = len(d.servers)
    families = [("ip", d.vip, [s.address for s in d.servers])]
    if d.vip6:
        families.append(("ip6", d.vip6, [s.address6 or "" for s in d.servers]))
    prerouting = [
        f"# one fixed seed ({lb.jhash_seed:#x}) for every rule: a client's UDP 500 and UDP 4500 hash alike"
    ]
    for family, vip, addrs in families:
        for proto, port in services:
            match = f"{family} daddr {vip} {_match(proto, port)}"
            if n == 1:
                target = addrs[0]
            else:
                mapping = ", ".join(f"{i} : {a}" for i, a in enumerate(addrs))
                target = f"jhash {family} saddr mod {n} seed {lb.jhash_seed:#x} map {{ {mapping} }}"
            prerouting.append(f"{match} dnat {family} to {target}")
    counters, forward = [], []
    for s in d.servers:
        for proto, port in services:
            name = f"{s.name}_{proto}{port or ''}".replace(".", "_").replace("-", "_")
            counters.append(name)
            forward.append(f"ct state new ip daddr {s.address} {_match(proto, port)} counter name {name}")
            if d.vip6 and s.address6:
                forward.append(
                    f"ct state new ip6 daddr {s.address6} {_match(proto, port)} counter name {name}"
                )
    chains = [
        ("prerouting", "type nat hook prerouting priority dstnat; policy accept;", prerouting),
        ("forward", "type filter hook forward priority filter; policy accept;", forward),
    ]
    return _table(lb.table, counters, chains)
