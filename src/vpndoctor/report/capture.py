"""Terminal rendering of a capture analysis: a ladder per IKE conversation (initiator on the left, responder
on the right, one arrow per datagram, time since the capture's first packet), then findings and verdict.

Everything that came off the wire is printed as plain `Text`, never as rich markup: a hostile peer's identity
string must not restyle (or hide) the report.
"""

from __future__ import annotations

import textwrap

from rich.console import Console
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from vpndoctor.capture.model import CaptureReport, Conversation, IkeMessageInfo
from vpndoctor.report.capture_tcp import render_tcp_flows
from vpndoctor.report.diagnose import STYLE

__all__ = ["arrow_label", "message_marks", "payload_list", "render_capture"]

_LANE = 58  # characters between the two lifelines
MAX_LADDERS = 50  # conversations drawn on a terminal; --json and --html carry more
MAX_ROWS_PER_LADDER = 500


def arrow_label(m: IkeMessageInfo) -> str:
    """ "IKE_AUTH request 1" and the like: what the arrow says."""
    return f"{m.exchange} {'response' if m.response else 'request'} {m.message_id}"


def message_marks(m: IkeMessageInfo) -> list[str]:
    """The short marks shown next to a datagram, in both renderers."""
    marks: list[str] = []
    if m.fragment:
        marks.append(f"SKF {m.fragment}")
    if m.ip_fragments_missing:
        marks.append("IP fragments missing")
    elif m.ip_fragmented:
        marks.append("IP-fragmented")
    if m.retransmission:
        marks.append("retransmission")
    if m.port == 4500:
        marks.append("UDP 4500")
    if m.response_time_ms is not None:
        marks.append(f"after {m.response_time_ms:.1f} ms")
    return marks


def payload_list(payloads: list[str], notifies: list[str]) -> str:
    """Payload names with each NOTIFY as N(its type), in wire order: "SA KE NONCE N(COOKIE)"."""
    names = iter(notifies)
    return " ".join(f"N({next(names, '?')})" if p == "NOTIFY" else p for p in payloads)


def _arrow(m: IkeMessageInfo) -> Text:
    label = f" {arrow_label(m)} "
    rightwards = m.initiator  # the I flag: sent by the original initiator, drawn left to right
    room = _LANE - 2 - len(label)
    lead = 3 if room > 6 else 1
    rest = max(room - lead, 1)
    if m.retransmission:
        style = "yellow"
    elif m.response:
        style = "green"
    else:
        style = "cyan"
    text = Text("│", style="dim")
    if rightwards:
        text.append("─" * lead + label + "─" * rest + "▶", style=style)
    else:
        text.append("◀" + "─" * lead + label + "─" * rest, style=style)
    text.append("│", style="dim")
    return text


def _details(text: str, style: str = "") -> list[Text]:
    out = []
    for chunk in textwrap.wrap(text, _LANE - 3, subsequent_indent="  ")[:6] or [""]:
        line = Text("│ ", style="dim")
        line.append(chunk.ljust(_LANE - 2), style=style)
        line.append("│", style="dim")
        out.append(line)
    return out


def _ladder(conv: Conversation) -> Table:
    title = Text(
        f"{conv.initiator} (initiator) ⇄ {conv.responder} (responder)\nSPIi {conv.spi_i} SPIr {conv.spi_r}"
    )
    ladder = Table(title=title, box=None, padding=(0, 1), show_edge=False, title_justify="left")
    ladder.add_column("t (s)", justify="right", no_wrap=True)
    head = Text(conv.initiator.ljust(_LANE // 2) + conv.responder.rjust(_LANE - _LANE // 2))
    ladder.add_column(head, no_wrap=True)
    ladder.add_column("bytes", justify="right", no_wrap=True)
    ladder.add_column("marks", no_wrap=False)
    for m in conv.messages[:MAX_ROWS_PER_LADDER]:
        marks = Text(", ".join(message_marks(m)), style="yellow" if m.retransmission else "")
        ladder.add_row(f"{m.t_rel_s:.3f}", _arrow(m), str(m.size), marks)
        inner = f"[ {payload_list(m.payloads, m.notifies)} ]" if m.payloads else "(not decoded)"
        lines = _details(inner, "dim")
        if m.decrypted is not None:
            d = m.decrypted
            if d.integrity == "failed":
                lines += _details(f"decryption failed: {d.detail or ''}", "red")
            elif d.payloads:
                note = "" if d.integrity == "verified" else " (integrity NOT verified)"
                frags = f" from {d.fragments} fragments" if d.fragments else ""
                lines += _details(f"decrypted{frags}{note}:", "magenta")
                for item in d.items:
                    lines += _details(f"  {item.type} {item.summary}", "magenta")
        for line in lines:
            ladder.add_row("", line, "", "")
    if len(conv.messages) > MAX_ROWS_PER_LADDER:
        more = len(conv.messages) - MAX_ROWS_PER_LADDER
        ladder.add_row("", Text(f"... {more} more datagrams (all of them in --json)", style="dim"), "", "")
    return ladder


def render_capture(report: CaptureReport, console: Console) -> None:
    head = Text(report.file, style="bold")
    head.append(
        f": {report.packets} packets, {report.ike_messages} IKE messages, "
        f"{len(report.conversations)} IKE conversations",
        style="",
    )
    console.print(head)
    for w in report.warnings:
        line = Text("warning: ", style="yellow")
        line.append(w)
        console.print(line)
    for conv in report.conversations[:MAX_LADDERS]:
        console.print()
        console.print(_ladder(conv))
    if len(report.conversations) > MAX_LADDERS:
        console.print(
            f"... and {len(report.conversations) - MAX_LADDERS} more conversations (all of them in --json)"
        )
    console.print()
    render_tcp_flows(report, console)
    table = Table("check", "status", "evidence")
    for f in report.findings:
        table.add_row(f.id, Text(f.status, style=STYLE[f.status]), Text(f.detail))
    console.print(table)
    healthy = report.verdict.status == "healthy"
    body = Text(report.verdict.summary)
    for fid in report.verdict.root_causes:
        finding = next((x for x in report.findings if x.id == fid), None)
        if finding is not None and finding.remedy:
            body.append(f"\n\n{fid}: ", style="bold")
            body.append(finding.remedy, style="cyan")
    console.print(
        Panel(
            body,
            title="verdict: " + ("healthy" if healthy else "problems found"),
            border_style="green" if healthy else "red",
        )
    )
