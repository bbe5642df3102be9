"""PEAP and EAP-TLS against a second, independent EAP server: hostapd's integrated RADIUS server, which -
unlike FreeRADIUS - sends [MS-PEAP]'s Crypto-Binding TLV after an inner EAP-MSCHAPv2, as NPS does. Our peer
methods talk to it through a minimal RADIUS client (test code: Access-Request with EAP-Message, State and
Message-Authenticator); the MSK hostapd hands out in MS-MPPE-Recv-Key | MS-MPPE-Send-Key (RFC 2548) must
equal the one our method derived - with crypto binding, the CSK of the compound keys, so the binding's key
derivation is checked by someone else's code, not only by ours."""

from __future__ import annotations

import hashlib
import hmac
import os
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime

import pytest

from vpndoctor.eap.mschapv2 import MsChapV2Failure, MsChapV2Method
from vpndoctor.eap.packets import encode_request
from vpndoctor.eap.peap import PeapCryptoBinding, PeapMethod, PeapResult
from vpndoctor.eap.peer import EapPeer, EapPeerState
from vpndoctor.eap.tls import EapTlsMethod
from vpndoctor.eap.tlslayer import TlsClient
from vpndoctor.ike.constants import EapType
from vpndoctor.lab.pki import make_connect_pki, make_lab_pki

SECRET = b"vea-radius-secret"
PASSWORD = "Corp-Passw0rd!"


@dataclass
class Hostapd:
    port: int
    ca: bytes
    user_chain: bytes
    user_key: bytes


def _free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def hostapd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Hostapd]:
    binary = shutil.which("hostapd")
    if binary is None:
        pytest.fail("hostapd not installed (scripts/install-deps.sh installs it)")
    d = tmp_path_factory.mktemp("hostapd")
    now = datetime.now(UTC)
    lab = make_lab_pki("vpn.example", now=now)
    lab.write(d)
    c = make_connect_pki(lab, now=now, user="dave@example", device="d.example", nps_name="nps.example")
    files = c.write(d)
    port = _free_udp_port()
    (d / "eap_users").write_text(
        '"alice"\tPEAP\n'
        f'"alice"\tMSCHAPV2\t"{PASSWORD}"\t[2]\n'
        '"dave@example"\tTLS\n'
        '"carol"\tPEAP\n'
        '"carol"\tTLS\t[2]\n'
    )
    (d / "clients").write_text(f"127.0.0.1/32\t{SECRET.decode()}\n")
    (d / "hostapd.conf").write_text(
        "\n".join(
            [
                "driver=none",
                "interface=vea0",
                "logger_stdout=-1",
                "logger_stdout_level=1",
                "eap_server=1",
                f"eap_user_file={d / 'eap_users'}",
                f"ca_cert={files.directory / 'ca.pem'}",
                f"server_cert={files.nps_cert}",
                f"private_key={files.nps_key}",
                f"radius_server_clients={d / 'clients'}",
                f"radius_server_auth_port={port}",
                "",
            ]
        )
    )
    log = open(d / "hostapd.log", "wb")  # noqa: SIM115 - open while hostapd runs
    proc = subprocess.Popen([binary, "-d", str(d / "hostapd.conf")], stdout=log, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 20
        while b"Setup of interface done" not in (d / "hostapd.log").read_bytes():
            if proc.poll() is not None or time.monotonic() > deadline:
                text = (d / "hostapd.log").read_text(errors="replace")
                pytest.fail("hostapd did not start: " + text[-2000:])
            time.sleep(0.1)
        yield Hostapd(port, lab.ca_cert_pem, c.user_cert_pem, c.user_key_pem)
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)
        log.close()


# ---- a minimal RADIUS client (RFC 2865, RFC 3579, RFC 2548) -----------------------------------------------


def _attr(kind: int, value: bytes) -> bytes:
    return bytes([kind, 2 + len(value)]) + value


def _attributes(data: bytes) -> list[tuple[int, bytes]]:
    out = []
    pos = 20
    while pos + 2 <= len(data):
        kind, length = data[pos], data[pos + 1]
        out.append((kind, data[pos + 2 : pos + length]))
        pos += length
    return out


def _mppe(value: bytes, request_auth: bytes) -> bytes:
    """Decrypt an MS-MPPE-Send/Recv-Key (RFC 2548 §2.4.2): salt, then 16-octet blocks chained through MD5."""
    salt, cipher = value[:2], value[2:]
    plain = b""
    previous = request_auth + salt
    for i in range(0, len(cipher), 16):
        block = cipher[i : i + 16]
        pad = hashlib.md5(SECRET + previous).digest()
        plain += bytes(a ^ b for a, b in zip(block, pad, strict=True))
        previous = block
    return plain[1 : 1 + plain[0]]


