"""Writes the seed corpora, fuzz/corpus/<harness>/, from real inputs: the public captures in
../shared/captures/public and ../shared/evtx, the fixtures of the test suite, and the project's own encoders.
`python -m fuzz.seeds [harness ...]` (from the repository root) replaces the named corpora (default: all).
The files are committed; re-run this only to change what the seeds are.
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import io
import json
import os
import shutil
import struct
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CORPUS = ROOT / "fuzz" / "corpus"
SHARED = Path(os.environ.get("VPNDOCTOR_SHARED", ROOT.parent / "shared"))
PUBLIC = SHARED / "captures" / "public"
EVTX = SHARED / "evtx"

Seeds = Iterator[bytes]


def _public(*names: str) -> list[bytes]:
    return [(PUBLIC / n).read_bytes() for n in names if (PUBLIC / n).is_file()]


def _pcaps() -> list[bytes]:
    return _public(
        "ikev2four.pcap",
        "ikev2-id-normal.pcap",
        "ikev2-id-short.pcap",
        "ikev2pI2.pcap",
        "isakmp4500.pcap",
        "espudp1.pcap",
        "ISAKMP_sa_setup.pcap",
        "ikev2_nat_t.pcapng",
    )


def _ike_datagrams() -> list[bytes]:
    """The IKE messages (non-ESP marker stripped) of the public captures."""
    from vpndoctor.capture.ip import packet_from_frame
    from vpndoctor.capture.reader import CaptureReader
    from vpndoctor.capture.udp import classify

    out: list[bytes] = []
    for data in _pcaps():
        for frame in CaptureReader(io.BytesIO(data)).frames():
            pkt = packet_from_frame(frame)
            carried = classify(pkt) if pkt is not None else None
            if carried is not None and carried.ike:
                out.append(carried.ike)
    return list(dict.fromkeys(out))


def _own_messages() -> list[bytes]:
    from tests.ike import sample_auth_request, sample_sa_init

    return [sample_sa_init().encode(), sample_auth_request().encode()]


# --- IKE ---------------------------------------------------------------------------------------------------


def ike_message() -> Seeds:
    yield from _ike_datagrams()
    yield from _own_messages()
    yield b"\0\0\0\0" + _own_messages()[0]


def ike_payloads() -> Seeds:
    for msg in [*_ike_datagrams(), *_own_messages()]:
        if len(msg) > 28:
            yield bytes([msg[16]]) + msg[28:]
    # the decrypted IKE_AUTH of tcpdump's ikev2pI2 capture
    from fuzz.harnesses.capture_analysis import KEYS
    from vpndoctor.capture.decrypt import Decryptor  # noqa: F401
    from vpndoctor.ike.message import Header
    from vpndoctor.ike.sk import decrypt_unverified

    for msg in _ike_datagrams():
        try:
            header = Header.decode(msg)
        except Exception:  # noqa: BLE001, S112
            continue
        entry = KEYS.lookup(header.spi_i, header.spi_r, header.is_initiator)
        if entry is None:
            continue
        try:
            first, plain = decrypt_unverified(msg, entry.keys, entry.suite)
        except Exception:  # noqa: BLE001, S112
            continue
        yield bytes([first]) + plain


def ike_sk() -> Seeds:
    from fuzz.harnesses._ike import KEYS, SUITES
    from vpndoctor.ike.message import Header
    from vpndoctor.ike.sk import protect, protect_fragment

    header = Header(
        spi_i=bytes.fromhex("0001020304050607"),
        spi_r=bytes.fromhex("c02e7a3031a03188"),
        exchange=35,
        flags=0x08,
        message_id=1,
    )
    inner = (
        bytes.fromhex("2700000c02000000")
        + b"west"
        + bytes.fromhex("00000018")
        + b"\x01\x00\x00\x00"
        + bytes(16)
    )
    for i, (suite, keys) in enumerate(zip(SUITES, KEYS, strict=True)):
        sealed = protect(header, 35, inner, keys, suite, lambda n: bytes(range(n)))
        frag = protect_fragment(header, 35, 1, 2, inner[:20], keys, suite, lambda n: bytes(n))
        yield bytes([i]) + sealed  # as sent: verifies
        yield bytes([0x10 | i]) + frag  # unverified decryption
        yield bytes([0x20 | i]) + sealed[:-3] + b"abc"  # ICV recomputed
        yield bytes([0x30 | i, 35, 0x08, 0, 0, 0, 1, 35, 0]) + inner  # round trip
        yield bytes([0x30 | i, 35, 0x20, 0, 0, 0, 2, 0, 3]) + inner + b"\x02"  # round trip of a fragment
    for msg in _ike_datagrams():
        yield b"\x00" + msg


def esp_packets() -> Seeds:
    from fuzz.harnesses.esp_packets import KEYS, SPI, TRANSFORMS
    from vpndoctor.esp import packets as pk
    from vpndoctor.esp.sa import OutboundSa

    echo = pk.Ipv4("203.0.113.130", "192.0.2.100", 1, pk.echo_request(7, 1, b"abc" * 20).encode(), df=True)
    udp = pk.Udp(5353, 53, b"\x12\x34\x01\x00\x00\x01" + bytes(6)).encode("203.0.113.130", "192.0.2.100")
    syn = pk.Tcp(40000, 53, 1, 0, pk.TCP_SYN, mss=1360).encode("203.0.113.130", "192.0.2.100")
    frag_needed = pk.Icmp(3, 4, 1300, echo.encode()[:28]).encode()
    inners = [
        echo.encode(),
        pk.Ipv4("203.0.113.130", "192.0.2.100", 17, udp).encode(),
        pk.Ipv4("203.0.113.130", "192.0.2.100", 6, syn).encode(),
        pk.Ipv4("192.0.2.65", "203.0.113.130", 1, frag_needed).encode(),
        pk.Ipv4("192.0.2.100", "203.0.113.130", 1, bytes(800), ident=5, more_fragments=True).encode(),
    ]
    for i, (t, keys) in enumerate(zip(TRANSFORMS, KEYS, strict=True)):
        out = OutboundSa(SPI, t, keys, lambda n: bytes(range(n)))
        for inner in inners:
            sealed = out.protect(inner, 4)
            yield bytes([i]) + sealed  # as sent: verifies
            yield bytes([0x20 | i]) + sealed[: 8 + t.iv_bytes] + inner + b"\x01\x02\x02\x04"  # resealed
            yield bytes([0x30 | i]) + inner  # round trip
    yield b"\x00\xff"  # a NAT keepalive
    yield b"\x00\x00\x00\x00\x00" + bytes(28)  # IKE behind the non-ESP marker


def _fragment(number: int, total: int, inner: int, dt: int, data: bytes) -> bytes:
    return bytes([number, total, inner, dt, len(data)]) + data


def ike_fragments() -> Seeds:
    chain = bytes.fromhex("2700000c02000000") + b"west" + bytes.fromhex("00000018") + bytes(20)
    parts = [chain[:10], chain[10:25], chain[25:]]
    head = bytes([16, 0x10, 0x00])
    yield head + b"".join(_fragment(n + 1, 3, 35 if n == 0 else 0, 1, p) for n, p in enumerate(parts))
    yield head + b"".join(_fragment(n + 1, 3, 35 if n == 0 else 0, 1, parts[n]) for n in (2, 0, 0, 1))
    yield head + _fragment(1, 2, 35, 0, parts[0]) + _fragment(2, 3, 0, 0, parts[1])
    yield head + _fragment(1, 2, 35, 0, parts[0]) + _fragment(2, 2, 0, 200, parts[1])
    yield head + _fragment(0x81, 0x01, 0, 0, b"")  # a two-byte fragment number


def _sealed_frame(
    sa: int, flags: int, exchange: int, msg_id: int, n: int, total: int, inner: int, plain: bytes
) -> bytes:
    return bytes([3, sa, flags, exchange, msg_id, n, total, inner]) + struct.pack("!H", len(plain)) + plain


def ike_decryptor() -> Seeds:
    chain = bytes.fromhex("2700000c02000000") + b"west" + bytes.fromhex("00000018") + bytes(20)
    for sa in range(5):
        yield _sealed_frame(sa, 0x08, 35, 1, 0, 0, 35, chain)
        yield _sealed_frame(sa, 0x20, 35, 1, 0, 0, 35, chain)
        yield (
            _sealed_frame(sa, 0x08, 35, 2, 2, 2, 0, chain[16:])
            + _sealed_frame(sa, 0x08, 35, 2, 1, 2, 35, chain[:16])
        )
    frames = [m for m in _ike_datagrams() if len(m) > 28 and m[16] in (46, 53)]
    yield b"".join(b"\x00" + struct.pack("!H", len(m)) + m for m in frames)
    yield b"".join(b"\x01" + struct.pack("!H", len(m)) + m for m in frames)


def key_files() -> Seeds:
    from fuzz.harnesses.ike_decryptor import KEY_TEXT

    yield from _public("ikev2pI2-secrets.txt")
    yield KEY_TEXT.encode()
    for line in KEY_TEXT.splitlines():
        yield line.encode() + b"\n"
    yield b"# comment\n\n10.0.0.1@0x12345678 aes128-cbc:0x00112233445566778899aabbccddeeff\n"


# --- TLS ---------------------------------------------------------------------------------------------------


def _tls_data() -> list[bytes]:
    return [p.read_bytes() for p in sorted((ROOT / "tests" / "tls" / "data").glob("*.bin"))]


def _sslv2_server_hello() -> bytes:
    body = bytes([4, 0, 1]) + struct.pack("!HHHH", 2, 4, 3, 16) + b"cert" + b"\x01\x00\x80" + bytes(16)
    return struct.pack("!H", 0x8000 | len(body)) + body


def tls_records() -> Seeds:
    for data in [*_tls_data(), _sslv2_server_hello()]:
        yield b"\x00" + data
        yield b"\x07" + data


def tls_flight() -> Seeds:
    for data in [*_tls_data(), _sslv2_server_hello(), b"HTTP/1.1 400 Bad Request\r\n\r\n"]:
        for choice in (0, 1, 2, 3, 4, 5):
            yield bytes([choice]) + data


def _handshake_bodies() -> list[tuple[int, bytes]]:
    from vpndoctor.tls.records import HandshakeMessage, RecordBuffer

    out = []
    for data in _tls_data():
        try:
            events = RecordBuffer().feed(data)
        except Exception:  # noqa: BLE001, S112
            continue
        out += [(e.msg_type, e.body) for e in events if isinstance(e, HandshakeMessage)]
    return out


def _cert_der() -> tuple[bytes, bytes]:
    """A certificate and its issuer's name, DER, from a fixed key (no randomness in the seeds)."""
    import datetime

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.derive_private_key(0xC0FFEE, ec.SECP256R1())
    issuer = x509.Name(
        [
            x509.NameAttribute(NameOID.COUNTRY_NAME, "DE"),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "vpndoctor, Test"),
            x509.NameAttribute(NameOID.COMMON_NAME, 'Test CA + "quoted"'),
        ]
    )
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "vpn.test")])
    when = datetime.datetime(2024, 1, 1, tzinfo=datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer)
        .public_key(key.public_key())
        .serial_number(7)
        .not_valid_before(when)
        .not_valid_after(when + datetime.timedelta(days=30))
        .sign(key, hashes.SHA256())
    )
    _ = serialization
    return cert.public_bytes(serialization.Encoding.DER), issuer.public_bytes()


