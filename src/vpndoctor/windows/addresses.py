"""DirectAccess address tools: decode the IPv6 addresses a deployment produces (ISATAP, 6to4, Teredo,
NAT64...) and find the ISATAP manage-out prefix of an address. Pure: text in, frozen dataclasses and strings
out; `AddressReport` is the JSON contract of `vpndoctor address --json`.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass, field
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict

from vpndoctor.errors import UsageError

KIND_ISATAP = "isatap"
KIND_ISATAP_LINK_LOCAL = "isatap-link-local"
KIND_6TO4 = "6to4"
KIND_TEREDO = "teredo"
KIND_IPV4_MAPPED = "ipv4-mapped"
KIND_IPV4_COMPATIBLE = "ipv4-compatible"
KIND_NAT64 = "nat64"
KIND_NAT64_LOCAL = "nat64-local"
KIND_IPV4 = "ipv4"
KIND_DOCUMENTATION = "documentation"
KIND_ULA = "ula"
KIND_LINK_LOCAL = "link-local"
KIND_SITE_LOCAL = "site-local"
KIND_MULTICAST = "multicast"
KIND_LOOPBACK = "loopback"
KIND_UNSPECIFIED = "unspecified"
KIND_RESERVED = "reserved"
KIND_GLOBAL = "global"

ISATAP_EXPECTED = "expected prefix::0:5efe:a.b.c.d"

DetailValue = str | int | bool

_TEREDO = ipaddress.IPv6Network("2001::/32")
_6TO4 = ipaddress.IPv6Network("2002::/16")
_MAPPED = ipaddress.IPv6Network("::ffff:0:0/96")
_COMPATIBLE = ipaddress.IPv6Network("::/96")
_NAT64_WKP = ipaddress.IPv6Network("64:ff9b::/96")
_NAT64_LOCAL = ipaddress.IPv6Network("64:ff9b:1::/48")
_DOCUMENTATION = (ipaddress.IPv6Network("2001:db8::/32"), ipaddress.IPv6Network("3fff::/20"))
_ULA = ipaddress.IPv6Network("fc00::/7")
_LINK_LOCAL = ipaddress.IPv6Network("fe80::/10")
_SITE_LOCAL = ipaddress.IPv6Network("fec0::/10")
_V4_DOCUMENTATION = tuple(
    ipaddress.IPv4Network(n) for n in ("192.0.2.0/24", "198.51.100.0/24", "203.0.113.0/24")
)
_V4_SHARED = ipaddress.IPv4Network("100.64.0.0/10")
_V4_PRIVATE = tuple(ipaddress.IPv4Network(n) for n in ("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16"))

_ISATAP_MARKER = 0x5EFE
# Modified EUI-64 bits in the first hextet of the interface id (RFC 4291 appendix A, RFC 5214 §6.1).
_U_BIT = 0x0200
_G_BIT = 0x0100
# RFC 4380 §4 flags, as refined by RFC 5991 §4 ("CRAAAAUG AAAAAAAA").
_TEREDO_CONE = 0x8000
_TEREDO_RESERVED = 0x4000
_TEREDO_RANDOM = 0x3CFF

_MAX_SHOWN = 60
# The longest address a user pastes is ~130 characters: [IPv6, dotted IPv4%64-character zone] (Deprecated).
MAX_ADDRESS_CHARS = 256


@dataclass(frozen=True)
class AddressInfo:
    """One decoded address. `prefix` is the prefix that gives the address its kind (None when the address
    alone does not say); `details` holds kind-specific facts, `notes` what an engineer should notice."""

    input: str
    address: str
    version: int
    kind: str
    summary: str
    embedded_ipv4: str | None = None
    prefix: str | None = None
    details: dict[str, DetailValue] = field(default_factory=dict)
    notes: tuple[str, ...] = ()

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict (the shape of `AddressReport` below)."""
        return {
            "input": self.input,
            "address": self.address,
            "version": self.version,
            "kind": self.kind,
            "summary": self.summary,
            "embedded_ipv4": self.embedded_ipv4,
            "prefix": self.prefix,
            "details": dict(self.details),
            "notes": list(self.notes),
        }


