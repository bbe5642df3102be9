"""Benchmark: `vpndoctor diagnose` on the lab, against strongSwan with its default DoS limits.

For a healthy gateway at 0 ms and at 50 ms round trip (the lab's userspace WAN delay line), with the
politeness budget (at most 2 of our IKE SAs half-open on the gateway, the default):
1. sequential round trips on the critical path (goal <= 10), from the report;
2. wall time (goal <= 2 s at 50 ms);
3. the peak number of our half-open SAs the responders counted, watched through vici (goal <= budget);
each the median of 3 runs. Next to it, in the same run, the named peer: the same diagnosis without a
budget (--max-half-open 32, every probe at once, as vpndoctor ran before issue #13): what the budget
costs in round trips and time, and what it spares the gateway (its peak, and whether it demanded
cookies). Last, the time to a verdict for an unreachable target (goal <= --timeout-s).
Needs root (it builds the lab); without it, one line and exit 0.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
PREFIX = "vdbd"
TIMEOUT_S = 5.0
BUDGET = 2
NO_BUDGET = 32
RUNS = 3

RUN = r"""
import asyncio, json, sys, time
from vpndoctor.checks.diagnose import judge
from vpndoctor.observations.diagnose import DiagnoseRequest
from vpndoctor.probes.diagnose import run_diagnose
name, address, ca = sys.argv[1], sys.argv[2] or None, sys.argv[3]
timeout, budget = float(sys.argv[4]), int(sys.argv[5])
req = DiagnoseRequest(name=name, address=address, ca_files=[ca], resolvers=["192.0.2.50"], timeout_s=timeout,
                      max_half_open=budget)
cpu0, wall0 = time.process_time(), time.monotonic()
obs = asyncio.run(run_diagnose(req))
wall, cpu = time.monotonic() - wall0, time.process_time() - cpu0
report = judge(obs)
pol = report.politeness
print(json.dumps({"wall_s": wall, "cpu_s": cpu, "round_trips": report.round_trips,
                  "verdict": report.verdict.status, "root_causes": report.verdict.root_causes,
                  "cookies": bool(pol and pol.cookie_demanded),
                  "own_peak": pol.peak_half_open if pol else 0}))
"""


def run(prefix: str, budget: int, address: str = "") -> dict[str, Any]:
    from vpndoctor.lab.vici_watch import HalfOpenWatch

    env = dict(os.environ, PYTHONPATH=str(ROOT / "src"))
    workdir = Path(f"/var/lib/vpndoctor/lab/{prefix}")
    argv = [
        "ip",
        "netns",
        "exec",
        f"{prefix}-client",
        sys.executable,
        "-c",
        RUN,
        "vpn.lab.test",
        address,
        str(workdir / "pki" / "ca.pem"),
        str(TIMEOUT_S),
        str(budget),
    ]
    with HalfOpenWatch(workdir) as watch:
        proc = subprocess.run(argv, capture_output=True, text=True, timeout=120, env=env)
    if proc.returncode != 0:
        raise RuntimeError(proc.stderr.strip().splitlines()[-1] if proc.stderr.strip() else "diagnose failed")
    result: dict[str, Any] = json.loads(proc.stdout)
    result["peak"] = watch.peak
    result["left"] = watch.after
    return result


def median_of(prefix: str, budget: int) -> dict[str, Any]:
    runs = [run(prefix, budget) for _ in range(RUNS)]
    out = {k: statistics.median(r[k] for r in runs) for k in ("wall_s", "cpu_s", "round_trips")}
    out["peak"] = max(r["peak"] for r in runs)
    out["left"] = max(r["left"] for r in runs)
    out["cookies"] = any(r["cookies"] for r in runs)
    out["verdicts"] = sorted(
        {r["verdict"] + ("" if not r["root_causes"] else str(r["root_causes"])) for r in runs}
    )
    return out


def main() -> int:
    if os.geteuid() != 0:
        print("bench diagnose: nothing measured: needs root (it builds the lab)")
        return 0
    from vpndoctor.errors import VpndoctorError
    from vpndoctor.lab.runner import lab_down, lab_up
    from vpndoctor.lab.scenario import Scenario

    results: dict[str, dict[str, Any]] = {}
    try:
        for label, scenario in (
            ("0ms", Scenario(name="bench-rtt0")),
            ("50ms", Scenario(name="bench-rtt50", rtt_ms=50)),
        ):
            lab_down(PREFIX)
            lab_up(scenario, PREFIX)
            # Alternate budget and peer so that drift in machine speed hits both alike.
            results[label] = median_of(PREFIX, BUDGET)
            results[label + "-peer"] = median_of(PREFIX, NO_BUDGET)
            if label == "0ms":
                results["unreachable"] = run(PREFIX, BUDGET, "203.0.113.99")
    except (VpndoctorError, RuntimeError, subprocess.TimeoutExpired) as exc:
        print(f"bench diagnose: FAILED: {exc}")
        return 1
    finally:
        lab_down(PREFIX)
    print(f"vpndoctor diagnose, healthy lab, strongSwan default DoS limits; median of {RUNS} runs")
    print(f"{'':28} {'budget ' + str(BUDGET):>12} {'no budget (' + str(NO_BUDGET) + ')':>16}  ratio")
    for label in ("0ms", "50ms"):
        ours, peer = results[label], results[label + "-peer"]
        print(
            f"rtt {label}: round trips        {ours['round_trips']:>12g} {peer['round_trips']:>16g}  "
            f"{ours['round_trips'] / max(1, peer['round_trips']):.2f}x"
        )
        print(
            f"rtt {label}: wall s             {ours['wall_s']:>12.2f} {peer['wall_s']:>16.2f}  "
            f"{ours['wall_s'] / max(1e-9, peer['wall_s']):.2f}x"
        )
        print(f"rtt {label}: peak half-open     {ours['peak']:>12} {peer['peak']:>16}")
        print(f"rtt {label}: cookies demanded   {str(ours['cookies']):>12} {str(peer['cookies']):>16}")
        print(f"rtt {label}: left half-open     {ours['left']:>12} {peer['left']:>16}")
        print(
            f"rtt {label}: verdicts           "
            f"{', '.join(ours['verdicts']):>12} {', '.join(peer['verdicts']):>16}"
        )
    z, f = results["0ms"], results["50ms"]
    goals = [
        ("round trips <= 10 (0 ms)", z["round_trips"] <= 10),
        ("round trips <= 10 (50 ms)", f["round_trips"] <= 10),
        ("wall <= 2 s at 50 ms", f["wall_s"] <= 2.0),
        (f"peak half-open <= budget {BUDGET}", max(z["peak"], f["peak"]) <= BUDGET),
        ("nothing left half-open", max(z["left"], f["left"]) == 0),
    ]
    for text, ok in goals:
        print(f"  goal {text}: {'met' if ok else 'NOT met'}")
    u = results["unreachable"]
    print(
        f"unreachable target: verdict '{u['verdict']}' in {u['wall_s']:.2f} s (goal <= --timeout-s "
        f"{TIMEOUT_S:g} s + 1 s wind-down): {'met' if u['wall_s'] <= TIMEOUT_S + 1 else 'NOT met'}"
    )
    return 0 if all(ok for _, ok in goals) else 1


if __name__ == "__main__":
    sys.exit(main())