def _vec(n: int, data: bytes) -> bytes:
    return len(data).to_bytes(n, "big") + data


def tls_hello() -> Seeds:
    from fuzz.harnesses._tls import HELLOS

    index = {1: 0, 2: 1, 11: 2, 13: 5}  # handshake type -> parser index in tls_hello.PARSERS
    for hello in HELLOS:
        yield b"\x00" + hello.client_hello_message[4:]
    for msg_type, body in _handshake_bodies():
        if msg_type in index:
            yield bytes([index[msg_type]]) + body
            if msg_type == 13:
                yield bytes([3]) + body
                yield bytes([4]) + body
    cert, issuer = _cert_der()
    yield b"\x02" + _vec(3, _vec(3, cert) + _vec(3, cert))
    yield b"\x06\x02\x28"
    yield b"\x07" + b"\x00" + _vec(3, _vec(3, cert) + _vec(2, b""))
    sig_algs = (13).to_bytes(2, "big") + _vec(2, _vec(2, b"\x04\x03\x08\x04"))
    cas = (47).to_bytes(2, "big") + _vec(2, _vec(2, _vec(2, issuer) + _vec(2, issuer)))
    yield b"\x08" + b"\x00" + _vec(2, sig_algs + cas)


def tls13_flight() -> Seeds:
    cert, issuer = _cert_der()

    def hs(msg_type: int, body: bytes) -> bytes:
        return bytes([msg_type]) + _vec(3, body)

    ee = hs(8, _vec(2, b"\x00\x10" + _vec(2, _vec(1, b"h2"))))
    sig_algs = (13).to_bytes(2, "big") + _vec(2, _vec(2, b"\x04\x03\x08\x04"))
    cas = (47).to_bytes(2, "big") + _vec(2, _vec(2, _vec(2, issuer)))
    cr = hs(13, b"\x00" + _vec(2, sig_algs + cas))
    certificate = hs(11, b"\x00" + _vec(3, _vec(3, cert) + _vec(2, b"")))
    cv = hs(15, b"\x04\x03" + _vec(2, bytes(70)))
    fin = hs(20, bytes(32))
    flights = [
        [ee + cr + certificate + cv + fin + b"\x16"],
        [ee + b"\x16", cr + b"\x16", certificate + b"\x16" + bytes(3), cv + fin + b"\x16"],
        [ee + b"\x16", b"\x02\x30\x15"],  # an encrypted alert
        [(ee + certificate)[:30] + b"\x16", (ee + certificate)[30:] + fin + b"\x16"],
    ]
    for i, plaintexts in enumerate(flights):
        body = b"".join(_vec(2, p) for p in plaintexts)
        yield bytes([i % 5 | (0x80 if i % 2 else 0)]) + body


