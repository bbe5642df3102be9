"""Benchmark: `vpndoctor scan` of the lab's fleet (scenario scan-vips: 1,024 addresses of 198.18.0.0/22, all
DNATed to the real strongSwan responders) beside ike-scan --ikev2, measured in the same run.

- at a given packet rate: ours with `--rate R`, ike-scan with `--interval` of 1/R (the man page: "--interval
  and --bandwidth are just different ways to change the same underlying variable"; the interval says the
  rate exactly, whatever the packet size); both with 3 transmissions per host and a 500 ms first timeout;
- uncapped: ours with `--rate 0`, ike-scan with `--interval=0`;
- memory: our peak RSS (GNU time's %M) scanning 1,024 and 16,384 targets (a target file naming the fleet
  16 times), at one rate.

Hosts per second = targets / wall time of the whole process (start-up included, for both). Between runs
the bench waits until vici shows no IKE SA on either responder (ike-scan leaves half-open SAs for strongSwan's
30 s half_open_timeout; ours leave none), so no run inherits another's COOKIE pressure. Needs root (it builds
the lab); without it, one line and exit 0. Goals (#18): >= 1.0x ike-scan at equal rate, >= 2,000 hosts/s
uncapped, peak RSS flat in the number of targets.
"""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
import tempfile
import time
from collections import Counter
from datetime import datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

PREFIX = "vdbs"
FLEET = "198.18.0.0/22"
HOSTS = 1024
RATE = int(os.environ.get("SCAN_BENCH_RATE", "250"))  # datagrams a second, the "given rate"
MEMORY_RATE = 1000
GOAL_UNCAPPED = 2000.0
GNU_TIME = "/usr/bin/time"


def ns(*argv: str) -> list[str]:
    return ["ip", "netns", "exec", f"{PREFIX}-client", *argv]


def ike_sas(workdir: Path) -> int:
    import vici  # type: ignore[import-untyped]

    total = 0
    for backend in ("vpn1", "vpn2"):
        path = workdir / backend / "charon.vici"
        if path.exists():
            with socket.socket(socket.AF_UNIX) as sock:
                sock.settimeout(5.0)
                sock.connect(str(path))
                total += int(vici.Session(sock).stats()["ikesas"]["total"])
    return total


def wait_clear(workdir: Path, limit_s: float = 90.0) -> float:
    t0 = time.monotonic()
    while ike_sas(workdir) and time.monotonic() - t0 < limit_s:
        time.sleep(1.0)
    return time.monotonic() - t0


def edge_sent(prefix: str) -> int:
    proc = subprocess.run(
        ["ip", "netns", "exec", f"{prefix}-edge", "nft", "-j", "list", "counters"],
        capture_output=True,
        text=True,
        timeout=30,
    )
    for item in json.loads(proc.stdout).get("nftables", []):
        c = item.get("counter")
        if c and c["name"] == "scan_vips_udp":
            return int(c["packets"])
    return 0


CPU_S = [0.0]  # user + system seconds of the last process timed
PHASE_S = [0.0]  # the last scan's own duration, process start-up excluded


def timed(argv: list[str], env: dict[str, str]) -> tuple[float, int, str, str]:
    """(wall seconds, peak RSS KB, stdout, stderr) of one process run under GNU time."""
    t0 = time.monotonic()
    proc = subprocess.run(
        [GNU_TIME, "-f", "RSS_KB=%M CPU=%U+%S", *argv], capture_output=True, text=True, timeout=900, env=env
    )
    wall = time.monotonic() - t0
    rss = re.findall(r"RSS_KB=(\d+) CPU=([\d.]+)\+([\d.]+)", proc.stderr)
    if proc.returncode not in (0, 1):
        raise RuntimeError(f"{argv[0]} exited {proc.returncode}: {proc.stderr.strip()[-300:]}")
    CPU_S[0] = float(rss[-1][1]) + float(rss[-1][2]) if rss else 0.0
    return wall, int(rss[-1][0]) if rss else 0, proc.stdout, proc.stderr


