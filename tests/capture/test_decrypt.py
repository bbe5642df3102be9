"""`vpndoctor capture --keys`: decryption of SK/SKF payloads.

Oracles: tcpdump's decode of ikev2pI2.pcap with its secrets (`ikev2pI2.out`), tshark decrypting the same
capture with the same keys as a Wireshark `ikev2_decryption_table`, and synthetic IKE SAs protected by our
own SK/SKF code with keys we chose (CBC and AES-GCM, fragments, tampering). Bad key files: one line, exit 2.
The lab test (tests/lab/test_capture_lab.py) decrypts a real strongSwan exchange with the keys charon logged.
"""

from __future__ import annotations

import io
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import TypeAdapter

from tests.capture import writer as w
from tests.capture.test_analysis import SPI_I, SPI_R, frame, nat_t, sa_init_request, sa_init_response
from vpndoctor.capture import analysis as a
from vpndoctor.capture.decrypt import WIRESHARK_ENCR, WIRESHARK_INTEG, KeyTable, parse_keys
from vpndoctor.capture.model import CaptureReport
from vpndoctor.checks import ids
from vpndoctor.errors import UsageError
from vpndoctor.ike.constants import (
    AuthMethod,
    CertEncoding,
    CfgAttr,
    CfgType,
    DhGroup,
    EapCode,
    EapType,
    EncrId,
    ExchangeType,
    IdType,
    IntegId,
    NotifyType,
    PrfId,
)
from vpndoctor.ike.fragments import build_fragments
from vpndoctor.ike.keys import CipherSuite, DirectionKeys
from vpndoctor.ike.message import Header, encode_payload_chain
from vpndoctor.ike.payloads import (
    AuthPayload,
    CertPayload,
    CpPayload,
    EapPayload,
    IdPayload,
    NotifyPayload,
    Payload,
    TrafficSelector,
    TsPayload,
)
from vpndoctor.ike.sk import protect

ROOT = Path(__file__).resolve().parents[2]
PUBLIC = Path(os.environ.get("VPNDOCTOR_SHARED", ROOT.parent / "shared")) / "captures" / "public"
PI2_WIRESHARK = (
    "0001020304050607,c02e7a3031a03188,3f44bf47cafd8150591deb088199fcbf,bedb67ec7dc3d00cccac42e70cd63bde,"
    '"AES-CBC-128 [RFC3602]",'
    "4ea8e662b07cdd430f6944c6723e4b82d5722418,515b0bd22e6d76b34fdb760aa7bfad80b109b75d,"
    '"HMAC_SHA1_96 [RFC2404]"'
)


def public(name: str) -> Path:
    path = PUBLIC / name
    if not path.exists():
        pytest.skip(f"shared captures not found at {PUBLIC}")
    return path


def cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "vpndoctor", "capture", *args],
        capture_output=True,
        text=True,
        timeout=120,
        stdin=subprocess.DEVNULL,
    )


# --- ikev2pI2: tcpdump's and tshark's decryption ------------------------------------------------------------

# tcpdump's names in its -v output, as ours
_TCPDUMP_PAYLOAD = {"v2IDi": "IDi", "v2IDr": "IDr", "v2auth": "AUTH", "v2cert": "CERT", "v2N": "NOTIFY"}
_TCPDUMP_AUTH = {"rsasig": "RSA_SIG", "shared-secret": "SHARED_KEY", "dsssig": "DSS"}


def _tcpdump_decrypted(out: str) -> list[tuple[str, int, str]]:
    """(payload, body length, rest of line) of what tcpdump printed inside the v2e payload."""
    lines = out.splitlines()
    start = next(i for i, line in enumerate(lines) if "(v2e[" in line)
    found = []
    for line in lines[start + 1 :]:
        m = re.match(r"\s+\((\w+)(?:\[C\])?: len=(\d+) (.*)", line)
        if m is None:
            break
        found.append((_TCPDUMP_PAYLOAD[m.group(1)], int(m.group(2)), m.group(3)))
    return found


