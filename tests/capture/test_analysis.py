"""Capture analysis: public captures against the IKE codec and tcpdump's decoding, and synthetic captures for
each finding (lost IP fragments, unanswered NAT-T, error notifies, one-way ESP, a healthy exchange)."""

from __future__ import annotations

import io
import re
import struct

import pytest
from pydantic import TypeAdapter

from tests.capture import writer as w
from vpndoctor.capture import analysis as a
from vpndoctor.capture import conversations
from vpndoctor.capture.ip import packet_from_frame
from vpndoctor.capture.model import CaptureReport
from vpndoctor.capture.reader import CaptureReader
from vpndoctor.checks import ids
from vpndoctor.checks.model import Finding
from vpndoctor.cli.output import to_json
from vpndoctor.ike.constants import ExchangeType, NotifyType, PayloadType, name_of
from vpndoctor.ike.message import Header, Message, decode_message, strip_non_esp_marker
from vpndoctor.ike.payloads import (
    EncryptedPayload,
    KePayload,
    NoncePayload,
    NotifyPayload,
    Payload,
    Proposal,
    SaPayload,
    Transform,
)

needs_captures = pytest.mark.skipif(w.CAPTURES is None, reason="public captures not available")

CLIENT = bytes([10, 0, 0, 1])
SERVER = bytes([10, 0, 0, 2])
SPI_I = bytes.fromhex("0102030405060708")
SPI_R = bytes.fromhex("1112131415161718")
I_FLAG, R_FLAG = 0x08, 0x20


def check_ids(report: CaptureReport) -> dict[str, str]:
    found = [f.id for f in report.findings]
    assert sorted(found) == sorted(ids.CAPTURE_ALL) and len(found) == len(set(found))
    # the JSON contract round-trips
    assert TypeAdapter(CaptureReport).validate_json(to_json(report)) == report
    return {f.id: f.status for f in report.findings}


def finding(report: CaptureReport, fid: str) -> Finding:
    return next(f for f in report.findings if f.id == fid)


# --- public captures ----------------------------------------------------------------------------------------


@needs_captures
def test_every_public_capture_analyses() -> None:
    assert w.CAPTURES is not None
    files = sorted(p for p in w.CAPTURES.iterdir() if p.suffix in (".pcap", ".pcapng"))
    assert files
    for path in files:
        report = a.analyse(path, name=path.name)
        check_ids(report)
        assert report.file == path.name
        assert report.packets > 0


_TCPDUMP_EXCHANGE = {
    "ikev2_init": "IKE_SA_INIT",
    "ikev2_auth": "IKE_AUTH",
    "child_sa": "CREATE_CHILD_SA",
    "inf2": "INFORMATIONAL",
}
_TCPDUMP_PAYLOAD = {"sa": "SA", "v2ke": "KE", "nonce": "NONCE", "n": "NOTIFY", "v2e": "SK"}


def _tcpdump_messages(text: str) -> list[tuple[str, int, bool, bool, list[str]]]:
    out: list[tuple[str, int, bool, bool, list[str]]] = []
    for line in text.splitlines():
        m = re.search(r"isakmp 2\.0 msgid ([0-9a-f]{8}): \S+\s+(\w+)\[(\w*)\]", line)
        if m:
            flags = m.group(3)
            out.append((_TCPDUMP_EXCHANGE[m.group(2)], int(m.group(1), 16), "R" in flags, "I" in flags, []))
            continue
        p = re.match(r"    \((\w+):", line)
        if p and out:
            out[-1][4].append(_TCPDUMP_PAYLOAD[p.group(1)])
    return out


