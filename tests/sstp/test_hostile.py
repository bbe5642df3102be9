"""`vpndoctor sstp` against hostile servers on loopback: garbage instead of TLS, plain HTTP, resets, stalls,
HTTP errors, oversized headers, malformed and endless SSTP. Each ends in a one-line error at the right stage,
within the deadline, never a traceback; the exit code says how far it got."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.sstp.hostile import HostileServer
from tests.sstp.nginx_server import Pki, free_port, make_pki
from vpndoctor.checks.sstp import exit_code, sstp_report
from vpndoctor.probes.sstp import MAX_TRANSCRIPT, SstpObservation, run_sstp_probe

DEADLINE_S = 1.5
# Scheduling slack on a loaded 2-core machine; a probe ignoring its deadline would wait out a 30 s stall.
SLACK_S = 0.8


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    return make_pki(tmp_path_factory.mktemp("pki"))


@pytest.fixture
def server(request: pytest.FixtureRequest, pki: Pki) -> Iterator[HostileServer]:
    srv = HostileServer(pki.server_cert, pki.server_key, request.param)
    yield srv
    srv.stop()


def probe(port: int) -> tuple[SstpObservation, float]:
    t0 = time.monotonic()
    obs = asyncio.run(run_sstp_probe("127.0.0.1", port=port, sni="da.test", timeout_s=DEADLINE_S))
    return obs, time.monotonic() - t0


CASES = {
    # behaviour: (error_stage, words in the error, exit code)
    "garbage-instead-of-tls": ("handshake", "TLS handshake", 1),
    "plain-http": ("handshake", "TLS handshake", 1),
    "oversized-tls-record": ("handshake", "TLS handshake", 1),
    "reset-at-hello": ("handshake", "TLS handshake", 1),
    "stall-tls": ("handshake", "timed out", 1),
    "stall-http": ("http", "timed out", 1),
    "http-404": ("http", "HTTP 404 Not Found", 1),
    "http-503": ("http", "HTTP 503 Service Unavailable", 1),
    "oversized-header": ("http", "within 8192 bytes", 1),
    "reset-after-request": ("http", "no HTTP response", 1),
    "close-after-request": ("http", "closed the connection", 1),
    "garbage-sstp": ("sstp", "message type 1-9", 1),
    "endless-data": ("sstp", "timed out", 1),
    "stall-sstp": ("sstp", "timed out", 1),
    "close-after-200": ("sstp", "closed the connection", 1),
    "sstpd-style-abort": ("sstp", "length >= 12", 1),
}


@pytest.mark.parametrize("server", sorted(CASES), indirect=True)
def test_hostile_server(server: HostileServer) -> None:
    stage, words, code = CASES[server.behaviour]
    obs, wall_s = probe(server.port)
    assert obs.error_stage == stage, obs.error
    assert obs.error is not None and words in obs.error and "\n" not in obs.error
    assert wall_s < DEADLINE_S + SLACK_S
    report = sstp_report(obs)
    assert exit_code(report.findings, unreachable=obs.reached == "none") == code
    assert obs.call_connect is None
    if server.behaviour == "endless-data":
        assert obs.ppp_frames_received > 10 and len(obs.messages) <= MAX_TRANSCRIPT


@pytest.mark.parametrize("server", ["nak"], indirect=True)
def test_nak_is_reported(server: HostileServer) -> None:
    obs, _ = probe(server.port)
    assert obs.call_connect == "nak" and obs.error is None
    assert [s.status for s in obs.nak_status] == ["VALUE_NOT_SUPPORTED"]
    assert exit_code(sstp_report(obs).findings, unreachable=False) == 1


@pytest.mark.parametrize("server", ["ack-then-silence"], indirect=True)
def test_ack_then_silent_teardown_is_bounded(server: HostileServer) -> None:
    obs, wall_s = probe(server.port)
    assert obs.call_connect == "ack" and obs.crypto_binding_hashes == ["SHA256"] and obs.nonce_bytes == 32
    assert obs.teardown is not None and "no answer" in obs.teardown
    assert wall_s < 1.0 + SLACK_S  # the teardown wait is capped at 1 s
    assert exit_code(sstp_report(obs).findings, unreachable=False) == 0


def test_refused_port_is_unreachable() -> None:
    obs, _ = probe(free_port())
    assert obs.reached == "none" and obs.error_stage == "connect" and "refused" in (obs.error or "")
    assert exit_code(sstp_report(obs).findings, unreachable=True) == 3


def cli(*args: str, timeout_s: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "vpndoctor", *args], capture_output=True, text=True, timeout=timeout_s
    )


@pytest.mark.parametrize("server", ["garbage-sstp", "stall-tls", "http-404"], indirect=True)
def test_cli_one_line_and_exit_code(server: HostileServer) -> None:
    t0 = time.monotonic()
    proc = cli("sstp", f"127.0.0.1:{server.port}", "--sni", "da.test", "--timeout-s", "1", "--json")
    assert "Traceback" not in proc.stderr and proc.returncode == 1, proc.stderr
    data = json.loads(proc.stdout)
    assert data["duration_s"] <= 1.0 + SLACK_S and data["error"] and data["call_connect"] is None
    assert time.monotonic() - t0 < 20
    text = cli("sstp", f"127.0.0.1:{server.port}", "--timeout-s", "1")
    assert text.returncode == 1 and "Traceback" not in text.stderr and "error" in text.stdout


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["sstp", "127.0.0.1:99999"], "port must be a number from 1 to 65535"),
        (["sstp", "127.0.0.1", "--timeout-s", "0"], "--timeout-s must be positive"),
        (["sstp", "127.0.0.1", "--ca", "/nonexistent/ca.pem"], "cannot read CA file"),
        (["sstp", "[::1"], "expected [IPv6]:PORT"),
        (["iphttps", "http://127.0.0.1/IPHTTPS"], "https://"),
        (["iphttps", "127.0.0.1", "--client-cert", "/nonexistent.pem"], "no such file"),
        (["iphttps", "127.0.0.1", "--client-key", "/x.key"], "--client-key needs --client-cert"),
    ],
)
def test_usage_errors(args: list[str], message: str) -> None:
    proc = cli(*args)
    assert proc.returncode == 2 and message in proc.stderr, proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1 and "Traceback" not in proc.stderr


def test_unreachable_cli_exit_3(tmp_path: Path) -> None:
    proc = cli("sstp", f"127.0.0.1:{free_port()}", "--json")
    assert proc.returncode == 3, proc.stderr
    assert json.loads(proc.stdout)["reached"] == "none"


IPHTTPS_CASES = {
    # behaviour: (stage of the attempt's error or None, client_auth, exit code)
    "plain-http": ("handshake", "unknown", 1),
    "stall-tls": ("handshake", "unknown", 1),
    # TLS completed without a CertificateRequest: whatever breaks next, no client certificate was asked for.
    "stall-http": ("http", "none", 1),
    "oversized-header": ("http", "none", 1),
    "http-404": (None, "none", 1),
    "reset-after-request": ("http", "none", 1),
}


@pytest.mark.parametrize("server", sorted(IPHTTPS_CASES), indirect=True)
def test_iphttps_hostile_server(server: HostileServer) -> None:
    from vpndoctor.checks.sstp import iphttps_report
    from vpndoctor.probes.iphttps import run_iphttps_probe

    stage, auth, code = IPHTTPS_CASES[server.behaviour]
    t0 = time.monotonic()
    obs = asyncio.run(run_iphttps_probe(f"127.0.0.1:{server.port}", sni="da.test", timeout_s=DEADLINE_S))
    assert time.monotonic() - t0 < DEADLINE_S + SLACK_S
    a = obs.attempts[0]
    assert a.error_stage == stage, a.error
    if stage:
        assert a.error and "\n" not in a.error
    report = iphttps_report(obs)
    assert report.client_auth == auth
    assert exit_code(report.findings, unreachable=False) == code
