"""`vpndoctor sstp` against the lab's real SSTP servers (PyPI sstp-server's sstpd on vpn1/vpn2 TCP 443),
through edge and lb and direct to a backend, cross-checked with Debian's sstp-client (`sstpc`) against the
same server.

About pppd: this kernel has no PPP support (no `ppp` in /proc/devices, no modules to load), so no pppd can
run here — neither the one sstpd starts after CALL_CONNECT_ACK nor one under sstpc. Both clients therefore
stop at the same point: CALL_CONNECT_ACK with a 40-byte Crypto Binding Request. sstpc is run with
`--nolaunchpppd` (PPP on its stdin/stdout, a pipe here) and `--log-level 4`, and its log is compared with
what `vpndoctor sstp` reports; sstpd's own log confirms it saw both Call Connect Requests.
"""

from __future__ import annotations

import json
import os
import re
import select
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from tests.helpers import need, scenarios
from vpndoctor.checks import ids
from vpndoctor.lab import topology as t
from vpndoctor.lab.handle import Lab

pytestmark = pytest.mark.lab

SCHEMA = json.loads((Path(__file__).resolve().parents[2] / "schema" / "sstp.json").read_text())


def sstp(lab: Lab, target: str, *args: str, host: str = "client") -> tuple[int, dict[str, Any]]:
    proc = lab.run(
        host,
        sys.executable,
        "-m",
        "vpndoctor",
        "sstp",
        target,
        "--ca",
        lab.info.ca_file,
        "--json",
        *args,
        timeout_s=60,
    )
    assert "Traceback" not in proc.stderr, proc.stderr
    report = json.loads(proc.stdout)
    jsonschema.validate(report, SCHEMA)
    return proc.returncode, report


def sstpd_log(lab: Lab, backend: str) -> str:
    return Lab._read(lab.workdir / f"sstpd-{backend}.log")


def status(report: dict[str, Any], fid: str) -> str:
    return next(f["status"] for f in report["findings"] if f["id"] == fid)


@scenarios("healthy")
def test_through_edge_and_lb(lab: Lab) -> None:
    before = {b: sstpd_log(lab, b).count("CALL_CONNECT_REQUEST") for b in t.BACKENDS}
    code, report = sstp(lab, t.SERVER_NAME)
    assert code == 0, report
    assert report["address"] == t.VIP4 and report["sni"] == t.SERVER_NAME
    assert report["http_status"] == 200 and report["server_header"].startswith("SSTP-Server/")
    assert report["call_connect"] == "ack"
    assert (
        report["crypto_binding_hashes"] == ["SHA1", "SHA256"] and report["crypto_binding_hash_bitmask"] == 3
    )
    assert report["nonce_bytes"] == 32
    assert report["teardown"] == "CALL_ABORT sent; the server answered CALL_ABORT"
    assert report["tls"]["certificate"]["trusted"] is True
    assert {f["status"] for f in report["findings"]} == {"pass"}
    # One of the two backends (whichever the lb picked) logged our request and our abort.
    after = {b: sstpd_log(lab, b).count("CALL_CONNECT_REQUEST") for b in t.BACKENDS}
    assert sum(after.values()) == sum(before.values()) + 1
    assert any("SSTP control packet (CALL_ABORT) received" in sstpd_log(lab, b) for b in t.BACKENDS)


@scenarios("healthy")
def test_ipv6_vip_and_direct_backend(lab: Lab) -> None:
    code, report = sstp(lab, f"[{t.VIP6}]:443", "--sni", t.SERVER_NAME)
    assert code == 0 and report["call_connect"] == "ack" and report["address"] == t.VIP6
    backend = t.BACKEND4[t.BACKENDS[0]]
    code, report = sstp(lab, backend, "--sni", t.SERVER_NAME, host="lb")
    assert code == 0 and report["call_connect"] == "ack" and report["address"] == backend
    assert report["server_header"].startswith("SSTP-Server/")


@scenarios("block-tcp-443")
def test_blocked_tcp443_is_unreachable_within_deadline(lab: Lab) -> None:
    t0 = time.monotonic()
    code, report = sstp(lab, t.SERVER_NAME, "--timeout-s", "2")
    assert code == 3 and report["reached"] == "none" and report["error_stage"] == "connect"
    assert "timed out" in report["error"] and report["duration_s"] <= 2.3
    assert status(report, ids.SSTP_TLS) == "fail"
    assert time.monotonic() - t0 < 30