def tls_dn() -> Seeds:
    from cryptography import x509
    from cryptography.x509.oid import NameOID

    _, issuer = _cert_der()
    yield issuer
    yield x509.Name(
        [
            x509.RelativeDistinguishedName(
                [
                    x509.NameAttribute(NameOID.DOMAIN_COMPONENT, "corp"),
                    x509.NameAttribute(NameOID.USER_ID, "u1"),
                ]
            ),
            x509.RelativeDistinguishedName([x509.NameAttribute(NameOID.EMAIL_ADDRESS, "a@b.test")]),
            x509.RelativeDistinguishedName(
                [x509.NameAttribute(NameOID.COMMON_NAME, " #lead,trail ", x509.name._ASN1Type.BMPString)]
            ),
        ]
    ).public_bytes()
    yield bytes.fromhex("3000")


# --- SSTP --------------------------------------------------------------------------------------------------


def sstp_packets() -> Seeds:
    from tests.sstp.hostile import ACK, NAK
    from vpndoctor.sstp.messages import (
        ControlMessage,
        CryptoBinding,
        DataPacket,
        MessageType,
        call_abort,
        call_connect_request,
        call_disconnect,
        encode_packet,
    )

    connected = encode_packet(
        ControlMessage(MessageType.CALL_CONNECTED, (CryptoBinding(2, bytes(32), bytes(32), bytes(32)),))
    )
    packets = [
        ACK,
        NAK,
        call_connect_request(),
        call_abort(),
        call_abort(1),
        call_disconnect(),
        connected,
        encode_packet(DataPacket(b"\xff\x03\xc0\x21\x01\x01\x00\x04")),
    ]
    for p in packets:
        yield b"\x00" + p
    yield b"\x03" + b"".join(packets)


