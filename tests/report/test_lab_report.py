"""`vpndoctor lab up`'s summary names what a scenario built beyond the gateway: RADIUS, accounts, the client
certificates and the revocation host (each line only when the scenario has it)."""

from __future__ import annotations

import io

from rich.console import Console

from vpndoctor.lab.runner import LabInfo
from vpndoctor.report.lab import render_lab_up


def _text(info: LabInfo) -> str:
    buf = io.StringIO()
    render_lab_up(info, "a scenario", "vx", Console(file=buf, width=200, color_system=None))
    return buf.getvalue()


BASE = {
    "prefix": "vx",
    "scenario": "eap-radius",
    "server_name": "vpn.lab.test",
    "addresses": ("203.0.113.10", "2001:db8:113::10"),
    "dns_server": "192.0.2.53",
    "ca_file": "/state/ca.pem",
    "client_namespace": "vx-client",
    "workdir": "/state",
}


def test_plain_scenario_has_no_extra_lines() -> None:
    text = _text(LabInfo(**BASE))  # type: ignore[arg-type]
    assert "vpn.lab.test" in text and "RADIUS" not in text and "CRL" not in text and "machine" not in text


def test_radius_accounts_certificates_and_revocation_are_listed() -> None:
    info = LabInfo(  # type: ignore[arg-type]
        **BASE,
        radius_server="192.0.2.50",
        connect_file="/state/connect.json",
        user_cert="/state/user.pem",
        user_key="/state/user.key",
        machine_cert="/state/machine.pem",
        machine_key="/state/machine.key",
        revocation="ok",
        crl_addresses=("192.0.2.60", "2001:db8::60"),
        crl_www="/state/crl-www",
    )
    text = _text(info)
    assert "RADIUS     192.0.2.50 UDP 1812/1813" in text
    assert "/state/connect.json" in text
    assert "/state/user.pem" in text and "/state/machine.key" in text
    assert "192.0.2.60" in text and "/state/crl-www" in text
