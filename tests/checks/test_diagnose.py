"""The diagnose checks are pure: synthetic observations in, findings out (no sockets, no lab)."""

from __future__ import annotations

from typing import Any

from tests.sstp.synthetic import attempt, iphttps_obs, refused, sstp_obs
from vpndoctor.checks import ids
from vpndoctor.checks.diagnose import judge
from vpndoctor.cli.output import to_json
from vpndoctor.observations.diagnose import PROPOSAL_CATALOGUE, DiagnoseObservations, DiagnoseRequest
from vpndoctor.observations.dns import DnsObservation, ResolverAnswer
from vpndoctor.observations.ike import DatagramInfo, IkeObservation
from vpndoctor.observations.tls import TlsObservation


def ike(reached: str = "IKE_AUTH", **kw: Any) -> IkeObservation:
    base: dict[str, Any] = {
        "tool": {"name": "vpndoctor", "version": "t"},
        "target": "vpn.test",
        "address": "203.0.113.10",
        "port": 500,
        "natt_port": 4500,
        "spi_i": "00" * 8,
        "spi_r": "11" * 8,
        "started_at": "now",
        "duration_s": 0.1,
        "reached": reached,
        "proposal": None,
        "ke_group_requested": None,
        "cookie_rounds": 0,
        "notifies": [],
        "fragmentation_supported": True,
        "signature_hash_algorithms": [],
        "nat_detected": False,
        "nat_local": False,
        "nat_remote": False,
        "natt_used": True,
        "vendor_ids": [],
        "idr": None,
        "certificate": None,
        "auth_method": None,
        "auth_verified": False,
        "auth_reason": None,
        "eap_type": None,
        "error_notify": None,
        "timeout_exchange": None if reached == "IKE_AUTH" else "IKE_AUTH",
        "peer_error": None,
        "request_fragments": 0,
        "response_fragments": 0,
        "round_trips": 3,
        "datagrams": [DatagramInfo(t=0.0, dir="out", port=500, size=700, summary="IKE_SA_INIT request 0")],
        "icmp_errors": [],
        "certificate_chain_pem": [],
    }
    base.update(kw)
    return IkeObservation(**base)


def stateless(answer: str | None, **kw: Any) -> IkeObservation:
    """A stateless proposal question: INVALID_KE_PAYLOAD (accepted), NO_PROPOSAL_CHOSEN or silence."""
    return ike(
        "none",
        stateless_answer=answer,
        error_notify="NO_PROPOSAL_CHOSEN" if answer == "refused" else None,
        timeout_exchange="IKE_SA_INIT" if answer is None else None,
        round_trips=1,
        **kw,
    )


def pair(sample: str) -> IkeObservation:
    """A one-sample SA: IKE_AUTH with a refused AUTH sent to 4500 from a new source port."""
    answered = sample != "lost"
    return ike(
        "IKE_SA_INIT", error_notify="AUTHENTICATION_FAILED" if answered else None, natt_samples=[sample]
    )


def observations(**kw: Any) -> DiagnoseObservations:
    obs = DiagnoseObservations(request=DiagnoseRequest(name="vpn.test"), started_at="now")
    obs.dns = DnsObservation("vpn.test", (ResolverAnswer("system", ("203.0.113.10",)),))
    obs.address = "203.0.113.10"
    obs.tls = TlsObservation("203.0.113.10", 443, connected=True, handshake=True, version="TLSv1.3")
    obs.sstp = sstp_obs()
    obs.ike_main = ike(natt_samples=["answered"] * 3)
    obs.ike_nofrag = ike(
        datagrams=[DatagramInfo(t=0, dir="in", port=4500, size=1700, summary="big")],
        natt_samples=["answered"] * 3,
    )
    obs.ike_padded = stateless("accepted")
    obs.ike_natt = [stateless("accepted") for _ in range(2)]
    obs.ike_affinity = [pair("answered") for _ in range(2)]
    obs.proposals = {
        label: stateless("accepted" if s == "strong" else "refused") for label, _, s in PROPOSAL_CATALOGUE
    }
    for key, value in kw.items():
        setattr(obs, key, value)
    return obs


