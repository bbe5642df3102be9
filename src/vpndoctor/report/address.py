"""The terminal output of `vpndoctor address` (one decoded address) and `vpndoctor isatap prefix` (the
manage-out prefixes and the firewall commands, printed so that they can be copied whole)."""

from __future__ import annotations

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from vpndoctor.windows.addresses import AddressInfo
from vpndoctor.windows.ipconfig import IsatapReport


def render_address(info: AddressInfo, console: Console) -> None:
    console.print(f"[bold]{escape(info.summary)}[/]", soft_wrap=True)
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
    console.print(table)


def render_isatap(report: IsatapReport, console: Console) -> None:
    def plain(line: str = "") -> None:
        # Commands are meant to be copied: no markup, no highlighting, no wrapping inside a line.
        console.print(line, markup=False, highlight=False, soft_wrap=True)

    for adapter in report.adapters:
        state = "media disconnected" if adapter.media_disconnected else ", ".join(adapter.addresses) or "-"
        plain(f"adapter {adapter.name}: {state}")
    for address in report.addresses:
        plain(f"ISATAP address {address}")
    console.print("[bold]manage-out prefix" + ("es" if len(report.prefixes) > 1 else "") + "[/]")
    for prefix in report.prefixes:
        plain(f"  {prefix}")
    console.print("[bold]PowerShell[/] (on the DirectAccess clients, or the same settings in a GPO)")
    for line in report.powershell:
        plain(f"  {line}")
    console.print("[bold]netsh[/]")
    for line in report.netsh:
        plain(f"  {line}")
