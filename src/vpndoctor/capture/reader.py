"""Streaming pcap / pcapng reader: bytes of a capture file in, `Frame` tuples out, one pass, bounded memory.

Hand-written rather than scapy/dpkt for speed and safety: it streams (never loads a file), builds one small
tuple per packet instead of a tree of layer objects, caps every length it trusts (a 256 KiB packet, a 16 MiB
block), and a damaged file raises only `CaptureError` (fatal, with the byte offset) or, for a truncated
final packet, yields what is there and records a warning on the reader. An I/O error while reading is a
`CaptureReadError`; a file beyond the budgets below (a decompression bomb, a flood of records or pcapng
interfaces) a `CaptureBudgetError`: both are `CaptureError`s, one line for the user.
"""

from __future__ import annotations

import gzip
import io
import mmap
import os
import stat
import struct
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO, NamedTuple, Protocol

from vpndoctor.capture.layout import MAX_PACKET_BYTES, release_mapped
from vpndoctor.errors import UsageError

if TYPE_CHECKING:
    from vpndoctor.capture.fastpath import FastPath
    from vpndoctor.capture.worker import Split, SplitResult

__all__ = [
    "CaptureBudgetError",
    "CaptureError",
    "CaptureReadError",
    "CaptureReader",
    "Frame",
    "iter_frames",
    "open_capture",
    "open_without_blocking",
]

# A packet holds at most `layout.MAX_PACKET_BYTES` (256 KiB, shared with the fast path and its worker).
# Non-packet blocks (section headers, interface descriptions with long comments) may be larger than a
# packet, but a block claiming more than this is a damaged length, not data worth buffering.
MAX_BLOCK_BYTES = 16 * 1024 * 1024

# Budgets against captures built to cost far more to read than their size (module constants: the README
# states them, tests lower them). Past any of them reading stops with one CaptureBudgetError line (exit 2).
# A gzip capture may expand to at most this much: more than any capture worth analysing compressed; a
# bigger genuine one can be read uncompressed, which no budget below limits but the record count.
MAX_GZIP_OUTPUT_BYTES = 8 << 30
# ... and, once past the grace, to at most this many times the compressed bytes read so far. Captures
# compress 1-10 to 1 (ESP and TLS hardly at all); deflate's limit, about 1030 to 1, is a bomb's: 64 MiB
# of empty records from 62 KiB, read one by one at a few microseconds each.
MAX_GZIP_RATIO = 100
GZIP_RATIO_GRACE_BYTES = 4 << 20  # a small capture may compress as well as it likes
# Records (pcap) and blocks (pcapng) the exact path reads one by one, at a few microseconds each: what the
# fast path settles in its walk is not counted (its cost is that of the bytes, bounded above). A 2 GB
# capture of the benchmark's mix has 2.4 M records in all; 100 M minimum-size Ethernet frames is a 7 GB file.
MAX_RECORDS = 100_000_000
# Interfaces one pcapng section may describe (each is kept until the section ends; dumpcap writes one per
# capture interface, and the obsolete Packet Block can name only 65536).
MAX_INTERFACES = 65536
_FAST_MAX_INTERFACES = 64  # the fast path knows the first ones; packets on others take the exact path
# A named pipe opened before its writer: wait this long for the writer, then refuse rather than block in
# open() forever.
FIFO_WRITER_WAIT_S = 2.0
_CHUNK_BYTES = 1 << 20
_FAST_WINDOW_BYTES = 1 << 18  # refill the buffer below this much when the fast path is on
_FAST_STEP_BYTES = 4 << 20  # the fast path returns at least this often (mapped pages are released)
_RELEASE_BYTES = 4 << 20  # a mapped file gives back the pages it read every this many bytes

_PCAP_USEC = 0xA1B2C3D4
_PCAP_NSEC = 0xA1B23C4D
_PCAPNG_SHB = 0x0A0D0D0A
_PCAPNG_BOM = 0x1A2B3C4D
_GZIP_MAGIC = b"\x1f\x8b"

