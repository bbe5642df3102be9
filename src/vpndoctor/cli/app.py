"""The `vpndoctor` command line: thin typer wrappers; the work happens in the modules they call."""

from __future__ import annotations

import contextlib
import gc
import json
import os
import sys
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, cast

import typer

from vpndoctor import __version__
from vpndoctor.errors import UsageError, VpndoctorError

app = typer.Typer(
    name="vpndoctor",
    help="Diagnose Always On VPN (IKEv2, SSTP), DirectAccess (IP-HTTPS) and IKEv2 gateways from the outside.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
lab_app = typer.Typer(
    help="A network-namespace lab: client, WAN, edge firewall, load balancer, strongSwan/SSTP servers, DNS.",
    no_args_is_help=True,
)
app.add_typer(lab_app, name="lab")

if TYPE_CHECKING:
    from rich.console import Console


class _LazyConsole:
    """A rich Console made on first use: `capture --json` and the other JSON outputs never import rich."""

    def __init__(self, **options: Any) -> None:
        self._options = options
        self._console: Console | None = None

    def __getattr__(self, name: str) -> Any:
        if self._console is None:
            from rich.console import Console

            self._console = Console(**self._options)
        return getattr(self._console, name)


out = cast("Console", _LazyConsole())
err = cast("Console", _LazyConsole(stderr=True))

PrefixOpt = Annotated[str, typer.Option("--prefix", help="Name prefix of the lab's namespaces (1-8 chars).")]


def _version(value: bool) -> None:
    if value:
        out.print(f"vpndoctor {__version__}")
        raise typer.Exit(0)


@app.callback()
def _root(
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Print the version and exit.")
    ] = False,
) -> None:
    """vpndoctor: find why remote-access VPN clients cannot connect (error 809 and friends), and fix it."""


@app.command("capture")
def capture(
    file: Annotated[str, typer.Argument(help="pcap or pcapng file (gzip too); - reads stdin.")],
    as_json: Annotated[
        bool, typer.Option("--json", help="One JSON object on stdout (schema/capture.json).")
    ] = False,
    keys: Annotated[
        str | None,
        typer.Option(
            "--keys",
            help="IKEv2 keys to decrypt SK/SKF payloads: Wireshark ikev2_decryption_table lines or tcpdump "
            "-E 'ikev2 I|R ...' lines.",
        ),
    ] = None,
    html: Annotated[
        str | None,
        typer.Option("--html", help="Also write a self-contained HTML report (SVG ladder) to this file."),
    ] = None,
) -> None:
    """What happened on the wire, and why it failed: IKE conversations, retransmissions, lost fragments.

    Exit 0 when the capture was read (whatever it found), 2 when it cannot be read.
    """
    from vpndoctor.capture.analysis import analyse

    table = None
    if keys is not None:
        from vpndoctor.capture.decrypt import load_keys

        table = load_keys(keys)
    if html:
        parent = Path(html).resolve().parent
        if not parent.is_dir() or not os.access(parent, os.W_OK):
            raise UsageError(f"--html {html}: cannot write in {parent}")
    _note_slow_walk(file)
    # Freeze the ~37,000 objects start-up left (typer, pydantic, rich), as the gc module documents for a
    # process that imports and then works: the collections a big capture's analysis triggers, and the one at
    # exit, then skip them. Measured on a 1 GB capture: about 0.3 s less, a fifth of the run.
    gc.freeze()
    report = analyse(file, name=file, keys=table)
    if html:
        from vpndoctor.report.capture_html import render_capture_html

        try:
            with open(html, "w", encoding="utf-8") as fh:
                fh.write(render_capture_html(report))
        except OSError as exc:
            raise UsageError(f"cannot write {html}: {exc.strerror}") from None
    if as_json:
        print(report.model_dump_json())
    else:
        from vpndoctor.report.capture import render_capture

        render_capture(report, out)


