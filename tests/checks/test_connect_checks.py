"""`checks.connect` on hand-made observations: the Windows error for every way an attempt can end, and the
findings for the cases no scripted server produces (a late EAP-Failure from a gateway waiting on RADIUS, a
weak ESP proposal, a CHILD_SA without an address)."""

from __future__ import annotations

from typing import Any

import pytest

from vpndoctor.checks import ids
from vpndoctor.checks.connect import connect_report, windows_error
from vpndoctor.observations.connect import (
    STAGES,
    ChildSaInfo,
    ConfigInfo,
    ConnectObservation,
    EapTlsInfo,
    StageInfo,
)


def obs(**changes: Any) -> ConnectObservation:
    base: dict[str, Any] = dict(
        tool={"name": "vpndoctor", "version": "test"},
        target="vpn.example.com",
        address="192.0.2.1",
        port=500,
        natt_port=4500,
        user="alice",
        identity="alice",
        spi_i="00" * 8,
        spi_r="11" * 8,
        started_at="2026-01-01T00:00:00+00:00",
        duration_s=0.1,
        stage_reached="CHILD_SA",
        connected=True,
        cause=None,
        failure=None,
        stages=[StageInfo(stage=s, result="ok", t=0.01) for s in STAGES],
        proposal=None,
        nat_detected=False,
        natt_used=False,
        idr="vpn.example.com",
        certificate=None,
        server_auth_method="DIGITAL_SIGNATURE",
        server_auth_verified=True,
        server_auth_reason=None,
        eap_requests=["IDENTITY", "MSCHAPV2", "MSCHAPV2"],
        eap_method="MSCHAPV2",
        eap_nak=[],
        eap_notifications=[],
        eap_server_message=None,
        eap_wait_s=0.01,
        auth_result="success",
        mschapv2_error=None,
        mschapv2_error_name=None,
        ike_sa_established=True,
        responder_auth_verified=True,
        esp_proposals_offered=["aes256gcm16"],
        child_sa=ChildSaInfo(
            esp_proposal="aes256gcm16",
            encryption="AES_GCM_16",
            key_bits=256,
            integrity=None,
            dh_group=None,
            esn=False,
            ts_i=["10.0.0.2/32"],
            ts_r=["0.0.0.0/0"],
            spi_i="01020304",
            spi_r="05060708",
        ),
        config=ConfigInfo(ipv4=["10.0.0.2"], ipv6=[], dns=["10.0.0.53"], dns_suffix=[], subnets=[], other=[]),
        error_notify=None,
        timeout_exchange=None,
        peer_error=None,
        keys_out=None,
        round_trips=7,
        request_fragments=0,
        response_fragments=0,
        datagrams=[],
        datagrams_dropped=0,
        icmp_errors=[],
        left_sa_on_server=False,
    )
    base.update(changes)
    return ConnectObservation(**base)


def failed(stage: str, cause: str, **changes: Any) -> ConnectObservation:
    after = [str(x) for x in STAGES].index(stage)
    defaults: dict[str, Any] = dict(
        stage_reached=stage,
        connected=False,
        cause=cause,
        failure=f"{cause} at {stage}",
        child_sa=None,
        config=None,
        auth_result="success" if after > 2 else None,
        ike_sa_established=after > 2,
    )
    return obs(**{**defaults, **changes})


