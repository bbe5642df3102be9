"""IPv4 / IPv6 fragment reassembly for capture analysis, keyed by (version, src, dst, id, proto).

Bounded: at most 1024 datagrams in flight, 64 fragments and 65535 bytes each, 30 s of capture time; the
oldest is evicted first. Overlapping data: the first copy wins. What never completed is reported as
`Incomplete` with which parts were seen, because "first fragment only" is the signature of a path that
drops non-first fragments (IKE_AUTH with certificates through a fragment-hostile firewall).
Hand-written: library reassemblers (scapy's defragment) hold a whole capture in memory and drop what they
cannot complete, which is exactly the evidence wanted here.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass, field

from vpndoctor.capture.ip import Packet, reparse_after_reassembly

__all__ = ["FragmentKey", "Incomplete", "Reassembled", "Reassembler"]

MAX_DATAGRAMS = 1024
MAX_FRAGMENTS = 64
MAX_DATAGRAM_BYTES = 65535
TIMEOUT_S = 30.0

FragmentKey = tuple[int, bytes, bytes, int, int]  # version, src, dst, id, proto


@dataclass(frozen=True, slots=True)
class Reassembled:
    packet: Packet
    fragment_count: int


@dataclass(frozen=True, slots=True)
class Incomplete:
    """A datagram that never completed. `missing_ranges` are [start, end) byte ranges of the payload; the
    end is None when the last fragment was never seen (the length is unknown). `reason` is one of
    "timeout", "evicted", "too_many_fragments", "too_large", "end_of_capture"."""

    key: FragmentKey
    first_seen: bool
    last_seen: bool
    missing_ranges: tuple[tuple[int, int | None], ...]
    bytes_seen: int
    fragment_count: int
    first_ts: float
    reason: str


@dataclass(slots=True)
class _Pending:
    first_ts: float
    first: Packet | None = None
    total: int | None = None
    buf: bytearray = field(default_factory=bytearray)
    covered: list[tuple[int, int]] = field(default_factory=list)  # sorted, disjoint
    count: int = 0

    def add(self, start: int, data: bytes) -> None:
        end = start + len(data)
        if len(self.buf) < end:
            self.buf.extend(bytes(end - len(self.buf)))
        # Copy only the parts not yet covered: the first copy of any byte wins.
        cursor = start
        merged: list[tuple[int, int]] = []
        new_start, new_end = start, end
        for s, e in self.covered:
            if e < start or s > end:
                merged.append((s, e))
                continue
            if s > cursor:
                self.buf[cursor:s] = data[cursor - start : s - start]
            cursor = max(cursor, e)
            new_start, new_end = min(new_start, s), max(new_end, e)
        if cursor < end:
            self.buf[cursor:end] = data[cursor - start :]
        merged.append((new_start, new_end))
        merged.sort()
        self.covered = merged

    def complete(self) -> bool:
        return self.total is not None and self.covered == [(0, self.total)]

    def missing(self) -> tuple[tuple[int, int | None], ...]:
        out: list[tuple[int, int | None]] = []
        cursor = 0
        for s, e in self.covered:
            if s > cursor:
                out.append((cursor, s))
            cursor = max(cursor, e)
        if self.total is None:
            out.append((cursor, None))
        elif cursor < self.total:
            out.append((cursor, self.total))
        return tuple(out)


class Reassembler:
    """Feed packets in capture order; get back whole packets, reassembled datagrams and incomplete ones.

    `feed` returns unfragmented packets unchanged; `flush` at end of capture reports what is left."""

    def __init__(
        self,
        *,
        max_datagrams: int = MAX_DATAGRAMS,
        max_fragments: int = MAX_FRAGMENTS,
        max_bytes: int = MAX_DATAGRAM_BYTES,
        timeout_s: float = TIMEOUT_S,
    ) -> None:
        self._pending: OrderedDict[FragmentKey, _Pending] = OrderedDict()
        self._max_datagrams = max_datagrams
        self._max_fragments = max_fragments
        self._max_bytes = max_bytes
        self._timeout_s = timeout_s

    def __len__(self) -> int:
        return len(self._pending)

    def feed(self, pkt: Packet) -> list[Packet | Reassembled | Incomplete]:
        out: list[Packet | Reassembled | Incomplete] = []
        self._expire(pkt.ts, out)
        if not pkt.is_fragment:
            out.append(pkt)
            return out
        key: FragmentKey = (pkt.version, pkt.src, pkt.dst, pkt.ident, pkt.proto)
        entry = self._pending.get(key)
        if entry is None:
            if len(self._pending) >= self._max_datagrams:
                old_key, old = self._pending.popitem(last=False)
                out.append(_incomplete(old_key, old, "evicted"))
            entry = self._pending[key] = _Pending(pkt.ts)
        entry.count += 1
        end = pkt.frag_offset + len(pkt.payload)
        if entry.count > self._max_fragments or end > self._max_bytes:
            del self._pending[key]
            out.append(
                _incomplete(key, entry, "too_many_fragments" if end <= self._max_bytes else "too_large")
            )
            return out
        if pkt.frag_offset == 0 and entry.first is None:
            entry.first = pkt
        if not pkt.more_fragments and entry.total is None:
            entry.total = end
        entry.add(pkt.frag_offset, pkt.payload)
        if entry.complete() and entry.first is not None:
            del self._pending[key]
            first = entry.first
            whole = Packet(
                first.ts, first.version, first.src, first.dst, first.proto, bytes(entry.buf[: entry.total]),
                first.original_length, ident=first.ident, ip_fragmented=True, fragments=entry.count,
                declared_length=entry.total or 0,
            )  # fmt: skip
            # Capture time of a datagram is when its last piece arrived, the moment it became usable.
            whole.ts = pkt.ts
            out.append(Reassembled(reparse_after_reassembly(whole), entry.count))
        return out

    def expire(self, now: float) -> list[Incomplete]:
        """What times out at capture time `now` (as feeding a packet of that time would report)."""
        out: list[Packet | Reassembled | Incomplete] = []
        self._expire(now, out)
        return [e for e in out if isinstance(e, Incomplete)]

    def horizon(self) -> float | None:
        """None when nothing waits; else a capture time a little before the oldest pending datagram times
        out (a packet later than it must go through `feed`, which decides exactly)."""
        if not self._pending:
            return None
        return next(iter(self._pending.values())).first_ts + self._timeout_s - 1e-3

    def flush(self) -> list[Incomplete]:
        """End of capture: every datagram still pending, oldest first."""
        out = [_incomplete(k, v, "end_of_capture") for k, v in self._pending.items()]
        self._pending.clear()
        return out

    def _expire(self, now: float, out: list[Packet | Reassembled | Incomplete]) -> None:
        while self._pending:
            key, entry = next(iter(self._pending.items()))
            if now - entry.first_ts <= self._timeout_s:
                return
            del self._pending[key]
            out.append(_incomplete(key, entry, "timeout"))


def _incomplete(key: FragmentKey, entry: _Pending, reason: str) -> Incomplete:
    return Incomplete(
        key=key,
        first_seen=entry.first is not None,
        last_seen=entry.total is not None,
        missing_ranges=entry.missing(),
        bytes_seen=sum(e - s for s, e in entry.covered),
        fragment_count=entry.count,
        first_ts=entry.first_ts,
        reason=reason,
    )
