"""nftables rule sets for the lab's edge router/firewall and its load balancer, rendered from a scenario.

Pure text generation; the runner loads the result with `nft -f` inside the namespace.
"""

from __future__ import annotations

from vpndoctor.lab import topology as t
from vpndoctor.lab.scenario import Scenario

EDGE_TABLE = "vpndoctor_edge"
LB_TABLE = "vpndoctor_lb"
NPS_TABLE = "vpndoctor_nps"
INSIDE_TABLE = "vpndoctor_inside"

# Services the load balancer publishes on its VIP.
LB_SERVICES = (("udp", 500), ("udp", 4500), ("tcp", 443))
JHASH_SEED = 0x5EED


def edge_ruleset(s: Scenario) -> str:
    raw: list[str] = []
    if s.fragments == "drop":
        # Priority -450 runs before conntrack's defragmentation (-400): each fragment is seen and dropped.
        raw += [
            "ip frag-off & 0x3fff != 0 counter name frag4_dropped drop",
            "exthdr frag exists counter name frag6_dropped drop",
        ]
    counters = ["frag4_dropped", "frag6_dropped"]
    if s.scan_vips:
        # Every datagram towards the fleet, before conntrack: what a scan really sent (its rate cap).
        counters.append("scan_vips_udp")
        raw += [
            f"ip daddr {t.SCAN_VIPS4} meta l4proto udp counter name scan_vips_udp",
            f"ip6 daddr {t.SCAN_VIPS6} meta l4proto udp counter name scan_vips_udp",
        ]
    forward = []
    for item in s.block:
        proto, port = item.split("/")
        forward.append(f'iifname "eth-wan" meta l4proto {proto} th dport {port} counter drop')
    dnat = []
    if s.edge_dnat:
        dnat += [
            f"ip daddr {t.PUBLIC_VIP4} dnat ip to {t.VIP4}",
            f"ip6 daddr {t.PUBLIC_VIP6} dnat ip6 to {t.VIP6}",
        ]
    if s.scan_vips:
        # Many public addresses, one service: every flow keeps its own conntrack entry (the source port is
        # remapped at the edge when two flows would look alike after DNAT).
        dnat += [
            f"ip daddr {t.SCAN_VIPS4} dnat ip to {t.VIP4}",
            f"ip6 daddr {t.SCAN_VIPS6} dnat ip6 to {t.VIP6}",
        ]
    snat = []
    if s.nat == "client-behind-nat":
        snat += [
            'iifname "eth-wan" oifname "eth-lb" meta nfproto ipv4 masquerade',
            'iifname "eth-wan" oifname "eth-lb" meta nfproto ipv6 masquerade',
        ]
    return _table(
        EDGE_TABLE,
        counters=counters,
        chains={
            "raw_prerouting": ("type filter hook prerouting priority -450; policy accept;", raw),
            "forward": ("type filter hook forward priority filter; policy accept;", forward),
            "nat_prerouting": ("type nat hook prerouting priority dstnat; policy accept;", dnat),
            "nat_postrouting": ("type nat hook postrouting priority srcnat; policy accept;", snat),
        },
    )


def _selector(s: Scenario, family: str) -> str:
    n = s.backends
    if s.lb_affinity == "source-address":
        # Port following: every flow of one client address hashes to the same backend.
        # An explicit seed: without one the kernel draws a random seed per rule, and the rules for
        # UDP 500 and UDP 4500 would hash one client to different backends.
        return f"jhash {family} saddr mod {n} seed {JHASH_SEED:#x}"
    # Each virtual service schedules its own flows, as a load balancer without port following does.
    return f"numgen random mod {n}"


def lb_ruleset(s: Scenario, *, udp_dnat: bool = True) -> str:
    """`udp_dnat=False` leaves UDP 500/4500 on the VIP to a local daemon (an nginx stream UDP LB override)."""
    backends = t.BACKENDS[: s.backends]
    prerouting = []
    for family, vip, addrs in (("ip", t.VIP4, t.BACKEND4), ("ip6", t.VIP6, t.BACKEND6)):
        for proto, port in LB_SERVICES:
            if proto == "udp" and not udp_dnat:
                continue
            match = f"{family} daddr {vip} {proto} dport {port}"
            if len(backends) == 1:
                target = addrs[backends[0]]
            else:
                mapping = ", ".join(f"{i} : {addrs[b]}" for i, b in enumerate(backends))
                target = f"{_selector(s, family)} map {{ {mapping} }}"
            prerouting.append(f"{match} dnat {family} to {target}")
    # Counters of new flows per backend and service: how the lab shows where a client landed.
    counters = []
    forward = []
    for b in backends:
        for proto, port in LB_SERVICES:
            name = f"{b}_{proto}{port}"
            counters.append(name)
            forward.append(f"ct state new ip daddr {t.BACKEND4[b]} {proto} dport {port} counter name {name}")
            forward.append(f"ct state new ip6 daddr {t.BACKEND6[b]} {proto} dport {port} counter name {name}")
    return _table(
        LB_TABLE,
        counters=counters,
        chains={
            "prerouting": ("type nat hook prerouting priority dstnat; policy accept;", prerouting),
            "forward": ("type filter hook forward priority filter; policy accept;", forward),
        },
    )


def inside_ruleset(s: Scenario) -> str:
    """The inside host's input: count what arrives from the VPN pools (`from_pools`) and DNS queries from
    them (`dns_queries`); with `inside.dns: unreachable` drop those queries silently (a DNS server whose ACL
    forgot the VPN address pools)."""
    from vpndoctor.lab.strongswan import POOLS

    pools = ", ".join(POOLS[b][0] for b in t.BACKENDS)
    verdict = " drop" if s.inside is not None and s.inside.dns == "unreachable" else ""
    rules = [f"ip saddr {{ {pools} }} counter name from_pools"]
    rules += [
        f"ip saddr {{ {pools} }} {p} dport 53 counter name dns_queries{verdict}" for p in ("udp", "tcp")
    ]
    return _table(
        INSIDE_TABLE,
        counters=["from_pools", "dns_queries"],
        chains={"input": ("type filter hook input priority filter; policy accept;", rules)},
    )


def nps_ruleset(s: Scenario) -> str:
    """The RADIUS host's input: count RADIUS requests (`radius_auth`, `radius_acct`); with `radius: down`
    drop them without an ICMP answer, as a Windows server's firewall in stealth mode does for a stopped NPS
    (an ICMP port unreachable would end strongSwan's RADIUS request at once instead)."""
    verdict = " drop" if s.radius == "down" else ""
    rules = [
        f"udp dport {t.RADIUS_AUTH_PORT} counter name radius_auth{verdict}",
        f"udp dport {t.RADIUS_ACCT_PORT} counter name radius_acct{verdict}",
    ]
    return _table(
        NPS_TABLE,
        counters=["radius_auth", "radius_acct"],
        chains={"input": ("type filter hook input priority filter; policy accept;", rules)},
    )


def _table(name: str, *, counters: list[str], chains: dict[str, tuple[str, list[str]]]) -> str:
    lines = [f"table inet {name}", f"delete table inet {name}", f"table inet {name} {{"]
    lines += [f"  counter {c} {{ }}" for c in counters]
    for chain, (hook, rules) in chains.items():
        lines.append(f"  chain {chain} {{")
        lines.append(f"    {hook}")
        lines += [f"    {r}" for r in rules]
        lines.append("  }")
    lines.append("}")
    return "\n".join(lines) + "\n"
