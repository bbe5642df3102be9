"""The initiator state machine on a fake clock, against the scripted responder in memory: no sockets,
no sleeping, deterministic randomness."""

from __future__ import annotations

import hashlib
import random
from collections.abc import Callable

import pytest

from tests.ike.responder import ScriptedResponder
from vpndoctor.ike import initiator as ini
from vpndoctor.ike.constants import ExchangeType, NotifyType
from vpndoctor.ike.proposals import parse_proposal

LOCAL = ("198.51.100.10", 40000)
REMOTE = ("203.0.113.10", 500)


def rng_from(seed: int) -> ini.Rng:
    r = random.Random(seed)
    return lambda n: bytes(r.getrandbits(8) for _ in range(n))


def machine(*proposals: str, **kw: object) -> ini.Initiator:
    cfg = ini.InitiatorConfig(
        proposals=tuple(
            parse_proposal(p) for p in (proposals or ("aes256-sha256-modp2048", "aes128-sha256-ecp256"))
        ),
        **kw,
    )  # type: ignore[arg-type]
    return ini.Initiator(cfg, rng=rng_from(1), local=LOCAL, remote=REMOTE)


def run(
    m: ini.Initiator,
    responder: ScriptedResponder | None,
    *,
    drop: set[int] | None = None,
    max_steps: int = 200,
) -> tuple[list[object], float]:
    """Pump datagrams between the machine and the responder on a fake clock."""
    now = 0.0
    m.start(now)
    sent = 0
    for _ in range(max_steps):
        out = m.datagrams_to_send(now)
        for data, addr in out:
            sent += 1
            if responder is None or (drop and sent in drop):
                continue
            for reply in responder.handle(data, natt=addr[1] == 4500):
                wire = b"\x00\x00\x00\x00" + reply if addr[1] == 4500 else reply
                m.receive_datagram(wire, (REMOTE[0], addr[1]), now)
        if out:
            continue
        if m.finished:
            break
        timer = m.get_timer()
        assert timer is not None, "an unfinished machine always has a timer"
        now = max(now, timer)
        m.handle_timer(now)
    events = []
    while (e := m.next_event()) is not None:
        events.append(e)
    return events, now


def of(events: list[object], cls: type) -> list:
    return [e for e in events if isinstance(e, cls)]


def test_full_exchange_in_memory() -> None:
    m = machine()
    events, _ = run(m, ScriptedResponder())
    assert m.reached == "IKE_AUTH"
    auth = of(events, ini.AuthDone)[0]
    assert auth.auth_verified is True, auth.auth_reason
    assert auth.idr == b"hostile.test"
    assert of(events, ini.EapMethodRequested)[0].eap_type == 26
    assert of(events, ini.Finished)[0].reached == "IKE_AUTH"
    assert m.round_trips == 4  # SA_INIT, IKE_AUTH, EAP identity, Delete


def test_no_answer_retransmits_with_backoff_then_times_out() -> None:
    m = machine(retransmit_timeout_s=0.5, retransmit_backoff=2.0, retransmit_tries=4)
    events, now = run(m, None)
    outs = [e for e in of(events, ini.DatagramEvent) if e.direction == "out"]
    assert [e.t for e in outs] == [0.0, 0.5, 1.5, 3.5]
    assert all(e.summary.startswith("retransmit") for e in outs[1:])
    timeout = of(events, ini.Timeout)[0]
    assert (timeout.exchange, timeout.attempts) == (ExchangeType.IKE_SA_INIT, 4)
    assert now == 7.5 and m.reached == "none"


def test_lost_response_is_recovered_by_retransmission() -> None:
    m = machine()
    events, _ = run(m, ScriptedResponder(), drop={1})
    assert m.reached == "IKE_AUTH"


def test_cookie_is_echoed() -> None:
    m = machine()
    events, _ = run(m, ScriptedResponder(behaviour="cookie"))
    assert of(events, ini.CookieRequested)
    assert m.reached == "IKE_AUTH"


def test_invalid_ke_retried_once_with_requested_group() -> None:
    m = machine()
    events, _ = run(m, ScriptedResponder(behaviour="invalid-ke"))
    req = of(events, ini.KeGroupRequested)[0]
    assert (req.requested_group, req.offered_group) == (19, 14)
    assert of(events, ini.SaInitDone)[0].ke_group == 19
    assert m.reached == "IKE_AUTH"