@scenarios("cert-wrong-name")
def test_wrong_certificate_name(lab: Lab) -> None:
    code, report = sstp(lab, t.SERVER_NAME)
    assert code == 1 and report["call_connect"] == "ack"
    cert = next(f for f in report["findings"] if f["id"] == ids.SSTP_CERTIFICATE)
    assert cert["status"] == "fail" and 0x800B010F in cert["error_codes"]


SSTPC_ACK = re.compile(r"RECV SSTP CRTL PKT\(48\)\s*\n.*TYPE\(2\): CONNECT ACK.*\n.*CRYPTO BIND REQ\(4\): 40")


def run_sstpc(lab: Lab, target: str, timeout_s: float = 10.0) -> str:
    """sstpc as far as it gets; returns its log (stderr). Its stdin (the PPP side) stays open so that it
    waits for PPP like a real session; stopped 2 s after it starts PPP, or when it gives up."""
    exe = need("sstpc")
    argv = ["ip", "netns", "exec", lab.ns("client"), exe, "--log-level", "4", "--log-stderr"]
    argv += ["--ca-cert", lab.info.ca_file, "--tls-ext", "--nolaunchpppd"]
    argv += ["--user", "alice", "--password", "not-used", target]
    proc = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    assert proc.stderr is not None
    log = b""
    deadline = time.monotonic() + timeout_s
    try:
        while time.monotonic() < deadline:
            ready, _, _ = select.select([proc.stderr], [], [], max(0.0, deadline - time.monotonic()))
            if not ready:
                break
            chunk = os.read(proc.stderr.fileno(), 65536)
            if not chunk:
                break
            log += chunk
            if b"Started PPP Link Negotiation" in log:
                deadline = min(deadline, time.monotonic() + 2.0)
    finally:
        proc.kill()
        proc.wait(timeout=10)
        for stream in (proc.stdin, proc.stderr):
            if stream is not None:
                stream.close()
    return log.replace(b"\x00", b"").decode(errors="replace")


@scenarios("healthy")
def test_sstpc_reaches_the_same_point(lab: Lab) -> None:
    log = run_sstpc(lab, t.VIP4)
    if "TYPE(1): CONNECT REQUEST" not in log and "event loop terminated unsuccessfully" in log:
        # Seen once in a full-suite run (not reproducible alone): sstpc gave up right after the TCP connect,
        # before its first SSTP message. One more try tells a transient failure from a broken server.
        log = run_sstpc(lab, t.VIP4) + "\n[first try]\n" + log
    assert "Connected to" in log, log
    assert "TYPE(1): CONNECT REQUEST" in log and "ENCAP PROTO(1): 6" in log  # the same 14-byte request
    assert SSTPC_ACK.search(log), log  # a 48-byte CONNECT ACK with a 40-byte Crypto Binding Request
    assert "Started PPP Link Negotiation" in log
    # What follows is the lab's limit, not the protocol's: the server's pppd cannot start (no PPP in this
    # kernel), so sstpd ends the call. Its CALL_DISCONNECT carries sstp-server's malformed status attribute
    # (id 0, 8 bytes) that sstpc cannot read either - the quirk our decoder reports (test_codec.py).
    assert "TYPE(6): DISCONNECT" in log and "Could not get status info attribute" in log
    assert any("/dev/ppp" in sstpd_log(lab, b) for b in t.BACKENDS)
    code, report = sstp(lab, t.VIP4, "--sni", t.SERVER_NAME)
    assert code == 0 and report["call_connect"] == "ack" and report["nonce_bytes"] == 32
    sizes = [(m["dir"], m["bytes"], m["summary"].split()[0]) for m in report["messages"]]
    assert ("out", 14, "CALL_CONNECT_REQUEST") in sizes and ("in", 48, "CALL_CONNECT_ACK") in sizes


# ---- IP-HTTPS behind the lab ADC (nginx stream / HAProxy mode tcp, NULL re-encryption to the backends) ----

IPHTTPS_SCHEMA = json.loads((Path(__file__).resolve().parents[2] / "schema" / "iphttps.json").read_text())


