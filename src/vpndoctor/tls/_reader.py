"""A bounds-checked cursor over untrusted bytes.

Every read checks the remaining length first and `vector()` hands back a sub-reader restricted to the
length prefix, so an overrun or leftover bytes become a `TlsDecodeError` with an absolute offset, never an
IndexError or struct.error. The reads are written out (no shared helper, error text built only on error):
the capture analysis parses every ClientHello and ServerHello it sees with this.
"""

from __future__ import annotations

from vpndoctor.tls.errors import TlsDecodeError


class Reader:
    __slots__ = ("_base", "_data", "_end", "_pos")

    def __init__(self, data: bytes, base_offset: int = 0) -> None:
        self._data = data
        self._pos = 0
        self._end = len(data)
        self._base = base_offset

    @property
    def offset(self) -> int:
        """Absolute offset of the next byte."""
        return self._base + self._pos

    @property
    def remaining(self) -> int:
        return self._end - self._pos

    def _short(self, n: int, what: str) -> TlsDecodeError:
        return TlsDecodeError(self._base + self._pos, f"{n} bytes of {what}", f"{self._end - self._pos} left")

    def take(self, n: int, what: str) -> bytes:
        pos = self._pos
        end = pos + n
        if end > self._end:
            raise self._short(n, what)
        self._pos = end
        return self._data[pos:end]

    def uint(self, size: int, what: str) -> int:
        pos = self._pos
        end = pos + size
        if end > self._end:
            raise self._short(size, what)
        self._pos = end
        return int.from_bytes(self._data[pos:end], "big")

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

    def vector(self, length_size: int, what: str) -> Reader:
        """A sub-reader over a vector with a `length_size`-byte length prefix."""
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
        return Reader(self._data[start:end], self._base + start)

    def rest(self) -> bytes:
        return self.take(self._end - self._pos, "rest")

    def expect_end(self, what: str) -> None:
        if self._pos < self._end:
            raise TlsDecodeError(self.offset, f"end of {what}", f"{self.remaining} extra bytes")
