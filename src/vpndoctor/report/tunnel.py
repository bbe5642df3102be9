"""Terminal rendering of what passed through the tunnel (`connect --ping/--resolve/--tcp/--mtu/--rekey`):
one line per probe with its round-trip times, after the IKE ladder."""

from __future__ import annotations

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from vpndoctor.observations.tunnel import TunnelObservation

_GOOD = {"reply", "answer", "open", "refused", "ok", "crossed"}


def _style(outcome: str) -> str:
    return f"[green]{outcome}[/]" if outcome in _GOOD else f"[red]{outcome}[/]"


def _ms(values: list[float]) -> str:
    return ", ".join(f"{v:.1f}" for v in values) + " ms" if values else ""


def render_tunnel(t: TunnelObservation, console: Console) -> None:
    if t.skipped is not None:
        console.print(f"[bold]tunnel[/]: [yellow]no traffic[/] - {escape(t.skipped)}")
        return
    console.print(
        f"[bold]tunnel[/]: from {t.inner_address}, ESP {t.esp_proposal} in UDP {t.udp_port}, SPIs "
        f"{t.spi_i} (in) / {t.spi_r} (out); {t.packets_sent} ESP packets sent, {t.packets_received} "
        f"received in {t.duration_s:.2f} s"
    )
    rows = Table("probe", "target", "result", "round trip", "detail", box=None, padding=(0, 2))
    for p in t.ping:
        detail = f"{p.received}/{p.sent} replies"
        if p.icmp_error:
            detail = f"{p.icmp_error} from {p.icmp_from}"
        rows.add_row("ping", p.target, _style(p.outcome), _ms(p.rtt_ms), escape(detail))
    for r in t.resolve:
        detail = ", ".join(r.addresses) or (r.rcode or r.icmp_error or f"{r.attempts} queries")
        rtt = _ms([r.rtt_ms]) if r.rtt_ms is not None else ""
        rows.add_row("resolve", escape(f"{r.name} @ {r.server}"), _style(r.outcome), rtt, escape(detail))
    for c in t.tcp:
        detail = f"SYN-ACK MSS {c.mss_bytes}" if c.mss_bytes else (c.icmp_error or f"{c.attempts} SYNs")
        rtt = _ms([c.rtt_ms]) if c.rtt_ms is not None else ""
        rows.add_row("tcp", f"{c.host}:{c.port}", _style(c.outcome), rtt, escape(detail))
    if t.mtu is not None:
        m = t.mtu
        result = f"[green]{m.tunnel_mtu_bytes}[/]" if m.tunnel_mtu_bytes else "[red]none[/]"
        mark = {"crossed": "+", "lost": "-", "frag-needed": "!", "too-big-here": "x"}
        sizes = " ".join(f"{p.size_bytes}{mark[p.result]}" for p in m.probes)
        legend = "+ crossed, - lost, ! frag-needed, x too big here"
        detail = f"MSS {m.tcp_mss_bytes}; {m.probes_sent} probes ({legend}): {sizes}"
        if m.frag_needed_seen:
            detail += "; ICMP fragmentation needed seen"
        rows.add_row("mtu", m.target, result, "", escape(detail))
    if t.rekey is not None:
        k = t.rekey
        for name, ex in (("rekey child", k.child), ("rekey ike", k.ike), ("dpd", k.dpd)):
            detail = ex.notify or ex.detail or ""
            if name == "rekey child":
                detail = f"PFS {k.pfs_group or 'none'}" + (f"; {detail}" if detail else "")
            rtt = _ms([ex.rtt_ms]) if ex.rtt_ms is not None else ""
            rows.add_row(name, "", _style(ex.outcome), rtt, escape(detail))
        if k.traffic_after is not None:
            a = k.traffic_after
            rows.add_row("ping after", a.target, _style(a.outcome), _ms(a.rtt_ms), f"{a.received}/{a.sent}")
    console.print(rows)
    for e in t.esp_errors:
        console.print(f"  [yellow]{escape(e)}[/]")
    if t.esp_errors_dropped:
        console.print(f"  [yellow]... {t.esp_errors_dropped} more ESP errors[/]")
