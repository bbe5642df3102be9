"""The EAP peer with EAP-MSCHAPv2 run against the in-test authenticator: success with and without an Identity
round, the Failure paths (E=691, E=648 Change-Password, R=1), a wrong S=, an EAP-Success too early, Nak and
Notification, and the exact Response bytes for the RFC 2759 example."""

from __future__ import annotations

import pytest

from tests.eap import (
    AUTHENTICATOR_CHALLENGE,
    NT_RESPONSE,
    PASSWORD,
    PASSWORD_HASH,
    PEER_CHALLENGE,
    USERNAME,
    fixed_rng,
)
from tests.eap.authenticator import Authenticator
from vpndoctor.eap import mschapv2 as m
from vpndoctor.eap.errors import EapDecodeError, EapError, EapProtocolError
from vpndoctor.eap.packets import encode_failure, encode_request, encode_response, encode_success
from vpndoctor.eap.peer import (
    EapFailed,
    EapIdentityRequested,
    EapMethodRefused,
    EapNotification,
    EapPeer,
    EapPeerState,
    EapStep,
    EapSucceeded,
)
from vpndoctor.ike.constants import EapCode, EapType
from vpndoctor.ike.payloads import EapPayload


def make_peer(username: str = USERNAME, password: str = PASSWORD, identity: str | None = None) -> EapPeer:
    method = m.MsChapV2Method(username, password, rng=fixed_rng())
    return EapPeer(username if identity is None else identity, method)


def run(peer: EapPeer, server: Authenticator, first: bytes) -> list[EapStep]:
    """Feed the server's packets to the peer until the peer has nothing to send."""
    steps: list[EapStep] = []
    packet = first
    while True:
        step = peer.receive(packet)
        steps.append(step)
        if step.reply is None:
            return steps
        packet = server.handle(step.reply)


def events(steps: list[EapStep]) -> list[object]:
    return [event for step in steps for event in step.events]


def test_full_success_with_identity_round() -> None:
    server = Authenticator({USERNAME: PASSWORD})
    peer = make_peer()
    steps = run(peer, server, server.identity_request())
    assert server.log == ["identity", "response", "terse-3"]
    assert server.received_identity == b"User"
    kinds = [type(e) for e in events(steps)]
    assert kinds == [
        EapIdentityRequested,
        m.MsChapV2Challenge,
        m.MsChapV2ServerAuthenticated,
        EapSucceeded,
    ]
    challenge = events(steps)[1]
    assert isinstance(challenge, m.MsChapV2Challenge)
    assert challenge.server_name == "NPS01" and challenge.mschapv2_id == 0x42
    authenticated = events(steps)[2]
    assert isinstance(authenticated, m.MsChapV2ServerAuthenticated)
    assert authenticated.message == "Welcome to NPS"
    assert peer.state is EapPeerState.SUCCEEDED
    assert peer.msk is not None and peer.msk == server.msk and len(peer.msk) == 64
    succeeded = events(steps)[-1]
    assert isinstance(succeeded, EapSucceeded) and succeeded.msk_bytes == 64
    assert succeeded.eap_type == EapType.MSCHAPV2


def test_challenge_without_identity_round_as_strongswan_does() -> None:
    # strongSwan takes the EAP identity from IDi unless told to ask, and ends its Success message with a NUL.
    server = Authenticator({USERNAME: PASSWORD}, name=b"strongSwan", nul_terminated=True)
    server.success_message = "Welcome2strongSwan"
    peer = make_peer()
    steps = run(peer, server, server.challenge_request())
    assert peer.state is EapPeerState.SUCCEEDED and peer.msk == server.msk
    authenticated = [e for e in events(steps) if isinstance(e, m.MsChapV2ServerAuthenticated)]
    assert authenticated == [m.MsChapV2ServerAuthenticated("Welcome2strongSwan")]


def test_response_bytes_for_the_rfc2759_example() -> None:
    # The EAP-Response Android's IKE library tests expect for RFC 2759 §9.2's values (MS-CHAPv2-ID 0x42).
    server = Authenticator({USERNAME: PASSWORD}, challenge=AUTHENTICATOR_CHALLENGE, identifier=0x10)
    peer = make_peer()
    step = peer.receive(server.challenge_request())
    expected = bytes.fromhex(
        "0210003F"  # Response, identifier, length 63
        "1A0242003A31"  # EAP-MSCHAPv2, Response, MS-CHAPv2-ID, MS-Length 58, Value-Size 49
        + PEER_CHALLENGE.hex()
        + "00" * 8
        + NT_RESPONSE.hex()
        + "00"  # flags
        + b"User".hex()
    )
    assert step.reply == expected
    payload = step.reply_payload()
    assert isinstance(payload, EapPayload) and payload.code == EapCode.RESPONSE
    assert payload.eap_type == EapType.MSCHAPV2 and payload.identifier == 0x10
    # and the MSK is the one RFC 3079's example gives
    step = peer.receive(server.handle(expected))
    assert step.reply == bytes.fromhex("021100061A03")  # the one-octet Success response
    assert peer.receive(server.handle(step.reply)).reply is None
    assert peer.msk == m.msk(PASSWORD_HASH, NT_RESPONSE)