def statuses(obs: DiagnoseObservations) -> dict[str, str]:
    return {f.id: f.status for f in judge(obs).findings}


def test_every_id_once_in_order() -> None:
    report = judge(observations())
    assert [f.id for f in report.findings] == list(ids.ALL)


def test_fragments_dropped_without_server_fragmentation() -> None:
    obs = observations(
        ike_main=ike("IKE_SA_INIT", fragmentation_supported=False, natt_samples=["lost", "answered"]),
        ike_padded=stateless(None),
        ike_nofrag=ike("IKE_SA_INIT", fragmentation_supported=False, natt_samples=["lost", "answered"]),
        ike_affinity=[pair("answered") for _ in range(6)],
    )
    s = statuses(obs)
    assert s[ids.PATH_IP_FRAGMENTS] == "fail" and s[ids.IKE_FRAGMENTATION_SUPPORTED] == "fail"
    report = judge(obs)
    assert report.verdict.root_causes[0] == ids.PATH_IP_FRAGMENTS
    assert "IP fragments are dropped between client and server" in report.verdict.summary
    assert "EnableServerFragmentation" in report.verdict.summary


def test_fragments_dropped_but_mitigated_is_a_warning() -> None:
    obs = observations(
        ike_padded=stateless(None), ike_nofrag=ike("IKE_SA_INIT", natt_samples=["lost", "answered"])
    )
    s = statuses(obs)
    assert s[ids.PATH_IP_FRAGMENTS] == "warn" and s[ids.IKE_FRAGMENTATION_SUPPORTED] == "pass"
    assert judge(obs).verdict.status == "healthy"


def test_no_fragmentation_but_path_fine_is_a_warning() -> None:
    s = statuses(observations(ike_main=ike(fragmentation_supported=False)))
    assert s[ids.IKE_FRAGMENTATION_SUPPORTED] == "warn" and s[ids.PATH_IP_FRAGMENTS] == "pass"


def test_split_affinity_fails_on_the_first_sample_elsewhere() -> None:
    obs = observations(ike_affinity=[pair("answered"), pair("elsewhere"), pair("answered")])
    s = statuses(obs)
    assert s[ids.LB_PORT_AFFINITY] == "fail" and s[ids.IKE_UDP4500_REACHABLE] == "pass"
    f = next(f for f in judge(obs).findings if f.id == ids.LB_PORT_AFFINITY)
    assert f.evidence["first_elsewhere"]["request"] == 1 and f.evidence["samples"] == 9


def test_affinity_needs_eight_agreeing_samples() -> None:
    seven = observations(ike_affinity=[pair("answered")])  # 3 + 3 + 1
    f = next(f for f in judge(seven).findings if f.id == ids.LB_PORT_AFFINITY)
    assert f.status == "skip" and "Inconclusive (7 samples, 8 needed)" in f.detail
    assert f.evidence["samples_answered_on_4500"] == 7
    eight = observations(ike_affinity=[pair("answered"), pair("answered")])
    f = next(f for f in judge(eight).findings if f.id == ids.LB_PORT_AFFINITY)
    assert f.status == "pass" and f.evidence["samples_answered_on_4500"] == 8 and "1 in 256" in f.detail


def test_4500_blocked_is_not_mistaken_for_affinity() -> None:
    """Silence on 4500 and answers on 500 for every sample: a blocked port, not a load balancer."""
    obs = observations(
        ike_main=ike(natt_samples=["elsewhere"] * 3),
        ike_nofrag=ike(natt_samples=["elsewhere"] * 3),
        ike_affinity=[pair("elsewhere") for _ in range(2)],
        ike_natt=[stateless(None) for _ in range(2)],
        ike_natt_control=stateless("accepted"),
    )
    s = statuses(obs)
    assert s[ids.IKE_UDP4500_REACHABLE] == "fail" and s[ids.LB_PORT_AFFINITY] == "skip"


