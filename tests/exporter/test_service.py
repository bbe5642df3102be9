"""The exporter's HTTP endpoints, end to end against a real exporter process on loopback: bad requests
(400, counted), the scrape deadline, reload by POST and SIGHUP, TLS with basic auth, the pages' escaping,
and the allow-list against a scripted DNS server (names outside, rebinding between checks)."""

from __future__ import annotations

import base64
import datetime
import http.client
import os
import signal
import ssl
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import bcrypt
import pytest
import yaml
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from tests.exporter.conftest import Exporter, ScriptedDns, UdpSink, free_port
from vpndoctor.checks.model import finding
from vpndoctor.exporter.metrics import Outcome
from vpndoctor.exporter.page import render_index, render_report

Factory = Callable[..., Exporter]
TIMEOUT = {"X-Prometheus-Scrape-Timeout-Seconds": "3"}


@pytest.fixture
def sink() -> Iterator[UdpSink]:
    s = UdpSink("127.0.0.1", free_port(__import__("socket").SOCK_DGRAM))
    yield s
    s.close()


def ike_module(port: int, **kw: Any) -> dict[str, Any]:
    return {"prober": "ike", "stateless": True, "port": port, "natt_port": port, "timeout_s": 20, **kw}


def probe_value(body: str, name: str) -> float:
    return next(float(ln.split()[-1]) for ln in body.splitlines() if ln.startswith(name + " "))


def test_bad_requests_are_400_and_counted(exporter_factory: Factory, sink: UdpSink) -> None:
    exp = exporter_factory({"modules": {"ike": ike_module(sink.sock.getsockname()[1])}})
    cases = {
        "/probe?target=127.0.0.1": "missing-module",
        "/probe?module=nope&target=127.0.0.1": "unknown-module",
        "/probe?module=ike": "missing-target",
        "/probe?module=ike&target=": "missing-target",
        "/probe?module=ike&target=a&target=b": "missing-target",
        "/probe?module=ike&target=2130706433": "bad-target",
        "/probe?module=ike&target=0177.0.0.1": "bad-target",
        "/probe?module=ike&target=fe80::1%25lo": "bad-target",
        "/probe?module=ike&target=Vpn.example.com": "bad-target",
        "/probe?module=ike&target=vpn.example.com.": "bad-target",
    }
    for path, reason in cases.items():
        before = exp.metric("vpndoctor_exporter_bad_requests_total", reason=reason)
        answer = exp.get(path, headers=TIMEOUT)
        assert answer.status == 400, (path, answer)
        assert len(answer.body.strip().splitlines()) == 1
        assert exp.metric("vpndoctor_exporter_bad_requests_total", reason=reason) == before + 1, path
    answer = exp.get(
        "/probe?module=ike&target=127.0.0.1", headers={"X-Prometheus-Scrape-Timeout-Seconds": "x"}
    )
    assert answer.status == 400
    assert exp.metric("vpndoctor_exporter_bad_requests_total", reason="bad-timeout-header") == 1
    assert not sink.received, "no bad request may reach a target"
    assert exp.get("/nowhere").status == 404
    assert exp.get("/-/reload").status == 405


def test_the_scrape_deadline_bounds_the_probe(exporter_factory: Factory, sink: UdpSink) -> None:
    """A silent gateway: the answer comes within Prometheus' timeout minus the offset, not the module's
    20 s."""
    exp = exporter_factory(
        {
            "modules": {"ike": ike_module(sink.sock.getsockname()[1], stateless=False)},
            "limits": {"timeout_offset_s": 0.5},
        }
    )
    answer = exp.get("/probe?module=ike&target=127.0.0.1", headers=TIMEOUT)
    assert answer.status == 200
    assert probe_value(answer.body, "probe_success") == 0
    assert 1.5 < probe_value(answer.body, "probe_duration_seconds") <= 2.5
    assert answer.seconds < 3.0
    assert sink.received, "the probe did send"
    assert exp.metric("vpndoctor_exporter_late_answers_total") == 0
    # No header: Prometheus' default of 10 s (less the offset), below the module's own 20 s; the initiator
    # gives up after its four transmissions (0.5 + 1 + 2 + 4 s) before that.
    answer = exp.get("/probe?module=ike&target=127.0.0.1", timeout_s=15)
    assert 7.0 < probe_value(answer.body, "probe_duration_seconds") <= 9.5
    # The global cap wins over a generous scrape timeout.
    exp2 = exporter_factory(
        {
            "modules": {"ike": ike_module(sink.sock.getsockname()[1], stateless=False)},
            "limits": {"max_timeout_s": 1.0},
        }
    )
    answer = exp2.get(
        "/probe?module=ike&target=127.0.0.1", headers={"X-Prometheus-Scrape-Timeout-Seconds": "30"}
    )
    assert probe_value(answer.body, "probe_duration_seconds") <= 1.2


