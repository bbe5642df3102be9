"""PRF, prf+ and the SK_* derivation checked against a hand computation with the standard library's hmac
(an implementation independent of `cryptography`), suite validation and sizes, and the tcpdump key log."""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from vpndoctor.ike.constants import DhGroup, EncrId, IntegId, PrfId
from vpndoctor.ike.errors import MalformedMessage
from vpndoctor.ike.keys import (
    CipherSuite,
    DirectionKeys,
    IkeKeys,
    SecretsFileError,
    UnsupportedSuite,
    derive_ike_keys,
    parse_tcpdump_secrets,
    prf,
    prf_output_bytes,
    prf_plus,
)

HASHLIB: dict[int, Callable[[], Any]] = {
    PrfId.HMAC_MD5: hashlib.md5,
    PrfId.HMAC_SHA1: hashlib.sha1,
    PrfId.HMAC_SHA2_256: hashlib.sha256,
    PrfId.HMAC_SHA2_384: hashlib.sha384,
    PrfId.HMAC_SHA2_512: hashlib.sha512,
}


def hand_prf_plus(prf_id: int, key: bytes, seed: bytes, length: int) -> bytes:
    """RFC 7296 §2.13 written out: T1 = prf(K, S | 0x01), Tn = prf(K, Tn-1 | S | n)."""
    digest = HASHLIB[prf_id]
    t = hmac.new(key, seed + b"\x01", digest).digest()
    out = t
    n = 2
    while len(out) < length:
        t = hmac.new(key, t + seed + bytes([n]), digest).digest()
        out += t
        n += 1
    return out[:length]


@pytest.mark.parametrize("prf_id", list(HASHLIB))
def test_prf_is_hmac(prf_id: int) -> None:
    key, data = b"k" * 7, b"data to authenticate"
    assert prf(prf_id, key, data) == hmac.new(key, data, HASHLIB[prf_id]).digest()
    assert prf_output_bytes(prf_id) == HASHLIB[prf_id]().digest_size


@pytest.mark.parametrize("prf_id", list(HASHLIB))
@pytest.mark.parametrize("length", [0, 1, 16, 20, 21, 32, 33, 64, 65, 200, 1000])
def test_prf_plus_matches_hand_computation(prf_id: int, length: int) -> None:
    key = bytes(range(40))
    seed = b"Ni" * 16 + b"Nr" * 16 + bytes(range(16))
    assert prf_plus(prf_id, key, seed, length) == hand_prf_plus(prf_id, key, seed, length)


def test_prf_plus_first_block_by_hand() -> None:
    # The smallest case written out completely: one SHA-1 block is HMAC(K, S | 0x01).
    assert prf_plus(PrfId.HMAC_SHA1, b"key", b"seed", 20) == hmac.new(b"key", b"seed\x01", "sha1").digest()


def test_prf_plus_length_limit() -> None:
    assert len(prf_plus(PrfId.HMAC_SHA1, b"k", b"s", 255 * 20)) == 255 * 20
    with pytest.raises(ValueError):
        prf_plus(PrfId.HMAC_SHA1, b"k", b"s", 255 * 20 + 1)
    with pytest.raises(ValueError):
        prf_plus(PrfId.HMAC_SHA1, b"k", b"s", -1)


def test_unsupported_prf() -> None:
    with pytest.raises(UnsupportedSuite):
        prf(PrfId.AES128_XCBC, b"k", b"d")


# --- suites