def ours(
    targets: list[str], rate: int, env: dict[str, str], out: Path, *extra: str
) -> tuple[float, int, Counter[str], int]:
    before = edge_sent(PREFIX)
    argv = ns(sys.executable, "-m", "vpndoctor", "scan", *targets, "--rate", str(rate),
              "--concurrency", "1024",
              "--timeout-s", "0.5", "--retries", "2", "--quiet", "--output", str(out), *extra)  # fmt: skip
    wall, rss, _, _ = timed(argv, env)
    records = [json.loads(line) for line in out.read_text().splitlines()]
    results = Counter(r["result"] for r in records)
    starts = [datetime.fromisoformat(r["started_at"]).timestamp() for r in records]
    ends = [a + r["duration_s"] for a, r in zip(starts, records, strict=True)]
    PHASE_S[0] = max(ends) - min(starts)  # first target started .. last target ended
    return wall, rss, results, edge_sent(PREFIX) - before


def ike_scan(interval_us: int, env: dict[str, str]) -> tuple[float, int, int]:
    before = edge_sent(PREFIX)
    argv = ns(
        "ike-scan", "--ikev2", "--sport=0", "--retry=3", "--timeout=500", f"--interval={interval_us}u", FLEET
    )
    wall, _, stdout, _ = timed(argv, env)
    answered = sum(1 for line in stdout.splitlines() if re.match(r"^\d+\.\d+\.\d+\.\d+\s", line))
    own = re.search(r"hosts scanned in ([\d.]+) seconds", stdout)
    PHASE_S[0] = float(own.group(1)) if own else wall  # ike-scan's own figure: its scan, start-up excluded
    return wall, answered, edge_sent(PREFIX) - before


