"""The lab's reference IKEv2 initiator: a strongSwan charon in the client namespace.

It dials the VIP the way a Windows user tunnel does (EAP-MSCHAPv2 user, server authenticated by the
lab CA), so that a scenario's effect on a real client can be shown before vpndoctor's own probes run.
"""

from __future__ import annotations

import os
import re
import shutil
from dataclasses import dataclass
from pathlib import Path

from vpndoctor.errors import LabError
from vpndoctor.lab import strongswan
from vpndoctor.lab import topology as t
from vpndoctor.lab.runner import STATE_ROOT, LabState, _alive, _Builder, _kill_all, _run
from vpndoctor.lab.scenario import Scenario


@dataclass(frozen=True)
class InitiateResult:
    established: bool
    output: str  # swanctl's log of the attempt


class LabClient:
    """Start with `start()`, dial with `initiate()`, stop with `stop()` (or let `lab down` do it)."""

    def __init__(
        self,
        prefix: str,
        *,
        remote: str | None = None,
        fragmentation: bool = True,
        proposals: str = "default",
        name: str = "client-charon",
    ) -> None:
        state = LabState.load(prefix)
        if state is None or not state.ready:
            raise LabError(f"lab '{prefix}' is not up")
        self.state = state
        self.prefix = prefix
        self.name = name
        scenario = Scenario.model_validate(state.scenario)
        self.remote = remote or t.target_addresses(scenario.edge_dnat)[0]
        self.fragmentation = fragmentation
        self.proposals = proposals
        self.workdir = STATE_ROOT / prefix / name
        self.pid: int | None = None

    def start(self) -> LabClient:
        # One client charon per lab: an earlier one still holds UDP 500/4500 in the client namespace.
        stale = [p.pid for p in self.state.processes if p.name == self.name and _alive(p.pid)]
        if stale:
            _kill_all(stale)
        self.state.processes = [p for p in self.state.processes if p.name != self.name]
        wd = self.workdir
        shutil.rmtree(wd, ignore_errors=True)
        swan = wd / "swanctl"
        for sub in ("x509ca", "x509", "private"):
            (swan / sub).mkdir(parents=True, exist_ok=True)
        shutil.copy(Path(self.state.workdir) / "pki" / "ca.pem", swan / "x509ca" / "ca.pem")
        (wd / "strongswan.conf").write_text(strongswan.strongswan_conf(wd, None))
        (swan / "swanctl.conf").write_text(
            strongswan.initiator_swanctl_conf(
                self.remote, fragmentation=self.fragmentation, proposals=self.proposals
            )
        )
        builder = _Builder(Scenario.model_validate(self.state.scenario), self.prefix)
        builder.state = self.state
        self.pid = builder.spawn(
            self.name, "client", strongswan.charon_command(t.namespace(self.prefix, "client"), wd)
        )
        builder.wait_for("lab client charon", lambda: builder._vici_ok(wd), self.pid)
        _run(
            strongswan.swanctl_command(wd, "--load-all", "--noprompt"),
            env=dict(os.environ, SWANCTL_DIR=str(swan)),
        )
        return self

    def initiate(self, timeout_s: float = 20.0) -> InitiateResult:
        """Dial an IKE SA without CHILD_SA: it proves reachability, fragmentation and authentication."""
        proc = _run(
            strongswan.swanctl_command(
                self.workdir, "--initiate", "--ike", "lab", "--timeout", str(int(timeout_s))
            ),
            check=False,
            timeout_s=timeout_s + 10,
        )
        text = proc.stdout + proc.stderr
        established = re.search(r"IKE_SA lab\[\d+\] established", text) is not None
        return InitiateResult(established=established, output=text)

    def log(self) -> str:
        try:
            return (self.workdir / "charon.log").read_text(errors="replace")
        except OSError:
            return ""

    def stop(self) -> None:
        if self.pid is not None and _alive(self.pid):
            _kill_all([self.pid])
        self.pid = None
