"""The exporter's configuration files, validated with pydantic: the modules (blackbox-style, one prober
each with its options), the limits (concurrency, politeness, deadlines), the target allow-list, and the
web configuration (TLS and basic auth, in the shape of Prometheus exporter-toolkit's web-config file).

Pure: reads a file and returns models, or raises UsageError with one line naming the file and the field.
"""

from __future__ import annotations

import ipaddress
import re
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from vpndoctor.errors import UsageError

_HASH = re.compile(r"^\$2[abxy]\$\d{2}\$[./A-Za-z0-9]{53}$")


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class _Base(_Model):
    # The module's own cap; a scrape's deadline may lower it.
    timeout_s: float = Field(default=10.0, gt=0, le=300)


class IkeModule(_Base):
    """One IKEv2 handshake as `vpndoctor ike` does (stateless: only IKE_SA_INIT, no SA left behind)."""

    prober: Literal["ike"]
    port: int = Field(default=500, ge=1, le=65535)
    natt_port: int = Field(default=4500, ge=1, le=65535)
    proposals: list[str] = Field(default_factory=list)  # strongSwan syntax; empty: vpndoctor's defaults
    ca: list[str] = Field(default_factory=list)
    fragmentation: bool = True
    force_nat: bool = False
    stateless: bool = False
    identity: str = "anonymous@vpndoctor.invalid"
    revocation: bool = False  # fetch the CRLs/OCSP of the chain (other hosts: off by default)

    @field_validator("proposals")
    @classmethod
    def _proposals(cls, v: list[str]) -> list[str]:
        from vpndoctor.ike.proposals import ProposalSyntaxError, parse_proposal

        for p in v:
            try:
                parse_proposal(p)
            except ProposalSyntaxError as exc:
                raise ValueError(str(exc)) from None
        return v


class SstpModule(_Base):
    prober: Literal["sstp"]
    port: int = Field(default=443, ge=1, le=65535)
    sni: str | None = None
    ca: list[str] = Field(default_factory=list)
    revocation: bool = False
    timeout_s: float = Field(default=5.0, gt=0, le=300)


class IphttpsModule(_Base):
    prober: Literal["iphttps"]
    port: int = Field(default=443, ge=1, le=65535)
    path: str = "/IPHTTPS"
    sni: str | None = None
    ca: list[str] = Field(default_factory=list)
    client_cert: str | None = None
    client_key: str | None = None
    revocation: bool = False
    timeout_s: float = Field(default=5.0, gt=0, le=300)

    @field_validator("path")
    @classmethod
    def _path(cls, v: str) -> str:
        if not v.startswith("/") or any(c.isspace() or not c.isprintable() for c in v):
            raise ValueError("an absolute path without spaces, e.g. /IPHTTPS")
        return v


class TlsModule(_Base):
    prober: Literal["tls"]
    port: int = Field(default=443, ge=1, le=65535)
    sni: str | None = None
    ca: list[str] = Field(default_factory=list)
    concurrency: int = Field(default=4, ge=1, le=64)  # TLS connections to the target at once
    client_cert: str | None = None
    client_key: str | None = None
    timeout_s: float = Field(default=20.0, gt=0, le=300)


def _default_protocols() -> list[Literal["ikev2", "sstp", "iphttps"]]:
    return ["ikev2", "sstp"]


class DiagnoseModule(_Base):
    prober: Literal["diagnose"]
    protocols: list[Literal["ikev2", "sstp", "iphttps"]] = Field(default_factory=_default_protocols)
    ca: list[str] = Field(default_factory=list)
    resolvers: list[str] = Field(default_factory=list)
    expect_ips: list[str] = Field(default_factory=list)
    timeout_s: float = Field(default=20.0, gt=0, le=300)

    @field_validator("resolvers", "expect_ips")
    @classmethod
    def _ips(cls, v: list[str]) -> list[str]:
        for a in v:
            ipaddress.ip_address(a)
        return v

    @field_validator("protocols")
    @classmethod
    def _some(cls, v: list[str]) -> list[str]:
        if not v:
            raise ValueError("at least one of ikev2, sstp, iphttps")
        return v


Module = Annotated[
    IkeModule | SstpModule | IphttpsModule | TlsModule | DiagnoseModule, Field(discriminator="prober")
]


class Limits(_Model):
    max_concurrent_probes: int = Field(default=8, ge=1, le=256)  # probes running at once, all targets
    max_probes_per_target: int = Field(default=1, ge=1, le=16)  # probes running at once against one address
    max_half_open: int = Field(default=2, ge=1, le=64)  # our IKE SAs on one gateway at once (net/polite.py)
    max_pps: float = Field(default=50.0, gt=0, le=10_000)  # IKE datagrams per second to one gateway
    min_interval_s: float = Field(default=0.0, ge=0, le=3600)  # reuse a younger result, do not probe again
    timeout_offset_s: float = Field(default=0.5, ge=0, le=60)  # taken off Prometheus' scrape timeout
    max_timeout_s: float = Field(default=60.0, gt=0, le=600)  # no probe runs longer, whatever the scrape says
    history: int = Field(default=50, ge=1, le=1000)  # recent probes kept for the / page and their reports


