"""The EAP peer layer (RFC 3748): Identity and Notification requests, a Legacy Nak for methods we were not
asked to use, EAP-Success and EAP-Failure, and one authentication method that does the rest.

Sans-I/O: `receive(packet)` takes the bytes of one EAP packet (what an IKEv2 EAP payload carries) and returns
an `EapStep`: the EAP packet to send back (or None) and events. `msk` is available once the conversation
succeeded. An EAP-Success is accepted only after the method says the server authenticated itself (for
MS-CHAPv2: a Success request with the right S=), so a server that skips that step cannot fake a success.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

from vpndoctor.eap.errors import EapDecodeError, EapError, EapProtocolError
from vpndoctor.eap.method import EapEvent, EapMethod
from vpndoctor.eap.packets import EapPayload, decode_eap, encode_response
from vpndoctor.ike.constants import EapCode, EapType, name_of

__all__ = [
    "EapFailed",
    "EapIdentityRequested",
    "EapMethodRefused",
    "EapNotification",
    "EapPeer",
    "EapPeerState",
    "EapStep",
    "EapSucceeded",
]

MAX_IDENTITY_BYTES = 253  # what fits a RADIUS User-Name, which the gateway forwards it as


@dataclass(frozen=True)
class EapStep:
    """What to send back (a whole EAP packet; None: nothing) and what happened."""

    reply: bytes | None
    events: tuple[EapEvent, ...] = ()

    def reply_payload(self) -> EapPayload | None:
        """The reply as the IKE codec's EAP payload, ready for an IKE_AUTH request."""
        return None if self.reply is None else decode_eap(self.reply)


@dataclass(frozen=True)
class EapIdentityRequested(EapEvent):
    """An Identity request, answered with our identity; `prompt` is the displayable text it carried."""

    prompt: str


@dataclass(frozen=True)
class EapNotification(EapEvent):
    """A Notification request (RFC 3748 §5.2), acknowledged; `text` is for the user."""

    text: str


@dataclass(frozen=True)
class EapMethodRefused(EapEvent):
    """The server proposed a method we do not run; we answered with a Legacy Nak naming ours."""

    offered: int
    offered_name: str
    proposed: int
    proposed_name: str


@dataclass(frozen=True)
class EapSucceeded(EapEvent):
    """EAP-Success after the method completed: the MSK (of `msk_bytes` bytes) is ready for AUTH."""

    eap_type: int
    msk_bytes: int


@dataclass(frozen=True)
class EapFailed(EapEvent):
    """EAP-Failure: the server ended the conversation; `reason` is the method's account of why, if any."""

    reason: str


class EapPeerState(Enum):
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"


class EapPeer:
    """The peer side of one EAP conversation. `identity` answers Identity requests (Windows sends the user
    name as typed, e.g. DOMAIN\\user or user@realm); `method` authenticates."""

    def __init__(self, identity: str, method: EapMethod) -> None:
        encoded = identity.encode("utf-8")
        if len(encoded) > MAX_IDENTITY_BYTES:
            raise ValueError(f"an EAP identity has at most {MAX_IDENTITY_BYTES} bytes here")
        self.identity = identity
        self._identity = encoded
        self.method = method
        self.state = EapPeerState.RUNNING
        self._method_started = False
        self._failure: str | None = None

    def __repr__(self) -> str:
        return f"EapPeer(identity={self.identity!r}, state={self.state.value}, method={self.method!r})"

    @property
    def msk(self) -> bytes | None:
        """The method's MSK once EAP-Success arrived; None before and after a failure."""
        return self.method.msk() if self.state is EapPeerState.SUCCEEDED else None

    @property
    def failure_reason(self) -> str | None:
        return self._failure

    def receive(self, packet: bytes) -> EapStep:
        """One EAP packet from the server. Raises EapDecodeError for malformed bytes and EapProtocolError for
        a packet not allowed now; after either the peer is FAILED."""
        if self.state is not EapPeerState.RUNNING:  # the state (and the MSK) stay as they were
            raise EapProtocolError(f"an EAP packet after the conversation {self.state.value}")
        try:
            eap = decode_eap(packet)
            return self._dispatch(eap)
        except EapError as exc:
            self.state = EapPeerState.FAILED
            if self._failure is None:
                self._failure = str(exc)
            raise

    def _dispatch(self, eap: EapPayload) -> EapStep:
        if eap.code == EapCode.SUCCESS:
            return self._on_success()
        if eap.code == EapCode.FAILURE:
            reason = self.method.failure_reason or (
                "EAP-Failure before the method finished"
                if not self.method.succeeded
                else "EAP-Failure after the method succeeded"
            )
            self.state = EapPeerState.FAILED
            self._failure = reason
            return EapStep(None, (EapFailed(reason),))
        if eap.code != EapCode.REQUEST:
            raise EapProtocolError(
                f"an EAP Request, Success or Failure from the server, not {name_of(EapCode, eap.code)}"
            )
        assert eap.eap_type is not None  # every Request has a type
        if eap.eap_type == self.method.eap_type:
            self._method_started = True
            step = self.method.process(eap.identifier, eap.data)
            reply = None if step.reply is None else encode_response(eap.identifier, eap.eap_type, step.reply)
            return EapStep(reply, step.events)
        if eap.eap_type == EapType.NOTIFICATION:
            text = eap.data.decode("utf-8", "replace")
            return EapStep(
                encode_response(eap.identifier, EapType.NOTIFICATION, b""), (EapNotification(text),)
            )
        if self._method_started:
            raise EapProtocolError(
                f"EAP {name_of(EapType, eap.eap_type)} request in the middle of "
                f"EAP-{name_of(EapType, self.method.eap_type)}"
            )
        if eap.eap_type == EapType.IDENTITY:
            # RFC 3748 §5.1: the displayable message may be followed by a NUL and options
            prompt = eap.data.split(b"\x00", 1)[0].decode("utf-8", "replace")
            reply = encode_response(eap.identifier, EapType.IDENTITY, self._identity)
            return EapStep(reply, (EapIdentityRequested(prompt),))
        if eap.eap_type == EapType.NAK:
            raise EapDecodeError(4, "a Request type other than Nak (3), which only peers send", "found Nak")
        # RFC 3748 §5.3.1: a Legacy Nak lists the methods we would accept instead.
        event = EapMethodRefused(
            offered=eap.eap_type,
            offered_name=name_of(EapType, eap.eap_type),
            proposed=self.method.eap_type,
            proposed_name=name_of(EapType, self.method.eap_type),
        )
        return EapStep(encode_response(eap.identifier, EapType.NAK, bytes([self.method.eap_type])), (event,))

    def _on_success(self) -> EapStep:
        if not self.method.succeeded:
            raise EapProtocolError(
                f"EAP-Success before EAP-{name_of(EapType, self.method.eap_type)} finished: the server has "
                "not proved it knows the password, so the success is refused"
            )
        key = self.method.msk()
        self.state = EapPeerState.SUCCEEDED
        return EapStep(None, (EapSucceeded(self.method.eap_type, 0 if key is None else len(key)),))
