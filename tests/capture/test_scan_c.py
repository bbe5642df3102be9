"""The record walk in C (`capture/_scan.c`) against its Python twin, function by function, on synthetic
traffic with random damage (flipped bytes, lying lengths, padded frames, any start and end): the same
stopping offset, the same counts per kind, and the same tables afterwards. And whatever the bytes, it
returns (no crash, no read outside the buffer: the buffers here end exactly where the data ends)."""

from __future__ import annotations

import array
import random
import struct

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.capture.test_fastpath import Traffic, offsets
from vpndoctor.capture import fastpath, worker
from vpndoctor.capture.tcp import LOOK_BYTES

native = fastpath.native


def test_c_walk_is_built() -> None:
    """`make install` builds it (gcc and Python's headers come from install-deps.sh); without it the walk
    runs in Python, about three times slower, and every test here fails rather than skips."""
    assert fastpath.native is not None, "the C walk was not built (gcc and Python's headers missing?)"


class Dir:
    """Stands in for `tcp.Direction`: the C walk reads `done` and adds to `packets` and `bytes`."""

    __slots__ = ("bytes", "done", "packets")

    def __init__(self, done: bool) -> None:
        self.done = done
        self.packets = 0
        self.bytes = 0


def record_starts(data: bytes) -> list[int]:
    """Where the records start, as far as the (possibly damaged) lengths say and a header fits."""
    starts, at = [], 24
    while at + 16 <= len(data):
        starts.append(at)
        at += 16 + struct.unpack_from("<I", data, at + 8)[0]
    return starts


def candidate_keys(data: bytes, first: int, l2: int = 14) -> list[tuple[int, ...]]:
    """Every (source, destination, 4 bytes after the IP header) key, and the ESP-in-UDP SPI ones, of the
    IPv4 and IPv6 records, as `tcp.flow_key` builds them."""
    keys: list[tuple[int, ...]] = []
    at = first
    while at + 16 <= len(data):
        caplen = struct.unpack_from("<I", data, at + 8)[0]
        pkt = data[at + 16 : at + 16 + caplen]
        ip = pkt[l2:]
        if len(ip) >= 36 and ip[0] == 0x45:
            src, dst, l4, spi = (int.from_bytes(ip[i : i + 4], "little") for i in (12, 16, 20, 28))
            keys += [(src, dst, l4), (src, dst, spi)]
        elif len(ip) >= 52 and ip[0] >> 4 == 6:
            src, dst = int.from_bytes(ip[8:24], "little"), int.from_bytes(ip[24:40], "little")
            l4, spi = int.from_bytes(ip[40:44], "little"), int.from_bytes(ip[48:52], "little")
            keys += [(src, dst, l4, 6), (src, dst, spi, 6)]
        at += 16 + caplen
    return keys


def tables(keys: list[tuple[int, ...]], rng: random.Random) -> tuple[dict, dict]:  # type: ignore[type-arg]
    esp = {k: rng.randrange(3) for k in keys if rng.random() < 0.6}
    dirs = {k: Dir(rng.random() < 0.8) for k in keys if rng.random() < 0.6}
    return esp, dirs


def snapshot(esp: dict, dirs: dict) -> tuple:  # type: ignore[type-arg]
    return dict(esp), {k: (d.done, d.packets, d.bytes) for k, d in dirs.items()}


def damaged(data: bytes, rng: random.Random, flips: int) -> bytes:
    out = bytearray(data)
    for _ in range(flips):
        at = rng.randrange(24, len(out))
        out[at] = rng.choice([0, 0xFF, 0x45, 0x60, 6, 17, 50, 8, 0x11, 0x94, 1, 0xBB, rng.randrange(256)])
    return bytes(out)


def padded(data: bytes, rng: random.Random) -> bytes:
    """Some records with bytes after the IP datagram (Ethernet pads short frames to 60 bytes), so that the
    captured length exceeds what the IP header declares."""
    out = [data[:24]]
    for at in offsets(data):
        caplen, orig = struct.unpack_from("<II", data, at + 8)
        record = data[at : at + 16 + caplen]
        if len(record) == 16 + caplen and rng.random() < 0.3:
            pad = bytes(rng.choice([2, 6, 30]))
            record = record[:8] + struct.pack("<II", caplen + len(pad), orig + len(pad)) + record[16:] + pad
        out.append(record)
    return b"".join(out)


