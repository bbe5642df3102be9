"""Diffie-Hellman for the KE payload: MODP groups 2/5/14/15/16 (RFC 2409, RFC 3526), ECP groups 19/20/21
(RFC 5903, x || y) and Curve25519 (RFC 8031). The private value comes from an injected rng and peer values
are validated before use. Only `cryptography` primitives are used.
"""

from __future__ import annotations

import os
import warnings
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager

from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import constant_time, serialization
from cryptography.hazmat.primitives.asymmetric import dh, ec, x25519
from cryptography.utils import CryptographyDeprecationWarning

from vpndoctor.ike.constants import DhGroup, name_of
from vpndoctor.ike.errors import MalformedMessage

Rng = Callable[[int], bytes]

__all__ = [
    "SUPPORTED_GROUPS",
    "InvalidKePayload",
    "KeyExchange",
    "Rng",
    "UnsupportedGroup",
    "modp_prime",
    "new_key_exchange",
    "public_value_bytes",
]


class InvalidKePayload(MalformedMessage):
    """The peer's KE public value is unusable: wrong length, out of range, off the curve, or low order."""


class UnsupportedGroup(MalformedMessage):
    """A Diffie-Hellman group we do not implement."""


# The primes are written out in hex; tests recompute them from their defining formula (pi-based).
_MODP_PRIMES_HEX: dict[int, str] = {
    # RFC 2409 §6.2, 1024-bit MODP group 2
    2: (
        "FFFFFFFFFFFFFFFFC90FDAA22168C234C4C6628B80DC1CD129024E088A67CC74020BBEA63B139B22514A08798E3404DD"
        "EF9519B3CD3A431B302B0A6DF25F14374FE1356D6D51C245E485B576625E7EC6F44C42E9A637ED6B0BFF5CB6F406B7ED"
        "EE386BFB5A899FA5AE9F24117C4B1FE649286651ECE65381FFFFFFFFFFFFFFFF"
    ),
    # RFC 3526 §2, 1536-bit MODP group 5
    5: (
        "FFFFFFFFFFFFFFFFC90FDAA22168C234C4C6628B80DC1CD129024E088A67CC74020BBEA63B139B22514A08798E3404DD"
        "EF9519B3CD3A431B302B0A6DF25F14374FE1356D6D51C245E485B576625E7EC6F44C42E9A637ED6B0BFF5CB6F406B7ED"
        "EE386BFB5A899FA5AE9F24117C4B1FE649286651ECE45B3DC2007CB8A163BF0598DA48361C55D39A69163FA8FD24CF5F"
        "83655D23DCA3AD961C62F356208552BB9ED529077096966D670C354E4ABC9804F1746C08CA237327FFFFFFFFFFFFFFFF"
    ),
    # RFC 3526 §3, 2048-bit MODP group 14
    14: (
        "FFFFFFFFFFFFFFFFC90FDAA22168C234C4C6628B80DC1CD129024E088A67CC74020BBEA63B139B22514A08798E3404DD"
        "EF9519B3CD3A431B302B0A6DF25F14374FE1356D6D51C245E485B576625E7EC6F44C42E9A637ED6B0BFF5CB6F406B7ED"
        "EE386BFB5A899FA5AE9F24117C4B1FE649286651ECE45B3DC2007CB8A163BF0598DA48361C55D39A69163FA8FD24CF5F"
        "83655D23DCA3AD961C62F356208552BB9ED529077096966D670C354E4ABC9804F1746C08CA18217C32905E462E36CE3B"
        "E39E772C180E86039B2783A2EC07A28FB5C55DF06F4C52C9DE2BCBF6955817183995497CEA956AE515D2261898FA0510"
        "15728E5A8AACAA68FFFFFFFFFFFFFFFF"
    ),
    # RFC 3526 §4, 3072-bit MODP group 15
    15: (
        "FFFFFFFFFFFFFFFFC90FDAA22168C234C4C6628B80DC1CD129024E088A67CC74020BBEA63B139B22514A08798E3404DD"
        "EF9519B3CD3A431B302B0A6DF25F14374FE1356D6D51C245E485B576625E7EC6F44C42E9A637ED6B0BFF5CB6F406B7ED"
        "EE386BFB5A899FA5AE9F24117C4B1FE649286651ECE45B3DC2007CB8A163BF0598DA48361C55D39A69163FA8FD24CF5F"
        "83655D23DCA3AD961C62F356208552BB9ED529077096966D670C354E4ABC9804F1746C08CA18217C32905E462E36CE3B"
        "E39E772C180E86039B2783A2EC07A28FB5C55DF06F4C52C9DE2BCBF6955817183995497CEA956AE515D2261898FA0510"
        "15728E5A8AAAC42DAD33170D04507A33A85521ABDF1CBA64ECFB850458DBEF0A8AEA71575D060C7DB3970F85A6E1E4C7"
        "ABF5AE8CDB0933D71E8C94E04A25619DCEE3D2261AD2EE6BF12FFA06D98A0864D87602733EC86A64521F2B18177B200C"
        "BBE117577A615D6C770988C0BAD946E208E24FA074E5AB3143DB5BFCE0FD108E4B82D120A93AD2CAFFFFFFFFFFFFFFFF"
    ),
    # RFC 3526 §5, 4096-bit MODP group 16
    16: (
        "FFFFFFFFFFFFFFFFC90FDAA22168C234C4C6628B80DC1CD129024E088A67CC74020BBEA63B139B22514A08798E3404DD"
        "EF9519B3CD3A431B302B0A6DF25F14374FE1356D6D51C245E485B576625E7EC6F44C42E9A637ED6B0BFF5CB6F406B7ED"
        "EE386BFB5A899FA5AE9F24117C4B1FE649286651ECE45B3DC2007CB8A163BF0598DA48361C55D39A69163FA8FD24CF5F"
        "83655D23DCA3AD961C62F356208552BB9ED529077096966D670C354E4ABC9804F1746C08CA18217C32905E462E36CE3B"
        "E39E772C180E86039B2783A2EC07A28FB5C55DF06F4C52C9DE2BCBF6955817183995497CEA956AE515D2261898FA0510"
        "15728E5A8AAAC42DAD33170D04507A33A85521ABDF1CBA64ECFB850458DBEF0A8AEA71575D060C7DB3970F85A6E1E4C7"
        "ABF5AE8CDB0933D71E8C94E04A25619DCEE3D2261AD2EE6BF12FFA06D98A0864D87602733EC86A64521F2B18177B200C"
        "BBE117577A615D6C770988C0BAD946E208E24FA074E5AB3143DB5BFCE0FD108E4B82D120A92108011A723C12A787E6D7"
        "88719A10BDBA5B2699C327186AF4E23C1A946834B6150BDA2583E9CA2AD44CE8DBBBC2DB04DE8EF92E8EFC141FBECAA6"
        "287C59474E6BC05D99B2964FA090C3A2233BA186515BE7ED1F612970CEE2D7AFB81BDD762170481CD0069127D5B05AA9"
        "93B4EA988D8FDDC186FFB7DC90A6C08F4DF435C934063199FFFFFFFFFFFFFFFF"
    ),
}

