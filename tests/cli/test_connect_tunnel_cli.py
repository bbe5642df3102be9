"""`vpndoctor connect` tunnel options: bad arguments end with one line on stderr and exit 2 before anything
is sent (no traceback); the checks' verdicts on hand-made observations."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from vpndoctor.checks.tunnel import tunnel_findings
from vpndoctor.observations.tunnel import (
    ExchangeResult,
    MtuProbe,
    MtuResult,
    PingResult,
    RekeyResult,
    ResolveResult,
    TunnelObservation,
)

CLI = [sys.executable, "-m", "vpndoctor", "connect", "127.0.0.1", "--user", "u", "--password-env", "VDT_PW"]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--ping", "intranet"], "--ping intranet: give an IPv4 address"),
        (["--ping", "2001:db8::1"], "give an IPv4 address"),
        (["--mtu"], "--mtu searches towards the first --ping address"),
        (["--tcp", "192.0.2.1"], "--tcp 192.0.2.1: give an IPv4 address and a port"),
        (["--tcp", "host.example:80"], "give an IPv4 address and a port"),
        (["--ping", "192.0.2.1", "--probe-timeout-s", "0"], "--probe-timeout-s must be in"),
        (["--rekey", "--pfs-group", "modp9999"], "--pfs-group modp9999"),
        (["--pfs-group", "modp2048"], "--pfs-group is for --rekey"),
        (["--resolve", ""], "--resolve"),
    ],
)
def test_usage_errors(args: list[str], message: str) -> None:
    proc = subprocess.run(
        [*CLI, *args], capture_output=True, text=True, timeout=60, env={**os.environ, "VDT_PW": "x"}
    )
    assert proc.returncode == 2, proc.stderr
    assert message in proc.stderr and "Traceback" not in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1


def _tunnel(**kw: object) -> TunnelObservation:
    base: dict[str, object] = dict(
        inner_address="203.0.113.130", dns_server="192.0.2.100", esp_proposal="aes256gcm16", spi_i="01",
        spi_r="02", udp_port=4500, packets_sent=3, packets_received=3, bytes_sent=1, bytes_received=1,
        keepalives_sent=0, esp_errors=[], esp_errors_dropped=0, ping=[], resolve=[], tcp=[], mtu=None,
        rekey=None, duration_s=0.1,
    )  # fmt: skip
    base.update(kw)
    return TunnelObservation.model_validate(base)


def _ping(outcome: str, received: int = 0) -> PingResult:
    return PingResult(
        target="192.0.2.100",
        sent=3,
        received=received,
        rtt_ms=[1.0] * received,
        outcome=outcome,  # type: ignore[arg-type]
    )


def test_no_tunnel_no_findings() -> None:
    assert tunnel_findings(None) == []
    assert tunnel_findings(_tunnel()) == []


def test_reachability_verdicts() -> None:
    (ok,) = tunnel_findings(_tunnel(ping=[_ping("reply", 3)]))
    assert (ok.id, ok.status) == ("tunnel.reachability", "pass")
    (lost,) = tunnel_findings(_tunnel(ping=[_ping("timeout")], packets_received=0))
    assert lost.status == "fail" and "no route back" in lost.detail and lost.remedy


def test_dns_verdicts() -> None:
    timeout = ResolveResult(
        name="a.lab.test", server="192.0.2.100", outcome="timeout", rcode=None, addresses=[], rtt_ms=None,
        attempts=2,
    )  # fmt: skip
    findings = tunnel_findings(_tunnel(ping=[_ping("reply", 3)], resolve=[timeout]))
    dns = next(f for f in findings if f.id == "tunnel.dns")
    assert dns.status == "fail" and "drops the pool" in dns.detail
    nx = timeout.model_copy(update={"outcome": "nxdomain", "rcode": "NXDOMAIN", "rtt_ms": 1.0})
    (warn,) = tunnel_findings(_tunnel(resolve=[nx]))
    assert warn.status == "warn"


def _mtu(size: int | None, frag: bool) -> MtuResult:
    return MtuResult(
        target="192.0.2.100", low_bytes=1280, high_bytes=1500, tunnel_mtu_bytes=size,
        tcp_mss_bytes=size - 40 if size else None, probes_sent=2,
        probes=[MtuProbe(size_bytes=1500, result="frag-needed" if frag else "lost")], frag_needed_seen=frag,
        outer_bytes=None,
    )  # fmt: skip


@pytest.mark.parametrize(
    ("size", "frag", "status"),
    [
        (1438, False, "pass"),
        (1400, True, "pass"),
        (1300, True, "warn"),
        (1300, False, "fail"),
        (None, False, "fail"),
    ],
)
def test_mtu_verdicts(size: int | None, frag: bool, status: str) -> None:
    (f,) = tunnel_findings(_tunnel(mtu=_mtu(size, frag)))
    assert (f.id, f.status) == ("tunnel.mtu", status)


def test_rekey_no_proposal_chosen_names_pfsgroup() -> None:
    ok = ExchangeResult(outcome="ok", rtt_ms=1.0)
    refused = ExchangeResult(outcome="refused", notify="NO_PROPOSAL_CHOSEN")
    rekey = RekeyResult(
        pfs_group=None, child=refused, ike=ok, dpd=ok, new_spi_i=None, new_spi_r=None, traffic_after=None
    )
    (f,) = tunnel_findings(_tunnel(rekey=rekey))
    assert f.status == "fail" and "NO_PROPOSAL_CHOSEN" in f.detail and "PfsGroup" in f.remedy


def test_skipped_tunnel_skips_each_asked_probe() -> None:
    t = _tunnel(skipped="the IKE SA stayed on UDP 500", asked=["ping", "mtu", "rekey"])
    found = [(f.id, f.status) for f in tunnel_findings(t)]
    assert found == [("tunnel.reachability", "skip"), ("tunnel.mtu", "skip"), ("tunnel.rekey", "skip")]


def test_connect_refused_child_sa_still_reports_the_asked_tunnel_probes() -> None:
    from vpndoctor.probes.tunnel import TunnelPlan, tunnel_runner

    hook = tunnel_runner(TunnelPlan(ping=("192.0.2.100",), resolve=("a.test",)))
    skipped = hook.plan.not_run("no CHILD_SA (CHILD_SA: NO_PROPOSAL_CHOSEN)")
    found = [(f.id, f.status) for f in tunnel_findings(skipped)]
    assert found == [("tunnel.reachability", "skip"), ("tunnel.dns", "skip")]
    assert "NO_PROPOSAL_CHOSEN" in tunnel_findings(skipped)[0].detail
