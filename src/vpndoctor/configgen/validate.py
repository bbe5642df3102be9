"""Check generated configuration for targets that cannot run here (NetScaler CLI, F5 tmsh, KEMP API calls,
PowerShell, netsh, registry values, ProfileXML) against `data/commands.yaml`: every command must be a
documented one, every parameter one of its documented names, every enumerated value one of the documented
values. Hand-written tokenizers: each dialect is a line-oriented command language no library parses.
"""

from __future__ import annotations

import re
from functools import cache
from importlib import resources
from typing import Any
from xml.etree.ElementTree import ParseError

import defusedxml.ElementTree as DefusedET  # type: ignore[import-untyped]
import yaml
from defusedxml import DefusedXmlException

Table = dict[str, Any]


@cache
def table() -> Table:
    text = resources.files("vpndoctor.configgen").joinpath("data/commands.yaml").read_text(encoding="utf-8")
    data: Table = yaml.safe_load(text)
    return data


def _ci(mapping: dict[str, Any], key: str) -> tuple[str, Any] | None:
    for k, v in mapping.items():
        if k.lower() == key.lower():
            return k, v
    return None


def _in(values: list[Any], value: str, *, case: bool = False) -> bool:
    if case:
        return value in [str(v) for v in values]
    return value.lower() in [str(v).lower() for v in values]


_INT = re.compile(r"\d+|\$\([^)]*\)")


def _check_value(spec: dict[str, Any], value: str, where: str, case: bool = False) -> list[str]:
    kind = spec.get("kind", "str")
    if kind == "int" and not _INT.fullmatch(value):
        return [f"{where}: {value!r} is not an integer"]
    if kind == "enum" and not _in(spec["values"], value, case=case):
        return [f"{where}: {value!r} is not one of {', '.join(map(str, spec['values']))}"]
    if kind == "enumlist":
        bad = [v for v in value.split(",") if not _in(spec["values"], v, case=case)]
        if bad:
            return [f"{where}: {', '.join(bad)} not among {', '.join(map(str, spec['values']))}"]
    return []


def _tokens(line: str) -> list[str]:
    """Whitespace-separated tokens; '...' and "..." kept whole (quotes removed)."""
    out: list[str] = []
    for m in re.finditer(r"\"([^\"]*)\"|'([^']*)'|(\S+)", line):
        out.append(
            m.group(1) if m.group(1) is not None else m.group(2) if m.group(2) is not None else m.group(3)
        )
    return out


# ---------------------------------------------------------------------------------------------- NetScaler


def _netscaler_line(line: str) -> list[str]:
    t = table()["netscaler"]
    commands: dict[str, Any] = t["commands"]
    toks = _tokens(line)
    key = None
    for n in (3, 2, 1):
        cand = " ".join(toks[:n]).lower()
        hit = next((k for k in commands if k.lower() == cand), None)
        if hit:
            key, toks = hit, toks[n:]
            break
    if key is None:
        return [f"unknown NetScaler command {' '.join(toks[:3])!r}"]
    spec = commands[key]
    problems: list[str] = []
    positional: list[str] = []
    i = 0
    while i < len(toks) and not toks[i].startswith("-"):
        positional.append(toks[i])
        i += 1
    pos = spec.get("positional", {"min": 0, "max": 0})
    if not pos["min"] <= len(positional) <= pos["max"]:
        problems.append(f"{key}: {len(positional)} positional arguments, expected {pos['min']}-{pos['max']}")
    for index, values in (pos.get("index_values") or {}).items():
        if index < len(positional) and not _in(values, positional[index]):
            problems.append(f"{key}: {positional[index]!r} is not one of the documented values")
    if "values" in pos:
        problems += [
            f"{key}: {p!r} is not a documented value" for p in positional if not _in(pos["values"], p)
        ]
    while i < len(toks):
        name = toks[i]
        found = _ci(spec["params"], name)
        if found is None:
            problems.append(f"{key}: unknown parameter {name}")
            i += 1
            while i < len(toks) and not toks[i].startswith("-"):
                i += 1
            continue
        pname, pspec = found
        if pspec.get("kind") == "flag":
            i += 1
            continue
        if i + 1 >= len(toks):
            problems.append(f"{key} {pname}: missing value")
            break
        value = toks[i + 1]
        if pspec.get("kind") == "cipher":
            if not _in(t["cipher_names"]["values"], value):
                problems.append(f"{key} {pname}: unknown cipher {value!r}")
        else:
            problems += _check_value(pspec, value, f"{key} {pname}")
        i += 2
    return problems