@pytest.mark.parametrize(
    ("observation", "code"),
    [
        (failed("IKE_SA_INIT", "no-answer"), 809),
        (failed("IKE_SA_INIT", "error-notify", error_notify="NO_PROPOSAL_CHOSEN"), 13868),
        (failed("IKE_SA_INIT", "error-notify", error_notify="INVALID_KE_PAYLOAD"), 13868),
        (failed("IKE_AUTH", "no-answer"), 809),
        (failed("IKE_AUTH", "error-notify", error_notify="AUTHENTICATION_FAILED"), 13801),
        (failed("IKE_AUTH", "server-auth"), 13801),
        (failed("IKE_AUTH", "server-untrusted"), 0x800B0109),
        (failed("IKE_AUTH", "no-eap"), 13801),
        (
            failed(
                "EAP", "eap-failure", mschapv2_error=691, mschapv2_error_name="ERROR_AUTHENTICATION_FAILURE"
            ),
            691,
        ),
        (
            failed(
                "EAP", "eap-failure", mschapv2_error=649, mschapv2_error_name="ERROR_NO_DIALIN_PERMISSION"
            ),
            649,
        ),
        (failed("EAP", "eap-failure"), 691),
        (failed("EAP", "eap-method", eap_nak=["PEAP"]), 812),
        (failed("EAP", "no-answer"), 809),
        (failed("EAP", "error-notify", error_notify="AUTHENTICATION_FAILED"), 13801),
        (failed("EAP", "responder-auth"), 13801),
        (failed("EAP", "protocol"), 13843),
        (failed("CHILD_SA", "error-notify", error_notify="NO_PROPOSAL_CHOSEN"), 13868),
        (failed("CHILD_SA", "error-notify", error_notify="TS_UNACCEPTABLE"), 13868),
        (failed("CHILD_SA", "error-notify", error_notify="SINGLE_PAIR_REQUIRED"), 13868),
        (failed("CHILD_SA", "error-notify", error_notify="INTERNAL_ADDRESS_FAILURE"), 720),
    ],
    ids=lambda v: v if isinstance(v, int) else f"{v.stage_reached}-{v.cause}-{v.error_notify or ''}",
)
def test_windows_error_per_stage(observation: ConnectObservation, code: int) -> None:
    error = windows_error(observation)
    assert error is not None and error.code == code and error.why
    assert error.meaning is not None or code == 649  # 649 is a RAS error the catalogue does not hold
    if code == 649:
        assert error.name == "ERROR_NO_DIALIN_PERMISSION"


@pytest.mark.parametrize(
    "observation",
    [obs(), failed("IKE_SA_INIT", "throttled"), failed("CHILD_SA", "child-sa"), failed("EAP", "eap")],
)
def test_no_windows_error_when_none_is_known(observation: ConnectObservation) -> None:
    assert windows_error(observation) is None


def test_a_connected_report_passes_everything() -> None:
    report = connect_report(obs())
    assert [f.id for f in report.findings] == list(ids.CONNECT_ALL)
    assert {f.status for f in report.findings} == {"pass"} and report.windows_error is None
    assert all(f.title == ids.TITLES[f.id] for f in report.findings)


def test_a_late_eap_failure_points_at_radius() -> None:
    report = connect_report(failed("EAP", "eap-failure", eap_wait_s=14.2, auth_result="failure"))
    assert report.windows_error is not None and report.windows_error.code == 691
    assert "RADIUS" in report.windows_error.why
    eap = next(f for f in report.findings if f.id == ids.AUTH_EAP)
    assert eap.status == "fail" and "RADIUS" in eap.remedy and "14.2 s" in eap.detail


@pytest.mark.parametrize(("encryption", "status"), [("DES", "fail"), ("NULL", "fail"), ("3DES", "warn")])
def test_weak_esp(encryption: str, status: str) -> None:
    base = obs()
    assert base.child_sa is not None
    child = base.child_sa.model_copy(update={"encryption": encryption, "esp_proposal": encryption.lower()})
    report = connect_report(obs(child_sa=child))
    assert next(f for f in report.findings if f.id == ids.CHILD_SA_PROPOSAL).status == status


def test_addresses_and_dns() -> None:
    no_dns = ConfigInfo(ipv4=["10.0.0.2"], ipv6=[], dns=[], dns_suffix=[], subnets=[], other=[])
    assert connect_report(obs(config=no_dns)).findings[-1].status == "warn"
    nothing = ConfigInfo(ipv4=[], ipv6=[], dns=[], dns_suffix=[], subnets=[], other=[])
    last = connect_report(obs(config=nothing)).findings[-1]
    assert (last.status, last.error_codes) == ("fail", [720])
    assert connect_report(obs(config=None)).findings[-1].status == "fail"


