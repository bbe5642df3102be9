"""One direction of an ESP security association (RFC 4303), tunnel mode, as a pure object.

`OutboundSa.protect(inner, next_header)` returns the ESP packet (SPI, sequence number, IV, encrypted
payload with padding, pad length and next header, ICV); `InboundSa.unprotect(packet)` checks the SPI, the
anti-replay window (RFC 4303 §3.4.3: before the ICV, and the window moves only after the ICV verified), the
ICV, then the padding, and returns the next header and the inner packet. Two cipher families, both from
`cryptography`:

- AES-GCM with a 16-octet ICV (RFC 4106): the key is the KEYMAT's encryption key minus its last 4 octets,
  which are the salt; the nonce is salt | 8-octet IV; the AAD is SPI | sequence number. The IV is the
  sequence number: unique per key, as RFC 4106 §3.1 allows, and so no RNG is needed.
- AES-CBC (RFC 3602) with HMAC-SHA1-96 (RFC 2404) or HMAC-SHA2-256-128 (RFC 4868): a random 16-octet IV
  (the injected RNG) and an ICV over SPI | sequence number | IV | ciphertext.

No ESN (64-bit sequence numbers): the CHILD_SA proposals we send offer none. Keys never appear in a repr.
"""

from __future__ import annotations

import hmac
import struct
from collections.abc import Callable
from dataclasses import dataclass, field

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from vpndoctor.esp.errors import EspDecodeError, IntegrityFailure, Replayed, UnsupportedTransform
from vpndoctor.ike.constants import EncrId, IntegId, name_of

Rng = Callable[[int], bytes]

ESP_HEADER_BYTES = 8  # SPI, sequence number
REPLAY_WINDOW = 64  # RFC 4303 §3.4.3: at least 32; 64 is the recommended default
MAX_SEQ = 0xFFFFFFFF  # without ESN the sequence number must not cycle (RFC 4303 §3.3.3)

# IPsec next-header values for tunnel mode
NEXT_IPV4 = 4
NEXT_IPV6 = 41
NEXT_NONE = 59  # a dummy packet (RFC 4303 §2.6): dropped by the receiver

_INTEG: dict[int, tuple[str, int, int]] = {  # id -> (hashlib name, key bytes, ICV bytes)
    IntegId.HMAC_SHA1_96: ("sha1", 20, 12),
    IntegId.HMAC_SHA2_256_128: ("sha256", 32, 16),
    IntegId.HMAC_SHA2_384_192: ("sha384", 48, 24),
    IntegId.HMAC_SHA2_512_256: ("sha512", 64, 32),
}
_GCM_ICV_BYTES = 16
_GCM_SALT_BYTES = 4
_GCM_IV_BYTES = 8
_CBC_IV_BYTES = 16