class Radius:
    def __init__(self, port: int) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.settimeout(10)
        self.port = port
        self.state: bytes | None = None
        self.ident = 0

    def send(self, user: str, eap: bytes) -> tuple[int, bytes, dict[int, bytes], bytes]:
        """One Access-Request carrying `eap`; (code, EAP packet, MS-MPPE keys by type, authenticator)."""
        self.ident = (self.ident + 1) % 256
        auth = os.urandom(16)
        attrs = _attr(1, user.encode())
        for i in range(0, len(eap), 253):
            attrs += _attr(79, eap[i : i + 253])
        if self.state is not None:
            attrs += _attr(24, self.state)
        attrs += _attr(80, bytes(16))
        packet = bytearray(bytes([1, self.ident]) + (20 + len(attrs)).to_bytes(2, "big") + auth + attrs)
        mac = hmac.new(SECRET, bytes(packet), "md5").digest()
        packet[-16:] = mac
        self.sock.sendto(bytes(packet), ("127.0.0.1", self.port))
        data, _ = self.sock.recvfrom(65536)
        code = data[0]
        eap_reply = b""
        keys: dict[int, bytes] = {}
        self.state = None
        for kind, value in _attributes(data):
            if kind == 79:
                eap_reply += value
            elif kind == 24:
                self.state = value
            elif kind == 26 and int.from_bytes(value[:4], "big") == 311:
                keys[value[4]] = _mppe(value[6:], auth)
        return code, eap_reply, keys, auth

    def close(self) -> None:
        self.sock.close()


def converse(hostapd: Hostapd, user: str, peer: EapPeer) -> tuple[int, list[object], bytes | None]:
    """The NAS's part: Identity request to the peer, then relay until Accept or Reject; (RADIUS code, the
    peer's events, the MSK from MS-MPPE-Recv-Key | MS-MPPE-Send-Key)."""
    radius = Radius(hostapd.port)
    events: list[object] = []
    try:
        step = peer.receive(encode_request(0, EapType.IDENTITY, b""))
        reply = step.reply
        for _ in range(60):
            assert reply is not None
            code, eap, keys, _ = radius.send(user, reply)
            step = peer.receive(eap)
            events += step.events
            if code in (2, 3):  # Access-Accept, Access-Reject
                msk = keys[17] + keys[16] if 16 in keys and 17 in keys else None
                return code, events, msk
            reply = step.reply
        raise AssertionError("no end to the conversation")
    finally:
        radius.close()


def test_peap_mschapv2_with_hostapd_crypto_binding_and_its_msk(hostapd: Hostapd) -> None:
    for _ in range(2):
        inner = MsChapV2Method("alice", PASSWORD, rng=os.urandom)
        method = PeapMethod(TlsClient(anchors_pem=hostapd.ca), "alice", inner)
        peer = EapPeer("alice", method)
        code, events, msk = converse(hostapd, "alice", peer)
        assert code == 2 and peer.state is EapPeerState.SUCCEEDED, method.failure_reason
        assert [e.valid for e in events if isinstance(e, PeapCryptoBinding)] == [True]
        assert method.crypto_binding
        assert msk is not None and peer.msk == msk  # hostapd's CSK-based MSK is ours


def test_peap_wrong_password_is_refused_with_691(hostapd: Hostapd) -> None:
    inner = MsChapV2Method("alice", "not-the-password", rng=os.urandom)
    peer = EapPeer("alice", PeapMethod(TlsClient(anchors_pem=hostapd.ca), "alice", inner))
    code, events, _ = converse(hostapd, "alice", peer)
    assert code == 3 and peer.state is EapPeerState.FAILED
    assert [e.error for e in events if isinstance(e, MsChapV2Failure)] == [691]


def test_eap_tls_with_hostapd_and_its_msk(hostapd: Hostapd) -> None:
    tls = TlsClient(anchors_pem=hostapd.ca, chain_pem=hostapd.user_chain, key_pem=hostapd.user_key)
    peer = EapPeer("dave@example", EapTlsMethod(tls))
    code, _, msk = converse(hostapd, "dave@example", peer)
    assert code == 2 and peer.state is EapPeerState.SUCCEEDED
    assert msk is not None and peer.msk == msk


def test_peap_tls_with_hostapd(hostapd: Hostapd) -> None:
    outer = TlsClient(anchors_pem=hostapd.ca)
    inner = EapTlsMethod(
        TlsClient(anchors_pem=hostapd.ca, chain_pem=hostapd.user_chain, key_pem=hostapd.user_key),
        fragment_bytes=900,
    )
    method = PeapMethod(outer, "carol", inner)
    peer = EapPeer("carol", method)
    code, events, msk = converse(hostapd, "carol", peer)
    assert code == 2 and peer.state is EapPeerState.SUCCEEDED, method.failure_reason
    assert msk is not None and peer.msk == msk
    assert [e.our_success for e in events if isinstance(e, PeapResult)] == [True]
