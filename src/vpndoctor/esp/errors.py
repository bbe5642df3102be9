"""Errors of the ESP codec. Decoding what the gateway (or anyone on the path) sends raises only
`EspDecodeError` or a subclass, with the offset of the problem - never IndexError, struct.error or
cryptography's InvalidTag."""

from __future__ import annotations

from vpndoctor.errors import VpndoctorError
from vpndoctor.wire import DecodeError


class EspError(VpndoctorError):
    """Base class for everything the esp package raises on purpose."""


class EspDecodeError(DecodeError, EspError):
    """Bytes that are not a well-formed ESP packet, UDP-encapsulation datagram or inner IP packet."""


class IntegrityFailure(EspDecodeError):
    """The ICV (or the AES-GCM tag) did not verify: wrong keys, a corrupted or forged packet."""


class Replayed(EspDecodeError):
    """A sequence number already received, or older than the anti-replay window (RFC 4303 §3.4.3)."""


class UnsupportedTransform(EspError):
    """An ESP transform this userspace ESP does not implement (3DES, ESN, ...)."""
