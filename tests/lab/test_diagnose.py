"""`vpndoctor diagnose` against the lab's scenario matrix (real strongSwan, nftables, dnsmasq, sstpd):
each scenario yields exactly the expected set of failing ids, and the JSON matches schema/diagnose.json."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from tests.helpers import scenarios
from vpndoctor.checks import ids
from vpndoctor.lab import topology as t
from vpndoctor.lab.handle import Lab

pytestmark = pytest.mark.lab

SCHEMA = json.loads((Path(__file__).resolve().parents[2] / "schema" / "diagnose.json").read_text())


def diagnose(
    lab: Lab, *args: str, name: str = t.SERVER_NAME, order: tuple[str, ...] = ids.ALL
) -> tuple[int, dict[str, Any]]:
    proc = lab.run(
        "client",
        sys.executable,
        "-m",
        "vpndoctor",
        "diagnose",
        name,
        "--json",
        "--ca",
        lab.info.ca_file,
        "--resolver",
        t.DNS4,
        *args,
        timeout_s=120,
    )
    assert "Traceback" not in proc.stderr, proc.stderr
    report = json.loads(proc.stdout)
    jsonschema.validate(report, SCHEMA)
    assert [f["id"] for f in report["findings"]] == list(order), "every id exactly once, in order"
    return proc.returncode, report


def failing(report: dict[str, Any]) -> set[str]:
    return {f["id"] for f in report["findings"] if f["status"] == "fail"}


def status(report: dict[str, Any], fid: str) -> str:
    return next(f["status"] for f in report["findings"] if f["id"] == fid)


MATRIX = {
    "healthy": set(),
    "dns-nxdomain": {ids.DNS_RESOLUTION},
    "block-udp-500": {ids.IKE_UDP500_REACHABLE},
    "block-udp-4500": {ids.IKE_UDP4500_REACHABLE},
    "block-tcp-443": {ids.TCP443_REACHABLE, ids.SSTP_HANDSHAKE},
    "error-809-fragments": {ids.PATH_IP_FRAGMENTS, ids.IKE_FRAGMENTATION_SUPPORTED},
    "fragments-drop": set(),
    "lb-per-service": {ids.LB_PORT_AFFINITY},
    "cert-expired": {ids.CERT_VALIDITY},
    "cert-wrong-name": {ids.CERT_NAME},
    "cert-no-serverauth-eku": {ids.CERT_EKU},
    "cert-untrusted-ca": {ids.CERT_TRUST},
    "proposals-windows-default": {ids.IKE_PROPOSALS_STRENGTH},
    "nat-client": set(),
}


@pytest.mark.parametrize("lab", list(MATRIX), indirect=True)
def test_scenario_matrix(lab: Lab) -> None:
    code, report = diagnose(lab)
    expected = MATRIX[lab.scenario.name]
    assert failing(report) == expected, [(f["id"], f["status"], f["detail"]) for f in report["findings"]]
    assert report["verdict"]["status"] == ("problems" if expected else "healthy")
    assert set(report["verdict"]["root_causes"]) == expected
    assert code == (1 if expected else 0)
    if lab.scenario.name == "dns-nxdomain":
        skipped = {f["id"] for f in report["findings"] if f["status"] == "skip"}
        assert skipped == set(ids.ALL) - {ids.DNS_RESOLUTION}
    if lab.scenario.name in ("error-809-fragments", "fragments-drop"):
        summary = report["verdict"]["summary"]
        assert "IP fragments are dropped between client and server" in summary, summary
        assert "EnableServerFragmentation" in summary or "IKEv2 fragmentation" in summary, summary
    if lab.scenario.name == "fragments-drop":
        assert status(report, ids.PATH_IP_FRAGMENTS) == "warn"
    if lab.scenario.name == "error-809-fragments":
        assert report["verdict"]["root_causes"][0] == ids.PATH_IP_FRAGMENTS
        assert 809 in next(f for f in report["findings"] if f["id"] == ids.PATH_IP_FRAGMENTS)["error_codes"]


@scenarios("healthy")
def test_healthy_round_trips_and_speed(lab: Lab) -> None:
    code, report = diagnose(lab)
    assert code == 0, [(f["id"], f["detail"]) for f in report["findings"] if f["status"] == "fail"]
    assert report["round_trips"] <= 8
    assert report["target"]["addresses"] == sorted([t.VIP4, t.VIP6])


@scenarios("healthy")
def test_sstp_handshake_through_edge_and_lb(lab: Lab) -> None:
    """sstpd behind the lb answers a real SSTP client: HTTP 200 and CALL_CONNECT_ACK (not just TLS)."""
    _, report = diagnose(lab)
    finding = next(f for f in report["findings"] if f["id"] == ids.SSTP_HANDSHAKE)
    assert finding["status"] == "pass", finding
    assert finding["evidence"]["http_status"] == 200
    assert finding["evidence"]["call_connect"] == "ack"
    assert finding["evidence"]["server_header"].startswith("SSTP-Server/")
    assert set(finding["evidence"]["crypto_binding_hashes"]) == {"SHA1", "SHA256"}


@scenarios("block-tcp-443")
def test_sstp_handshake_blocked_names_tcp443(lab: Lab) -> None:
    code, report = diagnose(lab, "--protocols", "sstp", "--timeout-s", "3")
    assert code == 1 and report["duration_s"] <= 5
    finding = next(f for f in report["findings"] if f["id"] == ids.SSTP_HANDSHAKE)
    assert finding["status"] == "fail" and 809 in finding["error_codes"]
    assert "TCP connect" in finding["detail"] and "New-NetFirewallRule" in finding["remedy"]
    assert report["verdict"]["root_causes"] == [ids.TCP443_REACHABLE, ids.SSTP_HANDSHAKE]


@scenarios("healthy")
def test_iphttps_protocol_adds_its_findings(lab: Lab) -> None:
    """The lab's backends speak SSTP on 443, not IP-HTTPS: sstpd hangs up on POST /IPHTTPS, which is what
    the IP-HTTPS findings must say (the ADC scenarios in test_sstp_lab.py have a real IP-HTTPS path)."""
    code, report = diagnose(lab, "--protocols", "sstp,iphttps", order=ids.ALL + ids.IPHTTPS_ALL)
    by_id = {f["id"]: f for f in report["findings"]}
    assert by_id[ids.SSTP_HANDSHAKE]["status"] == "pass"
    assert by_id[ids.IPHTTPS_TLS]["status"] == "pass"
    assert by_id[ids.IPHTTPS_HTTP]["status"] == "fail"
    assert "closed the connection" in by_id[ids.IPHTTPS_HTTP]["detail"]
    assert by_id[ids.IPHTTPS_CLIENT_AUTH]["status"] == "warn"  # sstpd asks for no client certificate
    assert code == 1 and ids.IPHTTPS_HTTP in report["verdict"]["root_causes"]


@scenarios("healthy")
def test_ipv6_target(lab: Lab) -> None:
    code, report = diagnose(lab, "--address", t.VIP6)
    assert failing(report) == set(), [
        (f["id"], f["detail"]) for f in report["findings"] if f["status"] == "fail"
    ]
    assert code == 0


@scenarios("dns-wrong")
def test_dns_wrong_is_the_first_root_cause(lab: Lab) -> None:
    code, report = diagnose(lab, "--expect-ip", t.VIP4, "--timeout-s", "3")
    assert code == 1
    assert report["verdict"]["root_causes"][0] == ids.DNS_RESOLUTION


@scenarios("block-udp-500")
def test_unreachable_target_verdict_within_timeout(lab: Lab) -> None:
    code, report = diagnose(lab, "--protocols", "ikev2", "--timeout-s", "4")
    assert code == 1 and report["duration_s"] <= 6
    assert status(report, ids.TCP443_REACHABLE) == "skip"
    assert status(report, ids.SSTP_HANDSHAKE) == "skip"


@scenarios("healthy")
def test_terminal_and_html_output(lab: Lab, tmp_path_factory: pytest.TempPathFactory) -> None:
    html = tmp_path_factory.mktemp("html") / "report.html"
    proc = lab.run(
        "client",
        sys.executable,
        "-m",
        "vpndoctor",
        "diagnose",
        t.SERVER_NAME,
        "--ca",
        lab.info.ca_file,
        "--html",
        str(html),
        timeout_s=120,
    )
    assert proc.returncode == 0, proc.stderr
    assert "verdict: healthy" in proc.stdout and "lb.port-affinity" in proc.stdout
    text = html.read_text()
    assert "<html" in text and "lb.port-affinity" in text


PROFILE = """<VPNProfile>
  <NativeProfile>
    <Servers>vpn.lab.test</Servers>
    <NativeProtocolType>IKEv2</NativeProtocolType>
    <Authentication><UserMethod>Eap</UserMethod></Authentication>
    <RoutingPolicyType>SplitTunnel</RoutingPolicyType>
    <CryptographySuite>
      <AuthenticationTransformConstants>SHA256128</AuthenticationTransformConstants>
      <CipherTransformConstants>AES128</CipherTransformConstants>
      <EncryptionMethod>AES128</EncryptionMethod>
      <IntegrityCheckMethod>SHA256</IntegrityCheckMethod>
      <DHGroup>Group14</DHGroup>
      <PfsGroup>PFS2048</PfsGroup>
    </CryptographySuite>
  </NativeProfile>
</VPNProfile>
"""


@pytest.mark.parametrize("lab", ["healthy", "proposals-windows-default"], indirect=True)
def test_profile_cryptography_suite(lab: Lab, tmp_path_factory: pytest.TempPathFactory) -> None:
    path = tmp_path_factory.mktemp("profile") / "ProfileXML.xml"
    path.write_text(PROFILE)
    code, report = diagnose(lab, "--profile", str(path))
    match = next(f for f in report["findings"] if f["id"] == ids.IKE_PROPOSALS_CLIENT_MATCH)
    assert match["evidence"]["profile_proposal"] == "aes128-sha256-modp2048"
    if lab.scenario.name == "healthy":
        assert match["status"] == "pass" and code == 0
    else:
        assert match["status"] == "fail" and 13868 in match["error_codes"]
        assert failing(report) == {ids.IKE_PROPOSALS_CLIENT_MATCH, ids.IKE_PROPOSALS_STRENGTH}
