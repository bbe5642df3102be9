"""The worker of the capture fast path: a forked process that scans the later part of a large mapped capture
while the main process reads the first, and hands back what it counted and the records it left to the exact
path.

Like the fast path it walks the records in place, in C (`_scan.c`'s `Tables.scan_deferring`) or in the Python
twin below, but it cannot ask the main process's tables: it keeps its own, defers the first packet of every
SPI and TCP direction (and whatever the fast path would not settle) and goes on. The main process replays the
deferred records in order (`CaptureReader`), settling with its own tables what it then knows, and merges the
counts (`FastPath.merge`).
"""

from __future__ import annotations

import array
import contextlib
import functools
import mmap
import os
import pickle
import signal
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from vpndoctor.capture.layout import (
    ETHERTYPE_AT,
    IPV6,
    IPV6_HEADERS_AFTER,
    LAYOUTS,
    LE_ETHERTYPE_IPV4,
    LE_ETHERTYPE_IPV6,
    LE_FRAG_MASK,
    LE_PORT_443,
    LE_PORT_500,
    LE_PORT_4500,
    LE_SYN_FIN_RST,
    MAX_PACKET_BYTES,
    MIN_IP_BYTES,
    RECORD,
    RECORD_BY_L2,
    SETTLED_KINDS,
    release_mapped,
)
from vpndoctor.capture.tcp import LOOK_BYTES, FlowKey

if TYPE_CHECKING:
    from vpndoctor.capture._scan import Tables

__all__ = ["Split", "SplitResult", "start"]

# The part of the file this process walks itself when it forks a worker: less than half, because the exact
# path (IKE, TCP handshakes and hellos, fragments) of the whole file runs here too.
_MAIN_SHARE = 0.4
_WORKER_STEP_BYTES = 4 << 20  # the worker gives back the mapped pages it read this often
_WORKER_MAX_KEYS = 100_000  # SPIs and TCP directions a worker counts; packets of others are deferred
_WORKER_MAX_DEFERRED = 500_000  # records left to the exact path before the worker hands back early
_BOUNDARY_SEARCH_BYTES = 1 << 20
_BOUNDARY_CHAIN = 16  # consecutive plausible records that make a guessed record boundary
_BOUNDARY_TS_SPAN_S = 30 * 86400


@dataclass(slots=True)
class SplitResult:
    """What a worker found in its part of the file: the records it left to the exact path (offsets, in
    order) and what it counted itself. A key's first packet is always left to the exact path, so every key
    here is known to the main process's tables by the time the counts are merged (or was refused there by a
    cap, and then its packets are counted as beyond it)."""

    deferred: array.array[int]
    gap_secs: array.array[int]  # per deferred record: no packet settled since the previous one is later
    esp: dict[FlowKey, int] = field(default_factory=dict)
    tcp: dict[FlowKey, list[int]] = field(default_factory=dict)  # [payload bytes seen, packets, bytes]
    kinds: dict[str, int] = field(default_factory=dict)
    packets: int = 0
    stop: int | None = None  # where the worker stopped early (too much left to the exact path)


class Split:
    """A worker process scanning [offset, end of file) of a mapped capture."""

    def __init__(self, pid: int, fd: int, offset: int) -> None:
        self.pid = pid
        self.offset = offset
        self._fd = fd

    def result(self) -> SplitResult | None:
        """The worker's result (None if it failed: the caller then reads on alone)."""
        chunks = []
        try:
            while True:
                chunk = os.read(self._fd, 1 << 20)
                if not chunk:
                    break
                chunks.append(chunk)
        finally:
            os.close(self._fd)
            self._fd = -1
            with contextlib.suppress(ChildProcessError):
                os.waitpid(self.pid, 0)
        try:
            result = pickle.loads(b"".join(chunks))
        except Exception:  # a worker that died half-way wrote a cut pickle: read on alone
            return None
        return result if isinstance(result, SplitResult) else None

    def abandon(self) -> None:
        if self._fd < 0:
            return
        with contextlib.suppress(ProcessLookupError):
            os.kill(self.pid, signal.SIGKILL)
        os.close(self._fd)
        self._fd = -1
        with contextlib.suppress(ChildProcessError):
            os.waitpid(self.pid, 0)


