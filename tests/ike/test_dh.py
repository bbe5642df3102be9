"""Diffie-Hellman for the KE payload: RFC 3526/2409 primes recomputed from their formula, RFC 5903 ECP
vectors, RFC 7748 X25519 vectors, round trips for every group, and rejection of bad peer values."""

from __future__ import annotations

import hashlib
import warnings
from collections.abc import Callable

import pytest

from vpndoctor.ike.dh import (
    SUPPORTED_GROUPS,
    InvalidKePayload,
    UnsupportedGroup,
    modp_prime,
    new_key_exchange,
    public_value_bytes,
)
from vpndoctor.ike.errors import MalformedMessage


def counter_rng(seed: bytes) -> Callable[[int], bytes]:
    """Deterministic bytes: SHA-256 of seed | counter, concatenated."""
    state = {"n": 0}

    def rng(n: int) -> bytes:
        out = b""
        while len(out) < n:
            state["n"] += 1
            out += hashlib.sha256(seed + state["n"].to_bytes(8, "big")).digest()
        return out[:n]

    return rng


def fixed_rng(value: bytes) -> Callable[[int], bytes]:
    def rng(n: int) -> bytes:
        assert n == len(value), f"asked for {n} bytes, the vector has {len(value)}"
        return value

    return rng


# --- MODP primes: RFC 2409 §6.2 and RFC 3526 define p = 2^n - 2^(n-64) - 1 + 2^64 * (floor(2^(n-130) pi) + k)