SUITES = {
    "aes128-sha1-modp1536": CipherSuite(EncrId.AES_CBC, 128, PrfId.HMAC_SHA1, IntegId.HMAC_SHA1_96, 5),
    "aes256-sha256-modp2048": CipherSuite(
        EncrId.AES_CBC, 256, PrfId.HMAC_SHA2_256, IntegId.HMAC_SHA2_256_128, 14
    ),
    "aes192-sha384-ecp384": CipherSuite(
        EncrId.AES_CBC, 192, PrfId.HMAC_SHA2_384, IntegId.HMAC_SHA2_384_192, 20
    ),
    "aes256-sha512-x25519": CipherSuite(
        EncrId.AES_CBC, 256, PrfId.HMAC_SHA2_512, IntegId.HMAC_SHA2_512_256, 31
    ),
    "3des-sha1-modp1024": CipherSuite(EncrId.DES3, None, PrfId.HMAC_SHA1, IntegId.HMAC_SHA1_96, 2),
    "aes128gcm16-prfsha256-ecp256": CipherSuite(EncrId.AES_GCM_16, 128, PrfId.HMAC_SHA2_256, None, 19),
    "aes256gcm16-prfsha384-ecp384": CipherSuite(EncrId.AES_GCM_16, 256, PrfId.HMAC_SHA2_384, None, 20),
}

# name: (SK_e bytes, SK_a bytes, SK_d/SK_p bytes, block, IV, ICV)
SIZES = {
    "aes128-sha1-modp1536": (16, 20, 20, 16, 16, 12),
    "aes256-sha256-modp2048": (32, 32, 32, 16, 16, 16),
    "aes192-sha384-ecp384": (24, 48, 48, 16, 16, 24),
    "aes256-sha512-x25519": (32, 64, 64, 16, 16, 32),
    "3des-sha1-modp1024": (24, 20, 20, 8, 8, 12),
    "aes128gcm16-prfsha256-ecp256": (20, 0, 32, 1, 8, 16),  # 16-byte key + 4-byte salt (RFC 5282 §7.1)
    "aes256gcm16-prfsha384-ecp384": (36, 0, 48, 1, 8, 16),
}


@pytest.mark.parametrize("name", list(SUITES))
def test_suite_sizes(name: str) -> None:
    suite = SUITES[name]
    encr, integ, prf_key, block, iv, icv = SIZES[name]
    assert (suite.encr_key_bytes, suite.integ_key_bytes, suite.prf_key_bytes) == (encr, integ, prf_key)
    assert (suite.block_bytes, suite.iv_bytes, suite.icv_bytes) == (block, iv, icv)
    assert suite.aead == ("gcm" in name)
    assert suite.cipher_key_bytes + suite.salt_bytes == suite.encr_key_bytes


@pytest.mark.parametrize("name", list(SUITES))
def test_derive_ike_keys_matches_hand_computation(name: str) -> None:
    suite = SUITES[name]
    g_ir, ni, nr = bytes(range(1, 97)), b"\x11" * 32, b"\x22" * 24
    spi_i, spi_r = bytes.fromhex("0001020304050607"), bytes.fromhex("c02e7a3031a03188")
    keys = derive_ike_keys(suite, g_ir, ni, nr, spi_i, spi_r)

    digest = HASHLIB[suite.prf]
    skeyseed = hmac.new(ni + nr, g_ir, digest).digest()  # the full Ni | Nr is the HMAC key
    encr, integ, prf_key = SIZES[name][:3]
    sizes = [prf_key, integ, integ, encr, encr, prf_key, prf_key]
    stream = hand_prf_plus(suite.prf, skeyseed, ni + nr + spi_i + spi_r, sum(sizes))
    expected = []
    for size in sizes:
        expected.append(stream[:size])
        stream = stream[size:]
    assert keys == IkeKeys(*expected)
    assert keys.initiator() == DirectionKeys(encr=keys.sk_ei, integ=keys.sk_ai or None)
    assert keys.responder() == DirectionKeys(encr=keys.sk_er, integ=keys.sk_ar or None)
    if suite.aead:
        assert keys.sk_ai == keys.sk_ar == b"" and keys.initiator().integ is None


def test_key_material_stays_out_of_repr() -> None:
    keys = derive_ike_keys(SUITES["aes128-sha1-modp1536"], b"s", b"n" * 16, b"m" * 16, bytes(8), bytes(8))
    for text in (repr(keys), repr(keys.initiator())):
        assert keys.sk_ei.hex() not in text and keys.sk_ai.hex() not in text


def test_derive_ike_keys_rejects_bad_spis() -> None:
    with pytest.raises(ValueError):
        derive_ike_keys(SUITES["aes128-sha1-modp1536"], b"s", b"n" * 16, b"m" * 16, bytes(4), bytes(8))


