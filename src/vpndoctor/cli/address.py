"""`vpndoctor address` and `vpndoctor isatap prefix`: thin typer commands over `vpndoctor.windows.addresses`
and `vpndoctor.windows.ipconfig` (whose `AddressReport` and `IsatapReport` are the JSON contracts of
`--json`), drawn by `report.address`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer

from vpndoctor.cli.output import emit, out
from vpndoctor.configgen.windows import DEFAULT_RULE
from vpndoctor.errors import UsageError

address_app = typer.Typer()
isatap_app = typer.Typer(
    help="DirectAccess ISATAP tools: the manage-out prefix and the firewall rules scoped to it.",
    no_args_is_help=True,
)
if TYPE_CHECKING:
    from vpndoctor.windows.addresses import IsatapPrefix
    from vpndoctor.windows.ipconfig import IsatapAdapter



@address_app.command("address")
def address_cmd(
    address: Annotated[
        str,
        typer.Argument(
            metavar="ADDR",
            help="IPv6 or IPv4 address (ISATAP, 6to4, Teredo, NAT64, ...).",
            show_default=False,
        ),
    ],
    as_json: Annotated[
        bool, typer.Option("--json", help="One JSON object on stdout (schema/address.json).")
    ] = False,
) -> None:
    """Decode an address a DirectAccess deployment produces: ISATAP, 6to4, Teredo, NAT64, IPv4-mapped..."""
    from vpndoctor.report.address import render_address
    from vpndoctor.windows.addresses import address_report, decode_address

    info = decode_address(address)
    if as_json:
        emit(address_report(info), as_json=True)
    else:
        render_address(info, out)


def _read_source(path: str) -> tuple[str, str]:
    from vpndoctor.inputs import read_small_input
    from vpndoctor.windows.ipconfig import MAX_IPCONFIG_BYTES, text_from_bytes

    """(text, name for messages) of --from-ipconfig; '-' is stdin. At most MAX_IPCONFIG_BYTES: ipconfig /all
    is a few KB, and /dev/zero must not fill the memory."""
    data, name = read_small_input(
        path,
        MAX_IPCONFIG_BYTES,
        too_big="ipconfig /all or Get-NetIPAddress output is a few KB: is this the right file?",
    )
    return text_from_bytes(data), name


def _prefixes_from_ipconfig(path: str) -> tuple[str, list[IsatapAdapter], list[IsatapPrefix]]:
    from vpndoctor.windows.ipconfig import adapter_prefixes, parse_ipconfig

    text, source = _read_source(path)
    adapters = parse_ipconfig(text, source)
    return source, adapters, adapter_prefixes(adapters, source)


def isatap_prefix_cmd(
    address: Annotated[
        str | None,
        typer.Argument(
            metavar="ADDR", help="A routable ISATAP address, prefix::0:5efe:a.b.c.d.", show_default=False
        ),
    ] = None,
    from_ipconfig: Annotated[
        str | None,
        typer.Option(
            "--from-ipconfig",
            metavar="FILE",
            help="Saved `ipconfig /all` or `Get-NetIPAddress` output ('-': stdin).",
        ),
    ] = None,
    rule: Annotated[
        list[str] | None,
        typer.Option(
            "--rule",
            metavar="NAME",
            help=f"Firewall rule display name, repeatable (default: {DEFAULT_RULE}).",
        ),
    ] = None,
    public_ipv4: Annotated[
        bool,
        typer.Option(
            "--public-ipv4",
            help="Management hosts may have public IPv4: add the ::200:5efe: (u bit) prefix too.",
        ),
    ] = False,
    as_json: Annotated[
        bool, typer.Option("--json", help="One JSON object on stdout (schema/isatap.json).")
    ] = False,
) -> None:
    """The ISATAP /96 manage-out prefix, and the firewall commands that open rules to it (and only to it)."""
    from vpndoctor.configgen.windows import netsh_command, powershell_command
    from vpndoctor.report.address import render_isatap
    from vpndoctor.windows.addresses import isatap_prefix
    from vpndoctor.windows.ipconfig import IsatapReport, adapter_report

    if (address is None) == (from_ipconfig is None):
        raise UsageError(
            "give an ISATAP address or --from-ipconfig FILE, not both"
            if address is not None
            else "give an ISATAP address (prefix::0:5efe:a.b.c.d) or --from-ipconfig FILE"
        )
    adapters: list[IsatapAdapter] = []
    if from_ipconfig is not None:
        source, adapters, found = _prefixes_from_ipconfig(from_ipconfig)
    else:
        source, found = "argument", [isatap_prefix(str(address))]
    prefixes = list(dict.fromkeys(x for p in found for x in p.prefixes(public_ipv4)))
    rules = list(dict.fromkeys(rule or [DEFAULT_RULE]))
    report = IsatapReport(
        source=source,
        addresses=list(dict.fromkeys(p.address for p in found)),
        embedded_ipv4=list(dict.fromkeys(p.embedded_ipv4 for p in found)),
        public_ipv4=public_ipv4,
        prefixes=prefixes,
        rules=rules,
        powershell=[powershell_command(r, prefixes) for r in rules],
        netsh=[netsh_command(r, prefixes) for r in rules],
        adapters=[adapter_report(a) for a in adapters],
    )
    emit(report, as_json=as_json, render=render_isatap)


isatap_app.command("prefix")(isatap_prefix_cmd)