def main() -> int:
    if os.geteuid() != 0:
        print("bench scan: nothing measured: needs root (it builds the lab)")
        return 0
    for tool in ("ike-scan", GNU_TIME):
        if not Path(tool).exists() and subprocess.run(["which", tool], capture_output=True).returncode:
            print(f"bench scan: nothing measured: {tool} is not installed (make install)")
            return 0
    from vpndoctor.errors import VpndoctorError
    from vpndoctor.lab.runner import lab_down, lab_up
    from vpndoctor.lab.scenario import load_scenario

    try:
        lab_down(PREFIX)
        info = lab_up(load_scenario("scan-vips"), PREFIX)
    except VpndoctorError as exc:
        print(f"bench scan: nothing measured: {exc}")
        lab_down(PREFIX)
        return 0
    workdir = Path(info.workdir)
    env = dict(os.environ, PYTHONPATH=str(ROOT / "src"))
    rows: list[tuple[str, float, float, str, int]] = []
    try:
        with tempfile.TemporaryDirectory(prefix="vpndoctor-bench-scan-") as tmp:
            tmpdir = Path(tmp)
            wait_clear(workdir)
            w_ours, _, res, sent = ours([FLEET], RATE, env, tmpdir / "a.jsonl")
            label = f"vpndoctor scan --rate {RATE}"
            rows.append((label, HOSTS / w_ours, HOSTS / PHASE_S[0], _fmt(res), sent))
            wait_clear(workdir)
            w_ours_c, _, res, sent = ours([FLEET], RATE, env, tmpdir / "a0.jsonl", "--cookie-rounds", "0")
            label = f"vpndoctor scan --rate {RATE} --cookie-rounds 0"
            rows.append((label, HOSTS / w_ours_c, HOSTS / PHASE_S[0], _fmt(res), sent))
            wait_clear(workdir)
            w_peer, answered, sent = ike_scan(round(1e6 / RATE), env)
            label = f"ike-scan --ikev2 --interval={round(1e6 / RATE)}u"
            rows.append((label, HOSTS / w_peer, HOSTS / PHASE_S[0], f"{answered} answered", sent))
            wait_clear(workdir)
            w_ours0, _, res0, sent = ours([FLEET], 0, env, tmpdir / "b.jsonl")
            label = "vpndoctor scan --rate 0 (uncapped)"
            rows.append((label, HOSTS / w_ours0, HOSTS / PHASE_S[0], _fmt(res0), sent))
            wait_clear(workdir)
            w_ours0c, _, res, sent = ours([FLEET], 0, env, tmpdir / "b0.jsonl", "--cookie-rounds", "0")
            label = "vpndoctor scan --rate 0 --cookie-rounds 0"
            rows.append((label, HOSTS / w_ours0c, HOSTS / PHASE_S[0], _fmt(res), sent))
            wait_clear(workdir)
            w_peer0, answered0, sent = ike_scan(0, env)
            label = "ike-scan --ikev2 --interval=0u (uncapped)"
            rows.append((label, HOSTS / w_peer0, HOSTS / PHASE_S[0], f"{answered0} answered", sent))
            # memory: the fleet once and sixteen times, from target files
            import ipaddress

            fleet = [str(a) for a in ipaddress.ip_network(FLEET)]
            small, big = tmpdir / "1x.txt", tmpdir / "16x.txt"
            small.write_text("\n".join(fleet) + "\n")
            big.write_text("\n".join(fleet * 16) + "\n")
            mem = []
            for path, n in ((small, HOSTS), (big, 16 * HOSTS)):
                wait_clear(workdir)
                wall, rss, res, _ = ours([f"@{path}"], MEMORY_RATE, env, tmpdir / f"m{n}.jsonl")
                mem.append((n, rss, n / wall, _fmt(res), CPU_S[0]))
            left = ike_sas(workdir)
            wait_clear(workdir)
    finally:
        lab_down(PREFIX)
    print(f"{'run':46} {'hosts/s':>8} {'scan-only':>9} {'datagrams':>10}  results ({HOSTS} targets, {FLEET})")
    for label, hps, ph, results, sent in rows:
        print(f"{label:46} {hps:8.0f} {ph:9.0f} {sent:10d}  {results}")
    print("hosts/s: targets / wall time of the process; scan-only: without start-up (ike-scan's own")
    print("figure; ours from the records' first start to last end)")
    for n, rss, hps, results, cpu in mem:
        print(
            f"memory: {n:6d} targets at --rate {MEMORY_RATE}: peak RSS {rss / 1024:.1f} MiB, "
            f"{hps:.0f} hosts/s, our CPU {cpu * 1e6 / n:.0f} us/target (start-up included), {results}"
        )
    print(f"IKE SAs on the responders right after our last scan: {left}")
    rows_by = {label: (hps, ph) for label, hps, ph, _, _ in rows}
    keys = [label for label, *_ in rows]
    ours_r, ours_rc, peer_r, ours_0, ours_0c, peer_0 = (rows_by[k] for k in keys)
    for what, i in (("process", 0), ("scan-only", 1)):
        r = ours_r[i] / peer_r[i]
        print(f"ratio ours/ike-scan at {RATE} datagrams/s ({what}): {r:.2f}x (goal >= 1.0x: "
              f"{'met' if r >= 1.0 else 'NOT met'}); with --cookie-rounds 0 (stops at a COOKIE, as "
              f"ike-scan does): {ours_rc[i] / peer_r[i]:.2f}x")  # fmt: skip
        print(f"ratio ours/ike-scan uncapped ({what}): {ours_0[i] / peer_0[i]:.2f}x; with --cookie-rounds 0: "
              f"{ours_0c[i] / peer_0[i]:.2f}x")  # fmt: skip
    n_big, _, _, _, cpu_big = mem[1]
    print(f"our CPU: {n_big / cpu_big:.0f} targets per CPU-second (the 16,384-target run, start-up included)")
    best = max(ours_0[1], ours_0c[1])
    print(f"uncapped: {ours_0[1]:.0f} hosts/s (--cookie-rounds 0: {ours_0c[1]:.0f}) scan-only (goal >= "
          f"{GOAL_UNCAPPED:.0f}: {'met' if best >= GOAL_UNCAPPED else 'NOT met'})")  # fmt: skip
    growth = mem[1][1] / mem[0][1] if mem[0][1] else 0.0
    print(f"ratio peak RSS 16x targets / 1x targets: {growth:.2f}x (goal: flat, <= 1.1x: "
          f"{'met' if growth <= 1.1 else 'NOT met'})")  # fmt: skip
    return 0


def _fmt(results: Counter[str]) -> str:
    return ", ".join(f"{k} {v}" for k, v in sorted(results.items()))


if __name__ == "__main__":
    sys.exit(main())
