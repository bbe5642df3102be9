"""SK and SKF payload protection: round trips for every cipher/integrity pair, the wire layout checked against
an independent construction (RFC 7296 §3.14, RFC 5282 AAD, RFC 7383 §2.5), integrity before decryption, and
tampered or truncated input raising only our errors."""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import struct
from collections.abc import Callable

import pytest
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from vpndoctor.ike import sk
from vpndoctor.ike.constants import EncrId, ExchangeType, IntegId, PayloadType, PrfId
from vpndoctor.ike.errors import MalformedMessage
from vpndoctor.ike.keys import CipherSuite, DirectionKeys, derive_ike_keys
from vpndoctor.ike.message import Header, decode_message
from vpndoctor.ike.payloads import EncryptedFragmentPayload, EncryptedPayload
from vpndoctor.ike.sk import (
    DecryptionFailed,
    IntegrityCheckFailed,
    decrypt_unverified,
    protect,
    protect_fragment,
    unprotect,
)


def counter_rng(seed: bytes) -> Callable[[int], bytes]:
    state = {"n": 0}

    def rng(n: int) -> bytes:
        out = b""
        while len(out) < n:
            state["n"] += 1
            out += hashlib.sha256(seed + state["n"].to_bytes(8, "big")).digest()
        return out[:n]

    return rng


SUITES = {
    "aes128-sha1": CipherSuite(EncrId.AES_CBC, 128, PrfId.HMAC_SHA1, IntegId.HMAC_SHA1_96, 14),
    "aes192-sha256": CipherSuite(EncrId.AES_CBC, 192, PrfId.HMAC_SHA2_256, IntegId.HMAC_SHA2_256_128, 14),
    "aes256-sha384": CipherSuite(EncrId.AES_CBC, 256, PrfId.HMAC_SHA2_384, IntegId.HMAC_SHA2_384_192, 20),
    "aes256-sha512": CipherSuite(EncrId.AES_CBC, 256, PrfId.HMAC_SHA2_512, IntegId.HMAC_SHA2_512_256, 21),
    "3des-sha1": CipherSuite(EncrId.DES3, None, PrfId.HMAC_SHA1, IntegId.HMAC_SHA1_96, 2),
    "3des-sha256": CipherSuite(EncrId.DES3, None, PrfId.HMAC_SHA2_256, IntegId.HMAC_SHA2_256_128, 2),
    "aes128gcm16": CipherSuite(EncrId.AES_GCM_16, 128, PrfId.HMAC_SHA2_256, None, 19),
    "aes256gcm16": CipherSuite(EncrId.AES_GCM_16, 256, PrfId.HMAC_SHA2_384, None, 20),
}
HASHLIB = {12: hashlib.sha1, 16: hashlib.sha256, 24: hashlib.sha384, 32: hashlib.sha512}  # by ICV bytes

HEADER = Header(
    spi_i=bytes.fromhex("0001020304050607"),
    spi_r=bytes.fromhex("c02e7a3031a03188"),
    exchange=ExchangeType.IKE_AUTH,
    flags=0x08,
    message_id=1,
)
# IDi (FQDN "west") then a 20-byte AUTH, as an encoded inner chain: IDi's Next Payload names AUTH.
PLAINTEXT = (
    bytes.fromhex("2700000c02000000") + b"west" + bytes.fromhex("00000018") + b"\x01\x00\x00\x00" + bytes(16)
)


def keys_for(suite: CipherSuite, seed: bytes = b"k") -> tuple[DirectionKeys, DirectionKeys]:
    keys = derive_ike_keys(suite, seed * 32, b"\x01" * 16, b"\x02" * 16, HEADER.spi_i, HEADER.spi_r)
    return keys.initiator(), keys.responder()


# --- round trips and layout


