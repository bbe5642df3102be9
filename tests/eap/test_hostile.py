"""Hostile input: truncated packets, lying EAP and MS-Length fields, wrong OpCodes, bad Value-Size and broken
Success/Failure messages all raise EapDecodeError (with the offset of the problem), never IndexError,
struct.error, ValueError or UnicodeDecodeError; and the peer that saw them is failed."""

from __future__ import annotations

import pytest

from tests.eap import AUTHENTICATOR_CHALLENGE, PASSWORD, USERNAME, fixed_rng
from tests.eap.authenticator import Authenticator
from vpndoctor.eap import mschapv2 as m
from vpndoctor.eap.errors import EapDecodeError
from vpndoctor.eap.packets import decode_eap, encode_request
from vpndoctor.eap.peer import EapPeer, EapPeerState
from vpndoctor.ike.constants import EapType
from vpndoctor.wire import DecodeError

CHALLENGE_TYPE_DATA = m.ChallengeRequest(0x42, AUTHENTICATOR_CHALLENGE, b"NPS01").encode()
CHALLENGE_PACKET = encode_request(1, EapType.MSCHAPV2, CHALLENGE_TYPE_DATA)


def peer_expecting_result() -> EapPeer:
    peer = EapPeer(USERNAME, m.MsChapV2Method(USERNAME, PASSWORD, rng=fixed_rng()))
    peer.receive(CHALLENGE_PACKET)
    return peer


def mschap_request(type_data: bytes) -> bytes:
    return encode_request(2, EapType.MSCHAPV2, type_data)


def with_ms_header(opcode: int, body: bytes, ms_length: int | None = None) -> bytes:
    length = 4 + len(body) if ms_length is None else ms_length
    return bytes([opcode, 0x42]) + length.to_bytes(2, "big") + body


def expect_decode_error(packet: bytes, peer: EapPeer | None = None) -> EapDecodeError:
    peer = peer or EapPeer(USERNAME, m.MsChapV2Method(USERNAME, PASSWORD, rng=fixed_rng()))
    with pytest.raises(EapDecodeError) as info:
        peer.receive(packet)
    assert peer.state is EapPeerState.FAILED
    assert isinstance(info.value, DecodeError)
    assert 0 <= info.value.offset <= len(packet)
    return info.value


@pytest.mark.parametrize("cut", range(len(CHALLENGE_PACKET)))
def test_every_truncation_of_a_challenge(cut: int) -> None:
    expect_decode_error(CHALLENGE_PACKET[:cut])


@pytest.mark.parametrize("cut", range(len(CHALLENGE_TYPE_DATA)))
def test_every_truncation_of_the_type_data_with_a_consistent_eap_length(cut: int) -> None:
    expect_decode_error(mschap_request(CHALLENGE_TYPE_DATA[:cut]))


@pytest.mark.parametrize("length", [0, 3, 4, 5, len(CHALLENGE_PACKET) - 1, len(CHALLENGE_PACKET) + 1, 0xFFFF])
def test_eap_length_lying(length: int) -> None:
    packet = CHALLENGE_PACKET[:2] + length.to_bytes(2, "big") + CHALLENGE_PACKET[4:]
    error = expect_decode_error(packet)
    assert error.offset == 2


@pytest.mark.parametrize(
    "ms_length", [0, 1, 4, len(CHALLENGE_TYPE_DATA) - 1, len(CHALLENGE_TYPE_DATA) + 1, 0xFFFF]
)
def test_ms_length_lying(ms_length: int) -> None:
    body = CHALLENGE_TYPE_DATA[4:]
    error = expect_decode_error(mschap_request(with_ms_header(1, body, ms_length)))
    assert error.offset == 5 + 2 and "MS-Length" in error.expected


@pytest.mark.parametrize("opcode", [0, 2, 5, 6, 7, 8, 0x7F, 0xFF])
def test_wrong_opcodes_in_a_request(opcode: int) -> None:
    error = expect_decode_error(mschap_request(with_ms_header(opcode, CHALLENGE_TYPE_DATA[4:])))
    assert error.offset == 5 and "OpCode" in error.expected


@pytest.mark.parametrize("size", [0, 8, 15, 17, 49, 0xFF])
def test_challenge_value_size(size: int) -> None:
    body = bytes([size]) + AUTHENTICATOR_CHALLENGE + b"NPS01"
    error = expect_decode_error(mschap_request(with_ms_header(1, body)))
    assert error.offset == 9 and "Value-Size" in error.expected


@pytest.mark.parametrize(
    "message",
    [
        b"",
        b"M=hello",
        b"S=",
        b"S=407A5589115FD0D6209F510FE9C04566932CDA5",  # 39 digits
        b"S=407A5589115FD0D6209F510FE9C04566932CDAZZ",  # not hex
        b"S=407A5589115FD0D6209F510FE9C04566932CDA56X",  # glued to something
        b"S=407A5589115FD0D6209F510FE9C04566932CDA56 garbage",
        b"S=407A5589115FD0D6209F510FE9C04566932CDA56M=no space",
        b"s=407A5589115FD0D6209F510FE9C04566932CDA56",
        b"\xff\xfe\xfd",
    ],
)
def test_broken_success_messages(message: bytes) -> None:
    error = expect_decode_error(mschap_request(with_ms_header(3, message)), peer_expecting_result())
    assert error.offset >= 9


