"""`vpndoctor.hostport`: the one HOST[:PORT] parser behind `tls`, `sstp` and `iphttps`."""

from __future__ import annotations

import ipaddress

import pytest
from hypothesis import given
from hypothesis import strategies as st

from vpndoctor.cli.sstp import split_host_port
from vpndoctor.errors import UsageError
from vpndoctor.hostport import HostPort, format_host_port, parse_host_port
from vpndoctor.probes.iphttps import IphttpsTarget, parse_target
from vpndoctor.probes.tls_audit import parse_endpoint


@pytest.mark.parametrize(
    ("text", "host", "port", "version"),
    [
        ("vpn.example.com", "vpn.example.com", 443, None),
        ("  vpn.example.com:8443 ", "vpn.example.com", 8443, None),
        ("VPN.Example.com", "VPN.Example.com", 443, None),  # as given, not folded
        ("192.0.2.1", "192.0.2.1", 443, 4),
        ("192.0.2.1:1", "192.0.2.1", 1, 4),
        ("host:65535", "host", 65535, None),
        ("host:00443", "host", 443, None),
        ("[2001:db8::1]", "2001:db8::1", 443, 6),
        ("[2001:db8::1]:4443", "2001:db8::1", 4443, 6),
        ("2001:db8::1", "2001:db8::1", 443, 6),
        ("::1", "::1", 443, 6),
        # A valid address is the host even when it ends in something port-like: that is why ports need [].
        ("2001:db8::1:443", "2001:db8::1:443", 443, 6),
        ("[fe80::1%eth0]:500", "fe80::1%eth0", 500, 6),
        ("::ffff:192.0.2.1", "::ffff:192.0.2.1", 443, 6),
        ("x" * 253, "x" * 253, 443, None),
        ("x" * 253 + ".", "x" * 253 + ".", 443, None),
    ],
)
def test_accepts(text: str, host: str, port: int, version: int | None) -> None:
    where = parse_host_port(text)
    assert where == HostPort(host, port)
    assert where.ip_version == version and where.is_ip == (version is not None)


def test_default_port() -> None:
    assert parse_host_port("h", 500) == HostPort("h", 500)
    assert parse_host_port("[::1]", 4500) == HostPort("::1", 4500)
    assert parse_host_port("h:1", 500) == HostPort("h", 1)


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("", "give a server name"),
        ("   ", "give a server name"),
        ("host:0", "port must be a number from 1 to 65535"),
        ("host:65536", "port must be a number from 1 to 65535"),
        ("host:99999999999999999999", "port must be a number"),
        ("host:", "port must be a number"),
        ("host:x", "port must be a number"),
        ("host:-1", "port must be a number"),
        ("host:+1", "port must be a number"),
        ("host:\u00b2", "port must be a number"),  # superscript two: isdigit() but not ASCII
        ("host:\u0664\u0664\u0663", "port must be a number"),  # Arabic-Indic 443
        (":443", "no host"),
        ("[2001:db8::1", "unbalanced"),
        ("[::1", "expected [IPv6]:PORT"),
        ("[::1]x", "expected [IPv6]:PORT"),
        ("[::1]:", "port must be a number"),
        ("[nothost]:443", "not an IPv6 address"),
        ("[192.0.2.1]:443", "not an IPv6 address"),
        ("[]", "not an IPv6 address"),
        ("2001:db8::g", "not an IPv6 address"),
        ("fe80::1:65536", "needs brackets: [fe80::1]:65536"),
        ("2001:db8:0:0:0:0:0:1:443", "needs brackets: [2001:db8:0:0:0:0:0:1]:443"),
        ("a b", "not a host name"),
        ("a b:443", "not a host name"),
        ("a\tb", "not a host name"),
        ("a\x00b", "not a host name"),
        ("a\x7fb", "not a host name"),
        ("host/path", "not a host name"),
        ("user@host", "not a host name"),
        ("[fe80::1%a b]", "not an IPv6 address"),
        ("x" * 254, "at most 253"),
    ],
)
def test_refuses_with_one_line(text: str, words: str) -> None:
    with pytest.raises(UsageError) as info:
        parse_host_port(text)
    message = str(info.value)
    assert words in message and "\n" not in message and "\r" not in message