@pytest.mark.parametrize("name", list(SUITES))
@pytest.mark.parametrize("length", [0, 1, 7, 15, 16, 17, 31, len(PLAINTEXT), 1000])
def test_round_trip(name: str, length: int) -> None:
    suite = SUITES[name]
    sending, _ = keys_for(suite)
    plaintext = (PLAINTEXT * 40)[:length]
    raw = protect(HEADER, PayloadType.IDi, plaintext, sending, suite, counter_rng(b"iv"))
    assert unprotect(raw, sending, suite) == (PayloadType.IDi, plaintext)
    message = decode_message(raw)  # the codec agrees on every length and type
    assert message.header.next_payload == PayloadType.SK and message.header.length == len(raw)
    (payload,) = message.payloads
    assert isinstance(payload, EncryptedPayload) and payload.first_inner == PayloadType.IDi
    body_bytes = len(raw) - 28 - 4
    ciphertext_bytes = body_bytes - suite.iv_bytes - suite.icv_bytes
    assert ciphertext_bytes % suite.block_bytes == 0
    assert length + 1 <= ciphertext_bytes < length + 1 + suite.block_bytes  # minimal padding


@pytest.mark.parametrize("name", [n for n in SUITES if "gcm" not in n])
def test_cbc_layout_matches_an_independent_construction(name: str) -> None:
    suite = SUITES[name]
    sending, _ = keys_for(suite)
    iv = bytes(range(suite.iv_bytes))
    raw = protect(HEADER, PayloadType.IDi, PLAINTEXT, sending, suite, lambda n: iv)
    # RFC 7296 §3.14: IV | E(inner | padding | pad length) | ICV, where the ICV is the truncated HMAC of
    # everything from the IKE header's first byte to the end of the ciphertext.
    assert raw[16] == PayloadType.SK and raw[28] == PayloadType.IDi
    assert struct.unpack("!H", raw[30:32])[0] == len(raw) - 28 and struct.unpack("!I", raw[24:28])[0] == len(
        raw
    )
    assert raw[32 : 32 + suite.iv_bytes] == iv
    icv = hmac.new(sending.integ or b"", raw[: -suite.icv_bytes], HASHLIB[suite.icv_bytes]).digest()
    assert raw[-suite.icv_bytes :] == icv[: suite.icv_bytes]
    algorithm = algorithms.AES(sending.encr) if suite.encr == EncrId.AES_CBC else None
    if algorithm is not None:
        decryptor = Cipher(algorithm, modes.CBC(iv)).decryptor()
        padded = decryptor.update(raw[32 + suite.iv_bytes : -suite.icv_bytes]) + decryptor.finalize()
        assert padded[: len(PLAINTEXT)] == PLAINTEXT
        assert padded[-1] == len(padded) - len(PLAINTEXT) - 1


@pytest.mark.parametrize("name", ["aes128gcm16", "aes256gcm16"])
def test_gcm_layout_nonce_and_aad_follow_rfc5282(name: str) -> None:
    suite = SUITES[name]
    sending, _ = keys_for(suite)
    iv = b"\xa5" * 8
    raw = protect(HEADER, PayloadType.IDi, PLAINTEXT, sending, suite, lambda n: iv)
    key, salt = sending.encr[: suite.cipher_key_bytes], sending.encr[suite.cipher_key_bytes :]
    assert len(salt) == 4
    # Nonce = salt | explicit IV; AAD = IKE header .. SK generic header; the ICV is the 16-byte tag.
    plain = AESGCM(key).decrypt(salt + iv, raw[32 + 8 :], raw[:32])
    assert raw[32:40] == iv
    assert plain == PLAINTEXT + b"\x00"  # no padding needed, pad length 0


def test_padding_contents_are_not_checked() -> None:
    # RFC 7296 §3.14: padding may be any value. Build a message with non-zero padding by hand.
    suite = SUITES["aes128-sha1"]
    sending, _ = keys_for(suite)
    inner = b"x" * 5
    padded = inner + b"\xde\xad\xbe\xef\x01\x02\x03\x04\x05\x06" + bytes([10])
    iv = bytes(16)
    encryptor = Cipher(algorithms.AES(sending.encr), modes.CBC(iv)).encryptor()
    ciphertext = encryptor.update(padded) + encryptor.finalize()
    length = 28 + 4 + 16 + len(ciphertext) + 12
    head = HEADER.encode(length)[:16] + bytes([PayloadType.SK]) + HEADER.encode(length)[17:]
    protected = head + struct.pack("!BBH", 0, 0, length - 28) + iv + ciphertext
    raw = protected + hmac.new(sending.integ or b"", protected, hashlib.sha1).digest()[:12]
    assert unprotect(raw, sending, suite) == (0, inner)