def _note_slow_walk(file: str) -> None:
    """A big capture read without the C record walk (built at install when gcc and Python's headers are
    there) takes about three times as long: say why."""
    from vpndoctor.capture import fastpath

    with contextlib.suppress(OSError):
        if fastpath.native is None and file != "-" and os.stat(file).st_size >= fastpath.PARALLEL_MIN_BYTES:
            print(
                "vpndoctor: note: the C record walk is not built (gcc or Python's headers were missing at "
                "install: run `make install`), so this file is read at Python speed",
                file=sys.stderr,
            )


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
) -> None:
    """Why do Always On VPN clients fail with 809 (or 13801/13806/13868)? Every check, a verdict, the fix.

    Exit 0 when nothing fails, 1 when problems are found, 2 on a usage or local error.
    """
    import asyncio
    import ipaddress

    from vpndoctor.checks.diagnose import judge
    from vpndoctor.observations.diagnose import DiagnoseRequest
    from vpndoctor.probes.diagnose import run_diagnose
    from vpndoctor.report.diagnose import render_diagnose

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
    if html:
        parent = Path(html).resolve().parent
        if not parent.is_dir() or not os.access(parent, os.W_OK):
            raise UsageError(f"--html {html}: cannot write in {parent}")
    profile_proposal = None
    if profile:
        from vpndoctor.checks.profile import load_profile

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
    if as_json:
        observations = asyncio.run(run_diagnose(request))
    else:
        with err.status(f"diagnosing {name}...") as status:
            observations = asyncio.run(run_diagnose(request, lambda msg: status.update(msg)))
    report = judge(observations)
    if html:
        from vpndoctor.report.html import render_html

        try:
            with open(html, "w", encoding="utf-8") as fh:
                fh.write(render_html(report))
        except OSError as exc:
            raise UsageError(f"cannot write {html}: {exc.strerror}") from None
    if as_json:
        print(report.model_dump_json())
    else:
        render_diagnose(report, out)
    if fix:
        from vpndoctor.configgen.fix import fix_config

        print(fix_config(report, lb), end="")
    raise typer.Exit(0 if report.verdict.status == "healthy" else 1)


@app.command("ike")
def ike(
    target: Annotated[str, typer.Argument(help="Server name or address.")],
    port: Annotated[int, typer.Option(help="IKE port.", min=1, max=65535)] = 500,
    natt_port: Annotated[int, typer.Option("--natt-port", help="NAT-T port.", min=1, max=65535)] = 4500,
    proposal: Annotated[
        list[str] | None,
        typer.Option(
            "--proposal", help="IKE proposal, strongSwan syntax (repeatable), e.g. aes256-sha256-modp2048."
        ),
    ] = None,
    group: Annotated[int | None, typer.Option(help="DH group of the first KE payload (IANA number).")] = None,
    force_nat: Annotated[
        bool, typer.Option("--force-nat", help="Forge NAT detection to force UDP 4500.")
    ] = False,
    no_fragmentation: Annotated[
        bool, typer.Option("--no-fragmentation", help="Do not offer IKEv2 fragmentation (RFC 7383).")
    ] = False,
    identity: Annotated[str, typer.Option(help="IDi sent in IKE_AUTH.")] = "anonymous@vpndoctor.invalid",
    ca: Annotated[list[str] | None, typer.Option("--ca", help="Trust anchor (PEM/DER), repeatable.")] = None,
    stateless: Annotated[
        bool,
        typer.Option(
            "--stateless",
            help="Only ask whether the proposals are acceptable (a KE payload of another group): "
            "INVALID_KE_PAYLOAD means accepted, NO_PROPOSAL_CHOSEN refused; the server keeps no SA.",
        ),
    ] = False,
    timeout_s: Annotated[float, typer.Option("--timeout-s", help="Total deadline in seconds.")] = 10.0,
    as_json: Annotated[
        bool, typer.Option("--json", help="One JSON object on stdout (schema/ike.json).")
    ] = False,
) -> None:
    """Run a real IKEv2 handshake (IKE_SA_INIT, IKE_AUTH up to the server's certificate, AUTH and EAP).

    Exit 0 when IKE_AUTH was answered, 1 when the server answered with an error, 3 when it did not answer,
    2 on a usage or local error.
    """
    from vpndoctor.probes.ike import exit_code, probe
    from vpndoctor.report.ike import render_ike

    if timeout_s <= 0:
        raise UsageError("--timeout-s must be positive")
    if not target.strip():
        raise UsageError("give a server name or address to probe")
    if stateless and group is not None:
        raise UsageError("--stateless picks its own KE group; it does not go with --group")
    obs = probe(
        target,
        port=port,
        natt_port=natt_port,
        proposals=proposal,
        group=group,
        force_nat=force_nat,
        fragmentation=not no_fragmentation,
        identity=identity,
        ca_files=ca,
        timeout_s=timeout_s,
        stateless=stateless,
    )
    if as_json:
        print(obs.model_dump_json())
    else:
        render_ike(obs, out)
    raise typer.Exit(exit_code(obs))