def sstp_http() -> Seeds:
    from tests.sstp.hostile import OK_200

    yield b"\x00" + OK_200 + b"\x10\x01\x00\x08"
    yield b"\x05" + b"HTTP/1.1 401 Unauthorized\r\nWWW-Authenticate: Negotiate\r\nContent-Length: 0\r\n\r\n"
    yield b"\x00" + b"HTTP/1.0 404 Not Found\r\nServer: Microsoft-HTTPAPI/2.0\r\nX-A:\t tab\r\n\r\n"
    yield b"\x01" + b"HTTP/2.0 200 OK\r\n\r\n"


# --- captures ----------------------------------------------------------------------------------------------


def _synthetic_captures() -> list[bytes]:
    from tests.capture import writer as w
    from tests.capture.test_fastpath import Traffic

    out = [Traffic(seed).pcap(25) for seed in (1, 2)]
    out += [Traffic(3).pcap(15, link) for link in (113, 276)]
    out.append(Traffic(4).pcapng(15))
    ip = w.ipv4(w.udp(500, 500, _own_messages()[0]), src=bytes([192, 0, 2, 1]), dst=bytes([192, 0, 2, 2]))
    out.append(w.pcap([(1, 2, w.ether(ip))], order=">", nanos=True))
    out.append(w.shb(">") + w.idb(1, tsresol=9, order=">") + w.epb(0, 5, w.ether(ip), order=">"))
    out.append(w.shb() + w.idb(101) + w.spb(ip))
    out.append(gzip.compress(Traffic(5).pcap(10), mtime=0))
    return out


