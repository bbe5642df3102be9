"""The pcap / pcapng reader against tshark's reading of the public captures, synthetic files in both byte
orders and resolutions, and damaged input (only CaptureError or warnings, never IndexError/struct.error)."""

from __future__ import annotations

import contextlib
import errno
import gzip
import io
import os
import random
import struct
import subprocess
import threading
import time
import zlib
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.capture import writer as w
from vpndoctor.capture import reader
from vpndoctor.capture.ip import packet_from_frame
from vpndoctor.capture.reader import CaptureError, CaptureReader, Frame, iter_frames, open_capture
from vpndoctor.errors import UsageError

PUBLIC = sorted(w.CAPTURES.glob("*.pcap*")) if w.CAPTURES else []
needs_public = pytest.mark.skipif(
    w.CAPTURES is None or w.TSHARK is None,
    reason="public captures (shared/captures/public or $VPNDOCTOR_SHARED) or tshark not available",
)


def read(data: bytes) -> tuple[list[Frame], list[str]]:
    r = CaptureReader(io.BytesIO(data))
    frames = list(r.frames())
    return frames, r.warnings


def tshark_fields(path: Path) -> list[list[str]]:
    assert w.TSHARK
    out = subprocess.run(
        [w.TSHARK, "-r", str(path), "-T", "fields", "-e", "frame.time_epoch", "-e", "frame.len",
         "-e", "frame.cap_len", "-e", "udp.srcport", "-e", "udp.dstport"],
        capture_output=True, text=True, check=True, timeout=60,
    ).stdout  # fmt: skip
    return [line.split("\t") for line in out.splitlines()]


@needs_public
@pytest.mark.parametrize("path", PUBLIC, ids=lambda p: p.name)
def test_public_capture_matches_tshark(path: Path) -> None:
    with open_capture(path) as stream:
        reader = CaptureReader(stream)
        frames = list(reader.frames())
    expected = tshark_fields(path)
    assert len(frames) == len(expected)
    assert reader.warnings == []
    for frame, (ts, length, caplen, sport, dport) in zip(frames, expected, strict=True):
        assert frame.timestamp == pytest.approx(float(ts), abs=1e-6)
        assert frame.original_length == int(length)
        assert len(frame.data) == int(caplen)
        pkt = packet_from_frame(frame)
        if sport:
            assert pkt is not None
            # tshark prints the outer header's ports first when ICMP quotes a UDP header
            assert (pkt.sport, pkt.dport) == (int(sport.split(",")[0]), int(dport.split(",")[0]))


def test_public_pcapng_present() -> None:
    if w.CAPTURES is None:
        pytest.skip("public captures not available")
    assert (w.CAPTURES / "ikev2_nat_t.pcapng").is_file()


@needs_public
@pytest.mark.parametrize("name", ["ikev2four.pcap", "ikev2_nat_t.pcapng"])
def test_gzip_reads_the_same(name: str) -> None:
    assert w.CAPTURES
    raw = (w.CAPTURES / name).read_bytes()
    assert read(gzip.compress(raw)) == read(raw)


def test_open_capture_dash_is_stdin(monkeypatch: pytest.MonkeyPatch) -> None:
    data = w.pcap([(1, 2, b"abc")])

    class FakeStdin:
        buffer = io.BytesIO(data)

    monkeypatch.setattr("sys.stdin", FakeStdin)
    assert [f.data for f in iter_frames(open_capture("-"))] == [b"abc"]


def test_open_capture_missing_file() -> None:
    # The user's mistake, not a damaged capture: a usage error that says so (exit 2 through main()).
    with pytest.raises(UsageError, match="cannot open capture file /nonexistent/capture.pcap: No such file"):
        open_capture("/nonexistent/capture.pcap")


@pytest.mark.parametrize("order", ["<", ">"])
@pytest.mark.parametrize("nanos", [False, True])
def test_pcap_byte_orders_and_resolutions(order: str, nanos: bool) -> None:
    frac = 123456789 if nanos else 123456
    data = w.pcap(
        [(1700000000, frac, b"x" * 60), (1700000001, 0, b"")], order=order, nanos=nanos, link_type=101
    )
    frames, warnings = read(data)
    assert warnings == []
    assert [f.link_type for f in frames] == [101, 101]
    assert frames[0].timestamp == pytest.approx(
        1700000000.123456789 if nanos else 1700000000.123456, abs=1e-6
    )
    assert frames[0].data == b"x" * 60 and frames[1].data == b""


