"""IKE proposals written the strongSwan way ("aes256-sha256-modp2048", "aes256gcm16-prfsha384-ecp384"),
turned into SA payload proposals, and the suite a responder chose turned back into a `CipherSuite`."""

from __future__ import annotations

from dataclasses import dataclass

from vpndoctor.ike.constants import DhGroup, EncrId, IntegId, PrfId, ProtocolId, TransformType
from vpndoctor.ike.errors import MalformedMessage
from vpndoctor.ike.keys import CipherSuite
from vpndoctor.ike.payloads import Proposal, Transform

_ENCR: dict[str, tuple[int, int | None]] = {
    "aes128": (EncrId.AES_CBC, 128),
    "aes192": (EncrId.AES_CBC, 192),
    "aes256": (EncrId.AES_CBC, 256),
    "3des": (EncrId.DES3, None),
    "aes128gcm16": (EncrId.AES_GCM_16, 128),
    "aes256gcm16": (EncrId.AES_GCM_16, 256),
    "aes128gcm128": (EncrId.AES_GCM_16, 128),
    "aes256gcm128": (EncrId.AES_GCM_16, 256),
}
_INTEG: dict[str, tuple[int, int]] = {  # name -> (integrity, the PRF strongSwan pairs with it)
    "sha1": (IntegId.HMAC_SHA1_96, PrfId.HMAC_SHA1),
    "sha256": (IntegId.HMAC_SHA2_256_128, PrfId.HMAC_SHA2_256),
    "sha384": (IntegId.HMAC_SHA2_384_192, PrfId.HMAC_SHA2_384),
    "sha512": (IntegId.HMAC_SHA2_512_256, PrfId.HMAC_SHA2_512),
}
_PRF: dict[str, int] = {
    "prfsha1": PrfId.HMAC_SHA1,
    "prfsha256": PrfId.HMAC_SHA2_256,
    "prfsha384": PrfId.HMAC_SHA2_384,
    "prfsha512": PrfId.HMAC_SHA2_512,
}
_DH: dict[str, int] = {
    "modp1024": DhGroup.MODP_1024,
    "modp1536": DhGroup.MODP_1536,
    "modp2048": DhGroup.MODP_2048,
    "modp3072": DhGroup.MODP_3072,
    "modp4096": DhGroup.MODP_4096,
    "ecp256": DhGroup.ECP_256,
    "ecp384": DhGroup.ECP_384,
    "ecp521": DhGroup.ECP_521,
    "x25519": DhGroup.CURVE25519,
    "curve25519": DhGroup.CURVE25519,
}

# What vpndoctor offers unless told otherwise: modern suites first, then what Windows and old servers
# still need (AES/3DES with SHA-1 and MODP-1024).
DEFAULT_PROPOSALS = (
    "aes256-sha256-modp2048",
    "aes128-sha256-ecp256",
    "aes256gcm16-prfsha384-ecp384",
    "aes256-sha384-ecp384",
    "aes256-sha256-x25519",
    "aes256-sha1-modp1024",
    "3des-sha1-modp1024",
)


class ProposalSyntaxError(ValueError):
    """A proposal string that does not parse (the CLI turns it into a usage error)."""


@dataclass(frozen=True)
class ProposalSpec:
    text: str
    encr: tuple[tuple[int, int | None], ...]
    integ: tuple[int, ...]
    prf: tuple[int, ...]
    dh: tuple[int, ...]

    def to_proposal(self, number: int) -> Proposal:
        transforms: list[Transform] = []
        transforms += [Transform(TransformType.ENCR, e, bits) for e, bits in self.encr]
        transforms += [Transform(TransformType.PRF, p) for p in self.prf]
        transforms += [Transform(TransformType.INTEG, i) for i in self.integ]
        transforms += [Transform(TransformType.DH, d) for d in self.dh]
        return Proposal(number=number, protocol=ProtocolId.IKE, spi=b"", transforms=tuple(transforms))


def parse_proposal(text: str) -> ProposalSpec:
    encr: list[tuple[int, int | None]] = []
    integ: list[int] = []
    prf: list[int] = []
    dh: list[int] = []
    for token in text.strip().lower().split("-"):
        if token in _ENCR:
            encr.append(_ENCR[token])
        elif token in _INTEG:
            i, p = _INTEG[token]
            integ.append(i)
            prf.append(p)
        elif token in _PRF:
            prf.append(_PRF[token])
        elif token in _DH:
            dh.append(_DH[token])
        else:
            known = ", ".join([*_ENCR, *_INTEG, *_PRF, *_DH])
            raise ProposalSyntaxError(f"unknown algorithm '{token}' in proposal '{text}'; known: {known}")
    aead = [e for e, _ in encr if e == EncrId.AES_GCM_16]
    if not encr or not dh or not prf:
        raise ProposalSyntaxError(f"proposal '{text}' needs an encryption, a PRF/integrity and a DH group")
    if aead and len(aead) != len(encr):
        raise ProposalSyntaxError(f"proposal '{text}' mixes AEAD and non-AEAD ciphers")
    if aead:
        integ = []
    elif not integ:
        raise ProposalSyntaxError(f"proposal '{text}' needs an integrity algorithm (e.g. sha256)")
    return ProposalSpec(
        text=text,
        encr=tuple(dict.fromkeys(encr)),
        integ=tuple(dict.fromkeys(integ)),
        prf=tuple(dict.fromkeys(prf)),
        dh=tuple(dict.fromkeys(dh)),
    )