def test_reload_by_post_and_sighup(exporter_factory: Factory, sink: UdpSink) -> None:
    port = sink.sock.getsockname()[1]
    exp = exporter_factory({"modules": {"one": ike_module(port)}})
    assert exp.get("/probe?module=two&target=127.0.0.1", headers=TIMEOUT).status == 400
    exp.config.write_text(yaml.safe_dump({"modules": {"one": ike_module(port), "two": ike_module(port)}}))
    assert exp.get("/-/reload", method="POST").status == 200
    assert exp.get("/probe?module=two&target=127.0.0.1", headers=TIMEOUT).status == 200
    # A broken file: the reload fails, the old configuration stays, the failure is counted.
    exp.config.write_text("modules: {two: {prober: nonsense}}")
    answer = exp.get("/-/reload", method="POST")
    assert answer.status == 500 and "nonsense" in answer.body
    assert exp.metric("vpndoctor_exporter_config_last_reload_successful") == 0
    assert exp.get("/probe?module=two&target=127.0.0.1", headers=TIMEOUT).status == 200
    # SIGHUP reads it again.
    exp.config.write_text(yaml.safe_dump({"modules": {"three": ike_module(port)}}))
    os.kill(exp.proc.pid, signal.SIGHUP)
    end = time.monotonic() + 20
    while exp.metric("vpndoctor_exporter_config_last_reload_successful") != 1 and time.monotonic() < end:
        time.sleep(0.2)
    assert exp.get("/probe?module=three&target=127.0.0.1", headers=TIMEOUT).status == 200
    assert exp.get("/probe?module=two&target=127.0.0.1", headers=TIMEOUT).status == 400
    assert exp.metric("vpndoctor_exporter_config_reloads_total", result="success") == 2
    assert exp.metric("vpndoctor_exporter_config_reloads_total", result="failure") == 1


def _self_signed(tmp_path: Path) -> tuple[Path, Path]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(__import__("ipaddress").ip_address("127.0.0.1"))]),
            critical=False,
        )
        .sign(key, hashes.SHA256())
    )
    crt, pem = tmp_path / "web.crt", tmp_path / "web.key"
    crt.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    pem.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    return crt, pem


def test_tls_and_basic_auth(exporter_factory: Factory, sink: UdpSink, tmp_path: Path) -> None:
    crt, key = _self_signed(tmp_path)
    hashed = bcrypt.hashpw(b"s3cret", bcrypt.gensalt(rounds=10)).decode()
    web = tmp_path / "web.yml"
    web.write_text(
        yaml.safe_dump(
            {
                "tls_server_config": {"cert_file": crt.name, "key_file": key.name},
                "basic_auth_users": {"prometheus": hashed},
            }
        )
    )
    context = ssl.create_default_context(cafile=str(crt))
    good = {"Authorization": "Basic " + base64.b64encode(b"prometheus:s3cret").decode()}
    exp = exporter_factory(
        {"modules": {"ike": ike_module(sink.sock.getsockname()[1])}},
        "--web-config",
        str(web),
        scheme="https",
        context=context,
        ready_headers=good,
    )
    assert exp.get("/-/healthy").status == 401
    wrong = {"Authorization": "Basic " + base64.b64encode(b"prometheus:wrong").decode()}
    assert exp.get("/-/healthy", headers=wrong).status == 401
    assert exp.get("/metrics", headers={"Authorization": "Basic !!!"}).status == 401
    answer = exp.get("/probe?module=ike&target=127.0.0.1", headers={**good, **TIMEOUT})
    assert answer.status == 200 and "probe_success" in answer.body
    assert answer.headers.get("Content-Type", "").startswith("text/plain")
    # Plain HTTP to the TLS port gets no metrics.
    plain = Exporter(exp.proc, exp.port, exp.config, exp.log)
    try:
        leaked = "process_open_fds" in plain.get("/metrics", headers=good, timeout_s=5).body
    except (OSError, http.client.HTTPException):
        leaked = False
    assert not leaked