@needs_captures
def test_ikev2four_matches_codec_and_tcpdump() -> None:
    assert w.CAPTURES is not None
    report = a.analyse(w.CAPTURES / "ikev2four.pcap", name="ikev2four.pcap")
    check_ids(report)
    got = [
        (m.exchange, m.message_id, m.response, m.initiator, m.payloads)
        for c in report.conversations
        for m in c.messages
    ]
    tcpdump = _tcpdump_messages((w.CAPTURES / "ikev2four.out").read_text())
    assert len(tcpdump) == report.ike_messages == 21
    # conversation order is first-seen order; the last INFORMATIONAL belongs to another IKE SA
    assert sorted(got, key=repr) == sorted(tcpdump, key=repr)
    first = report.conversations[0]
    assert [(m.exchange, m.response) for m in first.messages[:6]] == [
        ("IKE_SA_INIT", False),
        ("IKE_SA_INIT", True),
        ("IKE_SA_INIT", False),
        ("IKE_SA_INIT", True),
        ("IKE_AUTH", False),
        ("IKE_AUTH", True),
    ]
    assert first.initiator == "192.168.1.2:500" and first.responder == "192.168.1.1:500"
    assert first.spi_r != "00" * 8

    # and the same as the codec decodes, frame by frame
    with open(w.CAPTURES / "ikev2four.pcap", "rb") as f:
        frames = list(CaptureReader(f).frames())
    decoded = []
    for frame in frames:
        pkt = packet_from_frame(frame)
        assert pkt is not None and pkt.udp_payload is not None
        msg = decode_message(pkt.udp_payload)
        decoded.append(
            (
                msg.header.exchange_name,
                msg.header.message_id,
                msg.header.is_response,
                msg.header.is_initiator,
                [name_of(PayloadType, p.payload_type) for p in msg.payloads],
            )
        )
    flat = [(m.exchange, m.message_id, m.response, m.initiator, m.payloads) for c in report.conversations
            for m in c.messages]  # fmt: skip
    assert sorted(flat, key=repr) == sorted(decoded, key=repr)
    assert report.conversations[0].messages[1].notifies == ["COOKIE"]
    assert report.verdict.status == "healthy"


@needs_captures
def test_ikev1_capture_warns() -> None:
    assert w.CAPTURES is not None
    report = a.analyse(w.CAPTURES / "ISAKMP_sa_setup.pcap", name="x")
    check_ids(report)
    assert any(x.startswith("IKEv1 traffic: not analysed") for x in report.warnings)
    assert report.ike_messages == 0 and not report.conversations


@needs_captures
def test_esp_in_udp_counted() -> None:
    assert w.CAPTURES is not None
    report = a.analyse(w.CAPTURES / "espudp1.pcap", name="x")
    statuses = check_ids(report)
    assert statuses[ids.CAPTURE_ESP_ONE_WAY] in ("pass", "warn")
    esp = finding(report, ids.CAPTURE_ESP_ONE_WAY)
    assert esp.evidence["esp_packets"] > 0
    assert sum(flow["packets"] for flow in esp.evidence["esp_flows"]) == esp.evidence["esp_packets"]


# --- synthetic captures -------------------------------------------------------------------------------------


def sa() -> SaPayload:
    return SaPayload((Proposal(1, 1, b"", (Transform(1, 12, 128), Transform(2, 2), Transform(3, 12),
                                            Transform(4, 14))),))  # fmt: skip


def ike(
    exchange: int,
    mid: int,
    *,
    response: bool,
    from_initiator: bool,
    payloads: tuple[Payload, ...],
    spi_r: bytes = SPI_R,
) -> bytes:
    flags = (I_FLAG if from_initiator else 0) | (R_FLAG if response else 0)
    header = Header(spi_i=SPI_I, spi_r=spi_r, exchange=exchange, flags=flags, message_id=mid)
    return Message(header, payloads).encode()


def sa_init_request(*, frag: bool = True, group: int = 14) -> bytes:
    pl: tuple[Payload, ...] = (sa(), KePayload(group, bytes(256)), NoncePayload(bytes(32)))
    if frag:
        pl += (NotifyPayload(NotifyType.IKEV2_FRAGMENTATION_SUPPORTED),)
    return ike(ExchangeType.IKE_SA_INIT, 0, response=False, from_initiator=True, payloads=pl, spi_r=bytes(8))


def sa_init_response(*, frag: bool = True) -> bytes:
    pl: tuple[Payload, ...] = (sa(), KePayload(14, bytes(256)), NoncePayload(bytes(32)))
    if frag:
        pl += (NotifyPayload(NotifyType.IKEV2_FRAGMENTATION_SUPPORTED),)
    return ike(ExchangeType.IKE_SA_INIT, 0, response=True, from_initiator=False, payloads=pl)


def auth(*, response: bool, size: int = 200) -> bytes:
    return ike(
        ExchangeType.IKE_AUTH,
        1,
        response=response,
        from_initiator=not response,
        payloads=(EncryptedPayload(PayloadType.IDi, bytes(size)),),
    )


def frame(data: bytes, *, sport: int, dport: int, to_server: bool, ident: int = 1) -> bytes:
    src, dst = (CLIENT, SERVER) if to_server else (SERVER, CLIENT)
    return w.ether(w.ipv4(w.udp(sport, dport, data), src=src, dst=dst, ident=ident))


