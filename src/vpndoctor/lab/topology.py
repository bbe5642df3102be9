"""The lab's fixed addressing plan and link list (documentation ranges only, IPv4 and IPv6).

```
client ── wan (userspace delay/loss bridge) ── edge (firewall/NAT) ── lb (nftables VIP) ──┬── vpn1
                                                   └── dns (dnsmasq; FreeRADIUS as NPS)       └── vpn2
```
Scenarios with a `revocation` knob add a `crl` host beside the edge, on a public address: the lab CA's CDP,
AIA and OCSP responder (nginx serving a directory, `openssl ocsp`), reachable from the client and the servers.
Pure data: the runner turns it into namespaces, veth pairs, addresses and routes.
"""

from __future__ import annotations

from dataclasses import dataclass

ROLES = ("client", "wan", "edge", "lb", "vpn1", "vpn2", "dns", "crl", "inside")
OPTIONAL_ROLES = ("crl", "inside")  # created only by the scenarios that need them (CRL_LINKS, INSIDE_LINKS)
BACKENDS = ("vpn1", "vpn2")

ZONE = "lab.test"
SERVER_NAME = "vpn.lab.test"

VIP4 = "203.0.113.10"
VIP6 = "2001:db8:113::10"
PUBLIC_VIP4 = "203.0.113.200"  # on the edge when the scenario publishes the VIP through edge DNAT
PUBLIC_VIP6 = "2001:db8:113::200"
# Scenarios with `scan_vips`: a /22 (and an IPv6 /118) of extra public addresses on the edge, each DNATed to
# the VIP, so that `vpndoctor scan` and its benchmark meet ~1,000 gateways (RFC 2544's benchmark range).
SCAN_VIPS4 = "198.18.0.0/22"
SCAN_VIPS6 = "2001:db8:118::/118"
WRONG4 = "203.0.113.99"  # what DNS answers in the dns: wrong scenario; nothing listens there
WRONG6 = "2001:db8:113::99"

CLIENT4 = "198.51.100.10"
CLIENT6 = "2001:db8:100::10"
DNS4 = "192.0.2.50"
DNS6 = "2001:db8:53::2"
BACKEND4 = {"vpn1": "192.0.2.18", "vpn2": "192.0.2.22"}
BACKEND6 = {"vpn1": "2001:db8:11::2", "vpn2": "2001:db8:12::2"}
EDGE_LB4 = "192.0.2.1"  # what the backends see as the client's source when the edge masquerades
EDGE_LB6 = "2001:db8:2::1"

# The DirectAccess IP-HTTPS ADC (scenarios with an `adc` section): its own VIP on the load balancer, a TLS
# front end there, re-encrypting to a DirectAccess server stand-in on each backend (clear of sstpd's 443).
DA_NAME = "da.lab.test"
DA_VIP4 = "203.0.113.20"
DA_VIP6 = "2001:db8:113::20"
DA_PORT = 443
DA_BACKEND_PORT = 8443

# EAP-MSCHAPv2 user the backends accept (the Windows user-tunnel shape).
EAP_USER = "alice"
EAP_PASSWORD = "lab-Passw0rd"

# The NPS stand-in (FreeRADIUS, scenarios with `radius: up`) shares the internal services host with DNS, as
# NPS often shares a domain controller; the VPN servers reach it through the load balancer and the edge.
RADIUS_HOST = "dns"
RADIUS4 = DNS4
RADIUS6 = DNS6
RADIUS_AUTH_PORT = 1812
RADIUS_ACCT_PORT = 1813
RADIUS_SECRET = "lab-Radius-Secret"  # one shared secret for every RADIUS client (the VPN servers)
NPS_NAME = "nps.lab.test"  # the name on the RADIUS server's EAP-TLS/PEAP certificate
# Lab-only accounts: MSCHAPv2 users the RADIUS server knows, and one it knows but its policy refuses.
RADIUS_USERS = {"bob": "lab-Bob-Passw0rd", "carol": "lab-Carol-Passw0rd"}
RADIUS_DENIED_USER = "denied"
RADIUS_DENIED_PASSWORD = "lab-Denied-Passw0rd"
EAP_TLS_USER = "dave@lab.test"  # the user certificate's subject (CN and RFC 822 SAN): EAP-TLS identity
DEVICE_NAME = "device1.lab.test"  # the machine certificate's subject (CN and DNS SAN): device tunnel
DNS_SUFFIX = ZONE  # sent as INTERNAL_DNS_DOMAIN (RFC 8598) by the RRAS-shaped gateway
# What a split-tunnel gateway narrows the traffic selectors to: the internal networks. Every internal host
# sits in 192.0.2.0/24 and 2001:db8::/40 (2001:db8:2::, :11::, :12::, :53::/64; not the client's :100:: nor
# the VIPs' :113::). They hold the VPN servers' own internal addresses, as an RRAS server's internal NIC is
# on the corporate network (strongSwan's userspace ESP routes a policy only from a local address in it).
SPLIT_TUNNEL_NETS = ("192.0.2.0/24", "2001:db8::/40")


@dataclass(frozen=True)
class Link:
    """One veth pair: (namespace role, interface, addresses with prefix) at each end."""

    a_role: str
    a_if: str
    a_addrs: tuple[str, ...]
    b_role: str
    b_if: str
    b_addrs: tuple[str, ...]