@pytest.mark.parametrize(
    ("encr", "bits", "prf_id", "integ", "dh"),
    [
        (EncrId.AES_CTR, 128, PrfId.HMAC_SHA1, IntegId.HMAC_SHA1_96, 14),  # cipher
        (EncrId.AES_CBC, None, PrfId.HMAC_SHA1, IntegId.HMAC_SHA1_96, 14),  # AES without Key Length
        (EncrId.AES_CBC, 512, PrfId.HMAC_SHA1, IntegId.HMAC_SHA1_96, 14),
        (EncrId.DES3, 128, PrfId.HMAC_SHA1, IntegId.HMAC_SHA1_96, 14),
        (EncrId.AES_GCM_8, 128, PrfId.HMAC_SHA1, None, 14),
        (EncrId.CHACHA20_POLY1305, 256, PrfId.HMAC_SHA1, None, 14),
        (EncrId.AES_CBC, 128, PrfId.AES128_XCBC, IntegId.HMAC_SHA1_96, 14),  # PRF
        (EncrId.AES_CBC, 128, PrfId.AES128_CMAC, IntegId.HMAC_SHA1_96, 14),
        (EncrId.AES_CBC, 128, PrfId.HMAC_SHA1, IntegId.AES_XCBC_96, 14),  # integrity
        (EncrId.AES_CBC, 128, PrfId.HMAC_SHA1, None, 14),  # a CBC cipher needs integrity
        (EncrId.AES_CBC, 128, PrfId.HMAC_SHA1, IntegId.NONE, 14),
        (EncrId.AES_GCM_16, 128, PrfId.HMAC_SHA1, IntegId.HMAC_SHA1_96, 14),  # AEAD takes none
        (EncrId.AES_CBC, 128, PrfId.HMAC_SHA1, IntegId.HMAC_SHA1_96, DhGroup.MODP_768),  # DH
        (EncrId.AES_CBC, 128, PrfId.HMAC_SHA1, IntegId.HMAC_SHA1_96, DhGroup.BRAINPOOL_P256),
    ],
)
def test_unsupported_suites(encr: int, bits: int | None, prf_id: int, integ: int | None, dh: int) -> None:
    with pytest.raises(UnsupportedSuite) as info:
        CipherSuite(encr, bits, prf_id, integ, dh)
    assert isinstance(info.value, MalformedMessage)
    assert "expected" in str(info.value)


def test_suite_normalisation() -> None:
    assert CipherSuite(EncrId.AES_GCM_16, 256, PrfId.HMAC_SHA2_256, IntegId.NONE, 19).integ is None
    assert CipherSuite(EncrId.DES3, 192, PrfId.HMAC_SHA1, IntegId.HMAC_SHA1_96, 2).cipher_key_bytes == 24
    # DH NONE: keys from a key log, where the group is unknown and irrelevant.
    assert CipherSuite(EncrId.AES_CBC, 128, PrfId.HMAC_MD5, IntegId.HMAC_MD5_96, DhGroup.NONE).icv_bytes == 12
    # Plain ints work as well as the IntEnums.
    assert CipherSuite(12, 256, 5, 12, 14) == SUITES["aes256-sha256-modp2048"]


# --- tcpdump secrets

CAPTURES = Path(__file__).resolve().parents[3] / "shared" / "captures" / "public"

PI2_SECRETS = (
    "ikev2 I 0x0001020304050607 0xc02e7a3031a03188 sha1:0x4ea8e662b07cdd430f6944c6723e4b82d5722418 "
    "aes128:0x3f44bf47cafd8150591deb088199fcbf\n"
    "ikev2 R 0x0001020304050607 0xc02e7a3031a03188 sha1:0x515b0bd22e6d76b34fdb760aa7bfad80b109b75d "
    "aes128:0xbedb67ec7dc3d00cccac42e70cd63bde\n"
)


