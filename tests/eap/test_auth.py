"""The AUTH payloads after EAP (RFC 7296 §2.16), checked against an independent computation with the
standard library's hmac: prf(prf(MSK, "Key Pad for IKEv2"), <SignedOctets>) for every HMAC PRF, the SK_pi /
SK_pr fallback without an MSK, the responder check, and the MS-CHAPv2 MSK from a real peer run."""

from __future__ import annotations

import hashlib
import hmac

import pytest

from tests.eap import NT_RESPONSE, PASSWORD, PASSWORD_HASH, USERNAME, fixed_rng
from tests.eap.authenticator import Authenticator
from vpndoctor.eap import mschapv2 as m
from vpndoctor.eap.auth import (
    KEY_PAD,
    initiator_eap_auth,
    initiator_signed_octets,
    shared_key_auth,
    verify_responder_eap_auth,
)
from vpndoctor.eap.peer import EapPeer
from vpndoctor.ike.auth import AuthResult, responder_signed_octets
from vpndoctor.ike.constants import AuthMethod, IdType, PrfId
from vpndoctor.ike.errors import MalformedMessage
from vpndoctor.ike.payloads import AuthPayload, IdPayload

HASHES = {
    PrfId.HMAC_SHA1: hashlib.sha1,
    PrfId.HMAC_SHA2_256: hashlib.sha256,
    PrfId.HMAC_SHA2_384: hashlib.sha384,
    PrfId.HMAC_SHA2_512: hashlib.sha512,
}
SA_INIT_REQUEST = b"IKE_SA_INIT request" + bytes(range(60))
SA_INIT_RESPONSE = b"IKE_SA_INIT response" + bytes(range(200, 256))
NONCE_I = bytes(range(32))
NONCE_R = bytes(range(100, 132))
IDI = IdPayload(IdType.RFC822_ADDR, b"user@contoso.com", responder=False).encode_body()
IDR = IdPayload(IdType.FQDN, b"vpn.contoso.com", responder=True).encode_body()
MSK = m.msk(PASSWORD_HASH, NT_RESPONSE)


def reference_auth(
    prf: PrfId, key: bytes, sk_p: bytes, message: bytes, nonce: bytes, id_body: bytes
) -> bytes:
    digest = HASHES[prf]
    maced_id = hmac.new(sk_p, id_body, digest).digest()
    padded_key = hmac.new(key, b"Key Pad for IKEv2", digest).digest()
    return hmac.new(padded_key, message + nonce + maced_id, digest).digest()


def test_key_pad_is_17_octets_without_nul() -> None:
    assert KEY_PAD == b"Key Pad for IKEv2" and len(KEY_PAD) == 17


@pytest.mark.parametrize("prf", list(HASHES))
def test_initiator_auth_matches_the_reference(prf: PrfId) -> None:
    sk_pi = bytes([prf]) * HASHES[prf]().digest_size
    payload = initiator_eap_auth(
        prf, MSK, sk_pi=sk_pi, sa_init_request=SA_INIT_REQUEST, nonce_r=NONCE_R, idi_body=IDI
    )
    assert isinstance(payload, AuthPayload) and payload.method == AuthMethod.SHARED_KEY
    assert payload.data == reference_auth(prf, MSK, sk_pi, SA_INIT_REQUEST, NONCE_R, IDI)
    assert len(payload.data) == HASHES[prf]().digest_size
    signed = initiator_signed_octets(SA_INIT_REQUEST, NONCE_R, sk_pi, IDI, prf)
    assert signed == SA_INIT_REQUEST + NONCE_R + hmac.new(sk_pi, IDI, HASHES[prf]).digest()
    assert payload.data == shared_key_auth(prf, MSK, signed)


