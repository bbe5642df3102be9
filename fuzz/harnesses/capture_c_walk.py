"""The capture fast path's record walk in C (capture/_scan.c, `fastpath.native`) against its Python twin
(capture/fastpath.py, and capture/worker.py for the worker's), on any bytes: `pcap_records`, `pcapng_blocks`,
the worker's `scan_deferring` and `pcap_deferred`. The two must stop at the same offset with the same counts
and tables, and the C walk must never read outside its buffer: it gets the bytes in a mapping that ends (and,
on a second run, starts) at an inaccessible page, so an overrun is a SIGSEGV the fuzzer reports. The first
bytes choose the function, the link type, snap length, horizon and the start and end offsets; the flow tables
are built from the packets' own addresses, as in tests/capture/test_scan_c.py."""

from __future__ import annotations

import array
import ctypes
import hashlib
import mmap
import struct
from collections.abc import Callable

from fuzz.harnesses._util import Bytes
from vpndoctor.capture import fastpath, worker
from vpndoctor.capture.tcp import LOOK_BYTES

OURS: tuple[type[BaseException], ...] = ()
MAX_LEN = 16384

native = fastpath.native
_L2 = {1: 14, 113: 16, 276: 20}
_ET_AT = {1: 12, 113: 14, 276: 0}


class Dir:
    """Stands in for `tcp.Direction`: the walk reads `done` and adds to `packets` and `bytes`."""

    __slots__ = ("bytes", "done", "packets")

    def __init__(self, done: bool) -> None:
        self.done = done
        self.packets = 0
        self.bytes = 0


# --- buffers that end (or start) at an inaccessible page ---------------------------------------------------

_PAGE = mmap.PAGESIZE
_libc = ctypes.CDLL(None, use_errno=True)
_libc.mprotect.argtypes = (ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int)


