"""A bounds-checked cursor over untrusted bytes.

Every read checks the remaining length first and `vector()` hands back a sub-reader restricted to the
length prefix, so an overrun or leftover bytes become a `TlsDecodeError` with an absolute offset, never an
IndexError or struct.error.
"""

from __future__ import annotations

from vpndoctor.tls.errors import TlsDecodeError


class Reader:
    def __init__(self, data: bytes, base_offset: int = 0) -> None:
        self._data = data
        self._pos = 0
        self._base = base_offset

    @property
    def offset(self) -> int:
        """Absolute offset of the next byte."""
        return self._base + self._pos

    @property
    def remaining(self) -> int:
        return len(self._data) - self._pos

    def take(self, n: int, what: str) -> bytes:
        if n > self.remaining:
            raise TlsDecodeError(self.offset, f"{n} bytes of {what}", f"{self.remaining} left")
        out = self._data[self._pos : self._pos + n]
        self._pos += n
        return out

    def uint(self, size: int, what: str) -> int:
        return int.from_bytes(self.take(size, what), "big")

    def u8(self, what: str) -> int:
        return self.uint(1, what)

    def u16(self, what: str) -> int:
        return self.uint(2, what)

    def u24(self, what: str) -> int:
        return self.uint(3, what)

    def vector(self, length_size: int, what: str) -> Reader:
        """A sub-reader over a vector with a `length_size`-byte length prefix."""
        n = self.uint(length_size, f"length of {what}")
        start = self.offset
        return Reader(self.take(n, what), start)

    def rest(self) -> bytes:
        return self.take(self.remaining, "rest")

    def expect_end(self, what: str) -> None:
        if self.remaining:
            raise TlsDecodeError(self.offset, f"end of {what}", f"{self.remaining} extra bytes")
