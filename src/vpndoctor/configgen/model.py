"""The input of `vpndoctor config`: a short description of a remote-access deployment (servers, VIPs,
certificates, protocols, client mix, timeouts), validated by pydantic with unknown keys refused, and turned
into one clear error line (naming the field) when it is wrong. Pure: text in, frozen models out.
"""

from __future__ import annotations

import ipaddress
import re
from typing import Annotated, Any, Final, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from vpndoctor.configgen.crypto import IkePolicy
from vpndoctor.errors import UsageError
from vpndoctor.inputs import read_small_input
from vpndoctor.windows.addresses import isatap_prefix

MAX_INPUT_BYTES: Final = 1024 * 1024
MAX_FLOW_DEPTH: Final = 32
# Ports, timeouts and counts need a few digits; past 4300 digits int() raises instead of converting.
MAX_INT_CHARS: Final = 100
_BASE_LOADER: Final = getattr(yaml, "CSafeLoader", yaml.SafeLoader)

Protocol = Literal["ikev2", "sstp", "iphttps"]
Vendor = Literal["netscaler", "f5", "kemp", "haproxy", "nginx", "nftables", "keepalived"]

# Names end up unquoted in appliance CLIs (NetScaler, tmsh, KEMP API URLs, nftables counters): keep them to
# characters every one of them takes as a bare word.
_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_.-]{0,62}")
# Paths end up in haproxy/nginx/tmsh configs unquoted: no whitespace, quotes, braces or separators.
_PATH = re.compile(r"/[A-Za-z0-9_./+@=-]{0,1023}")
_HOST = re.compile(
    r"(?=.{1,253}$)([A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)(\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*"
)
_IFNAME = re.compile(r"[A-Za-z0-9_.:-]{1,15}")


def _ip(value: object, version: int | None = None) -> str:
    try:
        ip = ipaddress.ip_address(str(value).strip())
    except ValueError:
        raise ValueError(f"{value!r} is not an IP address") from None
    if version is not None and ip.version != version:
        raise ValueError(f"{value} is not an IPv{version} address")
    return str(ip)


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Server(_Model):
    """One VPN / DirectAccess server behind the load balancer."""

    name: str = Field(description="Short name (letters, digits, _ . -), used in object names on the ADC.")
    address: str = Field(description="IPv4 address the load balancer sends traffic to.")
    address6: str | None = Field(default=None, description="IPv6 address, when the VIP has one too.")

    @field_validator("name")
    @classmethod
    def _name(cls, v: str) -> str:
        if not _NAME.fullmatch(v):
            raise ValueError(f"{v!r}: expected a letter then up to 62 letters, digits, '_', '.' or '-'")
        return v

    @field_validator("address")
    @classmethod
    def _address(cls, v: str) -> str:
        return _ip(v, 4)

    @field_validator("address6")
    @classmethod
    def _address6(cls, v: str | None) -> str | None:
        return None if v is None else _ip(v, 6)


class Certificate(_Model):
    """A certificate: the name it has on appliances (NetScaler certkey, F5 file object, KEMP cert name) and,
    for haproxy/nginx, the PEM files on disk."""

    name: str = Field(description="Object name on the appliance (certkey / ssl-cert / KEMP certificate).")
    subject: str | None = Field(
        default=None, description="Subject DN as Windows shows it, e.g. 'CN=Contoso Root CA' (CA only)."
    )
    cert_file: str | None = Field(default=None, description="PEM certificate (chain) file, absolute path.")
    key_file: str | None = Field(default=None, description="PEM private key file, absolute path.")

    @field_validator("name")
    @classmethod
    def _name(cls, v: str) -> str:
        if not _NAME.fullmatch(v):
            raise ValueError(f"{v!r}: expected a letter then up to 62 letters, digits, '_', '.' or '-'")
        return v

    @field_validator("subject")
    @classmethod
    def _subject(cls, v: str | None) -> str | None:
        if v is not None and (not v.strip() or any(c in v for c in "'\"`$\n\r")):
            raise ValueError("expected a DN such as 'CN=Contoso Root CA' without quotes, '$' or '`'")
        return v

    @field_validator("cert_file", "key_file")
    @classmethod
    def _path(cls, v: str | None) -> str | None:
        if v is not None and not _PATH.fullmatch(v):
            raise ValueError(f"{v!r}: expected an absolute path without spaces, quotes or braces")
        return v


class Certificates(_Model):
    server: Certificate = Field(description="The TLS/IKE server certificate clients see.")
    ca: Certificate = Field(description="The root CA that issued client (and server) certificates.")
    servers_ca: Certificate | None = Field(
        default=None,
        description="The CA of the servers' own certificates, when not `ca` (verified when re-encrypting).",
    )

    @property
    def backend_ca(self) -> Certificate:
        return self.servers_ca or self.ca