# -------------------------------------------------------------------------------------------------- tmsh


def _braced(toks: list[str], i: int) -> tuple[list[str], int]:
    """The tokens inside the block opening at toks[i] == '{', and the index after its '}'."""
    if i >= len(toks) or toks[i] != "{":
        raise ValueError("expected '{'")
    depth, j = 0, i
    while j < len(toks):
        if toks[j] == "{":
            depth += 1
        elif toks[j] == "}":
            depth -= 1
            if depth == 0:
                return toks[i + 1 : j], j + 1
        j += 1
    raise ValueError("unbalanced '{'")


def _pairs(inner: list[str], keys: dict[str, Any], where: str) -> list[str]:
    problems: list[str] = []
    i = 0
    while i < len(inner):
        k = inner[i]
        if k not in keys:
            problems.append(f"{where}: unknown key {k!r}")
            i += 2
            continue
        values = keys[k]
        v = inner[i + 1] if i + 1 < len(inner) else ""
        if values is not None and v not in [str(x) for x in values]:
            problems.append(f"{where} {k}: {v!r} is not one of {', '.join(map(str, values))}")
        i += 2
    return problems


def _items(inner: list[str], item_keys: dict[str, Any], where: str) -> list[str]:
    problems: list[str] = []
    i = 0
    while i < len(inner):
        i += 1  # item name
        if i < len(inner) and inner[i] == "{":
            block, i = _braced(inner, i)
            problems += _pairs(block, item_keys, where)
    return problems


def _tmsh_line(line: str) -> list[str]:
    commands: dict[str, Any] = table()["f5"]["commands"]
    toks = re.findall(r"[{}]|[^\s{}]+", line)
    if " ".join(toks) in commands:
        return []
    verb, rest = toks[0], toks[1:]
    if verb not in ("create", "modify", "delete", "list"):
        return [f"unknown tmsh verb {verb!r}"]
    key = None
    for n in (3, 2):
        cand = " ".join(rest[:n])
        if cand in commands:
            key, rest = cand, rest[n:]
            break
    if key is None:
        return [f"unknown tmsh component {' '.join(rest[:3])!r}"]
    props: dict[str, Any] = commands[key]["props"]
    problems: list[str] = []
    i = 1  # rest[0] is the object name
    try:
        while i < len(rest):
            name = rest[i]
            spec = props.get(name)
            if spec is None:
                return problems + [f"{key}: unknown property {name!r}"]
            kind = spec.get("kind", "str")
            where = f"{key} {name}"
            i += 1
            if kind in ("list", "items", "block"):
                if kind != "block" and i < len(rest) and rest[i] in spec.get("ops", []):
                    i += 1
                elif kind != "block" and i < len(rest) and rest[i] != "{":
                    return problems + [f"{where}: {rest[i]!r} is not one of {', '.join(spec.get('ops', []))}"]
                inner, i = _braced(rest, i)
                if kind == "list" and "values" in spec:
                    problems += [
                        f"{where}: {v!r} is not documented" for v in inner if v not in spec["values"]
                    ]
                elif kind == "items":
                    problems += _items(inner, spec.get("item_keys", {}), where)
                elif kind == "block":
                    problems += _pairs(inner, spec.get("keys", {}), where)
            else:
                if i >= len(rest):
                    return problems + [f"{where}: missing value"]
                problems += _check_value(spec, rest[i], where, case=True)
                i += 1
    except ValueError as exc:
        problems.append(f"{key}: {exc}")
    return problems


# -------------------------------------------------------------------------------------------------- KEMP

_KEMP_ARG = re.compile(r"([A-Za-z0-9_.]+)=(\$\([^)]*\)|\S+)")


