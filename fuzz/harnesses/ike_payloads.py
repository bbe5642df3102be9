"""A bare payload chain (ike/message.py `decode_payload_chain`), as decrypted SK contents are: the first byte
is the first payload's type. Each payload is then described as `capture --keys` shows it (certificates
parsed, CP attributes and selectors rendered), and the chain must survive encode -> decode."""

from __future__ import annotations

from vpndoctor.capture.decrypt import describe_payload
from vpndoctor.ike.errors import MalformedMessage
from vpndoctor.ike.message import decode_payload_chain, encode_payload_chain

OURS = (MalformedMessage,)


def one_input(data: bytes) -> None:
    if not data:
        return
    try:
        payloads = decode_payload_chain(data[0], data[1:], base_offset=28)
    except MalformedMessage:
        return
    for p in payloads:
        describe_payload(p)
    first, chain = encode_payload_chain(payloads)
    assert decode_payload_chain(first, chain) == payloads, "decode(encode(chain)) != chain"
