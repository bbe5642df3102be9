"""Benchmark: the lab's userspace wan bridge (vpndoctor.lab.wan) against the Linux kernel bridge.

Topology, built fresh for every run (names carry our pid so parallel runs do not collide):

    vdb<pid>-a [va 198.51.100.1] <-veth-> [wa] vdb<pid>-w [wb] <-veth-> [vb 198.51.100.2] vdb<pid>-b

The middle namespace forwards between wa and wb with either
  - the kernel bridge (`br0`, both veth ends enslaved), the named peer, or
  - our wan with --delay-ms 0,
alternating over ROUNDS rounds so that drift in the machine's speed hits both alike; then once with
our wan at --delay-ms 25 to check the accuracy of the emulated delay.

Measured: average ping RTT a -> b and TCP throughput a -> b (Python sockets, timed by the receiver),
each the median over the rounds, then the ratios ours/kernel-bridge.
Run as root: `make bench` or `.venv/bin/python bench/wan.py`. Without root or network namespaces it
prints one line saying nothing was measured and exits 0; a failed measurement exits 1.
"""

from __future__ import annotations

import os
import re
import selectors
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import NoReturn

SRC = Path(__file__).resolve().parents[1] / "src"
A4, B4 = "198.51.100.1", "198.51.100.2"

PING_COUNT = 300
PING_INTERVAL_S = 0.002
TCP_BYTES = 50_000_000  # MB below means 10**6 bytes
TCP_PER_ROUND = 2
TCP_PORT = 9100
ROUNDS = 3
TCP_TIMEOUT_S = 30.0
DELAY_MS = 25.0
DELAY_PING_COUNT = 20
DELAY_PING_INTERVAL_S = 0.05
READY_TIMEOUT_S = 10.0
CMD_TIMEOUT_S = 15.0

RECEIVER_CODE = """\
import socket, sys, time
host, port, limit = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])
srv = socket.socket()
srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
srv.bind((host, port))
srv.listen(1)
srv.settimeout(limit)
print("listening", flush=True)
conn, _ = srv.accept()
conn.settimeout(limit)
buf = bytearray(1 << 20)
total = 0
t0 = time.perf_counter()
while n := conn.recv_into(buf):
    total += n
elapsed = time.perf_counter() - t0
conn.close()
print(total, elapsed, flush=True)
"""

SENDER_CODE = """\
import socket, sys
host, port, size, limit = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), float(sys.argv[4])
chunk = memoryview(bytes(1 << 20))
sock = socket.create_connection((host, port), timeout=limit)
left = size
while left > 0:
    n = min(left, len(chunk))
    sock.sendall(chunk[:n])
    left -= n
sock.shutdown(socket.SHUT_WR)
sock.close()
"""


class LabUnavailable(Exception):
    """This machine cannot host the lab (no root, no namespaces, ...): nothing measured, exit 0."""


class BenchFailure(Exception):
    """A measurement failed (loss, timeout, bridge died, ...): exit 1."""


class _Interrupted(Exception):
    """Raised from the SIGTERM/SIGINT handler so that the `finally` teardown still runs."""


def _on_signal(signum: int, frame: FrameType | None) -> NoReturn:
    raise _Interrupted(signal.Signals(signum).name)


def _run(argv: list[str], timeout: float = CMD_TIMEOUT_S) -> subprocess.CompletedProcess[str]:
    try:
        return subprocess.run(argv, capture_output=True, text=True, timeout=timeout, check=False)
    except subprocess.TimeoutExpired:
        raise BenchFailure(f"timed out after {timeout:g} s: {' '.join(argv)}") from None
    except OSError as exc:
        raise BenchFailure(f"cannot run {argv[0]}: {exc}") from None


def _last_line(text: str) -> str:
    lines = [line for line in text.strip().splitlines() if line.strip()]
    return lines[-1].strip() if lines else "no error output"