def test_invalid_ke_for_a_group_not_offered_is_an_error() -> None:
    m = machine("aes256-sha256-modp2048")
    events, _ = run(m, ScriptedResponder(behaviour="invalid-ke"))
    err = of(events, ini.ErrorNotify)[0]
    assert err.notify == NotifyType.INVALID_KE_PAYLOAD
    assert m.reached == "none"


def test_no_proposal_chosen() -> None:
    m = machine()
    events, _ = run(m, ScriptedResponder(behaviour="no-proposal"))
    assert of(events, ini.ErrorNotify)[0].notify == NotifyType.NO_PROPOSAL_CHOSEN
    assert m.finished and m.reached == "none"


def test_authentication_failed() -> None:
    m = machine()
    events, _ = run(m, ScriptedResponder(behaviour="auth-failed"))
    assert of(events, ini.ErrorNotify)[0].notify == NotifyType.AUTHENTICATION_FAILED
    assert m.reached == "IKE_SA_INIT"


def test_fragmented_response_out_of_order_is_reassembled() -> None:
    m = machine()
    events, _ = run(m, ScriptedResponder(behaviour="fragmented"))
    auth = of(events, ini.AuthDone)[0]
    assert auth.response_fragments >= 3 and auth.auth_verified is True


@pytest.mark.parametrize(
    "behaviour",
    ["truncated", "bad-lengths", "wrong-spi", "garbage", "oversized", "silent-auth", "endless-fragments"],
)
def test_hostile_responses_end_in_a_typed_outcome(behaviour: str) -> None:
    m = machine()
    events, now = run(m, ScriptedResponder(behaviour=behaviour), max_steps=5000)
    assert m.finished
    assert of(events, ini.Timeout) or of(events, ini.PeerMisbehaved), events[-5:]
    assert now <= 7.5 + 7.5  # bounded by the retransmission schedule of at most two exchanges
    assert len(m.transcript) <= ini.MAX_TRANSCRIPT


def test_flood_keeps_a_bounded_transcript_with_room_for_the_exchange() -> None:
    # Each datagram we send is answered by 2,000 different garbage datagrams: the transcript keeps at most
    # MAX_TRANSCRIPT rows, garbage fills at most MAX_IGNORED_ROWS of them, and our own retransmissions,
    # sent after the first flood, are still there; everything else is counted, not kept.
    m = machine()
    events, _ = run(m, ScriptedResponder(behaviour="flood"), max_steps=50)
    assert of(events, ini.Timeout)
    rows = m.transcript
    outs = [d for d in rows if d.direction == "out"]
    ins = [d for d in rows if d.direction == "in"]
    sent = m.config.retransmit_tries  # transmissions, the first included
    assert len(outs) == sent and outs[-1].summary.startswith("retransmit IKE_SA_INIT")
    assert len(rows) <= 200 and rows[0].direction == "out" and rows[1].direction == "in"
    assert len(rows) <= ini.MAX_TRANSCRIPT and len(ins) <= ini.MAX_IGNORED_ROWS
    assert sum(d.repeat for d in ins) + m.transcript_dropped == 2000 * sent


def test_identical_datagrams_in_a_row_share_one_row() -> None:
    m = machine()
    events, _ = run(m, ScriptedResponder(behaviour="flood-same"), max_steps=50)
    assert of(events, ini.Timeout)
    sent = m.config.retransmit_tries  # transmissions, the first included
    assert [d.direction for d in m.transcript] == ["out", "in"] * sent
    assert [d.repeat for d in m.transcript if d.direction == "in"] == [2000] * sent
    assert m.transcript_dropped == 0


def test_forged_nat_detection_floats_to_4500() -> None:
    m = machine(force_nat=True)
    events, _ = run(m, ScriptedResponder())
    ports = {e.remote[1] for e in of(events, ini.DatagramEvent) if e.direction == "out"}
    assert ports == {500, 4500}
    assert m.reached == "IKE_AUTH"


def test_nat_detection_hash_is_rfc7296() -> None:
    m = machine()
    m.start(0.0)
    data, _ = m.datagrams_to_send(0.0)[0]
    from vpndoctor.ike.message import decode_message

    msg = decode_message(data)
    nat_d = [p for p in msg.payloads if getattr(p, "type", None) == NotifyType.NAT_DETECTION_DESTINATION_IP][
        0
    ]
    expected = hashlib.sha1(m.spi_i + b"\x00" * 8 + bytes([203, 0, 113, 10]) + (500).to_bytes(2, "big"))
    assert nat_d.data == expected.digest()