_BT_IDB = 1
_BT_OPB = 2
_BT_SPB = 3
_BT_EPB = 6
_OPT_END = 0
_OPT_IF_TSRESOL = 9
_OPT_IF_TSOFFSET = 14


class CaptureError(UsageError):
    """The capture file cannot be read: bad magic, a truncated header or a length that lies."""

    _TEXT = "capture file damaged at byte {offset}: {message}"

    def __init__(self, offset: int, message: str) -> None:
        super().__init__(self._TEXT.format(offset=offset, message=message))
        self.offset = offset
        self.reason = message


class CaptureReadError(CaptureError):
    """Reading failed (an I/O error from the device or the kernel), whatever the bytes were."""

    _TEXT = "cannot read the capture at byte {offset}: {message}"


class CaptureBudgetError(CaptureError):
    """The capture goes beyond one of the budgets above (`offset`: bytes of capture data read by then)."""

    _TEXT = "{message}"


class Frame(NamedTuple):
    """One captured packet. `data` may be shorter than `original_length` (snaplen, truncation)."""

    timestamp: float
    link_type: int
    data: bytes
    original_length: int


class _Readable(Protocol):
    def read(self, n: int = -1, /) -> bytes: ...


class _Source:
    """Chunked buffer over a binary stream: one read() per megabyte, not per field."""

    __slots__ = ("_buf", "_pos", "_stream", "consumed")

    def __init__(self, stream: _Readable, prefix: bytes = b"") -> None:
        self._stream = stream
        self._buf = prefix
        self._pos = 0
        self.consumed = 0  # absolute offset of the next byte take() returns

    def take(self, n: int) -> bytes:
        """Exactly `n` bytes, or fewer only at end of stream."""
        pos = self._pos
        end = pos + n
        if end <= len(self._buf):
            self._pos = end
            self.consumed += n
            return self._buf[pos:end]
        parts = [self._buf[pos:]]
        have = len(parts[0])
        while have < n:
            chunk = self._stream.read(max(_CHUNK_BYTES, n - have))
            if not chunk:
                break
            parts.append(chunk)
            have += len(chunk)
        buf = b"".join(parts)
        out = buf[:n]
        self._buf = buf
        self._pos = len(out)
        self.consumed += len(out)
        return out

    def window(self, want: int) -> tuple[bytes, int]:
        """The buffer and the position of the next byte, with at least `want` bytes after it unless the
        stream ends first (for the fast path, which reads records in place)."""
        if len(self._buf) - self._pos < want:
            chunk = self._stream.read(max(_CHUNK_BYTES, want))
            if chunk:
                self._buf = self._buf[self._pos :] + chunk
                self._pos = 0
        return self._buf, self._pos

    def advance(self, n: int) -> None:
        self._pos += n
        self.consumed += n

    def skip(self, n: int) -> int:
        """Discard `n` bytes without buffering them all; returns how many were there."""
        done = 0
        while done < n:
            got = len(self.take(min(n - done, _CHUNK_BYTES)))
            if got == 0:
                break
            done += got
        return done


class _MappedSource(_Source):
    """A regular file mapped in memory: no copies, and a worker process can read the same pages. Pages
    already read are given back every few megabytes so that resident memory stays flat."""

    __slots__ = ("_released", "buffer")

    def __init__(self, mapped: mmap.mmap, start: int) -> None:
        super().__init__(io.BytesIO(), b"")
        self.buffer = mapped
        self._buf = mapped  # type: ignore[assignment]  # read-only bytes-like; slices are bytes
        self._pos = start
        self.consumed = start
        self._released = 0

    def take(self, n: int) -> bytes:
        pos = self._pos
        if pos - self._released >= _RELEASE_BYTES:
            release_mapped(self.buffer, self._released, pos)
            self._released = pos & ~(mmap.PAGESIZE - 1)
        out = self.buffer[pos : pos + n]
        self._pos += len(out)
        self.consumed += len(out)
        return out

    def window(self, want: int) -> tuple[bytes, int]:
        if self._pos - self._released >= _RELEASE_BYTES:
            release_mapped(self.buffer, self._released, self._pos)
            self._released = self._pos & ~(mmap.PAGESIZE - 1)
        return self._buf, self._pos

    def seek(self, pos: int) -> None:
        self._pos = pos
        self.consumed = pos