@dataclass(frozen=True)
class IsatapPrefix:
    """The manage-out prefix of an ISATAP address: its first 96 bits, which every ISATAP host on the same
    subnet shares; only the embedded IPv4 address (the last 32 bits) differs between hosts."""

    address: str
    embedded_ipv4: str
    u_bit: bool
    prefix: str  # this address's own /96
    private_prefix: str  # prefix::0:5efe:0:0/96, hosts with private IPv4 addresses
    public_prefix: str  # prefix::200:5efe:0:0/96, hosts with globally unique IPv4 addresses (u bit set)

    def prefixes(self, public_ipv4: bool = False) -> tuple[str, ...]:
        """Just this address's /96, or both u-bit variants when management hosts may have public IPv4."""
        return (self.private_prefix, self.public_prefix) if public_ipv4 else (self.prefix,)


# ---------------------------------------------------------------------------------------------- decoding


def _show(text: str) -> str:
    # Messages must stay on one line whatever the user pasted.
    text = text.strip()
    shown = text if len(text) <= _MAX_SHOWN else text[: _MAX_SHOWN - 3] + "..."
    return shown if shown.isprintable() and shown else repr(shown)


def _hextets(addr: ipaddress.IPv6Address) -> list[int]:
    value = int(addr)
    return [(value >> (112 - 16 * i)) & 0xFFFF for i in range(8)]


def _iid_text(addr: ipaddress.IPv6Address) -> str:
    return ":".join(f"{h:04x}" for h in _hextets(addr)[4:])


def with_dotted_ipv4(addr: ipaddress.IPv6Address) -> str:
    """The address with its last 32 bits as dotted IPv4, the way Windows and RFC 5952 §5 write ISATAP,
    IPv4-mapped and NAT64 addresses (fe80::5efe:10.0.0.5), independent of the Python version."""
    head = [f"{h:x}" for h in _hextets(addr)[:6]]
    v4 = str(ipaddress.IPv4Address(int(addr) & 0xFFFFFFFF))
    best_start, best_len = -1, 0
    i = 0
    while i < 6:
        if head[i] == "0":
            j = i
            while j < 6 and head[j] == "0":
                j += 1
            if j - i > best_len:
                best_start, best_len = i, j - i
            i = j
        else:
            i += 1
    if best_len < 2:  # RFC 5952 §4.2.2: "::" never stands for a single zero field
        return ":".join(head) + ":" + v4
    left, right = head[:best_start], head[best_start + best_len :]
    return ":".join(left) + "::" + ":".join(right) + (":" if right else "") + v4


def ipv4_scope(v4: ipaddress.IPv4Address) -> str:
    """private / shared (CGNAT) / documentation / loopback / link-local / multicast / unspecified / reserved /
    public."""
    if any(v4 in n for n in _V4_DOCUMENTATION):
        return "documentation"
    if any(v4 in n for n in _V4_PRIVATE):
        return "private"
    if v4 in _V4_SHARED:
        return "shared"
    if v4.is_loopback:
        return "loopback"
    if v4.is_link_local:
        return "link-local"
    if v4.is_multicast:
        return "multicast"
    if v4.is_unspecified:
        return "unspecified"
    return "public" if v4.is_global else "reserved"


def _publicish(scope: str) -> bool:
    # Documentation ranges stand in for public addresses in RFCs and examples: judge them as public.
    return scope in ("public", "documentation")


def _split_input(text: str) -> tuple[str, str | None, str | None]:
    """(address text, zone, state) from what a user pasted: brackets, %zone and an ipconfig
    "(Preferred)" suffix are tolerated because they come with addresses copied from Windows."""
    core = text.strip()
    state = None
    m = re.fullmatch(r"(.*?)\s*\(([A-Za-z]+)\)", core)
    if m:
        core, state = m.group(1), m.group(2)
    if core.startswith("[") and core.endswith("]"):
        core = core[1:-1]
    zone = None
    if "%" in core:
        core, _, zone = core.partition("%")
        if not re.fullmatch(r"[A-Za-z0-9_.\-]{1,64}", zone):
            raise UsageError(f"{_show(text)}: bad zone index after '%'; expected e.g. fe80::5efe:10.0.0.5%12")
    return core, zone, state