@pytest.mark.parametrize("key_format", ["tcpdump", "wireshark"])
def test_pi2_decrypts_like_tcpdump(key_format: str, tmp_path: Path) -> None:
    if key_format == "tcpdump":
        keys = public("ikev2pI2-secrets.txt")
    else:
        keys = tmp_path / "ikev2_decryption_table"
        keys.write_text("# Wireshark UAT\n" + PI2_WIRESHARK + "\n")
    proc = cli(str(public("ikev2pI2.pcap")), "--json", "--keys", str(keys))
    assert proc.returncode == 0, proc.stderr
    report = TypeAdapter(CaptureReport).validate_json(proc.stdout)
    (conv,) = report.conversations
    init, auth = conv.messages
    assert init.decrypted is None  # IKE_SA_INIT: nothing encrypted
    assert auth.exchange == "IKE_AUTH" and auth.payloads == ["SK"]
    d = auth.decrypted
    assert d is not None
    # the capture's ICV covers IV and ciphertext only (see tests/ike/test_pI2_decrypt.py): shown, flagged
    assert d.integrity == "not-verified" and d.detail and "ICV" in d.detail
    assert any("not verify" in w for w in report.warnings)

    theirs = _tcpdump_decrypted((PUBLIC / "ikev2pI2.out").read_text())
    assert [p for p, _, _ in theirs] == d.payloads == ["IDi", "AUTH"]
    (_, id_len, id_rest), (_, auth_len, auth_rest) = theirs
    idi, auth_item = d.items
    assert idi.identity == "fqdn:west" == id_rest.split()[1].rstrip(")")
    m = re.match(r"method=(\S+) authdata=\(([0-9a-f]*)\)", auth_rest)
    assert m is not None
    assert auth_item.auth_method == _TCPDUMP_AUTH[m.group(1)] == "RSA_SIG"
    assert auth_item.summary == f"RSA_SIG, {len(m.group(2)) // 2} bytes"
    assert auth_len == 4 + len(m.group(2)) // 2  # tcpdump's len counts the 4-byte AUTH header

    # the terminal shows the same, and says the integrity was not verified
    proc = cli(str(public("ikev2pI2.pcap")), "--keys", str(keys))
    assert proc.returncode == 0, proc.stderr
    assert "IDi fqdn:west" in proc.stdout and "integrity NOT verified" in proc.stdout


