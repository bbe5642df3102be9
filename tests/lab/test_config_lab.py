"""Closed loop for `vpndoctor config`: the generated HAProxy, nginx and nftables configurations are loaded
into the lab in place of its hand-written ones (the lab's override hook), under a scenario with the faults
they are meant to cure, and vpndoctor's own probes prove the intended properties:

- edge (nftables): the public address is DNATed to the VIP and IP fragments pass - `diagnose` of the public
  name passes path.ip-fragments although the scenario's edge drops them (the control run without the
  generated edge fails);
- load balancer (nftables jhash with a fixed seed, nginx stream `hash $remote_addr`): UDP 500 and 4500 of a
  client reach one server - lb.port-affinity passes under a per-service scenario, and the lb counters show
  both ports of the client on the same backend;
- IP-HTTPS ADC (HAProxy, nginx): client certificate required with the DirectAccess CA advertised, SSLv3 (and
  TLS 1.0/1.1) refused, NULL suites offered, NULL-SHA to the DirectAccess servers (their log), and a real
  IP-HTTPS request with the right client certificate answered by a server.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import TEST_PREFIX
from vpndoctor.configgen import generate
from vpndoctor.configgen.model import deployment_from_data
from vpndoctor.lab.handle import Lab
from vpndoctor.lab.runner import STATE_ROOT, lab_down, lab_up
from vpndoctor.lab.scenario import load_scenario

pytestmark = pytest.mark.lab

# Our own lab, beside (not instead of) the suite's shared one.
PREFIX = TEST_PREFIX[:7] + ("k" if TEST_PREFIX[7:8] == "c" else "c")
PKI = STATE_ROOT / PREFIX / "pki"

FAULTS = """\
name: config-loop
description: faults the generated configurations must cure
fragments: drop
server_fragmentation: no
lb_affinity: per-service
edge_dnat: yes
"""


def _deployment(server_pem: str) -> dict[str, Any]:
    return {
        "name": "da.lab.test",  # the DirectAccess servers' certificate name
        "vip": "203.0.113.10",
        "vip6": "2001:db8:113::10",
        "public_vip": "203.0.113.200",  # what vpn.lab.test resolves to in an edge_dnat scenario
        "public_vip6": "2001:db8:113::200",
        "servers": [
            {"name": "vpn1", "address": "192.0.2.18", "address6": "2001:db8:11::2"},
            {"name": "vpn2", "address": "192.0.2.22", "address6": "2001:db8:12::2"},
        ],
        "protocols": ["ikev2", "sstp", "iphttps"],
        "iphttps": {"vip": "203.0.113.20", "backend_port": 8443, "preauth": True},
        "certificates": {
            "server": {
                "name": "da-server",
                "cert_file": str(PKI / server_pem),
                "key_file": str(PKI / "da-server.key"),
            },
            "ca": {"name": "da-ca", "cert_file": str(PKI / "da-ca.pem")},
            "servers_ca": {"name": "lab-ca", "cert_file": str(PKI / "ca.pem")},
        },
        "edge": {
            "wan_interface": "eth-wan",
            "allow": [
                {"proto": p, "port": 53, "address": a}
                for p in ("udp", "tcp")
                for a in ("192.0.2.50", "2001:db8:53::2")
            ],
        },
    }


def _write(tmp: Path, name: str, text: str) -> str:
    (tmp / name).write_text(text)
    return str(tmp / name)


@pytest.fixture(scope="module")
def workdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    d = tmp_path_factory.mktemp("config-lab")
    (d / "faults.yaml").write_text(FAULTS)
    return d


def _up(workdir: Path, overrides: dict[str, str]) -> Iterator[Lab]:
    lab_down(PREFIX)
    lab_up(load_scenario(str(workdir / "faults.yaml")), PREFIX, overrides=overrides)
    try:
        yield Lab(PREFIX)
    finally:
        lab_down(PREFIX)


def _vpndoctor(lab: Lab, *args: str, timeout_s: float = 60.0) -> subprocess.CompletedProcess[str]:
    return lab.run("client", sys.executable, "-m", "vpndoctor", *args, timeout_s=timeout_s)


def _diagnose(lab: Lab, addresses: list[str] | None = None) -> dict[str, str]:
    proc = _vpndoctor(lab, "diagnose", "vpn.lab.test", "--ca", str(PKI / "ca.pem"), "--json")
    assert proc.returncode in (0, 1), proc.stderr
    report = json.loads(proc.stdout)
    if addresses is not None:
        addresses += report["target"]["addresses"]
    return {f["id"]: f["status"] for f in report["findings"]}


def _tls(lab: Lab, *extra: str) -> dict[str, Any]:
    proc = _vpndoctor(
        lab, "tls", "203.0.113.20", "--sni", "da.lab.test", "--ca", str(PKI / "ca.pem"), "--json", *extra
    )
    assert proc.returncode in (0, 1), proc.stderr
    report: dict[str, Any] = json.loads(proc.stdout)
    return report


def _iphttps_request(lab: Lab, cert: str | None) -> str:
    """A real IP-HTTPS request through the ADC; the answer's first line, or '' when the ADC refuses."""
    args = ["openssl", "s_client", "-connect", "203.0.113.20:443", "-servername", "da.lab.test", "-quiet"]
    # offered like a Windows 8+ IP-HTTPS client: NULL suites (the front end offers nothing else)
    args += ["-CAfile", str(PKI / "ca.pem"), "-ign_eof", "-cipher", "NULL-SHA256:NULL-SHA:@SECLEVEL=0"]
    if cert:
        args += ["-cert", str(PKI / f"{cert}.pem"), "-key", str(PKI / f"{cert}.key")]
    request = "POST /IPHTTPS HTTP/1.1\r\nHost: da.lab.test\r\nContent-Length: 18446744073709551615\r\n\r\n"
    proc = lab.run("client", "timeout", "5", *args, input_text=request, timeout_s=15)
    return next((line for line in proc.stdout.splitlines() if line.startswith("HTTP/")), "")


