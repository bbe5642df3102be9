"""No password, NT hash or MSK in any repr, event, exception message or failure reason, on every path the
peer takes: success, E=691, a wrong S=, a too-early EAP-Success, malformed packets and bad arguments."""

from __future__ import annotations

import pytest

from tests.eap import fixed_rng
from tests.eap.authenticator import Authenticator
from vpndoctor.eap import mschapv2 as m
from vpndoctor.eap.errors import EapError
from vpndoctor.eap.packets import encode_request, encode_success
from vpndoctor.eap.peer import EapPeer, EapStep
from vpndoctor.ike.constants import EapType

USER = "alice"
SECRET = "Tr0ub4dor&3-Pässwörd"


def forms(secret: bytes) -> list[str]:
    """Every way a byte string could show up in text."""
    return [secret.hex(), secret.hex().upper(), repr(secret)[2:-1], secret.decode("latin-1")]


def secret_texts(peer: EapPeer) -> list[str]:
    nt_hash = m.nt_password_hash(SECRET)
    texts = [SECRET, SECRET.lower(), SECRET.encode("utf-16-le").decode("latin-1")]
    texts += forms(nt_hash) + forms(m.hash_nt_password_hash(nt_hash))
    key = peer.method.msk() or _msk_of(peer)
    if key is not None:
        texts += forms(key[:32]) + forms(key[:16]) + forms(key[16:32])
    return [t for t in texts if len(t) >= 8]


def _msk_of(peer: EapPeer) -> bytes | None:
    exchange = getattr(peer.method, "_exchange", None)
    return None if exchange is None else exchange.msk


def assert_clean(peer: EapPeer, *texts: str) -> None:
    everything = [repr(peer), repr(peer.method), str(peer.failure_reason), str(peer.method.failure_reason)]
    everything += [repr(getattr(peer.method, "_exchange", None))]
    everything += list(texts)
    for secret in secret_texts(peer):
        for text in everything:
            assert secret not in text, (secret, text)


def make_peer() -> EapPeer:
    return EapPeer(USER, m.MsChapV2Method(USER, SECRET, rng=fixed_rng()))


def drive(peer: EapPeer, server: Authenticator, first: bytes) -> list[str]:
    texts: list[str] = []
    packet = first
    while True:
        try:
            step: EapStep = peer.receive(packet)
        except EapError as exc:
            texts += [str(exc), repr(exc)]
            return texts
        texts += [repr(step), *(repr(e) for e in step.events), *(str(e) for e in step.events)]
        if step.reply is None:
            return texts
        packet = server.handle(step.reply)


def test_success_path() -> None:
    server = Authenticator({USER: SECRET})
    peer = make_peer()
    texts = drive(peer, server, server.identity_request())
    assert peer.msk is not None
    assert_clean(peer, *texts)


def test_failure_path() -> None:
    server = Authenticator({USER: SECRET}, failure=(691, True))
    peer = make_peer()
    assert_clean(peer, *drive(peer, server, server.challenge_request()))


def test_wrong_authenticator_and_early_success() -> None:
    server = Authenticator({USER: SECRET}, tamper_s=True)
    peer = make_peer()
    texts = drive(peer, server, server.challenge_request())
    texts += drive(peer, server, encode_success(server.identifier))
    assert_clean(peer, *texts)


@pytest.mark.parametrize(
    "type_data",
    [b"\x03\x42\x00\x06S=", b"\x04\x42\x00\x08E=x ", b"\x01\x42\xff\xff\x10", b"\x09"],
)
def test_malformed_paths(type_data: bytes) -> None:
    server = Authenticator({USER: SECRET})
    peer = make_peer()
    texts = drive(peer, server, server.challenge_request())  # up to the EAP-Success, for a real MSK
    fresh = make_peer()
    fresh.receive(server.challenge_request())
    texts += drive(fresh, server, encode_request(9, EapType.MSCHAPV2, type_data))
    assert_clean(peer, *texts)
    assert_clean(fresh, *texts)


def test_argument_errors_do_not_quote_the_password() -> None:
    long_secret = "S3cr3t!" * 40
    with pytest.raises(ValueError) as info:
        m.MsChapV2Method(USER, long_secret, rng=fixed_rng())
    assert "S3cr3t" not in str(info.value)
    with pytest.raises(ValueError) as info2:
        m.MsChapV2Method.with_nt_hash(USER, m.nt_password_hash(SECRET)[:15], rng=fixed_rng())
    assert m.nt_password_hash(SECRET)[:15].hex() not in str(info2.value)


def test_the_method_keeps_no_plaintext_password() -> None:
    method = m.MsChapV2Method(USER, SECRET, rng=fixed_rng())
    values = [repr(v) for v in vars(method).values()]
    assert not any(SECRET in v or SECRET.encode("utf-16-le").hex() in v for v in values)
