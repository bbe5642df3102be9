"""DirectAccess address tools: RFC vectors, ISATAP prefixes, ipconfig / Get-NetIPAddress parsing, firewall
commands and the one-error-type contract of the decoder."""

from __future__ import annotations

import ipaddress
import re
import time

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from vpndoctor.configgen.windows import (
    DEFAULT_RULE,
    firewall_commands,
    netsh_command,
    powershell_command,
    powershell_quote,
)
from vpndoctor.errors import UsageError
from vpndoctor.windows.addresses import (
    KIND_6TO4,
    KIND_DOCUMENTATION,
    KIND_GLOBAL,
    KIND_IPV4,
    KIND_IPV4_COMPATIBLE,
    KIND_IPV4_MAPPED,
    KIND_ISATAP,
    KIND_ISATAP_LINK_LOCAL,
    KIND_LINK_LOCAL,
    KIND_LOOPBACK,
    KIND_MULTICAST,
    KIND_NAT64,
    KIND_NAT64_LOCAL,
    KIND_RESERVED,
    KIND_SITE_LOCAL,
    KIND_TEREDO,
    KIND_ULA,
    KIND_UNSPECIFIED,
    decode_address,
    isatap_prefix,
    with_dotted_ipv4,
)
from vpndoctor.windows.ipconfig import (
    MAX_IPCONFIG_ADDRESSES,
    _ipconfig_entry,  # the scan that replaced a backtracking regex
    adapter_prefixes,
    parse_ipconfig,
    text_from_bytes,
)

ALL_KINDS = {
    KIND_6TO4,
    KIND_DOCUMENTATION,
    KIND_GLOBAL,
    KIND_IPV4,
    KIND_IPV4_COMPATIBLE,
    KIND_IPV4_MAPPED,
    KIND_ISATAP,
    KIND_ISATAP_LINK_LOCAL,
    KIND_LINK_LOCAL,
    KIND_LOOPBACK,
    KIND_MULTICAST,
    KIND_NAT64,
    KIND_NAT64_LOCAL,
    KIND_RESERVED,
    KIND_SITE_LOCAL,
    KIND_TEREDO,
    KIND_ULA,
    KIND_UNSPECIFIED,
}

# --------------------------------------------------------------------------------------------- samples

# `ipconfig /all` on a management server inside the corporate network: an Ethernet adapter with native IPv6,
# the ISATAP adapter that DirectAccess manage-out uses, a second (disconnected) ISATAP adapter and Teredo.
# Note the IPv6 DNS server and gateway continuation lines, which are not addresses of the adapter.
IPCONFIG_ALL = """
Windows IP Configuration

   Host Name . . . . . . . . . . . . : MGMT01
   Primary Dns Suffix  . . . . . . . : corp.example.com
   Node Type . . . . . . . . . . . . : Hybrid
   IP Routing Enabled. . . . . . . . : No
   WINS Proxy Enabled. . . . . . . . : No
   DNS Suffix Search List. . . . . . : corp.example.com

Ethernet adapter Ethernet0:

   Connection-specific DNS Suffix  . : corp.example.com
   Description . . . . . . . . . . . : Intel(R) 82574L Gigabit Network Connection
   Physical Address. . . . . . . . . : 00-0C-29-3A-4B-5C
   DHCP Enabled. . . . . . . . . . . : Yes
   Autoconfiguration Enabled . . . . : Yes
   IPv6 Address. . . . . . . . . . . : 2001:db8:1:10::25(Preferred)
   Link-local IPv6 Address . . . . . : fe80::8d4:2f1c:9a3b:7e21%6(Preferred)
   IPv4 Address. . . . . . . . . . . : 10.0.0.5(Preferred)
   Subnet Mask . . . . . . . . . . . : 255.255.255.0
   Lease Obtained. . . . . . . . . . : Monday, June 3, 2024 9:12:44 AM
   Lease Expires . . . . . . . . . . : Tuesday, June 11, 2024 9:12:44 AM
   Default Gateway . . . . . . . . . : fe80::1%6
                                       10.0.0.1
   DHCP Server . . . . . . . . . . . : 10.0.0.10
   DHCPv6 IAID . . . . . . . . . . . : 100666409
   DHCPv6 Client DUID. . . . . . . . : 00-01-00-01-2A-3B-4C-5D-00-0C-29-3A-4B-5C
   DNS Servers . . . . . . . . . . . : 2001:db8:1:10::10
                                       10.0.0.10
   NetBIOS over Tcpip. . . . . . . . : Enabled

Tunnel adapter isatap.corp.example.com:

   Connection-specific DNS Suffix  . : corp.example.com
   Description . . . . . . . . . . . : Microsoft ISATAP Adapter #2
   Physical Address. . . . . . . . . : 00-00-00-00-00-00-00-E0
   DHCP Enabled. . . . . . . . . . . : No
   Autoconfiguration Enabled . . . . : Yes
   IPv6 Address. . . . . . . . . . . : 2001:db8:1:8000:0:5efe:10.0.0.5(Preferred)
   Link-local IPv6 Address . . . . . : fe80::5efe:10.0.0.5%12(Preferred)
   Default Gateway . . . . . . . . . : fe80::5efe:10.0.0.1%12
   DNS Servers . . . . . . . . . . . : 2001:db8:1:10::10
   NetBIOS over Tcpip. . . . . . . . : Disabled

Tunnel adapter isatap.{5D8B3A6E-1F2C-4E7A-9B0D-3C4E5F6A7B8C}:

   Media State . . . . . . . . . . . : Media disconnected
   Connection-specific DNS Suffix  . :
   Description . . . . . . . . . . . : Microsoft ISATAP Adapter #3
   Physical Address. . . . . . . . . : 00-00-00-00-00-00-00-E0
   DHCP Enabled. . . . . . . . . . . : No
   Autoconfiguration Enabled . . . . : Yes

Tunnel adapter Teredo Tunneling Pseudo-Interface:

   Connection-specific DNS Suffix  . :
   Description . . . . . . . . . . . : Teredo Tunneling Pseudo-Interface
   Physical Address. . . . . . . . . : 00-00-00-00-00-00-00-E0
   DHCP Enabled. . . . . . . . . . . : No
   Autoconfiguration Enabled . . . . : Yes
   IPv6 Address. . . . . . . . . . . : 2001:0:4136:e378:8000:63bf:3fff:fdd2(Preferred)
   Link-local IPv6 Address . . . . . : fe80::8000:63bf:3fff:fdd2%14(Preferred)
   Default Gateway . . . . . . . . . : ::
   NetBIOS over Tcpip. . . . . . . . : Disabled
"""