def test_misuse_is_a_local_error_and_sticky() -> None:
    m = machine()
    m.start(0.0)
    with pytest.raises(ini.LocalProtocolError):
        m.start(0.0)
    assert m.state is ini.State.FAILED
    with pytest.raises(ini.LocalProtocolError):
        machine("aes256-sha256-modp2048", ke_group=19).start(0.0)


# ---- politeness: stateless questions, ending SAs, affinity samples (issue #13) ---------------------------


def run_lossy(
    m: ini.Initiator,
    responder: ScriptedResponder,
    *,
    lose_request: Callable[[int, int, bytes], bool] = lambda _n, _port, _d: False,
    lose_reply: Callable[[int, bytes], bool] = lambda _port, _d: False,
    max_steps: int = 400,
) -> tuple[list[object], list[tuple[int, bytes]]]:
    """Like run(), with loss decided per request (n counts requests to the port; flow is m.natt_flow)."""
    now = 0.0
    m.start(now)
    wire: list[tuple[int, bytes]] = []
    for _ in range(max_steps):
        out = m.datagrams_to_send(now)
        for data, addr in out:
            wire.append((addr[1], data))
            if lose_request(m.natt_flow, addr[1], data):
                continue
            for reply in responder.handle(data, natt=addr[1] == 4500):
                if lose_reply(addr[1], reply):
                    continue
                m.receive_datagram(
                    b"\x00\x00\x00\x00" + reply if addr[1] == 4500 else reply, (REMOTE[0], addr[1]), now
                )
        if out:
            continue
        if m.finished:
            break
        timer = m.get_timer()
        assert timer is not None
        now = max(now, timer)
        m.handle_timer(now)
    events = []
    while (e := m.next_event()) is not None:
        events.append(e)
    return events, wire


def test_stateless_question_accepted_by_invalid_ke_and_leaves_nothing() -> None:
    m = machine("aes256-sha256-modp2048", stateless=True)
    responder = ScriptedResponder()
    events, _ = run(m, responder)
    assert m.config.first_group() == 19  # a group the proposal does not name
    assert of(events, ini.ProposalAccepted)[0].group == 14
    assert m.round_trips == 1 and not m.server_holds_state and not responder.half_open


def test_stateless_question_refused_by_no_proposal_chosen() -> None:
    m = machine("aes256-sha256-modp2048", stateless=True)
    events, _ = run(m, ScriptedResponder(behaviour="no-proposal"))
    assert not of(events, ini.ProposalAccepted)
    assert of(events, ini.ErrorNotify)[0].notify == NotifyType.NO_PROPOSAL_CHOSEN


def test_stateless_needs_a_free_group() -> None:
    every = (
        "aes128-sha256-ecp256",
        "aes128-sha256-modp2048",
        "aes128-sha256-modp1024",
        "aes128-sha256-ecp384",
        "aes128-sha256-x25519",
        "aes128-sha256-modp1536",
        "aes128-sha256-modp3072",
        "aes128-sha256-modp4096",
    )
    with pytest.raises(ini.LocalProtocolError):
        machine(*every, stateless=True).config.first_group()


def test_sa_init_only_ends_the_sa_with_a_refused_ike_auth() -> None:
    m = machine(stop_after="sa-init", send_certreq=False)
    responder = ScriptedResponder()
    events, _ = run(m, responder)
    assert m.reached == "IKE_SA_INIT" and m.round_trips == 2
    assert of(events, ini.ErrorNotify)[0].notify == NotifyType.AUTHENTICATION_FAILED
    assert not m.server_holds_state and not responder.half_open


def test_full_exchange_ends_the_half_open_sa() -> None:
    responder = ScriptedResponder()
    m = machine()
    run(m, responder)
    assert responder.processed == [1, 2, 3] and not responder.half_open and not m.server_holds_state


def test_lost_ike_auth_answer_is_ended_at_both_message_ids() -> None:
    """The answer to IKE_AUTH 1 is lost: the responder expects request 2, so the refusal at 2 ends it."""
    responder = ScriptedResponder()
    m = machine(stop_after="auth", retransmit_tries=2)
    events, _ = run_lossy(
        m,
        responder,
        lose_reply=lambda _p, r: r[18] == ExchangeType.IKE_AUTH and r[20:24] == b"\x00\x00\x00\x01",
    )
    assert of(events, ini.Timeout)[0].exchange == ExchangeType.IKE_AUTH
    assert responder.processed[:2] == [1, 2] and not responder.half_open
    assert not m.server_holds_state


