"""Terminal rendering of a `CertReport`: per certificate its identity, purpose and chain, then its findings;
the verdict last (JSON is the model itself, `CertReport.model_dump_json()`)."""

from __future__ import annotations

from rich.console import Console
from rich.markup import escape
from rich.panel import Panel
from rich.table import Table

from vpndoctor.checks.cert import CertReport, LintedCertificate

STYLE = {"pass": "green", "warn": "yellow", "fail": "bold red", "skip": "dim", "error": "magenta"}


def _purpose(c: LintedCertificate) -> str:
    if c.purpose is None:
        return "[yellow]purpose unknown[/]"
    how = {"--for": "--for", "eku": "from its EKUs", "none": ""}[c.purpose_from]
    return f"{c.purpose} ({how})"


def _certificate(c: LintedCertificate, console: Console) -> None:
    console.print(
        f"[bold]{escape(c.source)}[/]  {escape(c.subject) or '[dim](empty subject)[/]'}  {_purpose(c)}  "
        f"[{STYLE[c.status]}]{c.status}[/]"
    )
    facts = Table.grid(padding=(0, 2))
    facts.add_column(style="bold")
    facts.add_column()
    facts.add_row("issuer", f"{escape(c.issuer)}  serial {c.serial}")
    facts.add_row("valid", f"{c.not_before[:10]} .. {c.not_after[:10]}")
    names = [*c.san_dns, *c.san_ip, *(f"UPN {u}" for u in c.upn)]
    facts.add_row("SAN", escape(", ".join(names)) or "-")
    usage = ", ".join(c.key_usage) if c.key_usage is not None else "(no extension)"
    facts.add_row("EKU / KU", f"{escape(', '.join(c.eku)) or '(no extension)'} / {usage}")
    facts.add_row("key", f"{c.key_type or '?'} {c.key_bits or ''}; {c.signature_algorithm or '?'}")
    reach = {True: " [green](--ca)[/]", False: " [red](incomplete)[/]", None: ""}[c.chain_complete]
    facts.add_row("chain", escape(" -> ".join(c.chain)) + reach)
    if c.also_in:
        facts.add_row("also in", escape(", ".join(c.also_in)))
    console.print(facts)
    table = Table("check", "status", "evidence")
    for f in c.findings:
        table.add_row(f.id, f"[{STYLE[f.status]}]{f.status}[/]", escape(f.detail))
    console.print(table)


def render_cert(report: CertReport, console: Console) -> None:
    head = Table.grid(padding=(0, 2))
    head.add_column(style="bold")
    head.add_column()
    for i, f in enumerate(report.files):
        key = ", private key" if f.private_key else ""
        plural = "s" if f.certificates != 1 else ""
        head.add_row(
            "files" if i == 0 else "", escape(f"{f.path} ({f.format}, {f.certificates} cert{plural}{key})")
        )
    for i, ca in enumerate(report.ca_certificates):
        head.add_row(
            "CA certificates" if i == 0 else "", escape(f"{ca.subject} ({ca.source}): chain material")
        )
    if report.ca_files:
        head.add_row("--ca", escape(", ".join(report.ca_files)))
    console.print(head)
    for c in report.certificates:
        console.print()
        _certificate(c, console)
    healthy = report.verdict.status == "healthy"
    body = escape(report.verdict.summary)
    if not healthy:
        remedies: dict[str, str] = {}
        for c in report.certificates:
            for found in c.findings:
                if found.status == "fail" and found.remedy:
                    remedies.setdefault(found.id, found.remedy)
        for fid in report.verdict.root_causes:
            if fid in remedies:
                body += f"\n\n[bold]{fid}[/]: [cyan]{escape(remedies[fid])}[/]"
    console.print(
        Panel(
            body,
            title="verdict: " + ("healthy" if healthy else "problems found"),
            border_style="green" if healthy else "red",
        )
    )
