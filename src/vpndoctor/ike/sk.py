"""Protection of the Encrypted payload (SK, RFC 7296 §3.14) and of one Encrypted Fragment (SKF, RFC 7383
§2.5): AES-CBC and 3DES-CBC with a truncated HMAC, or AES-GCM-16 (RFC 5282). On receipt the integrity check
comes before any decryption. Only `cryptography` primitives are used; the IV comes from an injected `rng`.
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from dataclasses import dataclass, replace

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.decrepit.ciphers.algorithms import TripleDES
from cryptography.hazmat.primitives import constant_time, hmac
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from vpndoctor.ike.constants import EncrId, PayloadType
from vpndoctor.ike.errors import MalformedMessage
from vpndoctor.ike.keys import CipherSuite, DirectionKeys
from vpndoctor.ike.message import HEADER_BYTES, Header, sk_payload_offset

__all__ = [
    "DecryptionFailed",
    "IntegrityCheckFailed",
    "Rng",
    "decrypt_unverified",
    "protect",
    "protect_fragment",
    "unprotect",
]

Rng = Callable[[int], bytes]

_GENERIC_HEADER_BYTES = 4
_SKF_FIELDS_BYTES = 4  # Fragment Number, Total Fragments
_MAX_LENGTH = 0xFFFF  # a generic payload length is 16 bits


class IntegrityCheckFailed(MalformedMessage):
    """The ICV does not match: wrong keys, or the message was altered. Nothing was decrypted."""


class DecryptionFailed(MalformedMessage):
    """The ICV matched but the plaintext is not well formed (bad padding): the sender is broken."""


# --- receiving ---


def unprotect(raw_message: bytes, keys_for_direction: DirectionKeys, suite: CipherSuite) -> tuple[int, bytes]:
    """Check and decrypt the SK or SKF payload of `raw_message` (which must be its last payload and end the
    message). Returns (first inner payload type, plaintext inner payload chain without padding). For an SKF
    fragment the plaintext is this fragment's part only, and the type is 0 unless it is fragment 1."""
    sealed = _locate(raw_message, keys_for_direction, suite)
    if suite.aead:
        padded = _open_aead(suite, keys_for_direction.encr, sealed)
    else:
        expected_icv = _icv(suite, keys_for_direction, raw_message[: sealed.icv_offset])
        if not constant_time.bytes_eq(expected_icv, sealed.icv):
            raise IntegrityCheckFailed(
                sealed.icv_offset,
                "a matching integrity check value",
                "found a mismatch (wrong keys or altered message)",
            )
        padded = _decrypt_cbc(suite, keys_for_direction.encr, sealed.iv, sealed.ciphertext)
    return sealed.first_inner, _strip_padding(padded, sealed.ciphertext_offset)


def decrypt_unverified(
    raw_message: bytes, keys_for_direction: DirectionKeys, suite: CipherSuite
) -> tuple[int, bytes]:
    """Like `unprotect` but without the integrity check, for reading captures whose ICV does not verify
    (a finding in itself): never use it on a live exchange. With AES-GCM the tag is still checked, because
    `cryptography` releases no unauthenticated AEAD plaintext."""
    sealed = _locate(raw_message, keys_for_direction, suite)
    if suite.aead:
        padded = _open_aead(suite, keys_for_direction.encr, sealed)
    else:
        padded = _decrypt_cbc(suite, keys_for_direction.encr, sealed.iv, sealed.ciphertext)
    return sealed.first_inner, _strip_padding(padded, sealed.ciphertext_offset)


@dataclass(frozen=True)
class _Sealed:
    first_inner: int
    associated: bytes  # IKE header through the SK generic header (and SKF fields): the AEAD AAD
    iv: bytes
    ciphertext: bytes
    ciphertext_offset: int
    icv: bytes
    icv_offset: int


