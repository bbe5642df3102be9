"""IKEv2 message fragmentation (RFC 7383): splitting an inner payload chain into SKF-protected datagrams that
each fit a size limit, and reassembling received fragments (after sk.unprotect checked each one) under hard
limits on count, bytes and time. Protection itself is sk.py's, so only `cryptography` primitives are used.
"""

from __future__ import annotations

from vpndoctor.ike.errors import MalformedMessage
from vpndoctor.ike.keys import CipherSuite, DirectionKeys
from vpndoctor.ike.message import HEADER_BYTES, Header
from vpndoctor.ike.sk import Rng, protect_fragment

__all__ = [
    "FragmentReassembler",
    "ReassemblyError",
    "build_fragments",
    "max_fragment_plaintext_bytes",
]

_IP_HEADER_BYTES = {4: 20, 6: 40}
_UDP_HEADER_BYTES = 8
_NON_ESP_MARKER_BYTES = 4
_SKF_HEADER_BYTES = 8  # generic payload header + Fragment Number + Total Fragments
_MAX_FRAGMENTS = 0xFFFF


class ReassemblyError(MalformedMessage):
    """Fragments that cannot form a message: inconsistent totals, bad numbers, limits exceeded, too late.
    Its offset is 0: the problem lies across fragments, not at a byte of one."""


def max_fragment_plaintext_bytes(
    suite: CipherSuite, max_datagram_bytes: int, *, ip_version: int = 4, natt: bool = True
) -> int:
    """How much of the inner payload chain one SKF datagram of at most `max_datagram_bytes` (IP and UDP
    headers and, with NAT-T, the non-ESP marker included) can carry."""
    if ip_version not in _IP_HEADER_BYTES:
        raise ValueError(f"IP version {ip_version}: expected 4 or 6")
    overhead = (
        _IP_HEADER_BYTES[ip_version]
        + _UDP_HEADER_BYTES
        + (_NON_ESP_MARKER_BYTES if natt else 0)
        + HEADER_BYTES
        + _SKF_HEADER_BYTES
        + suite.iv_bytes
        + suite.icv_bytes
    )
    room = max_datagram_bytes - overhead
    # Whole cipher blocks, the last of which ends with the pad length byte (no padding otherwise needed).
    return room - room % suite.block_bytes - 1


def build_fragments(
    header: Header,
    first_inner: int,
    plaintext: bytes,
    keys: DirectionKeys,
    suite: CipherSuite,
    rng: Rng,
    max_datagram_bytes: int,
    *,
    ip_version: int = 4,
    natt: bool = True,
) -> list[bytes]:
    """The inner payload chain `plaintext` as complete SKF messages, fragment 1 first (RFC 7383 §2.5).
    Only fragment 1 carries `first_inner`; every datagram is at most `max_datagram_bytes` on the wire."""
    room = max_fragment_plaintext_bytes(suite, max_datagram_bytes, ip_version=ip_version, natt=natt)
    if room < 1:
        raise ValueError(f"a {max_datagram_bytes}-byte datagram leaves no room for fragment data")
    parts = [plaintext[i : i + room] for i in range(0, len(plaintext), room)] or [b""]
    if len(parts) > _MAX_FRAGMENTS:
        raise ValueError(f"{len(parts)} fragments needed, at most {_MAX_FRAGMENTS} can be numbered")
    return [
        protect_fragment(
            header, first_inner if number == 1 else 0, number, len(parts), part, keys, suite, rng
        )
        for number, part in enumerate(parts, start=1)
    ]


class FragmentReassembler:
    """Collects the decrypted parts of one fragmented message (one message ID, one direction). Fragments may
    arrive in any order; exact duplicates (retransmissions) are ignored. Any violation is sticky: once `add`
    has raised, it raises again, like a connection in an ERROR state. The timer starts at the first fragment.
    """

    def __init__(self, max_fragments: int = 64, max_total_bytes: int = 64 * 1024, timeout_s: float = 30.0):
        self.max_fragments = max_fragments
        self.max_total_bytes = max_total_bytes
        self.timeout_s = timeout_s
        self._total: int | None = None
        self._parts: dict[int, bytes] = {}
        self._first_inner = 0
        self._bytes = 0
        self._started_at: float | None = None
        self._complete = False
        self._error: ReassemblyError | None = None

    @property
    def total(self) -> int | None:
        return self._total

    @property
    def received(self) -> int:
        return len(self._parts)

    @property
    def complete(self) -> bool:
        return self._complete

    def expired(self, now: float) -> bool:
        """True once `timeout_s` has passed since the first fragment without the message completing."""
        return not self._complete and self._started_at is not None and now - self._started_at > self.timeout_s

    def add(
        self, fragment_number: int, total: int, first_inner: int, plaintext: bytes, now: float
    ) -> tuple[int, bytes] | None:
        """Record one fragment's plaintext; returns (first inner payload type, whole chain) when the last
        missing fragment arrives, else None. Fragments arriving after completion are ignored."""
        if self._error is not None:
            raise self._error
        if self._complete:
            return None
        try:
            return self._add(fragment_number, total, first_inner, plaintext, now)
        except ReassemblyError as exc:
            self._error = exc
            raise

    def _add(
        self, fragment_number: int, total: int, first_inner: int, plaintext: bytes, now: float
    ) -> tuple[int, bytes] | None:
        if self.expired(now):
            raise ReassemblyError(
                0,
                f"all fragments within {self.timeout_s} s of the first",
                f"found fragment {fragment_number} arriving later",
            )
        if not 1 <= total <= self.max_fragments:
            raise ReassemblyError(0, f"a Total Fragments of 1..{self.max_fragments}", f"found {total}")
        if self._total is not None and total != self._total:
            raise ReassemblyError(
                0,
                f"the same Total Fragments ({self._total}) in every fragment",
                f"found {total} in fragment {fragment_number}",
            )
        if not 1 <= fragment_number <= total:
            raise ReassemblyError(
                0, f"a Fragment Number of 1..{total} (RFC 7383 §2.5)", f"found {fragment_number}"
            )
        if self._started_at is None:
            self._started_at = now
        self._total = total
        if fragment_number in self._parts:
            return None  # a retransmission
        if self._bytes + len(plaintext) > self.max_total_bytes:
            raise ReassemblyError(
                0,
                f"at most {self.max_total_bytes} bytes of fragment data",
                f"found {self._bytes + len(plaintext)} with fragment {fragment_number}",
            )
        self._parts[fragment_number] = plaintext
        self._bytes += len(plaintext)
        if fragment_number == 1:
            self._first_inner = first_inner  # the other fragments' Next Payload is 0 (RFC 7383 §2.5)
        if len(self._parts) < total:
            return None
        self._complete = True
        whole = b"".join(self._parts[n] for n in range(1, total + 1))
        self._parts.clear()
        return self._first_inner, whole
