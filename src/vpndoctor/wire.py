"""What every codec shares: a bounded `Reader` (`restrict_to`) and the decode-error base with offsets.

Hand-written because no library does bounded, offset-reporting decoding of these wire formats with the
errors we need: `struct` raises a bare struct.error, slicing silently returns short data, and the parser
libraries (construct, scapy, dpkt) raise their own exception types without the absolute offset and the
"expected X, found Y" text a finding quotes. Each codec binds `Reader` to its own `DecodeError` subclass
(ike `MalformedMessage`, tls `TlsDecodeError`, sstp `MalformedMessage`), so decoding untrusted bytes raises
only that codec's error, never IndexError or struct.error.
"""

from __future__ import annotations

from typing import Any, ClassVar, Self

from vpndoctor.errors import VpndoctorError

__all__ = ["DecodeError", "Reader", "bytes_left"]


def bytes_left(n: int) -> str:
    """The `found` text for a short read: "1 byte left", "12 bytes left"."""
    return f"{n} byte{'' if n == 1 else 's'} left"


class DecodeError(VpndoctorError):
    """The peer sent bytes that are not well-formed (the peer's fault, never ours).

    `offset` is the absolute offset of the problem (from the first byte the caller handed over, or from the
    caller's `base_offset`); `expected` says what should have been there; `found` what was there instead.
    The message is "offset <offset>: expected <expected>[, <found>]".
    """

    def __init__(self, offset: int, expected: str, found: str | None = None) -> None:
        self.offset = offset
        self.expected = expected
        self.found = found
        text = f"offset {offset}: expected {expected}"
        if found is not None:
            text += f", {found}"
        super().__init__(text)

    def __reduce__(self) -> tuple[Any, ...]:  # keep the fields when pickled across processes
        return (type(self), (self.offset, self.expected, self.found))

    # How a `Reader` words its two failures; a codec may override them to keep its own wording.

    @classmethod
    def truncated(cls, offset: int, wanted: int, what: str, left: int) -> Self:
        """`wanted` bytes of `what` were needed at `offset`, `left` remain: "expected what, 1 byte left"."""
        return cls(offset, what, bytes_left(left))

    @classmethod
    def trailing(cls, offset: int, what: str, extra: int) -> Self:
        """`what` should end at `offset` but `extra` bytes follow: "expected end of what, 3 bytes left"."""
        return cls(offset, f"end of {what}", bytes_left(extra))


class Reader:
    """A cursor over untrusted bytes that never reads past its end (after dnspython's wire Parser).

    Errors are the class's `error` (a codec subclasses Reader to set its own) and carry absolute offsets:
    `base_offset` plus the position in `data`. `restrict_to` narrows the end to a length-prefixed field and,
    on leaving, insists the field was consumed exactly; `vector` hands back a sub-reader over a field with
    a length prefix (TLS style) instead.
    """

    __slots__ = ("_base", "_data", "_end", "_pos")

    error: ClassVar[type[DecodeError]] = DecodeError

    def __init__(self, data: bytes, base_offset: int = 0) -> None:
        self._data = bytes(data)
        self._pos = 0
        self._end = len(self._data)
        self._base = base_offset

    @property
    def offset(self) -> int:
        """Absolute offset of the next byte to read."""
        return self._base + self._pos

    @property
    def remaining(self) -> int:
        """Bytes left before the current end (the end of the innermost `restrict_to`)."""
        return self._end - self._pos

    # The reads are written out (no shared helper, error text built only on error): the capture analysis
    # decodes every IKE message and TLS hello it sees with this.

    def _short(self, n: int, what: str) -> DecodeError:
        return self.error.truncated(self._base + self._pos, n, what, self._end - self._pos)

    def take(self, n: int, what: str) -> bytes:
        """`n` bytes, or the error "expected <what>, k bytes left" at the current offset."""
        pos = self._pos
        end = pos + n
        if end > self._end:
            raise self._short(n, what)
        self._pos = end
        return self._data[pos:end]

    def u8(self, what: str) -> int:
        pos = self._pos
        if pos >= self._end:
            raise self._short(1, what)
        self._pos = pos + 1
        return self._data[pos]

    def u16(self, what: str) -> int:
        pos = self._pos
        if pos + 2 > self._end:
            raise self._short(2, what)
        self._pos = pos + 2
        data = self._data
        return data[pos] << 8 | data[pos + 1]

    def u24(self, what: str) -> int:
        return self.uint(3, what)

    def u32(self, what: str) -> int:
        pos = self._pos
        if pos + 4 > self._end:
            raise self._short(4, what)
        self._pos = pos + 4
        return int.from_bytes(self._data[pos : pos + 4], "big")

    def uint(self, size: int, what: str) -> int:
        """A `size`-byte big-endian unsigned integer."""
        pos = self._pos
        end = pos + size
        if end > self._end:
            raise self._short(size, what)
        self._pos = end
        return int.from_bytes(self._data[pos:end], "big")

    def rest(self) -> bytes:
        """Everything up to the current end (the end of the innermost `restrict_to`)."""
        return self.take(self._end - self._pos, "rest")

    def require(self, n: int, what: str, *, at: int | None = None) -> None:
        """Fail unless `n` more bytes are available; the error names offset `at` (default: here)."""
        if n > self._end - self._pos:
            here = self._base + self._pos
            start = here if at is None else at
            raise self.error.truncated(start, n + here - start, what, self._end - self._pos + here - start)

    def expect_end(self, what: str) -> None:
        if self._pos < self._end:
            raise self.error.trailing(self._base + self._pos, what, self._end - self._pos)

    def restrict_to(self, length: int, what: str) -> _Restricted:
        """Within the block the reader ends after `length` bytes; leftovers on exit are an error."""
        if length > self._end - self._pos:
            self.require(length, f"{length}-byte {what}")
        saved_end = self._end
        self._end = self._pos + length
        return _Restricted(self, saved_end, what)

    def vector(self, length_size: int, what: str) -> Self:
        """A sub-reader over a field with a `length_size`-byte length prefix; this reader moves past it.

        The sub-reader shares the bytes (no copy) and reports the same absolute offsets.
        """
        pos = self._pos
        start = pos + length_size
        if start > self._end:
            raise self._short(length_size, f"length of {what}")
        n = int.from_bytes(self._data[pos:start], "big")
        self._pos = start
        end = start + n
        if end > self._end:
            raise self._short(n, what)
        self._pos = end
        cls = type(self)
        sub = cls.__new__(cls)
        sub._data = self._data
        sub._pos = start
        sub._end = end
        sub._base = self._base
        return sub


class _Restricted:
    """`Reader.restrict_to`'s block (a class, not a generator: a generator context costs ~3 us a use)."""

    __slots__ = ("_reader", "_saved_end", "_what")

    def __init__(self, reader: Reader, saved_end: int, what: str) -> None:
        self._reader = reader
        self._saved_end = saved_end
        self._what = what

    def __enter__(self) -> None:
        return None

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: object) -> None:
        try:
            if exc_type is None:
                self._reader.expect_end(self._what)
        finally:
            self._reader._end = self._saved_end