def test_pi2_tshark_decrypts_the_same_with_the_wireshark_table() -> None:
    tshark = shutil.which("tshark")
    if tshark is None:
        pytest.skip("tshark is not installed")
    proc = subprocess.run(
        [tshark, "-r", str(public("ikev2pI2.pcap")), "-o", f"uat:ikev2_decryption_table:{PI2_WIRESHARK}",
         "-V", "-Y", "frame.number == 2"],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout
    assert "Decrypted Data" in out
    assert re.findall(r"Payload: (Identification - Initiator|Authentication) \(\d+\)", out) == [
        "Identification - Initiator",
        "Authentication",
    ]
    assert "ID_FQDN: west" in out and "RSA Digital Signature" in out
    # tshark too finds the ICV wrong: our "not-verified" is its "incorrect"
    assert "IKEv2 Integrity Checksum Data is incorrect" in out


def test_pi2_with_a_wrong_key_is_not_shown() -> None:
    table = parse_keys(PI2_WIRESHARK.replace("3f44bf47", "00000000"))
    report = a.analyse(public("ikev2pI2.pcap"), name="pI2", keys=table)
    d = report.conversations[0].messages[1].decrypted
    assert d is not None and d.integrity == "failed" and d.payloads == [] and d.items == []
    assert any("could not be decrypted" in w for w in report.warnings)


def test_keys_for_another_sa_are_reported_unused() -> None:
    table = parse_keys(PI2_WIRESHARK.replace("0001020304050607", "0101010101010101"))
    report = a.analyse(public("ikev2pI2.pcap"), name="pI2", keys=table)
    assert all(m.decrypted is None for c in report.conversations for m in c.messages)
    assert "--keys: no IKE SA of the capture is in the key file" in report.warnings


# --- synthetic IKE SAs with keys we chose ------------------------------------------------------------------

CBC = CipherSuite(
    encr=EncrId.AES_CBC,
    encr_key_bits=256,
    prf=PrfId.HMAC_SHA2_256,
    integ=IntegId.HMAC_SHA2_256_128,
    dh=DhGroup.NONE,
)
GCM = CipherSuite(
    encr=EncrId.AES_GCM_16, encr_key_bits=128, prf=PrfId.HMAC_SHA2_256, integ=None, dh=DhGroup.NONE
)
SK_EI, SK_ER = bytes(range(1, 33)), bytes(range(101, 133))
SK_AI, SK_AR = bytes(range(33, 65)), bytes(range(133, 165))


def _rng(n: int) -> bytes:
    return bytes([7]) * n


def _keys(suite: CipherSuite, initiator: bool) -> DirectionKeys:
    size = suite.encr_key_bytes
    if suite.aead:
        return DirectionKeys((SK_EI if initiator else SK_ER)[:size], None)
    return DirectionKeys((SK_EI if initiator else SK_ER)[:size], SK_AI if initiator else SK_AR)


def wireshark_row(suite: CipherSuite, integ_name: str | None = None) -> str:
    encr = next(n for n, v in WIRESHARK_ENCR.items() if v == (suite.encr, suite.cipher_key_bytes * 8))
    if suite.aead:
        integ, ai, ar = "NONE [RFC4306]", "", ""
    else:
        integ = integ_name or next(
            n for n, (i, checked) in WIRESHARK_INTEG.items() if i == suite.integ and checked
        )
        ai, ar = SK_AI.hex(), SK_AR.hex()
    ei, er = _keys(suite, True).encr.hex(), _keys(suite, False).encr.hex()
    return f'{SPI_I.hex()},{SPI_R.hex()},{ei},{er},"{encr}",{ai},{ar},"{integ}"'


def _cert() -> bytes:
    """A real self-signed DER certificate for CN=vpn.example.test, built with `cryptography`."""
    import datetime

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "vpn.example.test")])
    now = datetime.datetime(2026, 1, 1, tzinfo=datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(1)
        .not_valid_before(now)
        .not_valid_after(now + datetime.timedelta(days=1))
        .sign(key, hashes.SHA256())
    )
    return cert.public_bytes(serialization.Encoding.DER)


def sealed(suite: CipherSuite, mid: int, response: bool, payloads: tuple[Payload, ...],
           fragment_bytes: int | None = None) -> list[bytes]:  # fmt: skip
    """One IKE_AUTH message protected as the given side would, or its SKF fragments."""
    from_initiator = not response
    flags = (0x08 if from_initiator else 0) | (0x20 if response else 0)
    header = Header(spi_i=SPI_I, spi_r=SPI_R, exchange=ExchangeType.IKE_AUTH, flags=flags, message_id=mid)
    first, plaintext = encode_payload_chain(payloads)
    keys = _keys(suite, from_initiator)
    if fragment_bytes is None:
        return [protect(header, first, plaintext, keys, suite, _rng)]
    return build_fragments(header, first, plaintext, keys, suite, _rng, fragment_bytes)


REQUEST = (
    IdPayload(IdType.RFC822_ADDR, b"alice@example.test", responder=False),
    NotifyPayload(NotifyType.INITIAL_CONTACT),
    CpPayload(CfgType.REQUEST, ((CfgAttr.INTERNAL_IP4_ADDRESS, b""), (CfgAttr.INTERNAL_IP4_DNS, b""))),
    TsPayload((TrafficSelector(7, 0, 0, 65535, bytes(4), b"\xff" * 4),), responder=False),
)


