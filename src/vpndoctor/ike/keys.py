"""IKE SA key material: the negotiated `CipherSuite` and its sizes, the PRF and prf+ (RFC 7296 §2.13), the
SKEYSEED and SK_* derivation (§2.14), and the tcpdump `ikev2` key-log format used to decrypt captures.
Only `cryptography` primitives (HMAC) are used.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from enum import IntEnum

from cryptography.hazmat.primitives import hashes, hmac

from vpndoctor.ike.constants import DhGroup, EncrId, IntegId, PrfId, name_of
from vpndoctor.ike.dh import SUPPORTED_GROUPS
from vpndoctor.ike.errors import MalformedMessage

__all__ = [
    "ChildKeys",
    "CipherSuite",
    "DirectionKeys",
    "IkeKeys",
    "SecretLine",
    "SecretsFileError",
    "UnsupportedSuite",
    "derive_child_keys",
    "derive_ike_keys",
    "esp_key_bytes",
    "parse_tcpdump_secrets",
    "prf",
    "prf_output_bytes",
    "prf_plus",
    "wireshark_key_line",
]


class UnsupportedSuite(MalformedMessage):
    """A transform (or transform attribute) we do not implement, e.g. AES-CTR or a PRF based on AES-XCBC."""


class SecretsFileError(MalformedMessage):
    """A line of a tcpdump IKEv2 secrets file that does not parse; `offset` is the line's character offset."""


# --- PRF and prf+ ---

_PRF_HASHES: dict[int, type[hashes.HashAlgorithm]] = {
    PrfId.HMAC_MD5: hashes.MD5,  # only to read old captures
    PrfId.HMAC_SHA1: hashes.SHA1,
    PrfId.HMAC_SHA2_256: hashes.SHA256,
    PrfId.HMAC_SHA2_384: hashes.SHA384,
    PrfId.HMAC_SHA2_512: hashes.SHA512,
}
_PRF_PLUS_MAX_ROUNDS = 255  # the counter is one octet (RFC 7296 §2.13)


def _prf_hash(prf_id: int) -> hashes.HashAlgorithm:
    try:
        return _PRF_HASHES[prf_id]()
    except KeyError:
        raise _unsupported(
            f"a supported PRF ({_names(PrfId, _PRF_HASHES)})", f"found {name_of(PrfId, prf_id)}"
        ) from None


def prf_output_bytes(prf_id: int) -> int:
    """Output size of the PRF, which is also its preferred key size (RFC 7296 §2.13)."""
    return _prf_hash(prf_id).digest_size


def prf(prf_id: int, key: bytes, data: bytes) -> bytes:
    """prf(K, S) for an HMAC-based PRF: HMAC takes keys of any length, so no AES-XCBC key rules apply."""
    mac = hmac.HMAC(key, _prf_hash(prf_id))
    mac.update(data)
    return mac.finalize()


def prf_plus(prf_id: int, key: bytes, seed: bytes, length: int) -> bytes:
    """prf+(K, S) = T1 | T2 | ... truncated to `length` bytes, Tn = prf(K, Tn-1 | S | n) (RFC 7296 §2.13)."""
    out_bytes = prf_output_bytes(prf_id)
    if length < 0 or length > _PRF_PLUS_MAX_ROUNDS * out_bytes:
        raise ValueError(f"prf+ can produce 0..{_PRF_PLUS_MAX_ROUNDS * out_bytes} bytes, asked for {length}")
    stream = bytearray()
    block = b""
    counter = 1
    while len(stream) < length:
        block = prf(prf_id, key, block + seed + bytes([counter]))
        stream += block
        counter += 1
    return bytes(stream[:length])


# --- the suite ---


@dataclass(frozen=True)
class _Cipher:
    key_bits: tuple[int, ...]  # allowed values of the Key Length attribute
    default_key_bits: int | None  # used when the transform carries no Key Length attribute
    block_bytes: int  # padding granularity inside the SK payload
    iv_bytes: int
    salt_bytes: int  # AEAD only: the part of SK_e that is the nonce salt (RFC 5282 §7.1)
    icv_bytes: int  # AEAD only: the tag


