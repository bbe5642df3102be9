"""ESP (RFC 4303) protect/unprotect: the cipher primitives pinned to published vectors (the GCM spec's test
case 4 through the RFC 4106 salt|IV split, RFC 3602 case 1, RFC 2202/4231 HMAC), round trips for each
transform, the padding rules and the anti-replay window of RFC 4303 §3.4.3. The end-to-end oracles are the
lab's strongSwan responder and tshark's ESP decryption (tests/lab/test_tunnel_lab.py)."""

from __future__ import annotations

import hmac
import struct

import pytest
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from vpndoctor.esp.errors import EspDecodeError, IntegrityFailure, Replayed, UnsupportedTransform
from vpndoctor.esp.keymat import derive_keymat, sa_pair, split_keymat
from vpndoctor.esp.sa import EspKeys, EspTransform, InboundSa, OutboundSa, ReplayWindow
from vpndoctor.ike.constants import EncrId, IntegId, PrfId

GCM256 = EspTransform(EncrId.AES_GCM_16, 256)
GCM128 = EspTransform(EncrId.AES_GCM_16, 128)
CBC_SHA1 = EspTransform(EncrId.AES_CBC, 256, IntegId.HMAC_SHA1_96)
CBC_SHA256 = EspTransform(EncrId.AES_CBC, 128, IntegId.HMAC_SHA2_256_128)
SPI = bytes.fromhex("c0ffee01")


def rng(n: int) -> bytes:
    return bytes(range(n))


def pair(t: EspTransform) -> tuple[OutboundSa, InboundSa]:
    keys = EspKeys(bytes(range(7, 7 + t.encr_key_bytes)), bytes(range(50, 50 + t.integ_key_bytes)))
    return OutboundSa(SPI, t, keys, rng), InboundSa(SPI, t, keys)


def test_gcm_spec_test_case_4_through_the_rfc4106_salt_and_iv() -> None:
    # McGrew & Viega, "The Galois/Counter Mode of Operation", test case 4; RFC 4106 §4 takes the last 4
    # octets of the KEYMAT key as the salt and carries the other 8 of the nonce in the packet.
    keymat_key = bytes.fromhex("feffe9928665731c6d6a8f9467308308" + "cafebabe")
    iv = bytes.fromhex("facedbaddecaf888")
    aad = bytes.fromhex("feedfacedeadbeeffeedfacedeadbeefabaddad2")
    plain = bytes.fromhex(
        "d9313225f88406e5a55909c5aff5269a86a7a9531534f7da2e4c303d8a318a72"
        "1c3c0c95956809532fcf0e2449a6b525b16aedf5aa0de657ba637b39"
    )
    sealed = AESGCM(keymat_key[:-4]).encrypt(keymat_key[-4:] + iv, plain, aad)
    assert sealed.hex() == (
        "42831ec2217774244b7221b784d0d49ce3aa212f2c02a4e035c17e2329aca12e"
        "21d514b25466931c7d8f6a5aac84aa051ba30b396a0aac973d58e091"
        "5bc94fbc3221a5db94fae95ae7121a47"
    )


def test_gcm_packet_layout_follows_rfc4106() -> None:
    out, _ = pair(GCM128)
    packet = out.protect(b"\x45" + bytes(27))
    assert packet[:4] == SPI and packet[4:8] == struct.pack("!I", 1)
    iv = packet[8:16]
    assert iv == struct.pack("!Q", 1)  # the sequence number as IV: unique per key
    key = out.keys.encr
    plain = AESGCM(key[:-4]).decrypt(key[-4:] + iv, packet[16:], packet[:8])  # AAD = SPI | seq
    # 28 octets + 2 of trailer = 30: 2 octets of padding to a multiple of 4, then pad length and next header
    assert plain == b"\x45" + bytes(27) + b"\x01\x02" + b"\x02\x04"


def test_rfc3602_case_1_and_the_cbc_packet_layout() -> None:
    key = bytes.fromhex("06a9214036b8a15b512e03d534120006")
    iv = bytes.fromhex("3dafba429d9eb430b422da802c9fac41")
    enc = Cipher(algorithms.AES(key), modes.CBC(iv)).encryptor()
    assert (enc.update(b"Single block msg") + enc.finalize()).hex() == "e353779c1079aeb82708942dbe77181a"
    out, _ = pair(CBC_SHA1)
    packet = out.protect(bytes(30))  # 30 + 2 = 32: no padding
    assert len(packet) == 8 + 16 + 32 + 12
    body, icv = packet[:-12], packet[-12:]
    assert icv == hmac.new(out.keys.integ, body, "sha1").digest()[:12]  # HMAC-SHA1-96 over SPI..ciphertext


def test_hmac_vectors_rfc2202_and_rfc4231_truncated() -> None:
    data = b"what do ya want for nothing?"
    assert hmac.new(b"Jefe", data, "sha1").hexdigest() == "effcdf6ae5eb2fa2d27416d5f184df9c259a7c79"
    assert (
        hmac.new(b"Jefe", data, "sha256").hexdigest()[:32] == "5bdcc146bf60754e6a042426089575c7"
    )  # RFC 4868 §2.3: HMAC-SHA-256-128 keeps the first 128 bits


@pytest.mark.parametrize("t", [GCM256, GCM128, CBC_SHA1, CBC_SHA256], ids=lambda t: f"{t.encr}-{t.key_bits}")
@pytest.mark.parametrize("size", [0, 1, 2, 3, 14, 15, 16, 17, 1400, 1500])
def test_round_trip(t: EspTransform, size: int) -> None:
    out, into = pair(t)
    inner = bytes((i * 7) & 0xFF for i in range(size))
    packet = out.protect(inner)
    assert len(packet) == size + t.overhead_bytes(size)
    got = into.unprotect(packet)
    assert (got.payload, got.next_header, got.seq) == (inner, 4, 1)


