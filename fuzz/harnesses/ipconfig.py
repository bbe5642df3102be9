"""Saved `ipconfig /all` and `Get-NetIPAddress` output for `vpndoctor isatap prefix --from-ipconfig`
(windows/ipconfig.py `text_from_bytes`, `parse_ipconfig`, `adapter_prefixes`), through the firewall commands
(configgen/windows.py) and the JSON report the command prints."""

from __future__ import annotations

from vpndoctor.configgen.windows import DEFAULT_RULE, netsh_command, powershell_command
from vpndoctor.errors import UsageError
from vpndoctor.windows.ipconfig import (
    IsatapReport,
    adapter_prefixes,
    adapter_report,
    parse_ipconfig,
    text_from_bytes,
)

OURS = (UsageError,)
MAX_LEN = 16384


def one_input(data: bytes) -> None:
    text = text_from_bytes(data)
    try:
        adapters = parse_ipconfig(text, "fuzz")
        found = adapter_prefixes(adapters, "fuzz")
    except UsageError:
        return
    public = bool(len(data) & 1)
    prefixes = list(dict.fromkeys(x for p in found for x in p.prefixes(public)))
    IsatapReport(
        source="fuzz",
        addresses=list(dict.fromkeys(p.address for p in found)),
        embedded_ipv4=list(dict.fromkeys(p.embedded_ipv4 for p in found)),
        public_ipv4=public,
        prefixes=prefixes,
        rules=[DEFAULT_RULE],
        powershell=[powershell_command(DEFAULT_RULE, prefixes)],
        netsh=[netsh_command(DEFAULT_RULE, prefixes)],
        adapters=[adapter_report(a) for a in adapters],
    ).model_dump_json()