class _PcapContext:
    __slots__ = ("done", "link_type", "scale", "snap", "unpack", "warned")

    def __init__(
        self, unpack: Callable[[bytes], tuple[int, ...]], link_type: int, scale: float, snap: int
    ) -> None:
        self.unpack = unpack
        self.link_type = link_type
        self.scale = scale  # seconds per timestamp fraction unit
        self.snap = snap
        self.warned = False  # about a packet above snaplen (once)
        self.done = False


class _Interface(NamedTuple):
    link_type: int
    snaplen: int
    ts_scale: float  # seconds per timestamp unit
    ts_offset: int


class CaptureReader:
    """Reads one capture stream. Iterate `.frames()` once; afterwards `.warnings` lists recoverable damage
    (a truncated final packet) and `.format` is "pcap" or "pcapng"."""

    def __init__(self, stream: BinaryIO, fast: FastPath | None = None) -> None:
        self._stream = stream
        self.warnings: list[str] = []
        self.format = ""
        self._fast = fast
        self._records = 0  # read by the exact path, against MAX_RECORDS

    def frames(self) -> Iterator[Frame]:
        """Every frame in order; with a `FastPath`, only those it leaves to the exact path (the first frame
        always among them)."""
        stream = _Checked(self._stream)
        magic = _read_exact_or_fail(stream, 4)
        if magic[:2] == _GZIP_MAGIC:
            guard = _GzipGuard(gzip.GzipFile(fileobj=_Prefixed(magic, stream), mode="rb"), stream)
            magic = guard.read(4)
            if len(magic) < 4:
                raise CaptureError(len(magic), "compressed capture shorter than a file header")
            src = _Source(guard, magic)
        else:
            src = self._mapped(magic) or _Source(stream, magic)
        word_le = struct.unpack("<I", magic)[0]
        if word_le == _PCAPNG_SHB:
            self.format = "pcapng"
            yield from self._pcapng(src)
        elif word_le in (_PCAP_USEC, _PCAP_NSEC) or struct.unpack(">I", magic)[0] in (_PCAP_USEC, _PCAP_NSEC):
            self.format = "pcap"
            yield from self._pcap(src)
        else:
            raise CaptureError(0, f"not a pcap or pcapng file (magic {magic.hex()})")

    def _mapped(self, magic: bytes) -> _MappedSource | None:
        """A mapped view of a regular, uncompressed file read only by the fast path (else None)."""
        if self._fast is None:
            return None
        try:
            fd = self._stream.fileno()
            info = os.fstat(fd)
            start = self._stream.tell() - len(magic)
            if not stat.S_ISREG(info.st_mode) or start < 0 or info.st_size < start + 24:
                return None
            mapped = mmap.mmap(fd, 0, access=mmap.ACCESS_READ)
        except (OSError, ValueError, io.UnsupportedOperation):
            return None
        if mapped[start : start + 4] != magic:
            mapped.close()
            return None
        return _MappedSource(mapped, start)

    # -- classic pcap -------------------------------------------------------------------------------------

    def _pcap(self, src: _Source) -> Iterator[Frame]:
        header = src.take(24)
        if len(header) < 24:
            raise CaptureError(src.consumed, f"pcap file header is {len(header)} of 24 bytes")
        order = "<" if struct.unpack("<I", header[:4])[0] in (_PCAP_USEC, _PCAP_NSEC) else ">"
        magic, _major, _minor, _zone, _sigfigs, snaplen, fcs_link = struct.unpack(order + "IHHiIII", header)
        # The top bits of the link-type word carry FCS information (pcap-linktype(7)); only 28 bits name it.
        # Like libpcap, a packet longer than the header's snaplen is tolerated (some writers set snaplen
        # wrong) with a warning; only the hard cap is fatal.
        ctx = _PcapContext(
            struct.Struct(order + "IIII").unpack,
            fcs_link & 0x0FFFFFFF,
            1e-9 if magic == _PCAP_NSEC else 1e-6,
            snaplen or MAX_PACKET_BYTES,
        )
        fast = self._fast if order == "<" else None
        split: Split | None = None
        if fast is not None and isinstance(src, _MappedSource):
            split = fast.start_split(
                src.buffer, src.consumed, ctx.link_type, min(ctx.snap, MAX_PACKET_BYTES), ctx.scale
            )
        try:
            first = True
            while not ctx.done:
                if split is not None and src.consumed >= split.offset:
                    if src.consumed == split.offset:
                        result = split.result()
                        split = None
                        if result is not None and fast is not None:
                            yield from self._pcap_replay(src, ctx, fast, result)
                            if result.stop is None or ctx.done:
                                return
                            assert isinstance(src, _MappedSource)
                            src.seek(result.stop)  # the worker stopped early: read on alone
                    else:  # the guessed boundary was inside a packet: read on alone
                        split.abandon()
                        split = None
                if fast is not None and not first:
                    buf, pos = src.window(_FAST_WINDOW_BYTES)
                    end = min(len(buf), pos + _FAST_STEP_BYTES)
                    if split is not None:
                        end = min(end, split.offset)
                    fast_snap = MAX_PACKET_BYTES if ctx.warned else min(ctx.snap, MAX_PACKET_BYTES)
                    src.advance(fast.pcap_records(buf, pos, end, ctx.link_type, fast_snap, ctx.scale) - pos)
                    if split is not None and src.consumed >= split.offset:
                        continue
                first = False
                frame = self._pcap_record(src, ctx)
                if frame is not None:
                    yield frame
        finally:
            if split is not None:
                split.abandon()

    def _pcap_record(self, src: _Source, ctx: _PcapContext) -> Frame | None:
        """The exact reading of one record (None at the end of the file)."""
        at = src.consumed
        head = src.take(16)
        if len(head) < 16:
            if head:
                self.warnings.append(f"truncated packet header at byte {at} ({len(head)} of 16 bytes)")
            ctx.done = True
            return None
        self._records += 1
        if self._records > MAX_RECORDS:
            raise _too_many_records(at)
        sec, frac, caplen, origlen = ctx.unpack(head)
        if caplen > MAX_PACKET_BYTES:
            raise CaptureError(at, f"packet claims {caplen} captured bytes (limit {MAX_PACKET_BYTES})")
        if caplen > ctx.snap and not ctx.warned:
            ctx.warned = True
            self.warnings.append(f"packet at byte {at} has {caplen} captured bytes, above snaplen {ctx.snap}")
        data = src.take(caplen)
        if len(data) < caplen:
            self.warnings.append(
                f"truncated final packet at byte {at}: {len(data)} of {caplen} captured bytes present"
            )
            ctx.done = True
            return Frame(sec + frac * ctx.scale, ctx.link_type, data, max(origlen, len(data)))
        return Frame(sec + frac * ctx.scale, ctx.link_type, data, origlen)

    def _pcap_replay(
        self, src: _Source, ctx: _PcapContext, fast: FastPath, result: SplitResult
    ) -> Iterator[Frame]:
        """The second half of a file scanned by a worker process: the frames it left to the exact path, in
        order, then its counts. While fragments wait for reassembly, the packets it settled between two
        such frames are walked again for their timestamps, so that timeouts fire as they would have."""
        assert isinstance(src, _MappedSource)
        buf = src.buffer
        size = len(buf)
        record = ctx.unpack
        deferred, gap_secs = result.deferred, result.gap_secs
        i = 0
        while i < len(deferred):
            fast_snap = MAX_PACKET_BYTES if ctx.warned else min(ctx.snap, MAX_PACKET_BYTES)
            # The worker met these SPIs or TCP directions first, but this process may know them from the first
            # part: the fast path settles those records as it would have without a split.
            i = fast.pcap_deferred(buf, result, i, ctx.link_type, fast_snap, ctx.scale)
            if i == len(deferred):
                break
            at = deferred[i]
            if fast.horizon is not None and gap_secs[i] + 1 > fast.horizon:
                fast.replay_gap(buf, src.consumed, at, ctx.scale)
            i += 1
            src.seek(at)
            if at + 16 <= size:
                end = at + 16 + record(buf[at : at + 16])[2]
                settled = end <= size and fast.pcap_records(buf, at, end, ctx.link_type, fast_snap, ctx.scale)
                if settled == end:
                    src.seek(end)
                    continue
            frame = self._pcap_record(src, ctx)
            if frame is not None:
                yield frame
            if ctx.done:
                break
        fast.merge(result)

    # -- pcapng -------------------------------------------------------------------------------------------

    def _pcapng(self, src: _Source) -> Iterator[Frame]:
        order = "<"
        interfaces: list[_Interface] = []
        # What the fast path knows of the first interfaces, kept as they are described rather than built
        # per block: a section of thousands of interfaces made that quadratic.
        ethernet: list[bool] = []
        clocks: list[tuple[float, int]] = []
        u32 = struct.Struct("<I")
        fast = self._fast
        yielded = False  # the first frame always takes the exact path
        while True:
            if fast is not None and yielded and order == "<" and interfaces:
                buf, pos = src.window(_FAST_WINDOW_BYTES)
                end = min(len(buf), pos + _FAST_STEP_BYTES)
                src.advance(fast.pcapng_blocks(buf, pos, end, ethernet, clocks) - pos)
            at = src.consumed
            head = src.take(8)
            if not head:
                return
            if len(head) < 8:
                self.warnings.append(f"truncated block header at byte {at} ({len(head)} of 8 bytes)")
                return
            self._records += 1
            if self._records > MAX_RECORDS:
                raise _too_many_records(at)
            if head[:4] == b"\x0a\x0d\x0d\x0a":
                bom = src.take(4)
                if len(bom) < 4:
                    self._truncated(at, "section header")
                    return
                if struct.unpack("<I", bom)[0] == _PCAPNG_BOM:
                    order = "<"
                elif struct.unpack(">I", bom)[0] == _PCAPNG_BOM:
                    order = ">"
                else:
                    raise CaptureError(at + 8, f"section header byte-order magic {bom.hex()} is invalid")
                u32 = struct.Struct(order + "I")
                block_type = _PCAPNG_SHB
                total = u32.unpack(head[4:])[0]
                _check_block_length(at, total, 28)
                body_len = total - 16  # after type, length, BOM; before trailing length
                interfaces, ethernet, clocks = [], [], []
            else:
                block_type, total = struct.unpack(order + "II", head)
                _check_block_length(at, total, 12)
                body_len = total - 12
            if block_type in (_BT_EPB, _BT_SPB, _BT_OPB) and body_len > MAX_PACKET_BYTES + 65536:
                # Bounded by the packet cap plus room for options, so a lying length is caught before it is
                # buffered.
                raise CaptureError(at, f"packet block length {total} exceeds the packet limit")
            if block_type not in (_BT_EPB, _BT_SPB, _BT_OPB, _BT_IDB, _PCAPNG_SHB):
                got = src.skip(body_len)
                if got < body_len:
                    self._truncated(at, f"block of type {block_type:#x}")
                    return
                if not self._trailer(src, u32, at, total):
                    return
                continue
            body = src.take(body_len)
            if len(body) < body_len:
                frame = self._partial_packet(block_type, body, order, interfaces, at)
                if frame is not None:
                    yield frame
                self._truncated(at, f"block of type {block_type:#x}")
                return
            if not self._trailer(src, u32, at, total):
                return
            if block_type == _PCAPNG_SHB:
                continue
            if block_type == _BT_IDB:
                if len(interfaces) >= MAX_INTERFACES:
                    raise CaptureBudgetError(
                        at, f"capture section describes more than {MAX_INTERFACES} interfaces (the limit)"
                    )
                iface = _parse_idb(body, order, at)
                interfaces.append(iface)
                if len(ethernet) < _FAST_MAX_INTERFACES:
                    ethernet.append(iface.link_type == 1)
                    clocks.append((iface.ts_scale, iface.ts_offset))
                continue
            yield _packet_block(block_type, body, order, interfaces, at, complete=True)
            yielded = True

    def _trailer(self, src: _Source, u32: struct.Struct, at: int, total: int) -> bool:
        tail = src.take(4)
        if len(tail) < 4:
            self._truncated(at, "block trailer")
            return False
        if u32.unpack(tail)[0] != total:
            raise CaptureError(
                at, f"block length {total} disagrees with trailing length {u32.unpack(tail)[0]}"
            )
        return True

    def _partial_packet(
        self, block_type: int, body: bytes, order: str, interfaces: list[_Interface], at: int
    ) -> Frame | None:
        if block_type == _BT_SPB and len(body) >= 4 or block_type in (_BT_EPB, _BT_OPB) and len(body) >= 20:
            return _packet_block(block_type, body, order, interfaces, at, complete=False)
        return None

    def _truncated(self, at: int, what: str) -> None:
        self.warnings.append(f"truncated final {what} at byte {at}")