# Plain `ipconfig` (no descriptions, no "(Preferred)") on a host with a public IPv4 address, so Windows sets
# the u bit (::200:5efe:); the disconnected "Local Area Connection* 9" is Windows 7's Teredo: not ISATAP.
IPCONFIG_PLAIN = """
Windows IP Configuration


Ethernet adapter Local Area Connection:

   Connection-specific DNS Suffix  . : corp.example.com
   IPv6 Address. . . . . . . . . . . : 2001:db8:1:10::77
   Link-local IPv6 Address . . . . . : fe80::a1b2:c3d4:e5f6:789%11
   IPv4 Address. . . . . . . . . . . : 131.107.10.20
   Subnet Mask . . . . . . . . . . . : 255.255.255.0
   Default Gateway . . . . . . . . . : 131.107.10.1

Tunnel adapter isatap.{9A1B2C3D-4E5F-4061-8273-94A5B6C7D8E9}:

   Connection-specific DNS Suffix  . : corp.example.com
   IPv6 Address. . . . . . . . . . . : 2001:db8:1:8000:200:5efe:131.107.10.20
   Link-local IPv6 Address . . . . . : fe80::200:5efe:131.107.10.20%13
   Default Gateway . . . . . . . . . : fe80::5efe:10.0.0.1%13

Tunnel adapter Local Area Connection* 9:

   Media State . . . . . . . . . . . : Media disconnected
   Connection-specific DNS Suffix  . :
"""

# Windows Vista / Server 2008 named tunnel adapters "Local Area Connection* N" and put isatap.{GUID} in the
# description; a DirectAccess client on the internet has only the link-local ISATAP address.
IPCONFIG_VISTA_LINK_LOCAL_ONLY = """
Tunnel adapter Local Area Connection* 8:

   Connection-specific DNS Suffix  . :
   Description . . . . . . . . . . . : isatap.{0C1D2E3F-4A5B-4C6D-8E7F-A0B1C2D3E4F5}
   Physical Address. . . . . . . . . : 00-00-00-00-00-00-00-E0
   DHCP Enabled. . . . . . . . . . . : No
   Autoconfiguration Enabled . . . . : Yes
   Link-local IPv6 Address . . . . . : fe80::5efe:192.168.1.20%15(Preferred)
   Default Gateway . . . . . . . . . :
   DNS Servers . . . . . . . . . . . : fec0:0:0:ffff::1%1
                                       fec0:0:0:ffff::2%1
   NetBIOS over Tcpip. . . . . . . . : Disabled
"""

# `Get-NetIPAddress` (list view, the default).
GET_NETIPADDRESS_LIST = """

IPAddress         : fe80::5efe:10.0.0.5%12
InterfaceIndex    : 12
InterfaceAlias    : isatap.corp.example.com
AddressFamily     : IPv6
Type              : Unicast
PrefixLength      : 128
PrefixOrigin      : WellKnown
SuffixOrigin      : Link
AddressState      : Preferred
ValidLifetime     : Infinite ([TimeSpan]::MaxValue)
PreferredLifetime : Infinite ([TimeSpan]::MaxValue)
SkipAsSource      : False
PolicyStore       : ActiveStore

IPAddress         : 2001:db8:1:8000:0:5efe:10.0.0.5
InterfaceIndex    : 12
InterfaceAlias    : isatap.corp.example.com
AddressFamily     : IPv6
Type              : Unicast
PrefixLength      : 64
PrefixOrigin      : RouterAdvertisement
SuffixOrigin      : Link
AddressState      : Deprecated
ValidLifetime     : 29.23:59:52
PreferredLifetime : 00:00:00
SkipAsSource      : False
PolicyStore       : ActiveStore

IPAddress         : 2001:db8:1:10::25
InterfaceIndex    : 6
InterfaceAlias    : Ethernet0
AddressFamily     : IPv6
Type              : Unicast
PrefixLength      : 64
PrefixOrigin      : Manual
SuffixOrigin      : Manual
AddressState      : Preferred
ValidLifetime     : Infinite ([TimeSpan]::MaxValue)
PreferredLifetime : Infinite ([TimeSpan]::MaxValue)
SkipAsSource      : False
PolicyStore       : ActiveStore

IPAddress         : 10.0.0.5
InterfaceIndex    : 6
InterfaceAlias    : Ethernet0
AddressFamily     : IPv4
Type              : Unicast
PrefixLength      : 24
PrefixOrigin      : Manual
SuffixOrigin      : Manual
AddressState      : Preferred
ValidLifetime     : Infinite ([TimeSpan]::MaxValue)
PreferredLifetime : Infinite ([TimeSpan]::MaxValue)
SkipAsSource      : False
PolicyStore       : ActiveStore

"""

# `Get-NetIPAddress | ft ifIndex,IPAddress,PrefixLength,PrefixOrigin,SuffixOrigin`: columns of the default
# table view, which has no InterfaceAlias; numbers are right-aligned.
GET_NETIPADDRESS_TABLE_DEFAULT = """
ifIndex IPAddress                                       PrefixLength PrefixOrigin        SuffixOrigin
------- ---------                                       ------------ ------------        ------------
     12 2001:db8:1:8000:0:5efe:10.0.0.5                           64 RouterAdvertisement Link
     12 fe80::5efe:10.0.0.5%12                                   128 WellKnown           Link
      6 2001:db8:1:10::25                                         64 Manual              Manual
      6 fe80::8d4:2f1c:9a3b:7e21%6                                64 WellKnown           Link
      6 10.0.0.5                                                  24 Manual              Manual
"""

# `Get-NetIPAddress -AddressFamily IPv6 | ft IPAddress,InterfaceAlias,AddressState`: two ISATAP interfaces.
GET_NETIPADDRESS_TABLE_ALIAS = """
IPAddress                       InterfaceAlias                                AddressState
---------                       --------------                                ------------
2001:db8:1:8000:0:5efe:10.0.0.5 isatap.corp.example.com                       Preferred
fe80::5efe:10.0.0.5%12          isatap.corp.example.com                       Preferred
fe80::5efe:192.168.1.20%15      isatap.{0C1D2E3F-4A5B-4C6D-8E7F-A0B1C2D3E4F5} Preferred
2001:db8:1:10::25               Ethernet0                                     Preferred
::1                             Loopback Pseudo-Interface 1                   Preferred
"""

