"""The one HOST[:PORT] parser every command uses: `host`, `host:port`, `[v6]`, `[v6]:port`, or a bare IPv6
literal (the host, with the default port). Pure (no sockets, no resolving), so codecs, net, probes and the
CLI may all import it. An unbracketed IPv6 address with a port is refused: `2001:db8::1:443` cannot be told
apart from an address, so the user must write `[2001:db8::1]:443`.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass

from vpndoctor.errors import UsageError

MAX_HOSTNAME_CHARS = 253
# Characters that would make the text a URL, a user@host or a bracket expression rather than a host name.
_NOT_IN_HOSTNAME = frozenset("/\\@[]?#")
_PORT_HINT = "write IPv6 with a port as [addr]:port"


@dataclass(frozen=True)
class HostPort:
    host: str  # as given: a name or an address literal, IPv6 without brackets
    port: int

    @property
    def ip_version(self) -> int | None:
        """4 or 6 when the host is an address literal, None for a name."""
        try:
            return ipaddress.ip_address(self.host).version
        except ValueError:
            return None

    @property
    def is_ip(self) -> bool:
        return self.ip_version is not None

    def __str__(self) -> str:
        return format_host_port(self.host, self.port)


def format_host_port(host: str, port: int) -> str:
    """The inverse of `parse_host_port`: IPv6 literals in brackets."""
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def parse_host_port(text: str, default_port: int = 443) -> HostPort:
    """Parse HOST, HOST:PORT, [IPv6], [IPv6]:PORT or a bare IPv6 literal. Raises a one-line UsageError."""
    t = text.strip()
    shown = text if text.isprintable() else repr(text)  # keeps the error on one line
    if not t:
        raise UsageError("give a server name or address")
    if t.startswith("["):
        end = t.find("]")
        if end < 0:
            raise UsageError(f"{shown}: unbalanced '[': expected [IPv6]:PORT")
        host, rest = t[1:end], t[end + 1 :]
        if rest and not rest.startswith(":"):
            raise UsageError(f"{shown}: expected [IPv6]:PORT")
        if not _is_ipv6(host):
            raise UsageError(f"{shown}: {host!r} in brackets is not an IPv6 address")
        return HostPort(host, _port(shown, rest[1:]) if rest else default_port)
    colons = t.count(":")
    if colons > 1:
        if _is_ipv6(t):
            return HostPort(t, default_port)
        head, _, tail = t.rpartition(":")
        if _is_ipv6(head) and tail.isascii() and tail.isdigit():
            raise UsageError(f"{shown}: an IPv6 address with a port needs brackets: [{head}]:{tail}")
        raise UsageError(f"{shown}: not an IPv6 address ({_PORT_HINT})")
    if colons == 1:
        host, _, port_text = t.partition(":")
        return HostPort(_hostname(shown, host), _port(shown, port_text))
    return HostPort(_hostname(shown, t), default_port)


def _is_ipv6(text: str) -> bool:
    # ipaddress takes any text after '%' as a scope id, spaces and control characters included.
    if not text.isprintable() or any(c.isspace() for c in text):
        return False
    try:
        ipaddress.IPv6Address(text)
    except ValueError:
        return False
    return True


def _port(shown: str, port_text: str) -> int:
    # ASCII digits only: str.isdigit() also accepts superscripts and other scripts' digits.
    if not (port_text.isascii() and port_text.isdigit()) or len(port_text) > 5:
        raise UsageError(f"{shown}: the port must be a number from 1 to 65535")
    port = int(port_text)
    if not 1 <= port <= 65535:
        raise UsageError(f"{shown}: the port must be a number from 1 to 65535")
    return port


def _hostname(shown: str, host: str) -> str:
    if not host:
        raise UsageError(f"{shown}: no host")
    if len(host.removesuffix(".")) > MAX_HOSTNAME_CHARS:
        raise UsageError(f"{shown}: a host name has at most {MAX_HOSTNAME_CHARS} characters")
    if any(c.isspace() or not c.isprintable() or c in _NOT_IN_HOSTNAME for c in host):
        raise UsageError(f"{shown}: not a host name or address")
    return host