def start(
    buf: mmap.mmap, first: int, link_type: int, snap: int, scale: float, c_tables: type[Tables] | None
) -> Split | None:
    """Fork a worker for the later part of the mapped capture `buf` whose first record is at `first` (None
    when no record boundary is found or the fork fails: the caller then reads on alone). `c_tables` is the C
    walk's `Tables`, or None for the Python loops (as the fast path walks). The caller decides whether a
    worker is worth it."""
    offset = _find_boundary(buf, first, first + int((len(buf) - first) * _MAIN_SHARE), snap)
    if offset is None:
        return None
    rfd, wfd = os.pipe()
    try:
        pid = os.fork()
    except OSError:
        os.close(rfd)
        os.close(wfd)
        return None
    if pid == 0:  # the worker: scan, write the result, leave without running any cleanup
        status = 1
        try:
            os.close(rfd)
            signal.signal(signal.SIGINT, signal.SIG_DFL)
            result = _scan_deferring(buf, offset, link_type, snap, scale, c_tables)
            data = pickle.dumps(result, protocol=pickle.HIGHEST_PROTOCOL)
            view = memoryview(data)
            while view:
                view = view[os.write(wfd, view) :]
            status = 0
        finally:
            os._exit(status)
    os.close(wfd)
    return Split(pid, rfd, offset)


def _plausible_chain(buf: mmap.mmap, at: int, snap: int, sec0: int) -> bool:
    unpack = RECORD.unpack_from
    size = len(buf)
    for _ in range(_BOUNDARY_CHAIN):
        if at == size:
            return True
        if at + 16 > size:
            return False
        sec, frac, caplen, origlen = unpack(buf, at)
        if (
            caplen > snap
            or caplen > origlen
            or frac >= 1_000_000_000
            or abs(sec - sec0) > _BOUNDARY_TS_SPAN_S
        ):
            return False
        at += 16 + caplen
    return True


def _find_boundary(buf: mmap.mmap, first: int, near: int, snap: int) -> int | None:
    """A guess at a record boundary at or after `near`; the main process checks it by landing on it."""
    if first + 16 > len(buf):
        return None
    sec0 = RECORD.unpack_from(buf, first)[0]
    for at in range(near, min(near + _BOUNDARY_SEARCH_BYTES, len(buf) - 16)):
        if _plausible_chain(buf, at, snap, sec0):
            return at
    return None


def _ipv6_worker(
    buf: mmap.mmap,
    at: int,
    length: int,
    esp: dict[FlowKey, int],
    tcp: dict[FlowKey, list[int]],
    kinds: dict[str, int],
    max_keys: int,
    look_bytes: int,
) -> bool:
    """`FastPath._ipv6` for the worker: True when counted here, False to defer (with its tables updated the
    way `_scan_deferring` updates them for IPv4)."""
    if length < 60 or at + IPV6.size > len(buf):
        return False
    vtc, plen_hi, plen_lo, nh, s0, s1, d0, d1, l4, ulen, u28, tcpw = IPV6.unpack_from(buf, at)
    plen = plen_hi * 256 + plen_lo
    if vtc & 0xF0 != 0x60 or plen < 20:
        return False
    if nh == 50 or nh == 17:
        if nh == 17:
            sport, dport = l4 & 0xFFFF, l4 >> 16
            if sport == LE_PORT_500 or dport == LE_PORT_500:
                return False
            if sport != LE_PORT_4500 and dport != LE_PORT_4500:
                kinds["udp_other"] += 1
                return True
            udp_len = (ulen & 0xFF) << 8 | ulen >> 8
            if not u28 or not 16 <= udp_len <= min(plen, length - 40):
                return False
            l4 = u28
        key = (s0 | s1 << 64, d0 | d1 << 64, l4, 6)
        count = esp.get(key)
        if count is None:
            if len(esp) < max_keys:
                esp[key] = 0
            return False
        esp[key] = count + 1
        kinds["esp" if nh == 50 else "esp_in_udp"] += 1
        return True
    if nh == 6:
        if l4 & 0xFFFF != LE_PORT_443 and l4 >> 16 != LE_PORT_443:
            kinds["tcp_other"] += 1
            return True
        key = (s0 | s1 << 64, d0 | d1 << 64, l4, 6)
        d = tcp.get(key)
        doff = (tcpw & 0xF0) >> 2
        payload = plen - doff
        if d is not None and not (tcpw & LE_SYN_FIN_RST or doff < 20 or (payload > 0 and d[0] < look_bytes)):
            d[1] += 1
            if payload > 0:
                d[2] += payload
            kinds["tcp_443"] += 1
            return True
        if d is None and len(tcp) < max_keys:
            d = tcp[key] = [0, 0, 0]
        if d is not None and payload > 0 and doff >= 20:  # what the tracker is fed of it
            d[0] += max(0, min(min(plen, length - 40) - doff, payload))
        return False
    if nh in IPV6_HEADERS_AFTER:
        return False
    kinds["other_ip"] += 1
    return True


