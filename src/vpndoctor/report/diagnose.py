"""Terminal rendering of a `DiagnoseReport`: the findings table, then the verdict paragraph."""

from __future__ import annotations

from rich.console import Console
from rich.panel import Panel
from rich.table import Table

from vpndoctor.checks.model import DiagnoseReport

STYLE = {"pass": "green", "warn": "yellow", "fail": "bold red", "skip": "dim", "error": "magenta"}


def render_diagnose(report: DiagnoseReport, console: Console) -> None:
    addrs = ", ".join(report.target.addresses) or "no address"
    console.print(
        f"[bold]{report.target.name}[/] ({addrs}): {len(report.findings)} checks in "
        f"{report.duration_s:.2f} s, {report.round_trips} sequential round trips"
    )
    table = Table("check", "status", "evidence", show_lines=False)
    for f in report.findings:
        table.add_row(f.id, f"[{STYLE[f.status]}]{f.status}[/]", f.detail)
    console.print(table)
    healthy = report.verdict.status == "healthy"
    # The JSON summary carries the first fix inline; here every root cause gets its remedy below instead.
    body = report.verdict.summary.split(" First fix: ")[0]
    if not healthy:
        for fid in report.verdict.root_causes:
            finding = next(x for x in report.findings if x.id == fid)
            codes = (
                f" (Windows error {', '.join(map(str, finding.error_codes))})" if finding.error_codes else ""
            )
            body += f"\n\n[bold]{fid}[/]{codes}: {finding.detail}"
            if finding.remedy:
                body += f"\n[cyan]{finding.remedy}[/]"
    console.print(
        Panel(
            body,
            title="verdict: " + ("healthy" if healthy else "problems found"),
            border_style="green" if healthy else "red",
        )
    )
