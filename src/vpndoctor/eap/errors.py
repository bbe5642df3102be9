"""Errors raised by the EAP peer.

Decoding untrusted EAP bytes raises only `EapDecodeError` (a `wire.DecodeError`, with the offset counted from
the first byte of the EAP packet); a well-formed packet that the conversation does not allow at that point
raises `EapProtocolError`. Both are `EapError`s. No message ever quotes a password, an NT hash or the MSK.
"""

from __future__ import annotations

from vpndoctor.errors import VpndoctorError
from vpndoctor.wire import DecodeError

__all__ = ["EapDecodeError", "EapError", "EapProtocolError"]


class EapError(VpndoctorError):
    """Base class for everything the EAP package raises on purpose."""


class EapDecodeError(DecodeError, EapError):
    """The server sent bytes that are not a well-formed EAP (or EAP-MSCHAPv2) packet.

    `offset` counts from the first byte of the EAP header (Code); `expected` and `found` as in
    `wire.DecodeError`.
    """


class EapProtocolError(EapError):
    """A well-formed packet the conversation does not allow now: a Success request before any Challenge, an
    EAP-Success before the server proved it knows the password, anything after the conversation ended.
    The peer that raises it has moved to its failed state."""