def both_ways(monkeypatch: pytest.MonkeyPatch, esp: dict, dirs: dict, call) -> tuple:  # type: ignore[no-untyped-def, type-arg]
    """Run `call(fast_path)` with the C walk and with the Python one on copies of the same tables."""
    results = []
    for use_c in (True, False):
        e = dict(esp)
        d = {k: Dir(v.done) for k, v in dirs.items()}
        for k, v in dirs.items():
            d[k].packets, d[k].bytes = v.packets, v.bytes
        with monkeypatch.context() as m:
            if not use_c:
                m.setattr(fastpath, "native", None)
            fp = fastpath.FastPath(e, d, on_merge=lambda r: None, on_tick=lambda t: None)  # type: ignore[arg-type]
            out = call(fp)
            fp.flush()
        results.append((out, fp.packets, dict(fp.kinds), snapshot(e, d)))
    return tuple(results)


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    seed=st.integers(0, 2**32),
    flips=st.sampled_from([0, 0, 1, 5, 40]),
    link_type=st.sampled_from([1, 1, 113, 276]),
    horizon=st.sampled_from([None, None, 1_700_000_000.5, 1_600_000_000.0]),
    snap=st.sampled_from([65535, 65535, 80]),
)
def test_pcap_records_same_as_python(
    seed: int, flips: int, link_type: int, horizon: float | None, snap: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    rng = random.Random(seed)
    data = damaged(padded(Traffic(seed).pcap(rng.randrange(20, 200), link_type), rng), rng, flips)
    l2 = {1: 14, 113: 16, 276: 20}[link_type]
    esp, dirs = tables(candidate_keys(data, 24, l2), rng)
    starts = [24, *record_starts(data)[1:6], rng.randrange(24, len(data))]
    for pos in starts:
        end = rng.choice([len(data), rng.randrange(pos, len(data) + 1)])

        def walk(fp: fastpath.FastPath, pos: int = pos, end: int = end) -> int:
            fp.horizon = horizon
            return fp.pcap_records(data, pos, end, link_type, snap, 1e-6)

        with_c, with_python = both_ways(monkeypatch, esp, dirs, walk)
        assert with_c == with_python, (pos, end)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(seed=st.integers(0, 2**32), flips=st.sampled_from([0, 1, 5, 40]))
def test_pcapng_blocks_same_as_python(seed: int, flips: int, monkeypatch: pytest.MonkeyPatch) -> None:
    rng = random.Random(seed)
    data = damaged(Traffic(seed).pcapng(rng.randrange(20, 150)), rng, flips)
    keys = []
    for at in range(0, len(data) - 80):  # any 4-byte-aligned spot may start a packet's IPv4 header
        if data[at] == 0x45 and at % 4 == 2:
            ip = data[at:]
            keys.append(tuple(int.from_bytes(ip[i : i + 4], "little") for i in (12, 16, 20)))
            keys.append(tuple(int.from_bytes(ip[i : i + 4], "little") for i in (12, 16, 28)))
    esp, dirs = tables(keys, rng)
    ethernet = [True, False, True]
    clocks = [(1e-6, 0.0), (1e-6, 0.0), (1e-9, 0.0)]
    for _ in range(6):
        pos = rng.randrange(0, len(data))
        end = rng.choice([len(data), rng.randrange(pos, len(data) + 1)])
        horizon = rng.choice([None, 1_700_000_000.5])

        def walk(fp: fastpath.FastPath, pos: int = pos, end: int = end, at: float | None = horizon) -> int:
            fp.horizon = at
            return fp.pcapng_blocks(data, pos, end, ethernet, clocks)

        with_c, with_python = both_ways(monkeypatch, esp, dirs, walk)
        assert with_c == with_python, (pos, end)


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    seed=st.integers(0, 2**32),
    flips=st.sampled_from([0, 0, 1, 5, 40]),
    link_type=st.sampled_from([1, 113, 276]),
    max_keys=st.sampled_from([100_000, 2]),
    look=st.sampled_from([LOOK_BYTES, 200, 0]),
)
def test_worker_step_same_as_python(seed: int, flips: int, link_type: int, max_keys: int, look: int) -> None:
    rng = random.Random(seed)
    data = damaged(padded(Traffic(seed).pcap(rng.randrange(20, 250), link_type), rng), rng, flips)
    l2 = {1: 14, 113: 16, 276: 20}[link_type]
    et_at = {1: 12, 113: 14, 276: 0}[link_type]
    sizes = [rng.randrange(1, 4000) for _ in range(2000)]
    results = []
    for use_c in (True, False):
        step_sizes = iter(sizes)
        esp: dict = {}  # type: ignore[type-arg]
        tcp: dict = {}  # type: ignore[type-arg]
        deferred, gaps = array.array("Q"), array.array("Q")
        steps = []
        off, hi = 24, 0
        t = native.Tables(esp, tcp, worker=True) if use_c else None
        while off < len(data) - 100:
            end = min(len(data), off + next(step_sizes))
            args = (data, off, end, l2, et_at, 65535, 10**6, 256 * 1024, max_keys, look, deferred, gaps, hi)
            step = t.scan_deferring(*args) if t is not None else worker._walk_deferring(esp, tcp, *args)
            steps.append(step)
            if step[0] == off:
                break
            off, hi = step[0], step[1]
        if t is not None:
            t.flush()
        results.append((steps, list(deferred), list(gaps), esp, tcp))
    assert results[0] == results[1]


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    seed=st.integers(0, 2**32),
    flips=st.sampled_from([0, 1, 5]),
    horizon=st.sampled_from([None, 1_700_000_003.0, 1_700_000_100.0]),
)
def test_deferred_records_settle_as_alone(
    seed: int, flips: int, horizon: float | None, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`pcap_deferred` over a worker's deferred records is `pcap_records` on each record alone, up to the
    first one left to the exact path or whose gap reaches the horizon (offsets may be anything: a damaged
    worker result must not make it read out of bounds)."""
    rng = random.Random(seed)
    data = damaged(Traffic(seed).pcap(rng.randrange(20, 200)), rng, flips)
    esp, dirs = tables(candidate_keys(data, 24), rng)
    picks = [at for at in record_starts(data) if rng.random() < 0.5] + [len(data) - 3, 2**63, 10]
    gaps = [1_700_000_000 + rng.randrange(0, 5) * i for i in range(len(picks))]
    result = worker.SplitResult(array.array("Q", picks), array.array("Q", gaps))
    start = rng.randrange(0, len(picks))

    def batch(fp: fastpath.FastPath) -> int:
        fp.horizon = horizon
        return fp.pcap_deferred(data, result, start, 1, 65535, 1e-6)

    def one_by_one(fp: fastpath.FastPath) -> int:
        fp.horizon = horizon
        i = start
        while i < len(picks):
            at = picks[i]
            if (horizon is not None and gaps[i] + 1 > horizon) or at + 16 > len(data):
                break
            end = min(len(data), at + 16 + struct.unpack_from("<I", data, at + 8)[0])
            if fp.pcap_records(data, at, end, 1, 65535, 1e-6) != end:
                break
            i += 1
        return i

    batch_c, _ = both_ways(monkeypatch, esp, dirs, batch)
    alone_c, _ = both_ways(monkeypatch, esp, dirs, one_by_one)
    assert batch_c == alone_c
    with pytest.raises(ValueError, match="one gap per offset"):
        native.Tables({}, {}).pcap_deferred(
            data, result.deferred, array.array("Q"), 0, 14, 12, 65535, 1e-6, None
        )


@settings(max_examples=200, deadline=None)
@given(
    data=st.binary(min_size=0, max_size=600),
    pos=st.integers(-5, 700),
    end=st.integers(-5, 2000),
    l2=st.sampled_from([0, 14, 16, 20, 1000]),
)
def test_garbage_never_crashes(data: bytes, pos: int, end: int, l2: int) -> None:
    esp: dict = {}  # type: ignore[type-arg]
    dirs: dict = {}  # type: ignore[type-arg]
    t = native.Tables(esp, dirs)
    out = t.pcap_records(data, pos, end, l2, 12, 65535, 1e-6, None)
    assert out == pos or 0 <= out <= max(end, 0)
    assert sum(t.flush()) == 0 or out > pos  # packets counted only where it moved on
    t.pcapng_blocks(data, pos, end, [True], [(1e-6, 0.0)], None, 256 * 1024, 1 << 20)
    two = array.array("Q", [max(pos, 0), 2**64 - 1])
    t.pcap_deferred(data, two, two, 0, l2, 12, 65535, 1e-6, None)
    w = native.Tables({}, {}, worker=True)
    no_offsets, no_gaps = array.array("Q"), array.array("Q")
    w.scan_deferring(data, pos, end, l2, 12, 65535, 10**6, 256 * 1024, 10, 100, no_offsets, no_gaps, 0)
    for bad_l2, bad_at in ((-100, 12), (14, 60), (5000, 12)):  # would read outside the record: refused
        with pytest.raises(ValueError, match="layout"):
            t.pcap_records(data, 0, len(data), bad_l2, bad_at, 65535, 1e-6, None)
    with pytest.raises(ValueError, match="worker"):
        t.scan_deferring(data, 0, 0, 14, 12, 65535, 10**6, 1, 1, 1, array.array("Q"), array.array("Q"), 0)


def test_worker_entries_changed_under_it_are_refused() -> None:
    """A worker's TCP entry the walk holds on to, changed from Python in between, is an error, never a read
    past the end of the list."""
    data = Traffic(4).pcap(300)
    tcp = {k: [10**9, 0, 0] for k in candidate_keys(data, 24)}  # every direction past its first bytes
    t = native.Tables({}, tcp, worker=True)
    args = (data, 24, len(data), 14, 12, 65535, 10**6, 1 << 18, 10, 0, array.array("Q"), array.array("Q"), 0)
    t.scan_deferring(*args)
    t.flush()
    assert any(entry[1] for entry in tcp.values())  # counted, the later ones from the walk's own table
    for entry in tcp.values():
        del entry[1:]
    with pytest.raises(TypeError, match="worker TCP entries"):
        t.scan_deferring(*args)
        t.flush()
