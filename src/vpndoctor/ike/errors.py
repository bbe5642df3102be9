"""Errors raised by the IKEv2 codec and engine.

Decoding untrusted bytes raises only `MalformedMessage` or one of its subclasses; each carries the absolute
offset of the problem and what the decoder expected there, so a finding can quote the exact byte.
"""

from __future__ import annotations

from typing import Any

from vpndoctor.errors import VpndoctorError
from vpndoctor.wire import DecodeError


class IkeError(VpndoctorError):
    """Base class for everything the IKE package raises on purpose."""


class MalformedMessage(DecodeError, IkeError):
    """The peer sent bytes that are not a well-formed IKEv2 message (the peer's fault, never ours).

    `offset` is counted from the first byte of the IKE header (or from the caller's `base_offset` for
    decrypted SK contents); `expected` says what should have been there; `found` what was there instead.
    The fields, the message text and pickling are `wire.DecodeError`'s.
    """


class UnsupportedCriticalPayload(MalformedMessage):
    """A payload we do not implement had its critical bit set (RFC 7296 section 2.5).

    The responder answers with an UNSUPPORTED_CRITICAL_PAYLOAD notify whose data is `payload_type`.
    """

    def __init__(self, offset: int, payload_type: int) -> None:
        self.payload_type = payload_type
        super().__init__(
            offset,
            "a payload type this implementation supports",
            f"found critical payload type {payload_type}",
        )

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (self.offset, self.payload_type))


class NotIKEv2(MalformedMessage):
    """The header announces another major version: IKEv1/ISAKMP (1.0) or something newer than 2.

    Recognising IKEv1 lets a report say "the peer speaks IKEv1" instead of "garbage".
    """

    def __init__(self, offset: int, major_version: int, minor_version: int) -> None:
        self.major_version = major_version
        self.minor_version = minor_version
        label = " (IKEv1/ISAKMP)" if major_version == 1 else ""
        super().__init__(offset, "IKE major version 2", f"found {major_version}.{minor_version}{label}")

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (self.offset, self.major_version, self.minor_version))