def _kemp_line(line: str) -> list[str]:
    commands: dict[str, Any] = table()["kemp"]["commands"]
    parts = line.split(None, 2)
    if len(parts) < 2:
        return ["kemp_api without a command"]
    cmd = parts[1]
    if cmd not in commands:
        return [f"unknown KEMP API command {cmd!r}"]
    params: dict[str, Any] = commands[cmd]["params"]
    problems: list[str] = []
    rest = parts[2] if len(parts) > 2 else ""
    for m in _KEMP_ARG.finditer(rest):
        k, v = m.group(1), m.group(2)
        if k not in params:  # the API's parameter names are spelled exactly as documented
            problems.append(f"{cmd}: unknown parameter {k!r}")
            continue
        problems += _check_value(params[k], v, f"{cmd} {k}", case=True)
    leftover = _KEMP_ARG.sub("", rest).strip()
    if leftover:
        problems.append(f"{cmd}: not key=value: {leftover!r}")
    return problems


# ------------------------------------------------------------------------------------ PowerShell & netsh

_CMDLET = re.compile(r"[A-Z][a-z]+-[A-Za-z]+")


def _ps_tokens(text: str) -> list[str]:
    out: list[str] = []
    i = 0
    while i < len(text):
        c = text[i]
        if c.isspace():
            i += 1
        elif c in "'\"":
            j = text.find(c, i + 1)
            while j != -1 and c == "'" and j + 1 < len(text) and text[j + 1] == "'":
                j = text.find(c, j + 2)
            j = len(text) if j == -1 else j
            out.append(text[i : j + 1])
            i = j + 1
        elif c == "(":
            depth, j = 0, i
            while j < len(text):
                depth += {"(": 1, ")": -1}.get(text[j], 0)
                if depth == 0:
                    break
                j += 1
            out.append(text[i : j + 1])
            i = j + 1
        elif c == "|":
            out.append("|")
            i += 1
        else:
            j = i
            while j < len(text) and not text[j].isspace() and text[j] not in "|":
                j += 1
            out.append(text[i:j])
            i = j
    return out


def _unquote(v: str) -> str:
    return v[1:-1] if len(v) >= 2 and v[0] == v[-1] and v[0] in "'\"" else v


def _ps_command(toks: list[str]) -> list[str]:
    ps = table()["powershell"]
    found = _ci(ps["cmdlets"], toks[0])
    if found is None:
        return [f"undocumented cmdlet {toks[0]!r}"]
    name, spec = found
    if spec.get("positional"):
        return []
    problems: list[str] = []
    given: dict[str, str] = {}
    i = 1
    while i < len(toks):
        tok = toks[i]
        if not tok.startswith("-"):
            problems.append(f"{name}: unexpected positional value {tok!r}")
            i += 1
            continue
        hit = _ci(spec["params"], tok[1:])
        if hit is None:
            problems.append(f"{name}: unknown parameter {tok}")
            i += 1
            if i < len(toks) and not toks[i].startswith("-"):
                i += 1
            continue
        pname, pspec = hit
        if pspec.get("kind") == "flag":
            i += 1
            continue
        if i + 1 >= len(toks):
            problems.append(f"{name} -{pname}: missing value")
            break
        value = _unquote(toks[i + 1])
        given[pname] = value
        if not value.startswith(("$", "(")):
            problems += _check_value(pspec, value, f"{name} -{pname}")
        i += 2
    if name == "New-ItemProperty" and "Path" in given:
        known = [(r["key"].lower(), r["value"].lower()) for r in ps["registry"]]
        if (given["Path"].lower(), given.get("Name", "").lower()) not in known:
            problems.append(
                f"registry value {given['Path']}\\{given.get('Name')} is not in the documented table"
            )
    return problems