@pytest.mark.parametrize("prf", list(HASHES))
def test_responder_auth_verifies(prf: PrfId) -> None:
    sk_pr = b"\x5a" * HASHES[prf]().digest_size
    good = reference_auth(prf, MSK, sk_pr, SA_INIT_RESPONSE, NONCE_I, IDR)

    def verify(method: int, data: bytes) -> AuthResult:
        return verify_responder_eap_auth(
            method,
            data,
            prf,
            MSK,
            sk_pr=sk_pr,
            sa_init_response=SA_INIT_RESPONSE,
            nonce_i=NONCE_I,
            idr_body=IDR,
        )

    result = verify(AuthMethod.SHARED_KEY, good)
    assert result.verified and result.reason is None and "EAP MSK" in result.method_name
    result = verify(AuthMethod.SHARED_KEY, bytes([good[0] ^ 1]) + good[1:])
    assert not result.verified and result.reason is not None and "does not match" in result.reason
    assert not verify(AuthMethod.SHARED_KEY, good[:-1]).verified
    result = verify(AuthMethod.RSA_SIG, good)
    assert not result.verified and result.reason is not None and "RSA_SIG" in result.reason
    # The two directions use the same formula over different octets: our AUTH never verifies as theirs.
    ours = initiator_eap_auth(
        prf, MSK, sk_pi=sk_pr, sa_init_request=SA_INIT_REQUEST, nonce_r=NONCE_R, idi_body=IDI
    )
    assert not verify(AuthMethod.SHARED_KEY, ours.data).verified
    assert responder_signed_octets(SA_INIT_RESPONSE, NONCE_I, sk_pr, IDR, prf) == initiator_signed_octets(
        SA_INIT_RESPONSE, NONCE_I, sk_pr, IDR, prf
    )


@pytest.mark.parametrize("prf", list(HASHES))
@pytest.mark.parametrize("no_msk", [None, b""])
def test_without_an_msk_sk_pi_and_sk_pr_key_the_auth(prf: PrfId, no_msk: bytes | None) -> None:
    sk_pi, sk_pr = b"\x11" * 20, b"\x22" * 20
    payload = initiator_eap_auth(
        prf, no_msk, sk_pi=sk_pi, sa_init_request=SA_INIT_REQUEST, nonce_r=NONCE_R, idi_body=IDI
    )
    assert payload.data == reference_auth(prf, sk_pi, sk_pi, SA_INIT_REQUEST, NONCE_R, IDI)
    theirs = reference_auth(prf, sk_pr, sk_pr, SA_INIT_RESPONSE, NONCE_I, IDR)
    result = verify_responder_eap_auth(
        AuthMethod.SHARED_KEY,
        theirs,
        prf,
        no_msk,
        sk_pr=sk_pr,
        sa_init_response=SA_INIT_RESPONSE,
        nonce_i=NONCE_I,
        idr_body=IDR,
    )
    assert result.verified and "SK_pr" in result.method_name


@pytest.mark.parametrize("prf", list(HASHES))
def test_the_32_zero_bytes_of_the_mschapv2_msk_do_not_change_auth(prf: PrfId) -> None:
    # strongSwan keys AUTH with all 64 bytes, Android's IKE library with the first 32: HMAC makes them equal.
    assert MSK[32:] == bytes(32)
    assert shared_key_auth(prf, MSK, b"octets") == shared_key_auth(prf, MSK[:32], b"octets")


def test_unsupported_prf_is_the_ike_codecs_error() -> None:
    with pytest.raises(MalformedMessage):
        shared_key_auth(PrfId.AES128_XCBC, MSK, b"octets")


def test_both_ends_of_a_real_conversation_agree() -> None:
    server = Authenticator({USERNAME: PASSWORD})
    peer = EapPeer(USERNAME, m.MsChapV2Method(USERNAME, PASSWORD, rng=fixed_rng()))
    packet = server.challenge_request()
    while (step := peer.receive(packet)).reply is not None:
        packet = server.handle(step.reply)
    assert peer.msk is not None and server.msk is not None
    prf = PrfId.HMAC_SHA2_256
    sk_pi, sk_pr = b"\x01" * 32, b"\x02" * 32
    ours = initiator_eap_auth(
        prf, peer.msk, sk_pi=sk_pi, sa_init_request=SA_INIT_REQUEST, nonce_r=NONCE_R, idi_body=IDI
    )
    assert ours.data == reference_auth(prf, server.msk, sk_pi, SA_INIT_REQUEST, NONCE_R, IDI)
    theirs = reference_auth(prf, server.msk, sk_pr, SA_INIT_RESPONSE, NONCE_I, IDR)
    result = verify_responder_eap_auth(
        AuthMethod.SHARED_KEY,
        theirs,
        prf,
        peer.msk,
        sk_pr=sk_pr,
        sa_init_response=SA_INIT_RESPONSE,
        nonce_i=NONCE_I,
        idr_body=IDR,
    )
    assert result.verified
