"""The lab's "wan" hop: a userspace netem that bridges two veth ends with AF_PACKET raw sockets,
delaying every frame by a fixed one-way delay and dropping a configurable share of them.
It is hand-written because the lab kernel has neither sch_netem nor NFQUEUE.
"""

from __future__ import annotations

import argparse
import collections
import contextlib
import os
import random
import selectors
import shutil
import signal
import socket
import struct
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from types import FrameType
from typing import NoReturn

__all__ = [
    "DEFAULT_MAX_QUEUE",
    "DelayLine",
    "InterfaceGone",
    "LineStats",
    "UsageError",
    "main",
    "run_bridge",
]

DEFAULT_MAX_QUEUE = 10_000

# <linux/if_ether.h>, <linux/if_packet.h>; the socket module does not export all of them.
ETH_P_ALL = 0x0003
PACKET_OUTGOING = 4
SOL_PACKET = 263
PACKET_VNET_HDR = 15
PACKET_IGNORE_OUTGOING = 23

# struct virtio_net_hdr: flags, gso_type, hdr_len, gso_size, csum_start, csum_offset.
VNET_HDR_LEN = 10
VIRTIO_NET_HDR_F_DATA_VALID = 0x02

# Big enough for a 64 KiB GSO super-frame plus its virtio header (and BIG TCP headroom).
RECV_BUF_SIZE = 256 * 1024
SOCK_BUF_SIZE = 4 * 1024 * 1024
# Frames read from one socket per readiness event before looking at the other side again.
READ_BATCH = 64

EXIT_OK = 0
EXIT_GONE = 1
EXIT_USAGE = 2


# --------------------------------------------------------------------------------------------
# Pure scheduling part (no sockets, no clock): unit-testable with a fake `now`.
# --------------------------------------------------------------------------------------------


@dataclass
class LineStats:
    """Counters for one direction of the wan."""

    accepted: int = 0
    lost: int = 0
    overflow: int = 0
    released: int = 0
    tx_errors: int = 0


@dataclass
class DelayLine:
    """One direction of the wan: a bounded FIFO where every frame waits `delay_s` seconds.

    The delay is constant, so a deque ordered by arrival is also ordered by due time.
    `loss_pct` is the independent drop probability (0..100) applied to each pushed frame.
    """

    delay_s: float
    loss_pct: float = 0.0
    rng: random.Random = field(default_factory=random.Random)
    max_queue: int = DEFAULT_MAX_QUEUE
    stats: LineStats = field(default_factory=LineStats)
    _queue: collections.deque[tuple[float, bytes]] = field(
        default_factory=collections.deque, init=False, repr=False
    )

    def __post_init__(self) -> None:
        if not self.delay_s >= 0.0:  # also rejects NaN
            raise ValueError(f"delay must be >= 0 seconds, got {self.delay_s!r}")
        if not 0.0 <= self.loss_pct <= 100.0:
            raise ValueError(f"loss must be within 0..100 percent, got {self.loss_pct!r}")
        if self.max_queue < 1:
            raise ValueError(f"queue bound must be >= 1, got {self.max_queue!r}")

    def __len__(self) -> int:
        return len(self._queue)

    def push(self, frame: bytes, now: float) -> bool:
        """Enqueue `frame` received at `now`; False if it was lost or the queue is full."""
        if self.loss_pct > 0.0 and self.rng.random() * 100.0 < self.loss_pct:
            self.stats.lost += 1
            return False
        if len(self._queue) >= self.max_queue:
            self.stats.overflow += 1
            return False
        self._queue.append((now + self.delay_s, frame))
        self.stats.accepted += 1
        return True

    def due(self, now: float) -> list[bytes]:
        """Remove and return, in arrival order, every frame whose due time is <= `now`."""
        out: list[bytes] = []
        queue = self._queue
        while queue and queue[0][0] <= now:
            out.append(queue.popleft()[1])
        self.stats.released += len(out)
        return out

    def next_due(self) -> float | None:
        """Due time of the oldest queued frame, or None if the line is empty."""
        return self._queue[0][0] if self._queue else None


