"""Tests of the EAP package. The constants are the worked example of RFC 2759 §9.2 and RFC 3079 §3.5.3 (user
"User", password "clientPass"); they are shared by the vector, state-machine and AUTH tests."""

from __future__ import annotations

from collections.abc import Callable

USERNAME = "User"
PASSWORD = "clientPass"
PASSWORD_UTF16LE = bytes.fromhex("63006C00690065006E0074005000610073007300")
AUTHENTICATOR_CHALLENGE = bytes.fromhex("5B5D7C7D7B3F2F3E3C2C602132262628")
PEER_CHALLENGE = bytes.fromhex("21402324255E262A28295F2B3A337C7E")
CHALLENGE = bytes.fromhex("D02E4386BCE91226")
PASSWORD_HASH = bytes.fromhex("44EBBA8D5312B8D611474411F56989AE")
NT_RESPONSE = bytes.fromhex("82309ECD8D708B5EA08FAA3981CD83544233114A3D85D6DF")
PASSWORD_HASH_HASH = bytes.fromhex("41C00C584BD2D91C4017A2A12FA59F3F")
AUTHENTICATOR_RESPONSE = "S=407A5589115FD0D6209F510FE9C04566932CDA56"
# RFC 3079 §3.5.3
MASTER_KEY = bytes.fromhex("FDECE3717A8C838CB388E527AE3CDD31")
SEND_START_KEY_128 = bytes.fromhex("8B7CDC149B993A1BA118CB153F56DCCB")  # the server's send key


def fixed_rng(value: bytes = PEER_CHALLENGE) -> Callable[[int], bytes]:
    """An rng that hands out `value` (truncated or repeated to the size asked)."""

    def rng(n: int) -> bytes:
        return (value * (n // len(value) + 1))[:n]

    return rng
