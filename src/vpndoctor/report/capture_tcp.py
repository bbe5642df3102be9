"""Terminal rendering of a capture's TCP 443 flows (SSTP, IP-HTTPS, TLS): one row per flow with its counts
and what its hellos or request line said; `render_capture` calls it after the IKE ladders."""

from __future__ import annotations

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from vpndoctor.capture.model import CaptureReport, TcpFlow

__all__ = ["render_tcp_flows", "tcp_flow_summary"]

MAX_ROWS = 50


def tcp_flow_summary(flow: TcpFlow) -> str:
    """One line on what the flow carried, for people."""
    parts: list[str] = []
    if flow.tunnel:
        parts.append(flow.tunnel.upper() if flow.tunnel == "sstp" else "IP-HTTPS")
    if flow.http_request:
        parts.append(f'"{flow.http_request}"')
    if flow.http_response:
        parts.append(f'-> "{flow.http_response}"')
    if flow.protocol == "tls":
        hello = f"SNI {flow.sni}" if flow.sni else "no SNI"
        if flow.offered_versions:
            hello += f", offers {'/'.join(flow.offered_versions)}"
        parts.append(hello)
        if flow.version or flow.cipher_suite:
            parts.append(f"-> {flow.version or '?'} {flow.cipher_suite or ''}".rstrip())
    if flow.hello_retry:
        parts.append("(HelloRetryRequest)")
    if flow.alert:
        parts.append(f"server alert: {flow.alert}")
    if flow.protocol == "other":
        parts.append("not TLS or HTTP")
    if flow.protocol is None:
        parts.append("no data")
    if flow.resets_by_server:
        parts.append(f"reset by server x{flow.resets_by_server}")
    if flow.resets_by_client:
        parts.append(f"reset by client x{flow.resets_by_client}")
    return " ".join(parts)


def render_tcp_flows(report: CaptureReport, console: Console) -> None:
    if not report.tcp_flows:
        return
    table = Table(title=f"TCP 443 flows ({len(report.tcp_flows)})", box=None, padding=(0, 1))
    for column in ("client", "server", "pkts >", "pkts <", "bytes >", "bytes <", "what"):
        table.add_column(column, justify="right" if column.startswith(("pkts", "bytes")) else "left")
    for flow in report.tcp_flows[:MAX_ROWS]:
        table.add_row(
            flow.client,
            flow.server,
            str(flow.packets_to_server),
            str(flow.packets_to_client),
            str(flow.bytes_to_server),
            str(flow.bytes_to_client),
            escape(tcp_flow_summary(flow)),
        )
    console.print(table)
    if len(report.tcp_flows) > MAX_ROWS:
        console.print(f"... and {len(report.tcp_flows) - MAX_ROWS} more flows (all of them in --json)")
    if report.tcp_flows_beyond_cap:
        console.print(f"{report.tcp_flows_beyond_cap} packets of further TCP 443 flows not tracked")
