"""CREATE_CHILD_SA for rekeying, sans-I/O: the request payloads and what the answer means.

- A CHILD_SA rekey (RFC 7296 §1.3.3): SA (the suite in use, a fresh SPI, and the PFS group when there is
  one), Ni, [KEi], N(REKEY_SA) naming the SPI of the CHILD_SA being rekeyed as we receive it, TSi, TSr. Its
  KEYMAT = prf+(SK_d, [g^ir (new) |] Ni | Nr) (§2.17), cut by `esp.keymat`.
- An IKE SA rekey (§1.3.2): SA (the IKE suite in use, our new 8-octet SPI), Ni, KEi; SKEYSEED =
  prf(SK_d (old), g^ir (new) | Ni | Nr), then the seven keys from prf+(SKEYSEED, Ni | Nr | SPIi | SPIr)
  (§2.18).
Time and randomness come in as arguments; the caller sends through the held IKE SA (initiator.send_request).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from vpndoctor.ike.constants import DhGroup, NotifyType, ProtocolId, TransformType, name_of
from vpndoctor.ike.dh import KeyExchange, new_key_exchange
from vpndoctor.ike.errors import MalformedMessage
from vpndoctor.ike.keys import CipherSuite, IkeKeys, prf, split_skeyseed
from vpndoctor.ike.payloads import (
    KePayload,
    NoncePayload,
    NotifyPayload,
    Payload,
    Proposal,
    SaPayload,
    TrafficSelector,
    Transform,
    TsPayload,
)
from vpndoctor.ike.proposals import EspSuite

Rng = Callable[[int], bytes]
NONCE_BYTES = 32


@dataclass
class RekeyRequest:
    """What we sent, kept to read the answer with (the DH private value, our nonce and SPI)."""

    nonce_i: bytes
    spi_i: bytes  # the new CHILD_SA's inbound SPI (4 octets) or the new IKE SA's SPIi (8 octets)
    ke: KeyExchange | None
    payloads: list[Payload]

    def __repr__(self) -> str:
        return f"RekeyRequest(spi_i={self.spi_i.hex()})"


@dataclass(frozen=True)
class RekeyAnswer:
    """The answer to a CREATE_CHILD_SA: `error` names the error notify when it was refused; else the
    responder's SPI, nonce and (with PFS) the DH shared secret."""

    error: str | None
    error_data: bytes = b""
    spi_r: bytes = b""
    nonce_r: bytes = b""
    shared: bytes = b""
    detail: str | None = None

    def __repr__(self) -> str:
        return f"RekeyAnswer(error={self.error}, spi_r={self.spi_r.hex()})"


def _esp_transforms(suite: EspSuite, pfs_group: int | None) -> tuple[Transform, ...]:
    out = [Transform(TransformType.ENCR, suite.encr, suite.encr_key_bits)]
    if suite.integ is not None:
        out.append(Transform(TransformType.INTEG, suite.integ))
    if pfs_group:
        out.append(Transform(TransformType.DH, pfs_group))
    out.append(Transform(TransformType.ESN, 1 if suite.esn else 0))
    return tuple(out)


def child_rekey_request(
    suite: EspSuite,
    old_spi_in: bytes,
    ts_i: tuple[TrafficSelector, ...],
    ts_r: tuple[TrafficSelector, ...],
    pfs_group: int | None,
    rng: Rng,
) -> RekeyRequest:
    spi = rng(4)
    nonce = rng(NONCE_BYTES)
    ke = new_key_exchange(pfs_group, rng) if pfs_group else None
    payloads: list[Payload] = [
        NotifyPayload(type=NotifyType.REKEY_SA, protocol=ProtocolId.ESP, spi=old_spi_in),
        SaPayload(proposals=(Proposal(1, ProtocolId.ESP, spi, _esp_transforms(suite, pfs_group)),)),
        NoncePayload(data=nonce),
    ]
    if ke is not None:
        payloads.append(KePayload(group=ke.group, data=ke.public_bytes()))
    payloads += [TsPayload(selectors=ts_i, responder=False), TsPayload(selectors=ts_r, responder=True)]
    return RekeyRequest(nonce_i=nonce, spi_i=spi, ke=ke, payloads=payloads)


def ike_rekey_request(suite: CipherSuite, rng: Rng) -> RekeyRequest:
    spi = rng(8)
    nonce = rng(NONCE_BYTES)
    ke = new_key_exchange(suite.dh, rng)
    transforms = [Transform(TransformType.ENCR, suite.encr, suite.encr_key_bits)]
    transforms.append(Transform(TransformType.PRF, suite.prf))
    if suite.integ:
        transforms.append(Transform(TransformType.INTEG, suite.integ))
    transforms.append(Transform(TransformType.DH, suite.dh))
    payloads: list[Payload] = [
        SaPayload(proposals=(Proposal(1, ProtocolId.IKE, spi, tuple(transforms)),)),
        NoncePayload(data=nonce),
        KePayload(group=ke.group, data=ke.public_bytes()),
    ]
    return RekeyRequest(nonce_i=nonce, spi_i=spi, ke=ke, payloads=payloads)


def read_answer(request: RekeyRequest, payloads: tuple[Payload, ...], *, spi_bytes: int) -> RekeyAnswer:
    """The CREATE_CHILD_SA answer: refused (an error notify), malformed, or the material for new keys."""
    errors = [p for p in payloads if isinstance(p, NotifyPayload) and p.type < 16384]
    if errors:
        return RekeyAnswer(error=name_of(NotifyType, errors[0].type), error_data=errors[0].data)
    sa = next((p for p in payloads if isinstance(p, SaPayload)), None)
    nonce = next((p for p in payloads if isinstance(p, NoncePayload)), None)
    ke = next((p for p in payloads if isinstance(p, KePayload)), None)
    if sa is None or nonce is None or len(sa.proposals) != 1:
        return RekeyAnswer(error=None, detail="the answer carries no single SA proposal and Nonce")
    spi_r = sa.proposals[0].spi
    if len(spi_r) != spi_bytes:
        return RekeyAnswer(error=None, detail=f"an SPI of {len(spi_r)} octets, expected {spi_bytes}")
    if not 16 <= len(nonce.data) <= 256:
        return RekeyAnswer(error=None, detail=f"a nonce of {len(nonce.data)} octets")
    shared = b""
    if request.ke is not None:
        if ke is None or ke.group != request.ke.group:
            return RekeyAnswer(error=None, detail="no KE payload of our group in the answer (PFS)")
        try:
            shared = request.ke.shared_secret(ke.data)
        except MalformedMessage as exc:
            return RekeyAnswer(error=None, detail=f"invalid KE: {exc}")
    return RekeyAnswer(error=None, spi_r=spi_r, nonce_r=nonce.data, shared=shared)


def rekeyed_ike_keys(
    suite: CipherSuite,
    old: IkeKeys,
    shared: bytes,
    nonce_i: bytes,
    nonce_r: bytes,
    spi_i: bytes,
    spi_r: bytes,
) -> IkeKeys:
    """RFC 7296 §2.18: SKEYSEED = prf(SK_d (old), g^ir (new) | Ni | Nr); the rest as in §2.14."""
    skeyseed = prf(suite.prf, old.sk_d, shared + nonce_i + nonce_r)
    return split_skeyseed(suite, skeyseed, nonce_i, nonce_r, spi_i, spi_r)


def group_name(group: int | None) -> str | None:
    return None if not group else name_of(DhGroup, group)