def _parse(text: str) -> tuple[ipaddress.IPv4Address | ipaddress.IPv6Address, str | None, str | None]:
    if not isinstance(text, str):
        raise UsageError(f"expected an IP address as text, got {type(text).__name__}")
    if not text.strip():
        raise UsageError("empty address; expected an IPv6 address such as 2001:db8:1:8000:0:5efe:10.0.0.5")
    if len(text.strip()) > MAX_ADDRESS_CHARS:
        # Also keeps the backtracking in _split_input's regex off long runs of spaces.
        raise UsageError(
            f"{_show(text)}: too long for an IP address ({len(text.strip())} characters;"
            f" at most {MAX_ADDRESS_CHARS})"
        )
    core, zone, state = _split_input(text)
    if "/" in core:
        try:
            net = ipaddress.ip_interface(core)
        except ValueError:
            raise UsageError(
                f"{_show(text)} is not an IP address; expected one address without a prefix length"
            ) from None
        if int(net.ip) == int(net.network.network_address) and net.network.prefixlen < net.max_prefixlen:
            raise UsageError(
                f"{_show(text)} is a /{net.network.prefixlen} prefix, not an address; expected one host's"
                " address, e.g. an ISATAP address prefix::0:5efe:a.b.c.d"
            )
        raise UsageError(
            f"{_show(text)} has a prefix length (/{net.network.prefixlen}); give the address alone: {net.ip}"
        )
    try:
        addr = ipaddress.ip_address(core)
    except ValueError:
        raise UsageError(
            f"{_show(text)} is not an IP address; expected an IPv6 address such as"
            " 2001:db8:1:8000:0:5efe:10.0.0.5 or an IPv4 address"
        ) from None
    if zone is not None and addr.version == 4:
        raise UsageError(f"{_show(text)}: an IPv4 address has no zone index ('%'); give the address alone")
    return addr, zone, state


def _decode_ipv4(text: str, v4: ipaddress.IPv4Address) -> AddressInfo:
    scope = ipv4_scope(v4)
    public = _publicish(scope)
    iid = (_U_BIT if public else 0) << 48 | _ISATAP_MARKER << 32 | int(v4)
    link_local = ipaddress.IPv6Address(0xFE80 << 112 | iid)
    sixtofour = ipaddress.IPv6Network((0x2002 << 112 | int(v4) << 80, 48))
    iid_text = f"{'200' if public else '0'}:5efe:{v4}"
    details: dict[str, DetailValue] = {
        "ipv4_scope": scope,
        "isatap_interface_id": iid_text,
        "isatap_link_local": with_dotted_ipv4(link_local),
        "6to4_prefix": str(sixtofour),
        "ipv4_mapped": f"::ffff:{v4}",
        "nat64_wkp": with_dotted_ipv4(ipaddress.IPv6Address(int(_NAT64_WKP.network_address) | int(v4))),
    }
    notes = [
        f"as an ISATAP host it has the address <64-bit subnet prefix>:{iid_text}"
        + (" (u bit set: Windows sets it for a public IPv4 address)" if public else "")
    ]
    if not public:
        notes.append(f"6to4 ({sixtofour}) needs a public IPv4 address; {v4} is {scope}")
        notes.append(f"the NAT64 well-known prefix must not carry a {scope} IPv4 address (RFC 6052 §3.1)")
    return AddressInfo(
        input=text.strip(),
        address=str(v4),
        version=4,
        kind=KIND_IPV4,
        summary=f"IPv4 address ({scope})",
        embedded_ipv4=str(v4),
        details=details,
        notes=tuple(notes),
    )


