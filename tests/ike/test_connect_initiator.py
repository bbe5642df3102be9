"""The initiator all the way to the CHILD_SA (stop_after="child-sa") on a fake clock, against the scripted EAP
responder in memory: the EAP conversation, the MSK-keyed AUTH both ways, the CHILD_SA and its refusals, the
Delete that ends an established IKE SA, and what is sent when answers go missing."""

from __future__ import annotations

import pytest

from tests.eap import fixed_rng
from tests.ike.eap_responder import (
    CHILD_ERRORS,
    DNS_SUFFIX,
    PASSWORD,
    USER,
    VIRTUAL_IP4,
    ConnectResponder,
)
from tests.ike.test_initiator import LOCAL, REMOTE, of, rng_from, run
from vpndoctor.capture.decrypt import parse_keys
from vpndoctor.eap import mschapv2 as m
from vpndoctor.eap.peer import EapFailed, EapIdentityRequested, EapMethodRefused, EapPeer, EapSucceeded
from vpndoctor.ike import initiator as ini
from vpndoctor.ike.constants import (
    CfgAttr,
    EapCode,
    EapType,
    EncrId,
    ExchangeType,
    IdType,
    IntegId,
    NotifyType,
    ProtocolId,
    TransformType,
)
from vpndoctor.ike.message import decode_message, decode_payload_chain
from vpndoctor.ike.payloads import CpPayload, IdPayload, SaPayload, TsPayload
from vpndoctor.ike.proposals import WINDOWS_ESP_PROPOSALS, parse_esp_proposal, parse_proposal
from vpndoctor.ike.sk import unprotect


def peer(password: str = PASSWORD, user: str = USER) -> EapPeer:
    return EapPeer(user, m.MsChapV2Method(user, password, rng=fixed_rng()))


def connecting(
    *, password: str = PASSWORD, accept: object = None, **kw: object
) -> tuple[ini.Initiator, EapPeer]:
    kw.setdefault("identity", USER)
    cfg = ini.InitiatorConfig(
        proposals=(parse_proposal("aes256-sha256-modp2048"),),
        stop_after="child-sa",
        **kw,  # type: ignore[arg-type]
    )
    p = peer(password)
    machine = ini.Initiator(
        cfg,
        rng=rng_from(7),
        local=LOCAL,
        remote=REMOTE,
        eap_peer=p,
        accept_server=accept,  # type: ignore[arg-type]
    )
    return machine, p


def test_all_the_way_to_the_child_sa() -> None:
    machine, p = connecting()
    server = ConnectResponder()
    events, _ = run(machine, server)
    assert machine.reached == "CHILD_SA" and of(events, ini.Finished)[0].reached == "CHILD_SA"
    rounds = of(events, ini.EapRound)
    assert [(r.code, r.eap_type) for r in rounds] == [
        (EapCode.REQUEST, EapType.IDENTITY),
        (EapCode.REQUEST, EapType.MSCHAPV2),  # Challenge
        (EapCode.REQUEST, EapType.MSCHAPV2),  # Success request (S= checked)
        (EapCode.SUCCESS, None),
    ]
    assert any(isinstance(e, EapIdentityRequested) for e in rounds[0].events)
    assert any(isinstance(e, m.MsChapV2ServerAuthenticated) for e in rounds[2].events)
    assert any(isinstance(e, EapSucceeded) for e in rounds[3].events)
    established = of(events, ini.IkeSaEstablished)[0]
    assert established.verified, established.reason
    child = of(events, ini.ChildSaResult)[0]
    assert child.established and child.error is None and child.reason is None
    assert child.suite is not None and child.suite.text == "aes256gcm16"
    assert child.spi_i == machine.child_spi_i and len(child.spi_i) == 4 and child.spi_r is not None
    config = dict(child.config)
    assert config[CfgAttr.INTERNAL_IP4_ADDRESS] == bytes([10, 9, 0, 2])
    assert config[CfgAttr.INTERNAL_DNS_DOMAIN] == DNS_SUFFIX.encode()
    assert [str(ts.start_ip) for ts in child.ts_i] == [VIRTUAL_IP4, "2001:db8:99::2"]
    assert [str(ts.start_ip) for ts in child.ts_r] == ["0.0.0.0", "::"]
    # the CHILD_SA keys both sides derived (KEYMAT = prf+(SK_d, Ni | Nr)) are the same
    assert machine._child_keys is not None and machine._child_keys == server.child_keys
    assert "secret" in repr(machine._child_keys)
    # the IKE SA was ended with an INFORMATIONAL Delete, and the server knows nothing of us any more
    assert server.deleted and not machine.server_holds_state
    assert server.received == [
        "Id CertReq Cp Sa Ts Ts",
        "Eap",
        "Eap",
        "Eap",
        "Auth",
        "Delete",
    ]
    assert machine.round_trips == 7  # SA_INIT, IKE_AUTH x5 (first, 3 EAP, AUTH), INFORMATIONAL
    outs = [d.summary for d in machine.transcript if d.direction == "out"]
    assert outs[-1].startswith("INFORMATIONAL request 6 [ D ]")


