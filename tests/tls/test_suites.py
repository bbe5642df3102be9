"""The cipher suite table: IANA names checked against OpenSSL's own IANA names, and the audit groups."""

from __future__ import annotations

import shutil
import subprocess

import pytest

from vpndoctor.tls import suites


def test_names_named_in_the_brief() -> None:
    assert suites.name_of(0x0001) == "TLS_RSA_WITH_NULL_MD5"
    assert suites.name_of(0x0002) == "TLS_RSA_WITH_NULL_SHA"
    assert suites.name_of(0x003B) == "TLS_RSA_WITH_NULL_SHA256"
    assert suites.name_of(0x002F) == "TLS_RSA_WITH_AES_128_CBC_SHA"
    assert suites.name_of(0xC013) == "TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA"
    assert suites.name_of(0x000A) == "TLS_RSA_WITH_3DES_EDE_CBC_SHA"
    assert suites.name_of(0x00FF) == "TLS_EMPTY_RENEGOTIATION_INFO_SCSV"
    assert suites.name_of(0x5600) == "TLS_FALLBACK_SCSV"
    assert suites.name_of(0xCCA8) == "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256"
    assert suites.name_of(0x1303) == "TLS_CHACHA20_POLY1305_SHA256"


def test_unknown_value_is_rendered_as_hex() -> None:
    assert suites.name_of(0xABCD) == "0xABCD"
    assert suites.name_of(0x000E) != "0x000E"


def test_table_is_broad_and_names_are_unique() -> None:
    assert len(suites.SUITES) >= 150
    assert len(suites.BY_NAME) == len(suites.SUITES)
    assert all(0 <= v <= 0xFFFF and n.startswith("TLS_") for v, n in suites.SUITES.items())


def test_groups() -> None:
    assert suites.is_null(0x0001) and suites.is_null(0x003B) and suites.is_null(0xC010)
    assert not suites.is_null(0x0000 + 0x002F) and not suites.is_null(0x1301)
    assert {0x0004, 0x0005, 0xC011} <= suites.RC4
    assert {0x000A, 0xC012} <= suites.TRIPLE_DES
    assert {0x0003, 0x0008, 0x0014} <= suites.EXPORT
    assert {0x1301, 0x1302, 0x1303, 0x1304, 0x1305} == suites.TLS13
    assert {0x009C, 0xC02F, 0xCCA8, 0x1301} <= suites.AEAD
    assert {0x002F, 0xC013, 0xC027} <= suites.CBC
    assert not suites.AEAD & suites.CBC
    assert not suites.NULL & (suites.AEAD | suites.CBC | suites.RC4)
    assert suites.is_signalling(0x00FF) and suites.is_signalling(0x5600)
    assert suites.names([0x0002, 0xFFFF]) == ["TLS_RSA_WITH_NULL_SHA", "0xFFFF"]


@pytest.mark.skipif(shutil.which("openssl") is None, reason="openssl not installed")
def test_table_agrees_with_openssl_iana_names() -> None:
    # An independent oracle: `openssl ciphers -stdname` prints OpenSSL's value -> IANA name table.
    out = subprocess.run(
        ["openssl", "ciphers", "-V", "-stdname", "ALL:COMPLEMENTOFALL:@SECLEVEL=0"],
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    ).stdout
    checked = 0
    for line in out.splitlines():
        fields = line.split()
        hi, lo = fields[0].split(",")
        value = int(hi, 16) << 8 | int(lo, 16)
        if fields[2].startswith("TLS_"):
            assert suites.name_of(value) == fields[2], hex(value)
            checked += 1
    assert checked > 100
