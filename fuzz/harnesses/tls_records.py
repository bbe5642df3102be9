"""The TLS record layer (tls/records.py): `RecordBuffer` fed the bytes in the chunks the first byte says and
all at once (the two must agree: the same records and handshake messages, or the same error), plus the
record-header and SSLv2 SERVER-HELLO parsers."""

from __future__ import annotations

import contextlib

from fuzz.harnesses._util import chunks
from vpndoctor.tls.errors import TlsDecodeError
from vpndoctor.tls.records import (
    HandshakeMessage,
    Record,
    RecordBuffer,
    looks_like_sslv2,
    parse_record_header,
    parse_sslv2_server_hello,
)

OURS = (TlsDecodeError,)
MAX_LEN = 20000


def _feed(pieces: list[bytes]) -> tuple[list[Record | HandshakeMessage], tuple[int, str] | None]:
    buf = RecordBuffer()
    events: list[Record | HandshakeMessage] = []
    try:
        for piece in pieces:
            events += buf.feed(piece)
    except TlsDecodeError as exc:
        try:
            buf.feed(b"")
        except TlsDecodeError as again:
            assert again is exc, "RecordBuffer errors must be sticky"
        else:
            raise AssertionError("RecordBuffer accepted bytes after an error") from None
        return events, (exc.offset, exc.expected)
    assert buf.pending_bytes >= 0
    return events, None


def one_input(data: bytes) -> None:
    pieces = chunks(data)
    body = b"".join(pieces)
    chunked_events, chunked_error = _feed(pieces)
    whole_events, whole_error = _feed([body])
    assert chunked_error == whole_error, f"chunked: {chunked_error}, whole: {whole_error}"
    if whole_error is None:
        assert chunked_events == whole_events, "chunked and whole feeding disagree"
    looks_like_sslv2(body)
    for parse in (parse_sslv2_server_hello, parse_record_header):
        with contextlib.suppress(TlsDecodeError):
            parse(body)