def response(cert: bytes) -> tuple[Payload, ...]:
    return (
        IdPayload(IdType.FQDN, b"vpn.example.test", responder=True),
        CertPayload(CertEncoding.X509_SIGNATURE, cert),
        AuthPayload(AuthMethod.DIGITAL_SIGNATURE, bytes(264)),
        EapPayload(EapCode.REQUEST, 1, EapType.IDENTITY, b""),
    )


def capture(*datagrams: tuple[bytes, bool]) -> bytes:
    frames = [
        frame(sa_init_request(), sport=500, dport=500, to_server=True),
        frame(sa_init_response(), sport=500, dport=500, to_server=False),
    ]
    frames += [nat_t(d, to_server=to_server) for d, to_server in datagrams]
    return w.pcap([(1_700_000_000 + i, 0, f) for i, f in enumerate(frames)])


def analyse(data: bytes, table: KeyTable | None) -> CaptureReport:
    return a.analyse(io.BytesIO(data), name="synthetic.pcap", keys=table)


@pytest.mark.parametrize("suite", [CBC, GCM], ids=["aes-cbc-hmac", "aes-gcm"])
def test_synthetic_sa_with_fragments_decrypts_verified(suite: CipherSuite) -> None:
    cert = _cert()
    request = sealed(suite, 1, False, REQUEST)
    answer = sealed(suite, 1, True, response(cert), fragment_bytes=400)
    assert len(answer) >= 2
    data = capture(*[(d, True) for d in request], *[(d, False) for d in answer])
    report = analyse(data, parse_keys(wireshark_row(suite)))
    assert report.warnings == []
    (conv,) = report.conversations
    req, *frags = conv.messages[2:]
    assert req.decrypted is not None and req.decrypted.integrity == "verified"
    assert req.decrypted.payloads == ["IDi", "NOTIFY", "CP", "TSi"]
    assert req.decrypted.notifies == ["INITIAL_CONTACT"]
    summaries = [i.summary for i in req.decrypted.items]
    assert summaries == [
        "email:alice@example.test",
        "INITIAL_CONTACT",
        "REQUEST: INTERNAL_IP4_ADDRESS, INTERNAL_IP4_DNS",
        "0.0.0.0-255.255.255.255",
    ]
    assert [m.fragment for m in frags] == [f"{n}/{len(answer)}" for n in range(1, len(answer) + 1)]
    *pending, last = frags
    for m in pending:
        assert m.decrypted is not None and m.decrypted.payloads == [] and m.decrypted.integrity == "verified"
    d = last.decrypted
    assert d is not None and d.integrity == "verified" and d.fragments == len(answer)
    assert d.payloads == ["IDr", "CERT", "AUTH", "EAP"]
    idr, cert_item, auth_item, eap = d.items
    assert idr.identity == "fqdn:vpn.example.test"
    assert cert_item.subject == "CN=vpn.example.test" and cert_item.issuer == "CN=vpn.example.test"
    assert auth_item.auth_method == "DIGITAL_SIGNATURE"
    assert (eap.eap_code, eap.eap_type) == ("REQUEST", "IDENTITY")


def test_tampered_cbc_message_is_shown_not_verified_and_gcm_is_not_shown() -> None:
    for suite, expected in ((CBC, "not-verified"), (GCM, "failed")):
        (msg,) = sealed(suite, 1, False, REQUEST)
        tampered = msg[:-1] + bytes([msg[-1] ^ 1])  # the last ICV/tag byte
        report = analyse(capture((tampered, True)), parse_keys(wireshark_row(suite)))
        d = report.conversations[0].messages[2].decrypted
        assert d is not None and d.integrity == expected, (suite, d)
        if expected == "not-verified":
            assert d.payloads == ["IDi", "NOTIFY", "CP", "TSi"]
        else:
            assert d.payloads == [] and "tag" in (d.detail or "")


