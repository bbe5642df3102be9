"""EAP-TLS and PEAP, peer side, without a network: the TLS 1.2 PRF and RFC 5216's key material against
OpenSSL's own TLS1-PRF (`openssl kdf`), the fragmentation rules, a whole EAP-TLS and PEAP-MSCHAPv2
conversation against an in-memory server built on the `ssl` module's server side (its MSK derived from its
own key log), and hostile input. Interoperability with a real EAP server (FreeRADIUS behind strongSwan) is
tests/lab/test_connect_eap.py."""

from __future__ import annotations

import os
import random
import shutil
import ssl
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pytest

from tests.eap import fixed_rng
from tests.eap.authenticator import Authenticator
from vpndoctor.eap import peap as P
from vpndoctor.eap.errors import EapDecodeError, EapError
from vpndoctor.eap.mschapv2 import MsChapV2Method
from vpndoctor.eap.packets import decode_eap, encode_failure, encode_request, encode_success
from vpndoctor.eap.peap import PeapMethod, PeapResult
from vpndoctor.eap.peer import EapPeer, EapPeerState
from vpndoctor.eap.tls import EapTlsMethod
from vpndoctor.eap.tlslayer import (
    FLAG_LENGTH,
    FLAG_MORE,
    FLAG_START,
    TlsClient,
    TlsFramer,
    TlsServerCertificate,
    key_material,
    tls_prf,
)
from vpndoctor.ike.constants import EapCode, EapType
from vpndoctor.lab.pki import make_connect_pki, make_lab_pki


def openssl_prf(secret: bytes, label: bytes, seed: bytes, n: int, digest: str) -> bytes:
    openssl = shutil.which("openssl")
    if openssl is None:
        pytest.fail("openssl not installed")
    proc = subprocess.run(
        [openssl, "kdf", "-keylen", str(n), "-kdfopt", f"digest:{digest}", "-kdfopt",
         f"hexsecret:{secret.hex()}", "-kdfopt", f"hexseed:{(label + seed).hex()}", "TLS1-PRF"],
        capture_output=True, text=True, check=True, timeout=30,
    )
    return bytes.fromhex(proc.stdout.strip().replace(":", ""))


@pytest.mark.parametrize("digest", ["SHA256", "SHA384"])
def test_tls_prf_and_rfc5216_key_material_match_openssl(digest: str) -> None:
    rnd = random.Random(5216)
    master = rnd.randbytes(48)
    client_random, server_random = rnd.randbytes(32), rnd.randbytes(32)
    sha384 = digest == "SHA384"
    want = openssl_prf(master, b"client EAP encryption", client_random + server_random, 128, digest)
    assert key_material(master, client_random, server_random, sha384=sha384) == want
    assert tls_prf(b"k", b"label", b"seed", 100, sha384=sha384) == openssl_prf(
        b"k", b"label", b"seed", 100, digest
    )


# ---- framing -------------------------------------------------------------------------------------------


def test_fragments_out_carry_l_on_the_first_and_m_on_all_but_the_last() -> None:
    framer = TlsFramer(fragment_bytes=10)
    first = framer.send(bytes(range(25)))
    assert first[0] == FLAG_LENGTH | FLAG_MORE and int.from_bytes(first[1:5], "big") == 25
    assert first[5:] == bytes(range(10))
    second = framer.next_fragment()
    assert second[0] == FLAG_MORE and second[1:] == bytes(range(10, 20))
    last = framer.next_fragment()
    assert last[0] == 0 and last[1:] == bytes(range(20, 25)) and not framer.sending


def test_fragments_in_are_reassembled_and_checked() -> None:
    framer = TlsFramer()
    assert framer.parse(bytes([FLAG_LENGTH | FLAG_MORE]) + (6).to_bytes(4, "big") + b"abc") == (
        FLAG_LENGTH | FLAG_MORE,
        None,
    )
    assert framer.parse(b"\x00def") == (0, b"abcdef")
    with pytest.raises(EapDecodeError):  # L says 10, 3 arrive
        TlsFramer().parse(bytes([FLAG_LENGTH]) + (10).to_bytes(4, "big") + b"abc")
    with pytest.raises(EapDecodeError):  # M without L on the first fragment
        TlsFramer().parse(bytes([FLAG_MORE]) + b"abc")
    with pytest.raises(EapDecodeError):  # more than we ever accept
        TlsFramer().parse(bytes([FLAG_LENGTH | FLAG_MORE]) + (1 << 20).to_bytes(4, "big") + b"a")
    with pytest.raises(EapDecodeError):
        TlsFramer().parse(b"")


# ---- an in-memory EAP server ----------------------------------------------------------------------------


