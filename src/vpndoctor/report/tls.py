"""Terminal rendering of a `TlsReport`: endpoint facts, suites per version, findings, verdict (JSON is the
model itself, `TlsReport.model_dump_json()`)."""

from __future__ import annotations

from rich.console import Console
from rich.markup import escape
from rich.panel import Panel
from rich.table import Table

from vpndoctor.checks.tls import TlsReport

STYLE = {"pass": "green", "warn": "yellow", "fail": "bold red", "skip": "dim", "error": "magenta"}


def _yes(value: bool | None) -> str:
    return {True: "[green]yes[/]", False: "[red]no[/]", None: "[dim]?[/]"}[value]


def render_tls(report: TlsReport, console: Console) -> None:
    sni = f", SNI {escape(report.sni)}" if report.sni else ""
    console.print(
        f"[bold]{escape(report.target)}[/] ({report.address} port {report.port}{sni}): "
        f"{report.jobs.connections} connections (at most {report.jobs.max_concurrent} at once) "
        f"in {report.duration_s:.2f} s"
    )
    if report.error:
        console.print(f"[bold red]{escape(report.error)}[/]")
    facts = Table.grid(padding=(0, 2))
    facts.add_column(style="bold")
    facts.add_column()
    facts.add_row(
        "versions",
        "  ".join(
            f"{name} {_yes(None if name in report.versions_unknown else ok)}"
            for name, ok in report.versions.items()
        ),
    )
    facts.add_row("NULL suites", escape(", ".join(report.null_suites)) or "none")
    ca = escape("; ".join(report.client_ca_names)) or "-"
    enforced = f" (enforced by {report.client_auth_enforced_by})" if report.client_auth_enforced_by else ""
    facts.add_row("client cert", f"{report.client_auth}{enforced}; CA names: {ca}")
    for label, result in (
        ("--client-cert", report.client_certificate),
        ("foreign cert", report.foreign_certificate),
    ):
        if result is not None:
            verdict = "[green]accepted[/]" if result.accepted else "[yellow]refused[/]"
            facts.add_row(label, f"{verdict}: {escape(result.detail)}")
    c = report.certificate
    if c is not None:
        trust = "[green]trusted[/]" if c.trusted else "[red]NOT trusted[/]"
        facts.add_row(
            "certificate",
            f"{escape(c.subject)} (issuer {escape(c.issuer)}), {trust} by {escape(c.trust_anchors)}",
        )
        facts.add_row(
            "",
            f"SAN {escape(', '.join(c.san_dns + c.san_ip)) or '-'}; EKU {', '.join(c.eku) or '-'}; "
            f"{c.key_type} {c.key_bits or ''}; {c.signature_algorithm}; "
            f"valid {c.not_before[:10]} .. {c.not_after[:10]}",
        )
    r = report.resumption
    facts.add_row("resumption", f"session id {_yes(r.session_id)}  ticket {_yes(r.ticket)}")
    console.print(facts)
    suites = Table("version", "order", "accepted suites", box=None, padding=(0, 1))
    for version, names in report.suites.items():
        if not names:
            continue
        pref = report.server_preference.get(version)
        order = {True: "server", False: "client", None: "-"}[pref]
        suites.add_row(version, order, escape("\n".join(names)))
    if suites.row_count:
        console.print(suites)
    table = Table("check", "status", "evidence")
    for f in report.findings:
        table.add_row(f.id, f"[{STYLE[f.status]}]{f.status}[/]", escape(f.detail))
    console.print(table)
    if report.errors:
        console.print(
            f"[dim]{len(report.errors)} connection(s) ended in error or were not scheduled; see --json[/]"
        )
    healthy = report.verdict.status == "healthy"
    body = escape(report.verdict.summary.split(" First fix: ")[0])
    if not healthy:
        for fid in report.verdict.root_causes:
            finding = next(x for x in report.findings if x.id == fid)
            if finding.remedy:
                body += f"\n\n[bold]{fid}[/]: [cyan]{escape(finding.remedy)}[/]"
    console.print(
        Panel(
            body,
            title="verdict: " + ("healthy" if healthy else "problems found"),
            border_style="green" if healthy else "red",
        )
    )