def test_domain_user_sends_the_whole_name_and_hashes_the_user_part() -> None:
    server = Authenticator({USERNAME: PASSWORD}, challenge=AUTHENTICATOR_CHALLENGE)
    peer = make_peer(username="CONTOSO\\User")
    step = peer.receive(server.challenge_request())
    assert step.reply is not None
    response = m.decode_response(step.reply[5:])
    assert isinstance(response, m.Response)
    assert response.name == b"CONTOSO\\User" and response.nt_response == NT_RESPONSE
    run(peer, server, server.handle(step.reply))
    assert peer.state is EapPeerState.SUCCEEDED


def test_failure_691_is_answered_and_reported() -> None:
    server = Authenticator({USERNAME: "another password"})
    peer = make_peer()
    steps = run(peer, server, server.challenge_request())
    failure = [e for e in events(steps) if isinstance(e, m.MsChapV2Failure)]
    assert len(failure) == 1
    assert failure[0].error == 691 and failure[0].error_name == "ERROR_AUTHENTICATION_FAILURE"
    assert not failure[0].retriable and failure[0].version == 3
    assert failure[0].message == "Authentication failure"
    # the Failure response is the OpCode alone, and the server then sends EAP-Failure
    assert server.log == ["response", "terse-4"]
    assert steps[1].reply == encode_response(2, EapType.MSCHAPV2, b"\x04")
    assert isinstance(steps[-1].events[0], EapFailed)
    assert "691" in steps[-1].events[0].reason
    assert peer.state is EapPeerState.FAILED and peer.msk is None
    assert peer.failure_reason is not None and "ERROR_AUTHENTICATION_FAILURE" in peer.failure_reason


def test_expired_password_says_change_password_is_not_supported() -> None:
    server = Authenticator({USERNAME: PASSWORD}, failure=(648, True))
    peer = make_peer()
    steps = run(peer, server, server.challenge_request())
    failure = next(e for e in events(steps) if isinstance(e, m.MsChapV2Failure))
    assert failure.error == 648 and failure.error_name == "ERROR_PASSWD_EXPIRED"
    assert "Change-Password" in failure.explanation and "not support" in failure.explanation
    assert peer.state is EapPeerState.FAILED


def test_retriable_failure_is_not_retried() -> None:
    server = Authenticator({USERNAME: PASSWORD}, failure=(691, True))
    peer = make_peer()
    steps = run(peer, server, server.challenge_request())
    failure = next(e for e in events(steps) if isinstance(e, m.MsChapV2Failure))
    assert failure.retriable and "does not retry" in failure.explanation
    assert server.log == ["response", "terse-4"]


def test_wrong_authenticator_response_is_rejected() -> None:
    server = Authenticator({USERNAME: PASSWORD}, tamper_s=True)
    peer = make_peer()
    steps = run(peer, server, server.challenge_request())
    assert steps[-1].reply is None  # no Success response: RFC 2759 §5, the peer ends the session
    assert isinstance(steps[-1].events[0], m.MsChapV2ServerRejected)
    assert peer.method.failure_reason is not None and "S=" in peer.method.failure_reason
    assert peer.msk is None
    # A server that then claims EAP-Success is refused.
    with pytest.raises(EapProtocolError, match="has not proved"):
        peer.receive(encode_success(9))
    assert peer.state is EapPeerState.FAILED and peer.msk is None


def test_early_eap_success_is_refused() -> None:
    peer = make_peer()
    with pytest.raises(EapProtocolError, match="before EAP-MSCHAPV2 finished"):
        peer.receive(encode_success(1))
    assert peer.state is EapPeerState.FAILED
    with pytest.raises(EapProtocolError, match="after the conversation"):
        peer.receive(encode_failure(2))


def test_eap_failure_before_the_method() -> None:
    peer = make_peer()
    step = peer.receive(encode_failure(1))
    assert step.reply is None and step.events == (EapFailed("EAP-Failure before the method finished"),)
    assert peer.state is EapPeerState.FAILED


def test_eap_failure_after_the_method_succeeded() -> None:
    server = Authenticator({USERNAME: PASSWORD})
    peer = make_peer()
    step = peer.receive(server.challenge_request())
    assert step.reply is not None
    step = peer.receive(server.handle(step.reply))
    assert peer.method.succeeded
    step = peer.receive(encode_failure(server.identifier))
    assert step.events == (EapFailed("EAP-Failure after the method succeeded"),)
    assert peer.msk is None