@dataclass
class Pki:
    ca: bytes
    server_chain: Path
    server_key: Path
    user_chain: bytes
    user_key: bytes
    foreign_ca: bytes


@pytest.fixture(scope="module")
def pki() -> Iterator[Pki]:
    with tempfile.TemporaryDirectory() as tmp:
        now = datetime.now(UTC)
        lab = make_lab_pki("vpn.example", now=now, key_bits=2048)
        c = make_connect_pki(lab, now=now, user="dave@example", device="d.example", nps_name="nps.example")
        files = c.write(Path(tmp))
        yield Pki(
            ca=lab.ca_cert_pem,
            server_chain=files.nps_chain,
            server_key=files.nps_key,
            user_chain=c.user_cert_pem,
            user_key=c.user_key_pem,
            foreign_ca=c.foreign_ca_cert_pem,
        )


class TlsServer:
    """EAP-TLS or PEAP(v0) on the server side, over `ssl` with MemoryBIOs: small fragments both ways, the
    MSK from its own key log."""

    def __init__(self, pki: Pki, eap_type: int, *, require_cert: bool, fragment: int = 300) -> None:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.maximum_version = ctx.minimum_version = ssl.TLSVersion.TLSv1_2
        ctx.load_cert_chain(pki.server_chain, pki.server_key)
        if require_cert:
            ctx.verify_mode = ssl.CERT_REQUIRED
            ctx.load_verify_locations(cadata=pki.ca.decode())
        self._log = tempfile.NamedTemporaryFile(delete=False)  # noqa: SIM115
        ctx.keylog_filename = self._log.name
        self.inb, self.outb = ssl.MemoryBIO(), ssl.MemoryBIO()
        self.ssl = ctx.wrap_bio(self.inb, self.outb, server_side=True)
        self.eap_type, self.fragment, self.id = eap_type, fragment, 0
        self.pending = b""
        self.buffer = b""
        self.client_random = self.server_random = b""
        self.established = False
        self.alert = False

    def request(self, data: bytes, flags: int = 0) -> bytes:
        self.id = (self.id + 1) % 256
        return encode_request(self.id, self.eap_type, bytes([flags]) + data)

    def start(self) -> bytes:
        return self.request(b"", FLAG_START)

    def _send(self, data: bytes) -> bytes:
        self.pending = data
        self._first = True
        return self._next()

    def _next(self) -> bytes:
        chunk, self.pending = self.pending[: self.fragment], self.pending[self.fragment :]
        flags, header = 0, b""
        if self.pending:
            flags |= FLAG_MORE
            if self._first:
                flags |= FLAG_LENGTH
                header = (len(chunk) + len(self.pending)).to_bytes(4, "big")
        self._first = False
        return self.request(header + chunk, flags)

    def handle(self, response: bytes) -> bytes | None:
        """The next request, or None when the handshake is over (the caller says what follows)."""
        eap = decode_eap(response)
        assert eap.code == EapCode.RESPONSE and eap.eap_type == self.eap_type
        flags, data = eap.data[0], eap.data[1:]
        if flags & FLAG_LENGTH:
            data = data[4:]
        if not data:
            if self.pending:
                return self._next()
            return None  # the ACK of our last flight
        self.buffer += data
        if flags & FLAG_MORE:
            return self.request(b"")
        message, self.buffer = self.buffer, b""
        if not self.client_random:
            self.client_random = message[11:43]
        self.inb.write(message)
        try:
            self.ssl.do_handshake()
            self.established = True
        except ssl.SSLWantReadError:
            pass
        except ssl.SSLError:
            self.alert = True
        out = self.outb.read()
        if not self.server_random and out:
            self.server_random = out[11:43]
        return self._send(out) if out else None

    def msk(self) -> bytes:
        line = next(
            ln for ln in Path(self._log.name).read_text().splitlines()
            if ln.startswith("CLIENT_RANDOM " + self.client_random.hex())
        )
        master = bytes.fromhex(line.split()[2])
        sha384 = (self.ssl.cipher() or ("",))[0].endswith("SHA384")
        return key_material(master, self.client_random, self.server_random, sha384=sha384)[:64]

    def close(self) -> None:
        os.unlink(self._log.name)


def run_tls_phase(peer: EapPeer, server: TlsServer) -> list[object]:
    events: list[object] = []
    request: bytes | None = server.start()
    while request is not None:
        step = peer.receive(request)
        events += step.events
        if step.reply is None:
            return events
        request = server.handle(step.reply)
    return events