def _decode_isatap(
    addr: ipaddress.IPv6Address, h: list[int]
) -> tuple[str, str, str, dict[str, DetailValue], list[str]]:
    v4 = ipaddress.IPv4Address(int(addr) & 0xFFFFFFFF)
    scope = ipv4_scope(v4)
    u_bit, g_bit = bool(h[4] & _U_BIT), bool(h[4] & _G_BIT)
    link_local = addr in _LINK_LOCAL
    net64 = ipaddress.IPv6Network((int(addr) >> 64 << 64, 64))
    net96 = ipaddress.IPv6Network((int(addr) >> 32 << 32, 96))
    details: dict[str, DetailValue] = {
        "interface_id": _iid_text(addr),
        "u_bit": u_bit,
        "g_bit": g_bit,
        "ipv4_scope": scope,
    }
    notes: list[str] = []
    if not link_local:
        details["manage_out_prefix"] = str(net96)
    if u_bit and not _publicish(scope):
        notes.append(f"u bit set (globally unique IPv4) but {v4} is {scope}")
    if not u_bit and _publicish(scope):
        notes.append(f"u bit clear but {v4} is {scope}; Windows writes ::200:5efe: for a public IPv4")
    if g_bit:
        notes.append("g bit set: a group interface id, not one a Windows host forms for itself")
    if link_local:
        notes.append(
            "link-local: reachable only on the ISATAP link; a host that has only this address has not"
            " heard from an ISATAP router (does the name 'isatap' resolve?)"
        )
        summary = f"link-local ISATAP address of IPv4 host {v4} ({scope})"
        return KIND_ISATAP_LINK_LOCAL, summary, "fe80::/64", details, notes
    if addr in _6TO4:
        details["6to4_router_ipv4"] = str(ipaddress.IPv4Address(h[1] << 16 | h[2]))
        notes.append(f"the subnet prefix is 6to4 (router {details['6to4_router_ipv4']})")
    elif any(addr in n for n in _DOCUMENTATION):
        notes.append("the subnet prefix is a documentation prefix")
    elif addr in _ULA:
        notes.append("the subnet prefix is a unique local (ULA) prefix")
    summary = f"ISATAP address of IPv4 host {v4} ({scope}, u bit {int(u_bit)}) on subnet {net64}"
    return KIND_ISATAP, summary, str(net64), details, notes


def _decode_teredo(
    addr: ipaddress.IPv6Address, h: list[int]
) -> tuple[str, dict[str, DetailValue], list[str]]:
    server = ipaddress.IPv4Address(h[2] << 16 | h[3])
    flags = h[4]
    # RFC 4380 §4: port and client address are stored inverted so that NATs do not rewrite them.
    port = h[5] ^ 0xFFFF
    client = ipaddress.IPv4Address((h[6] << 16 | h[7]) ^ 0xFFFFFFFF)
    cone = bool(flags & _TEREDO_CONE)
    details: dict[str, DetailValue] = {
        "server_ipv4": str(server),
        "flags": f"0x{flags:04x}",
        "cone": cone,
        "external_port": port,
        "client_ipv4": str(client),
        "random_bits": f"0x{flags & _TEREDO_RANDOM:04x}",
    }
    notes = []
    if flags & _TEREDO_RESERVED:
        notes.append("reserved flag bit (0x4000) set")
    if flags & (_U_BIT | _G_BIT):
        notes.append("u/g flag bits set; RFC 5991 says they must be zero")
    if not _publicish(ipv4_scope(client)):
        notes.append(f"client IPv4 {client} is {ipv4_scope(client)}: not a NAT's external address")
    nat = "cone NAT" if cone else "non-cone NAT"
    summary = f"Teredo client at {client}:{port} (external address, {nat}), Teredo server {server}"
    return summary, details, notes


