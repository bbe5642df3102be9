"""Benchmark: `vpndoctor capture --json FILE` against `tshark -r FILE -Y isakmp -T fields -e frame.number` on
the same generated capture, in the same run, at 1x and 2x the file size.

The capture is generated reproducibly (seeded; not committed) into $VPNDOCTOR_BENCH_DIR or
/tmp/vpndoctor-bench and reused when present: mostly ESP (plain and in UDP 4500) and TLS on TCP 443 (bulk
data and ACKs, flows opened with SYN, ClientHello, ServerHello), some IKEv2 (IKE_SA_INIT, IKE_AUTH split
into IP fragments, now and then a lost second fragment), DNS and other TCP. Goals (issue 6): >= 1 M
packets/s end to end with the analysis on, >= 15x tshark, peak RSS <= 150 MB and flat as the file doubles.
Wall times include interpreter start-up for both. Peak memory is the proportional set size (PSS) summed
over the process and its children (the worker the analysis forks; PSS counts the pages they share once),
polled from /proc every 100 ms. CPU seconds are the user+sys time of the process tree, less noisy than wall
time on a busy machine. Ours runs three times per size and the median run is reported (tshark, at a minute
or two a run, once); the bytecode is compiled first, as an installed copy has it. Before every timed run the
file is read once, so that each tool reads it from the page cache.

    python bench/capture.py            # quick: 256 MB and 512 MB
    python bench/capture.py --full     # 1 GB and 2 GB
"""

from __future__ import annotations

import argparse
import json
import os
import random
import resource
import shutil
import struct
import subprocess
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

SEED = 20261127
GOAL_PPS = 1_000_000
GOAL_RATIO = 15.0
GOAL_RSS_MB = 150.0
RUNS = 3  # of ours per size (the median is reported); tshark runs once
VPNDOCTOR = [sys.executable, "-m", "vpndoctor", "capture", "--json"]

CLIENTS = [bytes([10, 1, i >> 8, i & 0xFF]) for i in range(1, 65)]
GATEWAY = bytes([198, 51, 100, 10])
WEB = bytes([203, 0, 113, 20])


# -- generating the capture --------------------------------------------------------------------------------


def _ether(ip: bytes) -> bytes:
    return b"\x02\x00\x00\x00\x00\x01\x02\x00\x00\x00\x00\x02\x08\x00" + ip


def _ipv4(src: bytes, dst: bytes, proto: int, payload: bytes, ident: int = 0, frag: int = 0) -> bytes:
    head = struct.pack("!BBHHHBBH", 0x45, 0, 20 + len(payload), ident & 0xFFFF, frag, 64, proto, 0)
    return head + src + dst + payload


def _udp(sport: int, dport: int, payload: bytes) -> bytes:
    return struct.pack("!HHHH", sport, dport, 8 + len(payload), 0) + payload


def _tcp(sport: int, dport: int, seq: int, ack: int, flags: int, payload: bytes = b"") -> bytes:
    return (
        struct.pack("!HHIIBBHHH", sport, dport, seq & 0xFFFFFFFF, ack & 0xFFFFFFFF, 0x50, flags, 502, 0, 0)
        + payload
    )


def _ike_messages() -> tuple[bytes, bytes, bytes, bytes]:
    from vpndoctor.ike.constants import ExchangeType, NotifyType, PayloadType
    from vpndoctor.ike.message import Header, Message
    from vpndoctor.ike.payloads import (
        EncryptedPayload,
        KePayload,
        NoncePayload,
        NotifyPayload,
        Proposal,
        SaPayload,
        Transform,
    )

    sa = SaPayload(
        (Proposal(1, 1, b"", (Transform(1, 12, 256), Transform(2, 5), Transform(3, 12), Transform(4, 14))),)
    )
    spi_i, spi_r = bytes.fromhex("a1a2a3a4a5a6a7a8"), bytes.fromhex("b1b2b3b4b5b6b7b8")
    frag = NotifyPayload(NotifyType.IKEV2_FRAGMENTATION_SUPPORTED)

    def msg(exchange: int, mid: int, flags: int, payloads: tuple, spi_r_: bytes = spi_r) -> bytes:  # type: ignore[type-arg]
        return Message(
            Header(spi_i=spi_i, spi_r=spi_r_, exchange=exchange, flags=flags, message_id=mid), payloads
        ).encode()

    init_req = msg(
        ExchangeType.IKE_SA_INIT,
        0,
        0x08,
        (sa, KePayload(14, bytes(256)), NoncePayload(bytes(32)), frag),
        bytes(8),
    )
    init_resp = msg(
        ExchangeType.IKE_SA_INIT, 0, 0x20, (sa, KePayload(14, bytes(256)), NoncePayload(bytes(32)))
    )
    auth_req = msg(ExchangeType.IKE_AUTH, 1, 0x08, (EncryptedPayload(PayloadType.IDi, bytes(2400)),))
    auth_resp = msg(ExchangeType.IKE_AUTH, 1, 0x20, (EncryptedPayload(PayloadType.IDr, bytes(300)),))
    return init_req, init_resp, auth_req, auth_resp