@dataclass(frozen=True)
class EspTransform:
    """What the CHILD_SA negotiated: the cipher (AES-CBC or AES-GCM-16) with its key size and, for CBC, the
    integrity algorithm."""

    encr: int
    key_bits: int
    integ: int | None = None
    esn: bool = False

    def __post_init__(self) -> None:
        if self.esn:
            raise UnsupportedTransform("extended sequence numbers (ESN) are not supported")
        if self.key_bits not in (128, 192, 256):
            raise UnsupportedTransform(f"an AES key of {self.key_bits} bits")
        if self.encr == EncrId.AES_GCM_16:
            if self.integ not in (None, IntegId.NONE):
                raise UnsupportedTransform("AES-GCM with a separate integrity algorithm")
        elif self.encr == EncrId.AES_CBC:
            if self.integ not in _INTEG:
                found = "none" if self.integ is None else name_of(IntegId, self.integ)
                raise UnsupportedTransform(f"AES-CBC with integrity {found}")
        else:
            raise UnsupportedTransform(f"ESP cipher {name_of(EncrId, self.encr)}")

    @property
    def aead(self) -> bool:
        return self.encr == EncrId.AES_GCM_16

    @property
    def encr_key_bytes(self) -> int:
        """KEYMAT octets of the encryption key (with the 4-octet salt for GCM)."""
        return self.key_bits // 8 + (_GCM_SALT_BYTES if self.aead else 0)

    @property
    def integ_key_bytes(self) -> int:
        return 0 if self.aead or self.integ is None else _INTEG[self.integ][1]

    @property
    def iv_bytes(self) -> int:
        return _GCM_IV_BYTES if self.aead else _CBC_IV_BYTES

    @property
    def icv_bytes(self) -> int:
        return _GCM_ICV_BYTES if self.aead else _INTEG[self.integ or 0][2]

    @property
    def block_bytes(self) -> int:
        """What the payload, padding, pad length and next header must fill a multiple of."""
        return 4 if self.aead else 16

    def overhead_bytes(self, inner_bytes: int) -> int:
        """ESP bytes around an inner packet of `inner_bytes`: header, IV, padding, trailer, ICV."""
        padded = -(-(inner_bytes + 2) // self.block_bytes) * self.block_bytes
        return ESP_HEADER_BYTES + self.iv_bytes + padded - inner_bytes + self.icv_bytes


@dataclass(frozen=True)
class EspKeys:
    """One direction's keys, cut from the CHILD_SA KEYMAT (RFC 7296 §2.17, `ike.keys.derive_child_keys`)."""

    encr: bytes
    integ: bytes = b""

    def __repr__(self) -> str:
        return "EspKeys(<secret>)"


def _check_keys(transform: EspTransform, keys: EspKeys) -> None:
    if len(keys.encr) != transform.encr_key_bytes or len(keys.integ) != transform.integ_key_bytes:
        raise UnsupportedTransform(
            f"keys of {len(keys.encr)}+{len(keys.integ)} octets for a transform that needs "
            f"{transform.encr_key_bytes}+{transform.integ_key_bytes}"
        )


def _icv(transform: EspTransform, key: bytes, data: bytes) -> bytes:
    algorithm, _, size = _INTEG[transform.integ or 0]
    return hmac.new(key, data, algorithm).digest()[:size]


@dataclass
class OutboundSa:
    spi: bytes  # the peer's inbound SPI (4 octets), as it chose it
    transform: EspTransform
    keys: EspKeys
    rng: Rng
    seq: int = 0  # the last sequence number sent; the first packet carries 1
    _gcm: AESGCM | None = field(default=None, init=False, repr=False)

    def __post_init__(self) -> None:
        if len(self.spi) != 4 or self.spi == b"\x00" * 4:
            raise UnsupportedTransform("an ESP SPI is 4 octets and not zero")
        _check_keys(self.transform, self.keys)
        if self.transform.aead:
            self._gcm = AESGCM(self.keys.encr[:-_GCM_SALT_BYTES])

    def protect(self, inner: bytes, next_header: int = NEXT_IPV4) -> bytes:
        """The ESP packet (without UDP encapsulation) carrying `inner`."""
        if self.seq >= MAX_SEQ:
            raise UnsupportedTransform("sequence number space exhausted: the SA must be rekeyed")
        self.seq += 1
        t = self.transform
        pad_len = (-(len(inner) + 2)) % t.block_bytes
        padding = bytes(range(1, pad_len + 1))  # RFC 4303 §2.4: 1, 2, 3, ...
        plain = inner + padding + bytes((pad_len, next_header))
        header = self.spi + struct.pack("!I", self.seq)
        if self._gcm is not None:
            iv = struct.pack("!Q", self.seq)
            sealed = self._gcm.encrypt(self.keys.encr[-_GCM_SALT_BYTES:] + iv, plain, header)
            return header + iv + sealed
        iv = self.rng(_CBC_IV_BYTES)
        enc = Cipher(algorithms.AES(self.keys.encr), modes.CBC(iv)).encryptor()
        body = header + iv + enc.update(plain) + enc.finalize()
        return body + _icv(t, self.keys.integ, body)


@dataclass
class ReplayWindow:
    """RFC 4303 §3.4.3 and its Appendix A: the highest sequence number seen and a bitmap of the
    `size` numbers up to it. `check` before the ICV, `update` only after it verified."""

    size: int = REPLAY_WINDOW
    top: int = 0
    bitmap: int = 0

    def check(self, seq: int) -> str | None:
        """None when `seq` may be accepted, else why not."""
        if seq == 0:
            return "sequence number 0 (the first packet carries 1)"
        if seq > self.top:
            return None
        behind = self.top - seq
        if behind >= self.size:
            return f"sequence number {seq} is older than the window ({self.top - self.size + 1}-{self.top})"
        if self.bitmap >> behind & 1:
            return f"sequence number {seq} was already received"
        return None

    def update(self, seq: int) -> None:
        if seq > self.top:
            shift = seq - self.top
            self.bitmap = ((self.bitmap << shift) | 1) & ((1 << self.size) - 1) if shift < self.size else 1
            self.top = seq
        else:
            self.bitmap |= 1 << (self.top - seq)


@dataclass(frozen=True)
class Unprotected:
    seq: int
    next_header: int
    payload: bytes  # the inner packet (tunnel mode), padding and trailer removed
    pad_bytes: int


@dataclass
class InboundSa:
    spi: bytes  # our inbound SPI (the one we sent in the CHILD_SA proposal)
    transform: EspTransform
    keys: EspKeys
    window: ReplayWindow = field(default_factory=ReplayWindow)
    _gcm: AESGCM | None = field(default=None, init=False, repr=False)

    def __post_init__(self) -> None:
        _check_keys(self.transform, self.keys)
        if self.transform.aead:
            self._gcm = AESGCM(self.keys.encr[:-_GCM_SALT_BYTES])

    def unprotect(self, packet: bytes) -> Unprotected:
        """Verify and decrypt one ESP packet. Raises EspDecodeError (IntegrityFailure, Replayed)."""
        t = self.transform
        minimum = ESP_HEADER_BYTES + t.iv_bytes + t.block_bytes + t.icv_bytes
        if len(packet) < minimum:
            raise EspDecodeError(0, f"an ESP packet of at least {minimum} octets", f"{len(packet)} octets")
        if packet[:4] != self.spi:
            raise EspDecodeError(0, f"SPI {self.spi.hex()}", f"found {packet[:4].hex()}")
        seq = struct.unpack("!I", packet[4:8])[0]
        refusal = self.window.check(seq)
        if refusal is not None:
            raise Replayed(4, "a sequence number inside the anti-replay window", refusal)
        iv = packet[8 : 8 + t.iv_bytes]
        body_at = 8 + t.iv_bytes
        if self._gcm is not None:
            sealed = packet[body_at:]
            if (len(sealed) - t.icv_bytes) % t.block_bytes:
                raise EspDecodeError(body_at, "a payload of a multiple of 4 octets", f"{len(sealed)} octets")
            try:
                plain = self._gcm.decrypt(self.keys.encr[-_GCM_SALT_BYTES:] + iv, sealed, packet[:8])
            except InvalidTag:
                raise IntegrityFailure(
                    len(packet) - t.icv_bytes, "an AES-GCM tag that verifies", "it does not"
                ) from None
        else:
            icv_at = len(packet) - t.icv_bytes
            expected = _icv(t, self.keys.integ, packet[:icv_at])
            if not hmac.compare_digest(expected, packet[icv_at:]):
                raise IntegrityFailure(icv_at, "an ICV that verifies", "it does not")
            cipher = packet[body_at:icv_at]
            if len(cipher) % t.block_bytes:
                raise EspDecodeError(body_at, "a ciphertext of whole AES blocks", f"{len(cipher)} octets")
            dec = Cipher(algorithms.AES(self.keys.encr), modes.CBC(iv)).decryptor()
            plain = dec.update(cipher) + dec.finalize()
        # Authenticated from here on: the window moves even when the trailer turns out to be bad.
        self.window.update(seq)
        pad_len, next_header = plain[-2], plain[-1]
        if pad_len > len(plain) - 2:
            raise EspDecodeError(
                body_at + len(plain) - 2, "a pad length within the payload", f"found {pad_len}"
            )
        end = len(plain) - 2 - pad_len
        if plain[end : end + pad_len] != bytes(range(1, pad_len + 1)):
            # RFC 4303 §2.4: a receiver "SHOULD" check the default padding; every implementation we know
            # sends it, so anything else is a corrupted packet or another keying.
            raise EspDecodeError(body_at + end, "padding 1, 2, 3, ... (RFC 4303 §2.4)", "other octets")
        return Unprotected(seq=seq, next_header=next_header, payload=plain[:end], pad_bytes=pad_len)
