"""Lab scenarios: declarative data describing one network and its faults.

A scenario is a pydantic model (unknown keys are errors) loaded from the YAML files shipped in
`vpndoctor/lab/scenarios/` or from a user's file. Every knob has the healthy value as its default.
"""

from __future__ import annotations

import re
from importlib import resources
from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from vpndoctor.errors import UsageError
from vpndoctor.inputs import read_small_input

BlockedPort = Literal["udp/500", "udp/4500", "tcp/443"]
CertificateDefect = Literal[
    "valid", "expired", "not-yet-valid", "wrong-name", "no-serverauth-eku", "untrusted-ca"
]
# The lab's client certificates (the EAP-TLS user certificate and the device tunnel's machine certificate):
# "wrong-subject" concerns the machine certificate only (it names another device); the others both.
ClientCertificateDefect = Literal["valid", "expired", "no-clientauth-eku", "foreign-ca", "wrong-subject"]
# What the lab CA publishes about the server certificate's revocation (lab/pki.py, the `crl` host):
# "none": no CDP, AIA or responder at all (the shipped scenarios before revocation existed); "ok": a CRL and
# an OCSP responder that answer good; "cdp-unreachable": CDPs only LDAP and an internal host name (no OCSP);
# "crl-expired": the published CRL's nextUpdate has passed (no OCSP); "revoked": the CRL lists the server
# certificate and OCSP answers revoked; "ocsp-down": AIA names an OCSP responder that is not running (the
# CRL is fine); "aia-intermediate": the server sends its certificate without the intermediate CA, which is
# reachable only through AIA caIssuers.
RevocationMode = Literal[
    "none", "ok", "cdp-unreachable", "crl-expired", "revoked", "ocsp-down", "aia-intermediate"
]

# What a healthy Windows-facing gateway offers: Windows' built-in defaults (3DES/AES-SHA1-MODP1024,
# AES-SHA256-MODP2048) plus modern suites and strongSwan's own default list.
DEFAULT_PROPOSALS = (
    "aes256-sha256-modp2048,aes128-sha256-modp2048,aes256-sha1-modp1024,3des-sha1-modp1024,"
    "aes128-sha256-ecp256,aes256-sha384-ecp384,aes256gcm16-prfsha384-ecp384,aes128-sha256-x25519,default"
)

# ESP (CHILD_SA) proposals of a healthy gateway: modern suites, Windows' defaults (AES-CBC/3DES with SHA-1)
# and strongSwan's own default list.
DEFAULT_CHILD_PROPOSALS = "aes256-sha256,aes128-sha256,aes256gcm16,aes128gcm16,aes256-sha1,3des-sha1,default"

MAX_SCENARIO_BYTES = 256 * 1024  # a scenario is a dozen knobs

_PROPOSAL_RE = re.compile(r"^[a-z0-9]+(-[a-z0-9]+)*(,[a-z0-9]+(-[a-z0-9]+)*)*$")


class AdcKnobs(BaseModel):
    """The DirectAccess IP-HTTPS ADC, configured as the NetScaler field guide configures one: a TLS front
    end on its own VIP (`da.lab.test`) demanding a client certificate from the lab's DirectAccess CA,
    re-encrypting to DirectAccess server stand-ins that accept only NULL cipher suites."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    implementation: Literal["nginx", "haproxy"] = "nginx"
    client_auth: Literal["required", "optional", "off"] = "required"
    # Front end: ECDHE-RSA-AES128-SHA plus NULL-SHA (Windows 8+ clients negotiate NULL); "missing" drops NULL.
    null_cipher: Literal["present", "missing"] = "present"
    # TLS 1.0 (and 1.1) next to TLS 1.2 on the front end (only while Windows 7 clients remain).
    tls10: bool = False
    sslv3: bool = False

    @field_validator("sslv3")
    @classmethod
    def _no_sslv3(cls, value: bool) -> bool:
        if value:
            raise ValueError(
                "SSLv3 cannot be switched on: Debian's OpenSSL 3 (used by nginx and HAProxy here) has no "
                "SSLv3 at all; a server offering it cannot be built in this lab"
            )
        return value


class InsideKnobs(BaseModel):
    """The corporate network behind the VPN servers (topology INSIDE_*), for the tunnel probes: a host
    answering ping, TCP and DNS for the internal zone, and the faults a real client meets after connecting."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    # "missing": the inside network has no route back to the VPN address pools (its replies go nowhere)
    route: Literal["present", "missing"] = "present"
    # The MTU of the links between the VPN servers and the inside network (a smaller one on the way in)
    mtu_bytes: int = Field(1500, ge=1280, le=1500)
    # "unreachable": the internal DNS server's firewall drops queries from the VPN pools (its ACL forgot them)
    dns: Literal["up", "unreachable"] = "up"


