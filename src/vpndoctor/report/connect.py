"""Terminal rendering of a `ConnectReport`: the stages, what the gateway handed out, the Windows error, the
findings and the message ladder."""

from __future__ import annotations

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from vpndoctor.checks.connect import ConnectReport
from vpndoctor.report.diagnose import STYLE
from vpndoctor.report.tunnel import render_tunnel

_RESULT = {
    "ok": "[green]ok[/]",
    "failed": "[red]failed[/]",
    "not-reached": "[dim]-[/]",
    "skipped": "[dim]skipped[/]",
}


def render_connect(report: ConnectReport, console: Console) -> None:
    outcome = (
        "[bold green]connected[/] (CHILD_SA established)"
        if report.connected
        else f"[bold red]stopped at {report.stage_reached}[/]"
    )
    who = (
        f"device {escape(report.identity)}"
        if report.auth == "machine-certificate"
        else f"user {escape(report.user)}"
    )
    console.print(
        f"[bold]{escape(report.target)}[/] ({report.address}) port {report.port}/{report.natt_port}, "
        f"{who}: {outcome} in {report.duration_s:.2f} s, {report.round_trips} round trips"
    )
    stages = Table("stage", "result", "t (s)", "detail", box=None, padding=(0, 2))
    for s in report.stages:
        t = f"{s.t:.3f}" if s.t is not None else ""
        stages.add_row(s.stage, _RESULT[s.result], t, escape(s.detail or ""))
    console.print(stages)
    facts = Table.grid(padding=(0, 2))
    facts.add_column(style="bold")
    facts.add_column(overflow="fold")
    if report.windows_error is not None:
        w = report.windows_error
        name = f" {w.name}" if w.name else ""
        facts.add_row("[red]Windows error[/]", escape(f"{w.code}{name}: {w.why}"))
        if w.meaning:
            facts.add_row("", escape(w.meaning))
    if report.proposal:
        facts.add_row("IKE proposal", report.proposal.text)
    if report.idr:
        facts.add_row("IDr", escape(report.idr))
    if report.certificate:
        c = report.certificate
        facts.add_row("certificate", escape(f"{c.subject}  (issuer {c.issuer})"))
    if report.server_auth_method:
        verified = "[green]verified[/]" if report.server_auth_verified else "[red]NOT verified[/]"
        facts.add_row("server AUTH", f"{report.server_auth_method} {verified}")
    if report.eap_requests:
        facts.add_row("EAP", escape(" -> ".join(_runs(report.eap_requests))) + _eap_outcome(report))
    if report.eap_nak:
        ours = {"eap-tls": "TLS", "peap-mschapv2": "PEAP", "peap-tls": "PEAP"}.get(report.auth, "MSCHAPV2")
        facts.add_row("", escape(f"we refused {', '.join(report.eap_nak)} (Nak: {ours})"))
    if report.eap_tls is not None:
        _tls_rows(report, facts)
    user_lint = report.client_certificate_lint
    if user_lint is not None:
        facts.add_row("", f"[{STYLE[user_lint.status]}]{user_lint.status}[/] (vpndoctor cert --for user)")
        for f in user_lint.findings:
            if f.status in ("warn", "fail"):
                facts.add_row("", f"[{STYLE[f.status]}]{f.id}[/] {escape(f.detail)}")
    if report.eap_server_message:
        facts.add_row("", escape(f"server says: {report.eap_server_message}"))
    if report.auth == "machine-certificate":
        facts.add_row("our AUTH", escape(f"{report.machine_auth_method} with {report.identity}"))
        lint = report.machine_certificate_lint
        if lint is not None:
            facts.add_row(
                "machine cert", f"[{STYLE[lint.status]}]{lint.status}[/] (vpndoctor cert --for device)"
            )
            for f in lint.findings:
                if f.status in ("warn", "fail"):
                    facts.add_row("", f"[{STYLE[f.status]}]{f.id}[/] {escape(f.detail)}")
    if report.ike_sa_established and report.auth == "machine-certificate":
        facts.add_row("IKE SA", "established; the server's certificate AUTH [green]verified[/]")
    elif report.ike_sa_established:
        ok = "[green]verified[/]" if report.responder_auth_verified else "[red]NOT verified[/]"
        facts.add_row("IKE SA", f"established; the server's AUTH after EAP {ok}")
    if report.child_sa:
        c2 = report.child_sa
        facts.add_row(
            "CHILD_SA",
            escape(f"ESP {c2.esp_proposal}, SPIs {c2.spi_i} (in) / {c2.spi_r} (out)"),
        )
        facts.add_row("", escape(f"{', '.join(c2.ts_i)} === {', '.join(c2.ts_r)}"))
    if report.config:
        cfg = report.config
        facts.add_row("address", escape(", ".join(cfg.ipv4 + cfg.ipv6) or "-"))
        facts.add_row("DNS", escape(", ".join(cfg.dns) or "-") + escape(_suffix(cfg.dns_suffix)))
        if cfg.subnets:
            facts.add_row("routes", escape(", ".join(cfg.subnets)))
    if report.error_notify:
        facts.add_row("[red]error[/]", f"server answered {report.error_notify}")
    if report.failure and not report.connected:
        facts.add_row("[red]why[/]", escape(report.failure))
    if report.keys_out:
        facts.add_row("keys", escape(f"IKE SA keys written to {report.keys_out} (Wireshark format)"))
    if report.left_sa_on_server:
        facts.add_row(
            "[yellow]server state[/]", "the server may still hold an SA of ours (end not confirmed)"
        )
    console.print(facts)
    ladder = Table("t (s)", "", "port", "bytes", "message", box=None, padding=(0, 1))
    for d in report.datagrams:
        arrow = "->" if d.dir == "out" else "<-"
        times = f" [bold](x{d.repeat})[/]" if d.repeat > 1 else ""
        ladder.add_row(f"{d.t:.3f}", arrow, str(d.port), str(d.size), escape(d.summary) + times)
    if report.datagrams_dropped:
        ladder.add_row("", "", "", "", f"[yellow]... {report.datagrams_dropped} more datagrams, not kept[/]")
    console.print(ladder)
    if report.tunnel is not None:
        render_tunnel(report.tunnel, console)
    findings = Table("check", "status", "detail")
    for f in report.findings:
        findings.add_row(f.id, f"[{STYLE[f.status]}]{f.status}[/]", escape(f.detail))
    console.print(findings)
    lint_findings = report.machine_certificate_lint.findings if report.machine_certificate_lint else []
    for f in [*report.findings, *lint_findings]:
        if f.status == "fail" and f.remedy:
            console.print(f"[bold]{f.id}[/]: [cyan]{escape(f.remedy)}[/]")