def iphttps(lab: Lab, *args: str, cert: str | None = None) -> tuple[int, dict[str, Any]]:
    assert lab.info.da_name and lab.info.da_pki_dir
    extra: list[str] = []
    if cert:
        pki = Path(lab.info.da_pki_dir)
        extra = ["--client-cert", str(pki / f"{cert}.pem"), "--client-key", str(pki / f"{cert}.key")]
    proc = lab.run(
        "client",
        sys.executable,
        "-m",
        "vpndoctor",
        "iphttps",
        f"https://{lab.info.da_name}/IPHTTPS",
        "--ca",
        lab.info.ca_file,
        "--json",
        *extra,
        *args,
        timeout_s=60,
    )
    assert "Traceback" not in proc.stderr, proc.stderr
    report = json.loads(proc.stdout)
    jsonschema.validate(report, IPHTTPS_SCHEMA)
    return proc.returncode, report


@pytest.mark.parametrize("lab", ["iphttps-adc-nginx", "iphttps-adc-haproxy"], indirect=True)
def test_iphttps_adc_preauth_enforced(lab: Lab) -> None:
    code, bare = iphttps(lab)
    assert bare["client_auth"] == "required", bare["attempts"]
    assert status(bare, ids.IPHTTPS_CLIENT_AUTH) == "pass" and status(bare, ids.IPHTTPS_HTTP) == "skip"
    assert code == 0
    if lab.scenario.name.endswith("haproxy"):  # HAProxy refuses in the handshake, nginx hangs up after it
        assert bare["attempts"][0]["error_stage"] == "handshake"
    else:
        assert bare["attempts"][0]["closed_without_answer"] is True
    code, good = iphttps(lab, cert="da-client")
    assert code == 0, good["findings"]
    assert good["http_status"] == 200 and good["server_header"].startswith("Microsoft-HTTPAPI/2.0")
    assert good["null_encryption"] is True and good["negotiated_cipher"] == "NULL-SHA"
    assert good["attempts"][1]["tls"]["certificate"]["trusted"] is True
    assert {f["status"] for f in good["findings"]} == {"pass"}
    code, wrong = iphttps(lab, cert="da-client-wrong")
    assert code == 1 and wrong["http_status"] is None
    assert status(wrong, ids.IPHTTPS_CLIENT_AUTH) == "fail"


@scenarios("adc-client-auth-optional")
def test_iphttps_adc_optional(lab: Lab) -> None:
    code, report = iphttps(lab)
    assert report["client_auth"] == "optional" and report["http_status"] == 200
    assert status(report, ids.IPHTTPS_CLIENT_AUTH) == "warn" and code == 0


@scenarios("adc-client-auth-off")
def test_iphttps_adc_no_preauth(lab: Lab) -> None:
    code, report = iphttps(lab)
    assert report["client_auth"] == "none" and report["http_status"] == 200
    assert report["attempts"][0]["client_certificate_requested"] is False
    assert status(report, ids.IPHTTPS_CLIENT_AUTH) == "warn" and code == 0


@scenarios("adc-null-missing")
def test_iphttps_adc_without_null(lab: Lab) -> None:
    _, report = iphttps(lab, cert="da-client")
    assert report["null_encryption"] is False and report["negotiated_cipher"] == "ECDHE-RSA-AES128-SHA"
    assert status(report, ids.IPHTTPS_NULL_ENCRYPTION) == "warn"
    assert report["http_status"] == 200


@scenarios("iphttps-adc-nginx")
def test_diagnose_with_iphttps(lab: Lab) -> None:
    assert lab.info.da_name
    proc = lab.run(
        "client",
        sys.executable,
        "-m",
        "vpndoctor",
        "diagnose",
        lab.info.da_name,
        "--protocols",
        "iphttps",
        "--ca",
        lab.info.ca_file,
        "--resolver",
        t.DNS4,
        "--json",
        timeout_s=120,
    )
    assert "Traceback" not in proc.stderr, proc.stderr
    report = json.loads(proc.stdout)
    assert [f["id"] for f in report["findings"]] == list(ids.ALL + ids.IPHTTPS_ALL)
    by_id = {f["id"]: f["status"] for f in report["findings"]}
    assert by_id[ids.SSTP_HANDSHAKE] == "skip"
    assert by_id[ids.IPHTTPS_CLIENT_AUTH] == "pass" and by_id[ids.IPHTTPS_NULL_ENCRYPTION] == "pass"
    assert proc.returncode == 0 and report["verdict"]["status"] == "healthy"