class Generator:
    """Writes records until the file holds `size` bytes; the same seed gives the same bytes, so the 2x file
    starts with the 1x file's packets."""

    def __init__(self, seed: int) -> None:
        self.rng = random.Random(seed)
        self.pool = self.rng.randbytes(4096)
        self.usec = 1_790_000_000 * 1_000_000
        self.ident = 0
        self.flows: list[list[int]] = []  # [client index, port, client seq, server seq]
        self.next_port = 20000
        self.ike = _ike_messages()
        self.out: list[bytes] = []

    def rec(self, frame: bytes) -> None:
        self.usec += self.rng.randrange(1, 40)
        sec, usec = divmod(self.usec, 1_000_000)
        self.out.append(struct.pack("<IIII", sec, usec, len(frame), len(frame)) + frame)

    def body(self, n: int) -> bytes:
        at = self.rng.randrange(0, 4096 - n) if n < 4096 else 0
        return self.pool[at : at + n]

    def esp(self) -> None:
        i = self.rng.randrange(16)
        spi = 0xC0000000 + i
        size = self.rng.choice((1380, 1380, 1380, 96, 64))
        c = CLIENTS[i]
        src, dst = (c, GATEWAY) if i % 2 else (GATEWAY, c)
        payload = struct.pack("!II", spi, self.usec & 0xFFFFFFFF) + self.body(size)
        if i < 12:
            self.rec(_ether(_ipv4(src, dst, 50, payload)))
        else:
            self.rec(_ether(_ipv4(src, dst, 17, _udp(4500, 4500, payload))))

    def tcp(self) -> None:
        rng = self.rng
        if len(self.flows) < 40 or rng.random() < 0.002:
            self.open_flow()
            return
        flow = rng.choice(self.flows)
        ci, port = flow[0], flow[1]
        c = CLIENTS[ci]
        if rng.random() < 0.65:
            data = b"\x17\x03\x03" + self.body(1397)
            self.rec(_ether(_ipv4(WEB, c, 6, _tcp(443, port, flow[3], flow[2], 0x10, data))))
            flow[3] += len(data)
        else:
            self.rec(_ether(_ipv4(c, WEB, 6, _tcp(port, 443, flow[2], flow[3], 0x10))))
        if rng.random() < 0.0005:
            self.rec(_ether(_ipv4(c, WEB, 6, _tcp(port, 443, flow[2], flow[3], 0x11))))
            self.flows.remove(flow)

    def open_flow(self) -> None:
        from vpndoctor.tls.hello import Version, build_client_hello

        ci = self.rng.randrange(len(CLIENTS))
        c = CLIENTS[ci]
        port = self.next_port = 20000 + (self.next_port - 19999) % 40000
        cs, ss = self.rng.randrange(1 << 32), self.rng.randrange(1 << 32)
        self.rec(_ether(_ipv4(c, WEB, 6, _tcp(port, 443, cs, 0, 0x02))))
        self.rec(_ether(_ipv4(WEB, c, 6, _tcp(443, port, ss, cs + 1, 0x12))))
        hello = build_client_hello(Version.TLS1_2, [0xC02F, 0xC030], "sstp.example.test", bytes(32))
        self.rec(_ether(_ipv4(c, WEB, 6, _tcp(port, 443, cs + 1, ss + 1, 0x18, hello))))
        server = bytes([22, 3, 3, 0, 42, 2, 0, 0, 38, 3, 3]) + bytes(32) + b"\x00\xc0\x2f\x00"
        self.rec(_ether(_ipv4(WEB, c, 6, _tcp(443, port, ss + 1, cs + 1 + len(hello), 0x18, server))))
        self.flows.append([ci, port, cs + 1 + len(hello), ss + 1 + len(server)])

    def ike_exchange(self) -> None:
        init_req, init_resp, auth_req, auth_resp = self.ike
        c = CLIENTS[self.rng.randrange(len(CLIENTS))]
        self.rec(_ether(_ipv4(c, GATEWAY, 17, _udp(500, 500, init_req))))
        self.rec(_ether(_ipv4(GATEWAY, c, 17, _udp(500, 500, init_resp))))
        datagram = _udp(4500, 4500, b"\0\0\0\0" + auth_req)
        self.ident += 1
        self.rec(_ether(_ipv4(c, GATEWAY, 17, datagram[:1480], self.ident, 0x2000)))
        if self.rng.random() < 0.8:  # else the second fragment is lost
            self.rec(_ether(_ipv4(c, GATEWAY, 17, datagram[1480:], self.ident, 1480 // 8)))
            self.rec(_ether(_ipv4(GATEWAY, c, 17, _udp(4500, 4500, b"\0\0\0\0" + auth_resp))))

    def other(self) -> None:
        c = CLIENTS[self.rng.randrange(len(CLIENTS))]
        if self.rng.random() < 0.5:
            self.rec(_ether(_ipv4(c, WEB, 17, _udp(53000, 53, self.body(40)))))
        else:
            self.rec(_ether(_ipv4(c, WEB, 6, _tcp(41000, 80, 1, 1, 0x18, self.body(200)))))

    def write(self, path: Path, size: int) -> None:
        tmp = path.with_suffix(".part")
        with open(tmp, "wb") as f:
            f.write(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1))
            written = 24
            step = 0
            rng = self.rng
            while written < size:
                for _ in range(1000):
                    step += 1
                    r = rng.random()
                    if step % 5000 == 0:
                        self.ike_exchange()
                    elif r < 0.50:
                        self.esp()
                    elif r < 0.95:
                        self.tcp()
                    else:
                        self.other()
                data = b"".join(self.out)
                self.out.clear()
                f.write(data)
                written += len(data)
        tmp.rename(path)


def capture_file(size: int) -> Path:
    base = Path(os.environ.get("VPNDOCTOR_BENCH_DIR", "/tmp/vpndoctor-bench"))
    base.mkdir(parents=True, exist_ok=True)
    path = base / f"mixed-{SEED}-{size >> 20}MiB.pcap"
    if not path.exists():
        t0 = time.monotonic()
        Generator(SEED).write(path, size)
        print(
            f"  generated {path} ({path.stat().st_size / 1e6:.0f} MB) in {time.monotonic() - t0:.0f} s",
            flush=True,
        )
    return path


# -- measuring ---------------------------------------------------------------------------------------------


def _tree_rss_kb(pid: int) -> int:
    """Proportional set size of the process and its descendants: a forked worker shares most of its pages
    with its parent, and PSS counts each shared page once in the sum (RSS would count it twice)."""
    total = 0
    todo = [pid]
    while todo:
        p = todo.pop()
        try:
            for line in Path(f"/proc/{p}/smaps_rollup").read_text().splitlines():
                if line.startswith("Pss:"):
                    total += int(line.split()[1])
            for task in Path(f"/proc/{p}/task").iterdir():
                todo += [int(c) for c in (task / "children").read_text().split()]
        except (OSError, ValueError):
            continue
    return total


def warm(path: Path) -> None:
    """Read the file once so that the timed run reads it from the page cache, whichever tool runs first (this
    VM keeps only about 2.5 GB of files cached: the 2 GB file would otherwise come partly from disk)."""
    with open(path, "rb") as f:
        while f.read(16 << 20):
            pass


def measure(cmd: list[str], path: Path) -> tuple[float, float, float, bytes]:
    """Wall seconds, CPU seconds, peak PSS of the process tree in MB, and stdout, of `cmd` reading `path`
    (warmed first)."""
    warm(path)
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.monotonic()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    peak = 0
    done = threading.Event()

    def poll() -> None:
        nonlocal peak
        while not done.is_set():
            peak = max(peak, _tree_rss_kb(proc.pid))
            time.sleep(0.1)

    watcher = threading.Thread(target=poll, daemon=True)
    watcher.start()
    out, err = proc.communicate(timeout=1800)
    wall = time.monotonic() - start
    done.set()
    watcher.join()
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime
    if proc.returncode != 0:
        raise RuntimeError(f"{cmd[0]} failed ({proc.returncode}): {err.decode(errors='replace')[-300:]}")
    return wall, cpu, peak / 1024, out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--full", action="store_true", help="1 GB and 2 GB (default: 256 MB and 512 MB)")
    args = parser.parse_args()
    tshark = shutil.which("tshark")
    if tshark is None:
        print("bench capture: nothing measured: tshark is not installed")
        return 0
    base = (1 << 30) if args.full else (256 << 20)
    # What an installed copy runs: its bytecode compiled (pip does that for a regular install; `make install`
    # for this editable one) and the C record walk built.
    compile_all = [sys.executable, "-m", "compileall", "-q", str(ROOT / "src")]
    subprocess.run(compile_all, check=True, capture_output=True)
    from vpndoctor.capture import fastpath

    walk = "C" if fastpath.native is not None else "Python (the C walk is not built: run `make install`)"
    print(
        f"bench capture: vpndoctor capture --json vs tshark -Y isakmp, {os.cpu_count()} CPUs, record walk in "
        f"{walk}",
        flush=True,
    )
    rows = []
    spreads: list[str] = []
    for factor in (1, 2):
        path = capture_file(base * factor)
        runs = sorted((measure([*VPNDOCTOR, str(path)], path) for _ in range(RUNS)), key=lambda run: run[0])
        ours = runs[len(runs) // 2]  # the median run by wall time (with the highest peak memory of all)
        ours = (ours[0], ours[1], max(run[2] for run in runs), ours[3])
        spreads.append(f"{runs[0][0]:.2f}-{runs[-1][0]:.2f} s")
        report = json.loads(ours[3])
        tshark_cmd = [tshark, "-r", str(path), "-Y", "isakmp", "-T", "fields", "-e", "frame.number"]
        theirs = measure(tshark_cmd, path)
        rows.append((path, report, ours, theirs))
    print(
        f"{'file':>7} {'packets':>9} | {'ours s':>6} {'CPU s':>6} {'pkt/s':>10} {'pkt/CPU-s':>10} "
        f"{'PSS MB':>6} | "
        f"{'tshark s':>8} {'CPU s':>6} {'pkt/s':>8} {'PSS MB':>6} | {'ratio':>6} {'CPU ratio':>9}"
    )
    for path, report, (o_s, o_cpu, o_mb, _), (t_s, t_cpu, t_mb, _) in rows:
        n = report["packets"]
        print(
            f"{path.stat().st_size / 1e6:>5.0f}MB {n:>9} | {o_s:>6.2f} {o_cpu:>6.2f} {n / o_s:>10,.0f} "
            f"{n / o_cpu:>10,.0f} {o_mb:>6.1f} | {t_s:>8.2f} {t_cpu:>6.2f} {n / t_s:>8,.0f} {t_mb:>6.1f} | "
            f"{t_s / o_s:>5.1f}x {t_cpu / o_cpu:>8.1f}x"
        )
    (_, r1, o1, t1), (_, r2, o2, t2) = rows
    n1, n2 = r1["packets"], r2["packets"]
    print(
        f"IKE messages: ours {r1['ike_messages']} (1x), {r2['ike_messages']} (2x); "
        f"tshark isakmp frames {len(t1[3].splitlines())}, {len(t2[3].splitlines())}"
    )
    print(f"ours: the median of {RUNS} runs; wall times over the runs {spreads[0]} (1x), {spreads[1]} (2x)")
    print(f"memory as the file doubles: {o2[2] / o1[2]:.2f}x")
    goals = [
        (f">= {GOAL_PPS:,} packets/s (wall, both sizes)", min(n1 / o1[0], n2 / o2[0]) >= GOAL_PPS),
        (f">= {GOAL_RATIO:.0f}x tshark (wall)", min(t1[0] / o1[0], t2[0] / o2[0]) >= GOAL_RATIO),
        (f"peak PSS <= {GOAL_RSS_MB:.0f} MB", max(o1[2], o2[2]) <= GOAL_RSS_MB),
        ("memory flat as the file doubles (<= 1.15x)", o2[2] / o1[2] <= 1.15),
    ]
    if not args.full:
        print("  (the goals are for a capture of 1 GB or more, where start-up no longer dominates: --full)")
    for text, ok in goals:
        print(f"  goal {text}: {'met' if ok else 'MISSED'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