NO_ISATAP = """
Windows IP Configuration

Ethernet adapter Ethernet0:

   Connection-specific DNS Suffix  . : corp.example.com
   IPv6 Address. . . . . . . . . . . : 2001:db8:1:10::25
   IPv4 Address. . . . . . . . . . . : 10.0.0.5
"""


# ------------------------------------------------------------------------------------------- RFC vectors


def test_teredo_rfc4380_example() -> None:
    # RFC 4380 §4: server 65.54.227.120, cone NAT, mapped port 40000, mapped address 192.0.2.45.
    info = decode_address("2001:0000:4136:e378:8000:63bf:3fff:fdd2")
    assert info.kind == KIND_TEREDO
    assert info.prefix == "2001::/32"
    assert info.embedded_ipv4 == "192.0.2.45"
    assert info.details["server_ipv4"] == "65.54.227.120"
    assert info.details["client_ipv4"] == "192.0.2.45"
    assert info.details["external_port"] == 40000
    assert info.details["cone"] is True
    assert info.details["flags"] == "0x8000"
    assert info.address == "2001:0:4136:e378:8000:63bf:3fff:fdd2"
    # An independent oracle: the standard library's own Teredo decoding.
    server, client = ipaddress.IPv6Address(info.address).teredo or (None, None)
    assert (str(server), str(client)) == ("65.54.227.120", "192.0.2.45")


def test_teredo_non_cone_and_odd_flags() -> None:
    # Same server/client, cone bit clear, RFC 5991 random bits and the reserved bit set.
    info = decode_address("2001:0:4136:e378:4423:63bf:3fff:fdd2")
    assert info.details["cone"] is False
    assert info.details["random_bits"] == "0x0423"
    assert any("reserved" in n for n in info.notes)
    assert "non-cone" in info.summary


def test_6to4_rfc3056_example() -> None:
    info = decode_address("2002:c000:0204::1")
    assert info.kind == KIND_6TO4
    assert info.embedded_ipv4 == "192.0.2.4"
    assert info.prefix == "2002:c000:204::/48"
    assert info.details["subnet_id"] == 0
    assert info.notes == ()  # a documentation address stands in for a public one


def test_6to4_windows_host_address_and_private_router() -> None:
    info = decode_address("2002:836b:1::836b:1")
    assert info.embedded_ipv4 == "131.107.0.1"
    assert any("Windows 6to4 host address" in n for n in info.notes)
    private = decode_address("2002:a00:5:1::a00:5")
    assert private.details["subnet_id"] == 1
    assert any("10.0.0.5 is private" in n for n in private.notes)


@pytest.mark.parametrize(
    ("text", "ipv4", "u_bit", "shown"),
    [
        # RFC 5214 §6.1: u bit 0 for an IPv4 address not known to be globally unique...
        ("2001:db8:1:8000:0:5efe:10.0.0.5", "10.0.0.5", False, "2001:db8:1:8000:0:5efe:10.0.0.5"),
        ("2001:db8:1:8000::5efe:a00:5", "10.0.0.5", False, "2001:db8:1:8000:0:5efe:10.0.0.5"),
        # ... and 1 (interface id 0200:5efe) for a globally unique one.
        ("2001:db8:1:8000:200:5efe:131.107.0.1", "131.107.0.1", True, "2001:db8:1:8000:200:5efe:131.107.0.1"),
        ("2001:DB8:0:1:0200:5EFE:C000:028F", "192.0.2.143", True, "2001:db8:0:1:200:5efe:192.0.2.143"),
    ],
)
def test_isatap_both_u_bit_variants(text: str, ipv4: str, u_bit: bool, shown: str) -> None:
    info = decode_address(text)
    assert info.kind == KIND_ISATAP
    assert info.embedded_ipv4 == ipv4
    assert info.details["u_bit"] is u_bit
    assert info.details["g_bit"] is False
    assert info.address == shown
    assert info.notes == () or all("documentation prefix" in n for n in info.notes)


def test_isatap_u_bit_mismatch_and_g_bit_are_noticed() -> None:
    assert any("u bit set" in n for n in decode_address("2001:db8:1:8000:200:5efe:10.0.0.5").notes)
    assert any("u bit clear" in n for n in decode_address("2001:db8:1:8000:0:5efe:131.107.0.1").notes)
    g = decode_address("2001:db8:1:8000:100:5efe:10.0.0.5")
    assert g.kind == KIND_ISATAP and g.details["g_bit"] is True
    assert any("g bit" in n for n in g.notes)


def test_isatap_interface_id_must_be_exact() -> None:
    # Bits other than u/g in the first hextet, or another marker, are not ISATAP (RFC 5214 §6.1).
    assert decode_address("2001:db8:1:8000:400:5efe:10.0.0.5").kind == KIND_DOCUMENTATION
    assert decode_address("2001:db8:1:8000:0:5eff:10.0.0.5").kind == KIND_DOCUMENTATION


@pytest.mark.parametrize(
    ("text", "ipv4", "u_bit"),
    [("fe80::5efe:10.0.0.5", "10.0.0.5", False), ("FE80::200:5EFE:131.107.129.8", "131.107.129.8", True)],
)
def test_isatap_link_local(text: str, ipv4: str, u_bit: bool) -> None:
    info = decode_address(text + "%12")
    assert info.kind == KIND_ISATAP_LINK_LOCAL
    assert info.embedded_ipv4 == ipv4
    assert info.details["u_bit"] is u_bit
    assert info.details["zone"] == "12"
    assert info.prefix == "fe80::/64"
    assert info.address == text.lower()


def test_isatap_on_a_6to4_prefix() -> None:
    info = decode_address("2002:c000:204:1:0:5efe:10.0.0.5")
    assert info.kind == KIND_ISATAP
    assert info.embedded_ipv4 == "10.0.0.5"
    assert info.details["6to4_router_ipv4"] == "192.0.2.4"


def test_teredo_wins_over_a_lookalike_isatap_interface_id() -> None:
    # flags 0, port 0xa101 ^ 0xffff == 0x5efe: the Teredo prefix decides.
    info = decode_address("2001:0:4136:e378:0:5efe:3fff:fdd2")
    assert info.kind == KIND_TEREDO
    assert info.details["external_port"] == 0xA101