# --------------------------------------------------------------------------------------------
# Socket loop.
# --------------------------------------------------------------------------------------------


class UsageError(Exception):
    """A problem the caller must fix (bad interface, missing privileges): exit code 2."""


class InterfaceGone(Exception):
    """One of the bridged interfaces was deleted while running: exit code 1."""


class _Stop(Exception):
    """Raised from the SIGTERM/SIGINT handler to leave the loop."""


@dataclass
class _Port:
    name: str
    sock: socket.socket
    vnet_hdr: bool


def _run_quiet(argv: Sequence[str]) -> bool:
    try:
        res = subprocess.run(list(argv), capture_output=True, timeout=10, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return False
    return res.returncode == 0


def _prepare_interface(name: str) -> None:
    """Bring `name` up in promiscuous mode and try to switch off receive/segmentation offloads."""
    try:
        res = subprocess.run(
            ["ip", "link", "set", "dev", name, "up", "promisc", "on"],
            capture_output=True,
            text=True,
            timeout=10,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise UsageError(f"cannot run 'ip link set {name} up promisc on': {exc}") from exc
    if res.returncode != 0:
        detail = (res.stderr.strip().splitlines() or ["failed"])[-1]
        raise UsageError(f"cannot bring {name} up: {detail}")
    # Best effort only (ethtool is not installed in the lab image): GSO super-frames and partial
    # checksums come from the *sender's* stack in the neighbouring namespace anyway, whatever our
    # ends are set to; the virtio-net header on our sockets is what carries them across intact.
    if shutil.which("ethtool"):
        _run_quiet(["ethtool", "-K", name, "gro", "off", "gso", "off", "tso", "off"])


def _open_port(name: str) -> _Port:
    # Protocol 0 at creation: the socket sees nothing until bind() hooks it to this one interface,
    # so no frame from another interface can slip in between socket() and bind().
    try:
        sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, 0)
    except PermissionError as exc:
        raise UsageError("raw packet sockets need root (CAP_NET_RAW)") from exc
    try:
        vnet_hdr = True
        try:
            # With a virtio-net header the kernel tells us about GSO and partial checksums on
            # receive and honours them on send, so super-frames above the MTU and frames whose
            # checksum the sender left to "hardware" survive the trip unchanged.
            sock.setsockopt(SOL_PACKET, PACKET_VNET_HDR, 1)
        except OSError:
            vnet_hdr = False
            print(
                f"wan: warning: PACKET_VNET_HDR unavailable on {name}: GSO frames and frames with "
                "offloaded checksums (most TCP) will not survive the bridge",
                file=sys.stderr,
            )
        with contextlib.suppress(OSError):  # kernel >= 4.20; we also filter on pkttype below
            sock.setsockopt(SOL_PACKET, PACKET_IGNORE_OUTGOING, 1)
        for opt in (socket.SO_RCVBUF, socket.SO_SNDBUF):
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.SOL_SOCKET, opt, SOCK_BUF_SIZE)
        sock.bind((name, ETH_P_ALL))
        sock.setblocking(False)
    except OSError as exc:
        sock.close()
        raise UsageError(f"cannot bind a packet socket to {name}: {exc.strerror or exc}") from exc
    return _Port(name=name, sock=sock, vnet_hdr=vnet_hdr)


def _strip_data_valid(frame: bytes) -> bytes:
    """Clear VIRTIO_NET_HDR_F_DATA_VALID: it is a receive-side hint that the send path may reject."""
    if len(frame) < VNET_HDR_LEN:
        return frame
    flags = frame[0]
    if flags & VIRTIO_NET_HDR_F_DATA_VALID:
        return struct.pack("B", flags & ~VIRTIO_NET_HDR_F_DATA_VALID & 0xFF) + frame[1:]
    return frame


