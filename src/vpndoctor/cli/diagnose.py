"""`vpndoctor diagnose NAME`: every check of an Always On VPN / DirectAccess gateway, a verdict, the fix.

With `--user` (and the password from `--password-env`/`--password-file`/a prompt, as for `connect`) or
`--machine-cert`/`--machine-key`, it also connects once after the IKE checks and adds the `auth.*` and
`child_sa.*` findings of `vpndoctor connect`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer

from vpndoctor.cli.credentials import (
    ClientCertOption,
    ClientKeyOption,
    DeviceNameOption,
    EapCaOption,
    EapServerNameOption,
    MachineKeyOption,
    PasswordEnvOption,
    PasswordFileOption,
    load_machine_credentials,
)
from vpndoctor.cli.output import check_writable, emit, status
from vpndoctor.errors import UsageError

if TYPE_CHECKING:
    from vpndoctor.checks.cert import LintedCertificate
    from vpndoctor.probes.diagnose import Credentials

app = typer.Typer()


@app.command("diagnose")
def diagnose(
    name: Annotated[str, typer.Argument(help="The VPN server name clients dial (e.g. vpn.example.com).")],
    address: Annotated[
        str | None, typer.Option(help="Probe this address instead of what DNS answers.")
    ] = None,
    resolver: Annotated[
        list[str] | None, typer.Option("--resolver", help="Also ask this DNS server.")
    ] = None,
    expect_ip: Annotated[
        list[str] | None, typer.Option("--expect-ip", help="An address the name must resolve to.")
    ] = None,
    ca: Annotated[list[str] | None, typer.Option("--ca", help="Trust anchor (PEM/DER), repeatable.")] = None,
    profile: Annotated[
        str | None, typer.Option("--profile", help="Always On VPN ProfileXML to check the crypto policy of.")
    ] = None,
    protocols: Annotated[str, typer.Option(help="Comma-separated: ikev2, sstp, iphttps.")] = "ikev2,sstp",
    timeout_s: Annotated[float, typer.Option("--timeout-s", help="Deadline per exchange, seconds.")] = 5.0,
    max_half_open: Annotated[
        int,
        typer.Option(
            "--max-half-open", help="At most this many of our IKE SAs half-open on the gateway at once."
        ),
    ] = 2,
    max_pps: Annotated[
        float, typer.Option("--max-pps", help="At most this many IKE datagrams per second to the gateway.")
    ] = 100.0,
    as_json: Annotated[
        bool, typer.Option("--json", help="One JSON object on stdout (schema/diagnose.json).")
    ] = False,
    html: Annotated[
        str | None, typer.Option("--html", help="Also write an HTML report to this file.")
    ] = None,
    fix: Annotated[
        bool, typer.Option("--fix", help="Also print the configuration that fixes the failing findings.")
    ] = False,
    lb: Annotated[
        str | None,
        typer.Option("--lb", help="With --fix: your load balancer (netscaler|f5|kemp|haproxy|nginx)."),
    ] = None,
    user: Annotated[
        str | None,
        typer.Option("--user", help="Also connect as this EAP user (--eap; adds auth.* and child_sa.*)."),
    ] = None,
    password_env: PasswordEnvOption = None,
    password_file: PasswordFileOption = None,
    machine_cert: Annotated[
        str | None,
        typer.Option(
            "--machine-cert",
            metavar="PEM",
            help="Also connect as a device tunnel with this machine certificate (adds auth.*, child_sa.*).",
        ),
    ] = None,
    machine_key: MachineKeyOption = None,
    device_name: DeviceNameOption = None,
    eap: Annotated[
        str,
        typer.Option(
            "--eap",
            help="With --user or --client-cert: the EAP method, mschapv2, tls, peap-mschapv2 or peap-tls.",
        ),
    ] = "mschapv2",
    client_cert: ClientCertOption = None,
    client_key: ClientKeyOption = None,
    eap_ca: EapCaOption = None,
    eap_server_name: EapServerNameOption = None,
) -> None:
    """Why do Always On VPN clients fail with 809 (or 13801/13806/13868)? Every check, a verdict, the fix.

    With --user (or --machine-cert and --machine-key) it also connects once, as `vpndoctor connect` does,
    and reports the auth.* and child_sa.* findings too.

    Exit 0 when nothing fails, 1 when problems are found, 2 on a usage or local error.
    """
    import asyncio
    import ipaddress

    from vpndoctor.checks.diagnose import judge
    from vpndoctor.observations.diagnose import DiagnoseRequest
    from vpndoctor.probes.diagnose import run_diagnose
    from vpndoctor.report.diagnose import render_diagnose
    from vpndoctor.report.html import render_html

    protos = tuple(p.strip().lower() for p in protocols.split(",") if p.strip())
    unknown = [p for p in protos if p not in ("ikev2", "sstp", "iphttps")]
    if unknown or not protos:
        raise UsageError(
            f"--protocols: unknown protocol(s) {', '.join(unknown) or '(none)'}; "
            "expected ikev2, sstp, iphttps"
        )
    if timeout_s <= 0:
        raise UsageError("--timeout-s must be positive")
    if not 1 <= max_half_open <= 64:
        raise UsageError("--max-half-open must be between 1 and 64")
    if not 1 <= max_pps <= 10_000:
        raise UsageError("--max-pps must be between 1 and 10000")
    from vpndoctor.configgen.fix import LB_VENDORS

    if lb is not None and (not fix or lb not in LB_VENDORS):
        raise UsageError(f"--lb {lb}: expected one of {', '.join(LB_VENDORS)}, together with --fix")
    if fix and as_json:
        raise UsageError("--fix prints configuration text; it does not go with --json")
    for label, values in (
        ("--address", [address] if address else []),
        ("--resolver", resolver or []),
        ("--expect-ip", expect_ip or []),
    ):
        for v in values:
            try:
                ipaddress.ip_address(v)
            except ValueError:
                raise UsageError(f"{label} {v}: not an IP address") from None
    check_writable(html)
    credentials, machine_lint = _credentials(
        user, password_env, password_file, machine_cert, machine_key, device_name, ca or [], protos,
        eap=eap, client_cert=client_cert, client_key=client_key,
    )
    if credentials is not None:
        from dataclasses import replace

        credentials = replace(
            credentials, eap_ca_files=eap_ca or [], eap_server_names=tuple(eap_server_name or ())
        )
    profile_proposal = None
    if profile:
        from vpndoctor.windows.profile import load_profile

        suite = load_profile(profile).cryptography_suite
        if suite is None:
            raise UsageError(
                f"{profile}: no <CryptographySuite> in the profile (Windows then uses its defaults)"
            )
        try:
            profile_proposal = suite.ike_proposal()
        except UsageError as exc:
            raise UsageError(f"{profile}: {exc}") from None
    request = DiagnoseRequest(
        name=name,
        address=address,
        resolvers=resolver or [],
        expect_ips=expect_ip or [],
        ca_files=ca or [],
        protocols=protos,
        profile_proposal=profile_proposal,
        timeout_s=timeout_s,
        max_half_open=max_half_open,
        rate_pps=max_pps,
    )
    with status(f"diagnosing {name}...", quiet=as_json) as progress:
        observations = asyncio.run(run_diagnose(request, None if as_json else progress, credentials))
    del credentials
    report = judge(observations, machine_lint=machine_lint)
    emit(report, as_json=as_json, render=render_diagnose, html=html, render_html=render_html)
    if fix:
        from vpndoctor.configgen.fix import fix_config

        print(fix_config(report, lb), end="")
    raise typer.Exit(0 if report.verdict.status == "healthy" else 1)


def _credentials(
    user: str | None,
    password_env: str | None,
    password_file: str | None,
    machine_cert: str | None,
    machine_key: str | None,
    device_name: str | None,
    ca: list[str],
    protocols: tuple[str, ...],
    *,
    eap: str = "mschapv2",
    client_cert: str | None = None,
    client_key: str | None = None,
) -> tuple[Credentials | None, LintedCertificate | None]:
    """What to connect with, if anything (read as `vpndoctor connect` reads it), and a device tunnel's
    certificate linted for a device."""
    from vpndoctor.probes.diagnose import Credentials
    from vpndoctor.probes.eap_methods import EAP_KINDS

    eap = eap.lower()
    if eap not in EAP_KINDS:
        raise UsageError(f"--eap {eap}: one of {', '.join(EAP_KINDS)}")
    password_given = password_env is not None or password_file is not None
    if (client_cert is not None or client_key is not None) and eap not in ("tls", "peap-tls"):
        raise UsageError(f"--client-cert and --client-key go with --eap tls or peap-tls, not {eap}")
    if machine_cert is not None or machine_key is not None:
        if client_cert is not None or client_key is not None:
            raise UsageError("a device tunnel (--machine-cert) has no EAP: drop --client-cert/--client-key")
        if user is not None or password_given:
            raise UsageError("a device tunnel (--machine-cert) has no EAP user: drop --user and the password")
        if machine_cert is None or machine_key is None:
            raise UsageError("a device tunnel needs both --machine-cert and --machine-key")
    elif device_name is not None:
        raise UsageError("--device-name goes with --machine-cert and --machine-key")
    elif user is None and client_cert is None and client_key is None:
        if eap != "mschapv2":
            raise UsageError(f"--eap {eap} goes with --user or --client-cert and --client-key")
        if password_given:
            raise UsageError("a password goes with --user")
        return None, None
    if "ikev2" not in protocols:
        raise UsageError("connecting with credentials needs ikev2 in --protocols")
    if machine_cert is not None and machine_key is not None:
        from datetime import UTC, datetime

        from vpndoctor.certfiles import read_certificate_files
        from vpndoctor.checks.cert import lint

        ders, key = load_machine_credentials(machine_cert, machine_key, [])
        anchors = [c for f in read_certificate_files(ca) for c in f.certificates]
        files = read_certificate_files([machine_cert])
        report = lint(files[:1], anchors, datetime.now(UTC), purpose="device", name=device_name, ca_files=ca)
        linted = report.certificates[0] if report.certificates else None
        return Credentials(machine_certificates=ders, machine_key=key), linted
    from vpndoctor.cli.credentials import user_credentials

    name, password, certificate = user_credentials(
        eap, user, password_env, password_file, client_cert, client_key
    )
    return Credentials(user=name, password=password or "", eap=eap, client_certificate=certificate), None