@pytest.mark.parametrize(
    ("text", "kind", "ipv4", "prefix", "shown"),
    [
        ("::ffff:10.1.2.3", KIND_IPV4_MAPPED, "10.1.2.3", "::ffff:0:0/96", "::ffff:10.1.2.3"),
        ("::ffff:a01:203", KIND_IPV4_MAPPED, "10.1.2.3", "::ffff:0:0/96", "::ffff:10.1.2.3"),
        ("::10.1.2.3", KIND_IPV4_COMPATIBLE, "10.1.2.3", "::/96", "::10.1.2.3"),
        # RFC 6052 §2.4 example: 192.0.2.33 in the well-known prefix.
        ("64:ff9b::192.0.2.33", KIND_NAT64, "192.0.2.33", "64:ff9b::/96", "64:ff9b::192.0.2.33"),
        ("64:ff9b::c000:221", KIND_NAT64, "192.0.2.33", "64:ff9b::/96", "64:ff9b::192.0.2.33"),
        ("64:ff9b:1::a00:5", KIND_NAT64_LOCAL, None, "64:ff9b:1::/48", "64:ff9b:1::a00:5"),
    ],
)
def test_embedded_ipv4_kinds(text: str, kind: str, ipv4: str | None, prefix: str, shown: str) -> None:
    info = decode_address(text)
    assert (info.kind, info.embedded_ipv4, info.prefix, info.address) == (kind, ipv4, prefix, shown)


def test_nat64_well_known_prefix_with_private_ipv4_is_noticed() -> None:
    assert any("RFC 6052" in n for n in decode_address("64:ff9b::10.0.0.5").notes)


@pytest.mark.parametrize(
    ("text", "kind", "prefix"),
    [
        ("2001:db8::1", KIND_DOCUMENTATION, "2001:db8::/32"),
        ("3fff:abc::1", KIND_DOCUMENTATION, "3fff::/20"),
        ("fd12:3456:789a:1::1", KIND_ULA, "fd12:3456:789a::/48"),
        ("fc00::1", KIND_ULA, "fc00::/48"),
        ("fe80::1c2d:3e4f:5a6b:7c8d", KIND_LINK_LOCAL, "fe80::/64"),
        ("fec0:0:0:ffff::1", KIND_SITE_LOCAL, "fec0::/10"),
        ("ff02::1:2", KIND_MULTICAST, "ff00::/8"),
        ("::1", KIND_LOOPBACK, "::1/128"),
        ("::", KIND_UNSPECIFIED, "::/128"),
        ("100::1", KIND_RESERVED, None),
        ("2606:4700:4700::1111", KIND_GLOBAL, None),
    ],
)
def test_classification(text: str, kind: str, prefix: str | None) -> None:
    info = decode_address(text)
    assert (info.kind, info.prefix, info.embedded_ipv4) == (kind, prefix, None)


def test_ula_details() -> None:
    info = decode_address("fd12:3456:789a:1::1")
    assert info.details["global_id"] == "123456789a"
    assert info.details["subnet_id"] == 1
    assert "locally assigned" in info.summary
    assert "not defined" in decode_address("fc00::1").summary


def test_plain_ipv4_private_says_what_its_forms_would_be() -> None:
    info = decode_address(" 10.0.0.5 ")
    assert (info.kind, info.version, info.address, info.embedded_ipv4) == (
        KIND_IPV4,
        4,
        "10.0.0.5",
        "10.0.0.5",
    )
    assert info.details["ipv4_scope"] == "private"
    assert info.details["isatap_interface_id"] == "0:5efe:10.0.0.5"
    assert info.details["isatap_link_local"] == "fe80::5efe:10.0.0.5"
    assert info.details["6to4_prefix"] == "2002:a00:5::/48"
    assert info.details["ipv4_mapped"] == "::ffff:10.0.0.5"
    assert any("6to4" in n and "needs a public IPv4" in n for n in info.notes)


def test_plain_ipv4_public_gets_the_u_bit() -> None:
    info = decode_address("131.107.0.1")
    assert info.details["ipv4_scope"] == "public"
    assert info.details["isatap_interface_id"] == "200:5efe:131.107.0.1"
    assert info.details["isatap_link_local"] == "fe80::200:5efe:131.107.0.1"
    assert info.details["6to4_prefix"] == "2002:836b:1::/48"
    assert info.details["nat64_wkp"] == "64:ff9b::131.107.0.1"


@pytest.mark.parametrize(
    ("text", "scope"),
    [
        ("100.64.1.1", "shared"),
        ("169.254.3.4", "link-local"),
        ("127.0.0.1", "loopback"),
        ("0.0.0.0", "unspecified"),
    ],
)
def test_ipv4_scopes(text: str, scope: str) -> None:
    assert decode_address(text).details["ipv4_scope"] == scope


def test_pasted_decorations_are_tolerated() -> None:
    info = decode_address("  fe80::5efe:10.0.0.5%12(Preferred)\n")
    assert (info.kind, info.details["zone"], info.details["state"]) == (
        KIND_ISATAP_LINK_LOCAL,
        "12",
        "Preferred",
    )
    assert decode_address("[2001:db8::5]").address == "2001:db8::5"
    assert decode_address("2001:db8:1:8000:0:5efe:10.0.0.5(Deprecated)").details["state"] == "Deprecated"


def test_to_json_round_trips_through_the_pydantic_model() -> None:
    from vpndoctor.windows.addresses import AddressReport

    for text in ("2001:0:4136:e378:8000:63bf:3fff:fdd2", "10.0.0.5", "fe80::5efe:10.0.0.5%12", "::1"):
        data = decode_address(text).to_json()
        assert AddressReport.model_validate(data).model_dump() == data


def test_with_dotted_ipv4() -> None:
    cases = {
        "fe80::5efe:a00:5": "fe80::5efe:10.0.0.5",
        "2001:db8:1:8000:0:5efe:a00:5": "2001:db8:1:8000:0:5efe:10.0.0.5",
        "2001:db8::a00:5": "2001:db8::10.0.0.5",
        "::a00:5": "::10.0.0.5",
        "1:2:3:4:5:6:a00:5": "1:2:3:4:5:6:10.0.0.5",
        "1::5efe:0:0": "1::5efe:0.0.0.0",
    }
    for raw, dotted in cases.items():
        assert with_dotted_ipv4(ipaddress.IPv6Address(raw)) == dotted
        assert ipaddress.IPv6Address(dotted) == ipaddress.IPv6Address(raw)