def _arctan_inverse(x: int, one: int) -> int:
    total = term = one // x
    n, sign = 1, -1
    while term:
        term //= x * x
        n += 2
        total += sign * (term // n)
        sign = -sign
    return total


def _floor_pi_times_2_to(bits: int) -> int:
    guard = 64
    one = 1 << (bits + guard)
    pi = 4 * (4 * _arctan_inverse(5, one) - _arctan_inverse(239, one))  # Machin's formula
    return pi >> guard


@pytest.mark.parametrize(
    ("group", "bits", "k"),
    [(2, 1024, 129093), (5, 1536, 741804), (14, 2048, 124476), (15, 3072, 1690314), (16, 4096, 240904)],
)
def test_modp_prime_matches_its_defining_formula(group: int, bits: int, k: int) -> None:
    expected = 2**bits - 2 ** (bits - 64) - 1 + 2**64 * (_floor_pi_times_2_to(bits - 130) + k)
    assert modp_prime(group) == expected
    assert public_value_bytes(group) == bits // 8


def test_group_14_prime_sanity() -> None:
    p = modp_prime(14)
    assert p.bit_length() == 2048
    assert p >> (2048 - 64) == 2**64 - 1 and p & (2**64 - 1) == 2**64 - 1  # 64 one-bits at each end
    assert p % 8 == 7  # so 2 is a quadratic residue and generates the prime-order subgroup
    assert pow(2, (p - 1) // 2, p) == 1
    assert hex(p).startswith("0xffffffffffffffffc90fdaa22168c234")
    assert hex(p).endswith("15728e5a8aacaa68ffffffffffffffff")


# --- vectors


RFC5903 = {
    # RFC 5903 §8.1 (P-256), §8.2 (P-384), §8.3 (P-521): i, g^i (x || y, None: not pinned here), r, g^ir x
    19: (
        "C88F01F510D9AC3F70A292DAA2316DE544E9AAB8AFE84049C62A9C57862D1433",
        "DAD0B65394221CF9B051E1FECA5787D098DFE637FC90B9EF945D0C3772581180"
        "5271A0461CDB8252D61F1C456FA3E59AB1F45B33ACCF5F58389E0577B8990BB3",
        "C6EF9C5D78AE012A011164ACB397CE2088685D8F06BF9BE0B283AB46476BEE53",
        "D6840F6B42F6EDAFD13116E0E12565202FEF8E9ECE7DCE03812464D04B9442DE",
    ),
    20: (
        "099F3C7034D4A2C699884D73A375A67F7624EF7C6B3C0F160647B67414DCE655E35B538041E649EE3FAEF896783AB194",
        "667842D7D180AC2CDE6F74F37551F55755C7645C20EF73E31634FE72B4C55EE6DE3AC808ACB4BDB4C88732AEE95F41AA"
        "9482ED1FC0EEB9CAFC4984625CCFC23F65032149E0E144ADA024181535A0F38EEB9FCFF3C2C947DAE69B4C634573A81C",
        "41CB0779B4BDB85D47846725FBEC3C9430FAB46CC8DC5060855CC9BDA0AA2942E0308312916B8ED2960E4BD55A7448FC",
        "11187331C279962D93D604243FD592CB9D0A926F422E47187521287E7156C5C4D603135569B9E9D09CF5D4A270F59746",
    ),
    21: (
        "0037ADE9319A89F4DABDB3EF411AACCCA5123C61ACAB57B5393DCE47608172A095AA85A30FE1C2952C6771D937BA9777"
        "F5957B2639BAB072462F68C27A57382D4A52",
        None,
        "0145BA99A847AF43793FDD0E872E7CDFA16BE30FDC780F97BCCC3F078380201E9C677D600B343757A3BDBF2A3163E4C2"
        "F869CCA7458AA4A4EFFC311F5CB151685EB9",
        "01144C7D79AE6956BC8EDB8E7C787C4521CB086FA64407F97894E5E6B2D79B04D1427E73CA4BAA240A34786859810C06"
        "B3C715A3A8CC3151F2BEE417996D19F3DDEA",
    ),
}


@pytest.mark.parametrize("group", [19, 20, 21])
def test_rfc5903_ecp_vectors(group: int) -> None:
    i, gi, r, gir = RFC5903[group]
    initiator = new_key_exchange(group, fixed_rng(bytes.fromhex(i)))
    responder = new_key_exchange(group, fixed_rng(bytes.fromhex(r)))
    if gi is not None:
        assert initiator.public_bytes() == bytes.fromhex(gi)
    assert len(initiator.public_bytes()) == public_value_bytes(group)
    assert initiator.shared_secret(responder.public_bytes()) == bytes.fromhex(gir)
    assert responder.shared_secret(initiator.public_bytes()) == bytes.fromhex(gir)


def test_rfc7748_x25519_scalar_multiplication_vector() -> None:
    # RFC 7748 §5.2, first vector: the library clamps the scalar as the RFC does.
    kex = new_key_exchange(
        31, fixed_rng(bytes.fromhex("a546e36bf0527c9d3b16154b82465edd62144c0ac1fc5a18506a2244ba449ac4"))
    )
    u = bytes.fromhex("e6db6867583030db3594c1a424b15f7c726624ec26b3353b10a903a6d0ab1c4c")
    expected = "c3da55379de9c6908e94ea4df28d084f32eccf03491c71f754b4075577a28552"
    assert kex.shared_secret(u).hex() == expected


def test_rfc7748_x25519_diffie_hellman_vector() -> None:
    # RFC 7748 §6.1
    alice = new_key_exchange(
        31, fixed_rng(bytes.fromhex("77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a"))
    )
    bob = new_key_exchange(
        31, fixed_rng(bytes.fromhex("5dab087e624a8a4b79e17f8b83800ee66f3bb1292618b6fd1c2f8b27ff88e0eb"))
    )
    assert alice.public_bytes().hex() == "8520f0098930a754748b7ddcb43ef75a0dbf3a0d26381af4eba4a98eaa9b4e6a"
    assert bob.public_bytes().hex() == "de9edb7d7b7dc1b4d35b61c2ece435373f8343c85b78674dadfc7e146f882b4f"
    shared = "4a5d9d5ba4ce2de1728e3bf480350f25e07e21c947d19e3376f09b3c1e161742"
    assert alice.shared_secret(bob.public_bytes()).hex() == shared
    assert bob.shared_secret(alice.public_bytes()).hex() == shared


# --- every group


@pytest.mark.parametrize("group", sorted(SUPPORTED_GROUPS))
def test_round_trip_and_lengths(group: int) -> None:
    a = new_key_exchange(group, counter_rng(b"a"))
    b = new_key_exchange(group, counter_rng(b"b"))
    assert a.group == group
    assert len(a.public_bytes()) == len(b.public_bytes()) == public_value_bytes(group)
    secret = a.shared_secret(b.public_bytes())
    assert secret == b.shared_secret(a.public_bytes())
    expected_secret_bytes = {19: 32, 20: 48, 21: 66, 31: 32}.get(group, public_value_bytes(group))
    assert len(secret) == expected_secret_bytes
    # Same rng, same key: the private value comes only from the injected bytes.
    assert new_key_exchange(group, counter_rng(b"a")).public_bytes() == a.public_bytes()


def test_supported_groups() -> None:
    assert {2, 5, 14, 15, 16, 19, 20, 21, 31} == SUPPORTED_GROUPS


def test_modp_public_and_secret_are_zero_padded_to_prime_length() -> None:
    # Exponent 2 (the smallest allowed): g^x = 4, and with peer value 2 the shared secret is 2^2 = 4.
    kex = new_key_exchange(2, fixed_rng((2).to_bytes(128, "big")))
    assert kex.public_bytes() == (4).to_bytes(128, "big")
    assert kex.shared_secret((2).to_bytes(128, "big")) == (4).to_bytes(128, "big")


def test_modp_does_not_leak_cryptography_deprecation_warnings() -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        a = new_key_exchange(14, counter_rng(b"w1"))
        b = new_key_exchange(14, counter_rng(b"w2"))
        assert a.shared_secret(b.public_bytes()) == b.shared_secret(a.public_bytes())


def test_out_of_range_private_values_are_redrawn() -> None:
    p = modp_prime(2)
    draws = iter([(p - 1).to_bytes(128, "big"), (0).to_bytes(128, "big"), (3).to_bytes(128, "big")])
    kex = new_key_exchange(2, lambda n: next(draws))
    assert kex.public_bytes() == (8).to_bytes(128, "big")
    # P-256: 0 and all-ones (above the group order) are out of range; 1 is the generator's scalar.
    draws = iter([bytes(32), b"\xff" * 32, (1).to_bytes(32, "big")])
    ecp = new_key_exchange(19, lambda n: next(draws))
    assert ecp.public_bytes()[:32].hex() == "6b17d1f2e12c4247f8bce6e563a440f277037d812deb33a0f4a13945d898c296"


@pytest.mark.parametrize("group", [2, 19, 21])
def test_an_rng_that_never_gives_a_usable_value_is_an_error(group: int) -> None:
    with pytest.raises(ValueError, match="draws"):
        new_key_exchange(group, lambda n: bytes(n))


def test_an_rng_returning_the_wrong_length_is_an_error() -> None:
    with pytest.raises(ValueError, match="rng returned"):
        new_key_exchange(31, lambda n: bytes(n - 1))


# --- peer values


def _bad_modp_values(group: int) -> list[bytes]:
    p = modp_prime(group)
    n = public_value_bytes(group)
    return [
        b"",
        (5).to_bytes(n - 1, "big"),  # one byte short
        (5).to_bytes(n + 1, "big"),  # one byte long
        (0).to_bytes(n, "big"),
        (1).to_bytes(n, "big"),
        (p - 1).to_bytes(n, "big"),
        p.to_bytes(n, "big"),
        b"\xff" * n,
    ]


@pytest.mark.parametrize("group", [2, 14])
def test_modp_rejects_bad_peer_values(group: int) -> None:
    kex = new_key_exchange(group, counter_rng(b"m"))
    for value in _bad_modp_values(group):
        with pytest.raises(InvalidKePayload) as info:
            kex.shared_secret(value)
        assert isinstance(info.value, MalformedMessage)


@pytest.mark.parametrize("group", [19, 20, 21])
def test_ecp_rejects_bad_peer_values(group: int) -> None:
    kex = new_key_exchange(group, counter_rng(b"e"))
    good = new_key_exchange(group, counter_rng(b"f")).public_bytes()
    off_curve = good[:-1] + bytes([good[-1] ^ 1])
    for value in (b"", good[:-1], good + b"\x00", b"\x04" + good[:-1], bytes(len(good)), off_curve):
        with pytest.raises(InvalidKePayload):
            kex.shared_secret(value)
    assert kex.shared_secret(good)  # still usable after refusals


def test_x25519_rejects_bad_peer_values() -> None:
    kex = new_key_exchange(31, counter_rng(b"x"))
    low_order = [bytes(32), (1).to_bytes(32, "little")]  # results in the all-zero secret (RFC 8031 §2.3)
    for value in (b"", bytes(31), bytes(33), *low_order):
        with pytest.raises(InvalidKePayload):
            kex.shared_secret(value)


def test_unsupported_groups() -> None:
    for group in (0, 1, 17, 22, 28, 32, 1000):
        with pytest.raises(UnsupportedGroup) as info:
            new_key_exchange(group, counter_rng(b"u"))
        assert isinstance(info.value, MalformedMessage)
        with pytest.raises(UnsupportedGroup):
            public_value_bytes(group)
    with pytest.raises(UnsupportedGroup):
        modp_prime(19)
