"""Always On VPN ProfileXML (VPNv2 CSP) read into the facts `diagnose` needs: gateways, protocol, auth
methods and the custom IKE CryptographySuite, turned into the strongSwan-style proposal a Windows client
sends. Pure but for `load_profile`, which reads the file; hostile XML is refused, never expanded.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass
from typing import ClassVar, Final
from xml.etree.ElementTree import Element, ParseError
from xml.sax.saxutils import unescape

import defusedxml.ElementTree as DefusedET  # type: ignore[import-untyped]
from defusedxml import DefusedXmlException

from vpndoctor.errors import UsageError

# Windows shows 13868 (ERROR_IPSEC_IKE_POLICY_MATCH, "The policy match error") when the gateway accepts none
# of the client's IKE proposals, i.e. when the gateway does not support the profile's CryptographySuite.
ike_error_code_if_rejected: Final = 13868

# A ProfileXML is a few kilobytes; an export holding one is rarely more than a few hundred. The cap keeps a
# wrong file (a capture, an image) from being read whole and searched.
MAX_PROFILE_BYTES: Final = 4 * 1024 * 1024

# Escaped/CDATA ProfileXML inside SyncML inside an export: a few levels is all real files use.
_MAX_NESTING: Final = 3

# Canonical spellings of <NativeProtocolType>; other values are kept as written.
PROTOCOLS: Final = ("IKEv2", "SSTP", "L2TP", "PPTP", "Automatic", "ProtocolList")


class ProfileError(UsageError):
    """A ProfileXML that cannot be read, parsed or translated; the message names the file or element."""


# Windows value (as the CSP documents it) -> strongSwan token, or None and why IKEv2 here has no equivalent.
_Mapping = dict[str, tuple[str | None, str]]

_ENCRYPTION: Final[_Mapping] = {
    "DES": (None, "single DES is not offered by vpndoctor's IKEv2 engine (and is broken)"),
    "DES3": ("3des", ""),
    "AES128": ("aes128", ""),
    "AES192": ("aes192", ""),
    "AES256": ("aes256", ""),
    "GCMAES128": ("aes128gcm16", ""),
    "GCMAES256": ("aes256gcm16", ""),
    "AES_GCM_128": ("aes128gcm16", ""),
    "AES_GCM_256": ("aes256gcm16", ""),
}
_INTEGRITY: Final[_Mapping] = {
    "MD5": (None, "HMAC-MD5 is not offered by vpndoctor's IKEv2 engine"),
    "SHA196": ("sha1", ""),
    "SHA1": ("sha1", ""),  # the spelling of Set-VpnConnectionIPsecConfiguration
    "SHA256": ("sha256", ""),
    "SHA384": ("sha384", ""),
}
_DH_GROUP: Final[_Mapping] = {
    "None": (None, "IKEv2 needs a Diffie-Hellman group for IKE_SA_INIT"),
    "Group1": (None, "Group1 is 768-bit MODP (modp768), which vpndoctor's IKEv2 engine does not support"),
    "Group2": ("modp1024", ""),
    "Group14": ("modp2048", ""),
    "ECP256": ("ecp256", ""),
    "ECP384": ("ecp384", ""),
    "Group24": (
        None,
        "Group24 is 2048-bit MODP with a 256-bit prime order subgroup, which vpndoctor's IKEv2 engine "
        "does not support",
    ),
}
# The ESP (child SA) half of the suite: only validated and kept, the IKE probe does not use it.
_AUTH_TRANSFORMS: Final = ("MD596", "SHA196", "SHA256128", "GCMAES128", "GCMAES192", "GCMAES256", "None")
_CIPHER_TRANSFORMS: Final = (
    "DES",
    "DES3",
    "AES128",
    "AES192",
    "AES256",
    "GCMAES128",
    "GCMAES192",
    "GCMAES256",
    "None",
)
_PFS_GROUPS: Final = ("PFS1", "PFS2", "PFS2048", "ECP256", "ECP384", "PFSMM", "PFS24", "None")

_GCM_TOKENS: Final = frozenset({"aes128gcm16", "aes256gcm16"})


def _show(value: str) -> str:
    """A value from the file, quoted and clipped so that an error message stays on one line."""
    return repr(value if len(value) <= 60 else value[:57] + "...")


def _check_known(element: str, value: str, accepted: tuple[str, ...] | _Mapping) -> str:
    """The accepted spelling of `value` (case-insensitive), or ProfileError naming what is accepted."""
    by_upper = {a.upper(): a for a in accepted}
    key = value.strip().upper()
    if key not in by_upper:
        raise ProfileError(f"unknown <{element}> value {_show(value)}; accepted: {', '.join(accepted)}")
    return by_upper[key]


def _check_choice(element: str, value: str | None, accepted: tuple[str, ...]) -> str | None:
    if value is not None:
        _check_known(element, value, accepted)
    return value


def _lookup(element: str, value: str, table: _Mapping) -> str:
    token, why_not = table[_check_known(element, value, table)]
    if token is None:
        raise ProfileError(f"<{element}> {_show(value)} has no IKEv2 equivalent: {why_not}")
    return token


@dataclass(frozen=True)
class CryptographySuite:
    """`<NativeProfile><CryptographySuite>`, values as written in the profile (matching is case-insensitive).

    EncryptionMethod, IntegrityCheckMethod and DHGroup describe the IKE SA; the other three the ESP SA.
    """

    encryption_method: str
    integrity_check_method: str
    dh_group: str
    authentication_transform_constants: str | None = None
    cipher_transform_constants: str | None = None
    pfs_group: str | None = None

    ike_error_code_if_rejected: ClassVar[int] = ike_error_code_if_rejected

    def ike_proposal(self) -> str:
        """The single IKE proposal the Windows client sends, strongSwan syntax ("aes256-sha256-modp2048").

        With an AES-GCM cipher IKEv2 has no separate integrity transform, and Windows uses
        IntegrityCheckMethod as the PRF: GCMAES128 + SHA256 + ECP256 -> "aes128gcm16-prfsha256-ecp256".
        """
        encr = _lookup("EncryptionMethod", self.encryption_method, _ENCRYPTION)
        integ = _lookup("IntegrityCheckMethod", self.integrity_check_method, _INTEGRITY)
        dh = _lookup("DHGroup", self.dh_group, _DH_GROUP)
        if encr in _GCM_TOKENS:
            return f"{encr}-prf{integ}-{dh}"
        return f"{encr}-{integ}-{dh}"


@dataclass(frozen=True)
class VpnProfile:
    servers: tuple[str, ...]  # gateway names/addresses in profile order, friendly names dropped
    protocol: str | None  # one of PROTOCOLS when recognised; None for a plugin (third-party) profile
    cryptography_suite: CryptographySuite | None  # None: Windows' default proposals
    user_method: str | None  # <Authentication><UserMethod>: Eap, Mschapv2
    machine_method: str | None  # <Authentication><MachineMethod>: Certificate (device tunnel)
    routing_policy: str | None  # SplitTunnel / ForceTunnel
    device_tunnel: bool = False
    disable_class_based_default_route: bool | None = None


# -- locating the <VPNProfile> element -------------------------------------------------------------------


def _local(tag: object) -> str:
    # Namespaced or not, and whatever the capitalisation Intune/SCCM/hand-written files use.
    return tag.rsplit("}", 1)[-1].lower() if isinstance(tag, str) else ""


def _to_text(data: str | bytes) -> str:
    if isinstance(data, str):
        return data
    for bom, codec in (
        (b"\xff\xfe\x00\x00", "utf-32"),
        (b"\x00\x00\xfe\xff", "utf-32"),
        (b"\xff\xfe", "utf-16"),
        (b"\xfe\xff", "utf-16"),
    ):
        if data.startswith(bom):
            return data.decode(codec, errors="replace")
    return data.decode("utf-8-sig", errors="replace")


def _parse_xml(data: str | bytes, source: str) -> Element:
    if isinstance(data, bytes) and data.startswith((b"\xff\xfe", b"\xfe\xff")):
        # Windows PowerShell 5.1 writes UTF-16 files whose declaration often still says utf-8, which expat
        # refuses; decoded first, the declaration is ignored.
        data = _to_text(data)
    try:
        root: Element = DefusedET.fromstring(
            data, forbid_dtd=False, forbid_entities=True, forbid_external=True
        )
    except DefusedXmlException as exc:
        raise ProfileError(
            f"{source}: refusing XML with entity declarations or external references ({type(exc).__name__})"
        ) from exc
    except ParseError as exc:
        raise ProfileError(f"{source}: not well-formed XML ({_one_line(str(exc))})") from exc
    except (LookupError, ValueError) as exc:
        # expat's answer to an XML declaration naming an unknown or multi-byte encoding (encoding="utf7")
        raise ProfileError(f"{source}: not readable XML ({_one_line(str(exc))})") from exc
    return root


def _one_line(text: str) -> str:
    return " ".join(text.split())


def _embedded_profiles(root: Element, source: str, depth: int, broken: list[ProfileError]) -> list[Element]:
    """VPNProfile elements in `root`, or in element text that is itself a ProfileXML (escaped or CDATA).

    Text that mentions <VPNProfile> but does not parse goes to `broken`: it matters only if nothing else does.
    """
    found = [el for el in root.iter() if _local(el.tag) == "vpnprofile"]
    if depth >= _MAX_NESTING:
        return found
    inside_found = {id(el) for profile in found for el in profile.iter()}
    for el in root.iter():
        text = el.text
        if id(el) in inside_found or not text or "<vpnprofile" not in text.lower():
            continue
        try:
            inner = _parse_xml(text.strip(), f"{source} (ProfileXML inside <{_local(el.tag)}>)")
        except ProfileError as exc:
            if isinstance(exc.__cause__, DefusedXmlException):
                raise
            broken.append(exc)
            continue
        found += _embedded_profiles(inner, source, depth + 1, broken)
    return found


def _find_profile(data: str | bytes, source: str) -> Element:
    if len(data) > MAX_PROFILE_BYTES:
        raise ProfileError(f"{source}: larger than {MAX_PROFILE_BYTES} bytes, too large for a ProfileXML")
    try:
        root = _parse_xml(data, source)
    except ProfileError as exc:
        # Not XML as a whole: a PowerShell script with the profile in a here-string, or the escaped form
        # copied alone out of an OMA-URI setting. Parse the <VPNProfile>...</VPNProfile> inside it.
        if isinstance(exc.__cause__, DefusedXmlException):
            raise
        snippet = _snippet(_to_text(data))
        if snippet is None:
            raise
        root = _parse_xml(snippet, f"{source} (the <VPNProfile> text inside it)")
    broken: list[ProfileError] = []
    profiles = _embedded_profiles(root, source, 0, broken)
    if not profiles and broken:
        raise broken[0]
    if not profiles:
        raise ProfileError(
            f"{source}: no <VPNProfile> element found (root is <{_local(root.tag)}>); expected a ProfileXML "
            "or a SyncML/export that contains one"
        )
    if len(profiles) > 1:
        raise ProfileError(
            f"{source}: holds {len(profiles)} <VPNProfile> documents; save the one to diagnose on its own"
        )
    return profiles[0]


def _snippet(text: str) -> str | None:
    """The <VPNProfile>...</VPNProfile> inside text that is not XML as a whole, unless that is all of it.

    Plain find/rfind rather than a regular expression: linear on hostile input."""
    found = text
    if "&lt;" in text and "<vpnprofile" not in text.lower():
        found = unescape(text, {"&quot;": '"', "&apos;": "'"})
    lower = found.lower()
    start = lower.find("<vpnprofile")
    close = lower.rfind("</vpnprofile")
    end = lower.find(">", close) + 1 if close > start >= 0 else 0
    if end <= 0:
        return None
    prefix = found[:start].strip().lstrip("\ufeff")
    if prefix.startswith("<?xml") and prefix.find("?>") == len(prefix) - 2:
        prefix = ""  # the XML declaration of a bare ProfileXML
    if found is text and not prefix and not found[end:].strip():
        return None  # a broken ProfileXML, not one inside something else: report it as it is
    return found[start:end]


# -- reading the element ---------------------------------------------------------------------------------


def _child(parent: Element | None, name: str) -> Element | None:
    if parent is None:
        return None
    for el in parent:
        if _local(el.tag) == name.lower():
            return el
    return None


def _text(parent: Element | None, *path: str) -> str | None:
    el = parent
    for name in path:
        el = _child(el, name)
    if el is None or el.text is None:
        return None
    return el.text.strip() or None


def _bool(value: str | None, element: str, source: str) -> bool | None:
    if value is None:
        return None
    if value.lower() in ("true", "1"):
        return True
    if value.lower() in ("false", "0"):
        return False
    raise ProfileError(f"{source}: <{element}> is {_show(value)}; expected true or false")


_HOSTNAME = re.compile(r"^(?=.{1,253}$)[A-Za-z0-9_](?:[A-Za-z0-9_-]{0,62})(?:\.[A-Za-z0-9_-]{1,63})*\.?$")


def _is_address(part: str) -> bool:
    try:
        ipaddress.ip_address(part.strip("[]"))
    except ValueError:
        return False
    return True


def _looks_like_host(part: str) -> bool:
    return _is_address(part) or ("." in part and _HOSTNAME.match(part) is not None)


def parse_servers(value: str | None) -> tuple[str, ...]:
    """`<Servers>`: comma-separated entries, each "server;friendly name" (the CSP form), though files in
    the wild also use ';' between servers and put the friendly name first. Keeps whatever looks like a DNS
    name or address, in order and without duplicates; an entry with none keeps its first part."""
    if not value:
        return ()
    servers: dict[str, str] = {}
    for entry in value.split(","):
        parts = [p.strip() for p in entry.split(";") if p.strip()]
        hosts = [p for p in parts if _looks_like_host(p)] or parts[:1]
        for host in hosts:
            servers.setdefault(host.lower(), host)
    return tuple(servers.values())


def _protocol(value: str | None) -> str | None:
    if value is None:
        return None
    canonical = {p.lower(): p for p in PROTOCOLS}
    return canonical.get(value.lower(), value)


def _suite(native: Element | None, source: str) -> CryptographySuite | None:
    suite = _child(native, "CryptographySuite")
    if suite is None:
        return None
    required = {}
    for element in ("EncryptionMethod", "IntegrityCheckMethod", "DHGroup"):
        value = _text(suite, element)
        if value is None:
            raise ProfileError(f"{source}: <CryptographySuite> lacks <{element}>")
        required[element] = value
    try:
        result = CryptographySuite(
            encryption_method=required["EncryptionMethod"],
            integrity_check_method=required["IntegrityCheckMethod"],
            dh_group=required["DHGroup"],
            authentication_transform_constants=_check_choice(
                "AuthenticationTransformConstants",
                _text(suite, "AuthenticationTransformConstants"),
                _AUTH_TRANSFORMS,
            ),
            cipher_transform_constants=_check_choice(
                "CipherTransformConstants", _text(suite, "CipherTransformConstants"), _CIPHER_TRANSFORMS
            ),
            pfs_group=_check_choice("PfsGroup", _text(suite, "PfsGroup"), _PFS_GROUPS),
        )
        # Unknown names are a typo Windows would refuse too; known names without an IKEv2 equivalent (DES,
        # MD5, Group1, Group24) are valid profiles, reported only when a proposal is asked for.
        _check_known("EncryptionMethod", result.encryption_method, _ENCRYPTION)
        _check_known("IntegrityCheckMethod", result.integrity_check_method, _INTEGRITY)
        _check_known("DHGroup", result.dh_group, _DH_GROUP)
    except ProfileError as exc:
        raise ProfileError(f"{source}: {exc}") from exc
    return result


def parse_profile_xml(text: str | bytes, *, source: str = "ProfileXML") -> VpnProfile:
    """Parse a ProfileXML, bare or embedded (escaped or CDATA) in SyncML or an export; `source` names it in
    error messages. Entity declarations and external references are refused, never expanded."""
    profile = _find_profile(text, source)
    native = _child(profile, "NativeProfile")
    return VpnProfile(
        servers=parse_servers(_text(native, "Servers")),
        protocol=_protocol(_text(native, "NativeProtocolType")),
        cryptography_suite=_suite(native, source),
        user_method=_text(native, "Authentication", "UserMethod"),
        machine_method=_text(native, "Authentication", "MachineMethod"),
        routing_policy=_text(native, "RoutingPolicyType"),
        device_tunnel=bool(_bool(_text(profile, "DeviceTunnel"), "DeviceTunnel", source)),
        disable_class_based_default_route=_bool(
            _text(native, "DisableClassBasedDefaultRoute"), "DisableClassBasedDefaultRoute", source
        ),
    )


def load_profile(path: str) -> VpnProfile:
    try:
        with open(path, "rb") as f:
            data = f.read(MAX_PROFILE_BYTES + 1)
    except OSError as exc:
        raise ProfileError(f"cannot read ProfileXML {path}: {exc.strerror or exc}") from exc
    return parse_profile_xml(data, source=f"ProfileXML {path}")