# ------------------------------------------------------------------------------------------- bad input


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "empty address; expected an IPv6 address"),
        ("   ", "empty address"),
        ("isatap.corp.example.com", "isatap.corp.example.com is not an IP address; expected an IPv6 address"),
        ("2001:db8::g", "is not an IP address"),
        ("10.0.0.256", "10.0.0.256 is not an IP address"),
        ("2001:db8:1:8000::/64", "2001:db8:1:8000::/64 is a /64 prefix, not an address; expected one host's"),
        ("10.0.0.0/8", "10.0.0.0/8 is a /8 prefix, not an address"),
        ("2001:db8::5/64", "2001:db8::5/64 has a prefix length (/64); give the address alone: 2001:db8::5"),
        ("2001:db8::/zz", "is not an IP address"),
        ("fe80::1%", "bad zone index"),
        ("fe80::1%a b", "bad zone index"),
        ("10.0.0.1%3", "an IPv4 address has no zone index"),
        ("a\nb", "'a\\nb' is not an IP address"),
    ],
)
def test_bad_addresses(text: str, message: str) -> None:
    with pytest.raises(UsageError) as err:
        decode_address(text)
    assert message in str(err.value)
    assert "\n" not in str(err.value)


def test_long_garbage_is_cut_in_the_message() -> None:
    with pytest.raises(UsageError) as err:
        decode_address("x" * 500)
    assert len(str(err.value)) < 200


@given(st.text(max_size=80))
@settings(max_examples=400, deadline=None)
def test_decode_never_raises_anything_but_usage_error(text: str) -> None:
    try:
        info = decode_address(text)
    except UsageError as exc:
        assert "\n" not in str(exc)
    else:
        assert info.kind in ALL_KINDS


@given(st.text(alphabet="0123456789abcdefABCDEF:.%/[]() x\t", max_size=50))
@settings(max_examples=600, deadline=None)
def test_decode_address_like_text_never_raises_anything_but_usage_error(text: str) -> None:
    try:
        info = decode_address(text)
    except UsageError as exc:
        assert "\n" not in str(exc)
    else:
        assert info.kind in ALL_KINDS
        ipaddress.ip_address(info.address)  # what we show is itself an address


@given(st.integers(min_value=0, max_value=2**128 - 1))
@settings(max_examples=500, deadline=None)
def test_every_ipv6_address_decodes(value: int) -> None:
    addr = ipaddress.IPv6Address(value)
    info = decode_address(str(addr))
    assert info.kind in ALL_KINDS
    assert ipaddress.IPv6Address(info.address) == addr
    if info.embedded_ipv4 is not None:
        ipaddress.IPv4Address(info.embedded_ipv4)


# -------------------------------------------------------------------------------------------- prefixes


def test_isatap_prefix_private() -> None:
    p = isatap_prefix("2001:db8:1:8000:0:5efe:10.0.0.5")
    assert p.prefix == "2001:db8:1:8000:0:5efe::/96"
    assert (p.embedded_ipv4, p.u_bit) == ("10.0.0.5", False)
    assert p.prefixes() == ("2001:db8:1:8000:0:5efe::/96",)
    assert p.prefixes(public_ipv4=True) == ("2001:db8:1:8000:0:5efe::/96", "2001:db8:1:8000:200:5efe::/96")


def test_isatap_prefix_public() -> None:
    p = isatap_prefix("2001:db8:1:8000:200:5efe:131.107.0.1")
    assert p.prefix == "2001:db8:1:8000:200:5efe::/96"
    assert p.u_bit is True
    assert p.prefixes(public_ipv4=True) == ("2001:db8:1:8000:0:5efe::/96", "2001:db8:1:8000:200:5efe::/96")


@given(
    subnet=st.integers(min_value=0, max_value=2**32 - 1),
    ipv4=st.integers(min_value=0, max_value=2**32 - 1),
    u_bit=st.booleans(),
    other=st.integers(min_value=0, max_value=2**32 - 1),
)
@settings(max_examples=300, deadline=None)
def test_isatap_prefix_covers_every_host_of_the_subnet(
    subnet: int, ipv4: int, u_bit: bool, other: int
) -> None:
    prefix64 = (0x20010DB8 << 32 | subnet) << 64
    addr = ipaddress.IPv6Address(prefix64 | (0x0200 if u_bit else 0) << 48 | 0x5EFE << 32 | ipv4)
    p = isatap_prefix(str(addr))
    assert p.embedded_ipv4 == str(ipaddress.IPv4Address(ipv4))
    assert p.u_bit is u_bit
    assert addr in ipaddress.IPv6Network(p.prefix)
    # Another host on the same ISATAP subnet falls in the same prefix; its u-bit twin in the other one.
    private, public = (ipaddress.IPv6Network(x) for x in p.prefixes(public_ipv4=True))
    assert ipaddress.IPv6Address(prefix64 | 0x5EFE << 32 | other) in private
    assert ipaddress.IPv6Address(prefix64 | 0x0200 << 48 | 0x5EFE << 32 | other) in public


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            "2001:db8::1",
            "2001:db8::1 is not an ISATAP address (interface id 0000:0000:0000:0001);"
            " expected prefix::0:5efe:a.b.c.d",
        ),
        (
            "2001:0:4136:e378:8000:63bf:3fff:fdd2",
            "is not an ISATAP address (a Teredo address, interface id 8000:63bf:3fff:fdd2)",
        ),
        ("2002:c000:204::1", "(a 6to4 address, interface id 0000:0000:0000:0001)"),
        ("fd00::1", "(a unique local address, interface id"),
        ("::ffff:10.0.0.5", "(an IPv4-mapped address, interface id 0000:ffff:0a00:0005)"),
        (
            "10.0.0.5",
            "10.0.0.5 is an IPv4 address; expected an ISATAP IPv6 address such as prefix::0:5efe:10.0.0.5",
        ),
        ("fe80::5efe:10.0.0.5%12", "fe80::5efe:10.0.0.5 is a link-local ISATAP address"),
        ("2001:db8:1:8000::/64", "is a /64 prefix, not an address"),
        ("2001:db8:1:8000:0:5efe::/96", "is a /96 prefix, not an address"),
        ("not-an-address", "not-an-address is not an IP address"),
    ],
)
def test_isatap_prefix_bad_input(text: str, message: str) -> None:
    with pytest.raises(UsageError) as err:
        isatap_prefix(text)
    assert message in str(err.value)
    assert "\n" not in str(err.value)


