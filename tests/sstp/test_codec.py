"""The SSTP codec: [MS-SSTP] 2.2 layouts pinned byte for byte, interop with sstp-server's own encoder, strict
bounds (only MalformedMessage, with the offset), and encode/decode symmetry under hypothesis."""

from __future__ import annotations

import contextlib
import uuid

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from vpndoctor.sstp.errors import MalformedHttp, MalformedMessage
from vpndoctor.sstp.http import ResponseReader, iphttps_request, parse_response_head, sstp_request
from vpndoctor.sstp.messages import (
    AttributeId,
    ControlMessage,
    CryptoBinding,
    CryptoBindingRequest,
    DataPacket,
    EncapsulatedProtocolId,
    HashProtocol,
    MessageType,
    PacketReader,
    Status,
    StatusInfo,
    call_abort,
    call_connect_request,
    call_disconnect,
    decode_packet,
    encode_packet,
    hash_names,
)

NONCE = bytes(range(32))


def test_call_connect_request_layout() -> None:
    # 2.2.9: header (version 0x10, C=1, length 14), type 1, one attribute: id 1, length 6, protocol PPP.
    assert call_connect_request() == bytes.fromhex("1001000e 00010001 00010006 0001")


def test_call_connect_ack_layout() -> None:
    # 2.2.10 / 2.2.6: Crypto Binding Request attribute is 40 bytes, the message 48.
    msg = ControlMessage(
        MessageType.CALL_CONNECT_ACK, (CryptoBindingRequest(HashProtocol.SHA1 | HashProtocol.SHA256, NONCE),)
    )
    wire = encode_packet(msg)
    assert wire[:12] == bytes.fromhex("10010030 00020001 00040028")
    assert wire[12:16] == b"\x00\x00\x00\x03" and wire[16:] == NONCE
    assert decode_packet(wire) == msg


def test_call_connected_layout() -> None:
    # 2.2.11 / 2.2.7: Crypto Binding attribute is 104 bytes (0x68), the message 112 (0x70).
    cb = CryptoBinding(HashProtocol.SHA256, NONCE, b"\x11" * 32, b"\x22" * 32)
    wire = encode_packet(ControlMessage(MessageType.CALL_CONNECTED, (cb,)))
    assert wire[:12] == bytes.fromhex("10010070 00040001 00030068")
    assert decode_packet(wire) == ControlMessage(MessageType.CALL_CONNECTED, (cb,))


def test_abort_and_disconnect_layout() -> None:
    # 2.2.8: Status Info is 12 bytes + AttribValue.
    assert call_abort(Status.NEGOTIATION_TIMEOUT) == bytes.fromhex(
        "10010014 00050001 0002000c 00000000 00000008"
    )
    assert call_abort() == bytes.fromhex("10010008 00050000")
    assert decode_packet(call_disconnect()) == ControlMessage(
        MessageType.CALL_DISCONNECT, (StatusInfo(AttributeId.NO_ERROR, Status.NO_ERROR),)
    )
    for t in (MessageType.CALL_DISCONNECT_ACK, MessageType.ECHO_REQUEST, MessageType.ECHO_RESPONSE):
        assert decode_packet(encode_packet(ControlMessage(t))) == ControlMessage(t)


def test_nak_with_status_and_value() -> None:
    nak = ControlMessage(
        MessageType.CALL_CONNECT_NAK,
        (StatusInfo(AttributeId.ENCAPSULATED_PROTOCOL_ID, Status.VALUE_NOT_SUPPORTED, b"\x00\x02"),),
    )
    back = decode_packet(encode_packet(nak))
    assert isinstance(back, ControlMessage)
    assert back.status_infos[0].status_name == "VALUE_NOT_SUPPORTED"
    assert back.summary() == "CALL_CONNECT_NAK [status=VALUE_NOT_SUPPORTED]"


def test_reserved_bits_are_ignored() -> None:
    wire = bytearray(call_connect_request())
    wire[1] |= 0xFE  # 7 reserved bits beside C
    wire[2] |= 0xF0  # 4 reserved bits of LengthPacket
    wire[8] = 0xAA  # attribute Reserved
    assert decode_packet(bytes(wire)) == ControlMessage(
        MessageType.CALL_CONNECT_REQUEST, (EncapsulatedProtocolId(1),)
    )


def test_data_packet() -> None:
    frame = bytes.fromhex("ff03c021010100040000")
    wire = encode_packet(DataPacket(frame))
    assert wire[:4] == bytes([0x10, 0x00, 0x00, 4 + len(frame)])
    assert decode_packet(wire) == DataPacket(frame)


def test_hash_names() -> None:
    assert hash_names(3) == ["SHA1", "SHA256"] and hash_names(2) == ["SHA256"] and hash_names(0x80) == []


