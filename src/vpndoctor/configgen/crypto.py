"""One IKEv2 policy, two Windows dialects: the values `Set-VpnServerConfiguration -CustomPolicy` (and
`Set-VpnConnectionIPsecConfiguration`) take, and the values of the VPNv2 CSP `<CryptographySuite>` in a
ProfileXML. The names differ (SHA1 vs SHA196, GCMAES128 vs AES_GCM_128), so a policy is kept in canonical
form and spelled per dialect; a server and a profile generated from the same policy always match.
"""

from __future__ import annotations

from typing import Final

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

# canonical -> (cmdlet spelling, CSP spelling). Canonical names are the cmdlet's where the two agree.
ENCRYPTION: Final = {
    "DES3": ("DES3", "DES3"),
    "AES128": ("AES128", "AES128"),
    "AES192": ("AES192", "AES192"),
    "AES256": ("AES256", "AES256"),
    "GCMAES128": ("GCMAES128", "AES_GCM_128"),
    "GCMAES256": ("GCMAES256", "AES_GCM_256"),
}
INTEGRITY: Final = {
    "SHA1": ("SHA1", "SHA196"),
    "SHA256": ("SHA256", "SHA256"),
    "SHA384": ("SHA384", "SHA384"),
}
DH_GROUPS: Final = ("Group2", "Group14", "Group24", "ECP256", "ECP384")
CIPHER_TRANSFORMS: Final = ("DES3", "AES128", "AES192", "AES256", "GCMAES128", "GCMAES192", "GCMAES256")
AUTH_TRANSFORMS: Final = ("SHA196", "SHA256128", "GCMAES128", "GCMAES192", "GCMAES256")
PFS_GROUPS: Final = ("None", "PFS2", "PFS2048", "PFS24", "ECP256", "ECP384", "PFSMM")

# Aliases users paste from either dialect (or Intune) -> canonical.
_ALIASES: Final = {
    "AES_GCM_128": "GCMAES128",
    "AES_GCM_256": "GCMAES256",
    "SHA196": "SHA1",
}

# strongSwan tokens of the canonical names, to prove the two dialects describe one proposal.
STRONGSWAN_ENCRYPTION: Final = {
    "DES3": "3des",
    "AES128": "aes128",
    "AES192": "aes192",
    "AES256": "aes256",
    "GCMAES128": "aes128gcm16",
    "GCMAES256": "aes256gcm16",
}
STRONGSWAN_INTEGRITY: Final = {"SHA1": "sha1", "SHA256": "sha256", "SHA384": "sha384"}
STRONGSWAN_DH: Final = {
    "Group2": "modp1024",
    "Group14": "modp2048",
    "Group24": "modp2048s256",
    "ECP256": "ecp256",
    "ECP384": "ecp384",
}


def _pick(value: str, accepted: tuple[str, ...] | dict[str, tuple[str, str]], aliases: bool = False) -> str:
    key = value.strip().upper()
    if aliases:
        key = _ALIASES.get(key, key)
    by_upper = {a.upper(): a for a in accepted}
    if key not in by_upper:
        raise ValueError(f"{value!r}: expected one of {', '.join(accepted)}")
    return by_upper[key]