def nat_t(data: bytes, *, to_server: bool) -> bytes:
    return frame(b"\0\0\0\0" + data, sport=4500, dport=4500, to_server=to_server)


def analyse(frames: list[bytes]) -> CaptureReport:
    data = w.pcap([(1_700_000_000 + i, 0, f) for i, f in enumerate(frames)])
    return a.analyse(io.BytesIO(data), name="synthetic.pcap")


def test_fragmented_ike_auth_lost() -> None:
    big = auth(response=False, size=3000)
    datagram = w.udp(500, 500, big)
    frames = [
        frame(sa_init_request(frag=True), sport=500, dport=500, to_server=True),
        frame(sa_init_response(frag=False), sport=500, dport=500, to_server=False),
    ]
    for n in range(4):  # the original and 3 retransmissions; only the first fragment survives
        first = datagram[:1480]
        frames.append(w.ether(w.ipv4(first, src=CLIENT, dst=SERVER, ident=100 + n, more=True)))
    report = analyse(frames)
    statuses = check_ids(report)
    assert statuses[ids.CAPTURE_IKE_FRAGMENTED_LOST] == "fail"
    assert finding(report, ids.CAPTURE_IKE_FRAGMENTED_LOST).error_codes == [809]
    assert statuses[ids.CAPTURE_IKE_NO_RESPONSE] == "fail"
    assert "IKE_AUTH" in finding(report, ids.CAPTURE_IKE_NO_RESPONSE).detail
    # offered by the initiator only, together with the lost fragments
    assert statuses[ids.CAPTURE_IKE_FRAGMENTATION_NOT_NEGOTIATED] == "fail"
    assert report.verdict.status == "problems"
    # root causes first, the symptom (never answered) last
    assert report.verdict.root_causes == [
        ids.CAPTURE_IKE_FRAGMENTED_LOST,
        ids.CAPTURE_IKE_FRAGMENTATION_NOT_NEGOTIATED,
        ids.CAPTURE_IKE_NO_RESPONSE,
    ]
    (conv,) = report.conversations
    lost = [m for m in conv.messages if m.exchange == "IKE_AUTH"]
    assert len(lost) == 4
    assert all(m.ip_fragmented and not m.response and m.size == len(big) for m in lost)
    assert [m.retransmission for m in lost] == [False, True, True, True]
    assert conv.spi_r == SPI_R.hex()


def test_ip_fragmented_retransmitted_without_reply_but_reassembled() -> None:
    big = auth(response=False, size=3000)
    datagram = w.udp(500, 500, big)
    frames = [
        frame(sa_init_request(), sport=500, dport=500, to_server=True),
        frame(sa_init_response(), sport=500, dport=500, to_server=False),
    ]
    for n in range(3):
        for off in range(0, len(datagram), 1480):
            chunk = datagram[off : off + 1480]
            frames.append(
                w.ether(w.ipv4(chunk, src=CLIENT, dst=SERVER, ident=200 + n, frag_offset=off,
                               more=off + 1480 < len(datagram)))
            )  # fmt: skip
    report = analyse(frames)
    statuses = check_ids(report)
    assert statuses[ids.CAPTURE_IKE_FRAGMENTED_LOST] == "fail"
    assert statuses[ids.CAPTURE_IKE_FRAGMENTATION_NOT_NEGOTIATED] == "pass"
    msgs = report.conversations[0].messages
    assert [m.payloads for m in msgs if m.exchange == "IKE_AUTH"] == [["SK"]] * 3


def test_natt_4500_never_answered() -> None:
    frames = [
        frame(sa_init_request(), sport=500, dport=500, to_server=True),
        frame(sa_init_response(), sport=500, dport=500, to_server=False),
    ] + [nat_t(auth(response=False), to_server=True)] * 3
    report = analyse(frames)
    statuses = check_ids(report)
    assert statuses[ids.CAPTURE_NATT_NO_4500_ANSWER] == "fail"
    assert finding(report, ids.CAPTURE_NATT_NO_4500_ANSWER).error_codes == [809]
    assert statuses[ids.CAPTURE_IKE_FRAGMENTED_LOST] == "skip"
    assert ids.CAPTURE_NATT_NO_4500_ANSWER in report.verdict.root_causes
    ports = [m.port for m in report.conversations[0].messages]
    assert ports == [500, 500, 4500, 4500, 4500]