class _Guarded:
    """An anonymous mapping between two inaccessible pages: `place(data)` puts `data` right before the last
    one (`at_end`) or right after the first one."""

    def __init__(self, size: int, at_end: bool) -> None:
        self.inner = -(-size // _PAGE) * _PAGE
        self.at_end = at_end
        self.map = mmap.mmap(-1, self.inner + 2 * _PAGE)
        address = ctypes.addressof(ctypes.c_char.from_buffer(self.map))
        for at in (address, address + _PAGE + self.inner):
            if _libc.mprotect(at, _PAGE, 0) != 0:
                raise OSError(ctypes.get_errno(), "mprotect")
        self.view = memoryview(self.map)

    def place(self, data: bytes) -> memoryview:
        start = _PAGE + self.inner - len(data) if self.at_end else _PAGE
        self.view[start : start + len(data)] = data
        return self.view[start : start + len(data)]


_guarded: list[_Guarded] = []


def guarded_views(data: bytes) -> list[memoryview]:
    """`data` ending at an inaccessible page, and starting right after one."""
    if not _guarded or _guarded[0].inner < len(data):
        size = max(len(data), MAX_LEN, 1 << 16)
        _guarded[:] = [_Guarded(size, at_end=True), _Guarded(size, at_end=False)]
    return [g.place(data) for g in _guarded]


# --- tables ----------------------------------------------------------------------------------------------


def _keep(key: tuple[int, ...], salt: int) -> int:
    return hashlib.blake2b(repr((key, salt)).encode(), digest_size=1).digest()[0]


def candidate_keys(data: bytes, l2: int) -> list[tuple[int, ...]]:
    """Flow keys of whatever looks like an IPv4 or IPv6 header at any offset after a link header."""
    keys: list[tuple[int, ...]] = []
    for at in range(l2, len(data) - 52):
        if data[at] == 0x45:
            ip = data[at : at + 52]
            src, dst, l4, spi = (int.from_bytes(ip[i : i + 4], "little") for i in (12, 16, 20, 28))
            keys += [(src, dst, l4), (src, dst, spi)]
        elif data[at] >> 4 == 6:
            ip = data[at : at + 52]
            src, dst = int.from_bytes(ip[8:24], "little"), int.from_bytes(ip[24:40], "little")
            l4, spi = int.from_bytes(ip[40:44], "little"), int.from_bytes(ip[48:52], "little")
            keys += [(src, dst, l4, 6), (src, dst, spi, 6)]
        if len(keys) > 256:
            break
    return keys


def tables(
    keys: list[tuple[int, ...]], salt: int
) -> tuple[dict[tuple[int, ...], int], dict[tuple[int, ...], Dir]]:
    esp = {k: _keep(k, salt) % 3 for k in keys if _keep(k, salt + 1) < 160}
    dirs = {k: Dir(_keep(k, salt + 2) < 200) for k in keys if _keep(k, salt + 3) < 160}
    return esp, dirs


def _copy(esp: dict, dirs: dict) -> tuple[dict, dict]:  # type: ignore[type-arg]
    return dict(esp), {k: Dir(v.done) for k, v in dirs.items()}


def _snapshot(esp: dict, dirs: dict) -> tuple[dict, dict]:  # type: ignore[type-arg]
    return dict(esp), {k: (d.done, d.packets, d.bytes) for k, d in dirs.items()}


def both_ways(
    data: bytes,
    esp: dict,
    dirs: dict,
    horizon: float | None,
    call: Callable[[fastpath.FastPath, object], object],  # type: ignore[type-arg]
) -> None:
    """`call(fast_path, buffer)` with the C walk on each guarded view and with the Python walk on bytes: the
    same result, counts and tables."""
    results = []
    for buf in [*guarded_views(data), None]:
        e, d = _copy(esp, dirs)
        fp = fastpath.FastPath(e, d, on_merge=lambda r: None, on_tick=lambda t: None)  # type: ignore[arg-type]
        fp.horizon = horizon
        if buf is None:
            fp._native = None
        out = call(fp, data if buf is None else buf)
        fp.flush()
        results.append((out, fp.packets, dict(fp.kinds), _snapshot(e, d)))
    assert results[0] == results[1] == results[2], f"C and Python walks disagree:\n{results}"


# --- the functions ---------------------------------------------------------------------------------------


def _pcap_records(r: Bytes, link_type: int, snap: int, horizon: float | None, data: bytes) -> None:
    pos, end = r.u16() % (len(data) + 8), r.u16()
    end = len(data) if end >= len(data) else end
    esp, dirs = tables(candidate_keys(data, _L2[link_type]), r.u8())
    both_ways(data, esp, dirs, horizon, lambda fp, buf: fp.pcap_records(buf, pos, end, link_type, snap, 1e-6))  # type: ignore[arg-type]


def _pcapng_blocks(r: Bytes, horizon: float | None, data: bytes) -> None:
    pos, end = r.u16() % (len(data) + 8), r.u16()
    end = len(data) if end >= len(data) else end
    flags = r.u8()
    ethernet = [bool(flags & (1 << i)) for i in range(flags >> 6)]
    clocks = [(1e-6, 0.0), (1e-9, 5.0), (1.0, -3.0)][: len(ethernet)]
    esp, dirs = tables(candidate_keys(data, 14), r.u8())
    both_ways(data, esp, dirs, horizon, lambda fp, buf: fp.pcapng_blocks(buf, pos, end, ethernet, clocks))  # type: ignore[arg-type]


def _scan_deferring(r: Bytes, link_type: int, snap: int, data: bytes) -> None:
    l2, et_at = _L2[link_type], _ET_AT[link_type]
    max_keys = (100_000, 2, 0)[r.u8() % 3]
    look = (LOOK_BYTES, 200, 0)[r.u8() % 3]
    units = (10**6, 10**9, 1)[r.u8() % 3]
    steps = [1 + r.u8() * 16 for _ in range(8)]
    start = r.u16() % (len(data) + 8)
    results = []
    for buf in [*guarded_views(data), None]:
        esp: dict[tuple[int, ...], int] = {}
        tcp: dict[tuple[int, ...], list[int]] = {}
        deferred, gaps = array.array("Q"), array.array("Q")
        t = native.Tables(esp, tcp, worker=True) if buf is not None else None
        off, hi, trace = start, 0, []
        for i in range(64):
            end = min(len(data), off + steps[i % len(steps)])
            args = (off, end, l2, et_at, snap, units, 256 * 1024, max_keys, look, deferred, gaps, hi)
            if t is not None:
                step = t.scan_deferring(buf, *args)
            else:
                step = worker._walk_deferring(esp, tcp, data, *args)  # type: ignore[arg-type]
            trace.append(step)
            if step[0] == off or step[0] >= len(data):
                break
            off, hi = step[0], step[1]
        if t is not None:
            t.flush()
        results.append((trace, list(deferred), list(gaps), esp, tcp))
    assert results[0] == results[1] == results[2], f"C and Python worker steps disagree:\n{results}"


def _pcap_deferred(r: Bytes, horizon: float | None, data: bytes) -> None:
    """Deferred records settle in one batch as each would alone (offsets may be anything: a damaged worker
    result must not make the walk read out of bounds)."""
    picks = [r.u16() % (len(data) + 40) for _ in range(r.u8() % 12)] + [2**63, len(data) - 3]
    gaps = [1_700_000_000 + (r.u8() % 5) * i for i in range(len(picks))]
    result = worker.SplitResult(array.array("Q", [max(p, 0) for p in picks]), array.array("Q", gaps))
    start = r.u8() % len(picks)
    esp, dirs = tables(candidate_keys(data, 14), r.u8())

    def one_by_one(fp: fastpath.FastPath, buf: object) -> int:
        i = start
        while i < len(picks):
            at = picks[i]
            if (horizon is not None and gaps[i] + 1 > horizon) or at < 0 or at + 16 > len(data):
                break
            end = min(len(data), at + 16 + struct.unpack_from("<I", data, at + 8)[0])
            if fp.pcap_records(buf, at, end, 1, 65535, 1e-6) != end:  # type: ignore[arg-type]
                break
            i += 1
        return i

    for view in guarded_views(data):
        batch = []
        for call in (
            lambda fp, buf: fp.pcap_deferred(buf, result, start, 1, 65535, 1e-6),
            one_by_one,
        ):
            e, d = _copy(esp, dirs)
            fp = fastpath.FastPath(e, d, on_merge=lambda r: None, on_tick=lambda t: None)  # type: ignore[arg-type]
            fp.horizon = horizon
            out = call(fp, view)
            fp.flush()
            batch.append((out, fp.packets, dict(fp.kinds), _snapshot(e, d)))
        assert batch[0] == batch[1], f"pcap_deferred differs from record-by-record pcap_records:\n{batch}"


def one_input(data: bytes) -> None:
    if native is None or len(data) < 8:
        return  # nothing to compare without the C walk
    r = Bytes(data)
    op, choice = r.u8(), r.u8()
    link_type = (1, 113, 276, 1)[choice & 3]
    snap = (65535, 80, 0, 1 << 20)[(choice >> 2) & 3]
    horizon = (None, 1_700_000_000.5, 1_600_000_000.0, 0.0)[(choice >> 4) & 3]
    r2 = Bytes(r.take(24))
    body = r.rest()
    kind = op % 4
    if kind == 0:
        _pcap_records(r2, link_type, snap, horizon, body)
    elif kind == 1:
        _pcapng_blocks(r2, horizon, body)
    elif kind == 2:
        _scan_deferring(r2, link_type, snap, body)
    else:
        _pcap_deferred(r2, horizon, body)
