"""IKEv2 (RFC 7296) for vpndoctor: wire codec, crypto and the initiator, all sans-I/O.

The codec is `message` (header and payload chain) over `payloads` (one dataclass per payload), with the
numbers in `constants` and Vendor ID names in `vendor_ids`; decoding raises only `errors.MalformedMessage`.
"""

from vpndoctor.ike.errors import IkeError, MalformedMessage, NotIKEv2, UnsupportedCriticalPayload

__all__ = ["IkeError", "MalformedMessage", "NotIKEv2", "UnsupportedCriticalPayload"]