def test_refusal_of_a_multiline_argument_stays_on_one_line() -> None:
    with pytest.raises(UsageError) as info:
        parse_host_port("host\n:x")
    assert "\n" not in str(info.value)


# --------------------------------------------------------------------------------------- round trip

_label = st.from_regex(r"[a-z0-9]([a-z0-9-]{0,20}[a-z0-9])?", fullmatch=True)
_names = st.lists(_label, min_size=1, max_size=5).map(".".join).filter(lambda n: not _is_ip(n))
_ipv4 = st.ip_addresses(v=4).map(str)
_ipv6 = st.ip_addresses(v=6).map(str)
_ports = st.integers(min_value=1, max_value=65535)


def _is_ip(text: str) -> bool:
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return False
    return True


@given(host=st.one_of(_names, _ipv4, _ipv6), port=_ports)
def test_format_then_parse_round_trips(host: str, port: int) -> None:
    where = parse_host_port(format_host_port(host, port))
    assert where == HostPort(host, port)
    assert str(where) == format_host_port(host, port)
    assert where.ip_version == (ipaddress.ip_address(host).version if _is_ip(host) else None)


@given(host=_ipv6, port=_ports)
def test_bare_ipv6_takes_the_default_port(host: str, port: int) -> None:
    assert parse_host_port(host, port) == HostPort(host, port)


@given(text=st.text(max_size=80))
def test_any_text_parses_or_is_a_usage_error(text: str) -> None:
    try:
        where = parse_host_port(text)
    except UsageError as exc:
        assert "\n" not in str(exc)
        return
    assert where.host and 1 <= where.port <= 65535


# ------------------------------------------------------------------------------ the three callers


@pytest.mark.parametrize("text", ["vpn.example.com:8443", "[2001:db8::1]:444", "2001:db8::1", "192.0.2.1"])
def test_callers_agree(text: str) -> None:
    where = parse_host_port(text)
    assert parse_endpoint(text) == where
    assert split_host_port(text) == (where.host, where.port)
    assert parse_target(text) == IphttpsTarget(where.host, where.port, "/IPHTTPS")


@pytest.mark.parametrize("text", ["2001:db8:0:0:0:0:0:1:443", "[nothost]:443", "host:", "a b", "host:0"])
def test_callers_refuse_alike(text: str) -> None:
    for parse in (parse_host_port, parse_endpoint, split_host_port, parse_target):
        with pytest.raises(UsageError):
            parse(text)


@pytest.mark.parametrize(
    ("text", "target"),
    [
        ("https://da.example.com/IPHTTPS", IphttpsTarget("da.example.com", 443, "/IPHTTPS")),
        ("https://da.example.com:8443/x?y=1", IphttpsTarget("da.example.com", 8443, "/x?y=1")),
        ("HTTPS://[2001:db8::1]:444/IPHTTPS", IphttpsTarget("2001:db8::1", 444, "/IPHTTPS")),
        ("https://[2001:db8::1]", IphttpsTarget("2001:db8::1", 443, "/IPHTTPS")),
        ("da.example.com:444", IphttpsTarget("da.example.com", 444, "/IPHTTPS")),
    ],
)
def test_iphttps_urls(text: str, target: IphttpsTarget) -> None:
    assert parse_target(text) == target


@pytest.mark.parametrize(
    "text",
    ["http://da.example.com/IPHTTPS", "https://user@da.example.com/", "https:///IPHTTPS", "https://h:/x", ""],
)
def test_iphttps_refuses(text: str) -> None:
    with pytest.raises(UsageError):
        parse_target(text)
