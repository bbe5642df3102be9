"""EAP packets (RFC 3748 §4): the codec is the IKE codec's `EapPayload` (Code, Identifier, Length, Type,
Type-Data, with Length checked against the bytes given), re-raised as `EapDecodeError` so that everything the
EAP package decodes fails with one error type, whatever carries the packet (an IKEv2 EAP payload today, a
PEAP tunnel later). Offsets count from the Code octet.
"""

from __future__ import annotations

from vpndoctor import wire
from vpndoctor.eap.errors import EapDecodeError
from vpndoctor.ike.constants import EapCode
from vpndoctor.ike.errors import MalformedMessage
from vpndoctor.ike.payloads import EapPayload

__all__ = [
    "TYPE_DATA_OFFSET",
    "EapPayload",
    "Reader",
    "decode_eap",
    "encode_failure",
    "encode_request",
    "encode_response",
    "encode_success",
]

TYPE_DATA_OFFSET = 5  # Code, Identifier, Length (2), Type: where a method's Type-Data starts


class Reader(wire.Reader):
    """The EAP package's `wire.Reader`: it raises `EapDecodeError`."""

    __slots__ = ()
    error = EapDecodeError


def decode_eap(packet: bytes) -> EapPayload:
    """One EAP packet that fills all of `packet`; raises only EapDecodeError."""
    try:
        return EapPayload.decode_body(packet)
    except MalformedMessage as exc:
        raise EapDecodeError(exc.offset, exc.expected, exc.found) from None


def encode_response(identifier: int, eap_type: int, type_data: bytes) -> bytes:
    return EapPayload(EapCode.RESPONSE, identifier, eap_type, type_data).encode_body()


def encode_request(identifier: int, eap_type: int, type_data: bytes) -> bytes:
    return EapPayload(EapCode.REQUEST, identifier, eap_type, type_data).encode_body()


def encode_success(identifier: int) -> bytes:
    return EapPayload(EapCode.SUCCESS, identifier, None, b"").encode_body()


def encode_failure(identifier: int) -> bytes:
    return EapPayload(EapCode.FAILURE, identifier, None, b"").encode_body()