class Scenario(BaseModel):
    """One lab network: every field is a fault knob, defaulting to the healthy value."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(pattern=r"^[a-z0-9][a-z0-9-]{0,62}$")
    description: str = ""
    fragments: Literal["pass", "drop"] = "pass"
    path_mtu_bytes: int = Field(1500, ge=1280, le=9000)
    block: tuple[BlockedPort, ...] = ()
    server_fragmentation: bool = True
    fragment_size_bytes: int = Field(1280, ge=512, le=9000)
    lb_affinity: Literal["source-address", "per-service"] = "source-address"
    backends: Literal[1, 2] = 2
    dns: Literal["correct", "wrong", "nxdomain"] = "correct"
    certificate: CertificateDefect = "valid"
    # RSA size of the lab CA and server keys. 3072 makes the certificate-bearing IKE_AUTH response about
    # 1.7 KB, larger than a 1500-byte path: it is IP-fragmented unless IKEv2 fragmentation splits it.
    server_key_bits: Literal[2048, 3072, 4096] = 3072
    proposals: str = DEFAULT_PROPOSALS
    # "default": the responders run with strongSwan's shipped DoS limits; "strict": a hardened gateway
    # (cookie_threshold_ip 1, block_threshold 2); "off": no limits at all (a fault knob, not the norm).
    dos_protection: Literal["default", "strict", "off"] = "default"
    # "always": a COOKIE as soon as one SA is half-open; "default": as dos_protection says.
    cookies: Literal["always", "default"] = "default"
    nat: Literal["none", "client-behind-nat"] = "none"
    edge_dnat: bool = False
    # topology.SCAN_VIPS4/6: a /22 and a /118 of public addresses on the edge, all DNATed to the VIP (a fleet
    # of ~1,000 gateways for `vpndoctor scan`; each answers as the VIP's responders do).
    scan_vips: bool = False
    rtt_ms: float = Field(0.0, ge=0.0, le=5000.0)
    loss_pct: float = Field(0.0, ge=0.0, le=100.0)
    adc: AdcKnobs | None = None  # no ADC unless the scenario asks for one
    # --- what a real client meets after IKE_AUTH (lab/radius.py, lab/strongswan.py) ---
    # The NPS stand-in: "none" (the VPN servers authenticate the EAP-MSCHAPv2 user themselves, as today),
    # "up" (FreeRADIUS runs and a RADIUS-backed user tunnel is offered), "down" (configured on the VPN
    # servers but not running, and its host drops RADIUS silently like a stealth-mode Windows firewall).
    radius: Literal["none", "up", "down"] = "none"
    # The RRAS shape: a device tunnel (machine certificates from the lab CA), DNS servers and suffix in the
    # configuration payload, and CHILD_SAs that really install - into strongSwan's userspace ESP
    # (kernel-libipsec), because the lab's kernel has no ESP. That forces UDP encapsulation, so these
    # responders fake a NAT in NAT detection; without `rras` no CHILD_SA can be installed (the responder
    # answers a CHILD_SA request with NO_PROPOSAL_CHOSEN) and NAT detection is truthful.
    rras: bool = False
    # Addresses per pool and family on each VPN server (None: a /26 and a /112); a tiny pool runs out.
    pool_size: int | None = Field(None, ge=1, le=62)
    child_proposals: str = DEFAULT_CHILD_PROPOSALS  # ESP proposals the responders accept
    # Narrow the traffic selectors to the internal networks (topology.SPLIT_TUNNEL_NETS) instead of
    # 0.0.0.0/0 and ::/0, and name them in INTERNAL_IP4/IP6_SUBNET attributes.
    split_tunnel: bool = False
    # A defect in the client certificates the lab issues (not in what the gateway trusts).
    client_certificate: ClientCertificateDefect = "valid"
    # The revocation infrastructure of the lab CA (see RevocationMode); anything but "none" issues the server
    # certificate from an intermediate CA with CDP/AIA URLs and runs the `crl` host.
    revocation: RevocationMode = "none"
    # The network behind the VPN servers (needs `rras`: only userspace ESP forwards tunnel traffic).
    inside: InsideKnobs | None = None

    @model_validator(mode="after")
    def _inside_needs_rras(self) -> Scenario:
        if self.inside is not None and not self.rras:
            raise ValueError("inside: the network behind the VPN servers needs rras: yes (userspace ESP)")
        return self

    @model_validator(mode="after")
    def _revocation_needs_a_valid_certificate(self) -> Scenario:
        if self.revocation != "none" and self.certificate != "valid":
            raise ValueError(
                "revocation scenarios issue their own server certificate: leave certificate valid"
            )
        return self

    @field_validator("proposals", "child_proposals")
    @classmethod
    def _proposal_syntax(cls, value: str) -> str:
        value = value.strip().lower()
        if not _PROPOSAL_RE.match(value):
            raise ValueError("expected a strongSwan proposal list such as 'aes256-sha256-modp2048,default'")
        return value

    @field_validator("block")
    @classmethod
    def _unique_blocks(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        return tuple(dict.fromkeys(value))


def _scenario_dir() -> resources.abc.Traversable:
    return resources.files("vpndoctor.lab").joinpath("scenarios")


def builtin_scenarios() -> dict[str, Scenario]:
    """All shipped scenarios by name, in file-name order."""
    found: dict[str, Scenario] = {}
    for entry in sorted(_scenario_dir().iterdir(), key=lambda e: e.name):
        if entry.name.endswith(".yaml"):
            scenario = parse_scenario(entry.read_text(encoding="utf-8"), source=entry.name)
            found[scenario.name] = scenario
    return found


def parse_scenario(text: str, *, source: str = "<scenario>") -> Scenario:
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise UsageError(f"{source}: not valid YAML: {str(exc).splitlines()[0]}") from None
    except ValueError as exc:  # PyYAML's int() and date constructors are unguarded (e.g. 5,000 digits)
        raise UsageError(f"{source}: not valid YAML: {' '.join(str(exc).split())[:200]}") from None
    if not isinstance(data, dict):
        raise UsageError(f"{source}: expected a mapping of scenario knobs")
    try:
        return Scenario.model_validate(data)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc']) or 'scenario'}: {err['msg']}" for err in exc.errors()
        )
        raise UsageError(f"{source}: {problems}") from None


def load_scenario(name_or_path: str) -> Scenario:
    """A built-in scenario by name, or a YAML file by path."""
    scenarios = builtin_scenarios()
    if name_or_path in scenarios:
        return scenarios[name_or_path]
    path = Path(name_or_path)
    if path.suffix in (".yaml", ".yml") or path.exists():
        raw, _ = read_small_input(str(path), MAX_SCENARIO_BYTES)
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError:
            raise UsageError(f"{path}: not UTF-8 text") from None
        return parse_scenario(text, source=str(path))
    raise UsageError(
        f"unknown scenario '{name_or_path}'; built-in scenarios: {', '.join(scenarios)} (or give a YAML file)"
    )