def test_pcap_nanosecond_precision_survives() -> None:
    frames, _ = read(w.pcap([(0, 1, b"a"), (0, 999999999, b"b")], nanos=True))
    assert frames[0].timestamp == pytest.approx(1e-9, abs=1e-12)
    assert frames[1].timestamp == pytest.approx(0.999999999, abs=1e-12)


def test_pcap_snapped_packet_keeps_original_length() -> None:
    frames, _ = read(w.pcap([(0, 0, b"a" * 10)], origlens=[1500]))
    assert frames[0].original_length == 1500 and len(frames[0].data) == 10


@pytest.mark.parametrize("order", ["<", ">"])
def test_pcapng_interfaces_link_types_and_tsresol(order: str) -> None:
    data = (
        w.shb(order)
        + w.idb(1, tsresol=9, order=order)  # Ethernet, nanoseconds
        + w.idb(113, order=order)  # SLL, default microseconds
        + w.idb(101, tsresol=0x80 | 10, order=order)  # raw IP, 2^-10 s
        + w.block(0xBAD, b"unknown block body", order)
        + w.epb(0, 1_700_000_000_123_456_789, b"e" * 14, order=order)
        + w.epb(1, 1_700_000_000_123_456, b"s" * 16, order=order)
        + w.epb(2, 1024 * 5 + 512, b"r" * 21, orig=100, order=order)
    )
    frames, warnings = read(data)
    assert warnings == []
    assert [f.link_type for f in frames] == [1, 113, 101]
    assert frames[0].timestamp == pytest.approx(1700000000.123456789, abs=1e-6)
    assert frames[1].timestamp == pytest.approx(1700000000.123456, abs=1e-6)
    assert frames[2].timestamp == pytest.approx(5.5)
    assert frames[2].data == b"r" * 21 and frames[2].original_length == 100


def test_pcapng_multiple_sections_reset_interfaces_and_byte_order() -> None:
    data = (
        w.shb("<") + w.idb(1) + w.epb(0, 1_000_000, b"a")
        + w.shb(">") + w.idb(101, order=">") + w.epb(0, 2_000_000, b"b", order=">")
    )  # fmt: skip
    frames, _ = read(data)
    assert [(f.link_type, f.timestamp, f.data) for f in frames] == [(1, 1.0, b"a"), (101, 2.0, b"b")]


def test_pcapng_simple_packet_block_uses_the_single_interface() -> None:
    frames, _ = read(w.shb() + w.idb(101, snaplen=4) + w.spb(b"abcdefgh", orig=200))
    assert frames == [Frame(0.0, 101, b"abcd", 200)]


def test_pcapng_packet_before_interface_is_an_error() -> None:
    with pytest.raises(CaptureError, match="interface 0"):
        read(w.shb() + w.epb(0, 0, b"a"))


# -- damaged input ------------------------------------------------------------------------------------------

SMALL_PCAP = w.pcap([(1, 2, b"a" * 30), (3, 4, b"b" * 17)])
SMALL_PCAPNG = w.shb() + w.idb(1, tsresol=9) + w.epb(0, 5, b"c" * 30) + w.spb(b"d" * 7)


@pytest.mark.parametrize(
    "data", [SMALL_PCAP, SMALL_PCAPNG, gzip.compress(SMALL_PCAP)], ids=["pcap", "ng", "gz"]
)
def test_truncated_at_every_offset(data: bytes) -> None:
    full, _ = read(data)
    for cut in range(len(data)):
        try:
            frames, warnings = read(data[:cut])
        except CaptureError as exc:
            assert isinstance(exc, UsageError) and exc.offset >= 0
            continue
        # Whatever was read is a prefix of the real thing, a shortened last frame at most.
        assert len(frames) <= len(full)
        for got, want in zip(frames, full, strict=False):
            assert want.data.startswith(got.data)
        if frames and frames[-1] != full[len(frames) - 1]:
            assert any("truncated" in m for m in warnings)


def test_truncated_final_packet_is_yielded_and_warned() -> None:
    frames, warnings = read(SMALL_PCAP[:-5])
    assert len(frames) == 2 and frames[1].data == b"b" * 12 and frames[1].original_length == 17
    assert warnings and "truncated" in warnings[0]


@pytest.mark.parametrize("data", [b"", b"\x00", b"ABCDEFGHIJKLMNOPQRSTUVWXYZ", b"\x1f\x8bgarbage-not-gzip"])
def test_bad_magic(data: bytes) -> None:
    with pytest.raises(CaptureError):
        read(data)


