"""`vpndoctor connect TARGET --eap mschapv2 --user NAME`: dial an EAP user tunnel as Windows does, all the way
to the CHILD_SA, then hang up; `--eap tls --client-cert PEM --client-key PEM` (EAP-TLS) and `--eap
peap-mschapv2 | peap-tls` (PEAPv0 behind the gateway's RADIUS server) likewise, the EAP server's certificate
verified against `--ca` first. `vpndoctor connect TARGET --machine-cert PEM --machine-key PEM`: a device
tunnel (IKEv2 certificate authentication, no EAP), its certificate linted first as `vpndoctor cert --for
device`.

The password never comes from the command line (other users see it in `ps`): from an environment variable,
the first line of a file only its owner can read, or a prompt on the terminal.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer

from vpndoctor.cli.output import check_writable, emit
from vpndoctor.errors import UsageError

if TYPE_CHECKING:
    from vpndoctor.checks.cert import LintedCertificate

app = typer.Typer()


@app.command("connect")
def connect(
    target: Annotated[str, typer.Argument(help="VPN server name or address.")],
    user: Annotated[str | None, typer.Option("--user", help="EAP user name (as typed on Windows).")] = None,
    eap: Annotated[
        str,
        typer.Option(
            "--eap", help="EAP method: mschapv2, tls (EAP-TLS), peap-mschapv2 or peap-tls (PEAPv0)."
        ),
    ] = "mschapv2",
    client_cert: Annotated[
        str | None,
        typer.Option(
            "--client-cert",
            metavar="PEM",
            help="EAP-TLS/PEAP-TLS: the user certificate (PEM/DER; intermediates may follow in the file).",
        ),
    ] = None,
    client_key: Annotated[
        str | None,
        typer.Option(
            "--client-key", metavar="PEM", help="EAP-TLS/PEAP-TLS: its private key (PEM, mode 600)."
        ),
    ] = None,
    eap_ca: Annotated[
        list[str] | None,
        typer.Option(
            "--eap-ca",
            metavar="PEM",
            help="EAP-TLS/PEAP: trust anchor for the RADIUS (NPS) server's certificate, repeatable "
            "(Windows' trusted root CAs of the EAP configuration); default: those of --ca.",
        ),
    ] = None,
    eap_server_name: Annotated[
        list[str] | None,
        typer.Option(
            "--eap-server-name",
            metavar="NAME",
            help="EAP-TLS/PEAP: a name the RADIUS server's certificate must carry (Windows' 'Connect to "
            "these servers'), repeatable; default: any name, the chain to --ca is checked.",
        ),
    ] = None,
    password_env: Annotated[
        str | None,
        typer.Option("--password-env", metavar="VAR", help="Read the password from this variable."),
    ] = None,
    password_file: Annotated[
        str | None,
        typer.Option(
            "--password-file",
            metavar="FILE",
            help="Read the password from the first line of FILE (mode 600).",
        ),
    ] = None,
    identity: Annotated[
        str | None,
        typer.Option("--identity", help="IDi (default: the user name; an address is sent as one)."),
    ] = None,
    ca: Annotated[
        list[str] | None,
        typer.Option(
            "--ca",
            help="Trust anchor for the server certificate (PEM/DER), repeatable; default: the system store.",
        ),
    ] = None,
    machine_cert: Annotated[
        str | None,
        typer.Option(
            "--machine-cert",
            metavar="PEM",
            help="Device tunnel: the machine certificate (PEM/DER; intermediates may follow in the file).",
        ),
    ] = None,
    machine_key: Annotated[
        str | None,
        typer.Option("--machine-key", metavar="PEM", help="Device tunnel: its RSA private key (PEM)."),
    ] = None,
    intermediate: Annotated[
        list[str] | None,
        typer.Option("--intermediate", metavar="PEM", help="Device tunnel: an intermediate CA to send."),
    ] = None,
    device_name: Annotated[
        str | None,
        typer.Option(
            "--device-name", metavar="FQDN", help="Device tunnel: the FQDN the certificate must name."
        ),
    ] = None,
    auth_method: Annotated[
        str,
        typer.Option(
            "--auth-method",
            help="Device tunnel AUTH: rsa (method 1, PKCS#1 v1.5 SHA-1, as Windows signs) or rfc7427 "
            "(method 14, SHA-256).",
        ),
    ] = "rsa",
    port: Annotated[int, typer.Option(help="IKE port.", min=1, max=65535)] = 500,
    natt_port: Annotated[int, typer.Option("--natt-port", help="NAT-T port.", min=1, max=65535)] = 4500,
    proposal: Annotated[
        list[str] | None,
        typer.Option("--proposal", help="IKE proposal, strongSwan syntax (repeatable)."),
    ] = None,
    esp_proposal: Annotated[
        list[str] | None,
        typer.Option(
            "--esp-proposal",
            help="ESP proposal for the CHILD_SA, strongSwan syntax (repeatable), e.g. aes256gcm16 or "
            "aes256-sha1; default: what Windows offers.",
        ),
    ] = None,
    force_nat: Annotated[
        bool, typer.Option("--force-nat", help="Forge NAT detection to use UDP 4500.")
    ] = False,
    no_fragmentation: Annotated[
        bool, typer.Option("--no-fragmentation", help="Do not offer IKEv2 fragmentation (RFC 7383).")
    ] = False,
    keys_out: Annotated[
        str | None,
        typer.Option(
            "--keys-out",
            metavar="FILE",
            help="Write the IKE SA keys (Wireshark ikev2_decryption_table, mode 600) for capture --keys.",
        ),
    ] = None,
    timeout_s: Annotated[float, typer.Option("--timeout-s", help="Total deadline in seconds.")] = 30.0,
    as_json: Annotated[
        bool, typer.Option("--json", help="One JSON object on stdout (schema/connect.json).")
    ] = False,
) -> None:
    """Connect as a Windows user tunnel does: IKE_SA_INIT, IKE_AUTH with the server's certificate,
    EAP-MSCHAPv2, the CHILD_SA with an address and DNS, then a Delete. Each failure is named at its stage with
    the error a Windows client would show. With --machine-cert and --machine-key: a device tunnel instead
    (certificate AUTH, no EAP), the certificate linted first (vpndoctor cert --for device).

    Exit 0 when the CHILD_SA was established, 1 when the server said no (or went silent after answering),
    3 when it did not answer at all, 2 on a usage or local error.
    """
    from vpndoctor.checks.connect import connect_report
    from vpndoctor.net.polite import Politeness
    from vpndoctor.probes.connect import exit_code, probe
    from vpndoctor.probes.eap_methods import EAP_KINDS
    from vpndoctor.report.connect import render_connect

    eap = eap.lower()
    if eap not in EAP_KINDS:
        raise UsageError(f"--eap {eap}: one of {', '.join(EAP_KINDS)}")
    if timeout_s <= 0:
        raise UsageError("--timeout-s must be positive")
    if not target.strip():
        raise UsageError("give a VPN server name or address to connect to")
    check_writable(keys_out, "--keys-out")
    if machine_cert is not None or machine_key is not None:
        if client_cert is not None or client_key is not None:
            raise UsageError("a device tunnel (--machine-cert) has no EAP: drop --client-cert/--client-key")
        if user is not None or password_env is not None or password_file is not None:
            raise UsageError("a device tunnel (--machine-cert) has no EAP user: drop --user and the password")
        if machine_cert is None or machine_key is None:
            raise UsageError("a device tunnel needs both --machine-cert and --machine-key")
        device_tunnel(
            target,
            machine_cert,
            machine_key,
            intermediate or [],
            device_name,
            auth_method,
            ca=ca,
            port=port,
            natt_port=natt_port,
            proposals=proposal,
            esp_proposals=esp_proposal,
            timeout_s=timeout_s,
            fragmentation=not no_fragmentation,
            force_nat=force_nat,
            keys_out=keys_out,
            as_json=as_json,
        )
        return
    from vpndoctor.cli.credentials import user_credentials

    user, password, certificate = user_credentials(
        eap, user, password_env, password_file, client_cert, client_key
    )
    obs = probe(
        target,
        user=user,
        password=password,
        eap=eap,
        client_certificate=certificate,
        eap_server_names=tuple(eap_server_name or ()),
        eap_ca_files=eap_ca,
        identity=identity,
        port=port,
        natt_port=natt_port,
        proposals=proposal,
        esp_proposals=esp_proposal,
        ca_files=ca,
        timeout_s=timeout_s,
        fragmentation=not no_fragmentation,
        force_nat=force_nat,
        keys_out=keys_out,
        politeness=Politeness(),
    )
    del password
    client_lint = None
    if certificate is not None and client_cert is not None:
        client_lint = _lint_user_certificate(client_cert, eap_ca or ca or [])
    report = connect_report(obs, client_lint=client_lint)
    emit(report, as_json=as_json, render=render_connect)
    raise typer.Exit(exit_code(obs))


def _lint_user_certificate(path: str, ca: list[str]) -> LintedCertificate | None:
    """The user certificate as `vpndoctor cert --for user --ca ...` judges it."""
    from datetime import UTC, datetime

    from vpndoctor.certfiles import read_certificate_files
    from vpndoctor.checks.cert import lint

    files = read_certificate_files([path])
    anchors = [c for f in read_certificate_files(ca) for c in f.certificates]
    report = lint(files[:1], anchors, datetime.now(UTC), purpose="user", ca_files=ca)
    return report.certificates[0] if report.certificates else None


_AUTH_METHODS = {"rsa": 1, "rfc7427": 14}


def device_tunnel(
    target: str,
    cert_path: str,
    key_path: str,
    intermediates: list[str],
    device_name: str | None,
    auth_method: str,
    *,
    ca: list[str] | None,
    as_json: bool,
    **options: object,
) -> None:
    """Lint the machine certificate (as `vpndoctor cert --for device`), then dial the device tunnel."""
    from datetime import UTC, datetime

    from vpndoctor.certfiles import read_certificate_files
    from vpndoctor.checks.cert import lint
    from vpndoctor.checks.connect import connect_report
    from vpndoctor.cli.credentials import load_machine_credentials
    from vpndoctor.net.polite import Politeness
    from vpndoctor.probes.connect import exit_code, probe
    from vpndoctor.report.connect import render_connect

    method = _AUTH_METHODS.get(auth_method.lower())
    if method is None:
        raise UsageError(f"--auth-method {auth_method}: rsa or rfc7427")
    ders, key = load_machine_credentials(cert_path, key_path, intermediates)
    files = read_certificate_files([cert_path])
    anchors = [c for f in read_certificate_files(ca or []) for c in f.certificates]
    report = lint(files, anchors, datetime.now(UTC), purpose="device", name=device_name, ca_files=ca or [])
    linted = report.certificates[0] if report.certificates else None
    obs = probe(
        target,
        machine_certificates=ders,
        machine_key=key,
        cert_auth_method=method,
        ca_files=ca,
        politeness=Politeness(),
        **options,
    )
    emit(connect_report(obs, linted), as_json=as_json, render=render_connect)
    raise typer.Exit(exit_code(obs))
