"""Terminal rendering of a capture analysis: a ladder per IKE conversation, the findings, the verdict."""

from __future__ import annotations

from rich.console import Console
from rich.panel import Panel
from rich.table import Table

from vpndoctor.capture.model import CaptureReport
from vpndoctor.report.diagnose import STYLE


def render_capture(report: CaptureReport, console: Console) -> None:
    console.print(
        f"[bold]{report.file}[/]: {report.packets} packets, {report.ike_messages} IKE messages, "
        f"{len(report.conversations)} IKE conversations"
    )
    for w in report.warnings:
        console.print(f"[yellow]warning:[/] {w}")
    for conv in report.conversations:
        ladder = Table(
            title=f"{conv.initiator} <-> {conv.responder}  SPI {conv.spi_i}/{conv.spi_r}",
            box=None,
            padding=(0, 1),
        )
        for column in ("t (s)", "", "port", "bytes", "message"):
            ladder.add_column(column)
        for m in conv.messages:
            arrow = "->" if m.initiator else "<-"
            kind = "response" if m.response else "request"
            flags = (" [IP-fragmented]" if m.ip_fragmented else "") + (
                " (retransmission)" if m.retransmission else ""
            )
            frag = f" SKF {m.fragment}" if m.fragment else ""
            text = f"{m.exchange} {kind} {m.message_id} [ {' '.join(m.payloads)} ]{frag}{flags}"
            if m.notifies:
                text += f" {', '.join(m.notifies)}"
            ladder.add_row(f"{m.t:.3f}", arrow, str(m.port), str(m.size), text)
        console.print(ladder)
    table = Table("check", "status", "evidence")
    for f in report.findings:
        table.add_row(f.id, f"[{STYLE[f.status]}]{f.status}[/]", f.detail)
    console.print(table)
    healthy = report.verdict.status == "healthy"
    console.print(
        Panel(
            report.verdict.summary,
            title="verdict: " + ("healthy" if healthy else "problems found"),
            border_style="green" if healthy else "red",
        )
    )
