"""`vpndoctor tls HOST[:PORT]`: the raw TLS endpoint audit (versions, suites, NULL suites, client
certificates, server certificate, resumption) with DirectAccess/Always On VPN findings.

A thin typer command over `vpndoctor.probes.tls_audit` (the I/O), `vpndoctor.checks.tls` (the judgement)
and `vpndoctor.report.tls` (the terminal).
"""

from __future__ import annotations

from typing import Annotated

import typer

from vpndoctor.cli.output import emit, status, warn
from vpndoctor.errors import UsageError

app = typer.Typer()


@app.command("tls")
def tls_cmd(
    target: Annotated[str, typer.Argument(help="HOST[:PORT] (default port 443; IPv6 as [addr]:port).")],
    sni: Annotated[
        str | None, typer.Option("--sni", help="Server name to send (default: HOST if a name).")
    ] = None,
    ca: Annotated[list[str] | None, typer.Option("--ca", help="Trust anchor (PEM/DER), repeatable.")] = None,
    timeout_s: Annotated[float, typer.Option("--timeout-s", help="Total deadline in seconds.")] = 10.0,
    concurrency: Annotated[
        int, typer.Option("--concurrency", help="Connections open at once (1-64).", min=1, max=64)
    ] = 8,
    client_cert: Annotated[
        str | None, typer.Option("--client-cert", help="Client certificate (PEM) to present.")
    ] = None,
    client_key: Annotated[str | None, typer.Option("--client-key", help="Its private key (PEM).")] = None,
    as_json: Annotated[
        bool, typer.Option("--json", help="One JSON object on stdout (schema/tls.json).")
    ] = False,
) -> None:
    """Audit a TLS endpoint (SSTP, IP-HTTPS, an ADC): versions, suites, NULL suites, client certificates.

    Exit 0 when nothing fails, 1 when problems are found (or the server does not speak TLS), 3 when the
    endpoint is unreachable or silent, 2 on a usage or local error.
    """
    from vpndoctor.checks.tls import exit_code, judge
    from vpndoctor.probes.tls_audit import AuditRequest, audit, check_client_certificate, parse_endpoint
    from vpndoctor.report.tls import render_tls

    if not timeout_s > 0 or timeout_s > 3600:
        raise UsageError("--timeout-s must be between 0 and 3600 seconds")
    if sni is not None and (not sni.strip() or any(c.isspace() for c in sni) or len(sni) > 253):
        raise UsageError(f"--sni {sni!r}: not a server name")
    if sni is not None:
        try:
            sni.encode("idna")
        except UnicodeError:
            raise UsageError(f"--sni {sni!r}: not a valid DNS name") from None
    parse_endpoint(target)
    check_client_certificate(client_cert, client_key)
    request = AuditRequest(
        target=target,
        sni=sni,
        ca_files=ca or [],
        timeout_s=timeout_s,
        concurrency=concurrency,
        client_cert=client_cert,
        client_key=client_key,
    )
    with status(f"auditing {target}...", quiet=as_json):
        obs = audit(request)
    report = judge(obs)
    emit(report, as_json=as_json, render=render_tls)
    if report.error is not None:
        warn(f"{target}: {report.error}", label="")
    raise typer.Exit(exit_code(report))
