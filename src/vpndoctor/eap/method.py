"""What an EAP method looks like to `EapPeer`: it is handed the Identifier and Type-Data of each Request of
its type and answers with the Type-Data of the Response (or nothing) plus events. Sans-I/O: no sockets, no
clock; randomness is injected by whoever builds the method.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

__all__ = ["EapEvent", "EapMethod", "MethodStep"]


class EapEvent:
    """Base class of everything an EAP peer or method reports (frozen dataclasses)."""

    __slots__ = ()


@dataclass(frozen=True)
class MethodStep:
    """A method's answer to one Request: the Response's Type-Data (None: send nothing) and what happened."""

    reply: bytes | None
    events: tuple[EapEvent, ...] = ()


class EapMethod(Protocol):
    """One EAP authentication method, peer side."""

    @property
    def eap_type(self) -> int: ...

    @property
    def succeeded(self) -> bool:
        """The method is complete and the server authenticated itself: an EAP-Success is acceptable."""
        ...

    @property
    def failure_reason(self) -> str | None:
        """Why the method failed (for the report), None while it has not."""
        ...

    def process(self, identifier: int, type_data: bytes) -> MethodStep:
        """Handle one Request of this method's type. Raises EapDecodeError (offsets from the EAP Code octet)
        or EapProtocolError; after either the method is failed."""
        ...

    def msk(self) -> bytes | None:
        """The Master Session Key once `succeeded`, else None."""
        ...
