"""`vpndoctor config init` and `vpndoctor config TARGET --input FILE`: thin typer commands over
`vpndoctor.configgen`. Output goes to stdout unless -o; invalid input exits 2 with one line.

No `from __future__ import annotations` here: the per-target commands are built in a loop and typer must
see their annotations evaluated (their help text names the target's recipes).
"""

import os
from pathlib import Path
from typing import Annotated, Any

import typer

from vpndoctor.configgen import TARGETS, generate
from vpndoctor.configgen.example import EXAMPLE
from vpndoctor.configgen.model import apply_flags, deployment_from_data, read_yaml
from vpndoctor.configgen.recipes import RECIPES
from vpndoctor.configgen.validate import VALIDATED_TARGETS, validate
from vpndoctor.errors import UsageError, VpndoctorError

config_app = typer.Typer(
    help="Generate load-balancer, firewall and Windows configuration from a short deployment YAML.",
    no_args_is_help=True,
)

_TARGET_HELP = {
    "netscaler": "Citrix NetScaler CLI: IP-HTTPS offload + preauth, IKEv2 lb group, SSTP.",
    "f5": "F5 BIG-IP tmsh: SSL profiles, pools, virtuals, persistence.",
    "kemp": "KEMP LoadMaster: UI paths and API calls (port following, SSL re-encryption).",
    "haproxy": "HAProxy: IP-HTTPS offload + preauth, SSTP.",
    "nginx": "nginx stream: IP-HTTPS offload + preauth, IKEv2 UDP upstreams, SSTP.",
    "nftables": "nftables: edge firewall and a source-affinity load balancer.",
    "keepalived": "keepalived/IPVS: fwmark virtual server with persistence for UDP 500+4500.",
    "windows": "PowerShell for the VPN server, the ProfileXML CryptographySuite, ISATAP-scoped"
    " firewall rules.",
}


def _write(text: str, output: str | None, *, overwrite: bool = True) -> None:
    if output is None or output == "-":
        typer.echo(text, nl=False)
        return
    path = Path(output)
    if not overwrite and path.exists():
        raise UsageError(f"{output} exists; remove it or choose another name")
    parent = path.resolve().parent
    if not parent.is_dir() or not os.access(parent, os.W_OK):
        raise UsageError(f"-o {output}: cannot write in {parent}")
    try:
        path.write_text(text, encoding="utf-8")
    except OSError as exc:
        raise UsageError(f"cannot write {output}: {exc.strerror or exc}") from None


def _recipes(values: list[str] | None) -> list[str] | None:
    if not values:
        return None
    return [r.strip() for v in values for r in v.split(",") if r.strip()]


@config_app.command("init")
def init_cmd(
    output: Annotated[
        str | None, typer.Option("-o", "--output", help="Write the example here instead of stdout.")
    ] = None,
) -> None:
    """Write a commented example input (edit it, then run vpndoctor config TARGET --input FILE)."""
    _write(EXAMPLE, output, overwrite=False)


def _servers(values: list[str] | None) -> list[dict[str, str]] | None:
    if not values:
        return None
    out = []
    for v in values:
        name, sep, addrs = v.partition("=")
        parts = [a.strip() for a in addrs.split(",")] if sep else []
        if not name.strip() or not parts or not parts[0] or len(parts) > 2:
            raise UsageError(f"--server {v}: expected NAME=IPV4 or NAME=IPV4,IPV6 (e.g. vpn1=192.0.2.18)")
        server = {"name": name.strip(), "address": parts[0]}
        if len(parts) == 2:
            server["address6"] = parts[1]
        out.append(server)
    return out


def config_text(
    target: str, input_file: str | None, recipes: list[str] | None, flags: dict[str, Any] | None = None
) -> str:
    """Generate and self-check the configuration of `target` (the CLI's work, callable from tests)."""
    flags = {k: v for k, v in (flags or {}).items() if v is not None}
    if input_file is None and not flags:
        raise UsageError(
            "give --input FILE (vpndoctor config init writes an example) or the settings as flags:"
            " --name, --vip, --server NAME=ADDRESS, --cert, --ca ..."
        )
    source = input_file or "command line"
    data = read_yaml(input_file) if input_file else {}
    deployment = deployment_from_data(apply_flags(data, flags, source), source)
    text = generate(target, deployment, recipes)
    if target in VALIDATED_TARGETS:
        problems = validate(target, text)
        if problems:  # a generator bug, never the user's input: say so rather than emit a bad config
            raise VpndoctorError(f"internal: generated {target} configuration fails its check: {problems[0]}")
    return text


def _make_target_command(target: str) -> None:
    def command(
        input_file: Annotated[
            str | None,
            typer.Option("--input", "-i", help="Deployment YAML (see vpndoctor config init)."),
        ] = None,
        output: Annotated[
            str | None,
            typer.Option("-o", "--output", help="Write here instead of stdout."),
        ] = None,
        recipe: Annotated[
            list[str] | None,
            typer.Option(
                "--recipe",
                "-r",
                help=f"Only these recipes (repeatable or comma-separated): {', '.join(TARGETS[target])}."
                " Default: all that apply to the input.",
            ),
        ] = None,
        name: Annotated[
            str | None,
            typer.Option("--name", help="Public name clients dial (overrides the input)."),
        ] = None,
        vip: Annotated[str | None, typer.Option("--vip", help="Public IPv4 VIP.")] = None,
        vip6: Annotated[str | None, typer.Option("--vip6", help="Public IPv6 VIP.")] = None,
        server: Annotated[
            list[str] | None,
            typer.Option("--server", help="NAME=IPV4[,IPV6] of a server behind the VIP (repeatable)."),
        ] = None,
        protocols: Annotated[
            str | None,
            typer.Option("--protocols", help="Comma-separated: ikev2, sstp, iphttps."),
        ] = None,
        cert: Annotated[
            str | None,
            typer.Option("--cert", help="Server certificate object name on the appliance."),
        ] = None,
        ca: Annotated[
            str | None,
            typer.Option("--ca", help="Root CA object name (client certificates, preauthentication)."),
        ] = None,
        windows7: Annotated[
            bool | None,
            typer.Option("--windows7/--no-windows7", help="Windows 7 DirectAccess clients remain."),
        ] = None,
    ) -> None:
        flags: dict[str, Any] = {
            "name": name,
            "vip": vip,
            "vip6": vip6,
            "servers": _servers(server),
            "protocols": [p.strip() for p in protocols.split(",") if p.strip()] if protocols else None,
            "server_cert": cert,
            "ca_cert": ca,
            "windows7": windows7,
        }
        _write(config_text(target, input_file, _recipes(recipe), flags), output)

    command.__doc__ = (
        _TARGET_HELP[target]
        + " Recipes: "
        + ", ".join(f"{r} ({RECIPES[r].title.split(':')[0]})" for r in TARGETS[target])
    )
    config_app.command(target)(command)


for _target in TARGETS:
    _make_target_command(_target)
