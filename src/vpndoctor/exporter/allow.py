"""Which targets the exporter may probe: the target's spelling, then its resolved addresses.

A `target=` parameter comes from whoever can reach the endpoint, so it is read strictly. It is either a
canonical IP literal (what `ipaddress` prints back: no decimal `2130706433`, octal `0177.0.0.1`, hex or
short forms that inet_aton would accept, no IPv6 zone id) or a lowercase DNS name of letters, digits and
hyphens without a trailing dot and whose last label is not numeric (`getaddrinfo` would read `127.1` or
`0x7f.1` as an address). Anything else is refused, not normalised: an allow-list must not depend on how a
resolver happens to interpret an odd spelling.

The allow-list is then checked against every address the name resolves to (one resolution, whose answer
the probe uses; see exporter.service), so a name in the list that resolves outside the CIDRs is refused.
Pure: no I/O.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Sequence
from dataclasses import dataclass

from vpndoctor.exporter.config import AllowList

_LABEL = re.compile(r"^(?!-)[a-z0-9-]{1,63}(?<!-)$")
IpAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


class TargetRefused(ValueError):
    """The target is not probed; the message says why in one line (it goes back to the scraper)."""


@dataclass(frozen=True)
class Target:
    text: str  # as given (canonical)
    literal: IpAddress | None  # the address when the target is an IP literal
    port: int | None = None


def parse_target(text: str) -> Target:
    """A canonical IP literal or a lowercase host name; TargetRefused otherwise."""
    if not text:
        raise TargetRefused("empty target")
    if len(text) > 253 or not text.isascii() or not text.isprintable():
        raise TargetRefused("target is not a printable ASCII name of at most 253 characters")
    bare = text[1:-1] if text.startswith("[") and text.endswith("]") else text
    if "%" in bare:
        raise TargetRefused("IPv6 zone ids are not probed")
    if ":" in bare:
        try:
            addr = ipaddress.IPv6Address(bare)
        except ValueError:
            raise TargetRefused(
                f"{text}: not an IPv6 address (give a port in the module, not the target)"
            ) from None
        if str(addr) != bare:
            raise TargetRefused(f"{text}: write the address as {addr}")
        return Target(str(addr), addr)
    try:
        v4 = ipaddress.IPv4Address(bare)
    except ValueError:
        v4 = None
    if v4 is not None:
        if str(v4) != bare:  # ipaddress refuses leading zeros already; this is belt and braces
            raise TargetRefused(f"{text}: write the address as {v4}")
        return Target(str(v4), v4)
    if bare != text:
        raise TargetRefused(f"{text}: brackets only around an IPv6 address")
    check_name(text)
    return Target(text, None)


def check_name(name: str) -> str:
    if name.endswith("."):
        raise TargetRefused(f"{name}: no trailing dot")
    if name != name.lower():
        raise TargetRefused(f"{name}: write the name in lowercase")
    labels = name.split(".")
    for label in labels:
        if not _LABEL.match(label):
            raise TargetRefused(f"{name}: not a host name (letters, digits, hyphens; labels of 1-63)")
    last = labels[-1]
    if last.isdigit() or re.fullmatch(r"0x[0-9a-f]*", last):
        raise TargetRefused(f"{name}: looks like a numeric address; give a canonical IP literal")
    return name


def check_name_pattern(pattern: str) -> str:
    """An allow-list name: `host.example.com` or `*.example.com` (validated like a target)."""
    try:
        check_name(pattern[2:] if pattern.startswith("*.") else pattern)
    except TargetRefused as exc:
        raise ValueError(str(exc)) from None
    return pattern


def _name_allowed(name: str, patterns: Sequence[str]) -> bool:
    for p in patterns:
        if p.startswith("*."):
            if name.endswith(p[1:]) and len(name) > len(p) - 1:
                return True
        elif name == p:
            return True
    return False


def _unmapped(addr: IpAddress) -> IpAddress:
    if isinstance(addr, ipaddress.IPv6Address) and addr.ipv4_mapped is not None:
        return addr.ipv4_mapped
    return addr


def check_allowed(target: Target, addresses: Sequence[str], allow: AllowList | None) -> tuple[str, ...]:
    """The addresses the probe may use (all of them, each checked), or TargetRefused.

    With an allow-list: the name must match `names` (when given; an IP literal must then be covered by
    `cidrs`), and every resolved address must lie in `cidrs` (when given). One address outside refuses the
    target: a resolver that mixes an allowed and a forbidden answer is not trusted for either.
    """
    parsed: list[IpAddress] = []
    for a in addresses:
        try:
            addr = ipaddress.ip_address(a)
        except ValueError:
            raise TargetRefused(f"{target.text}: the resolver answered {a!r}, not an address") from None
        if isinstance(addr, ipaddress.IPv6Address) and addr.scope_id:
            raise TargetRefused(f"{target.text}: resolved to a scoped address")
        parsed.append(addr)
    if not parsed:
        raise TargetRefused(f"{target.text}: no address")
    if allow is None:
        return tuple(str(a) for a in parsed)
    if allow.names and target.literal is None and not _name_allowed(target.text, allow.names):
        raise TargetRefused(f"{target.text}: not in the allow list")
    if target.literal is not None and not allow.cidrs:
        raise TargetRefused(f"{target.text}: IP literals need `cidrs` in the allow list")
    if allow.cidrs:
        for addr in parsed:
            plain = _unmapped(addr)
            if not any(plain.version == net.version and plain in net for net in allow.cidrs):
                raise TargetRefused(f"{target.text}: resolves to {addr}, outside the allow list")
    return tuple(str(a) for a in parsed)


def pick(addresses: Sequence[str]) -> str:
    """The one address a probe uses: IPv4 first, like most clients (and like net.resolve.resolve_one)."""
    v4 = [a for a in addresses if ":" not in a]
    return (v4 or list(addresses))[0]