def test_unencrypted_payloads_before_sk_are_covered() -> None:
    # A Vendor ID in clear before the SK payload: integrity covers it, the SK payload is found after it.
    suite = SUITES["aes256-sha384"]
    sending, _ = keys_for(suite)
    inner = b"hello"
    padded = inner + bytes(10) + bytes([10])
    iv = b"\x07" * 16
    encryptor = Cipher(algorithms.AES(sending.encr), modes.CBC(iv)).encryptor()
    ciphertext = encryptor.update(padded) + encryptor.finalize()
    vid = struct.pack("!BBH", PayloadType.SK, 0, 8) + b"VIDx"
    length = 28 + len(vid) + 4 + 16 + len(ciphertext) + 24
    head = HEADER.encode(length)[:16] + bytes([PayloadType.VENDOR_ID]) + HEADER.encode(length)[17:]
    protected = head + vid + struct.pack("!BBH", 0, 0, length - 28 - len(vid)) + iv + ciphertext
    raw = protected + hmac.new(sending.integ or b"", protected, hashlib.sha384).digest()[:24]
    assert unprotect(raw, sending, suite) == (0, inner)
    tampered = raw[:36] + b"y" + raw[37:]
    with pytest.raises(IntegrityCheckFailed):
        unprotect(tampered, sending, suite)


def test_the_other_directions_keys_fail_integrity() -> None:
    for suite in SUITES.values():
        sending, receiving = keys_for(suite)
        raw = protect(HEADER, PayloadType.IDi, PLAINTEXT, sending, suite, counter_rng(b"d"))
        with pytest.raises(IntegrityCheckFailed):
            unprotect(raw, receiving, suite)


# --- integrity before decryption


def _forbid_decryption(monkeypatch: pytest.MonkeyPatch) -> None:
    def forbidden(*args: object) -> bytes:
        raise AssertionError("decryption attempted before the integrity check passed")

    monkeypatch.setattr(sk, "_decrypt_cbc", forbidden)


