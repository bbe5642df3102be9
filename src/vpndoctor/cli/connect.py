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

from vpndoctor.cli.credentials import (
    ClientCertOption,
    ClientKeyOption,
    DeviceNameOption,
    EapCaOption,
    EapServerNameOption,
    MachineKeyOption,
    PasswordEnvOption,
    PasswordFileOption,
)
from vpndoctor.cli.output import check_writable, emit
from vpndoctor.errors import UsageError

if TYPE_CHECKING:  # the CLI imports what a command needs only when it runs
    from vpndoctor.checks.cert import LintedCertificate
    from vpndoctor.probes.tunnel import TunnelHook

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
    client_cert: ClientCertOption = None,
    client_key: ClientKeyOption = None,
    eap_ca: EapCaOption = None,
    eap_server_name: EapServerNameOption = None,
    password_env: PasswordEnvOption = None,
    password_file: PasswordFileOption = None,
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
    machine_key: MachineKeyOption = None,
    intermediate: Annotated[
        list[str] | None,
        typer.Option("--intermediate", metavar="PEM", help="Device tunnel: an intermediate CA to send."),
    ] = None,
    device_name: DeviceNameOption = None,
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
    ping: Annotated[
        list[str] | None,
        typer.Option(
            "--ping",
            metavar="ADDR",
            help="Through the tunnel: ICMP echo to an inside IPv4 address (repeatable).",
        ),
    ] = None,
    resolve: Annotated[
        list[str] | None,
        typer.Option(
            "--resolve",
            metavar="NAME",
            help="Through the tunnel: an A query to the DNS server the gateway assigned (repeatable).",
        ),
    ] = None,
    tcp: Annotated[
        list[str] | None,
        typer.Option(
            "--tcp", metavar="HOST:PORT", help="Through the tunnel: a TCP handshake (SYN, SYN-ACK, RST)."
        ),
    ] = None,
    mtu: Annotated[
        bool,
        typer.Option(
            "--mtu", help="Through the tunnel: the largest inner packet (DF) to the first --ping host."
        ),
    ] = False,
    rekey: Annotated[
        bool,
        typer.Option(
            "--rekey",
            help="Rekey the CHILD_SA (with --pfs-group) and the IKE SA, then ping again; and a DPD.",
        ),
    ] = False,
    pfs_group: Annotated[
        str | None,
        typer.Option(
            "--pfs-group",
            metavar="GROUP",
            help="DH group of the CHILD_SA rekey, strongSwan names (modp2048, ecp256...) or 'none'; default: "
            "the first --esp-proposal's, else none (Windows' default PfsGroup).",
        ),
    ] = None,
    probe_timeout_s: Annotated[
        float, typer.Option("--probe-timeout-s", help="How long each tunnel probe waits for its answer.")
    ] = 2.0,
    esp_keys_out: Annotated[
        str | None,
        typer.Option(
            "--esp-keys-out",
            metavar="FILE",
            help="Write the CHILD_SA keys as Wireshark's esp_sa table (mode 600), for tshark.",
        ),
    ] = None,
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
    check_writable(esp_keys_out, "--esp-keys-out")
    hook = tunnel_hook(ping, resolve, tcp, mtu, rekey, pfs_group, esp_proposal, probe_timeout_s, esp_keys_out)
    if hook is not None:
        force_nat = True  # ESP must be UDP-encapsulated: raw IP protocol 50 needs root
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
            after_child_sa=hook,
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
        after_child_sa=hook,
    )
    del password
    if hook is not None:
        hook.fill(obs)
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
    hook = options.get("after_child_sa")
    if hook is not None:
        hook.fill(obs)  # type: ignore[attr-defined]
    emit(connect_report(obs, linted), as_json=as_json, render=render_connect)
    raise typer.Exit(exit_code(obs))


def tunnel_hook(
    ping: list[str] | None,
    resolve: list[str] | None,
    tcp: list[str] | None,
    mtu: bool,
    rekey: bool,
    pfs_group: str | None,
    esp_proposals: list[str] | None,
    probe_timeout_s: float,
    esp_keys_out: str | None,
) -> TunnelHook | None:
    """The `after_child_sa` hook (probes.tunnel.TunnelHook) for the tunnel options (None when none was
    given); usage errors first."""
    import ipaddress

    from vpndoctor.hostport import parse_host_port

    targets = ping or []
    for address in targets:
        try:
            if ipaddress.ip_address(address).version != 4:
                raise ValueError
        except ValueError:
            raise UsageError(f"--ping {address}: give an IPv4 address (tunnel probes are IPv4)") from None
    if mtu and not targets:
        raise UsageError("--mtu searches towards the first --ping address: give --ping ADDR")
    if probe_timeout_s <= 0 or probe_timeout_s > 30:
        raise UsageError("--probe-timeout-s must be in (0, 30]")
    tcp_targets: list[tuple[str, int]] = []
    for item in tcp or []:
        hp = parse_host_port(item, default_port=0)
        host, port = hp.host, hp.port
        try:
            if ipaddress.ip_address(host).version != 4 or not 0 < port < 65536:
                raise ValueError
        except ValueError:
            raise UsageError(f"--tcp {item}: give an IPv4 address and a port, e.g. 192.0.2.100:443") from None
        tcp_targets.append((host, port))
    for name in resolve or []:
        if not name.strip() or len(name) > 253:
            raise UsageError(f"--resolve {name!r}: give a DNS name")
    group = _pfs_group(pfs_group, esp_proposals)
    if not (targets or resolve or tcp_targets or mtu or rekey or esp_keys_out):
        if pfs_group is not None:
            raise UsageError("--pfs-group is for --rekey")
        return None
    from vpndoctor.probes.tunnel import TunnelPlan, tunnel_runner

    plan = TunnelPlan(
        ping=tuple(targets),
        resolve=tuple(resolve or []),
        tcp=tuple(tcp_targets),
        mtu=targets[0] if mtu else None,
        rekey=rekey,
        pfs_group=group,
        probe_timeout_s=probe_timeout_s,
    )
    return tunnel_runner(plan, esp_keys_out)


def _pfs_group(name: str | None, esp_proposals: list[str] | None) -> int | None:
    from vpndoctor.ike.proposals import ProposalSyntaxError, parse_esp_proposal, parse_proposal

    if name is None:
        for text in esp_proposals or []:
            try:
                esp = parse_esp_proposal(text)
            except ProposalSyntaxError:
                return None  # the probe reports the bad proposal itself
            groups = [g for g in esp.dh if g]
            if groups:
                return groups[0]
        return None
    if name.lower() in ("none", "0"):
        return None
    try:
        spec = parse_proposal(f"aes128-sha256-{name.lower()}")
    except ProposalSyntaxError:
        raise UsageError(f"--pfs-group {name}: a DH group such as modp2048, ecp256, ecp384 or none") from None
    return spec.dh[0]