def _locate(raw: bytes, keys: DirectionKeys, suite: CipherSuite) -> _Sealed:
    """Split the SK/SKF payload into its parts, checking every length before any cryptography."""
    _check_keys(keys, suite)
    offset = sk_payload_offset(raw)
    payload_type = _type_of_payload_at(raw, offset)
    header_bytes = _GENERIC_HEADER_BYTES + (_SKF_FIELDS_BYTES if payload_type == PayloadType.SKF else 0)
    if len(raw) < offset + header_bytes:
        raise MalformedMessage(
            len(raw),
            f"a {header_bytes}-byte encrypted payload header at {offset}",
            "found the end of the message",
        )
    (payload_length,) = struct.unpack_from("!H", raw, offset + 2)
    if offset + payload_length != len(raw):
        raise MalformedMessage(
            offset + 2,
            f"an encrypted payload length of {len(raw) - offset} (it is the last payload, RFC 7296 §3.14)",
            f"found {payload_length}",
        )
    (message_length,) = struct.unpack_from("!I", raw, 24)
    if message_length != len(raw):
        raise MalformedMessage(
            24, f"an IKE header length of {len(raw)} (the bytes received)", f"found {message_length}"
        )
    body_offset = offset + header_bytes
    body_bytes = len(raw) - body_offset
    minimum = suite.iv_bytes + suite.icv_bytes + suite.block_bytes
    if body_bytes < minimum:
        raise MalformedMessage(
            body_offset, f"at least {minimum} bytes of IV, ciphertext and ICV", f"found {body_bytes}"
        )
    ciphertext_offset = body_offset + suite.iv_bytes
    icv_offset = len(raw) - suite.icv_bytes
    if (icv_offset - ciphertext_offset) % suite.block_bytes:
        raise MalformedMessage(
            ciphertext_offset,
            f"whole {suite.block_bytes}-byte cipher blocks",
            f"found {icv_offset - ciphertext_offset} ciphertext bytes",
        )
    return _Sealed(
        first_inner=raw[offset],
        associated=raw[:body_offset],
        iv=raw[body_offset:ciphertext_offset],
        ciphertext=raw[ciphertext_offset:icv_offset],
        ciphertext_offset=ciphertext_offset,
        icv=raw[icv_offset:],
        icv_offset=icv_offset,
    )


def _type_of_payload_at(raw: bytes, target: int) -> int:
    """The type of the payload starting at `target`, read from the Next Payload field that points to it."""
    if len(raw) < HEADER_BYTES:
        raise MalformedMessage(len(raw), "a 28-byte IKE header", "found the end of the message")
    payload_type, offset = raw[16], HEADER_BYTES
    while offset < target:
        if offset + _GENERIC_HEADER_BYTES > len(raw):
            raise MalformedMessage(offset, "a 4-byte generic payload header", "found the end of the message")
        (length,) = struct.unpack_from("!H", raw, offset + 2)
        if length < _GENERIC_HEADER_BYTES:
            raise MalformedMessage(offset + 2, "a payload length of at least 4", f"found {length}")
        payload_type, offset = raw[offset], offset + length
    if offset != target or payload_type not in (PayloadType.SK, PayloadType.SKF):
        raise MalformedMessage(
            target,
            "an Encrypted (SK) or Encrypted Fragment (SKF) payload",
            f"found payload type {payload_type}",
        )
    return payload_type


def _strip_padding(padded: bytes, offset: int) -> bytes:
    pad_length = padded[-1]
    if pad_length + 1 > len(padded):
        raise DecryptionFailed(
            offset + len(padded) - 1,
            f"a pad length below {len(padded)} (RFC 7296 §3.14)",
            f"found {pad_length} after decryption",
        )
    return padded[: len(padded) - pad_length - 1]


def _decrypt_cbc(suite: CipherSuite, key: bytes, iv: bytes, ciphertext: bytes) -> bytes:
    decryptor = Cipher(_block_cipher(suite, key), modes.CBC(iv)).decryptor()
    return decryptor.update(ciphertext) + decryptor.finalize()


def _open_aead(suite: CipherSuite, key_and_salt: bytes, sealed: _Sealed) -> bytes:
    key, salt = _split_salt(suite, key_and_salt)
    try:
        return AESGCM(key).decrypt(salt + sealed.iv, sealed.ciphertext + sealed.icv, sealed.associated)
    except InvalidTag:
        raise IntegrityCheckFailed(
            sealed.icv_offset, "a matching AES-GCM tag", "found a mismatch (wrong keys or altered message)"
        ) from None


# --- sending ---


def protect(
    header: Header, first_inner: int, plaintext: bytes, keys: DirectionKeys, suite: CipherSuite, rng: Rng
) -> bytes:
    """The complete message: IKE header (Next Payload = SK, length filled in) and an SK payload carrying the
    encrypted inner payload chain `plaintext` whose first payload is `first_inner`."""
    return _seal(header, PayloadType.SK, first_inner, b"", plaintext, keys, suite, rng)


