"""The CHILD_SA's KEYMAT cut into the two ESP SAs (RFC 7296 §2.17):
KEYMAT = prf+(SK_d, [g^ir (new) |] Ni | Nr); the initiator-to-responder encryption key, its integrity key,
then the responder-to-initiator pair. We are the initiator, so the first pair protects what we send (under
the responder's SPI) and the second what we receive (under ours). `g^ir` only for a CHILD_SA made or rekeyed
by CREATE_CHILD_SA with PFS."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from vpndoctor.esp.sa import EspKeys, EspTransform, InboundSa, OutboundSa
from vpndoctor.ike.keys import prf_plus


@dataclass(frozen=True)
class ChildSaKeys:
    out: EspKeys  # initiator -> responder
    into: EspKeys  # responder -> initiator

    def __repr__(self) -> str:
        return "ChildSaKeys(<secret>)"


def split_keymat(transform: EspTransform, keymat: bytes) -> ChildSaKeys:
    e, i = transform.encr_key_bytes, transform.integ_key_bytes
    if len(keymat) != 2 * (e + i):
        raise ValueError(f"KEYMAT of {len(keymat)} octets for a transform that needs {2 * (e + i)}")
    return ChildSaKeys(
        out=EspKeys(keymat[:e], keymat[e : e + i]),
        into=EspKeys(keymat[e + i : 2 * e + i], keymat[2 * e + i :]),
    )


def derive_keymat(
    prf_id: int, sk_d: bytes, nonce_i: bytes, nonce_r: bytes, transform: EspTransform, shared: bytes = b""
) -> ChildSaKeys:
    """RFC 7296 §2.17; `shared`: the new DH shared secret of a CREATE_CHILD_SA with PFS."""
    length = 2 * (transform.encr_key_bytes + transform.integ_key_bytes)
    return split_keymat(transform, prf_plus(prf_id, sk_d, shared + nonce_i + nonce_r, length))


def sa_pair(
    transform: EspTransform,
    keys: ChildSaKeys,
    *,
    spi_in: bytes,
    spi_out: bytes,
    rng: Callable[[int], bytes],
) -> tuple[OutboundSa, InboundSa]:
    """Our outbound SA (the responder's SPI, the initiator's keys) and inbound SA (our SPI, its keys)."""
    return (
        OutboundSa(spi=spi_out, transform=transform, keys=keys.out, rng=rng),
        InboundSa(spi=spi_in, transform=transform, keys=keys.into),
    )
