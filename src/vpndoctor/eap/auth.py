"""The AUTH payloads that close an EAP-authenticated IKE_AUTH (RFC 7296 §2.16): ours, and the check of the
responder's.

After EAP succeeds both sides send AUTH with method 2 (Shared Key Message Integrity Code), keyed with the MSK:
AUTH = prf(prf(MSK, "Key Pad for IKEv2"), <SignedOctets>) (RFC 7296 §2.15). The initiator signs
RealMessage1 | NonceRData | prf(SK_pi, IDi'), the responder RealMessage2 | NonceIData | prf(SK_pr, IDr'), with
the IDr' the responder sent in its first IKE_AUTH response. A method that yields no MSK (None or empty) makes
both sides use SK_pi and SK_pr instead (RFC 7296 §2.16, as strongSwan's keymat does).

Key length: RFC 7296 §2.15 requires the shared secret to be exactly the PRF's key size only for PRFs with a
fixed-size key (AES-XCBC-PRF-128 as RFC 3664 defined it). The HMAC PRFs, the only ones `ike.keys.prf`
implements (it raises UnsupportedSuite for the others), take any key length: HMAC zero-pads a short key to the
hash's block size and hashes a longer one (RFC 2104). So the MSK is used as it is, whatever its length; the
64-byte MS-CHAPv2 MSK (32 key bytes and 32 zero bytes) and its first 32 bytes give the same AUTH.
"""

from __future__ import annotations

import hmac

from vpndoctor.ike.auth import AuthResult, responder_signed_octets
from vpndoctor.ike.constants import AuthMethod, PrfId, name_of
from vpndoctor.ike.keys import prf as prf_function
from vpndoctor.ike.payloads import AuthPayload

__all__ = [
    "KEY_PAD",
    "initiator_eap_auth",
    "initiator_signed_octets",
    "shared_key_auth",
    "verify_responder_eap_auth",
]

KEY_PAD = b"Key Pad for IKEv2"  # 17 ASCII octets, no terminating NUL (RFC 7296 §2.15)


def initiator_signed_octets(
    sa_init_request: bytes, nonce_r: bytes, sk_pi: bytes, idi_body: bytes, prf: int
) -> bytes:
    """InitiatorSignedOctets = RealMessage1 | NonceRData | prf(SK_pi, IDi') (RFC 7296 §2.15): the whole
    IKE_SA_INIT request as sent (the last one, after a COOKIE or INVALID_KE_PAYLOAD round), the responder's
    nonce data, and the PRF of the IDi payload body (ID Type, three reserved octets, identification data)."""
    return sa_init_request + nonce_r + prf_function(prf, sk_pi, idi_body)


def shared_key_auth(prf: int, shared_key: bytes, signed_octets: bytes) -> bytes:
    """AUTH = prf(prf(Shared Secret, "Key Pad for IKEv2"), <SignedOctets>) (RFC 7296 §2.15)."""
    return prf_function(prf, prf_function(prf, shared_key, KEY_PAD), signed_octets)


def initiator_eap_auth(
    prf: int,
    msk: bytes | None,
    *,
    sk_pi: bytes,
    sa_init_request: bytes,
    nonce_r: bytes,
    idi_body: bytes,
) -> AuthPayload:
    """Our AUTH payload for the IKE_AUTH request that follows EAP-Success: method 2 keyed with the MSK (SK_pi
    when the method produced none)."""
    signed = initiator_signed_octets(sa_init_request, nonce_r, sk_pi, idi_body, prf)
    return AuthPayload(AuthMethod.SHARED_KEY, shared_key_auth(prf, msk or sk_pi, signed))


def verify_responder_eap_auth(
    method: int,
    auth_data: bytes,
    prf: int,
    msk: bytes | None,
    *,
    sk_pr: bytes,
    sa_init_response: bytes,
    nonce_i: bytes,
    idr_body: bytes,
) -> AuthResult:
    """Is the responder's last AUTH the MSK-keyed MIC over its signed octets? `idr_body` is the IDr payload
    body from its first IKE_AUTH response (the last one carries no IDr). A wrong method or value gives
    verified=False with a reason; nothing here raises on the responder's data."""
    keyed = "EAP MSK" if msk else "SK_pr, the EAP method gave no MSK"
    method_name = f"Shared Key Message Integrity Code ({keyed})"
    prf_name = name_of(PrfId, prf)
    if method != AuthMethod.SHARED_KEY:
        return AuthResult(
            False,
            method_name,
            prf_name,
            f"after EAP the responder must use Shared Key Message Integrity Code (2), it used "
            f"{name_of(AuthMethod, method)}",
        )
    signed = responder_signed_octets(sa_init_response, nonce_i, sk_pr, idr_body, prf)
    expected = shared_key_auth(prf, msk or sk_pr, signed)
    if not hmac.compare_digest(expected, auth_data):
        return AuthResult(
            False,
            method_name,
            prf_name,
            f"the responder's AUTH does not match the one computed from the {keyed.split(',')[0]} "
            "(a different MSK, or different IKE_SA_INIT bytes, nonce or IDr)",
        )
    return AuthResult(True, method_name, prf_name, None)