def capture_reader() -> Seeds:
    yield from _pcaps()
    yield from _synthetic_captures()


def capture_analysis() -> Seeds:
    yield from capture_reader()


def capture_c_walk() -> Seeds:
    from tests.capture.test_fastpath import Traffic

    for seed, link_i, link in ((1, 0, 1), (2, 1, 113), (3, 2, 276)):
        pcap = Traffic(seed).pcap(12, link)
        for op in (0, 2, 3):
            params = struct.pack("!HHB", 24, 0xFFFF, seed) + bytes(19)
            yield bytes([op, link_i]) + params + pcap
    ng = Traffic(4).pcapng(10)
    yield bytes([1, 0]) + struct.pack("!HHBB", 0, 0xFFFF, 0xC7, 1) + bytes(18) + ng


# --- Windows evidence ---------------------------------------------------------------------------------------


def events_xml() -> Seeds:
    from tests.windows.test_events import scenario_events, wevtutil_text

    events = scenario_events()
    yield wevtutil_text(events).encode()
    yield ("\ufeff" + wevtutil_text(events[:3])).encode("utf-16")
    yield ('<?xml version="1.0" encoding="utf-8"?>\n' + events[5] + "\n" + events[-5]).encode()
    for i in (0, 4, 6, 14, 17):
        yield events[i].encode()


def events_csv() -> Seeds:
    import csv

    from tests.windows.test_events import csv_rows

    rows = csv_rows()
    for encoding, chosen in (("utf-8-sig", rows), ("utf-16", rows[:4]), ("utf-8", rows[-2:])):
        buf = io.StringIO(newline="")
        writer = csv.writer(buf, lineterminator="\r\n")
        writer.writerow(["Level", "Date and Time", "Source", "Event ID", "Task Category"])
        writer.writerows(chosen)
        yield buf.getvalue().encode(encoding)


def events_evtx() -> Seeds:
    for name in ("Application_no_crc32.evtx", "sample_with_a_bad_chunk_magic.evtx"):
        path = EVTX / name
        if path.is_file():
            data = path.read_bytes()[: 4096 + 65536]
            yield data
            yield data[: 4096 + 8192]


def events_evtx_json() -> Seeds:
    import evtx

    path = EVTX / "Application_no_crc32.evtx"
    if path.is_file():
        for i, record in enumerate(evtx.PyEvtxParser(str(path)).records_json()):
            if i % 4 == 0:
                yield record["data"].encode()
    ras = {
        "Event": {
            "#attributes": {"xmlns": "http://schemas.microsoft.com/win/2004/08/events/event"},
            "System": {
                "Provider": {"#attributes": {"Name": "RasClient"}},
                "EventID": {"#attributes": {"Qualifiers": 0}, "#text": 20227},
                "Level": 2,
                "TimeCreated": {"#attributes": {"SystemTime": "2024-03-15T08:00:31.123456Z"}},
                "EventRecordID": 5006,
                "Computer": "PC-0042.corp.example.net",
            },
            "EventData": {
                "Data": {
                    "#text": ["{5D8C6E4A-1B2C-4D3E-8F90-A1B2C3D4E5F6}", "CORP\\alice", "Contoso VPN", "809"]
                },
                "Binary": None,
            },
        }
    }
    yield json.dumps(ras).encode()
    nps = {
        "Event": {
            "System": {
                "Provider": {"#attributes": {"Name": "Microsoft-Windows-Security-Auditing"}},
                "EventID": 6273,
                "TimeCreated": {"#attributes": {"SystemTime": "2024-03-15T08:00:30Z"}},
            },
            "EventData": {"FullyQualifiedSubjectUserName": "CORP\\alice", "ReasonCode": "16", "Reason": "x"},
            "UserData": {"Rule": {"Name": "r", "Items": [1, {"a": "b"}]}},
        }
    }
    yield json.dumps(nps).encode()


def profile_xml() -> Seeds:
    from tests.windows.test_profile import BILLION_LAUGHS, DEVICE_TUNNEL_GCM, USER_TUNNEL, _syncml

    yield USER_TUNNEL.encode()
    yield DEVICE_TUNNEL_GCM.encode("utf-16")
    yield _syncml(USER_TUNNEL, cdata=True).encode()
    yield _syncml(DEVICE_TUNNEL_GCM, cdata=False).encode()
    yield BILLION_LAUGHS.encode()


