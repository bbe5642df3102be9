"""The capture checks on their own (checks/capture.py): conversations built by hand, no capture read, judged
into findings whose ids and titles come from the one table (checks/ids.py)."""

from __future__ import annotations

from vpndoctor.capture.model import IKE_PORT, NAT_T_PORT, IkeConversation, IkeMessage
from vpndoctor.checks import ids
from vpndoctor.checks.capture import capture_findings, capture_verdict
from vpndoctor.ike.constants import ExchangeType, NotifyType

SPI_I = bytes.fromhex("0102030405060708")
FRAGMENTATION = NotifyType.IKEV2_FRAGMENTATION_SUPPORTED


def message(
    t: float, exchange: int, mid: int, *, response: bool, port: int = IKE_PORT, **kw: object
) -> IkeMessage:
    fields: dict[str, object] = {
        "ip_fragmented": False,
        "size": 300,
        "payloads": ["SA", "KE", "NONCE"] if exchange == ExchangeType.IKE_SA_INIT else ["SK"],
        "notifies": [],
        "retransmission": False,
        "fragment": None,
        "lost": False,
    } | kw
    # requests from the initiator, answers from the responder
    return IkeMessage(t, exchange, mid, response, initiator=not response, port=port, **fields)  # type: ignore[arg-type]


def conversation(*messages: IkeMessage) -> IkeConversation:
    return IkeConversation("10.0.0.1:500", "10.0.0.2:500", SPI_I, bytes(8), list(messages))


def test_nothing_to_judge_skips_everything_with_the_table_titles() -> None:
    findings = capture_findings([], {})
    assert [f.id for f in findings] == list(ids.CAPTURE_ALL)
    assert all(f.status == "skip" and f.title == ids.TITLES[f.id] for f in findings)
    verdict = capture_verdict(findings, 0, 0)
    assert verdict.status == "healthy" and verdict.root_causes == []


def test_retransmitted_ike_auth_on_4500_never_answered() -> None:
    conv = conversation(
        message(0.0, ExchangeType.IKE_SA_INIT, 0, response=False, notifies=[FRAGMENTATION]),
        message(0.1, ExchangeType.IKE_SA_INIT, 0, response=True, notifies=[FRAGMENTATION]),
        message(0.2, ExchangeType.IKE_AUTH, 1, response=False, port=NAT_T_PORT),
        message(2.2, ExchangeType.IKE_AUTH, 1, response=False, port=NAT_T_PORT, retransmission=True),
    )
    findings = {f.id: f for f in capture_findings([conv], {})}
    no_response = findings[ids.CAPTURE_IKE_NO_RESPONSE]
    assert no_response.status == "fail" and no_response.title == "IKE requests never answered"
    assert no_response.error_codes == [809]
    # both sides fragment, so the silence on 4500 is not lost IP fragments of the answer
    assert findings[ids.CAPTURE_IKE_FRAGMENTATION_NOT_NEGOTIATED].status == "pass"
    assert findings[ids.CAPTURE_NATT_NO_4500_ANSWER].status == "fail"
    verdict = capture_verdict(list(findings.values()), 4, 1)
    # the cause before the symptom, whatever order the findings come in
    assert verdict.root_causes == [ids.CAPTURE_NATT_NO_4500_ANSWER, ids.CAPTURE_IKE_NO_RESPONSE]
    assert verdict.summary.endswith("A Windows client would report error 809.")


def test_esp_one_way() -> None:
    findings = {f.id: f for f in capture_findings([], {("10.0.0.1", "10.0.0.2", 0xC0000001): 5})}
    esp = findings[ids.CAPTURE_ESP_ONE_WAY]
    assert esp.status == "warn" and esp.title == "ESP seen in one direction only"
    assert esp.evidence["one_way"] == [
        {"src": "10.0.0.1", "dst": "10.0.0.2", "spi": "c0000001", "packets": 5}
    ]
