"""The capture fast path: walks little-endian pcap records straight in the reader's buffer and settles the
packets that need no object at all (ESP counted per SPI, TCP 443 segments of flows whose hellos were read,
other IPv4 traffic counted by kind) with one precompiled struct read each. A large mapped file is split in
two: a forked worker scans the second half the same way while this process reads the first.

Hand-written for speed: building a `Frame` and a `Packet` per packet caps the reader near 250 k packets/s,
while a capture of a busy gateway is mostly ESP and TLS bulk data. Anything the fast path is not sure of
(VLAN tags, IPv6, IP options, fragments, IKE ports, SYN/FIN/RST, a flow or SPI not seen before, short or
snapped headers, a pending fragment's timeout) goes to the exact path as a `Frame`, so the analysis is the
same either way.

The loops run in C (`_scan.c`, built with the package): in Python the walk itself costs about 0.7 us a record.
The Python loops below are the same walk for an installation built without a C compiler, and the tests run
both. They are written out in full, not shared through a helper, because a Python call per packet would
cost as much as the rest of the loop.
"""

from __future__ import annotations

import array
import contextlib
import functools
import mmap
import os
import pickle
import signal
import struct
from collections.abc import Callable
from dataclasses import dataclass, field

from vpndoctor.capture.reader import MAX_PACKET_BYTES, release_mapped
from vpndoctor.capture.tcp import LOOK_BYTES, Direction, FlowKey

try:
    from vpndoctor.capture import _scan as native
except ImportError:  # built without a C compiler: the Python loops below do the same, slower
    native = None  # type: ignore[assignment]

__all__ = ["KINDS", "PARALLEL_MIN_BYTES", "FastPath", "Split", "SplitResult", "native"]

# what the walk settles, in the order the C walk returns its counts
_SETTLED_KINDS = ("esp", "esp_in_udp", "tcp_443", "tcp_other", "udp_other", "other_ip")
KINDS = (
    "esp",
    "esp_in_udp",
    "ike",
    "nat_keepalive",
    "tcp_443",
    "tcp_other",
    "udp_other",
    "other_ip",
    "ip_fragment",
    "non_ip",
)

PARALLEL_MIN_BYTES = 64 << 20  # below this a worker process costs more than it saves
# The part of the file this process walks itself when it forks a worker: less than half, because the exact
# path (IKE, TCP handshakes and hellos, fragments) of the whole file runs here too.
_MAIN_SHARE = 0.4
_WORKER_STEP_BYTES = 4 << 20  # the worker gives back the mapped pages it read this often
_WORKER_MAX_KEYS = 100_000  # SPIs and TCP directions a worker counts; packets of others are deferred
_WORKER_MAX_DEFERRED = 500_000  # records left to the exact path before the worker hands back early
_BOUNDARY_SEARCH_BYTES = 1 << 20
_BOUNDARY_CHAIN = 16  # consecutive plausible records that make a guessed record boundary
_BOUNDARY_TS_SPAN_S = 30 * 86400

# Record header, Ethernet header, IPv4 header without options, then the first 14 bytes of the transport:
# sec, frac, caplen, origlen | ethertype | version+IHL, total length (2 bytes), fragment word, protocol,
# source, destination | 4 bytes at the transport start (ports or SPI), the UDP length, the 4 bytes after a
# UDP header (the SPI of ESP-in-UDP) and the TCP data offset + flags. Fields after the record header are
# read as little-endian ints and compared with byte-swapped constants; the transport read may run into the
# next record for a short packet, which is why caplen is checked first.
_IPV4_FIELDS = "BxBB2xHxB2xIIIH2xIH"
_ETH_IPV4 = struct.Struct("<IIII12xH" + _IPV4_FIELDS)
# Per pcap link type: the same read with the protocol field and IPv4 header where that link layer puts them
# (Ethernet; Linux cooked SLL: protocol at 14, IP at 16; SLL2: protocol at 0, IP at 20), and the link
# header's length.
_LAYOUTS: dict[int, tuple[struct.Struct, int]] = {
    1: (_ETH_IPV4, 14),
    113: (struct.Struct("<IIII14xH" + _IPV4_FIELDS), 16),
    276: (struct.Struct("<IIIIH18x" + _IPV4_FIELDS), 20),
}
_RECORD_BY_L2 = {l2: record for record, l2 in _LAYOUTS.values()}
_ETHERTYPE_AT = {1: 12, 113: 14, 276: 0}  # where the same layouts put the protocol field, for the C walk
_RECORD = struct.Struct("<IIII")
_MIN_IP_BYTES = 20 + 20  # the whole TCP/UDP-plus-SPI/ESP header the fields above need
_MIN_CAPLEN = 14 + _MIN_IP_BYTES
# The same after a pcapng enhanced packet block's fixed fields: type, total length, interface, timestamp
# (high, low), caplen, origlen.
_NG_ETH_IPV4 = struct.Struct("<IIIIIII12xHBxBB2xHxB2xIIIH2xIH")
_NG_READ_BYTES = _NG_ETH_IPV4.size
_NG_MAX_BLOCK = 12 + 256 * 1024 + 65536  # what the exact reader accepts for a packet block
_U32 = struct.Struct("<I")