def _too_many_records(at: int) -> CaptureBudgetError:
    return CaptureBudgetError(
        at,
        f"capture has more than {MAX_RECORDS} records to decode one by one (the limit): "
        "split it (editcap -c) and read the parts",
    )


def _check_block_length(at: int, total: int, minimum: int) -> None:
    if total < minimum:
        raise CaptureError(at, f"block length {total} is less than the minimum {minimum}")
    if total % 4:
        raise CaptureError(at, f"block length {total} is not a multiple of 4")
    if total > MAX_BLOCK_BYTES:
        raise CaptureError(at, f"block length {total} exceeds {MAX_BLOCK_BYTES}")


def _options(body: bytes, start: int, order: str, at: int) -> Iterator[tuple[int, bytes]]:
    """(code, value) pairs of a pcapng option list; a list that runs off the block ends quietly, because
    options never change how packets are read except the two we look for."""
    pos = start
    n = len(body)
    fmt = order + "HH"
    while pos + 4 <= n:
        code, length = struct.unpack_from(fmt, body, pos)
        if code == _OPT_END:
            return
        pos += 4
        if pos + length > n:
            return
        yield code, body[pos : pos + length]
        pos += (length + 3) & ~3


def _parse_idb(body: bytes, order: str, at: int) -> _Interface:
    if len(body) < 8:
        raise CaptureError(at, f"interface description block body is {len(body)} bytes, need 8")
    link_type, _reserved, snaplen = struct.unpack_from(order + "HHI", body, 0)
    scale = 1e-6
    offset = 0
    for code, value in _options(body, 8, order, at):
        if code == _OPT_IF_TSRESOL and len(value) >= 1:
            v = value[0]
            exp = v & 0x7F
            if exp > 64:
                raise CaptureError(at, f"if_tsresol {v:#x} is out of range")
            scale = 2.0**-exp if v & 0x80 else 10.0**-exp
        elif code == _OPT_IF_TSOFFSET and len(value) >= 8:
            offset = struct.unpack(order + "q", value[:8])[0]
    return _Interface(link_type, snaplen, scale, offset)