def _runs(names: list[str]) -> list[str]:
    """["PEAP", "PEAP", "PEAP"] -> ["PEAP (x3)"]: a TLS-based method takes many rounds."""
    out: list[str] = []
    count = 0
    for i, name in enumerate(names):
        count += 1
        if i + 1 == len(names) or names[i + 1] != name:
            out.append(f"{name} (x{count})" if count > 1 else name)
            count = 0
    return out


def _tls_rows(report: ConnectReport, facts: Table) -> None:
    tls = report.eap_tls
    assert tls is not None
    if tls.server_certificate:
        verdict = (
            "[green]trusted[/]"
            if tls.server_verified
            else f"[red]refused[/] {escape(tls.server_reason or '')}"
        )
        facts.add_row(
            "RADIUS cert", escape(f"{tls.server_certificate} (issuer {tls.server_issuer}) ") + verdict
        )
    if tls.tls_version:
        facts.add_row("EAP TLS", escape(f"{tls.tls_version} {tls.cipher}"))
    if tls.client_certificate:
        refused = "  [red]refused by the RADIUS server[/]" if tls.client_certificate_refused else ""
        facts.add_row("our cert", escape(tls.client_certificate) + refused)
    if tls.alert_sent:
        facts.add_row("", escape(f"we ended the TLS handshake with alert {tls.alert_sent}"))
    if tls.alert_received:
        facts.add_row("", escape(f"the RADIUS server sent alert {tls.alert_received}"))
    if tls.peap_result:
        binding = {"verified": "crypto binding verified", "failed": "crypto binding FAILED"}.get(
            tls.crypto_binding or "", "no crypto binding asked for"
        )
        facts.add_row("PEAP", escape(f"inner EAP-{tls.peap_inner}: Result TLV {tls.peap_result}; {binding}"))


def _eap_outcome(report: ConnectReport) -> str:
    if report.auth_result == "success":
        return "  [green]success[/]"
    if report.auth_result == "failure":
        code = f" (E={report.mschapv2_error} {report.mschapv2_error_name})" if report.mschapv2_error else ""
        return f"  [red]failure[/]{escape(code)}"
    return ""


def _suffix(suffixes: list[str]) -> str:
    return f"; suffix {', '.join(suffixes)}" if suffixes else ""