def test_lost_ike_auth_request_is_ended_at_its_own_message_id() -> None:
    """IKE_AUTH 1 never reaches the responder: request 2 would be ignored, the refusal at 1 ends the SA."""
    responder = ScriptedResponder(behaviour="silent-auth")
    m = machine(stop_after="auth", retransmit_tries=2)
    events, _ = run(m, responder)
    assert of(events, ini.Timeout)
    assert not responder.half_open and not m.server_holds_state


def test_fresh_natt_flows_and_fallback_give_affinity_samples() -> None:
    """Every encrypted request on 4500 leaves from a new flow; one that is lost there and answered on 500
    is an 'elsewhere' sample."""
    responder = ScriptedResponder()
    m = machine(force_nat=True, fresh_natt_flows=True, fallback_port=500, retransmit_tries=2)
    # The second NAT-T flow (the EAP identity answer) is sent to a server that does not know the SA.
    events, wire = run_lossy(m, responder, lose_request=lambda flow, port, _d: port == 4500 and flow == 1)
    assert m.natt_samples[:2] == ["answered", "elsewhere"], m.natt_samples
    assert of(events, ini.FellBack)[0].port == 500
    assert not responder.half_open


def test_silence_on_both_ports_is_a_lost_sample_and_the_sa_is_still_ended() -> None:
    responder = ScriptedResponder()
    m = machine(
        stop_after="auth", force_nat=True, fresh_natt_flows=True, fallback_port=500, retransmit_tries=2
    )
    # Both copies of IKE_AUTH 1 arrive, only the answers are lost (too big for the path, say).
    events, _ = run_lossy(
        m,
        responder,
        lose_reply=lambda _p, r: r[18] == ExchangeType.IKE_AUTH and r[20:24] == b"\x00\x00\x00\x01",
    )
    assert m.natt_samples[0] == "lost"
    assert not responder.half_open and not m.server_holds_state


def test_adaptive_rto_follows_the_sa_init_round_trip() -> None:
    m = machine(adaptive_rto=True, retransmit_timeout_s=0.5, min_retransmit_timeout_s=0.25)
    events, now = run(m, ScriptedResponder(behaviour="silent-auth"))
    outs = [
        e for e in of(events, ini.DatagramEvent) if e.direction == "out" and "IKE_AUTH request 1" in e.summary
    ]
    assert [round(e.t, 2) for e in outs][:2] == [0.0, 0.25]  # 4 x 0 s round trip, floored at 0.25 s


def test_wind_down_sends_the_ending_request() -> None:
    responder = ScriptedResponder(behaviour="silent-auth")
    m = machine(stop_after="auth", retransmit_tries=4)
    now = 0.0
    m.start(now)
    for data, addr in m.datagrams_to_send(now):
        for reply in responder.handle(data, natt=False):
            m.receive_datagram(reply, (REMOTE[0], addr[1]), now)
    m.datagrams_to_send(now)  # IKE_AUTH 1: the responder stays silent
    assert m.server_holds_state
    assert m.wind_down(now) is True
    for data, addr in m.datagrams_to_send(now):
        for reply in responder.handle(data, natt=addr[1] == 4500):
            wire = b"\x00\x00\x00\x00" + reply if addr[1] == 4500 else reply
            m.receive_datagram(wire, (REMOTE[0], addr[1]), now)
    assert m.finished and not m.server_holds_state and not responder.half_open


def test_a_late_copy_of_the_same_cookie_is_not_a_new_demand() -> None:
    """Under load our IKE_SA_INIT is retransmitted before the server's COOKIE arrives: the server answers
    both with the same cookie. The second copy must not count as another demand (three used to end the
    probe with 'responder keeps demanding a new COOKIE')."""
    m = machine()
    responder = ScriptedResponder(behaviour="cookie")
    now = 0.0
    m.start(now)
    first = m.datagrams_to_send(now)
    now = 0.6  # no answer yet: retransmitted
    m.handle_timer(now)
    second = m.datagrams_to_send(now)
    replies = [r for data, _ in first + second for r in responder.handle(data, natt=False)]
    assert len(replies) == 2 and replies[0] == replies[1]
    for reply in replies:
        m.receive_datagram(reply, REMOTE, now)
    cookies = 0
    while (e := m.next_event()) is not None:
        cookies += isinstance(e, ini.CookieRequested)
    assert cookies == 1
    for data, _addr in m.datagrams_to_send(now):  # the cookie-bearing IKE_SA_INIT is answered for real
        for reply in responder.handle(data, natt=False):
            m.receive_datagram(reply, REMOTE, now)
    assert m.reached == "IKE_SA_INIT"