class Clients(_Model):
    windows7: bool = Field(
        default=False,
        description="Windows 7 DirectAccess clients remain: TLS 1.0 and one non-NULL suite on IP-HTTPS.",
    )


class IpHttps(_Model):
    vip: str | None = Field(default=None, description="IPv4 VIP of IP-HTTPS (default: the main VIP).")
    backend_port: int = Field(default=443, ge=1, le=65535, description="IP-HTTPS port of the servers.")
    preauth: bool = Field(
        default=True,
        description="Require a client certificate from the CA at the load balancer (preauthentication).",
    )

    @field_validator("vip")
    @classmethod
    def _vip(cls, v: str | None) -> str | None:
        return None if v is None else _ip(v, 4)


class Timeouts(_Model):
    ike_affinity_s: int = Field(
        default=3600, ge=60, le=86400, description="How long UDP 500/4500 of a client stay on one server."
    )
    tls_session_s: int = Field(
        default=600, ge=120, le=86400, description="SSL-session persistence (IP-HTTPS, SSTP)."
    )
    connect_s: int = Field(default=5, ge=1, le=120, description="Back-end connect timeout.")
    idle_s: int = Field(default=3600, ge=30, le=86400, description="Idle timeout of a proxied TLS session.")


class AllowedService(_Model):
    proto: Literal["tcp", "udp"]
    port: int = Field(ge=1, le=65535)
    address: str

    @field_validator("address")
    @classmethod
    def _address(cls, v: str) -> str:
        return _ip(v)


class Edge(_Model):
    wan_interface: str = Field(
        default="eth0", description="Interface facing the Internet (nftables iifname)."
    )
    table: str = Field(default="vpndoctor_edge", description="nftables table name.")
    allow: list[AllowedService] = Field(
        default_factory=list, description="Other services published through the edge (e.g. DNS)."
    )

    @field_validator("wan_interface")
    @classmethod
    def _ifname(cls, v: str) -> str:
        if not _IFNAME.fullmatch(v):
            raise ValueError(f"{v!r} is not an interface name")
        return v

    @field_validator("table")
    @classmethod
    def _table(cls, v: str) -> str:
        if not re.fullmatch(r"[A-Za-z][A-Za-z0-9_]{0,31}", v):
            raise ValueError(f"{v!r}: expected a letter then letters, digits or '_'")
        return v


class LoadBalancer(_Model):
    vendor: Vendor | None = Field(default=None, description="The load balancer in front of the servers.")
    table: str = Field(default="vpndoctor_lb", description="nftables table name (nftables load balancer).")
    jhash_seed: int = Field(
        default=0x5EED,
        ge=0,
        le=0xFFFFFFFF,
        description="Fixed jhash seed: without one the kernel draws one per rule and UDP 500 and 4500 of "
        "one client hash to different servers.",
    )
    fwmark: int = Field(default=500, ge=1, le=0xFFFFFFFF, description="keepalived/IPVS firewall mark.")
    nginx_stream_module: str | None = Field(
        default="/usr/lib/nginx/modules/ngx_stream_module.so",
        description="load_module path of nginx's stream module (null when it is built in).",
    )

    @field_validator("table")
    @classmethod
    def _table(cls, v: str) -> str:
        if not re.fullmatch(r"[A-Za-z][A-Za-z0-9_]{0,31}", v):
            raise ValueError(f"{v!r}: expected a letter then letters, digits or '_'")
        return v

    @field_validator("nginx_stream_module")
    @classmethod
    def _path(cls, v: str | None) -> str | None:
        if v is not None and not _PATH.fullmatch(v):
            raise ValueError(f"{v!r}: expected an absolute path without spaces, quotes or braces")
        return v


class Isatap(_Model):
    addresses: list[str] = Field(
        default_factory=list, description="ISATAP addresses of management hosts (prefix::0:5efe:a.b.c.d)."
    )
    public_ipv4: bool = Field(default=False, description="Also allow the u-bit (::200:5efe:) /96.")
    rules: list[str] = Field(
        default_factory=lambda: ["Remote Desktop - User Mode (TCP-In)"],
        description="Existing firewall rules (display names) to scope to the ISATAP prefix.",
    )
    new_rules: list[str] = Field(
        default_factory=list, description="New inbound rules to create, as 'tcp/3389' or 'udp/161'."
    )

    @field_validator("addresses")
    @classmethod
    def _addresses(cls, v: list[str]) -> list[str]:
        if not v:
            raise ValueError("give at least one ISATAP address of a management host")
        for a in v:
            try:
                isatap_prefix(a)
            except UsageError as exc:
                raise ValueError(str(exc)) from None
        return v

    @field_validator("rules")
    @classmethod
    def _rules(cls, v: list[str]) -> list[str]:
        for name in v:
            if not name.strip() or any(c in name for c in '"%\n\r'):
                raise ValueError(
                    f"{name!r}: a rule display name without '\"' or '%' (netsh cannot take them)"
                )
        return v

    @field_validator("new_rules")
    @classmethod
    def _new_rules(cls, v: list[str]) -> list[str]:
        for item in v:
            m = re.fullmatch(r"(tcp|udp)/([0-9]{1,5})", item)  # not \d: it takes Arabic-Indic digits
            if not m or not 1 <= int(m.group(2)) <= 65535:
                raise ValueError(f"{item!r}: expected 'tcp/PORT' or 'udp/PORT'")
        return v