LINKS: tuple[Link, ...] = (
    # client and edge share one L2 segment; the wan bridge in between carries no addresses.
    Link("client", "eth0", ("198.51.100.10/24", "2001:db8:100::10/64"), "wan", "to-client", ()),
    Link("wan", "to-edge", (), "edge", "eth-wan", ("198.51.100.1/24", "2001:db8:100::1/64")),
    Link(
        "edge",
        "eth-dns",
        ("192.0.2.49/30", "2001:db8:53::1/64"),
        "dns",
        "eth0",
        ("192.0.2.50/30", "2001:db8:53::2/64"),
    ),
    Link(
        "edge",
        "eth-lb",
        ("192.0.2.1/30", "2001:db8:2::1/64"),
        "lb",
        "eth-edge",
        ("192.0.2.2/30", "2001:db8:2::2/64"),
    ),
    Link(
        "lb",
        "eth-vpn1",
        ("192.0.2.17/30", "2001:db8:11::1/64"),
        "vpn1",
        "eth0",
        ("192.0.2.18/30", "2001:db8:11::2/64"),
    ),
    Link(
        "lb",
        "eth-vpn2",
        ("192.0.2.21/30", "2001:db8:12::1/64"),
        "vpn2",
        "eth0",
        ("192.0.2.22/30", "2001:db8:12::2/64"),
    ),
)

# The revocation host (scenarios with `revocation`): a public web server and OCSP responder beside the
# edge, as a CA's CDP usually is. Its /30 is more specific than the edge's route of 203.0.113.0/24 to the lb.
CRL_HOST = "crl"
CRL4 = "203.0.113.82"
CRL6 = "2001:db8:114::2"
CRL_NAME = f"crl.{ZONE}"  # the CDP and AIA caIssuers URLs
OCSP_NAME = f"ocsp.{ZONE}"  # the AIA OCSP URL (same host)
OCSP_PORT = 8080
INTERNAL_PKI_NAME = f"pki.internal.{ZONE}"  # a CDP published only inside: no public DNS record
CRL_LINKS: tuple[Link, ...] = (
    Link(
        "edge",
        "eth-crl",
        ("203.0.113.81/30", "2001:db8:114::1/64"),
        "crl",
        "eth0",
        (f"{CRL4}/30", f"{CRL6}/64"),
    ),
)
CRL_ROUTES: tuple[tuple[str, str, str], ...] = (
    ("crl", "default", "203.0.113.81"),
    ("crl", "default", "2001:db8:114::1"),
)

# Extra addresses on loopback: the load balancer owns the VIP.
LOOPBACK_ADDRS: dict[str, tuple[str, ...]] = {"lb": (f"{VIP4}/32", f"{VIP6}/128")}

# (role, destination, gateway)
ROUTES: tuple[tuple[str, str, str], ...] = (
    ("client", "default", "198.51.100.1"),
    ("client", "default", "2001:db8:100::1"),
    ("dns", "default", "192.0.2.49"),
    ("dns", "default", "2001:db8:53::1"),
    ("edge", "203.0.113.0/24", "192.0.2.2"),
    ("edge", "192.0.2.16/28", "192.0.2.2"),
    ("edge", "2001:db8:113::/64", "2001:db8:2::2"),
    ("edge", "2001:db8:11::/64", "2001:db8:2::2"),
    ("edge", "2001:db8:12::/64", "2001:db8:2::2"),
    ("lb", "default", "192.0.2.1"),
    ("lb", "default", "2001:db8:2::1"),
    ("vpn1", "default", "192.0.2.17"),
    ("vpn1", "default", "2001:db8:11::1"),
    ("vpn2", "default", "192.0.2.21"),
    ("vpn2", "default", "2001:db8:12::1"),
)

ROUTERS = ("edge", "lb")

# Which link the scenario's path MTU applies to: the edge-lb segment, so the router on the path fragments.
MTU_LINK = ("edge", "eth-lb", "lb", "eth-edge")


# The corporate network behind the VPN servers (scenarios with an `inside` section): one host, reached from
# each backend over its own link, answering ping, TCP (dnsmasq's DNS over TCP, port 53) and DNS for the
# internal zone on INSIDE4 - the address the RRAS-shaped pools then hand out as the DNS server. Clients reach
# it only through the tunnel: the backends forward what their userspace ESP (TUN `ipsec0`) decrypts.
INSIDE_HOST = "inside"
INSIDE4 = "192.0.2.100"  # on the inside host's loopback: the intranet server and internal DNS server
INSIDE_NAME = f"intranet.{ZONE}"  # what the internal DNS answers with INSIDE4
INSIDE_TCP_PORT = 53  # dnsmasq listens on TCP 53 too: a real service for the TCP handshake probe
INSIDE_CLOSED_PORT = 81  # nothing listens: the inside host answers RST
INSIDE_LINKS: tuple[Link, ...] = (
    Link("vpn1", "eth-inside", ("192.0.2.65/30",), "inside", "eth-vpn1", ("192.0.2.66/30",)),
    Link("vpn2", "eth-inside", ("192.0.2.69/30",), "inside", "eth-vpn2", ("192.0.2.70/30",)),
)
INSIDE_GATEWAY = {"vpn1": "192.0.2.66", "vpn2": "192.0.2.70"}  # each backend's next hop to INSIDE4
INSIDE_RETURN = {"vpn1": "192.0.2.65", "vpn2": "192.0.2.69"}  # the inside host's next hop to each pool
ESP_TUN = "ipsec0"  # the TUN device strongSwan's kernel-libipsec creates on each backend


def namespace(prefix: str, role: str) -> str:
    return f"{prefix}-{role}"


def target_addresses(edge_dnat: bool) -> tuple[str, str]:
    """The addresses a client should reach the VPN service on."""
    return (PUBLIC_VIP4, PUBLIC_VIP6) if edge_dnat else (VIP4, VIP6)