def _interface(interfaces: list[_Interface], index: int, at: int) -> _Interface:
    if index >= len(interfaces):
        raise CaptureError(at, f"packet refers to interface {index}, but {len(interfaces)} are described")
    return interfaces[index]


def _packet_block(
    block_type: int, body: bytes, order: str, interfaces: list[_Interface], at: int, *, complete: bool
) -> Frame:
    if block_type == _BT_SPB:
        if len(body) < 4:
            raise CaptureError(at, "simple packet block shorter than its fixed fields")
        iface = _interface(interfaces, 0, at)
        origlen = struct.unpack_from(order + "I", body, 0)[0]
        caplen = min(origlen, len(body) - 4)
        if iface.snaplen:
            caplen = min(caplen, iface.snaplen)
        return Frame(0.0, iface.link_type, body[4 : 4 + caplen], origlen)
    if len(body) < 20:
        raise CaptureError(at, f"packet block body is {len(body)} bytes, need 20")
    if block_type == _BT_EPB:
        index, ts_hi, ts_lo, caplen, origlen = struct.unpack_from(order + "IIIII", body, 0)
    else:  # obsolete Packet Block: 16-bit interface id and drop count
        index, _drops, ts_hi, ts_lo, caplen, origlen = struct.unpack_from(order + "HHIIII", body, 0)
    iface = _interface(interfaces, index, at)
    if caplen > MAX_PACKET_BYTES:
        raise CaptureError(at, f"packet claims {caplen} captured bytes (limit {MAX_PACKET_BYTES})")
    if complete and caplen > len(body) - 20:
        raise CaptureError(at, f"packet claims {caplen} captured bytes, its block holds {len(body) - 20}")
    data = body[20 : 20 + caplen]
    ts = ((ts_hi << 32) | ts_lo) * iface.ts_scale + iface.ts_offset
    return Frame(ts, iface.link_type, data, max(origlen, len(data)))


