"""Benchmark: `vpndoctor diagnose` on the lab.

1. Sequential round trips on the critical path on `healthy` (goal <= 8), from the report.
2. Wall time with a 50 ms round trip on the WAN (goal <= 8 x 50 ms + our CPU time), next to the named
   peer: the same probes run one after another, as an engineer's checklist runs them (the sum of each
   exchange's own duration), measured in the same run; ratio sequential/concurrent.
3. Time to a verdict for an unreachable target (an address where nothing answers), goal <= --timeout-s.
Needs root (it builds the lab); without it, one line and exit 0.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
PREFIX = "vdbd"
TIMEOUT_S = 5.0

RUN = r"""
import asyncio, json, sys, time
from vpndoctor.checks.diagnose import judge
from vpndoctor.probes.diagnose import DiagnoseRequest, run_diagnose
name, address, ca, timeout = sys.argv[1], sys.argv[2] or None, sys.argv[3], float(sys.argv[4])
req = DiagnoseRequest(name=name, address=address, ca_files=[ca], resolvers=["192.0.2.50"], timeout_s=timeout)
cpu0, wall0 = time.process_time(), time.monotonic()
obs = asyncio.run(run_diagnose(req))
wall, cpu = time.monotonic() - wall0, time.process_time() - cpu0
report = judge(obs)
ike = [o for o in [obs.ike_main, obs.ike_nofrag, obs.ike_padded, *obs.ike_natt, *obs.ike_affinity,
                   *obs.proposals.values()] if o is not None]
sequential = sum(o.duration_s for o in ike) + (obs.tls.duration_s if obs.tls else 0.0)
print(json.dumps({"wall_s": wall, "cpu_s": cpu, "round_trips": report.round_trips, "sequential_s": sequential,
                  "exchanges": len(ike) + (1 if obs.tls else 0), "verdict": report.verdict.status}))
"""


def run(prefix: str, name: str, address: str = "") -> dict[str, float]:
    env = dict(os.environ, PYTHONPATH=str(ROOT / "src"))
    ca = f"/var/lib/vpndoctor/lab/{prefix}/pki/ca.pem"
    proc = subprocess.run(
        [
            "ip",
            "netns",
            "exec",
            f"{prefix}-client",
            sys.executable,
            "-c",
            RUN,
            name,
            address,
            ca,
            str(TIMEOUT_S),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
    )
    if proc.returncode != 0:
        raise RuntimeError(proc.stderr.strip().splitlines()[-1] if proc.stderr.strip() else "diagnose failed")
    return json.loads(proc.stdout)  # type: ignore[no-any-return]


def main() -> int:
    if os.geteuid() != 0:
        print("bench diagnose: nothing measured: needs root (it builds the lab)")
        return 0
    from vpndoctor.errors import VpndoctorError
    from vpndoctor.lab.runner import lab_down, lab_up
    from vpndoctor.lab.scenario import Scenario, load_scenario

    results: dict[str, dict[str, float]] = {}
    try:
        for label, scenario in (
            ("healthy", load_scenario("healthy")),
            ("rtt50", Scenario(name="bench-rtt50", rtt_ms=50)),
        ):
            lab_down(PREFIX)
            lab_up(scenario, PREFIX)
            results[label] = run(PREFIX, "vpn.lab.test")
            if label == "healthy":
                results["unreachable"] = run(PREFIX, "vpn.lab.test", "203.0.113.99")
    except (VpndoctorError, RuntimeError, subprocess.TimeoutExpired) as exc:
        print(f"bench diagnose: FAILED: {exc}")
        return 1
    finally:
        lab_down(PREFIX)
    h, s, u = results["healthy"], results["rtt50"], results["unreachable"]
    budget = 8 * 0.050 + s["cpu_s"]
    print(
        f"critical-path round trips (healthy): {h['round_trips']} (goal <= 8); {h['exchanges']} exchanges "
        f"in {h['wall_s']:.2f} s, CPU {h['cpu_s']:.2f} s"
    )
    print(
        f"wall time with rtt 50 ms: {s['wall_s']:.2f} s (goal <= 8 x 50 ms + CPU {s['cpu_s']:.2f} s = "
        f"{budget:.2f} s): {'met' if s['wall_s'] <= budget else 'NOT met'}"
    )
    print(f"sequential peer (same exchanges one after another) with rtt 50 ms: {s['sequential_s']:.2f} s")
    print(f"ratio sequential/concurrent (rtt 50 ms): {s['sequential_s'] / s['wall_s']:.1f}x")
    print(
        f"unreachable target: verdict '{u['verdict']}' in {u['wall_s']:.2f} s (goal <= --timeout-s "
        f"{TIMEOUT_S:g} s): {'met' if u['wall_s'] <= TIMEOUT_S else 'NOT met'}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
