"""EAP for vpndoctor, peer side and sans-I/O: the packets (`packets`), the peer layer (`peer`: Identity,
Notification, Nak, Success, Failure), EAP-MSCHAPv2 (`mschapv2`, with the RFC 2759 and RFC 3079
computations) and the IKEv2 AUTH payloads keyed with the MSK (`auth`). Decoding raises only
`errors.EapDecodeError`; a packet out of turn raises `errors.EapProtocolError`.
"""

from vpndoctor.eap.errors import EapDecodeError, EapError, EapProtocolError

__all__ = ["EapDecodeError", "EapError", "EapProtocolError"]
