"""Terminal rendering of an `IkeObservation`."""

from __future__ import annotations

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from vpndoctor.observations.ike import IkeObservation, IkeRevocationVerdict


def _yes(value: bool | None) -> str:
    return {True: "[green]yes[/]", False: "[red]no[/]", None: "-"}[value]


def _revocation_line(v: IkeRevocationVerdict) -> str:
    """The verdict `checks.revocation` gave (carried in the observation), in one line."""
    if v.status == "good":
        if not v.warnings:
            return "[green]good[/] (not revoked)"
        return f"[green]good[/] (not revoked) [yellow]but:[/] {escape('; '.join(v.warnings))}"
    if v.status == "revoked":
        when = ", ".join(x for x in (v.revocation_reason, (v.revoked_at or "")[:10]) if x)
        return f"[bold red]revoked[/] ({escape(when or 'no reason given')}): {escape(v.subject or '')}"
    if v.status == "offline":
        return f"[yellow]cannot be checked[/] ({escape(v.reason)}: {escape(v.why)})"
    if v.status == "no-info":
        return f"[yellow]no CDP or OCSP[/]: {escape(v.why)}"
    return f"not checked ({escape(v.why)})"


def render_ike(obs: IkeObservation, console: Console) -> None:
    reached = {
        "IKE_AUTH": "[bold green]IKE_AUTH[/]",
        "IKE_SA_INIT": "[bold yellow]IKE_SA_INIT[/]",
        "none": "[bold red]none[/]",
    }[obs.reached]
    console.print(
        f"[bold]{obs.target}[/] ({obs.address}) port {obs.port}/{obs.natt_port}: reached {reached}"
        f" in {obs.duration_s:.2f} s, {obs.round_trips} round trips"
    )
    facts = Table.grid(padding=(0, 2))
    facts.add_column(style="bold")
    facts.add_column()
    if obs.stateless_answer:
        word = "[green]accepted[/]" if obs.stateless_answer == "accepted" else "[red]refused[/]"
        facts.add_row("proposals", f"{word} (stateless question: the server kept no SA)")
    if obs.proposal:
        facts.add_row("proposal", obs.proposal.text)
    if obs.ke_group_requested:
        facts.add_row("KE group", f"server asked for {obs.ke_group_requested} (INVALID_KE_PAYLOAD)")
    if obs.cookie_rounds:
        facts.add_row("cookie", f"server demanded a COOKIE ({obs.cookie_rounds}x)")
    facts.add_row("notifies", ", ".join(obs.notifies) or "-")
    facts.add_row("fragmentation", _yes(obs.fragmentation_supported) if obs.reached != "none" else "-")
    facts.add_row(
        "NAT detected",
        (
            _yes(obs.nat_detected)
            + (" (server side)" if obs.nat_remote else "")
            + (" (our side)" if obs.nat_local else "")
        )
        if obs.reached != "none"
        else "-",
    )
    facts.add_row("NAT-T used", _yes(obs.natt_used))
    if obs.vendor_ids:
        facts.add_row("vendor IDs", ", ".join(obs.vendor_ids))
    if obs.idr:
        facts.add_row("IDr", obs.idr)
    if obs.certificate:
        c = obs.certificate
        trust = "" if c.trusted is None else ("  trusted" if c.trusted else "  [red]NOT trusted by --ca[/]")
        facts.add_row("certificate", f"{c.subject}  (issuer {c.issuer}){trust}")
        facts.add_row(
            "",
            f"SAN {', '.join(c.san_dns + c.san_ip) or '-'}; EKU {', '.join(c.eku) or '-'};"
            f" valid {c.not_before[:10]} .. {c.not_after[:10]}; {c.key}",
        )
    if obs.revocation_verdict:
        facts.add_row("revocation", _revocation_line(obs.revocation_verdict))
    if obs.auth_method:
        facts.add_row(
            "AUTH",
            f"{obs.auth_method}: verified {_yes(obs.auth_verified)}"
            + (f" ({obs.auth_reason})" if obs.auth_reason else ""),
        )
    if obs.eap_type:
        facts.add_row("EAP", f"server asks for {obs.eap_type}")
    if obs.response_fragments or obs.request_fragments:
        facts.add_row(
            "IKE fragments",
            f"request {obs.request_fragments or 'unfragmented'}, "
            f"response {obs.response_fragments or 'unfragmented'}",
        )
    if obs.left_half_open:
        facts.add_row("[yellow]server state[/]", "the server may still hold a half-open SA of ours")
    if obs.error_notify and not (obs.stateless_answer or obs.error_notify == "AUTHENTICATION_FAILED"):
        facts.add_row("[red]error[/]", f"server answered {obs.error_notify}")
    elif obs.error_notify:
        facts.add_row("answer", obs.error_notify)
    if obs.timeout_exchange:
        facts.add_row("[red]timeout[/]", f"no answer to {obs.timeout_exchange}")
    if obs.peer_error:
        facts.add_row("[red]protocol[/]", obs.peer_error)
    console.print(facts)
    # The transcript is bounded by the probe (a run of identical datagrams is one row with a count, and
    # what did not fit is only counted), so printing it costs little whatever the server sent.
    ladder = Table("t (s)", "", "port", "bytes", "message", box=None, padding=(0, 1))
    for d in obs.datagrams:
        arrow = "->" if d.dir == "out" else "<-"
        times = f" [bold](x{d.repeat})[/]" if d.repeat > 1 else ""
        ladder.add_row(f"{d.t:.3f}", arrow, str(d.port), str(d.size), escape(d.summary) + times)
    if obs.datagrams_dropped:
        ladder.add_row(
            "",
            "",
            "",
            "",
            f"[yellow]... {obs.datagrams_dropped} more datagrams, not kept in the transcript[/]",
        )
    console.print(ladder)