_CIPHERS: dict[int, _Cipher] = {
    EncrId.DES3: _Cipher(
        key_bits=(192,), default_key_bits=192, block_bytes=8, iv_bytes=8, salt_bytes=0, icv_bytes=0
    ),
    EncrId.AES_CBC: _Cipher(
        key_bits=(128, 192, 256),
        default_key_bits=None,
        block_bytes=16,
        iv_bytes=16,
        salt_bytes=0,
        icv_bytes=0,
    ),
    # RFC 5282: 8-octet explicit IV, 4-octet salt, 16-octet ICV; no block alignment is needed.
    EncrId.AES_GCM_16: _Cipher(
        key_bits=(128, 192, 256), default_key_bits=None, block_bytes=1, iv_bytes=8, salt_bytes=4, icv_bytes=16
    ),
}
_AEAD = frozenset({EncrId.AES_GCM_16})

_INTEGS: dict[int, tuple[type[hashes.HashAlgorithm], int, int]] = {  # id -> (hash, key bytes, ICV bytes)
    IntegId.HMAC_MD5_96: (hashes.MD5, 16, 12),  # only to read old captures
    IntegId.HMAC_SHA1_96: (hashes.SHA1, 20, 12),
    IntegId.HMAC_SHA2_256_128: (hashes.SHA256, 32, 16),
    IntegId.HMAC_SHA2_384_192: (hashes.SHA384, 48, 24),
    IntegId.HMAC_SHA2_512_256: (hashes.SHA512, 64, 32),
}


@dataclass(frozen=True)
class CipherSuite:
    """The IKE SA transforms a responder chose. `integ` is None (or 0, NONE) for AES-GCM; `dh` may be 0 (NONE)
    when the keys come from elsewhere, e.g. a key log. Construction raises UnsupportedSuite for anything we
    do not implement, so a suite that exists can always be used."""

    encr: int
    encr_key_bits: int | None
    prf: int
    integ: int | None
    dh: int

    def __post_init__(self) -> None:
        cipher = _CIPHERS.get(self.encr)
        if cipher is None:
            raise _unsupported(
                f"a supported encryption algorithm ({_names(EncrId, _CIPHERS)})",
                f"found {name_of(EncrId, self.encr)}",
            )
        bits = self.encr_key_bits if self.encr_key_bits is not None else cipher.default_key_bits
        if bits is None or bits not in cipher.key_bits:
            allowed = " or ".join(map(str, cipher.key_bits))
            raise _unsupported(
                f"{name_of(EncrId, self.encr)} with a key length of {allowed} bits",
                f"found key length {self.encr_key_bits}",
            )
        _prf_hash(self.prf)
        if self.integ == IntegId.NONE:
            object.__setattr__(self, "integ", None)
        if self.encr in _AEAD:
            if self.integ is not None:
                raise _unsupported(
                    f"no integrity transform with {name_of(EncrId, self.encr)} (RFC 5282 §8)",
                    f"found {name_of(IntegId, self.integ)}",
                )
        elif self.integ not in _INTEGS:
            found = "none" if self.integ is None else name_of(IntegId, self.integ)
            raise _unsupported(
                f"a supported integrity algorithm ({_names(IntegId, _INTEGS)})", f"found {found}"
            )
        if self.dh != DhGroup.NONE and self.dh not in SUPPORTED_GROUPS:
            raise _unsupported(
                f"a supported DH group ({_names(DhGroup, SUPPORTED_GROUPS)})",
                f"found {name_of(DhGroup, self.dh)}",
            )

    @property
    def _cipher(self) -> _Cipher:
        return _CIPHERS[self.encr]

    @property
    def aead(self) -> bool:
        return self.encr in _AEAD

    @property
    def cipher_key_bytes(self) -> int:
        """The block cipher's key, without the AEAD salt."""
        bits = self.encr_key_bits if self.encr_key_bits is not None else self._cipher.default_key_bits
        assert bits is not None  # checked in __post_init__
        return bits // 8

    @property
    def salt_bytes(self) -> int:
        return self._cipher.salt_bytes

    @property
    def encr_key_bytes(self) -> int:
        """Length of SK_ei / SK_er: the cipher key plus, for AES-GCM, the 4-byte salt (RFC 5282 §7.1)."""
        return self.cipher_key_bytes + self.salt_bytes

    @property
    def integ_key_bytes(self) -> int:
        """Length of SK_ai / SK_ar (0 for AEAD)."""
        return 0 if self.integ is None else _INTEGS[self.integ][1]

    @property
    def prf_key_bytes(self) -> int:
        """Length of SK_d, SK_pi and SK_pr: the PRF's preferred key size (RFC 7296 §2.14)."""
        return prf_output_bytes(self.prf)

    @property
    def block_bytes(self) -> int:
        """The SK payload's plaintext is padded to a multiple of this (1 for AES-GCM)."""
        return self._cipher.block_bytes

    @property
    def iv_bytes(self) -> int:
        return self._cipher.iv_bytes

    @property
    def icv_bytes(self) -> int:
        """The truncated HMAC (e.g. 12 for HMAC-SHA1-96) or the AEAD tag (16)."""
        return self._cipher.icv_bytes if self.integ is None else _INTEGS[self.integ][2]

    def integ_hash(self) -> hashes.HashAlgorithm:
        if self.integ is None:
            raise ValueError(f"{name_of(EncrId, self.encr)} has no separate integrity algorithm")
        return _INTEGS[self.integ][0]()