def protect_fragment(
    header: Header,
    first_inner: int,
    fragment_number: int,
    total: int,
    plaintext_part: bytes,
    keys: DirectionKeys,
    suite: CipherSuite,
    rng: Rng,
) -> bytes:
    """One complete message with an SKF payload (RFC 7383 §2.5). `first_inner` must be 0 unless
    `fragment_number` is 1."""
    if not 1 <= fragment_number <= total <= _MAX_LENGTH:
        raise ValueError(f"fragment {fragment_number} of {total}: need 1 <= number <= total <= 65535")
    if fragment_number != 1 and first_inner != 0:
        raise ValueError("only fragment 1 names the first inner payload (RFC 7383 §2.5)")
    fields = struct.pack("!HH", fragment_number, total)
    return _seal(header, PayloadType.SKF, first_inner, fields, plaintext_part, keys, suite, rng)


def _seal(
    header: Header,
    payload_type: int,
    first_inner: int,
    skf_fields: bytes,
    plaintext: bytes,
    keys: DirectionKeys,
    suite: CipherSuite,
    rng: Rng,
) -> bytes:
    _check_keys(keys, suite)
    pad_length = -(len(plaintext) + 1) % suite.block_bytes
    padded = plaintext + bytes(pad_length) + bytes([pad_length])
    payload_length = _GENERIC_HEADER_BYTES + len(skf_fields) + suite.iv_bytes + len(padded) + suite.icv_bytes
    if payload_length > _MAX_LENGTH:
        raise ValueError(f"{len(plaintext)} plaintext bytes do not fit in one encrypted payload")
    # For AES-GCM, RFC 5282 §3.1 wants an IV never repeated under one key; 64 random bits make a repeat
    # improbable for the few messages of an IKE SA (birthday bound near 2^32 messages), not impossible.
    iv = rng(suite.iv_bytes)
    if len(iv) != suite.iv_bytes:
        raise ValueError(f"rng returned {len(iv)} bytes, asked for {suite.iv_bytes}")
    associated = (
        replace(header, next_payload=payload_type).encode(HEADER_BYTES + payload_length)
        + struct.pack("!BBH", first_inner, 0, payload_length)
        + skf_fields
    )
    if suite.aead:
        key, salt = _split_salt(suite, keys.encr)
        return associated + iv + AESGCM(key).encrypt(salt + iv, padded, associated)
    encryptor = Cipher(_block_cipher(suite, keys.encr), modes.CBC(iv)).encryptor()
    protected = associated + iv + encryptor.update(padded) + encryptor.finalize()
    return protected + _icv(suite, keys, protected)


# --- shared ---


def _check_keys(keys: DirectionKeys, suite: CipherSuite) -> None:
    # Mismatched keys are our own bug, not the peer's: ValueError, not MalformedMessage.
    if len(keys.encr) != suite.encr_key_bytes:
        raise ValueError(f"encryption key is {len(keys.encr)} bytes, the suite needs {suite.encr_key_bytes}")
    if suite.aead:
        if keys.integ:
            raise ValueError("an AEAD suite takes no integrity key")
    elif keys.integ is None or len(keys.integ) != suite.integ_key_bytes:
        have = "no" if keys.integ is None else f"a {len(keys.integ)}-byte"
        raise ValueError(f"{have} integrity key, the suite needs {suite.integ_key_bytes} bytes")


def _icv(suite: CipherSuite, keys: DirectionKeys, data: bytes) -> bytes:
    assert keys.integ is not None  # _check_keys
    mac = hmac.HMAC(keys.integ, suite.integ_hash())
    mac.update(data)
    return mac.finalize()[: suite.icv_bytes]


def _block_cipher(suite: CipherSuite, key: bytes) -> algorithms.AES | TripleDES:
    if suite.encr == EncrId.DES3:
        return TripleDES(key)
    return algorithms.AES(key)


def _split_salt(suite: CipherSuite, key_and_salt: bytes) -> tuple[bytes, bytes]:
    return key_and_salt[: suite.cipher_key_bytes], key_and_salt[suite.cipher_key_bytes :]