@pytest.mark.parametrize("name", list(SUITES))
def test_tampering_with_any_byte_is_detected_before_decryption(
    name: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    suite = SUITES[name]
    sending, _ = keys_for(suite)
    raw = protect(HEADER, PayloadType.IDi, PLAINTEXT, sending, suite, counter_rng(b"t"))
    _forbid_decryption(monkeypatch)
    # Bytes that define the structure are refused as malformed before any cryptography: the header's Next
    # Payload, its length, and the SK payload's length.
    structural = {16, 24, 25, 26, 27, 30, 31}
    for i in range(len(raw)):
        for flip in (0x01, 0x80):
            tampered = raw[:i] + bytes([raw[i] ^ flip]) + raw[i + 1 :]
            with pytest.raises(MalformedMessage) as info:
                unprotect(tampered, sending, suite)
            if i not in structural and not (i == 17 and flip == 0x80):  # 0x80 in byte 17: major version 10
                assert isinstance(info.value, IntegrityCheckFailed), (i, flip, info.value)


def test_corrupted_ciphertext_is_refused_by_integrity_not_by_padding(monkeypatch: pytest.MonkeyPatch) -> None:
    suite = SUITES["aes128-sha1"]
    sending, _ = keys_for(suite)
    # A ciphertext whose plaintext ends with pad length 255, more than the plaintext: decrypting it would
    # raise DecryptionFailed. With a valid ICV it does; with a wrong ICV integrity fails first.
    iv = bytes(16)
    encryptor = Cipher(algorithms.AES(sending.encr), modes.CBC(iv)).encryptor()
    ciphertext = encryptor.update(b"\xff" * 32) + encryptor.finalize()
    length = 28 + 4 + 16 + 32 + 12
    head = HEADER.encode(length)[:16] + bytes([PayloadType.SK]) + HEADER.encode(length)[17:]
    protected = head + struct.pack("!BBH", PayloadType.IDi, 0, length - 28) + iv + ciphertext
    good_icv = hmac.new(sending.integ or b"", protected, hashlib.sha1).digest()[:12]
    with pytest.raises(DecryptionFailed):
        unprotect(protected + good_icv, sending, suite)
    calls: list[int] = []
    real = sk._decrypt_cbc

    def counting(*args: object) -> bytes:
        calls.append(1)
        return real(*args)  # type: ignore[arg-type]

    monkeypatch.setattr(sk, "_decrypt_cbc", counting)
    with pytest.raises(IntegrityCheckFailed):
        unprotect(protected + bytes(12), sending, suite)
    assert calls == []
    with pytest.raises(DecryptionFailed):
        unprotect(protected + good_icv, sending, suite)
    assert calls == [1]


def test_decrypt_unverified_reads_a_message_whose_icv_is_wrong() -> None:
    # For captures only (see test_pI2_decrypt): CBC plaintext despite a bad ICV; AEAD tags are still checked.
    cbc = SUITES["aes192-sha256"]
    sending, _ = keys_for(cbc)
    raw = protect(HEADER, PayloadType.IDi, PLAINTEXT, sending, cbc, counter_rng(b"u"))
    bad_icv = raw[:-1] + bytes([raw[-1] ^ 0xFF])
    with pytest.raises(IntegrityCheckFailed):
        unprotect(bad_icv, sending, cbc)
    assert decrypt_unverified(bad_icv, sending, cbc) == (PayloadType.IDi, PLAINTEXT)
    gcm = SUITES["aes128gcm16"]
    sending, _ = keys_for(gcm)
    raw = protect(HEADER, PayloadType.IDi, PLAINTEXT, sending, gcm, counter_rng(b"u"))
    assert decrypt_unverified(raw, sending, gcm) == (PayloadType.IDi, PLAINTEXT)
    with pytest.raises(IntegrityCheckFailed):
        decrypt_unverified(raw[:-1] + bytes([raw[-1] ^ 0xFF]), sending, gcm)


# --- malformed input


@pytest.mark.parametrize("name", list(SUITES))
def test_truncated_messages_raise_only_our_errors(name: str) -> None:
    suite = SUITES[name]
    sending, _ = keys_for(suite)
    raw = protect(HEADER, PayloadType.IDi, PLAINTEXT, sending, suite, counter_rng(b"x"))
    for cut in range(len(raw)):
        with pytest.raises(MalformedMessage):
            unprotect(raw[:cut], sending, suite)


@pytest.mark.parametrize("name", list(SUITES))
def test_short_sk_bodies_with_consistent_lengths_raise_only_our_errors(name: str) -> None:
    suite = SUITES[name]
    sending, _ = keys_for(suite)
    for body_bytes in range(0, suite.iv_bytes + suite.icv_bytes + 2 * suite.block_bytes + 2):
        length = 28 + 4 + body_bytes
        head = HEADER.encode(length)[:16] + bytes([PayloadType.SK]) + HEADER.encode(length)[17:]
        raw = head + struct.pack("!BBH", PayloadType.IDi, 0, 4 + body_bytes) + b"\x5a" * body_bytes
        with pytest.raises(MalformedMessage):
            unprotect(raw, sending, suite)


def test_message_without_sk_payload() -> None:
    suite = SUITES["aes128-sha1"]
    sending, _ = keys_for(suite)
    raw = (
        HEADER.encode(28 + 8)[:16]
        + bytes([PayloadType.NONCE])
        + HEADER.encode(36)[17:]
        + b"\x00\x00\x00\x08abcd"
    )
    with pytest.raises(MalformedMessage):
        unprotect(raw, sending, suite)


def test_sk_payload_must_end_the_message() -> None:
    suite = SUITES["aes128-sha1"]
    sending, _ = keys_for(suite)
    raw = protect(HEADER, PayloadType.IDi, PLAINTEXT, sending, suite, counter_rng(b"e"))
    with pytest.raises(MalformedMessage):  # trailing bytes, header length left as is
        unprotect(raw + b"\x00" * 4, sending, suite)
    longer = raw[:24] + struct.pack("!I", len(raw) + 4) + raw[28:] + bytes(4)
    with pytest.raises(MalformedMessage):  # header length fixed up, SK length not
        unprotect(longer, sending, suite)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    name=st.sampled_from(sorted(SUITES)),
    edits=st.lists(st.tuples(st.integers(0, 400), st.integers(0, 255)), max_size=6),
    cut=st.integers(0, 500),
)
def test_fuzzed_messages_raise_only_our_errors(name: str, edits: list[tuple[int, int]], cut: int) -> None:
    suite = SUITES[name]
    sending, _ = keys_for(suite)
    raw = bytearray(protect(HEADER, PayloadType.IDi, PLAINTEXT, sending, suite, counter_rng(b"f")))
    for position, value in edits:
        if position < len(raw):
            raw[position] = value
    with contextlib.suppress(MalformedMessage):
        unprotect(bytes(raw[:cut]), sending, suite)