# --- key derivation ---


@dataclass(frozen=True)
class DirectionKeys:
    """The keys protecting messages sent in one direction: SK_e and SK_a of the sender."""

    encr: bytes
    integ: bytes | None

    def __repr__(self) -> str:  # keys stay out of logs and test failure output
        return f"DirectionKeys(encr=<{len(self.encr)} bytes>, integ=<{len(self.integ or b'')} bytes>)"


@dataclass(frozen=True)
class IkeKeys:
    """SK_d, SK_ai, SK_ar, SK_ei, SK_er, SK_pi, SK_pr in the order RFC 7296 §2.14 derives them."""

    sk_d: bytes
    sk_ai: bytes
    sk_ar: bytes
    sk_ei: bytes
    sk_er: bytes
    sk_pi: bytes
    sk_pr: bytes

    def initiator(self) -> DirectionKeys:
        """Keys for messages the initiator sends (and the responder receives)."""
        return DirectionKeys(encr=self.sk_ei, integ=self.sk_ai or None)

    def responder(self) -> DirectionKeys:
        """Keys for messages the responder sends (and the initiator receives)."""
        return DirectionKeys(encr=self.sk_er, integ=self.sk_ar or None)

    def __repr__(self) -> str:
        return "IkeKeys(<secret>)"


def derive_ike_keys(
    suite: CipherSuite, shared_secret: bytes, nonce_i: bytes, nonce_r: bytes, spi_i: bytes, spi_r: bytes
) -> IkeKeys:
    """SKEYSEED = prf(Ni | Nr, g^ir); {SK_d | SK_ai | SK_ar | SK_ei | SK_er | SK_pi | SK_pr}
    = prf+(SKEYSEED, Ni | Nr | SPIi | SPIr) (RFC 7296 §2.14). HMAC PRFs take the full Ni | Nr as key."""
    skeyseed = prf(suite.prf, nonce_i + nonce_r, shared_secret)
    return split_skeyseed(suite, skeyseed, nonce_i, nonce_r, spi_i, spi_r)