_LE_ETHERTYPE_IPV4 = 0x0008
_LE_ETHERTYPE_IPV6 = 0xDD86
# IPv6 header, then the same transport fields as for IPv4: version/class/flow, payload length (2 bytes), next
# header, source and destination (two 8-byte halves each, little-endian: as `tcp.flow_key` reads them).
_IPV6 = struct.Struct("<IBBBxQQQQIH2xIH")
_IPV6_HEADERS_AFTER = frozenset({0, 43, 44, 51, 60})  # hop-by-hop, routing, fragment, AH, destination options
_LE_FRAG_MASK = 0xFF3F  # more-fragments bit and fragment offset, byte-swapped
_LE_PORT_443 = 0xBB01
_LE_PORT_500 = 0xF401
_LE_PORT_4500 = 0x9411
_LE_SYN_FIN_RST = 0x0700  # in the little-endian word of TCP bytes 12-13


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


class FastPath:
    """Counters and tables the fast path updates in place; the analysis owns and reads them.

    `esp` maps (source, destination, SPI) keys (little-endian ints, as `tcp.flow_key` builds them) to packet
    counts; only SPIs already in it are counted here, a new one goes through the exact path. `tcp_dirs` is
    the TCP tracker's direction table. `horizon` is set while IP fragments wait for reassembly: a packet later
    than it goes through the exact path (or, for a worker's packets, `on_tick`) so that timeouts happen
    exactly when they would there."""

    def __init__(
        self,
        esp: dict[FlowKey, int],
        tcp_dirs: dict[FlowKey, Direction],
        *,
        on_merge: Callable[[SplitResult], None],
        on_tick: Callable[[float], None],
        parallel: bool = True,
    ) -> None:
        self.esp = esp
        self.tcp_dirs = tcp_dirs
        self.horizon: float | None = None
        self.packets = 0
        self.kinds = dict.fromkeys(KINDS, 0)
        self._on_merge = on_merge
        self._on_tick = on_tick
        self._parallel = parallel
        self._native = native.Tables(esp, tcp_dirs) if native is not None else None

    # -- this process ---------------------------------------------------------------------------------------

    def pcap_records(
        self, buf: bytes | mmap.mmap, pos: int, end: int, link_type: int, snap: int, scale: float
    ) -> int:
        """Settle whole little-endian pcap records that start at `pos` or later and end by `end`; return the
        offset of the first record left to the exact path (or not entirely before `end`)."""
        layout = _LAYOUTS.get(link_type)
        if layout is None:
            return pos
        if self._native is not None:  # (its counts per kind come with flush())
            return self._native.pcap_records(
                buf, pos, end, layout[1], _ETHERTYPE_AT[link_type], snap, scale, self.horizon
            )
        record, l2 = layout
        min_caplen = l2 + _MIN_IP_BYTES
        stop = min(len(buf) - record.size, end - 1)
        off = pos
        unpack = record.unpack_from
        esp = self.esp
        esp_get = esp.get
        dirs_get = self.tcp_dirs.get
        horizon = self.horizon
        n_esp = n_esp_udp = n_tcp443 = n_tcp = n_udp = n_other = 0
        while off <= stop:
            (sec, frac, caplen, _orig, ethertype, vihl, tot_hi, tot_lo, frag, proto, src, dst, l4, ulen, u28,
             tcpw) = unpack(buf, off)  # fmt: skip
            nxt = off + 16 + caplen
            if nxt > end or caplen > snap or (horizon is not None and sec + frac * scale > horizon):
                break
            if (
                caplen < min_caplen
                or ethertype != _LE_ETHERTYPE_IPV4
                or vihl != 0x45
                or frag & _LE_FRAG_MASK
                or (not tot_hi and tot_lo < 40)
            ):
                if ethertype == _LE_ETHERTYPE_IPV6 and self._ipv6(buf, off + 16 + l2, caplen - l2):
                    off = nxt
                    continue
                break
            if proto == 50:
                key = (src, dst, l4)
                count = esp_get(key)
                if count is None:
                    break
                esp[key] = count + 1
                n_esp += 1
            elif proto == 6:
                if l4 & 0xFFFF == _LE_PORT_443 or l4 >> 16 == _LE_PORT_443:
                    d = dirs_get((src, dst, l4))
                    if d is None or not d.done or tcpw & _LE_SYN_FIN_RST or tcpw & 0xF0 < 0x50:
                        break
                    d.packets += 1
                    payload = tot_hi * 256 + tot_lo - 20 - ((tcpw & 0xF0) >> 2)
                    if payload > 0:
                        d.bytes += payload
                    n_tcp443 += 1
                else:
                    n_tcp += 1
            elif proto == 17:
                sport = l4 & 0xFFFF
                dport = l4 >> 16
                if sport == _LE_PORT_500 or dport == _LE_PORT_500:
                    break
                if sport == _LE_PORT_4500 or dport == _LE_PORT_4500:
                    udp_len = (ulen & 0xFF) << 8 | ulen >> 8
                    room = tot_hi * 256 + tot_lo  # the IP datagram, as far as it was captured
                    if room > caplen - l2:
                        room = caplen - l2
                    if not u28 or not 16 <= udp_len <= room - 20:
                        break
                    key = (src, dst, u28)
                    count = esp_get(key)
                    if count is None:
                        break
                    esp[key] = count + 1
                    n_esp_udp += 1
                else:
                    n_udp += 1
            else:
                n_other += 1
            off = nxt
        kinds = self.kinds
        kinds["esp"] += n_esp
        kinds["esp_in_udp"] += n_esp_udp
        kinds["tcp_443"] += n_tcp443
        kinds["tcp_other"] += n_tcp
        kinds["udp_other"] += n_udp
        kinds["other_ip"] += n_other
        self.packets += n_esp + n_esp_udp + n_tcp443 + n_tcp + n_udp + n_other
        return off

    def pcap_deferred(
        self, buf: bytes | mmap.mmap, result: SplitResult, index: int, link_type: int, snap: int, scale: float
    ) -> int:
        """Settle the records a worker deferred, from `index` on, each as `pcap_records` would alone; return
        the index of the first one left to the exact path, or before which pending fragments may time out
        (the caller replays the gap's timestamps first)."""
        if self._native is None:
            return index
        return self._native.pcap_deferred(
            buf, result.deferred, result.gap_secs, index, _LAYOUTS[link_type][1], _ETHERTYPE_AT[link_type],
            snap, scale, self.horizon,
        )  # fmt: skip

    def flush(self) -> None:
        """Write back the counts the C walk holds back (it keeps them per key until the end: the analysis
        only ever adds to them before it reads them), and take its counts per kind."""
        if self._native is not None:
            counts = self._native.flush()
            kinds = self.kinds
            for kind, n in zip(_SETTLED_KINDS, counts, strict=True):
                kinds[kind] += n
            self.packets += sum(counts)

    def _ipv6(self, buf: bytes, at: int, length: int) -> bool:
        """An IPv6 packet without extension headers at `at` (`length` bytes captured), settled like the IPv4
        ones above (a call per packet: IPv6 is the lesser part of most VPN captures); False leaves it to the
        exact path."""
        if length < 60 or at + _IPV6.size > len(buf):
            return False
        vtc, plen_hi, plen_lo, nh, s0, s1, d0, d1, l4, ulen, u28, tcpw = _IPV6.unpack_from(buf, at)
        plen = plen_hi * 256 + plen_lo
        if vtc & 0xF0 != 0x60 or plen < 20:
            return False
        kinds = self.kinds
        if nh == 50 or nh == 17:
            if nh == 17:
                sport, dport = l4 & 0xFFFF, l4 >> 16
                if sport == _LE_PORT_500 or dport == _LE_PORT_500:
                    return False
                if sport != _LE_PORT_4500 and dport != _LE_PORT_4500:
                    kinds["udp_other"] += 1
                    self.packets += 1
                    return True
                udp_len = (ulen & 0xFF) << 8 | ulen >> 8
                if not u28 or not 16 <= udp_len <= min(plen, length - 40):
                    return False
                l4 = u28
            key = (s0 | s1 << 64, d0 | d1 << 64, l4, 6)
            count = self.esp.get(key)
            if count is None:
                return False
            self.esp[key] = count + 1
            kinds["esp" if nh == 50 else "esp_in_udp"] += 1
        elif nh == 6:
            if l4 & 0xFFFF != _LE_PORT_443 and l4 >> 16 != _LE_PORT_443:
                kinds["tcp_other"] += 1
                self.packets += 1
                return True
            d = self.tcp_dirs.get((s0 | s1 << 64, d0 | d1 << 64, l4, 6))
            if d is None or not d.done or tcpw & _LE_SYN_FIN_RST or tcpw & 0xF0 < 0x50:
                return False
            d.packets += 1
            payload = plen - ((tcpw & 0xF0) >> 2)
            if payload > 0:
                d.bytes += payload
            kinds["tcp_443"] += 1
        elif nh in _IPV6_HEADERS_AFTER:
            return False  # extension headers: the exact path walks them
        else:
            kinds["other_ip"] += 1
        self.packets += 1
        return True

    def pcapng_blocks(
        self, buf: bytes, pos: int, end: int, ethernet: list[bool], clocks: list[tuple[float, int]]
    ) -> int:
        """The same for the enhanced packet blocks of a little-endian pcapng section: `ethernet[i]` says
        whether interface i is Ethernet, `clocks[i]` is its (seconds per unit, offset). Any other block, and
        any block the exact reader would object to, is left to it."""
        if self._native is not None:
            return self._native.pcapng_blocks(
                buf, pos, end, ethernet, clocks, self.horizon, MAX_PACKET_BYTES, _NG_MAX_BLOCK
            )
        n_ifaces = len(ethernet)
        stop = min(len(buf) - _NG_READ_BYTES, end - 1)
        off = pos
        unpack = _NG_ETH_IPV4.unpack_from
        trailer = _U32.unpack_from
        esp = self.esp
        esp_get = esp.get
        dirs_get = self.tcp_dirs.get
        horizon = self.horizon
        n_esp = n_esp_udp = n_tcp443 = n_tcp = n_udp = n_other = 0
        while off <= stop:
            (btype, total, iface, ts_hi, ts_lo, caplen, _orig, ethertype, vihl, tot_hi, tot_lo, frag, proto,
             src, dst, l4, ulen, u28, tcpw) = unpack(buf, off)  # fmt: skip
            nxt = off + total
            if (
                btype != 6
                or total & 3
                or not 32 + _MIN_CAPLEN <= 32 + caplen <= total <= _NG_MAX_BLOCK
                or caplen > MAX_PACKET_BYTES
                or nxt > end
                or iface >= n_ifaces
                or not ethernet[iface]
                or trailer(buf, nxt - 4)[0] != total
                or ethertype != _LE_ETHERTYPE_IPV4
                or vihl != 0x45
                or frag & _LE_FRAG_MASK
                or (not tot_hi and tot_lo < 40)
            ):
                break
            if horizon is not None:
                scale, offset = clocks[iface]
                if ((ts_hi << 32) | ts_lo) * scale + offset > horizon:
                    break
            if proto == 50:
                key = (src, dst, l4)
                count = esp_get(key)
                if count is None:
                    break
                esp[key] = count + 1
                n_esp += 1
            elif proto == 6:
                if l4 & 0xFFFF == _LE_PORT_443 or l4 >> 16 == _LE_PORT_443:
                    d = dirs_get((src, dst, l4))
                    if d is None or not d.done or tcpw & _LE_SYN_FIN_RST or tcpw & 0xF0 < 0x50:
                        break
                    d.packets += 1
                    payload = tot_hi * 256 + tot_lo - 20 - ((tcpw & 0xF0) >> 2)
                    if payload > 0:
                        d.bytes += payload
                    n_tcp443 += 1
                else:
                    n_tcp += 1
            elif proto == 17:
                sport = l4 & 0xFFFF
                dport = l4 >> 16
                if sport == _LE_PORT_500 or dport == _LE_PORT_500:
                    break
                if sport == _LE_PORT_4500 or dport == _LE_PORT_4500:
                    udp_len = (ulen & 0xFF) << 8 | ulen >> 8
                    room = tot_hi * 256 + tot_lo  # the IP datagram, as far as it was captured
                    if room > caplen - 14:
                        room = caplen - 14
                    if not u28 or not 16 <= udp_len <= room - 20:
                        break
                    key = (src, dst, u28)
                    count = esp_get(key)
                    if count is None:
                        break
                    esp[key] = count + 1
                    n_esp_udp += 1
                else:
                    n_udp += 1
            else:
                n_other += 1
            off = nxt
        kinds = self.kinds
        kinds["esp"] += n_esp
        kinds["esp_in_udp"] += n_esp_udp
        kinds["tcp_443"] += n_tcp443
        kinds["tcp_other"] += n_tcp
        kinds["udp_other"] += n_udp
        kinds["other_ip"] += n_other
        self.packets += n_esp + n_esp_udp + n_tcp443 + n_tcp + n_udp + n_other
        return off

    # -- a worker for the second half -----------------------------------------------------------------------

    def start_split(
        self, buf: mmap.mmap, first: int, link_type: int, snap: int, scale: float
    ) -> Split | None:
        """Fork a worker for the second half of a large mapped file (None when not worth it or not
        possible: small file, one CPU, a link type the fast path does not read, no record boundary found)."""
        if (
            not self._parallel
            or link_type not in _LAYOUTS
            or len(buf) < PARALLEL_MIN_BYTES
            or _usable_cpus() < 2
            or not hasattr(os, "fork")
        ):
            return None
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
                result = _scan_deferring(buf, offset, link_type, snap, scale)
                data = pickle.dumps(result, protocol=pickle.HIGHEST_PROTOCOL)
                view = memoryview(data)
                while view:
                    view = view[os.write(wfd, view) :]
                status = 0
            finally:
                os._exit(status)
        os.close(wfd)
        return Split(pid, rfd, offset)

    def replay_gap(self, buf: bytes | mmap.mmap, start: int, end: int, scale: float) -> None:
        """While fragments wait: the timestamps of the records a worker settled in [start, end)."""
        unpack = _RECORD.unpack_from
        off = start
        while off + 16 <= end and self.horizon is not None:
            sec, frac, caplen, _orig = unpack(buf, off)
            ts = sec + frac * scale
            if ts > self.horizon:
                self._on_tick(ts)
            off += 16 + caplen

    def merge(self, result: SplitResult) -> None:
        self.packets += result.packets
        for kind, n in result.kinds.items():
            self.kinds[kind] += n
        self._on_merge(result)


