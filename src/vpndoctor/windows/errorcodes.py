"""Windows error codes that VPN clients and servers report: read any written form, look up what it means.

The catalogue is data (`vpndoctor/data/error_codes.yaml`, loaded once); this module only normalises numbers
(decimal, hex, signed HRESULT, constant name) and finds the entry, HRESULT_FROM_WIN32 forms included.

The commands read the catalogue from `data/error_codes.json`, the same document compiled by
`scripts/gen_catalogue.py` (a test keeps the two equal): importing PyYAML and parsing cost `explain` about
30 ms of its start-up, json about 1.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

from vpndoctor.errors import UsageError

_U32 = 0xFFFFFFFF
_FACILITY_WIN32 = 0x8007_0000  # HRESULT_FROM_WIN32(x) == 0x80070000 | x for 0 < x <= 0xFFFF
# Every form is matched by one of these before int() sees it: int() alone would take "1_6" as 16 and
# Arabic-Indic or other Unicode decimal digits; re.IGNORECASE without re.ASCII lets [A-Z] match a dotless i.
_HEX_RE = re.compile(r"0x[0-9a-f]{1,8}", re.IGNORECASE | re.ASCII)
# A bare 8-digit hex word such as 800B0109: only when it has a letter, as all-digit words are decimal.
_BARE_HEX_RE = re.compile(r"(?=[0-9a-f]*[a-f])[0-9a-f]{8}", re.IGNORECASE | re.ASCII)
_DEC_RE = re.compile(r"[+-]?[0-9]{1,11}")
_NAME_RE = re.compile(r"[A-Z][A-Z0-9_]{2,}", re.IGNORECASE | re.ASCII)
_NPS_RE = re.compile(r"[0-9]{1,10}")
FAMILIES = frozenset({"ras", "ike", "win32", "certificate", "nps"})


@dataclass(frozen=True)
class CheckStep:
    """One thing to check, and the vpndoctor command that checks it when there is one."""

    what: str
    command: str | None = None


@dataclass(frozen=True)
class ErrorEntry:
    code: int  # unsigned 32-bit (HRESULTs) or the small Win32/RAS/NPS number
    name: str | None
    family: str
    meaning: str
    causes: tuple[str, ...]
    checks: tuple[CheckStep, ...]
    fix: str
    source: str
    see_also: tuple[str, ...] = ()
    notes: str | None = None


@dataclass(frozen=True)
class CodeForms:
    """The ways one code is written: what `explain` prints next to the entry, or instead of it."""

    value: int
    decimal: int
    hex: str
    signed: int | None  # the negative decimal RasClient prints for HRESULTs
    win32: int | None  # x when value is HRESULT_FROM_WIN32(x)
    hresult: str | None  # HRESULT_FROM_WIN32(value) for small Win32 codes

    def text(self) -> str:
        parts = [f"decimal {self.decimal}", f"hex {self.hex}"]
        if self.signed is not None:
            parts.append(f"signed {self.signed}")
        if self.win32 is not None:
            parts.append(f"Win32 {self.win32}")
        if self.hresult is not None:
            parts.append(f"as HRESULT {self.hresult}")
        return ", ".join(parts)


@dataclass(frozen=True)
class Catalogue:
    errors: dict[int, ErrorEntry]
    nps: dict[int, ErrorEntry]
    names: dict[str, int]  # upper-case constant name -> code, for `explain ERROR_VPN_TIMEOUT`


def forms(code: int) -> CodeForms:
    value = code & _U32
    signed = value - (1 << 32) if value & 0x8000_0000 else None
    win32 = value & 0xFFFF if value & 0xFFFF_0000 == _FACILITY_WIN32 else None
    hresult = f"0x{_FACILITY_WIN32 | value:08X}" if 0 < value <= 0xFFFF else None
    hex_text = f"0x{value:08X}" if value > 0xFFFF else f"0x{value:X}"
    return CodeForms(value, value, hex_text, signed, win32, hresult)


def parse_code(text: str) -> int:
    """`809`, `0x80092013`, `-2146885613`, `800B0109` or `ERROR_VPN_TIMEOUT` -> the unsigned 32-bit value.

    HRESULTs stay HRESULTs (0x80070040 -> 0x80070040); `lookup` knows they are also Win32 code 64.
    """
    t = text.strip()
    if _HEX_RE.fullmatch(t):
        return int(t, 16)
    if _BARE_HEX_RE.fullmatch(t):
        return int(t, 16)
    if _DEC_RE.fullmatch(t):
        n = int(t)
        if -(1 << 31) <= n <= _U32:
            return n & _U32
        raise UsageError(f"{text!r}: out of range for a 32-bit error code")
    if _NAME_RE.fullmatch(t):
        code = load_catalogue().names.get(t.upper())
        if code is not None:
            return code
        raise UsageError(f"{text!r}: no error code of that name in the catalogue")
    raise UsageError(
        f"{text!r}: not an error code (expected decimal 809, hex 0x80092013, signed HRESULT -2146885613 "
        "or a name such as ERROR_VPN_TIMEOUT)"
    )


def parse_nps_code(text: str) -> int:
    """`16` -> 16: an NPS reason code is plain decimal digits (no sign, hex, `_` or non-ASCII digits)."""
    t = text.strip()
    if not _NPS_RE.fullmatch(t):
        raise UsageError(f"--nps {text!r}: an NPS reason code is a decimal number, e.g. 16")
    value = int(t)
    if value > _U32:
        raise UsageError(f"--nps {t}: out of range")
    return value


def lookup(code: int) -> ErrorEntry | None:
    """The catalogue entry for a Windows error code, trying its HRESULT and Win32 forms too."""
    errors = load_catalogue().errors
    f = forms(code)
    for candidate in (f.value, f.win32, int(f.hresult, 16) if f.hresult else None):
        if candidate is not None and candidate in errors:
            return errors[candidate]
    return None


def lookup_nps(reason_code: int) -> ErrorEntry | None:
    """The catalogue entry for an NPS reason code (event 6273); these overlap Win32 numbers, so apart."""
    return load_catalogue().nps.get(reason_code)


def catalogue_codes() -> tuple[int, ...]:
    return tuple(load_catalogue().errors)


def nps_codes() -> tuple[int, ...]:
    return tuple(load_catalogue().nps)


DATA = Path(__file__).resolve().parent.parent / "data"
SOURCE = DATA / "error_codes.yaml"  # what people edit
COMPILED = DATA / "error_codes.json"  # what the commands read


@cache
def load_catalogue() -> Catalogue:
    import json

    return index_catalogue(json.loads(COMPILED.read_text(encoding="utf-8")))


def read_source(text: str) -> Any:
    """The YAML catalogue as a document (libyaml's loader when PyYAML has it)."""
    import yaml

    try:
        return yaml.load(text, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
    except yaml.YAMLError as exc:
        raise ValueError(f"error code catalogue: not YAML: {exc}") from None


def parse_catalogue(text: str) -> Catalogue:
    """Validate and index the YAML catalogue; a malformed entry names its code and the field at fault."""
    return index_catalogue(read_source(text))


def index_catalogue(doc: Any) -> Catalogue:
    """Validate and index the catalogue document (from the YAML or its compiled JSON)."""
    if not isinstance(doc, dict) or set(doc) != {"error_codes", "nps_reason_codes"}:
        raise ValueError("error code catalogue: expected the keys error_codes and nps_reason_codes")
    errors = _section(doc["error_codes"], "error_codes")
    nps = _section(doc["nps_reason_codes"], "nps_reason_codes")
    names = {e.name.upper(): code for code, e in errors.items() if e.name}
    return Catalogue(errors, nps, names)


def _section(items: object, where: str) -> dict[int, ErrorEntry]:
    if not isinstance(items, list):
        raise ValueError(f"error code catalogue: {where} must be a list")
    out: dict[int, ErrorEntry] = {}
    for raw in items:
        entry = _entry(raw, where)
        if entry.code in out:
            raise ValueError(f"error code catalogue: {where}: code {entry.code} appears twice")
        out[entry.code] = entry
    return out


_FIELDS = {"code", "name", "family", "meaning", "causes", "checks", "fix", "source", "see_also", "notes"}


def _entry(raw: object, where: str) -> ErrorEntry:
    if not isinstance(raw, dict):
        raise ValueError(f"error code catalogue: {where}: every entry must be a mapping")
    code = raw.get("code")
    if not isinstance(code, int) or isinstance(code, bool) or not 0 <= code <= _U32:
        raise ValueError(f"error code catalogue: {where}: bad code {code!r}")
    at = f"error code catalogue: {where}: {forms(code).hex}"
    unknown = set(raw) - _FIELDS
    if unknown:
        raise ValueError(f"{at}: unknown field(s) {', '.join(sorted(unknown))}")

    def optional(key: str) -> str | None:
        value = raw.get(key)
        if value is None:
            return None
        if not isinstance(value, str) or not value.strip():
            raise ValueError(f"{at}: {key} must be non-empty text")
        return " ".join(value.split())

    def required(key: str) -> str:
        value = optional(key)
        if value is None:
            raise ValueError(f"{at}: {key} is missing")
        return value

    def texts(key: str) -> tuple[str, ...]:
        value: Any = raw.get(key, [])
        if not isinstance(value, list) or not all(isinstance(v, str) and v.strip() for v in value):
            raise ValueError(f"{at}: {key} must be a list of text")
        return tuple(v.strip() for v in value)

    checks: list[CheckStep] = []
    raw_checks = raw.get("checks", [])
    if not isinstance(raw_checks, list):
        raise ValueError(f"{at}: checks must be a list")
    for c in raw_checks:
        if not isinstance(c, dict) or not isinstance(c.get("what"), str) or set(c) - {"what", "command"}:
            raise ValueError(f"{at}: each check needs `what` (text) and an optional `command`")
        command = c.get("command")
        if command is not None and not (isinstance(command, str) and command.startswith("vpndoctor ")):
            raise ValueError(f"{at}: a check's command must be a vpndoctor command line")
        checks.append(CheckStep(" ".join(c["what"].split()), command))
    family = required("family")
    if family not in FAMILIES:
        raise ValueError(f"{at}: family must be one of {', '.join(sorted(FAMILIES))}")
    source = required("source")
    see_also = texts("see_also")
    for url in (source, *see_also):
        if not url.startswith("https://"):
            raise ValueError(f"{at}: sources must be https URLs")
    return ErrorEntry(
        code=code,
        name=optional("name"),
        family=family,
        meaning=required("meaning"),
        causes=tuple(" ".join(c.split()) for c in texts("causes")),
        checks=tuple(checks),
        fix=required("fix"),
        source=source,
        see_also=see_also,
        notes=optional("notes"),
    )