def config_yaml() -> Seeds:
    from vpndoctor.configgen.example import EXAMPLE

    for path in sorted((ROOT / "tests" / "configgen" / "inputs").glob("*.yaml")):
        yield path.read_bytes()
    yield EXAMPLE.encode()
    yield b"name: vpn.example.net\nvip: 192.0.2.10\nservers: [{name: a, address: 10.0.0.1}]\n"


def ipconfig() -> Seeds:
    from tests.windows import test_addresses as t

    yield t.IPCONFIG_ALL.encode()
    yield t.IPCONFIG_PLAIN.encode("utf-16")
    yield t.IPCONFIG_VISTA_LINK_LOCAL_ONLY.encode()
    yield t.GET_NETIPADDRESS_LIST.encode("utf-16-le")
    yield (t.IPCONFIG_PLAIN + t.GET_NETIPADDRESS_TABLE_DEFAULT).encode()
    yield t.GET_NETIPADDRESS_TABLE_ALIAS.encode()
    yield t.NO_ISATAP.encode("cp437", errors="replace")


def addresses() -> Seeds:
    for text in (
        "2001:db8:1:8000:0:5efe:10.1.2.3",
        "2001:db8:1:8000:200:5efe:c000:280",
        "fe80::5efe:10.0.0.5%12",
        "2002:c000:0280::1",
        "2001:0:4136:e378:8000:63bf:3fff:fdd2",
        "64:ff9b::192.0.2.33",
        "64:ff9b:1::c000:221",
        "::ffff:192.0.2.1",
        "::192.0.2.1",
        "fd00::1",
        "fec0::1",
        "ff02::1:2",
        "::1",
        "::",
        "192.0.2.1",
        "100.64.0.1",
        "2001:db8::/32",
    ):
        yield text.encode()


def error_codes() -> Seeds:
    for text in ("809", "0x80092013", "-2146885613", "800B0109", "ERROR_VPN_TIMEOUT", "13801", " 0X3 ", "-1"):
        yield text.encode()


# --- EAP-TLS / PEAP ----------------------------------------------------------------------------------------


def eap_peap() -> Seeds:
    """The Type-Data and tunnelled phase-2 packets of a PEAP-MSCHAPv2 conversation as FreeRADIUS and NPS send
    them (chunk size 0: each seed is one piece; the harness cuts by the first byte)."""
    from tests.eap.authenticator import Authenticator
    from vpndoctor.eap import peap as P
    from vpndoctor.eap.packets import decode_eap

    auth = Authenticator({"user": "password"})
    challenge = decode_eap(auth.challenge_request())
    result = bytes.fromhex("800300020001")
    binding = P._binding_tlv(0, bytes(range(32)), bytes(20))
    pieces = [
        bytes([0x20]),  # Start
        bytes([0xC0]) + (6).to_bytes(4, "big") + b"abc",  # L and M, then the rest
        b"\x00def",
        bytes([1, 9, 0, 5, 1]),  # a full Identity request
        bytes([26]) + challenge.data,  # header-less MS-CHAPv2 Challenge
        bytes([1, 10, 0, 11, 33]) + result,  # Extensions: Result success
        bytes([1, 11, 0, 71, 33]) + result + binding,  # with a Crypto-Binding TLV
        bytes([1, 12, 0, 11, 33]) + bytes.fromhex("800300020002"),  # Result failure
    ]
    for piece in pieces:
        yield b"\x00" + piece
    yield b"\x00" + b"".join(pieces[3:5])
    for size in (3, 7):
        yield bytes([size]) + b"".join(pieces)


# ------------------------------------------------------------------------------------------------------------


def generators() -> dict[str, Callable[[], Seeds]]:
    from fuzz.harnesses import HARNESSES

    return {name: globals()[name] for name in HARNESSES if name in globals()}


def write(name: str) -> int:
    out = CORPUS / name
    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)
    seen = set()
    for data in generators()[name]():
        digest = hashlib.sha1(data).hexdigest()[:16]
        if digest in seen:
            continue
        seen.add(digest)
        (out / f"seed-{digest}").write_bytes(data)
    return len(seen)


def main() -> None:
    from fuzz.harnesses import HARNESSES

    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("harness", nargs="*", default=list(HARNESSES))
    args = parser.parse_args()
    missing = set(HARNESSES) - set(generators())
    if missing:
        sys.exit(f"no seed generator for {sorted(missing)}")
    for name in args.harness:
        print(f"{name}: {write(name)} seeds")


if __name__ == "__main__":
    main()
