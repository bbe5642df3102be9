"""Benchmark: a full `vpndoctor tls` audit vs sslscan (and, with --testssl, testssl.sh's default run) on the
same loopback nginx endpoint, whole-process wall time, medians of a few runs, ratios printed.

The endpoint is shaped like the field guide's ADC front end: TLS 1.0-1.3, ECDHE-RSA-AES128-SHA and a few
AES suites plus NULL-SHA/NULL-SHA256 at @SECLEVEL=0, client certificate required (nginx `ssl_verify_client
on`), session cache and tickets on. Three paths:
- loopback: straight to nginx (goal: no slower than 2x sslscan);
- relay: through a small TCP relay in this process that holds every chunk 25 ms each way (50 ms per round
  trip; TCP's own handshake is not delayed, so real paths cost one more round trip per connection, for both
  tools alike). Goal: faster than sslscan, because our connections run concurrently and sslscan's do not.
- lab: the same nginx ADC recipe in the lab (`iphttps-adc-wan-slow`: the client behind the lab's userspace
  netem with a 50 ms round trip, TCP handshakes included), from the client namespace; needs root, skipped
  with --no-lab. Prefix $VPNDOCTOR_BENCH_PREFIX (default vdbt).
testssl.sh's default run takes about a minute, so it runs only with --testssl (goal: >= 50x faster).
Facts are compared too (versions, suites per version): the same verdicts, or the run says where not.
Exit 0 when measured (ratios are reported, not enforced), 1 when a tool fails.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import xml.etree.ElementTree as ET
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "src"))

from tests.tls.servers import make_audit_pki, start_nginx  # noqa: E402
from vpndoctor.tls import suites as S  # noqa: E402

DELAY_S = 0.025
RUNS = 3
CIPHERS = (
    "ECDHE-RSA-AES128-SHA:ECDHE-RSA-AES128-GCM-SHA256:AES128-SHA:AES256-SHA:NULL-SHA:NULL-SHA256:@SECLEVEL=0"
)


class DelayRelay:
    """127.0.0.1:port -> upstream, every chunk delivered DELAY_S after it arrived, order kept."""

    def __init__(self, upstream_port: int, delay_s: float) -> None:
        self.upstream_port, self.delay_s = upstream_port, delay_s
        self.loop = asyncio.new_event_loop()
        self.port = 0
        ready = threading.Event()

        def run() -> None:
            asyncio.set_event_loop(self.loop)

            async def start() -> None:
                server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
                self.port = server.sockets[0].getsockname()[1]
                ready.set()

            self.loop.run_until_complete(start())
            self.loop.run_forever()

        self.thread = threading.Thread(target=run, daemon=True)
        self.thread.start()
        ready.wait(5)

    def close(self) -> None:
        async def cancel_all() -> None:
            tasks = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

        asyncio.run_coroutine_threadsafe(cancel_all(), self.loop).result(5)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5)

    async def _pipe(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        queue: asyncio.Queue[tuple[float, bytes]] = asyncio.Queue()

        async def deliver() -> None:
            while True:
                due, data = await queue.get()
                await asyncio.sleep(max(0.0, due - time.monotonic()))
                if not data:
                    writer.close()
                    return
                writer.write(data)
                await writer.drain()

        task = asyncio.create_task(deliver())
        try:
            while True:
                data = await reader.read(65536)
                await queue.put((time.monotonic() + self.delay_s, data))
                if not data:
                    break
            await task
        except (ConnectionError, OSError, asyncio.CancelledError):
            task.cancel()
            writer.transport.abort()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.upstream_port)
        except OSError:
            writer.transport.abort()
            return
        try:
            await asyncio.gather(
                self._pipe(reader, up_writer), self._pipe(up_reader, writer), return_exceptions=True
            )
        except asyncio.CancelledError:
            pass  # the bench is over; a cancelled handler must not be logged as a failure
        finally:
            writer.transport.abort()
            up_writer.transport.abort()


def timed(argv: list[str], timeout_s: float = 300) -> tuple[float, subprocess.CompletedProcess[str]]:
    t0 = time.monotonic()
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=timeout_s)
    return time.monotonic() - t0, proc


def ours(port: int, ca: Path) -> tuple[float, dict[str, object]]:
    wall, proc = timed(
        [
            sys.executable,
            "-m",
            "vpndoctor",
            "tls",
            f"127.0.0.1:{port}",
            "--sni",
            "da.test",
            "--ca",
            str(ca),
            "--json",
            "--timeout-s",
            "30",
        ]
    )
    if proc.returncode not in (0, 1):
        raise RuntimeError(f"vpndoctor tls exited {proc.returncode}: {proc.stderr.strip()[-300:]}")
    return wall, json.loads(proc.stdout)


def sslscan(port: int) -> tuple[float, dict[str, set[str]], dict[str, bool]]:
    wall, proc = timed(
        ["sslscan", "--show-client-cas", "--no-colour", "--sni-name=da.test", "--xml=-", f"127.0.0.1:{port}"]
    )
    if proc.returncode != 0:
        raise RuntimeError(f"sslscan exited {proc.returncode}")
    suites, versions = parse_sslscan(proc.stdout)
    return wall, suites, versions


def parse_sslscan(stdout: str) -> tuple[dict[str, set[str]], dict[str, bool]]:
    doc = ET.fromstring(stdout[stdout.index("<?xml") :])
    suites: dict[str, set[str]] = {}
    for c in doc.iter("cipher"):
        suites.setdefault(c.get("sslversion", ""), set()).add(S.name_of(int(c.get("id", "0"), 16)))
    names = {
        ("ssl", "3"): "SSLv3",
        ("tls", "1.0"): "TLSv1.0",
        ("tls", "1.1"): "TLSv1.1",
        ("tls", "1.2"): "TLSv1.2",
        ("tls", "1.3"): "TLSv1.3",
    }
    versions = {
        names[(p.get("type", ""), p.get("version", ""))]: p.get("enabled") == "1"
        for p in doc.iter("protocol")
        if (p.get("type"), p.get("version")) in names
    }
    return suites, versions


def compare(
    report: dict[str, object], scan_suites: dict[str, set[str]], scan_versions: dict[str, bool]
) -> str:
    versions = report["versions"]
    suites = report["suites"]
    assert isinstance(versions, dict) and isinstance(suites, dict)
    diffs = [
        f"{v}: ours {versions[v]} sslscan {scan_versions.get(v)}"
        for v in versions
        if versions[v] != scan_versions.get(v, False)
    ]
    for v, names in suites.items():
        if set(names) != scan_suites.get(v, set()):
            diffs.append(f"{v} suites differ: ours {len(names)}, sslscan {len(scan_suites.get(v, set()))}")
    return "same versions and suites" if not diffs else "; ".join(diffs)


LAB_PREFIX = os.environ.get("VPNDOCTOR_BENCH_PREFIX", "vdbt")
LAB_SCENARIO = "iphttps-adc-wan-slow"  # the nginx ADC recipe behind the lab's userspace netem, 50 ms RTT


def lab_rows(runs: int) -> list[tuple[str, float, float, int, str]]:
    """The same comparison in the lab: client namespace -> 50 ms WAN (real per-packet delay, TCP handshake
    included) -> edge -> the nginx ADC. Needs root; the lab is torn down afterwards."""
    from vpndoctor.errors import VpndoctorError
    from vpndoctor.lab import topology as t
    from vpndoctor.lab.handle import Lab
    from vpndoctor.lab.runner import lab_down, lab_up
    from vpndoctor.lab.scenario import load_scenario

    if os.geteuid() != 0:
        print("bench tls: lab path skipped (needs root)")
        return []
    lab_down(LAB_PREFIX)
    try:
        lab_up(load_scenario(LAB_SCENARIO), LAB_PREFIX)
    except VpndoctorError as exc:
        print(f"bench tls: lab path skipped: {exc}")
        return []
    try:
        lab = Lab(LAB_PREFIX)
        target = f"{t.DA_VIP4}:{t.DA_PORT}"
        our_t, scan_t, conns, verdict = [], [], 0, ""
        for _ in range(runs):
            t0 = time.monotonic()
            proc = lab.run(
                "client",
                "env",
                f"PYTHONPATH={ROOT / 'src'}",
                sys.executable,
                "-m",
                "vpndoctor",
                "tls",
                target,
                "--sni",
                t.DA_NAME,
                "--ca",
                lab.info.ca_file,
                "--json",
                "--timeout-s",
                "60",
                timeout_s=120,
            )
            our_t.append(time.monotonic() - t0)
            if proc.returncode not in (0, 1):
                raise RuntimeError(f"vpndoctor tls exited {proc.returncode}: {proc.stderr.strip()[-300:]}")
            report = json.loads(proc.stdout)
            conns = int(report["jobs"]["connections"])
            t0 = time.monotonic()
            scan = lab.run(
                "client",
                "sslscan",
                "--show-client-cas",
                "--no-colour",
                f"--sni-name={t.DA_NAME}",
                "--xml=-",
                target,
                timeout_s=300,
            )
            scan_t.append(time.monotonic() - t0)
            suites, versions = parse_sslscan(scan.stdout)
            verdict = compare(report, suites, versions)
        return [(f"lab {LAB_SCENARIO}", statistics.median(our_t), statistics.median(scan_t), conns, verdict)]
    finally:
        lab_down(LAB_PREFIX)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--testssl", action="store_true", help="also time testssl.sh's default run (~60 s)")
    parser.add_argument("--runs", type=int, default=RUNS)
    parser.add_argument("--no-lab", action="store_true", help="skip the lab path (50 ms WAN, real netem)")
    args = parser.parse_args()
    if (
        shutil.which("sslscan") is None
        or shutil.which("nginx") is None
        and not Path("/usr/sbin/nginx").exists()
    ):
        print("bench tls: nothing measured: needs sslscan and nginx")
        return 0
    with tempfile.TemporaryDirectory(prefix="vd-bench-tls-") as tmp:
        # An installed tool runs from compiled bytecode; this environment sets PYTHONDONTWRITEBYTECODE, which
        # would make every run recompile the package (~0.4 s). Keep bytecode in a private cache instead and
        # warm it up once before measuring.
        os.environ.pop("PYTHONDONTWRITEBYTECODE", None)
        os.environ["PYTHONPYCACHEPREFIX"] = str(Path(tmp) / "pycache")
        pki = make_audit_pki(Path(tmp) / "pki")
        nginx = start_nginx(
            Path(tmp) / "nginx",
            pki,
            protocols="TLSv1 TLSv1.1 TLSv1.2 TLSv1.3",
            ciphers=CIPHERS,
            verify_client="on",
        )
        relay = DelayRelay(nginx.port, DELAY_S)
        try:
            ours(nginx.port, pki.server_ca)  # warm-up: writes the bytecode cache
            rows = []
            for label, port in (
                ("loopback", nginx.port),
                (f"relay {2 * DELAY_S * 1000:.0f} ms RTT", relay.port),
            ):
                our_t, scan_t = [], []
                verdict = ""
                conns = 0
                for _ in range(args.runs):
                    t, report = ours(port, pki.server_ca)
                    our_t.append(t)
                    jobs = report["jobs"]
                    assert isinstance(jobs, dict)
                    conns = int(jobs["connections"])
                    st, suites, versions = sslscan(port)
                    scan_t.append(st)
                    verdict = compare(report, suites, versions)
                rows.append((label, statistics.median(our_t), statistics.median(scan_t), conns, verdict))
            if not args.no_lab:
                rows += lab_rows(args.runs)
            print(f"bench tls: full audit, whole process, median of {args.runs}; nginx ADC-style endpoint")
            head = f"{'path':<20} {'vpndoctor tls':>14} {'sslscan':>9} {'ratio ours/sslscan':>19}"
            print(head + "  connections  facts")
            for label, o, s, conns, verdict in rows:
                print(f"{label:<20} {o:>12.2f} s {s:>7.2f} s {o / s:>18.2f}x  {conns:>11}  {verdict}")
            print("goals: loopback ratio <= 2.0 (Python start-up included); relay and lab ratios < 1.0")
            if args.testssl:
                testssl = shutil.which("testssl") or shutil.which("testssl.sh")
                if testssl is None:
                    print("testssl.sh not installed")
                else:
                    t, proc = timed(
                        [testssl, "--quiet", "--warnings", "off", "--color", "0", f"127.0.0.1:{nginx.port}"],
                        timeout_s=600,
                    )
                    o = rows[0][1]
                    print(
                        f"testssl.sh default run (loopback): {t:.1f} s; vpndoctor tls {o:.2f} s: "
                        f"{t / o:.0f}x faster (goal >= 50x)"
                    )
        finally:
            relay.close()
            nginx.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
