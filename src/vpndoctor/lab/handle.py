"""A handle on a running lab, for tests, the demo and later probes: run commands in its hosts, read
its daemons' logs, nftables counters and conntrack table."""

from __future__ import annotations

import json
import subprocess
from dataclasses import dataclass
from pathlib import Path

from vpndoctor.errors import LabError
from vpndoctor.lab import topology as t
from vpndoctor.lab.runner import LabInfo, LabState, _run, info_from_state
from vpndoctor.lab.scenario import Scenario


@dataclass(frozen=True)
class Flow:
    """One conntrack entry as the load balancer sees it: the client's flow and where it was sent."""

    proto: str
    client: str
    client_port: int
    vip: str
    vip_port: int
    backend: str  # address the flow was DNATed to


class Lab:
    def __init__(self, prefix: str) -> None:
        state = LabState.load(prefix)
        if state is None or not state.ready:
            raise LabError(f"lab '{prefix}' is not up")
        self.prefix = prefix
        self.state = state
        self.scenario = Scenario.model_validate(state.scenario)
        self.info: LabInfo = info_from_state(state)
        self.workdir = Path(state.workdir)

    def ns(self, role: str) -> str:
        return t.namespace(self.prefix, role)

    def run(
        self, role: str, *argv: str, timeout_s: float = 30.0, input_text: str | None = None
    ) -> subprocess.CompletedProcess[str]:
        """Run a command in one lab host; never raises on a non-zero exit."""
        return _run(
            ["ip", "netns", "exec", self.ns(role), *argv],
            timeout_s=timeout_s,
            check=False,
            input_text=input_text,
        )

    def charon_log(self, backend: str) -> str:
        return self._read(self.workdir / backend / "charon.log")

    def dns_log(self) -> str:
        return self._read(self.workdir / "dnsmasq-queries.log")

    def log(self, name: str) -> str:
        """A daemon's log by process name (`adc-nginx`, `adc-haproxy`, `da-vpn1`, `lb-nginx`, ...); the nginx
        ADC also writes `adc-access.log` (one line per connection, with the client-certificate verdict)."""
        return self._read(self.workdir / (name if name.endswith(".log") else f"{name}.log"))

    def da_file(self, name: str) -> Path:
        """A file of the ADC's PKI by its well-known name, e.g. `da-client.pem` (see lab/pki.py)."""
        return self.workdir / "pki" / name

    @staticmethod
    def _read(path: Path) -> str:
        try:
            return path.read_text(errors="replace")
        except OSError:
            return ""

    def counters(self, role: str) -> dict[str, int]:
        """Packets per named nftables counter in one host."""
        proc = self.run(role, "nft", "-j", "list", "counters")
        if proc.returncode != 0:
            raise LabError(f"nft list counters in {self.ns(role)} failed: {proc.stderr.strip()}")
        found: dict[str, int] = {}
        for item in json.loads(proc.stdout).get("nftables", []):
            counter = item.get("counter")
            if counter:
                found[counter["name"]] = int(counter["packets"])
        return found

    def flows(self, proto: str = "udp") -> list[Flow]:
        """The load balancer's conntrack entries for the VIP (which backend each client flow reached)."""
        proc = self.run("lb", "conntrack", "-L", "-p", proto)
        flows = []
        for line in proc.stdout.splitlines():
            fields = [f.split("=", 1) for f in line.split() if "=" in f]
            if len(fields) < 8:
                continue
            orig = dict(fields[:4])
            reply = dict(fields[4:8]) if fields[4][0] == "src" else dict(fields[5:9])
            if orig.get("dst") not in (t.VIP4, t.VIP6):
                continue
            flows.append(
                Flow(
                    proto=proto,
                    client=orig["src"],
                    client_port=int(orig["sport"]),
                    vip=orig["dst"],
                    vip_port=int(orig["dport"]),
                    backend=reply["src"],
                )
            )
        return flows

    def backend_name(self, address: str) -> str:
        for name in t.BACKENDS:
            if address in (t.BACKEND4[name], t.BACKEND6[name]):
                return name
        return address