def test_the_first_ike_auth_asks_as_windows_does() -> None:
    machine, _ = connecting()
    server = ConnectResponder()
    run(machine, server)
    sa = next(p for p in server.child_request if isinstance(p, SaPayload))
    offered = [
        "/".join(f"{t.type}:{t.id}:{t.key_length}" for t in proposal.transforms) for proposal in sa.proposals
    ]
    assert len(offered) == len(WINDOWS_ESP_PROPOSALS) == 6
    assert all(p.protocol == ProtocolId.ESP and p.spi == machine.child_spi_i for p in sa.proposals)
    first = sa.proposals[0].transforms
    assert [(t.type, t.id, t.key_length) for t in first] == [
        (TransformType.ENCR, EncrId.AES_CBC, 256),
        (TransformType.INTEG, IntegId.HMAC_SHA1_96, None),
        (TransformType.ESN, 0, None),
    ]
    assert not any(t.type == TransformType.DH for p in sa.proposals for t in p.transforms)  # no PFS
    gcm = sa.proposals[-1].transforms
    assert [(t.type, t.id, t.key_length) for t in gcm] == [
        (TransformType.ENCR, EncrId.AES_GCM_16, 256),
        (TransformType.ESN, 0, None),
    ]
    ts = [p for p in server.child_request if isinstance(p, TsPayload)]
    assert [[(str(s.start_ip), str(s.end_ip), s.end_port) for s in t.selectors] for t in ts] == [
        [("0.0.0.0", "255.255.255.255", 65535), ("::", "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", 65535)]
    ] * 2
    cp = next(p for p in server.child_request if isinstance(p, CpPayload))
    assert [a for a, _ in cp.attributes] == [
        CfgAttr.INTERNAL_IP4_ADDRESS,
        CfgAttr.INTERNAL_IP4_DNS,
        CfgAttr.INTERNAL_IP6_ADDRESS,
        CfgAttr.INTERNAL_IP6_DNS,
        CfgAttr.INTERNAL_DNS_DOMAIN,
    ]


def test_an_esp_proposal_override_is_offered_alone() -> None:
    machine, _ = connecting(esp_proposals=(parse_esp_proposal("aes128-sha256-modp2048"),))
    server = ConnectResponder()
    events, _ = run(machine, server)
    sa = next(p for p in server.child_request if isinstance(p, SaPayload))
    assert len(sa.proposals) == 1
    assert {(t.type, t.id) for t in sa.proposals[0].transforms} == {
        (TransformType.ENCR, EncrId.AES_CBC),
        (TransformType.INTEG, IntegId.HMAC_SHA2_256_128),
        (TransformType.DH, 14),
        (TransformType.ESN, 0),
    }
    child = of(events, ini.ChildSaResult)[0]
    assert child.established and child.suite is not None and child.suite.text == "aes128-sha256"


def test_an_address_identity_is_sent_as_one() -> None:
    machine, _ = connecting(identity="198.51.100.10")
    server = ConnectResponder()
    run(machine, server)
    idi = IdPayload.decode_body(server.idi_body)
    assert idi.id_type == IdType.IPV4_ADDR and idi.data == bytes([198, 51, 100, 10])


def test_wrong_password_ends_in_eap_with_error_691() -> None:
    machine, _ = connecting()
    server = ConnectResponder(behaviour="wrong-password")
    events, _ = run(machine, server)
    assert machine.reached == "EAP"
    failures = [e for r in of(events, ini.EapRound) for e in r.events if isinstance(e, m.MsChapV2Failure)]
    assert [f.error for f in failures] == [691]
    assert any(isinstance(e, EapFailed) for r in of(events, ini.EapRound) for e in r.events)
    assert not of(events, ini.IkeSaEstablished) and not of(events, ini.ChildSaResult)
    assert not machine.server_holds_state and not server.half_open
    assert server.eap is not None and server.eap.msk is None