# -------------------------------------------------------------------------------------------- ipconfig


def test_ipconfig_all_finds_both_isatap_adapters_and_nothing_else() -> None:
    adapters = parse_ipconfig(IPCONFIG_ALL)
    assert [a.name for a in adapters] == [
        "isatap.corp.example.com",
        "isatap.{5D8B3A6E-1F2C-4E7A-9B0D-3C4E5F6A7B8C}",
    ]
    up, down = adapters
    assert up.addresses == ("2001:db8:1:8000:0:5efe:10.0.0.5", "fe80::5efe:10.0.0.5")
    assert up.isatap_addresses == ("2001:db8:1:8000:0:5efe:10.0.0.5",)
    assert (up.description, up.dns_suffix, up.interface_index) == (
        "Microsoft ISATAP Adapter #2",
        "corp.example.com",
        12,
    )
    assert (up.media_disconnected, up.source_format) == (False, "ipconfig")
    assert down.media_disconnected is True
    assert (down.addresses, down.dns_suffix, down.description) == ((), None, "Microsoft ISATAP Adapter #3")


def test_ipconfig_all_with_crlf_line_ends() -> None:
    assert parse_ipconfig(IPCONFIG_ALL.replace("\n", "\r\n")) == parse_ipconfig(IPCONFIG_ALL)


def test_ipconfig_plain_public_ipv4() -> None:
    (adapter,) = parse_ipconfig(IPCONFIG_PLAIN)
    assert adapter.name == "isatap.{9A1B2C3D-4E5F-4061-8273-94A5B6C7D8E9}"
    assert adapter.isatap_addresses == ("2001:db8:1:8000:200:5efe:131.107.10.20",)
    assert adapter.interface_index == 13
    assert isatap_prefix(adapter.isatap_addresses[0]).prefix == "2001:db8:1:8000:200:5efe::/96"


def test_ipconfig_adapter_recognised_by_description_link_local_only() -> None:
    (adapter,) = parse_ipconfig(IPCONFIG_VISTA_LINK_LOCAL_ONLY)
    assert adapter.name == "Local Area Connection* 8"
    assert adapter.description == "isatap.{0C1D2E3F-4A5B-4C6D-8E7F-A0B1C2D3E4F5}"
    assert adapter.addresses == ("fe80::5efe:192.168.1.20",)  # not the fec0 DNS servers
    assert adapter.isatap_addresses == ()


def test_get_netipaddress_list() -> None:
    (adapter,) = parse_ipconfig(GET_NETIPADDRESS_LIST)
    assert (adapter.name, adapter.source_format, adapter.interface_index) == (
        "isatap.corp.example.com",
        "Get-NetIPAddress",
        12,
    )
    assert adapter.addresses == ("fe80::5efe:10.0.0.5", "2001:db8:1:8000:0:5efe:10.0.0.5")
    assert adapter.isatap_addresses == ("2001:db8:1:8000:0:5efe:10.0.0.5",)


def test_get_netipaddress_default_table_falls_back_on_the_interface_id() -> None:
    (adapter,) = parse_ipconfig(GET_NETIPADDRESS_TABLE_DEFAULT)
    assert (adapter.name, adapter.interface_index) == ("interface 12", 12)
    assert adapter.addresses == ("2001:db8:1:8000:0:5efe:10.0.0.5", "fe80::5efe:10.0.0.5")


def test_get_netipaddress_table_with_alias() -> None:
    adapters = parse_ipconfig(GET_NETIPADDRESS_TABLE_ALIAS)
    assert [(a.name, a.addresses) for a in adapters] == [
        ("isatap.corp.example.com", ("2001:db8:1:8000:0:5efe:10.0.0.5", "fe80::5efe:10.0.0.5")),
        ("isatap.{0C1D2E3F-4A5B-4C6D-8E7F-A0B1C2D3E4F5}", ("fe80::5efe:192.168.1.20",)),
    ]


def test_ipconfig_and_get_netipaddress_together_merge_by_name() -> None:
    adapters = parse_ipconfig(IPCONFIG_ALL + "\n" + GET_NETIPADDRESS_LIST)
    assert [a.name for a in adapters] == [
        "isatap.corp.example.com",
        "isatap.{5D8B3A6E-1F2C-4E7A-9B0D-3C4E5F6A7B8C}",
    ]
    assert adapters[0].addresses == ("2001:db8:1:8000:0:5efe:10.0.0.5", "fe80::5efe:10.0.0.5")


def test_an_unindented_line_ends_an_adapter_section() -> None:
    # A Get-NetIPAddress table pasted after ipconfig: its right-aligned rows are indented but are not entries
    # of the last adapter; its ISATAP rows count on their own (here the same interface by its index).
    adapters = parse_ipconfig(IPCONFIG_PLAIN + GET_NETIPADDRESS_TABLE_DEFAULT)
    assert [a.name for a in adapters] == ["isatap.{9A1B2C3D-4E5F-4061-8273-94A5B6C7D8E9}", "interface 12"]
    assert adapters[0].addresses == ("2001:db8:1:8000:200:5efe:131.107.10.20", "fe80::200:5efe:131.107.10.20")


def test_adapter_prefixes() -> None:
    found = adapter_prefixes(parse_ipconfig(IPCONFIG_ALL + IPCONFIG_PLAIN))
    assert [p.prefix for p in found] == ["2001:db8:1:8000:0:5efe::/96", "2001:db8:1:8000:200:5efe::/96"]
    with pytest.raises(UsageError) as err:
        adapter_prefixes(parse_ipconfig(IPCONFIG_VISTA_LINK_LOCAL_ONLY), "client.txt")
    assert str(err.value).startswith(
        "client.txt: no ISATAP adapter has a routable ISATAP address"
        " (Local Area Connection* 8: only fe80::5efe:192.168.1.20); expected prefix::0:5efe:a.b.c.d"
    )
    with pytest.raises(UsageError, match="media disconnected"):
        adapter_prefixes(parse_ipconfig(IPCONFIG_ALL)[1:])