def split_skeyseed(
    suite: CipherSuite, skeyseed: bytes, nonce_i: bytes, nonce_r: bytes, spi_i: bytes, spi_r: bytes
) -> IkeKeys:
    """{SK_d | SK_ai | SK_ar | SK_ei | SK_er | SK_pi | SK_pr} = prf+(SKEYSEED, Ni | Nr | SPIi | SPIr): the
    split shared by a new IKE SA (§2.14) and a rekeyed one (§2.18)."""
    if len(spi_i) != 8 or len(spi_r) != 8:
        raise ValueError(f"IKE SPIs are 8 bytes, got {len(spi_i)} and {len(spi_r)}")
    sizes = (
        suite.prf_key_bytes,
        suite.integ_key_bytes,
        suite.integ_key_bytes,
        suite.encr_key_bytes,
        suite.encr_key_bytes,
        suite.prf_key_bytes,
        suite.prf_key_bytes,
    )
    stream = prf_plus(suite.prf, skeyseed, nonce_i + nonce_r + spi_i + spi_r, sum(sizes))
    parts: list[bytes] = []
    offset = 0
    for size in sizes:
        parts.append(stream[offset : offset + size])
        offset += size
    return IkeKeys(*parts)


# --- CHILD_SA keys (RFC 7296 §2.17) ---

# ESP key sizes (bytes) by transform: AES-GCM carries a 4-byte salt after the key (RFC 4106 §8.1).
_ESP_ENCR_KEY_BYTES: dict[int, int] = {EncrId.DES: 8, EncrId.DES3: 24, EncrId.NULL: 0}
_ESP_SALT_BYTES: dict[int, int] = {EncrId.AES_GCM_16: 4}


def esp_key_bytes(encr: int, key_bits: int | None, integ: int | None) -> tuple[int, int]:
    """(encryption key bytes, integrity key bytes) of one direction of an ESP SA; UnsupportedSuite for an
    algorithm whose key size we do not know."""
    if encr in _ESP_ENCR_KEY_BYTES:
        encr_bytes = _ESP_ENCR_KEY_BYTES[encr]
    elif encr in (EncrId.AES_CBC, EncrId.AES_GCM_16) and key_bits in (128, 192, 256):
        encr_bytes = key_bits // 8 + _ESP_SALT_BYTES.get(encr, 0)
    else:
        raise _unsupported("an ESP cipher with a known key size", f"found {name_of(EncrId, encr)}/{key_bits}")
    if integ is None:
        return encr_bytes, 0
    if integ not in _INTEGS:
        raise _unsupported("a supported ESP integrity algorithm", f"found {name_of(IntegId, integ)}")
    return encr_bytes, _INTEGS[integ][1]


@dataclass(frozen=True)
class ChildKeys:
    """One CHILD_SA's keys: initiator-to-responder encryption and integrity, then responder-to-initiator."""

    encr_i: bytes
    integ_i: bytes
    encr_r: bytes
    integ_r: bytes

    def __repr__(self) -> str:
        return "ChildKeys(<secret>)"


def derive_child_keys(
    prf_id: int, sk_d: bytes, nonce_i: bytes, nonce_r: bytes, encr_bytes: int, integ_bytes: int
) -> ChildKeys:
    """KEYMAT = prf+(SK_d, Ni | Nr) for the CHILD_SA made in IKE_AUTH (no PFS there), taken in the order
    RFC 7296 §2.17 gives: initiator-to-responder encryption then integrity key, then the other direction."""
    stream = prf_plus(prf_id, sk_d, nonce_i + nonce_r, 2 * (encr_bytes + integ_bytes))
    a, b, c = encr_bytes, encr_bytes + integ_bytes, 2 * encr_bytes + integ_bytes
    return ChildKeys(stream[:a], stream[a:b], stream[b:c], stream[c:])


# --- Wireshark's IKEv2 decryption table ---

