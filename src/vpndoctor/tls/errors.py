"""Errors raised by the raw TLS codec.

Decoding untrusted bytes raises only `TlsDecodeError`; it carries the offset of the problem (counted from the
first byte the caller handed over) and what the decoder expected there.
"""

from __future__ import annotations

from typing import Any

from vpndoctor.errors import VpndoctorError


class TlsDecodeError(VpndoctorError):
    """The peer sent bytes that are not well-formed TLS (the peer's fault, never ours)."""

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