def test_mismatched_keys_are_our_bug_not_the_peers() -> None:
    suite = SUITES["aes256-sha384"]
    sending, _ = keys_for(suite)
    raw = protect(HEADER, PayloadType.IDi, PLAINTEXT, sending, suite, counter_rng(b"m"))
    for wrong in (
        DirectionKeys(encr=sending.encr[:16], integ=sending.integ),
        DirectionKeys(encr=sending.encr, integ=None),
        DirectionKeys(encr=sending.encr, integ=(sending.integ or b"")[:20]),
    ):
        with pytest.raises(ValueError):
            unprotect(raw, wrong, suite)
        with pytest.raises(ValueError):
            protect(HEADER, PayloadType.IDi, PLAINTEXT, wrong, suite, counter_rng(b"m"))
    gcm = SUITES["aes128gcm16"]
    with pytest.raises(ValueError):
        protect(HEADER, 0, b"", DirectionKeys(encr=bytes(20), integ=bytes(20)), gcm, counter_rng(b"m"))


def test_plaintext_too_large_for_one_payload() -> None:
    suite = SUITES["aes128gcm16"]
    sending, _ = keys_for(suite)
    with pytest.raises(ValueError):
        protect(HEADER, PayloadType.IDi, bytes(70000), sending, suite, counter_rng(b"l"))


# --- SKF


@pytest.mark.parametrize("name", list(SUITES))
def test_fragment_round_trip_and_fields_are_authenticated(name: str) -> None:
    suite = SUITES[name]
    sending, _ = keys_for(suite)
    raw = protect_fragment(HEADER, PayloadType.IDi, 1, 3, PLAINTEXT[:10], sending, suite, counter_rng(b"s"))
    assert raw[16] == PayloadType.SKF
    assert unprotect(raw, sending, suite) == (PayloadType.IDi, PLAINTEXT[:10])
    (payload,) = decode_message(raw).payloads
    assert isinstance(payload, EncryptedFragmentPayload)
    assert (payload.fragment_number, payload.total_fragments) == (1, 3)
    # RFC 7383 §2.5: the Fragment Number and Total Fragments fields are inside the integrity/AAD coverage.
    for position in (32, 33, 34, 35):
        tampered = raw[:position] + bytes([raw[position] ^ 0x02]) + raw[position + 1 :]
        with pytest.raises(IntegrityCheckFailed):
            unprotect(tampered, sending, suite)
    later = protect_fragment(HEADER, 0, 3, 3, PLAINTEXT[20:], sending, suite, counter_rng(b"s"))
    assert unprotect(later, sending, suite) == (0, PLAINTEXT[20:])


def test_fragment_gcm_aad_includes_fragment_fields() -> None:
    suite = SUITES["aes128gcm16"]
    sending, _ = keys_for(suite)
    iv = b"\x3c" * 8
    raw = protect_fragment(HEADER, 0, 2, 2, b"part", sending, suite, lambda n: iv)
    key, salt = sending.encr[:16], sending.encr[16:]
    assert AESGCM(key).decrypt(salt + iv, raw[36 + 8 :], raw[:36]) == b"part\x00"
    assert raw[28] == 0  # only fragment 1 names the first inner payload


@pytest.mark.parametrize(
    ("number", "total", "first"), [(0, 1, 0), (2, 1, 0), (1, 0, 0), (2, 2, 35), (1, 70000, 0)]
)
def test_protect_fragment_rejects_bad_numbering(number: int, total: int, first: int) -> None:
    suite = SUITES["aes128-sha1"]
    sending, _ = keys_for(suite)
    with pytest.raises(ValueError):
        protect_fragment(HEADER, first, number, total, b"x", sending, suite, counter_rng(b"n"))