def suite_from_proposal(proposal: Proposal) -> CipherSuite:
    """The suite a responder chose: exactly one transform of each type (RFC 7296 §3.3.6)."""
    by_type: dict[int, list[Transform]] = {}
    for t in proposal.transforms:
        by_type.setdefault(t.type, []).append(t)
    for ttype in (TransformType.ENCR, TransformType.PRF, TransformType.DH):
        if len(by_type.get(ttype, [])) != 1:
            raise MalformedMessage(
                0,
                "exactly one transform of each type in the chosen proposal",
                f"{len(by_type.get(ttype, []))} transforms of type {int(ttype)}",
            )
    integ = by_type.get(TransformType.INTEG, [])
    if len(integ) > 1:
        raise MalformedMessage(0, "at most one integrity transform", f"{len(integ)}")
    encr = by_type[TransformType.ENCR][0]
    integ_id = integ[0].id if integ and integ[0].id != IntegId.NONE else None
    return CipherSuite(
        encr=encr.id,
        encr_key_bits=encr.key_length,
        prf=by_type[TransformType.PRF][0].id,
        integ=integ_id,
        dh=by_type[TransformType.DH][0].id,
    )


def offered(specs: tuple[ProposalSpec, ...], proposal: Proposal) -> bool:
    """Did we offer what the responder chose? (A responder must pick from our proposals.)"""
    for spec in specs:
        ok = True
        for t in proposal.transforms:
            if t.type == TransformType.ENCR:
                ok &= (t.id, t.key_length) in spec.encr
            elif t.type == TransformType.PRF:
                ok &= t.id in spec.prf
            elif t.type == TransformType.INTEG:
                ok &= t.id in spec.integ or (t.id == IntegId.NONE and not spec.integ)
            elif t.type == TransformType.DH:
                ok &= t.id in spec.dh
        if ok:
            return True
    return False


# --- ESP (CHILD_SA) proposals ---

# ESP knows single DES and NULL encryption too: Windows still offers them (below); IKE never does here.
_ESP_ENCR: dict[str, tuple[int, int | None]] = {
    **_ENCR,
    "des": (EncrId.DES, None),
    "null": (EncrId.NULL, None),
}
_ESN: dict[str, int] = {"noesn": 0, "esn": 1}

# What a Windows client (7 to 11, built-in defaults, no PowerShell IPsec policy) offers for the CHILD_SA in
# its first IKE_AUTH: one proposal per cipher, each with HMAC-SHA1-96 and no extended sequence numbers, and
# no DH group (no PFS). strongSwan's interoperability notes give the CBC list as
# "esp = aes256-aes128-3des-des-null-sha1" (docs.strongswan.org, interop/windowsClients); Windows 10 1803+
# and 11 add AES-GCM-256.
WINDOWS_ESP_PROPOSALS = ("aes256-sha1", "aes128-sha1", "3des-sha1", "des-sha1", "null-sha1", "aes256gcm16")


@dataclass(frozen=True)
class EspProposalSpec:
    """One ESP proposal in strongSwan's esp_proposals syntax: ciphers, integrity algorithms, optional DH
    groups (PFS, used only when a CHILD_SA is rekeyed or made by CREATE_CHILD_SA) and ESN modes."""

    text: str
    encr: tuple[tuple[int, int | None], ...]
    integ: tuple[int, ...]
    dh: tuple[int, ...]
    esn: tuple[int, ...]

    def to_proposal(self, number: int, spi: bytes) -> Proposal:
        transforms: list[Transform] = []
        transforms += [Transform(TransformType.ENCR, e, bits) for e, bits in self.encr]
        transforms += [Transform(TransformType.INTEG, i) for i in self.integ]
        transforms += [Transform(TransformType.DH, d) for d in self.dh]
        transforms += [Transform(TransformType.ESN, e) for e in self.esn]
        return Proposal(number=number, protocol=ProtocolId.ESP, spi=spi, transforms=tuple(transforms))