class Windows(_Model):
    ike_policy: IkePolicy = Field(
        default_factory=IkePolicy, description="The IKEv2 policy of server and clients."
    )
    server_fragmentation: bool = Field(default=True, description="EnableServerFragmentation (1803+ only).")
    ike_established_for_initial_query: int | None = Field(
        default=50000,
        ge=0,
        le=0xFFFFFFFF,
        description="IKEEXT IkeNumEstablishedForInitialQuery, raised behind a load balancer that translates "
        "client source addresses (null: leave it).",
    )
    isatap: Isatap | None = Field(default=None, description="DirectAccess manage-out: scope rules to ISATAP.")


def _default_protocols() -> list[Protocol]:
    return ["ikev2", "sstp"]


class Deployment(_Model):
    """What `vpndoctor config` generates configuration for."""

    name: str = Field(description="The public name clients dial (and the server certificate names).")
    vip: str = Field(description="The public IPv4 address of the service on the load balancer.")
    vip6: str | None = Field(default=None, description="The public IPv6 address, if any.")
    public_vip: str | None = Field(
        default=None, description="An address on the edge firewall that is DNATed to the VIP (IPv4)."
    )
    public_vip6: str | None = Field(default=None, description="The same for IPv6.")
    servers: Annotated[list[Server], Field(min_length=1, max_length=64)]
    protocols: Annotated[list[Protocol], Field(min_length=1)] = Field(default_factory=_default_protocols)
    certificates: Certificates
    clients: Clients = Field(default_factory=Clients)
    iphttps: IpHttps = Field(default_factory=IpHttps)
    timeouts: Timeouts = Field(default_factory=Timeouts)
    load_balancer: LoadBalancer = Field(default_factory=LoadBalancer)
    edge: Edge = Field(default_factory=Edge)
    windows: Windows = Field(default_factory=Windows)

    @field_validator("name")
    @classmethod
    def _name(cls, v: str) -> str:
        if not _HOST.fullmatch(v):
            raise ValueError(f"{v!r} is not a DNS name")
        return v.lower()

    @field_validator("vip", "public_vip")
    @classmethod
    def _v4(cls, v: str | None) -> str | None:
        return None if v is None else _ip(v, 4)

    @field_validator("vip6", "public_vip6")
    @classmethod
    def _v6(cls, v: str | None) -> str | None:
        return None if v is None else _ip(v, 6)

    @field_validator("protocols")
    @classmethod
    def _unique(cls, v: list[str]) -> list[str]:
        if len(set(v)) != len(v):
            raise ValueError("a protocol is listed twice")
        return v

    @model_validator(mode="after")
    def _consistent(self) -> Deployment:
        names = [s.name for s in self.servers]
        if len(set(names)) != len(names):
            raise ValueError("servers: two servers have the same name")
        if self.vip6 and any(s.address6 is None for s in self.servers):
            raise ValueError("servers: vip6 is set, so every server needs address6")
        if "iphttps" in self.protocols and "sstp" in self.protocols and self.iphttps_vip == self.vip:
            raise ValueError(
                "iphttps.vip: SSTP and IP-HTTPS both need TCP 443; give IP-HTTPS its own VIP (iphttps.vip)"
            )
        return self

    @property
    def iphttps_vip(self) -> str:
        return self.iphttps.vip or self.vip

    def has(self, protocol: str) -> bool:
        return protocol in self.protocols


# ------------------------------------------------------------------------------------------ loading


def _where(loc: tuple[int | str, ...]) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "(top level)"