class Dns(_Model):
    """Resolve targets through this server (UDP, dnspython) instead of the system resolver."""

    server: str
    port: int = Field(default=53, ge=1, le=65535)

    @field_validator("server")
    @classmethod
    def _ip(cls, v: str) -> str:
        return str(ipaddress.ip_address(v))


class AllowList(_Model):
    """Targets may be probed only if their name matches `names` (exact, or `*.suffix`) when names are
    given, and every address they resolve to lies in `cidrs` when cidrs are given."""

    names: list[str] = Field(default_factory=list)
    cidrs: list[ipaddress.IPv4Network | ipaddress.IPv6Network] = Field(default_factory=list)

    @field_validator("names")
    @classmethod
    def _names(cls, v: list[str]) -> list[str]:
        from vpndoctor.exporter.allow import check_name_pattern

        return [check_name_pattern(n) for n in v]

    @model_validator(mode="after")
    def _something(self) -> AllowList:
        if not self.names and not self.cidrs:
            raise ValueError("an allow list needs names or cidrs (leave `allow` out to allow every target)")
        return self


class ExporterConfig(_Model):
    modules: dict[str, Module]
    limits: Limits = Limits()
    allow: AllowList | None = None
    dns: Dns | None = None

    @field_validator("modules")
    @classmethod
    def _module_names(cls, v: dict[str, Any]) -> dict[str, Any]:
        if not v:
            raise ValueError("at least one module")
        for name in v:
            if not re.fullmatch(r"[A-Za-z0-9_.-]{1,64}", name):
                raise ValueError(f"module name {name!r}: letters, digits, _ . - only")
        return v


class TlsServerConfig(_Model):
    cert_file: str
    key_file: str
    min_version: Literal["TLS12", "TLS13"] = "TLS12"


class WebConfig(_Model):
    """exporter-toolkit's web-config.yml: `tls_server_config` and `basic_auth_users` (bcrypt hashes)."""

    tls_server_config: TlsServerConfig | None = None
    basic_auth_users: dict[str, str] = Field(default_factory=dict)

    @field_validator("basic_auth_users")
    @classmethod
    def _bcrypt(cls, v: dict[str, str]) -> dict[str, str]:
        for user, hashed in v.items():
            if ":" in user or not user:
                raise ValueError(f"user {user!r}: not empty, no ':'")
            if not _HASH.match(hashed):
                raise ValueError(f"user {user}: not a bcrypt hash ($2y$...)")
        return v


def _one_line(path: str, exc: ValidationError) -> str:
    first = exc.errors()[0]
    where = ".".join(str(p) for p in first["loc"] if p not in ("function-after[_something(), AllowList]",))
    msg = str(first["msg"]).removeprefix("Value error, ")
    more = f" (and {exc.error_count() - 1} more)" if exc.error_count() > 1 else ""
    return f"{path}: {where or 'top level'}: {msg}{more}"


def _read_yaml(path: str) -> Any:
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise UsageError(f"cannot read {path}: {getattr(exc, 'strerror', None) or exc}") from None
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        at = f" at line {mark.line + 1}" if mark is not None else ""
        raise UsageError(f"{path}: not valid YAML{at}") from None


def _relative_to(base: Path, data: dict[str, Any]) -> None:
    """Files a module names (ca, client_cert, client_key) are relative to the configuration file, so that
    the exporter finds them whatever its working directory (systemd starts it in /)."""
    modules = data.get("modules")
    if not isinstance(modules, dict):
        return
    for module in modules.values():
        if not isinstance(module, dict):
            continue
        for key in ("client_cert", "client_key"):
            if isinstance(module.get(key), str):
                module[key] = str(base / module[key])
        if isinstance(module.get("ca"), list):
            module["ca"] = [str(base / f) if isinstance(f, str) else f for f in module["ca"]]


def load_config(path: str) -> ExporterConfig:
    data = _read_yaml(path)
    if not isinstance(data, dict):
        raise UsageError(f"{path}: expected a mapping with `modules:`")
    _relative_to(Path(path).resolve().parent, data)
    try:
        return ExporterConfig.model_validate(data)
    except ValidationError as exc:
        raise UsageError(_one_line(path, exc)) from None


def load_web_config(path: str) -> WebConfig:
    data = _read_yaml(path)
    if data is None:
        return WebConfig()
    if not isinstance(data, dict):
        raise UsageError(f"{path}: expected a mapping (tls_server_config, basic_auth_users)")
    try:
        web = WebConfig.model_validate(data)
    except ValidationError as exc:
        raise UsageError(_one_line(path, exc)) from None
    if web.tls_server_config is not None:
        base = Path(path).resolve().parent
        for f in (web.tls_server_config.cert_file, web.tls_server_config.key_file):
            if not (base / f).is_file():
                raise UsageError(f"{path}: cannot read {f}")
        web = web.model_copy(
            update={
                "tls_server_config": TlsServerConfig(
                    cert_file=str(base / web.tls_server_config.cert_file),
                    key_file=str(base / web.tls_server_config.key_file),
                    min_version=web.tls_server_config.min_version,
                )
            }
        )
    return web