# -- stream plumbing ----------------------------------------------------------------------------------------


class _Checked:
    """The capture stream as the reader reads it: an I/O error while reading (a failing disk, a file such as
    /proc/self/mem that opens but cannot be read) becomes a CaptureReadError, and `offset` counts the bytes
    read (for gzip input: the compressed bytes)."""

    __slots__ = ("_stream", "offset")

    def __init__(self, stream: BinaryIO) -> None:
        self._stream = stream
        self.offset = 0

    def read(self, n: int = -1, /) -> bytes:
        try:
            data = self._stream.read(n)
        except OSError as exc:
            raise CaptureReadError(self.offset, exc.strerror or str(exc)) from None
        if not data:  # None from a non-blocking stream with nothing to read: as before, the end
            return b""
        self.offset += len(data)
        return data


def _read_exact_or_fail(stream: _Readable, n: int) -> bytes:
    out = b""
    while len(out) < n:
        chunk = stream.read(n - len(out))
        if not chunk:
            break
        out += chunk
    if len(out) < n:
        raise CaptureError(len(out), "file is shorter than any capture file header")
    return out


class _Prefixed(io.RawIOBase):
    """A stream with bytes already read from it pushed back in front (stdin cannot seek)."""

    def __init__(self, prefix: bytes, stream: _Readable, *, owner: BinaryIO | None = None) -> None:
        self._prefix = prefix
        self._stream = stream
        self._owner = owner  # closed with this stream (else the caller closes `stream`)

    def close(self) -> None:
        if self._owner is not None and not self.closed:
            self._owner.close()
        super().close()

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: bytearray | memoryview) -> int:  # type: ignore[override]
        if self._prefix:
            n = min(len(buffer), len(self._prefix))
            buffer[:n] = self._prefix[:n]
            self._prefix = self._prefix[n:]
            return n
        data = self._stream.read(len(buffer))
        buffer[: len(data)] = data
        return len(data)