def tls_client(
    pki: Pki, *, cert: bool, anchors: bytes | None = None, names: tuple[str, ...] = ()
) -> TlsClient:
    return TlsClient(
        anchors_pem=anchors or pki.ca,
        chain_pem=pki.user_chain if cert else None,
        key_pem=pki.user_key if cert else None,
        server_names=names,
    )


def test_eap_tls_conversation_and_msk(pki: Pki) -> None:
    server = TlsServer(pki, EapType.TLS, require_cert=True)
    method = EapTlsMethod(tls_client(pki, cert=True), fragment_bytes=200)
    peer = EapPeer("dave@example", method)
    events = run_tls_phase(peer, server)
    assert server.established and method.succeeded
    certs = [e for e in events if isinstance(e, TlsServerCertificate)]
    assert certs and certs[0].verified and certs[0].subject == "CN=nps.example"
    step = peer.receive(encode_success(server.id))
    assert peer.state is EapPeerState.SUCCEEDED and step.reply is None
    assert peer.msk == server.msk() and len(peer.msk or b"") == 64
    assert "CLIENT_RANDOM" not in repr(method) and (peer.msk or b"").hex() not in repr(peer)
    server.close()


def test_an_untrusted_server_gets_our_alert_and_no_success(pki: Pki) -> None:
    server = TlsServer(pki, EapType.TLS, require_cert=True)
    method = EapTlsMethod(tls_client(pki, cert=True, anchors=pki.foreign_ca))
    peer = EapPeer("dave@example", method)
    events = run_tls_phase(peer, server)
    certs = [e for e in events if isinstance(e, TlsServerCertificate)]
    assert certs and not certs[0].verified and "not trusted" in (certs[0].reason or "")
    assert server.alert and not method.succeeded
    with pytest.raises(EapError):  # a forged EAP-Success after that is refused
        peer.receive(encode_success(server.id))
    server.close()


def test_a_server_name_we_may_not_connect_to_ends_the_handshake_before_our_finished(pki: Pki) -> None:
    server = TlsServer(pki, EapType.TLS, require_cert=True)
    method = EapTlsMethod(tls_client(pki, cert=True, names=("other.example",)))
    run_tls_phase(EapPeer("dave@example", method), server)
    assert not server.established and server.alert
    assert "other.example" in (method.failure_reason or "")
    server.close()


def test_peap_mschapv2_with_and_without_crypto_binding(pki: Pki) -> None:
    for binding in (False, True):
        server = TlsServer(pki, EapType.PEAP, require_cert=False)
        inner = MsChapV2Method("alice", "Corp-Passw0rd!", rng=fixed_rng())
        method = PeapMethod(tls_client(pki, cert=False), "alice", inner)
        peer = EapPeer("alice", method)
        run_tls_phase(peer, server)
        assert server.established and method.tls.established and not method.succeeded
        # Phase 2 through the tunnel: a full Identity request (as FreeRADIUS sends it), then MS-CHAPv2
        # header-less, then the Result TLV.
        auth = Authenticator({"alice": "Corp-Passw0rd!"})

        def tunnel(plain: bytes, server: TlsServer = server) -> bytes:
            server.ssl.write(plain)
            return server.request(server.outb.read())

        def untunnel(reply: bytes, server: TlsServer = server) -> bytes:
            data = decode_eap(reply).data[1:]
            server.inb.write(data)
            return server.ssl.read(65536)

        identity = untunnel(peer.receive(tunnel(bytes([1, 9, 0, 5, 1]))).reply or b"")
        assert identity == b"\x01alice"
        challenge = decode_eap(auth.challenge_request())
        request = tunnel(bytes([challenge.eap_type or 0]) + challenge.data)
        answer = untunnel(peer.receive(request).reply or b"")
        assert answer[0] == EapType.MSCHAPV2
        success = decode_eap(auth.handle(bytes([2, challenge.identifier, 0, 4 + len(answer)]) + answer))
        done = untunnel(peer.receive(tunnel(bytes([success.eap_type or 0]) + success.data)).reply or b"")
        assert done == bytes([EapType.MSCHAPV2, 3]) and inner.succeeded
        tlvs = (0x8003).to_bytes(2, "big") + (2).to_bytes(2, "big") + (1).to_bytes(2, "big")
        nonce = bytes(range(32))
        material = key_material_of(server)
        ipmk, cmk = P.inner_keys(material[:60], (inner.msk() or b"")[:32])
        if binding:
            cb = P._binding_tlv(0, nonce, bytes(20))
            tlvs += P._binding_tlv(0, nonce, P.compound_mac(cmk, cb))
        ext = bytes([1, 40, 0, 5 + len(tlvs), 33]) + tlvs
        step = peer.receive(tunnel(ext))
        reply = untunnel(step.reply or b"")
        assert reply[:4] == bytes([2, 40, 0, len(reply)]) and reply[4] == 33
        assert reply[5:11] == bytes.fromhex("800300020001")
        result = [e for e in step.events if isinstance(e, PeapResult)]
        assert result == [PeapResult(True, True, binding, None)]
        if binding:
            answer_tlv = reply[11:]
            assert answer_tlv[7] == 1 and answer_tlv[8:40] == nonce
            assert answer_tlv[40:] == P.compound_mac(cmk, answer_tlv[:40] + bytes(20))
        peer.receive(encode_success(server.id))
        assert peer.msk == (P.session_key(ipmk) if binding else material[:64])
        server.close()