def test_any_bits_means_unchecked() -> None:
    (msg,) = sealed(CBC, 1, False, REQUEST)
    tampered = msg[:-1] + bytes([msg[-1] ^ 1])
    row = wireshark_row(CBC, "ANY 128-bits of Authentication [No Checking]").replace(SK_AI.hex(), "")
    report = analyse(capture((tampered, True)), parse_keys(row))
    d = report.conversations[0].messages[2].decrypted
    assert d is not None and d.integrity == "not-verified" and "no integrity check" in (d.detail or "")
    assert d.payloads == ["IDi", "NOTIFY", "CP", "TSi"]


def test_decrypted_authentication_failed_is_a_finding() -> None:
    request = sealed(CBC, 1, False, REQUEST)
    answer = sealed(CBC, 1, True, (NotifyPayload(NotifyType.AUTHENTICATION_FAILED),))
    data = capture((request[0], True), (answer[0], False))
    without = analyse(data, None)
    assert {f.id: f.status for f in without.findings}[ids.CAPTURE_IKE_ERROR_NOTIFY] == "pass"  # hidden in SK
    report = analyse(data, parse_keys(wireshark_row(CBC)))
    f = next(f for f in report.findings if f.id == ids.CAPTURE_IKE_ERROR_NOTIFY)
    assert f.status == "fail" and f.error_codes == [13801] and "AUTHENTICATION_FAILED" in f.detail
    assert report.verdict.root_causes == [ids.CAPTURE_IKE_ERROR_NOTIFY]


def test_tcpdump_lines_decrypt_the_same_as_the_wireshark_table() -> None:
    request = sealed(CBC, 1, False, REQUEST)
    answer = sealed(CBC, 1, True, response(_cert()))
    data = capture((request[0], True), (answer[0], False))
    tcpdump = (
        "# tcpdump -E style\n"
        f"ikev2 I 0x{SPI_I.hex()} 0x{SPI_R.hex()} sha256:0x{SK_AI.hex()} aes256:0x{SK_EI.hex()}\n"
        f"ikev2 R 0x{SPI_I.hex()} 0x{SPI_R.hex()} sha256:0x{SK_AR.hex()} aes256-cbc:0x{SK_ER.hex()}\n"
    )
    a1 = analyse(data, parse_keys(tcpdump))
    a2 = analyse(data, parse_keys(wireshark_row(CBC)))
    assert a1.conversations == a2.conversations
    assert [m.decrypted.integrity for m in a1.conversations[0].messages[2:] if m.decrypted] == [
        "verified"
    ] * 2
    # a table and tcpdump lines may be mixed in one file
    assert len(parse_keys(tcpdump + wireshark_row(GCM).replace(SPI_I.hex(), "ab" * 8))) == 2


def test_terminal_ladder_shows_decrypted_content_and_marks() -> None:
    from rich.console import Console

    from vpndoctor.report.capture import render_capture

    answer = sealed(CBC, 1, True, response(_cert()), fragment_bytes=400)
    data = capture((sealed(CBC, 1, False, REQUEST)[0], True), *[(d, False) for d in answer])
    report = analyse(data, parse_keys(wireshark_row(CBC)))
    console = Console(width=140, record=True, color_system=None)
    render_capture(report, console)
    text = console.export_text()
    assert "decrypted:" in text and "IDi email:alice@example.test" in text
    assert f"decrypted from {len(answer)} fragments:" in text
    assert "CERT CN=vpn.example.test (issuer CN=vpn.example.test)" in text
    assert f"SKF 1/{len(answer)}" in text and "UDP 4500" in text
    assert "◀" in text and "▶" in text


