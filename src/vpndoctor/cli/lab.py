"""`vpndoctor lab ...`: the network-namespace lab (up, down, status, exec, connect, scenarios)."""

from __future__ import annotations

from typing import Annotated

import typer

from vpndoctor.cli.output import emit, out, status

lab_app = typer.Typer(
    help="A network-namespace lab: client, WAN, edge firewall, load balancer, strongSwan/SSTP servers, DNS.",
    no_args_is_help=True,
)

PrefixOpt = Annotated[str, typer.Option("--prefix", help="Name prefix of the lab's namespaces (1-8 chars).")]


@lab_app.command("scenarios")
def lab_scenarios() -> None:
    """List the built-in lab scenarios."""
    from vpndoctor.lab.scenario import builtin_scenarios
    from vpndoctor.report.lab import render_scenarios

    render_scenarios(((name, s.description) for name, s in builtin_scenarios().items()), out)


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
    from vpndoctor.report.lab import render_lab_up

    s = load_scenario(scenario)
    overrides = parse_overrides(override or [])
    with status(f"building lab '{prefix}' for scenario {s.name}...", quiet=False):
        info = up(s, prefix, {k: str(v) for k, v in overrides.items()})
    emit(info, as_json=as_json, render=lambda i, console: render_lab_up(i, s.description, prefix, console))


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
    from vpndoctor.lab.runner import lab_status as get_status
    from vpndoctor.report.lab import render_lab_status

    st = get_status(prefix)
    emit(st, as_json=as_json, render=lambda s, console: render_lab_status(s, prefix, console))
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
    from vpndoctor.report.lab import render_dial

    client = LabClient(prefix, fragmentation=fragmentation, proposals=proposals).start()
    try:
        with status(f"strongSwan client dialling {client.remote}...", quiet=False):
            result = client.initiate(timeout_s)
    finally:
        client.stop()
    render_dial(result, out)
    if not result.established:
        raise typer.Exit(1)