class _GzipGuard:
    """Turns a damaged gzip stream into the end of data plus CaptureError, never zlib/EOF errors, and holds
    its output to MAX_GZIP_OUTPUT_BYTES and MAX_GZIP_RATIO times the compressed bytes read."""

    def __init__(self, inner: gzip.GzipFile, compressed: _Checked) -> None:
        self._inner = inner
        self._compressed = compressed
        self._pos = 0

    def read(self, n: int = -1, /) -> bytes:
        try:
            data = self._inner.read(n)
        except CaptureError:  # the compressed stream could not be read
            raise
        except Exception as exc:  # zlib.error, EOFError, BadGzipFile: all mean the same to the user
            raise CaptureError(self._pos, f"compressed capture is damaged: {exc}") from exc
        self._pos += len(data)
        if self._pos > GZIP_RATIO_GRACE_BYTES and self._pos > MAX_GZIP_RATIO * self._compressed.offset:
            raise CaptureBudgetError(
                self._pos,
                f"compressed capture expands to more than {MAX_GZIP_RATIO} times its compressed size "
                f"({self._pos} bytes from {self._compressed.offset}): refused as a decompression bomb "
                "(if it is a genuine capture, gunzip it and read the plain file)",
            )
        if self._pos > MAX_GZIP_OUTPUT_BYTES:
            raise CaptureBudgetError(
                self._pos,
                f"compressed capture expands to more than {MAX_GZIP_OUTPUT_BYTES} bytes (the limit): "
                "gunzip it and read the plain file",
            )
        return data