def test_interop_with_sstp_server_encoder() -> None:
    """sstp-server's packets.py (an independent implementation) encodes; we decode."""
    from sstpd.constants import SSTP_ATTRIB_CRYPTO_BINDING_REQ, SSTP_ATTRIB_STATUS_INFO, MsgType
    from sstpd.packets import SSTPControlPacket, SSTPDataPacket

    def wire(packet: object) -> bytes:
        parts: list[bytes] = []
        packet.write_to(parts.append)  # type: ignore[attr-defined]
        return b"".join(parts)

    ack = SSTPControlPacket(
        MsgType.CALL_CONNECT_ACK, [(SSTP_ATTRIB_CRYPTO_BINDING_REQ, b"\0\0\0\x03" + NONCE)]
    )
    assert decode_packet(wire(ack)) == ControlMessage(
        MessageType.CALL_CONNECT_ACK, (CryptoBindingRequest(3, NONCE),)
    )
    abort = SSTPControlPacket(MsgType.CALL_ABORT, [(SSTP_ATTRIB_STATUS_INFO, b"\x00\x00\x00\x07")])
    # sstp-server 0.6 writes the bare 4-byte Status as the whole Status Info value (no Reserved1/AttribID):
    # 4 bytes short of the 12-byte minimum of 2.2.8 - a real quirk our strict decoder reports (the probe
    # notes it and carries on, see probes/sstp.py).
    with pytest.raises(MalformedMessage, match="length >= 12"):
        decode_packet(wire(abort))
    assert decode_packet(wire(SSTPDataPacket(b"\xc0\x21\x01"))) == DataPacket(b"\xc0\x21\x01")


@pytest.mark.parametrize(
    ("wire", "offset", "what"),
    [
        (b"", 0, "4-byte SSTP header"),
        (b"\x11\x01\x00\x08\x00\x05\x00\x00", 0, "version"),
        (b"\x10\x01\x00\x09\x00\x05\x00\x00", 2, "packet length"),
        (b"\x10\x01\x00\x06\x00\x05", 2, "at least 8"),
        (b"\x10\x01\x00\x08\x00\x0a\x00\x00", 4, "message type"),
        (b"\x10\x01\x00\x08\x00\x05\x00\x01", 8, "attribute header"),
        (bytes.fromhex("1001000e00010001 00090006 0001"), 9, "attribute id"),
        (bytes.fromhex("1001000e00010001 00010005 0001"), 10, "length 6"),
        (bytes.fromhex("1001000e00010001 00020008 0001"), 10, "length >= 12"),
        (bytes.fromhex("10010014000500010002000e 0000000000000008"), 8, "14 bytes"),
        (bytes.fromhex("1001000f000100010001000600010000")[:15], 14, "end of packet"),
    ],
)
def test_malformed_offsets(wire: bytes, offset: int, what: str) -> None:
    with pytest.raises(MalformedMessage) as err:
        decode_packet(wire, base=0)
    assert err.value.offset == offset and what in str(err.value), str(err.value)


def test_reader_splits_stream_and_offsets() -> None:
    stream = call_connect_request() + encode_packet(DataPacket(b"abc")) + call_abort()
    reader = PacketReader()
    got = []
    for i in range(len(stream)):  # one byte at a time
        got += reader.feed(stream[i : i + 1])
    assert [type(p).__name__ for p in got] == ["ControlMessage", "DataPacket", "ControlMessage"]
    assert reader.buffered == 0
    bad = PacketReader()
    bad.feed(call_connect_request())
    with pytest.raises(MalformedMessage) as err:
        bad.feed(b"HTTP/1.1 200 OK\r\n")
    assert err.value.offset == 14


def test_good_packets_before_a_malformed_one_in_the_same_read_are_kept() -> None:
    """Seen against sstpd under load: CALL_CONNECT_ACK and a packet we refuse arrived in one TLS read, and
    the refusal swallowed the ACK. The good packets come first; the error follows on the next feed."""
    ack = ControlMessage(MessageType.CALL_CONNECT_ACK, ())
    bad_attribute = bytes([0x10, 0x01, 0x00, 0x0C]) + bytes([0x00, 0x04, 0x00, 0x01]) + bytes([0, 0, 0, 4])
    reader = PacketReader(base_offset=100)
    got = reader.feed(encode_packet(ack) + bad_attribute)
    assert got == [ack]
    with pytest.raises(MalformedMessage) as err:
        reader.feed(b"")
    assert "attribute id" in str(err.value) and err.value.offset == 100 + len(encode_packet(ack)) + 9
    with pytest.raises(MalformedMessage):
        PacketReader().feed(bad_attribute)  # alone, it still fails at once