@lab_app.command("scenarios")
def lab_scenarios() -> None:
    """List the built-in lab scenarios."""
    from rich.table import Table

    from vpndoctor.lab.scenario import builtin_scenarios

    table = Table("scenario", "description")
    for name, s in builtin_scenarios().items():
        table.add_row(name, s.description)
    out.print(table)


@lab_app.command("up")
def lab_up(
    scenario: Annotated[
        str, typer.Option("--scenario", "-s", help="Built-in scenario name or YAML file.")
    ] = "healthy",
    prefix: PrefixOpt = "vd",
    as_json: Annotated[bool, typer.Option("--json", help="Print the lab's target as JSON.")] = False,
    override: Annotated[
        list[str] | None,
        typer.Option(
            "--override",
            help="NAME=FILE: run FILE in place of a generated config (adc-nginx, adc-haproxy, lb-nginx, "
            "edge-nft, lb-nft); repeatable.",
        ),
    ] = None,
) -> None:
    """Build the lab for a scenario and start its daemons."""
    from vpndoctor.lab.adc import parse_overrides
    from vpndoctor.lab.runner import lab_up as up
    from vpndoctor.lab.scenario import load_scenario

    s = load_scenario(scenario)
    overrides = parse_overrides(override or [])
    with err.status(f"building lab '{prefix}' for scenario {s.name}..."):
        info = up(s, prefix, {k: str(v) for k, v in overrides.items()})
    if as_json:
        print(json.dumps(asdict(info)))
        return
    v4, v6 = info.addresses
    out.print(f"[bold green]lab up[/] scenario [bold]{info.scenario}[/]: {s.description}")
    out.print(f"  target     {info.server_name}  ->  {v4}  {v6}")
    out.print(f"  dns        {info.dns_server} (client namespace resolver)")
    out.print(f"  trust      {info.ca_file}")
    out.print(f"  client     ip netns exec {info.client_namespace} CMD   or   vpndoctor lab exec -- CMD")
    out.print(f"  e.g.       vpndoctor lab exec -- ike-scan --ikev2 --sport=0 {v4}")
    if info.da_addresses:
        da4, da6 = info.da_addresses
        out.print(f"  ADC        {info.da_name}  ->  {da4}  {da6}  (TCP 443; certs in {info.da_pki_dir})")
    out.print(f"  logs       {info.workdir}")
    out.print(f"  stop       vpndoctor lab down{'' if prefix == 'vd' else ' --prefix ' + prefix}")


@lab_app.command("down")
def lab_down(prefix: PrefixOpt = "vd") -> None:
    """Remove the lab's namespaces and processes (safe to run twice; cleans a crashed lab too)."""
    from vpndoctor.lab.runner import lab_down as down

    removed = down(prefix)
    out.print(
        f"lab '{prefix}' down" + (f": removed {', '.join(removed)}" if removed else ": nothing to remove")
    )


