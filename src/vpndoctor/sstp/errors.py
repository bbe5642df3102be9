"""Errors raised by the SSTP codec: decoding untrusted bytes raises only `MalformedMessage` (the peer's
fault), carrying the absolute offset of the problem in the stream the caller fed in."""

from __future__ import annotations

from typing import Any

from vpndoctor.errors import VpndoctorError


class MalformedMessage(VpndoctorError):
    """The peer sent bytes that are not well-formed SSTP (or not a well-formed HTTP response)."""

    def __init__(self, offset: int, expected: str, found: str | None = None) -> None:
        self.offset = offset
        self.expected = expected
        self.found = found
        text = f"offset {offset}: expected {expected}"
        if found is not None:
            text += f", {found}"
        super().__init__(text)

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (self.offset, self.expected, self.found))


class MalformedHttp(MalformedMessage):
    """The HTTP response before the SSTP stream is not well-formed (or too large)."""
