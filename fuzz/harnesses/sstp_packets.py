"""SSTP packets (sstp/messages.py): a byte stream cut by `PacketReader` in the chunks the first byte says,
each packet summarised and re-encoded (decoding the encoding must give the same packet), and
`decode_packet` on the whole input."""

from __future__ import annotations

import contextlib

from fuzz.harnesses._util import chunks
from vpndoctor.sstp.errors import MalformedMessage
from vpndoctor.sstp.messages import ControlMessage, Packet, PacketReader, decode_packet, encode_packet

OURS = (MalformedMessage,)


def _check(packet: Packet) -> None:
    packet.summary()
    if isinstance(packet, ControlMessage):
        _ = packet.crypto_binding_request
        for info in packet.status_infos:
            _ = info.status_name
    assert decode_packet(encode_packet(packet)) == packet, "decode(encode(p)) != p"


def one_input(data: bytes) -> None:
    reader = PacketReader()
    try:
        for piece in chunks(data):
            for packet in reader.feed(piece):
                _check(packet)
    except MalformedMessage:
        pass
    with contextlib.suppress(MalformedMessage):
        _check(decode_packet(data))