def _usable_cpus() -> int:
    affinity = getattr(os, "sched_getaffinity", None)
    return len(affinity(0)) if affinity is not None else os.cpu_count() or 1


def _plausible_chain(buf: mmap.mmap, at: int, snap: int, sec0: int) -> bool:
    unpack = _RECORD.unpack_from
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
    sec0 = _RECORD.unpack_from(buf, first)[0]
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
    if length < 60 or at + _IPV6.size > len(buf):
        return False
    vtc, plen_hi, plen_lo, nh, s0, s1, d0, d1, l4, ulen, u28, tcpw = _IPV6.unpack_from(buf, at)
    plen = plen_hi * 256 + plen_lo
    if vtc & 0xF0 != 0x60 or plen < 20:
        return False
    if nh == 50 or nh == 17:
        if nh == 17:
            sport, dport = l4 & 0xFFFF, l4 >> 16
            if sport == _LE_PORT_500 or dport == _LE_PORT_500:
                return False
            if sport != _LE_PORT_4500 and dport != _LE_PORT_4500:
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
        if l4 & 0xFFFF != _LE_PORT_443 and l4 >> 16 != _LE_PORT_443:
            kinds["tcp_other"] += 1
            return True
        key = (s0 | s1 << 64, d0 | d1 << 64, l4, 6)
        d = tcp.get(key)
        doff = (tcpw & 0xF0) >> 2
        payload = plen - doff
        if d is not None and not (tcpw & _LE_SYN_FIN_RST or doff < 20 or (payload > 0 and d[0] < look_bytes)):
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
    if nh in _IPV6_HEADERS_AFTER:
        return False
    kinds["other_ip"] += 1
    return True


