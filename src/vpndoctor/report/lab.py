"""The lab's terminal output: scenarios, what `lab up` built, `lab status`, the strongSwan client's dial."""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from rich.table import Table

if TYPE_CHECKING:
    from rich.console import Console

    from vpndoctor.lab.client import InitiateResult
    from vpndoctor.lab.runner import LabInfo


def render_scenarios(scenarios: Iterable[tuple[str, str]], console: Console) -> None:
    table = Table("scenario", "description")
    for name, description in scenarios:
        table.add_row(name, description)
    console.print(table)


def render_lab_up(info: LabInfo, description: str, prefix: str, console: Console) -> None:
    v4, v6 = info.addresses
    console.print(f"[bold green]lab up[/] scenario [bold]{info.scenario}[/]: {description}")
    console.print(f"  target     {info.server_name}  ->  {v4}  {v6}")
    console.print(f"  dns        {info.dns_server} (client namespace resolver)")
    console.print(f"  trust      {info.ca_file}")
    console.print(f"  client     ip netns exec {info.client_namespace} CMD   or   vpndoctor lab exec -- CMD")
    console.print(f"  e.g.       vpndoctor lab exec -- ike-scan --ikev2 --sport=0 {v4}")
    if info.da_addresses:
        da4, da6 = info.da_addresses
        console.print(f"  ADC        {info.da_name}  ->  {da4}  {da6}  (TCP 443; certs in {info.da_pki_dir})")
    if info.radius_server:
        console.print(f"  RADIUS     {info.radius_server} UDP 1812/1813 (the NPS stand-in)")
    if info.connect_file:
        console.print(f"  accounts   {info.connect_file} (lab-only users, secrets and certificate paths)")
    if info.user_cert:
        console.print(f"  user cert  {info.user_cert}  key {info.user_key}")
    if info.machine_cert:
        console.print(f"  machine    {info.machine_cert}  key {info.machine_key}")
    if info.crl_addresses:
        crl4, crl6 = info.crl_addresses
        console.print(f"  CRL/OCSP   {crl4}  {crl6}  ({info.revocation}; published from {info.crl_www})")
    console.print(f"  logs       {info.workdir}")
    console.print(f"  stop       vpndoctor lab down{'' if prefix == 'vd' else ' --prefix ' + prefix}")


def render_lab_status(st: dict[str, Any], prefix: str, console: Console) -> None:
    if not st["up"]:
        msg = "leftover namespaces found: run `vpndoctor lab down`" if st.get("leftover") else "not up"
        console.print(f"lab '{prefix}': {msg}")
        return
    console.print(f"lab '{prefix}' up since {st['started_at']}, scenario [bold]{st['scenario']}[/]")
    for name, path in st.get("overrides", {}).items():
        console.print(f"  override {name} = {path}", highlight=False)
    table = Table("process", "pid", "alive", "log")
    for p in st["processes"]:
        table.add_row(p["name"], str(p["pid"]), "yes" if p["alive"] else "[red]no[/]", p["log"])
    console.print(table)


def render_dial(result: InitiateResult, console: Console) -> None:
    for line in result.output.splitlines():
        if line.startswith(("[IKE]", "[ENC]", "[NET]")) or "initiate" in line:
            console.print(line, highlight=False, markup=False, soft_wrap=True)
    if result.established:
        console.print("[bold green]IKE SA established[/]")
    else:
        console.print(
            "[bold red]IKE SA not established[/] (a Windows client would report error 809 on a timeout)"
        )
