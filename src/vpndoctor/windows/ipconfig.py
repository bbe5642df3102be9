"""ISATAP adapters in saved `ipconfig [/all]` / `Get-NetIPAddress` output, and the manage-out prefixes of
their addresses; `IsatapReport` is the JSON contract of `vpndoctor isatap prefix --json`. Pure: text in,
frozen dataclasses out; parsing takes time linear in the text, within bounds on what it keeps.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal

from pydantic import BaseModel, ConfigDict

from vpndoctor.errors import UsageError
from vpndoctor.windows.addresses import (
    _ISATAP_MARKER,
    ISATAP_EXPECTED,
    KIND_ISATAP,
    KIND_ISATAP_LINK_LOCAL,
    IsatapPrefix,
    _kind_of,
    isatap_prefix,
    with_dotted_ipv4,
)

SourceFormat = Literal["ipconfig", "Get-NetIPAddress"]

# `ipconfig /all` and Get-NetIPAddress output is a few KB; the CLI reads no more (parsing is linear).
MAX_IPCONFIG_BYTES = 4 * 1024 * 1024
# One host lists a few dozen IPv6 addresses; each costs a decode (~0.1 ms), and every one is in the report.
MAX_IPCONFIG_ADDRESSES = 4096
# Windows interface indexes (NET_IFINDEX) are 32-bit unsigned.
_IF_INDEX = re.compile(r"[0-9]{1,10}")
# Get-NetIPAddress prints a handful of columns; a "table" of thousands is not one (and costs rows x columns).
_MAX_TABLE_COLUMNS = 64


@dataclass(frozen=True)
class IsatapAdapter:
    """An ISATAP interface found in ipconfig or Get-NetIPAddress text; addresses without zone or state."""

    name: str
    source_format: SourceFormat
    description: str | None = None
    dns_suffix: str | None = None
    interface_index: int | None = None
    media_disconnected: bool = False
    addresses: tuple[str, ...] = ()

    @property
    def isatap_addresses(self) -> tuple[str, ...]:
        """The routable ISATAP addresses (not link-local): the ones a manage-out prefix comes from."""
        return tuple(a for a in self.addresses if _kind_of(a) == KIND_ISATAP)


def text_from_bytes(data: bytes) -> str:
    """Decode a saved ipconfig / PowerShell output: Windows PowerShell 5.1 `>` writes UTF-16LE with a BOM,
    cmd.exe `>` writes the OEM code page; English output is ASCII either way."""
    if data.startswith(b"\xef\xbb\xbf"):
        return data[3:].decode("utf-8", errors="replace")
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        return data.decode("utf-16", errors="replace")
    if len(data) >= 4 and data[1:8:2].count(0) >= 2 and data[0:8:2].count(0) == 0:
        return data.decode("utf-16-le", errors="replace")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return data.decode("cp437")


def _interface_index(text: str | None) -> int | None:
    # ASCII digits only: str.isdigit() also passes "12\u00b2", which int() refuses, and int() itself takes
    # Arabic-Indic digits, underscores and (past 4300 digits) raises.
    if text is None or not _IF_INDEX.fullmatch(text):
        return None
    value = int(text)
    return value if value <= 0xFFFFFFFF else None


def _ipconfig_entry(line: str) -> tuple[str, str | None] | None:
    r"""(key, value) of an ipconfig entry, "   IPv6 Address. . . . . . . . . . . : value"; None otherwise.

    The dotted leader tells keys from IPv6 continuation lines, which contain colons too. A scan, not the
    regex `^\s+(?P<key>[^:\s][^:]*?)\s*(?:\.\s*)+:(?:\s(?P<value>.*))?$` it replaces (same matches), which
    backtracked for hours over a long dotted line without a colon.
    """
    head, colon, rest = line.partition(":")
    if not colon or not head[:1].isspace():
        return None
    core = head.lstrip()
    end = len(core)
    while end > 0 and (core[end - 1] == "." or core[end - 1].isspace()):
        end -= 1
    end = max(end, 1)  # the key has at least one character (a lone "." in the degenerate ". . . :")
    if "." not in core[end:]:
        return None
    if rest and not rest[0].isspace():
        return None
    return core[:end], (rest[1:] if rest else None)


_ADAPTER_HEADER = re.compile(r"^(?P<header>\S.*?):\s*$")
_PS_PROPERTY = re.compile(r"^(?P<key>[A-Za-z][A-Za-z0-9]*)\s*:(?:\s(?P<value>.*))?$")
_ADDRESS_VALUE = re.compile(
    r"^(?P<addr>[0-9A-Fa-f:.]+)(?:%(?P<zone>[0-9A-Za-z_.\-]+))?\s*(?:\((?P<state>[A-Za-z ]+)\))?$"
)


@dataclass
class _Budget:
    # How many more addresses the input may list: past that it is not one host's ipconfig output.
    source: str
    left: int = MAX_IPCONFIG_ADDRESSES

    def take(self) -> None:
        self.left -= 1
        if self.left < 0:
            raise UsageError(
                f"{self.source}: more than {MAX_IPCONFIG_ADDRESSES} IPv6 addresses; the ipconfig /all or"
                " Get-NetIPAddress output of one host lists a few dozen"
            )


def _address_value(value: str, budget: _Budget) -> tuple[str, str | None] | None:
    """(IPv6 address, zone) from "fe80::5efe:10.0.0.5%12(Preferred)", or None for anything else."""
    m = _ADDRESS_VALUE.match(value.strip())
    if not m:
        return None
    try:
        addr = ipaddress.ip_address(m.group("addr"))
    except ValueError:
        return None
    if not isinstance(addr, ipaddress.IPv6Address):
        return None
    budget.take()
    # Only ISATAP addresses are shown with their IPv4 dotted; the full decode (~50 us) only for those that
    # carry the ISATAP marker in their interface id.
    isatap = (int(addr) >> 32) & 0xFFFF == _ISATAP_MARKER and _kind_of(addr.compressed) in (
        KIND_ISATAP,
        KIND_ISATAP_LINK_LOCAL,
    )
    text = with_dotted_ipv4(addr) if isatap else str(addr)
    return text, m.group("zone")


@dataclass
class _Draft:
    # Mutable while a section is read; frozen into an IsatapAdapter at the end.
    name: str
    source_format: SourceFormat
    isatap: bool
    description: str | None = None
    dns_suffix: str | None = None
    interface_index: int | None = None
    media_disconnected: bool = False
    addresses: list[str] = field(default_factory=list)
    _seen: set[str] = field(default_factory=set)  # `addresses` as a set: a list lookup per line is quadratic

    def add(self, address: str, zone: str | None) -> None:
        if address not in self._seen:
            self._seen.add(address)
            self.addresses.append(address)
        if self.interface_index is None:
            self.interface_index = _interface_index(zone)

    def freeze(self) -> IsatapAdapter:
        return IsatapAdapter(
            name=self.name,
            source_format=self.source_format,
            description=self.description,
            dns_suffix=self.dns_suffix,
            interface_index=self.interface_index,
            media_disconnected=self.media_disconnected,
            addresses=tuple(self.addresses),
        )


def _is_isatap_name(name: str | None) -> bool:
    return bool(name) and "isatap" in str(name).lower()


def _parse_ipconfig_sections(lines: list[str], budget: _Budget) -> list[_Draft]:
    drafts: list[_Draft] = []
    current: _Draft | None = None
    last_key = ""
    for line in lines:
        if not line.strip():
            continue
        header = _ADAPTER_HEADER.match(line)
        if header and " : " not in line and not _PS_PROPERTY.match(line):
            text = header.group("header")
            name = text.split(" adapter ", 1)[1] if " adapter " in text else text
            current = _Draft(name=name.strip(), source_format="ipconfig", isatap=_is_isatap_name(name))
            drafts.append(current)
            last_key = ""
            continue
        if not line[:1].isspace():
            current = None  # whatever follows an unindented line is not this adapter's any more
        if current is None:
            continue
        entry = _ipconfig_entry(line)
        if entry:
            last_key = entry[0].strip().lower()
            value = (entry[1] or "").strip()
        else:
            value = line.strip()  # a continuation line: one more value for the previous key
        if last_key == "description" and entry:
            current.description = value or None
            current.isatap = current.isatap or _is_isatap_name(value)
        elif last_key == "connection-specific dns suffix" and entry:
            current.dns_suffix = value or None
        elif last_key == "media state":
            current.media_disconnected = "disconnected" in value.lower()
        elif last_key.endswith("address") and last_key != "physical address":
            parsed = _address_value(value, budget)
            if parsed:
                current.add(*parsed)
    return drafts


def _ps_record_to_draft(record: dict[str, str], drafts: dict[str, _Draft], budget: _Budget) -> None:
    parsed = _address_value(record.get("ipaddress", ""), budget)
    if parsed is None or record.get("addressfamily", "IPv6").strip().lower() not in ("ipv6", ""):
        return
    alias = record.get("interfacealias", "").strip() or None
    index = _interface_index((record.get("interfaceindex") or record.get("ifindex") or "").strip())
    isatap = _is_isatap_name(alias) if alias else _kind_of(parsed[0]) in (KIND_ISATAP, KIND_ISATAP_LINK_LOCAL)
    name = alias or (f"interface {index}" if index is not None else "interface ?")
    draft = drafts.get(name.lower())
    if draft is None:
        draft = drafts[name.lower()] = _Draft(name=name, source_format="Get-NetIPAddress", isatap=isatap)
    draft.isatap = draft.isatap or isatap
    if index is not None and draft.interface_index is None:
        draft.interface_index = index
    draft.add(parsed[0], parsed[1])


def _parse_ps_list(lines: list[str], drafts: dict[str, _Draft], budget: _Budget) -> None:
    record: dict[str, str] = {}
    for line in [*lines, ""]:
        m = _PS_PROPERTY.match(line)
        if m:
            record[m.group("key").lower()] = (m.group("value") or "").strip()
        elif not line.strip():
            if "ipaddress" in record:
                _ps_record_to_draft(record, drafts, budget)
            record = {}


def _parse_ps_tables(lines: list[str], drafts: dict[str, _Draft], budget: _Budget) -> None:
    i = 0
    while i < len(lines) - 1:
        header, rule = lines[i], lines[i + 1]
        i += 1
        if not re.search(r"\bIPAddress\b", header) or not re.fullmatch(r"\s*-+(\s+-+)*\s*", rule):
            continue
        starts = [m.start() for m in re.finditer(r"-+", rule)]
        if len(starts) > _MAX_TABLE_COLUMNS:
            continue
        spans = [(s, starts[k + 1] if k + 1 < len(starts) else None) for k, s in enumerate(starts)]
        names = [header[s:e].strip().lower() for s, e in spans]
        # A table's rows end at a blank line; the scan goes on after them, so no row is read twice.
        i += 1
        while i < len(lines) and lines[i].strip():
            row = lines[i]
            record = {n: row[s:e].strip() for n, (s, e) in zip(names, spans, strict=True)}
            _ps_record_to_draft(record, drafts, budget)
            i += 1


def parse_ipconfig(text: str, source: str = "the input") -> list[IsatapAdapter]:
    """The ISATAP adapters in English `ipconfig [/all]` or `Get-NetIPAddress` (list or table) output.

    Adapters are recognised by name or description ("isatap..."); a table without InterfaceAlias falls back
    on the ISATAP interface id. Raises UsageError when there is none, or past MAX_IPCONFIG_ADDRESSES
    addresses. Time is linear in the length of `text`.
    """
    lines = text.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    merged: dict[str, _Draft] = {}
    budget = _Budget(source)
    for draft in _parse_ipconfig_sections(lines, budget):
        merged.setdefault(draft.name.lower(), draft)
    ps: dict[str, _Draft] = {}
    _parse_ps_list(lines, ps, budget)
    _parse_ps_tables(lines, ps, budget)
    for key, draft in ps.items():
        known = merged.get(key)
        if known is None:
            merged[key] = draft
            continue
        known.isatap = known.isatap or draft.isatap
        for address in draft.addresses:
            known.add(address, None)
        if known.interface_index is None:
            known.interface_index = draft.interface_index
    adapters = [d.freeze() for d in merged.values() if d.isatap]
    if not adapters:
        raise UsageError(
            f"no ISATAP adapter found in {source}; expected 'Tunnel adapter isatap...' sections from"
            " ipconfig /all or Get-NetIPAddress records on an isatap interface"
        )
    return adapters


def _why_unusable(adapter: IsatapAdapter) -> str:
    if adapter.media_disconnected:
        return f"{adapter.name}: media disconnected"
    if adapter.addresses:
        return f"{adapter.name}: only {', '.join(adapter.addresses)}"
    return f"{adapter.name}: no IPv6 address"


def adapter_prefixes(adapters: Sequence[IsatapAdapter], source: str = "the input") -> list[IsatapPrefix]:
    """The manage-out prefixes of every routable ISATAP address of `adapters`; UsageError when there is none
    (a host with only link-local ISATAP addresses has not reached an ISATAP router)."""
    found = [isatap_prefix(a) for adapter in adapters for a in adapter.isatap_addresses]
    if not found:
        raise UsageError(
            f"{source}: no ISATAP adapter has a routable ISATAP address"
            f" ({'; '.join(_why_unusable(a) for a in adapters) or 'no adapters'}); {ISATAP_EXPECTED} on an"
            " 'IPv6 Address' line (no ISATAP router has answered this host: does 'isatap' resolve?)"
        )
    return found


# ------------------------------------------------------------------------------------------- JSON report


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class IsatapAdapterReport(_Model):
    name: str
    source_format: Literal["ipconfig", "Get-NetIPAddress"]
    description: str | None
    dns_suffix: str | None
    interface_index: int | None
    media_disconnected: bool
    addresses: list[str]
    isatap_addresses: list[str]  # the routable ISATAP addresses among `addresses`


class IsatapReport(_Model):
    """`vpndoctor isatap prefix --json`: the manage-out prefixes and the commands that scope rules to them."""

    source: str  # "argument", "stdin" or the --from-ipconfig file name
    addresses: list[str]  # the ISATAP addresses the prefixes come from
    embedded_ipv4: list[str]
    public_ipv4: bool
    prefixes: list[str]
    rules: list[str]
    powershell: list[str]
    netsh: list[str]
    adapters: list[IsatapAdapterReport]  # empty when the address came as an argument


def adapter_report(adapter: IsatapAdapter) -> IsatapAdapterReport:
    return IsatapAdapterReport(
        name=adapter.name,
        source_format=adapter.source_format,
        description=adapter.description,
        dns_suffix=adapter.dns_suffix,
        interface_index=adapter.interface_index,
        media_disconnected=adapter.media_disconnected,
        addresses=list(adapter.addresses),
        isatap_addresses=list(adapter.isatap_addresses),
    )