def _scan_deferring(buf: mmap.mmap, start: int, link_type: int, snap: int, scale: float) -> SplitResult:
    """The worker's loop: like `pcap_records`, but a record it cannot settle is noted for the exact path
    and the scan goes on. It keeps its own tables: an SPI or TCP direction it has not seen yet is deferred
    (its first packet), and a TCP direction's payload is deferred until `LOOK_BYTES` of it went by, which is
    as far as the TCP tracker ever reads (so nothing it would read is counted here instead)."""
    deferred = array.array("Q")
    gap_secs = array.array("Q")  # per deferred record: the latest second of the packets settled before it
    hi = 0
    units = round(1 / scale)  # timestamp fractions per second
    stopped_at: int | None = None
    esp: dict[FlowKey, int] = {}
    tcp: dict[FlowKey, list[int]] = {}
    l2 = _LAYOUTS[link_type][1]
    read_bytes = _LAYOUTS[link_type][0].size
    tables = native.Tables(esp, tcp, worker=True) if native is not None else None
    walk = tables.scan_deferring if tables is not None else functools.partial(_walk_deferring, esp, tcp)
    size = len(buf)
    counts = [0] * len(_SETTLED_KINDS)
    off = start
    released = start
    while True:
        end = min(size, off + _WORKER_STEP_BYTES)
        off, hi, *step = walk(
            buf, off, end, l2, _ETHERTYPE_AT[link_type], snap, units, MAX_PACKET_BYTES, _WORKER_MAX_KEYS,
            LOOK_BYTES, deferred, gap_secs, hi,
        )  # fmt: skip
        counts = [a + b for a, b in zip(counts, step, strict=True)]
        if off >= size - read_bytes:
            # the last few records, too close to the end for the fixed-size read: the exact path's
            while off + 16 <= size:
                deferred.append(off)
                gap_secs.append(hi)
                hi = 0
                caplen = _RECORD.unpack_from(buf, off)[2]
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
    kinds = dict(zip(_SETTLED_KINDS, counts, strict=True))
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
    then the counts in `_SETTLED_KINDS` order). A record that overruns the file is deferred and ends the
    scan."""
    defer = deferred.append
    gap = gap_secs.append
    esp_get = esp.get
    tcp_get = tcp.get
    record = _RECORD_BY_L2[l2]
    unpack = record.unpack_from
    min_caplen = l2 + _MIN_IP_BYTES
    size = len(buf)
    stop = min(size - record.size, end - 1)
    n_esp = n_esp_udp = n_tcp443 = n_tcp = n_udp = n_other = 0
    v6 = dict.fromkeys(_SETTLED_KINDS, 0)
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
            or ethertype != _LE_ETHERTYPE_IPV4
            or vihl != 0x45
            or frag & _LE_FRAG_MASK
            or (not tot_hi and tot_lo < 40)
        ):
            if ethertype == _LE_ETHERTYPE_IPV6 and _ipv6_worker(
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
            if l4 & 0xFFFF == _LE_PORT_443 or l4 >> 16 == _LE_PORT_443:
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
                elif tcpw & _LE_SYN_FIN_RST or doff < 20 or (payload > 0 and d[0] < look_bytes):
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
            if sport == _LE_PORT_500 or dport == _LE_PORT_500:
                defer(off)
                gap(hi)
                hi = 0
            elif sport == _LE_PORT_4500 or dport == _LE_PORT_4500:
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
    return (off, hi, *(n + v6[kind] for n, kind in zip(counts, _SETTLED_KINDS, strict=True)))