def test_sequence_numbers_count_from_one() -> None:
    out, into = pair(GCM256)
    seqs = [into.unprotect(out.protect(b"x" * 10)).seq for _ in range(3)]
    assert seqs == [1, 2, 3]


def test_bad_icv_and_bad_tag_are_integrity_failures() -> None:
    for t in (GCM256, CBC_SHA256):
        out, into = pair(t)
        packet = bytearray(out.protect(b"hello world"))
        packet[-1] ^= 1
        with pytest.raises(IntegrityFailure):
            into.unprotect(bytes(packet))
        assert into.window.top == 0  # a forgery does not move the window


def test_bad_padding_after_a_valid_icv() -> None:
    out, into = pair(CBC_SHA1)
    keys = out.keys
    iv = bytes(16)
    plain = b"x" * 12 + b"\x09\x09\x03\x02" + b"\x02\x04"  # wrong padding octets (should be 1, 2)
    plain = b"x" * 12 + b"\x01\x07" + b"\x02\x04"
    enc = Cipher(algorithms.AES(keys.encr), modes.CBC(iv)).encryptor()
    body = SPI + struct.pack("!I", 1) + iv + enc.update(plain) + enc.finalize()
    with pytest.raises(EspDecodeError, match="padding"):
        into.unprotect(body + hmac.new(keys.integ, body, "sha1").digest()[:12])


def test_pad_length_beyond_the_payload() -> None:
    out, into = pair(CBC_SHA1)
    keys = out.keys
    iv = bytes(16)
    plain = b"x" * 14 + b"\xf0\x04"
    enc = Cipher(algorithms.AES(keys.encr), modes.CBC(iv)).encryptor()
    body = SPI + struct.pack("!I", 1) + iv + enc.update(plain) + enc.finalize()
    with pytest.raises(EspDecodeError, match="pad length"):
        into.unprotect(body + hmac.new(keys.integ, body, "sha1").digest()[:12])


def test_replay_window_rfc4303_3_4_3() -> None:
    out, into = pair(GCM256)
    packets = [out.protect(b"p%d" % i) for i in range(70)]
    into.unprotect(packets[5])  # seq 6
    with pytest.raises(Replayed, match="already received"):
        into.unprotect(packets[5])
    into.unprotect(packets[2])  # late but inside the window
    into.unprotect(packets[69])  # seq 70: the window is now 7-70
    with pytest.raises(Replayed, match="older than the window"):
        into.unprotect(packets[3])  # seq 4
    into.unprotect(packets[10])  # seq 11: inside, not yet seen
    with pytest.raises(Replayed):
        into.unprotect(packets[10])


def test_replay_window_edges() -> None:
    w = ReplayWindow(size=64)
    assert w.check(0) is not None
    w.update(100)
    assert w.check(37) is None and w.check(36) is not None  # 100 - 63 = 37 is the oldest in the window
    w.update(37)
    assert w.check(37) is not None
    w.update(300)  # a jump beyond the window clears it
    assert w.bitmap == 1 and w.check(299) is None


def test_wrong_spi_and_short_packets() -> None:
    _, into = pair(GCM256)
    with pytest.raises(EspDecodeError, match="SPI"):
        into.unprotect(b"\x00\x00\x00\x09" + bytes(40))
    with pytest.raises(EspDecodeError, match="at least"):
        into.unprotect(SPI + bytes(10))


def test_unsupported_transforms() -> None:
    with pytest.raises(UnsupportedTransform):
        EspTransform(EncrId.DES3, 192, IntegId.HMAC_SHA1_96)
    with pytest.raises(UnsupportedTransform):
        EspTransform(EncrId.AES_CBC, 256, None)
    with pytest.raises(UnsupportedTransform):
        EspTransform(EncrId.AES_GCM_16, 256, esn=True)
    with pytest.raises(UnsupportedTransform):
        OutboundSa(SPI, GCM256, EspKeys(bytes(32)), rng)  # no salt


def test_keymat_split_rfc7296_2_17() -> None:
    t = CBC_SHA256  # 16 + 32 octets per direction
    keymat = bytes(range(96))
    keys = split_keymat(t, keymat)
    assert keys.out == EspKeys(keymat[:16], keymat[16:48])
    assert keys.into == EspKeys(keymat[48:64], keymat[64:96])
    assert "secret" in repr(keys) and "00010203" not in repr(keys.out)
    derived = derive_keymat(PrfId.HMAC_SHA2_256, b"k" * 32, b"n" * 32, b"r" * 32, GCM256)
    assert len(derived.out.encr) == 36 and derived.out.integ == b""
    with_pfs = derive_keymat(PrfId.HMAC_SHA2_256, b"k" * 32, b"n" * 32, b"r" * 32, GCM256, shared=b"g" * 256)
    assert with_pfs.out != derived.out


def test_sa_pair_uses_the_responders_spi_outbound() -> None:
    keys = split_keymat(GCM128, bytes(range(40)))
    out, into = sa_pair(GCM128, keys, spi_in=b"\x00\x00\x00\x01", spi_out=b"\x00\x00\x00\x02", rng=rng)
    assert out.spi == b"\x00\x00\x00\x02" and into.spi == b"\x00\x00\x00\x01"
    # what the responder sends us is what an SA with its keys (the second pair) protects
    theirs = OutboundSa(b"\x00\x00\x00\x01", GCM128, keys.into, rng)
    assert into.unprotect(theirs.protect(b"reply")).payload == b"reply"