def _ps_line(line: str) -> list[str]:
    text = line.strip()
    m = re.match(r"\$[A-Za-z_][A-Za-z0-9_]*\s*=\s*(.*)", text)
    if m:
        text = m.group(1)
    if text.startswith(("if ", "if(", "} ")):
        # a control line: check each pipeline inside its (...) and {...}; quotes hold no cmdlet here
        inner = re.sub(r"'[^']*'|\"[^\"]*\"", lambda m: m.group(0).replace("(", " ").replace(")", " "), text)
        segments = re.findall(r"[A-Z][a-z]+-[A-Za-z]+[^(){}]*", inner)
        return [p for seg in segments if _CMDLET.match(seg) for p in _ps_line(seg)]
    if text.startswith(("}", "@'", "'@")) or not _CMDLET.match(text):
        return []
    problems: list[str] = []
    toks = _ps_tokens(text)
    cmd: list[str] = []
    for tok in [*toks, "|"]:
        if tok == "|":
            if cmd:
                problems += _ps_command(cmd)
            cmd = []
        else:
            cmd.append(tok)
    return problems


def _documented_cmdlet(text: str) -> bool:
    m = _CMDLET.match(text)
    return m is not None and _ci(table()["powershell"]["cmdlets"], m.group(0)) is not None


def _netsh_line(line: str) -> list[str]:
    spec = table()["netsh"]
    body = line.strip()[len("netsh") :].strip()
    m = re.match(r"([a-z ]+?)\s+(?=[a-z]+=)", body)
    if not m:
        return [f"netsh: cannot read {body!r}"]
    words = m.group(1).strip()
    if words not in spec["commands"]:
        return [f"netsh: undocumented command {words!r}"]
    keys = spec["commands"][words]["keys"]
    problems: list[str] = []
    for km in re.finditer(r"([a-z]+)=(\"[^\"]*\"|\S+)", body[m.end() :]):
        k, v = km.group(1), _unquote(km.group(2))
        if k not in keys:
            problems.append(f"netsh {words}: unknown key {k!r}")
        elif k in spec["values"] and not _in(spec["values"][k], v):
            problems.append(f"netsh {words} {k}: {v!r} is not one of {', '.join(spec['values'][k])}")
    return problems


def _profilexml(text: str) -> list[str]:
    spec = table()["profilexml"]["CryptographySuite"]
    problems: list[str] = []
    for block in re.findall(r"(?m)^\s*(<CryptographySuite>.*?</CryptographySuite>)", text, re.S):
        try:
            root = DefusedET.fromstring(block)
        except (ParseError, DefusedXmlException) as exc:
            problems.append(f"ProfileXML CryptographySuite: not well-formed XML ({exc})")
            continue
        for child in root:
            name, value = str(child.tag), (child.text or "").strip()
            if name not in spec:
                problems.append(f"ProfileXML CryptographySuite: unknown element <{name}>")
            elif value not in spec[name]:
                problems.append(f"ProfileXML <{name}>: {value!r} is not one of {', '.join(spec[name])}")
    return problems


# ---------------------------------------------------------------------------------------------- dispatch

VALIDATED_TARGETS = ("netscaler", "f5", "kemp", "windows")


def validate(target: str, text: str) -> list[str]:
    """Problems found in `text` generated for `target` ('line N: ...'); empty when every line checks out."""
    problems: list[str] = []
    in_here_string = False
    for n, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if target == "windows":
            if in_here_string:
                in_here_string = not line.startswith("'@")
                continue
            if line.endswith("@'"):
                in_here_string = True
        uncommented = line.lstrip("#").strip()
        if target == "windows" and uncommented.startswith("netsh "):
            found = _netsh_line(uncommented)
        elif target == "windows" and line.startswith("#") and _documented_cmdlet(uncommented):
            found = _ps_line(uncommented)
        elif not line or line.startswith("#"):
            continue
        elif target == "netscaler":
            found = _netscaler_line(line)
        elif target == "f5":
            found = _tmsh_line(line)
        elif target == "kemp":
            # the shell functions of the prelude are indented; the calls to check start the line
            found = _kemp_line(line) if raw.startswith("kemp_api ") else []
        elif target == "windows":
            found = _ps_line(line)
        else:
            found = []
        problems += [f"line {n}: {p}" for p in found]
    if target == "windows":
        problems += _profilexml(text)
    return problems
