"""The HTTP response before an SSTP or IP-HTTPS stream (sstp/http.py): `ResponseReader` fed in the chunks the
first byte says, and `parse_response_head` on the input up to the blank line."""

from __future__ import annotations

import contextlib

from fuzz.harnesses._util import chunks
from vpndoctor.sstp.errors import MalformedMessage
from vpndoctor.sstp.http import ResponseReader, parse_response_head

OURS = (MalformedMessage,)
MAX_LEN = 12000


def one_input(data: bytes) -> None:
    reader = ResponseReader()
    try:
        for piece in chunks(data):
            response = reader.feed(piece)
            if response is not None:
                _ = response.header("server"), response.header("content-length"), response.status
    except MalformedMessage:
        pass
    with contextlib.suppress(MalformedMessage):
        parse_response_head(data[1:].split(b"\r\n\r\n", 1)[0])