def test_a_refused_child_sa_fails_that_finding_only() -> None:
    report = connect_report(failed("CHILD_SA", "error-notify", error_notify="NO_PROPOSAL_CHOSEN"))
    statuses = {f.id: f.status for f in report.findings}
    assert statuses == {
        ids.AUTH_SERVER: "pass",
        ids.AUTH_EAP: "pass",
        ids.AUTH_IKE_SA: "pass",
        ids.CHILD_SA_ESTABLISHED: "fail",
        ids.CHILD_SA_PROPOSAL: "skip",
        ids.CHILD_SA_CONFIG: "skip",
    }
    child = next(f for f in report.findings if f.id == ids.CHILD_SA_ESTABLISHED)
    assert child.error_codes == [13868] and "ESP" in child.remedy


@pytest.mark.parametrize("auth", ["eap-mschapv2", "machine-certificate"])
@pytest.mark.parametrize("connected", [True, False])
def test_the_terminal_report_renders(auth: str, connected: bool) -> None:
    """Both tunnels, up and refused, through the rich renderer (the lab tests read --json only)."""
    from rich.console import Console

    from vpndoctor.report.connect import render_connect

    changes: dict[str, Any] = {"auth": auth}
    if auth == "machine-certificate":
        changes["identity"] = "CN=device1.lab.test"
    observation = obs(**changes) if connected else failed("IKE_AUTH", "error-notify", **changes)
    console = Console(record=True, width=100, color_system=None)
    render_connect(connect_report(observation), console)
    text = console.export_text()
    assert ("device" in text) == (auth == "machine-certificate")
    assert text.strip()


def _tls(**changes: Any) -> EapTlsInfo:
    base: dict[str, Any] = dict(
        server_certificate="CN=nps.example",
        server_issuer="CN=Corp Root",
        server_not_after="2030-01-01T00:00:00+00:00",
        server_verified=True,
        server_reason=None,
        client_certificate="CN=alice@example",
        tls_version=None,
        cipher=None,
        alert_sent=None,
        alert_received=None,
    )
    base.update(changes)
    return EapTlsInfo(**base)


@pytest.mark.parametrize(
    ("tls", "code", "remedy_word"),
    [
        (
            _tls(server_verified=False, server_reason="not trusted: unknown CA", alert_sent="unknown_ca"),
            864,
            "root",
        ),
        (
            _tls(server_verified=False, server_reason="certificate has expired", server_expired=True),
            858,
            "renew",
        ),
        (_tls(client_certificate_refused=True), 853, "Client Authentication"),
        (_tls(alert_received="unknown_ca", client_certificate_refused=True), 853, "Client Authentication"),
    ],
    ids=["server-untrusted", "server-expired", "client-refused-silently", "client-refused-alert"],
)
def test_eap_tls_failures_name_the_certificate_that_failed(
    tls: EapTlsInfo, code: int, remedy_word: str
) -> None:
    observation = failed("EAP", "eap-failure", auth="eap-tls", eap_tls=tls, eap_method="TLS")
    report = connect_report(observation)
    assert report.windows_error is not None and report.windows_error.code == code
    assert report.windows_error.meaning
    eap = next(f for f in report.findings if f.id == ids.AUTH_EAP)
    assert eap.status == "fail" and code in eap.error_codes
    assert remedy_word.lower() in (eap.remedy or "").lower()


def test_a_peap_refusal_without_tls_trouble_is_691_and_success_names_the_method() -> None:
    tls = _tls(
        client_certificate=None, peap_inner="MSCHAPV2", peap_result="failure", crypto_binding="not-requested"
    )
    refused = failed("EAP", "eap-failure", auth="peap-mschapv2", eap_tls=tls, eap_method="PEAP")
    error = windows_error(refused)
    assert error is not None and error.code == 691
    good = tls.model_copy(update={"peap_result": "success"})
    ok = obs(auth="peap-mschapv2", eap_tls=good, eap_method="PEAP")
    eap = next(f for f in connect_report(ok).findings if f.id == ids.AUTH_EAP)
    assert eap.status == "pass" and "PEAP" in eap.detail and "CN=nps.example" in eap.detail