def _message(exc: ValidationError) -> str:
    # An unknown key is usually a misspelt known one, which then also shows up as "missing": name it first.
    errors = sorted(exc.errors(), key=lambda e: e["type"] != "extra_forbidden")
    first = errors[0]
    loc = tuple(
        p for p in first["loc"] if not (isinstance(p, str) and p.startswith(("function-", "literal")))
    )
    kind, msg = first["type"], first["msg"]
    if kind == "extra_forbidden":
        text = f"{_where(loc)}: unknown key"
    elif kind == "missing":
        text = f"{_where(loc)}: required but missing"
    else:
        msg = msg.removeprefix("Value error, ")
        text = f"{_where(loc)}: {msg}" if loc else msg
    more = len(errors) - 1
    return text + (f" (and {more} more problem{'s' if more > 1 else ''})" if more else "")


def deployment_from_data(data: Any, source: str = "input") -> Deployment:
    if not isinstance(data, dict):
        raise UsageError(
            f"{source}: expected a YAML mapping (name:, vip:, servers:, ...), got {type(data).__name__}"
        )
    try:
        return Deployment.model_validate(data)
    except ValidationError as exc:
        raise UsageError(f"{source}: {_message(exc)}") from None


def load_deployment(path: str) -> Deployment:
    """Read and validate a deployment YAML; UsageError (one line, naming the field) when it is wrong."""
    return deployment_from_data(read_yaml(path), path)


def _construct_int(loader: Any, node: yaml.ScalarNode) -> Any:
    if len(node.value) > MAX_INT_CHARS:
        raise yaml.constructor.ConstructorError(
            None,
            None,
            f"an integer of {len(node.value)} characters (at most {MAX_INT_CHARS} here)",
            node.start_mark,
        )
    return yaml.constructor.SafeConstructor.construct_yaml_int(loader, node)


def _construct_object(loader: Any, node: yaml.Node, deep: bool = False) -> Any:
    # PyYAML's scalar constructors call int() and datetime() unguarded: "2024-13-45" is a ValueError, not
    # a YAMLError. Every scalar comes through here, so this turns them into an error that has a line.
    try:
        return _BASE_LOADER.construct_object(loader, node, deep)
    except ValueError as exc:
        problem = " ".join(str(exc).split())[:200]
        raise yaml.constructor.ConstructorError(None, None, problem, node.start_mark) from None


_LOADER: Final[Any] = type("_Loader", (_BASE_LOADER,), {"construct_object": _construct_object})
_LOADER.add_constructor("tag:yaml.org,2002:int", _construct_int)


def read_yaml(path: str) -> Any:
    """The data of a YAML file, refusing what could hang or blow up the parser; UsageError otherwise."""
    raw, _ = read_small_input(path, MAX_INPUT_BYTES)
    try:
        text = raw.decode("utf-8-sig")
        # PyYAML slows down with the square of flow nesting ([[[...): a deployment nests a few levels.
        depth = deepest = 0
        for ch in text:
            depth += 1 if ch in "[{" else -1 if ch in "]}" else 0
            deepest = max(deepest, depth)
        if deepest > MAX_FLOW_DEPTH:
            raise UsageError(f"{path}: [ ] and {{ }} nested {deepest} deep; a deployment needs a few levels")
        # An alias bomb is a few lines that expand to billions of nodes; this input never needs aliases.
        for event in yaml.parse(text, Loader=_LOADER):
            if isinstance(event, yaml.AliasEvent):
                line = event.start_mark.line + 1 if event.start_mark else 0
                raise UsageError(f"{path}: line {line}: YAML aliases (*name) are not accepted here")
        data = yaml.load(text, Loader=_LOADER)  # noqa: S506 - a safe loader (libyaml's when present)
    except UnicodeDecodeError:
        raise UsageError(f"{path}: not UTF-8 text") from None
    except RecursionError:
        raise UsageError(f"{path}: nested too deeply to be a deployment description") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" line {mark.line + 1}" if mark is not None else ""
        problem = getattr(exc, "problem", None) or "not valid YAML"
        raise UsageError(f"{path}:{where}: {problem}") from None
    return data


def apply_flags(data: Any, flags: dict[str, Any], source: str) -> dict[str, Any]:
    """`data` (from a file, or empty) with the command-line settings laid over it (flags win)."""
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise UsageError(
            f"{source}: expected a YAML mapping (name:, vip:, servers:, ...), got {type(data).__name__}"
        )
    out = dict(data)
    for key in ("name", "vip", "vip6", "protocols"):
        if flags.get(key) is not None:
            out[key] = flags[key]
    if flags.get("servers"):
        out["servers"] = flags["servers"]
    if flags.get("windows7") is not None:
        out["clients"] = {**(out.get("clients") or {}), "windows7": flags["windows7"]}
    for key in ("server", "ca"):
        name = flags.get(f"{key}_cert")
        if name is not None:
            certs = dict(out.get("certificates") or {})
            certs[key] = {**(certs.get(key) or {}), "name": name}
            out["certificates"] = certs
    return out