@dataclass
class Bridge:
    """One running `python -m vpndoctor.lab.wan` in the middle namespace."""

    proc: subprocess.Popen[bytes]
    log: Path

    def stderr(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""

    def check_alive(self) -> None:
        if self.proc.poll() is not None:
            raise BenchFailure(f"wan bridge exited with {self.proc.returncode}: {_last_line(self.stderr())}")

    def stop(self) -> int:
        """SIGTERM the bridge by pid; SIGKILL after 5 s. Returns its exit code."""
        if self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                os.kill(self.proc.pid, signal.SIGKILL)
                self.proc.wait(timeout=5)
        return self.proc.returncode


@dataclass
class Lab:
    prefix: str
    tmp: Path
    created: list[str] = field(default_factory=list)
    bridges: list[Bridge] = field(default_factory=list)
    helpers: list[subprocess.Popen[str]] = field(default_factory=list)
    next_port: int = TCP_PORT

    @property
    def a(self) -> str:
        return f"{self.prefix}-a"

    @property
    def w(self) -> str:
        return f"{self.prefix}-w"

    @property
    def b(self) -> str:
        return f"{self.prefix}-b"

    @staticmethod
    def exec_argv(ns: str, *argv: str) -> list[str]:
        return ["ip", "netns", "exec", ns, *argv]

    def ip(self, ns: str, *args: str) -> None:
        res = _run(["ip", "-n", ns, *args])
        if res.returncode != 0:
            detail = _last_line(res.stderr)
            if "Unknown device type" in detail or "not supported" in detail.lower():
                raise LabUnavailable(f"'ip -n {ns} {' '.join(args)}' failed: {detail}")
            raise BenchFailure(f"'ip -n {ns} {' '.join(args)}' failed: {detail}")

    def build(self) -> None:
        for ns in (self.a, self.w, self.b):
            res = _run(["ip", "netns", "add", ns])
            if res.returncode != 0:
                detail = _last_line(res.stderr)
                if "exists" in detail.lower():
                    raise BenchFailure(f"namespace {ns} already exists (left over?): {detail}")
                raise LabUnavailable(f"network namespaces unavailable ('ip netns add' failed: {detail})")
            self.created.append(ns)
        self.ip(self.a, "link", "add", "va", "type", "veth", "peer", "name", "wa", "netns", self.w)
        self.ip(self.b, "link", "add", "vb", "type", "veth", "peer", "name", "wb", "netns", self.w)
        for ns, dev, addr in ((self.a, "va", A4), (self.b, "vb", B4)):
            self.ip(ns, "link", "set", "lo", "up")
            self.ip(ns, "addr", "add", f"{addr}/24", "dev", dev)
            self.ip(ns, "link", "set", dev, "up")
        for dev in ("wa", "wb"):
            self.ip(self.w, "link", "set", dev, "up")

    # -- the two forwarders -------------------------------------------------------------------

    def kernel_bridge_up(self) -> None:
        self.ip(self.w, "link", "add", "br0", "type", "bridge")
        for dev in ("wa", "wb"):
            self.ip(self.w, "link", "set", dev, "master", "br0")
        self.ip(self.w, "link", "set", "br0", "up")

    def kernel_bridge_down(self) -> None:
        self.ip(self.w, "link", "del", "br0")

    def start_wan(self, *extra: str) -> Bridge:
        n = len(self.bridges)
        ready = self.tmp / f"wan{n}.ready"
        log = self.tmp / f"wan{n}.log"
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(p for p in (str(SRC), env.get("PYTHONPATH", "")) if p)
        argv = self.exec_argv(
            self.w, sys.executable, "-m", "vpndoctor.lab.wan",
            "--if-a", "wa", "--if-b", "wb", "--ready-file", str(ready), *extra,
        )  # fmt: skip
        with log.open("wb") as err:
            proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=err, env=env)
        bridge = Bridge(proc=proc, log=log)
        self.bridges.append(bridge)
        deadline = time.monotonic() + READY_TIMEOUT_S
        while not ready.exists():
            bridge.check_alive()
            if time.monotonic() > deadline:
                raise BenchFailure(f"wan bridge not ready after {READY_TIMEOUT_S:g} s")
            time.sleep(0.02)
        return bridge

    def stop_wan(self, bridge: Bridge) -> None:
        bridge.check_alive()
        code = bridge.stop()
        if code != 0:
            raise BenchFailure(f"wan bridge exited with {code} on SIGTERM: {_last_line(bridge.stderr())}")

    # -- teardown -------------------------------------------------------------------------------

    def teardown(self) -> list[str]:
        """Kill what we started (by pid) and delete only the namespaces we created; return problems."""
        problems: list[str] = []
        for proc in self.helpers:
            if proc.poll() is None:
                proc.kill()
                try:
                    proc.wait(timeout=5)
                except subprocess.TimeoutExpired:
                    problems.append(f"helper pid {proc.pid} did not exit")
        for bridge in self.bridges:
            try:
                bridge.stop()
            except (OSError, subprocess.TimeoutExpired) as exc:
                problems.append(f"wan pid {bridge.proc.pid} did not stop: {exc}")
        for ns in reversed(self.created):
            try:
                res = subprocess.run(
                    ["ip", "netns", "del", ns], capture_output=True, text=True, timeout=15, check=False
                )
            except (OSError, subprocess.TimeoutExpired) as exc:
                problems.append(f"cannot delete namespace {ns}: {exc}")
                continue
            if res.returncode != 0:
                problems.append(f"cannot delete namespace {ns}: {_last_line(res.stderr)}")
        self.created.clear()
        return problems