def _scan_deferring(
    buf: mmap.mmap, start: int, link_type: int, snap: int, scale: float, c_tables: type[Tables] | None
) -> SplitResult:
    """The worker's loop: like `FastPath.pcap_records`, but a record it cannot settle is noted for the exact
    path and the scan goes on. It keeps its own tables: an SPI or TCP direction it has not seen yet is
    deferred (its first packet), and a TCP direction's payload is deferred until `LOOK_BYTES` of it went by,
    which is as far as the TCP tracker ever reads (so nothing it would read is counted here instead)."""
    deferred = array.array("Q")
    gap_secs = array.array("Q")  # per deferred record: the latest second of the packets settled before it
    hi = 0
    units = round(1 / scale)  # timestamp fractions per second
    stopped_at: int | None = None
    esp: dict[FlowKey, int] = {}
    tcp: dict[FlowKey, list[int]] = {}
    l2 = LAYOUTS[link_type][1]
    read_bytes = LAYOUTS[link_type][0].size
    tables = c_tables(esp, tcp, worker=True) if c_tables is not None else None
    walk = tables.scan_deferring if tables is not None else functools.partial(_walk_deferring, esp, tcp)
    size = len(buf)
    counts = [0] * len(SETTLED_KINDS)
    off = start
    released = start
    while True:
        end = min(size, off + _WORKER_STEP_BYTES)
        off, hi, *step = walk(
            buf, off, end, l2, ETHERTYPE_AT[link_type], snap, units, MAX_PACKET_BYTES, _WORKER_MAX_KEYS,
            LOOK_BYTES, deferred, gap_secs, hi,
        )  # fmt: skip
        counts = [a + b for a, b in zip(counts, step, strict=True)]
        if off >= size - read_bytes:
            # the last few records, too close to the end for the fixed-size read: the exact path's
            while off + 16 <= size:
                deferred.append(off)
                gap_secs.append(hi)
                hi = 0
                caplen = RECORD.unpack_from(buf, off)[2]
                if caplen > MAX_PACKET_BYTES:
                    break
                off += 16 + caplen
            if 0 < size - off < 16:
                deferred.append(off)  # a truncated record header: the exact path warns
                gap_secs.append(hi)
            break
        release_mapped(buf, released, off)
        released = off
        if len(deferred) >= _WORKER_MAX_DEFERRED:
            stopped_at = off  # the main process reads on from here itself: memory stays bounded
            break
    if tables is not None:
        tables.flush()  # (its per-kind counts are the steps', summed above)
    kinds = dict(zip(SETTLED_KINDS, counts, strict=True))
    return SplitResult(deferred, gap_secs, esp, tcp, kinds, sum(counts), stopped_at)