def _assert_adc(lab: Lab) -> None:
    report = _tls(lab)
    status = {f["id"]: f["status"] for f in report["findings"]}
    assert report["client_auth"] == "required"
    assert report["client_ca_names"] == ["CN=vpndoctor DirectAccess CA"]
    assert report["versions"]["SSLv3"] is False and report["versions"]["TLSv1.0"] is False
    assert status["tls.protocol.sslv3"] == "pass"
    assert set(report["null_suites"]) == {"TLS_RSA_WITH_NULL_SHA", "TLS_RSA_WITH_NULL_SHA256"}
    assert status["tls.client-auth.foreign-cert"] == "pass"
    with_cert = _tls(
        lab, "--client-cert", str(PKI / "da-client.pem"), "--client-key", str(PKI / "da-client.key")
    )
    assert {f["id"]: f["status"] for f in with_cert["findings"]}["tls.client-auth.client-cert"] == "pass"
    # Through the ADC to a DirectAccess server, re-encrypted with a NULL suite.
    logs = [STATE_ROOT / PREFIX / f"da-{b}.log" for b in ("vpn1", "vpn2")]
    before = sum(len(p.read_text().splitlines()) for p in logs if p.exists())
    assert _iphttps_request(lab, "da-client") == "HTTP/1.1 200 OK"
    assert _iphttps_request(lab, "da-client-wrong") == ""
    assert _iphttps_request(lab, None) == ""
    new = [line for p in logs if p.exists() for line in p.read_text().splitlines()]
    posts = [line for line in new[before:] if "/IPHTTPS" in line] or [
        line for line in new if "/IPHTTPS" in line
    ]
    assert posts and all("NULL-SHA" in line for line in posts), posts


# ---------------------------------------------------------------------------------------- nftables + HAProxy


@pytest.fixture(scope="module")
def nft_lab(workdir: Path) -> Iterator[Lab]:
    d = deployment_from_data(_deployment("da-server-haproxy.pem"))
    overrides = {
        "edge-nft": _write(workdir, "edge.nft", generate("nftables", d, ["edge-firewall"])),
        "lb-nft": _write(workdir, "lb.nft", generate("nftables", d, ["ikev2-lb", "sstp-lb"])),
        "adc-haproxy": _write(workdir, "haproxy.cfg", generate("haproxy", d, ["iphttps-offload"])),
    }
    yield from _up(workdir, overrides)