_MODP_GENERATOR = 2
_ECP_CURVES: dict[int, ec.EllipticCurve] = {19: ec.SECP256R1(), 20: ec.SECP384R1(), 21: ec.SECP521R1()}
_CURVE25519 = 31
# A private value is drawn from rng bytes and redrawn when out of range; for our groups a redraw is rare
# (at most about 2^-32, for P-256), so running out of draws means the rng is broken, not unlucky.
_MAX_DRAWS = 64

SUPPORTED_GROUPS: frozenset[int] = frozenset({*_MODP_PRIMES_HEX, *_ECP_CURVES, _CURVE25519})


def modp_prime(group: int) -> int:
    """The prime of a MODP group (generator 2)."""
    try:
        return int(_MODP_PRIMES_HEX[group], 16)
    except KeyError:
        raise UnsupportedGroup(
            offset=0,
            expected=f"a MODP group ({_group_names(_MODP_PRIMES_HEX)})",
            found=f"found {name_of(DhGroup, group)}",
        ) from None


def public_value_bytes(group: int) -> int:
    """Length of the KE payload's key exchange data for `group` (RFC 7296 §3.4, RFC 5903 §7, RFC 8031 §2)."""
    if group in _MODP_PRIMES_HEX:
        return (modp_prime(group).bit_length() + 7) // 8
    if group in _ECP_CURVES:
        return 2 * _coordinate_bytes(_ECP_CURVES[group])
    if group == _CURVE25519:
        return 32
    raise _unsupported(group)


