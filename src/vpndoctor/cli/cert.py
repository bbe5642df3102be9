"""`vpndoctor cert FILE...`: lint user, device and server certificates for Always On VPN and DirectAccess.

A thin typer command over `vpndoctor.certfiles` (reading PEM/DER/PKCS#12/PKCS#7, bounded),
`vpndoctor.checks.cert` (the judgement) and `vpndoctor.report.cert` (the terminal).
"""

from __future__ import annotations

from enum import StrEnum
from typing import TYPE_CHECKING, Annotated

import typer

from vpndoctor.cli.output import emit
from vpndoctor.errors import UsageError

if TYPE_CHECKING:
    from vpndoctor.checks.certificate import Purpose

app = typer.Typer()


class PurposeOption(StrEnum):
    user = "user"
    device = "device"
    server = "server"


@app.command("cert")
def cert_cmd(
    files: Annotated[
        list[str],
        typer.Argument(
            metavar="FILE...",
            help="Certificate files: PEM (one or more certificates, a key beside them is noted), DER, "
            "PKCS#12 (.pfx/.p12) or PKCS#7 (.p7b). Intermediates may come in the same or other files.",
            show_default=False,
        ),
    ],
    ca: Annotated[
        list[str] | None, typer.Option("--ca", help="Trust anchor (root CA), PEM/DER/PKCS#7; repeatable.")
    ] = None,
    purpose: Annotated[
        PurposeOption | None,
        typer.Option(
            "--for", help="What the certificates are for (default: what each one's EKUs and UPN say)."
        ),
    ] = None,
    name: Annotated[
        str | None,
        typer.Option("--name", help="The device FQDN (device), or the name clients dial (server)."),
    ] = None,
    password_env: Annotated[
        str | None,
        typer.Option(
            "--password-env",
            metavar="VAR",
            help="Environment variable holding the PKCS#12 password (never given on the command line).",
        ),
    ] = None,
    as_json: Annotated[
        bool, typer.Option("--json", help="One JSON object on stdout (schema/cert.json).")
    ] = False,
) -> None:
    """Lint certificates for Always On VPN and DirectAccess: EKU, UPN, device name, key usage, key,
    signature, validity, the chain to --ca, several Client Authentication certificates for one subject.

    Exit 0 when nothing fails, 1 when a certificate has a problem, 2 on a usage or local error.
    """
    from datetime import UTC, datetime

    from vpndoctor.certfiles import password_from_env, read_certificate_files
    from vpndoctor.checks.cert import end_entities, exit_code, lint

    chosen: Purpose | None = purpose.value if purpose is not None else None
    if name is not None and (not name.strip() or any(c.isspace() for c in name) or len(name) > 253):
        raise UsageError(f"--name {name!r}: not a host name")
    if name is not None and chosen == "user":
        raise UsageError(
            "--name is the device FQDN or the server name; a user certificate is matched by its UPN"
        )
    password = password_from_env(password_env)
    inputs = read_certificate_files(files, password, password_env)
    anchors = [c for f in read_certificate_files(ca or [], password, password_env) for c in f.certificates]
    if not end_entities(inputs):
        raise UsageError(
            "no end-entity certificate among the files, only CA certificates (give a CA you trust with --ca)"
        )
    report = lint(inputs, anchors, datetime.now(UTC), purpose=chosen, name=name, ca_files=ca or [])
    if as_json:
        emit(report, as_json=True)
    else:
        from vpndoctor.report.cert import render_cert

        emit(report, as_json=False, render=render_cert)
    raise typer.Exit(exit_code(report))