def test_parse_tcpdump_secrets() -> None:
    lines = parse_tcpdump_secrets(PI2_SECRETS)
    assert [line.initiator for line in lines] == [True, False]
    first = lines[0]
    assert first.spi_i.hex() == "0001020304050607" and first.spi_r.hex() == "c02e7a3031a03188"
    assert (first.integ, first.encr, first.encr_key_bits) == (IntegId.HMAC_SHA1_96, EncrId.AES_CBC, 128)
    assert first.keys == DirectionKeys(
        encr=bytes.fromhex("3f44bf47cafd8150591deb088199fcbf"),
        integ=bytes.fromhex("4ea8e662b07cdd430f6944c6723e4b82d5722418"),
    )
    suite = first.suite()
    assert (suite.encr_key_bytes, suite.integ_key_bytes, suite.icv_bytes) == (16, 20, 12)
    assert "4ea8e662" not in repr(first)


def test_parse_the_capture_secrets_file() -> None:
    path = CAPTURES / "ikev2pI2-secrets.txt"
    if not path.exists():
        pytest.skip(f"{path} not present")
    assert parse_tcpdump_secrets(path.read_text()) == parse_tcpdump_secrets(PI2_SECRETS)


def test_parse_skips_comments_blank_and_esp_lines() -> None:
    text = (
        "# a comment\n\n"
        "0x12345678@192.1.2.45 3des-cbc-hmac96:0x4043434545464649494a4a4c4c4f4f515152525454575758\n"
        "aes128-cbc:0x00112233445566778899aabbccddeeff\n"
        "ikev2 R 0x0001020304050607 0x08090a0b0c0d0e0f md5:0x00112233445566778899aabbccddeeff "
        "3des-cbc:0x" + "ab" * 24 + "\n"
    )
    (line,) = parse_tcpdump_secrets(text)
    assert not line.initiator
    assert (line.integ, line.encr, line.encr_key_bits) == (IntegId.HMAC_MD5_96, EncrId.DES3, 192)


@pytest.mark.parametrize(
    "bad",
    [
        "ikev2 I 0x0001020304050607 0xc02e7a3031a03188 sha1:0x4ea8e662b07cdd430f6944c6723e4b82d5722418",
        "ikev2 X 0x0001020304050607 0xc02e7a3031a03188 sha1:0x" + "00" * 20 + " aes128:0x" + "00" * 16,
        "ikev2 I 0x00010203040506 0xc02e7a3031a03188 sha1:0x" + "00" * 20 + " aes128:0x" + "00" * 16,
        "ikev2 I 0001020304050607 0xc02e7a3031a03188 sha1:0x" + "00" * 20 + " aes128:0x" + "00" * 16,
        "ikev2 I 0x0001020304050607 0xc02e7a3031a03188 sha1:0x" + "00" * 19 + " aes128:0x" + "00" * 16,
        "ikev2 I 0x0001020304050607 0xc02e7a3031a03188 sha1:0x" + "00" * 20 + " aes128:0x" + "00" * 32,
        "ikev2 I 0x0001020304050607 0xc02e7a3031a03188 whirlpool:0x" + "00" * 20 + " aes128:0x" + "00" * 16,
        "ikev2 I 0x0001020304050607 0xc02e7a3031a03188 sha1:0x" + "00" * 20 + " blowfish:0x" + "00" * 16,
        "ikev2 I 0x0001020304050607 0xc02e7a3031a03188 sha1:0x" + "0" * 39 + " aes128:0x" + "00" * 16,
        "ikev2 I 0x0001020304050607 0xc02e7a3031a03188 sha1:" + "00" * 20 + " aes128:0x" + "00" * 16,
        "ikev3 I 0x0001020304050607 0xc02e7a3031a03188",
        "file /etc/secrets",
    ],
)
def test_parse_rejects_malformed_lines(bad: str) -> None:
    text = "# header\n" + bad + "\n"
    with pytest.raises(SecretsFileError) as info:
        parse_tcpdump_secrets(text)
    assert isinstance(info.value, MalformedMessage)
    assert info.value.offset == len("# header\n")
    assert "line 2" in str(info.value)