def _patch_u32(data: bytes, at: int, value: int) -> bytes:
    return data[:at] + struct.pack("<I", value) + data[at + 4 :]


SHB_LEN = len(w.shb())
IDB_LEN = len(w.idb(1, tsresol=9))


@pytest.mark.parametrize(
    ("data", "match"),
    [
        (_patch_u32(SMALL_PCAP, 24 + 8, 300_000), "captured bytes"),
        (_patch_u32(SMALL_PCAPNG, 4, 8), "minimum"),
        (_patch_u32(SMALL_PCAPNG, 4, 30), "multiple of 4"),
        (_patch_u32(SMALL_PCAPNG, SHB_LEN + 4, IDB_LEN + 4), "trailing length"),
        (_patch_u32(SMALL_PCAPNG, SHB_LEN + 4, 1 << 30), "exceeds"),
        (_patch_u32(SMALL_PCAPNG, SHB_LEN + IDB_LEN + 20, 100), "block holds"),
        (_patch_u32(SMALL_PCAPNG, 8, 0x12345678), "byte-order"),
    ],
    ids=["pcap-caplen", "ng-short", "ng-align", "ng-trailer", "ng-huge", "ng-caplen", "ng-bom"],
)
def test_lying_lengths(data: bytes, match: str) -> None:
    with pytest.raises(CaptureError, match=match):
        read(data)


def test_pcapng_truncated_final_packet_block_is_yielded_and_warned() -> None:
    data = w.shb() + w.idb(101) + w.epb(0, 0, b"a" * 8) + w.epb(0, 0, b"b" * 40)
    frames, warnings = read(data[:-40])
    assert [f.data for f in frames] == [b"a" * 8, b"b" * 20] and frames[1].original_length == 40
    assert warnings and "truncated" in warnings[0]


@needs_public
def test_synthetic_pcapng_matches_tshark(tmp_path: Path) -> None:
    v4 = w.ipv4(w.udp(500, 4500, b"z" * 30))
    v6 = w.ipv6(w.udp(4500, 500, b"q" * 9))
    data = (
        w.shb() + w.idb(1, tsresol=9) + w.idb(276) + w.idb(113, tsresol=0x80 | 20) + w.idb(0)
        + w.epb(0, 1_700_000_000_987_654_321, w.ether(v4, vlans=(5, 6)))
        + w.epb(1, 1_700_000_001_000_001, w.sll2(v6))
        + w.epb(2, (1_700_000_002 << 20) + (1 << 19), w.sll(v4), orig=200)
        + w.epb(3, 1_700_000_003_000_000, w.null(v6, 30))
        + w.shb(">") + w.idb(101, tsresol=3, order=">") + w.epb(0, 1_700_000_004_250, v4, order=">")
    )  # fmt: skip
    path = tmp_path / "synthetic.pcapng"
    path.write_bytes(data)
    frames, _ = read(data)
    expected = tshark_fields(path)
    assert len(frames) == len(expected) == 5
    for frame, (ts, length, caplen, sport, dport) in zip(frames, expected, strict=True):
        assert frame.timestamp == pytest.approx(float(ts), abs=1e-6)
        assert (frame.original_length, len(frame.data)) == (int(length), int(caplen))
        pkt = packet_from_frame(frame)
        assert pkt is not None and (pkt.sport, pkt.dport) == (int(sport), int(dport))


def test_caplen_above_snaplen_is_tolerated_with_warning() -> None:
    frames, warnings = read(w.pcap([(0, 0, b"z" * 100)], snaplen=64))
    assert len(frames[0].data) == 100 and "snaplen" in warnings[0]


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=300))
def test_random_bytes_raise_only_capture_error(data: bytes) -> None:
    with contextlib.suppress(CaptureError):
        read(data)


@settings(max_examples=500, deadline=None)
@given(
    st.sampled_from([SMALL_PCAP, SMALL_PCAPNG]),
    st.lists(st.tuples(st.integers(min_value=0, max_value=200), st.integers(0, 255)), max_size=8),
)
def test_mutated_captures_raise_only_capture_error(base: bytes, edits: list[tuple[int, int]]) -> None:
    data = bytearray(base)
    for at, value in edits:
        data[at % len(data)] = value
    try:
        frames, _ = read(bytes(data))
    except CaptureError:
        return
    for frame in frames:
        packet_from_frame(frame)