def test_4500_silent_while_the_gateway_ignores_us_is_throttling_not_a_fault() -> None:
    obs = observations(
        ike_main=ike(natt_samples=["lost"]),
        ike_nofrag=ike(natt_samples=["lost"]),
        ike_affinity=[],
        ike_natt=[stateless(None) for _ in range(2)],
        ike_natt_control=stateless(None),
    )
    f = {f.id: f for f in judge(obs).findings}
    assert f[ids.IKE_UDP4500_REACHABLE].status == "skip"
    assert f[ids.IKE_UDP4500_REACHABLE].evidence["throttled"] is True
    assert "rate-limits this client" in f[ids.IKE_UDP4500_REACHABLE].detail
    assert judge(obs).verdict.status == "healthy"


def test_probes_our_budget_could_not_fit_are_skipped_as_throttled() -> None:
    not_run = ike(
        "none",
        throttled="our half-open budget had no place for this probe before the deadline",
        datagrams=[],
        round_trips=0,
    )
    obs = observations(ike_main=not_run)
    f = {f.id: f for f in judge(obs).findings}
    for fid in (ids.CERT_NAME, ids.PATH_IP_FRAGMENTS, ids.IKE_FRAGMENTATION_SUPPORTED):
        assert f[fid].status == "skip" and f[fid].evidence["throttled"] is True, fid
    assert f[ids.IKE_UDP500_REACHABLE].status == "pass"  # the other probes were answered on 500


def test_nxdomain_skips_everything_else() -> None:
    obs = observations()
    obs.dns = DnsObservation("vpn.test", (ResolverAnswer("system", error="NXDOMAIN"),))
    obs.address = None
    s = statuses(obs)
    assert s[ids.DNS_RESOLUTION] == "fail"
    assert {v for k, v in s.items() if k != ids.DNS_RESOLUTION} == {"skip"}


def test_resolvers_that_disagree_fail() -> None:
    obs = observations()
    obs.dns = DnsObservation(
        "vpn.test",
        (ResolverAnswer("system", ("203.0.113.10",)), ResolverAnswer("192.0.2.53", ("203.0.113.99",))),
    )
    assert statuses(obs)[ids.DNS_RESOLUTION] == "fail"


def test_only_weak_proposals_fail() -> None:
    proposals = {
        label: stateless("accepted" if s == "weak" else "refused") for label, _, s in PROPOSAL_CATALOGUE
    }
    assert statuses(observations(proposals=proposals))[ids.IKE_PROPOSALS_STRENGTH] == "fail"
    proposals = {label: stateless("accepted") for label, _, _ in PROPOSAL_CATALOGUE}
    assert statuses(observations(proposals=proposals))[ids.IKE_PROPOSALS_STRENGTH] == "warn"
    assert statuses(observations())[ids.IKE_PROPOSALS_STRENGTH] == "pass"


def test_unanswered_proposal_questions_are_no_verdict() -> None:
    """Weak accepted and one strong question unanswered: it might be accepted, so no 'fail'."""
    proposals = {
        label: stateless("accepted" if s == "weak" else "refused") for label, _, s in PROPOSAL_CATALOGUE
    }
    proposals["gcm256-ecp384"] = stateless(None)
    f = next(
        f for f in judge(observations(proposals=proposals)).findings if f.id == ids.IKE_PROPOSALS_STRENGTH
    )
    assert (
        f.status == "skip"
        and f.evidence["throttled"] is True
        and f.evidence["unanswered"] == ["gcm256-ecp384"]
    )


def test_no_certificate_skips_cert_checks() -> None:
    s = statuses(observations())
    assert all(s[fid] == "skip" for fid in (ids.CERT_NAME, ids.CERT_EKU, ids.CERT_VALIDITY, ids.CERT_TRUST))


def test_public_resolver_answering_a_private_address_warns() -> None:
    obs = observations()
    obs.dns = DnsObservation(
        "vpn.test", (ResolverAnswer("system", ("10.1.2.3",)), ResolverAnswer("9.9.9.9", ("10.1.2.3",)))
    )
    assert statuses(obs)[ids.DNS_RESOLUTION] == "warn"


