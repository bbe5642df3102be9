"""Names for well-known Vendor ID payload contents, so a report can say "peer is Windows (MS NT5 ...)".

Only entries whose exact bytes we could confirm in at least one public implementation are listed; each says
where. Many IDs are MD5 hashes of a string (tests check those hashes); Cisco's IKEv2 IDs are plain ASCII.
"""

from __future__ import annotations

from collections.abc import Callable

# Exact matches: the whole Vendor ID payload body.
_EXACT: dict[bytes, str] = {
    # strongSwan: MD5("strongSwan"); strongSwan src/libcharon/sa/ikev2/tasks/ike_vendor.c
    bytes.fromhex("882fe56d6fd20dbc2251613b2ebe5beb"): "strongSwan",
    # Cisco IKEv2 IDs are raw ASCII; strongSwan ike_vendor.c and libreswan programs/pluto/vendor.c
    b"CISCO-DELETE-REASON": "Cisco Delete Reason",
    b"FLEXVPN-SUPPORTED": "Cisco FlexVPN Supported",
    b"CISCO(COPYRIGHT)&Copyright (c) 2009 Cisco Systems, Inc.": "Cisco Copyright (c) 2009",
    # Cisco Unity: MD5("CISCO-UNITY") with the last two bytes replaced by 01 00; ike-scan ike-vendor-ids
    bytes.fromhex("12f5f28c457168a9702d9fe274cc0100"): "Cisco Unity",
    # Windows (AuthIP / IKEv2): MD5 of the quoted names; strongSwan ike_vendor.c, libreswan vendor.c
    bytes.fromhex("fb1de3cdf341b7ea16b7e5be0855f120"): "MS-Negotiation Discovery Capable",
    bytes.fromhex("26244d38eddb61b3172a36e3d0cfb819"): "Microsoft Vid-Initial-Contact",
    bytes.fromhex("e3a5966a76379fe707228231e5ce8652"): "IKE CGA version 1",
    bytes.fromhex("214ca4faffa7f32d6748e5303395ae83"): "MS-MamieExists",
    # NAT traversal: MD5("RFC 3947") per RFC 3947 section 3.1, and the drafts before it (ike-scan)
    bytes.fromhex("4a131c81070358455c5728f20e95452f"): "RFC 3947 NAT-T",
    bytes.fromhex("90cb80913ebb696e086381b5ec427b1f"): "draft-ietf-ipsec-nat-t-ike-02\\n",
    bytes.fromhex("cd60464335df21f87cfdb2fc68b6a448"): "draft-ietf-ipsec-nat-t-ike-02",
    bytes.fromhex("7d9419a65310ca6f2c179d9215529d56"): "draft-ietf-ipsec-nat-t-ike-03",
    # Dead Peer Detection version 1.0: the 16 bytes printed in RFC 3706 section 5.1
    bytes.fromhex("afcad71368a1f1c96b8696fc77570100"): "RFC 3706 DPD",
}

# Windows version numbers appended to MD5("MS NT5 ISAKMPOAKLEY"), from Microsoft's [MS-IKEE] as quoted in
# libreswan's vendor.c; later values are shown as a bare number rather than guessed.
_MS_NT5_VERSIONS: dict[int, str] = {
    2: "Windows 2000",
    3: "Windows XP",
    4: "Windows Server 2003",
    5: "Windows Vista",
    6: "Windows Server 2008",
    7: "Windows 7",
    8: "Windows Server 2008 R2",
}


def _ms_nt5(rest: bytes) -> str:
    if len(rest) < 4:
        return "MS NT5 ISAKMPOAKLEY"
    version = int.from_bytes(rest[:4], "big")
    hint = _MS_NT5_VERSIONS.get(version)
    return f"MS NT5 ISAKMPOAKLEY v{version}" + (f" ({hint})" if hint else "")


def _fixed(name: str) -> Callable[[bytes], str]:
    return lambda rest: name


# Prefix matches: IDs followed by version or capability bytes that vary between senders.
_PREFIX: tuple[tuple[bytes, Callable[[bytes], str]], ...] = (
    # MD5("MS NT5 ISAKMPOAKLEY") + 4-byte version; ike-scan, strongSwan ike_vendor.c (v7, v8, v9)
    (bytes.fromhex("1e2b516905991c7d7c96fcbfb587e461"), _ms_nt5),
    # MD5("FRAGMENTATION"), IKEv1 fragmentation (Cisco appends c0000000); strongSwan, ike-scan; Wireshark
    # calls it "Cisco Fragmentation"
    (bytes.fromhex("4048b7d56ebce88525e7de7f00d6c2d3"), _fixed("FRAGMENTATION")),
    # MD5("draft-ietf-ipsra-isakmp-xauth-06.txt") truncated to 8 bytes; ike-scan, libreswan
    (bytes.fromhex("09002689dfd6b712"), _fixed("XAUTH")),
)


def describe(data: bytes) -> str | None:
    """A human name for a Vendor ID payload body, or None if it is not one we know."""
    name = _EXACT.get(bytes(data))
    if name is not None:
        return name
    for prefix, render in _PREFIX:
        if data.startswith(prefix):
            return render(data[len(prefix) :])
    return None


# MD5 preimages of the hashed entries above, for the tests that keep this table honest.
MD5_PREIMAGES: dict[bytes, bytes] = {
    b"strongSwan": bytes.fromhex("882fe56d6fd20dbc2251613b2ebe5beb"),
    b"MS-Negotiation Discovery Capable": bytes.fromhex("fb1de3cdf341b7ea16b7e5be0855f120"),
    b"Vid-Initial-Contact": bytes.fromhex("26244d38eddb61b3172a36e3d0cfb819"),
    b"IKE CGA version 1": bytes.fromhex("e3a5966a76379fe707228231e5ce8652"),
    b"MS-MamieExists": bytes.fromhex("214ca4faffa7f32d6748e5303395ae83"),
    b"RFC 3947": bytes.fromhex("4a131c81070358455c5728f20e95452f"),
    b"draft-ietf-ipsec-nat-t-ike-02\n": bytes.fromhex("90cb80913ebb696e086381b5ec427b1f"),
    b"draft-ietf-ipsec-nat-t-ike-02": bytes.fromhex("cd60464335df21f87cfdb2fc68b6a448"),
    b"draft-ietf-ipsec-nat-t-ike-03": bytes.fromhex("7d9419a65310ca6f2c179d9215529d56"),
    b"MS NT5 ISAKMPOAKLEY": bytes.fromhex("1e2b516905991c7d7c96fcbfb587e461"),
    b"FRAGMENTATION": bytes.fromhex("4048b7d56ebce88525e7de7f00d6c2d3"),
}