# --- key files ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("hello world\n", "expected a Wireshark ikev2_decryption_table line"),
        ("a,b,c\n", "expected 8 comma-separated fields"),
        (PI2_WIRESHARK.replace("0001020304050607", "00010203"), "SPIi must be 8 bytes"),
        (PI2_WIRESHARK.replace("3f44bf47", "zz44bf47"), "SK_ei is not hex"),
        (PI2_WIRESHARK.replace("3f44bf47cafd8150591deb088199fcbf", "3f44"), "SK_ei must be 16 bytes"),
        (PI2_WIRESHARK.replace("AES-CBC-128 [RFC3602]", "AES-128"), "unknown encryption algorithm 'AES-128'"),
        (PI2_WIRESHARK.replace("HMAC_SHA1_96 [RFC2404]", "SHA1"), "unknown integrity algorithm 'SHA1'"),
        (
            "ikev2 I 0x0001020304050607 0xc02e7a3031a03188 sha1:0x4ea8 aes128:0x3f44\n",
            "line 1: expected 20 bytes",
        ),
        ("ikev2 X 0x0001020304050607\n", "line 1: expected ikev2 I|R"),
        ("# only a comment\n", "no IKEv2 keys in the file"),
        (
            PI2_WIRESHARK.replace("AES-CBC-128 [RFC3602]", "AES-CTR-128 [RFC5930]"),
            "not supported for decryption",
        ),
    ],
)
def test_bad_key_files_are_one_line_exit_2(content: str, message: str, tmp_path: Path) -> None:
    keys = tmp_path / "keys.txt"
    keys.write_text(content)
    with pytest.raises(UsageError, match=re.escape(message)):
        parse_keys(content, name="keys.txt")
    proc = cli(str(public("ikev2pI2.pcap")), "--keys", str(keys))
    assert proc.returncode == 2, proc.stdout
    assert "Traceback" not in proc.stderr and len(proc.stderr.strip().splitlines()) == 1, proc.stderr
    assert message in proc.stderr


# Key-file errors name the line and the field, never the key: a shifted column puts a key where a name or an
# SPI was expected, and a typo makes a key "not hex". No 6-character piece of any key may reach the message.
_SK = {
    "ei": "3f44bf47cafd8150591deb088199fcbf",
    "er": "bedb67ec7dc3d00cccac42e70cd63bde",
    "ai": "4ea8e662b07cdd430f6944c6723e4b82d5722418",
    "ar": "515b0bd22e6d76b34fdb760aa7bfad80b109b75d",
}
_SPIS = "0x0001020304050607 0xc02e7a3031a03188"
_ENC, _INT = '"AES-CBC-128 [RFC3602]"', '"HMAC_SHA1_96 [RFC2404]"'


def _wireshark(*fields: str) -> str:
    return ",".join(fields)


