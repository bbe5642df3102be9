"""Decrypt tcpdump's `ikev2pI2.pcap` IKE_AUTH request with its key table and reproduce the inner payloads that
tcpdump printed in `ikev2pI2.out`: an oracle independent of our codec and of our key handling.

The capture's ICV does not verify as RFC 7296 §3.14 defines it (header through pad length): it is the
HMAC-SHA1-96 of the IV and ciphertext only. tcpdump never checks the ICV, so its output shows the contents
anyway; we show the same contents through `decrypt_unverified` and pin down what the ICV actually covers.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from vpndoctor.ike.constants import AuthMethod, IdType, PayloadType
from vpndoctor.ike.keys import SecretLine, parse_tcpdump_secrets
from vpndoctor.ike.message import decode_message, decode_payload_chain
from vpndoctor.ike.payloads import AuthPayload, EncryptedPayload, IdPayload
from vpndoctor.ike.sk import IntegrityCheckFailed, decrypt_unverified, unprotect

FILES = ("ikev2pI2.pcap", "ikev2pI2-secrets.txt", "ikev2pI2.out")


def _captures() -> Path:
    candidates = [Path(__file__).resolve().parents[3] / "shared" / "captures" / "public"]
    shared = os.environ.get("VPNDOCTOR_SHARED")
    if shared:
        candidates += [Path(shared) / "captures" / "public", Path(shared)]
    for folder in candidates:
        if all((folder / name).is_file() for name in FILES):
            return folder
    pytest.skip(f"{', '.join(FILES)} not found in {', '.join(map(str, candidates))} (set VPNDOCTOR_SHARED)")


@pytest.fixture(scope="module")
def captures() -> Path:
    return _captures()


@pytest.fixture(scope="module")
def datagrams(captures: Path) -> list[tuple[int, int, int, bytes]]:
    """(frame number, source port, destination port, UDP payload) for every frame, as tshark reads them."""
    tshark = shutil.which("tshark")
    if tshark is None:
        pytest.skip("tshark is not installed")
    fields = ["-e", "frame.number", "-e", "udp.srcport", "-e", "udp.dstport", "-e", "udp.payload"]
    proc = subprocess.run(
        [tshark, "-r", str(captures / "ikev2pI2.pcap"), "-T", "fields", *fields],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    rows = []
    for line in proc.stdout.splitlines():
        frame, sport, dport, payload = line.split("\t")
        rows.append((int(frame), int(sport), int(dport), bytes.fromhex(payload.replace(":", ""))))
    return rows


@pytest.fixture(scope="module")
def tcpdump_out(captures: Path) -> str:
    return (captures / "ikev2pI2.out").read_text()


@pytest.fixture(scope="module")
def secrets(captures: Path) -> list[SecretLine]:
    return parse_tcpdump_secrets((captures / "ikev2pI2-secrets.txt").read_text())


def _keys_for(raw: bytes, secrets: list[SecretLine]) -> SecretLine:
    header = decode_message(raw).header
    matches = [
        s
        for s in secrets
        if (s.spi_i, s.spi_r) == (header.spi_i, header.spi_r) and s.initiator == header.is_initiator
    ]
    assert len(matches) == 1, "exactly one key line for this SA and direction"
    return matches[0]


def _encrypted_message(datagrams: list[tuple[int, int, int, bytes]]) -> bytes:
    encrypted = [
        raw for _, _, _, raw in datagrams if decode_message(raw).header.next_payload == PayloadType.SK
    ]
    assert len(encrypted) == 1
    return encrypted[0]


# tcpdump's names for IKEv2 payloads in its -v output
TCPDUMP_PAYLOADS = {
    "v2IDi": PayloadType.IDi,
    "v2IDr": PayloadType.IDr,
    "v2auth": PayloadType.AUTH,
    "v2cert": PayloadType.CERT,
    "v2cr": PayloadType.CERTREQ,
    "v2N": PayloadType.NOTIFY,
    "v2TS": PayloadType.TSi,
    "v2cp": PayloadType.CP,
    "v2eap": PayloadType.EAP,
    "sa": PayloadType.SA,
}
TCPDUMP_AUTH_METHODS = {
    "rsasig": AuthMethod.RSA_SIG,
    "shared-secret": AuthMethod.SHARED_KEY,
    "dsssig": AuthMethod.DSS,
}


def _tcpdump_inner_payloads(out: str) -> list[tuple[str, int, str]]:
    """(tcpdump payload name, body length, rest of its line) for the payloads printed inside v2e."""
    lines = out.splitlines()
    start = next(i for i, line in enumerate(lines) if "(v2e[" in line)
    inner = []
    for line in lines[start + 1 :]:
        match = re.match(r"\s+\((\w+)(?:\[C\])?: len=(\d+) (.*)", line)
        if match is None:
            break
        inner.append((match.group(1), int(match.group(2)), match.group(3)))
    return inner


def test_capture_and_key_table_agree(
    datagrams: list[tuple[int, int, int, bytes]], secrets: list[SecretLine], tcpdump_out: str
) -> None:
    assert [(frame, sport, dport) for frame, sport, dport, _ in datagrams] == [(1, 500, 500), (2, 500, 500)]
    raw = _encrypted_message(datagrams)
    header = decode_message(raw).header
    assert header.exchange_name == "IKE_AUTH" and header.is_initiator and header.message_id == 0
    assert f"cookie {header.spi_i.hex()}->{header.spi_r.hex()}" in tcpdump_out
    line = _keys_for(raw, secrets)
    assert line.initiator  # 'I': keys for messages the initiator sends
    (payload,) = decode_message(raw).payloads
    assert isinstance(payload, EncryptedPayload)
    match = re.search(r"\(v2e\[(C?)\]: len=(\d+) ([0-9a-f]+)", tcpdump_out)
    assert match is not None
    assert (bool(match.group(1)), int(match.group(2))) == (bool(raw[29] & 0x80), len(payload.body))
    assert payload.body.hex() == match.group(3)  # tcpdump prints the whole body: IV, ciphertext, ICV


def test_the_captures_icv_covers_only_iv_and_ciphertext(
    datagrams: list[tuple[int, int, int, bytes]], secrets: list[SecretLine]
) -> None:
    raw = _encrypted_message(datagrams)
    line = _keys_for(raw, secrets)
    suite = line.suite()
    with pytest.raises(IntegrityCheckFailed):  # RFC 7296 §3.14 coverage: header through pad length
        unprotect(raw, line.keys, suite)
    icv = raw[-suite.icv_bytes :]
    body_start = 28 + 4  # IKE header, SK generic header
    assert hmac.new(line.integ_key, raw[body_start : -suite.icv_bytes], hashlib.sha1).digest()[:12] == icv


def test_decrypted_payloads_match_tcpdump(
    datagrams: list[tuple[int, int, int, bytes]], secrets: list[SecretLine], tcpdump_out: str
) -> None:
    raw = _encrypted_message(datagrams)
    line = _keys_for(raw, secrets)
    first, plaintext = decrypt_unverified(raw, line.keys, line.suite())
    assert first == PayloadType.IDi
    ours = decode_payload_chain(first, plaintext, base_offset=28 + 4 + 16)
    theirs = _tcpdump_inner_payloads(tcpdump_out)
    assert [TCPDUMP_PAYLOADS[name] for name, _, _ in theirs] == [p.payload_type for p in ours]
    assert [length for _, length, _ in theirs] == [len(p.encode_body()) for p in ours]
    for (name, _, rest), payload in zip(theirs, ours, strict=True):
        if name in ("v2IDi", "v2IDr"):
            assert isinstance(payload, IdPayload)
            body_hex, rendered = rest.split()[:2]
            assert payload.encode_body().hex() == body_hex
            kind, _, value = rendered.rstrip(")").partition(":")
            assert kind == "fqdn" and payload.id_type == IdType.FQDN and payload.data.decode() == value
        elif name == "v2auth":
            assert isinstance(payload, AuthPayload)
            match = re.match(r"method=(\S+) authdata=\(([0-9a-f]*)\)", rest)
            assert match is not None
            assert payload.method == TCPDUMP_AUTH_METHODS[match.group(1)]
            assert payload.data.hex() == match.group(2)
        else:
            pytest.fail(f"tcpdump printed a {name} payload this test does not compare")
    assert [(type(p).__name__, p.payload_type) for p in ours] == [
        ("IdPayload", PayloadType.IDi),
        ("AuthPayload", PayloadType.AUTH),
    ]