@pytest.mark.parametrize(
    "text", [NO_ISATAP, "", "hello\nworld\n", GET_NETIPADDRESS_LIST.split("IPAddress")[0]]
)
def test_no_isatap_adapter(text: str) -> None:
    with pytest.raises(UsageError) as err:
        parse_ipconfig(text, "ipconfig.txt")
    assert str(err.value).startswith(
        "no ISATAP adapter found in ipconfig.txt;"
        " expected 'Tunnel adapter isatap...' sections from ipconfig /all"
    )


def test_text_from_bytes_handles_windows_encodings() -> None:
    assert text_from_bytes(IPCONFIG_PLAIN.encode("utf-16")) == IPCONFIG_PLAIN  # PowerShell 5.1 `>`
    assert text_from_bytes(IPCONFIG_PLAIN.encode("utf-16-le")) == IPCONFIG_PLAIN
    assert text_from_bytes(b"\xef\xbb\xbf" + IPCONFIG_PLAIN.encode()) == IPCONFIG_PLAIN
    assert (
        text_from_bytes("Intel(R) Ethernet \u00e9".encode("cp437")) == "Intel(R) Ethernet \u00e9"
    )  # cmd `>`


# -------------------------------------------------------------------------------------- firewall commands

BOTH = ["2001:db8:1:8000:0:5efe::/96", "2001:db8:1:8000:200:5efe::/96"]


def test_firewall_commands_exact_text() -> None:
    assert firewall_commands(BOTH, [DEFAULT_RULE, "File and Printer Sharing (Echo Request - ICMPv6-In)"]) == [
        'Set-NetFirewallRule -DisplayName "Remote Desktop - User Mode (TCP-In)"'
        " -RemoteAddress 2001:db8:1:8000:0:5efe::/96,2001:db8:1:8000:200:5efe::/96 -Profile Private,Public",
        'Set-NetFirewallRule -DisplayName "File and Printer Sharing (Echo Request - ICMPv6-In)"'
        " -RemoteAddress 2001:db8:1:8000:0:5efe::/96,2001:db8:1:8000:200:5efe::/96 -Profile Private,Public",
        'netsh advfirewall firewall set rule name="Remote Desktop - User Mode (TCP-In)"'
        " new remoteip=2001:db8:1:8000:0:5efe::/96,2001:db8:1:8000:200:5efe::/96",
        'netsh advfirewall firewall set rule name="File and Printer Sharing (Echo Request - ICMPv6-In)"'
        " new remoteip=2001:db8:1:8000:0:5efe::/96,2001:db8:1:8000:200:5efe::/96",
    ]


def test_firewall_commands_single_prefix_dedup_and_normalise() -> None:
    assert firewall_commands(["2001:DB8:1:8000:0:5EFE:0:0/96"], [DEFAULT_RULE, DEFAULT_RULE]) == [
        'Set-NetFirewallRule -DisplayName "Remote Desktop - User Mode (TCP-In)"'
        " -RemoteAddress 2001:db8:1:8000:0:5efe::/96 -Profile Private,Public",
        'netsh advfirewall firewall set rule name="Remote Desktop - User Mode (TCP-In)"'
        " new remoteip=2001:db8:1:8000:0:5efe::/96",
    ]


@pytest.mark.parametrize(
    ("name", "quoted"),
    [
        ("Remote Desktop - User Mode (TCP-In)", '"Remote Desktop - User Mode (TCP-In)"'),
        ("Bob's rule", '"Bob\'s rule"'),
        ("Cost $5", "'Cost $5'"),
        ('Say "hi"', "'Say \"hi\"'"),
        ("It's `$x`", "'It''s `$x`'"),
        ("\u201csmart\u201d it\u2019s", "'\u201csmart\u201d it\u2019\u2019s'"),
    ],
)
def test_powershell_quoting(name: str, quoted: str) -> None:
    assert powershell_quote(name) == quoted


def test_powershell_wildcard_names_are_matched_exactly() -> None:
    assert powershell_command("Admin [RDP] *", ["2001:db8:1:8000:0:5efe::/96"]) == (
        'Get-NetFirewallRule | Where-Object DisplayName -eq "Admin [RDP] *" |'
        " Set-NetFirewallRule -RemoteAddress 2001:db8:1:8000:0:5efe::/96 -Profile Private,Public"
    )
    assert netsh_command("Admin [RDP] *", ["2001:db8:1:8000:0:5efe::/96"]) == (
        'netsh advfirewall firewall set rule name="Admin [RDP] *" new remoteip=2001:db8:1:8000:0:5efe::/96'
    )


@pytest.mark.parametrize(
    ("prefixes", "names", "message"),
    [
        (BOTH, [], "no firewall rule names given"),
        (BOTH, [""], "empty firewall rule name"),
        (BOTH, ["a\nb"], "contains a control character"),
        (BOTH, ['Say "hi"'], "netsh cannot be given safely"),
        (BOTH, ["100%"], "netsh cannot be given safely"),
        ([], [DEFAULT_RULE], "no prefixes given"),
        (["2001:db8:1:8000:0:5efe:a00:5/96"], [DEFAULT_RULE], "is not an IP prefix"),
        (["isatap"], [DEFAULT_RULE], "isatap is not an IP prefix"),
    ],
)
def test_firewall_commands_bad_input(prefixes: list[str], names: list[str], message: str) -> None:
    with pytest.raises(UsageError) as err:
        firewall_commands(prefixes, names)
    assert message in str(err.value)
    assert "\n" not in str(err.value)


# ------------------------------------------------------------------------------- hostile ipconfig text

ISATAP_RECORD = (
    "IPAddress      : 2001:db8:1:8000:0:5efe:10.0.0.5\n"
    "InterfaceIndex : {index}\n"
    "InterfaceAlias : isatap.corp.example.com\n"
    "AddressFamily  : IPv6\n"
)


