"""Errors raised by the raw TLS codec.

Decoding untrusted bytes raises only `TlsDecodeError`; it carries the offset of the problem (counted from the
first byte the caller handed over) and what the decoder expected there.
"""

from __future__ import annotations

from typing import Self

from vpndoctor.wire import DecodeError


class TlsDecodeError(DecodeError):
    """The peer sent bytes that are not well-formed TLS (the peer's fault, never ours).

    The fields, the message text and pickling are `wire.DecodeError`'s; a `Reader`'s short reads and
    leftovers keep the TLS codec's own wording ("2 bytes of cipher suite, 1 left", "3 extra bytes").
    """

    @classmethod
    def truncated(cls, offset: int, wanted: int, what: str, left: int) -> Self:
        return cls(offset, f"{wanted} bytes of {what}", f"{left} left")

    @classmethod
    def trailing(cls, offset: int, what: str, extra: int) -> Self:
        return cls(offset, f"end of {what}", f"{extra} extra bytes")