@pytest.mark.parametrize(
    ("line", "field"),
    [
        # Wireshark ikev2_decryption_table
        (
            _wireshark(
                "0001020304050607",
                "c02e7a3031a03188",
                _SK["ei"][:-1] + "Z",
                _SK["er"],
                _ENC,
                _SK["ai"],
                _SK["ar"],
                _INT,
            ),
            "field 3, SK_ei",
        ),
        (
            _wireshark(
                "0001020304050607",
                "c02e7a3031a03188",
                _SK["ei"],
                _SK["er"],
                _ENC,
                _SK["ai"],
                "0x" + _SK["ar"][:-1] + "g",
                _INT,
            ),
            "field 7, SK_ar",
        ),
        (
            _wireshark(
                "0001020304050607", "c02e7a3031a03188", _SK["ei"], _ENC, _SK["er"], _SK["ai"], _SK["ar"], _INT
            ),
            "field 5, unknown encryption algorithm",
        ),
        (
            _wireshark(
                "0001020304050607", "c02e7a3031a03188", _SK["ei"], _SK["er"], _ENC, _SK["ai"], _INT, _SK["ar"]
            ),
            "field 8, unknown integrity algorithm",
        ),
        (
            _wireshark("c02e7a3031a03188", _SK["ei"] + "x", _SK["er"], _ENC, _SK["ai"], _SK["ar"], _INT, "x"),
            "field 2, SPIr",
        ),
        (
            _wireshark(
                "0001020304050607",
                "c02e7a3031a03188",
                _SK["ei"],
                _SK["er"],
                '"NULL [RFC2410]"',
                _SK["ai"],
                _SK["ar"],
                _SK["ar"],
            ),
            "field 8, unknown integrity algorithm",
        ),
        (
            _wireshark(
                "0001020304050607",
                "c02e7a3031a03188",
                _SK["ei"],
                _SK["er"],
                _SK["ai"],
                '"AES-CTR-128 [RFC5930]"',
                _SK["ar"],
                _INT,
            ),
            "field 5, unknown encryption algorithm",
        ),
        # tcpdump -E ikev2 lines
        (f"ikev2 sha1:0x{_SK['ai']} I {_SPIS} aes128:0x{_SK['ei']}", "field 2 (role)"),
        (
            f"ikev2 I 0x0001020304050607 sha1:0x{_SK['ai']} 0xc02e7a3031a03188 aes128:0x{_SK['ei']}",
            "field 4 (SPIr)",
        ),
        (
            f"ikev2 I 0x{_SK['ei'][:16]} {_SPIS.split()[1]} sha1:0x{_SK['ai']} aes128:0x{_SK['ei']}",
            None,
        ),  # a valid line (an SPI is no secret): the control case
        (f"ikev2 I {_SPIS} sha1:0x{_SK['ai']}Z aes128:0x{_SK['ei']}", "field 5 (integrity algorithm:key)"),
        (f"ikev2 I {_SPIS} {_SK['ai']}:0x{_SK['ai']} aes128:0x{_SK['ei']}", "field 5 (integrity algorithm"),
        (f"ikev2 I {_SPIS} sha1:0x{_SK['ai']} {_SK['ei']}:0x{_SK['ei']}", "field 6 (encryption algorithm"),
        (f"ikev2 I {_SPIS} sha1:0x{_SK['ai']} aes128:0x{_SK['ei'][:30]}", "field 6 (aes128 key)"),
        (f"sha1:0x{_SK['ai']}\taes128:0x{_SK['ei']}", "field 1"),
    ],
)
def test_key_file_errors_never_echo_a_key(line: str, field: str | None) -> None:
    if field is None:
        assert len(parse_keys(line + "\n")) == 1
        return
    with pytest.raises(UsageError) as caught:
        parse_keys("# keys\n" + line + "\n", name="keys.txt")
    message = str(caught.value)
    assert "line 2" in message and field in message, message
    for key in _SK.values():
        pieces = {key[i : i + 6] for i in range(len(key) - 5)}
        assert not any(p in message.lower() for p in pieces), message


def test_key_file_error_through_the_cli_is_one_line_without_the_key(tmp_path: Path) -> None:
    keys = tmp_path / "keys.txt"
    keys.write_text(PI2_WIRESHARK.replace(_SK["ei"], _SK["ei"][:-1] + "Z") + "\n")
    proc = cli(str(public("ikev2pI2.pcap")), "--keys", str(keys))
    assert proc.returncode == 2 and len(proc.stderr.strip().splitlines()) == 1, proc.stderr
    assert "field 3, SK_ei is not hex" in proc.stderr and _SK["ei"][:6] not in proc.stderr, proc.stderr


def test_unsupported_line_warning_names_only_known_algorithms() -> None:
    table = parse_keys(
        PI2_WIRESHARK.replace("AES-CBC-128 [RFC3602]", "NULL [RFC2410]") + "\n" + PI2_WIRESHARK
    )
    assert table.warnings == [
        "--keys keys line 1: NULL [RFC2410] / HMAC_SHA1_96 [RFC2404] not supported for decryption; skipped"
    ]