def test_expect_ip_missing_fails_first() -> None:
    obs = observations()
    obs.request.expect_ips = ["203.0.113.77"]
    report = judge(obs)
    assert report.verdict.root_causes[0] == ids.DNS_RESOLUTION


def test_sstp_handshake_passes_and_fails() -> None:
    assert statuses(observations())[ids.SSTP_HANDSHAKE] == "pass"
    blocked = observations(
        tls=TlsObservation(
            "203.0.113.10", 443, connected=False, handshake=False, error="TCP connect timed out"
        ),
        sstp=sstp_obs("blocked"),
    )
    report = judge(blocked)
    assert report.verdict.root_causes == [ids.TCP443_REACHABLE, ids.SSTP_HANDSHAKE]
    assert "SSTP" in report.verdict.summary
    s = statuses(observations(sstp=sstp_obs("http404")))
    assert s[ids.SSTP_HANDSHAKE] == "fail" and s[ids.TCP443_REACHABLE] == "pass"


def test_sstp_skipped_when_not_asked() -> None:
    obs = observations(tls=None, sstp=None)
    obs.request.protocols = ("ikev2",)
    f = next(f for f in judge(obs).findings if f.id == ids.SSTP_HANDSHAKE)
    assert f.status == "skip" and "not among --protocols" in f.detail


def test_iphttps_findings_only_when_asked() -> None:
    assert not [f for f in judge(observations()).findings if f.id.startswith("iphttps.")]
    obs = observations(iphttps=iphttps_obs(refused(how="closed"), attempt("client-cert")))
    obs.request.protocols = ("ikev2", "sstp", "iphttps")
    report = judge(obs)
    assert [f.id for f in report.findings] == list(ids.ALL) + list(ids.IPHTTPS_ALL)
    assert {f.id: f.status for f in report.findings}[ids.IPHTTPS_CLIENT_AUTH] == "pass"
    assert report.verdict.status == "healthy"
    obs.dns = DnsObservation("vpn.test", (ResolverAnswer("system", error="NXDOMAIN"),))
    obs.address = None
    report = judge(obs)
    assert [f.id for f in report.findings] == list(ids.ALL) + list(ids.IPHTTPS_ALL)
    assert {f.status for f in report.findings[1:]} == {"skip"}


def test_one_table_of_ids_and_titles() -> None:
    """Every id of diagnose, sstp, iphttps, tls, capture, connect, cert and tunnel is defined once in
    checks.ids, with one title."""
    every = (*ids.ALL, *ids.IPHTTPS_ALL, *ids.SSTP_ALL, *ids.TLS_ALL, *ids.CAPTURE_ALL)
    every += (*ids.CONNECT_ALL, *ids.CERT_LINT_ALL, *ids.TUNNEL_ALL)
    assert len(every) == len(set(every))
    assert set(every) == set(ids.TITLES)
    assert all(ids.TITLES[fid] for fid in every)


def test_connect_findings_only_with_credentials() -> None:
    """Without credentials no `auth.*` / `child_sa.*` finding; with a connection, all of them after the
    others, in the order of `vpndoctor connect`."""
    from tests.checks.test_connect_checks import obs as connect_obs

    without = judge(observations())
    assert not {f.id for f in without.findings} & set(ids.CONNECT_ALL)
    assert "auth." not in to_json(without) and "child_sa" not in to_json(without)
    report = judge(observations(connect=connect_obs()))
    assert [f.id for f in report.findings] == [*ids.ALL, *ids.CONNECT_ALL]
    assert {f.status for f in report.findings if f.id in ids.CONNECT_ALL} == {"pass"}
    assert report.verdict.status == without.verdict.status


def test_a_refused_user_counts_in_the_verdict() -> None:
    from tests.checks.test_connect_checks import failed

    refused = failed("EAP", "eap-failure", auth_result="failure", mschapv2_error=691)
    report = judge(observations(connect=refused))
    eap = next(f for f in report.findings if f.id == ids.AUTH_EAP)
    assert eap.status == "fail" and 691 in eap.error_codes
    assert report.verdict.status == "problems" and ids.AUTH_EAP in report.verdict.root_causes
    assert "691" in report.verdict.summary