class IkePolicy(BaseModel):
    """The IKE (main mode) and ESP (quick mode) transforms, plus lifetimes. Defaults: the Always On VPN
    baseline (AES128/SHA256/Group14, ESP AES128/SHA256-128, PFS2048)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    encryption: str = Field(default="AES128", description="IKE encryption (EncryptionMethod).")
    integrity: str = Field(default="SHA256", description="IKE integrity (IntegrityCheckMethod).")
    dh_group: str = Field(default="Group14", description="IKE Diffie-Hellman group (DHGroup).")
    esp_cipher: str = Field(default="AES128", description="ESP cipher (CipherTransformConstants).")
    esp_integrity: str = Field(
        default="SHA256128", description="ESP integrity (AuthenticationTransformConstants)."
    )
    pfs_group: str = Field(default="PFS2048", description="ESP PFS group (PfsGroup).")
    sa_lifetime_s: int = Field(default=28800, ge=300, le=172800, description="ESP SA lifetime.")
    mm_sa_lifetime_s: int = Field(default=86400, ge=300, le=172800, description="IKE SA lifetime.")
    sa_data_kib: int = Field(default=1024000, ge=1024, le=2147483647, description="ESP SA data limit.")

    @field_validator("encryption")
    @classmethod
    def _enc(cls, v: str) -> str:
        return _pick(v, ENCRYPTION, aliases=True)

    @field_validator("integrity")
    @classmethod
    def _integ(cls, v: str) -> str:
        return _pick(v, INTEGRITY, aliases=True)

    @field_validator("dh_group")
    @classmethod
    def _dh(cls, v: str) -> str:
        return _pick(v, DH_GROUPS)

    @field_validator("esp_cipher")
    @classmethod
    def _cipher(cls, v: str) -> str:
        return _pick(v, CIPHER_TRANSFORMS)

    @field_validator("esp_integrity")
    @classmethod
    def _auth(cls, v: str) -> str:
        return _pick(v, AUTH_TRANSFORMS)

    @field_validator("pfs_group")
    @classmethod
    def _pfs(cls, v: str) -> str:
        return _pick(v, PFS_GROUPS)

    @model_validator(mode="after")
    def _gcm_pairs(self) -> IkePolicy:
        # With AES-GCM, ESP has no separate integrity transform: Windows wants the same GCM constant twice.
        gcm_c, gcm_a = self.esp_cipher.startswith("GCM"), self.esp_integrity.startswith("GCM")
        if (gcm_c or gcm_a) and self.esp_cipher != self.esp_integrity:
            raise ValueError(
                f"esp_cipher {self.esp_cipher} and esp_integrity {self.esp_integrity}: with AES-GCM both "
                "must name the same GCM transform (e.g. GCMAES256 and GCMAES256)"
            )
        return self

    # ---- dialects

    def cmdlet_values(self) -> dict[str, str]:
        """Parameter -> value for Set-VpnServerConfiguration -CustomPolicy (and the client cmdlet)."""
        return {
            "AuthenticationTransformConstants": self.esp_integrity,
            "CipherTransformConstants": self.esp_cipher,
            "DHGroup": self.dh_group,
            "EncryptionMethod": ENCRYPTION[self.encryption][0],
            "IntegrityCheckMethod": INTEGRITY[self.integrity][0],
            "PfsGroup": self.pfs_group,
        }

    def csp_values(self) -> dict[str, str]:
        """Element -> value for the ProfileXML <CryptographySuite> (VPNv2 CSP)."""
        return {
            "AuthenticationTransformConstants": self.esp_integrity,
            "CipherTransformConstants": self.esp_cipher,
            "EncryptionMethod": ENCRYPTION[self.encryption][1],
            "IntegrityCheckMethod": INTEGRITY[self.integrity][1],
            "DHGroup": self.dh_group,
            "PfsGroup": self.pfs_group,
        }

    def strongswan_proposal(self) -> str:
        """The IKE proposal a client with this policy sends, strongSwan syntax."""
        enc = STRONGSWAN_ENCRYPTION[self.encryption]
        integ = STRONGSWAN_INTEGRITY[self.integrity]
        dh = STRONGSWAN_DH[self.dh_group]
        if "gcm" in enc:
            return f"{enc}-prf{integ}-{dh}"
        return f"{enc}-{integ}-{dh}"

    def cryptography_suite_xml(self, indent: str = "") -> str:
        lines = [f"{indent}<CryptographySuite>"]
        lines += [f"{indent}  <{k}>{v}</{k}>" for k, v in self.csp_values().items()]
        lines.append(f"{indent}</CryptographySuite>")
        return "\n".join(lines)