def test_missing_and_binary_key_files(tmp_path: Path) -> None:
    binary = tmp_path / "keys.bin"
    binary.write_bytes(b"\xff\xfe\x00garbage")
    for path, message in ((tmp_path / "none.txt", "No such file"), (binary, "not a text file")):
        proc = cli(str(public("ikev2pI2.pcap")), "--keys", str(path))
        assert proc.returncode == 2 and message in proc.stderr, proc.stderr
        assert len(proc.stderr.strip().splitlines()) == 1


def test_unsupported_lines_are_skipped_with_a_warning() -> None:
    ctr = PI2_WIRESHARK.replace("AES-CBC-128 [RFC3602]", "AES-CTR-128 [RFC5930]").replace("0001", "ffff", 1)
    table = parse_keys(ctr + "\n" + PI2_WIRESHARK + "\n")
    assert len(table) == 1 and "line 1" in table.warnings[0] and "not supported" in table.warnings[0]
    report = a.analyse(public("ikev2pI2.pcap"), name="pI2", keys=table)
    assert any("AES-CTR-128" in w for w in report.warnings)
    assert report.conversations[0].messages[1].decrypted is not None


# --- hostile input ------------------------------------------------------------------------------------------

_BASE = [
    *sealed(CBC, 1, True, (NotifyPayload(NotifyType.AUTHENTICATION_FAILED),)),
    *build_fragments(
        Header(spi_i=SPI_I, spi_r=SPI_R, exchange=ExchangeType.IKE_AUTH, flags=0x20, message_id=2),
        *encode_payload_chain(REQUEST),
        _keys(CBC, False),
        CBC,
        _rng,
        300,
    ),
]
_TABLES = {"cbc": parse_keys(wireshark_row(CBC)), "gcm": parse_keys(wireshark_row(GCM))}


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    which=st.integers(0, len(_BASE) - 1),
    edits=st.lists(st.tuples(st.integers(0, 2000), st.integers(0, 255)), min_size=1, max_size=6),
    cut=st.one_of(st.none(), st.integers(28, 2000)),
    table=st.sampled_from(sorted(_TABLES)),
)
def test_mutated_encrypted_messages_never_raise(
    which: int, edits: list[tuple[int, int]], cut: int | None, table: str
) -> None:
    data = bytearray(_BASE[which])
    for offset, value in edits:
        if offset < len(data):
            data[offset] = value
    if cut is not None:
        del data[cut:]
    report = analyse(capture(*[(m, False) for m in _BASE], (bytes(data), False)), _TABLES[table])
    for m in report.conversations[0].messages if report.conversations else []:
        if m.decrypted is not None and m.decrypted.integrity == "failed":
            assert m.decrypted.payloads == [] and m.decrypted.items == []


def test_key_file_from_a_named_pipe(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import threading

    from vpndoctor.capture import reader
    from vpndoctor.capture.decrypt import load_keys

    monkeypatch.setattr(reader, "FIFO_WRITER_WAIT_S", 0.2, raising=False)
    fifo = tmp_path / "keys.fifo"
    os.mkfifo(fifo)
    result: list[object] = []

    def attempt() -> None:
        try:
            result.append(load_keys(str(fifo)))
        except BaseException as exc:
            result.append(exc)

    thread = threading.Thread(target=attempt, daemon=True)  # open() of a FIFO with no writer blocks forever
    thread.start()
    thread.join(10)
    if thread.is_alive():
        with open(fifo, "wb"):  # unblock it
            pass
        pytest.fail("--keys blocked on a named pipe with no writer")
    assert isinstance(result[0], UsageError) and "no writer" in str(result[0]), result

    def write() -> None:
        with open(fifo, "w") as out:  # blocks until load_keys opens the pipe
            out.write(PI2_WIRESHARK + "\n")

    writer = threading.Thread(target=write)
    writer.start()
    try:
        assert len(load_keys(str(fifo))) == 1
    finally:
        writer.join(10)
