"""`diagnose --fix --lb VENDOR`: the failing findings of a report become that vendor's configuration for
the diagnosed target (its name and VIP), checked by the same validator as `vpndoctor config`."""

from __future__ import annotations

import pytest

from vpndoctor.checks import ids
from vpndoctor.checks.model import DiagnoseReport, Finding, Target, Verdict
from vpndoctor.configgen.fix import LB_VENDORS, fix_config
from vpndoctor.configgen.validate import validate


def _report(failing: list[str], addresses: list[str] | None = None) -> DiagnoseReport:
    findings = [
        Finding(id=fid, status="fail" if fid in failing else "pass", title=fid, detail="") for fid in ids.ALL
    ]
    return DiagnoseReport(
        tool={"name": "vpndoctor", "version": "test"},
        target=Target(
            name="vpn.example.com",
            addresses=["203.0.113.7", "2001:db8:113::7"] if addresses is None else addresses,
        ),
        started_at="2026-01-01T00:00:00Z",
        duration_s=1.0,
        round_trips=5,
        verdict=Verdict(status="problems" if failing else "healthy", root_causes=failing, summary=""),
        findings=findings,
    )


def test_affinity_on_netscaler_uses_the_diagnosed_vip() -> None:
    text = fix_config(_report([ids.LB_PORT_AFFINITY]), "netscaler")
    assert "add lb vserver vs_ike500 UDP 203.0.113.7 500" in text
    assert "add lb vserver vs_ike4500_v6 UDP 2001:db8:113::7 4500" in text
    assert "set lb group lbg_ikev2 -persistenceType SOURCEIP" in text
    assert "placeholders" in text and "SSL_BRIDGE" not in text
    assert validate("netscaler", text) == []


@pytest.mark.parametrize("vendor", LB_VENDORS)
def test_every_vendor_gets_something_for_affinity(vendor: str) -> None:
    text = fix_config(_report([ids.LB_PORT_AFFINITY]), vendor)
    expected = {
        "netscaler": "bind lb group",
        "f5": "match-across-services enabled",
        "kemp": "FollowVSID=",
        "haproxy": "hash $remote_addr;",  # HAProxy cannot: the nginx UDP part is given instead
        "nginx": "hash $remote_addr;",
    }[vendor]
    assert expected in text


def test_fragments_give_the_windows_server_settings() -> None:
    text = fix_config(_report([ids.PATH_IP_FRAGMENTS, ids.IKE_FRAGMENTATION_SUPPORTED]), "f5")
    assert "EnableServerFragmentation" in text and "create ltm" not in text
    windows = text[text.index("# vpndoctor config windows") :]
    assert validate("windows", windows) == []


def test_sstp_and_no_address() -> None:
    text = fix_config(_report([ids.TCP443_REACHABLE], addresses=[]), "f5")
    assert "203.0.113.10" in text and "placeholder" in text and "vs_sstp" in text


def test_nothing_failing_and_unfixable_findings() -> None:
    assert "nothing to configure" in fix_config(_report([]), "kemp")
    text = fix_config(_report([ids.CERT_TRUST]), "kemp")
    assert "cert.trust: no device configuration fixes this" in text