def test_nftables_edge_passes_fragments_and_lb_keeps_affinity(nft_lab: Lab) -> None:
    before = nft_lab.counters("lb")
    addresses: list[str] = []
    status = _diagnose(nft_lab, addresses)
    assert "203.0.113.200" in addresses  # the public address, reached through the generated DNAT
    assert status["path.ip-fragments"] == "pass"
    assert status["lb.port-affinity"] == "pass"
    assert [k for k, v in status.items() if v == "fail"] == []
    edge = nft_lab.counters("edge")
    assert edge["frag4_to_vpn"] > 0  # fragments reached the edge and were let through
    assert edge["vpn_udp500"] > 0 and edge["vpn_udp4500"] > 0  # DNATed to the VIP, then accepted
    delta = {k: v - before.get(k, 0) for k, v in nft_lab.counters("lb").items()}
    # One client address: every UDP 500 and 4500 flow of it on the same backend.
    used = {b for b in ("vpn1", "vpn2") if delta[f"{b}_udp500"] or delta[f"{b}_udp4500"]}
    assert len(used) == 1, delta
    (backend,) = used
    assert delta[f"{backend}_udp500"] > 0 and delta[f"{backend}_udp4500"] > 0


def test_haproxy_adc_offload_and_preauth(nft_lab: Lab) -> None:
    _assert_adc(nft_lab)


# --------------------------------------------------------------------------------------------- nginx


@pytest.fixture(scope="module")
def nginx_lab(workdir: Path, nft_lab: Lab) -> Iterator[Lab]:
    lab_down(PREFIX)  # the nftables lab is done with (module order: its tests ran first)
    d = deployment_from_data(_deployment("da-server-chain.pem"))
    overrides = {
        "adc-nginx": _write(workdir, "adc-nginx.conf", generate("nginx", d, ["iphttps-offload"])),
        "lb-nginx": _write(workdir, "lb-nginx.conf", generate("nginx", d, ["ikev2-lb"])),
    }
    yield from _up(workdir, overrides)


def test_nginx_stream_keeps_affinity(nginx_lab: Lab) -> None:
    status = _diagnose(nginx_lab)
    assert status["lb.port-affinity"] == "pass"
    assert status["ike.udp4500.reachable"] == "pass"


def test_nginx_adc_offload_and_preauth(nginx_lab: Lab) -> None:
    _assert_adc(nginx_lab)
    status = {f["id"]: f["status"] for f in _tls(nginx_lab)["findings"]}
    assert status["tls.client-auth"] == "pass"


# ------------------------------------------------------------------------------------------ control


def test_control_without_generated_configs_fails(workdir: Path, nginx_lab: Lab) -> None:
    """The same faults with the lab's own edge and lb fail the checks: the passes above are the configs'."""
    lab_down(PREFIX)
    lab_up(load_scenario(str(workdir / "faults.yaml")), PREFIX)
    try:
        lab = Lab(PREFIX)
        status = _diagnose(lab)
        fixed = _vpndoctor(
            lab, "diagnose", "vpn.lab.test", "--ca", str(PKI / "ca.pem"), "--fix", "--lb", "netscaler"
        )
    finally:
        lab_down(PREFIX)
    assert status["path.ip-fragments"] == "fail"
    assert status["lb.port-affinity"] == "fail"
    # --fix: the NetScaler lb group for the diagnosed VIP, and IKEv2 fragmentation for the servers.
    assert fixed.returncode == 1, fixed.stderr
    # the address the diagnosis reached (here the edge's public address) is the VIP in the generated config
    assert "add lb vserver vs_ike4500 UDP 203.0.113.200 4500" in fixed.stdout
    assert "set lb group lbg_ikev2 -persistenceType SOURCEIP" in fixed.stdout
    assert "-Name EnableServerFragmentation" in fixed.stdout