# -- measurements -------------------------------------------------------------------------------


def _ping(lab: Lab, count: int, interval_s: float) -> tuple[int, int, float | None, str]:
    deadline = int(count * interval_s) + 10
    opts = ["-n", "-q", "-c", str(count), "-i", f"{interval_s:g}", "-W", "2", "-w", str(deadline)]
    argv = lab.exec_argv(lab.a, "ping", *opts, B4)
    res = _run(argv, timeout=deadline + 5)
    m = re.search(r"(\d+) packets transmitted, (\d+) received", res.stdout)
    if not m:
        raise BenchFailure(f"unexpected ping output: {_last_line(res.stdout + res.stderr)}")
    rtt = re.search(r"= [\d.]+/([\d.]+)/[\d.]+/[\d.]+ ms", res.stdout)
    return int(m.group(1)), int(m.group(2)), float(rtt.group(1)) if rtt else None, res.stdout


def warm_up(lab: Lab, what: str) -> None:
    """Resolve ARP and let the forwarder learn both MACs before anything is timed."""
    for _ in range(10):
        _sent, received, _avg, _out = _ping(lab, 3, 0.05)
        if received > 0:
            return
    raise BenchFailure(f"{what}: no ping reply from {B4} during warm-up")


def ping_avg_ms(lab: Lab, what: str, count: int, interval_s: float) -> float:
    sent, received, avg, out = _ping(lab, count, interval_s)
    if received != sent or avg is None:
        raise BenchFailure(f"{what}: ping lost {sent - received} of {sent} packets")
    return avg


def _wait_line(proc: subprocess.Popen[str], timeout: float) -> str:
    assert proc.stdout is not None
    with selectors.DefaultSelector() as sel:
        sel.register(proc.stdout, selectors.EVENT_READ)
        if not sel.select(timeout):
            return ""
    return proc.stdout.readline().strip()


