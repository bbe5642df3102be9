"""net.tls_stream against a real OpenSSL server on loopback (Python's ssl server side): SNI sent or not,
the CertificateRequest seen in TLS 1.2 and 1.3, a client certificate presented, the chain reported, version
and cipher control, and local mistakes as UsageErrors."""

from __future__ import annotations

import asyncio
import socket
import ssl
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography import x509

from tests.sstp.nginx_server import Pki, make_pki
from vpndoctor.errors import UsageError
from vpndoctor.net.tls_stream import TlsClientConfig, TlsStream, TlsStreamError, build_context


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    return make_pki(tmp_path_factory.mktemp("pki"), "da.test")


class Server:
    """Accepts TLS connections, records SNI and the client's certificate, echoes one line."""

    def __init__(self, pki: Pki, verify: ssl.VerifyMode, max_version: ssl.TLSVersion) -> None:
        self.ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self.ctx.load_cert_chain(pki.server_cert, pki.server_key)
        self.ctx.maximum_version = max_version
        self.ctx.verify_mode = verify
        self.ctx.load_verify_locations(pki.ca)
        self.ctx.sni_callback = self._sni
        self.sni: list[str | None] = []
        self.peer_certs: list[bytes | None] = []
        self.stopped = threading.Event()
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.port: int = self.sock.getsockname()[1]
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _sni(self, _sock: ssl.SSLObject, name: str | None, _ctx: ssl.SSLContext) -> None:
        self.sni.append(name)

    def _serve(self) -> None:
        self.sock.settimeout(0.1)
        while not self.stopped.is_set():
            try:
                raw, _ = self.sock.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            try:
                raw.settimeout(5)
                with self.ctx.wrap_socket(raw, server_side=True) as conn:
                    self.peer_certs.append(conn.getpeercert(binary_form=True))
                    conn.sendall(conn.recv(100))
            except (OSError, ssl.SSLError):
                continue

    def stop(self) -> None:
        self.stopped.set()
        self.thread.join(timeout=5)
        self.sock.close()


@pytest.fixture
def server(request: pytest.FixtureRequest, pki: Pki) -> Iterator[Server]:
    verify, version = request.param
    srv = Server(pki, verify, version)
    yield srv
    srv.stop()


async def echo(port: int, config: TlsClientConfig) -> TlsStream:
    stream = await TlsStream.connect("127.0.0.1", port, config, timeout_s=5)
    await stream.send(b"ping\n", timeout_s=5)
    assert await stream.recv(timeout_s=5) == b"ping\n"
    await stream.close()
    return stream


BOTH = [(ssl.CERT_NONE, ssl.TLSVersion.TLSv1_2), (ssl.CERT_NONE, ssl.TLSVersion.TLSv1_3)]


@pytest.mark.parametrize("server", BOTH, indirect=True, ids=["tls12", "tls13"])
def test_sni_chain_and_no_certificate_request(server: Server, pki: Pki) -> None:
    s = asyncio.run(echo(server.port, TlsClientConfig(server_name="da.test")))
    asyncio.run(echo(server.port, TlsClientConfig(server_name="127.0.0.1")))  # an address: no SNI
    asyncio.run(echo(server.port, TlsClientConfig()))
    assert server.sni == ["da.test", None, None]
    assert s.info.certificate_requested is False
    chain = [x509.load_der_x509_certificate(d) for d in s.info.peer_chain_der]
    assert [c.subject.rfc4514_string() for c in chain] == ["CN=da.test", "CN=DirectAccess CA"]
    assert s.info.version in ("TLSv1.2", "TLSv1.3") and s.info.cipher and s.bytes_in == 5


@pytest.mark.parametrize(
    "server",
    [(ssl.CERT_OPTIONAL, ssl.TLSVersion.TLSv1_2), (ssl.CERT_OPTIONAL, ssl.TLSVersion.TLSv1_3)],
    indirect=True,
    ids=["tls12", "tls13"],
)
def test_certificate_request_seen_and_client_cert_sent(server: Server, pki: Pki) -> None:
    bare = asyncio.run(echo(server.port, TlsClientConfig(server_name="da.test")))
    assert bare.info.certificate_requested is True  # in TLS 1.3 it is encrypted: seen by the msg callback
    config = TlsClientConfig(
        server_name="da.test", client_cert=str(pki.client_cert), client_key=str(pki.client_key)
    )
    asyncio.run(echo(server.port, config))
    assert server.peer_certs[0] is None
    sent = server.peer_certs[1]
    assert (
        sent is not None
        and "client1.corp.test" in x509.load_der_x509_certificate(sent).subject.rfc4514_string()
    )


@pytest.mark.parametrize("server", [(ssl.CERT_REQUIRED, ssl.TLSVersion.TLSv1_2)], indirect=True)
def test_required_certificate_refused_in_handshake(server: Server) -> None:
    with pytest.raises(TlsStreamError) as err:
        asyncio.run(echo(server.port, TlsClientConfig(server_name="da.test")))
    assert err.value.stage in ("handshake", "io") and "\n" not in str(err.value)
    if err.value.stage == "handshake":
        assert err.value.certificate_requested is True


@pytest.mark.parametrize("server", [(ssl.CERT_NONE, ssl.TLSVersion.TLSv1_3)], indirect=True)
def test_version_and_cipher_control(server: Server) -> None:
    s = asyncio.run(
        echo(server.port, TlsClientConfig(max_version="TLSv1.2", ciphers="ECDHE-RSA-AES128-GCM-SHA256"))
    )
    assert s.info.version == "TLSv1.2" and s.info.cipher == "ECDHE-RSA-AES128-GCM-SHA256"


def test_local_mistakes_are_usage_errors(pki: Pki, tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="selects no cipher"):
        build_context(TlsClientConfig(ciphers="NO-SUCH-CIPHER"))
    with pytest.raises(UsageError, match="unknown TLS version"):
        build_context(TlsClientConfig(max_version="TLSv9"))
    with pytest.raises(UsageError, match="no such file"):
        build_context(TlsClientConfig(client_cert=str(tmp_path / "missing.pem")))
    with pytest.raises(UsageError, match="cannot load"):
        build_context(TlsClientConfig(client_cert=str(pki.client_cert), client_key=str(pki.stranger_key)))
    with pytest.raises(UsageError, match="needs --client-cert"):
        build_context(TlsClientConfig(client_key=str(pki.client_key)))
