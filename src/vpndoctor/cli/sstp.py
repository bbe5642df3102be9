"""`vpndoctor sstp` and `vpndoctor iphttps`: thin typer commands over `probes.sstp` / `probes.iphttps`,
judged by `checks.sstp`, rendered by `report.sstp`.
"""

from __future__ import annotations

import asyncio
from typing import Annotated

import typer

from vpndoctor.cli.output import emit
from vpndoctor.errors import UsageError
from vpndoctor.hostport import parse_host_port

sstp_app = typer.Typer()
iphttps_app = typer.Typer()

SniOpt = Annotated[str | None, typer.Option("--sni", help="TLS server name to send (default: the host).")]
CaOpt = Annotated[
    list[str] | None,
    typer.Option("--ca", help="Trust anchor (PEM/DER), repeatable; default: the system store."),
]
TimeoutOpt = Annotated[float, typer.Option("--timeout-s", help="Total deadline in seconds.")]


def split_host_port(text: str, default_port: int = 443) -> tuple[str, int]:
    """HOST, HOST:PORT, [V6], [V6]:PORT or a bare IPv6 address (see `vpndoctor.hostport`)."""
    where = parse_host_port(text, default_port)
    return where.host, where.port


@sstp_app.command("sstp")
def sstp_cmd(
    target: Annotated[str, typer.Argument(metavar="HOST[:PORT]", help="SSTP server (default port 443).")],
    sni: SniOpt = None,
    ca: CaOpt = None,
    timeout_s: TimeoutOpt = 5.0,
    as_json: Annotated[
        bool, typer.Option("--json", help="One JSON object on stdout (schema/sstp.json).")
    ] = False,
) -> None:
    """An SSTP client handshake: TLS, SSTP_DUPLEX_POST, Call Connect Request (PPP), then a clean Call Abort.

    Exit 0 when nothing fails, 1 when problems are found, 3 when TCP does not connect, 2 on a usage error.
    """
    from vpndoctor.checks.sstp import exit_code, sstp_report
    from vpndoctor.probes.sstp import run_sstp_probe
    from vpndoctor.report.sstp import render_sstp
    from vpndoctor.trust import trust_anchors

    if timeout_s <= 0:
        raise UsageError("--timeout-s must be positive")
    host, port = split_host_port(target)
    anchors, _ = trust_anchors(ca or [])
    obs = asyncio.run(run_sstp_probe(host, port=port, sni=sni, anchors=anchors, timeout_s=timeout_s))
    report = sstp_report(obs)
    emit(report, as_json=as_json, render=render_sstp)
    raise typer.Exit(exit_code(report.findings, unreachable=obs.reached == "none"))


@iphttps_app.command("iphttps")
def iphttps_cmd(
    target: Annotated[
        str, typer.Argument(metavar="URL-or-HOST", help="https://host[:port]/IPHTTPS or host[:port].")
    ],
    sni: SniOpt = None,
    ca: CaOpt = None,
    client_cert: Annotated[
        str | None, typer.Option("--client-cert", help="Client certificate (PEM) to authenticate with.")
    ] = None,
    client_key: Annotated[
        str | None, typer.Option("--client-key", help="Its private key (PEM), if not in --client-cert.")
    ] = None,
    timeout_s: TimeoutOpt = 5.0,
    as_json: Annotated[
        bool, typer.Option("--json", help="One JSON object on stdout (schema/iphttps.json).")
    ] = False,
) -> None:
    """A DirectAccess IP-HTTPS endpoint as a Windows 8+ client sees it: NULL suites offered first, POST
    /IPHTTPS, client-certificate preauthentication enforced or not (tried without a certificate).

    Exit 0 when nothing fails, 1 when problems are found, 3 when TCP does not connect, 2 on a usage error.
    """
    from vpndoctor.checks.sstp import exit_code, iphttps_report
    from vpndoctor.probes.iphttps import run_iphttps_probe
    from vpndoctor.report.sstp import render_iphttps
    from vpndoctor.trust import trust_anchors

    if timeout_s <= 0:
        raise UsageError("--timeout-s must be positive")
    anchors, _ = trust_anchors(ca or [])
    obs = asyncio.run(
        run_iphttps_probe(
            target,
            sni=sni,
            anchors=anchors,
            client_cert=client_cert,
            client_key=client_key,
            timeout_s=timeout_s,
        )
    )
    report = iphttps_report(obs)
    emit(report, as_json=as_json, render=render_iphttps)
    unreachable = obs.error is not None or all(a.reached == "none" for a in obs.attempts)
    raise typer.Exit(exit_code(report.findings, unreachable=unreachable))
