"""TLS 1.3 server-flight decryption against a real `openssl s_server` on loopback.

Independent oracle: s_server's `-keylogfile` writes the SERVER_HANDSHAKE_TRAFFIC_SECRET it derived (NSS key
log format); ours, derived from our X25519/P-256 share alone, must be byte-for-byte the same, and the
decrypted CertificateRequest must list the CA names s_server was given, the Certificate the server's own.
"""

from __future__ import annotations

import contextlib
import hashlib
from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec, x25519

from tests.tls.openssl_server import CA_NAME, SERVER_NAME, OpensslServer, Pki, exchange, make_pki
from vpndoctor.tls.audit import HelloJob, answer_complete, interpret_answer, prepare_hello
from vpndoctor.tls.errors import TlsDecodeError
from vpndoctor.tls.hello import GROUP_SECP256R1, GROUP_X25519, Version, parse_server_flight
from vpndoctor.tls.records import RecordBuffer
from vpndoctor.tls.tls13 import (
    SUITES13,
    Tls13Status,
    hkdf_expand_label,
    read_tls13_flight,
    server_handshake_secret,
)

X_KEY = x25519.X25519PrivateKey.from_private_bytes(bytes(range(1, 33)))
P_KEY = ec.derive_private_key(0x1234567890ABCDEF, ec.SECP256R1())
RANDOM = bytes(range(100, 132))


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    return make_pki(tmp_path_factory.mktemp("tls13-pki"))


def start(pki: Pki, *extra: str) -> Iterator[OpensslServer]:
    try:
        server = OpensslServer(pki, "ALL", list(extra))
    except RuntimeError as exc:
        pytest.fail(f"openssl s_server helper: {exc}")
    try:
        yield server
    finally:
        server.stop()


def talk(server: OpensslServer, suites: tuple[int, ...], groups: str | None = None) -> tuple[object, bytes]:
    job = HelloJob(0, "version", Version.TLS1_3, suites)
    prepared = prepare_hello(job, "sstp.test", RANDOM, X_KEY, P_KEY)
    data = exchange(server.port, prepared.wire, lambda d: answer_complete(prepared, d))
    return prepared, data


def secrets_from(keylog: Path) -> dict[str, str]:
    out = {}
    for line in keylog.read_text().splitlines():
        parts = line.split()
        if len(parts) == 3 and parts[1] == RANDOM.hex():
            out[parts[0]] = parts[2]
    return out


@pytest.mark.parametrize("suite", [0x1301, 0x1302, 0x1303])
def test_handshake_secret_matches_openssl_keylog(pki: Pki, tmp_path: Path, suite: int) -> None:
    keylog = tmp_path / "keys.log"
    names = {
        0x1301: "TLS_AES_128_GCM_SHA256",
        0x1302: "TLS_AES_256_GCM_SHA384",
        0x1303: "TLS_CHACHA20_POLY1305_SHA256",
    }
    for server in start(pki, "-keylogfile", str(keylog), "-ciphersuites", names[suite]):
        prepared, data = talk(server, (suite,))
    flight = parse_server_flight(data)
    hello = flight.server_hello
    assert hello is not None and hello.cipher_suite == suite
    # Recompute the secret the way read_tls13_flight does, from our private key and the transcript.
    sh = next(e for e in RecordBuffer().feed(data) if getattr(e, "msg_type", None) == 2)
    raw_sh = bytes([2]) + len(sh.body).to_bytes(3, "big") + sh.body  # type: ignore[union-attr]
    ks = hello.extension(51)
    assert ks is not None
    group = int.from_bytes(ks.data[:2], "big")
    peer = ks.data[4:]
    if group == GROUP_X25519:
        shared = X_KEY.exchange(x25519.X25519PublicKey.from_public_bytes(peer))
    else:
        assert group == GROUP_SECP256R1
        shared = P_KEY.exchange(ec.ECDH(), ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), peer))
    spec = SUITES13[suite]
    th = hashlib.new(spec.hash_name, prepared.client_hello_message + raw_sh).digest()  # type: ignore[attr-defined]
    ours = server_handshake_secret(spec.hash_name, shared, th)
    assert secrets_from(keylog)["SERVER_HANDSHAKE_TRAFFIC_SECRET"] == ours.hex()
    # ... and the whole flight decrypts up to the server's Finished.
    result = read_tls13_flight(data, prepared.client_hello_message, prepared.private_keys)  # type: ignore[attr-defined]
    assert result.status == Tls13Status.COMPLETE and result.handshake_types[-1] == 20
    assert x509.load_der_x509_certificate(result.certificates[0]).subject == SERVER_NAME


def test_certificate_request_and_ca_names_are_read(pki: Pki) -> None:
    for server in start(pki, "-Verify", "1", "-CAfile", str(pki.ca_pem)):
        prepared, data = talk(server, (0x1301, 0x1302))
    outcome, reason, detail = interpret_answer(prepared, data, "done")  # type: ignore[arg-type]
    assert reason is None and outcome is not None and outcome.decrypted, detail
    assert outcome.version == Version.TLS1_3
    assert outcome.certificate_request is not None
    assert outcome.certificate_request.certificate_authorities == (CA_NAME.rfc4514_string(),)
    assert outcome.certificate_request.signature_algorithms
    assert x509.load_der_x509_certificate(outcome.certificates[0]).subject == SERVER_NAME


def test_without_client_auth_there_is_no_request(pki: Pki) -> None:
    for server in start(pki):
        prepared, data = talk(server, (0x1301,))
    outcome, _, _ = interpret_answer(prepared, data, "done")  # type: ignore[arg-type]
    assert outcome is not None and outcome.decrypted and outcome.certificate_request is None


def test_p256_share_is_used_when_the_server_refuses_x25519(pki: Pki) -> None:
    for server in start(pki, "-groups", "P-256"):
        prepared, data = talk(server, (0x1301,))
    outcome, _, detail = interpret_answer(prepared, data, "done")  # type: ignore[arg-type]
    assert outcome is not None and outcome.decrypted, detail


def test_tampered_record_is_a_decode_error(pki: Pki) -> None:
    for server in start(pki):
        prepared, data = talk(server, (0x1301,))
    flipped = bytearray(data)
    flipped[-5] ^= 0x01  # inside the last encrypted record (its tag)
    with pytest.raises(TlsDecodeError, match="decrypts"):
        read_tls13_flight(bytes(flipped), prepared.client_hello_message, prepared.private_keys)  # type: ignore[attr-defined]
    for cut in range(0, len(data), 97):  # every truncation is INCOMPLETE or a decode error, never a crash
        with contextlib.suppress(TlsDecodeError):
            read_tls13_flight(data[:cut], prepared.client_hello_message, prepared.private_keys)  # type: ignore[attr-defined]


def test_rfc8446_expand_label_shape() -> None:
    # RFC 8448 3 (simple 1-RTT): derive-secret "derived" from the early secret of an all-zero PSK-less run.
    early = bytes.fromhex("33ad0a1c607ec03b09e6cd9893680ce210adf300aa1f2660e1b22e10f170f92a")
    empty = hashlib.sha256(b"").digest()
    derived = hkdf_expand_label("sha256", early, "derived", empty, 32)
    assert derived.hex() == "6f2615a108c702c5678f54fc9dbab69716c076189c48250cebeac3576c3611ba"