class KeyExchange(ABC):
    """One side of one Diffie-Hellman exchange: our public value, and the shared secret with a peer's."""

    group: int

    @abstractmethod
    def public_bytes(self) -> bytes:
        """Our public value exactly as it goes into the KE payload."""

    @abstractmethod
    def shared_secret(self, peer_public: bytes) -> bytes:
        """g^ir from the peer's KE payload data; raises InvalidKePayload if that value is unusable."""


def new_key_exchange(group: int, rng: Rng | None = None) -> KeyExchange:
    """A key exchange for `group` whose private value is derived from `rng(n)` bytes (default os.urandom)."""
    draw: Rng = os.urandom if rng is None else rng
    if group in _MODP_PRIMES_HEX:
        return _ModpKeyExchange(group, draw)
    if group in _ECP_CURVES:
        return _EcpKeyExchange(group, draw)
    if group == _CURVE25519:
        return _X25519KeyExchange(draw)
    raise _unsupported(group)


def _unsupported(group: int) -> UnsupportedGroup:
    return UnsupportedGroup(
        offset=0,
        expected=f"a supported DH group ({_group_names(SUPPORTED_GROUPS)})",
        found=f"found {name_of(DhGroup, group)}",
    )


def _invalid(group: int, why: str, expected: str) -> InvalidKePayload:
    # offset 0: the KE data is judged on its own, its place in the message is the caller's to report
    return InvalidKePayload(
        offset=0,
        expected=f"{name_of(DhGroup, group)} key exchange data: {expected}",
        found=f"the peer's value {why}",
    )


def _group_names(groups: Iterable[int]) -> str:
    return ", ".join(name_of(DhGroup, g) for g in sorted(groups))


def _random_bytes(rng: Rng, n: int) -> bytes:
    raw = rng(n)
    if len(raw) != n:
        raise ValueError(f"rng returned {len(raw)} bytes, asked for {n}")
    return raw


def _coordinate_bytes(curve: ec.EllipticCurve) -> int:
    return (curve.key_size + 7) // 8


# MODP groups whose primes OpenSSL does not recognise as named groups (measured: loading a 1024-bit key takes
# ~50 ms, while the RFC 3526 groups 5 and 14-16 load in well under 1 ms).
_NOT_NAMED_IN_OPENSSL = frozenset({2})


class _ModpKeyExchange(KeyExchange):
    def __init__(self, group: int, rng: Rng) -> None:
        self.group = group
        self._p = modp_prime(group)
        self._length = (self._p.bit_length() + 7) // 8
        # cryptography cannot derive y from x, and Python's pow() is not constant-time in the exponent:
        # load x with the generator as a placeholder public value and let OpenSSL compute y = g^x mod p.
        x = self._draw_exponent(rng)
        self._x: int | None = None
        with _ffdh_quietly():
            self._params = dh.DHParameterNumbers(self._p, _MODP_GENERATOR)
        if group in _NOT_NAMED_IN_OPENSSL:
            # OpenSSL runs its full safe-prime check on every load of a key of a prime it does not know by
            # name (~50 ms each, 4 loads an exchange, holding the GIL): MODP-1024 made `diagnose` of a
            # Windows-default server overrun its deadline. These are throwaway probe keys of a group that is
            # weak anyway, so plain pow() (about 1 ms) is the better trade.
            self._x = x
            y = pow(_MODP_GENERATOR, x, self._p)
        else:
            with _ffdh_quietly():
                placeholder = dh.DHPrivateNumbers(x, dh.DHPublicNumbers(_MODP_GENERATOR, self._params))
                g_public = self._public_key(_MODP_GENERATOR)
                y = int.from_bytes(placeholder.private_key().exchange(g_public), "big")
                self._private = dh.DHPrivateNumbers(x, dh.DHPublicNumbers(y, self._params)).private_key()
        self._public = y.to_bytes(self._length, "big")

    def _draw_exponent(self, rng: Rng) -> int:
        bits = self._p.bit_length()
        for _ in range(_MAX_DRAWS):
            x = int.from_bytes(_random_bytes(rng, self._length), "big") & ((1 << bits) - 1)
            if 2 <= x <= self._p - 2:
                return x
        raise ValueError(f"rng gave no usable MODP exponent in {_MAX_DRAWS} draws")

    def _public_key(self, y: int) -> dh.DHPublicKey:
        with _ffdh_quietly():
            return dh.DHPublicNumbers(y, self._params).public_key()

    def public_bytes(self) -> bytes:
        return self._public

    def shared_secret(self, peer_public: bytes) -> bytes:
        if len(peer_public) != self._length:
            raise _invalid(self.group, f"is {len(peer_public)} bytes", f"{self._length} bytes (prime length)")
        y = int.from_bytes(peer_public, "big")
        if not 1 < y < self._p - 1:
            raise _invalid(self.group, "is out of range", "1 < y < p-1 (NIST SP 800-56A §5.6.2.3)")
        if self._x is not None:
            # RFC 7296 §2.14: g^ir mod p, as many octets as the prime, leading zeros kept.
            return pow(y, self._x, self._p).to_bytes(self._length, "big")
        try:
            with _ffdh_quietly():
                secret = self._private.exchange(self._public_key(y))
        except ValueError as exc:
            raise _invalid(self.group, f"was refused by the DH computation ({exc})", "a valid y") from None
        return secret.rjust(self._length, b"\x00")