def key_material_of(server: TlsServer) -> bytes:
    line = next(
        ln for ln in Path(server._log.name).read_text().splitlines()
        if ln.startswith("CLIENT_RANDOM " + server.client_random.hex())
    )
    sha384 = (server.ssl.cipher() or ("",))[0].endswith("SHA384")
    master = bytes.fromhex(line.split()[2])
    return key_material(master, server.client_random, server.server_random, sha384=sha384)


def test_a_forged_crypto_binding_fails_the_result(pki: Pki) -> None:
    server = TlsServer(pki, EapType.PEAP, require_cert=False)
    inner = MsChapV2Method("alice", "pw", rng=fixed_rng())
    method = PeapMethod(tls_client(pki, cert=False), "alice", inner)
    peer = EapPeer("alice", method)
    run_tls_phase(peer, server)
    tlvs = bytes.fromhex("800300020001") + P._binding_tlv(0, bytes(32), b"\x01" * 20)
    server.ssl.write(bytes([1, 7, 0, 5 + len(tlvs), 33]) + tlvs)
    step = peer.receive(server.request(server.outb.read()))
    result = [e for e in step.events if isinstance(e, PeapResult)]
    assert result and not result[0].our_success and not method.succeeded
    with pytest.raises(EapError):
        peer.receive(encode_success(server.id))
    server.close()


def test_hostile_bytes_raise_only_eap_errors(pki: Pki) -> None:
    rnd = random.Random(13)
    for eap_type in (EapType.TLS, EapType.PEAP):
        for _ in range(300):
            tls = tls_client(pki, cert=eap_type == EapType.TLS)
            method: EapTlsMethod | PeapMethod = (
                EapTlsMethod(tls) if eap_type == EapType.TLS
                else PeapMethod(tls, "a", MsChapV2Method("a", "b", rng=fixed_rng()))
            )
            peer = EapPeer("a", method)
            packets = [encode_request(1, eap_type, bytes([FLAG_START]))] if rnd.random() < 0.7 else []
            packets += [
                encode_request(i + 2, eap_type, rnd.randbytes(rnd.randrange(0, 64)))
                for i in range(rnd.randrange(1, 4))
            ]
            packets.append(encode_failure(9))
            for packet in packets:
                try:
                    peer.receive(packet)
                except EapError:
                    break
            tls.close()


def test_no_key_master_secret_or_msk_in_any_repr_event_or_reason(pki: Pki) -> None:
    texts: list[str] = []
    secrets: list[bytes] = []
    for anchors in (pki.ca, pki.foreign_ca):
        server = TlsServer(pki, EapType.TLS, require_cert=True)
        method = EapTlsMethod(tls_client(pki, cert=True, anchors=anchors))
        peer = EapPeer("dave@example", method)
        events = run_tls_phase(peer, server)
        texts += [repr(e) for e in events] + [str(e) for e in events]
        texts += [repr(peer), repr(method), repr(method.tls), str(method.failure_reason)]
        secrets += [s for s in (method.msk(), getattr(method.tls, "_secret", None)) if s]
        server.close()
    assert len(secrets) == 2
    key_lines = [ln for ln in pki.user_key.decode().splitlines() if len(ln) > 40]
    for text in texts:
        for secret in secrets:
            assert secret.hex() not in text and secret[:16].hex() not in text
        for line in key_lines:
            assert line not in text


def test_without_memfd_the_files_live_in_a_private_directory_and_are_removed(
    pki: Pki, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.delattr(os, "memfd_create")
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    server = TlsServer(pki, EapType.TLS, require_cert=True)
    method = EapTlsMethod(tls_client(pki, cert=True))
    peer = EapPeer("dave@example", method)
    run_tls_phase(peer, server)
    peer.receive(encode_success(server.id))
    assert peer.msk == server.msk()
    server.close()
    assert list(tmp_path.iterdir()) == []  # the key, the chain and the key log are gone
