"""Judge what a capture showed: pure functions from the collected IKEv2 conversations and ESP flows
(`capture.model`) to the findings of `vpndoctor capture` (ids and titles in `checks.ids`) and its verdict.
Nothing here reads a capture.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from vpndoctor.capture.model import IKE_PORT, NAT_T_PORT, IkeConversation, IkeMessage, RequestKey
from vpndoctor.checks import ids
from vpndoctor.checks.model import Finding, Verdict, finding
from vpndoctor.ike.constants import ExchangeType, NotifyType, name_of

__all__ = ["capture_findings", "capture_verdict"]

# The order in which failing findings explain what went wrong: root causes before symptoms ("never
# answered" is what the specific findings explain).
_ROOT_CAUSE_ORDER = (
    ids.CAPTURE_IKE_FRAGMENTED_LOST,
    ids.CAPTURE_NATT_NO_4500_ANSWER,
    ids.CAPTURE_IKE_ERROR_NOTIFY,
    ids.CAPTURE_IKE_FRAGMENTATION_NOT_NEGOTIATED,
    ids.CAPTURE_ESP_ONE_WAY,
    ids.CAPTURE_IKE_NO_RESPONSE,
)

# What a Windows client shows for an error notify in an unencrypted message.
_ERROR_CODES: dict[int, int] = {
    NotifyType.NO_PROPOSAL_CHOSEN: 13868,
    NotifyType.AUTHENTICATION_FAILED: 13801,
}

_NOTIFY_BY_NAME = {name_of(NotifyType, n): int(n) for n in NotifyType}

EspFlows = Mapping[tuple[str, str, int], int]  # ESP packets per (source, destination, SPI)


def capture_findings(conversations: Sequence[IkeConversation], esp: EspFlows) -> list[Finding]:
    """One finding per id of `ids.CAPTURE_ALL`, in that order. Each conversation's messages are in capture
    time."""
    convs = list(conversations)
    reqs = [r for conv in convs for r in _requests(conv)]
    fragmented_lost = _check_fragmented_lost(reqs)
    findings = {
        ids.CAPTURE_IKE_NO_RESPONSE: _check_no_response(reqs),
        ids.CAPTURE_IKE_FRAGMENTED_LOST: fragmented_lost,
        ids.CAPTURE_IKE_FRAGMENTATION_NOT_NEGOTIATED: _check_fragmentation_negotiated(
            convs, reqs, fragmented_lost.status == "fail"
        ),
        ids.CAPTURE_NATT_NO_4500_ANSWER: _check_natt(convs, reqs),
        ids.CAPTURE_IKE_ERROR_NOTIFY: _check_error_notify(convs),
        ids.CAPTURE_ESP_ONE_WAY: _check_esp(esp),
    }
    return [findings[fid] for fid in ids.CAPTURE_ALL]


def capture_verdict(findings: Sequence[Finding], ike_messages: int, conversations: int) -> Verdict:
    """The failing findings, root causes first, and a paragraph saying what they mean (with the error a
    Windows client would show)."""
    failing = sorted((f for f in findings if f.status == "fail"), key=lambda f: _ROOT_CAUSE_ORDER.index(f.id))
    if failing:
        codes = sorted({c for f in failing for c in f.error_codes})
        summary = "Problems found: " + "; ".join(f.title for f in failing) + "."
        if codes:
            summary += " A Windows client would report error " + ", ".join(map(str, codes)) + "."
    else:
        summary = (
            f"No problem found in {ike_messages} IKEv2 message(s) across {conversations} conversation(s)."
        )
    return Verdict(
        status="problems" if failing else "healthy",
        root_causes=[f.id for f in failing],
        summary=summary,
    )


@dataclass(slots=True)
class _Req:
    conv: IkeConversation
    key: RequestKey
    first_t: float
    sends: int = 0
    retransmitted: bool = False
    ip_fragmented: bool = False
    lost: bool = False  # the request, or a response to it, was seen as a first IP fragment only
    ports: set[int] = field(default_factory=set)
    answered: bool = False
    answer_ports: set[int] = field(default_factory=set)
    answer_ip_fragmented: bool = False  # an answer was sent as IP fragments (seen where it was sent)
    resent_after_fragmented_answer: bool = False  # ... and the request came again after it
    stalled: bool = False  # the requester never sent a later message id in this conversation

    @property
    def fragmented_answer_lost(self) -> bool:
        """The 809 signature seen at the gateway: its IP-fragmented answer went out, the request kept coming
        back and the exchange never moved on, so the answer did not arrive."""
        return self.answer_ip_fragmented and self.resent_after_fragmented_answer and self.stalled


def _requests(conv: IkeConversation) -> list[_Req]:
    reqs: dict[RequestKey, _Req] = {}
    for m in conv.messages:
        key = m.request_key
        req = reqs.get(key)
        if req is None:
            req = reqs[key] = _Req(conv, key, m.t)
        if m.response:
            if m.lost:
                req.lost = True
            else:
                req.answered = True
                req.answer_ports.add(m.port)
                req.answer_ip_fragmented |= m.ip_fragmented
            continue
        if req.answer_ip_fragmented:
            req.resent_after_fragmented_answer = True
        req.sends += 1
        req.retransmitted |= m.retransmission
        req.ip_fragmented |= m.ip_fragmented
        req.lost |= m.lost
        req.ports.add(m.port)
    last_id: dict[bool, int] = {}
    for _exchange, message_id, by_initiator in reqs:
        last_id[by_initiator] = max(last_id.get(by_initiator, -1), message_id)
    for req in reqs.values():
        req.stalled = req.key[1] >= last_id.get(req.key[2], -1)
    # a request key created by a response alone (request not captured) is answered: not a finding
    return [r for r in reqs.values() if r.sends]


def _describe(req: _Req) -> dict[str, Any]:
    exchange, message_id, by_initiator = req.key
    return {
        "initiator": req.conv.initiator,
        "responder": req.conv.responder,
        "spi_i": req.conv.spi_i.hex(),
        "exchange": name_of(ExchangeType, exchange),
        "message_id": message_id,
        "from": "initiator" if by_initiator else "responder",
        "sends": req.sends,
        "ports": sorted(req.ports),
    }


def _check_no_response(reqs: list[_Req]) -> Finding:
    if not reqs:
        return finding(ids.CAPTURE_IKE_NO_RESPONSE, "skip", "no IKEv2 request in the capture")
    bad = [r for r in reqs if r.retransmitted and not r.answered]
    if not bad:
        return finding(
            ids.CAPTURE_IKE_NO_RESPONSE, "pass", f"no retransmitted request of {len(reqs)} went unanswered"
        )
    names = sorted({name_of(ExchangeType, r.key[0]) for r in bad})
    return finding(
        ids.CAPTURE_IKE_NO_RESPONSE,
        "fail",
        f"{len(bad)} request(s) retransmitted and never answered: {', '.join(names)}",
        evidence={"requests": [_describe(r) for r in bad[:20]]},
        remedy="Check that UDP 500/4500 reach the gateway and its answers come back (firewall, NAT, load "
        "balancer); see which exchange stalls.",
        codes=[809],
        title="IKE requests never answered",
    )


def _check_fragmented_lost(reqs: list[_Req]) -> Finding:
    relevant = [r for r in reqs if r.ip_fragmented or r.lost or r.answer_ip_fragmented]
    if not relevant:
        return finding(ids.CAPTURE_IKE_FRAGMENTED_LOST, "skip", "no IP-fragmented IKE message in the capture")
    bad = [
        r for r in relevant if (not r.answered and (r.lost or r.retransmitted)) or r.fragmented_answer_lost
    ]
    if bad:
        return finding(
            ids.CAPTURE_IKE_FRAGMENTED_LOST,
            "fail",
            f"{len(bad)} IP-fragmented IKE exchange(s) never completed: fragments were lost on the path "
            "(the error 809 signature)",
            evidence={
                "requests": [
                    _describe(r)
                    | {"incomplete_reassembly": r.lost, "fragmented_answer_resent": r.fragmented_answer_lost}
                    for r in bad[:20]
                ]
            },
            remedy="Let IP fragments through (firewall, load balancer) or enable IKEv2 fragmentation (RFC "
            "7383) on both client and gateway.",
            codes=[809],
            title="IP-fragmented IKE messages lost",
        )
    partial = [r for r in relevant if r.lost]
    if partial:
        return finding(
            ids.CAPTURE_IKE_FRAGMENTED_LOST,
            "warn",
            f"{len(partial)} exchange(s) lost IP fragments but later completed",
            evidence={"requests": [_describe(r) for r in partial[:20]]},
            title="IP fragments lost",
        )
    return finding(
        ids.CAPTURE_IKE_FRAGMENTED_LOST,
        "pass",
        f"{len(relevant)} exchange(s) with IP-fragmented messages all completed",
    )


def _auth_stalled(conv: IkeConversation, reqs: list[_Req]) -> bool:
    """An IKE_AUTH request of this conversation was retransmitted and never answered."""
    return any(
        r.conv is conv and r.key[0] == ExchangeType.IKE_AUTH and r.retransmitted and not r.answered
        for r in reqs
    )


def _gateway_without_fragmentation(conv: IkeConversation) -> bool:
    """The responder's IKE_SA_INIT answer did not offer IKEv2 fragmentation (whatever the initiator did:
    without it on both sides, large messages need IP fragments just the same)."""
    answers = [
        m for m in conv.messages
        if m.exchange == ExchangeType.IKE_SA_INIT and m.response and not m.lost and "SA" in m.payloads
    ]  # fmt: skip
    return bool(answers) and NotifyType.IKEV2_FRAGMENTATION_SUPPORTED not in answers[-1].notifies


def _check_fragmentation_negotiated(
    convs: list[IkeConversation], reqs: list[_Req], fragmented_lost: bool
) -> Finding:
    judged = 0
    mismatches: list[dict[str, Any]] = []
    # Seen from the client: IKE_AUTH never answered by a gateway that does not fragment is error 809's
    # classic cause (its certificate-bearing answer needs IP fragments, which the path drops).
    stalled = [c for c in convs if _gateway_without_fragmentation(c) and _auth_stalled(c, reqs)]
    fragmented_lost = fragmented_lost or bool(stalled)
    frag_sup = NotifyType.IKEV2_FRAGMENTATION_SUPPORTED
    for conv in convs:
        init_reqs = [
            m for m in conv.messages
            if m.exchange == ExchangeType.IKE_SA_INIT and not m.response and m.initiator and not m.lost
        ]  # fmt: skip
        answers = [
            m for m in conv.messages
            if m.exchange == ExchangeType.IKE_SA_INIT and m.response and not m.lost and "SA" in m.payloads
        ]  # fmt: skip
        if not init_reqs or not answers:
            continue
        judged += 1
        offered = any(frag_sup in m.notifies for m in init_reqs)
        answered = frag_sup in answers[-1].notifies
        if offered != answered:
            mismatches.append(
                {
                    "initiator": conv.initiator,
                    "responder": conv.responder,
                    "spi_i": conv.spi_i.hex(),
                    "initiator_offers": offered,
                    "responder_offers": answered,
                }
            )
    if not judged:
        return finding(
            ids.CAPTURE_IKE_FRAGMENTATION_NOT_NEGOTIATED,
            "skip",
            "no complete IKE_SA_INIT exchange in the capture",
        )
    if not mismatches and not stalled:
        return finding(
            ids.CAPTURE_IKE_FRAGMENTATION_NOT_NEGOTIATED,
            "pass",
            f"both sides agree on IKEV2_FRAGMENTATION_SUPPORTED in {judged} IKE_SA_INIT exchange(s)",
        )
    if not mismatches:  # neither side offers it, and IKE_AUTH went unanswered
        return finding(
            ids.CAPTURE_IKE_FRAGMENTATION_NOT_NEGOTIATED,
            "fail",
            f"neither side offered IKEV2_FRAGMENTATION_SUPPORTED and IKE_AUTH was never answered in "
            f"{len(stalled)} conversation(s): the gateway's certificate-bearing answer needs IP fragments, "
            "which were most likely dropped on the path",
            evidence={
                "conversations": [
                    {"initiator": c.initiator, "responder": c.responder, "spi_i": c.spi_i.hex()}
                    for c in stalled[:20]
                ]
            },
            remedy="Enable IKEv2 fragmentation (RFC 7383) on both the gateway and the client (Windows: "
            "EnableIKEv2Fragmentation / the VPN profile), or let IP fragments through.",
            codes=[809],
            title="IKEv2 fragmentation not negotiated",
        )
    return finding(
        ids.CAPTURE_IKE_FRAGMENTATION_NOT_NEGOTIATED,
        "fail" if fragmented_lost else "warn",
        f"IKEV2_FRAGMENTATION_SUPPORTED offered by only one side in {len(mismatches)} IKE_SA_INIT exchange(s)"
        + (
            "; large IKE_AUTH messages then rely on IP fragments, which were lost"
            if fragmented_lost and not stalled
            else "; IKE_AUTH was never answered: the gateway's certificate-bearing answer needs IP "
            "fragments, which were most likely dropped on the path"
            if stalled
            else ""
        ),
        evidence={"conversations": mismatches[:20]},
        remedy="Enable IKEv2 fragmentation (RFC 7383) on the gateway (and on Windows, "
        "EnableIKEv2Fragmentation / the VPN profile).",
        codes=[809] if fragmented_lost else [],
        title="IKEv2 fragmentation not negotiated",
    )


def _check_natt(convs: list[IkeConversation], reqs: list[_Req]) -> Finding:
    bad: list[dict[str, Any]] = []
    applicable = 0
    for conv in convs:
        mine = [r for r in reqs if r.conv is conv]
        on_4500 = [r for r in mine if NAT_T_PORT in r.ports]
        if not on_4500:
            continue
        applicable += 1
        answered_500 = any(IKE_PORT in r.answer_ports for r in mine)
        answered_4500 = any(NAT_T_PORT in r.answer_ports for r in mine)
        if answered_500 and not answered_4500:
            bad.append(
                {
                    "initiator": conv.initiator,
                    "responder": conv.responder,
                    "spi_i": conv.spi_i.hex(),
                    "unanswered_on_4500": sorted({name_of(ExchangeType, r.key[0]) for r in on_4500}),
                    # the same silence if the gateway's IP-fragmented IKE_AUTH answer was dropped instead
                    "ambiguous_with_lost_fragments": _gateway_without_fragmentation(conv),
                }
            )
    if not applicable:
        return finding(ids.CAPTURE_NATT_NO_4500_ANSWER, "skip", "no IKE request on UDP 4500")
    if not bad:
        return finding(
            ids.CAPTURE_NATT_NO_4500_ANSWER, "pass", f"{applicable} conversation(s) answered on UDP 4500"
        )
    if all(c["ambiguous_with_lost_fragments"] for c in bad):
        # Only IKE_AUTH went unanswered, and the gateway does not fragment: its answer may simply have been
        # dropped as IP fragments. fragmentation-not-negotiated carries that verdict; this stays a warning.
        return finding(
            ids.CAPTURE_NATT_NO_4500_ANSWER,
            "warn",
            f"{len(bad)} conversation(s) answered on UDP 500 but never on UDP 4500; the gateway did not "
            "offer IKEv2 fragmentation, so its IKE_AUTH answer may have been dropped as IP fragments",
            evidence={"conversations": bad[:20]},
            remedy="Check that UDP 4500 reaches the gateway (firewall, load balancer affinity); if it does, "
            "the IP fragments of its answer are being dropped.",
            codes=[809],
            title="UDP 4500 never answered (or its answer was lost)",
        )
    return finding(
        ids.CAPTURE_NATT_NO_4500_ANSWER,
        "fail",
        f"{len(bad)} conversation(s) answered on UDP 500 but never on UDP 4500",
        evidence={"conversations": bad[:20]},
        remedy="Open UDP 4500 to the gateway and make the load balancer send 500 and 4500 from one client to "
        "the same backend (source-IP affinity).",
        codes=[809],
        title="UDP 4500 never answered",
    )


def _check_error_notify(convs: list[IkeConversation]) -> Finding:
    if not any(conv.messages for conv in convs):
        return finding(ids.CAPTURE_IKE_ERROR_NOTIFY, "skip", "no IKEv2 message in the capture")
    unhandled: list[dict[str, Any]] = []
    handled: list[dict[str, Any]] = []
    codes: set[int] = set()
    for conv in convs:
        for m in conv.messages:
            notifies = m.notifies
            if "SK" in m.payloads or "SKF" in m.payloads:
                # inside SK only what --keys decrypted counts (its notifies are names, typed back here)
                if m.decrypted is None or m.decrypted.integrity == "failed":
                    continue
                notifies = [_NOTIFY_BY_NAME[n] for n in m.decrypted.notifies if n in _NOTIFY_BY_NAME]
            for ntype in notifies:
                if ntype >= 16384:
                    continue
                item = {
                    "initiator": conv.initiator,
                    "responder": conv.responder,
                    "exchange": name_of(ExchangeType, m.exchange),
                    "message_id": m.message_id,
                    "notify": name_of(NotifyType, ntype),
                    "t": m.t,
                }
                if ntype == NotifyType.INVALID_KE_PAYLOAD and _succeeded_after(convs, conv, m):
                    handled.append(item)
                    continue
                unhandled.append(item)
                if ntype in _ERROR_CODES:
                    codes.add(_ERROR_CODES[ntype])
    if unhandled:
        names = sorted({str(i["notify"]) for i in unhandled})
        return finding(
            ids.CAPTURE_IKE_ERROR_NOTIFY,
            "fail",
            f"the peers reported: {', '.join(names)}",
            evidence={"notifies": unhandled[:20], "handled": handled[:20]},
            remedy="NO_PROPOSAL_CHOSEN: align the crypto proposals of client and gateway; "
            "AUTHENTICATION_FAILED: check certificates, EAP credentials and the gateway's authentication "
            "policy.",
            codes=sorted(codes),
            title="IKE error notify",
        )
    detail = "no error notify in unencrypted messages"
    if handled:
        detail = f"{len(handled)} INVALID_KE_PAYLOAD handled: the initiator retried with the requested group"
    return finding(ids.CAPTURE_IKE_ERROR_NOTIFY, "pass", detail, evidence={"handled": handled[:20]})


def _succeeded_after(convs: list[IkeConversation], conv: IkeConversation, m: IkeMessage) -> bool:
    """An IKE_SA_INIT between the same endpoints got a proper answer (with SA) after `m`."""
    hosts = (conv.initiator.rsplit(":", 1)[0], conv.responder.rsplit(":", 1)[0])
    for other in convs:
        if (other.initiator.rsplit(":", 1)[0], other.responder.rsplit(":", 1)[0]) != hosts:
            continue
        for later in other.messages:
            if (
                later.t >= m.t
                and later is not m
                and later.exchange == ExchangeType.IKE_SA_INIT
                and later.response
                and "SA" in later.payloads
            ):
                return True
    return False


def _check_esp(esp: EspFlows) -> Finding:
    flows = [{"src": s, "dst": d, "spi": f"{spi:08x}", "packets": n} for (s, d, spi), n in esp.items()]
    if not esp:
        return finding(ids.CAPTURE_ESP_ONE_WAY, "skip", "no ESP in the capture")
    directions = {(s, d) for s, d, _ in esp}
    one_way = [f for f in flows if (f["dst"], f["src"]) not in directions]
    evidence = {"esp_flows": flows[:100], "esp_packets": sum(esp.values())}
    if one_way:
        return finding(
            ids.CAPTURE_ESP_ONE_WAY,
            "warn",
            f"{len(one_way)} ESP SPI(s) with no ESP in the opposite direction",
            evidence=evidence | {"one_way": one_way[:100]},
            remedy="Check that ESP (or UDP 4500) is allowed back, and that the capture point sees both "
            "directions.",
            title="ESP seen in one direction only",
        )
    return finding(
        ids.CAPTURE_ESP_ONE_WAY, "pass", f"{len(esp)} ESP SPI(s), traffic both ways", evidence=evidence
    )