class _EcpKeyExchange(KeyExchange):
    def __init__(self, group: int, rng: Rng) -> None:
        self.group = group
        self._curve = _ECP_CURVES[group]
        self._coord = _coordinate_bytes(self._curve)
        self._private = self._draw_key(rng)
        point = self._private.public_key().public_bytes(
            serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
        )
        self._public = point[1:]  # RFC 5903 §7: x || y without the SEC1 0x04 prefix

    def _draw_key(self, rng: Rng) -> ec.EllipticCurvePrivateKey:
        bits = self._curve.key_size
        for _ in range(_MAX_DRAWS):
            d = int.from_bytes(_random_bytes(rng, self._coord), "big") & ((1 << bits) - 1)
            try:
                return ec.derive_private_key(d, self._curve)
            except ValueError:  # 0 or >= the group order: draw again
                continue
        raise ValueError(f"rng gave no usable {self._curve.name} scalar in {_MAX_DRAWS} draws")

    def public_bytes(self) -> bytes:
        return self._public

    def shared_secret(self, peer_public: bytes) -> bytes:
        if len(peer_public) != 2 * self._coord:
            raise _invalid(self.group, f"is {len(peer_public)} bytes", f"{2 * self._coord} bytes (x || y)")
        try:
            peer = ec.EllipticCurvePublicKey.from_encoded_point(self._curve, b"\x04" + peer_public)
        except (ValueError, UnsupportedAlgorithm):
            raise _invalid(
                self.group, f"is not a point on {self._curve.name}", "a point on the curve"
            ) from None
        try:
            secret = self._private.exchange(ec.ECDH(), peer)
        except ValueError as exc:
            raise _invalid(self.group, f"was refused by ECDH ({exc})", "a valid point") from None
        return secret.rjust(self._coord, b"\x00")  # RFC 5903 §7: the x coordinate, fixed length


class _X25519KeyExchange(KeyExchange):
    def __init__(self, rng: Rng) -> None:
        self.group = _CURVE25519
        # RFC 7748 §5: the library clamps the 32 random bytes itself.
        self._private = x25519.X25519PrivateKey.from_private_bytes(_random_bytes(rng, 32))
        self._public = self._private.public_key().public_bytes(
            serialization.Encoding.Raw, serialization.PublicFormat.Raw
        )

    def public_bytes(self) -> bytes:
        return self._public

    def shared_secret(self, peer_public: bytes) -> bytes:
        if len(peer_public) != 32:
            raise _invalid(self.group, f"is {len(peer_public)} bytes", "32 bytes (RFC 8031 §2)")
        try:
            secret = self._private.exchange(x25519.X25519PublicKey.from_public_bytes(peer_public))
        except ValueError:  # OpenSSL refuses a low-order point (all-zero result)
            secret = bytes(32)
        if constant_time.bytes_eq(secret, bytes(32)):
            raise _invalid(
                self.group,
                "is a low-order point (all-zero shared secret)",
                "a non-zero shared secret (RFC 8031 §2.3)",
            )
        return secret


@contextmanager
def _ffdh_quietly() -> Iterator[None]:
    # Recent cryptography releases deprecate finite-field DH (even a name lookup in the module warns), but
    # IKEv2 peers, Windows included, still negotiate MODP groups.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", CryptographyDeprecationWarning)
        yield