def _write_ready_file(path: str) -> None:
    tmp = f"{path}.tmp.{os.getpid()}"
    with open(tmp, "w", encoding="ascii") as fh:
        fh.write(f"{os.getpid()}\n")
    os.replace(tmp, path)


def _remove_ready_file(path: str) -> None:
    """Remove the ready file on exit, unless someone else has replaced it meanwhile."""
    try:
        with open(path, encoding="ascii") as fh:
            if fh.read().strip() != str(os.getpid()):
                return
        os.unlink(path)
    except OSError:
        pass


def _on_signal(signum: int, frame: FrameType | None) -> NoReturn:
    raise _Stop


def run_bridge(
    if_a: str,
    if_b: str,
    delay_ms: float = 0.0,
    loss_pct: float = 0.0,
    seed: int | None = None,
    ready_file: str | None = None,
    max_queue: int = DEFAULT_MAX_QUEUE,
) -> dict[str, LineStats]:
    """Forward frames between `if_a` and `if_b` until SIGTERM/SIGINT; return per-direction stats.

    Raises UsageError for problems the caller must fix and InterfaceGone if an interface is deleted
    while running. Must run in the namespace holding both interfaces, as root.
    """
    if if_a == if_b:
        raise UsageError("--if-a and --if-b must be different interfaces")
    for name in (if_a, if_b):
        try:
            socket.if_nametoindex(name)
        except OSError as exc:
            raise UsageError(f"no such interface: {name}") from exc
    if os.geteuid() != 0:
        raise UsageError("must run as root (raw packet sockets, promiscuous mode)")

    master = random.Random(seed)
    delay_s = delay_ms / 1000.0
    a_to_b = DelayLine(delay_s, loss_pct, random.Random(master.getrandbits(64)), max_queue)
    b_to_a = DelayLine(delay_s, loss_pct, random.Random(master.getrandbits(64)), max_queue)

    for name in (if_a, if_b):
        _prepare_interface(name)

    ports: list[_Port] = []
    sel = selectors.DefaultSelector()
    old_handlers = {sig: signal.signal(sig, _on_signal) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        port_a = _open_port(if_a)
        ports.append(port_a)
        port_b = _open_port(if_b)
        ports.append(port_b)
        # input socket's fd -> (input port, its delay line); each line feeds the other port
        routes = {port_a.sock.fileno(): (port_a, a_to_b), port_b.sock.fileno(): (port_b, b_to_a)}
        lines = ((a_to_b, port_b), (b_to_a, port_a))
        for port in (port_a, port_b):
            sel.register(port.sock, selectors.EVENT_READ)
        if ready_file:
            _write_ready_file(ready_file)
        with contextlib.suppress(_Stop):
            _loop(sel, routes, lines)
    finally:
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        sel.close()
        for port in ports:
            port.sock.close()
        if ready_file:
            _remove_ready_file(ready_file)
        for sig, handler in old_handlers.items():
            signal.signal(sig, handler)
    return {f"{if_a}>{if_b}": a_to_b.stats, f"{if_b}>{if_a}": b_to_a.stats}


def _send(port: _Port, frame: bytes, stats: LineStats) -> None:
    if port.vnet_hdr:
        frame = _strip_data_valid(frame)
    # A full send queue, an MTU mismatch or a link going down all mean the frame is lost,
    # exactly as on a real link; the loop carries on.
    try:
        port.sock.send(frame)
    except OSError:
        stats.tx_errors += 1


def _loop(
    sel: selectors.BaseSelector,
    routes: dict[int, tuple[_Port, DelayLine]],
    lines: tuple[tuple[DelayLine, _Port], ...],
) -> NoReturn:
    buf = bytearray(RECV_BUF_SIZE)
    view = memoryview(buf)
    while True:
        now = time.monotonic()
        dues = [d for d in (line.next_due() for line, _ in lines) if d is not None]
        timeout = max(0.0, min(dues) - now) if dues else None
        for key, _events in sel.select(timeout):
            port, line = routes[key.fd]
            sock = port.sock
            now = time.monotonic()
            for _ in range(READ_BATCH):
                try:
                    nbytes, addr = sock.recvfrom_into(buf, 0, socket.MSG_TRUNC)
                except (BlockingIOError, InterruptedError):
                    break
                except OSError as exc:
                    # ENETDOWN when the link goes down (the kernel re-arms the socket when it comes
                    # back up); if the interface vanished altogether there is nothing left to bridge.
                    try:
                        socket.if_nametoindex(port.name)
                    except OSError:
                        raise InterfaceGone(f"interface {port.name} disappeared ({exc})") from None
                    break
                if addr[2] == PACKET_OUTGOING or nbytes > RECV_BUF_SIZE:
                    continue  # our own transmissions echoed back, or a truncated frame
                line.push(bytes(view[:nbytes]), now)
        now = time.monotonic()
        for line, out in lines:
            for frame in line.due(now):
                _send(out, frame, line.stats)


# --------------------------------------------------------------------------------------------
# Command line.
# --------------------------------------------------------------------------------------------


class _OneLineParser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message}\n")