@lab_app.command("status")
def lab_status(
    prefix: PrefixOpt = "vd",
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Show whether the lab is up, its scenario and its processes. Exit 1 when it is not up."""
    from vpndoctor.lab.runner import lab_status as status

    st = status(prefix)
    if as_json:
        print(json.dumps(st))
    elif not st["up"]:
        msg = "leftover namespaces found: run `vpndoctor lab down`" if st.get("leftover") else "not up"
        out.print(f"lab '{prefix}': {msg}")
    else:
        out.print(f"lab '{prefix}' up since {st['started_at']}, scenario [bold]{st['scenario']}[/]")
        for name, path in st.get("overrides", {}).items():
            out.print(f"  override {name} = {path}", highlight=False)
        from rich.table import Table

        table = Table("process", "pid", "alive", "log")
        for p in st["processes"]:
            table.add_row(p["name"], str(p["pid"]), "yes" if p["alive"] else "[red]no[/]", p["log"])
        out.print(table)
    if not st["up"]:
        raise typer.Exit(1)


@lab_app.command("exec", context_settings={"allow_extra_args": True, "ignore_unknown_options": True})
def lab_exec(
    ctx: typer.Context,
    prefix: PrefixOpt = "vd",
    host: Annotated[
        str, typer.Option("--in", help="Lab host to run in (client, edge, lb, vpn1, ...).")
    ] = "client",
) -> None:
    """Run a command in the lab's client namespace: vpndoctor lab exec -- CMD ARGS..."""
    from vpndoctor.lab.runner import lab_exec as run_in

    raise typer.Exit(run_in(list(ctx.args), prefix=prefix, role=host))


@lab_app.command("connect")
def lab_connect(
    prefix: PrefixOpt = "vd",
    fragmentation: Annotated[bool, typer.Option(help="Offer IKEv2 fragmentation (RFC 7383).")] = True,
    proposals: Annotated[str, typer.Option(help="strongSwan IKE proposal list to offer.")] = "default",
    timeout_s: Annotated[float, typer.Option("--timeout-s", help="Give up after this many seconds.")] = 20.0,
) -> None:
    """Dial the lab's VIP with a real strongSwan client (EAP-MSCHAPv2 user, like a Windows user tunnel).

    Exit 0 when the IKE SA is established, 1 when it is not.
    """
    from vpndoctor.lab.client import LabClient

    client = LabClient(prefix, fragmentation=fragmentation, proposals=proposals).start()
    try:
        with err.status(f"strongSwan client dialling {client.remote}..."):
            result = client.initiate(timeout_s)
    finally:
        client.stop()
    for line in result.output.splitlines():
        if line.startswith(("[IKE]", "[ENC]", "[NET]")) or "initiate" in line:
            out.print(line, highlight=False, markup=False, soft_wrap=True)
    if result.established:
        out.print("[bold green]IKE SA established[/]")
    else:
        out.print(
            "[bold red]IKE SA not established[/] (a Windows client would report error 809 on a timeout)"
        )
        raise typer.Exit(1)


def _register_address() -> None:
    from vpndoctor.commands_address import address_cmd, isatap_app

    app.command("address")(address_cmd)
    app.add_typer(isatap_app, name="isatap")


def _register_events() -> None:
    from vpndoctor.commands_events import events_cmd, explain_cmd

    # A negative HRESULT such as -2146885613 must not be taken for an option.
    app.command("explain", context_settings={"ignore_unknown_options": True})(explain_cmd)
    app.command("events")(events_cmd)


def _register_tls() -> None:
    from vpndoctor.commands_tls import tls_cmd

    app.command("tls")(tls_cmd)


def _register_sstp() -> None:
    from vpndoctor.commands_sstp import iphttps_cmd, sstp_cmd

    app.command("sstp")(sstp_cmd)
    app.command("iphttps")(iphttps_cmd)


def _register_config() -> None:
    from vpndoctor.commands_config import config_app

    app.add_typer(config_app, name="config")


# Command name -> the registration that brings it in. Each tool module imports its own models (pydantic,
# cryptography, YAML tables), ~0.4 s together: a run of one tool from the command line imports only its own.
_TOOLS = {
    "address": _register_address,
    "isatap": _register_address,
    "explain": _register_events,
    "events": _register_events,
    "tls": _register_tls,
    "sstp": _register_sstp,
    "iphttps": _register_sstp,
    "config": _register_config,
}


def _register_tools(argv: list[str]) -> None:
    launched_as_cli = Path(argv[0]).name in ("vpndoctor", "__main__.py") if argv else False
    wanted = argv[1] if launched_as_cli and len(argv) > 1 else None
    if wanted in _TOOLS:
        _TOOLS[wanted]()
        return
    core = {c.name for c in app.registered_commands} | {g.name for g in app.registered_groups}
    if wanted in core:  # capture, diagnose, ike, lab: defined above, they need no tool module
        return
    for register in dict.fromkeys(_TOOLS.values()):  # everything: help, the core commands, imports by tests
        register()


_register_tools(sys.argv)


def _click_exceptions() -> Any:
    # typer >= 0.20 carries its own copy of click as typer._click; older releases use the click package.
    import importlib

    try:
        return importlib.import_module("typer._click.exceptions")
    except ImportError:
        return importlib.import_module("click.exceptions")


def _one_line(text: str) -> str:
    # A file name or argument with a newline or escape in it must not break the one-line promise.
    return "".join(ch if ch.isprintable() else repr(ch)[1:-1] for ch in text)


def _fail(message: str) -> None:
    err.print(f"vpndoctor: error: {_one_line(message)}", highlight=False, markup=False, soft_wrap=True)
    sys.exit(2)


def _usage_message(exc: Any) -> str:
    """click's usage error as one line: the message, then where the help is (click prints three lines and
    typer a rich box)."""
    message = str(exc.format_message())
    ctx = getattr(exc, "ctx", None)
    if ctx is not None:
        if ctx.command.get_help_option(ctx) is None:
            return message
        return f"{message} (try '{ctx.command_path} {ctx.help_option_names[0]}')"
    # Some parser errors ("Option '--prefix' requires an argument.") carry no context: find the command
    # from the words of the command line.
    command, words = typer.main.get_command(app), ["vpndoctor"]
    for arg in sys.argv[1:]:
        sub = getattr(command, "commands", {}).get(arg)
        if sub is None:
            break
        command, words = sub, [*words, arg]
    return f"{message} (try '{' '.join(words)} --help')"


def main() -> None:
    # standalone_mode=False: click hands its usage errors to us instead of printing them in its own shape.
    click_errors = _click_exceptions()
    try:
        code = app(standalone_mode=False)
    except VpndoctorError as exc:
        _fail(str(exc))
    except click_errors.ClickException as exc:
        if type(exc).__name__ == "NoArgsIsHelpError":  # a bare group: its help (rich prints it already)
            if exc.format_message().strip():
                typer.echo(exc.format_message())
            sys.exit(exc.exit_code)
        if exc.exit_code != 2:  # not a usage error (click.FileError and the like): still one line
            err.print(f"vpndoctor: error: {_one_line(_usage_message(exc))}", highlight=False, markup=False)
            sys.exit(exc.exit_code)
        _fail(_usage_message(exc))
    except typer.Abort:
        err.print("vpndoctor: aborted", highlight=False)
        sys.exit(1)
    except KeyboardInterrupt:
        err.print("vpndoctor: interrupted", highlight=False)
        sys.exit(130)
    # Without standalone mode, typer.Exit(n) from a command (and --help, --version) comes back as n.
    if isinstance(code, int) and code:
        sys.exit(code)