def tcp_once(lab: Lab, what: str, port: int) -> float:
    """Send TCP_BYTES from a to b; return MB/s as timed by the receiver (accept to EOF)."""
    receiver = subprocess.Popen(
        lab.exec_argv(lab.b, sys.executable, "-c", RECEIVER_CODE, B4, str(port), str(TCP_TIMEOUT_S)),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    lab.helpers.append(receiver)
    try:
        if _wait_line(receiver, READY_TIMEOUT_S) != "listening":
            raise BenchFailure(f"{what}: TCP receiver in {lab.b} did not start")
        sender_argv = lab.exec_argv(
            lab.a, sys.executable, "-c", SENDER_CODE, B4, str(port), str(TCP_BYTES), str(TCP_TIMEOUT_S)
        )
        sent = _run(sender_argv, timeout=TCP_TIMEOUT_S + 5)
        if sent.returncode != 0:
            raise BenchFailure(f"{what}: TCP sender failed: {_last_line(sent.stderr)}")
        try:
            out, err = receiver.communicate(timeout=TCP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            raise BenchFailure(f"{what}: TCP receiver did not finish in {TCP_TIMEOUT_S:g} s") from None
    finally:
        if receiver.poll() is None:
            receiver.kill()
            receiver.wait(timeout=5)
    fields = out.split()
    if receiver.returncode != 0 or len(fields) != 2:
        raise BenchFailure(f"{what}: TCP receiver failed: {_last_line(err or out)}")
    total, elapsed = int(fields[0]), float(fields[1])
    if total != TCP_BYTES:
        raise BenchFailure(f"{what}: TCP receiver got {total} of {TCP_BYTES} bytes")
    return total / 1e6 / max(elapsed, 1e-9)


@dataclass
class Samples:
    """Per-round ping averages and per-transfer throughputs of one forwarder."""

    rtt_ms: list[float] = field(default_factory=list)
    mbps: list[float] = field(default_factory=list)

    @property
    def rtt(self) -> float:
        return statistics.median(self.rtt_ms)

    @property
    def tput(self) -> float:
        return statistics.median(self.mbps)


def measure_round(lab: Lab, what: str, into: Samples) -> None:
    warm_up(lab, what)
    into.rtt_ms.append(ping_avg_ms(lab, what, PING_COUNT, PING_INTERVAL_S))
    for _ in range(TCP_PER_ROUND):
        lab.next_port += 1
        into.mbps.append(tcp_once(lab, what, lab.next_port))


@dataclass
class Report:
    kernel: Samples
    ours: Samples
    delay_rtt_ms: float


def measure(lab: Lab) -> Report:
    """Alternate kernel bridge and wan in ROUNDS rounds (order flipped every round) so that drift in
    the machine's speed hits both alike; then check the emulated delay once."""
    kernel, ours = Samples(), Samples()

    def kernel_round() -> None:
        lab.kernel_bridge_up()
        measure_round(lab, "kernel bridge", kernel)
        lab.kernel_bridge_down()

    def ours_round() -> None:
        wan = lab.start_wan("--delay-ms", "0")
        measure_round(lab, "wan bridge", ours)
        lab.stop_wan(wan)

    for i in range(ROUNDS):
        for step in (kernel_round, ours_round) if i % 2 == 0 else (ours_round, kernel_round):
            step()

    what = f"wan bridge --delay-ms {DELAY_MS:g}"
    wan = lab.start_wan("--delay-ms", f"{DELAY_MS:g}")
    warm_up(lab, what)
    delay_rtt = ping_avg_ms(lab, what, DELAY_PING_COUNT, DELAY_PING_INTERVAL_S)
    lab.stop_wan(wan)
    return Report(kernel=kernel, ours=ours, delay_rtt_ms=delay_rtt)


# -- output -------------------------------------------------------------------------------------


def _ratio(x: float) -> str:
    return f"{x:.2f}x" if x >= 0.1 else f"{x:.3f}x"


def _spread(values: list[float], fmt: str) -> str:
    return "..".join(format(v, fmt) for v in (min(values), max(values)))


def print_report(rep: Report) -> None:
    k, o = rep.kernel, rep.ours
    expected = 2 * DELAY_MS
    rows = [
        ("", "kernel-bridge", "ours (wan)", "range kernel", "range ours"),
        (
            f"rtt avg ms (ping -c {PING_COUNT} -i {PING_INTERVAL_S:g}, median of {ROUNDS})",
            f"{k.rtt:.3f}",
            f"{o.rtt:.3f}",
            _spread(k.rtt_ms, ".3f"),
            _spread(o.rtt_ms, ".3f"),
        ),
        (
            f"tcp a->b MB/s ({TCP_BYTES // 1_000_000} MB, median of {ROUNDS * TCP_PER_ROUND})",
            f"{k.tput:.0f}",
            f"{o.tput:.0f}",
            _spread(k.mbps, ".0f"),
            _spread(o.mbps, ".0f"),
        ),
        (
            f"rtt avg ms with --delay-ms {DELAY_MS:g} (ping -c {DELAY_PING_COUNT})",
            "-",
            f"{rep.delay_rtt_ms:.2f}",
            "",
            "",
        ),
    ]
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    print(f"bench: userspace wan bridge vs Linux kernel bridge, veth a <-> w <-> b, {os.cpu_count()} CPUs")
    for row in rows:
        cells = [f"{row[0]:<{widths[0]}}", *(f"{c:>{w}}" for c, w in zip(row[1:], widths[1:], strict=True))]
        print("  ".join(cells).rstrip())
    print(f"ratio rtt ours/kernel-bridge: {_ratio(o.rtt / k.rtt)}")
    print(f"ratio throughput ours/kernel-bridge: {_ratio(o.tput / k.tput)}")
    print(
        f"delay error ours --delay-ms {DELAY_MS:g}: {rep.delay_rtt_ms - expected:+.2f} ms "
        f"(avg RTT {rep.delay_rtt_ms:.2f} ms, expected {expected:g} ms)"
    )


def lab_unavailable_reason() -> str | None:
    if not sys.platform.startswith("linux"):
        return "needs Linux network namespaces"
    if os.geteuid() != 0:
        return "needs root (network namespaces, raw packet sockets)"
    for tool in ("ip", "ping"):
        if shutil.which(tool) is None:
            return f"'{tool}' not installed"
    return None


def main() -> int:
    reason = lab_unavailable_reason()
    if reason:
        print(f"bench: nothing measured: {reason}")
        return 0
    old = {sig: signal.signal(sig, _on_signal) for sig in (signal.SIGTERM, signal.SIGINT)}
    code = 0
    report: Report | None = None
    with tempfile.TemporaryDirectory(prefix="vdbench-") as tmp:
        lab = Lab(prefix=f"vdb{os.getpid()}", tmp=Path(tmp))
        try:
            lab.build()
            report = measure(lab)
        except LabUnavailable as exc:
            print(f"bench: nothing measured: {exc}")
        except BenchFailure as exc:
            print(f"bench: FAILED: {exc}")
            code = 1
        except _Interrupted as exc:
            print(f"bench: interrupted by {exc}, nothing reported")
            code = 130
        finally:
            for sig in old:
                signal.signal(sig, signal.SIG_IGN)
            problems = lab.teardown()
            for sig, handler in old.items():
                signal.signal(sig, handler)
    for problem in problems:
        print(f"bench: cleanup: {problem}", file=sys.stderr)
    if report is not None:
        print_report(report)
    if problems and code == 0:
        code = 1
    return code


if __name__ == "__main__":
    sys.exit(main())