def test_pages_escape_what_servers_and_scrapers_send() -> None:
    hostile = "<script>alert(1)</script>"
    o = Outcome(
        module="m",
        prober="sstp",
        target="vpn.example.com",
        address="203.0.113.1",
        started_at="now",
        summary=hostile,
        findings=[finding("sstp.tls", "fail", hostile)],
        report={"server": hostile},
    )
    row = type("Row", (), {"id": 1, "outcome": o})()
    for page in (render_index([row], ["m"]), render_report(1, o)):
        assert "<script>" not in page and "&lt;script&gt;" in page
        assert "http://" not in page and "https://" not in page and "<link" not in page and "src=" not in page


def dns_config(dns: ScriptedDns, port: int, allow: dict[str, Any]) -> dict[str, Any]:
    return {
        "modules": {"ike": ike_module(port)},
        "dns": {"server": "127.0.0.1", "port": dns.port},
        "allow": allow,
    }


@pytest.fixture
def two_sinks() -> Iterator[tuple[UdpSink, UdpSink]]:
    import socket

    port = free_port(socket.SOCK_DGRAM, "127.0.0.2")
    good, bad = UdpSink("127.0.0.2", port), UdpSink("127.0.0.3", port)
    yield good, bad
    good.close()
    bad.close()


def test_allow_list_against_resolved_addresses(
    exporter_factory: Factory, two_sinks: tuple[UdpSink, UdpSink]
) -> None:
    good, bad = two_sinks
    port = good.sock.getsockname()[1]
    dns = ScriptedDns(
        {
            "gw.example.test": [["127.0.0.2"]],
            "outside.example.test": [["127.0.0.3"]],
            "mixed.example.test": [["127.0.0.2", "127.0.0.3"]],
            "rebind.example.test": [["127.0.0.2"], ["127.0.0.3"]],
            "evil.example.org": [["127.0.0.2"]],
        }
    )
    try:
        exp = exporter_factory(
            dns_config(dns, port, {"names": ["*.example.test"], "cidrs": ["127.0.0.2/32"]})
        )
        # A listed name resolving inside: probed, at that address.
        answer = exp.get("/probe?module=ike&target=gw.example.test", headers=TIMEOUT)
        assert answer.status == 200 and good.received
        # Listed names resolving outside, wholly or in part: refused, nothing sent.
        for name in ("outside.example.test", "mixed.example.test"):
            answer = exp.get(f"/probe?module=ike&target={name}", headers=TIMEOUT)
            assert answer.status == 403 and "outside the allow list" in answer.body, name
        # A name not in the list is refused before DNS is even asked.
        answer = exp.get("/probe?module=ike&target=evil.example.org", headers=TIMEOUT)
        assert answer.status == 403 and dns.a_queries("evil.example.org") == 0
        # IP literals: only inside the CIDRs.
        assert exp.get("/probe?module=ike&target=127.0.0.3", headers=TIMEOUT).status == 403
        assert exp.get("/probe?module=ike&target=127.0.0.2", headers=TIMEOUT).status == 200
        # Rebinding: the first answer is checked AND used (one A query per scrape); the second scrape
        # gets the other answer and is refused. Nothing ever reaches 127.0.0.3.
        sent_before = len(good.received)
        answer = exp.get("/probe?module=ike&target=rebind.example.test", headers=TIMEOUT)
        assert answer.status == 200 and dns.a_queries("rebind.example.test") == 1
        assert len(good.received) > sent_before
        answer = exp.get("/probe?module=ike&target=rebind.example.test", headers=TIMEOUT)
        assert answer.status == 403 and dns.a_queries("rebind.example.test") == 2
        assert not bad.received, bad.received
        assert exp.metric("vpndoctor_exporter_bad_requests_total", reason="allow-list") == 5
    finally:
        dns.close()