def test_200k_packets_stream_through() -> None:
    # Speed lives in bench/capture.py; this checks that a large file streams through both layers intact.
    pkt = w.ether(w.ipv4(w.udp(4500, 4500, b"\x01\x02\x03\x04" + b"p" * 100)))
    record = struct.pack("<IIII", 0, 0, len(pkt), len(pkt)) + pkt
    path = Path("/tmp") / f"vpndoctor-capture-stream-{time.time_ns()}.pcap"
    try:
        path.write_bytes(w.pcap([]) + record * 200_000)
        with open_capture(path) as stream:
            n = sum(1 for _ in iter_frames(stream))
        with open_capture(path) as stream:
            m = sum(1 for f in iter_frames(stream) if packet_from_frame(f) is not None)
    finally:
        path.unlink(missing_ok=True)
    assert n == m == 200_000


# --- hostile input: read errors, budgets, pipes -------------------------------------------------------------


class _FailingStream(io.RawIOBase):
    """`data`, then an I/O error (as /proc/self/mem or a dying disk gives) once `fail_at` bytes were read."""

    def __init__(self, data: bytes, fail_at: int) -> None:
        self._data = data
        self._fail_at = fail_at
        self._pos = 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: bytearray | memoryview) -> int:  # type: ignore[override]
        if self._pos >= self._fail_at:
            raise OSError(errno.EIO, "Input/output error")
        chunk = self._data[self._pos : min(self._fail_at, self._pos + len(buffer))]
        buffer[: len(chunk)] = chunk
        self._pos += len(chunk)
        return len(chunk)


_RECORDS = w.pcap([(i, 0, w.ether(w.ipv4(w.udp(500, 500, bytes(40))))) for i in range(50)])


@pytest.mark.parametrize(
    ("data", "fail_at"),
    [
        (_RECORDS, 0),  # the first read
        (_RECORDS, 100),  # inside the records
        (w.shb() + w.idb(1) + w.epb(0, 0, bytes(60)) * 50, 200),
        (gzip.compress(_RECORDS), 0),
        (gzip.compress(_RECORDS), 30),  # inside the compressed stream
    ],
    ids=["pcap-start", "pcap-middle", "pcapng", "gzip-start", "gzip-middle"],
)
def test_read_error_while_reading_is_a_capture_error(data: bytes, fail_at: int) -> None:
    from vpndoctor.capture.analysis import analyse

    match = r"cannot read the capture at byte \d+: Input/output error"
    with pytest.raises(CaptureError, match=match):
        list(CaptureReader(_FailingStream(data, fail_at)).frames())  # type: ignore[arg-type]
    with pytest.raises(CaptureError, match=match):
        analyse(_FailingStream(data, fail_at), name="x")  # type: ignore[arg-type]