# The names Wireshark's `ikev2_decryption_table` uses (packet-isakmp.c); `vpndoctor capture --keys` reads
# the same names (capture/decrypt.py).
_WIRESHARK_ENCR_NAMES: dict[tuple[int, int], str] = {
    (EncrId.DES3, 192): "3DES [RFC2451]",
    **{(EncrId.AES_CBC, b): f"AES-CBC-{b} [RFC3602]" for b in (128, 192, 256)},
    **{(EncrId.AES_GCM_16, b): f"AES-GCM-{b} with 16 octet ICV [RFC5282]" for b in (128, 192, 256)},
}
_WIRESHARK_INTEG_NAMES: dict[int | None, str] = {
    IntegId.HMAC_MD5_96: "HMAC_MD5_96 [RFC2403]",
    IntegId.HMAC_SHA1_96: "HMAC_SHA1_96 [RFC2404]",
    IntegId.HMAC_SHA2_256_128: "HMAC_SHA2_256_128 [RFC4868]",
    IntegId.HMAC_SHA2_384_192: "HMAC_SHA2_384_192 [RFC4868]",
    IntegId.HMAC_SHA2_512_256: "HMAC_SHA2_512_256 [RFC4868]",
    None: "NONE [RFC4306]",
}


def wireshark_key_line(suite: CipherSuite, keys: IkeKeys, spi_i: bytes, spi_r: bytes) -> str:
    """One `ikev2_decryption_table` row for an IKE SA: SPIi,SPIr,SK_ei,SK_er,"encryption",SK_ai,SK_ar,
    "integrity" (hex without 0x; AES-GCM keys with their salt, as SK_e holds them)."""
    bits = suite.cipher_key_bytes * 8
    encr = _WIRESHARK_ENCR_NAMES[(suite.encr, bits)]
    integ = _WIRESHARK_INTEG_NAMES[suite.integ]
    fields = [spi_i.hex(), spi_r.hex(), keys.sk_ei.hex(), keys.sk_er.hex(), f'"{encr}"']
    fields += [keys.sk_ai.hex(), keys.sk_ar.hex(), f'"{integ}"']
    return ",".join(fields)


# --- tcpdump's IKEv2 key log ---

# tcpdump names ciphers as OpenSSL does (an optional "-cbc" suffix is dropped before the lookup).
_SECRET_ENCR: dict[str, tuple[int, int]] = {
    "aes128": (EncrId.AES_CBC, 128),
    "aes-128": (EncrId.AES_CBC, 128),
    "aes192": (EncrId.AES_CBC, 192),
    "aes-192": (EncrId.AES_CBC, 192),
    "aes256": (EncrId.AES_CBC, 256),
    "aes-256": (EncrId.AES_CBC, 256),
    "3des": (EncrId.DES3, 192),
    "des-ede3": (EncrId.DES3, 192),
}
# tcpdump itself knows only md5 and sha1 (12-byte ICV); the SHA-2 names are our extension.
_SECRET_INTEG: dict[str, int] = {
    "md5": IntegId.HMAC_MD5_96,
    "sha1": IntegId.HMAC_SHA1_96,
    "sha256": IntegId.HMAC_SHA2_256_128,
    "sha384": IntegId.HMAC_SHA2_384_192,
    "sha512": IntegId.HMAC_SHA2_512_256,
}
_SPI_RE = re.compile(r"0x([0-9a-fA-F]{16})")
_KEY_RE = re.compile(r"([A-Za-z0-9-]+):0x((?:[0-9a-fA-F]{2})+)")


@dataclass(frozen=True)
class SecretLine:
    """One `ikev2 I|R <SPIi> <SPIr> <integ>:0x<key> <encr>:0x<key>` line. `initiator` is True for `I`:
    the keys protect messages the initiator sends."""

    initiator: bool
    spi_i: bytes
    spi_r: bytes
    integ: int
    integ_key: bytes
    encr: int
    encr_key_bits: int
    encr_key: bytes

    @property
    def keys(self) -> DirectionKeys:
        return DirectionKeys(encr=self.encr_key, integ=self.integ_key)

    def suite(self, prf_id: int = PrfId.HMAC_SHA1, dh: int = DhGroup.NONE) -> CipherSuite:
        """A suite able to unprotect this direction (the PRF and DH group play no part in that)."""
        return CipherSuite(
            encr=self.encr, encr_key_bits=self.encr_key_bits, prf=prf_id, integ=self.integ, dh=dh
        )

    def __repr__(self) -> str:
        return (
            f"SecretLine({'I' if self.initiator else 'R'}, spi_i={self.spi_i.hex()}, "
            f"spi_r={self.spi_r.hex()}, integ={self.integ}, encr={self.encr}/{self.encr_key_bits})"
        )