def test_a_server_offering_only_peap_gets_a_nak() -> None:
    machine, _ = connecting()
    events, _ = run(machine, ConnectResponder(behaviour="peap-only"))
    refused = [e for r in of(events, ini.EapRound) for e in r.events if isinstance(e, EapMethodRefused)]
    assert [(e.offered, e.proposed) for e in refused] == [(EapType.PEAP, EapType.MSCHAPV2)]
    assert of(events, ini.EapRound)[-1].code == EapCode.FAILURE
    assert machine.reached == "EAP" and not machine.server_holds_state


def test_silence_after_the_eap_response_is_a_timeout_at_eap() -> None:
    machine, _ = connecting()
    server = ConnectResponder(behaviour="eap-silent")
    events, now = run(machine, server, max_steps=500)
    timeout = of(events, ini.Timeout)[0]
    assert (timeout.exchange, timeout.message_id) == (ExchangeType.IKE_AUTH, 3)
    assert machine.reached == "EAP"
    # the half-open SA is ended the usual way: a refused AUTH at the unanswered ID and the next
    assert not server.half_open and not machine.server_holds_state
    assert now < 20


@pytest.mark.parametrize("behaviour", sorted(CHILD_ERRORS))
def test_a_refused_child_sa_leaves_the_ike_sa_up_until_our_delete(behaviour: str) -> None:
    machine, _ = connecting()
    server = ConnectResponder(behaviour=behaviour)
    events, _ = run(machine, server)
    assert of(events, ini.IkeSaEstablished)[0].verified
    assert machine.reached == "CHILD_SA"
    child = of(events, ini.ChildSaResult)[0]
    assert not child.established and child.error == CHILD_ERRORS[behaviour]
    assert of(events, ini.ErrorNotify)[0].notify == CHILD_ERRORS[behaviour]
    assert dict(child.config)[CfgAttr.INTERNAL_IP4_ADDRESS]  # a CFG_REPLY may come all the same
    assert server.deleted and not machine.server_holds_state


def test_no_acceptable_esp_proposal() -> None:
    machine, _ = connecting(esp_proposals=(parse_esp_proposal("3des-sha1"),))
    server = ConnectResponder(esp_only=(EncrId.AES_CBC,))
    events, _ = run(machine, server)
    child = of(events, ini.ChildSaResult)[0]
    assert child.error == NotifyType.NO_PROPOSAL_CHOSEN and server.deleted


def test_a_childless_answer_is_no_child_sa() -> None:
    machine, _ = connecting()
    server = ConnectResponder(behaviour="childless")
    events, _ = run(machine, server)
    child = of(events, ini.ChildSaResult)[0]
    assert not child.established and child.error is None and "no SA" in (child.reason or "")
    assert server.deleted


def test_authentication_failed_after_eap() -> None:
    machine, _ = connecting()
    server = ConnectResponder(behaviour="auth-failed-final")
    events, _ = run(machine, server)
    assert of(events, ini.ErrorNotify)[0].notify == NotifyType.AUTHENTICATION_FAILED
    assert machine.reached == "EAP" and not of(events, ini.IkeSaEstablished)
    assert not machine.server_holds_state


def test_a_wrong_responder_auth_after_eap_is_refused_and_the_sa_deleted() -> None:
    machine, _ = connecting()
    server = ConnectResponder(behaviour="bad-responder-auth")
    events, _ = run(machine, server)
    est = of(events, ini.IkeSaEstablished)[0]
    assert not est.verified and "does not match" in (est.reason or "")
    stopped = of(events, ini.ConnectStopped)[0]
    assert (stopped.stage, stopped.cause) == ("EAP", "responder-auth")
    assert not of(events, ini.ChildSaResult)
    assert server.deleted and not machine.server_holds_state


def test_a_server_auth_that_does_not_verify_gets_no_eap_answer() -> None:
    machine, _ = connecting()
    server = ConnectResponder(behaviour="bad-server-auth")
    events, _ = run(machine, server)
    stopped = of(events, ini.ConnectStopped)[0]
    assert (stopped.stage, stopped.cause) == ("IKE_AUTH", "server-auth")
    assert not of(events, ini.EapRound)
    assert server.eap is not None and server.eap.log == []  # not even our identity was sent
    assert not server.half_open and not machine.server_holds_state


