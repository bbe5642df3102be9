"""Benchmark: `vpndoctor connect --ping --resolve --mtu` through the lab's tunnel, at 0 ms and 50 ms round
trip (the lab's userspace WAN delay line; scenario tunnel-healthy with rtt_ms set).

Measured, median of 3 runs each:
1. wall time of connect + ping (3 echoes) + resolve + MTU search + Delete, from the command's start (a new
   Python process: start-up and imports included), and the probe's own duration from its report;
2. round trips: the IKE exchanges (from the report) plus one per tunnel probe answered;
3. the MTU search: probes and ESP packets sent (goal <= 12 for the 1280-1500 range).
The named peer, in the same run: strongSwan's own client (the lab client, charon with kernel-libipsec)
dialling the same tunnel (swanctl --initiate, charon already running), then `ping -c 3 -i 0.2` and `dig` to
the same inside host through its TUN device, then hanging up: the same work a user would do by hand, minus
the MTU search (no tool does it through a tunnel). Ratios ours/peer.
Needs root (it builds the lab); without it, one line and exit 0.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
PREFIX = "vtub"
RUNS = 3
MTU_PROBE_GOAL = 12


def ours(prefix: str, info: Any, password_file: Path) -> dict[str, Any]:
    from vpndoctor.lab import topology as t

    argv = [
        "ip", "netns", "exec", f"{prefix}-client", sys.executable, "-m", "vpndoctor", "connect", t.VIP4,
        "--user", t.EAP_USER, "--password-file", str(password_file), "--ca", info.ca_file, "--json",
        "--ping", t.INSIDE4, "--resolve", t.INSIDE_NAME, "--mtu",
    ]  # fmt: skip
    env = dict(os.environ, PYTHONPATH=str(ROOT / "src"))
    start = time.monotonic()
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=120, env=env)
    wall = time.monotonic() - start
    if proc.returncode != 0:
        raise RuntimeError(f"connect exited {proc.returncode}: {proc.stderr.strip()[:300]}")
    data = json.loads(proc.stdout)
    tun = data["tunnel"]
    ping, answer, mtu = tun["ping"][0], tun["resolve"][0], tun["mtu"]
    if ping["received"] != 3 or answer["outcome"] != "answer" or mtu["tunnel_mtu_bytes"] is None:
        raise RuntimeError(f"the tunnel did not work: {ping}, {answer}, {mtu}")
    sent_before_mtu = ping["sent"] + answer["attempts"]
    tunnel_rt = ping["received"] + 1 + sum(1 for p in mtu["probes"] if p["result"] != "too-big-here")
    return {
        "wall_s": wall,
        "probe_s": data["duration_s"],
        "round_trips": data["round_trips"] + tunnel_rt,
        "mtu_probes": mtu["probes_sent"],
        "mtu_esp_sent": tun["packets_sent"] - sent_before_mtu,
        "mtu": mtu["tunnel_mtu_bytes"],
    }


def peer(prefix: str) -> dict[str, Any]:
    from vpndoctor.lab import topology as t
    from vpndoctor.lab.client import LabClient, Tunnel

    client = LabClient(prefix, userspace_esp=True).start()
    try:
        start = time.monotonic()
        result = client.dial(Tunnel.local_user(vips=("0.0.0.0",), remote_ts="0.0.0.0/0"))
        if not result.child_established:
            raise RuntimeError(f"the lab client did not get a CHILD_SA: {result.error}")
        ns = ["ip", "netns", "exec", f"{prefix}-client"]
        pinged = subprocess.run([*ns, "ping", "-n", "-c", "3", "-i", "0.2", "-W", "2", t.INSIDE4],
                                capture_output=True, text=True, timeout=30)  # fmt: skip
        dig = ["dig", "+tries=1", "+time=2", f"@{t.INSIDE4}", t.INSIDE_NAME, "A", "+short"]
        dug = subprocess.run([*ns, *dig], capture_output=True, text=True, timeout=30)
        client.hangup()
        wall = time.monotonic() - start
    finally:
        client.stop()
    ok = pinged.returncode == 0 and t.INSIDE4 in dug.stdout
    return {"wall_s": wall, "worked": ok}


def main() -> int:
    if os.geteuid() != 0:
        print("bench tunnel: nothing measured: needs root (it builds the lab)")
        return 0
    from vpndoctor.errors import VpndoctorError
    from vpndoctor.lab import topology as t
    from vpndoctor.lab.runner import lab_down, lab_up
    from vpndoctor.lab.scenario import load_scenario

    base = load_scenario("tunnel-healthy")
    results: dict[str, dict[str, Any]] = {}
    password = Path(f"/tmp/{PREFIX}-password")
    password.write_text(t.EAP_PASSWORD + "\n")
    password.chmod(0o600)
    try:
        for label, rtt in (("0ms", 0.0), ("50ms", 50.0)):
            lab_down(PREFIX)
            info = lab_up(base.model_copy(update={"name": f"bench-tunnel-{label}", "rtt_ms": rtt}), PREFIX)
            runs, peers = [], []
            for _ in range(RUNS):  # alternate ours and the peer: drift hits both alike
                runs.append(ours(PREFIX, info, password))
                peers.append(peer(PREFIX))
            results[label] = {
                key: statistics.median(r[key] for r in runs)
                for key in ("wall_s", "probe_s", "round_trips", "mtu_probes", "mtu_esp_sent", "mtu")
            }
            results[label]["peer_wall_s"] = statistics.median(p["wall_s"] for p in peers)
            results[label]["peer_worked"] = all(p["worked"] for p in peers)
    except (VpndoctorError, RuntimeError, subprocess.TimeoutExpired) as exc:
        print(f"bench tunnel: FAILED: {exc}")
        return 1
    finally:
        lab_down(PREFIX)
        password.unlink(missing_ok=True)
    print(f"vpndoctor connect --ping --resolve --mtu through the lab tunnel; median of {RUNS} runs")
    print(f"{'':26} {'ours':>8} {'strongSwan client':>18}  ratio")
    for label in ("0ms", "50ms"):
        r = results[label]
        note = "" if r["peer_worked"] else "  (peer's ping/dig failed)"
        print(
            f"rtt {label}: wall s          {r['wall_s']:>8.2f} {r['peer_wall_s']:>18.2f}  "
            f"{r['wall_s'] / max(1e-9, r['peer_wall_s']):.2f}x{note}"
        )
        print(
            f"rtt {label}: network s       {r['probe_s']:>8.2f} {r['peer_wall_s']:>18.2f}  "
            f"{r['probe_s'] / max(1e-9, r['peer_wall_s']):.2f}x  (ours without process start-up)"
        )
        print(f"rtt {label}: round trips     {r['round_trips']:>8g}")
        print(
            f"rtt {label}: MTU search      {r['mtu_probes']:>8g} probes, {r['mtu_esp_sent']:g} ESP packets "
            f"sent, tunnel MTU {r['mtu']:g}"
        )
    goals = [
        (f"MTU search <= {MTU_PROBE_GOAL} probes", max(r["mtu_probes"] for r in results.values()) <= 12),
        ("peer measured (its tunnel passed traffic)", all(r["peer_worked"] for r in results.values())),
    ]
    for text, ok in goals:
        print(f"  goal {text}: {'met' if ok else 'NOT met'}")
    return 0 if all(ok for _, ok in goals) else 1


if __name__ == "__main__":
    sys.exit(main())