def parse_tcpdump_secrets(text: str) -> list[SecretLine]:
    """The `ikev2` lines of a tcpdump `-E` secrets file. Blank lines, `#` comments and ESP SA lines
    (`spi@addr algo:key` or a lone `algo:key`) are skipped; a malformed `ikev2` line or anything else raises
    SecretsFileError."""
    lines: list[SecretLine] = []
    offset = 0
    for number, raw in enumerate(text.splitlines(keepends=True), start=1):
        line_offset, offset = offset, offset + len(raw)
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        fields = line.split()
        if fields[0] == "ikev2":
            lines.append(_parse_ikev2_line(fields, number, line_offset))
        elif "@" in fields[0] or (len(fields) == 1 and ":" in fields[0]):
            continue  # an ESP SA: not ours to use
        else:
            raise SecretsFileError(
                line_offset, "'ikev2 I|R ...' or an ESP SA line", f"found {fields[0]!r} on line {number}"
            )
    return lines


def _parse_ikev2_line(fields: list[str], number: int, offset: int) -> SecretLine:
    def bad(found: str, expected: str) -> SecretsFileError:
        return SecretsFileError(offset, expected, f"found {found} on line {number}")

    if len(fields) != 6:
        raise bad(f"{len(fields)} fields", "ikev2 I|R 0x<SPIi> 0x<SPIr> <integ>:0x<key> <encr>:0x<key>")
    _, role, spi_i, spi_r, integ, encr = fields
    if role not in ("I", "R"):
        raise bad(f"role {role!r}", "I or R")
    spis: list[bytes] = []
    for spi in (spi_i, spi_r):
        match = _SPI_RE.fullmatch(spi)
        if match is None:
            raise bad(f"SPI {spi!r}", "0x followed by 16 hex digits")
        spis.append(bytes.fromhex(match.group(1)))
    integ_match = _KEY_RE.fullmatch(integ)
    encr_match = _KEY_RE.fullmatch(encr)
    if integ_match is None or encr_match is None:
        raise bad("algorithm:key field", "<name>:0x<hex key>")
    integ_name = integ_match.group(1).lower()
    encr_name = encr_match.group(1).lower()
    if encr_name.endswith("-cbc"):
        encr_name = encr_name[: -len("-cbc")]
    if integ_name not in _SECRET_INTEG:
        raise bad(f"integrity algorithm {integ_name!r}", f"one of {', '.join(_SECRET_INTEG)}")
    if encr_name not in _SECRET_ENCR:
        raise bad(f"cipher {encr_name!r}", f"one of {', '.join(_SECRET_ENCR)}")
    integ_id = _SECRET_INTEG[integ_name]
    encr_id, encr_bits = _SECRET_ENCR[encr_name]
    integ_key = bytes.fromhex(integ_match.group(2))
    encr_key = bytes.fromhex(encr_match.group(2))
    if len(integ_key) != _INTEGS[integ_id][1]:
        raise bad(f"{integ_name} key of {len(integ_key)} bytes", f"{_INTEGS[integ_id][1]} bytes")
    if len(encr_key) * 8 != encr_bits:
        raise bad(f"{encr_name} key of {len(encr_key)} bytes", f"{encr_bits // 8} bytes")
    return SecretLine(
        initiator=role == "I",
        spi_i=spis[0],
        spi_r=spis[1],
        integ=integ_id,
        integ_key=integ_key,
        encr=encr_id,
        encr_key_bits=encr_bits,
        encr_key=encr_key,
    )


# --- errors ---


def _unsupported(expected: str, found: str) -> UnsupportedSuite:
    # offset 0: a suite is judged on its own; where its transforms sat in the SA payload is for the caller
    return UnsupportedSuite(0, expected, found)


def _names(enum: type[IntEnum], values: Iterable[int]) -> str:
    return ", ".join(name_of(enum, v) for v in sorted(values))
