"""The allow-list and the target's spelling: odd encodings are refused, not normalised; every resolved
address is checked."""

from __future__ import annotations

import ipaddress

import pytest

from vpndoctor.exporter.allow import TargetRefused, check_allowed, parse_target, pick
from vpndoctor.exporter.config import AllowList

ALLOW = AllowList(
    names=["vpn.example.com", "*.gw.example.com"], cidrs=["203.0.113.0/24", "2001:db8:113::/48"]
)


@pytest.mark.parametrize(
    "text",
    [
        "2130706433",  # decimal IPv4 (inet_aton reads it as 127.0.0.1)
        "0177.0.0.1",  # octal
        "0x7f.0.0.1",  # hex
        "0x7f000001",
        "127.1",  # short form
        "203.0.113.010",  # a leading zero
        "fe80::1%eth0",  # zone id
        "[fe80::1%25eth0]",
        "2001:DB8:113::10",  # uppercase IPv6
        "2001:db8:113:0::10",  # not the canonical form
        "vpn.example.com.",  # trailing dot
        "VPN.example.com",  # uppercase
        "vpn.example.com:500",  # a port
        "vpn..example.com",
        "-vpn.example.com",
        "vpn.example.com/x",
        "user@vpn.example.com",
        "vpn.exämple.com",  # not ASCII
        "vpn.example.com\n",
        "",
        "a" * 254,
        "[vpn.example.com]",
    ],
)
def test_odd_spellings_are_refused(text: str) -> None:
    with pytest.raises(TargetRefused):
        parse_target(text)


@pytest.mark.parametrize(
    "text",
    ["vpn.example.com", "203.0.113.10", "2001:db8:113::10", "[2001:db8:113::10]", "x-1.gw.example.com"],
)
def test_canonical_spellings_parse(text: str) -> None:
    assert parse_target(text).text == text.strip("[]")


def test_a_name_outside_the_list_is_refused() -> None:
    with pytest.raises(TargetRefused, match="not in the allow list"):
        check_allowed(parse_target("evil.example.net"), ["203.0.113.10"], ALLOW)


def test_a_listed_name_resolving_outside_the_cidrs_is_refused() -> None:
    with pytest.raises(TargetRefused, match="outside the allow list"):
        check_allowed(parse_target("vpn.example.com"), ["127.0.0.1"], ALLOW)


def test_one_address_outside_refuses_them_all() -> None:
    with pytest.raises(TargetRefused, match="10.0.0.1"):
        check_allowed(parse_target("vpn.example.com"), ["203.0.113.10", "10.0.0.1"], ALLOW)


def test_ipv4_mapped_ipv6_is_judged_as_its_ipv4() -> None:
    with pytest.raises(TargetRefused):
        check_allowed(parse_target("vpn.example.com"), ["::ffff:127.0.0.1"], ALLOW)
    assert check_allowed(parse_target("vpn.example.com"), ["::ffff:203.0.113.9"], ALLOW)


def test_wildcards_match_subdomains_only() -> None:
    assert check_allowed(parse_target("a.gw.example.com"), ["203.0.113.7"], ALLOW) == ("203.0.113.7",)
    with pytest.raises(TargetRefused):
        check_allowed(parse_target("gw.example.com"), ["203.0.113.7"], ALLOW)
    with pytest.raises(TargetRefused):
        check_allowed(parse_target("agw.example.com"), ["203.0.113.7"], ALLOW)


def test_ip_literals_are_checked_against_the_cidrs() -> None:
    assert check_allowed(parse_target("203.0.113.10"), ["203.0.113.10"], ALLOW)
    with pytest.raises(TargetRefused):
        check_allowed(parse_target("198.51.100.1"), ["198.51.100.1"], ALLOW)
    names_only = AllowList(names=["vpn.example.com"])
    with pytest.raises(TargetRefused, match="cidrs"):
        check_allowed(parse_target("203.0.113.10"), ["203.0.113.10"], names_only)


def test_without_an_allow_list_everything_canonical_passes() -> None:
    assert check_allowed(parse_target("anything.example"), ["10.1.2.3", "2001:db8::1"], None) == (
        "10.1.2.3",
        "2001:db8::1",
    )


def test_a_resolver_answer_that_is_not_an_address_is_refused() -> None:
    with pytest.raises(TargetRefused):
        check_allowed(parse_target("vpn.example.com"), ["203.0.113.010"], ALLOW)
    with pytest.raises(TargetRefused):
        check_allowed(parse_target("vpn.example.com"), ["fe80::1%eth0"], None)


def test_pick_prefers_ipv4() -> None:
    assert pick(["2001:db8::1", "203.0.113.1"]) == "203.0.113.1"
    assert pick(["2001:db8::1"]) == "2001:db8::1"
    assert ipaddress.ip_address(pick(["203.0.113.1"]))
