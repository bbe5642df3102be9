"""Record layer and handshake reassembly: strict headers, incremental feeding, bounds."""

from __future__ import annotations

import contextlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from vpndoctor.tls.errors import TlsDecodeError
from vpndoctor.tls.records import (
    MAX_FRAGMENT_BYTES,
    ContentType,
    HandshakeMessage,
    Record,
    RecordBuffer,
    encode_record,
    looks_like_sslv2,
    parse_record_header,
    parse_sslv2_server_hello,
)


def hs(msg_type: int, body: bytes) -> bytes:
    return bytes([msg_type]) + len(body).to_bytes(3, "big") + body


def test_header_round_trip() -> None:
    rec = encode_record(ContentType.HANDSHAKE, 0x0303, b"abc")
    assert parse_record_header(rec[:5]) == (ContentType.HANDSHAKE, 0x0303, 3)


@pytest.mark.parametrize(
    ("header", "offset"),
    [
        (b"\x19\x03\x03\x00\x01", 0),  # content type 25
        (b"\x16\x02\x00\x00\x01", 1),  # version 2.0
        (b"\x16\x03\x05\x00\x01", 1),  # version 3.5
        (b"\x16\x03\x03" + (MAX_FRAGMENT_BYTES + 1).to_bytes(2, "big"), 3),
        (b"\x15\x03\x03\x00\x00", 3),  # empty alert
    ],
)
def test_header_strictness(header: bytes, offset: int) -> None:
    with pytest.raises(TlsDecodeError) as info:
        parse_record_header(header, 100)
    assert info.value.offset == 100 + offset


def test_empty_application_data_is_allowed() -> None:
    assert parse_record_header(b"\x17\x03\x03\x00\x00")[2] == 0


def test_handshake_spanning_records_fed_byte_by_byte() -> None:
    stream = hs(2, b"A" * 70) + hs(11, b"B" * 300) + hs(14, b"")
    wire = b"".join(encode_record(22, 0x0303, stream[i : i + 50]) for i in range(0, len(stream), 50))
    wire += encode_record(21, 0x0303, b"\x02\x28")
    one_shot = RecordBuffer().feed(wire)
    buf = RecordBuffer()
    trickled: list[Record | HandshakeMessage] = []
    for i in range(len(wire)):
        trickled += buf.feed(wire[i : i + 1])
    assert trickled == one_shot
    assert [type(e).__name__ for e in one_shot] == ["HandshakeMessage"] * 3 + ["Record"]
    msgs = [e for e in one_shot if isinstance(e, HandshakeMessage)]
    assert [(m.msg_type, len(m.body)) for m in msgs] == [(2, 70), (11, 300), (14, 0)]
    assert [m.offset for m in msgs] == [0, 74, 378]
    assert buf.pending_bytes == 0
    assert [r.content_type for r in buf.records] == [ContentType.HANDSHAKE] * 8 + [ContentType.ALERT]


def test_alert_inside_a_handshake_message_is_an_error() -> None:
    wire = encode_record(22, 0x0303, hs(11, b"x" * 10)[:6]) + encode_record(21, 0x0303, b"\x02\x28")
    with pytest.raises(TlsDecodeError):
        RecordBuffer().feed(wire)


def test_total_size_is_capped_and_errors_are_sticky() -> None:
    buf = RecordBuffer(max_bytes=1000)
    with pytest.raises(TlsDecodeError):
        buf.feed(encode_record(23, 0x0303, b"x" * 600) * 2)
    with pytest.raises(TlsDecodeError):
        buf.feed(b"")


def test_huge_handshake_length_is_refused_early() -> None:
    wire = encode_record(22, 0x0303, b"\x0b\xff\xff\xff")
    with pytest.raises(TlsDecodeError):
        RecordBuffer().feed(wire)


def test_sslv2_server_hello() -> None:
    cert = b"\x30\x03\x02\x01\x00"
    specs = bytes.fromhex("0700c0010080")
    body = bytes([4, 0, 1]) + b"\x00\x02" + len(cert).to_bytes(2, "big") + len(specs).to_bytes(2, "big")
    body += (16).to_bytes(2, "big") + cert + specs + b"C" * 16
    wire = bytes([0x80 | len(body) >> 8, len(body) & 0xFF]) + body
    assert looks_like_sslv2(wire)
    assert not looks_like_sslv2(encode_record(22, 0x0303, b"\x02\x00\x00\x00"))
    hello = parse_sslv2_server_hello(wire)
    assert hello is not None
    assert hello.version == 2 and hello.certificate == cert and hello.cipher_specs == (0x0700C0, 0x010080)
    for cut in range(len(wire)):
        assert parse_sslv2_server_hello(wire[:cut]) is None
    with pytest.raises(TlsDecodeError):
        parse_sslv2_server_hello(b"\x80\x01\x05")  # complete, but not a SERVER-HELLO
    with pytest.raises(TlsDecodeError):
        parse_sslv2_server_hello(b"\x01\x00")  # no SSLv2 header bit


@settings(max_examples=300, deadline=None)
@given(st.lists(st.binary(max_size=64), max_size=8))
def test_random_bytes_raise_only_our_error(chunks: list[bytes]) -> None:
    buf = RecordBuffer()
    try:
        for chunk in chunks:
            buf.feed(chunk)
    except TlsDecodeError:
        pass


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=300))
def test_random_bytes_behind_a_valid_header(payload: bytes) -> None:
    wire = encode_record(22, 0x0303, payload[:255] or b"\x00") + payload
    with contextlib.suppress(TlsDecodeError):
        RecordBuffer().feed(wire)
