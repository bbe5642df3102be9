"""Wireshark's SSTP dissector as an independent oracle for our encoder: a plaintext TCP stream
(SSTP_DUPLEX_POST, 200, then one of every control message and a data packet) is written to a pcap and tshark
must read back the message types, attribute ids and lengths, hash protocol, nonce, status and cert hash we
encoded."""

from __future__ import annotations

import shutil
import struct
import subprocess
import uuid
from pathlib import Path

import pytest

from tests.capture.writer import pcap
from vpndoctor.sstp import messages as m
from vpndoctor.sstp.http import sstp_request

NONCE = bytes(range(32))
CLIENT, SERVER = bytes([198, 51, 100, 10]), bytes([203, 0, 113, 10])

STREAM: list[tuple[str, m.Packet | bytes]] = [
    ("c", sstp_request("vpn.test", uuid.UUID(int=1))),
    ("s", b"HTTP/1.1 200 OK\r\nContent-Length: 18446744073709551615\r\nServer: x\r\n\r\n"),
    ("c", m.ControlMessage(m.MessageType.CALL_CONNECT_REQUEST, (m.EncapsulatedProtocolId(1),))),
    ("s", m.ControlMessage(m.MessageType.CALL_CONNECT_ACK, (m.CryptoBindingRequest(3, NONCE),))),
    (
        "c",
        m.ControlMessage(
            m.MessageType.CALL_CONNECTED, (m.CryptoBinding(2, NONCE, b"\x11" * 32, b"\x22" * 32),)
        ),
    ),
    ("s", m.ControlMessage(m.MessageType.CALL_CONNECT_NAK, (m.StatusInfo(1, 4, b"\x00\x02"),))),
    ("c", m.ControlMessage(m.MessageType.CALL_ABORT, (m.StatusInfo(0, 7),))),
    ("s", m.ControlMessage(m.MessageType.ECHO_REQUEST)),
    ("c", m.ControlMessage(m.MessageType.ECHO_RESPONSE)),
    ("c", m.ControlMessage(m.MessageType.CALL_DISCONNECT, (m.StatusInfo(0, 0),))),
    ("s", m.ControlMessage(m.MessageType.CALL_DISCONNECT_ACK)),
    ("c", m.DataPacket(bytes.fromhex("ff03c021010100040000"))),
]


def _segment(
    src: bytes, dst: bytes, sport: int, dport: int, seq: int, ack: int, data: bytes, flags: int
) -> bytes:
    tcp = struct.pack("!HHIIBBHHH", sport, dport, seq, ack, 5 << 4, flags, 65535, 0, 0) + data
    return struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(tcp), 1, 0, 64, 6, 0, src, dst) + tcp


def write_capture(path: Path) -> None:
    cseq, sseq = 1000, 5000
    frames = [
        _segment(CLIENT, SERVER, 40000, 80, cseq - 1, 0, b"", 0x02),
        _segment(SERVER, CLIENT, 80, 40000, sseq - 1, cseq, b"", 0x12),
        _segment(CLIENT, SERVER, 40000, 80, cseq, sseq, b"", 0x10),
    ]
    for direction, item in STREAM:
        data = item if isinstance(item, bytes) else m.encode_packet(item)
        if direction == "c":
            frames.append(_segment(CLIENT, SERVER, 40000, 80, cseq, sseq, data, 0x18))
            cseq += len(data)
        else:
            frames.append(_segment(SERVER, CLIENT, 80, 40000, sseq, cseq, data, 0x18))
            sseq += len(data)
    path.write_bytes(pcap([(1, i, f) for i, f in enumerate(frames)], link_type=101))


FIELDS = ["sstp.iscontrol", "sstp.length", "sstp.messagetype", "sstp.numattrib", "sstp.attribid"]
FIELDS += ["sstp.attriblength", "sstp.hash", "sstp.nonce", "sstp.status", "sstp.encapsulatedprotocol"]
FIELDS += ["sstp.cert_hash"]


def expected_row(p: m.Packet) -> list[str]:
    wire = m.encode_packet(p)
    if isinstance(p, m.DataPacket):
        return ["0", str(len(wire))] + [""] * (len(FIELDS) - 2)
    ids, lengths, hashes, nonces, statuses, protos, certs = [], [], [], [], [], [], []
    for a in p.attributes:
        attr = m.encode_attribute(a)
        lengths.append(str(len(attr)))
        if isinstance(a, m.EncapsulatedProtocolId):
            ids.append("1")
            protos.append(f"0x{a.protocol_id:04x}")
        elif isinstance(a, m.StatusInfo):
            ids += ["2", str(a.attrib_id)]
            statuses.append(f"0x{a.status:08x}")
        elif isinstance(a, m.CryptoBindingRequest):
            ids.append("4")
            hashes.append(f"0x{a.hash_bitmask:02x}")
            nonces.append(a.nonce.hex())
        else:
            ids.append("3")
            hashes.append(f"0x{a.hash_protocol:02x}")
            nonces.append(a.nonce.hex())
            certs.append(a.cert_hash.hex())
    row = [
        "1",
        str(len(wire)),
        f"0x{p.msg_type:04x}",
        str(len(p.attributes)),
        ",".join(ids),
        ",".join(lengths),
    ]
    return row + [",".join(x) for x in (hashes, nonces, statuses, protos, certs)]


def test_tshark_reads_what_we_encode(tmp_path: Path) -> None:
    tshark = shutil.which("tshark")
    if tshark is None:
        pytest.fail("tshark not installed (scripts/install-deps.sh installs it)")
    path = tmp_path / "sstp.pcap"
    write_capture(path)
    argv = [tshark, "-r", str(path), "-Y", "sstp", "-T", "fields"]
    for f in FIELDS:
        argv += ["-e", f]
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    rows = [line.split("\t") for line in proc.stdout.splitlines()]
    packets = [p for _, p in STREAM if not isinstance(p, bytes)]
    assert rows == [expected_row(p) for p in packets]
