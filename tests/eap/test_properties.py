"""Property tests: the EAP-MSCHAPv2 packets survive encode -> decode unchanged, and no input bytes, random or
mutated from valid packets, make a decoder raise anything but EapDecodeError, or the peer anything but an
EapError."""

from __future__ import annotations

import contextlib

from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from tests.eap import AUTHENTICATOR_CHALLENGE, PASSWORD, USERNAME, fixed_rng
from tests.eap.authenticator import Authenticator
from vpndoctor.eap import mschapv2 as m
from vpndoctor.eap.errors import EapDecodeError, EapError
from vpndoctor.eap.packets import decode_eap, encode_request
from vpndoctor.eap.peer import EapPeer
from vpndoctor.ike.constants import EapType

u8 = st.integers(0, 0xFF)
message_text = st.text(
    alphabet=st.characters(codec="utf-8", exclude_characters="\x00"), max_size=40
).map(str.strip)

challenges = st.builds(m.ChallengeRequest, u8, st.binary(min_size=16, max_size=16), st.binary(max_size=40))
successes = st.builds(m.SuccessRequest, u8, st.binary(min_size=20, max_size=20), message_text)
failures = st.builds(
    m.FailureRequest,
    u8,
    st.integers(0, 9_999_999_999),
    st.booleans(),
    st.none() | st.binary(min_size=16, max_size=16),
    st.none() | st.integers(0, 9_999_999_999),
    message_text,
)
responses = st.builds(
    m.Response,
    u8,
    st.binary(min_size=16, max_size=16),
    st.binary(min_size=24, max_size=24),
    st.binary(max_size=40),
    u8,
)

SUCCESS = m.SuccessRequest(0x42, bytes(range(20)), "Welcome").encode()
FAILURE = m.FailureRequest(0x42, 691, True, bytes(16), 3, "Authentication failure").encode()
CHALLENGE = m.ChallengeRequest(0x42, AUTHENTICATOR_CHALLENGE, b"NPS01").encode()
SEEDS = [CHALLENGE, SUCCESS, FAILURE]


@settings(max_examples=300)
@given(challenges | successes | failures)
def test_requests_roundtrip(request: m.ChallengeRequest | m.SuccessRequest | m.FailureRequest) -> None:
    assert m.decode_request(request.encode()) == request


@settings(max_examples=200)
@given(responses)
def test_responses_roundtrip(response: m.Response) -> None:
    assert m.decode_response(response.encode()) == response


@settings(max_examples=1000)
@given(st.binary(max_size=120))
@example(b"")
@example(b"\x03\x00\x00\x04")
@example(b"\x04\x00\x00\x04E=")
def test_decode_request_raises_only_decode_errors(data: bytes) -> None:
    with contextlib.suppress(EapDecodeError):
        m.decode_request(data)


@settings(max_examples=500)
@given(st.binary(max_size=120))
def test_decode_response_raises_only_decode_errors(data: bytes) -> None:
    with contextlib.suppress(EapDecodeError):
        m.decode_response(data)


@settings(max_examples=500)
@given(st.binary(max_size=120))
def test_decode_eap_raises_only_decode_errors(data: bytes) -> None:
    with contextlib.suppress(EapDecodeError):
        decode_eap(data)


@st.composite
def mutated(draw: st.DrawFn) -> bytes:
    """A valid request's Type-Data with bytes flipped, inserted or deleted, the MS-Length kept consistent
    half of the time (so the parsers behind the length check are reached)."""
    data = bytearray(draw(st.sampled_from(SEEDS)))
    for _ in range(draw(st.integers(1, 4))):
        action = draw(st.sampled_from(["flip", "insert", "delete", "ascii"]))
        at = draw(st.integers(0, len(data)))
        if action == "flip" and at < len(data):
            data[at] ^= draw(st.integers(1, 255))
        elif action == "insert":
            data[at:at] = draw(st.binary(min_size=1, max_size=4))
        elif action == "delete" and at < len(data):
            del data[at]
        elif action == "ascii" and at < len(data):
            data[at] = draw(st.sampled_from(b" =SEMRCVx0123456789abcdefABCDEF\x00"))
    if len(data) >= 4 and draw(st.booleans()):
        data[2:4] = len(data).to_bytes(2, "big")
    return bytes(data)


@settings(max_examples=1500, suppress_health_check=[HealthCheck.too_slow])
@given(mutated())
def test_mutated_requests_raise_only_decode_errors(data: bytes) -> None:
    with contextlib.suppress(EapDecodeError):
        m.decode_request(data)


@settings(max_examples=400, suppress_health_check=[HealthCheck.too_slow])
@given(mutated(), st.integers(0, 2))
def test_the_peer_raises_only_eap_errors(type_data: bytes, stage: int) -> None:
    """A fresh peer, or one waiting for the result, fed a mutated MS-CHAPv2 request in a well-formed EAP
    packet: it answers, or raises an EapError, and nothing else."""
    peer = EapPeer(USERNAME, m.MsChapV2Method(USERNAME, PASSWORD, rng=fixed_rng()))
    if stage:
        server = Authenticator({USERNAME: PASSWORD})
        peer.receive(server.challenge_request())
    with contextlib.suppress(EapError):
        peer.receive(encode_request(7, EapType.MSCHAPV2, type_data))


@settings(max_examples=400)
@given(st.binary(max_size=80))
def test_the_peer_raises_only_eap_errors_on_any_bytes(packet: bytes) -> None:
    peer = EapPeer(USERNAME, m.MsChapV2Method(USERNAME, PASSWORD, rng=fixed_rng()))
    with contextlib.suppress(EapError):
        peer.receive(packet)
