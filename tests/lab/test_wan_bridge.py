"""The userspace wan bridge between real network namespaces, checked with the real `ping`.

Topology (names carry our pid so parallel runs do not collide):

    vdw<pid>-a [va 198.51.100.1] <-veth-> [wa] vdw<pid>-w [wb] <-veth-> [vb 198.51.100.2] vdw<pid>-b

The wan runs in the middle namespace; wa and wb carry no address.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

pytestmark = pytest.mark.lab

SRC = Path(__file__).resolve().parents[2] / "src"
A4, B4 = "198.51.100.1", "198.51.100.2"
A6, B6 = "2001:db8:1::1", "2001:db8:1::2"
READY_TIMEOUT_S = 10.0


def _run(argv: list[str], timeout: float = 15.0, check: bool = True) -> subprocess.CompletedProcess[str]:
    res = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, check=False)
    if check and res.returncode != 0:
        raise AssertionError(f"{' '.join(argv)} -> {res.returncode}: {res.stderr.strip()}")
    return res


@dataclass(frozen=True)
class Topo:
    a: str
    w: str
    b: str

    def ip(self, ns: str, *args: str) -> None:
        _run(["ip", "-n", ns, *args])

    def exec_argv(self, ns: str, *argv: str) -> list[str]:
        return ["ip", "netns", "exec", ns, *argv]


@pytest.fixture(scope="module")
def topo(request: pytest.FixtureRequest) -> Topo:
    if os.geteuid() != 0:
        pytest.skip("the wan bridge test needs root (network namespaces, raw sockets)")
    for tool in ("ip", "ping"):
        if shutil.which(tool) is None:
            pytest.skip(f"{tool} not installed")
    prefix = f"vdw{os.getpid()}"
    t = Topo(a=f"{prefix}-a", w=f"{prefix}-w", b=f"{prefix}-b")
    created: list[str] = []

    def teardown() -> None:
        for ns in reversed(created):
            subprocess.run(["ip", "netns", "del", ns], capture_output=True, timeout=15, check=False)

    request.addfinalizer(teardown)
    for ns in (t.a, t.w, t.b):
        res = _run(["ip", "netns", "add", ns], check=False)
        if res.returncode != 0:
            pytest.skip(f"'ip netns add {ns}' failed: {res.stderr.strip()}")
        created.append(ns)

    t.ip(t.a, "link", "add", "va", "type", "veth", "peer", "name", "wa", "netns", t.w)
    t.ip(t.b, "link", "add", "vb", "type", "veth", "peer", "name", "wb", "netns", t.w)
    for ns, dev, v4, v6 in ((t.a, "va", A4, A6), (t.b, "vb", B4, B6)):
        t.ip(ns, "link", "set", "lo", "up")
        t.ip(ns, "addr", "add", f"{v4}/24", "dev", dev)
        t.ip(ns, "addr", "add", f"{v6}/64", "dev", dev, "nodad")
        t.ip(ns, "link", "set", dev, "up")
    return t


@dataclass
class Bridge:
    proc: subprocess.Popen[bytes]
    ready_file: Path
    log: Path
    returncode: int | None = None

    def stop(self) -> int:
        """SIGTERM the bridge by pid and return its exit code (SIGKILL after 5 s)."""
        if self.returncode is None:
            if self.proc.poll() is None:
                os.kill(self.proc.pid, signal.SIGTERM)
            try:
                self.returncode = self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                os.kill(self.proc.pid, signal.SIGKILL)
                self.proc.wait(timeout=5)
                self.returncode = -signal.SIGKILL
        return self.returncode

    def stderr(self) -> str:
        return self.log.read_text(errors="replace")


@pytest.fixture
def start_bridge(topo: Topo, tmp_path: Path) -> Iterator[Callable[..., Bridge]]:
    bridges: list[Bridge] = []

    def start(*extra: str) -> Bridge:
        n = len(bridges)
        ready = tmp_path / f"wan{n}.ready"
        log = tmp_path / f"wan{n}.log"
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(p for p in (str(SRC), env.get("PYTHONPATH", "")) if p)
        argv = topo.exec_argv(
            topo.w, sys.executable, "-m", "vpndoctor.lab.wan",
            "--if-a", "wa", "--if-b", "wb", "--ready-file", str(ready), *extra,
        )  # fmt: skip
        with log.open("wb") as err:
            proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=err, env=env)
        bridge = Bridge(proc=proc, ready_file=ready, log=log)
        bridges.append(bridge)
        deadline = time.monotonic() + READY_TIMEOUT_S
        while not ready.exists():
            if proc.poll() is not None:
                pytest.fail(f"wan exited with {proc.returncode} before ready: {bridge.stderr()}")
            if time.monotonic() > deadline:
                pytest.fail(f"wan not ready after {READY_TIMEOUT_S} s: {bridge.stderr()}")
            time.sleep(0.02)
        # `ip netns exec` execs the command, so the pid we started is the bridge itself.
        assert ready.read_text().strip() == str(proc.pid)
        return bridge

    yield start
    for bridge in bridges:
        bridge.stop()


@dataclass(frozen=True)
class PingResult:
    sent: int
    received: int
    avg_ms: float | None
    output: str

    @property
    def loss_pct(self) -> float:
        return 100.0 * (self.sent - self.received) / self.sent


def ping(topo: Topo, dest: str, *opts: str, timeout: float = 60.0) -> PingResult:
    res = _run(topo.exec_argv(topo.a, "ping", "-n", *opts, dest), timeout=timeout, check=False)
    m = re.search(r"(\d+) packets transmitted, (\d+) received", res.stdout)
    assert m, f"unexpected ping output:\n{res.stdout}\n{res.stderr}"
    rtt = re.search(r"= [\d.]+/([\d.]+)/[\d.]+/[\d.]+ ms", res.stdout)
    return PingResult(
        sent=int(m.group(1)),
        received=int(m.group(2)),
        avg_ms=float(rtt.group(1)) if rtt else None,
        output=res.stdout,
    )


def _mac(topo: Topo, ns: str, dev: str) -> str:
    # /sys is remounted per namespace by `ip netns exec`, so read it from inside.
    return _run(topo.exec_argv(ns, "cat", f"/sys/class/net/{dev}/address")).stdout.strip()


def test_zero_delay_forwards_and_exits_cleanly(topo: Topo, start_bridge: Callable[..., Bridge]) -> None:
    bridge = start_bridge()
    r = ping(topo, B4, "-c", "3", "-i", "0.2", "-W", "2")
    print(f"delay 0: {r.received}/{r.sent} received, avg {r.avg_ms} ms")
    assert r.received == 3, r.output
    assert r.avg_ms is not None and r.avg_ms < 50.0, r.output
    assert bridge.stop() == 0, bridge.stderr()
    assert "Traceback" not in bridge.stderr()
    assert not bridge.ready_file.exists()


def test_delay_50ms_one_way_gives_100ms_rtt(topo: Topo, start_bridge: Callable[..., Bridge]) -> None:
    start_bridge("--delay-ms", "50")
    r = ping(topo, B4, "-c", "5", "-i", "0.2", "-W", "2")
    print(f"delay 50 ms one way: {r.received}/{r.sent} received, avg RTT {r.avg_ms} ms")
    assert r.received == 5, r.output
    assert r.avg_ms is not None and 95.0 <= r.avg_ms <= 300.0, r.output


def test_loss_30pct_per_direction(topo: Topo, start_bridge: Callable[..., Bridge]) -> None:
    # Pin the neighbour entries so a lost ARP exchange (and its 1 s retry) does not turn into a
    # burst of lost pings: this test is about the per-frame loss rate only.
    mac_a, mac_b = _mac(topo, topo.a, "va"), _mac(topo, topo.b, "vb")
    topo.ip(topo.a, "neigh", "replace", B4, "lladdr", mac_b, "dev", "va", "nud", "permanent")
    topo.ip(topo.b, "neigh", "replace", A4, "lladdr", mac_a, "dev", "vb", "nud", "permanent")
    try:
        bridge = start_bridge("--loss-pct", "30", "--seed", "42")
        r = ping(topo, B4, "-c", "100", "-i", "0.01", "-W", "1")
        print(f"loss 30%/direction: {r.received}/{r.sent} received, {r.loss_pct:.0f}% loss (51% expected)")
        assert 30.0 <= r.loss_pct <= 75.0, r.output
        assert bridge.stop() == 0
        print(bridge.stderr().strip())
    finally:
        for ns, dev, addr in ((topo.a, "va", B4), (topo.b, "vb", A4)):
            _run(["ip", "-n", ns, "neigh", "del", addr, "dev", dev], check=False)


def test_fragmented_3000_byte_ping(topo: Topo, start_bridge: Callable[..., Bridge]) -> None:
    start_bridge()
    r = ping(topo, B4, "-c", "3", "-i", "0.2", "-W", "2", "-s", "3000")
    print(f"3000-byte ping: {r.received}/{r.sent} received, avg {r.avg_ms} ms")
    assert r.received == 3, r.output
    assert "3008 bytes from" in r.output


def test_ipv6_ping(topo: Topo, start_bridge: Callable[..., Bridge]) -> None:
    start_bridge("--delay-ms", "5")
    r = ping(topo, B6, "-6", "-c", "3", "-i", "0.2", "-W", "2")
    print(f"IPv6 ping: {r.received}/{r.sent} received, avg {r.avg_ms} ms")
    assert r.received == 3, r.output
    big = ping(topo, B6, "-6", "-c", "2", "-i", "0.2", "-W", "2", "-s", "3000")
    assert big.received == 2, big.output


def test_tcp_bulk_transfer_survives_offloads(topo: Topo, start_bridge: Callable[..., Bridge]) -> None:
    """veth hands TCP over as GSO super-frames with partial checksums; they must still arrive."""
    start_bridge("--delay-ms", "2")
    size = 5_000_000
    server_code = (
        "import socket,sys\n"
        "s=socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)\n"
        f"s.bind(('{B4}', 9009)); s.listen(1); print('listening', flush=True)\n"
        "c,_=s.accept(); n=0\n"
        "while (d := c.recv(1 << 20)):\n"
        "    n += len(d)\n"
        "print(n, flush=True)\n"
    )
    client_code = (
        "import socket\n"
        f"s=socket.create_connection(('{B4}', 9009), timeout=10); s.sendall(b'x' * {size}); s.close()\n"
    )
    server = subprocess.Popen(
        topo.exec_argv(topo.b, sys.executable, "-c", server_code),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert server.stdout is not None
        assert server.stdout.readline().strip() == "listening"
        _run(topo.exec_argv(topo.a, sys.executable, "-c", client_code), timeout=30)
        out, err = server.communicate(timeout=30)
    finally:
        if server.poll() is None:
            server.kill()
            server.wait(timeout=5)
    assert out.strip() == str(size), err


def test_not_root_is_a_one_line_error(topo: Topo) -> None:
    if shutil.which("setpriv") is None:
        pytest.skip("setpriv not installed")
    env = {"PYTHONPATH": str(SRC), "PATH": os.environ.get("PATH", "/usr/sbin:/usr/bin")}
    argv = topo.exec_argv(
        topo.w, "setpriv", "--reuid=65534", "--regid=65534", "--clear-groups",
        sys.executable, "-m", "vpndoctor.lab.wan", "--if-a", "wa", "--if-b", "wb",
    )  # fmt: skip
    res = subprocess.run(argv, capture_output=True, text=True, timeout=30, env=env, check=False)
    assert res.returncode == 2, res.stderr
    assert len(res.stderr.splitlines()) == 1 and "root" in res.stderr, res.stderr