@pytest.mark.parametrize(
    "message",
    [
        b"",
        b"R=0 C=00000000000000000000000000000000",  # no E=
        b"E= R=0",
        b"E=abc R=0",
        b"E=12345678901 R=0",  # more than 10 digits
        b"E=691 R=2",
        b"E=691 R=yes",
        b"E=691 R=1 C=0011",
        b"E=691 R=1 C=000000000000000000000000000000ZZ",
        b"E=691 R=0 V=x",
        b"E=\xd9\xa1 R=0",  # a non-ASCII digit
        b"\xff\xfe",
    ],
)
def test_broken_failure_messages(message: bytes) -> None:
    error = expect_decode_error(mschap_request(with_ms_header(4, message)), peer_expecting_result())
    assert error.offset == 9 and "Failure message" in error.expected


def test_failure_message_variants_that_are_fine() -> None:
    def parse(text: bytes) -> m.FailureRequest:
        request = m.decode_request(with_ms_header(4, text))
        assert isinstance(request, m.FailureRequest)
        return request

    strongswan = parse(b"E=691 R=1 C=" + b"AB" * 16)
    assert (strongswan.error, strongswan.retriable, strongswan.challenge) == (691, True, b"\xab" * 16)
    assert strongswan.version is None and strongswan.message == ""
    windows = parse(b"E=691 R=0 C=" + b"00" * 16 + b" V=3 M=The user name or password is incorrect.")
    assert windows.version == 3 and windows.message == "The user name or password is incorrect."
    bare = parse(b"E=649")
    assert (bare.error, bare.retriable, bare.challenge) == (649, False, None)
    odd = parse(b"E=691 X=whatever R=0 M=a M=b")  # unknown fields ignored; M= runs to the end
    assert odd.message == "a M=b"
    assert parse(b"E=691 R=0\x00").error == 691


def test_success_message_variants_that_are_fine() -> None:
    def parse(text: bytes) -> m.SuccessRequest:
        request = m.decode_request(with_ms_header(3, text))
        assert isinstance(request, m.SuccessRequest)
        return request

    s_hex = b"S=407a5589115fd0d6209f510fe9c04566932cda56"  # lower case is accepted
    assert parse(s_hex).message == ""
    assert parse(s_hex + b" M=Welcome2strongSwan\x00").message == "Welcome2strongSwan"
    assert parse(s_hex + b"  M=two spaces").message == "two spaces"
    assert parse(s_hex + b" M=caf\xc3\xa9 \xff").message == "café \ufffd"
    assert parse(s_hex + b" ").message == ""


@pytest.mark.parametrize(
    "type_data",
    [
        b"",
        b"\x02",
        b"\x02\x42\x00",
        b"\x02\x42\x00\x05\x31",
        b"\x03\x00",  # a Success response is the OpCode alone
        b"\x04\x01\x02",
        b"\x01\x42\x00\x04",  # a Challenge is not a response
        b"\x07",
        with_ms_header(2, bytes([48]) + bytes(49)),  # Value-Size 48
        with_ms_header(2, bytes([49]) + bytes(48)),  # one byte short
    ],
)
def test_broken_responses(type_data: bytes) -> None:
    with pytest.raises(EapDecodeError):
        m.decode_response(type_data)


@pytest.mark.parametrize(
    "packet",
    [
        b"",
        b"\x01",
        b"\x01\x01\x00",
        b"\x01\x01\x00\x04",  # a Request without a type
        b"\x01\x01\x00\x05",  # claims a type, has none
        b"\x03\x01\x00\x05",  # Success with a lying length
        b"\x01\x01\x00\x06\x1a",
    ],
)
def test_broken_eap_headers(packet: bytes) -> None:
    with pytest.raises(EapDecodeError):
        decode_eap(packet)
    expect_decode_error(packet)


def test_a_huge_packet_is_only_a_decode_error() -> None:
    packet = b"\x01\x01\xff\xff\x1a" + b"\x01" * 0x20000
    expect_decode_error(packet)


def test_a_decode_error_mid_method_fails_the_method_with_the_reason() -> None:
    peer = peer_expecting_result()
    expect_decode_error(mschap_request(with_ms_header(3, b"S=nope")), peer)
    assert peer.method.failure_reason is not None
    assert peer.method.failure_reason.startswith("malformed EAP-MSCHAPv2 request: offset 9")
    assert peer.failure_reason == peer.method.failure_reason.removeprefix("malformed EAP-MSCHAPv2 request: ")


def test_authenticator_still_works_after_hostile_fixtures() -> None:
    # sanity: the fixtures above are broken on purpose, the unbroken one runs end to end
    server = Authenticator({USERNAME: PASSWORD}, challenge=AUTHENTICATOR_CHALLENGE)
    assert server.challenge_request()[5:] == CHALLENGE_TYPE_DATA