def iter_frames(stream: BinaryIO) -> Iterator[Frame]:
    """Frames of a pcap or pcapng stream (gzip-compressed or not); warnings are dropped, use
    `CaptureReader` to see them."""
    return CaptureReader(stream).frames()


def open_capture(path: str | Path) -> BinaryIO:
    """A binary stream for `path`, or standard input for "-". A file that cannot be opened is a usage error
    (not a damaged capture), and so is a named pipe that no writer opens within FIFO_WRITER_WAIT_S."""
    if str(path) == "-":
        return sys.stdin.buffer
    try:
        return open_without_blocking(path)
    except OSError as exc:
        raise UsageError(f"cannot open capture file {path}: {exc.strerror or exc}") from None


def open_without_blocking(path: str | Path) -> BinaryIO:
    """`open(path, "rb")`, except that a named pipe is not waited on forever: open() of one blocks until a
    writer comes. Raises OSError as open() does, and UsageError for a pipe no writer opens within
    FIFO_WRITER_WAIT_S (`tcpdump -w pipe &` may not have reached its open() yet)."""
    stream = open(path, "rb", opener=_open_nonblocking)  # noqa: SIM115 - the caller owns the stream
    try:
        fd = stream.fileno()
        first = _wait_for_writer(fd, path) if stat.S_ISFIFO(os.fstat(fd).st_mode) else b""
        os.set_blocking(fd, True)
    except BaseException:
        stream.close()
        raise
    if first:  # bytes the wait read: put them back in front
        return io.BufferedReader(_Prefixed(first, stream, owner=stream))
    return stream


def _open_nonblocking(path: str, flags: int) -> int:
    return os.open(path, flags | os.O_NONBLOCK)


def _wait_for_writer(fd: int, path: str | Path) -> bytes:
    """Wait until a named pipe has a writer; return what was already written (perhaps nothing). A read of
    a pipe opened without blocking says which: EAGAIN while a writer is there, end of file while none is."""
    deadline = time.monotonic() + FIFO_WRITER_WAIT_S
    while True:
        try:
            first = os.read(fd, _CHUNK_BYTES)
        except BlockingIOError:
            return b""  # a writer, nothing written yet
        if first:
            return first
        if time.monotonic() >= deadline:
            raise UsageError(
                f"{path} is a named pipe with no writer (waited {FIFO_WRITER_WAIT_S:g} s): start the writer "
                "first"
            )
        time.sleep(0.05)
