"""The 809 signatures as each end of the path sees them, on synthetic captures: the gateway sends its answer
as IP fragments and the request keeps coming back (fragmented-lost), the client retransmits IKE_AUTH into
silence from a gateway that does not fragment (fragmentation-not-negotiated), and the counter-cases that
must stay quiet. The lab versions of these run in tests/lab/test_capture_lab.py."""

from __future__ import annotations

from tests.capture import writer as w
from tests.capture.test_analysis import (
    CLIENT,
    SERVER,
    auth,
    check_ids,
    finding,
    frame,
    nat_t,
    sa_init_request,
    sa_init_response,
)
from tests.capture.test_analysis import analyse as synthetic
from vpndoctor.checks import ids
from vpndoctor.ike.constants import ExchangeType, PayloadType
from vpndoctor.ike.message import Header, Message
from vpndoctor.ike.payloads import EncryptedPayload


def fragmented_answer(ident: int) -> list[bytes]:
    """A 3000-byte IKE_AUTH answer from the gateway, as two IP fragments (both captured: it left whole)."""
    datagram = w.udp(500, 500, auth(response=True, size=3000))
    return [
        w.ether(w.ipv4(datagram[:1480], src=SERVER, dst=CLIENT, ident=ident, more=True)),
        w.ether(w.ipv4(datagram[1480:], src=SERVER, dst=CLIENT, ident=ident, frag_offset=1480)),
    ]


def informational(mid: int, *, response: bool) -> bytes:
    header = Header(
        spi_i=bytes.fromhex("0102030405060708"),
        spi_r=bytes.fromhex("1112131415161718"),
        exchange=ExchangeType.INFORMATIONAL,
        flags=(0x20 if response else 0x08),
        message_id=mid,
    )
    data = Message(header, (EncryptedPayload(PayloadType.NONE, bytes(64)),)).encode()
    return frame(data, sport=500, dport=500, to_server=not response)


def test_gateway_view_answer_in_ip_fragments_and_the_request_comes_back() -> None:
    frames = [
        frame(sa_init_request(frag=True), sport=500, dport=500, to_server=True),
        frame(sa_init_response(frag=False), sport=500, dport=500, to_server=False),
    ]
    for n in range(3):
        frames.append(frame(auth(response=False), sport=500, dport=500, to_server=True))
        frames += fragmented_answer(300 + n)
    report = synthetic(frames)
    statuses = check_ids(report)
    assert statuses[ids.CAPTURE_IKE_NO_RESPONSE] == "pass"  # every request was answered, seen from here
    assert statuses[ids.CAPTURE_IKE_FRAGMENTED_LOST] == "fail"
    lost = finding(report, ids.CAPTURE_IKE_FRAGMENTED_LOST)
    assert lost.error_codes == [809]
    (req,) = lost.evidence["requests"]
    assert req["exchange"] == "IKE_AUTH" and req["fragmented_answer_resent"] is True and req["sends"] == 3
    assert report.verdict.root_causes[0] == ids.CAPTURE_IKE_FRAGMENTED_LOST
    answers = [m for m in report.conversations[0].messages if m.exchange == "IKE_AUTH" and m.response]
    assert len(answers) == 3 and all(m.ip_fragmented and not m.ip_fragments_missing for m in answers)


def test_gateway_view_one_retransmission_then_progress_is_fine() -> None:
    frames = [
        frame(sa_init_request(frag=True), sport=500, dport=500, to_server=True),
        frame(sa_init_response(frag=False), sport=500, dport=500, to_server=False),
        frame(auth(response=False), sport=500, dport=500, to_server=True),
        *fragmented_answer(400),
        frame(auth(response=False), sport=500, dport=500, to_server=True),
        *fragmented_answer(401),
        informational(2, response=False),  # the client moved on: the answer did arrive
        informational(2, response=True),
    ]
    report = synthetic(frames)
    statuses = check_ids(report)
    lost = finding(report, ids.CAPTURE_IKE_FRAGMENTED_LOST)
    assert statuses[lost.id] == "pass", lost
    assert (
        report.verdict.status == "healthy"
        or ids.CAPTURE_IKE_FRAGMENTED_LOST not in report.verdict.root_causes
    )


def test_client_view_neither_side_fragments_and_ike_auth_stalls() -> None:
    frames = [
        frame(sa_init_request(frag=False), sport=500, dport=500, to_server=True),
        frame(sa_init_response(frag=False), sport=500, dport=500, to_server=False),
    ]
    frames += [frame(auth(response=False), sport=500, dport=500, to_server=True) for _ in range(4)]
    report = synthetic(frames)
    statuses = check_ids(report)
    assert statuses[ids.CAPTURE_IKE_FRAGMENTATION_NOT_NEGOTIATED] == "fail"
    f = finding(report, ids.CAPTURE_IKE_FRAGMENTATION_NOT_NEGOTIATED)
    assert f.error_codes == [809] and "neither side" in f.detail
    assert (
        statuses[ids.CAPTURE_NATT_NO_4500_ANSWER] == "skip"
        and statuses[ids.CAPTURE_IKE_NO_RESPONSE] == "fail"
    )
    assert report.verdict.root_causes == [
        ids.CAPTURE_IKE_FRAGMENTATION_NOT_NEGOTIATED,
        ids.CAPTURE_IKE_NO_RESPONSE,
    ]


def test_client_view_on_4500_is_ambiguous_with_blocked_4500() -> None:
    frames = [
        frame(sa_init_request(frag=True), sport=500, dport=500, to_server=True),
        frame(sa_init_response(frag=False), sport=500, dport=500, to_server=False),
    ]
    frames += [nat_t(auth(response=False), to_server=True) for _ in range(4)]
    report = synthetic(frames)
    statuses = check_ids(report)
    assert statuses[ids.CAPTURE_IKE_FRAGMENTATION_NOT_NEGOTIATED] == "fail"
    assert statuses[ids.CAPTURE_NATT_NO_4500_ANSWER] == "warn"  # a blocked 4500 looks the same from here
    natt = finding(report, ids.CAPTURE_NATT_NO_4500_ANSWER)
    assert natt.evidence["conversations"][0]["ambiguous_with_lost_fragments"] is True
    # with a gateway that does fragment, the same silence on 4500 is plainly 4500's fault
    frames[1] = frame(sa_init_response(frag=True), sport=500, dport=500, to_server=False)
    report = synthetic(frames)
    statuses = check_ids(report)
    assert (
        statuses[ids.CAPTURE_NATT_NO_4500_ANSWER] == "fail"
        and statuses[ids.CAPTURE_IKE_FRAGMENTATION_NOT_NEGOTIATED] == "pass"
    )
    assert report.verdict.root_causes == [ids.CAPTURE_NATT_NO_4500_ANSWER, ids.CAPTURE_IKE_NO_RESPONSE]


def test_neither_side_fragments_but_all_answered_passes() -> None:
    frames = [
        frame(sa_init_request(frag=False), sport=500, dport=500, to_server=True),
        frame(sa_init_response(frag=False), sport=500, dport=500, to_server=False),
        frame(auth(response=False), sport=500, dport=500, to_server=True),
        frame(auth(response=True), sport=500, dport=500, to_server=False),
    ]
    statuses = check_ids(synthetic(frames))
    assert statuses[ids.CAPTURE_IKE_FRAGMENTATION_NOT_NEGOTIATED] == "pass"
    assert "fail" not in statuses.values()