@pytest.mark.parametrize(
    ("index", "expected"),
    [
        ("12", 12),
        ("4294967295", 4294967295),  # NET_IFINDEX is a ULONG
        ("12\u00b2", None),  # superscript two: str.isdigit() is true, int() refuses it
        ("\u0661\u0662", None),  # Arabic-Indic digits: int() would take them as 12
        ("1" * 5000, None),  # past int()'s 4300-digit limit
        ("4294967296", None),
        ("1_2", None),
        ("+12", None),
    ],
    ids=["ascii", "u32-max", "superscript", "arabic-indic", "5000-digits", "u32-max+1", "underscore", "sign"],
)
def test_interface_index_is_ascii_decimal_or_nothing(index: str, expected: int | None) -> None:
    (adapter,) = parse_ipconfig(ISATAP_RECORD.format(index=index))
    assert adapter.interface_index == expected
    assert adapter.isatap_addresses == ("2001:db8:1:8000:0:5efe:10.0.0.5",)


def test_hostile_index_in_a_get_netipaddress_table() -> None:
    text = GET_NETIPADDRESS_TABLE_DEFAULT.replace("     12 2001", "    12\u00b2 2001")
    adapters = parse_ipconfig(text)
    assert [(a.name, a.interface_index) for a in adapters] == [
        ("interface ?", None),  # the row with the bad index
        ("interface 12", 12),
    ]


@pytest.mark.parametrize("zone", ["1" * 5000, "4294967296", "12"])
def test_zone_index_past_the_int_limit_is_not_an_interface_index(zone: str) -> None:
    text = (
        "Tunnel adapter isatap.corp.example.com:\n\n"
        f"   Link-local IPv6 Address . . . . . : fe80::5efe:10.0.0.5%{zone}(Preferred)\n"
        "   IPv6 Address. . . . . . . . . . . : 2001:db8:1:8000:0:5efe:10.0.0.5\n"
    )
    (adapter,) = parse_ipconfig(text)
    assert adapter.interface_index == (12 if zone == "12" else None)
    assert adapter.addresses == ("fe80::5efe:10.0.0.5", "2001:db8:1:8000:0:5efe:10.0.0.5")


MIB = 1024 * 1024
SECTION = (
    "Tunnel adapter isatap.corp.example.com:\n\n   IPv6 Address. . . . . : 2001:db8:1:8000:0:5efe:10.0.0.5\n"
)
# Each of these took the parser from seconds (at 40 KB) to hours (at 1 MiB): a backtracking regex on a long
# dotted line without its colon, a table header re-scanning every later row, a list membership test per
# address, and a table with a column per two bytes.
HOSTILE_IPCONFIG = {
    "dotted-leader-without-colon": SECTION + "   a" + ". " * (MIB // 2) + "\n",
    "table-headers-repeated": SECTION + "IPAddress\n-\n" * (MIB // 12),
    "many-distinct-addresses": SECTION + "".join(f" ::{i:x}\n" for i in range(MIB // 9)),
    "table-with-a-column-per-two-bytes": SECTION
    + "\nIPAddress"
    + " x" * (MIB // 8)
    + "\n-"
    + " -" * (MIB // 8)
    + "\n"
    + "a\n" * (MIB // 4),
}


@pytest.mark.parametrize("text", HOSTILE_IPCONFIG.values(), ids=HOSTILE_IPCONFIG.keys())
def test_hostile_ipconfig_text_of_a_mib_parses_in_seconds(text: str) -> None:
    started = time.monotonic()
    try:
        adapters = parse_ipconfig(text, "big.txt")
    except UsageError as exc:
        assert str(exc).startswith("big.txt: more than 4096 IPv6 addresses;")
    else:
        assert adapters[0].name == "isatap.corp.example.com"
    assert time.monotonic() - started < 10  # linear: a second or two here, hours before the fix


def test_at_most_4096_addresses() -> None:
    listed = "".join(f" ::{i:x}\n" for i in range(1, MAX_IPCONFIG_ADDRESSES))  # SECTION has one more
    (adapter,) = parse_ipconfig(SECTION + listed)
    assert len(adapter.addresses) == MAX_IPCONFIG_ADDRESSES
    with pytest.raises(UsageError, match="more than 4096 IPv6 addresses"):
        parse_ipconfig(SECTION + listed + " ::ffff:1\n")


def test_an_address_argument_of_128_kib_is_refused_at_once() -> None:
    # 128 KiB is Linux's limit on one argument; `(.*?)\s*\(...\)` used to take minutes on runs of spaces.
    started = time.monotonic()
    with pytest.raises(UsageError, match="too long for an IP address"):
        decode_address("a" + " " * (128 * 1024 - 2) + "b")
    with pytest.raises(UsageError, match="too long for an IP address"):
        isatap_prefix("2001:db8::" + " " * 100_000 + "(Preferred)")
    assert time.monotonic() - started < 5


_OLD_IPCONFIG_ENTRY = re.compile(r"^\s+(?P<key>[^:\s][^:]*?)\s*(?:\.\s*)+:(?:\s(?P<value>.*))?$")


@given(st.text(alphabet=" \t.:aB\u00a0\u2003", max_size=24))
@settings(max_examples=2000, deadline=None)
def test_ipconfig_entry_scan_matches_the_regex_it_replaces(line: str) -> None:
    m = _OLD_IPCONFIG_ENTRY.match(line)
    assert _ipconfig_entry(line) == (m.group("key", "value") if m else None)


_NUMBERISH = st.text(alphabet="0123456789\u00b2\u0661_+- x", max_size=12)


@st.composite
def _ipconfig_like(draw: st.DrawFn) -> str:
    """Get-NetIPAddress records and ipconfig sections whose interface index and zone are number-ish text."""
    out = []
    for _ in range(draw(st.integers(1, 4))):
        index = draw(_NUMBERISH)
        if draw(st.booleans()):
            out.append(
                f"IPAddress      : 2001:db8:1:8000:0:5efe:10.0.0.5\nInterfaceIndex : {index}\n"
                "InterfaceAlias : isatap.x\n\n"
            )
        else:
            out.append(
                "Tunnel adapter isatap.x:\n\n"
                f"   Link-local IPv6 Address . . . : fe80::5efe:10.0.0.5%{index}(Preferred)\n\n"
            )
    return "".join(out)


@given(_ipconfig_like())
@settings(max_examples=300, deadline=None)
def test_parse_ipconfig_never_raises_anything_but_usage_error(text: str) -> None:
    try:
        adapters = parse_ipconfig(text)
    except UsageError as exc:
        assert "\n" not in str(exc)
    else:
        for adapter in adapters:
            assert adapter.interface_index is None or 0 <= adapter.interface_index <= 0xFFFFFFFF