def _empty_records_gz(n: int) -> bytes:
    """A pcap of `n` empty records, gzip-compressed: the shape of a decompression bomb (16 bytes a record,
    about a thousand to one)."""
    comp = zlib.compressobj(9, zlib.DEFLATED, 31)
    out = [comp.compress(w.pcap([]))]
    block = bytes(16 * 65536)
    for _ in range(n // 65536):
        out.append(comp.compress(block))
    out.append(comp.compress(bytes(16 * (n % 65536))))
    return b"".join(out) + comp.flush()


def test_gzip_bomb_is_refused_with_the_default_budget() -> None:
    # 4 M empty records (64 MiB) from 62 KiB: refused early, in one line, instead of read for seconds.
    bomb = _empty_records_gz(4 << 20)
    assert len(bomb) < 100_000
    with pytest.raises(CaptureError, match="decompression bomb") as caught:
        for _ in iter_frames(io.BytesIO(bomb)):
            pass
    assert "\n" not in str(caught.value)


def test_gzip_ratio_budget(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(reader, "GZIP_RATIO_GRACE_BYTES", 4096)
    monkeypatch.setattr(reader, "MAX_GZIP_RATIO", 20)
    # Below the grace any ratio is fine; above it, only up to MAX_GZIP_RATIO.
    assert len(read(_empty_records_gz(200))[0]) == 200
    with pytest.raises(reader.CaptureBudgetError, match="more than 20 times its compressed size"):
        read(_empty_records_gz(5000))
    rng = random.Random(7)
    varied = w.pcap([(i, 0, rng.randbytes(200)) for i in range(500)])  # ~1:1
    assert read(gzip.compress(varied)) == read(varied)


def test_gzip_output_budget(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(reader, "MAX_GZIP_OUTPUT_BYTES", 50_000)
    rng = random.Random(8)
    small = w.pcap([(i, 0, rng.randbytes(200)) for i in range(200)])  # 44 KB
    big = w.pcap([(i, 0, rng.randbytes(200)) for i in range(300)])  # 65 KB
    assert read(gzip.compress(small)) == read(small)
    with pytest.raises(reader.CaptureBudgetError, match="more than 50000 bytes"):
        read(gzip.compress(big))
    assert len(read(big)[0]) == 300  # the cap is for compressed input only


@pytest.mark.parametrize("fmt", ["pcap", "pcapng", "gzip"])
def test_record_budget(fmt: str, monkeypatch: pytest.MonkeyPatch) -> None:
    from vpndoctor.capture.analysis import analyse

    monkeypatch.setattr(reader, "MAX_RECORDS", 30)

    def capture(n: int) -> bytes:
        if fmt == "pcapng":
            return w.shb() + w.idb(1) + w.epb(0, 0, bytes(14)) * (n - 2)  # blocks are records: SHB, IDB too
        data = w.pcap([(i, 0, bytes(14)) for i in range(n)])
        return gzip.compress(data) if fmt == "gzip" else data

    assert len(read(capture(30))[0]) == 30 - 2 * (fmt == "pcapng")
    assert analyse(io.BytesIO(capture(30)), name="x").packets == 30 - 2 * (fmt == "pcapng")
    for attempt in (read, lambda d: analyse(io.BytesIO(d), name="x")):
        with pytest.raises(reader.CaptureBudgetError, match="more than 30 records"):
            attempt(capture(31))


def test_pcapng_interface_budget(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(reader, "MAX_INTERFACES", 8)
    packet = w.epb(7, 0, w.ether(w.ipv4(w.udp(9, 9, b"x"))))
    assert len(read(w.shb() + w.idb(1) * 8 + packet)[0]) == 1
    assert len(read((w.shb() + w.idb(1) * 8 + packet) * 2)[0]) == 2  # the count is per section
    with pytest.raises(reader.CaptureBudgetError, match="more than 8 interfaces"):
        read(w.shb() + w.idb(1) * 9 + packet)


def test_pcapng_many_interfaces_cost_the_fast_path_nothing_per_packet(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """An interface list is handed to the fast path as the same list, at most a few dozen long, however many
    interfaces the section describes: rebuilding it per block made thousands of IDBs quadratic."""
    from vpndoctor.capture.fastpath import FastPath

    seen: list[list[bool]] = []
    real = FastPath.pcapng_blocks

    def spy(
        self: FastPath, buf: bytes, pos: int, end: int, ethernet: list[bool], clocks: list[object]
    ) -> int:
        seen.append(ethernet)
        return real(self, buf, pos, end, ethernet, clocks)  # type: ignore[arg-type]

    monkeypatch.setattr(FastPath, "pcapng_blocks", spy)
    data = w.shb() + w.idb(1) * 2000 + w.epb(0, 0, bytes(14)) * 100
    fast = FastPath({}, {}, on_merge=lambda r: None, on_tick=lambda t: None)
    frames = list(CaptureReader(io.BytesIO(data), fast).frames())
    assert len(frames) == 100 and len(seen) >= 99
    assert all(e is seen[0] for e in seen) and len(seen[0]) <= 64


def test_fifo_with_a_writer_is_read(tmp_path: Path) -> None:
    fifo = tmp_path / "capture.fifo"
    os.mkfifo(fifo)
    data = w.pcap([(1, 0, b"abc"), (2, 0, b"defg")])

    def write() -> None:
        with open(fifo, "wb") as out:  # blocks until the reader opens
            out.write(data)

    writer = threading.Thread(target=write)
    writer.start()
    try:
        with open_capture(fifo) as stream:
            assert [f.data for f in iter_frames(stream)] == [b"abc", b"defg"]
    finally:
        writer.join(10)


def test_fifo_without_a_writer_is_a_usage_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(reader, "FIFO_WRITER_WAIT_S", 0.2, raising=False)
    fifo = tmp_path / "capture.fifo"
    os.mkfifo(fifo)
    result: list[BaseException | None] = []

    def attempt() -> None:
        try:
            open_capture(fifo)
        except BaseException as exc:
            result.append(exc)
        else:
            result.append(None)

    thread = threading.Thread(target=attempt, daemon=True)  # open() of a FIFO with no writer blocks forever
    thread.start()
    thread.join(10)
    if thread.is_alive():  # unblock the stuck open() so that the daemon thread ends
        with open(fifo, "wb"):
            pass
        pytest.fail("open_capture blocked on a FIFO with no writer")
    assert isinstance(result[0], UsageError) and "no writer" in str(result[0]), result
