"""The capture fast path: walks little-endian pcap records straight in the reader's buffer and settles the
packets that need no object at all (ESP counted per SPI, TCP 443 segments of flows whose hellos were read,
other IPv4 traffic counted by kind) with one precompiled struct read each. A large mapped file is split in
two: a forked worker (`capture.worker`) scans the second half the same way while this process reads the first.

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

import mmap
import os
import struct
from collections.abc import Callable
from typing import TYPE_CHECKING

from vpndoctor.capture.layout import (
    ETHERTYPE_AT,
    IPV6,
    IPV6_HEADERS_AFTER,
    KINDS,
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
    SETTLED_KINDS,
)
from vpndoctor.capture.tcp import Direction, FlowKey

if TYPE_CHECKING:  # the worker (fork, pickle) is imported only for a file big enough to split
    from vpndoctor.capture.worker import Split, SplitResult

try:
    from vpndoctor.capture import _scan as native
except ImportError:  # built without a C compiler: the Python loops below do the same, slower
    native = None  # type: ignore[assignment]

__all__ = ["PARALLEL_MIN_BYTES", "FastPath", "native"]

PARALLEL_MIN_BYTES = 64 << 20  # below this a worker process costs more than it saves

_MIN_CAPLEN = 14 + MIN_IP_BYTES
# The same read as `layout.LAYOUTS` after a pcapng enhanced packet block's fixed fields: type, total length,
# interface, timestamp (high, low), caplen, origlen.
_NG_ETH_IPV4 = struct.Struct("<IIIIIII12xHBxBB2xHxB2xIIIH2xIH")
_NG_READ_BYTES = _NG_ETH_IPV4.size
_NG_MAX_BLOCK = 12 + 256 * 1024 + 65536  # what the exact reader accepts for a packet block
_U32 = struct.Struct("<I")


class FastPath:
    """Counters and tables the fast path updates in place; the conversation builder (`capture.conversations`)
    owns and reads them.

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
        layout = LAYOUTS.get(link_type)
        if layout is None:
            return pos
        if self._native is not None:  # (its counts per kind come with flush())
            return self._native.pcap_records(
                buf, pos, end, layout[1], ETHERTYPE_AT[link_type], snap, scale, self.horizon
            )
        record, l2 = layout
        min_caplen = l2 + MIN_IP_BYTES
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
                or ethertype != LE_ETHERTYPE_IPV4
                or vihl != 0x45
                or frag & LE_FRAG_MASK
                or (not tot_hi and tot_lo < 40)
            ):
                if ethertype == LE_ETHERTYPE_IPV6 and self._ipv6(buf, off + 16 + l2, caplen - l2):
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
                if l4 & 0xFFFF == LE_PORT_443 or l4 >> 16 == LE_PORT_443:
                    d = dirs_get((src, dst, l4))
                    if d is None or not d.done or tcpw & LE_SYN_FIN_RST or tcpw & 0xF0 < 0x50:
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
                if sport == LE_PORT_500 or dport == LE_PORT_500:
                    break
                if sport == LE_PORT_4500 or dport == LE_PORT_4500:
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
            buf, result.deferred, result.gap_secs, index, LAYOUTS[link_type][1], ETHERTYPE_AT[link_type],
            snap, scale, self.horizon,
        )  # fmt: skip

    def flush(self) -> None:
        """Write back the counts the C walk holds back (it keeps them per key until the end: the analysis
        only ever adds to them before it reads them), and take its counts per kind."""
        if self._native is not None:
            counts = self._native.flush()
            kinds = self.kinds
            for kind, n in zip(SETTLED_KINDS, counts, strict=True):
                kinds[kind] += n
            self.packets += sum(counts)

    def _ipv6(self, buf: bytes, at: int, length: int) -> bool:
        """An IPv6 packet without extension headers at `at` (`length` bytes captured), settled like the IPv4
        ones above (a call per packet: IPv6 is the lesser part of most VPN captures); False leaves it to the
        exact path."""
        if length < 60 or at + IPV6.size > len(buf):
            return False
        vtc, plen_hi, plen_lo, nh, s0, s1, d0, d1, l4, ulen, u28, tcpw = IPV6.unpack_from(buf, at)
        plen = plen_hi * 256 + plen_lo
        if vtc & 0xF0 != 0x60 or plen < 20:
            return False
        kinds = self.kinds
        if nh == 50 or nh == 17:
            if nh == 17:
                sport, dport = l4 & 0xFFFF, l4 >> 16
                if sport == LE_PORT_500 or dport == LE_PORT_500:
                    return False
                if sport != LE_PORT_4500 and dport != LE_PORT_4500:
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
            if l4 & 0xFFFF != LE_PORT_443 and l4 >> 16 != LE_PORT_443:
                kinds["tcp_other"] += 1
                self.packets += 1
                return True
            d = self.tcp_dirs.get((s0 | s1 << 64, d0 | d1 << 64, l4, 6))
            if d is None or not d.done or tcpw & LE_SYN_FIN_RST or tcpw & 0xF0 < 0x50:
                return False
            d.packets += 1
            payload = plen - ((tcpw & 0xF0) >> 2)
            if payload > 0:
                d.bytes += payload
            kinds["tcp_443"] += 1
        elif nh in IPV6_HEADERS_AFTER:
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
                or ethertype != LE_ETHERTYPE_IPV4
                or vihl != 0x45
                or frag & LE_FRAG_MASK
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
                if l4 & 0xFFFF == LE_PORT_443 or l4 >> 16 == LE_PORT_443:
                    d = dirs_get((src, dst, l4))
                    if d is None or not d.done or tcpw & LE_SYN_FIN_RST or tcpw & 0xF0 < 0x50:
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
                if sport == LE_PORT_500 or dport == LE_PORT_500:
                    break
                if sport == LE_PORT_4500 or dport == LE_PORT_4500:
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
        """Fork a worker for the later part of a large mapped file (None when not worth it or not possible:
        small file, one CPU, a link type the fast path does not read, no record boundary found)."""
        if (
            not self._parallel
            or link_type not in LAYOUTS
            or len(buf) < PARALLEL_MIN_BYTES
            or _usable_cpus() < 2
            or not hasattr(os, "fork")
        ):
            return None
        from vpndoctor.capture import worker

        return worker.start(buf, first, link_type, snap, scale, native.Tables if native is not None else None)

    def replay_gap(self, buf: bytes | mmap.mmap, start: int, end: int, scale: float) -> None:
        """While fragments wait: the timestamps of the records a worker settled in [start, end)."""
        unpack = RECORD.unpack_from
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
