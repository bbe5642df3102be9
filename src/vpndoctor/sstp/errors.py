"""Errors raised by the SSTP codec: decoding untrusted bytes raises only `MalformedMessage` (the peer's
fault), carrying the absolute offset of the problem in the stream the caller fed in."""

from __future__ import annotations

from vpndoctor.wire import DecodeError


class MalformedMessage(DecodeError):
    """The peer sent bytes that are not well-formed SSTP (or not a well-formed HTTP response).

    The fields, the message text and pickling are `wire.DecodeError`'s.
    """


class MalformedHttp(MalformedMessage):
    """The HTTP response before the SSTP stream is not well-formed (or too large)."""