class RedirectingServer:
    """A TLS endpoint on 127.0.0.2 answering every request with a redirect to 127.0.0.3, where a plain
    listener counts the connections it gets."""

    def __init__(self, crt: Path, key: Path) -> None:
        import socket
        import threading

        self.port = free_port(socket.SOCK_STREAM, "127.0.0.2")
        self.ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self.ctx.load_cert_chain(str(crt), str(key))
        self.front = socket.create_server(("127.0.0.2", self.port))
        self.elsewhere = socket.create_server(("127.0.0.3", self.port))
        self.front.settimeout(0.2)
        self.elsewhere.settimeout(0.2)
        self.answered = 0
        self.redirected_to = 0
        self._stop = threading.Event()
        self._threads = [threading.Thread(target=f, daemon=True) for f in (self._serve, self._count)]
        for th in self._threads:
            th.start()

    def _serve(self) -> None:

        while not self._stop.is_set():
            try:
                conn, _ = self.front.accept()
            except (TimeoutError, OSError):
                continue
            try:
                conn.settimeout(3)
                with self.ctx.wrap_socket(conn, server_side=True) as tls:
                    data = tls.recv(65536)
                    if data:
                        where = f"https://127.0.0.3:{self.port}/IPHTTPS"
                        tls.sendall(
                            f"HTTP/1.1 302 Found\r\nLocation: {where}\r\nContent-Length: 0\r\n\r\n".encode()
                        )
                        self.answered += 1
                        tls.recv(1)
            except (TimeoutError, OSError, ssl.SSLError):
                pass

    def _count(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self.elsewhere.accept()
            except (TimeoutError, OSError):
                continue
            self.redirected_to += 1
            conn.close()

    def close(self) -> None:
        self._stop.set()
        for th in self._threads:
            th.join(2)
        self.front.close()
        self.elsewhere.close()


def test_probes_never_follow_redirects_to_other_hosts(exporter_factory: Factory, tmp_path: Path) -> None:
    crt, key = _self_signed(tmp_path)
    server = RedirectingServer(crt, key)
    try:
        modules = {
            "iphttps": {"prober": "iphttps", "port": server.port, "ca": [str(crt)]},
            "sstp": {"prober": "sstp", "port": server.port, "ca": [str(crt)]},
            "tls": {"prober": "tls", "port": server.port, "ca": [str(crt)], "concurrency": 2},
        }
        exp = exporter_factory({"modules": modules})
        for module in modules:
            answer = exp.get(
                f"/probe?module={module}&target=127.0.0.2",
                headers={"X-Prometheus-Scrape-Timeout-Seconds": "8"},
            )
            assert answer.status == 200 and "probe_success" in answer.body, module
        assert server.answered >= 2, "the redirects were sent"
        time.sleep(0.5)
        assert server.redirected_to == 0
    finally:
        server.close()


def test_min_interval_reuses_a_recent_result(exporter_factory: Factory, sink: UdpSink) -> None:
    port = sink.sock.getsockname()[1]
    exp = exporter_factory({"modules": {"ike": ike_module(port)}, "limits": {"min_interval_s": 60}})
    first = exp.get("/probe?module=ike&target=127.0.0.1", headers=TIMEOUT)
    sent = len(sink.received)
    assert sent > 0
    second = exp.get("/probe?module=ike&target=127.0.0.1", headers=TIMEOUT)
    assert first.body == second.body and len(sink.received) == sent
    assert exp.metric("vpndoctor_exporter_coalesced_total") == 1
    assert exp.metric("vpndoctor_exporter_probes_total", module="ike", result="failure") == 1


def test_the_index_links_each_probe_to_its_report(exporter_factory: Factory, sink: UdpSink) -> None:
    exp = exporter_factory({"modules": {"ike": ike_module(sink.sock.getsockname()[1])}})
    assert "No probe yet" in exp.get("/").body
    exp.get("/probe?module=ike&target=127.0.0.1", headers=TIMEOUT)
    index = exp.get("/")
    assert index.status == 200 and "default-src 'none'" in index.headers["Content-Security-Policy"]
    assert '<a href="/report?id=1">report</a>' in index.body and "127.0.0.1" in index.body
    report = exp.get("/report?id=1")
    assert (
        report.status == 200
        and "ike probe #1: 127.0.0.1" in report.body
        and "&#34;datagrams&#34;" in report.body
    )
    assert exp.get("/report?id=99").status == 404