def decode_address(text: str) -> AddressInfo:
    """Decode an IPv4 or IPv6 address; raise UsageError (only) when `text` is not one address."""
    addr, zone, state = _parse(text)
    if isinstance(addr, ipaddress.IPv4Address):
        return _decode_ipv4(text, addr)
    h = _hextets(addr)
    low32 = ipaddress.IPv4Address(int(addr) & 0xFFFFFFFF)
    details: dict[str, DetailValue] = {}
    notes: list[str] = []
    shown = addr.compressed
    embedded: str | None = None
    prefix: str | None = None
    if addr in _TEREDO:
        kind, prefix = KIND_TEREDO, str(_TEREDO)
        summary, details, notes = _decode_teredo(addr, h)
        embedded = str(details["client_ipv4"])
    elif addr in _MAPPED:
        kind, prefix, embedded = KIND_IPV4_MAPPED, str(_MAPPED), str(low32)
        shown = with_dotted_ipv4(addr)
        summary = f"IPv4-mapped: IPv4 {low32} seen through an IPv6 socket (never on the wire)"
    elif addr in _NAT64_WKP:
        kind, prefix, embedded = KIND_NAT64, str(_NAT64_WKP), str(low32)
        shown = with_dotted_ipv4(addr)
        summary = f"NAT64 well-known prefix (RFC 6052): IPv4 host {low32}"
        if not _publicish(ipv4_scope(low32)):
            notes.append(f"{low32} is {ipv4_scope(low32)}; RFC 6052 §3.1 forbids it in the well-known prefix")
    elif addr in _NAT64_LOCAL:
        kind, prefix = KIND_NAT64_LOCAL, str(_NAT64_LOCAL)
        summary = (
            "NAT64 local-use prefix (RFC 8215); where the IPv4 sits depends on the network's prefix length"
        )
    elif addr in _COMPATIBLE and int(addr) > 1:
        kind, prefix, embedded = KIND_IPV4_COMPATIBLE, str(_COMPATIBLE), str(low32)
        shown = with_dotted_ipv4(addr)
        summary = f"IPv4-compatible (deprecated, RFC 4291 §2.5.5.1): IPv4 {low32}"
    elif addr.is_multicast:
        kind, summary, prefix, details = _classify_v6(addr, h)
    elif (h[4] & ~(_U_BIT | _G_BIT)) == 0 and h[5] == _ISATAP_MARKER:
        kind, summary, prefix, details, notes = _decode_isatap(addr, h)
        embedded = str(low32)
        shown = with_dotted_ipv4(addr)
    elif addr in _6TO4:
        router = ipaddress.IPv4Address(h[1] << 16 | h[2])
        kind, embedded = KIND_6TO4, str(router)
        prefix = str(ipaddress.IPv6Network((int(addr) >> 80 << 80, 48)))
        details = {"router_ipv4": str(router), "subnet_id": h[3], "interface_id": _iid_text(addr)}
        summary = f"6to4 address of site {prefix} behind IPv4 {router}"
        if h[6] << 16 | h[7] == int(router) and h[4] == h[5] == 0:
            notes.append("interface id repeats the IPv4 address: a Windows 6to4 host address")
        if not _publicish(ipv4_scope(router)):
            notes.append(f"{router} is {ipv4_scope(router)}; 6to4 only works from a public IPv4 address")
    else:
        kind, summary, prefix, details = _classify_v6(addr, h)
    if zone is not None:
        details["zone"] = zone
    if state is not None:
        details["state"] = state
    return AddressInfo(
        input=text.strip(),
        address=shown,
        version=6,
        kind=kind,
        summary=summary,
        embedded_ipv4=embedded,
        prefix=prefix,
        details=details,
        notes=tuple(notes),
    )


def _classify_v6(
    addr: ipaddress.IPv6Address, h: list[int]
) -> tuple[str, str, str | None, dict[str, DetailValue]]:
    iid: dict[str, DetailValue] = {"interface_id": _iid_text(addr)}
    if addr.is_unspecified:
        return KIND_UNSPECIFIED, "the unspecified address", "::/128", {}
    if addr.is_loopback:
        return KIND_LOOPBACK, "the loopback address", "::1/128", {}
    if addr.is_multicast:
        scope = {1: "interface", 2: "link", 4: "admin", 5: "site", 8: "organization", 14: "global"}
        name = scope.get(h[0] & 0xF, f"scope {h[0] & 0xF}")
        return (
            KIND_MULTICAST,
            f"multicast ({name}-local)" if name != "global" else "multicast (global)",
            "ff00::/8",
            {},
        )
    for net in _DOCUMENTATION:
        if addr in net:
            return KIND_DOCUMENTATION, f"documentation address ({net}): never routed", str(net), iid
    if addr in _LINK_LOCAL:
        return KIND_LINK_LOCAL, "link-local address", "fe80::/64", iid
    if addr in _SITE_LOCAL:
        return KIND_SITE_LOCAL, "site-local address (deprecated, RFC 3879)", str(_SITE_LOCAL), iid
    if addr in _ULA:
        site = ipaddress.IPv6Network((int(addr) >> 80 << 80, 48))
        details: dict[str, DetailValue] = {
            "global_id": f"{(int(addr) >> 80) & 0xFFFFFFFFFF:010x}",
            "subnet_id": h[3],
            **iid,
        }
        locally = "locally assigned" if h[0] & 0x0100 else "L bit clear: fc00::/8 is not defined yet"
        return KIND_ULA, f"unique local address of site {site} ({locally})", str(site), details
    if not addr.is_global:
        return KIND_RESERVED, "special-purpose address (not globally routable)", None, iid
    return KIND_GLOBAL, "global unicast address (its prefix length is not in the address)", None, iid