def test_no_proposal_chosen() -> None:
    refusal = ike(
        ExchangeType.IKE_SA_INIT,
        0,
        response=True,
        from_initiator=False,
        payloads=(NotifyPayload(NotifyType.NO_PROPOSAL_CHOSEN),),
        spi_r=bytes(8),
    )
    report = analyse(
        [
            frame(sa_init_request(), sport=500, dport=500, to_server=True),
            frame(refusal, sport=500, dport=500, to_server=False),
        ]
    )
    statuses = check_ids(report)
    f = finding(report, ids.CAPTURE_IKE_ERROR_NOTIFY)
    assert statuses[ids.CAPTURE_IKE_ERROR_NOTIFY] == "fail" and f.error_codes == [13868]
    assert "NO_PROPOSAL_CHOSEN" in f.detail
    assert report.verdict.root_causes == [ids.CAPTURE_IKE_ERROR_NOTIFY]
    assert "13868" in report.verdict.summary


def test_invalid_ke_then_success_is_handled() -> None:
    invalid_ke = ike(
        ExchangeType.IKE_SA_INIT,
        0,
        response=True,
        from_initiator=False,
        payloads=(NotifyPayload.invalid_ke(19),),
        spi_r=bytes(8),
    )
    report = analyse(
        [
            frame(sa_init_request(), sport=500, dport=500, to_server=True),
            frame(invalid_ke, sport=500, dport=500, to_server=False),
            frame(sa_init_request(group=19), sport=500, dport=500, to_server=True),
            frame(sa_init_response(), sport=500, dport=500, to_server=False),
        ]
    )
    statuses = check_ids(report)
    assert statuses[ids.CAPTURE_IKE_ERROR_NOTIFY] == "pass"
    assert finding(report, ids.CAPTURE_IKE_ERROR_NOTIFY).evidence["handled"]


def test_healthy_exchange() -> None:
    report = analyse(
        [
            frame(sa_init_request(), sport=500, dport=500, to_server=True),
            frame(sa_init_response(), sport=500, dport=500, to_server=False),
            nat_t(auth(response=False), to_server=True),
            nat_t(auth(response=True), to_server=False),
        ]
    )
    statuses = check_ids(report)
    assert report.verdict.status == "healthy" and report.verdict.root_causes == []
    assert statuses[ids.CAPTURE_IKE_NO_RESPONSE] == "pass"
    assert statuses[ids.CAPTURE_NATT_NO_4500_ANSWER] == "pass"
    assert statuses[ids.CAPTURE_IKE_FRAGMENTATION_NOT_NEGOTIATED] == "pass"
    assert statuses[ids.CAPTURE_IKE_ERROR_NOTIFY] == "pass"
    assert statuses[ids.CAPTURE_IKE_FRAGMENTED_LOST] == "skip"
    assert statuses[ids.CAPTURE_ESP_ONE_WAY] == "skip"
    assert report.ike_messages == 4 and report.packets == 4
    (conv,) = report.conversations
    assert conv.initiator == "10.0.0.1:500" and conv.responder == "10.0.0.2:500"
    assert not any(m.retransmission for m in conv.messages)
    raw = strip_non_esp_marker(b"\0\0\0\0" + auth(response=True))
    assert raw is not None and conv.messages[-1].size == len(raw)


def esp(spi: int, seq: int, *, to_server: bool) -> bytes:
    return frame(struct.pack("!II", spi, seq) + bytes(64), sport=4500, dport=4500, to_server=to_server)


def test_esp_one_way() -> None:
    report = analyse([esp(0xC0FFEE, n, to_server=True) for n in range(1, 6)])
    statuses = check_ids(report)
    assert statuses[ids.CAPTURE_ESP_ONE_WAY] == "warn"
    f = finding(report, ids.CAPTURE_ESP_ONE_WAY)
    assert f.evidence["esp_packets"] == 5
    assert f.evidence["one_way"][0]["spi"] == "00c0ffee"
    assert report.verdict.status == "healthy"  # a warning is not a root cause


def test_esp_both_ways() -> None:
    report = analyse([esp(1, 1, to_server=True), esp(2, 1, to_server=False)])
    assert check_ids(report)[ids.CAPTURE_ESP_ONE_WAY] == "pass"


def test_message_cap_counts_the_rest(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(conversations, "MAX_MESSAGES", 2)
    report = analyse([frame(sa_init_request(), sport=500, dport=500, to_server=True)] * 5)
    check_ids(report)
    assert len(report.conversations[0].messages) == 2
    assert any("3 messages beyond 2" in x for x in report.warnings)