def _non_negative_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not value >= 0.0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"must be a finite number >= 0, got {text!r}")
    return value


def _percent(text: str) -> float:
    value = _non_negative_float(text)
    if value > 100.0:
        raise argparse.ArgumentTypeError(f"must be within 0..100, got {text!r}")
    return value


def _build_parser() -> argparse.ArgumentParser:
    p = _OneLineParser(
        prog="python -m vpndoctor.lab.wan",
        description="Bridge two interfaces with a fixed one-way delay and random loss (userspace netem).",
    )
    p.add_argument("--if-a", required=True, metavar="NAME", help="first interface (no IP address)")
    p.add_argument("--if-b", required=True, metavar="NAME", help="second interface (no IP address)")
    p.add_argument(
        "--delay-ms",
        type=_non_negative_float,
        default=0.0,
        metavar="F",
        help="one-way delay applied to every frame in each direction (default 0)",
    )
    p.add_argument(
        "--loss-pct",
        type=_percent,
        default=0.0,
        metavar="F",
        help="independent drop probability per frame per direction, 0..100 (default 0)",
    )
    p.add_argument("--seed", type=int, default=None, metavar="N", help="seed for reproducible loss")
    p.add_argument(
        "--max-queue",
        type=int,
        default=DEFAULT_MAX_QUEUE,
        metavar="N",
        help=f"frames queued per direction before tail drop (default {DEFAULT_MAX_QUEUE})",
    )
    p.add_argument("--ready-file", metavar="PATH", help="write our pid here once forwarding is ready")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    # Catch SIGTERM/SIGINT from the very start, so that even a stop request that arrives while we
    # are still setting up ends with exit code 0 and no traceback.
    old_handlers = {sig: signal.signal(sig, _on_signal) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        return _main(argv)
    except _Stop:
        return EXIT_OK
    finally:
        for sig, handler in old_handlers.items():
            signal.signal(sig, handler)


def _main(argv: Sequence[str] | None) -> int:
    parser = _build_parser()
    args = parser.parse_args(argv)
    if args.max_queue < 1:
        parser.error("argument --max-queue: must be >= 1")
    try:
        stats = run_bridge(
            args.if_a,
            args.if_b,
            delay_ms=args.delay_ms,
            loss_pct=args.loss_pct,
            seed=args.seed,
            ready_file=args.ready_file,
            max_queue=args.max_queue,
        )
    except UsageError as exc:
        print(f"{parser.prog}: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except InterfaceGone as exc:
        print(f"{parser.prog}: {exc}", file=sys.stderr)
        return EXIT_GONE
    summary = ", ".join(
        f"{d}: {s.released - s.tx_errors} forwarded, {s.lost} lost, {s.overflow} overflowed, "
        f"{s.tx_errors} send errors"
        for d, s in stats.items()
    )
    print(f"wan: {summary}", file=sys.stderr)
    return EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