def parse_esp_proposal(text: str) -> EspProposalSpec:
    """ "aes256-sha1", "aes256gcm16", "aes128-sha256-modp2048-esn": strongSwan's esp_proposals syntax. No PRF
    (ESP has none); AEAD ciphers take no integrity algorithm; ESN defaults to noesn."""
    encr: list[tuple[int, int | None]] = []
    integ: list[int] = []
    dh: list[int] = []
    esn: list[int] = []
    for token in text.strip().lower().split("-"):
        if token in _ESP_ENCR:
            encr.append(_ESP_ENCR[token])
        elif token in _INTEG:
            integ.append(_INTEG[token][0])
        elif token in _DH:
            dh.append(_DH[token])
        elif token in _ESN:
            esn.append(_ESN[token])
        else:
            known = ", ".join([*_ESP_ENCR, *_INTEG, *_DH, *_ESN])
            raise ProposalSyntaxError(f"unknown algorithm '{token}' in ESP proposal '{text}'; known: {known}")
    aead = [e for e, _ in encr if e == EncrId.AES_GCM_16]
    if not encr:
        raise ProposalSyntaxError(f"ESP proposal '{text}' needs an encryption algorithm (e.g. aes256)")
    if aead and len(aead) != len(encr):
        raise ProposalSyntaxError(f"ESP proposal '{text}' mixes AEAD and non-AEAD ciphers")
    if aead and integ:
        raise ProposalSyntaxError(f"ESP proposal '{text}': an AEAD cipher takes no integrity algorithm")
    if not aead and not integ:
        raise ProposalSyntaxError(f"ESP proposal '{text}' needs an integrity algorithm (e.g. sha1)")
    return EspProposalSpec(
        text=text,
        encr=tuple(dict.fromkeys(encr)),
        integ=tuple(dict.fromkeys(integ)),
        dh=tuple(dict.fromkeys(dh)),
        esn=tuple(dict.fromkeys(esn or [0])),
    )


@dataclass(frozen=True)
class EspSuite:
    """The ESP transforms a responder chose for a CHILD_SA (one of each type it sent)."""

    encr: int
    encr_key_bits: int | None
    integ: int | None  # None for AES-GCM
    dh: int | None
    esn: bool

    @property
    def text(self) -> str:
        """strongSwan style: "aes256-sha1", "aes256gcm16", "3des-sha1-modp1024-esn"."""
        encr = {v: k for k, v in _ESP_ENCR.items() if not k.endswith("gcm128")}.get(
            (self.encr, self.encr_key_bits), f"encr{self.encr}"
        )
        parts = [encr]
        if self.integ is not None:
            parts.append({v[0]: k for k, v in _INTEG.items()}.get(self.integ, f"integ{self.integ}"))
        if self.dh is not None:
            parts.append({v: k for k, v in _DH.items() if k != "curve25519"}.get(self.dh, f"dh{self.dh}"))
        if self.esn:
            parts.append("esn")
        return "-".join(parts)


def esp_suite_from_proposal(proposal: Proposal) -> EspSuite:
    """The CHILD_SA suite a responder chose: one encryption transform, at most one of the others (RFC 7296
    §3.3.6), a 4-byte SPI (RFC 4303). Raises MalformedMessage otherwise."""
    if proposal.protocol != ProtocolId.ESP:
        raise MalformedMessage(0, "an ESP proposal for the CHILD_SA", f"protocol {proposal.protocol}")
    if len(proposal.spi) != 4:
        raise MalformedMessage(0, "a 4-byte ESP SPI", f"{len(proposal.spi)} bytes")
    by_type: dict[int, list[Transform]] = {}
    for t in proposal.transforms:
        by_type.setdefault(t.type, []).append(t)
    if len(by_type.get(TransformType.ENCR, [])) != 1:
        raise MalformedMessage(
            0, "exactly one encryption transform", f"{len(by_type.get(TransformType.ENCR, []))}"
        )
    for ttype in (TransformType.INTEG, TransformType.DH, TransformType.ESN):
        if len(by_type.get(ttype, [])) > 1:
            raise MalformedMessage(0, f"at most one transform of type {int(ttype)}", "several")
    encr = by_type[TransformType.ENCR][0]
    integ = by_type.get(TransformType.INTEG, [])
    dh = by_type.get(TransformType.DH, [])
    esn = by_type.get(TransformType.ESN, [])
    return EspSuite(
        encr=encr.id,
        encr_key_bits=encr.key_length,
        integ=integ[0].id if integ and integ[0].id != IntegId.NONE else None,
        dh=dh[0].id if dh and dh[0].id != DhGroup.NONE else None,
        esn=bool(esn and esn[0].id == 1),
    )


def esp_offered(specs: tuple[EspProposalSpec, ...], suite: EspSuite) -> bool:
    """Did we offer what the responder chose? (A DH group in the answer must be one we offered, and none is
    needed: RFC 7296 §1.2 derives the first CHILD_SA's keys from the IKE SA.)"""
    for spec in specs:
        if (
            (suite.encr, suite.encr_key_bits) in spec.encr
            and (suite.integ in spec.integ if spec.integ else suite.integ is None)
            and (suite.dh is None or suite.dh in spec.dh)
            and int(suite.esn) in spec.esn
        ):
            return True
    return False
