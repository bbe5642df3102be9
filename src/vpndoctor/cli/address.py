"""`vpndoctor address` and `vpndoctor isatap prefix`: thin typer commands over `vpndoctor.addresses`.

The lead registers them in cli.py; `AddressReport` and `IsatapReport` are the JSON contracts of `--json`.
"""

from __future__ import annotations

from typing import Annotated, Literal

import typer
from pydantic import BaseModel, ConfigDict
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from vpndoctor.addresses import (
    DEFAULT_RULE,
    MAX_IPCONFIG_BYTES,
    AddressInfo,
    IsatapAdapter,
    IsatapPrefix,
    adapter_prefixes,
    decode_address,
    isatap_prefix,
    netsh_command,
    parse_ipconfig,
    powershell_command,
    text_from_bytes,
)
from vpndoctor.errors import UsageError
from vpndoctor.inputs import read_small_input

out = Console()

isatap_app = typer.Typer(
    help="DirectAccess ISATAP tools: the manage-out prefix and the firewall rules scoped to it.",
    no_args_is_help=True,
)


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class AddressReport(_Model):
    """`vpndoctor address --json`: one decoded address (the shape of `AddressInfo.to_json()`)."""

    input: str
    address: str
    version: Literal[4, 6]
    kind: str  # one of the KIND_* constants in vpndoctor.addresses
    summary: str
    embedded_ipv4: str | None
    prefix: str | None
    details: dict[str, str | int | bool]
    notes: list[str]


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


def address_report(info: AddressInfo) -> AddressReport:
    return AddressReport.model_validate(info.to_json())


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
    info = decode_address(address)
    if as_json:
        print(address_report(info).model_dump_json())
        return
    out.print(f"[bold]{escape(info.summary)}[/]", soft_wrap=True)
    table = Table(show_header=False)
    table.add_column(style="bold")
    table.add_column(overflow="fold")
    table.add_row("address", escape(info.address))
    table.add_row("kind", info.kind)
    table.add_row("embedded IPv4", escape(info.embedded_ipv4 or "-"))
    table.add_row("prefix", escape(info.prefix or "-"))
    for key, value in info.details.items():
        shown = ("yes" if value else "no") if isinstance(value, bool) else str(value)
        table.add_row(key.replace("_", " "), escape(shown))
    for note in info.notes:
        table.add_row("note", escape(note))
    out.print(table)


def _read_source(path: str) -> tuple[str, str]:
    """(text, name for messages) of --from-ipconfig; '-' is stdin. At most MAX_IPCONFIG_BYTES: ipconfig /all
    is a few KB, and /dev/zero must not fill the memory."""
    data, name = read_small_input(
        path,
        MAX_IPCONFIG_BYTES,
        too_big="ipconfig /all or Get-NetIPAddress output is a few KB: is this the right file?",
    )
    return text_from_bytes(data), name


def _adapter_report(adapter: IsatapAdapter) -> IsatapAdapterReport:
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


def _prefixes_from_ipconfig(path: str) -> tuple[str, list[IsatapAdapter], list[IsatapPrefix]]:
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
        adapters=[_adapter_report(a) for a in adapters],
    )
    if as_json:
        print(report.model_dump_json())
        return
    _render_isatap(report)


def _plain(line: str = "") -> None:
    # Commands are meant to be copied: no markup, no highlighting, no wrapping inside a line.
    out.print(line, markup=False, highlight=False, soft_wrap=True)


def _render_isatap(report: IsatapReport) -> None:
    for adapter in report.adapters:
        state = "media disconnected" if adapter.media_disconnected else ", ".join(adapter.addresses) or "-"
        _plain(f"adapter {adapter.name}: {state}")
    for address in report.addresses:
        _plain(f"ISATAP address {address}")
    out.print("[bold]manage-out prefix" + ("es" if len(report.prefixes) > 1 else "") + "[/]")
    for prefix in report.prefixes:
        _plain(f"  {prefix}")
    out.print("[bold]PowerShell[/] (on the DirectAccess clients, or the same settings in a GPO)")
    for line in report.powershell:
        _plain(f"  {line}")
    out.print("[bold]netsh[/]")
    for line in report.netsh:
        _plain(f"  {line}")


isatap_app.command("prefix")(isatap_prefix_cmd)
