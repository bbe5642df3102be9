"""A whole IKEv2 datagram (ike/message.py `decode_message`), as the capture reader and the initiator get it:
decode, summarise, and re-encode (the decoding of the encoding must be the same message)."""

from __future__ import annotations

from vpndoctor.ike.errors import MalformedMessage
from vpndoctor.ike.message import (
    decode_message,
    peek_version,
    sk_payload_offset,
    strip_non_esp_marker,
    summary,
)

OURS = (MalformedMessage,)


def one_input(data: bytes) -> None:
    try:
        peek_version(data)
        sk_payload_offset(data)
    except MalformedMessage:
        pass
    inner = strip_non_esp_marker(data)
    for raw in (data,) if inner is None else (data, inner):
        try:
            msg = decode_message(raw)
        except MalformedMessage:
            continue
        summary(msg)
        again = decode_message(msg.encode())
        assert again == msg, f"decode(encode(m)) != m:\n{again}\n{msg}"
