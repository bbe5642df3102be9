"""Benchmark: CPU time of vpndoctor's side of a full IKE_SA_INIT + IKE_AUTH (+ EAP identity, Delete)
against the lab's strongSwan, for MODP-2048 and ECP-256, next to the named peers measured in the same run:

- strongSwan's own charon as initiator (the lab client: the same exchange, completed with EAP-MSCHAPv2),
  its CPU read from /proc/PID/stat across N initiations;
- ike-scan with its default transforms, which only sends an IKE_SA_INIT (random KE bytes, no key
  derivation) and counts its whole process: a reference point, not the same work.

Our side runs in-process in the client namespace (time.process_time around each handshake, no interpreter
start-up counted). Needs root (it builds the lab); without it, one line and exit 0.
"""

from __future__ import annotations

import os
import resource
import statistics
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

PREFIX = "vdbk"
RUNS = 15
PROPOSALS = {"MODP-2048": "aes256-sha256-modp2048", "ECP-256": "aes128-sha256-ecp256"}

OURS = r"""
import asyncio, statistics, sys, time
from vpndoctor.probes.ike import run_ike_probe
proposal, runs = sys.argv[1], int(sys.argv[2])
cpu = []
for _ in range(runs):
    t0 = time.process_time()
    obs = asyncio.run(run_ike_probe("203.0.113.10", proposals=[proposal], timeout_s=10))
    cpu.append(time.process_time() - t0)
    assert obs.reached == "IKE_AUTH", obs.model_dump()
print(statistics.median(cpu))
"""


def charon_cpu_s(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def main() -> int:
    if os.geteuid() != 0:
        print("bench ike: nothing measured: needs root (it builds the lab)")
        return 0
    from vpndoctor.errors import VpndoctorError
    from vpndoctor.lab.client import LabClient
    from vpndoctor.lab.runner import lab_down, lab_up
    from vpndoctor.lab.scenario import load_scenario

    try:
        lab_down(PREFIX)
        lab_up(load_scenario("healthy"), PREFIX)
    except VpndoctorError as exc:
        print(f"bench ike: nothing measured: {exc}")
        lab_down(PREFIX)
        return 0
    rows = []
    try:
        env = dict(os.environ, PYTHONPATH=str(ROOT / "src"))
        for label, proposal in PROPOSALS.items():
            ours = subprocess.run(
                ["ip", "netns", "exec", f"{PREFIX}-client", sys.executable, "-c", OURS, proposal, str(RUNS)],
                capture_output=True,
                text=True,
                timeout=300,
                env=env,
            )
            if ours.returncode != 0:
                print(f"bench ike: FAILED: our initiator: {ours.stderr.strip().splitlines()[-1:]}")
                return 1
            ours_s = float(ours.stdout.strip())

            client = LabClient(PREFIX, proposals=proposal).start()
            try:
                assert client.pid is not None
                samples = []
                for _ in range(RUNS):
                    before = charon_cpu_s(client.pid)
                    if not client.initiate(10).established:
                        print("bench ike: FAILED: strongSwan client did not establish")
                        return 1
                    samples.append(charon_cpu_s(client.pid) - before)
                    subprocess.run(client_terminate(client), capture_output=True, timeout=20)
                charon_s = statistics.mean(samples)  # clock-tick resolution: a mean, not a median
            finally:
                client.stop()

            usage0 = resource.getrusage(resource.RUSAGE_CHILDREN)
            for _ in range(RUNS):
                subprocess.run(
                    [
                        "ip",
                        "netns",
                        "exec",
                        f"{PREFIX}-client",
                        "ike-scan",
                        "--ikev2",
                        "--sport=0",
                        "--retry=1",
                        "203.0.113.10",
                    ],
                    capture_output=True,
                    timeout=30,
                )
            usage1 = resource.getrusage(resource.RUSAGE_CHILDREN)
            scan_s = ((usage1.ru_utime + usage1.ru_stime) - (usage0.ru_utime + usage0.ru_stime)) / RUNS
            rows.append((label, ours_s, charon_s, scan_s))
    finally:
        lab_down(PREFIX)
    print(f"{'group':10} {'ours ms':>9} {'charon ms':>10} {'ike-scan ms':>12}   (CPU/handshake, {RUNS} runs)")
    for label, ours_s, charon_s, scan_s in rows:
        print(f"{label:10} {ours_s * 1e3:9.1f} {charon_s * 1e3:10.1f} {scan_s * 1e3:12.1f}")
    for label, ours_s, charon_s, scan_s in rows:
        print(
            f"ratio {label} ours/strongSwan-charon: {ours_s / charon_s:.1f}x"
            if charon_s > 0
            else f"ratio {label} ours/strongSwan-charon: charon below clock resolution"
        )
        print(f"ratio {label} ours/ike-scan (SA_INIT only, process incl. start-up): {ours_s / scan_s:.2f}x")
    return 0


def client_terminate(client: object) -> list[str]:
    from vpndoctor.lab import strongswan

    return strongswan.swanctl_command(client.workdir, "--terminate", "--ike", "lab", "--timeout", "5")  # type: ignore[attr-defined]


if __name__ == "__main__":
    sys.exit(main())