def test_the_caller_may_refuse_the_server_before_eap() -> None:
    seen: list[ini.AuthDone] = []

    def refuse(auth: ini.AuthDone) -> str | None:
        seen.append(auth)
        return "the certificate is not issued by --ca"

    machine, _ = connecting(accept=refuse)
    server = ConnectResponder()
    events, _ = run(machine, server)
    assert seen and seen[0].idr == b"hostile.test" and seen[0].certificates
    stopped = of(events, ini.ConnectStopped)[0]
    assert (stopped.stage, stopped.cause, stopped.reason) == (
        "IKE_AUTH",
        "server-refused",
        "the certificate is not issued by --ca",
    )
    assert server.eap is not None and server.eap.log == [] and not server.half_open


def test_a_server_that_starts_no_eap() -> None:
    machine, _ = connecting()
    events, _ = run(machine, ConnectResponder(behaviour="no-eap"))
    stopped = of(events, ini.ConnectStopped)[0]
    assert (stopped.stage, stopped.cause) == ("IKE_AUTH", "no-eap")
    assert not machine.server_holds_state


def test_a_lost_last_answer_ends_the_sa_whichever_request_the_server_expects() -> None:
    machine, _ = connecting(retransmit_tries=3)
    server = ConnectResponder(lose_final_answers=3)
    events, _ = run(machine, server, max_steps=500)
    timeout = of(events, ini.Timeout)[0]
    assert (timeout.exchange, timeout.message_id) == (ExchangeType.IKE_AUTH, 5)
    last = [d.summary for d in machine.transcript if d.direction == "out"][-2:]
    assert last[0].startswith("IKE_AUTH request 5 [ AUTH ]")
    assert last[1].startswith("INFORMATIONAL request 6 [ D ]")
    assert server.deleted and machine.finished and not machine.server_holds_state


def test_the_ike_keys_line_decrypts_what_was_sent() -> None:
    machine, _ = connecting()
    server = ConnectResponder()
    wire: list[bytes] = []
    run_recording(machine, server, wire)
    line = machine.wireshark_keys()
    assert line is not None and line.startswith(machine.spi_i.hex() + "," + machine.spi_r.hex() + ",")
    table = parse_keys(line)
    keys = table.lookup(machine.spi_i, machine.spi_r, True)
    assert keys is not None
    auth_request = decode_message(wire[1])
    assert auth_request.header.exchange == ExchangeType.IKE_AUTH
    first, plain = unprotect(wire[1], keys.keys, keys.suite)
    payloads = decode_payload_chain(first, plain)
    assert isinstance(payloads[0], IdPayload) and payloads[0].data == USER.encode()


def run_recording(machine: ini.Initiator, server: ConnectResponder, wire: list[bytes]) -> None:
    now = 0.0
    machine.start(now)
    for _ in range(200):
        out = machine.datagrams_to_send(now)
        for data, addr in out:
            wire.append(data)
            for reply in server.handle(data, natt=addr[1] == 4500):
                machine.receive_datagram(reply, (REMOTE[0], addr[1]), now)
        if not out and machine.finished:
            return
        if not out:
            timer = machine.get_timer()
            assert timer is not None
            now = timer
            machine.handle_timer(now)


def test_child_sa_mode_needs_a_peer_and_a_peer_needs_it() -> None:
    cfg = ini.InitiatorConfig(proposals=(parse_proposal("aes256-sha256-modp2048"),), stop_after="child-sa")
    with pytest.raises(ini.LocalProtocolError):
        ini.Initiator(cfg, rng=rng_from(1), local=LOCAL, remote=REMOTE)
    with pytest.raises(ini.LocalProtocolError):
        ini.Initiator(
            ini.InitiatorConfig(proposals=cfg.proposals),
            rng=rng_from(1),
            local=LOCAL,
            remote=REMOTE,
            eap_peer=peer(),
        )


def test_no_secret_in_the_events_or_transcript() -> None:
    machine, p = connecting()
    server = ConnectResponder()
    events, _ = run(machine, server)
    assert server.eap is not None and server.eap.msk is not None
    text = repr(events) + repr(machine.transcript) + repr(p) + repr(machine.config)
    nt_hash = m.nt_password_hash(PASSWORD)
    for secret in (PASSWORD, nt_hash.hex(), server.eap.msk.hex(), server.eap.msk[:16].hex()):
        assert secret.lower() not in text.lower()
