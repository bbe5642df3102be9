"""Terminal rendering of `SstpReport` and `IphttpsReport`: facts, findings, the message ladder."""

from __future__ import annotations

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from vpndoctor.checks.model import Finding
from vpndoctor.checks.sstp import IphttpsReport, SstpReport
from vpndoctor.observations.sstp import TlsInfo
from vpndoctor.report.diagnose import STYLE


def _facts() -> Table:
    facts = Table.grid(padding=(0, 2))
    facts.add_column(style="bold")
    facts.add_column(overflow="fold")
    return facts


def _tls_rows(facts: Table, tls: TlsInfo | None) -> None:
    if tls is None:
        return
    facts.add_row("TLS", escape(f"{tls.version} {tls.cipher} ({tls.cipher_bits} bits)"))
    if tls.client_certificate_requested is not None:
        facts.add_row("client cert", "requested" if tls.client_certificate_requested else "not requested")
    c = tls.certificate
    if c is not None:
        trust = "" if c.trusted is None else ("  trusted" if c.trusted else "  [red]NOT trusted[/]")
        facts.add_row("certificate", escape(f"{c.subject}  (issuer {c.issuer})") + trust)
        facts.add_row(
            "",
            escape(
                f"SAN {', '.join(c.san_dns + c.san_ip) or '-'}; EKU {', '.join(c.eku) or '-'}; "
                f"valid {c.not_before[:10]} .. {c.not_after[:10]}; {c.key}"
            ),
        )


def _findings(console: Console, findings: list[Finding]) -> None:
    table = Table("check", "status", "detail")
    for f in findings:
        table.add_row(f.id, f"[{STYLE[f.status]}]{f.status}[/]", escape(f.detail))
    console.print(table)
    for f in findings:
        if f.status == "fail" and f.remedy:
            console.print(f"[bold]{f.id}[/]: [cyan]{escape(f.remedy)}[/]")


def render_sstp(report: SstpReport, console: Console) -> None:
    where = f"{report.target} ({report.address or 'unresolved'}) port {report.port}"
    reached = {
        "sstp": "[bold green]SSTP[/]",
        "http": "[bold yellow]HTTP[/]",
        "tls": "[bold yellow]TLS[/]",
        "tcp": "[bold red]TCP[/]",
        "none": "[bold red]none[/]",
    }[report.reached]
    console.print(
        f"[bold]{escape(where)}[/]: reached {reached} in {report.duration_s:.2f} s, "
        f"{report.round_trips} round trips"
    )
    facts = _facts()
    _tls_rows(facts, report.tls)
    if report.http_status is not None:
        facts.add_row(
            "HTTP",
            escape(f"{report.http_status} {report.http_reason or ''}  Server: {report.server_header or '-'}"),
        )
    if report.call_connect == "ack":
        facts.add_row(
            "call connect",
            f"[green]ACK[/]  crypto binding {'+'.join(report.crypto_binding_hashes) or '-'}"
            f" (bitmask 0x{report.crypto_binding_hash_bitmask or 0:02x}), nonce {report.nonce_bytes} bytes",
        )
    elif report.call_connect == "nak":
        facts.add_row("call connect", "[red]NAK[/] " + escape(", ".join(s.status for s in report.nak_status)))
    if report.teardown:
        facts.add_row("teardown", escape(report.teardown))
    if report.error:
        facts.add_row("[red]error[/]", escape(f"{report.error_stage}: {report.error}"))
    for note in report.notes:
        facts.add_row("note", escape(note))
    console.print(facts)
    ladder = Table("t (s)", "", "bytes", "message", box=None, padding=(0, 1))
    for m in report.messages:
        ladder.add_row(f"{m.t:.3f}", "->" if m.dir == "out" else "<-", str(m.bytes), escape(m.summary))
    if report.messages:
        console.print(ladder)
    _findings(console, report.findings)


def render_iphttps(report: IphttpsReport, console: Console) -> None:
    console.print(
        f"[bold]{escape(report.host)}[/] ({escape(report.address or 'unresolved')}) port {report.port} "
        f"{escape(report.path)}: client auth [bold]{report.client_auth}[/], NULL encryption "
        f"{'[green]yes[/]' if report.null_encryption else '[yellow]no[/]'}, in {report.duration_s:.2f} s"
    )
    facts = _facts()
    facts.add_row("offered", escape(f"{report.max_tls_version} max, {report.offered_ciphers}"))
    for a in report.attempts:
        facts.add_row(f"[bold]{a.label}[/]", "")
        _tls_rows(facts, a.tls)
        if a.http_status is not None:
            facts.add_row(
                "HTTP", escape(f"{a.http_status} {a.http_reason or ''}  Server: {a.server_header or '-'}")
            )
        if a.error:
            facts.add_row("error", escape(f"{a.error_stage}: {a.error}"))
    if report.error:
        facts.add_row("[red]error[/]", escape(report.error))
    console.print(facts)
    _findings(console, report.findings)
