"""Known answers. RFC 2759 §9.2 ("Hash Example": user "User", password "clientPass") and RFC 3079 §3.5.3
(MasterKey and SendStartKey128 for the same exchange), as quoted identically by hostapd's test_ms_funcs.c,
cryptlib and Android's IKE library tests. RFC 3079 prints only the server's send key; the other start key
(D5F0...) is the value Android's IKE library tests derive from the same parameters, and the MSK layout is
strongSwan's GenerateMSK (MasterReceiveKey | MasterSendKey | 32 zero bytes)."""

from __future__ import annotations

import pytest

from tests.eap import (
    AUTHENTICATOR_CHALLENGE,
    AUTHENTICATOR_RESPONSE,
    CHALLENGE,
    MASTER_KEY,
    NT_RESPONSE,
    PASSWORD,
    PASSWORD_HASH,
    PASSWORD_HASH_HASH,
    PASSWORD_UTF16LE,
    PEER_CHALLENGE,
    SEND_START_KEY_128,
    USERNAME,
)
from vpndoctor.eap import mschapv2 as m

USER = USERNAME.encode()
CLIENT_SEND_KEY_128 = bytes.fromhex("D5F0E9521E3EA9589645E86051C82226")


def test_password_is_utf16le() -> None:
    assert m.password_utf16le(PASSWORD) == PASSWORD_UTF16LE


def test_rfc2759_nt_password_hash() -> None:
    assert m.nt_password_hash(PASSWORD) == PASSWORD_HASH
    assert m.hash_nt_password_hash(PASSWORD_HASH) == PASSWORD_HASH_HASH


def test_rfc2759_challenge_hash() -> None:
    assert m.challenge_hash(PEER_CHALLENGE, AUTHENTICATOR_CHALLENGE, USER) == CHALLENGE


def test_rfc2759_nt_response() -> None:
    assert m.challenge_response(CHALLENGE, PASSWORD_HASH) == NT_RESPONSE
    assert m.generate_nt_response(AUTHENTICATOR_CHALLENGE, PEER_CHALLENGE, USER, PASSWORD_HASH) == NT_RESPONSE


def test_rfc2759_authenticator_response() -> None:
    value = m.generate_authenticator_response(
        PASSWORD_HASH, NT_RESPONSE, PEER_CHALLENGE, AUTHENTICATOR_CHALLENGE, USER
    )
    assert "S=" + value.hex().upper() == AUTHENTICATOR_RESPONSE
    assert m.check_authenticator_response(
        PASSWORD_HASH, NT_RESPONSE, PEER_CHALLENGE, AUTHENTICATOR_CHALLENGE, USER, value
    )
    wrong = bytes([value[0] ^ 0x80]) + value[1:]
    assert not m.check_authenticator_response(
        PASSWORD_HASH, NT_RESPONSE, PEER_CHALLENGE, AUTHENTICATOR_CHALLENGE, USER, wrong
    )


def test_domain_is_not_part_of_the_challenge_hash() -> None:
    assert m.user_part(b"CONTOSO\\User") == b"User"
    assert m.user_part(b"User") == b"User"
    assert m.user_part(b"User@contoso.com") == b"User@contoso.com"  # a UPN is hashed whole
    assert m.challenge_hash(PEER_CHALLENGE, AUTHENTICATOR_CHALLENGE, b"CONTOSO\\User") == CHALLENGE


def test_rfc3079_master_key() -> None:
    assert m.get_master_key(PASSWORD_HASH_HASH, NT_RESPONSE) == MASTER_KEY


def test_rfc3079_start_keys() -> None:
    # RFC 3079 §3.5.3 derives SendStartKey128 as the server (IsSend, IsServer): the client's receive key.
    assert m.get_asymmetric_start_key(MASTER_KEY, 16, is_send=True, is_server=True) == SEND_START_KEY_128
    assert m.get_asymmetric_start_key(MASTER_KEY, 16, is_send=False, is_server=False) == SEND_START_KEY_128
    assert m.get_asymmetric_start_key(MASTER_KEY, 16, is_send=True, is_server=False) == CLIENT_SEND_KEY_128
    assert m.get_asymmetric_start_key(MASTER_KEY, 16, is_send=False, is_server=True) == CLIENT_SEND_KEY_128
    assert m.get_asymmetric_start_key(MASTER_KEY, 8, is_send=True, is_server=True) == SEND_START_KEY_128[:8]
    with pytest.raises(ValueError):
        m.get_asymmetric_start_key(MASTER_KEY, 12, is_send=True, is_server=True)


def test_msk_layout_is_strongswans() -> None:
    msk = m.msk(PASSWORD_HASH, NT_RESPONSE)
    assert len(msk) == m.MSK_BYTES == 64
    assert msk[:16] == CLIENT_SEND_KEY_128  # MasterReceiveKey, in the authenticator's words
    assert msk[16:32] == SEND_START_KEY_128  # MasterSendKey
    assert msk[32:] == bytes(32)


def test_des_key_expansion_sets_odd_parity() -> None:
    key = m._des_key(bytes.fromhex("44EBBA8D5312B8"))
    assert all(bin(b).count("1") % 2 == 1 for b in key)
    # the 56 key bits survive in the top 7 bits of each octet
    bits = "".join(f"{b >> 1:07b}" for b in key)
    assert int(bits, 2) == 0x44EBBA8D5312B8


def test_primitives_refuse_wrong_lengths() -> None:
    with pytest.raises(ValueError):
        m.challenge_hash(PEER_CHALLENGE[:15], AUTHENTICATOR_CHALLENGE, USER)
    with pytest.raises(ValueError):
        m.challenge_response(CHALLENGE + b"\x00", PASSWORD_HASH)
    with pytest.raises(ValueError):
        m.get_master_key(PASSWORD_HASH_HASH, NT_RESPONSE[:-1])


def test_non_ascii_and_supplementary_passwords_are_utf16() -> None:
    assert m.password_utf16le("Pässwörd") == "Pässwörd".encode("utf-16-le")
    assert m.password_utf16le("\U0001f511") == b"\x3d\xd8\x11\xdd"  # a surrogate pair, as Windows stores it
    assert m.password_utf16le("a\ud800") == b"a\x00\x00\xd8"  # a lone surrogate is kept, not an error
    assert len(m.password_utf16le("x" * 256)) == 512
    with pytest.raises(ValueError):
        m.password_utf16le("x" * 257)
    with pytest.raises(TypeError):
        m.password_utf16le(b"clientPass")  # type: ignore[arg-type]