def _kind_of(text: str) -> str | None:
    try:
        return decode_address(text).kind
    except UsageError:
        return None


# ------------------------------------------------------------------------------------------ ISATAP prefix


def isatap_prefix(address: str) -> IsatapPrefix:
    """The /96 manage-out prefix (and both u-bit variants) of a routable ISATAP address."""
    info = decode_address(address)
    if info.kind == KIND_IPV4:
        raise UsageError(
            f"{info.address} is an IPv4 address; expected an ISATAP IPv6 address such as"
            f" prefix::0:5efe:{info.address} (the isatap adapter's 'IPv6 Address' in ipconfig /all)"
        )
    if info.kind == KIND_ISATAP_LINK_LOCAL:
        raise UsageError(
            f"{info.address} is a link-local ISATAP address; {ISATAP_EXPECTED} with a routable prefix"
            " (the isatap adapter's 'IPv6 Address' line, not 'Link-local IPv6 Address')"
        )
    if info.kind != KIND_ISATAP:
        addr = ipaddress.IPv6Address(info.address)
        plain = info.kind in (KIND_GLOBAL, KIND_DOCUMENTATION)
        what = "" if plain else f"{_KIND_NAMES.get(info.kind, info.kind)}, "
        raise UsageError(
            f"{info.address} is not an ISATAP address ({what}interface id {_iid_text(addr)});"
            f" {ISATAP_EXPECTED}"
        )
    value = int(ipaddress.IPv6Address(info.address))
    base = value >> 64 << 64 | _ISATAP_MARKER << 32
    return IsatapPrefix(
        address=info.address,
        embedded_ipv4=str(info.embedded_ipv4),
        u_bit=bool(info.details["u_bit"]),
        prefix=str(ipaddress.IPv6Network((value >> 32 << 32, 96))),
        private_prefix=str(ipaddress.IPv6Network((base, 96))),
        public_prefix=str(ipaddress.IPv6Network((base | _U_BIT << 48, 96))),
    )


_KIND_NAMES = {
    KIND_TEREDO: "a Teredo address",
    KIND_6TO4: "a 6to4 address",
    KIND_IPV4_MAPPED: "an IPv4-mapped address",
    KIND_IPV4_COMPATIBLE: "an IPv4-compatible address",
    KIND_NAT64: "a NAT64 address",
    KIND_NAT64_LOCAL: "a NAT64 local-use address",
    KIND_ULA: "a unique local address",
    KIND_LINK_LOCAL: "a link-local address",
    KIND_SITE_LOCAL: "a site-local address",
    KIND_MULTICAST: "a multicast address",
    KIND_LOOPBACK: "the loopback address",
    KIND_UNSPECIFIED: "the unspecified address",
    KIND_RESERVED: "a special-purpose address",
}


# ------------------------------------------------------------------------------------------- JSON report


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class AddressReport(_Model):
    """`vpndoctor address --json`: one decoded address (the shape of `AddressInfo.to_json()`)."""

    input: str
    address: str
    version: Literal[4, 6]
    kind: str  # one of the KIND_* constants above
    summary: str
    embedded_ipv4: str | None
    prefix: str | None
    details: dict[str, str | int | bool]
    notes: list[str]


def address_report(info: AddressInfo) -> AddressReport:
    return AddressReport.model_validate(info.to_json())