def test_packets_after_success_change_nothing() -> None:
    server = Authenticator({USERNAME: PASSWORD})
    peer = make_peer()
    run(peer, server, server.challenge_request())
    msk = peer.msk
    with pytest.raises(EapProtocolError, match="after the conversation succeeded"):
        peer.receive(server.challenge_request())
    assert peer.state is EapPeerState.SUCCEEDED and peer.msk == msk


def test_other_method_gets_a_legacy_nak() -> None:
    server = Authenticator({USERNAME: PASSWORD})
    peer = make_peer()
    step = peer.receive(encode_request(7, EapType.TLS, b"\x20"))  # EAP-TLS Start
    assert step.reply == encode_response(7, EapType.NAK, bytes([EapType.MSCHAPV2]))
    assert step.events == (EapMethodRefused(EapType.TLS, "TLS", EapType.MSCHAPV2, "MSCHAPV2"),)
    run(peer, server, server.challenge_request())
    assert peer.state is EapPeerState.SUCCEEDED


def test_notification_is_acknowledged() -> None:
    peer = make_peer()
    step = peer.receive(encode_request(3, EapType.NOTIFICATION, b"Password expires in 3 days"))
    assert step.reply == encode_response(3, EapType.NOTIFICATION, b"")
    assert step.events == (EapNotification("Password expires in 3 days"),)
    assert peer.state is EapPeerState.RUNNING


def test_identity_prompt_and_options() -> None:
    peer = make_peer(identity="user@contoso.com")
    step = peer.receive(encode_request(1, EapType.IDENTITY, b"Hello\x00networkid=x"))
    assert step.reply == encode_response(1, EapType.IDENTITY, b"user@contoso.com")
    assert step.events == (EapIdentityRequested("Hello"),)


def test_identity_in_the_middle_of_the_method_is_refused() -> None:
    server = Authenticator({USERNAME: PASSWORD})
    peer = make_peer()
    peer.receive(server.challenge_request())
    with pytest.raises(EapProtocolError, match="in the middle of"):
        peer.receive(encode_request(5, EapType.IDENTITY, b""))
    assert peer.state is EapPeerState.FAILED


def test_unexpected_opcodes_for_the_state() -> None:
    server = Authenticator({USERNAME: PASSWORD})
    success = encode_request(
        1, EapType.MSCHAPV2, m.SuccessRequest(0, bytes(20), "").encode()
    )  # before any Challenge
    peer = make_peer()
    with pytest.raises(EapProtocolError, match="unexpected MS-CHAPv2 Success request"):
        peer.receive(success)
    peer = make_peer()
    peer.receive(server.challenge_request())
    with pytest.raises(EapProtocolError, match="unexpected MS-CHAPv2 Challenge request"):
        peer.receive(server.challenge_request())


def test_a_response_from_the_server_is_refused() -> None:
    peer = make_peer()
    with pytest.raises(EapProtocolError, match="not RESPONSE"):
        peer.receive(encode_response(1, EapType.IDENTITY, b"x"))


def test_nak_request_is_a_decode_error() -> None:
    peer = make_peer()
    with pytest.raises(EapDecodeError):
        peer.receive(encode_request(1, EapType.NAK, b"\x1a"))
    assert peer.state is EapPeerState.FAILED


def test_errors_share_one_base() -> None:
    assert issubclass(EapDecodeError, EapError) and issubclass(EapProtocolError, EapError)


def test_rng_must_give_16_bytes() -> None:
    server = Authenticator({USERNAME: PASSWORD})
    peer = EapPeer(USERNAME, m.MsChapV2Method(USERNAME, PASSWORD, rng=lambda n: b"\x00" * (n - 1)))
    with pytest.raises(ValueError):
        peer.receive(server.challenge_request())


def test_method_from_nt_hash() -> None:
    server = Authenticator({USERNAME: PASSWORD})
    peer = EapPeer(USERNAME, m.MsChapV2Method.with_nt_hash(USERNAME, PASSWORD_HASH, rng=fixed_rng()))
    run(peer, server, server.challenge_request())
    assert peer.state is EapPeerState.SUCCEEDED and peer.msk == server.msk
    with pytest.raises(ValueError):
        m.MsChapV2Method.with_nt_hash(USERNAME, PASSWORD_HASH[:-1], rng=fixed_rng())


def test_long_names_are_refused() -> None:
    with pytest.raises(ValueError):
        m.MsChapV2Method("u" * 257, PASSWORD, rng=fixed_rng())
    with pytest.raises(ValueError):
        EapPeer("u" * 254, m.MsChapV2Method(USERNAME, PASSWORD, rng=fixed_rng()))