def _walk_deferring(
    esp: dict[FlowKey, int],
    tcp: dict[FlowKey, list[int]],
    buf: mmap.mmap,
    off: int,
    end: int,
    l2: int,
    ethertype_at: int,
    snap: int,
    units: int,
    max_packet: int,
    max_keys: int,
    look_bytes: int,
    deferred: array.array[int],
    gap_secs: array.array[int],
    hi: int,
) -> tuple[int, ...]:
    """One step of the worker's loop over the records starting in [off, end), in Python (as `_scan.c`'s
    `Tables.scan_deferring`): (where it stopped, the latest second settled since the last deferred record,
    then the counts in `SETTLED_KINDS` order). A record that overruns the file is deferred and ends the
    scan."""
    defer = deferred.append
    gap = gap_secs.append
    esp_get = esp.get
    tcp_get = tcp.get
    record = RECORD_BY_L2[l2]
    unpack = record.unpack_from
    min_caplen = l2 + MIN_IP_BYTES
    size = len(buf)
    stop = min(size - record.size, end - 1)
    n_esp = n_esp_udp = n_tcp443 = n_tcp = n_udp = n_other = 0
    v6 = dict.fromkeys(SETTLED_KINDS, 0)
    while off <= stop:
        (sec, frac, caplen, _orig, ethertype, vihl, tot_hi, tot_lo, frag, proto, src, dst, l4, ulen,
         u28, tcpw) = unpack(buf, off)  # fmt: skip
        nxt = off + 16 + caplen
        if sec > hi:
            hi = sec
        if nxt > size or caplen > max_packet:
            defer(off)  # the exact path raises or warns and stops here
            gap(hi)
            hi = 0
            off = size
            break
        if caplen > snap or frac >= units:  # a fraction out of range: its time is not within `sec`
            defer(off)
            gap(hi)
            hi = 0
        elif (
            caplen < min_caplen
            or ethertype != LE_ETHERTYPE_IPV4
            or vihl != 0x45
            or frag & LE_FRAG_MASK
            or (not tot_hi and tot_lo < 40)
        ):
            if ethertype == LE_ETHERTYPE_IPV6 and _ipv6_worker(
                buf, off + 16 + l2, caplen - l2, esp, tcp, v6, max_keys, look_bytes
            ):
                off = nxt
                continue
            defer(off)
            gap(hi)
            hi = 0
        elif proto == 50:
            key = (src, dst, l4)
            count = esp_get(key)
            if count is None:
                if len(esp) < max_keys:
                    esp[key] = 0
                defer(off)
                gap(hi)
                hi = 0
            else:
                esp[key] = count + 1
                n_esp += 1
        elif proto == 6:
            if l4 & 0xFFFF == LE_PORT_443 or l4 >> 16 == LE_PORT_443:
                key = (src, dst, l4)
                d = tcp_get(key)
                doff = (tcpw & 0xF0) >> 2
                payload = tot_hi * 256 + tot_lo - 20 - doff
                if d is None:
                    if len(tcp) < max_keys:
                        d = tcp[key] = [0, 0, 0]
                    defer(off)
                    gap(hi)
                    hi = 0
                elif tcpw & LE_SYN_FIN_RST or doff < 20 or (payload > 0 and d[0] < look_bytes):
                    defer(off)
                    gap(hi)
                    hi = 0
                else:
                    d[1] += 1
                    if payload > 0:
                        d[2] += payload
                    n_tcp443 += 1
                    off = nxt
                    continue
                if d is not None and payload > 0 and doff >= 20:  # what the tracker is fed of it
                    captured = min(tot_hi * 256 + tot_lo, caplen - l2) - 20 - doff
                    d[0] += max(0, min(captured, payload))
            else:
                n_tcp += 1
        elif proto == 17:
            sport = l4 & 0xFFFF
            dport = l4 >> 16
            if sport == LE_PORT_500 or dport == LE_PORT_500:
                defer(off)
                gap(hi)
                hi = 0
            elif sport == LE_PORT_4500 or dport == LE_PORT_4500:
                udp_len = (ulen & 0xFF) << 8 | ulen >> 8
                room = tot_hi * 256 + tot_lo
                if room > caplen - l2:
                    room = caplen - l2
                if not u28 or not 16 <= udp_len <= room - 20:
                    defer(off)
                    gap(hi)
                    hi = 0
                else:
                    key = (src, dst, u28)
                    count = esp_get(key)
                    if count is None:
                        if len(esp) < max_keys:
                            esp[key] = 0
                        defer(off)
                        gap(hi)
                        hi = 0
                    else:
                        esp[key] = count + 1
                        n_esp_udp += 1
            else:
                n_udp += 1
        else:
            n_other += 1
        off = nxt
    counts = (n_esp, n_esp_udp, n_tcp443, n_tcp, n_udp, n_other)
    return (off, hi, *(n + v6[kind] for n, kind in zip(counts, SETTLED_KINDS, strict=True)))