# ---- properties --------------------------------------------------------------------------------------

b32 = st.binary(min_size=32, max_size=32)
attributes = st.one_of(
    st.builds(EncapsulatedProtocolId, st.integers(0, 0xFFFF)),
    st.builds(StatusInfo, st.integers(0, 255), st.integers(0, 2**32 - 1), st.binary(max_size=64)),
    st.builds(CryptoBindingRequest, st.integers(0, 255), b32),
    st.builds(CryptoBinding, st.integers(0, 255), b32, b32, b32),
)
packets = st.one_of(
    st.builds(ControlMessage, st.sampled_from(MessageType), st.lists(attributes, max_size=8).map(tuple)),
    st.builds(DataPacket, st.binary(max_size=600)),
)


@given(packets)
@settings(max_examples=300, deadline=None)
def test_encode_decode_symmetric(packet: ControlMessage | DataPacket) -> None:
    wire = encode_packet(packet)
    assert decode_packet(wire) == packet
    assert PacketReader().feed(wire) == [packet]


@given(st.binary(max_size=300))
@settings(max_examples=500, deadline=None)
def test_garbage_raises_only_malformed(data: bytes) -> None:
    try:
        packet = decode_packet(data)
    except MalformedMessage as exc:
        assert 0 <= exc.offset <= len(data)
    else:
        assert decode_packet(encode_packet(packet)) == packet


@given(packets, st.integers(0, 200), st.binary(min_size=1, max_size=40))
@settings(max_examples=300, deadline=None)
def test_corrupted_packets_raise_only_malformed(
    packet: ControlMessage | DataPacket, at: int, junk: bytes
) -> None:
    wire = bytearray(encode_packet(packet))
    at = at % len(wire)
    wire[at : at + len(junk)] = junk
    reader = PacketReader()
    try:
        for p in reader.feed(bytes(wire)):
            assert decode_packet(encode_packet(p)) == p
    except MalformedMessage as exc:
        assert 0 <= exc.offset <= len(wire)
    assert reader.buffered <= 4095


# ---- HTTP --------------------------------------------------------------------------------------------


def test_sstp_request_is_what_windows_sends() -> None:
    req = sstp_request("vpn.lab.test", uuid.UUID("12345678-1234-5678-9abc-def012345678"))
    assert req == (
        b"SSTP_DUPLEX_POST /sra_{BA195980-CD49-458b-9E23-C84EE0ADCD75}/ HTTP/1.1\r\n"
        b"Host: vpn.lab.test\r\nContent-Length: 18446744073709551615\r\n"
        b"SSTPCORRELATIONID: {12345678-1234-5678-9ABC-DEF012345678}\r\n\r\n"
    )
    assert b"Host: [2001:db8::1]:8443\r\n" in sstp_request("2001:db8::1", uuid.UUID(int=0), 8443)


def test_iphttps_request() -> None:
    assert iphttps_request("da.lab.test") == (
        b"POST /IPHTTPS HTTP/1.1\r\nHost: da.lab.test\r\nContent-Length: 18446744073709551615\r\n\r\n"
    )
    with pytest.raises(ValueError):
        iphttps_request("x", "/a b")


def test_response_reader_keeps_what_follows() -> None:
    reader = ResponseReader()
    head = b"HTTP/1.1 200 OK\r\nContent-Length: 18446744073709551615\r\nServer: SSTP-Server/0.6.0\r\n\r\n"
    assert reader.feed(head[:10]) is None
    resp = reader.feed(head[10:] + call_abort())
    assert resp is not None and resp.status == 200 and resp.header("server") == "SSTP-Server/0.6.0"
    assert reader.rest == call_abort()
    assert parse_response_head(b"HTTP/1.1 200").reason == ""


@pytest.mark.parametrize(
    "data",
    [
        b"\x16\x03\x01\x00\x10",  # TLS where HTTP was expected
        b"SSH-2.0-OpenSSH\r\n\r\n",
        b"HTTP/2.0 200 OK\r\n\r\n",
        b"HTTP/1.1 2000 OK\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nno colon here\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nX-A: \x01\r\n\r\n",
        b"HTTP/1.1 200 OK\r\n" + b"X: y\r\n" * 100 + b"\r\n",
        b"HTTP/1.1 200 OK\r\nX: " + b"a" * 9000,
    ],
)
def test_response_reader_refuses(data: bytes) -> None:
    with pytest.raises(MalformedHttp):
        ResponseReader().feed(data)


@given(st.binary(max_size=400))
@settings(max_examples=300, deadline=None)
def test_response_reader_garbage(data: bytes) -> None:
    reader = ResponseReader()
    with contextlib.suppress(MalformedHttp):
        reader.feed(data)
    assert len(reader.rest) <= len(data)
